/*
 * Order routes: requests become typed order commands here (every rule
 * that needs no state) and go to the writer (order/commands.c). Queries
 * read the read models (order/query.c); time travel and the events route
 * read the log itself.
 */
#include "order/routes.h"

#include <string.h>

#include "app/app.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/uuid.h"
#include "order/order.h"
#include "order/projections.h"

static void command_route(struct http_request *req, enum order_command_kind kind)
{
    const struct wx_app *app = req->app;
    const char *order_id = kind == ORDER_CMD_CREATE ? NULL : req->params[0];
    const char *product_id = req->params_len > 1 ? req->params[1] : NULL;
    struct order_command *c;
    const struct es_outcome *outcome;
    const char *detail;
    if (!order_command_parse(kind, order_id, product_id, req->body, req->body_len,
                             app->default_currency, &req->arena, &c, &outcome, &detail)) {
        http_reply_problem(req, outcome, detail);
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
    int err = order_query_get(app->projector, id, &b);
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

static void route_events(struct http_request *req)
{
    if (!wx_id_param(req, 0, "order"))
        return;
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    order_stream_id(req->params[0], stream);
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
    return err ? err : order_query_get(app->projector, id, out);
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
