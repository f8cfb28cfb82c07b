/*
 * The order deciders, pure and table-driven (src/order/decide.c): every
 * transition and every refusal, items, pay and refund, rollback, and
 * evolve applying what decide produced. No database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "order/order.h"
#include "wallet/wallet.h"

#define NOW 1700000000000LL

/* An order in a given status with items p1 (2 x 5.00) and p2 (1 x 1.50). */
static void order_with(struct order_state *s, enum order_status status)
{
    order_state_init(s);
    s->exists = true;
    s->status = status;
    strcpy(s->customer_id, "c1");
    strcpy(s->currency, "USD");
    s->items[0] = (struct order_item){"p1", 2, 500, 1000};
    s->items[1] = (struct order_item){"p2", 1, 150, 150};
    s->items_len = 2;
    s->total_minor = 1150;
    if (status == ORDER_PAID || status == ORDER_SHIPPED || status == ORDER_DELIVERED) {
        strcpy(s->paid_from, "w1");
        s->paid_minor = 1150;
    }
}

static struct order_line line(const char *product, int64_t quantity, const char *price)
{
    return (struct order_line){product, quantity, price};
}

static struct order_command cmd(enum order_command_kind kind)
{
    return (struct order_command){.kind = kind, .order_id = "o1", .expected_version = -1};
}

/* Decides c on s and, when it succeeds, folds the event into s. */
static const struct es_outcome *run(struct order_state *s, int64_t version,
                                    const struct order_command *c, struct order_decision *d)
{
    order_decide(s, version, c, NOW, d);
    if (d->outcome == ES_OK)
        order_evolve(s, &d->event);
    return d->outcome;
}

struct step_case {
    const char *name;
    enum order_command_kind kind;
    enum order_status from;
    const struct es_outcome *outcome;
    enum order_status to; /* when accepted */
};

/* Every status against every life-cycle command: the table of API.md. */
static const struct step_case step_cases[] = {
    {"confirm pending", ORDER_CMD_CONFIRM, ORDER_PENDING, ES_OK, ORDER_CONFIRMED},
    {"confirm confirmed", ORDER_CMD_CONFIRM, ORDER_CONFIRMED, ORDER_invalid_transition, 0},
    {"confirm paid", ORDER_CMD_CONFIRM, ORDER_PAID, ORDER_invalid_transition, 0},
    {"confirm cancelled", ORDER_CMD_CONFIRM, ORDER_CANCELLED, ORDER_invalid_transition, 0},
    {"pay confirmed", ORDER_CMD_PAY, ORDER_CONFIRMED, ES_OK, ORDER_PAID},
    {"pay pending", ORDER_CMD_PAY, ORDER_PENDING, ORDER_invalid_transition, 0},
    {"pay paid", ORDER_CMD_PAY, ORDER_PAID, ORDER_invalid_transition, 0},
    {"pay delivered", ORDER_CMD_PAY, ORDER_DELIVERED, ORDER_invalid_transition, 0},
    {"ship paid", ORDER_CMD_SHIP, ORDER_PAID, ES_OK, ORDER_SHIPPED},
    {"ship confirmed", ORDER_CMD_SHIP, ORDER_CONFIRMED, ORDER_invalid_transition, 0},
    {"ship shipped", ORDER_CMD_SHIP, ORDER_SHIPPED, ORDER_invalid_transition, 0},
    {"deliver shipped", ORDER_CMD_DELIVER, ORDER_SHIPPED, ES_OK, ORDER_DELIVERED},
    {"deliver paid", ORDER_CMD_DELIVER, ORDER_PAID, ORDER_invalid_transition, 0},
    {"deliver delivered", ORDER_CMD_DELIVER, ORDER_DELIVERED, ORDER_invalid_transition, 0},
    {"cancel pending", ORDER_CMD_CANCEL, ORDER_PENDING, ES_OK, ORDER_CANCELLED},
    {"cancel confirmed", ORDER_CMD_CANCEL, ORDER_CONFIRMED, ES_OK, ORDER_CANCELLED},
    {"cancel paid", ORDER_CMD_CANCEL, ORDER_PAID, ES_OK, ORDER_CANCELLED},
    {"cancel shipped", ORDER_CMD_CANCEL, ORDER_SHIPPED, ORDER_invalid_transition, 0},
    {"cancel delivered", ORDER_CMD_CANCEL, ORDER_DELIVERED, ORDER_invalid_transition, 0},
    {"cancel cancelled", ORDER_CMD_CANCEL, ORDER_CANCELLED, ORDER_invalid_transition, 0},
};

