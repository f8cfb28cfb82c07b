/*
 * Order read models fed by the projector, and the queries on them. Every
 * apply is idempotent: a row carries the version of the last event it
 * took, and an event at or below it is skipped.
 */
#include "order/projections.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/money.h"

/* ---- decoding each event once for both consumers ---- */

static int codec_decode(const struct es_event *ev, void **out)
{
    *out = NULL;
    struct order_decoded *d = malloc(sizeof(*d));
    if (d == NULL)
        return WX_ERR_NOMEM;
    int err = order_event_decode(ev, d);
    if (err) {
        free(d);
        return err;
    }
    *out = d;
    return 0;
}

static void codec_release(void *decoded)
{
    free(decoded);
}

const struct es_event_codec order_codec = {.decode = codec_decode, .release = codec_release};

static const char *const categories[] = {ORDER_CATEGORY, NULL};

/* ---- orders: a row per order and a row per item ---- */

enum {
    O_VERSION,
    O_INSERT,
    O_ITEM_PUT,
    O_ITEM_NEXT,
    O_ITEM_CHANGE,
    O_ITEM_DELETE,
    O_ITEMS_CLEAR,
    O_UPDATE,
};

static const char *const orders_sql[] = {
    [O_VERSION] = "SELECT version, status FROM orders{s} WHERE id = ?1",
    [O_INSERT] = "INSERT INTO orders{s}(id, customer_id, currency, status, total_minor, paid_from,"
                 " version, created_at_ms, updated_at_ms, created_by) VALUES (?1, ?2, ?3,"
                 " 'pending', 0, NULL, 0, ?4, ?4, ?5)",
    [O_ITEM_PUT] = "INSERT INTO order_items{s}(order_id, position, product_id, quantity,"
                   " unit_price_minor, line_total_minor) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [O_ITEM_NEXT] = "SELECT coalesce(max(position) + 1, 0) FROM order_items{s} WHERE order_id = ?1",
    [O_ITEM_CHANGE] = "UPDATE order_items{s} SET quantity = ?3, unit_price_minor = ?4,"
                      " line_total_minor = ?5 WHERE order_id = ?1 AND product_id = ?2",
    [O_ITEM_DELETE] = "DELETE FROM order_items{s} WHERE order_id = ?1 AND product_id = ?2",
    [O_ITEMS_CLEAR] = "DELETE FROM order_items{s} WHERE order_id = ?1",
    /* The total is the items' sum, taken where the items are. */
    [O_UPDATE] = "UPDATE orders{s} SET status = ?2, paid_from = coalesce(?3, paid_from),"
                 " total_minor = (SELECT coalesce(sum(line_total_minor), 0) FROM order_items{s}"
                 " WHERE order_id = ?1), version = ?4, updated_at_ms = ?5, updated_by = ?6"
                 " WHERE id = ?1",
    NULL,
};

/* The row's version (-1 when the order has no row) and status. */
static int row_get(struct es_proj_tx *tx, const char *order_id, int64_t *version,
                   enum order_status *status)
{
    struct rm_stmt *st = es_proj_stmt(tx, O_VERSION);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, order_id);
    *version = -1;
    *status = ORDER_PENDING;
    bool row = false;
    int err = rm_step(st, &row);
    if (!err && row) {
        *version = rm_column_i64(st, 0);
        if (!order_status_parse(rm_column_text(st, 1), status))
            err = WX_ERR_CORRUPT;
    }
    rm_reset(st);
    return err;
}

static int put_item(struct es_proj_tx *tx, const char *order_id, int64_t position,
                    const struct order_item *it)
{
    struct rm_stmt *st = es_proj_stmt(tx, O_ITEM_PUT);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, order_id);
    rm_bind_i64(st, 2, position);
    rm_bind_text(st, 3, it->product_id);
    rm_bind_i64(st, 4, it->quantity);
    rm_bind_i64(st, 5, it->unit_price_minor);
    rm_bind_i64(st, 6, it->line_total_minor);
    return rm_run(st);
}

static int put_items(struct es_proj_tx *tx, const char *order_id, const struct order_event *e)
{
    int err = 0;
    for (size_t i = 0; i < e->items_len && !err; i++)
        err = put_item(tx, order_id, (int64_t)i, &e->items[i]);
    return err;
}

static int run_with_item(struct es_proj_tx *tx, int id, const char *order_id,
                         const struct order_item *it)
{
    struct rm_stmt *st = es_proj_stmt(tx, id);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, order_id);
    rm_bind_text(st, 2, it->product_id);
    if (id == O_ITEM_CHANGE) {
        rm_bind_i64(st, 3, it->quantity);
        rm_bind_i64(st, 4, it->unit_price_minor);
        rm_bind_i64(st, 5, it->line_total_minor);
    }
    return rm_run(st);
}

