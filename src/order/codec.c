/*
 * Order events as stored JSON (int64 minor units, camelCase), their schema
 * versions and upcasters, the order aggregate with its snapshots, and the
 * Order resource of API.md. Stored events are read with json-c (they carry
 * arrays of items); each is checked against the state before it is folded,
 * so a damaged log is an error, never a crash.
 *
 * Schema history (the upcasters below turn old data into current data on
 * every read: folding, projections, /events):
 * - OrderCreated v1 and OrderItemAdded v1 had items of {productId,
 *   quantity, unitPriceMinor}; v2 adds lineTotalMinor, the line's total
 *   computed (overflow-checked) when it was decided, so no reader has to
 *   multiply again.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/money.h"
#include "order/order.h"

/* ---- event types and upcasters ---- */

static int upcast_items_v1(const struct es_event *ev, struct wx_buf *out);

static const es_upcast_fn created_upcasters[] = {upcast_items_v1};
static const es_upcast_fn added_upcasters[] = {upcast_items_v1};

static const struct es_event_type types[] = {
    [ORDER_CREATED] = {"OrderCreated", 2, created_upcasters},
    [ORDER_ITEM_ADDED] = {"OrderItemAdded", 2, added_upcasters},
    [ORDER_ITEM_CHANGED] = {"OrderItemChanged", 1, NULL},
    [ORDER_ITEM_REMOVED] = {"OrderItemRemoved", 1, NULL},
    [ORDER_CONFIRMED_EV] = {"OrderConfirmed", 1, NULL},
    [ORDER_PAID_EV] = {"OrderPaid", 1, NULL},
    [ORDER_SHIPPED_EV] = {"OrderShipped", 1, NULL},
    [ORDER_DELIVERED_EV] = {"OrderDelivered", 1, NULL},
    [ORDER_CANCELLED_EV] = {"OrderCancelled", 1, NULL},
    [ORDER_ROLLED_BACK] = {"OrderRolledBack", 1, NULL},
};
#define TYPES_LEN (sizeof(types) / sizeof(types[0]))

const struct es_event_type *const order_event_types[] = {
    &types[0], &types[1], &types[2], &types[3], &types[4], &types[5],
    &types[6], &types[7], &types[8], &types[9], NULL,
};

const struct es_event_type *order_event_type(enum order_event_kind kind)
{
    return &types[kind];
}

/* ---- encoding ---- */



static void item_fields(struct wx_buf *b, const struct order_item *it, bool *first)
{
    wx_buf_json_member_str(b, "productId", it->product_id, first);
    wx_buf_json_member_i64(b, "quantity", it->quantity, first);
    wx_buf_json_member_i64(b, "unitPriceMinor", it->unit_price_minor, first);
    wx_buf_json_member_i64(b, "lineTotalMinor", it->line_total_minor, first);
}

static void items_array(struct wx_buf *b, const struct order_item *items, size_t len, bool *first)
{
    wx_buf_json_key(b, "items", first);
    wx_buf_addc(b, '[');
    for (size_t i = 0; i < len; i++) {
        bool f = true;
        wx_buf_adds(b, i > 0 ? ",{" : "{");
        item_fields(b, &items[i], &f);
        wx_buf_addc(b, '}');
    }
    wx_buf_addc(b, ']');
}

void order_event_encode(struct wx_buf *b, const struct order_event *e)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_member_str(b, "orderId", e->order_id, &first);
    switch (e->kind) {
    case ORDER_CREATED:
        wx_buf_json_member_str(b, "customerId", e->customer_id, &first);
        wx_buf_json_member_str(b, "currency", e->currency, &first);
        items_array(b, e->items, e->items_len, &first);
        break;
    case ORDER_ITEM_ADDED:
    case ORDER_ITEM_CHANGED:
        item_fields(b, &e->item, &first);
        break;
    case ORDER_ITEM_REMOVED:
        wx_buf_json_member_str(b, "productId", e->item.product_id, &first);
        break;
    case ORDER_PAID_EV:
        wx_buf_json_member_str(b, "walletId", e->wallet_id, &first);
        wx_buf_json_member_i64(b, "amountMinor", e->amount_minor, &first);
        break;
    case ORDER_CANCELLED_EV:
        if (e->reason != NULL)
            wx_buf_json_member_str(b, "reason", e->reason, &first);
        if (e->amount_minor > 0) {
            wx_buf_json_member_str(b, "walletId", e->wallet_id, &first);
            wx_buf_json_member_i64(b, "refundedMinor", e->amount_minor, &first);
        }
        break;
    case ORDER_ROLLED_BACK:
        wx_buf_json_member_i64(b, "toVersion", e->to_version, &first);
        wx_buf_json_member_str(b, "status", order_status_name(e->status), &first);
        items_array(b, e->items, e->items_len, &first);
        break;
    case ORDER_CONFIRMED_EV:
    case ORDER_SHIPPED_EV:
    case ORDER_DELIVERED_EV:
        break;
    }
    wx_buf_addc(b, '}');
}

