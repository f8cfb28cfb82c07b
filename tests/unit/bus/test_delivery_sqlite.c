/* bus/delivery_sqlite.c through the checked wrappers (bus/delivery.c):
 * state, dead letters, replays, forgetting. */
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

static char path[256];

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
    assert_int_equal(bus_delivery_open(&bus_delivery_sqlite_ops, path, true, &s), 0);
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
    assert_int_equal(bus_delivery_open(&bus_delivery_sqlite_ops, path, false, &s), 0);
    assert_int_equal(bus_delivery_state_put(s, "s2", &st), 0);
    bus_delivery_close(s);
    assert_int_equal(bus_delivery_open(&bus_delivery_sqlite_ops, path, false, &s), 0);
    assert_int_equal(bus_delivery_state_get(s, "s2", &back), 0);
    bus_delivery_close(s);
    assert_int_equal(bus_delivery_open(&bus_delivery_sqlite_ops, path, true, &s), 0);
    assert_int_equal(bus_delivery_state_get(s, "s2", &back), WX_ERR_NOT_FOUND);
    bus_delivery_close(s);
}

int main(int argc, char **argv)
{
    snprintf(path, sizeof(path), "%s/delivery-test.db", argc > 1 ? argv[1] : ".");
    unlink(path);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_and_letters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
