/* The order deciders and evolve, pure and table-driven (src/order/decide.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "order/order.h"

#define NOW 1700000000000LL
#define HALF_INT64 4611686018427387904LL /* 2^62: two of it are one past INT64_MAX */

/* An order in `status` with `n` items p0, p1, ... of quantity 1 at `price`. */
static struct order_state *order(enum order_status status, const char *currency, size_t n,
                                 int64_t price)
{
    struct order_state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    order_state_init(s);
    s->exists = true;
    s->status = status;
    snprintf(s->customer_id, sizeof(s->customer_id), "c");
    snprintf(s->currency, sizeof(s->currency), "%s", currency);
    for (size_t i = 0; i < n; i++) {
        struct order_item *it = &s->items[i];
        snprintf(it->product_id, sizeof(it->product_id), "p%zu", i);
        it->quantity = 1;
        it->unit_price_minor = price;
        it->line_total_minor = price;
        s->total_minor += price;
    }
    s->items_len = n;
    if (status >= ORDER_PAID && status != ORDER_CANCELLED) {
        snprintf(s->paid_from, sizeof(s->paid_from), "w");
        s->paid_minor = s->total_minor;
    }
    return s;
}

static struct order_decision *decide(const struct order_state *s, int64_t version,
                                     const struct order_command *c)
{
    struct order_decision *d = malloc(sizeof(*d));
    assert_non_null(d);
    order_decide(s, version, c, NOW, d);
    return d;
}

static void expect_outcome(const char *name, const struct order_decision *d,
                           const struct es_outcome *want)
{
    if (d->outcome != want)
        fail_msg("%s: outcome %s, want %s", name, d->outcome->code, want->code);
}

struct step_case {
    const char *name;
    enum order_status status;
    size_t items;
    enum order_command_kind kind;
    int64_t expected_version; /* the order is at version 5 */
    const struct es_outcome *outcome;
    enum order_event_kind event;
    bool moves_money;
};

static const struct step_case step_cases[] = {
    {"confirm", ORDER_PENDING, 2, ORDER_CMD_CONFIRM, -1, ES_OK, ORDER_CONFIRMED_EV, false},
    {"confirm at its version", ORDER_PENDING, 2, ORDER_CMD_CONFIRM, 5, ES_OK, ORDER_CONFIRMED_EV,
     false},
    {"confirm stale", ORDER_PENDING, 2, ORDER_CMD_CONFIRM, 4, ES_version_conflict, 0, false},
    {"confirm stale and confirmed", ORDER_CONFIRMED, 2, ORDER_CMD_CONFIRM, 4, ES_version_conflict,
     0, false},
    {"confirm empty", ORDER_PENDING, 0, ORDER_CMD_CONFIRM, -1, ORDER_empty_order, 0, false},
    {"confirm twice", ORDER_CONFIRMED, 2, ORDER_CMD_CONFIRM, -1, ORDER_invalid_transition, 0,
     false},
    {"pay", ORDER_CONFIRMED, 2, ORDER_CMD_PAY, -1, ES_OK, ORDER_PAID_EV, true},
    {"pay free", ORDER_CONFIRMED, 0, ORDER_CMD_PAY, -1, ES_OK, ORDER_PAID_EV, false},
    {"pay pending", ORDER_PENDING, 2, ORDER_CMD_PAY, -1, ORDER_invalid_transition, 0, false},
    {"pay twice", ORDER_PAID, 2, ORDER_CMD_PAY, -1, ORDER_invalid_transition, 0, false},
    {"ship", ORDER_PAID, 2, ORDER_CMD_SHIP, -1, ES_OK, ORDER_SHIPPED_EV, false},
    {"ship unpaid", ORDER_CONFIRMED, 2, ORDER_CMD_SHIP, -1, ORDER_invalid_transition, 0, false},
    {"deliver", ORDER_SHIPPED, 2, ORDER_CMD_DELIVER, -1, ES_OK, ORDER_DELIVERED_EV, false},
    {"deliver unshipped", ORDER_PAID, 2, ORDER_CMD_DELIVER, -1, ORDER_invalid_transition, 0,
     false},
    {"cancel pending", ORDER_PENDING, 2, ORDER_CMD_CANCEL, -1, ES_OK, ORDER_CANCELLED_EV, false},
    {"cancel confirmed", ORDER_CONFIRMED, 2, ORDER_CMD_CANCEL, -1, ES_OK, ORDER_CANCELLED_EV,
     false},
    {"cancel paid refunds", ORDER_PAID, 2, ORDER_CMD_CANCEL, -1, ES_OK, ORDER_CANCELLED_EV, true},
    {"cancel shipped", ORDER_SHIPPED, 2, ORDER_CMD_CANCEL, -1, ORDER_invalid_transition, 0, false},
    {"cancel delivered", ORDER_DELIVERED, 2, ORDER_CMD_CANCEL, -1, ORDER_invalid_transition, 0,
     false},
    {"cancel twice", ORDER_CANCELLED, 2, ORDER_CMD_CANCEL, -1, ORDER_invalid_transition, 0, false},
};

