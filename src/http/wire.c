/*
 * HTTP/1.1 request heads and chunked bodies (RFC 9112), parsed in place.
 * Every byte comes from a client, so nothing here asserts on content and
 * every loop is bounded by the length given.
 */
#include <string.h>
#include <strings.h>

#include "base/unicode.h"
#include "http/wire.h"

/* RFC 9110 §5.6.2 token characters, as a table: every header name's every
 * byte is looked up. */
#define TOKEN_RANGE(lo, hi) [lo ... hi] = true
static const bool token_chars[256] = {
    TOKEN_RANGE('0', '9'), TOKEN_RANGE('a', 'z'), TOKEN_RANGE('A', 'Z'),
    ['!'] = true, ['#'] = true, ['$'] = true, ['%'] = true, ['&'] = true, ['\''] = true,
    ['*'] = true, ['+'] = true, ['-'] = true, ['.'] = true, ['^'] = true, ['_'] = true,
    ['`'] = true, ['|'] = true, ['~'] = true,
};
#undef TOKEN_RANGE

static bool tchar(unsigned char c)
{
    return token_chars[c];
}

/* A field value's bytes: visible, space, tab and obs-text; no CTL. */
static bool value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* A request target's bytes (RFC 3986 characters are all visible ASCII). */
static bool target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* What a head that does not fit is: a request line still in its target
 * (no CRLF yet, and "METHOD SP" then target bytes to the end) is 414,
 * anything else 431. */
static enum http_wire_result too_large(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && tchar((unsigned char)buf[i]))
        i++;
    if (i == 0 || i == len || buf[i] != ' ')
        return HTTP_WIRE_HEAD_TOO_LARGE;
    for (i++; i < len; i++)
        if (!target_char((unsigned char)buf[i]))
            return HTTP_WIRE_HEAD_TOO_LARGE;
    return HTTP_WIRE_URI_TOO_LONG;
}

enum http_wire_result http_wire_head_end(const char *buf, size_t len, size_t *scanned)
{
    size_t limit = len < WX_HTTP_HEAD_BYTES_MAX ? len : WX_HTTP_HEAD_BYTES_MAX;
    /* Every byte of every head passes here: the byte before is carried in
     * a flag rather than read again, and ordinary bytes cost one test. */
    bool after_cr = *scanned > 0 && buf[*scanned - 1] == '\r';
    for (size_t i = *scanned; i < limit; i++) {
        char c = buf[i];
        if (!after_cr && c != '\r' && c != '\n')
            continue;
        if (after_cr != (c == '\n')) { /* a bare CR or a bare LF */
            *scanned = i; /* where, however the bytes came */
            return HTTP_WIRE_BAD;
        }
        if (c == '\n' && i >= 3 && buf[i - 2] == '\n') {
            *scanned = i + 1;
            return HTTP_WIRE_OK;
        }
        after_cr = c == '\r';
    }
    *scanned = limit;
    return limit == WX_HTTP_HEAD_BYTES_MAX ? too_large(buf, limit) : HTTP_WIRE_INCOMPLETE;
}

/* The next line of buf[*pos..end), NUL-terminated in place over its CR. A
 * lone CR or LF inside it makes the head bad. */
static char *next_line(char *buf, size_t end, size_t *pos, size_t *line_len)
{
    size_t start = *pos;
    for (size_t i = start; i + 1 < end; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            buf[i] = '\0';
            *pos = i + 2;
            *line_len = i - start;
            return buf + start;
        }
        if (buf[i] == '\r' || buf[i] == '\n' || buf[i] == '\0')
            return NULL;
    }
    return NULL;
}

/* RFC 9112 §3.2.2: an absolute-form target ("http://host/path?q") is
 * accepted; its path (or "/") is routed, and the authority is ignored
 * like Host. False for any other scheme, an empty authority or userinfo. */
static bool absolute_form(char *t, const char **path_out)
{
    size_t scheme = strncasecmp(t, "http://", 7) == 0    ? 7
                    : strncasecmp(t, "https://", 8) == 0 ? 8
                                                         : 0;
    if (scheme == 0)
        return false;
    size_t authority = strcspn(t + scheme, "/?");
    if (authority == 0 || memchr(t + scheme, '@', authority) != NULL)
        return false;
    char *rest = t + scheme + authority;
    if (*rest == '/') {
        *path_out = rest;
    } else {
        /* "http://host?q": the path is "/" and the query stays in place. */
        *path_out = "/";
    }
    return true;
}

