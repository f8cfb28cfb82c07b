/*
 * Wallet routes: requests become typed commands here (every validation rule
 * that does not need state), the writer runs them through the deciders.
 * Queries read the read models (wallet/projections.c); time travel
 * (?atVersion, ?asOf) and the events route read the log itself.
 */
#include "wallet/routes.h"

#include <assert.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/money.h"
#include "base/uuid.h"
#include "es/writer.h"
#include "limits.h"
#include "proj/projector.h"
#include "store/store.h"
#include "wallet/projections.h"
#include "wallet/wallet.h"

/* ---- on the writer thread ---- */

/* A loaded stream and the command's working copy of its state. */
struct loaded {
    char stream_id[WX_STREAM_ID_BYTES_MAX + 1];
    int64_t version;
    union {
        struct wallet_state wallet;
        struct transfer_state transfer;
    } s;
};

static int load(struct es_decide_ctx *ctx, const struct es_aggregate_type *type,
                const char *id, struct loaded *out)
{
    if (type == &wallet_aggregate)
        wallet_stream_id(id, out->stream_id);
    else
        transfer_stream_id(id, out->stream_id);
    const void *state;
    int err = es_decide_load(ctx, type, out->stream_id, &state, &out->version);
    if (!err)
        memcpy(&out->s, state, type->state_bytes);
    return err;
}

/* Evolves, encodes and stages one decided event on its stream. */
static int stage(struct es_decide_ctx *ctx, struct loaded *l, const struct wallet_event *e)
{
    if (e->kind == TRANSFER_COMPLETED)
        transfer_evolve(&l->s.transfer, e);
    else
        wallet_evolve(&l->s.wallet, e);
    struct wx_buf b;
    wx_buf_init(&b);
    wallet_event_encode(&b, e);
    /* Ids and descriptions are bounded, so this holds; decoding relies on it. */
    assert(!wx_buf_ok(&b) || b.len < WX_EVENT_DATA_BYTES_MAX);
    int err = wx_buf_ok(&b) ? es_decide_emit(ctx, l->stream_id, wallet_event_type_name(e->kind),
                                             b.data, b.len, &l->s)
                            : WX_ERR_NOMEM;
    wx_buf_free(&b);
    if (!err)
        l->version++;
    return err;
}

static void reply_resource(struct es_decide_ctx *ctx, int status, struct wx_buf *b,
                           const char *location)
{
    if (!wx_buf_ok(b)) {
        es_decide_fail(ctx, WX_ERR_NOMEM);
        return;
    }
    es_decide_reply(ctx, status, b->data, b->len, location);
}

static int run_wallet(struct es_decide_ctx *ctx, const struct wallet_command *c)
{
    struct loaded w;
    int err = load(ctx, &wallet_aggregate, c->wallet_id, &w);
    if (err)
        return err;
    struct wallet_decision d;
    if (c->kind == WALLET_CMD_CREATE)
        wallet_decide_create(&w.s.wallet, c, es_decide_now_ms(ctx), &d);
    else
        wallet_decide_amount(&w.s.wallet, w.version, c, es_decide_now_ms(ctx), &d);
    if (d.outcome != ES_OK) {
        es_decide_reject(ctx, d.outcome, d.detail);
        return 0;
    }
    for (size_t i = 0; i < d.events_len && !err; i++)
        err = stage(ctx, &w, &d.events[i]);
    if (err)
        return err;
    struct wx_buf b;
    wx_buf_init(&b);
    wallet_json(&b, c->wallet_id, &w.s.wallet, w.version);
    char location[16 + WX_ID_BYTES_MAX];
    snprintf(location, sizeof(location), "/wallets/%s", c->wallet_id);
    bool created = c->kind == WALLET_CMD_CREATE;
    reply_resource(ctx, created ? 201 : 200, &b, created ? location : NULL);
    wx_buf_free(&b);
    return 0;
}

