/* Flat JSON objects without allocation; see jflat.h. */
#include "base/jflat.h"

#include <string.h>

#include "base/err.h"
#include "base/unicode.h"

struct reader {
    const char *p, *end;
    char *out, *out_end;
};

static void skip_ws(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool put(struct reader *r, unsigned char c)
{
    if (r->out == r->out_end)
        return false;
    *r->out++ = (char)c;
    return true;
}

static bool hex4(struct reader *r, uint32_t *v)
{
    if (!wx_hex4(r->p, r->end, v))
        return false;
    r->p += 4;
    return true;
}

/* After "\u": one code point, a surrogate pair taken whole, as UTF-8. */
static bool unicode_escape(struct reader *r)
{
    uint32_t cp;
    if (!hex4(r, &cp) || wx_is_low_surrogate(cp))
        return false;
    if (wx_is_high_surrogate(cp)) {
        uint32_t lo;
        if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
            return false;
        r->p += 2;
        if (!hex4(r, &lo) || !wx_is_low_surrogate(lo))
            return false;
        cp = wx_surrogate_pair(cp, lo);
    }
    unsigned char utf8[4];
    size_t n = wx_utf8_encode(cp, utf8);
    for (size_t i = 0; i < n; i++)
        if (!put(r, utf8[i]))
            return false;
    return true;
}

/* At the opening quote: the unescaped string, NUL-terminated, in out. */
static bool string(struct reader *r, const char **s_out, size_t *len_out)
{
    char *start = r->out;
    r->p++;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p++;
        if (c == '"') {
            *len_out = (size_t)(r->out - start);
            *s_out = start;
            return put(r, '\0');
        }
        if (c < 0x20)
            return false;
        if (c != '\\') {
            if (!put(r, c))
                return false;
            continue;
        }
        if (r->p == r->end)
            return false;
        c = (unsigned char)*r->p++;
        bool ok;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            ok = put(r, c);
            break;
        case 'b':
            ok = put(r, '\b');
            break;
        case 'f':
            ok = put(r, '\f');
            break;
        case 'n':
            ok = put(r, '\n');
            break;
        case 'r':
            ok = put(r, '\r');
            break;
        case 't':
            ok = put(r, '\t');
            break;
        case 'u':
            ok = unicode_escape(r);
            break;
        default:
            ok = false;
            break;
        }
        if (!ok)
            return false;
    }
    return false;
}

/* -?(0|[1-9][0-9]*) within int64, and no fraction or exponent after. */
static bool integer(struct reader *r, int64_t *v)
{
    bool neg = r->p < r->end && *r->p == '-';
    if (neg)
        r->p++;
    if (r->p == r->end || *r->p < '0' || *r->p > '9')
        return false;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t x = 0;
    if (*r->p == '0') {
        r->p++;
    } else {
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            uint64_t d = (uint64_t)(*r->p++ - '0');
            if (x > (limit - d) / 10)
                return false;
            x = x * 10 + d;
        }
    }
    if (r->p < r->end &&
        (*r->p == '.' || *r->p == 'e' || *r->p == 'E' || (*r->p >= '0' && *r->p <= '9')))
        return false;
    *v = neg ? (int64_t)(0 - x) : (int64_t)x;
    return true;
}

static bool literal(struct reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return false;
    r->p += n;
    return true;
}

static bool value(struct reader *r, struct wx_jflat_field *f)
{
    if (r->p == r->end)
        return false;
    switch (*r->p) {
    case '"':
        f->type = WX_JFLAT_STRING;
        return string(r, &f->str, &f->str_len);
    case 't':
        f->type = WX_JFLAT_BOOL;
        f->b = true;
        return literal(r, "true");
    case 'f':
        f->type = WX_JFLAT_BOOL;
        f->b = false;
        return literal(r, "false");
    case 'n':
        f->type = WX_JFLAT_NULL;
        return literal(r, "null");
    default:
        f->type = WX_JFLAT_INT;
        return integer(r, &f->i64);
    }
}

int wx_jflat_parse(const char *text, size_t len, char *buf, size_t buf_bytes, struct wx_jflat *out)
{
    struct reader r = {text, text + len, buf, buf + buf_bytes};
    out->len = 0;
    skip_ws(&r);
    if (r.p == r.end || *r.p++ != '{')
        return WX_ERR_CORRUPT;
    skip_ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
    } else {
        for (;;) {
            if (out->len == WX_JFLAT_FIELDS_MAX || r.p == r.end || *r.p != '"')
                return WX_ERR_CORRUPT;
            struct wx_jflat_field *f = &out->fields[out->len++];
            memset(f, 0, sizeof(*f));
            /* A key with a NUL in it ("\u0000") is refused: keys are
             * looked up as C strings. */
            if (!string(&r, &f->key, &f->key_len) || strlen(f->key) != f->key_len)
                return WX_ERR_CORRUPT;
            skip_ws(&r);
            if (r.p == r.end || *r.p++ != ':')
                return WX_ERR_CORRUPT;
            skip_ws(&r);
            if (!value(&r, f))
                return WX_ERR_CORRUPT;
            skip_ws(&r);
            if (r.p == r.end)
                return WX_ERR_CORRUPT;
            char c = *r.p++;
            if (c == '}')
                break;
            if (c != ',')
                return WX_ERR_CORRUPT;
            skip_ws(&r);
        }
    }
    skip_ws(&r);
    return r.p == r.end ? 0 : WX_ERR_CORRUPT;
}

const struct wx_jflat_field *wx_jflat_get(const struct wx_jflat *j, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = j->len; i > 0; i--) {
        const struct wx_jflat_field *f = &j->fields[i - 1];
        if (f->key_len == n && memcmp(f->key, key, n) == 0)
            return f;
    }
    return NULL;
}

const char *wx_jflat_str(const struct wx_jflat *j, const char *key, size_t max_bytes)
{
    const struct wx_jflat_field *f = wx_jflat_get(j, key);
    if (f == NULL || f->type != WX_JFLAT_STRING || f->str_len > max_bytes ||
        memchr(f->str, '\0', f->str_len) != NULL)
        return NULL;
    return f->str;
}

bool wx_jflat_i64(const struct wx_jflat *j, const char *key, int64_t *out)
{
    const struct wx_jflat_field *f = wx_jflat_get(j, key);
    if (f == NULL || f->type != WX_JFLAT_INT)
        return false;
    *out = f->i64;
    return true;
}
