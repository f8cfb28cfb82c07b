/*
 * Queries on the order read models (order/projections.c): one order, a
 * page of orders newest first, and the statistics. Each runs in one read
 * transaction on the live table sets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/money.h"
#include "http/http.h"
#include "order/projections.h"

#define ORDER_COLUMNS                                                                             \
    "id, customer_id, currency, status, paid_from, version, created_at_ms, updated_at_ms,"        \
    " created_by, updated_by"

/* The order row at the statement's cursor into s (items not yet). */
static int order_from_row(struct rm_stmt *st, struct order_state *s, int64_t *version)
{
    order_state_init(s);
    s->exists = true;
    const char *customer = rm_column_text(st, 1);
    const char *currency = rm_column_text(st, 2);
    if (strlen(customer) > WX_ID_BYTES_MAX || wx_currency_exponent(currency) < 0 ||
        !order_status_parse(rm_column_text(st, 3), &s->status))
        return WX_ERR_CORRUPT;
    snprintf(s->customer_id, sizeof(s->customer_id), "%s", customer);
    snprintf(s->currency, sizeof(s->currency), "%s", currency);
    if (!rm_column_null(st, 4))
        snprintf(s->paid_from, sizeof(s->paid_from), "%s",
                 rm_column_text(st, 4));
    *version = rm_column_i64(st, 5);
    s->created_at_ms = rm_column_i64(st, 6);
    s->updated_at_ms = rm_column_i64(st, 7);
    const char *created_by = rm_column_text(st, 8);
    const char *updated_by = rm_column_text(st, 9);
    if ((created_by && strlen(created_by) > WX_ID_BYTES_MAX) ||
        (updated_by && strlen(updated_by) > WX_ID_BYTES_MAX))
        return WX_ERR_CORRUPT;
    snprintf(s->created_by, sizeof(s->created_by), "%s", created_by ? created_by : "");
    snprintf(s->updated_by, sizeof(s->updated_by), "%s", updated_by ? updated_by : "");
    return 0;
}

/* An order's items, in their order, into s (whose total they make). */
static int read_items(struct rm_stmt *items, const char *order_id, struct order_state *s)
{
    rm_reset(items);
    rm_bind_text(items, 1, order_id);
    s->items_len = 0;
    s->total_minor = 0;
    bool row;
    int err;
    while ((err = rm_step(items, &row)) == 0 && row) {
        if (s->items_len == ORDER_ITEMS_MAX)
            return WX_ERR_CORRUPT;
        struct order_item *it = &s->items[s->items_len++];
        const char *product = rm_column_text(items, 0);
        if (strlen(product) > WX_ID_BYTES_MAX)
            return WX_ERR_CORRUPT;
        snprintf(it->product_id, sizeof(it->product_id), "%s", product);
        it->quantity = rm_column_i64(items, 1);
        it->unit_price_minor = rm_column_i64(items, 2);
        it->line_total_minor = rm_column_i64(items, 3);
        if (__builtin_add_overflow(s->total_minor, it->line_total_minor, &s->total_minor))
            return WX_ERR_CORRUPT;
    }
    return err;
}

static int prepare_items(struct es_read *r, struct rm_stmt **st)
{
    return es_projector_prepare_live(r, "orders",
                                     "SELECT product_id, quantity, unit_price_minor,"
                                     " line_total_minor FROM order_items{s} WHERE order_id = ?1"
                                     " ORDER BY position",
                                     st, NULL);
}

int order_query_get(struct es_projector *p, const char *order_id, const char *customer_only,
                    struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st = NULL, *items = NULL;
    struct order_state *s = malloc(sizeof(*s));
    err = s == NULL ? WX_ERR_NOMEM : 0;
    if (!err)
        err = es_projector_prepare_live(
            r, "orders", "SELECT " ORDER_COLUMNS " FROM orders{s} WHERE id = ?1", &st, NULL);
    if (!err)
        err = prepare_items(r, &items);
    if (!err) {
        rm_bind_text(st, 1, order_id);
        bool row = false;
        err = rm_step(st, &row);
        int64_t version = 0;
        if (!err)
            err = row ? order_from_row(st, s, &version) : WX_ERR_NOT_FOUND;
        /* Another customer's order is, to this caller, no order at all. */
        if (!err && customer_only != NULL && strcmp(s->customer_id, customer_only) != 0)
            err = WX_ERR_NOT_FOUND;
        if (!err)
            err = read_items(items, order_id, s);
        if (!err)
            order_json(out, order_id, s, version);
    }
    rm_finalize(st);
    rm_finalize(items);
    free(s);
    es_projector_read_end(p, r);
    return err;
}

