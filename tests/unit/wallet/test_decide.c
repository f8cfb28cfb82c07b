/* The wallet deciders, pure and table-driven (src/wallet/decide.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wallet/wallet.h"

#define OUTCOME_CODE(o) ((o)->code)

#define NOW 1700000000000LL

static struct wallet_state wallet(const char *currency, int64_t balance)
{
    struct wallet_state s;
    wallet_state_init(&s);
    s.exists = true;
    strcpy(s.owner_id, "owner");
    strcpy(s.currency, currency);
    s.balance_minor = balance;
    return s;
}

struct amount_case {
    const char *name;
    enum wallet_command_kind kind;
    bool exists;
    const char *currency;
    int64_t balance;
    int64_t version;
    const char *amount;
    int64_t expected_version;
    const struct es_outcome *outcome;
    int64_t balance_after;
};

static const struct amount_case amount_cases[] = {
    {"credit", WALLET_CMD_CREDIT, true, "USD", 100, 2, "1.50", -1, ES_OK, 250},
    {"credit 0.1 twice", WALLET_CMD_CREDIT, true, "USD", 10, 2, "0.2", -1, ES_OK, 30},
    {"credit missing", WALLET_CMD_CREDIT, false, "USD", 0, 0, "1", -1, WALLET_wallet_not_found, 0},
    {"credit zero", WALLET_CMD_CREDIT, true, "USD", 0, 1, "0.00", -1, ES_invalid_request, 0},
    {"credit digits", WALLET_CMD_CREDIT, true, "USD", 0, 1, "1.001", -1, ES_invalid_request, 0},
    {"credit yen digits", WALLET_CMD_CREDIT, true, "JPY", 0, 1, "1.5", -1, ES_invalid_request, 0},
    {"credit kwd", WALLET_CMD_CREDIT, true, "KWD", 0, 1, "1.005", -1, ES_OK, 1005},
    {"credit to max", WALLET_CMD_CREDIT, true, "JPY", 0, 1, "9223372036854775807", -1, ES_OK,
     INT64_MAX},
    {"credit overflow", WALLET_CMD_CREDIT, true, "JPY", 1, 1, "9223372036854775807", -1,
     WALLET_balance_overflow, 0},
    {"credit amount too big", WALLET_CMD_CREDIT, true, "USD", 0, 1, "92233720368547758.08", -1,
     ES_invalid_request, 0},
    {"credit expected ok", WALLET_CMD_CREDIT, true, "USD", 0, 3, "1", 3, ES_OK, 100},
    {"credit expected stale", WALLET_CMD_CREDIT, true, "USD", 0, 3, "1", 2, ES_version_conflict,
     0},
    {"debit", WALLET_CMD_DEBIT, true, "USD", 1000, 2, "2.50", -1, ES_OK, 750},
    {"debit all", WALLET_CMD_DEBIT, true, "USD", 1000, 2, "10", -1, ES_OK, 0},
    {"debit too much", WALLET_CMD_DEBIT, true, "USD", 1000, 2, "10.01", -1,
     WALLET_insufficient_funds, 0},
    {"debit missing", WALLET_CMD_DEBIT, false, "USD", 0, 0, "1", -1, WALLET_wallet_not_found, 0},
    {"debit stale", WALLET_CMD_DEBIT, true, "USD", 1000, 5, "1", 4, ES_version_conflict, 0},
};

static void test_amount_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(amount_cases) / sizeof(amount_cases[0]); i++) {
        const struct amount_case *c = &amount_cases[i];
        struct wallet_state s = wallet(c->currency, c->balance);
        s.exists = c->exists;
        struct wallet_command cmd = {.kind = c->kind, .wallet_id = "w", .amount = c->amount,
                                     .expected_version = c->expected_version};
        struct wallet_decision d;
        wallet_decide_amount(&s, c->version, &cmd, NOW, &d);
        if (d.outcome != c->outcome)
            fail_msg("%s: outcome %s, want %s", c->name, OUTCOME_CODE(d.outcome),
                     OUTCOME_CODE(c->outcome));
        if (c->outcome != ES_OK) {
            assert_int_equal(d.events_len, 0);
            continue;
        }
        assert_int_equal(d.events_len, 1);
        assert_int_equal(d.events[0].balance_before_minor, c->balance);
        assert_int_equal(d.events[0].balance_after_minor, c->balance_after);
        wallet_evolve(&s, &d.events[0]);
        assert_int_equal(s.balance_minor, c->balance_after);
        assert_int_equal(s.updated_at_ms, NOW);
    }
}

static void test_create(void **state)
{
    (void)state;
    struct wallet_state s;
    wallet_state_init(&s);
    struct wallet_command c = {.kind = WALLET_CMD_CREATE, .wallet_id = "w", .owner_id = "o",
                               .currency = "EUR", .amount = "12.34", .expected_version = -1};
    struct wallet_decision d;
    wallet_decide_create(&s, &c, NOW, &d);
    assert_int_equal(d.outcome, ES_OK);
    assert_int_equal(d.events_len, 2);
    assert_int_equal(d.events[0].kind, WALLET_CREATED);
    assert_int_equal(d.events[1].kind, WALLET_CREDITED);
    assert_string_equal(d.events[1].description, "Initial balance");
    for (size_t i = 0; i < d.events_len; i++)
        wallet_evolve(&s, &d.events[i]);
    assert_true(s.exists);
    assert_string_equal(s.currency, "EUR");
    assert_int_equal(s.balance_minor, 1234);

    /* Again: the wallet exists now. */
    wallet_decide_create(&s, &c, NOW, &d);
    assert_int_equal(d.outcome, WALLET_wallet_already_exists);
    assert_int_equal(d.events_len, 0);

    /* No or zero initial balance: one event only. */
    struct wallet_state fresh;
    wallet_state_init(&fresh);
    c.amount = "0";
    wallet_decide_create(&fresh, &c, NOW, &d);
    assert_int_equal(d.outcome, ES_OK);
    assert_int_equal(d.events_len, 1);
    c.amount = "1.234";
    wallet_decide_create(&fresh, &c, NOW, &d);
    assert_int_equal(d.outcome, ES_invalid_request);
}

