/*
 * Metrics in the Prometheus text format. Recording is a few relaxed atomic
 * increments, no locks, so it can sit on every request and every batch;
 * only rendering (a scrape) walks everything.
 *
 * Histograms have fixed bucket bounds given in integer units (microseconds
 * for latencies, counts for sizes) with their "le" label text, so every
 * figure stays an integer.
 */
#ifndef WALLEX_OBS_METRICS_H
#define WALLEX_OBS_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define WX_HIST_BUCKETS_MAX 16

struct wx_hist_spec {
    size_t len;
    int64_t bounds[WX_HIST_BUCKETS_MAX]; /* in the recorded unit, ascending */
    const char *le[WX_HIST_BUCKETS_MAX]; /* the same bounds as label text */
    bool micro; /* values are microseconds: the sum is printed in seconds */
};

struct wx_hist {
    const struct wx_hist_spec *spec;
    atomic_uint_fast64_t buckets[WX_HIST_BUCKETS_MAX + 1];
    atomic_uint_fast64_t sum;
};

/* Latencies in microseconds, 50 us to 10 s. */
extern const struct wx_hist_spec wx_hist_latency_us;
/* Sizes (batch sizes), 1 to 4096. */
extern const struct wx_hist_spec wx_hist_size;

void wx_hist_init(struct wx_hist *h, const struct wx_hist_spec *spec);
void wx_hist_observe(struct wx_hist *h, int64_t value);
/* Appends the _bucket, _sum and _count lines of one series. labels is the
 * inside of the braces without them ("route=\"/x\"") or "". */
void wx_hist_render(struct wx_buf *b, const char *name, const char *labels,
                    const struct wx_hist *h);

/* A histogram's counts at one moment, or several histograms of one spec
 * added up (every route's latencies): what a live view (ops' /admin/stats)
 * sends, per bucket rather than cumulative, so a reader takes two
 * snapshots and subtracts them to see the last interval alone. */
struct wx_hist_snapshot {
    const struct wx_hist_spec *spec;
    uint64_t counts[WX_HIST_BUCKETS_MAX + 1]; /* the last one: above every bound */
    uint64_t sum;
};

void wx_hist_snapshot_init(struct wx_hist_snapshot *s, const struct wx_hist_spec *spec);
/* Adds h's counts (relaxed loads, like a scrape); h has s's spec. */
void wx_hist_snapshot_add(struct wx_hist_snapshot *s, const struct wx_hist *h);
/* {"le":[bounds...],"counts":[per bucket..., above the last],"sum":N}, in
 * the recorded unit (microseconds for latencies). */
void wx_hist_snapshot_json(struct wx_buf *b, const struct wx_hist_snapshot *s);

/* Process resident memory in bytes, 0 when unknown. */
uint64_t wx_process_rss_bytes(void);

/* # HELP and # TYPE lines. */
void wx_metric_header(struct wx_buf *b, const char *name, const char *type, const char *help);

#endif
