/*
 * The SQLite store's stream index (src/store/streamindex.h): reads and
 * versions must be the same whether an event is in index.db, in the
 * writer's in-memory tail, or only in events.db (another process reading);
 * and index.db must come back right when missing, behind, or taken from
 * another log. The index thread is parked with the "stream-index" fault so
 * the tail is really there; each check is then repeated once it has run.
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

#include "base/err.h"
#include "base/fault.h"
#include "limits.h"
#include "store/store.h"

static char base[4096];
static char faults[4200];

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[16384];
    int n = snprintf(cmd, sizeof(cmd), fmt, a, b);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    assert_int_equal(system(cmd), 0);
}

static void park_index(bool parked)
{
    sh(parked ? "touch '%s/stream-index'%s" : "rm -f '%s/stream-index'%s", faults, "");
}

static struct es_store *open_dir(const char *dir)
{
    struct es_store_config cfg = {.data_dir = dir};
    struct es_store *s = NULL;
    assert_int_equal(es_store_open("sqlite", &cfg, &s), 0);
    return s;
}

/* Appends n events to stream; event data records the stream and version
 * so reads can be checked against what was written. Returns the commit's
 * error. */
static int try_append(struct es_store *s, const char *stream, struct es_expect expect, size_t n)
{
    int64_t expect_version = expect.kind == ES_EXPECT_EXACT ? expect.version : 0;
    struct es_event events[8];
    char data[8][64];
    assert_true(n <= 8);
    memset(events, 0, sizeof(events));
    for (size_t i = 0; i < n; i++) {
        snprintf(events[i].event_id, sizeof(events[i].event_id),
                 "00000000-0000-7000-8000-%012d", rand() % 1000000);
        snprintf(data[i], sizeof(data[i]), "{\"s\":\"%s\",\"v\":%lld}", stream,
                 (long long)expect_version + 1 + (long long)i);
        events[i].type = "T";
        events[i].data = data[i];
        events[i].data_len = strlen(data[i]);
        events[i].metadata = "{}";
        events[i].metadata_len = 2;
        events[i].occurred_at_ms = 1700000000000LL;
    }
    struct es_stream_append ap = {stream, expect, events, n};
    struct es_batch_item item = {.appends = &ap, .appends_len = 1};
    return es_store_commit(s, &item, 1);
}

static void append(struct es_store *s, const char *stream, int64_t expect_version, size_t n)
{
    assert_int_equal(try_append(s, stream, (struct es_expect){ES_EXPECT_EXACT, expect_version}, n),
                     0);
}

struct check {
    const char *stream;
    int64_t next;
    size_t n;
};

static int check_event(void *ctx, const struct es_event *e)
{
    struct check *c = ctx;
    char want[64];
    snprintf(want, sizeof(want), "{\"s\":\"%s\",\"v\":%lld}", c->stream, (long long)c->next);
    assert_string_equal(e->stream_id, c->stream);
    assert_int_equal(e->version, c->next);
    assert_string_equal(e->data, want);
    c->next++;
    c->n++;
    return 0;
}

/* Reads of every window of the stream give versions from..from+max-1
 * (cut at `version`), in order, and its version is `version`. */
static void check_stream(struct es_store *s, const char *stream, int64_t version)
{
    int64_t v = -1;
    assert_int_equal(es_store_stream_version(s, stream, &v), 0);
    assert_int_equal(v, version);
    for (int64_t from = 1; from <= version + 1; from++) {
        for (size_t max = 1; max <= (size_t)version + 2; max++) {
            struct check c = {stream, from, 0};
            assert_int_equal(es_store_read_stream(s, stream, from, max, check_event, &c), 0);
            int64_t left = version - from + 1;
            assert_int_equal(c.n, (size_t)(left < (int64_t)max ? left : (int64_t)max));
        }
    }
}

/* Three streams, written in turns so their events interleave in the log:
 * a has 9 events, b 6, c 3. */
static void write_streams(struct es_store *s, int64_t base_version)
{
    for (int round = 0; round < 3; round++) {
        append(s, "a", base_version * 3 + round * 3, 3);
        append(s, "b", base_version * 2 + round * 2, 2);
        append(s, "c", base_version + round, 1);
    }
}

static void check_streams(struct es_store *s, int64_t rounds)
{
    check_stream(s, "a", 9 * rounds);
    check_stream(s, "b", 6 * rounds);
    check_stream(s, "c", 3 * rounds);
    check_stream(s, "none", 0);
}

static void wait_indexed(void)
{
    park_index(false);
    usleep(600 * 1000); /* a few flush periods */
}

static void test_tail_and_index_agree(void **state)
{
    (void)state;
    char dir[4300];
    snprintf(dir, sizeof(dir), "%s/agree", base);
    park_index(true);
    struct es_store *s = open_dir(dir);
    write_streams(s, 0);
    check_streams(s, 1); /* all in the writer's tail */

    /* Another handle on the same files knows no tail: it scans. */
    struct es_store *other = open_dir(dir);
    check_streams(other, 1);

    wait_indexed();
    check_streams(s, 1); /* all in index.db */
    park_index(true);
    write_streams(s, 3);
    check_streams(s, 2); /* half indexed, half tail */
    check_streams(other, 2);
    es_store_close(other);
    es_store_close(s);

    s = open_dir(dir); /* catches up at open */
    check_streams(s, 2);
    write_streams(s, 6);
    check_streams(s, 3);
    es_store_close(s);
    park_index(false);
}

