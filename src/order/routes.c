/*
 * Order routes: requests become typed order commands here (every rule
 * that needs no state) and go to the writer (order/commands.c). Queries
 * read the read models (order/query.c); time travel and the events route
 * read the log itself.
 */
#include "order/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "auth/auth.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/uuid.h"
#include "order/order.h"
#include "order/projections.h"
#include "store/store.h"

/* The customer whose orders alone the caller sees; NULL: every order. */
static const char *customer_only(const struct http_request *req)
{
    const struct auth_principal *p = wx_principal(req);
    return auth_sees_all(p) ? NULL : p->subject;
}

/* Whether the caller may act on an order (and pay from a wallet) is
 * decided on the writer thread, where the owners are known. */
static void command_route(struct http_request *req, enum order_command_kind kind)
{
    const struct wx_app *app = req->app;
    const struct auth_principal *p = wx_principal(req);
    const char *order_id = kind == ORDER_CMD_CREATE ? NULL : req->params[0];
    const char *product_id = req->params_len > 1 ? req->params[1] : NULL;
    struct order_command *c;
    const struct es_outcome *outcome;
    const char *detail;
    if (!order_command_parse(kind, order_id, product_id, req->body, req->body_len,
                             app->default_currency, p ? p->subject : NULL, &req->arena, &c,
                             &outcome, &detail)) {
        http_reply_problem(req, outcome, detail);
        return;
    }
    if (kind == ORDER_CMD_CREATE && !auth_owns(p, c->customer_id)) {
        http_reply_problem(req, AUTH_forbidden, "a user token creates orders of its own subject");
        return;
    }
    if (kind == ORDER_CMD_CREATE && c->order_id == NULL) {
        char *id = wx_arena_alloc(&req->arena, WX_UUID_STR_BYTES);
        if (id == NULL || wx_uuid7(wx_clock_now_ms(&wx_clock_system), id) != 0) {
            http_reply_problem(req, ES_internal_error, "no id could be generated");
            return;
        }
        c->order_id = id;
        c->order_id_generated = true;
    }
    wx_submit(req, order_run_command, c);
}

#define COMMAND(fn, kind)                                                                         \
    static void fn(struct http_request *req)                                                      \
    {                                                                                             \
        command_route(req, kind);                                                                 \
    }

COMMAND(route_create, ORDER_CMD_CREATE)
COMMAND(route_add_item, ORDER_CMD_ADD_ITEM)
COMMAND(route_change_item, ORDER_CMD_CHANGE_ITEM)
COMMAND(route_remove_item, ORDER_CMD_REMOVE_ITEM)
COMMAND(route_confirm, ORDER_CMD_CONFIRM)
COMMAND(route_pay, ORDER_CMD_PAY)
COMMAND(route_ship, ORDER_CMD_SHIP)
COMMAND(route_deliver, ORDER_CMD_DELIVER)
COMMAND(route_cancel, ORDER_CMD_CANCEL)
COMMAND(route_rollback, ORDER_CMD_ROLLBACK)

/* ---- queries ---- */

static const char *const models_orders[] = {"orders", NULL};
static const char *const models_stats[] = {"order_stats", NULL};

