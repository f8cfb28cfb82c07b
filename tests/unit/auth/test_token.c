/*
 * Tokens without a server (src/auth/token.c, decide.c, codec.c): the text
 * of a token and everything that is not one, the deciders and evolve, and
 * the stored events read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/token.h"
#include "base/err.h"

static void test_token_round_trip(void **state)
{
    (void)state;
    char id[WX_UUID_STR_BYTES], token[AUTH_TOKEN_BYTES + 1];
    unsigned char hash[AUTH_HASH_BYTES];
    assert_int_equal(auth_token_new(1700000000000, id, token, hash), 0);
    assert_int_equal(strlen(token), AUTH_TOKEN_BYTES);
    assert_int_equal(AUTH_TOKEN_BYTES, 84);
    assert_memory_equal(token, "wxt.", 4);
    assert_memory_equal(token + 4, id, 36);
    char parsed_id[WX_UUID_STR_BYTES];
    unsigned char parsed_hash[AUTH_HASH_BYTES];
    assert_true(auth_token_parse(token, strlen(token), parsed_id, parsed_hash));
    assert_string_equal(parsed_id, id);
    assert_memory_equal(parsed_hash, hash, AUTH_HASH_BYTES);
    /* Two tokens never share a secret. */
    char id2[WX_UUID_STR_BYTES], token2[AUTH_TOKEN_BYTES + 1];
    unsigned char hash2[AUTH_HASH_BYTES];
    assert_int_equal(auth_token_new(1700000000000, id2, token2, hash2), 0);
    assert_memory_not_equal(hash, hash2, AUTH_HASH_BYTES);
}

/* Every way a token's text can be wrong is refused, never read past its
 * length. */
static void test_token_malformed(void **state)
{
    (void)state;
    char id[WX_UUID_STR_BYTES], token[AUTH_TOKEN_BYTES + 1];
    unsigned char hash[AUTH_HASH_BYTES];
    assert_int_equal(auth_token_new(1700000000000, id, token, hash), 0);
    char out_id[WX_UUID_STR_BYTES];
    unsigned char out_hash[AUTH_HASH_BYTES];
    char bad[AUTH_TOKEN_BYTES + 2];
    assert_false(auth_token_parse("", 0, out_id, out_hash));
    assert_false(auth_token_parse(token, AUTH_TOKEN_BYTES - 1, out_id, out_hash));
    snprintf(bad, sizeof(bad), "%sA", token);
    assert_false(auth_token_parse(bad, strlen(bad), out_id, out_hash));
    /* One byte changed anywhere in the fixed parts. */
    size_t positions[] = {0, 3, 4, 12, 40};
    for (size_t i = 0; i < sizeof(positions) / sizeof(positions[0]); i++) {
        memcpy(bad, token, AUTH_TOKEN_BYTES + 1);
        bad[positions[i]] = bad[positions[i]] == 'x' ? 'y' : 'x';
        assert_false(auth_token_parse(bad, AUTH_TOKEN_BYTES, out_id, out_hash));
    }
    /* Upper-case hex in the id, or characters outside base64url. */
    memcpy(bad, token, AUTH_TOKEN_BYTES + 1);
    bad[4] = 'A';
    assert_false(auth_token_parse(bad, AUTH_TOKEN_BYTES, out_id, out_hash));
    const char outside[] = {'+', '/', '=', ' ', '\0', '.'};
    for (size_t i = 0; i < sizeof(outside); i++) {
        memcpy(bad, token, AUTH_TOKEN_BYTES + 1);
        bad[60] = outside[i];
        assert_false(auth_token_parse(bad, AUTH_TOKEN_BYTES, out_id, out_hash));
    }
    /* A secret character changed is another secret: parsed, other hash. */
    memcpy(bad, token, AUTH_TOKEN_BYTES + 1);
    bad[60] = bad[60] == 'A' ? 'B' : 'A';
    assert_true(auth_token_parse(bad, AUTH_TOKEN_BYTES, out_id, out_hash));
    assert_memory_not_equal(out_hash, hash, AUTH_HASH_BYTES);
    /* The last character carries 4 bits and 2 zero bits: only one spelling. */
    memcpy(bad, token, AUTH_TOKEN_BYTES + 1);
    bad[AUTH_TOKEN_BYTES - 1] = 'B'; /* value 1: a low bit set */
    assert_false(auth_token_parse(bad, AUTH_TOKEN_BYTES, out_id, out_hash));
}

