/*
 * Outcomes: every answer a client can get that is not a plain success, as
 * a stable machine-readable `code`, an HTTP status and the title of the
 * problem JSON (RFC 9457). An outcome is a pointer to one row of a table:
 * the core keeps the generic rows here (bad requests, conflicts of the log,
 * overload), and each domain brings its own table, generated the same way
 * from its own X-macro list and registered with the domain (es/domain.h),
 * so a domain's rules never land in the core. Tables are append only:
 * codes are a contract.
 */
#ifndef WALLEX_ES_OUTCOME_H
#define WALLEX_ES_OUTCOME_H

#include <stddef.h>

struct es_outcome {
    const char *code; /* "insufficient_funds" */
    int status;       /* the HTTP status */
    const char *title;
};

/* Generates a table's index enum and its rows from an X-macro list, for
 * `enum <prefix>_outcome_id { <PREFIX>_ID_<name>, ... }` and
 * `const struct es_outcome <prefix>_outcomes[]`. Each outcome is then
 * named `&<prefix>_outcomes[<PREFIX>_ID_<name>]`; tables define short
 * macros for that. */
#define ES_OUTCOME_ID(PREFIX, name, status, title) PREFIX##_ID_##name,
#define ES_OUTCOME_ROW(PREFIX, name, st, ti) {#name, st, ti},

#define ES_CORE_OUTCOME_MAP(XX, P)                                                                \
    XX(P, OK, 200, "OK")                                                                          \
    XX(P, invalid_request, 400, "The request is not valid")                                       \
    XX(P, not_found, 404, "No such resource")                                                     \
    XX(P, method_not_allowed, 405, "Method not allowed")                                          \
    XX(P, version_conflict, 409, "The resource is not at the expected version")                   \
    XX(P, idempotency_key_in_use, 409, "A request with this Idempotency-Key is in progress")      \
    XX(P, rebuild_in_progress, 409, "A rebuild of this projection is already running")            \
    XX(P, payload_too_large, 413, "Request body too large")                                       \
    XX(P, unsupported_media_type, 415, "Content-Type must be application/json")                   \
    XX(P, idempotency_key_reused, 422, "Idempotency-Key was used for a different request")        \
    XX(P, internal_error, 500, "Internal error")                                                  \
    XX(P, store_unavailable, 503, "The event store could not commit")                             \
    XX(P, overloaded, 503, "The server is overloaded")                                            \
    XX(P, shutting_down, 503, "The server is shutting down")                                      \
    XX(P, projection_lagging, 503, "The read side has not caught up")                             \
    XX(P, request_timeout, 408, "The request did not arrive in time")                             \
    XX(P, uri_too_long, 414, "The URL is too long")                                               \
    XX(P, header_fields_too_large, 431, "The request's header fields are too large")              \
    XX(P, body_not_allowed, 400, "This route takes no request body")                              \
    XX(P, not_implemented, 501, "The method is not implemented")

enum es_core_outcome_id { ES_CORE_OUTCOME_MAP(ES_OUTCOME_ID, ES) ES_CORE_OUTCOMES_LEN };
extern const struct es_outcome es_core_outcomes[];

#define ES_OK (&es_core_outcomes[ES_ID_OK])
#define ES_invalid_request (&es_core_outcomes[ES_ID_invalid_request])
#define ES_not_found (&es_core_outcomes[ES_ID_not_found])
#define ES_method_not_allowed (&es_core_outcomes[ES_ID_method_not_allowed])
#define ES_version_conflict (&es_core_outcomes[ES_ID_version_conflict])
#define ES_idempotency_key_in_use (&es_core_outcomes[ES_ID_idempotency_key_in_use])
#define ES_rebuild_in_progress (&es_core_outcomes[ES_ID_rebuild_in_progress])
#define ES_payload_too_large (&es_core_outcomes[ES_ID_payload_too_large])
#define ES_unsupported_media_type (&es_core_outcomes[ES_ID_unsupported_media_type])
#define ES_idempotency_key_reused (&es_core_outcomes[ES_ID_idempotency_key_reused])
#define ES_internal_error (&es_core_outcomes[ES_ID_internal_error])
#define ES_store_unavailable (&es_core_outcomes[ES_ID_store_unavailable])
#define ES_overloaded (&es_core_outcomes[ES_ID_overloaded])
#define ES_shutting_down (&es_core_outcomes[ES_ID_shutting_down])
#define ES_projection_lagging (&es_core_outcomes[ES_ID_projection_lagging])
#define ES_request_timeout (&es_core_outcomes[ES_ID_request_timeout])
#define ES_uri_too_long (&es_core_outcomes[ES_ID_uri_too_long])
#define ES_header_fields_too_large (&es_core_outcomes[ES_ID_header_fields_too_large])
#define ES_body_not_allowed (&es_core_outcomes[ES_ID_body_not_allowed])
#define ES_not_implemented (&es_core_outcomes[ES_ID_not_implemented])

/* The outcome tables known to this process: the core's, then each
 * registered domain's. Registration happens once, at start-up, before any
 * thread reads them. */
struct es_outcome_table {
    const char *domain; /* NULL for the core's */
    const struct es_outcome *rows;
    size_t len;
};

/* Adds a table; WX_ERR_FULL past WX_DOMAINS_MAX, WX_ERR_CONFLICT when a
 * code is already taken by another table (codes are global to clients). */
int es_outcomes_register(const char *domain, const struct es_outcome *rows, size_t len);
/* Forgets every domain table (tests register and unregister domains). */
void es_outcomes_reset(void);
/* A dense index over every registered row, for counters; the core's rows
 * come first. es_outcome_slots() is one past the largest. */
size_t es_outcome_slot(const struct es_outcome *o);
size_t es_outcome_slots(void);
/* The outcome of a slot, for rendering counters; NULL past the end. */
const struct es_outcome *es_outcome_at(size_t slot);
/* Finds an outcome by its code, or NULL. */
const struct es_outcome *es_outcome_by_code(const char *code);

struct wx_buf;
/* Appends the RFC 9457 problem JSON for an outcome. The writer stores these
 * bytes with an Idempotency-Key, so one function builds every problem body. */
void es_problem_json(struct wx_buf *b, const struct es_outcome *o, const char *detail);
/* The same with more members: `extra` is JSON object members without the
 * braces ("\"currentStatus\":\"paid\""), NULL for none. */
void es_problem_json_ext(struct wx_buf *b, const struct es_outcome *o, const char *detail,
                         const char *extra);

#endif
