/* The token domain's registration (es/domain.h). */
#include "auth/auth.h"
#include "auth/token.h"

const struct es_outcome auth_outcomes[] = {AUTH_OUTCOME_MAP(ES_OUTCOME_ROW, AUTH)};

static const struct es_aggregate_type *const aggregates[] = {
    &token_aggregate,
    NULL,
};

const struct es_domain auth_domain = {
    .name = "auth",
    .aggregates = aggregates,
    .event_types = token_event_types,
    .outcomes = auth_outcomes,
    .outcomes_len = AUTH_OUTCOMES_LEN,
    .consumers = token_consumers,
    .routes = token_routes,
};