static void test_steps(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(step_cases) / sizeof(step_cases[0]); i++) {
        const struct step_case *c = &step_cases[i];
        struct order_state *s = order(c->status, "USD", c->items, 250);
        struct order_command cmd = {.kind = c->kind, .order_id = "o", .wallet_id = "w",
                                    .expected_version = c->expected_version};
        struct order_decision *d = decide(s, 5, &cmd);
        expect_outcome(c->name, d, c->outcome);
        if (c->outcome == ORDER_invalid_transition) {
            assert_true(d->with_status);
            assert_int_equal(d->current_status, c->status);
        }
        if (c->outcome == ES_OK) {
            assert_int_equal(d->event.kind, c->event);
            assert_int_equal(d->moves_money, c->moves_money);
            if (c->moves_money) /* what is paid, and what a cancel gives back */
                assert_int_equal(d->event.amount_minor, 250 * (int64_t)c->items);
            order_evolve(s, &d->event);
            assert_int_equal(s->updated_at_ms, NOW);
        }
        free(d);
        free(s);
    }
}

static void test_unknown_order(void **state)
{
    (void)state;
    struct order_state s;
    order_state_init(&s);
    struct order_line line = {"p", 1, "1"};
    for (int k = ORDER_CMD_ADD_ITEM; k <= ORDER_CMD_CANCEL; k++) {
        struct order_command cmd = {.kind = k, .order_id = "o", .product_id = "p", .lines = &line,
                                    .lines_len = 1, .wallet_id = "w", .expected_version = -1};
        struct order_decision *d = decide(&s, 0, &cmd);
        expect_outcome("unknown order", d, ORDER_order_not_found);
        free(d);
    }
}

struct item_case {
    const char *name;
    enum order_command_kind kind;
    const char *currency;
    size_t items;  /* p0 .. p(items - 1), 1 x price each */
    int64_t price; /* of the existing items */
    const char *product;
    int64_t quantity;
    const char *unit_price; /* NULL: unchanged (change) */
    const struct es_outcome *outcome;
    int64_t total_after;
};

