/* Growable buffer and JSON string escaping; see buf.h. */
#include "base/buf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wx_buf_init(struct wx_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}

void wx_buf_free(struct wx_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    wx_buf_init(b);
}

void wx_buf_reset(struct wx_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}

bool wx_buf_ok(const struct wx_buf *b)
{
    return !b->failed;
}

static bool buf_reserve(struct wx_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX / 4 - b->len) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void wx_buf_add(struct wx_buf *b, const void *p, size_t len)
{
    if (!buf_reserve(b, len))
        return;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void wx_buf_adds(struct wx_buf *b, const char *s)
{
    wx_buf_add(b, s, strlen(s));
}

void wx_buf_addc(struct wx_buf *b, char c)
{
    if (!buf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

char *wx_u64_text(uint64_t v, char out[WX_U64_TEXT_BYTES])
{
    char *p = out + WX_U64_TEXT_BYTES;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

/* By hand, not snprintf: events and responses are mostly integers. */
void wx_buf_add_i64(struct wx_buf *b, int64_t v)
{
    char tmp[1 + WX_U64_TEXT_BYTES];
    /* The magnitude as unsigned, so INT64_MIN needs no special case. */
    char *p = wx_u64_text(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, tmp + 1);
    if (v < 0)
        *--p = '-';
    wx_buf_add(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void wx_buf_printf(struct wx_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Bytes JSON can carry as they are: not a quote, a backslash or a control
 * character (DEL is escaped too, to keep logs and terminals clean). */
static bool json_plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\' && c != 0x7f;
}

void wx_buf_json_strn(struct wx_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    wx_buf_addc(b, '"');
    size_t i = 0;
    for (;;) {
        /* Plain runs are copied in one go; most strings are one run. */
        size_t run = i;
        while (i < len && json_plain((unsigned char)s[i]))
            i++;
        wx_buf_add(b, s + run, i - run);
        if (i == len)
            break;
        unsigned char c = (unsigned char)s[i++];
        char u[7] = {'\\', (char)c}; /* zero-filled: a string either way */
        if (c == '\n')
            u[1] = 'n';
        else if (c == '\r')
            u[1] = 'r';
        else if (c == '\t')
            u[1] = 't';
        else if (c != '"' && c != '\\') {
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
        }
        wx_buf_adds(b, u);
    }
    wx_buf_addc(b, '"');
}

void wx_buf_json_str(struct wx_buf *b, const char *s)
{
    wx_buf_json_strn(b, s, strlen(s));
}

void wx_buf_json_key(struct wx_buf *b, const char *key, bool *first)
{
    if (!*first)
        wx_buf_addc(b, ',');
    *first = false;
    wx_buf_json_str(b, key);
    wx_buf_addc(b, ':');
}

void wx_buf_json_member_str(struct wx_buf *b, const char *key, const char *value, bool *first)
{
    wx_buf_json_key(b, key, first);
    if (value == NULL)
        wx_buf_adds(b, "null");
    else
        wx_buf_json_str(b, value);
}

void wx_buf_json_member_i64(struct wx_buf *b, const char *key, int64_t value, bool *first)
{
    wx_buf_json_key(b, key, first);
    wx_buf_add_i64(b, value);
}