static void test_life_cycle(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(step_cases) / sizeof(step_cases[0]); i++) {
        const struct step_case *t = &step_cases[i];
        struct order_state s;
        order_with(&s, t->from);
        struct order_command c = cmd(t->kind);
        c.wallet_id = "w1";
        struct order_decision d;
        if (run(&s, 5, &c, &d) != t->outcome)
            fail_msg("%s: outcome %s, want %s", t->name, d.outcome->code, t->outcome->code);
        if (t->outcome == ES_OK) {
            assert_int_equal(s.status, t->to);
            assert_int_equal(s.updated_at_ms, NOW);
        } else {
            /* A refused transition says where the order is. */
            assert_true(d.with_status);
            assert_int_equal(d.current_status, t->from);
            assert_int_equal(s.status, t->from);
        }
    }
}

static void test_pay_and_refund(void **state)
{
    (void)state;
    struct order_state s;
    order_with(&s, ORDER_CONFIRMED);
    struct order_command c = cmd(ORDER_CMD_PAY);
    c.wallet_id = "w9";
    struct order_decision d;
    assert_ptr_equal(run(&s, 2, &c, &d), ES_OK);
    /* Paying moves the total; the wallet rules are the wallet decider's. */
    assert_true(d.moves_money);
    assert_int_equal(d.event.amount_minor, 1150);
    assert_string_equal(s.paid_from, "w9");
    assert_int_equal(s.paid_minor, 1150);
    c = cmd(ORDER_CMD_CANCEL);
    c.reason = "changed mind";
    assert_ptr_equal(run(&s, 3, &c, &d), ES_OK);
    assert_true(d.moves_money);
    assert_int_equal(d.event.amount_minor, 1150);
    assert_string_equal(d.event.wallet_id, "w9");
    /* A cancel before payment moves nothing. */
    order_with(&s, ORDER_PENDING);
    assert_ptr_equal(run(&s, 1, &c, &d), ES_OK);
    assert_false(d.moves_money);
    assert_int_equal(d.event.amount_minor, 0);
    /* A free order is paid without moving money. */
    order_with(&s, ORDER_CONFIRMED);
    s.items[0].unit_price_minor = s.items[0].line_total_minor = 0;
    s.items[1].unit_price_minor = s.items[1].line_total_minor = 0;
    s.total_minor = 0;
    c = cmd(ORDER_CMD_PAY);
    c.wallet_id = "w1";
    assert_ptr_equal(run(&s, 2, &c, &d), ES_OK);
    assert_false(d.moves_money);
}

static void test_wallet_movement(void **state)
{
    (void)state;
    struct wallet_state w;
    wallet_state_init(&w);
    w.exists = true;
    strcpy(w.currency, "USD");
    w.balance_minor = 1000;
    struct wallet_movement m = {WALLET_DEBITED, "w1", "USD", 1150, "Payment", "order:o1"};
    struct wallet_decision d;
    wallet_decide_movement(&w, &m, NOW, &d);
    assert_ptr_equal(d.outcome, WALLET_insufficient_funds);
    m.amount_minor = 1000;
    wallet_decide_movement(&w, &m, NOW, &d);
    assert_ptr_equal(d.outcome, ES_OK);
    assert_int_equal(d.events[0].balance_after_minor, 0);
    assert_string_equal(d.events[0].reference, "order:o1");
    m.currency = "EUR";
    wallet_decide_movement(&w, &m, NOW, &d);
    assert_ptr_equal(d.outcome, WALLET_currency_mismatch);
    w.exists = false;
    wallet_decide_movement(&w, &m, NOW, &d);
    assert_ptr_equal(d.outcome, WALLET_wallet_not_found);
    w.exists = true;
    w.balance_minor = INT64_MAX;
    m = (struct wallet_movement){WALLET_CREDITED, "w1", "USD", 1, "Refund", "order:o1"};
    wallet_decide_movement(&w, &m, NOW, &d);
    assert_ptr_equal(d.outcome, WALLET_balance_overflow);
}

