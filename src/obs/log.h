/*
 * Structured logs: one JSON object per line on stderr (ts, level, msg and
 * fields). Never a secret or a request body: callers pass only what is
 * listed. Writing is one fwrite per line, so lines from threads do not
 * interleave.
 */
#ifndef WALLEX_OBS_LOG_H
#define WALLEX_OBS_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum wx_log_level {
    WX_LOG_DEBUG,
    WX_LOG_INFO,
    WX_LOG_WARN,
    WX_LOG_ERROR,
};

/* Lines below this level are dropped; INFO by default. */
void wx_log_set_level(enum wx_log_level level);
/* Parses "debug", "info", "warn", "error". */
bool wx_log_parse_level(const char *text, enum wx_log_level *out);
bool wx_log_enabled(enum wx_log_level level);

/* A message line; msg is printf-formatted and escaped as a JSON string. */
void wx_logf(enum wx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An info line written whatever the level: where the server listens, and
 * that it stopped. */
void wx_log_always(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The per-request line. */
void wx_log_request(const char *correlation_id, const char *method, const char *route,
                    const char *path, int status, int64_t latency_us);

#endif