static bool parse_request_line(char *line, size_t len, struct http_wire_head *h, const char **why)
{
    size_t i = 0;
    while (i < len && tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i >= len || line[i] != ' ') {
        *why = "the request line is not METHOD SP target SP HTTP/1.x";
        return false;
    }
    line[i++] = '\0';
    h->method = line;
    char *t = line + i;
    while (i < len && target_char((unsigned char)line[i]))
        i++;
    if (i >= len || line[i] != ' ' || t == line + i) {
        *why = "the request target has a character URLs cannot have";
        return false;
    }
    h->target_bytes = (size_t)(line + i - t);
    line[i++] = '\0';
    char *q = strchr(t, '?');
    if (q != NULL)
        *q = '\0';
    h->query = q != NULL ? q + 1 : "";
    /* origin-form; absolute-form; asterisk- and authority-form are for
     * OPTIONS and CONNECT, which we do not serve */
    if (t[0] == '/') {
        h->target = t;
    } else if (!absolute_form(t, &h->target)) {
        *why = "the request target must be a path (/...) or an http(s) URL";
        return false;
    }
    if (len - i != 8 || memcmp(line + i, "HTTP/1.", 7) != 0 ||
        (line[i + 7] != '0' && line[i + 7] != '1')) {
        *why = "only HTTP/1.0 and HTTP/1.1 are spoken here";
        return false;
    }
    h->minor = line[i + 7] - '0';
    return true;
}

/* Does the comma-separated list hold this token (any case)? */
static bool list_has(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e != '\0' && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p = e;
    }
    return false;
}

/* Content-Length: digits only, at most 18 significant ones (so it fits an
 * int64; leading zeros do not count). */
static enum http_wire_result parse_length(const char *v, int64_t *out, const char **why)
{
    int64_t n = 0;
    size_t i = 0, digits = 0;
    for (; v[i] >= '0' && v[i] <= '9'; i++) {
        digits += digits > 0 || v[i] != '0';
        if (digits > 18) {
            *why = "the request body is too large";
            return HTTP_WIRE_BODY_TOO_LARGE;
        }
        n = n * 10 + (v[i] - '0');
    }
    if (i == 0 || v[i] != '\0') {
        *why = "Content-Length must be a decimal number";
        return HTTP_WIRE_BAD;
    }
    *out = n;
    return HTTP_WIRE_OK;
}

/* What the head's fields have said so far about framing and connection. */
struct head_meaning {
    const char *length; /* the first Content-Length, as sent */
    int hosts;
    bool te_seen, close, keep;
};

static enum http_wire_result header_meaning(struct http_wire_head *h, const char *name,
                                            const char *value, struct head_meaning *m,
                                            const char **why)
{
    if (strcasecmp(name, "Content-Length") == 0) {
        /* A repeat must say it the same way ("4" twice, not "04" and "4"):
         * the stricter reading, as h11's and a careful proxy's. */
        if (m->length != NULL && strcmp(m->length, value) != 0) {
            *why = "two different Content-Length headers";
            return HTTP_WIRE_BAD;
        }
        m->length = value;
        return parse_length(value, &h->content_length, why);
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        /* Only plain chunked: another coding would have to be undone before
         * the body is JSON, and we undo none. */
        if (m->te_seen || strcasecmp(value, "chunked") != 0) {
            *why = "Transfer-Encoding must be chunked alone";
            return HTTP_WIRE_BAD;
        }
        m->te_seen = true;
        h->chunked = true;
    } else if (strcasecmp(name, "Host") == 0) {
        m->hosts++;
    } else if (strcasecmp(name, "Connection") == 0) {
        m->close |= list_has(value, "close");
        m->keep |= list_has(value, "keep-alive");
    } else if (strcasecmp(name, "Expect") == 0) {
        h->expect_continue |= strcasecmp(value, "100-continue") == 0;
    }
    return HTTP_WIRE_OK;
}

/* One header line, NUL-terminated at its end: name and value split and
 * trimmed in place, or BAD. */
