/* The flat JSON reader (src/base/jflat.c): what it reads, and what it must
 * refuse. tests/fuzz/fuzz_jflat.c checks it against json-c at random. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/jflat.h"

static char buf[4096];

static int parse(const char *text, struct wx_jflat *j)
{
    return wx_jflat_parse(text, strlen(text), buf, strlen(text) + 1, j);
}

static void test_reads_an_event(void **state)
{
    (void)state;
    struct wx_jflat j;
    assert_int_equal(
        parse(" {\"walletId\":\"w-1\", \"amountMinor\" : 1250,\n"
              "\"description\":\"caf\\u00e9 \\\"x\\\"\\n\\ud83d\\ude00\","
              "\"transferId\":null,\"ok\":true,\"no\":false,\"min\":-9223372036854775808,"
              "\"max\":9223372036854775807,\"zero\":-0} ",
              &j),
        0);
    assert_int_equal(j.len, 9);
    assert_string_equal(wx_jflat_str(&j, "walletId", 64), "w-1");
    assert_null(wx_jflat_str(&j, "walletId", 2)); /* longer than allowed */
    int64_t v = 0;
    assert_true(wx_jflat_i64(&j, "amountMinor", &v));
    assert_int_equal(v, 1250);
    assert_string_equal(wx_jflat_str(&j, "description", 64), "caf\xc3\xa9 \"x\"\n\xf0\x9f\x98\x80");
    assert_int_equal(wx_jflat_get(&j, "transferId")->type, WX_JFLAT_NULL);
    assert_null(wx_jflat_str(&j, "transferId", 64));
    assert_true(wx_jflat_get(&j, "ok")->b);
    assert_false(wx_jflat_get(&j, "no")->b);
    assert_true(wx_jflat_i64(&j, "min", &v));
    assert_true(v == INT64_MIN);
    assert_true(wx_jflat_i64(&j, "max", &v));
    assert_true(v == INT64_MAX);
    assert_true(wx_jflat_i64(&j, "zero", &v));
    assert_int_equal(v, 0);
    assert_false(wx_jflat_i64(&j, "walletId", &v)); /* a string is not an integer */
    assert_null(wx_jflat_get(&j, "absent"));

    assert_int_equal(parse("{}", &j), 0);
    assert_int_equal(j.len, 0);
    assert_int_equal(parse("{\"a\":1,\"a\":2}", &j), 0); /* the last one, as json-c */
    assert_true(wx_jflat_i64(&j, "a", &v));
    assert_int_equal(v, 2);
    /* A NUL inside a value is kept, and a string lookup refuses it. */
    assert_int_equal(parse("{\"s\":\"a\\u0000b\"}", &j), 0);
    assert_int_equal(wx_jflat_get(&j, "s")->str_len, 3);
    assert_null(wx_jflat_str(&j, "s", 64));
}

static void test_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "[]",
        "1",
        "\"s\"",
        "{",
        "}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\":1}x",
        "{\"a\":1}{}",
        "{a:1}",
        "{'a':1}",
        "{\"a\":'x'}",
        "{\"a\":{}}",
        "{\"a\":[]}",
        "{\"a\":1.0}",
        "{\"a\":1e3}",
        "{\"a\":1E3}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":+1}",
        "{\"a\":9223372036854775808}",
        "{\"a\":-9223372036854775809}",
        "{\"a\":99999999999999999999}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":True}",
        "{\"a\":\"x}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\u12g4\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"nl\nhere\"}",
        "{\"a\\u0000b\":1}",
        "{\"a\":1\v}",
        "{\"a\":1,\"b\"}",
    };
    struct wx_jflat j;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &j) != WX_ERR_CORRUPT)
            fail_msg("accepted: %s", bad[i]);
    }
    /* Too many fields. */
    char many[1024];
    size_t n = 0;
    many[n++] = '{';
    for (int i = 0; i <= WX_JFLAT_FIELDS_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(many + n, sizeof(many) - n, "}");
    assert_int_equal(parse(many, &j), WX_ERR_CORRUPT);
    /* A buffer too small is refused, never overrun: "a" and "xyz" with
     * their NULs need 6 bytes. */
    const char *text = "{\"a\":\"xyz\"}";
    for (size_t bytes = 0; bytes < 6; bytes++)
        assert_int_equal(wx_jflat_parse(text, strlen(text), buf, bytes, &j), WX_ERR_CORRUPT);
    assert_int_equal(wx_jflat_parse(text, strlen(text), buf, 6, &j), 0);
    /* Only len bytes are read: a NUL-free prefix of a valid text is not valid. */
    assert_int_equal(wx_jflat_parse(text, strlen(text) - 1, buf, sizeof(buf), &j), WX_ERR_CORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_an_event),
        cmocka_unit_test(test_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