static void test_hash_hex(void **state)
{
    (void)state;
    unsigned char h[AUTH_HASH_BYTES], back[AUTH_HASH_BYTES];
    for (size_t i = 0; i < sizeof(h); i++)
        h[i] = (unsigned char)(i * 37 + 5);
    char hex[2 * AUTH_HASH_BYTES + 1];
    auth_hash_hex(h, hex);
    assert_true(auth_hash_unhex(hex, back));
    assert_memory_equal(h, back, sizeof(h));
    hex[3] = 'G';
    assert_false(auth_hash_unhex(hex, back));
    assert_false(auth_hash_unhex("abc", back));
    assert_false(auth_hash_unhex(NULL, back));
}

static void test_roles_and_ownership(void **state)
{
    (void)state;
    enum auth_role r;
    assert_true(auth_role_parse("reader", &r) && r == AUTH_ROLE_READER);
    assert_false(auth_role_parse("Admin", &r));
    assert_false(auth_role_parse(NULL, &r));
    struct auth_principal user = {.role = AUTH_ROLE_USER, .subject = "u1"};
    struct auth_principal reader = {.role = AUTH_ROLE_READER, .subject = "r1"};
    assert_true(auth_owns(NULL, "anyone"));
    assert_true(auth_owns(&reader, "anyone"));
    assert_true(auth_owns(&user, "u1"));
    assert_false(auth_owns(&user, "u2"));
    assert_false(auth_owns(&user, NULL));
    assert_false(auth_sees_all(&user));
}

static struct token_command issue(const char *id, enum auth_role role, int64_t expires)
{
    struct token_command c = {.kind = TOKEN_CMD_ISSUE, .token_id = id, .role = role,
                              .subject = "s1", .expires_at_ms = expires};
    memset(c.hash, 7, sizeof(c.hash));
    return c;
}

static void test_decide_issue_and_revoke(void **state)
{
    (void)state;
    struct token_state s;
    token_state_init(&s);
    struct token_decision d;
    struct token_command revoke = {.kind = TOKEN_CMD_REVOKE, .token_id = "t1"};
    token_decide(&s, &revoke, 10, &d);
    assert_ptr_equal(d.outcome, AUTH_token_not_found);
    assert_int_equal(d.events_len, 0);

    struct token_command c = issue("t1", AUTH_ROLE_USER, 5000);
    token_decide(&s, &c, 10, &d);
    assert_ptr_equal(d.outcome, ES_OK);
    assert_int_equal(d.events_len, 1);
    assert_int_equal(d.event.kind, TOKEN_ISSUED);
    token_evolve(&s, &d.event);
    assert_true(s.exists && !s.revoked);
    assert_int_equal(s.role, AUTH_ROLE_USER);
    assert_string_equal(s.subject, "s1");
    assert_int_equal(s.expires_at_ms, 5000);
    assert_int_equal(s.created_at_ms, 10);

    token_decide(&s, &c, 11, &d); /* the same id again */
    assert_ptr_equal(d.outcome, ES_version_conflict);

    token_decide(&s, &revoke, 20, &d);
    assert_ptr_equal(d.outcome, ES_OK);
    assert_int_equal(d.events_len, 1);
    token_evolve(&s, &d.event);
    assert_true(s.revoked);
    assert_int_equal(s.updated_at_ms, 20);
    token_decide(&s, &revoke, 30, &d); /* revoking twice is one revocation */
    assert_ptr_equal(d.outcome, ES_OK);
    assert_int_equal(d.events_len, 0);
}

