/* What wallex's HTTP/1.1 parser (src/http/wire.c) makes of raw request
 * streams, for the differential test against h11 (tests/diff/test_h11.py).
 * The stream is framed as the server's connections frame it (conn.c):
 * empty lines before a request skipped, the head found and parsed, the body
 * read by Content-Length or chunked, the next request after it, none after
 * one that does not keep the connection alive.
 *
 * Input on stdin: cases, each "<length>\n" then that many bytes. Output: one
 * JSON line per case, every string hex-encoded (field values may hold any
 * byte):
 *   {"requests":[{"at":N,"method":H,"target":H,"headers":[[H,H],...],"body":H}],
 *    "end":"ok"|"incomplete"|"refused"|"closed","at":N}
 * "at" is where a request (or the end) starts in the stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/wire.h"
#include "limits.h"

static void hex(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)s[i]);
    putchar('"');
}

static void hexs(const char *s)
{
    hex(s, strlen(s));
}

/* The request target as sent: between the request line's two spaces. */
static void raw_target(const char *raw, size_t len)
{
    const char *sp = memchr(raw, ' ', len);
    const char *end = sp != NULL ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - raw)) : NULL;
    if (end == NULL)
        hex("", 0);
    else
        hex(sp + 1, (size_t)(end - sp - 1));
}

static void print_request(size_t at, const char *raw, const struct http_wire_head *h,
                          const char *body, size_t body_len, bool first)
{
    printf("%s{\"at\":%zu,\"method\":", first ? "" : ",", at);
    hexs(h->method);
    printf(",\"target\":");
    raw_target(raw, h->head_bytes);
    printf(",\"headers\":[");
    for (size_t i = 0; i < h->headers_len; i++) {
        printf("%s[", i ? "," : "");
        hexs(h->headers[i].name);
        putchar(',');
        hexs(h->headers[i].value);
        putchar(']');
    }
    printf("],\"body\":");
    hex(body, body_len);
    putchar('}');
}

/* Reads one request's body from buf[head..len); its decoded bytes in
 * *body, and where the next request starts. */
static enum http_wire_result read_body(char *buf, size_t len, const struct http_wire_head *h,
                                       const char **body, size_t *body_len, size_t *next)
{
    if (!h->chunked) {
        size_t want = h->content_length > 0 ? (size_t)h->content_length : 0;
        if (h->content_length > WX_BODY_BYTES_MAX)
            return HTTP_WIRE_BODY_TOO_LARGE;
        if (len - h->head_bytes < want)
            return HTTP_WIRE_INCOMPLETE;
        *body = buf + h->head_bytes;
        *body_len = want;
        *next = h->head_bytes + want;
        return HTTP_WIRE_OK;
    }
    struct http_wire_chunks c;
    http_wire_chunks_init(&c, h->head_bytes);
    const char *why = NULL;
    size_t have = len;
    enum http_wire_result r = http_wire_chunks_feed(&c, buf, &have, WX_BODY_BYTES_MAX, &why);
    if (r == HTTP_WIRE_OK) {
        *body = buf + c.out_pos;
        *body_len = c.out_len;
        *next = c.in_pos;
    }
    return r;
}

static void dump(const char *stream, size_t len)
{
    size_t pos = 0;
    const char *end = "ok";
    bool first = true;
    printf("{\"requests\":[");
    for (;;) {
        while (pos + 1 < len && stream[pos] == '\r' && stream[pos + 1] == '\n')
            pos += 2;
        if (pos == len)
            break;
        size_t n = len - pos, scanned = 0;
        char *buf = malloc(n), *head = malloc(n);
        memcpy(buf, stream + pos, n);
        memcpy(head, stream + pos, n);
        enum http_wire_result r = http_wire_head_end(buf, n, &scanned);
        struct http_wire_head h;
        const char *why = NULL, *body = NULL;
        size_t body_len = 0, next = 0;
        if (r == HTTP_WIRE_OK)
            r = http_wire_parse_head(head, scanned, &h, &why);
        if (r == HTTP_WIRE_OK)
            r = read_body(buf, n, &h, &body, &body_len, &next);
        if (r == HTTP_WIRE_OK)
            print_request(pos, stream + pos, &h, body, body_len, first);
        free(buf);
        free(head);
        if (r != HTTP_WIRE_OK) {
            end = r == HTTP_WIRE_INCOMPLETE ? "incomplete" : "refused";
            break;
        }
        first = false;
        pos += next;
        if (!h.keep_alive) {
            end = "closed";
            break;
        }
    }
    printf("],\"end\":\"%s\",\"at\":%zu}\n", end, pos);
}

int main(void)
{
    size_t len;
    while (scanf("%zu", &len) == 1 && getchar() == '\n') {
        char *stream = malloc(len + 1);
        if (stream == NULL || fread(stream, 1, len, stdin) != len)
            return 1;
        dump(stream, len);
        free(stream);
        fflush(stdout);
    }
    return 0;
}