static void test_create(void **state)
{
    (void)state;
    struct order_state s;
    order_state_init(&s);
    struct order_line lines[3] = {line("p1", 2, "9.99"), line("p2", 1, "0"),
                                  line("p3", 1000000, "0.01")};
    struct order_command c = cmd(ORDER_CMD_CREATE);
    c.customer_id = "c1";
    c.currency = "USD";
    c.lines = lines;
    c.lines_len = 3;
    struct order_decision d;
    assert_ptr_equal(run(&s, 0, &c, &d), ES_OK);
    assert_int_equal(s.status, ORDER_PENDING);
    assert_int_equal(s.items_len, 3);
    assert_int_equal(s.items[0].line_total_minor, 1998);
    assert_int_equal(s.total_minor, 1998 + 0 + 1000000);
    assert_int_equal(order_state_bytes(&s),
                     offsetof(struct order_state, items) + 3 * sizeof(struct order_item));
    /* Again: it exists. */
    assert_ptr_equal(run(&s, 1, &c, &d), ORDER_order_already_exists);
    /* Digits per currency: JPY has none, KWD three. */
    order_state_init(&s);
    c.currency = "JPY";
    lines[0] = line("p1", 1, "1.5");
    assert_ptr_equal(run(&s, 0, &c, &d), ES_invalid_request);
    c.currency = "KWD";
    lines[0] = line("p1", 1, "1.005");
    assert_ptr_equal(run(&s, 0, &c, &d), ES_OK);
    assert_int_equal(s.items[0].unit_price_minor, 1005);
    /* A line or a total past int64. */
    order_state_init(&s);
    c.currency = "JPY";
    lines[0] = line("p1", 2, "9223372036854775807");
    c.lines_len = 1;
    assert_ptr_equal(run(&s, 0, &c, &d), ORDER_total_overflow);
    /* Every price is checked before any line is multiplied: a price with
     * too many digits is a 400 even after a line that would overflow. */
    lines[1] = line("p2", 1, "0.5");
    c.lines_len = 2;
    assert_ptr_equal(run(&s, 0, &c, &d), ES_invalid_request);
    lines[0] = line("p1", 1, "9223372036854775807");
    lines[1] = line("p2", 1, "1");
    c.lines_len = 2;
    assert_ptr_equal(run(&s, 0, &c, &d), ORDER_total_overflow);
    assert_false(s.exists);
    /* An empty order may exist; confirming it may not. */
    c.lines_len = 0;
    assert_ptr_equal(run(&s, 0, &c, &d), ES_OK);
    struct order_command confirm = cmd(ORDER_CMD_CONFIRM);
    assert_ptr_equal(run(&s, 1, &confirm, &d), ORDER_empty_order);
}

static void test_items(void **state)
{
    (void)state;
    struct order_state s;
    order_with(&s, ORDER_PENDING);
    struct order_decision d;
    struct order_line l = line("p3", 3, "1.10");
    struct order_command c = cmd(ORDER_CMD_ADD_ITEM);
    c.lines = &l;
    c.lines_len = 1;
    assert_ptr_equal(run(&s, 1, &c, &d), ES_OK);
    assert_int_equal(s.items_len, 3);
    assert_int_equal(s.total_minor, 1150 + 330);
    assert_ptr_equal(run(&s, 2, &c, &d), ORDER_item_already_exists);
    /* Change keeps the price when none is given. */
    l = line("p1", 4, NULL);
    c = cmd(ORDER_CMD_CHANGE_ITEM);
    c.product_id = "p1";
    c.lines = &l;
    c.lines_len = 1;
    assert_ptr_equal(run(&s, 2, &c, &d), ES_OK);
    assert_int_equal(s.items[0].quantity, 4);
    assert_int_equal(s.items[0].line_total_minor, 2000);
    assert_int_equal(s.total_minor, 2000 + 150 + 330);
    c.product_id = "nope";
    assert_ptr_equal(run(&s, 3, &c, &d), ORDER_item_not_found);
    /* Remove keeps the others in their order. */
    c = cmd(ORDER_CMD_REMOVE_ITEM);
    c.product_id = "p1";
    assert_ptr_equal(run(&s, 3, &c, &d), ES_OK);
    assert_int_equal(s.items_len, 2);
    assert_string_equal(s.items[0].product_id, "p2");
    assert_string_equal(s.items[1].product_id, "p3");
    assert_ptr_equal(run(&s, 4, &c, &d), ORDER_item_not_found);
    /* Only while pending. */
    s.status = ORDER_CONFIRMED;
    c.product_id = "p2";
    assert_ptr_equal(run(&s, 4, &c, &d), ORDER_invalid_transition);
    assert_int_equal(d.current_status, ORDER_CONFIRMED);
}

