/* bus/delivery_sql.c through the checked wrappers (bus/delivery.c), on
 * SQLite (argument: a directory) or PostgreSQL (argument: a URL): state,
 * dead letters, replays, forgetting, orders for the delivering node, and
 * on PostgreSQL the lease between two stores on one schema (writes
 * without it fail). */
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
#include "bus/delivery.h"
#include "es/event.h"

static char path[256];
static const char *pg_url; /* NULL: SQLite at path */
static char pg_schema[64];

/* Opens the store and takes its lease (writes need it). */
static int open_store(bool fresh, struct bus_delivery_store **out)
{
    struct bus_delivery_config c = {.fresh = fresh};
    if (pg_url != NULL) {
        c.url = pg_url;
        c.schema = pg_schema;
    } else {
        c.path = path;
    }
    int err = bus_delivery_open(pg_url ? &bus_delivery_postgres_ops : &bus_delivery_sqlite_ops, &c,
                                out);
    bool held = false;
    if (!err)
        err = bus_delivery_lease(*out, &held);
    assert_true(err || held);
    return err;
}

static int count_letter(void *ctx, const struct bus_dead_letter *dl)
{
    (void)dl;
    (*(int *)ctx)++;
    return 0;
}

static void test_state_and_letters(void **state)
{
    (void)state;
    struct bus_delivery_store *s;
    assert_int_equal(open_store(true, &s), 0);
    struct bus_delivery_state st;
    assert_int_equal(bus_delivery_state_get(s, "s1", &st), WX_ERR_NOT_FOUND);
    memset(&st, 0, sizeof(st));
    st.cursor = (struct es_position){0, 5};
    st.attempts = 2;
    snprintf(st.last_error, sizeof(st.last_error), "HTTP 500");
    assert_int_equal(bus_delivery_state_put(s, "s1", &st), 0);
    struct bus_delivery_state back;
    assert_int_equal(bus_delivery_state_get(s, "s1", &back), 0);
    assert_int_equal(back.cursor.lo, 5);
    assert_int_equal(back.attempts, 2);
    assert_string_equal(back.last_error, "HTTP 500");

    /* A dead letter and the checkpoint past it, together. */
    struct bus_dead_letter dl = {.subscription_id = "s1", .event_id = "e6", .position = {0, 6},
                                 .attempts = 3, .last_error = "HTTP 500", .body = "{}",
                                 .body_len = 2, .first_attempt_ms = 1, .last_attempt_ms = 2};
    struct bus_delivery_state next = back;
    next.cursor = dl.position;
    next.attempts = 0;
    assert_int_equal(bus_delivery_dead_add(s, &dl, &next), 0);
    assert_int_equal(bus_delivery_state_get(s, "s1", &back), 0);
    assert_int_equal(back.cursor.lo, 6);
    int64_t n;
    assert_int_equal(bus_delivery_dead_count(s, "s1", &n), 0);
    assert_int_equal(n, 1);
    int listed = 0;
    assert_int_equal(bus_delivery_dead_list(s, NULL, 0, 10, count_letter, &listed), 0);
    assert_int_equal(listed, 1);
    listed = 0;
    assert_int_equal(bus_delivery_dead_list(s, "other", 0, 10, count_letter, &listed), 0);
    assert_int_equal(listed, 0);

    /* Replay: asked, picked up with its body, failed once, asked, delivered. */
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct bus_dead_letter got;
    assert_int_equal(bus_delivery_dead_next_replay(s, "s1", &arena, &got), WX_ERR_NOT_FOUND);
    assert_int_equal(bus_delivery_dead_get(s, 1, &arena, &got), 0);
    assert_int_equal(bus_delivery_dead_request_replay(s, got.id), 0);
    assert_int_equal(bus_delivery_dead_next_replay(s, "s1", &arena, &got), 0);
    assert_string_equal(got.body, "{}");
    assert_string_equal(got.event_id, "e6");
    assert_int_equal(bus_delivery_dead_replayed(s, got.id, false, "timeout", 3), 0);
    assert_int_equal(bus_delivery_dead_get(s, got.id, &arena, &got), 0);
    assert_int_equal(got.attempts, 4);
    assert_false(got.replay_requested);
    assert_int_equal(bus_delivery_dead_request_replay(s, got.id), 0);
    assert_int_equal(bus_delivery_dead_replayed(s, got.id, true, NULL, 4), 0);
    assert_int_equal(bus_delivery_dead_get(s, got.id, &arena, &got), WX_ERR_NOT_FOUND);
    wx_arena_release(&arena);

    /* A deleted subscription leaves nothing behind. */
    assert_int_equal(bus_delivery_dead_add(s, &dl, &next), 0);
    assert_int_equal(bus_delivery_forget(s, "s1"), 0);
    assert_int_equal(bus_delivery_state_get(s, "s1", &back), WX_ERR_NOT_FOUND);
    assert_int_equal(bus_delivery_dead_count(s, "s1", &n), 0);
    assert_int_equal(n, 0);
    bus_delivery_close(s);

    /* State survives a reopen; `fresh` empties it. */
    assert_int_equal(open_store(false, &s), 0);
    assert_int_equal(bus_delivery_state_put(s, "s2", &st), 0);
    bus_delivery_close(s);
    assert_int_equal(open_store(false, &s), 0);
    assert_int_equal(bus_delivery_state_get(s, "s2", &back), 0);
    bus_delivery_close(s);
    assert_int_equal(open_store(true, &s), 0);
    assert_int_equal(bus_delivery_state_get(s, "s2", &back), WX_ERR_NOT_FOUND);
    bus_delivery_close(s);
}

