/*
 * The store conformance suite: one contract, run against every backend
 * (`store_conformance <backend> <dir>`, or `store_conformance postgres
 * <url>`: each test then gets a schema of its own in that database).
 * Expected versions, atomic multi-stream batches and which item of one
 * conflicted, log order, idempotency records and, for durable backends,
 * that everything is still there after a reopen. On PostgreSQL also the
 * gap-free order of DESIGN.md §6: an append held open while later ones
 * commit is neither skipped nor waited for past its commit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <unistd.h>

#include "base/err.h"
#include "store/store.h"

static const char *backend;
static const char *base_dir; /* postgres: the connection URL */
static char dir[4096];       /* postgres: the schema */
static int dir_seq;

static bool is_postgres(void)
{
    return strcmp(backend, "postgres") == 0;
}

/* A second connection of the test's own, to the current schema. */
static PGconn *pg_side_conn(void)
{
    PGconn *c = PQconnectdb(base_dir);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    char sql[4200];
    snprintf(sql, sizeof(sql), "SET search_path TO %s", dir);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return c;
}

static void pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* A fresh store gets a new directory (a new schema) of its own; otherwise
 * the last one is opened again. */
static struct es_store *open_store(bool fresh)
{
    if (fresh && is_postgres()) {
        snprintf(dir, sizeof(dir), "conformance_%d_%d", (int)getpid(), dir_seq++);
        PGconn *c = PQconnectdb(base_dir);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        char sql[4200];
        snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE",
                 dir);
        pg_exec(c, sql);
        PQfinish(c);
    } else if (fresh) {
        snprintf(dir, sizeof(dir), "%s-%d", base_dir, dir_seq++);
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
    struct es_store_config cfg = {.data_dir = dir};
    if (is_postgres())
        cfg = (struct es_store_config){.url = base_dir, .pg_schema = dir};
    struct es_store *s = NULL;
    assert_int_equal(es_store_open(backend, &cfg, &s), 0);
    return s;
}

static struct es_event ev(const char *type, const char *data)
{
    struct es_event e;
    memset(&e, 0, sizeof(e));
    snprintf(e.event_id, sizeof(e.event_id), "00000000-0000-7000-8000-%012d", rand() % 1000000);
    e.type = type;
    e.data = data;
    e.data_len = strlen(data);
    e.metadata = "{}";
    e.metadata_len = 2;
    e.occurred_at_ms = 1700000000000LL;
    e.schema_version = 1;
    return e;
}

