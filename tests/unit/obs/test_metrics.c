/* Histograms (src/obs/metrics.c): a value lands in the first bucket whose
 * bound it does not exceed, and a snapshot adds several histograms of one
 * spec bucket by bucket, written as JSON with per-bucket counts (what
 * /admin/stats sends and the dashboard subtracts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "obs/metrics.h"

static void test_buckets_by_bound(void **state)
{
    (void)state;
    struct wx_hist h;
    wx_hist_init(&h, &wx_hist_size);
    const int64_t values[] = {-5, 0, 1, 2, 3, 4096, 4097, 1000000};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        wx_hist_observe(&h, values[i]);
    struct wx_hist_snapshot s;
    wx_hist_snapshot_init(&s, &wx_hist_size);
    wx_hist_snapshot_add(&s, &h);
    assert_int_equal(s.counts[0], 3); /* -5 (as 0), 0 and 1: le 1 */
    assert_int_equal(s.counts[1], 1); /* 2 */
    assert_int_equal(s.counts[2], 1); /* 3: le 4 */
    assert_int_equal(s.counts[wx_hist_size.len - 1], 1); /* 4096 */
    assert_int_equal(s.counts[wx_hist_size.len], 2);     /* above every bound */
    assert_int_equal(s.sum, 0 + 0 + 1 + 2 + 3 + 4096 + 4097 + 1000000);
}

static void test_snapshot_adds_and_writes_json(void **state)
{
    (void)state;
    struct wx_hist a, b;
    wx_hist_init(&a, &wx_hist_latency_us);
    wx_hist_init(&b, &wx_hist_latency_us);
    wx_hist_observe(&a, 40);       /* le 50 */
    wx_hist_observe(&b, 40);       /* le 50 */
    wx_hist_observe(&b, 20000000); /* above 10 s */
    struct wx_hist_snapshot s;
    wx_hist_snapshot_init(&s, &wx_hist_latency_us);
    wx_hist_snapshot_add(&s, &a);
    wx_hist_snapshot_add(&s, &b);
    struct wx_buf out;
    wx_buf_init(&out);
    wx_hist_snapshot_json(&out, &s);
    assert_true(wx_buf_ok(&out));
    const char want[] = "{\"le\":[50,100,250,500,1000,2500,5000,10000,25000,50000,100000,250000,"
                        "1000000,10000000],\"counts\":[2,0,0,0,0,0,0,0,0,0,0,0,0,0,1],"
                        "\"sum\":20000080}";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    wx_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_by_bound),
        cmocka_unit_test(test_snapshot_adds_and_writes_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
