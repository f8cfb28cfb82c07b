/*
 * Every answer a client can get that is not a plain success, in one table:
 * the stable machine-readable `code`, the HTTP status and the title of the
 * problem JSON (RFC 9457). Deciders return these, the HTTP layer maps them
 * through this table and nowhere else. Append only: codes are a contract.
 */
#ifndef WALLEX_ES_OUTCOME_H
#define WALLEX_ES_OUTCOME_H

#define ES_OUTCOME_MAP(XX)                                                              \
    XX(OK, 200, "OK")                                                                   \
    XX(invalid_request, 400, "The request is not valid")                                \
    XX(same_wallet, 400, "A transfer needs two different wallets")                      \
    XX(not_found, 404, "No such resource")                                              \
    XX(wallet_not_found, 404, "Wallet not found")                                       \
    XX(transfer_not_found, 404, "Transfer not found")                                   \
    XX(method_not_allowed, 405, "Method not allowed")                                   \
    XX(wallet_already_exists, 409, "Wallet already exists")                             \
    XX(transfer_already_exists, 409, "Transfer already exists")                         \
    XX(version_conflict, 409, "The wallet is not at the expected version")              \
    XX(idempotency_key_in_use, 409, "A request with this Idempotency-Key is in progress") \
    XX(rebuild_in_progress, 409, "A rebuild of this projection is already running")     \
    XX(payload_too_large, 413, "Request body too large")                                \
    XX(unsupported_media_type, 415, "Content-Type must be application/json")            \
    XX(insufficient_funds, 422, "Insufficient funds")                                   \
    XX(balance_overflow, 422, "The balance would exceed the largest representable amount") \
    XX(currency_mismatch, 422, "The wallets hold different currencies")                 \
    XX(idempotency_key_reused, 422, "Idempotency-Key was used for a different request") \
    XX(internal_error, 500, "Internal error")                                           \
    XX(store_unavailable, 503, "The event store could not commit")                      \
    XX(overloaded, 503, "The server is overloaded")                                     \
    XX(shutting_down, 503, "The server is shutting down")                               \
    XX(projection_lagging, 503, "The read side has not caught up")                      \
    XX(request_timeout, 408, "The request did not arrive in time")                       \
    XX(uri_too_long, 414, "The URL is too long")                                         \
    XX(header_fields_too_large, 431, "The request's header fields are too large")        \
    XX(body_not_allowed, 400, "This route takes no request body")                        \
    XX(not_implemented, 501, "The method is not implemented")

enum es_outcome {
#define XX(name, status, title) ES_##name,
    ES_OUTCOME_MAP(XX)
#undef XX
        ES_OUTCOME_COUNT
};

/* The stable code string ("insufficient_funds"); never NULL. */
const char *es_outcome_code(enum es_outcome o);
int es_outcome_status(enum es_outcome o);
const char *es_outcome_title(enum es_outcome o);

struct wx_buf;
/* Appends the RFC 9457 problem JSON for an outcome. The writer stores these
 * bytes with an Idempotency-Key, so one function builds every problem body. */
void es_problem_json(struct wx_buf *b, enum es_outcome o, const char *detail);

#endif
