/*
 * The order read models as projector consumers — "orders" (an order's row
 * and its items) and "order_stats" (counts by status and revenue per
 * currency, kept up to date event by event, never recounted) — the queries
 * on them, and recovery: one order's rebuild, drift and verify.
 */
#ifndef WALLEX_ORDER_PROJECTIONS_H
#define WALLEX_ORDER_PROJECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "es/domain.h"
#include "order/order.h"
#include "proj/projector.h"

extern const struct es_consumer order_consumer_orders;
extern const struct es_consumer order_consumer_stats;
extern const struct es_event_codec order_codec;
/* Both, NULL-terminated, for the domain. */
extern const struct es_consumer *const order_consumers[];

/* GET /orders/{id}: the Order JSON, or WX_ERR_NOT_FOUND (also for an
 * order of another customer than customer_only, when that is not NULL). */
int order_query_get(struct es_projector *p, const char *order_id, const char *customer_only,
                    struct wx_buf *out);

/* Filters and cursor of GET /orders: newest first by (createdAt, orderId). */
struct order_list_query {
    bool by_status;
    enum order_status status;
    const char *customer_id; /* NULL: any */
    bool after;              /* a cursor: strictly older than this */
    int64_t after_created_ms;
    const char *after_id;
    size_t limit;
};
/* "<createdAtMs>~<orderId>": false when the text is not such a cursor. */
bool order_cursor_parse(const char *text, struct order_list_query *q, struct wx_arena *arena);
int order_query_list(struct es_projector *p, const struct order_list_query *q,
                     struct wx_buf *out);

/* GET /orders/statistics. */
int order_query_stats(struct es_projector *p, struct wx_buf *out);

/* Rebuilds one order's rows (and its part of the statistics) from its
 * stream; WX_ERR_NOT_FOUND when it has no events. */
int order_rebuild_one(struct es_projector *p, const char *order_id);

/* An es_projector_replay_stream forget for order_stats: takes one order's
 * part out of the counts and the revenue (ctx: the order id). */
int order_stats_forget(struct es_proj_tx *tx, void *order_id);

/* es_domain.drift and es_domain.verify. */
int order_drift(struct es_projector *p, struct es_drift_report *report);
int order_verify(struct es_projector *p, struct wx_buf *out, struct wx_buf *violations,
                 size_t *violations_len);

#endif