/* The items part of an event, before the row's own update. */
static int apply_items(struct es_proj_tx *tx, const struct order_event *e)
{
    int64_t next = 0;
    struct rm_stmt *st;
    int err = 0;
    switch (e->kind) {
    case ORDER_CREATED:
        return put_items(tx, e->order_id, e);
    case ORDER_ITEM_ADDED:
        st = es_proj_stmt(tx, O_ITEM_NEXT);
        if (st == NULL)
            return WX_ERR_IO;
        rm_bind_text(st, 1, e->order_id);
        err = rm_run_i64(st, &next);
        return err ? err : put_item(tx, e->order_id, next, &e->item);
    case ORDER_ITEM_CHANGED:
        return run_with_item(tx, O_ITEM_CHANGE, e->order_id, &e->item);
    case ORDER_ITEM_REMOVED:
        return run_with_item(tx, O_ITEM_DELETE, e->order_id, &e->item);
    case ORDER_ROLLED_BACK:
        st = es_proj_stmt(tx, O_ITEMS_CLEAR);
        if (st == NULL)
            return WX_ERR_IO;
        rm_bind_text(st, 1, e->order_id);
        err = rm_run(st);
        return err ? err : put_items(tx, e->order_id, e);
    default:
        return 0;
    }
}

/* The status an event leaves the order in, given the one it had. */
static enum order_status status_after(const struct order_event *e, enum order_status before)
{
    switch (e->kind) {
    case ORDER_CREATED:
        return ORDER_PENDING;
    case ORDER_CONFIRMED_EV:
        return ORDER_CONFIRMED;
    case ORDER_PAID_EV:
        return ORDER_PAID;
    case ORDER_SHIPPED_EV:
        return ORDER_SHIPPED;
    case ORDER_DELIVERED_EV:
        return ORDER_DELIVERED;
    case ORDER_CANCELLED_EV:
        return ORDER_CANCELLED;
    case ORDER_ROLLED_BACK:
        return e->status;
    default:
        return before;
    }
}

static int apply_orders(struct es_proj_tx *tx, const struct es_event *ev, const void *decoded)
{
    const struct order_event *e = &((const struct order_decoded *)decoded)->e;
    int64_t have;
    enum order_status before;
    int err = row_get(tx, e->order_id, &have, &before);
    if (err)
        return err;
    if (have >= ev->version)
        return 0; /* applied already */
    if (have + 1 != ev->version && !(have < 0 && ev->version == 1))
        return WX_ERR_CORRUPT; /* a gap: the read model missed an event */
    struct rm_stmt *st;
    if (e->kind == ORDER_CREATED) {
        st = es_proj_stmt(tx, O_INSERT);
        if (st == NULL)
            return WX_ERR_IO;
        rm_bind_text(st, 1, e->order_id);
        rm_bind_text(st, 2, e->customer_id);
        rm_bind_text(st, 3, e->currency);
        rm_bind_i64(st, 4, ev->occurred_at_ms);
        rm_bind_text(st, 5, e->actor); /* NULL binds NULL */
        err = rm_run(st);
    }
    if (!err)
        err = apply_items(tx, e);
    if (err)
        return err;
    st = es_proj_stmt(tx, O_UPDATE);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e->order_id);
    rm_bind_text(st, 2, order_status_name(status_after(e, before)));
    if (e->kind == ORDER_PAID_EV)
        rm_bind_text(st, 3, e->wallet_id);
    rm_bind_i64(st, 4, ev->version);
    rm_bind_i64(st, 5, ev->occurred_at_ms);
    rm_bind_text(st, 6, e->actor);
    return rm_run(st);
}

/* createdBy and updatedBy came with authentication (issue 21). */
static const struct es_column_added orders_columns_added[] = {
    {"orders{s}", "created_by", "TEXT"},
    {"orders{s}", "updated_by", "TEXT"},
    {NULL, NULL, NULL},
};

