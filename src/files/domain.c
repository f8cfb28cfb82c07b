/* The files domain's registration (es/domain.h). */
#include "files/files.h"
#include "files/projections.h"
#include "files/routes.h"

static const struct es_aggregate_type *const aggregates[] = {&files_aggregate,
                                                             &files_tree_log_aggregate, NULL};

const struct es_domain files_domain = {
    .name = "files",
    .aggregates = aggregates,
    .event_types = files_event_types,
    .outcomes = files_outcomes,
    .outcomes_len = FILES_OUTCOMES_LEN,
    .consumers = files_consumers,
    .routes = files_routes,
    .drift = files_drift,
    .verify = files_verify,
};
