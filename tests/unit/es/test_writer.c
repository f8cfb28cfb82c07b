/*
 * The writer (src/es/writer.c) on the memory store with a toy "counter"
 * aggregate: group commit, commands of one batch seeing each other, a
 * failed commit leaving nothing behind, Idempotency-Key handling, and
 * version races lost to another node (a conflicting append made straight
 * into the store, or one injected): the command is decided again on fresh
 * state, the rest of its batch commits, and retries are bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "base/err.h"
#include "es/domain.h"
#include "es/writer.h"
#include "limits.h"
#include "store/store.h"

struct counter {
    int64_t value;
};

static void counter_init(void *state)
{
    ((struct counter *)state)->value = 0;
}

static int counter_evolve_stored(void *state, const struct es_event *ev)
{
    struct counter *c = state;
    long long add;
    if (sscanf(ev->data, "{\"add\":%lld}", &add) != 1)
        return WX_ERR_CORRUPT;
    c->value += add;
    return 0;
}

static const struct es_aggregate_type counter_type = {
    .name = "counter",
    .category = "counter",
    .state_bytes_max = sizeof(struct counter),
    .init = counter_init,
    .evolve_stored = counter_evolve_stored,
};

/* The same, write-once as far as the cache knows (es_aggregate_type.uncached). */
static const struct es_aggregate_type tally_type = {
    .name = "tally",
    .category = "tally",
    .state_bytes_max = sizeof(struct counter),
    .init = counter_init,
    .evolve_stored = counter_evolve_stored,
    .uncached = true,
};

/* The toy domain's one rule and one event type. */
static const struct es_outcome toy_outcomes[] = {{"over_limit", 422, "Over the limit"}};
static const struct es_event_type added = {"Added", 1, NULL};

struct add_cmd {
    const struct es_aggregate_type *type;
    const char *stream;
    int64_t add;
    int64_t limit; /* reject when the value would pass it */
    /* "Another node": after this command loaded its state and before the
     * writer commits, the test appends to the stream (and stores an
     * idempotency record) straight into the store. */
    struct es_store *sneak_store;
    const char *sneak_key;
    int64_t sneak_add;
};

static void sneak(const struct add_cmd *a, int64_t version, const char *request,
                  size_t request_len)
{
    struct es_event ev;
    memset(&ev, 0, sizeof(ev));
    strcpy(ev.event_id, "00000000-0000-7000-8000-00000000beef");
    char data[64];
    int n = snprintf(data, sizeof(data), "{\"add\":%lld}", (long long)a->sneak_add);
    ev.type = "Added";
    ev.schema_version = 1;
    ev.data = data;
    ev.data_len = (size_t)n;
    ev.metadata = "{}";
    ev.metadata_len = 2;
    struct es_stream_append ap = {a->stream, {ES_EXPECT_EXACT, version}, &ev, 1};
    struct es_idem_record rec = {.key = a->sneak_key, .request = request,
                                 .request_len = request_len, .status = 200,
                                 .body = "{\"other\":\"node\"}", .body_len = 16,
                                 .created_at_ms = wx_clock_now_ms(&wx_clock_system)};
    struct es_batch_item item = {.appends = &ap, .appends_len = 1,
                                 .idem = a->sneak_key ? &rec : NULL};
    assert_int_equal(es_store_commit(a->sneak_store, &item, 1), 0);
}

static void handle_add(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    struct add_cmd *a = cmd->payload;
    const void *st;
    int64_t version;
    int err = es_decide_load(ctx, a->type, a->stream, &st, &version);
    if (err) {
        es_decide_fail(ctx, err);
        return;
    }
    struct counter next = *(const struct counter *)st;
    if (a->sneak_store != NULL) {
        sneak(a, version, cmd->request, cmd->request_len);
        a->sneak_store = NULL; /* the other node wins once */
    }
    if (next.value + a->add > a->limit) {
        es_decide_reject(ctx, &toy_outcomes[0], "over the limit");
        return;
    }
    next.value += a->add;
    char data[64];
    int n = snprintf(data, sizeof(data), "{\"add\":%lld}", (long long)a->add);
    err = es_decide_emit(ctx, a->stream, &added, data, (size_t)n, &next);
    if (err) {
        es_decide_fail(ctx, err);
        return;
    }
    char body[64];
    n = snprintf(body, sizeof(body), "{\"value\":%lld,\"version\":%lld}", (long long)next.value,
                 (long long)version + 1);
    es_decide_reply(ctx, 200, body, (size_t)n, NULL);
}