static void route_get(struct http_request *req)
{
    const struct wx_app *app = req->app;
    const char *id = req->params[0];
    if (!wx_id_param(req, 0, "order"))
        return;
    struct es_fold_until until;
    bool asked;
    if (wx_time_travel(req, &until, &asked)) {
        char stream[WX_STREAM_ID_BYTES_MAX + 1];
        order_stream_id(id, stream);
        struct order_state *s = wx_arena_alloc(&req->arena, sizeof(*s));
        int64_t version;
        if (s == NULL) {
            http_reply_problem(req, ES_internal_error, "out of memory");
            return;
        }
        if (!wx_fold_as_of(req, &order_aggregate, stream, &until, s, &version,
                           ORDER_order_not_found))
            return;
        if (!auth_owns(wx_principal(req), s->customer_id)) {
            http_reply_problem(req, ORDER_order_not_found, "it did not exist then");
            return;
        }
        struct wx_buf b;
        wx_buf_init(&b);
        order_json(&b, id, s, version);
        http_reply_buf(req, 200, &b);
        wx_buf_free(&b);
        return;
    }
    if (asked)
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = order_query_get(app->projector, id, customer_only(req), &b);
    if (err)
        wx_query_failed(req, err, ORDER_order_not_found, "no order with this orderId");
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

static void route_list(struct http_request *req)
{
    const struct wx_app *app = req->app;
    struct order_list_query q = {0};
    const char *status = http_query(req, "status");
    if (status != NULL && !order_status_parse(status, &q.status)) {
        wx_bad_request(req, "status must be pending, confirmed, paid, shipped, delivered or"
                            " cancelled");
        return;
    }
    q.by_status = status != NULL;
    q.customer_id = http_query(req, "customerId");
    if (q.customer_id != NULL && !wx_id_ok(q.customer_id)) {
        wx_bad_request(req, "customerId must be 1-64 characters of A-Z a-z 0-9 . _ : -");
        return;
    }
    /* A user lists its own orders: another customer's list is 403, like
     * another owner's wallets. */
    const char *only = customer_only(req);
    if (only != NULL && q.customer_id != NULL && strcmp(q.customer_id, only) != 0) {
        http_reply_problem(req, AUTH_forbidden, "a user token lists its own orders only");
        return;
    }
    if (only != NULL)
        q.customer_id = only;
    const char *after = http_query(req, "after");
    if (!wx_page_limit(req, &q.limit))
        return;
    if (after != NULL && !order_cursor_parse(after, &q, &req->arena)) {
        wx_bad_request(req, "after must be a cursor from a previous page");
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    int err = order_query_list(app->projector, &q, &b);
    if (err)
        wx_query_failed(req, err, ES_not_found, NULL);
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

/* The customer of an order's stream, from its OrderCreated. */
static int created_customer(void *ctx, const struct es_event *stored)
{
    struct wx_buf scratch;
    wx_buf_init(&scratch);
    struct es_event ev;
    struct order_decoded *d = malloc(sizeof(*d));
    int err = d == NULL ? WX_ERR_NOMEM : es_upcast(stored, &ev, &scratch);
    if (!err)
        err = order_event_decode(&ev, d);
    if (!err && d->e.kind != ORDER_CREATED)
        err = WX_ERR_CORRUPT;
    if (!err)
        snprintf(ctx, WX_ID_BYTES_MAX + 1, "%s", d->customer_id);
    free(d);
    wx_buf_free(&scratch);
    return err;
}

static void route_events(struct http_request *req)
{
    const struct wx_app *app = req->app;
    if (!wx_id_param(req, 0, "order"))
        return;
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    order_stream_id(req->params[0], stream);
    const char *only = customer_only(req);
    if (only != NULL) { /* the log itself says whose it is */
        char customer[WX_ID_BYTES_MAX + 1] = "";
        int err = es_store_read_stream(app->store, stream, 1, 1, created_customer, customer);
        if (err && err != WX_ERR_CORRUPT) {
            http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
            return;
        }
        if (strcmp(customer, only) != 0) {
            http_reply_problem(req, ORDER_order_not_found, "no order with this orderId");
            return;
        }
    }
    wx_route_stream_events(req, stream, ORDER_order_not_found, "no order with this orderId");
}

static void route_stats(struct http_request *req)
{
    const struct wx_app *app = req->app;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = order_query_stats(app->projector, &b);
    if (err)
        wx_query_failed(req, err, ES_not_found, NULL);
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

/* On the admin worker: the rebuild waits for the projector thread and
 * reads the order's whole stream. */
static int rebuild_order(const struct wx_app *app, const char *id, struct wx_buf *out)
{
    int err = order_rebuild_one(app->projector, id);
    return err ? err : order_query_get(app->projector, id, NULL, out);
}

static void route_admin_rebuild(struct http_request *req)
{
    if (!wx_id_param(req, 0, "order"))
        return;
    wx_off_thread_json(req, rebuild_order, req->params[0], 200, ORDER_order_not_found,
                       "no order with this orderId", NULL);
}

/* /orders/statistics comes before /orders/{id}: the first match wins. */
const struct http_route order_routes[] = {
    {"POST", "/orders", route_create, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"GET", "/orders", route_list, 0, models_orders, HTTP_ACCESS_QUERY},
    {"GET", "/orders/statistics", route_stats, 0, models_stats, HTTP_ACCESS_OBSERVE},
    {"GET", "/orders/{id}", route_get, 0, models_orders, HTTP_ACCESS_QUERY},
    {"GET", "/orders/{id}/events", route_events, 0, NULL, HTTP_ACCESS_QUERY},
    {"POST", "/orders/{id}/items", route_add_item, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"PUT", "/orders/{id}/items/{productId}", route_change_item, WX_BODY_BYTES_MAX, NULL,
     HTTP_ACCESS_COMMAND},
    {"DELETE", "/orders/{id}/items/{productId}", route_remove_item, 0, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/orders/{id}/confirm", route_confirm, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/orders/{id}/pay", route_pay, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/orders/{id}/ship", route_ship, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/orders/{id}/deliver", route_deliver, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/orders/{id}/cancel", route_cancel, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/orders/{id}/rollback", route_rollback, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/admin/orders/{id}/rebuild", route_admin_rebuild, 0, NULL, HTTP_ACCESS_ADMIN},
    {NULL, NULL, NULL, 0, NULL, HTTP_ACCESS_ADMIN},
};