static int run_transfer(struct es_decide_ctx *ctx, const struct wallet_command *c)
{
    struct loaded from, to, t;
    int err = load(ctx, &wallet_aggregate, c->from_wallet_id, &from);
    if (!err)
        err = load(ctx, &wallet_aggregate, c->to_wallet_id, &to);
    if (!err && c->transfer_id_generated) {
        /* A fresh UUIDv7: no need to read the store to know it is new. */
        const void *state;
        transfer_stream_id(c->transfer_id, t.stream_id);
        t.version = 0;
        err = es_decide_load_new(ctx, &transfer_aggregate, t.stream_id, &state);
        if (!err)
            memcpy(&t.s, state, transfer_aggregate.state_bytes);
    } else if (!err) {
        err = load(ctx, &transfer_aggregate, c->transfer_id, &t);
    }
    if (err)
        return err;
    struct wallet_decision d;
    wallet_decide_transfer(&from.s.wallet, from.version, &to.s.wallet, to.version,
                           &t.s.transfer, c, es_decide_now_ms(ctx), &d);
    if (d.outcome != ES_OK) {
        es_decide_reject(ctx, d.outcome, d.detail);
        return 0;
    }
    err = stage(ctx, &from, &d.events[0]);
    if (!err)
        err = stage(ctx, &to, &d.events[1]);
    if (!err)
        err = stage(ctx, &t, &d.events[2]);
    if (err)
        return err;
    struct wx_buf b;
    wx_buf_init(&b);
    transfer_json(&b, c->transfer_id, &t.s.transfer, &from.s.wallet, &to.s.wallet);
    char location[16 + WX_ID_BYTES_MAX];
    snprintf(location, sizeof(location), "/transfers/%s", c->transfer_id);
    reply_resource(ctx, 201, &b, location);
    wx_buf_free(&b);
    return 0;
}

static void run_command(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    const struct wallet_command *c = cmd->payload;
    int err = c->kind == WALLET_CMD_TRANSFER ? run_transfer(ctx, c) : run_wallet(ctx, c);
    if (err)
        es_decide_fail(ctx, err);
}

/* ---- on the HTTP threads ---- */

static void bad_request(struct http_request *req, const char *detail)
{
    http_reply_problem(req, ES_invalid_request, detail);
}

static void submit(struct http_request *req, struct wallet_command *c)
{
    struct es_command *cmd = wx_arena_alloc(&req->arena, sizeof(*cmd));
    if (cmd == NULL) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    cmd->handle = run_command;
    cmd->payload = c;
    http_submit(req, cmd);
}

/* Parses the body into a command and submits it, or answers why not. */
static void command_route(struct http_request *req, enum wallet_command_kind kind)
{
    const struct wallet_service *svc = req->app;
    struct wallet_command *c;
    enum es_outcome outcome;
    const char *detail;
    if (!wallet_command_parse(kind, req->params_len > 0 ? req->params[0] : NULL, req->body,
                              req->body_len, svc->default_currency, &req->arena, &c, &outcome,
                              &detail)) {
        http_reply_problem(req, outcome, detail);
        return;
    }
    if (kind == WALLET_CMD_TRANSFER && c->transfer_id == NULL) {
        char *id = wx_arena_alloc(&req->arena, WX_UUID_STR_BYTES);
        if (id == NULL || wx_uuid7(wx_clock_now_ms(&wx_clock_system), id) != 0) {
            http_reply_problem(req, ES_internal_error, "no id could be generated");
            return;
        }
        c->transfer_id = id;
        c->transfer_id_generated = true;
    }
    submit(req, c);
}

void wallet_route_create(struct http_request *req)
{
    command_route(req, WALLET_CMD_CREATE);
}

void wallet_route_credit(struct http_request *req)
{
    command_route(req, WALLET_CMD_CREDIT);
}

void wallet_route_debit(struct http_request *req)
{
    command_route(req, WALLET_CMD_DEBIT);
}

void wallet_route_transfer(struct http_request *req)
{
    command_route(req, WALLET_CMD_TRANSFER);
}

/* ---- queries ---- */

/* X-Min-Position (http_read_side): a projector watch whose firing resumes
 * the parked request. */
struct read_watch {
    struct es_projector_watch w; /* first: the projector hands this back */
    struct http_request *req;
};

static void read_watch_reached(struct es_projector_watch *w)
{
    http_resume(((struct read_watch *)w)->req);
}

static enum http_watch read_side_watch(void *app, struct http_request *req, void *watch,
                                       const char *const *models, const char *token)
{
    const struct wallet_service *svc = app;
    struct read_watch *rw = watch;
    memset(rw, 0, sizeof(*rw));
    if (!es_position_parse(token, &rw->w.position))
        return HTTP_WATCH_BAD_TOKEN;
    rw->w.names = models;
    rw->w.reached = read_watch_reached;
    rw->req = req;
    bool reached;
    if (es_projector_watch(svc->projector, &rw->w, &reached) != 0)
        return HTTP_WATCH_FULL;
    return reached ? HTTP_WATCH_READY : HTTP_WATCH_PARKED;
}

static bool read_side_unwatch(void *app, void *watch)
{
    const struct wallet_service *svc = app;
    return es_projector_unwatch(svc->projector, &((struct read_watch *)watch)->w);
}