static enum http_wire_result header_line(char *line, size_t line_len, struct http_wire_head *h,
                                         const char **why)
{
    if (line[0] == ' ' || line[0] == '\t') {
        *why = "folded header lines are not accepted";
        return HTTP_WIRE_BAD;
    }
    size_t i = 0;
    while (i < line_len && tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i >= line_len || line[i] != ':') {
        *why = "a header line is not name: value";
        return HTTP_WIRE_BAD;
    }
    line[i++] = '\0';
    while (i < line_len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t v = i, ve = line_len;
    for (; i < line_len; i++) {
        if (!value_char((unsigned char)line[i])) {
            *why = "a header value has a control character";
            return HTTP_WIRE_BAD;
        }
    }
    while (ve > v && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
        ve--;
    line[ve] = '\0';
    if (h->headers_len == WX_HTTP_HEADERS_MAX) {
        *why = "too many request headers";
        return HTTP_WIRE_HEAD_TOO_LARGE;
    }
    h->headers[h->headers_len++] = (struct http_wire_header){line, line + v};
    return HTTP_WIRE_OK;
}

enum http_wire_result http_wire_parse_head(char *buf, size_t len, struct http_wire_head *h,
                                           const char **why)
{
    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    size_t pos = 0, line_len;
    char *line = next_line(buf, len, &pos, &line_len);
    if (line == NULL) {
        *why = "the request line has a bare CR, LF or NUL";
        return HTTP_WIRE_BAD;
    }
    if (!parse_request_line(line, line_len, h, why))
        return HTTP_WIRE_BAD;
    if (h->target_bytes > WX_URL_BYTES_MAX) {
        *why = "the URL is too long";
        return HTTP_WIRE_URI_TOO_LONG;
    }
    struct head_meaning m = {NULL, 0, false, false, false};
    for (;;) {
        line = next_line(buf, len, &pos, &line_len);
        if (line == NULL) {
            *why = "a header line has a bare CR, LF or NUL";
            return HTTP_WIRE_BAD;
        }
        if (line_len == 0)
            break;
        enum http_wire_result r = header_line(line, line_len, h, why);
        if (r == HTTP_WIRE_OK) {
            const struct http_wire_header *f = &h->headers[h->headers_len - 1];
            r = header_meaning(h, f->name, f->value, &m, why);
        }
        if (r != HTTP_WIRE_OK)
            return r;
    }
    /* RFC 9112 §3.2: exactly one Host in HTTP/1.1, never two in any. */
    if ((h->minor == 1 && m.hosts != 1) || m.hosts > 1) {
        *why = "an HTTP/1.1 request needs exactly one Host header";
        return HTTP_WIRE_BAD;
    }
    if (h->chunked && (h->content_length >= 0 || h->minor == 0)) {
        *why = "Transfer-Encoding with Content-Length, or in HTTP/1.0";
        return HTTP_WIRE_BAD;
    }
    h->keep_alive = h->minor == 1 ? !m.close : m.keep && !m.close;
    h->head_bytes = pos;
    return HTTP_WIRE_OK;
}

/* ---- chunked bodies ---- */

enum {
    CH_SIZE,      /* hex digits */
    CH_SIZE_WS,   /* whitespace after them: then ';' or CR */
    CH_EXT,       /* an extension, read past */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START, /* a field name's first byte, or CR of the last line */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,
    CH_DONE,
};

/* One byte of a chunk-size line: HEX [BWS ";" ext] [OWS] CRLF. Leading
 * zeros do not count as digits, but every byte counts against the line's
 * bound. */
static enum http_wire_result size_byte(struct http_wire_chunks *c, unsigned char ch,
                                       const char **why)
{
    if (++c->line_bytes > WX_HTTP_CHUNK_LINE_BYTES_MAX) {
        *why = "a chunk size line is too long";
        return HTTP_WIRE_BAD;
    }
    int d = wx_hex_digit(ch);
    bool any_digit = c->line_bytes > 1;
    if (c->state == CH_SIZE && d >= 0) {
        if (c->digits == WX_HTTP_CHUNK_SIZE_DIGITS_MAX) {
            *why = "the request body is too large";
            return HTTP_WIRE_BODY_TOO_LARGE;
        }
        c->chunk_left = c->chunk_left * 16 + (uint64_t)d;
        c->digits += c->digits > 0 || d > 0;
    } else if (c->state == CH_EXT) {
        /* Extensions are allowed and ignored: visible bytes up to CR. */
        if (ch == '\r')
            c->state = CH_SIZE_LF;
        else if (!value_char(ch))
            goto bad;
    } else if (any_digit && (ch == ' ' || ch == '\t')) {
        c->state = CH_SIZE_WS;
    } else if (any_digit && ch == ';') {
        c->state = CH_EXT;
    } else if (any_digit && ch == '\r') {
        c->state = CH_SIZE_LF;
    } else {
        goto bad;
    }
    return HTTP_WIRE_OK;
bad:
    *why = "a chunk size is not hexadecimal, or is followed by something else than ';' or CRLF";
    return HTTP_WIRE_BAD;
}

/* The LF that ends a size line; the chunk's data, or the trailer next. */
static enum http_wire_result size_end(struct http_wire_chunks *c, unsigned char ch,
                                      size_t body_bytes_max, const char **why)
{
    if (ch != '\n') {
        *why = "a chunk size line does not end in CRLF";
        return HTTP_WIRE_BAD;
    }
    c->line_bytes = 0;
    c->digits = 0;
    if (c->chunk_left == 0) {
        c->state = CH_TRAILER_START;
    } else if (c->chunk_left > body_bytes_max - c->out_len) {
        *why = "the request body is too large";
        return HTTP_WIRE_BODY_TOO_LARGE;
    } else {
        c->state = CH_DATA;
    }
    return HTTP_WIRE_OK;
}

/* One byte of the trailer section: header fields (name ":" value CRLF),
 * checked like the head's and dropped, then CRLF. Bounded like a head. */
static enum http_wire_result trailer_byte(struct http_wire_chunks *c, unsigned char ch,
                                          const char **why)
{
    if (++c->line_bytes > WX_HTTP_HEAD_BYTES_MAX) {
        *why = "the chunked trailer section is too large";
        return HTTP_WIRE_HEAD_TOO_LARGE;
    }
    switch (c->state) {
    case CH_TRAILER_START:
        if (ch == '\r') {
            c->state = CH_END_LF;
        } else if (!tchar(ch)) {
            goto bad;
        } else if (++c->trailer_fields > WX_HTTP_HEADERS_MAX) {
            *why = "too many chunked trailer fields";
            return HTTP_WIRE_HEAD_TOO_LARGE;
        } else {
            c->state = CH_TRAILER_NAME;
        }
        break;
    case CH_TRAILER_NAME:
        if (ch == ':')
            c->state = CH_TRAILER_VALUE;
        else if (!tchar(ch))
            goto bad;
        break;
    case CH_TRAILER_VALUE:
        if (ch == '\r')
            c->state = CH_TRAILER_LF;
        else if (!value_char(ch))
            goto bad;
        break;
    default: /* CH_TRAILER_LF, CH_END_LF */
        if (ch != '\n')
            goto bad;
        c->state = c->state == CH_END_LF ? CH_DONE : CH_TRAILER_START;
        break;
    }
    return HTTP_WIRE_OK;
bad:
    *why = "a chunked trailer line is not a header field (name: value CRLF)";
    return HTTP_WIRE_BAD;
}

void http_wire_chunks_init(struct http_wire_chunks *c, size_t body_start)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
    c->in_pos = body_start;
    c->out_pos = body_start;
}

enum http_wire_result http_wire_chunks_feed(struct http_wire_chunks *c, char *buf, size_t *len,
                                            size_t body_bytes_max, const char **why)
{
    while (c->in_pos < *len && c->state != CH_DONE) {
        unsigned char ch = (unsigned char)buf[c->in_pos];
        enum http_wire_result r = HTTP_WIRE_OK;
        if (c->state == CH_DATA) {
            size_t n = *len - c->in_pos;
            if (n > c->chunk_left)
                n = (size_t)c->chunk_left;
            /* The decoded body never overtakes the raw bytes: each chunk's
             * size line is at least three bytes. */
            memmove(buf + c->out_pos + c->out_len, buf + c->in_pos, n);
            c->in_pos += n;
            c->out_len += n;
            c->chunk_left -= n;
            if (c->chunk_left == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        if (c->state <= CH_EXT) {
            r = size_byte(c, ch, why);
        } else if (c->state == CH_SIZE_LF) {
            r = size_end(c, ch, body_bytes_max, why);
        } else if (c->state == CH_DATA_CR || c->state == CH_DATA_LF) {
            if (ch != (c->state == CH_DATA_CR ? '\r' : '\n')) {
                *why = "a chunk's data is not followed by CRLF";
                return HTTP_WIRE_BAD;
            }
            c->state = c->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE;
        } else {
            r = trailer_byte(c, ch, why);
        }
        if (r != HTTP_WIRE_OK)
            return r;
        c->in_pos++;
    }
    if (c->state == CH_DONE)
        return HTTP_WIRE_OK;
    /* Every raw byte is decoded: the buffer keeps the body only, and the
     * next bytes go right after it. */
    *len = c->in_pos = c->out_pos + c->out_len;
    return HTTP_WIRE_INCOMPLETE;
}

bool http_wire_unescape(char *s, bool plus_is_space)
{
    char *w = s;
    for (const char *r = s; *r != '\0'; r++) {
        int hi, lo;
        if (*r == '%' && (hi = wx_hex_digit((unsigned char)r[1])) >= 0 &&
            (lo = wx_hex_digit((unsigned char)r[2])) >= 0) {
            char c = (char)(hi * 16 + lo);
            if (c == '\0')
                return false;
            *w++ = c;
            r += 2;
        } else {
            *w++ = plus_is_space && *r == '+' ? ' ' : *r;
        }
    }
    *w = '\0';
    return true;
}

const char *http_wire_header(const struct http_wire_head *h, const char *name)
{
    for (size_t i = 0; i < h->headers_len; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            return h->headers[i].value;
    return NULL;
}
