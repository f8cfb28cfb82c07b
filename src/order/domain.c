/* The order domain's registration (es/domain.h). */
#include "order/order.h"
#include "order/projections.h"
#include "order/routes.h"

const struct es_outcome order_outcomes[] = {ORDER_OUTCOME_MAP(ES_OUTCOME_ROW, ORDER)};

static const struct es_aggregate_type *const aggregates[] = {&order_aggregate, NULL};

const struct es_domain order_domain = {
    .name = "order",
    .aggregates = aggregates,
    .event_types = order_event_types,
    .outcomes = order_outcomes,
    .outcomes_len = ORDER_OUTCOMES_LEN,
    .consumers = order_consumers,
    .routes = order_routes,
    .drift = order_drift,
    .verify = order_verify,
};