bool order_cursor_parse(const char *text, struct order_list_query *q, struct wx_arena *arena)
{
    const char *tilde = strchr(text, '~');
    if (tilde == NULL || tilde == text || (size_t)(tilde - text) > 20)
        return false;
    char ms[24];
    memcpy(ms, text, (size_t)(tilde - text));
    ms[tilde - text] = '\0';
    if (!http_parse_i64(ms, INT64_MIN, INT64_MAX, &q->after_created_ms) || !wx_id_ok(tilde + 1))
        return false;
    q->after_id = wx_arena_strdup(arena, tilde + 1);
    q->after = q->after_id != NULL;
    return q->after;
}

/* The page's SQL: one index fits each filter, newest first. */
static const char *list_sql(const struct order_list_query *q)
{
    static const char *const sql[2][2] = {
        {"SELECT " ORDER_COLUMNS " FROM orders{s} WHERE (created_at_ms, id) < (?3, ?4)"
         " ORDER BY created_at_ms DESC, id DESC LIMIT ?5",
         "SELECT " ORDER_COLUMNS " FROM orders{s} WHERE customer_id = ?2 AND"
         " (created_at_ms, id) < (?3, ?4) ORDER BY created_at_ms DESC, id DESC LIMIT ?5"},
        {"SELECT " ORDER_COLUMNS " FROM orders{s} WHERE status = ?1 AND"
         " (created_at_ms, id) < (?3, ?4) ORDER BY created_at_ms DESC, id DESC LIMIT ?5",
         "SELECT " ORDER_COLUMNS " FROM orders{s}{sqlite: INDEXED BY orders{s}_customer}"
         " WHERE customer_id = ?2 AND status = ?1 AND (created_at_ms, id) < (?3, ?4)"
         " ORDER BY created_at_ms DESC, id DESC LIMIT ?5"},
    };
    return sql[q->by_status][q->customer_id != NULL];
}

static int list_rows(struct rm_stmt *st, struct rm_stmt *items, const struct order_list_query *q,
                     struct order_state *s, struct wx_buf *out)
{
    size_t n = 0;
    bool more = false;
    char last_id[WX_ID_BYTES_MAX + 1] = "";
    int64_t last_ms = 0;
    int err = 0;
    bool row;
    wx_buf_adds(out, "{\"data\":[");
    while (!err && (err = rm_step(st, &row)) == 0 && row) {
        if (n == q->limit || (n > 0 && out->len >= WX_PAGE_BYTES_MAX)) {
            more = true;
            break;
        }
        int64_t version;
        const char *id = rm_column_text(st, 0);
        snprintf(last_id, sizeof(last_id), "%s", id);
        last_ms = rm_column_i64(st, 6);
        err = order_from_row(st, s, &version);
        if (!err)
            err = read_items(items, last_id, s);
        if (!err) {
            if (n++ > 0)
                wx_buf_addc(out, ',');
            order_json(out, last_id, s, version);
        }
    }
    wx_buf_adds(out, "],\"nextCursor\":");
    if (more)
        wx_buf_printf(out, "\"%lld~%s\"}", (long long)last_ms, last_id);
    else
        wx_buf_adds(out, "null}");
    return err;
}

