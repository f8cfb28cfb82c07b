/* Amount parsing and formatting: exact, table-driven (src/base/money.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/money.h"

struct parse_case {
    const char *text;
    int exponent;
    int err;
    int64_t minor;
};

static const struct parse_case parse_cases[] = {
    {"100.00", 2, 0, 10000},
    {"0.3", 2, 0, 30},
    {"0.1", 2, 0, 10},
    {"0.2", 2, 0, 20},
    {"12", 2, 0, 1200},
    {"12", 0, 0, 12},
    {"0", 2, 0, 0},
    {"1.234", 3, 0, 1234},
    {"92233720368547758.07", 2, 0, INT64_MAX},
    {"9223372036854775807", 0, 0, INT64_MAX},
    {"92233720368547758.08", 2, WX_ERR_OVERFLOW, 0},
    {"9223372036854775808", 0, WX_ERR_OVERFLOW, 0},
    {"18446744073709551615", 2, WX_ERR_OVERFLOW, 0},
    {"99999999999999999999999999", 2, WX_ERR_OVERFLOW, 0},
    {"1.001", 2, WX_ERR_INVALID, 0}, /* too many decimals */
    {"1.0", 0, WX_ERR_INVALID, 0},   /* JPY has no minor digits */
    {"1e5", 2, WX_ERR_INVALID, 0},
    {"1E5", 2, WX_ERR_INVALID, 0},
    {"-1", 2, WX_ERR_INVALID, 0},
    {"+1", 2, WX_ERR_INVALID, 0},
    {"NaN", 2, WX_ERR_INVALID, 0},
    {"Infinity", 2, WX_ERR_INVALID, 0},
    {"", 2, WX_ERR_INVALID, 0},
    {".5", 2, WX_ERR_INVALID, 0},
    {"5.", 2, WX_ERR_INVALID, 0},
    {"01", 2, WX_ERR_INVALID, 0},
    {"1 ", 2, WX_ERR_INVALID, 0},
    {" 1", 2, WX_ERR_INVALID, 0},
    {"1,5", 2, WX_ERR_INVALID, 0},
    {"0x10", 2, WX_ERR_INVALID, 0},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        int64_t minor = -1;
        int err = wx_money_parse(c->text, strlen(c->text), c->exponent, &minor);
        if (err != c->err || (err == 0 && minor != c->minor))
            fail_msg("case %zu '%s' exp %d: err %d minor %lld", i, c->text, c->exponent, err,
                     (long long)minor);
    }
}

static void test_parse_stops_at_length(void **state)
{
    (void)state;
    int64_t minor;
    assert_int_equal(wx_money_parse("12.345", 4, 2, &minor), 0); /* "12.3" */
    assert_int_equal(minor, 1230);
}

struct format_case {
    int64_t minor;
    int exponent;
    const char *text;
};

static const struct format_case format_cases[] = {
    {10000, 2, "100.00"}, {30, 2, "0.30"},     {5, 0, "5"},
    {0, 2, "0.00"},       {1, 3, "0.001"},     {-150, 2, "-1.50"},
    {INT64_MAX, 2, "92233720368547758.07"},    {INT64_MIN, 2, "-92233720368547758.08"},
    {INT64_MAX, 0, "9223372036854775807"},     {12345, 4, "1.2345"},
};

static void test_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
        struct wx_buf b;
        wx_buf_init(&b);
        wx_money_format(&b, format_cases[i].minor, format_cases[i].exponent);
        assert_true(wx_buf_ok(&b));
        assert_string_equal(b.data, format_cases[i].text);
        wx_buf_free(&b);
    }
}

/* 0.1 + 0.2 is 0.30 exactly, the classic float failure. */
static void test_point_one_plus_point_two(void **state)
{
    (void)state;
    int64_t a, b, sum;
    assert_int_equal(wx_money_parse("0.1", 3, 2, &a), 0);
    assert_int_equal(wx_money_parse("0.2", 3, 2, &b), 0);
    assert_false(__builtin_add_overflow(a, b, &sum));
    struct wx_buf out;
    wx_buf_init(&out);
    wx_money_format(&out, sum, 2);
    assert_string_equal(out.data, "0.30");
    wx_buf_free(&out);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const int64_t values[] = {0, 1, 9, 10, 99, 100, 12345678, INT64_MAX};
    for (int exponent = 0; exponent <= 4; exponent++) {
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            struct wx_buf b;
            wx_buf_init(&b);
            wx_money_format(&b, values[i], exponent);
            int64_t back;
            assert_int_equal(wx_money_parse(b.data, b.len, exponent, &back), 0);
            assert_int_equal(back, values[i]);
            wx_buf_free(&b);
        }
    }
}

static void test_currencies(void **state)
{
    (void)state;
    static const struct {
        const char *code;
        int exponent;
    } cases[] = {{"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"JPY", 0}, {"VND", 0}, {"KRW", 0},
                 {"KWD", 3}, {"BHD", 3}, {"CLF", 4}, {"usd", -1}, {"XXX", -1}, {"US", -1},
                 {"USDX", -1}, {"", -1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(wx_currency_exponent(cases[i].code), cases[i].exponent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_stops_at_length),
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_point_one_plus_point_two),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_currencies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