/* ---- reading JSON ---- */

static struct json_object *parse_object(const char *data, size_t len)
{
    if (len == 0 || len > ORDER_EVENT_DATA_BYTES_MAX)
        return NULL;
    struct json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return NULL;
    struct json_object *o = json_tokener_parse_ex(tok, data, (int)len);
    bool ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
              json_object_is_type(o, json_type_object);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* A string member of at most max bytes copied into out (max + 1 bytes). */
static bool get_str(struct json_object *o, const char *key, char *out, size_t max)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return false;
    size_t len = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (len > max || strlen(s) != len)
        return false;
    memcpy(out, s, len + 1);
    return true;
}

static bool get_i64(struct json_object *o, const char *key, int64_t min, int64_t max,
                    int64_t *out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (errno != 0 || x < min || x > max)
        return false;
    *out = x;
    return true;
}

/* One item; with_total false for v1 data, which has no lineTotalMinor. */
static bool get_item(struct json_object *o, bool with_total, struct order_item *it)
{
    if (!get_str(o, "productId", it->product_id, WX_ID_BYTES_MAX) || !wx_id_ok(it->product_id) ||
        !get_i64(o, "quantity", 1, ORDER_QUANTITY_MAX, &it->quantity) ||
        !get_i64(o, "unitPriceMinor", 0, INT64_MAX, &it->unit_price_minor))
        return false;
    int64_t total;
    if (__builtin_mul_overflow(it->quantity, it->unit_price_minor, &total))
        return false;
    if (!with_total) {
        it->line_total_minor = total;
        return true;
    }
    return get_i64(o, "lineTotalMinor", 0, INT64_MAX, &it->line_total_minor) &&
           it->line_total_minor == total;
}

static bool get_items(struct json_object *o, struct order_item *items, size_t *len_out)
{
    struct json_object *arr;
    if (!json_object_object_get_ex(o, "items", &arr) || !json_object_is_type(arr, json_type_array))
        return false;
    size_t n = json_object_array_length(arr);
    if (n > ORDER_ITEMS_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        struct json_object *it = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(it, json_type_object) || !get_item(it, true, &items[i]))
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(items[j].product_id, items[i].product_id) == 0)
                return false;
    }
    *len_out = n;
    return true;
}

/* v1 -> v2 of OrderCreated and OrderItemAdded: every item gains
 * lineTotalMinor. Rewritten whole, through json-c, so the output is
 * current data however the input was spaced. */