/* A command that holds the writer until the test opens the gate, so the
 * commands submitted meanwhile are decided as one batch. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void handle_gate(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    (void)cmd;
    pthread_mutex_lock(&gate_lock);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    es_decide_reply(ctx, 200, "{}", 2, NULL);
}

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = open;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* Waiting for completions. */
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static size_t done_count;

static void on_complete(struct es_command *cmd)
{
    (void)cmd;
    pthread_mutex_lock(&done_lock);
    done_count++;
    pthread_cond_broadcast(&done_cond);
    pthread_mutex_unlock(&done_lock);
}

static void wait_done(size_t n)
{
    pthread_mutex_lock(&done_lock);
    while (done_count < n)
        pthread_cond_wait(&done_cond, &done_lock);
    pthread_mutex_unlock(&done_lock);
}

#define MANY 2000

/* Each command has an arena of its own: the writer allocates its answer
 * there while the test thread goes on submitting (as each HTTP request has
 * its own). The fixture arena holds what only the test thread touches. */
struct fixture {
    struct es_store *store;
    struct es_writer *writer;
    struct wx_arena arena;
    struct wx_arena cmd_arenas[MANY];
    size_t cmd_arenas_used;
};

static int setup_writer(void **state, bool check_reads)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct es_store_config cfg = {0};
    assert_int_equal(es_store_open("memory", &cfg, &f->store), 0);
    struct es_writer_config wcfg = {.store = f->store, .clock = &wx_clock_system,
                                    .check_reads = check_reads};
    assert_int_equal(es_writer_start(&wcfg, &f->writer), 0);
    wx_arena_init(&f->arena);
    done_count = 0;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_writer(state, false);
}

/* As on PostgreSQL: what a command read is checked with its batch. */
static int setup_shared(void **state)
{
    return setup_writer(state, true);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    es_writer_stop(f->writer);
    es_store_close(f->store);
    wx_arena_release(&f->arena);
    for (size_t i = 0; i < f->cmd_arenas_used; i++)
        wx_arena_release(&f->cmd_arenas[i]);
    free(f);
    return 0;
}

static struct es_command *new_cmd(struct fixture *f, const char *stream, int64_t add,
                                  int64_t limit, const char *key)
{
    struct add_cmd *a = wx_arena_alloc(&f->arena, sizeof(*a));
    a->type = strncmp(stream, "tally:", 6) == 0 ? &tally_type : &counter_type;
    a->stream = stream;
    a->add = add;
    a->limit = limit;
    struct es_command *c = wx_arena_alloc(&f->arena, sizeof(*c));
    assert_true(f->cmd_arenas_used < MANY);
    struct wx_arena *own = &f->cmd_arenas[f->cmd_arenas_used++];
    wx_arena_init(own);
    c->handle = handle_add;
    c->payload = a;
    c->arena = own;
    c->complete = on_complete;
    c->correlation_id = "test";
    strcpy(c->command_id, "00000000-0000-7000-8000-000000000000");
    if (key != NULL) {
        c->idem_key = key;
        char *req = wx_arena_alloc(&f->arena, 64);
        int n = snprintf(req, 64, "%s %lld", stream, (long long)add);
        c->request = req;
        c->request_len = (size_t)n;
    }
    return c;
}

static int64_t stream_version(struct fixture *f, const char *stream)
{
    int64_t v = -1;
    assert_int_equal(es_store_stream_version(f->store, stream, &v), 0);
    return v;
}

