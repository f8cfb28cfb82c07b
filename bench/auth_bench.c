/*
 * What checking a request's bearer token costs (issue 21's goal: at most
 * 2 us): the authenticator's work on every request, from two threads at
 * once (both HTTP threads) on a table of TOKENS tokens, in each thread's CPU
 * time: parsing the token's
 * text and hashing its secret (SHA-256), then the table's check under its
 * read lock (map lookup, constant-time comparison, expiry, and for a user
 * token the rate limit's compare-and-swap). Prints ns per check for an
 * admin token and a user token, the parse-and-hash part alone, and a user
 * token's check on one thread (no other thread on the lock's line).
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
    int64_t cpu_ns; /* the thread's own CPU time for its rounds */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *hammer(void *arg)
{
    struct run *r = arg;
    size_t len = strlen(r->token);
    int64_t cpu_started = thread_cpu_ns();
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
    r->cpu_ns = thread_cpu_ns() - cpu_started;
    return NULL;
}

static int64_t measure(struct auth_table *t, const char *token, bool parse_only, int threads)
{
    struct run runs[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < threads; i++) {
        runs[i] = (struct run){.table = t, .token = token, .parse_only = parse_only};
        pthread_create(&th[i], NULL, hammer, &runs[i]);
    }
    int64_t failures = 0, cpu_ns = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        failures += runs[i].failures;
        cpu_ns += runs[i].cpu_ns;
    }
    if (failures > 0) {
        fprintf(stderr, "auth_bench: %" PRId64 " checks failed\n", failures);
        return -1;
    }
    /* CPU time, not wall time: on a shared machine the threads wait for a
     * core, which no request pays for in CPU. Contention between the two
     * (the lock's and the bucket's cache lines) is in it. */
    return cpu_ns / ((int64_t)threads * ROUNDS);
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
    int64_t parse = measure(t, admin, true, THREADS);
    int64_t a = measure(t, admin, false, THREADS);
    int64_t u = measure(t, user, false, THREADS);
    int64_t one = measure(t, user, false, 1);
    auth_table_free(t);
    if (parse < 0 || a < 0 || u < 0 || one < 0)
        return 1;
    printf("token check: admin %" PRId64 " ns, user (with the rate limit) %" PRId64
           " ns per request; parse and SHA-256 alone %" PRId64 " ns (%d threads, %d tokens);"
           " user on one thread %" PRId64 " ns\n",
           a, u, parse, THREADS, TOKENS, one);
    return 0;
}