static void test_events_round_trip(void **state)
{
    (void)state;
    struct token_command c = issue("0190aaaa-0000-7000-8000-000000000001", AUTH_ROLE_READER, 0);
    struct token_state s;
    token_state_init(&s);
    struct token_decision d;
    token_decide(&s, &c, 10, &d);
    struct wx_buf b;
    wx_buf_init(&b);
    token_event_encode(&b, &d.event);
    assert_non_null(strstr(b.data, "\"expiresAtMs\":null"));
    assert_non_null(strstr(b.data, "\"secretSha256\":\"0707"));
    struct es_event ev = {.stream_id = "token:x", .version = 1, .type = "TokenIssued",
                          .schema_version = 1, .data = b.data, .data_len = b.len,
                          .occurred_at_ms = 10};
    char text[TOKEN_EVENT_DATA_BYTES_MAX + 1];
    struct token_event back;
    assert_int_equal(token_event_decode(&ev, text, sizeof(text), &back), 0);
    assert_int_equal(back.role, AUTH_ROLE_READER);
    assert_string_equal(back.subject, "s1");
    assert_memory_equal(back.hash, c.hash, AUTH_HASH_BYTES);
    assert_int_equal(back.expires_at_ms, 0);
    /* Folding through the aggregate checks what the decider promised. */
    struct token_state folded;
    token_state_init(&folded);
    assert_int_equal(token_aggregate.evolve_stored(&folded, &ev), 0);
    assert_true(folded.exists);
    assert_int_equal(token_aggregate.evolve_stored(&folded, &ev), WX_ERR_CORRUPT);
    /* Damaged data is corrupt, never a crash. */
    const char *damaged[] = {"{}", "{\"tokenId\":\"t\",\"role\":\"root\",\"subject\":\"s\","
                                   "\"secretSha256\":\"00\",\"expiresAtMs\":null}",
                             "{\"tokenId\":\"t\",\"role\":\"user\",\"subject\":\"s\","
                             "\"secretSha256\":\"" /* 64 zeros */
                             "0000000000000000000000000000000000000000000000000000000000000000"
                             "\",\"expiresAtMs\":-5}",
                             "[1]"};
    for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
        ev.data = damaged[i];
        ev.data_len = strlen(damaged[i]);
        assert_int_equal(token_event_decode(&ev, text, sizeof(text), &back), WX_ERR_CORRUPT);
    }
    wx_buf_free(&b);
}

static void test_resource(void **state)
{
    (void)state;
    struct token_state s;
    token_state_init(&s);
    s.exists = true;
    s.role = AUTH_ROLE_ADMIN;
    snprintf(s.subject, sizeof(s.subject), "ops");
    s.created_at_ms = 0 + 1000;
    struct wx_buf b;
    wx_buf_init(&b);
    token_json(&b, "t1", &s, true, "wxt.secret");
    assert_string_equal(b.data, "{\"tokenId\":\"t1\",\"token\":\"wxt.secret\",\"role\":\"admin\","
                                "\"subject\":\"ops\",\"createdAt\":\"1970-01-01T00:00:01.000Z\","
                                "\"expiresAt\":null}");
    wx_buf_reset(&b);
    token_json(&b, "t1", &s, true, NULL); /* what an idempotency record keeps */
    assert_non_null(strstr(b.data, "\"token\":null"));
    wx_buf_reset(&b);
    token_json(&b, "t1", &s, false, NULL);
    assert_null(strstr(b.data, "token\""));
    assert_non_null(strstr(b.data, "\"revoked\":false"));
    wx_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_round_trip),
        cmocka_unit_test(test_token_malformed),
        cmocka_unit_test(test_hash_hex),
        cmocka_unit_test(test_roles_and_ownership),
        cmocka_unit_test(test_decide_issue_and_revoke),
        cmocka_unit_test(test_events_round_trip),
        cmocka_unit_test(test_resource),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