struct transfer_case {
    const char *name;
    bool from_exists, to_exists, transfer_exists;
    const char *from_currency, *to_currency;
    int64_t from_balance, to_balance;
    const char *amount;
    const struct es_outcome *outcome;
};

static const struct transfer_case transfer_cases[] = {
    {"ok", true, true, false, "USD", "USD", 1000, 0, "3.00", ES_OK},
    {"exact balance", true, true, false, "USD", "USD", 1000, 0, "10", ES_OK},
    {"no source", false, true, false, "USD", "USD", 0, 0, "1", WALLET_wallet_not_found},
    {"no target", true, false, false, "USD", "USD", 1000, 0, "1", WALLET_wallet_not_found},
    {"duplicate", true, true, true, "USD", "USD", 1000, 0, "1", WALLET_transfer_already_exists},
    {"currencies", true, true, false, "USD", "EUR", 1000, 0, "1", WALLET_currency_mismatch},
    {"insufficient", true, true, false, "USD", "USD", 1000, 0, "10.01", WALLET_insufficient_funds},
    {"zero", true, true, false, "USD", "USD", 1000, 0, "0", ES_invalid_request},
    {"digits", true, true, false, "USD", "USD", 1000, 0, "0.001", ES_invalid_request},
    {"overflow", true, true, false, "JPY", "JPY", 5, INT64_MAX - 1, "5", WALLET_balance_overflow},
};

static void test_transfer_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(transfer_cases) / sizeof(transfer_cases[0]); i++) {
        const struct transfer_case *c = &transfer_cases[i];
        struct wallet_state from = wallet(c->from_currency, c->from_balance);
        struct wallet_state to = wallet(c->to_currency, c->to_balance);
        from.exists = c->from_exists;
        to.exists = c->to_exists;
        struct transfer_state t;
        transfer_state_init(&t);
        t.exists = c->transfer_exists;
        struct wallet_command cmd = {.kind = WALLET_CMD_TRANSFER, .transfer_id = "t",
                                     .from_wallet_id = "a", .to_wallet_id = "b",
                                     .amount = c->amount, .expected_version = -1};
        struct wallet_decision d;
        wallet_decide_transfer(&from, 4, &to, 7, &t, &cmd, NOW, &d);
        if (d.outcome != c->outcome)
            fail_msg("%s: outcome %s, want %s", c->name, OUTCOME_CODE(d.outcome),
                     OUTCOME_CODE(c->outcome));
        if (d.outcome != ES_OK) {
            assert_int_equal(d.events_len, 0);
            continue;
        }
        /* Money is conserved: what leaves one wallet arrives in the other. */
        assert_int_equal(d.events_len, 3);
        int64_t total = from.balance_minor + to.balance_minor;
        wallet_evolve(&from, &d.events[0]);
        wallet_evolve(&to, &d.events[1]);
        assert_int_equal(from.balance_minor + to.balance_minor, total);
        assert_true(from.balance_minor >= 0);
        assert_string_equal(d.events[0].transfer_id, "t");
        assert_string_equal(d.events[1].transfer_id, "t");
        transfer_evolve(&t, &d.events[2]);
        assert_int_equal(t.from_version, 5);
        assert_int_equal(t.to_version, 8);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amount_table),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_transfer_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