static void test_many_commands_one_stream(void **state)
{
    struct fixture *f = *state;
    static struct es_command *cmds[MANY];
    for (int i = 0; i < MANY; i++) {
        cmds[i] = new_cmd(f, "counter:a", 1, INT64_MAX, NULL);
        assert_int_equal(es_writer_submit(f->writer, cmds[i]), 0);
    }
    wait_done(MANY);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(cmds[i]->status, 200);
        assert_true(cmds[i]->has_position);
        if (i > 0) /* completion order is submission order, positions increase */
            assert_true(es_position_cmp(&cmds[i - 1]->position, &cmds[i]->position) < 0);
    }
    char want[64];
    snprintf(want, sizeof(want), "{\"value\":%d,\"version\":%d}", MANY, MANY);
    assert_string_equal(cmds[MANY - 1]->body, want);
    assert_int_equal(stream_version(f, "counter:a"), MANY);
    const struct es_writer_stats *st = es_writer_stats(f->writer);
    assert_int_equal(atomic_load(&st->events), MANY);
    /* Group commit: fewer transactions than commands is likely but not
     * certain on a fast machine, so only the bound is asserted. */
    assert_true(atomic_load(&st->batches) <= MANY);
}

static void test_failed_commit_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct es_command *first = new_cmd(f, "counter:b", 5, INT64_MAX, NULL);
    assert_int_equal(es_writer_submit(f->writer, first), 0);
    wait_done(1);
    assert_int_equal(first->status, 200);

    es_store_fault_commit(f->store, 0, 1); /* the next commit fails */
    struct es_command *failed = new_cmd(f, "counter:b", 7, INT64_MAX, "key-1");
    assert_int_equal(es_writer_submit(f->writer, failed), 0);
    wait_done(2);
    assert_int_equal(failed->status, 503);
    assert_false(failed->has_position);
    assert_int_equal(stream_version(f, "counter:b"), 1);

    /* The cache did not keep the failed state, and the key is free. */
    struct es_command *retry = new_cmd(f, "counter:b", 7, INT64_MAX, "key-1");
    assert_int_equal(es_writer_submit(f->writer, retry), 0);
    wait_done(3);
    assert_int_equal(retry->status, 200);
    assert_false(retry->replayed);
    assert_string_equal(retry->body, "{\"value\":12,\"version\":2}");
    assert_int_equal(stream_version(f, "counter:b"), 2);
}

static void test_idempotency(void **state)
{
    struct fixture *f = *state;
    struct es_command *a = new_cmd(f, "counter:c", 3, INT64_MAX, "k");
    assert_int_equal(es_writer_submit(f->writer, a), 0);
    wait_done(1);
    assert_int_equal(a->status, 200);

    struct es_command *again = new_cmd(f, "counter:c", 3, INT64_MAX, "k");
    assert_int_equal(es_writer_submit(f->writer, again), 0);
    wait_done(2);
    assert_true(again->replayed);
    assert_int_equal(again->status, 200);
    assert_int_equal(again->body_len, a->body_len);
    assert_memory_equal(again->body, a->body, a->body_len);
    assert_int_equal(es_position_cmp(&again->position, &a->position), 0);
    assert_int_equal(stream_version(f, "counter:c"), 1);

    struct es_command *other = new_cmd(f, "counter:c", 4, INT64_MAX, "k");
    assert_int_equal(es_writer_submit(f->writer, other), 0);
    wait_done(3);
    assert_int_equal(other->status, 422);
    assert_non_null(strstr(other->body, "idempotency_key_reused"));

    /* A rejection is an outcome too: remembered and replayed. */
    struct es_command *rej = new_cmd(f, "counter:c", 100, 10, "k2");
    assert_int_equal(es_writer_submit(f->writer, rej), 0);
    wait_done(4);
    assert_int_equal(rej->status, 422);
    struct es_command *rej2 = new_cmd(f, "counter:c", 100, INT64_MAX, "k2");
    /* same request identity ("counter:c 100"), different limit: still the
     * first outcome, nothing applied */
    assert_int_equal(es_writer_submit(f->writer, rej2), 0);
    wait_done(5);
    assert_true(rej2->replayed);
    assert_int_equal(rej2->status, 422);
    assert_int_equal(stream_version(f, "counter:c"), 1);
}

