/*
 * The composition every route handler sees as req->app: the store, the
 * writer, the projector and the settings shared by every domain, plus the
 * helpers that every domain's routes use the same way (submitting a
 * command, paging, X-Min-Position, time travel, a stream's events page).
 * Nothing here names a domain: `main` hands in the list (es/domain.h).
 *
 * Ownership: the app borrows everything it points to; main owns them and
 * frees them after the HTTP server has stopped.
 */
#ifndef WALLEX_APP_APP_H
#define WALLEX_APP_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "es/aggregate.h"
#include "es/domain.h"
#include "es/writer.h"
#include "http/http.h"
#include "limits.h"

struct es_store;
struct es_projector;
struct bus;
struct auth_service;
struct auth_principal;

struct wx_worker;

struct wx_app {
    struct es_store *store;
    struct es_writer *writer;
    struct es_projector *projector;
    struct wx_worker *admin;   /* long admin work, off the HTTP threads */
    struct bus *bus;           /* the event bus (bus/bus.h): relay and webhooks */
    struct auth_service *auth; /* tokens (auth/service.h); NULL with --auth off */
    char default_currency[WX_CURRENCY_BYTES + 1];
};

/* ---- composition (main) ---- */

/* The server's route table: `first` (operations) then every registered
 * domain's routes, in a malloc'd array the caller frees. */
int wx_app_routes(const struct http_route *first, size_t first_len, struct http_route **out,
                  size_t *len_out);
/* Every registered domain's consumers, in a malloc'd array the caller
 * frees. WX_ERR_FULL past WX_PROJECTOR_CONSUMERS_MAX. */
int wx_app_consumers(const struct es_consumer ***out, size_t *len_out);

/* ---- recovery over every domain (HTTP and the offline tools) ---- */

/* {"checked": N, "driftedCount": M, "drifted": [...]} over every domain. */
int wx_app_drift(struct es_projector *p, struct wx_buf *out, size_t *drifted_out);
/* {"ok": bool, "violations": [...], "<domain>": {...}, ...}. */
int wx_app_verify(struct es_projector *p, struct wx_buf *out, bool *ok_out);

/* ---- for route handlers ---- */

/* Queues a command for the writer: `handle` runs on the writer thread with
 * `payload` (in the request's arena), on behalf of the request's caller
 * (es_command.actor, token_id, principal). Answers 500 when out of memory. */
void wx_submit(struct http_request *req, es_command_fn handle, void *payload);
/* The same with an es_command.committed hook. */
void wx_submit_committed(struct http_request *req, es_command_fn handle, void *payload,
                         void (*committed)(struct es_command *cmd));
/* The same with both hooks, es_command.committed and .discarded (either
 * may be NULL). */
void wx_submit_hooks(struct http_request *req, es_command_fn handle, void *payload,
                     void (*committed)(struct es_command *cmd),
                     void (*discarded)(struct es_command *cmd));

/* The request's caller (auth/auth.h), NULL when authentication is off: the
 * domains' routes decide ownership with it (auth_owns). */
const struct auth_principal *wx_principal(const struct http_request *req);

/* A 400 invalid_request. */
void wx_bad_request(struct http_request *req, const char *detail);
/* Path parameter i must be an id; answers 400 naming `what` when not. */
bool wx_id_param(struct http_request *req, size_t i, const char *what);
/* Answers a query's store or read-model error: `not_found` for
 * WX_ERR_NOT_FOUND, 503 for the rest. */
void wx_query_failed(struct http_request *req, int err, const struct es_outcome *not_found,
                     const char *detail);

/* X-Min-Position for routes with read_models (http_server_config.read_side,
 * with a struct wx_app as the server's app): a projector watch per waiting
 * request, which resumes it when the read models pass the position. */
extern const struct http_read_side wx_read_side;

/* Work that must not run on an HTTP thread (it scans the log, or waits for
 * the projector thread): `work(ctx)` runs on the admin worker while the
 * request waits parked, then `answer(req, ctx)` runs on the request's HTTP
 * thread to reply (not when the client has gone). ctx lives in the
 * request's arena; `work` must not touch the request. Past the worker's
 * queue bound the request is answered 503 overloaded at once. */
void wx_off_thread(struct http_request *req, void (*work)(void *ctx),
                   void (*answer)(struct http_request *req, void *ctx), void *ctx);

/* The usual shape of such work: `work(app, arg, out)` appends a JSON answer
 * to out (or fails); the request is then answered `status` with it, or
 * `not_found` for WX_ERR_NOT_FOUND, `busy` (when not NULL) for
 * WX_ERR_BUSY, 503 for the rest. arg must live as long as the request. */
void wx_off_thread_json(struct http_request *req,
                        int (*work)(const struct wx_app *app, const char *arg, struct wx_buf *out),
                        const char *arg, int status, const struct es_outcome *not_found,
                        const char *not_found_detail, const struct es_outcome *busy);

/* ?limit= (API.md: 1-1000, default 50). False when it answered 400. */
bool wx_page_limit(struct http_request *req, size_t *limit);
/* ?limit= and ?after= of per-stream lists, whose cursor is the last
 * version seen, as an opaque "v<N>" token (0 from the start). */
bool wx_page_versions(struct http_request *req, size_t *limit, int64_t *after_version);

/* ?limit= and ?after= of lists ordered by an id, whose cursor is the last
 * id seen as an opaque "i<id>" token; *after_id is NULL from the start. */
bool wx_page_ids(struct http_request *req, size_t *limit, const char **after_id);
/* A read model's page of a list ordered by id (wx_page_ids): the query
 * writes {"data":[...],"next":...} into out. */
typedef int (*wx_id_page_query)(struct es_projector *p, const char *after, size_t limit,
                                struct wx_buf *out);
/* A whole GET route over such a list: parameters, query, 200 or problem. */
void wx_route_id_page(struct http_request *req, wx_id_page_query query);
/* A fresh UUIDv7 in the request's arena for a resource the client did not
 * name. False when it answered 500. */
bool wx_new_id(struct http_request *req, char **id_out);

/* ?atVersion= / ?asOf= of time travel: false when neither is given (a
 * read-model query then) or when it answered 400. */
bool wx_time_travel(struct http_request *req, struct es_fold_until *until, bool *asked);
/* Folds the stream as it was (state: type->state_bytes_max bytes). False
 * when it answered: `not_found` when the aggregate did not exist then (or
 * not yet at atVersion), 503 when the store failed. */
bool wx_fold_as_of(struct http_request *req, const struct es_aggregate_type *type,
                   const char *stream_id, const struct es_fold_until *until, void *state,
                   int64_t *version_out, const struct es_outcome *not_found);

/* GET /<things>/{id}/events: a page of the stream's events (?fromVersion=,
 * ?limit=, ?after=), upcast to their current schema, bounded in bytes by
 * WX_PAGE_BYTES_MAX (a `nextCursor` then says where the next page starts).
 * `not_found` when the stream is empty. */
void wx_route_stream_events(struct http_request *req, const char *stream_id,
                            const struct es_outcome *not_found, const char *detail);

/* "<category>:<id>" into out. */
void wx_stream_id(const char *category, const char *id, char out[WX_STREAM_ID_BYTES_MAX + 1]);

#endif
