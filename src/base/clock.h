/*
 * Time is injected (DESIGN.md §10): everything that needs "now" asks a
 * wx_clock, so tests can freeze it. Times are int64 Unix milliseconds.
 */
#ifndef WALLEX_BASE_CLOCK_H
#define WALLEX_BASE_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wx_clock {
    int64_t (*now_ms)(const struct wx_clock *clock);
};

extern const struct wx_clock wx_clock_system;

static inline int64_t wx_clock_now_ms(const struct wx_clock *clock)
{
    return clock->now_ms(clock);
}

/* Monotonic milliseconds, for timeouts and latencies only. */
int64_t wx_monotonic_ms(void);
int64_t wx_monotonic_us(void);

struct timespec;
/* The CLOCK_REALTIME instant after_ms from now, as pthread_cond_timedwait
 * wants its deadline. */
void wx_deadline_after_ms(int64_t after_ms, struct timespec *out);

#define WX_RFC3339_BYTES 25 /* 2026-11-22T04:03:11.123Z and the NUL */

/* RFC 3339 UTC with milliseconds. */
void wx_time_format(int64_t unix_ms, char out[WX_RFC3339_BYTES]);
struct wx_buf;
/* A JSON member "key":"<RFC 3339>" (base/buf.h's member helpers). */
void wx_time_json_member(struct wx_buf *b, const char *key, int64_t unix_ms, bool *first);
/* The instants RFC 3339's four-digit years can write, in UTC:
 * 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
#define WX_TIME_MS_MIN (-62167219200000LL)
#define WX_TIME_MS_MAX 253402300799999LL
/* Parses RFC 3339 (Z or +hh:mm, optional fraction). False when malformed
 * or outside WX_TIME_MS_MIN..WX_TIME_MS_MAX in UTC. */
bool wx_time_parse(const char *s, int64_t *unix_ms_out);

#endif
