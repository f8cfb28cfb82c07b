/* The subscription domain's registration (es/domain.h). */
#include "bus/routes.h"
#include "bus/subscription.h"

const struct es_outcome bus_outcomes[] = {BUS_OUTCOME_MAP(ES_OUTCOME_ROW, BUS)};

static const struct es_aggregate_type *const aggregates[] = {
    &subscription_aggregate,
    NULL,
};

const struct es_domain bus_domain = {
    .name = "bus",
    .aggregates = aggregates,
    .event_types = subscription_event_types,
    .outcomes = bus_outcomes,
    .outcomes_len = BUS_OUTCOMES_LEN,
    .consumers = bus_consumers,
    .routes = bus_routes,
};