static const struct item_case item_cases[] = {
    {"add", ORDER_CMD_ADD_ITEM, "USD", 2, 100, "new", 3, "0.50", ES_OK, 350},
    {"add existing", ORDER_CMD_ADD_ITEM, "USD", 2, 100, "p1", 1, "1", ORDER_item_already_exists,
     0},
    {"add the 100th", ORDER_CMD_ADD_ITEM, "USD", 99, 1, "new", 1, "0.01", ES_OK, 100},
    {"add the 101st", ORDER_CMD_ADD_ITEM, "USD", 100, 1, "new", 1, "0.01",
     ORDER_too_many_items, 0},
    {"add free", ORDER_CMD_ADD_ITEM, "USD", 1, 100, "gift", 5, "0", ES_OK, 100},
    {"add yen digits", ORDER_CMD_ADD_ITEM, "JPY", 1, 100, "new", 1, "0.5", ES_invalid_request, 0},
    {"add kwd", ORDER_CMD_ADD_ITEM, "KWD", 0, 0, "new", 2, "1.005", ES_OK, 2010},
    {"add a price past int64", ORDER_CMD_ADD_ITEM, "JPY", 0, 0, "new", 1, "9223372036854775808",
     ES_invalid_request, 0},
    {"add a line past int64", ORDER_CMD_ADD_ITEM, "JPY", 0, 0, "new", 2, "4611686018427387904",
     ORDER_total_overflow, 0},
    {"add a total past int64", ORDER_CMD_ADD_ITEM, "JPY", 1, HALF_INT64, "new", 1,
     "4611686018427387904", ORDER_total_overflow, 0},
    {"change", ORDER_CMD_CHANGE_ITEM, "USD", 2, 100, "p0", 4, "0.25", ES_OK, 200},
    {"change quantity keeps price", ORDER_CMD_CHANGE_ITEM, "USD", 2, 100, "p0", 4, NULL, ES_OK,
     500},
    {"change missing", ORDER_CMD_CHANGE_ITEM, "USD", 2, 100, "zz", 4, NULL, ORDER_item_not_found,
     0},
    {"change past int64", ORDER_CMD_CHANGE_ITEM, "JPY", 1, HALF_INT64, "p0", 2, NULL,
     ORDER_total_overflow, 0},
    /* The changed line's old total is not counted: 2^62 + (2^62 - 1) fits exactly. */
    {"change a big line", ORDER_CMD_CHANGE_ITEM, "JPY", 2, HALF_INT64 - 1, "p0", 1,
     "4611686018427387904", ES_OK, INT64_MAX},
    {"remove", ORDER_CMD_REMOVE_ITEM, "USD", 3, 100, "p1", 0, NULL, ES_OK, 200},
    {"remove the last", ORDER_CMD_REMOVE_ITEM, "USD", 1, 100, "p0", 0, NULL, ES_OK, 0},
    {"remove missing", ORDER_CMD_REMOVE_ITEM, "USD", 1, 100, "zz", 0, NULL, ORDER_item_not_found,
     0},
};

static void test_items(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(item_cases) / sizeof(item_cases[0]); i++) {
        const struct item_case *c = &item_cases[i];
        struct order_state *s = order(ORDER_PENDING, c->currency, c->items, c->price);
        struct order_line line = {c->product, c->quantity, c->unit_price};
        struct order_command cmd = {.kind = c->kind, .order_id = "o", .product_id = c->product,
                                    .lines = &line, .lines_len = 1, .expected_version = -1};
        struct order_decision *d = decide(s, 3, &cmd);
        expect_outcome(c->name, d, c->outcome);
        if (c->outcome == ES_OK) {
            order_evolve(s, &d->event);
            if (s->total_minor != c->total_after)
                fail_msg("%s: total %lld, want %lld", c->name, (long long)s->total_minor,
                         (long long)c->total_after);
        }
        free(d);
        free(s);
    }
}

static void test_items_only_while_pending(void **state)
{
    (void)state;
    for (int st = ORDER_CONFIRMED; st < ORDER_STATUSES; st++) {
        struct order_state *s = order(st, "USD", 2, 100);
        struct order_line line = {"p0", 1, "1"};
        for (int k = ORDER_CMD_ADD_ITEM; k <= ORDER_CMD_REMOVE_ITEM; k++) {
            struct order_command cmd = {.kind = k, .order_id = "o", .product_id = "p0",
                                        .lines = &line, .lines_len = 1, .expected_version = -1};
            struct order_decision *d = decide(s, 3, &cmd);
            expect_outcome(order_status_name(st), d, ORDER_invalid_transition);
            assert_int_equal(d->current_status, st);
            free(d);
        }
        free(s);
    }
}

static void test_remove_keeps_the_others_in_order(void **state)
{
    (void)state;
    struct order_state *s = order(ORDER_PENDING, "USD", 4, 100);
    struct order_command cmd = {.kind = ORDER_CMD_REMOVE_ITEM, .order_id = "o",
                                .product_id = "p1", .expected_version = -1};
    struct order_decision *d = decide(s, 1, &cmd);
    expect_outcome("remove", d, ES_OK);
    order_evolve(s, &d->event);
    assert_int_equal(s->items_len, 3);
    assert_string_equal(s->items[0].product_id, "p0");
    assert_string_equal(s->items[1].product_id, "p2");
    assert_string_equal(s->items[2].product_id, "p3");
    free(d);
    free(s);
}

