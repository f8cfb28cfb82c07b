/* UTF-8 and \uXXXX helpers (src/base/unicode.c): exactly the well-formed
 * sequences of Unicode §3.9 table 3-7 are valid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/unicode.h"

static void test_utf8_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "",
        "plain ascii \x7f",
        "\xc2\x80 \xdf\xbf",               /* U+0080, U+07FF */
        "\xe0\xa0\x80 \xed\x9f\xbf",       /* U+0800, U+D7FF */
        "\xee\x80\x80 \xef\xbf\xbf",       /* U+E000, U+FFFF */
        "\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf", /* U+10000, U+10FFFF */
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!wx_utf8_valid(good[i], strlen(good[i])))
            fail_msg("refused good UTF-8 %zu", i);
    static const char *const bad[] = {
        "\xc0\xaf",             /* overlong '/' */
        "\xc1\xbf",             /* overlong */
        "\xe0\x80\xaf",         /* overlong */
        "\xf0\x80\x80\xaf",     /* overlong */
        "\xed\xa0\x80",         /* U+D800, a surrogate */
        "\xed\xbf\xbf",         /* U+DFFF */
        "\xf4\x90\x80\x80",     /* U+110000 */
        "\xf5\x80\x80\x80",     /* past any */
        "\xff",
        "\x80",                 /* a stray continuation */
        "a\xc3",                /* cut short */
        "\xe2\x82",
        "\xe2\x28\xa1",         /* a continuation missing */
        "\xf0\x9f\x98",
        "\xf0\x9f\x98\x28",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (wx_utf8_valid(bad[i], strlen(bad[i])))
            fail_msg("accepted bad UTF-8 %zu", i);
    /* Every encoded code point round-trips as valid. */
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp += cp < 0x20000 ? 1 : 97) {
        if (wx_is_high_surrogate(cp) || wx_is_low_surrogate(cp))
            continue;
        unsigned char b[4];
        size_t n = wx_utf8_encode(cp, b);
        assert_true(wx_utf8_valid((const char *)b, n));
        assert_false(n > 1 && wx_utf8_valid((const char *)b, n - 1));
    }
}

static void test_hex(void **state)
{
    (void)state;
    uint32_t v;
    const char *s = "00aFz";
    assert_true(wx_hex4(s, s + 4, &v));
    assert_int_equal(v, 0xaf);
    assert_false(wx_hex4(s + 1, s + 5, &v));
    assert_false(wx_hex4(s, s + 3, &v));
    assert_int_equal(wx_surrogate_pair(0xD83D, 0xDE00), 0x1F600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