int order_query_list(struct es_projector *p, const struct order_list_query *q,
                     struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st = NULL, *items = NULL;
    struct order_state *s = malloc(sizeof(*s));
    err = s == NULL ? WX_ERR_NOMEM : 0;
    if (!err)
        err = es_projector_prepare_live(r, "orders", list_sql(q), &st, NULL);
    if (!err)
        err = prepare_items(r, &items);
    if (!err) {
        if (q->by_status)
            rm_bind_text(st, 1, order_status_name(q->status));
        if (q->customer_id != NULL)
            rm_bind_text(st, 2, q->customer_id);
        /* No cursor: (created, id) < (the largest time, NULL) holds for
         * every row, since no order was created at INT64_MAX ms. */
        rm_bind_i64(st, 3, q->after ? q->after_created_ms : INT64_MAX);
        if (q->after)
            rm_bind_text(st, 4, q->after_id);
        rm_bind_i64(st, 5, (int64_t)q->limit + 1);
        err = list_rows(st, items, q, s, out);
    }
    rm_finalize(st);
    rm_finalize(items);
    free(s);
    es_projector_read_end(p, r);
    return err;
}

/* "revenue" and "averageOrderValue" (revenue over the orders that make it,
 * rounded half-even to the currency's minor digits), one member a
 * currency with at least one such order, then the closing brace. */
static int order_stats_money(struct rm_stmt *revenue, struct wx_buf *out)
{
    struct {
        char currency[WX_CURRENCY_BYTES + 1];
        __int128 revenue;
        int64_t orders;
    } rows[ORDER_STATS_CURRENCIES_MAX];
    size_t n = 0;
    bool row;
    int err;
    while ((err = rm_step(revenue, &row)) == 0 && row) {
        const char *currency = rm_column_text(revenue, 0);
        if (n == ORDER_STATS_CURRENCIES_MAX || wx_currency_exponent(currency) < 0 ||
            !wx_wide_parse(rm_column_text(revenue, 1), &rows[n].revenue) ||
            rows[n].revenue < 0 || rm_column_i64(revenue, 2) <= 0)
            return WX_ERR_CORRUPT;
        snprintf(rows[n].currency, sizeof(rows[n].currency), "%s", currency);
        rows[n++].orders = rm_column_i64(revenue, 2);
    }
    if (err)
        return err;
    for (int part = 0; part < 2; part++) {
        wx_buf_adds(out, part == 0 ? "},\"revenue\":{" : "},\"averageOrderValue\":{");
        for (size_t i = 0; i < n; i++) {
            wx_buf_printf(out, "%s\"%s\":", i ? "," : "", rows[i].currency);
            __int128 v = part == 0 ? rows[i].revenue
                                   : wx_div_half_even(rows[i].revenue, rows[i].orders);
            wx_money_format_wide(out, v, wx_currency_exponent(rows[i].currency));
        }
    }
    wx_buf_adds(out, "}}");
    return 0;
}

int order_query_stats(struct es_projector *p, struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *counts = NULL, *revenue = NULL;
    err = es_projector_prepare_live(r, "order_stats",
                                    "SELECT status, orders FROM order_status_counts{s}", &counts,
                                    NULL);
    if (!err)
        err = es_projector_prepare_live(r, "order_stats",
                                        "SELECT currency, revenue, orders FROM order_revenue{s}"
                                        " WHERE orders > 0 ORDER BY currency",
                                        &revenue, NULL);
    int64_t by_status[ORDER_STATUSES] = {0};
    int64_t total = 0;
    bool row;
    while (!err && (err = rm_step(counts, &row)) == 0 && row) {
        enum order_status s;
        if (!order_status_parse(rm_column_text(counts, 0), &s))
            err = WX_ERR_CORRUPT;
        else
            by_status[s] = rm_column_i64(counts, 1);
    }
    if (!err) {
        for (int i = 0; i < ORDER_STATUSES; i++)
            total += by_status[i];
        wx_buf_printf(out, "{\"totalOrders\":%lld,\"byStatus\":{", (long long)total);
        for (int i = 0; i < ORDER_STATUSES; i++)
            wx_buf_printf(out, "%s\"%s\":%lld", i ? "," : "", order_status_name(i),
                          (long long)by_status[i]);
        err = order_stats_money(revenue, out);
    }
    rm_finalize(counts);
    rm_finalize(revenue);
    es_projector_read_end(p, r);
    return err;
}
