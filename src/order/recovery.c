/*
 * Recovery for the order read models: rebuild one order from its stream,
 * find drift between the read models and a fold of the log, and verify
 * the order invariants (totals are the sums of their items, the statistics
 * equal a recount, and every payment and refund has its wallet movement and
 * every wallet movement made for an order has its payment or refund).
 *
 * Drift and verify hold one read transaction, so the read side is seen at
 * its own checkpoints and the log is folded up to those same positions: a
 * lagging projection is not drift. Orders are folded one stream at a time
 * (es_fold), so memory holds one order's state, not every order's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/map.h"
#include "base/money.h"
#include "order/projections.h"
#include "store/store.h"
#include "wallet/wallet.h"

/* ---- rebuild one order ---- */

/* Orders, then order_stats: the order the domain registers them in, which
 * is the order their checkpoints are locked in (es_projector_replay_stream). */
static int rebuild_one_job(struct es_projector *p, struct rm_conn *conn, void *ctx)
{
    const char *order_id = ctx;
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    order_stream_id(order_id, stream);
    int err = rm_begin(conn, RM_TX_WRITE);
    if (err)
        return err;
    static const char *const forget_order[] = {
        "DELETE FROM orders{s} WHERE id = ?1",
        "DELETE FROM order_items{s} WHERE order_id = ?1",
        NULL,
    };
    struct es_forget_sql forget = {forget_order, order_id};
    err = es_projector_replay_stream(p, conn, "orders", stream, es_projector_forget_sql, &forget);
    if (!err)
        err = es_projector_replay_stream(p, conn, "order_stats", stream, order_stats_forget,
                                         (void *)order_id);
    return rm_end(conn, err);
}

int order_rebuild_one(struct es_projector *p, const char *order_id)
{
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    order_stream_id(order_id, stream);
    int64_t version;
    int err = es_store_stream_version(es_projector_store(p), stream, &version);
    if (!err && version == 0)
        err = WX_ERR_NOT_FOUND;
    if (!err)
        err = es_projector_replay_job(p, rebuild_one_job, (void *)order_id);
    return err;
}

/* ---- scanning the log ---- */

/* What the scan learns of one order; the state itself is folded later. */
struct seen {
    int64_t version_orders; /* the last version at the orders checkpoint */
    int64_t version_stats;  /* ... at the order_stats checkpoint */
    int64_t paid_minor, debited_minor;     /* OrderPaid; WalletDebited for it */
    int64_t refunded_minor, credited_minor; /* OrderCancelled; WalletCredited for it */
    int paid_events, debit_events, refund_events, credit_events;
    char paid_wallet[WX_ID_BYTES_MAX + 1], debited_wallet[WX_ID_BYTES_MAX + 1];
};

struct scan {
    struct es_read *r;
    struct es_projector *p;
    struct es_drift_report *report;
    struct es_position orders_pos, stats_pos;
    struct wx_map orders; /* order id -> struct seen */
    struct wx_buf scratch;
    int64_t events;
    struct es_position last;
    int err;
};

static struct seen *seen_for(struct scan *sc, const char *order_id)
{
    struct seen *s = wx_map_get(&sc->orders, order_id);
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL || wx_map_put(&sc->orders, order_id, s) != 0) {
            free(s);
            return NULL;
        }
    }
    return s;
}

/* A wallet movement made for an order carries "order:<id>". */
static int scan_wallet_event(struct scan *sc, const struct es_event *ev)
{
    char text[WALLET_EVENT_DATA_BYTES_MAX];
    struct wallet_event e;
    int err = wallet_event_decode(ev, text, sizeof(text), &e);
    if (err || e.reference == NULL || !es_stream_in_category(e.reference, ORDER_CATEGORY))
        return err;
    struct seen *s = seen_for(sc, e.reference + sizeof(ORDER_CATEGORY));
    if (s == NULL)
        return WX_ERR_NOMEM;
    if (e.kind == WALLET_DEBITED) {
        s->debit_events++;
        s->debited_minor += e.amount_minor;
        snprintf(s->debited_wallet, sizeof(s->debited_wallet), "%s", e.wallet_id);
    } else if (e.kind == WALLET_CREDITED) {
        s->credit_events++;
        s->credited_minor += e.amount_minor;
    }
    return 0;
}

