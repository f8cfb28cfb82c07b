/* The subscription domain: pure decisions (bus/subscription.c), the codec
 * round trip and the public copy without secret (bus/codec.c), request
 * parsing and private addresses (bus/parse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "base/arena.h"
#include "base/err.h"
#include "bus/subscription.h"
#include "wallet/wallet.h"

#define NOW 1700000000000LL

static struct subscription_state with_status(bool exists, enum subscription_status st)
{
    struct subscription_state s;
    subscription_state_init(&s);
    s.exists = exists;
    s.status = st;
    return s;
}

static void test_decisions(void **state)
{
    (void)state;
    static const struct {
        bool exists;
        enum subscription_status status;
        enum subscription_command_kind cmd;
        const char *code; /* "OK" or the rejection */
        size_t events;
    } cases[] = {
        {false, SUBSCRIPTION_ACTIVE, SUBSCRIPTION_CMD_PAUSE, "subscription_not_found", 0},
        {true, SUBSCRIPTION_DELETED, SUBSCRIPTION_CMD_RESUME, "subscription_not_found", 0},
        {true, SUBSCRIPTION_DELETED, SUBSCRIPTION_CMD_DELETE, "subscription_not_found", 0},
        {true, SUBSCRIPTION_ACTIVE, SUBSCRIPTION_CMD_PAUSE, "OK", 1},
        {true, SUBSCRIPTION_PAUSED, SUBSCRIPTION_CMD_PAUSE, "OK", 0},
        {true, SUBSCRIPTION_PAUSED, SUBSCRIPTION_CMD_RESUME, "OK", 1},
        {true, SUBSCRIPTION_DISABLED, SUBSCRIPTION_CMD_RESUME, "OK", 1},
        {true, SUBSCRIPTION_ACTIVE, SUBSCRIPTION_CMD_RESUME, "OK", 0},
        {true, SUBSCRIPTION_ACTIVE, SUBSCRIPTION_CMD_DISABLE, "OK", 1},
        {true, SUBSCRIPTION_PAUSED, SUBSCRIPTION_CMD_DISABLE, "OK", 0},
        {true, SUBSCRIPTION_DISABLED, SUBSCRIPTION_CMD_DISABLE, "OK", 0},
        {true, SUBSCRIPTION_PAUSED, SUBSCRIPTION_CMD_DELETE, "OK", 1},
        {true, SUBSCRIPTION_ACTIVE, SUBSCRIPTION_CMD_CREATE, "version_conflict", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct subscription_state s = with_status(cases[i].exists, cases[i].status);
        struct subscription_command c = {.kind = cases[i].cmd, .subscription_id = "s1",
                                         .reason = "r"};
        struct subscription_decision d;
        subscription_decide(&s, &c, NOW, &d);
        assert_string_equal(d.outcome->code, cases[i].code);
        assert_int_equal(d.events_len, cases[i].events);
        if (d.events_len == 1) {
            subscription_evolve(&s, &d.event);
            assert_true(s.exists);
        }
    }
}

static void test_lifecycle_and_codec(void **state)
{
    (void)state;
    struct subscription_state s = with_status(false, SUBSCRIPTION_ACTIVE);
    struct subscription_command c = {.kind = SUBSCRIPTION_CMD_CREATE, .subscription_id = "s1",
                                     .url = "http://127.0.0.1:9/hook",
                                     .event_types = "[\"WalletCredited\"]",
                                     .secret = "whsec_AAAA"};
    struct subscription_decision d;
    subscription_decide(&s, &c, NOW, &d);
    assert_int_equal(d.events_len, 1);
    struct wx_buf b;
    wx_buf_init(&b);
    subscription_event_encode(&b, &d.event);
    struct es_event ev = {.stream_id = "subscription:s1", .version = 1, .position = {0, 7},
                          .type = "SubscriptionCreated", .schema_version = 1, .data = b.data,
                          .data_len = b.len, .metadata = "{}", .metadata_len = 2,
                          .occurred_at_ms = NOW};
    char text[SUBSCRIPTION_EVENT_DATA_BYTES_MAX + 1];
    struct subscription_event back;
    assert_int_equal(subscription_event_decode(&ev, text, sizeof(text), &back), 0);
    assert_string_equal(back.url, c.url);
    assert_string_equal(back.event_types, c.event_types);
    assert_string_equal(back.secret, c.secret);
    assert_null(back.description);
    /* What leaves the process never holds the secret. */
    struct wx_buf scratch, out;
    wx_buf_init(&scratch);
    wx_buf_init(&out);
    assert_int_equal(bus_event_public_json(&ev, &scratch, &out), 0);
    assert_null(strstr(out.data, "whsec_"));
    assert_non_null(strstr(out.data, "\"url\":\"http://127.0.0.1:9/hook\""));
    /* Damaged data is an error, never a crash. */
    ev.data = "{\"subscriptionId\":\"s1\",\"url\":3}";
    ev.data_len = strlen(ev.data);
    assert_int_equal(subscription_event_decode(&ev, text, sizeof(text), &back), WX_ERR_CORRUPT);
    wx_buf_free(&b);
    wx_buf_free(&scratch);
    wx_buf_free(&out);
}