struct taken {
    struct bus_delivery_request r[4];
    char subs[4][16];
    int n;
};

static int take_one(void *ctx, const struct bus_delivery_request *r)
{
    struct taken *t = ctx;
    assert_true(t->n < 4);
    t->r[t->n] = *r;
    snprintf(t->subs[t->n], sizeof(t->subs[t->n]), "%s", r->subscription_id ? r->subscription_id : "");
    t->n++;
    return 0;
}

/* Orders left for the delivering node come back once, oldest first; one
 * node holds every lease. */
static void test_lease_and_requests(void **state)
{
    (void)state;
    struct bus_delivery_store *s;
    assert_int_equal(open_store(true, &s), 0);
    bool held = false;
    assert_int_equal(bus_delivery_lease(s, &held), 0);
    assert_true(held);
    struct bus_delivery_request a = {.dead_letter_id = 7};
    struct bus_delivery_request b = {.subscription_id = "s9", .from = {3, 4}};
    assert_int_equal(bus_delivery_request_add(s, &a), 0);
    assert_int_equal(bus_delivery_request_add(s, &b), 0);
    struct taken t = {.n = 0};
    assert_int_equal(bus_delivery_requests_take(s, take_one, &t), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.r[0].dead_letter_id, 7);
    assert_string_equal(t.subs[0], "");
    assert_int_equal(t.r[1].dead_letter_id, 0);
    assert_string_equal(t.subs[1], "s9");
    assert_int_equal(t.r[1].from.hi, 3);
    assert_int_equal(t.r[1].from.lo, 4);
    t.n = 0;
    assert_int_equal(bus_delivery_requests_take(s, take_one, &t), 0);
    assert_int_equal(t.n, 0);
    bus_delivery_close(s);
}

/* PostgreSQL: one store delivers at a time; the other's writes fail until
 * the first closes (its session, and so its lease, ends). */
static void test_one_deliverer(void **state)
{
    (void)state;
    if (pg_url == NULL)
        skip();
    struct bus_delivery_store *a, *b;
    assert_int_equal(open_store(true, &a), 0);
    struct bus_delivery_config c = {.url = pg_url, .schema = pg_schema};
    assert_int_equal(bus_delivery_open(&bus_delivery_postgres_ops, &c, &b), 0);
    bool held = true;
    assert_int_equal(bus_delivery_lease(b, &held), 0);
    assert_false(held);
    struct bus_delivery_state st;
    memset(&st, 0, sizeof(st));
    assert_int_equal(bus_delivery_state_put(b, "s3", &st), WX_ERR_BUSY);
    assert_int_equal(bus_delivery_state_put(a, "s3", &st), 0);
    /* An order may be left by any node. */
    struct bus_delivery_request r = {.dead_letter_id = 9};
    assert_int_equal(bus_delivery_request_add(b, &r), 0);
    bus_delivery_close(a);
    /* The server ends a's session a moment after a hangs up. */
    for (int i = 0; i < 200 && !held; i++) {
        assert_int_equal(bus_delivery_lease(b, &held), 0);
        if (!held)
            usleep(10 * 1000);
    }
    assert_true(held);
    st.delivered = 5;
    assert_int_equal(bus_delivery_state_put(b, "s3", &st), 0);
    struct taken t = {.n = 0};
    assert_int_equal(bus_delivery_requests_take(b, take_one, &t), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.r[0].dead_letter_id, 9);
    bus_delivery_close(b);
}

int main(int argc, char **argv)
{
    const char *where = argc > 1 ? argv[1] : ".";
    if (strncmp(where, "postgres", 8) == 0) {
        pg_url = where;
        snprintf(pg_schema, sizeof(pg_schema), "delivery_test_%d", (int)getpid());
    }
    snprintf(path, sizeof(path), "%s/delivery-test.db", where);
    if (pg_url == NULL)
        unlink(path);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_and_letters),
        cmocka_unit_test(test_lease_and_requests),
        cmocka_unit_test(test_one_deliverer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