static int scan_order_event(struct scan *sc, const struct es_event *ev)
{
    struct order_decoded *d = malloc(sizeof(*d));
    if (d == NULL)
        return WX_ERR_NOMEM;
    int err = order_event_decode(ev, d);
    struct seen *s = err ? NULL : seen_for(sc, d->order_id);
    if (!err && s == NULL)
        err = WX_ERR_NOMEM;
    if (!err) {
        if (es_position_cmp(&ev->position, &sc->orders_pos) <= 0)
            s->version_orders = ev->version;
        if (es_position_cmp(&ev->position, &sc->stats_pos) <= 0)
            s->version_stats = ev->version;
        if (d->e.kind == ORDER_PAID_EV) {
            s->paid_events++;
            s->paid_minor += d->e.amount_minor;
            snprintf(s->paid_wallet, sizeof(s->paid_wallet), "%s", d->e.wallet_id);
        } else if (d->e.kind == ORDER_CANCELLED_EV && d->e.amount_minor > 0) {
            s->refund_events++;
            s->refunded_minor += d->e.amount_minor;
        }
    }
    free(d);
    return err;
}

static int scan_event(void *arg, const struct es_event *stored)
{
    struct scan *sc = arg;
    sc->events++;
    sc->last = stored->position;
    bool order = es_stream_in_category(stored->stream_id, ORDER_CATEGORY);
    if (!order && !es_stream_in_category(stored->stream_id, WALLET_CATEGORY))
        return 0;
    struct es_event ev;
    int err = es_upcast(stored, &ev, &sc->scratch);
    if (err)
        return err;
    return order ? scan_order_event(sc, &ev) : scan_wallet_event(sc, &ev);
}

static int scan_log(struct scan *sc)
{
    int err = es_read_position(sc->r, "orders", &sc->orders_pos);
    if (!err)
        err = es_read_position(sc->r, "order_stats", &sc->stats_pos);
    if (err)
        return err;
    sc->last = es_position_start();
    for (;;) {
        int64_t before = sc->events;
        struct es_position after = sc->last;
        err = es_store_read_log(es_projector_store(sc->p), &after, WX_SCAN_BATCH_EVENTS_MAX,
                                scan_event, sc);
        if (err || sc->events - before < WX_SCAN_BATCH_EVENTS_MAX)
            break;
    }
    return err;
}

/* ---- drift ---- */

static void drift_add(struct scan *sc, const char *order_id, const char *model, const char *field,
                      const char *read_model, const char *events)
{
    int err = es_drift_report_diff(sc->report, "orderId", order_id, model, field, read_model, events);
    if (err)
        sc->err = err;
}

static void drift_i64(struct scan *sc, const char *order_id, const char *model, const char *field,
                      int64_t read_model, int64_t events)
{
    if (read_model == events)
        return;
    char a[24], b[24];
    snprintf(a, sizeof(a), "%lld", (long long)read_model);
    snprintf(b, sizeof(b), "%lld", (long long)events);
    drift_add(sc, order_id, model, field, a, b);
}

/* A currency's revenue and orders, "<revenue>/<orders>" on both sides. */
static void drift_money(struct scan *sc, const char *field, __int128 have_revenue,
                        int64_t have_orders, __int128 want_revenue, int64_t want_orders)
{
    struct wx_buf a, b;
    wx_buf_init(&a);
    wx_buf_init(&b);
    wx_wide_format(&a, have_revenue);
    wx_buf_printf(&a, "/%lld", (long long)have_orders);
    wx_wide_format(&b, want_revenue);
    wx_buf_printf(&b, "/%lld", (long long)want_orders);
    if (wx_buf_ok(&a) && wx_buf_ok(&b))
        drift_add(sc, "*", "order_stats", field, a.data, b.data);
    else
        sc->err = WX_ERR_NOMEM;
    wx_buf_free(&a);
    wx_buf_free(&b);
}

