/*
 * The order rules, as pure functions: no I/O, no clock reads, no
 * allocation. Every business rule of API.md "Orders" lives here and is
 * tested in tests/unit/order/test_decide.c without a database.
 */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "base/err.h"
#include "base/money.h"
#include "order/order.h"

static const char *const status_names[ORDER_STATUSES] = {
    [ORDER_PENDING] = "pending",     [ORDER_CONFIRMED] = "confirmed",
    [ORDER_PAID] = "paid",           [ORDER_SHIPPED] = "shipped",
    [ORDER_DELIVERED] = "delivered", [ORDER_CANCELLED] = "cancelled",
};

const char *order_status_name(enum order_status s)
{
    assert((unsigned)s < ORDER_STATUSES);
    return status_names[s];
}

bool order_status_parse(const char *name, enum order_status *out)
{
    for (int i = 0; i < ORDER_STATUSES; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum order_status)i;
            return true;
        }
    }
    return false;
}

size_t order_state_bytes(const void *state)
{
    const struct order_state *s = state;
    assert(s->items_len <= ORDER_ITEMS_MAX);
    return offsetof(struct order_state, items) + s->items_len * sizeof(s->items[0]);
}

void order_state_init(void *state)
{
    memset(state, 0, offsetof(struct order_state, items));
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    assert(n < cap);
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static size_t find_item(const struct order_state *s, const char *product_id)
{
    for (size_t i = 0; i < s->items_len; i++)
        if (strcmp(s->items[i].product_id, product_id) == 0)
            return i;
    return SIZE_MAX;
}

/* The total of the items; false when it does not fit (the deciders never
 * let that happen, the decoder refuses such data). */
static bool items_total(const struct order_item *items, size_t len, int64_t *total_out)
{
    int64_t total = 0;
    for (size_t i = 0; i < len; i++)
        if (__builtin_add_overflow(total, items[i].line_total_minor, &total))
            return false;
    *total_out = total;
    return true;
}

static void set_items(struct order_state *s, const struct order_item *items, size_t len)
{
    assert(len <= ORDER_ITEMS_MAX);
    if (len > 0 && items != s->items)
        memcpy(s->items, items, len * sizeof(items[0]));
    s->items_len = len;
    bool ok = items_total(s->items, s->items_len, &s->total_minor);
    assert(ok);
    (void)ok;
}

void order_evolve(struct order_state *s, const struct order_event *e)
{
    size_t at;
    switch (e->kind) {
    case ORDER_CREATED:
        assert(!s->exists);
        s->exists = true;
        s->status = ORDER_PENDING;
        copy_str(s->customer_id, sizeof(s->customer_id), e->customer_id);
        copy_str(s->currency, sizeof(s->currency), e->currency);
        s->paid_from[0] = '\0';
        s->paid_minor = 0;
        set_items(s, e->items, e->items_len);
        s->created_at_ms = e->occurred_at_ms;
        copy_str(s->created_by, sizeof(s->created_by), e->actor);
        break;
    case ORDER_ITEM_ADDED:
        assert(s->items_len < ORDER_ITEMS_MAX && find_item(s, e->item.product_id) == SIZE_MAX);
        s->items[s->items_len] = e->item;
        set_items(s, s->items, s->items_len + 1);
        break;
    case ORDER_ITEM_CHANGED:
        at = find_item(s, e->item.product_id);
        assert(at != SIZE_MAX);
        s->items[at] = e->item;
        set_items(s, s->items, s->items_len);
        break;
    case ORDER_ITEM_REMOVED:
        at = find_item(s, e->item.product_id);
        assert(at != SIZE_MAX);
        /* Keep the order of the others: a list the client reads twice
         * should not reshuffle. */
        memmove(&s->items[at], &s->items[at + 1], (s->items_len - at - 1) * sizeof(s->items[0]));
        set_items(s, s->items, s->items_len - 1);
        break;
    case ORDER_CONFIRMED_EV:
        s->status = ORDER_CONFIRMED;
        break;
    case ORDER_PAID_EV:
        s->status = ORDER_PAID;
        copy_str(s->paid_from, sizeof(s->paid_from), e->wallet_id);
        s->paid_minor = e->amount_minor;
        break;
    case ORDER_SHIPPED_EV:
        s->status = ORDER_SHIPPED;
        break;
    case ORDER_DELIVERED_EV:
        s->status = ORDER_DELIVERED;
        break;
    case ORDER_CANCELLED_EV:
        s->status = ORDER_CANCELLED;
        break;
    case ORDER_ROLLED_BACK:
        s->status = e->status;
        set_items(s, e->items, e->items_len);
        break;
    }
    s->updated_at_ms = e->occurred_at_ms;
    copy_str(s->updated_by, sizeof(s->updated_by), e->actor);
}

/* ---- deciding ---- */

static void reject(struct order_decision *out, const struct es_outcome *o, const char *detail)
{
    out->outcome = o;
    out->detail = detail;
}

static void reject_status(struct order_decision *out, const struct order_state *s,
                          const char *detail)
{
    reject(out, ORDER_invalid_transition, detail);
    out->with_status = true;
    out->current_status = s->status;
}

/* A line's price in the order's currency. A price is money (API.md): more
 * digits than the currency has, or a value past int64 minor units, is
 * 400 like any amount; only a line or order total past it is 422. */
static bool price_parse(const struct order_line *l, const char *currency, struct order_item *it,
                        struct order_decision *out)
{
    int exponent = wx_currency_exponent(currency);
    assert(exponent >= 0); /* orders only hold known currencies */
    int err = wx_money_parse(l->unit_price, strlen(l->unit_price), exponent,
                             &it->unit_price_minor);
    if (err == WX_ERR_OVERFLOW) {
        reject(out, ES_invalid_request, "unitPrice is beyond the largest amount in this currency");
        return false;
    }
    if (err) {
        reject(out, ES_invalid_request,
               "unitPrice has more decimal places than the currency allows");
        return false;
    }
    it->quantity = l->quantity;
    return true;
}

/* quantity x unit price into line_total_minor. */
static bool line_total(struct order_item *it, struct order_decision *out)
{
    if (__builtin_mul_overflow(it->quantity, it->unit_price_minor, &it->line_total_minor)) {
        reject(out, ORDER_total_overflow, "quantity times unitPrice is too large");
        return false;
    }
    return true;
}

static void decide_create(const struct order_state *s, const struct order_command *c,
                          struct order_decision *out)
{
    if (s->exists) {
        reject(out, ORDER_order_already_exists, "an order with this orderId already exists");
        return;
    }
    assert(c->lines_len <= ORDER_ITEMS_MAX); /* the parser refuses more */
    /* Every price first: an invalid request is a 400 wherever its fault
     * is, never a 422 because another line overflowed before it. */
    for (size_t i = 0; i < c->lines_len; i++) {
        struct order_item *it = &out->scratch[i];
        copy_str(it->product_id, sizeof(it->product_id), c->lines[i].product_id);
        if (!price_parse(&c->lines[i], c->currency, it, out))
            return;
    }
    for (size_t i = 0; i < c->lines_len; i++)
        if (!line_total(&out->scratch[i], out))
            return;
    int64_t total;
    if (!items_total(out->scratch, c->lines_len, &total)) {
        reject(out, ORDER_total_overflow, "the order total is too large");
        return;
    }
    out->outcome = ES_OK;
    out->event.kind = ORDER_CREATED;
    out->event.customer_id = c->customer_id;
    out->event.currency = c->currency;
    out->event.items = out->scratch;
    out->event.items_len = c->lines_len;
}

/* The order with one item put in (added or replaced) must still total. */
static bool total_with(const struct order_state *s, const struct order_item *it,
                       struct order_decision *out)
{
    int64_t total = 0;
    for (size_t i = 0; i < s->items_len; i++) {
        int64_t line = strcmp(s->items[i].product_id, it->product_id) == 0
                           ? 0
                           : s->items[i].line_total_minor;
        if (__builtin_add_overflow(total, line, &total))
            goto overflow;
    }
    if (!__builtin_add_overflow(total, it->line_total_minor, &total))
        return true;
overflow:
    reject(out, ORDER_total_overflow, "the order total is too large");
    return false;
}

static void decide_item(const struct order_state *s, const struct order_command *c,
                        struct order_decision *out)
{
    if (s->status != ORDER_PENDING) {
        reject_status(out, s, "items change only while the order is pending");
        return;
    }
    const char *product = c->kind == ORDER_CMD_ADD_ITEM ? c->lines[0].product_id : c->product_id;
    size_t at = find_item(s, product);
    struct order_item *it = &out->event.item;
    copy_str(it->product_id, sizeof(it->product_id), product);
    if (c->kind == ORDER_CMD_REMOVE_ITEM || c->kind == ORDER_CMD_CHANGE_ITEM) {
        if (at == SIZE_MAX) {
            reject(out, ORDER_item_not_found, "the order has no item with this productId");
            return;
        }
    } else if (at != SIZE_MAX) {
        reject(out, ORDER_item_already_exists, "the order has an item with this productId");
        return;
    } else if (s->items_len == ORDER_ITEMS_MAX) {
        reject(out, ORDER_too_many_items, "an order holds at most 100 items");
        return;
    }
    if (c->kind == ORDER_CMD_REMOVE_ITEM) {
        out->event.kind = ORDER_ITEM_REMOVED;
    } else {
        const struct order_line *line = &c->lines[0];
        if (line->unit_price == NULL) { /* change without a price keeps it */
            it->quantity = line->quantity;
            it->unit_price_minor = s->items[at].unit_price_minor;
        } else if (!price_parse(line, s->currency, it, out)) {
            return;
        }
        if (!line_total(it, out) || !total_with(s, it, out))
            return;
        out->event.kind = c->kind == ORDER_CMD_ADD_ITEM ? ORDER_ITEM_ADDED : ORDER_ITEM_CHANGED;
    }
    out->outcome = ES_OK;
}

/* confirm, ship, deliver: one status to the next. */
static void decide_step(const struct order_state *s, int64_t version,
                        const struct order_command *c, struct order_decision *out)
{
    static const struct {
        enum order_status from;
        enum order_event_kind event;
        const char *detail;
    } steps[] = {
        [ORDER_CMD_CONFIRM] = {ORDER_PENDING, ORDER_CONFIRMED_EV, "only a pending order is confirmed"},
        [ORDER_CMD_SHIP] = {ORDER_PAID, ORDER_SHIPPED_EV, "only a paid order is shipped"},
        [ORDER_CMD_DELIVER] = {ORDER_SHIPPED, ORDER_DELIVERED_EV, "only a shipped order is delivered"},
    };
    if (c->expected_version >= 0 && c->expected_version != version) {
        reject(out, ES_version_conflict, "the order has changed since expectedVersion");
        return;
    }
    if (s->status != steps[c->kind].from) {
        reject_status(out, s, steps[c->kind].detail);
        return;
    }
    if (c->kind == ORDER_CMD_CONFIRM && s->items_len == 0) {
        reject(out, ORDER_empty_order, "add an item before confirming the order");
        return;
    }
    out->outcome = ES_OK;
    out->event.kind = steps[c->kind].event;
}

void order_decide(const struct order_state *s, int64_t version, const struct order_command *c,
                  int64_t now_ms, struct order_decision *out)
{
    memset(out, 0, offsetof(struct order_decision, scratch));
    out->event.order_id = c->order_id;
    out->event.occurred_at_ms = now_ms;
    if (c->kind == ORDER_CMD_CREATE) {
        decide_create(s, c, out);
        return;
    }
    if (!s->exists) {
        reject(out, ORDER_order_not_found, "no order with this orderId");
        return;
    }
    switch (c->kind) {
    case ORDER_CMD_ADD_ITEM:
    case ORDER_CMD_CHANGE_ITEM:
    case ORDER_CMD_REMOVE_ITEM:
        decide_item(s, c, out);
        break;
    case ORDER_CMD_CONFIRM:
    case ORDER_CMD_SHIP:
    case ORDER_CMD_DELIVER:
        decide_step(s, version, c, out);
        break;
    case ORDER_CMD_PAY:
        if (s->status != ORDER_CONFIRMED) {
            reject_status(out, s, "only a confirmed order is paid");
            return;
        }
        /* The wallet's own rules (funds, currency) are the wallet
         * decider's, in the same command (order/commands.c). */
        out->outcome = ES_OK;
        out->event.kind = ORDER_PAID_EV;
        out->event.wallet_id = c->wallet_id;
        out->event.amount_minor = s->total_minor;
        out->moves_money = s->total_minor > 0; /* a free order moves nothing */
        break;
    case ORDER_CMD_CANCEL:
        if (s->status != ORDER_PENDING && s->status != ORDER_CONFIRMED &&
            s->status != ORDER_PAID) {
            reject_status(out, s, "only a pending, confirmed or paid order is cancelled");
            return;
        }
        out->outcome = ES_OK;
        out->event.kind = ORDER_CANCELLED_EV;
        out->event.reason = c->reason;
        if (s->status == ORDER_PAID) {
            out->event.wallet_id = s->paid_from;
            out->event.amount_minor = s->paid_minor;
            out->moves_money = s->paid_minor > 0;
        }
        break;
    case ORDER_CMD_CREATE:
    case ORDER_CMD_ROLLBACK:
        assert(!"decided elsewhere");
        break;
    }
}

void order_decide_rollback(const struct order_state *s, int64_t version,
                           const struct order_state *then, const struct order_command *c,
                           int64_t now_ms, struct order_decision *out)
{
    assert(c->kind == ORDER_CMD_ROLLBACK && c->to_version >= 1); /* the parser refuses < 1 */
    memset(out, 0, offsetof(struct order_decision, scratch));
    out->event.order_id = c->order_id;
    out->event.occurred_at_ms = now_ms;
    if (!s->exists) {
        reject(out, ORDER_order_not_found, "no order with this orderId");
        return;
    }
    if (s->status != ORDER_PENDING && s->status != ORDER_CONFIRMED) {
        reject_status(out, s, "a paid, shipped, delivered or cancelled order is not rolled back");
        return;
    }
    if (c->to_version >= version || then == NULL) {
        reject(out, ORDER_invalid_version, "toVersion must be below the order's version");
        return;
    }
    /* Only pending and confirmed orders are rolled back, and neither was
     * ever paid (paying is one way), so `then` is pending or confirmed too. */
    assert(then->exists && (then->status == ORDER_PENDING || then->status == ORDER_CONFIRMED));
    out->outcome = ES_OK;
    out->event.kind = ORDER_ROLLED_BACK;
    out->event.to_version = c->to_version;
    out->event.status = then->status;
    out->event.items = then->items;
    out->event.items_len = then->items_len;
}
