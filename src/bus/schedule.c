/*
 * Durations of the bus's flags ("250ms", "5s", "5m", "2h", "5d") and the
 * webhook retry schedule, a comma-separated list of them. Pure; tested in
 * tests/unit/bus/test_schedule.c.
 */
#include <string.h>

#include "bus/bus.h"

/* A week: no retry waits longer (Svix's longest is ten hours). */
#define SCHEDULE_DELAY_MS_MAX (7LL * 24 * 60 * 60 * 1000)

static bool unit_ms(const char *unit, size_t len, int64_t *ms_out)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {"d", 24 * 60 * 60 * 1000},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strlen(units[i].name) == len && memcmp(units[i].name, unit, len) == 0) {
            *ms_out = units[i].ms;
            return true;
        }
    }
    return false;
}

/* One duration in text[0..len). */
static bool duration_n(const char *text, size_t len, int64_t max_ms, int64_t *ms_out)
{
    size_t digits = 0;
    int64_t v = 0;
    while (digits < len && text[digits] >= '0' && text[digits] <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (int64_t)(text[digits] - '0'), &v))
            return false;
        digits++;
    }
    int64_t unit;
    if (digits == 0 || !unit_ms(text + digits, len - digits, &unit))
        return false;
    int64_t ms;
    if (__builtin_mul_overflow(v, unit, &ms) || ms <= 0 || ms > max_ms)
        return false;
    *ms_out = ms;
    return true;
}

bool bus_duration_parse(const char *text, int64_t max_ms, int64_t *ms_out)
{
    return text != NULL && duration_n(text, strlen(text), max_ms, ms_out);
}

bool bus_schedule_parse(const char *text, int64_t delays_ms[BUS_RETRY_SCHEDULE_MAX],
                        size_t *len_out)
{
    if (text == NULL || text[0] == '\0')
        return false;
    size_t n = 0;
    for (const char *p = text;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == BUS_RETRY_SCHEDULE_MAX || !duration_n(p, len, SCHEDULE_DELAY_MS_MAX, &delays_ms[n]))
            return false;
        n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *len_out = n;
    return true;
}