static void test_same_key_in_one_batch(void **state)
{
    struct fixture *f = *state;
    /* Submitted back to back, they usually share a batch; either way exactly
     * one is applied and the other is in-use (409) or a replay. */
    struct es_command *a = new_cmd(f, "counter:d", 1, INT64_MAX, "dup");
    struct es_command *b = new_cmd(f, "counter:d", 1, INT64_MAX, "dup");
    assert_int_equal(es_writer_submit(f->writer, a), 0);
    assert_int_equal(es_writer_submit(f->writer, b), 0);
    wait_done(2);
    assert_int_equal(a->status, 200);
    assert_true(b->status == 409 || (b->status == 200 && b->replayed));
    assert_int_equal(stream_version(f, "counter:d"), 1);
}

/* Streams of an uncached type are folded from the store at every load,
 * and still come out right; cached ones are folded once. */
static void test_uncached_type(void **state)
{
    struct fixture *f = *state;
    const struct es_writer_stats *st = es_writer_stats(f->writer);
    const char *streams[] = {"counter:e", "tally:e"};
    for (size_t s = 0; s < 2; s++) {
        uint64_t misses = atomic_load(&st->cache_misses);
        uint64_t hits = atomic_load(&st->cache_hits);
        for (int i = 1; i <= 3; i++) {
            struct es_command *c = new_cmd(f, streams[s], 2, INT64_MAX, NULL);
            assert_int_equal(es_writer_submit(f->writer, c), 0);
            wait_done(s * 3 + (size_t)i);
            char want[64];
            snprintf(want, sizeof(want), "{\"value\":%d,\"version\":%d}", 2 * i, i);
            assert_string_equal(c->body, want);
        }
        /* The first load of each finds an empty stream in the store. */
        assert_int_equal(atomic_load(&st->cache_misses) - misses, s == 0 ? 1 : 3);
        assert_int_equal(atomic_load(&st->cache_hits) - hits, s == 0 ? 2 : 0);
    }
}

/* committed runs once a command's events are durable and before its
 * completion; never for a rejection or a replay. */
static size_t committed_calls;
static size_t committed_saw_done;
static int64_t committed_saw_version;
static struct es_store *committed_store;

static void on_committed(struct es_command *cmd)
{
    (void)cmd;
    committed_calls++;
    pthread_mutex_lock(&done_lock);
    committed_saw_done = done_count;
    pthread_mutex_unlock(&done_lock);
    assert_int_equal(es_store_stream_version(committed_store, "counter:f", &committed_saw_version),
                     0);
}

static int read_metadata(void *ctx, const struct es_event *ev)
{
    snprintf(ctx, 512, "%.*s", (int)ev->metadata_len, ev->metadata);
    return 0;
}

static int first_event(void *ctx, const struct es_event *ev)
{
    char *out = ctx;
    snprintf(out, 512, "%.*s", (int)ev->metadata_len, ev->metadata);
    char actor[WX_ID_BYTES_MAX + 1];
    assert_true(es_event_actor(ev, actor));
    assert_string_equal(actor, "alice");
    return 0;
}

static void test_actor_and_committed(void **state)
{
    struct fixture *f = *state;
    committed_calls = 0;
    committed_store = f->store;
    struct es_command *a = new_cmd(f, "counter:f", 1, 5, "ka");
    a->actor = "alice";
    a->token_id = "0190aaaa-0000-7000-8000-000000000001";
    a->committed = on_committed;
    assert_int_equal(es_writer_submit(f->writer, a), 0);
    wait_done(1);
    assert_int_equal(a->status, 200);
    assert_int_equal(committed_calls, 1);
    assert_int_equal(committed_saw_done, 0); /* before its own completion */
    assert_int_equal(committed_saw_version, 1); /* after the commit */
    char metadata[512];
    assert_int_equal(es_store_read_stream(f->store, "counter:f", 1, 1, first_event, metadata), 0);
    assert_non_null(strstr(metadata, "\"actor\":\"alice\""));
    assert_non_null(strstr(metadata, "\"tokenId\":\"0190aaaa-0000-7000-8000-000000000001\""));

    struct es_command *rejected = new_cmd(f, "counter:f", 10, 5, NULL);
    rejected->committed = on_committed;
    struct es_command *replay = new_cmd(f, "counter:f", 1, 5, "ka");
    replay->committed = on_committed;
    assert_int_equal(es_writer_submit(f->writer, rejected), 0);
    assert_int_equal(es_writer_submit(f->writer, replay), 0);
    wait_done(3);
    assert_int_equal(rejected->status, 422);
    assert_true(replay->replayed);
    assert_int_equal(committed_calls, 1);

    /* Without an actor the metadata names none. */
    struct es_command *anon = new_cmd(f, "counter:g", 1, 5, NULL);
    assert_int_equal(es_writer_submit(f->writer, anon), 0);
    wait_done(4);
    assert_int_equal(es_store_read_stream(f->store, "counter:g", 1, 1, read_metadata, metadata),
                     0);
    assert_null(strstr(metadata, "actor"));
}