const struct http_read_side wallet_read_side = {
    .watch_bytes = sizeof(struct read_watch),
    .watch = read_side_watch,
    .unwatch = read_side_unwatch,
};

/* Answers a query's store or read-model error. */
static void query_failed(struct http_request *req, int err, enum es_outcome not_found,
                         const char *detail)
{
    if (err == WX_ERR_NOT_FOUND)
        http_reply_problem(req, not_found, detail);
    else if (err == WX_ERR_BUSY)
        http_reply_problem(req, ES_projection_lagging, "the read side is catching up");
    else
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
}

/* ?atVersion= / ?asOf=: the wallet as it was, folded from its events. */
static void wallet_get_folded(struct http_request *req, const char *id, const char *at_version,
                              const char *as_of)
{
    const struct wallet_service *svc = req->app;
    struct es_fold_until until = {0, 0};
    if (at_version != NULL && !http_parse_i64(at_version, 1, INT64_MAX, &until.version_max)) {
        bad_request(req, "atVersion must be a positive integer");
        return;
    }
    if (as_of != NULL && !wx_time_parse(as_of, &until.occurred_max_ms)) {
        bad_request(req, "asOf must be an RFC 3339 timestamp");
        return;
    }
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    wallet_stream_id(id, stream);
    struct wallet_state s;
    int64_t version;
    int err = es_fold(svc->store, &wallet_aggregate, stream, &until, &s, &version);
    if (err) {
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
        return;
    }
    if (!s.exists || (at_version != NULL && version < until.version_max)) {
        http_reply_problem(req, ES_wallet_not_found, "the wallet did not exist then");
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    wallet_json(&b, id, &s, version);
    http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

static bool id_param_ok(struct http_request *req, const char *what)
{
    if (http_id_ok(req->params[0]))
        return true;
    char *msg = wx_arena_alloc(&req->arena, 96);
    if (msg != NULL)
        snprintf(msg, 96, "the %s id must be 1-64 characters of A-Z a-z 0-9 . _ : -", what);
    bad_request(req, msg ? msg : "bad id");
    return false;
}

void wallet_route_get(struct http_request *req)
{
    const struct wallet_service *svc = req->app;
    const char *id = req->params[0];
    if (!id_param_ok(req, "wallet"))
        return;
    const char *at_version = http_query(req, "atVersion");
    const char *as_of = http_query(req, "asOf");
    if (at_version != NULL || as_of != NULL) {
        wallet_get_folded(req, id, at_version, as_of);
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    int err = wallet_query_get(svc->projector, id, &b);
    if (err)
        query_failed(req, err, ES_wallet_not_found, "no wallet with this walletId");
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

struct events_page {
    struct wx_buf *b;
    size_t count;
    size_t limit;
    int64_t last_version;
    bool more;
};

static int page_event(void *arg, const struct es_event *ev)
{
    struct events_page *p = arg;
    if (p->count == p->limit) {
        p->more = true; /* we asked for one more than the page to know this */
        return 0;
    }
    if (p->count > 0)
        wx_buf_addc(p->b, ',');
    es_event_json(p->b, ev);
    p->count++;
    p->last_version = ev->version;
    return 0;
}

/* ?limit= of every list route (API.md: 1-1000, default 50). */
static bool page_limit(struct http_request *req, size_t *limit)
{
    const char *l = http_query(req, "limit");
    int64_t v = WX_PAGE_LIMIT_DEFAULT;
    if (l != NULL && !http_parse_i64(l, 1, WX_PAGE_LIMIT_MAX, &v)) {
        bad_request(req, "limit must be an integer from 1 to 1000");
        return false;
    }
    *limit = (size_t)v;
    return true;
}

/* Page parameters of the per-wallet lists: ?limit= and ?after=. The cursor
 * is the last version seen, as an opaque "v<N>" token. */
static bool page_params(struct http_request *req, size_t *limit, int64_t *after_version)
{
    if (!page_limit(req, limit))
        return false;
    *after_version = 0;
    const char *a = http_query(req, "after");
    if (a != NULL && (a[0] != 'v' || !http_parse_i64(a + 1, 0, INT64_MAX - 1, after_version))) {
        bad_request(req, "after must be a cursor from a previous page");
        return false;
    }
    return true;
}

void wallet_route_events(struct http_request *req)
{
    const struct wallet_service *svc = req->app;
    const char *id = req->params[0];
    if (!id_param_ok(req, "wallet"))
        return;
    size_t limit;
    int64_t after;
    if (!page_params(req, &limit, &after))
        return;
    int64_t from = 1;
    const char *fv = http_query(req, "fromVersion");
    if (fv != NULL && !http_parse_i64(fv, 1, INT64_MAX - 1, &from)) {
        bad_request(req, "fromVersion must be a positive integer");
        return;
    }
    if (after + 1 > from)
        from = after + 1;
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    wallet_stream_id(id, stream);
    int64_t head;
    int err = es_store_stream_version(svc->store, stream, &head);
    if (!err && head == 0) {
        http_reply_problem(req, ES_wallet_not_found, "no wallet with this walletId");
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_adds(&b, "{\"data\":[");
    struct events_page p = {.b = &b, .limit = limit};
    if (!err)
        err = es_store_read_stream(svc->store, stream, from, limit + 1, page_event, &p);
    if (err) {
        wx_buf_free(&b);
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
        return;
    }
    wx_buf_adds(&b, "],\"nextCursor\":");
    if (p.more)
        wx_buf_printf(&b, "\"v%lld\"}", (long long)p.last_version);
    else
        wx_buf_adds(&b, "null}");
    http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

void wallet_route_get_transfer(struct http_request *req)
{
    const struct wallet_service *svc = req->app;
    if (!id_param_ok(req, "transfer"))
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = wallet_query_transfer(svc->projector, req->params[0], &b);
    if (err)
        query_failed(req, err, ES_transfer_not_found, "no transfer with this transferId");
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

void wallet_route_list(struct http_request *req)
{
    const struct wallet_service *svc = req->app;
    const char *owner = http_query(req, "ownerId");
    if (owner == NULL || !http_id_ok(owner)) {
        bad_request(req, "ownerId is required: 1-64 characters of A-Z a-z 0-9 . _ : -");
        return;
    }
    size_t limit;
    if (!page_limit(req, &limit))
        return;
    const char *after = http_query(req, "after");
    if (after != NULL && (after[0] != 'i' || !http_id_ok(after + 1))) {
        bad_request(req, "after must be a cursor from a previous page");
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    int err = wallet_query_by_owner(svc->projector, owner, after ? after + 1 : NULL, limit, &b);
    if (err)
        query_failed(req, err, ES_not_found, NULL);
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

void wallet_route_ledger(struct http_request *req)
{
    const struct wallet_service *svc = req->app;
    size_t limit;
    int64_t after;
    if (!id_param_ok(req, "wallet") || !page_params(req, &limit, &after))
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = wallet_query_ledger(svc->projector, req->params[0], after, limit, &b);
    if (err)
        query_failed(req, err, ES_wallet_not_found, "no wallet with this walletId");
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

void wallet_route_healthz(struct http_request *req)
{
    http_reply(req, 200, "{\"status\":\"ok\"}", 15);
}

/* The read models each query reads, for X-Min-Position. */
static const char *const models_wallets[] = {"wallets", NULL};
static const char *const models_ledger[] = {"wallets", "ledger", NULL};
static const char *const models_transfers[] = {"wallets", "ledger", "transfers", NULL};

const struct http_route wallet_routes[] = {
    {"GET", "/healthz", wallet_route_healthz, 0, NULL},
    {"GET", "/readyz", wallet_route_readyz, 0, NULL},
    {"GET", "/metrics", wallet_route_metrics, 0, NULL},
    {"GET", "/openapi.yaml", wallet_route_openapi, 0, NULL},
    {"POST", "/wallets", wallet_route_create, WX_BODY_BYTES_MAX, NULL},
    {"GET", "/wallets", wallet_route_list, 0, models_wallets},
    {"GET", "/wallets/{id}", wallet_route_get, 0, models_wallets},
    {"GET", "/wallets/{id}/ledger", wallet_route_ledger, 0, models_ledger},
    {"POST", "/wallets/{id}/credit", wallet_route_credit, WX_BODY_BYTES_MAX, NULL},
    {"POST", "/wallets/{id}/debit", wallet_route_debit, WX_BODY_BYTES_MAX, NULL},
    {"GET", "/wallets/{id}/events", wallet_route_events, 0, NULL},
    {"POST", "/transfers", wallet_route_transfer, WX_BODY_BYTES_MAX, NULL},
    {"GET", "/transfers/{id}", wallet_route_get_transfer, 0, models_transfers},
    {"GET", "/admin/projections", wallet_route_admin_projections, 0, NULL},
    {"POST", "/admin/projections/{name}/rebuild", wallet_route_admin_rebuild_projection, 0,
     NULL},
    {"POST", "/admin/wallets/{id}/rebuild", wallet_route_admin_rebuild_wallet, 0, NULL},
    {"GET", "/admin/drift", wallet_route_admin_drift, 0, NULL},
};
const size_t wallet_routes_len = sizeof(wallet_routes) / sizeof(wallet_routes[0]);
