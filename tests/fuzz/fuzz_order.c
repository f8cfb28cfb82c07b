/* libFuzzer: any bytes as the body of each order command (and a choice of
 * path parameters, good and bad) must parse or be refused with a reason,
 * never crash. A parsed command must hold what the parser promises the
 * deciders — ids valid, quantities in range, prices that parse for every
 * currency or overflow, at most 100 lines with unique productIds — and the
 * deciders and evolve, run on it against orders in two states, must answer
 * without tripping an assertion: nothing a client sends may do that.
 *
 * Input: byte 0 picks the command, byte 1 the path parameters and the
 * state's currency, the rest is the body. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/id.h"
#include "base/money.h"
#include "order/order.h"

static const char *const path_ids[] = {"o-1", "p", "", "a b", "statistics",
                                       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
#define PATH_IDS (sizeof(path_ids) / sizeof(path_ids[0]))
static const char *const currencies[] = {"USD", "JPY", "KWD", "CLF"};

/* What the parser guarantees of a price: the grammar holds, so with the
 * most digits any currency has (4) it parses or overflows; with fewer it
 * may only fail for having more fraction digits than that currency. */
static void check_price(const char *price)
{
    size_t len = strlen(price);
    const char *dot = memchr(price, '.', len);
    size_t fraction = dot ? len - (size_t)(dot - price) - 1 : 0;
    for (int exponent = 0; exponent <= 4; exponent++) {
        int64_t minor;
        int err = wx_money_parse(price, len, exponent, &minor);
        assert(err == 0 || err == WX_ERR_OVERFLOW ||
               (err == WX_ERR_INVALID && fraction > (size_t)exponent));
        assert(err != 0 || minor >= 0);
    }
}

static void check_parsed(const struct order_command *c, enum order_command_kind kind,
                         const char *order_id, const char *product_id)
{
    assert(c->kind == kind);
    if (kind == ORDER_CMD_CREATE) {
        assert(c->order_id == NULL || (wx_id_ok(c->order_id) && strcmp(c->order_id, "statistics")));
        assert(wx_id_ok(c->customer_id));
        assert(c->currency != NULL && wx_currency_exponent(c->currency) >= 0);
        assert(c->lines_len <= ORDER_ITEMS_MAX);
    } else {
        assert(c->order_id == order_id && wx_id_ok(order_id));
    }
    if (kind == ORDER_CMD_ADD_ITEM || kind == ORDER_CMD_CHANGE_ITEM)
        assert(c->lines_len == 1);
    if (kind == ORDER_CMD_CHANGE_ITEM || kind == ORDER_CMD_REMOVE_ITEM)
        assert(c->product_id == product_id && wx_id_ok(product_id));
    if (kind == ORDER_CMD_CHANGE_ITEM)
        assert(c->lines[0].product_id == product_id);
    for (size_t i = 0; i < c->lines_len; i++) {
        const struct order_line *l = &c->lines[i];
        assert(wx_id_ok(l->product_id));
        assert(l->quantity >= 1 && l->quantity <= ORDER_QUANTITY_MAX);
        assert(l->unit_price != NULL || kind == ORDER_CMD_CHANGE_ITEM);
        if (l->unit_price != NULL)
            check_price(l->unit_price);
        for (size_t j = 0; j < i; j++)
            assert(strcmp(c->lines[j].product_id, l->product_id) != 0);
    }
    if (kind == ORDER_CMD_PAY)
        assert(wx_id_ok(c->wallet_id));
    if (kind == ORDER_CMD_CANCEL)
        assert(c->reason == NULL || strlen(c->reason) <= ORDER_REASON_BYTES_MAX);
    if (kind == ORDER_CMD_ROLLBACK)
        assert(c->to_version >= 1);
    assert(c->expected_version >= -1);
}

/* An order as a client might find it: pending or confirmed, with items. */
static void order_state(struct order_state *s, const char *currency, bool confirmed)
{
    order_state_init(s);
    s->exists = true;
    s->status = confirmed ? ORDER_CONFIRMED : ORDER_PENDING;
    snprintf(s->customer_id, sizeof(s->customer_id), "c");
    snprintf(s->currency, sizeof(s->currency), "%s", currency);
    static const char *const products[] = {"p", "q", "o-1"};
    for (size_t i = 0; i < 3; i++) {
        struct order_item *it = &s->items[i];
        snprintf(it->product_id, sizeof(it->product_id), "%s", products[i]);
        it->quantity = (int64_t)i + 1;
        it->unit_price_minor = i == 2 ? INT64_MAX / 8 : 100;
        it->line_total_minor = it->quantity * it->unit_price_minor;
        s->total_minor += it->line_total_minor;
    }
    s->items_len = 3;
}

/* The decision on one state; a success is folded into a copy of it. */
static void decide_and_evolve(const struct order_state *s, int64_t version,
                              const struct order_state *then, const struct order_command *c)
{
    struct order_decision *d = malloc(sizeof(*d));
    struct order_state *next = malloc(sizeof(*next));
    assert(d != NULL && next != NULL);
    if (c->kind == ORDER_CMD_ROLLBACK)
        order_decide_rollback(s, version, c->to_version < version ? then : NULL, c, 1000, d);
    else
        order_decide(s, version, c, 1000, d);
    if (d->outcome == ES_OK) {
        memcpy(next, s, sizeof(*next));
        order_evolve(next, &d->event);
        int64_t total = 0, line;
        for (size_t i = 0; i < next->items_len; i++) {
            const struct order_item *it = &next->items[i];
            assert(!__builtin_mul_overflow(it->quantity, it->unit_price_minor, &line));
            assert(line == it->line_total_minor);
            assert(!__builtin_add_overflow(total, line, &total));
        }
        assert(total == next->total_minor && next->items_len <= ORDER_ITEMS_MAX);
    } else {
        assert(d->detail != NULL);
    }
    free(next);
    free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    enum order_command_kind kind = (enum order_command_kind)(data[0] % 10);
    const char *order_id = path_ids[data[1] % PATH_IDS];
    const char *product_id = path_ids[(data[1] / PATH_IDS) % PATH_IDS];
    const char *currency = currencies[(data[1] >> 6) & 3];
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct order_command *c = NULL;
    const struct es_outcome *outcome = NULL;
    const char *detail = NULL;
    /* With a caller (bit 4 of the kind byte) a create's customerId
     * defaults to its subject. */
    const char *default_customer = data[0] & 16 ? "c-1" : NULL;
    bool ok = order_command_parse(kind, order_id, product_id, (const char *)data + 2, size - 2,
                                  currency, default_customer, &arena, &c, &outcome, &detail);
    if (!ok) {
        assert(detail != NULL);
        assert(outcome == ES_invalid_request || outcome == ES_internal_error);
    } else {
        check_parsed(c, kind, order_id, product_id);
        struct order_state *s = malloc(sizeof(*s));
        struct order_state *then = malloc(sizeof(*then));
        assert(s != NULL && then != NULL);
        if (kind == ORDER_CMD_CREATE) {
            if (c->order_id == NULL)
                c->order_id = "generated";
            order_state_init(s);
            decide_and_evolve(s, 0, NULL, c);
        } else {
            order_state(then, currency, false);
            for (int confirmed = 0; confirmed < 2; confirmed++) {
                order_state(s, currency, confirmed);
                decide_and_evolve(s, 3, then, c);
            }
        }
        free(then);
        free(s);
    }
    wx_arena_release(&arena);
    return 0;
}