/* discarded follows every run of a handler that committed does not: a
 * rejection, a failed commit; neither follows a replay. */
static size_t discarded_calls;

static void on_discarded(struct es_command *cmd)
{
    (void)cmd;
    discarded_calls++;
}

static void test_discarded(void **state)
{
    struct fixture *f = *state;
    committed_calls = 0;
    discarded_calls = 0;
    committed_store = f->store;
    struct es_command *ok = new_cmd(f, "counter:f", 1, 5, "kd");
    ok->committed = on_committed;
    ok->discarded = on_discarded;
    assert_int_equal(es_writer_submit(f->writer, ok), 0);
    wait_done(1);
    assert_int_equal(committed_calls, 1);
    assert_int_equal(discarded_calls, 0);

    struct es_command *rejected = new_cmd(f, "counter:f", 10, 5, NULL);
    rejected->discarded = on_discarded;
    struct es_command *replay = new_cmd(f, "counter:f", 1, 5, "kd");
    replay->discarded = on_discarded;
    assert_int_equal(es_writer_submit(f->writer, rejected), 0);
    assert_int_equal(es_writer_submit(f->writer, replay), 0);
    wait_done(3);
    assert_int_equal(rejected->status, 422);
    assert_true(replay->replayed);
    assert_int_equal(discarded_calls, 1);

    es_store_fault_commit(f->store, 0, 1); /* the next commit fails */
    struct es_command *failed = new_cmd(f, "counter:f", 1, 5, NULL);
    failed->committed = on_committed;
    failed->discarded = on_discarded;
    assert_int_equal(es_writer_submit(f->writer, failed), 0);
    wait_done(4);
    assert_int_equal(failed->status, 503);
    assert_int_equal(committed_calls, 1);
    assert_int_equal(discarded_calls, 2);
}

/* es_event_actor's fast way and its strict reader agree on what the
 * writer writes and on what it never does. */
static void test_event_actor_reading(void **state)
{
    (void)state;
    static const struct {
        const char *metadata;
        const char *actor; /* NULL: none */
    } cases[] = {
        {"{\"correlationId\":\"c\",\"causationId\":\"d\",\"actor\":\"u-1\",\"tokenId\":\"t\"}",
         "u-1"},
        {"{\"correlationId\":\"c\"}", NULL},
        {"{\"actor\":\"first\"}", "first"},
        /* A correlation id that spells the key: its quotes are escaped. */
        {"{\"correlationId\":\"x\\\",\\\"actor\\\":\\\"evil\",\"actor\":\"good\"}", "good"},
        {"{\"correlationId\":\"x\\\",\\\"actor\\\":\\\"evil\"}", NULL},
        /* An escaped character in the value: the strict reader decides. */
        {"{\"c\":\"c\",\"actor\":\"a\\u0062\"}", "ab"},
        {"{\"c\":\"c\",\"actor\":\"\"}", ""},
        {"{\"c\":\"c\",\"actor\":12}", NULL},
        {"{\"c\":\"c\",\"actor\":\"unterminated", NULL},
        {"{\"c\":\"c\",\"actor\":\""
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", NULL}, /* 65 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct es_event ev = {.metadata = cases[i].metadata,
                              .metadata_len = strlen(cases[i].metadata)};
        char actor[WX_ID_BYTES_MAX + 1] = "untouched";
        bool found = es_event_actor(&ev, actor);
        if (cases[i].actor == NULL) {
            assert_false(found);
        } else {
            assert_true(found);
            assert_string_equal(actor, cases[i].actor);
        }
    }
}

