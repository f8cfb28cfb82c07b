/* The hash map under churn, checked against a plain array (src/base/map.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "base/map.h"

#define KEYS 5000

static void test_put_get_remove(void **state)
{
    (void)state;
    static int present[KEYS];
    struct wx_map m;
    wx_map_init(&m);
    char key[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < KEYS; i++) {
            snprintf(key, sizeof(key), "wallet:%d", i);
            if ((i + round) % 3 == 0) {
                void *v = wx_map_remove(&m, key);
                assert_ptr_equal(v, present[i] ? (void *)(intptr_t)(i + 1) : NULL);
                present[i] = 0;
            } else {
                assert_int_equal(wx_map_put(&m, key, (void *)(intptr_t)(i + 1)), 0);
                present[i] = 1;
            }
        }
        size_t live = 0;
        for (int i = 0; i < KEYS; i++) {
            snprintf(key, sizeof(key), "wallet:%d", i);
            void *v = wx_map_get(&m, key);
            assert_ptr_equal(v, present[i] ? (void *)(intptr_t)(i + 1) : NULL);
            live += (size_t)present[i];
        }
        assert_int_equal(m.len, live);
    }
    wx_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_put_get_remove)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
