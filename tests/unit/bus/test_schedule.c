/* bus/schedule.c: durations and retry schedules, as a table of cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms; /* 0: refused */
    } cases[] = {
        {"250ms", 250}, {"5s", 5000}, {"5m", 300000}, {"2h", 7200000}, {"5d", 432000000},
        {"0s", 0},      {"", 0},      {"s", 0},       {"5", 0},         {"5sec", 0},
        {"-5s", 0},     {"5 s", 0},   {"1.5s", 0},    {"99999999999999999999ms", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        bool ok = bus_duration_parse(cases[i].text, INT64_MAX / 2, &ms);
        assert_int_equal(ok, cases[i].ms != 0);
        if (ok)
            assert_int_equal(ms, cases[i].ms);
    }
    int64_t ms;
    assert_false(bus_duration_parse("6m", 5 * 60 * 1000, &ms)); /* over its maximum */
    assert_false(bus_duration_parse(NULL, 1000, &ms));
}

static void test_schedules(void **state)
{
    (void)state;
    int64_t d[BUS_RETRY_SCHEDULE_MAX];
    size_t n;
    assert_true(bus_schedule_parse(BUS_RETRY_SCHEDULE_DEFAULT, d, &n));
    assert_int_equal(n, 7);
    assert_int_equal(d[0], 5000);
    assert_int_equal(d[6], 10LL * 3600 * 1000);
    assert_true(bus_schedule_parse("50ms", d, &n));
    assert_int_equal(n, 1);
    assert_false(bus_schedule_parse("", d, &n));
    assert_false(bus_schedule_parse("5s,", d, &n));
    assert_false(bus_schedule_parse(",5s", d, &n));
    assert_false(bus_schedule_parse("5s,,5s", d, &n));
    assert_false(bus_schedule_parse("8d", d, &n)); /* longer than a week */
    assert_false(bus_schedule_parse("1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s", d, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