static int upcast_items_v1(const struct es_event *ev, struct wx_buf *out)
{
    struct json_object *o = parse_object(ev->data, ev->data_len);
    if (o == NULL)
        return WX_ERR_CORRUPT;
    int err = 0;
    struct json_object *arr;
    if (json_object_object_get_ex(o, "items", &arr)) { /* OrderCreated */
        size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
        if (!json_object_is_type(arr, json_type_array) || n > ORDER_ITEMS_MAX)
            err = WX_ERR_CORRUPT;
        for (size_t i = 0; i < n && !err; i++) {
            struct json_object *v = json_object_array_get_idx(arr, i);
            struct order_item it;
            if (!json_object_is_type(v, json_type_object) || !get_item(v, false, &it))
                err = WX_ERR_CORRUPT;
            else
                json_object_object_add(v, "lineTotalMinor",
                                       json_object_new_int64(it.line_total_minor));
        }
    } else { /* OrderItemAdded */
        struct order_item it;
        if (!get_item(o, false, &it))
            err = WX_ERR_CORRUPT;
        else
            json_object_object_add(o, "lineTotalMinor", json_object_new_int64(it.line_total_minor));
    }
    if (!err)
        wx_buf_adds(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return err;
}

static int kind_of(const char *type, enum order_event_kind *out)
{
    for (size_t i = 0; i < TYPES_LEN; i++) {
        if (strcmp(type, types[i].name) == 0) {
            *out = (enum order_event_kind)i;
            return 0;
        }
    }
    return WX_ERR_CORRUPT;
}

static bool decode_fields(struct json_object *o, struct order_decoded *d)
{
    struct order_event *e = &d->e;
    char status[16];
    switch (e->kind) {
    case ORDER_CREATED:
        e->customer_id = d->customer_id;
        e->currency = d->currency;
        e->items = d->items;
        return get_str(o, "customerId", d->customer_id, WX_ID_BYTES_MAX) &&
               wx_id_ok(d->customer_id) && get_str(o, "currency", d->currency, WX_CURRENCY_BYTES) &&
               wx_currency_exponent(d->currency) >= 0 && get_items(o, d->items, &e->items_len);
    case ORDER_ITEM_ADDED:
    case ORDER_ITEM_CHANGED:
        return get_item(o, true, &e->item);
    case ORDER_ITEM_REMOVED:
        return get_str(o, "productId", e->item.product_id, WX_ID_BYTES_MAX);
    case ORDER_PAID_EV:
        e->wallet_id = d->wallet_id;
        return get_str(o, "walletId", d->wallet_id, WX_ID_BYTES_MAX) &&
               get_i64(o, "amountMinor", 0, INT64_MAX, &e->amount_minor);
    case ORDER_CANCELLED_EV:
        if (get_str(o, "reason", d->reason, ORDER_REASON_BYTES_MAX))
            e->reason = d->reason;
        if (json_object_object_get_ex(o, "refundedMinor", NULL)) {
            e->wallet_id = d->wallet_id;
            return get_str(o, "walletId", d->wallet_id, WX_ID_BYTES_MAX) &&
                   get_i64(o, "refundedMinor", 1, INT64_MAX, &e->amount_minor);
        }
        return true;
    case ORDER_ROLLED_BACK:
        e->items = d->items;
        return get_i64(o, "toVersion", 1, INT64_MAX, &e->to_version) &&
               get_str(o, "status", status, sizeof(status) - 1) &&
               order_status_parse(status, &e->status) && get_items(o, d->items, &e->items_len);
    case ORDER_CONFIRMED_EV:
    case ORDER_SHIPPED_EV:
    case ORDER_DELIVERED_EV:
        return true;
    }
    return false;
}

int order_event_decode(const struct es_event *ev, struct order_decoded *d)
{
    memset(&d->e, 0, sizeof(d->e));
    if (kind_of(ev->type, &d->e.kind) != 0)
        return WX_ERR_CORRUPT;
    /* Only current data is read here: readers upcast first (es_upcast). */
    if (ev->schema_version != types[d->e.kind].schema_version)
        return WX_ERR_CORRUPT;
    struct json_object *o = parse_object(ev->data, ev->data_len);
    if (o == NULL)
        return WX_ERR_CORRUPT;
    d->e.order_id = d->order_id;
    bool ok = get_str(o, "orderId", d->order_id, WX_ID_BYTES_MAX) && decode_fields(o, d);
    json_object_put(o);
    d->e.occurred_at_ms = ev->occurred_at_ms;
    d->e.actor = es_event_actor(ev, d->actor) ? d->actor : NULL;
    return ok ? 0 : WX_ERR_CORRUPT;
}

/* ---- the aggregate ---- */

static bool has_item(const struct order_state *s, const char *product_id)
{
    for (size_t i = 0; i < s->items_len; i++)
        if (strcmp(s->items[i].product_id, product_id) == 0)
            return true;
    return false;
}

static bool sums_fit(const struct order_item *items, size_t len)
{
    int64_t total = 0;
    for (size_t i = 0; i < len; i++)
        if (__builtin_add_overflow(total, items[i].line_total_minor, &total))
            return false;
    return true;
}

/* The facts the deciders guarantee, checked on the way back in. */
static bool fits_state(const struct order_state *s, const struct order_event *e)
{
    switch (e->kind) {
    case ORDER_CREATED:
        return !s->exists && sums_fit(e->items, e->items_len);
    case ORDER_ITEM_ADDED:
        return s->exists && s->status == ORDER_PENDING && s->items_len < ORDER_ITEMS_MAX &&
               !has_item(s, e->item.product_id) &&
               !__builtin_add_overflow(s->total_minor, e->item.line_total_minor,
                                       &(int64_t){0});
    case ORDER_ITEM_CHANGED:
    case ORDER_ITEM_REMOVED:
        return s->exists && s->status == ORDER_PENDING && has_item(s, e->item.product_id);
    case ORDER_CONFIRMED_EV:
        return s->exists && s->status == ORDER_PENDING && s->items_len > 0;
    case ORDER_PAID_EV:
        return s->exists && s->status == ORDER_CONFIRMED && e->amount_minor == s->total_minor &&
               wx_id_ok(e->wallet_id);
    case ORDER_SHIPPED_EV:
        return s->exists && s->status == ORDER_PAID;
    case ORDER_DELIVERED_EV:
        return s->exists && s->status == ORDER_SHIPPED;
    case ORDER_CANCELLED_EV:
        if (!s->exists || (s->status != ORDER_PENDING && s->status != ORDER_CONFIRMED &&
                           s->status != ORDER_PAID))
            return false;
        /* A paid order's cancel refunds exactly what was paid, to that wallet. */
        if (s->status == ORDER_PAID && s->paid_minor > 0)
            return e->amount_minor == s->paid_minor && e->wallet_id != NULL &&
                   strcmp(e->wallet_id, s->paid_from) == 0;
        return e->amount_minor == 0;
    case ORDER_ROLLED_BACK:
        return s->exists && (s->status == ORDER_PENDING || s->status == ORDER_CONFIRMED) &&
               (e->status == ORDER_PENDING || e->status == ORDER_CONFIRMED) &&
               sums_fit(e->items, e->items_len);
    }
    return false;
}

static int order_evolve_stored(void *state, const struct es_event *ev)
{
    struct order_decoded *d = malloc(sizeof(*d));
    if (d == NULL)
        return WX_ERR_NOMEM;
    int err = order_event_decode(ev, d);
    if (!err && !fits_state(state, &d->e))
        err = WX_ERR_CORRUPT;
    if (!err)
        order_evolve(state, &d->e);
    free(d);
    return err;
}

/* Snapshot of an order: the state's facts, versioned so a later shape can
 * still read this one. */
static void order_encode(const void *state, struct wx_buf *b)
{
    const struct order_state *s = state;
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_member_i64(b, "schema", 1, &first);
    wx_buf_json_member_str(b, "status", order_status_name(s->status), &first);
    wx_buf_json_member_str(b, "customerId", s->customer_id, &first);
    wx_buf_json_member_str(b, "currency", s->currency, &first);
    wx_buf_json_member_str(b, "paidFrom", s->paid_from, &first);
    wx_buf_json_member_i64(b, "paidMinor", s->paid_minor, &first);
    wx_buf_json_member_i64(b, "createdAtMs", s->created_at_ms, &first);
    wx_buf_json_member_i64(b, "updatedAtMs", s->updated_at_ms, &first);
    /* Only when known: snapshots of states without actors stay as they
     * were, and readers take absent as "". */
    if (s->created_by[0] != '\0')
        wx_buf_json_member_str(b, "createdBy", s->created_by, &first);
    if (s->updated_by[0] != '\0')
        wx_buf_json_member_str(b, "updatedBy", s->updated_by, &first);
    items_array(b, s->items, s->items_len, &first);
    wx_buf_addc(b, '}');
}

/* An optional string of a snapshot: absent reads "". */
static bool get_opt_str(struct json_object *o, const char *key, char *out, size_t max)
{
    out[0] = '\0';
    return !json_object_object_get_ex(o, key, NULL) || get_str(o, key, out, max);
}

static int order_decode(const char *data, size_t len, void *state)
{
    struct order_state *s = state;
    order_state_init(s);
    struct json_object *o = parse_object(data, len);
    if (o == NULL)
        return WX_ERR_CORRUPT;
    int64_t schema = 0;
    char status[16];
    bool ok = get_i64(o, "schema", 1, 1, &schema) &&
              get_str(o, "status", status, sizeof(status) - 1) &&
              order_status_parse(status, &s->status) &&
              get_str(o, "customerId", s->customer_id, WX_ID_BYTES_MAX) &&
              get_str(o, "currency", s->currency, WX_CURRENCY_BYTES) &&
              wx_currency_exponent(s->currency) >= 0 &&
              get_str(o, "paidFrom", s->paid_from, WX_ID_BYTES_MAX) &&
              get_i64(o, "paidMinor", 0, INT64_MAX, &s->paid_minor) &&
              get_i64(o, "createdAtMs", INT64_MIN, INT64_MAX, &s->created_at_ms) &&
              get_i64(o, "updatedAtMs", INT64_MIN, INT64_MAX, &s->updated_at_ms) &&
              get_opt_str(o, "createdBy", s->created_by, WX_ID_BYTES_MAX) &&
              get_opt_str(o, "updatedBy", s->updated_by, WX_ID_BYTES_MAX) &&
              get_items(o, s->items, &s->items_len) && sums_fit(s->items, s->items_len);
    json_object_put(o);
    if (!ok) {
        order_state_init(s);
        return WX_ERR_CORRUPT;
    }
    s->exists = true;
    s->total_minor = 0;
    for (size_t i = 0; i < s->items_len; i++)
        s->total_minor += s->items[i].line_total_minor;
    return 0;
}

const struct es_aggregate_type order_aggregate = {
    .name = "order",
    .category = ORDER_CATEGORY,
    .state_bytes_max = sizeof(struct order_state),
    .state_bytes = order_state_bytes,
    .init = order_state_init,
    .evolve_stored = order_evolve_stored,
    .encode = order_encode,
    .decode = order_decode,
    .snapshot_bytes_max = ORDER_SNAPSHOT_BYTES_MAX,
};

/* ---- the Order resource ---- */



/* An actor, or null when the events named none. */
static void key_actor(struct wx_buf *b, const char *key, const char *actor, bool *first)
{
    wx_buf_json_key(b, key, first);
    if (actor[0] != '\0')
        wx_buf_json_str(b, actor);
    else
        wx_buf_adds(b, "null");
}

void order_json(struct wx_buf *b, const char *order_id, const struct order_state *s,
                int64_t version)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_member_str(b, "orderId", order_id, &first);
    wx_buf_json_member_str(b, "customerId", s->customer_id, &first);
    wx_buf_json_member_str(b, "currency", s->currency, &first);
    wx_buf_json_member_str(b, "status", order_status_name(s->status), &first);
    wx_buf_json_key(b, "items", &first);
    wx_buf_addc(b, '[');
    for (size_t i = 0; i < s->items_len; i++) {
        const struct order_item *it = &s->items[i];
        bool f = true;
        wx_buf_adds(b, i > 0 ? ",{" : "{");
        wx_buf_json_member_str(b, "productId", it->product_id, &f);
        wx_buf_json_member_i64(b, "quantity", it->quantity, &f);
        wx_money_json_member(b, "unitPrice", it->unit_price_minor, s->currency, &f);
        wx_money_json_member(b, "lineTotal", it->line_total_minor, s->currency, &f);
        wx_buf_addc(b, '}');
    }
    wx_buf_addc(b, ']');
    wx_money_json_member(b, "total", s->total_minor, s->currency, &first);
    wx_buf_json_key(b, "paidFrom", &first);
    if (s->paid_from[0] != '\0')
        wx_buf_json_str(b, s->paid_from);
    else
        wx_buf_adds(b, "null");
    wx_buf_json_member_i64(b, "version", version, &first);
    wx_time_json_member(b, "createdAt", s->created_at_ms, &first);
    wx_time_json_member(b, "updatedAt", s->updated_at_ms, &first);
    key_actor(b, "createdBy", s->created_by, &first);
    key_actor(b, "updatedBy", s->updated_by, &first);
    wx_buf_addc(b, '}');
}

void order_stream_id(const char *order_id, char out[WX_STREAM_ID_BYTES_MAX + 1])
{
    snprintf(out, WX_STREAM_ID_BYTES_MAX + 1, ORDER_CATEGORY ":%s", order_id);
}
