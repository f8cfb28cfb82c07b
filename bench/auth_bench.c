/*
 * What checking a request's bearer token costs (issue 21's goal: at most
 * 2 us): the authenticator's work on every request, from two threads at
 * once (both HTTP threads) on a table of TOKENS tokens: parsing the token's
 * text and hashing its secret (SHA-256), then the table's check under its
 * read lock (map lookup, constant-time comparison, expiry, and for a user
 * token the rate limit's compare-and-swap). Prints ns per check for an
 * admin token and a user token, and the parse-and-hash part alone.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/table.h"
#include "base/clock.h"

#define ROUNDS 2000000
#define TOKENS 10000
#define THREADS 2

struct run {
    struct auth_table *table;
    const char *token; /* its text */
    bool parse_only;
    int64_t failures;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *hammer(void *arg)
{
    struct run *r = arg;
    size_t len = strlen(r->token);
    for (int64_t i = 0; i < ROUNDS; i++) {
        char id[WX_UUID_STR_BYTES];
        unsigned char hash[AUTH_HASH_BYTES];
        if (!auth_token_parse(r->token, len, id, hash)) {
            r->failures++;
            continue;
        }
        if (r->parse_only)
            continue;
        struct auth_principal p;
        int64_t retry;
        /* The clocks are read per request, as the authenticator does. */
        if (auth_table_check(r->table, id, hash, wx_clock_now_ms(&wx_clock_system), now_ns(), &p,
                             &retry) != AUTH_OK)
            r->failures++;
    }
    return NULL;
}

static int64_t measure(struct auth_table *t, const char *token, bool parse_only)
{
    struct run runs[THREADS];
    pthread_t th[THREADS];
    int64_t start = wx_monotonic_us();
    for (int i = 0; i < THREADS; i++) {
        runs[i] = (struct run){.table = t, .token = token, .parse_only = parse_only};
        pthread_create(&th[i], NULL, hammer, &runs[i]);
    }
    int64_t failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        failures += runs[i].failures;
    }
    int64_t us = wx_monotonic_us() - start;
    if (failures > 0) {
        fprintf(stderr, "auth_bench: %" PRId64 " checks failed\n", failures);
        return -1;
    }
    /* Each thread ran ROUNDS checks in `us`: the cost one request sees. */
    return us * 1000 / ROUNDS;
}

/* A token of the table, its text in out. */
static void add(struct auth_table *t, enum auth_role role, char out[AUTH_TOKEN_BYTES + 1])
{
    char id[WX_UUID_STR_BYTES];
    struct token_state s;
    token_state_init(&s);
    s.exists = true;
    s.role = role;
    snprintf(s.subject, sizeof(s.subject), "bench");
    if (auth_token_new(wx_clock_now_ms(&wx_clock_system), id, out, s.hash) != 0 ||
        auth_table_apply(t, id, &s, 1) != 0) {
        fprintf(stderr, "auth_bench: cannot make a token\n");
        out[0] = '\0';
    }
}

int main(void)
{
    struct auth_table *t;
    /* A rate no bench reaches: the bucket's arithmetic runs, never refuses. */
    struct auth_table_config cfg = {.user_rate_per_s = 1000000000, .user_burst = 1000000000};
    if (auth_table_new(&cfg, &t) != 0)
        return 1;
    char admin[AUTH_TOKEN_BYTES + 1], user[AUTH_TOKEN_BYTES + 1], other[AUTH_TOKEN_BYTES + 1];
    add(t, AUTH_ROLE_ADMIN, admin);
    add(t, AUTH_ROLE_USER, user);
    for (int i = 0; i < TOKENS - 2; i++)
        add(t, i % 2 ? AUTH_ROLE_USER : AUTH_ROLE_READER, other);
    int64_t parse = measure(t, admin, true);
    int64_t a = measure(t, admin, false);
    int64_t u = measure(t, user, false);
    auth_table_free(t);
    if (parse < 0 || a < 0 || u < 0)
        return 1;
    printf("token check: admin %" PRId64 " ns, user (with the rate limit) %" PRId64
           " ns per request; parse and SHA-256 alone %" PRId64 " ns (%d threads, %d tokens)\n",
           a, u, parse, THREADS, TOKENS);
    return 0;
}
