/*
 * The authentication service (src/auth/service.c) on a memory store, a
 * real projector and writer: a token issued or revoked by "another node"
 * (a command whose change reaches the log and the tokens read model but
 * not this node's table) is known through the refresher within the
 * delay API.md promises (1 s), and one this node commits is known at
 * once, before its command completes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include "auth/service.h"
#include "auth/token.h"
#include "base/clock.h"
#include "es/domain.h"
#include "proj/projector.h"
#include "store/store.h"

/* API.md: every node refuses a revoked token within this. */
#define REVOCATION_DELAY_MS_MAX 1000

struct fixture {
    char dir[64];
    struct es_store *store;
    struct es_projector *projector;
    struct es_writer *writer;
    struct auth_service *auth;
};

static void notify(void *ctx)
{
    es_projector_notify(ctx);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/wallex-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct es_store_config cfg = {0};
    assert_int_equal(es_store_open("memory", &cfg, &f->store), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/readmodel.db", f->dir);
    struct es_projector_config pc = {.store = f->store,
                                     .backend = &rm_sqlite_ops,
                                     .rm = {.path = path},
                                     .consumers = token_consumers,
                                     .consumers_len = 1};
    assert_int_equal(es_projector_open(&pc, &f->projector), 0);
    assert_int_equal(es_projector_start(f->projector), 0);
    struct es_writer_config wc = {.store = f->store,
                                  .clock = &wx_clock_system,
                                  .on_commit = notify,
                                  .on_commit_ctx = f->projector};
    assert_int_equal(es_writer_start(&wc, &f->writer), 0);
    struct auth_service_config ac = {.store = f->store,
                                     .projector = f->projector,
                                     .writer = f->writer,
                                     .clock = &wx_clock_system};
    assert_int_equal(auth_service_start(&ac, &f->auth), 0);
    assert_true(auth_service_ready(f->auth)); /* an empty log: at once */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    auth_service_stop(f->auth);
    es_writer_stop(f->writer);
    es_projector_close(f->projector);
    es_store_close(f->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A revocation committed through this writer with no table: how one
 * through another node looks from here. */
struct done {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool yes;
};

static void completed(struct es_command *cmd)
{
    struct done *d = cmd->complete_ctx;
    pthread_mutex_lock(&d->lock);
    d->yes = true;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

static void revoke_elsewhere(struct fixture *f, const char *token_id)
{
    struct token_command c = {.kind = TOKEN_CMD_REVOKE, .token_id = token_id};
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct done d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    struct es_command cmd = {.handle = token_run_command,
                             .payload = &c,
                             .arena = &arena,
                             .complete = completed,
                             .complete_ctx = &d,
                             .committed = token_committed};
    assert_int_equal(wx_uuid7(wx_clock_now_ms(&wx_clock_system), cmd.command_id), 0);
    assert_int_equal(es_writer_submit(f->writer, &cmd), 0);
    pthread_mutex_lock(&d.lock);
    while (!d.yes)
        pthread_cond_wait(&d.cond, &d.lock);
    pthread_mutex_unlock(&d.lock);
    assert_int_equal(cmd.status, 204);
    wx_arena_release(&arena);
}

static enum auth_verdict check(struct fixture *f, const char *id, const unsigned char *hash)
{
    struct auth_principal p;
    int64_t retry;
    return auth_table_check(auth_service_table(f->auth), id, hash,
                            wx_clock_now_ms(&wx_clock_system), 0, &p, &retry);
}

/* Polls until the verdict is `want`; the milliseconds it took. */
static int64_t until(struct fixture *f, const char *id, const unsigned char *hash,
                     enum auth_verdict want)
{
    int64_t started = wx_monotonic_ms();
    while (check(f, id, hash) != want) {
        assert_true(wx_monotonic_ms() - started < 5 * REVOCATION_DELAY_MS_MAX);
        usleep(5 * 1000);
    }
    return wx_monotonic_ms() - started;
}

static void test_changes_from_elsewhere_arrive_within_the_delay(void **state)
{
    struct fixture *f = *state;
    char id[WX_UUID_STR_BYTES], token[AUTH_TOKEN_BYTES + 1];
    unsigned char hash[AUTH_HASH_BYTES];
    assert_int_equal(auth_token_new(wx_clock_now_ms(&wx_clock_system), id, token, hash), 0);
    assert_int_equal(
        token_issue_wait(f->writer, NULL, AUTH_ROLE_USER, "elsewhere", 0, "test", id, hash), 0);
    assert_int_equal(check(f, id, hash), AUTH_UNKNOWN); /* not by the hook: no table */
    int64_t issued_ms = until(f, id, hash, AUTH_OK);
    revoke_elsewhere(f, id);
    int64_t revoked_ms = until(f, id, hash, AUTH_REVOKED);
    print_message("issued known after %lld ms, revoked after %lld ms\n", (long long)issued_ms,
                  (long long)revoked_ms);
    assert_true(revoked_ms <= REVOCATION_DELAY_MS_MAX);
}

static void test_changes_here_are_known_at_once(void **state)
{
    struct fixture *f = *state;
    char id[WX_UUID_STR_BYTES], token[AUTH_TOKEN_BYTES + 1];
    unsigned char hash[AUTH_HASH_BYTES];
    assert_int_equal(auth_token_new(wx_clock_now_ms(&wx_clock_system), id, token, hash), 0);
    assert_int_equal(token_issue_wait(f->writer, auth_service_table(f->auth), AUTH_ROLE_READER,
                                      "here", 0, "test", id, hash),
                     0);
    assert_int_equal(check(f, id, hash), AUTH_OK);
    /* The refresher reading the same rows later changes nothing. */
    usleep((AUTH_REFRESH_MS + 100) * 1000);
    assert_int_equal(check(f, id, hash), AUTH_OK);
    assert_int_equal(auth_table_len(auth_service_table(f->auth)), 1);
}

/* ---- a first start before the read model has caught up ---- */

/* A toy event of another category: the log is not empty, and the tokens
 * read model has to read past it before anyone knows no token exists. */
static void toy_init(void *state)
{
    memset(state, 0, 8);
}

static int toy_evolve(void *state, const struct es_event *event)
{
    (void)state;
    (void)event;
    return 0;
}

static void toy(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    (void)cmd;
    static const struct es_aggregate_type toy_type = {.name = "toy",
                                                      .category = "toy",
                                                      .state_bytes_max = 8,
                                                      .init = toy_init,
                                                      .evolve_stored = toy_evolve,
                                                      .uncached = true};
    static const struct es_event_type toy_event = {"Toyed", 1, NULL};
    const void *state;
    char zero[8] = {0};
    int err = es_decide_load_new(ctx, &toy_type, "toy:1", &state);
    if (!err)
        err = es_decide_emit(ctx, "toy:1", &toy_event, "{}", 2, zero);
    if (err)
        es_decide_fail(ctx, err);
    else
        es_decide_reply(ctx, 200, "{}", 2, NULL);
}

static void test_first_start_waits_for_the_read_model(void **state)
{
    (void)state;
    struct fixture *fp = calloc(1, sizeof(*fp));
    snprintf(fp->dir, sizeof(fp->dir), "/tmp/wallex-auth-XXXXXX");
    assert_non_null(mkdtemp(fp->dir));
    struct es_store_config cfg = {0};
    assert_int_equal(es_store_open("memory", &cfg, &fp->store), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/readmodel.db", fp->dir);
    struct es_projector_config pc = {.store = fp->store,
                                     .backend = &rm_sqlite_ops,
                                     .rm = {.path = path},
                                     .consumers = token_consumers,
                                     .consumers_len = 1};
    assert_int_equal(es_projector_open(&pc, &fp->projector), 0); /* not started yet */
    struct es_writer_config wc = {.store = fp->store, .clock = &wx_clock_system};
    assert_int_equal(es_writer_start(&wc, &fp->writer), 0);
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct done d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    struct es_command cmd = {
        .handle = toy, .arena = &arena, .complete = completed, .complete_ctx = &d};
    assert_int_equal(es_writer_submit(fp->writer, &cmd), 0);
    pthread_mutex_lock(&d.lock);
    while (!d.yes)
        pthread_cond_wait(&d.cond, &d.lock);
    pthread_mutex_unlock(&d.lock);
    assert_int_equal(cmd.status, 200);
    wx_arena_release(&arena);

    struct auth_service_config ac = {.store = fp->store,
                                     .projector = fp->projector,
                                     .writer = fp->writer,
                                     .clock = &wx_clock_system,
                                     .refresh_ms = 20,
                                     .start_wait_ms = 50};
    assert_int_equal(auth_service_start(&ac, &fp->auth), 0);
    assert_false(auth_service_ready(fp->auth));
    bool created = true;
    assert_int_equal(auth_service_first_start(fp->auth, fp->dir, &created), 0);
    assert_false(created); /* nobody knows yet whether a token exists */
    char file[128];
    snprintf(file, sizeof(file), "%s/admin.token", fp->dir);
    assert_int_not_equal(access(file, F_OK), 0);
    assert_int_equal(es_projector_start(fp->projector), 0);
    int64_t started = wx_monotonic_ms();
    /* The file is written first and the token issued after it (a token
     * that exists must be known to someone), so the table may lag the
     * file by the issue's commit. */
    while (access(file, F_OK) != 0 || auth_table_len(auth_service_table(fp->auth)) == 0) {
        assert_true(wx_monotonic_ms() - started < 5000);
        usleep(10 * 1000);
    }
    assert_true(auth_service_ready(fp->auth));
    assert_int_equal(auth_table_len(auth_service_table(fp->auth)), 1);
    auth_service_quiesce(fp->auth); /* before the writer, as serve does */
    teardown((void **)&fp);
}

int main(void)
{
    static const struct es_domain *const domains[] = {&auth_domain};
    if (es_domains_register(domains, 1) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_changes_from_elsewhere_arrive_within_the_delay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_changes_here_are_known_at_once, setup, teardown),
        cmocka_unit_test(test_first_start_waits_for_the_read_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
