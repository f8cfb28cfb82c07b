/* System and frozen clocks, RFC 3339 formatting and parsing; see clock.h. */
#include "base/clock.h"

#include "base/buf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t system_now_ms(const struct wx_clock *clock)
{
    (void)clock;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const struct wx_clock wx_clock_system = {.now_ms = system_now_ms};

int64_t wx_monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void wx_deadline_after_ms(int64_t after_ms, struct timespec *out)
{
    clock_gettime(CLOCK_REALTIME, out);
    out->tv_sec += (time_t)(after_ms / 1000);
    out->tv_nsec += (long)(after_ms % 1000) * 1000000L;
    out->tv_sec += out->tv_nsec / 1000000000L;
    out->tv_nsec %= 1000000000L;
}

int64_t wx_monotonic_ms(void)
{
    return wx_monotonic_us() / 1000;
}

/* v as exactly n decimal digits, zero-padded. */
static void put_digits(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void wx_time_format(int64_t unix_ms, char out[WX_RFC3339_BYTES])
{
    int64_t ms = unix_ms % 1000;
    time_t secs = (time_t)(unix_ms / 1000);
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* By hand, not snprintf: every event and every response carries a
     * timestamp, and printf's machinery showed in the writer's profile. */
    put_digits(out, (unsigned)(tm.tm_year + 1900) % 10000u, 4);
    out[4] = '-';
    put_digits(out + 5, (unsigned)(tm.tm_mon + 1) % 100u, 2);
    out[7] = '-';
    put_digits(out + 8, (unsigned)tm.tm_mday % 100u, 2);
    out[10] = 'T';
    put_digits(out + 11, (unsigned)tm.tm_hour % 100u, 2);
    out[13] = ':';
    put_digits(out + 14, (unsigned)tm.tm_min % 100u, 2);
    out[16] = ':';
    put_digits(out + 17, (unsigned)tm.tm_sec % 100u, 2);
    out[19] = '.';
    put_digits(out + 20, (unsigned)ms % 1000u, 3);
    out[23] = 'Z';
    out[24] = '\0';
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool wx_time_parse(const char *s, int64_t *unix_ms_out)
{
    int year, mon, day, hour, min, sec;
    if (strlen(s) < 20)
        return false;
    if (!digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &mon) || s[7] != '-' ||
        !digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &hour) ||
        s[13] != ':' || !digits(s + 14, 2, &min) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return false;
    const char *p = s + 19;
    int ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0 || n > 9)
            return false;
        for (; n < 3; n++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;

    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (day > mdays[mon - 1])
        return false;
    struct tm tm = {.tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = day,
                    .tm_hour = hour, .tm_min = min, .tm_sec = sec};
    time_t t = timegm(&tm);
    int64_t unix_ms = ((int64_t)t - (int64_t)offset_min * 60) * 1000 + ms;
    /* Only instants wx_time_format can write back in four-digit years: an
     * offset can carry 9999-12-31T23:00-05:00 into the year 10000. */
    if (unix_ms < WX_TIME_MS_MIN || unix_ms > WX_TIME_MS_MAX)
        return false;
    *unix_ms_out = unix_ms;
    return true;
}

void wx_time_json_member(struct wx_buf *b, const char *key, int64_t unix_ms, bool *first)
{
    char at[WX_RFC3339_BYTES];
    wx_time_format(unix_ms, at);
    wx_buf_json_member_str(b, key, at, first);
}