/* Statistics recounted from the folds at the order_stats checkpoint. */
struct recount {
    int64_t by_status[ORDER_STATUSES];
    struct wx_map revenue; /* currency -> struct money */
};

struct money {
    __int128 revenue;
    int64_t orders;
};

static int recount_add(struct recount *r, const struct order_state *s)
{
    r->by_status[s->status]++;
    if (s->status != ORDER_PAID && s->status != ORDER_SHIPPED && s->status != ORDER_DELIVERED)
        return 0;
    struct money *m = wx_map_get(&r->revenue, s->currency);
    if (m == NULL) {
        m = calloc(1, sizeof(*m));
        if (m == NULL || wx_map_put(&r->revenue, s->currency, m) != 0) {
            free(m);
            return WX_ERR_NOMEM;
        }
    }
    m->revenue += s->paid_minor;
    m->orders++;
    return 0;
}

/* Compares one order's row and items with its fold. */
static int compare_order(struct scan *sc, struct rm_stmt *row, struct rm_stmt *items,
                         const char *id, const struct order_state *s, int64_t version)
{
    rm_reset(row);
    rm_bind_text(row, 1, id);
    bool found = false;
    int err = rm_step(row, &found);
    if (err || !found) {
        if (!err)
            drift_i64(sc, id, "orders", "exists", 0, 1);
        return err;
    }
    drift_i64(sc, id, "orders", "version", rm_column_i64(row, 0), version);
    drift_i64(sc, id, "orders", "totalMinor", rm_column_i64(row, 1), s->total_minor);
    const char *status = rm_column_text(row, 2);
    if (strcmp(status, order_status_name(s->status)) != 0)
        drift_add(sc, id, "orders", "status", status, order_status_name(s->status));
    const char *created_by = rm_column_text(row, 3);
    const char *updated_by = rm_column_text(row, 4);
    if (strcmp(created_by, s->created_by) != 0)
        drift_add(sc, id, "orders", "createdBy", created_by, s->created_by);
    if (strcmp(updated_by, s->updated_by) != 0)
        drift_add(sc, id, "orders", "updatedBy", updated_by, s->updated_by);
    rm_reset(items);
    rm_bind_text(items, 1, id);
    size_t n = 0;
    while ((err = rm_step(items, &found)) == 0 && found) {
        const struct order_item *it = n < s->items_len ? &s->items[n] : NULL;
        char field[32 + WX_ID_BYTES_MAX];
        snprintf(field, sizeof(field), "item %zu", n);
        if (it == NULL || strcmp(rm_column_text(items, 0), it->product_id) ||
            rm_column_i64(items, 1) != it->quantity ||
            rm_column_i64(items, 2) != it->unit_price_minor ||
            rm_column_i64(items, 3) != it->line_total_minor)
            drift_add(sc, id, "orders", field, rm_column_text(items, 0),
                      it ? it->product_id : "(none)");
        n++;
    }
    drift_i64(sc, id, "orders", "items", (int64_t)n, (int64_t)s->items_len);
    return err;
}

static int compare_all(struct scan *sc, struct recount *rc)
{
    struct rm_stmt *row = NULL, *items = NULL;
    struct order_state *s = malloc(sizeof(*s));
    int err = s == NULL ? WX_ERR_NOMEM : 0;
    if (!err)
        err = es_projector_prepare_live(sc->r, "orders",
                                        "SELECT version, total_minor, status,"
                                        " coalesce(created_by, ''), coalesce(updated_by, '')"
                                        " FROM orders{s} WHERE id = ?1",
                                        &row, NULL);
    if (!err)
        err = es_projector_prepare_live(sc->r, "orders",
                                        "SELECT product_id, quantity, unit_price_minor,"
                                        " line_total_minor FROM order_items{s}"
                                        " WHERE order_id = ?1 ORDER BY position",
                                        &items, NULL);
    size_t cursor = 0;
    const char *id;
    void *value;
    while (!err && wx_map_next(&sc->orders, &cursor, &id, &value)) {
        const struct seen *seen = value;
        char stream[WX_STREAM_ID_BYTES_MAX + 1];
        order_stream_id(id, stream);
        int64_t v;
        struct es_fold_until until = {.version_max = seen->version_orders};
        if (seen->version_orders > 0) {
            err = es_fold(es_projector_store(sc->p), &order_aggregate, stream, &until, s, &v);
            if (!err)
                err = compare_order(sc, row, items, id, s, v);
        }
        if (!err && seen->version_stats > 0) {
            until.version_max = seen->version_stats;
            if (seen->version_stats != seen->version_orders)
                err = es_fold(es_projector_store(sc->p), &order_aggregate, stream, &until, s, &v);
            if (!err)
                err = recount_add(rc, s);
        }
        if (!err && seen->version_orders > 0)
            sc->report->checked++;
    }
    rm_finalize(row);
    rm_finalize(items);
    free(s);
    return err ? err : sc->err;
}

