/*
 * Validation of client-supplied strings: ids, headers, integers. Everything
 * here returns false on bad input; nothing asserts, because clients send it.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "limits.h"

static bool visible_ascii(const char *s, size_t max_bytes)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n == max_bytes || c < 0x21 || c > 0x7e)
            return false;
    }
    return n > 0;
}

bool http_idem_key_ok(const char *s)
{
    return visible_ascii(s, WX_IDEM_KEY_BYTES_MAX);
}

bool http_correlation_id_ok(const char *s)
{
    return visible_ascii(s, WX_CORRELATION_ID_BYTES_MAX);
}

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return false;
    return true;
}

bool http_traceparent_ok(const char *s)
{
    /* 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> */
    if (strlen(s) != WX_TRACEPARENT_BYTES)
        return false;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return false;
    if (!lower_hex(s, 2) || !lower_hex(s + 3, 32) || !lower_hex(s + 36, 16) ||
        !lower_hex(s + 53, 2))
        return false;
    if (strncmp(s, "00", 2) != 0 || all_zero(s + 3, 32) || all_zero(s + 36, 16))
        return false;
    return true;
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static bool token_char(unsigned char c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* One parameter value (token or quoted-string, RFC 9110 §5.6.6) at s into
 * out (NUL-terminated, at most out_bytes - 1 bytes kept); where it ends,
 * or NULL when malformed. */
static const char *param_value(const char *s, char *out, size_t out_bytes)
{
    size_t n = 0;
    if (*s != '"') {
        for (; token_char((unsigned char)*s); s++)
            if (n + 1 < out_bytes)
                out[n++] = *s;
        out[n] = '\0';
        return n > 0 ? s : NULL;
    }
    for (s++; *s != '"'; s++) {
        if (*s == '\\')
            s++;
        if (*s == '\0')
            return NULL;
        if (n + 1 < out_bytes)
            out[n++] = *s;
    }
    out[n] = '\0';
    return s + 1;
}

bool http_content_type_json(const char *s)
{
    static const char json[] = "application/json";
    s = skip_ows(s);
    if (strncasecmp(s, json, sizeof(json) - 1) != 0)
        return false;
    s = skip_ows(s + sizeof(json) - 1);
    /* Parameters: any, well formed; a charset only if it is UTF-8 (RFC
     * 8259 §8.1: JSON between systems is UTF-8). */
    while (*s == ';') {
        s = skip_ows(s + 1);
        if (*s == '\0' || *s == ';')
            continue;
        const char *name = s;
        while (token_char((unsigned char)*s))
            s++;
        size_t name_len = (size_t)(s - name);
        if (name_len == 0 || *s != '=')
            return false;
        char value[16];
        s = param_value(s + 1, value, sizeof(value));
        if (s == NULL)
            return false;
        if (name_len == 7 && strncasecmp(name, "charset", 7) == 0 &&
            strcasecmp(value, "utf-8") != 0)
            return false;
        s = skip_ows(s);
    }
    return *s == '\0';
}

bool http_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    bool neg = false;
    if (*s == '-') {
        neg = true;
        s++;
    }
    if (*s == '\0' || strlen(s) > 19)
        return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
            return false;
    }
    if (neg)
        v = -v;
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}
