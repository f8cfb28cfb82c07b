/*
 * The in-memory token table (src/auth/table.c): every verdict of the
 * check, changes applied only forward (a late row never undoes a
 * revocation), the bound, and the rate limit at a steady rate, in bursts,
 * and from several threads at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/table.h"
#include "base/err.h"

#define NS_PER_S 1000000000LL

static struct token_state token(enum auth_role role, unsigned char fill, int64_t expires_ms)
{
    struct token_state s;
    token_state_init(&s);
    s.exists = true;
    s.role = role;
    snprintf(s.subject, sizeof(s.subject), "subject-%u", fill);
    memset(s.hash, fill, sizeof(s.hash));
    s.expires_at_ms = expires_ms;
    return s;
}

static enum auth_verdict check(struct auth_table *t, const char *id, unsigned char fill,
                               int64_t now_ms, int64_t now_ns, struct auth_principal *p)
{
    unsigned char hash[AUTH_HASH_BYTES];
    memset(hash, fill, sizeof(hash));
    int64_t retry = 0;
    return auth_table_check(t, id, hash, now_ms, now_ns, p, &retry);
}

static void test_verdicts(void **state)
{
    (void)state;
    struct auth_table *t;
    struct auth_table_config cfg = {0};
    assert_int_equal(auth_table_new(&cfg, &t), 0);
    struct token_state admin = token(AUTH_ROLE_ADMIN, 1, 0);
    struct token_state expiring = token(AUTH_ROLE_READER, 2, 5000);
    assert_int_equal(auth_table_apply(t, "a", &admin, 1), 0);
    assert_int_equal(auth_table_apply(t, "e", &expiring, 1), 0);
    assert_int_equal(auth_table_len(t), 2);
    struct auth_principal p;
    assert_int_equal(check(t, "a", 1, 100, 0, &p), AUTH_OK);
    assert_int_equal(p.role, AUTH_ROLE_ADMIN);
    assert_string_equal(p.subject, "subject-1");
    assert_string_equal(p.token_id, "a");
    assert_int_equal(check(t, "nope", 1, 100, 0, &p), AUTH_UNKNOWN);
    assert_int_equal(check(t, "a", 9, 100, 0, &p), AUTH_BAD_SECRET);
    assert_int_equal(check(t, "e", 2, 4999, 0, &p), AUTH_OK);
    assert_int_equal(check(t, "e", 2, 5000, 0, &p), AUTH_EXPIRED);
    /* The wrong secret says nothing about the token's state. */
    assert_int_equal(check(t, "e", 9, 5000, 0, &p), AUTH_BAD_SECRET);
    auth_table_free(t);
}

static void test_changes_only_forward(void **state)
{
    (void)state;
    struct auth_table *t;
    struct auth_table_config cfg = {0};
    assert_int_equal(auth_table_new(&cfg, &t), 0);
    struct token_state s = token(AUTH_ROLE_USER, 3, 0);
    assert_int_equal(auth_table_apply(t, "u", &s, 1), 0);
    struct token_state revoked = s;
    revoked.revoked = true;
    /* The writer's hook: version 2, revoked. */
    assert_int_equal(auth_table_apply(t, "u", &revoked, 2), 0);
    struct auth_principal p;
    assert_int_equal(check(t, "u", 3, 0, 0, &p), AUTH_REVOKED);
    /* A refresher that read the row before the revocation was projected. */
    assert_int_equal(auth_table_apply(t, "u", &s, 1), 0);
    assert_int_equal(check(t, "u", 3, 0, 0, &p), AUTH_REVOKED);
    /* Even a later version that somehow says otherwise. */
    assert_int_equal(auth_table_apply(t, "u", &s, 3), 0);
    assert_int_equal(check(t, "u", 3, 0, 0, &p), AUTH_REVOKED);
    assert_int_equal(auth_table_len(t), 1);
    auth_table_free(t);
}