static void test_create(void **state)
{
    (void)state;
    struct order_state fresh;
    order_state_init(&fresh);
    struct order_line lines[] = {{"a", 2, "1.25"}, {"b", 1, "0"}, {"c", 3, "0.10"}};
    struct order_command cmd = {.kind = ORDER_CMD_CREATE, .order_id = "o", .customer_id = "c",
                                .currency = "USD", .lines = lines, .lines_len = 3,
                                .expected_version = -1};
    struct order_decision *d = decide(&fresh, 0, &cmd);
    expect_outcome("create", d, ES_OK);
    struct order_state *s = calloc(1, sizeof(*s));
    order_state_init(s);
    order_evolve(s, &d->event);
    assert_true(s->exists && s->status == ORDER_PENDING && s->items_len == 3);
    assert_int_equal(s->items[0].line_total_minor, 250);
    assert_int_equal(s->total_minor, 280);
    assert_int_equal(s->created_at_ms, NOW);
    free(d);
    d = decide(s, 1, &cmd);
    expect_outcome("create twice", d, ORDER_order_already_exists);
    free(d);
    free(s);
    /* Two lines of 2^62 yen: one past the largest total. */
    struct order_line big[] = {{"a", 1, "4611686018427387904"}, {"b", 1, "4611686018427387904"}};
    struct order_command over = {.kind = ORDER_CMD_CREATE, .order_id = "o", .customer_id = "c",
                                 .currency = "JPY", .lines = big, .lines_len = 2,
                                 .expected_version = -1};
    d = decide(&fresh, 0, &over);
    expect_outcome("create total overflow", d, ORDER_total_overflow);
    free(d);
    /* A line that overflows before a price that is not money: the 400 wins,
     * wherever it is (a 400 is never remembered under an Idempotency-Key). */
    struct order_line both[] = {{"a", 2, "9223372036854775807"}, {"b", 1, "0.5"}};
    over.lines = both;
    d = decide(&fresh, 0, &over);
    expect_outcome("create 400 behind a 422", d, ES_invalid_request);
    free(d);
}

static void test_rollback(void **state)
{
    (void)state;
    struct order_state *then = order(ORDER_PENDING, "USD", 1, 100);
    struct order_command cmd = {.kind = ORDER_CMD_ROLLBACK, .order_id = "o", .to_version = 2,
                                .expected_version = -1};
    struct order_decision *d = malloc(sizeof(*d));
    struct order_state *s = order(ORDER_CONFIRMED, "USD", 3, 100);
    order_decide_rollback(s, 5, then, &cmd, NOW, d);
    expect_outcome("rollback", d, ES_OK);
    order_evolve(s, &d->event);
    assert_int_equal(s->status, ORDER_PENDING);
    assert_int_equal(s->items_len, 1);
    assert_int_equal(s->total_minor, 100);
    cmd.to_version = 5;
    order_decide_rollback(s, 5, NULL, &cmd, NOW, d);
    expect_outcome("rollback to now", d, ORDER_invalid_version);
    cmd.to_version = 9;
    order_decide_rollback(s, 5, NULL, &cmd, NOW, d);
    expect_outcome("rollback past now", d, ORDER_invalid_version);
    for (int st = ORDER_PAID; st < ORDER_STATUSES; st++) {
        struct order_state *done = order(st, "USD", 1, 100);
        cmd.to_version = 1;
        order_decide_rollback(done, 5, NULL, &cmd, NOW, d);
        expect_outcome(order_status_name(st), d, ORDER_invalid_transition);
        assert_int_equal(d->current_status, st);
        free(done);
    }
    free(s);
    free(then);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_unknown_order),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_items_only_while_pending),
        cmocka_unit_test(test_remove_keeps_the_others_in_order),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_rollback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