/* The counters of order_stats against the recount. */
static int compare_stats(struct scan *sc, struct recount *rc)
{
    struct rm_stmt *counts = NULL, *revenue = NULL;
    int err = es_projector_prepare_live(sc->r, "order_stats",
                                        "SELECT status, orders FROM order_status_counts{s}",
                                        &counts, NULL);
    if (!err)
        err = es_projector_prepare_live(sc->r, "order_stats",
                                        "SELECT currency, revenue, orders FROM order_revenue{s}",
                                        &revenue, NULL);
    int64_t seen[ORDER_STATUSES] = {0};
    bool row;
    while (!err && (err = rm_step(counts, &row)) == 0 && row) {
        enum order_status st;
        if (order_status_parse(rm_column_text(counts, 0), &st))
            seen[st] = rm_column_i64(counts, 1);
    }
    for (int i = 0; i < ORDER_STATUSES && !err; i++)
        drift_i64(sc, "*", "order_stats", order_status_name(i), seen[i], rc->by_status[i]);
    size_t matched = 0;
    while (!err && (err = rm_step(revenue, &row)) == 0 && row) {
        const char *currency = rm_column_text(revenue, 0);
        __int128 have = 0;
        wx_wide_parse(rm_column_text(revenue, 1), &have);
        int64_t orders = rm_column_i64(revenue, 2);
        struct money *m = wx_map_get(&rc->revenue, currency);
        struct money want = m ? *m : (struct money){0, 0};
        matched += m != NULL;
        char field[32];
        snprintf(field, sizeof(field), "revenue %s", currency);
        if (have != want.revenue || orders != want.orders)
            drift_money(sc, field, have, orders, want.revenue, want.orders);
    }
    if (!err && matched != rc->revenue.len)
        drift_i64(sc, "*", "order_stats", "currencies", (int64_t)matched,
                  (int64_t)rc->revenue.len);
    rm_finalize(counts);
    rm_finalize(revenue);
    return err;
}

static void free_map(struct wx_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].value); /* nothing is ever removed: no tombstones */
    wx_map_free(m);
}

static int drift_run(struct es_projector *p, struct scan *sc, struct es_drift_report *report)
{
    memset(sc, 0, sizeof(*sc));
    sc->p = p;
    sc->report = report;
    wx_map_init(&sc->orders);
    wx_buf_init(&sc->scratch);
    struct recount rc;
    memset(&rc, 0, sizeof(rc));
    wx_map_init(&rc.revenue);
    int err = es_projector_read_begin(p, &sc->r);
    if (!err)
        err = scan_log(sc);
    if (!err)
        err = compare_all(sc, &rc);
    if (!err)
        err = compare_stats(sc, &rc);
    free_map(&rc.revenue);
    return err ? err : sc->err;
}

static void drift_done(struct scan *sc)
{
    es_projector_read_end(sc->p, sc->r);
    free_map(&sc->orders);
    wx_buf_free(&sc->scratch);
}

int order_drift(struct es_projector *p, struct es_drift_report *report)
{
    struct scan sc;
    int err = drift_run(p, &sc, report);
    drift_done(&sc);
    return err;
}

/* ---- verify ---- */