const struct es_consumer order_consumer_orders = {
    .name = "orders",
    .categories = categories,
    .codec = &order_codec,
    .schema = "CREATE TABLE IF NOT EXISTS orders{s}(id " RM_TEXT " PRIMARY KEY,"
              " customer_id " RM_TEXT " NOT NULL, currency TEXT NOT NULL,"
              " status " RM_TEXT " NOT NULL, total_minor BIGINT NOT NULL, paid_from TEXT,"
              " version BIGINT NOT NULL, created_at_ms BIGINT NOT NULL,"
              " updated_at_ms BIGINT NOT NULL, created_by TEXT, updated_by TEXT)"
              RM_WITHOUT_ROWID ";"
              "CREATE INDEX IF NOT EXISTS orders{s}_created ON orders{s}(created_at_ms, id);"
              "CREATE INDEX IF NOT EXISTS orders{s}_status ON orders{s}(status, created_at_ms, id);"
              "CREATE INDEX IF NOT EXISTS orders{s}_customer"
              " ON orders{s}(customer_id, created_at_ms, id);"
              "CREATE TABLE IF NOT EXISTS order_items{s}(order_id " RM_TEXT " NOT NULL,"
              " position BIGINT NOT NULL, product_id " RM_TEXT " NOT NULL,"
              " quantity BIGINT NOT NULL, unit_price_minor BIGINT NOT NULL,"
              " line_total_minor BIGINT NOT NULL, PRIMARY KEY(order_id, position))"
              RM_WITHOUT_ROWID ";"
              "CREATE UNIQUE INDEX IF NOT EXISTS order_items{s}_product"
              " ON order_items{s}(order_id, product_id);",
    .columns_added = orders_columns_added,
    .drop = "DROP TABLE IF EXISTS orders{s}; DROP TABLE IF EXISTS order_items{s};",
    .sql = orders_sql,
    .apply = apply_orders,
};

/* ---- statistics: counts by status, revenue by currency ---- */

enum { S_ROW, S_PUT_ROW, S_COUNT, S_REVENUE_GET, S_REVENUE_PUT };

static const char *const stats_sql[] = {
    [S_ROW] = "SELECT status, currency, revenue_minor, version FROM order_stats_orders{s}"
              " WHERE order_id = ?1",
    [S_PUT_ROW] = "INSERT INTO order_stats_orders{s}(order_id, status, currency,"
                  " revenue_minor, version) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (order_id)"
                  " DO UPDATE SET status = excluded.status, currency = excluded.currency,"
                  " revenue_minor = excluded.revenue_minor, version = excluded.version",
    [S_COUNT] = "INSERT INTO order_status_counts{s}(status, orders) VALUES (?1, ?2)"
                " ON CONFLICT (status) DO UPDATE SET orders = order_status_counts{s}.orders"
                " + excluded.orders",
    [S_REVENUE_GET] = "SELECT revenue, orders FROM order_revenue{s} WHERE currency = ?1",
    [S_REVENUE_PUT] = "INSERT INTO order_revenue{s}(currency, revenue, orders)"
                      " VALUES (?1, ?2, ?3) ON CONFLICT (currency) DO UPDATE"
                      " SET revenue = excluded.revenue, orders = excluded.orders",
    NULL,
};

/* One order as the statistics know it. */
struct stats_row {
    bool exists;
    enum order_status status;
    char currency[WX_CURRENCY_BYTES + 1];
    int64_t revenue_minor; /* what it paid: its part of the revenue while counted */
    int64_t version;
};

/* Revenue counts paid, shipped and delivered orders (API.md), free ones
 * included in the number of orders the average divides by. */
static bool in_revenue(enum order_status s)
{
    return s == ORDER_PAID || s == ORDER_SHIPPED || s == ORDER_DELIVERED;
}

static int stats_row_get(struct es_proj_tx *tx, const char *order_id, struct stats_row *r)
{
    memset(r, 0, sizeof(*r));
    struct rm_stmt *st = es_proj_stmt(tx, S_ROW);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, order_id);
    bool row = false;
    int err = rm_step(st, &row);
    if (!err && row) {
        r->exists = true;
        if (!order_status_parse(rm_column_text(st, 0), &r->status))
            err = WX_ERR_CORRUPT;
        snprintf(r->currency, sizeof(r->currency), "%s", rm_column_text(st, 1));
        r->revenue_minor = rm_column_i64(st, 2);
        r->version = rm_column_i64(st, 3);
    }
    rm_reset(st);
    return err;
}

static int count_add(struct es_proj_tx *tx, enum order_status s, int64_t delta)
{
    struct rm_stmt *st = es_proj_stmt(tx, S_COUNT);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, order_status_name(s));
    rm_bind_i64(st, 2, delta);
    return rm_run(st);
}

/* Revenue is kept as decimal text of a 128-bit sum: exact however many
 * orders a currency has. */