static struct es_command *gate_cmd(struct fixture *f)
{
    struct es_command *c = new_cmd(f, "counter:gate", 0, INT64_MAX, NULL);
    c->handle = handle_gate;
    return c;
}

/* Another node appended to a stream this node has cached: the command is
 * decided again on what is stored now, never applied on the stale state,
 * and a decision that changes with it (here a rejection) is the one given. */
static void test_conflict_decided_again(void **state)
{
    struct fixture *f = *state;
    struct es_command *first = new_cmd(f, "counter:x", 5, INT64_MAX, NULL);
    assert_int_equal(es_writer_submit(f->writer, first), 0);
    wait_done(1);
    assert_string_equal(first->body, "{\"value\":5,\"version\":1}");

    struct es_command *c = new_cmd(f, "counter:x", 1, INT64_MAX, NULL);
    struct add_cmd *a = c->payload;
    a->sneak_store = f->store; /* +100 lands between load and commit */
    a->sneak_add = 100;
    /* Each run of the handler is settled: the lost one discarded before
     * the second is decided, which commits. */
    committed_calls = 0;
    discarded_calls = 0;
    committed_store = f->store;
    c->committed = on_committed;
    c->discarded = on_discarded;
    assert_int_equal(es_writer_submit(f->writer, c), 0);
    wait_done(2);
    assert_int_equal(c->status, 200);
    assert_string_equal(c->body, "{\"value\":106,\"version\":3}");
    assert_int_equal(discarded_calls, 1);
    assert_int_equal(committed_calls, 1);
    assert_int_equal(stream_version(f, "counter:x"), 3);
    const struct es_writer_stats *st = es_writer_stats(f->writer);
    assert_int_equal(atomic_load(&st->conflicts), 1);
    assert_int_equal(atomic_load(&st->conflict_retries), 1);
    assert_int_equal(atomic_load(&st->commit_failures), 0);

    /* Fresh state says no: 106 + 10 passes the limit once 50 more landed. */
    struct es_command *r = new_cmd(f, "counter:x", 10, 150, NULL);
    a = r->payload;
    a->sneak_store = f->store;
    a->sneak_add = 50;
    assert_int_equal(es_writer_submit(f->writer, r), 0);
    wait_done(3);
    assert_int_equal(r->status, 422);
    assert_int_equal(stream_version(f, "counter:x"), 4);
}

/* In one batch: the command that lost, and a later one on the same stream
 * (decided on the lost one's state) are decided again; one on another
 * stream commits in the first round. */
static void test_conflict_rest_of_batch_commits(void **state)
{
    struct fixture *f = *state;
    gate_set(false);
    assert_int_equal(es_writer_submit(f->writer, gate_cmd(f)), 0);
    struct es_command *a = new_cmd(f, "counter:p", 1, INT64_MAX, NULL);
    struct es_command *b = new_cmd(f, "counter:q", 1, INT64_MAX, NULL);
    struct es_command *c = new_cmd(f, "counter:p", 2, INT64_MAX, NULL);
    es_store_fault_conflict(f->store, "counter:p", 1);
    assert_int_equal(es_writer_submit(f->writer, a), 0);
    assert_int_equal(es_writer_submit(f->writer, b), 0);
    assert_int_equal(es_writer_submit(f->writer, c), 0);
    gate_set(true);
    wait_done(4);
    assert_string_equal(a->body, "{\"value\":1,\"version\":1}");
    assert_string_equal(b->body, "{\"value\":1,\"version\":1}");
    assert_string_equal(c->body, "{\"value\":3,\"version\":2}");
    /* b committed before a and c were decided again. */
    assert_true(es_position_cmp(&b->position, &a->position) < 0);
    assert_true(es_position_cmp(&a->position, &c->position) < 0);
    const struct es_writer_stats *st = es_writer_stats(f->writer);
    assert_int_equal(atomic_load(&st->conflict_retries), 2);
    assert_int_equal(stream_version(f, "counter:p"), 2);
    assert_int_equal(stream_version(f, "counter:q"), 1);
}

/* A stream that loses every race: bounded retries, then 409, never 503,
 * nothing applied; the next command on it goes through. */
