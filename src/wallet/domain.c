/* The wallet domain's registration (es/domain.h): everything the core and
 * main need to know of wallets and transfers, in one place. */
#include "wallet/projections.h"
#include "wallet/routes.h"
#include "wallet/wallet.h"

const struct es_outcome wallet_outcomes[] = {WALLET_OUTCOME_MAP(ES_OUTCOME_ROW, WALLET)};

static const struct es_aggregate_type *const aggregates[] = {
    &wallet_aggregate,
    &transfer_aggregate,
    NULL,
};

const struct es_domain wallet_domain = {
    .name = "wallet",
    .aggregates = aggregates,
    .event_types = wallet_event_types,
    .outcomes = wallet_outcomes,
    .outcomes_len = WALLET_OUTCOMES_LEN,
    .consumers = wallet_consumers,
    .routes = wallet_routes,
    .drift = wallet_drift,
    .verify = wallet_verify,
};