/* Each payment has its debit (same wallet, same amount) and each refund
 * its credit, and no wallet movement names an order that did not make it. */
static void check_money(struct scan *sc, struct wx_buf *v, size_t *n, int64_t *paid_out)
{
    size_t cursor = 0;
    const char *id;
    void *value;
    while (wx_map_next(&sc->orders, &cursor, &id, &value)) {
        const struct seen *s = value;
        char text[160 + WX_ID_BYTES_MAX];
        *paid_out += s->paid_events;
        if (s->paid_events > 1 || s->refund_events > 1) {
            snprintf(text, sizeof(text), "order %s: paid %d times, refunded %d times", id,
                     s->paid_events, s->refund_events);
            es_verify_violation(v, n, text);
        }
        bool paid_ok = s->paid_minor == s->debited_minor &&
                       (s->paid_minor == 0 ? s->debit_events == 0
                                           : s->debit_events == 1 &&
                                                 strcmp(s->paid_wallet, s->debited_wallet) == 0);
        if (!paid_ok) {
            snprintf(text, sizeof(text), "order %s: paid %lld, its wallet debits %lld", id,
                     (long long)s->paid_minor, (long long)s->debited_minor);
            es_verify_violation(v, n, text);
        }
        if (s->refunded_minor != s->credited_minor ||
            (s->refunded_minor == 0) != (s->credit_events == 0)) {
            snprintf(text, sizeof(text), "order %s: refunded %lld, its wallet credits %lld", id,
                     (long long)s->refunded_minor, (long long)s->credited_minor);
            es_verify_violation(v, n, text);
        }
    }
}

/* Each item's line total is its quantity times its price, and each order's
 * total is the sum of its lines, in the read model. */
static int check_totals(struct scan *sc, struct wx_buf *v, size_t *n)
{
    struct rm_stmt *st;
    int err = es_projector_prepare_live(
        sc->r, "orders",
        "SELECT o.id, o.total_minor, (SELECT coalesce(sum(line_total_minor), 0) FROM"
        " order_items{s} i WHERE i.order_id = o.id), (SELECT count(*) FROM order_items{s} i"
        " WHERE i.order_id = o.id AND i.line_total_minor != i.quantity * i.unit_price_minor)"
        " FROM orders{s} o",
        &st, NULL);
    if (err)
        return err;
    bool row;
    while ((err = rm_step(st, &row)) == 0 && row) {
        if (rm_column_i64(st, 1) == rm_column_i64(st, 2) &&
            rm_column_i64(st, 3) == 0)
            continue;
        char text[96 + WX_ID_BYTES_MAX];
        snprintf(text, sizeof(text), "order %s: total %lld, items %lld, %lld wrong lines",
                 rm_column_text(st, 0), (long long)rm_column_i64(st, 1),
                 (long long)rm_column_i64(st, 2), (long long)rm_column_i64(st, 3));
        es_verify_violation(v, n, text);
    }
    rm_finalize(st);
    return err;
}

int order_verify(struct es_projector *p, struct wx_buf *out, struct wx_buf *v,
                 size_t *violations_len)
{
    struct scan sc;
    struct wx_buf drifted;
    wx_buf_init(&drifted);
    struct es_drift_report report = {.items = &drifted};
    size_t n = *violations_len;
    int64_t paid = 0;
    int err = drift_run(p, &sc, &report);
    if (!err)
        err = check_totals(&sc, v, &n);
    if (!err) {
        check_money(&sc, v, &n, &paid);
        if (report.drifted > 0) {
            char text[96];
            snprintf(text, sizeof(text),
                     "%zu differences between the order read models and the log", report.drifted);
            es_verify_violation(v, &n, text);
        }
        wx_buf_printf(out, "{\"orders\":%zu,\"paidOrders\":%lld,\"drifted\":[", report.checked,
                      (long long)paid);
        wx_buf_add(out, drifted.data ? drifted.data : "", drifted.len);
        wx_buf_adds(out, "]}");
        *violations_len = n;
    }
    drift_done(&sc);
    wx_buf_free(&drifted);
    return err;
}