static void test_bound(void **state)
{
    (void)state;
    struct auth_table *t;
    struct auth_table_config cfg = {.tokens_max = 2};
    assert_int_equal(auth_table_new(&cfg, &t), 0);
    struct token_state s = token(AUTH_ROLE_READER, 4, 0);
    assert_int_equal(auth_table_apply(t, "1", &s, 1), 0);
    assert_false(auth_table_full(t));
    assert_int_equal(auth_table_apply(t, "2", &s, 1), 0);
    assert_true(auth_table_full(t));
    assert_int_equal(auth_table_apply(t, "3", &s, 1), WX_ERR_FULL);
    assert_int_equal(auth_table_apply(t, "2", &s, 2), 0); /* known ones still change */
    auth_table_free(t);
}

static void test_rate_limit(void **state)
{
    (void)state;
    struct auth_table *t;
    struct auth_table_config cfg = {.user_rate_per_s = 10, .user_burst = 5};
    assert_int_equal(auth_table_new(&cfg, &t), 0);
    struct token_state user = token(AUTH_ROLE_USER, 5, 0);
    struct token_state reader = token(AUTH_ROLE_READER, 6, 0);
    assert_int_equal(auth_table_apply(t, "u", &user, 1), 0);
    assert_int_equal(auth_table_apply(t, "r", &reader, 1), 0);
    unsigned char hash[AUTH_HASH_BYTES];
    memset(hash, 5, sizeof(hash));
    struct auth_principal p;
    int64_t now = 100 * NS_PER_S, retry = 0;
    /* A burst of 5 at once, then the 6th waits one interval (100 ms). */
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_table_check(t, "u", hash, 0, now, &p, &retry), AUTH_OK);
    assert_int_equal(auth_table_check(t, "u", hash, 0, now, &p, &retry), AUTH_LIMITED);
    assert_int_equal(retry, NS_PER_S / 10);
    assert_string_equal(p.subject, "subject-5"); /* who was limited, for the log */
    /* A refused request costs nothing: after one interval, one more. */
    now += NS_PER_S / 10;
    assert_int_equal(auth_table_check(t, "u", hash, 0, now, &p, &retry), AUTH_OK);
    assert_int_equal(auth_table_check(t, "u", hash, 0, now, &p, &retry), AUTH_LIMITED);
    /* At the sustained rate for 10 s: never refused. */
    for (int i = 0; i < 100; i++) {
        now += NS_PER_S / 10;
        assert_int_equal(auth_table_check(t, "u", hash, 0, now, &p, &retry), AUTH_OK);
    }
    /* Rested, the full burst is back. */
    now += 10 * NS_PER_S;
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_table_check(t, "u", hash, 0, now, &p, &retry), AUTH_OK);
    /* Readers (and admins) are not limited. */
    memset(hash, 6, sizeof(hash));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(auth_table_check(t, "r", hash, 0, now, &p, &retry), AUTH_OK);
    auth_table_free(t);
}

/* Threads taking from one bucket at one instant: exactly the burst passes
 * (the compare-and-swap loses no request and admits no extra one). */
struct taker {
    struct auth_table *t;
    int64_t now;
    int passed;
};

static void *take_many(void *arg)
{
    struct taker *k = arg;
    unsigned char hash[AUTH_HASH_BYTES];
    memset(hash, 7, sizeof(hash));
    struct auth_principal p;
    int64_t retry;
    for (int i = 0; i < 2000; i++)
        if (auth_table_check(k->t, "u", hash, 0, k->now, &p, &retry) == AUTH_OK)
            k->passed++;
    return NULL;
}

static void test_rate_limit_threads(void **state)
{
    (void)state;
    struct auth_table *t;
    struct auth_table_config cfg = {.user_rate_per_s = 1000, .user_burst = 1500};
    assert_int_equal(auth_table_new(&cfg, &t), 0);
    struct token_state user = token(AUTH_ROLE_USER, 7, 0);
    assert_int_equal(auth_table_apply(t, "u", &user, 1), 0);
    struct taker k[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        k[i] = (struct taker){.t = t, .now = 50 * NS_PER_S};
        assert_int_equal(pthread_create(&th[i], NULL, take_many, &k[i]), 0);
    }
    int passed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        passed += k[i].passed;
    }
    assert_int_equal(passed, 1500);
    auth_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_changes_only_forward),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_rate_limit_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