static int revenue_add(struct es_proj_tx *tx, const char *currency, int64_t amount_minor,
                       int64_t orders_delta)
{
    struct rm_stmt *st = es_proj_stmt(tx, S_REVENUE_GET);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, currency);
    __int128 revenue = 0;
    int64_t orders = 0;
    int err = 0;
    bool row = false;
    err = rm_step(st, &row);
    if (!err && row) {
        if (!wx_wide_parse(rm_column_text(st, 0), &revenue))
            err = WX_ERR_CORRUPT;
        orders = rm_column_i64(st, 1);
    }
    rm_reset(st);
    if (err)
        return err;
    revenue += amount_minor;
    orders += orders_delta;
    struct wx_buf b;
    wx_buf_init(&b);
    wx_wide_format(&b, revenue);
    st = es_proj_stmt(tx, S_REVENUE_PUT);
    if (st == NULL || !wx_buf_ok(&b)) {
        wx_buf_free(&b);
        return st == NULL ? WX_ERR_IO : WX_ERR_NOMEM;
    }
    rm_bind_text(st, 1, currency);
    rm_bind_text(st, 2, b.data);
    rm_bind_i64(st, 3, orders);
    err = rm_run(st);
    wx_buf_free(&b);
    return err;
}

static int apply_stats(struct es_proj_tx *tx, const struct es_event *ev, const void *decoded)
{
    const struct order_event *e = &((const struct order_decoded *)decoded)->e;
    struct stats_row r;
    int err = stats_row_get(tx, e->order_id, &r);
    if (err || (r.exists && r.version >= ev->version))
        return err; /* applied already */
    if (!r.exists && e->kind != ORDER_CREATED)
        return WX_ERR_CORRUPT;
    struct stats_row next = r;
    next.exists = true;
    next.version = ev->version;
    if (e->kind == ORDER_CREATED)
        snprintf(next.currency, sizeof(next.currency), "%s", e->currency);
    next.status = status_after(e, r.status);
    if (e->kind == ORDER_PAID_EV)
        next.revenue_minor = e->amount_minor;
    if (!r.exists)
        err = count_add(tx, next.status, 1);
    else if (next.status != r.status && (err = count_add(tx, r.status, -1)) == 0)
        err = count_add(tx, next.status, 1);
    /* An order counts in revenue from its payment until a cancel. */
    bool was_revenue = r.exists && in_revenue(r.status);
    bool is_revenue = in_revenue(next.status);
    if (!err && is_revenue && !was_revenue)
        err = revenue_add(tx, next.currency, next.revenue_minor, 1);
    else if (!err && was_revenue && !is_revenue)
        err = revenue_add(tx, r.currency, -r.revenue_minor, -1);
    if (err)
        return err;
    struct rm_stmt *st = es_proj_stmt(tx, S_PUT_ROW);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e->order_id);
    rm_bind_text(st, 2, order_status_name(next.status));
    rm_bind_text(st, 3, next.currency);
    rm_bind_i64(st, 4, next.revenue_minor);
    rm_bind_i64(st, 5, next.version);
    return rm_run(st);
}

int order_stats_forget(struct es_proj_tx *tx, void *order_id)
{
    struct stats_row r;
    int err = stats_row_get(tx, order_id, &r);
    if (err || !r.exists)
        return err;
    err = count_add(tx, r.status, -1);
    if (!err && in_revenue(r.status))
        err = revenue_add(tx, r.currency, -r.revenue_minor, -1);
    struct rm_stmt *st = NULL;
    if (!err)
        err = es_proj_prepare(tx->conn, "DELETE FROM order_stats_orders{s} WHERE order_id = ?1",
                              tx->set, &st);
    if (!err) {
        rm_bind_text(st, 1, order_id);
        err = rm_run(st);
    }
    rm_finalize(st);
    return err;
}

const struct es_consumer order_consumer_stats = {
    .name = "order_stats",
    .categories = categories,
    .codec = &order_codec,
    .schema = "CREATE TABLE IF NOT EXISTS order_stats_orders{s}(order_id " RM_TEXT " PRIMARY KEY,"
              " status TEXT NOT NULL, currency TEXT NOT NULL, revenue_minor BIGINT NOT NULL,"
              " version BIGINT NOT NULL)" RM_WITHOUT_ROWID ";"
              "CREATE TABLE IF NOT EXISTS order_status_counts{s}(status " RM_TEXT " PRIMARY KEY,"
              " orders BIGINT NOT NULL)" RM_WITHOUT_ROWID ";"
              "CREATE TABLE IF NOT EXISTS order_revenue{s}(currency " RM_TEXT " PRIMARY KEY,"
              " revenue TEXT NOT NULL, orders BIGINT NOT NULL)" RM_WITHOUT_ROWID ";",
    .drop = "DROP TABLE IF EXISTS order_stats_orders{s}; DROP TABLE IF EXISTS"
            " order_status_counts{s}; DROP TABLE IF EXISTS order_revenue{s};",
    .sql = stats_sql,
    .apply = apply_stats,
};

const struct es_consumer *const order_consumers[] = {
    &order_consumer_orders,
    &order_consumer_stats,
    NULL,
};
