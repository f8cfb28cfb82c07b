/* JSON-lines logging; see log.h. */
#include "obs/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"

static atomic_int min_level = WX_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void wx_log_set_level(enum wx_log_level level)
{
    atomic_store(&min_level, (int)level);
}

bool wx_log_parse_level(const char *text, enum wx_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (enum wx_log_level)i;
            return true;
        }
    }
    return false;
}

bool wx_log_enabled(enum wx_log_level level)
{
    return (int)level >= atomic_load(&min_level);
}

static void line_start(struct wx_buf *b, enum wx_log_level level, const char *msg)
{
    char ts[WX_RFC3339_BYTES];
    wx_time_format(wx_clock_now_ms(&wx_clock_system), ts);
    wx_buf_adds(b, "{\"ts\":\"");
    wx_buf_adds(b, ts);
    wx_buf_adds(b, "\",\"level\":\"");
    wx_buf_adds(b, names[level]);
    wx_buf_adds(b, "\",\"msg\":");
    wx_buf_json_str(b, msg);
}

static void line_end(struct wx_buf *b)
{
    wx_buf_adds(b, "}\n");
    if (wx_buf_ok(b))
        fwrite(b->data, 1, b->len, stderr);
    wx_buf_free(b);
}

static void log_v(enum wx_log_level level, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    struct wx_buf b;
    wx_buf_init(&b);
    line_start(&b, level, msg);
    line_end(&b);
}

void wx_logf(enum wx_log_level level, const char *fmt, ...)
{
    if (!wx_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, fmt, ap);
    va_end(ap);
}

void wx_log_always(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(WX_LOG_INFO, fmt, ap);
    va_end(ap);
}

void wx_log_request(const char *correlation_id, const char *method, const char *route,
                    const char *path, int status, int64_t latency_us)
{
    enum wx_log_level level = status >= 500 ? WX_LOG_ERROR : WX_LOG_INFO;
    if (!wx_log_enabled(level))
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    line_start(&b, level, "request");
    wx_buf_adds(&b, ",\"correlationId\":");
    wx_buf_json_str(&b, correlation_id);
    wx_buf_adds(&b, ",\"method\":");
    wx_buf_json_str(&b, method);
    wx_buf_adds(&b, ",\"route\":");
    wx_buf_json_str(&b, route);
    /* Paths are client text: bounded, and bytes outside ASCII replaced so
     * the line stays valid JSON whatever was sent. */
    char clean[257];
    size_t n = 0;
    for (; n < sizeof(clean) - 1 && path[n] != '\0'; n++)
        clean[n] = (unsigned char)path[n] < 0x80 ? path[n] : '?';
    clean[n] = '\0';
    wx_buf_adds(&b, ",\"path\":");
    wx_buf_json_str(&b, clean);
    wx_buf_printf(&b, ",\"status\":%d,\"latency_ms\":%lld.%03lld", status,
                  (long long)(latency_us / 1000), (long long)(latency_us % 1000));
    line_end(&b);
}