static void test_index_rebuilt(void **state)
{
    (void)state;
    char dir[4300], other[4300];
    snprintf(dir, sizeof(dir), "%s/rebuilt", base);
    snprintf(other, sizeof(other), "%s/other", base);
    struct es_store *s = open_dir(dir);
    write_streams(s, 0);
    es_store_close(s);

    /* index.db deleted: rebuilt from the log. */
    sh("rm -f '%s'/index.db*%s", dir, "");
    s = open_dir(dir);
    check_streams(s, 1);
    es_store_close(s);

    /* index.db from another log with more events: noticed and rebuilt. */
    s = open_dir(other);
    write_streams(s, 0);
    write_streams(s, 3);
    es_store_close(s);
    sh("rm -f '%1$s'/index.db* && cp '%2$s'/index.db '%1$s'/", dir, other);
    s = open_dir(dir);
    check_streams(s, 1);
    write_streams(s, 3); /* and commits check against the rebuilt index */
    check_streams(s, 2);
    es_store_close(s);
}

/* The writer remembers versions instead of reading index.db for each
 * append (WX_STORE_VERSIONS_MAX): what it remembers must never be stale,
 * whether learned from index.db, from its own commits, or before a
 * stream existed, and across generations. */
static void test_versions_remembered(void **state)
{
    (void)state;
    char dir[4300];
    snprintf(dir, sizeof(dir), "%s/versions", base);
    struct es_store *s = open_dir(dir);
    const struct es_expect none = {ES_EXPECT_NO_STREAM, 0};

    /* Looked up before it exists (the expectation fails), then created,
     * then only in index.db: appends must see the created version. */
    assert_int_equal(try_append(s, "y", (struct es_expect){ES_EXPECT_EXACT, 5}, 1),
                     WX_ERR_CONFLICT);
    assert_int_equal(try_append(s, "y", none, 2), 0);
    assert_int_equal(try_append(s, "y", none, 1), WX_ERR_CONFLICT);
    wait_indexed();
    assert_int_equal(try_append(s, "y", (struct es_expect){ES_EXPECT_EXACT, 1}, 1),
                     WX_ERR_CONFLICT);
    append(s, "y", 2, 1);
    assert_int_equal(try_append(s, "y", (struct es_expect){ES_EXPECT_EXACT, 2}, 1),
                     WX_ERR_CONFLICT);
    append(s, "y", 3, 2);
    check_stream(s, "y", 5);

    /* More streams than two generations hold, each appended to twice so
     * the writer remembers them: the first ones are forgotten and read
     * from index.db again, right. */
    enum { STREAMS = 2 * WX_STORE_VERSIONS_MAX + 1000, BATCH = 4096 };
    static char names[BATCH][16];
    static struct es_event events[BATCH];
    static struct es_stream_append aps[BATCH];
    for (int64_t version = 0; version < 2; version++) {
        for (int first = 0; first < STREAMS; first += BATCH) {
            int n = STREAMS - first < BATCH ? STREAMS - first : BATCH;
            for (int i = 0; i < n; i++) {
                snprintf(names[i], sizeof(names[i]), "r%d", first + i);
                memset(&events[i], 0, sizeof(events[i]));
                snprintf(events[i].event_id, sizeof(events[i].event_id),
                         "00000000-0000-7000-8000-%012d", rand() % 1000000);
                events[i].type = "T";
                events[i].data = "{}";
                events[i].data_len = 2;
                events[i].metadata = "{}";
                events[i].metadata_len = 2;
                aps[i] = (struct es_stream_append){names[i], {ES_EXPECT_EXACT, version},
                                                   &events[i], 1};
            }
            struct es_batch_item item = {.appends = aps, .appends_len = (size_t)n};
            assert_int_equal(es_store_commit(s, &item, 1), 0);
        }
    }
    const char *probe[] = {"r0", "r1", "r131072", "y"};
    int64_t at[] = {2, 2, 2, 5};
    for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
        struct es_expect stale = {ES_EXPECT_EXACT, at[i] - 1};
        assert_int_equal(try_append(s, probe[i], stale, 1), WX_ERR_CONFLICT);
        append(s, probe[i], at[i], 1);
    }
    es_store_close(s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <dir>\n", argv[0]);
        return 2;
    }
    snprintf(base, sizeof(base), "%s", argv[1]);
    snprintf(faults, sizeof(faults), "%s/faults", base);
    sh("rm -rf '%s' && mkdir -p '%s'", base, faults);
    wx_fault_init(faults);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_and_index_agree),
        cmocka_unit_test(test_index_rebuilt),
        cmocka_unit_test(test_versions_remembered),
    };
    return cmocka_run_group_tests_name("sqlite stream index", tests, NULL, NULL);
}