static void test_too_many_items(void **state)
{
    (void)state;
    struct order_state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    order_with(s, ORDER_PENDING);
    s->items_len = 0;
    s->total_minor = 0;
    struct order_decision *d = malloc(sizeof(*d));
    assert_non_null(d);
    char names[ORDER_ITEMS_MAX + 1][16];
    for (int i = 0; i <= ORDER_ITEMS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        struct order_line l = line(names[i], 1, "1");
        struct order_command c = cmd(ORDER_CMD_ADD_ITEM);
        c.lines = &l;
        c.lines_len = 1;
        const struct es_outcome *want = i < ORDER_ITEMS_MAX ? ES_OK : ORDER_too_many_items;
        assert_ptr_equal(run(s, i + 1, &c, d), want);
    }
    assert_int_equal(s->items_len, ORDER_ITEMS_MAX);
    free(d);
    free(s);
}

static void test_expected_version(void **state)
{
    (void)state;
    struct order_state s;
    order_with(&s, ORDER_PENDING);
    struct order_command c = cmd(ORDER_CMD_CONFIRM);
    c.expected_version = 3;
    struct order_decision d;
    assert_ptr_equal(run(&s, 4, &c, &d), ES_version_conflict);
    assert_ptr_equal(run(&s, 3, &c, &d), ES_OK);
    /* Not found comes before anything else. */
    order_state_init(&s);
    assert_ptr_equal(run(&s, 0, &c, &d), ORDER_order_not_found);
}

static void test_rollback(void **state)
{
    (void)state;
    struct order_state now, then;
    order_with(&now, ORDER_CONFIRMED);
    order_with(&then, ORDER_PENDING);
    then.items_len = 1;
    then.total_minor = 1000;
    struct order_command c = cmd(ORDER_CMD_ROLLBACK);
    c.to_version = 1;
    struct order_decision d;
    order_decide_rollback(&now, 3, &then, &c, NOW, &d);
    assert_ptr_equal(d.outcome, ES_OK);
    order_evolve(&now, &d.event);
    assert_int_equal(now.status, ORDER_PENDING);
    assert_int_equal(now.items_len, 1);
    assert_int_equal(now.total_minor, 1000);
    /* Out of range: the writer hands no state over. */
    c.to_version = 3;
    order_decide_rollback(&now, 3, NULL, &c, NOW, &d);
    assert_ptr_equal(d.outcome, ORDER_invalid_version);
    /* Refused once money moved or the order ended. */
    enum order_status ended[] = {ORDER_PAID, ORDER_SHIPPED, ORDER_DELIVERED, ORDER_CANCELLED};
    for (size_t i = 0; i < 4; i++) {
        order_with(&now, ended[i]);
        c.to_version = 1;
        order_decide_rollback(&now, 5, &then, &c, NOW, &d);
        assert_ptr_equal(d.outcome, ORDER_invalid_transition);
        assert_int_equal(d.current_status, ended[i]);
    }
}

static void test_status_names(void **state)
{
    (void)state;
    for (int i = 0; i < ORDER_STATUSES; i++) {
        enum order_status s;
        assert_true(order_status_parse(order_status_name(i), &s));
        assert_int_equal(s, i);
    }
    enum order_status s;
    assert_false(order_status_parse("Pending", &s));
    assert_false(order_status_parse("", &s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_life_cycle),     cmocka_unit_test(test_pay_and_refund),
        cmocka_unit_test(test_wallet_movement), cmocka_unit_test(test_create),
        cmocka_unit_test(test_items),          cmocka_unit_test(test_too_many_items),
        cmocka_unit_test(test_expected_version), cmocka_unit_test(test_rollback),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
