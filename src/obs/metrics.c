/* Histograms and exposition helpers; see metrics.h. */
#include "obs/metrics.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const struct wx_hist_spec wx_hist_latency_us = {
    .len = 14,
    .bounds = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
               1000000, 10000000},
    .le = {"0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
           "0.025", "0.05", "0.1", "0.25", "1", "10"},
    .micro = true,
};

const struct wx_hist_spec wx_hist_size = {
    .len = 13,
    .bounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096},
    .le = {"1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "1024", "2048", "4096"},
    .micro = false,
};

void wx_hist_init(struct wx_hist *h, const struct wx_hist_spec *spec)
{
    assert(spec->len <= WX_HIST_BUCKETS_MAX);
    h->spec = spec;
    for (size_t i = 0; i <= WX_HIST_BUCKETS_MAX; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->sum, 0);
}

void wx_hist_observe(struct wx_hist *h, int64_t value)
{
    if (value < 0)
        value = 0;
    size_t i = 0;
    while (i < h->spec->len && value > h->spec->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, (uint_fast64_t)value, memory_order_relaxed);
}

static void labels_open(struct wx_buf *b, const char *name, const char *suffix,
                        const char *labels, const char *extra)
{
    wx_buf_adds(b, name);
    wx_buf_adds(b, suffix);
    if ((labels && *labels) || extra) {
        wx_buf_addc(b, '{');
        if (labels && *labels) {
            wx_buf_adds(b, labels);
            if (extra)
                wx_buf_addc(b, ',');
        }
        if (extra)
            wx_buf_adds(b, extra);
        wx_buf_addc(b, '}');
    }
    wx_buf_addc(b, ' ');
}

void wx_hist_render(struct wx_buf *b, const char *name, const char *labels,
                    const struct wx_hist *h)
{
    uint64_t cumulative = 0;
    char le[48];
    for (size_t i = 0; i <= h->spec->len; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        int n = i < h->spec->len ? snprintf(le, sizeof(le), "le=\"%s\"", h->spec->le[i])
                                 : snprintf(le, sizeof(le), "le=\"+Inf\"");
        (void)n;
        labels_open(b, name, "_bucket", labels, le);
        wx_buf_printf(b, "%llu\n", (unsigned long long)cumulative);
    }
    uint64_t sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
    labels_open(b, name, "_sum", labels, NULL);
    if (h->spec->micro) {
        wx_buf_printf(b, "%llu.%06llu\n", (unsigned long long)(sum / 1000000),
                      (unsigned long long)(sum % 1000000));
    } else {
        wx_buf_printf(b, "%llu\n", (unsigned long long)sum);
    }
    labels_open(b, name, "_count", labels, NULL);
    wx_buf_printf(b, "%llu\n", (unsigned long long)cumulative);
}

void wx_hist_snapshot_init(struct wx_hist_snapshot *s, const struct wx_hist_spec *spec)
{
    assert(spec->len <= WX_HIST_BUCKETS_MAX);
    memset(s, 0, sizeof(*s));
    s->spec = spec;
}

void wx_hist_snapshot_add(struct wx_hist_snapshot *s, const struct wx_hist *h)
{
    assert(h->spec == s->spec);
    for (size_t i = 0; i <= s->spec->len; i++)
        s->counts[i] += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    s->sum += atomic_load_explicit(&h->sum, memory_order_relaxed);
}

void wx_hist_snapshot_json(struct wx_buf *b, const struct wx_hist_snapshot *s)
{
    wx_buf_adds(b, "{\"le\":[");
    for (size_t i = 0; i < s->spec->len; i++)
        wx_buf_printf(b, "%s%lld", i ? "," : "", (long long)s->spec->bounds[i]);
    wx_buf_adds(b, "],\"counts\":[");
    for (size_t i = 0; i <= s->spec->len; i++)
        wx_buf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)s->counts[i]);
    wx_buf_printf(b, "],\"sum\":%llu}", (unsigned long long)s->sum);
}

void wx_metric_header(struct wx_buf *b, const char *name, const char *type, const char *help)
{
    wx_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

uint64_t wx_process_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? resident * (uint64_t)page : 0;
}
