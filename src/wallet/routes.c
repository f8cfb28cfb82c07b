/*
 * Wallet routes: requests become typed wallet commands here (every
 * validation rule that does not need state) and go to the writer
 * (wallet/commands.c). Queries read the read models
 * (wallet/projections.c); time travel (?atVersion, ?asOf) and the events
 * route read the log itself.
 */
#include "wallet/routes.h"

#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "auth/auth.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/uuid.h"
#include "limits.h"
#include "store/store.h"
#include "wallet/projections.h"
#include "wallet/wallet.h"

/* The owner whose wallets alone the caller sees; NULL: every wallet. */
static const char *owner_only(const struct http_request *req)
{
    const struct auth_principal *p = wx_principal(req);
    return auth_sees_all(p) ? NULL : p->subject;
}

/* Parses the body into a command and submits it, or answers why not.
 * Whether the caller may act on the wallets is decided on the writer
 * thread, where their owners are known (wallet/commands.c). */
static void command_route(struct http_request *req, enum wallet_command_kind kind)
{
    const struct wx_app *app = req->app;
    const struct auth_principal *p = wx_principal(req);
    struct wallet_command *c;
    const struct es_outcome *outcome;
    const char *detail;
    if (!wallet_command_parse(kind, req->params_len > 0 ? req->params[0] : NULL, req->body,
                              req->body_len, app->default_currency, p ? p->subject : NULL,
                              &req->arena, &c, &outcome, &detail)) {
        http_reply_problem(req, outcome, detail);
        return;
    }
    if (kind == WALLET_CMD_CREATE && !auth_owns(p, c->owner_id)) {
        http_reply_problem(req, AUTH_forbidden, "a user token creates wallets of its own subject");
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
    wx_submit(req, wallet_run_command, c);
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

static const char *const models_wallets[] = {"wallets", NULL};
static const char *const models_ledger[] = {"wallets", "ledger", NULL};
static const char *const models_transfers[] = {"wallets", "ledger", "transfers", NULL};

void wallet_route_get(struct http_request *req)
{
    const struct wx_app *app = req->app;
    const char *id = req->params[0];
    if (!wx_id_param(req, 0, "wallet"))
        return;
    struct es_fold_until until;
    bool asked;
    if (wx_time_travel(req, &until, &asked)) {
        char stream[WX_STREAM_ID_BYTES_MAX + 1];
        wallet_stream_id(id, stream);
        struct wallet_state s;
        int64_t version;
        if (!wx_fold_as_of(req, &wallet_aggregate, stream, &until, &s, &version,
                           WALLET_wallet_not_found))
            return;
        if (!auth_owns(wx_principal(req), s.owner_id)) {
            http_reply_problem(req, WALLET_wallet_not_found, "it did not exist then");
            return;
        }
        struct wx_buf b;
        wx_buf_init(&b);
        wallet_json(&b, id, &s, version);
        http_reply_buf(req, 200, &b);
        wx_buf_free(&b);
        return;
    }
    if (asked)
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = wallet_query_get(app->projector, id, owner_only(req), &b);
    if (err)
        wx_query_failed(req, err, WALLET_wallet_not_found, "no wallet with this walletId");
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

/* The owner of a wallet's stream, from its WalletCreated. */
static int created_owner(void *ctx, const struct es_event *ev)
{
    char text[WALLET_EVENT_DATA_BYTES_MAX];
    struct wallet_event e;
    if (wallet_event_decode(ev, text, sizeof(text), &e) != 0 || e.kind != WALLET_CREATED)
        return WX_ERR_CORRUPT;
    snprintf(ctx, WX_ID_BYTES_MAX + 1, "%s", e.owner_id);
    return 0;
}

void wallet_route_events(struct http_request *req)
{
    const struct wx_app *app = req->app;
    if (!wx_id_param(req, 0, "wallet"))
        return;
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    wallet_stream_id(req->params[0], stream);
    const char *only = owner_only(req);
    if (only != NULL) { /* the log itself says whose it is, however far the read side is */
        char owner[WX_ID_BYTES_MAX + 1] = "";
        int err = es_store_read_stream(app->store, stream, 1, 1, created_owner, owner);
        if (err && err != WX_ERR_CORRUPT) {
            http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
            return;
        }
        if (strcmp(owner, only) != 0) {
            http_reply_problem(req, WALLET_wallet_not_found, "no wallet with this walletId");
            return;
        }
    }
    wx_route_stream_events(req, stream, WALLET_wallet_not_found, "no wallet with this walletId");
}

void wallet_route_get_transfer(struct http_request *req)
{
    const struct wx_app *app = req->app;
    if (!wx_id_param(req, 0, "transfer"))
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = wallet_query_transfer(app->projector, req->params[0], owner_only(req), &b);
    if (err)
        wx_query_failed(req, err, WALLET_transfer_not_found, "no transfer with this transferId");
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

void wallet_route_list(struct http_request *req)
{
    const struct wx_app *app = req->app;
    const struct auth_principal *p = wx_principal(req);
    const char *owner = http_query(req, "ownerId");
    if (owner == NULL && p != NULL)
        owner = p->subject; /* the caller's own, unless it names another */
    if (owner == NULL || !wx_id_ok(owner)) {
        wx_bad_request(req, "ownerId is required: 1-64 characters of A-Z a-z 0-9 . _ : -");
        return;
    }
    if (!auth_owns(p, owner)) {
        http_reply_problem(req, AUTH_forbidden, "a user token lists its own wallets only");
        return;
    }
    size_t limit;
    if (!wx_page_limit(req, &limit))
        return;
    const char *after = http_query(req, "after");
    if (after != NULL && (after[0] != 'i' || !wx_id_ok(after + 1))) {
        wx_bad_request(req, "after must be a cursor from a previous page");
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    int err = wallet_query_by_owner(app->projector, owner, after ? after + 1 : NULL, limit, &b);
    if (err)
        wx_query_failed(req, err, ES_not_found, NULL);
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

void wallet_route_ledger(struct http_request *req)
{
    const struct wx_app *app = req->app;
    size_t limit;
    int64_t after;
    if (!wx_id_param(req, 0, "wallet") || !wx_page_versions(req, &limit, &after))
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = wallet_query_ledger(app->projector, req->params[0], owner_only(req), after, limit,
                                  &b);
    if (err)
        wx_query_failed(req, err, WALLET_wallet_not_found, "no wallet with this walletId");
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

/* On the admin worker: the rebuild waits for the projector thread and
 * reads the wallet's whole stream. */
static int rebuild_wallet(const struct wx_app *app, const char *id, struct wx_buf *out)
{
    int err = wallet_rebuild_one(app->projector, id);
    return err ? err : wallet_query_get(app->projector, id, NULL, out);
}

void wallet_route_admin_rebuild(struct http_request *req)
{
    if (!wx_id_param(req, 0, "wallet"))
        return;
    wx_off_thread_json(req, rebuild_wallet, req->params[0], 200, WALLET_wallet_not_found,
                       "no wallet with this walletId", NULL);
}

const struct http_route wallet_routes[] = {
    {"POST", "/wallets", wallet_route_create, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"GET", "/wallets", wallet_route_list, 0, models_wallets, HTTP_ACCESS_QUERY},
    {"GET", "/wallets/{id}", wallet_route_get, 0, models_wallets, HTTP_ACCESS_QUERY},
    {"GET", "/wallets/{id}/ledger", wallet_route_ledger, 0, models_ledger, HTTP_ACCESS_QUERY},
    {"POST", "/wallets/{id}/credit", wallet_route_credit, WX_BODY_BYTES_MAX, NULL,
     HTTP_ACCESS_COMMAND},
    {"POST", "/wallets/{id}/debit", wallet_route_debit, WX_BODY_BYTES_MAX, NULL,
     HTTP_ACCESS_COMMAND},
    {"GET", "/wallets/{id}/events", wallet_route_events, 0, NULL, HTTP_ACCESS_QUERY},
    {"POST", "/transfers", wallet_route_transfer, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"GET", "/transfers/{id}", wallet_route_get_transfer, 0, models_transfers, HTTP_ACCESS_QUERY},
    {"POST", "/admin/wallets/{id}/rebuild", wallet_route_admin_rebuild, 0, NULL, HTTP_ACCESS_ADMIN},
    {NULL, NULL, NULL, 0, NULL, HTTP_ACCESS_ADMIN},
};