static void test_parse_create(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        bool deny_private;
        bool ok;
    } cases[] = {
        {"{\"url\":\"http://127.0.0.1:9/h\",\"eventTypes\":[\"WalletCredited\"]}", false, true},
        {"{\"url\":\"https://example.com/h\",\"eventTypes\":[\"*\"],\"description\":\"d\"}", true,
         true},
        {"{\"url\":\"http://127.0.0.1:9/h\",\"eventTypes\":[\"WalletCredited\"]}", true, false},
        {"{\"url\":\"http://localhost/h\",\"eventTypes\":[\"*\"]}", true, false},
        {"{\"url\":\"http://[::1]/h\",\"eventTypes\":[\"*\"]}", true, false},
        {"{\"url\":\"http://10.1.2.3/h\",\"eventTypes\":[\"*\"]}", true, false},
        {"{\"url\":\"ftp://example.com/h\",\"eventTypes\":[\"*\"]}", false, false},
        {"{\"url\":\"not a url\",\"eventTypes\":[\"*\"]}", false, false},
        {"{\"url\":\"http://example.com/h\",\"eventTypes\":[]}", false, false},
        {"{\"url\":\"http://example.com/h\",\"eventTypes\":[\"NoSuchType\"]}", false, false},
        {"{\"url\":\"http://example.com/h\",\"eventTypes\":[\"*\",\"*\"]}", false, false},
        {"{\"url\":\"http://example.com/h\",\"eventTypes\":\"*\"}", false, false},
        {"{\"url\":\"http://example.com/h\",\"eventTypes\":[\"*\"],\"secret\":\"x\"}", false, false},
        /* API.md: an optional field is present with a value or absent; null is 400. */
        {"{\"url\":\"http://example.com/h\",\"eventTypes\":[\"*\"],\"description\":null}", false,
         false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wx_arena arena;
        wx_arena_init(&arena);
        struct subscription_command c;
        const char *detail = NULL;
        bool ok = subscription_parse_create(cases[i].body, strlen(cases[i].body),
                                            cases[i].deny_private, &arena, &c, &detail);
        if (ok != cases[i].ok)
            fail_msg("case %zu (%s): %s", i, cases[i].body, detail ? detail : "accepted");
        wx_arena_release(&arena);
    }
}

static void test_private_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *ip;
        bool private;
    } cases[] = {
        {"127.0.0.1", true},   {"10.0.0.1", true},     {"172.16.0.1", true}, {"172.31.255.1", true},
        {"172.32.0.1", false}, {"192.168.1.1", true},  {"169.254.1.1", true}, {"100.64.0.1", true},
        {"0.0.0.0", true},     {"8.8.8.8", false},     {"::1", true},         {"fe80::1", true},
        {"fd00::1", true},     {"::ffff:10.0.0.1", true}, {"2001:db8::1", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_in v4 = {.sin_family = AF_INET};
        struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
        const struct sockaddr *sa = (const struct sockaddr *)&v4;
        if (inet_pton(AF_INET, cases[i].ip, &v4.sin_addr) != 1) {
            assert_int_equal(inet_pton(AF_INET6, cases[i].ip, &v6.sin6_addr), 1);
            sa = (const struct sockaddr *)&v6;
        }
        if (bus_address_private(sa) != cases[i].private)
            fail_msg("%s", cases[i].ip);
    }
}

static int setup(void **state)
{
    (void)state;
    static const struct es_domain *const domains[] = {&wallet_domain, &bus_domain};
    return es_domains_register(domains, 2);
}

static int teardown(void **state)
{
    (void)state;
    es_domains_reset();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_lifecycle_and_codec),
        cmocka_unit_test(test_parse_create),
        cmocka_unit_test(test_private_addresses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
