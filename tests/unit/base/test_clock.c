/* RFC 3339 timestamps (src/base/clock.c): exact text for known instants,
 * and format then parse gives the instant back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "base/clock.h"

static void test_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {1795320191123LL, "2026-11-22T04:03:11.123Z"},
        {951782400000LL, "2000-02-29T00:00:00.000Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
    };
    char out[WX_RFC3339_BYTES];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wx_time_format(cases[i].ms, out);
        assert_string_equal(out, cases[i].text);
    }
    srand(7);
    for (int i = 0; i < 100000; i++) {
        int64_t ms = ((int64_t)rand() << 20 ^ rand()) % 253402300800000LL;
        int64_t back = -1;
        wx_time_format(ms, out);
        assert_true(wx_time_parse(out, &back));
        assert_true(back == ms);
    }
}

/* Only instants that format back in four-digit years parse. */
static void test_parse_range(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_true(wx_time_parse("9999-12-31T23:59:59.999Z", &ms));
    assert_int_equal(ms, WX_TIME_MS_MAX);
    assert_true(wx_time_parse("0000-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, WX_TIME_MS_MIN);
    ms = 42;
    assert_false(wx_time_parse("9999-12-31T23:00:00-05:00", &ms)); /* the year 10000 */
    assert_false(wx_time_parse("0000-01-01T00:00:00+01:00", &ms)); /* the year -1 */
    assert_int_equal(ms, 42);
    char out[WX_RFC3339_BYTES];
    wx_time_format(WX_TIME_MS_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_format),
                                       cmocka_unit_test(test_parse_range)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
