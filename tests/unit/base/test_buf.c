/* The growable buffer's encoders (src/base/buf.c): integers as printf
 * would write them, and JSON strings that read back (base/jflat) as the
 * bytes that went in. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/jflat.h"

static void check_i64(int64_t v)
{
    char want[32];
    snprintf(want, sizeof(want), "%" PRId64, v);
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_add_i64(&b, v);
    assert_true(wx_buf_ok(&b));
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    wx_buf_free(&b);
}

static void test_i64(void **state)
{
    (void)state;
    const int64_t edges[] = {0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        check_i64(edges[i]);
    srand(11);
    for (int i = 0; i < 100000; i++)
        check_i64((int64_t)((uint64_t)rand() << 42 ^ (uint64_t)rand() << 21 ^ (uint64_t)rand()) >>
                  (rand() % 60));
}

static void test_json_string_round_trip(void **state)
{
    (void)state;
    srand(12);
    static char text[8192], buf[8192], s[1024];
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)rand() % sizeof(s);
        for (size_t k = 0; k < len; k++) /* any byte but NUL; UTF-8 or not */
            s[k] = (char)(1 + rand() % 255);
        struct wx_buf b;
        wx_buf_init(&b);
        wx_buf_adds(&b, "{\"s\":");
        wx_buf_json_strn(&b, s, len);
        wx_buf_addc(&b, '}');
        assert_true(wx_buf_ok(&b) && b.len < sizeof(text));
        memcpy(text, b.data, b.len);
        struct wx_jflat j;
        assert_int_equal(wx_jflat_parse(text, b.len, buf, sizeof(buf), &j), 0);
        const struct wx_jflat_field *f = wx_jflat_get(&j, "s");
        assert_non_null(f);
        assert_int_equal(f->str_len, len);
        assert_memory_equal(f->str, s, len);
        wx_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i64),
        cmocka_unit_test(test_json_string_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
