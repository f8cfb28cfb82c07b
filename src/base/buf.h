/*
 * Growable byte buffer with JSON helpers. Errors are sticky: after a failed
 * allocation every append is a no-op and wx_buf_ok() is false, so builders
 * check once at the end instead of after every call (like h2o's buffers).
 * The buffer owns data (malloc); wx_buf_free releases it.
 */
#ifndef WALLEX_BASE_BUF_H
#define WALLEX_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wx_buf {
    char *data; /* always NUL-terminated when len > 0 and ok */
    size_t len;
    size_t cap;
    bool failed;
};

void wx_buf_init(struct wx_buf *b);
void wx_buf_free(struct wx_buf *b);
/* Empties the buffer but keeps its memory and clears the failure. */
void wx_buf_reset(struct wx_buf *b);
bool wx_buf_ok(const struct wx_buf *b);

void wx_buf_add(struct wx_buf *b, const void *p, size_t len);
void wx_buf_adds(struct wx_buf *b, const char *s);
void wx_buf_addc(struct wx_buf *b, char c);
void wx_buf_add_i64(struct wx_buf *b, int64_t v);

/* Decimal text of v, without a NUL, ending at out + WX_U64_TEXT_BYTES;
 * returns where it starts. Hot paths use it instead of snprintf. */
#define WX_U64_TEXT_BYTES 20
char *wx_u64_text(uint64_t v, char out[WX_U64_TEXT_BYTES]);

void wx_buf_printf(struct wx_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A JSON string literal with quotes; bytes >= 0x80 pass through (callers
 * only hand over validated UTF-8). */
void wx_buf_json_str(struct wx_buf *b, const char *s);
void wx_buf_json_strn(struct wx_buf *b, const char *s, size_t len);
/* "key": with the comma before it unless it is the first member. */
void wx_buf_json_key(struct wx_buf *b, const char *key, bool *first);
/* A whole member, "key":"value" (null for a NULL value) or "key":123. */
void wx_buf_json_member_str(struct wx_buf *b, const char *key, const char *value, bool *first);
void wx_buf_json_member_i64(struct wx_buf *b, const char *key, int64_t value, bool *first);

#endif
