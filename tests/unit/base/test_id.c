/* The id grammar of API.md (src/base/id.c), as a table of accepted and
 * refused ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/id.h"

static void test_ids(void **state)
{
    (void)state;
    static const char *const good[] = {"w1", "A-b_c.d:e",
                                       ("0123456789012345678901234567890123"
                                        "456789012345678901234567890123")};
    static const char *const bad[] = {"", "a/b", "a b", "\xc3\xbc", "a\tb", "a%20", "a\x7f",
                                      ("01234567890123456789012345678901234567890123456789012345"
                                       "678901234")};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(wx_id_ok(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(wx_id_ok(bad[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