static void test_conflict_retries_bounded(void **state)
{
    struct fixture *f = *state;
    es_store_fault_conflict(f->store, "counter:h", 1000);
    struct es_command *c = new_cmd(f, "counter:h", 1, INT64_MAX, "hot-key");
    assert_int_equal(es_writer_submit(f->writer, c), 0);
    wait_done(1);
    assert_int_equal(c->status, 409);
    assert_non_null(strstr(c->body, "version_conflict"));
    assert_int_equal(stream_version(f, "counter:h"), 0);
    const struct es_writer_stats *st = es_writer_stats(f->writer);
    assert_int_equal(atomic_load(&st->conflict_retries), WX_WRITER_CONFLICT_RETRIES_MAX + 1);
    es_store_fault_conflict(f->store, "counter:h", 0);
    struct es_command *again = new_cmd(f, "counter:h", 1, INT64_MAX, "hot-key");
    assert_int_equal(es_writer_submit(f->writer, again), 0);
    wait_done(2);
    assert_int_equal(again->status, 200); /* the 409 was not remembered under the key */
    assert_false(again->replayed);
}

/* The same Idempotency-Key on two nodes at once: the other node's commit
 * lands between our look-up and our commit. Ours loses, and is answered
 * from the other node's record: applied once. */
static void test_idempotency_key_race(void **state)
{
    struct fixture *f = *state;
    struct es_command *c = new_cmd(f, "counter:k", 1, INT64_MAX, "both-nodes");
    struct add_cmd *a = c->payload;
    a->sneak_store = f->store;
    a->sneak_key = "both-nodes";
    a->sneak_add = 1;
    assert_int_equal(es_writer_submit(f->writer, c), 0);
    wait_done(1);
    assert_true(c->replayed);
    assert_int_equal(c->status, 200);
    assert_string_equal(c->body, "{\"other\":\"node\"}");
    assert_int_equal(stream_version(f, "counter:k"), 1);
}

/* A rejection decided on a cached state another node has changed since:
 * on a shared store it is checked with the batch, and decided again on the
 * fresh state, where it fits. Remembered under its key is the fresh answer. */
static void test_stale_rejection_decided_again(void **state)
{
    struct fixture *f = *state;
    struct es_command *first = new_cmd(f, "counter:s", 100, INT64_MAX, NULL);
    assert_int_equal(es_writer_submit(f->writer, first), 0);
    wait_done(1);
    struct es_command *c = new_cmd(f, "counter:s", 50, 120, "stale-key");
    struct add_cmd *a = c->payload;
    a->sneak_store = f->store; /* -100 lands between load and commit */
    a->sneak_add = -100;
    assert_int_equal(es_writer_submit(f->writer, c), 0);
    wait_done(2);
    assert_int_equal(c->status, 200); /* 100 + 50 > 120 was stale; 0 + 50 fits */
    assert_string_equal(c->body, "{\"value\":50,\"version\":3}");
    struct es_command *again = new_cmd(f, "counter:s", 50, 120, "stale-key");
    assert_int_equal(es_writer_submit(f->writer, again), 0);
    wait_done(3);
    assert_true(again->replayed);
    assert_int_equal(again->status, 200);
    /* A rejection that still holds on fresh state stands, and commits no event. */
    struct es_command *no = new_cmd(f, "counter:s", 500, 120, NULL);
    assert_int_equal(es_writer_submit(f->writer, no), 0);
    wait_done(4);
    assert_int_equal(no->status, 422);
    assert_false(no->has_position);
    assert_int_equal(stream_version(f, "counter:s"), 3);
}

int main(void)
{
    /* The writer counts outcomes by registered table (es/outcome.h). */
    if (es_outcomes_register("toy", toy_outcomes, 1) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_commands_one_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_key_in_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncached_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor_and_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discarded, setup, teardown),
        cmocka_unit_test(test_event_actor_reading),
        cmocka_unit_test_setup_teardown(test_conflict_decided_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_rest_of_batch_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_retries_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_key_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_rejection_decided_again, setup_shared,
                                        teardown),
        /* Everything else holds with the reads checked as well. */
        cmocka_unit_test_setup_teardown(test_many_commands_one_stream, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_rest_of_batch_commits, setup_shared,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup_shared, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