static int append(struct es_store *s, const char *stream, enum es_expect_kind kind,
                  int64_t version, size_t n)
{
    struct es_event events[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        events[i] = ev("T", "{\"n\":1}");
    struct es_stream_append ap = {stream, {kind, version}, events, n};
    struct es_batch_item item = {.appends = &ap, .appends_len = 1};
    return es_store_commit(s, &item, 1);
}

static int64_t version_of(struct es_store *s, const char *stream)
{
    int64_t v = -1;
    assert_int_equal(es_store_stream_version(s, stream, &v), 0);
    return v;
}

static void test_expected_versions(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    assert_int_equal(version_of(s, "a"), 0);
    assert_int_equal(append(s, "a", ES_EXPECT_NO_STREAM, 0, 2), 0);
    assert_int_equal(version_of(s, "a"), 2);
    assert_int_equal(append(s, "a", ES_EXPECT_NO_STREAM, 0, 1), WX_ERR_CONFLICT);
    assert_int_equal(append(s, "a", ES_EXPECT_EXACT, 1, 1), WX_ERR_CONFLICT);
    assert_int_equal(append(s, "a", ES_EXPECT_EXACT, 3, 1), WX_ERR_CONFLICT);
    assert_int_equal(append(s, "a", ES_EXPECT_EXACT, 2, 1), 0);
    assert_int_equal(append(s, "a", ES_EXPECT_ANY, 0, 3), 0);
    assert_int_equal(append(s, "b", ES_EXPECT_EXACT, 0, 1), 0); /* exact 0 = no stream */
    assert_int_equal(append(s, "b", ES_EXPECT_EXACT, 0, 1), WX_ERR_CONFLICT);
    assert_int_equal(version_of(s, "a"), 6);
    assert_int_equal(version_of(s, "b"), 1);
    es_store_close(s);
}

struct collected {
    int64_t versions[64];
    struct es_position positions[64];
    char streams[64][16];
    size_t n;
};

static int collect(void *ctx, const struct es_event *e)
{
    struct collected *c = ctx;
    assert_true(c->n < 64);
    c->versions[c->n] = e->version;
    c->positions[c->n] = e->position;
    snprintf(c->streams[c->n], sizeof(c->streams[0]), "%s", e->stream_id);
    assert_string_equal(e->type, "T");
    assert_string_equal(e->data, "{\"n\":1}");
    c->n++;
    return 0;
}

static void test_multi_stream_atomicity(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    assert_int_equal(append(s, "x", ES_EXPECT_NO_STREAM, 0, 1), 0);
    struct es_position head_before;
    assert_int_equal(es_store_head(s, &head_before), 0);

    /* Item one is fine, item two conflicts: the whole batch is refused. */
    struct es_event e1[2] = {ev("T", "{\"n\":1}"), ev("T", "{\"n\":1}")};
    struct es_event e2[1] = {ev("T", "{\"n\":1}")};
    struct es_event e3[1] = {ev("T", "{\"n\":1}")};
    struct es_stream_append item1[2] = {{"x", {ES_EXPECT_EXACT, 1}, e1, 1},
                                        {"y", {ES_EXPECT_NO_STREAM, 0}, e1 + 1, 1}};
    struct es_stream_append item2[1] = {{"x", {ES_EXPECT_EXACT, 1}, e2, 1}}; /* stale */
    struct es_idem_record rec = {.key = "k", .request = "r", .request_len = 1, .status = 200,
                                 .body = "{}", .body_len = 2, .created_at_ms = 1};
    struct es_batch_item items[2] = {{.appends = item1, .appends_len = 2, .idem = &rec},
                                     {.appends = item2, .appends_len = 1}};
    assert_int_equal(es_store_commit(s, items, 2), WX_ERR_CONFLICT);
    /* The store names the item that lost, not the batch. */
    assert_false(items[0].conflict);
    assert_true(items[1].conflict);
    assert_int_equal(version_of(s, "x"), 1);
    assert_int_equal(version_of(s, "y"), 0);
    struct es_position head_after;
    assert_int_equal(es_store_head(s, &head_after), 0);
    assert_int_equal(es_position_cmp(&head_before, &head_after), 0);
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct es_idem_record got;
    assert_int_equal(es_store_idem_get(s, "k", &arena, &got), WX_ERR_NOT_FOUND);

    /* Later items see earlier ones of the same batch. */
    struct es_stream_append item3[1] = {{"x", {ES_EXPECT_EXACT, 2}, e3, 1}};
    struct es_batch_item ok_items[2] = {{.appends = item1, .appends_len = 2, .idem = &rec},
                                        {.appends = item3, .appends_len = 1}};
    assert_int_equal(es_store_commit(s, ok_items, 2), 0);
    assert_int_equal(version_of(s, "x"), 3);
    assert_int_equal(version_of(s, "y"), 1);
    assert_true(rec.has_position);
    assert_int_equal(es_position_cmp(&rec.position, &e1[1].position), 0);
    assert_int_equal(es_store_idem_get(s, "k", &arena, &got), 0);
    assert_int_equal(got.status, 200);
    assert_int_equal(es_position_cmp(&got.position, &rec.position), 0);
    wx_arena_release(&arena);
    es_store_close(s);
}

static void test_log_order_and_paging(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    const char *streams[] = {"p", "q", "p", "r", "q", "p"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(append(s, streams[i], ES_EXPECT_ANY, 0, 2), 0);

    struct collected all = {0};
    struct es_position start = es_position_start();
    assert_int_equal(es_store_read_log(s, &start, 1000, collect, &all), 0);
    assert_int_equal(all.n, 12);
    for (size_t i = 1; i < all.n; i++)
        assert_true(es_position_cmp(&all.positions[i - 1], &all.positions[i]) < 0);

    /* Paging with the last position gives the same sequence. */
    struct collected paged = {0};
    struct es_position after = start;
    for (int guard = 0; guard < 20; guard++) {
        size_t before = paged.n;
        assert_int_equal(es_store_read_log(s, &after, 5, collect, &paged), 0);
        if (paged.n == before)
            break;
        after = paged.positions[paged.n - 1];
    }
    assert_int_equal(paged.n, 12);
    for (size_t i = 0; i < 12; i++) {
        assert_int_equal(es_position_cmp(&paged.positions[i], &all.positions[i]), 0);
        assert_string_equal(paged.streams[i], all.streams[i]);
    }

    struct collected p = {0};
    assert_int_equal(es_store_read_stream(s, "p", 3, 100, collect, &p), 0);
    assert_int_equal(p.n, 4);
    for (size_t i = 0; i < p.n; i++)
        assert_int_equal(p.versions[i], (int64_t)i + 3);
    struct es_position head, tail;
    assert_int_equal(es_store_head(s, &head), 0);
    assert_int_equal(es_position_cmp(&head, &all.positions[11]), 0);
    /* No transaction open: the tail is the head (the API suite holds one
     * open on PostgreSQL, where the tail passes the head). */
    assert_int_equal(es_store_tail(s, &tail), 0);
    assert_int_equal(es_position_cmp(&tail, &head), 0);
    es_store_close(s);
}

static void test_idempotency_expiry(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    struct es_idem_record old = {.key = "old", .request = "r", .request_len = 1, .status = 422,
                                 .body = "{\"code\":\"x\"}", .body_len = 12, .created_at_ms = 100};
    struct es_idem_record young = old;
    young.key = "young";
    young.created_at_ms = 200;
    struct es_batch_item items[2] = {{.idem = &old}, {.idem = &young}};
    assert_int_equal(es_store_commit(s, items, 2), 0);
    assert_false(old.has_position);
    size_t deleted = 0;
    assert_int_equal(es_store_idem_expire(s, 150, 10, &deleted), 0);
    assert_int_equal(deleted, 1);
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct es_idem_record got;
    assert_int_equal(es_store_idem_get(s, "old", &arena, &got), WX_ERR_NOT_FOUND);
    assert_int_equal(es_store_idem_get(s, "young", &arena, &got), 0);
    assert_int_equal(got.status, 422);
    assert_int_equal(got.body_len, 12);
    assert_memory_equal(got.body, "{\"code\":\"x\"}", 12);
    wx_arena_release(&arena);
    es_store_close(s);
}

static void test_reopen(void **state)
{
    (void)state;
    /* Durability across a close is a property of durable backends only; the
     * memory backend by definition starts empty. */
    if (strcmp(backend, "memory") == 0) {
        struct es_store *s = open_store(true);
        assert_int_equal(append(s, "m", ES_EXPECT_NO_STREAM, 0, 1), 0);
        es_store_close(s);
        s = open_store(false);
        assert_int_equal(version_of(s, "m"), 0);
        es_store_close(s);
        return;
    }
    struct es_store *s = open_store(true);
    assert_int_equal(append(s, "z", ES_EXPECT_NO_STREAM, 0, 3), 0);
    es_store_close(s);
    s = open_store(false);
    assert_int_equal(version_of(s, "z"), 3);
    assert_int_equal(append(s, "z", ES_EXPECT_EXACT, 3, 1), 0);
    struct collected c = {0};
    assert_int_equal(es_store_read_stream(s, "z", 1, 100, collect, &c), 0);
    assert_int_equal(c.n, 4);
    es_store_close(s);
}

static void test_snapshots(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct es_snapshot got;
    assert_int_equal(es_store_snapshot_get(s, "s", 0, &arena, &got), WX_ERR_NOT_FOUND);
    /* Snapshots commit with their events, and the latest <= a bound wins. */
    for (int64_t v = 1; v <= 3; v++) {
        struct es_event e[2] = {ev("T", "{\"n\":1}"), ev("T", "{\"n\":1}")};
        struct es_stream_append ap = {"s", {ES_EXPECT_EXACT, (v - 1) * 2}, e, 2};
        char data[16];
        snprintf(data, sizeof(data), "state-%lld", (long long)v * 2);
        struct es_snapshot snap = {"s", v * 2, 1000 + v, data, strlen(data)};
        struct es_batch_item item = {.appends = &ap, .appends_len = 1, .snapshots = &snap,
                                     .snapshots_len = 1};
        assert_int_equal(es_store_commit(s, &item, 1), 0);
    }
    assert_int_equal(es_store_snapshot_get(s, "s", 0, &arena, &got), 0);
    assert_int_equal(got.version, 6);
    assert_int_equal(got.occurred_at_ms, 1003);
    assert_int_equal(got.data_len, 7);
    assert_memory_equal(got.data, "state-6", 7);
    assert_int_equal(es_store_snapshot_get(s, "s", 5, &arena, &got), 0);
    assert_int_equal(got.version, 4);
    /* Only the two latest are kept. */
    assert_int_equal(es_store_snapshot_get(s, "s", 3, &arena, &got), WX_ERR_NOT_FOUND);
    /* A batch that fails takes its snapshot with it. */
    struct es_event e[1] = {ev("T", "{\"n\":1}")};
    struct es_stream_append stale = {"s", {ES_EXPECT_EXACT, 1}, e, 1};
    struct es_snapshot snap = {"s", 7, 2000, "bad", 3};
    struct es_batch_item item = {.appends = &stale, .appends_len = 1, .snapshots = &snap,
                                 .snapshots_len = 1};
    assert_int_equal(es_store_commit(s, &item, 1), WX_ERR_CONFLICT);
    assert_int_equal(es_store_snapshot_get(s, "s", 0, &arena, &got), 0);
    assert_int_equal(got.version, 6);
    wx_arena_release(&arena);
    es_store_close(s);
}

/* Each event keeps the schema version it was written with, through a
 * reopen, in stream reads and log reads alike (es/domain.h upcasts on
 * read, so the store must give back exactly what was written). */
struct schema_seen {
    int versions[4];
    size_t len;
};

static int note_schema(void *arg, const struct es_event *e)
{
    struct schema_seen *seen = arg;
    if (seen->len < 4)
        seen->versions[seen->len++] = e->schema_version;
    return 0;
}

static void test_schema_versions(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    struct es_event events[3] = {ev("Old", "{\"v\":1}"), ev("New", "{\"v\":2}"),
                                 ev("Newer", "{\"v\":7}")};
    events[0].schema_version = 1;
    events[1].schema_version = 2;
    events[2].schema_version = 7;
    struct es_stream_append ap = {"s", {ES_EXPECT_NO_STREAM, 0}, events, 3};
    struct es_batch_item item = {.appends = &ap, .appends_len = 1};
    assert_int_equal(es_store_commit(s, &item, 1), 0);
    for (int round = 0; round < 2; round++) {
        struct schema_seen by_stream = {{0}, 0}, by_log = {{0}, 0};
        assert_int_equal(es_store_read_stream(s, "s", 1, 10, note_schema, &by_stream), 0);
        struct es_position start = es_position_start();
        assert_int_equal(es_store_read_log(s, &start, 10, note_schema, &by_log), 0);
        assert_int_equal(by_stream.len, 3);
        assert_int_equal(by_log.len, 3);
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(by_stream.versions[i], events[i].schema_version);
            assert_int_equal(by_log.versions[i], events[i].schema_version);
        }
        if (strcmp(backend, "memory") == 0)
            break; /* nothing survives a reopen there */
        es_store_close(s);
        s = open_store(false);
    }
    es_store_close(s);
}

/* Only the items that lost are marked, and the rest commit once they are
 * taken out: what the writer does when another node won a race. An
 * idempotency record replaces a stored one only once that has expired. */
static void test_conflict_names_items(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    assert_int_equal(append(s, "q", ES_EXPECT_NO_STREAM, 0, 1), 0);
    struct es_event e[3] = {ev("T", "{\"n\":1}"), ev("T", "{\"n\":1}"), ev("T", "{\"n\":1}")};
    struct es_stream_append aps[3] = {{"p", {ES_EXPECT_NO_STREAM, 0}, e, 1},
                                      {"q", {ES_EXPECT_EXACT, 5}, e + 1, 1},
                                      {"r", {ES_EXPECT_EXACT, 0}, e + 2, 1}};
    struct es_batch_item items[3] = {{.appends = &aps[0], .appends_len = 1},
                                     {.appends = &aps[1], .appends_len = 1},
                                     {.appends = &aps[2], .appends_len = 1}};
    assert_int_equal(es_store_commit(s, items, 3), WX_ERR_CONFLICT);
    assert_false(items[0].conflict);
    assert_true(items[1].conflict);
    assert_int_equal(version_of(s, "p"), 0);
    items[1] = items[2];
    assert_int_equal(es_store_commit(s, items, 2), 0);
    assert_false(items[0].conflict || items[1].conflict);
    assert_int_equal(version_of(s, "p"), 1);
    assert_int_equal(version_of(s, "r"), 1);

    struct es_idem_record rec = {.key = "k", .request = "r", .request_len = 1, .status = 200,
                                 .body = "{}", .body_len = 2, .created_at_ms = 1000};
    struct es_batch_item item = {.idem = &rec};
    assert_int_equal(es_store_commit(s, &item, 1), 0);
    struct es_idem_record again = rec;
    again.status = 201;
    again.created_at_ms = 2000;
    again.expired_before_ms = 500; /* the stored one is younger: another node holds the key */
    item.idem = &again;
    assert_int_equal(es_store_commit(s, &item, 1), WX_ERR_CONFLICT);
    assert_true(item.conflict);
    again.expired_before_ms = 1500; /* expired: replaced */
    assert_int_equal(es_store_commit(s, &item, 1), 0);
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct es_idem_record got;
    assert_int_equal(es_store_idem_get(s, "k", &arena, &got), 0);
    assert_int_equal(got.status, 201);
    wx_arena_release(&arena);

    es_store_fault_conflict(s, "p", 1);
    assert_int_equal(append(s, "p", ES_EXPECT_EXACT, 1, 1), WX_ERR_CONFLICT);
    assert_int_equal(append(s, "p", ES_EXPECT_EXACT, 1, 1), 0);
    es_store_close(s);
}

/* Several streams after a version of each, in one read: each stream's
 * events after its version, oldest first, stream by stream in the order
 * asked (the writer brings cached states up to the log with it), and no
 * more than max_events in all. A stream of quotes and backslashes is read
 * as any other (PostgreSQL gets the ids as an array literal). */
static void test_read_streams(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    assert_int_equal(append(s, "q", ES_EXPECT_ANY, 0, 4), 0);
    assert_int_equal(append(s, "p", ES_EXPECT_ANY, 0, 6), 0);
    assert_int_equal(append(s, "a\"b\\c", ES_EXPECT_ANY, 0, 2), 0);
    struct es_stream_from from[] = {{"p", 2}, {"r", 0}, {"q", 4}, {"a\"b\\c", 1}, {"q", 1}};
    struct collected c = {0};
    assert_int_equal(es_store_read_streams(s, from, 5, 100, collect, &c), 0);
    const char *want_stream[] = {"p", "p", "p", "p", "a\"b\\c", "q", "q", "q"};
    const int64_t want_version[] = {3, 4, 5, 6, 2, 2, 3, 4};
    assert_int_equal(c.n, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_string_equal(c.streams[i], want_stream[i]);
        assert_int_equal(c.versions[i], want_version[i]);
    }
    struct collected cut = {0};
    assert_int_equal(es_store_read_streams(s, from, 5, 3, collect, &cut), 0);
    assert_int_equal(cut.n, 3);
    assert_int_equal(cut.versions[2], 5);
    assert_int_equal(es_store_read_streams(s, from, 0, 100, collect, &cut), 0);
    assert_int_equal(cut.n, 3);
    es_store_close(s);
}

/* Items that lost to appends already stored are all named by one failed
 * commit on a shared store (the writer decides them all again at once,
 * rather than one per failed commit); the others are not marked. */
static void test_conflict_names_every_stale_item(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    const char *names[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(append(s, names[i], ES_EXPECT_ANY, 0, 2), 0);
    struct es_event e[4] = {ev("T", "{\"n\":1}"), ev("T", "{\"n\":1}"), ev("T", "{\"n\":1}"),
                            ev("T", "{\"n\":1}")};
    struct es_stream_append aps[4] = {{"a", {ES_EXPECT_EXACT, 1}, e, 1},
                                      {"b", {ES_EXPECT_EXACT, 2}, e + 1, 1},
                                      {"c", {ES_EXPECT_EXACT, 1}, e + 2, 1},
                                      {"d", {ES_EXPECT_EXACT, 2}, e + 3, 1}};
    struct es_batch_item items[4];
    for (size_t i = 0; i < 4; i++)
        items[i] = (struct es_batch_item){.appends = &aps[i], .appends_len = 1};
    assert_int_equal(es_store_commit(s, items, 4), WX_ERR_CONFLICT);
    assert_false(items[1].conflict || items[3].conflict);
    assert_true(items[0].conflict || items[2].conflict);
    if (es_store_shared(s))
        assert_true(items[0].conflict && items[2].conflict);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(version_of(s, names[i]), 2);
    es_store_close(s);
}

/* An append without events is a check: the stream must still be at the
 * expected version when the batch commits, and nothing is written for it. */
static void test_checks(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    assert_int_equal(append(s, "c", ES_EXPECT_NO_STREAM, 0, 2), 0);
    struct es_position head_before, head_after;
    assert_int_equal(es_store_head(s, &head_before), 0);
    struct es_idem_record rec = {.key = "ck", .request = "r", .request_len = 1, .status = 422,
                                 .body = "{}", .body_len = 2, .created_at_ms = 1};
    struct es_stream_append check = {"c", {ES_EXPECT_EXACT, 2}, NULL, 0};
    struct es_stream_append none = {"absent", {ES_EXPECT_EXACT, 0}, NULL, 0};
    struct es_stream_append both[2] = {check, none};
    struct es_batch_item item = {.appends = both, .appends_len = 2, .idem = &rec};
    assert_int_equal(es_store_commit(s, &item, 1), 0);
    assert_false(rec.has_position);
    assert_int_equal(es_store_head(s, &head_after), 0);
    assert_int_equal(es_position_cmp(&head_before, &head_after), 0);
    assert_int_equal(version_of(s, "absent"), 0);

    /* Stale: the stream moved on. */
    struct es_stream_append stale = {"c", {ES_EXPECT_EXACT, 1}, NULL, 0};
    struct es_event e[1] = {ev("T", "{\"n\":1}")};
    struct es_stream_append other = {"d", {ES_EXPECT_NO_STREAM, 0}, e, 1};
    struct es_batch_item items[2] = {{.appends = &other, .appends_len = 1},
                                     {.appends = &stale, .appends_len = 1}};
    assert_int_equal(es_store_commit(s, items, 2), WX_ERR_CONFLICT);
    assert_false(items[0].conflict);
    assert_true(items[1].conflict);
    assert_int_equal(version_of(s, "d"), 0);

    /* In one batch a check sees the appends before it, not after it. */
    struct es_event e2[2] = {ev("T", "{\"n\":1}"), ev("T", "{\"n\":1}")};
    struct es_stream_append first = {"c", {ES_EXPECT_EXACT, 2}, e2, 1};
    struct es_stream_append seen = {"c", {ES_EXPECT_EXACT, 3}, NULL, 0};
    struct es_stream_append later = {"c", {ES_EXPECT_EXACT, 3}, e2 + 1, 1};
    struct es_batch_item seq[3] = {{.appends = &first, .appends_len = 1},
                                   {.appends = &seen, .appends_len = 1},
                                   {.appends = &later, .appends_len = 1}};
    assert_int_equal(es_store_commit(s, seq, 3), 0);
    assert_int_equal(version_of(s, "c"), 4);
    struct es_stream_append before_first = {"e", {ES_EXPECT_EXACT, 0}, NULL, 0};
    struct es_event e3[1] = {ev("T", "{\"n\":1}")};
    struct es_stream_append then = {"e", {ES_EXPECT_EXACT, 0}, e3, 1};
    struct es_batch_item seq2[2] = {{.appends = &before_first, .appends_len = 1},
                                    {.appends = &then, .appends_len = 1}};
    assert_int_equal(es_store_commit(s, seq2, 2), 0);
    assert_int_equal(version_of(s, "e"), 1);
    es_store_close(s);
}

/* DESIGN.md §6 on PostgreSQL: a transaction that took its id before later
 * ones but commits after them. A reader must not skip its events (they
 * come before the later ones once committed) and must not stall on it
 * after it ends, committed or rolled back. */
static void pg_hold_append(PGconn *side, const char *stream, const char *event_id)
{
    char sql[512];
    pg_exec(side, "BEGIN");
    snprintf(sql, sizeof(sql),
             "INSERT INTO events(event_id, stream_id, version, type, schema_version, data,"
             " metadata, occurred_at_ms) VALUES ('%s', '%s', 1, 'T', 1, '{\"n\":1}', '{}', 1)",
             event_id, stream);
    pg_exec(side, sql);
}

static size_t read_all(struct es_store *s, const struct es_position *after, struct collected *c)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(es_store_read_log(s, after, 1000, collect, c), 0);
    return c->n;
}

static void test_gap_free_order(void **state)
{
    (void)state;
    if (!is_postgres())
        skip();
    struct es_store *s = open_store(true);
    PGconn *side = pg_side_conn();
    assert_int_equal(append(s, "g1", ES_EXPECT_NO_STREAM, 0, 1), 0);
    pg_hold_append(side, "held", "00000000-0000-7000-8000-000000000001");
    assert_int_equal(append(s, "g2", ES_EXPECT_NO_STREAM, 0, 1), 0);
    assert_int_equal(append(s, "g3", ES_EXPECT_NO_STREAM, 0, 2), 0);

    /* Held open: the later, committed appends wait behind it. */
    struct collected c;
    struct es_position start = es_position_start(), head;
    assert_int_equal(read_all(s, &start, &c), 1);
    assert_string_equal(c.streams[0], "g1");
    struct es_position checkpoint = c.positions[0];
    assert_int_equal(es_store_head(s, &head), 0);
    assert_int_equal(es_position_cmp(&head, &checkpoint), 0);

    /* Committed: it comes first, then the rest; nothing skipped. */
    pg_exec(side, "COMMIT");
    assert_int_equal(read_all(s, &checkpoint, &c), 4);
    assert_string_equal(c.streams[0], "held");
    assert_string_equal(c.streams[1], "g2");
    assert_string_equal(c.streams[2], "g3");
    for (size_t i = 1; i < c.n; i++)
        assert_true(es_position_cmp(&c.positions[i - 1], &c.positions[i]) < 0);
    checkpoint = c.positions[c.n - 1];

    /* Rolled back: readers go on past it at once. */
    pg_hold_append(side, "gone", "00000000-0000-7000-8000-000000000002");
    assert_int_equal(append(s, "g4", ES_EXPECT_NO_STREAM, 0, 1), 0);
    assert_int_equal(read_all(s, &checkpoint, &c), 0);
    pg_exec(side, "ROLLBACK");
    assert_int_equal(read_all(s, &checkpoint, &c), 1);
    assert_string_equal(c.streams[0], "g4");
    checkpoint = c.positions[0];

    /* Transaction ids are compared as numbers: spend ids until the next
     * one has one more digit, and commit on both sides of it. */
    uint64_t next = checkpoint.hi + 1, boundary = 10;
    while (boundary <= next + 1)
        boundary *= 10;
    if (boundary - next > 200000) { /* an old cluster: too many to spend */
        PQfinish(side);
        es_store_close(s);
        return;
    }
    char burn[256];
    snprintf(burn, sizeof(burn),
             "DO $$ BEGIN FOR i IN 1..%llu LOOP PERFORM pg_current_xact_id(); COMMIT;"
             " END LOOP; END $$",
             (unsigned long long)(boundary - next - 2));
    pg_exec(side, burn);
    assert_int_equal(append(s, "g5", ES_EXPECT_NO_STREAM, 0, 1), 0);
    assert_int_equal(append(s, "g6", ES_EXPECT_NO_STREAM, 0, 1), 0);
    assert_int_equal(append(s, "g7", ES_EXPECT_NO_STREAM, 0, 1), 0);
    assert_int_equal(read_all(s, &checkpoint, &c), 3);
    assert_string_equal(c.streams[0], "g5");
    assert_string_equal(c.streams[2], "g7");
    assert_true(c.positions[0].hi < boundary && c.positions[2].hi >= boundary);
    assert_int_equal(es_store_head(s, &head), 0);
    assert_int_equal(es_position_cmp(&head, &c.positions[2]), 0);
    PQfinish(side);
    es_store_close(s);
}

static void test_fault_injection(void **state)
{
    (void)state;
    struct es_store *s = open_store(true);
    es_store_fault_commit(s, 1, 2); /* one commit passes, two fail, then fine */
    assert_int_equal(append(s, "f", ES_EXPECT_ANY, 0, 1), 0);
    assert_int_equal(append(s, "f", ES_EXPECT_ANY, 0, 1), WX_ERR_FAULT);
    assert_int_equal(append(s, "f", ES_EXPECT_ANY, 0, 1), WX_ERR_FAULT);
    assert_int_equal(append(s, "f", ES_EXPECT_ANY, 0, 1), 0);
    assert_int_equal(version_of(s, "f"), 2);
    es_store_close(s);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <backend> <dir | postgres url>\n", argv[0]);
        return 2;
    }
    backend = argv[1];
    base_dir = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_versions),
        cmocka_unit_test(test_multi_stream_atomicity),
        cmocka_unit_test(test_log_order_and_paging),
        cmocka_unit_test(test_idempotency_expiry),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_snapshots),
        cmocka_unit_test(test_schema_versions),
        cmocka_unit_test(test_fault_injection),
        cmocka_unit_test(test_conflict_names_items),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_read_streams),
        cmocka_unit_test(test_conflict_names_every_stale_item),
        cmocka_unit_test(test_gap_free_order),
    };
    return cmocka_run_group_tests_name(backend, tests, NULL, NULL);
}
