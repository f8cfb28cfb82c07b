/* libFuzzer: the HTTP/1.1 wire parser (src/http/wire.c) on any bytes a
 * client can send. The input is a connection's stream: a head, then a
 * chunked body. Oracles: the head's end is found at the same place whether
 * the bytes come at once or in two reads; a parsed head keeps its
 * promises; a chunked body decodes to the same bytes, with the same
 * verdict, whole and in small reads. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/wire.h"

#define BODY_MAX 4096

static void check_head(const struct http_wire_head *h, size_t scanned)
{
    assert(h->head_bytes == scanned);
    assert(h->method != NULL && h->method[0] != '\0');
    assert(h->target[0] == '/');
    assert(h->target_bytes >= strlen(h->target) || strcmp(h->target, "/") == 0);
    assert(h->target_bytes <= WX_URL_BYTES_MAX);
    assert(h->minor == 0 || h->minor == 1);
    assert(h->content_length >= -1);
    assert(!(h->chunked && h->content_length >= 0));
    assert(h->headers_len <= WX_HTTP_HEADERS_MAX);
    for (size_t i = 0; i < h->headers_len; i++) {
        assert(h->headers[i].name[0] != '\0');
        assert(strpbrk(h->headers[i].name, ": \t\r\n") == NULL);
        assert(strpbrk(h->headers[i].value, "\r\n") == NULL);
    }
}

/* Decodes raw[0..len) as a chunked body, fed step bytes at a time. */
static enum http_wire_result decode(const uint8_t *raw, size_t len, size_t step, char *buf,
                                    size_t *body_len, size_t *consumed)
{
    struct http_wire_chunks c;
    http_wire_chunks_init(&c, 0);
    size_t have = 0, at = 0;
    enum http_wire_result r = HTTP_WIRE_INCOMPLETE;
    while (at < len && r == HTTP_WIRE_INCOMPLETE) {
        size_t n = len - at < step ? len - at : step;
        memcpy(buf + have, raw + at, n);
        have += n;
        at += n;
        const char *why = NULL;
        r = http_wire_chunks_feed(&c, buf, &have, BODY_MAX, &why);
        assert(c.out_pos + c.out_len <= c.in_pos && c.in_pos <= have);
        assert(c.out_len <= BODY_MAX);
        assert(r != HTTP_WIRE_INCOMPLETE || have == c.out_pos + c.out_len);
        if (r != HTTP_WIRE_OK && r != HTTP_WIRE_INCOMPLETE)
            assert(why != NULL && (r == HTTP_WIRE_BAD || r == HTTP_WIRE_BODY_TOO_LARGE ||
                                   r == HTTP_WIRE_HEAD_TOO_LARGE));
    }
    *body_len = c.out_len;
    /* Raw bytes the body took: what was fed, less what is still unread. */
    *consumed = r == HTTP_WIRE_OK ? at - (have - c.in_pos) : at;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % (size + 1);
    data++;
    size--;
    if (split > size)
        split = size;
    char *a = malloc(size + 1), *b = malloc(size + 1);
    memcpy(a, data, size);
    memcpy(b, data, size);

    /* The head's end: at once, and in two reads. */
    size_t scanned_a = 0, scanned_b = 0;
    enum http_wire_result ra = http_wire_head_end(a, size, &scanned_a);
    enum http_wire_result rb = http_wire_head_end(b, split, &scanned_b);
    if (rb == HTTP_WIRE_INCOMPLETE)
        rb = http_wire_head_end(b, size, &scanned_b);
    assert(ra == rb && scanned_a == scanned_b);

    size_t body_from = 0;
    if (ra == HTTP_WIRE_OK) {
        struct http_wire_head h;
        const char *why = NULL;
        enum http_wire_result r = http_wire_parse_head(a, scanned_a, &h, &why);
        if (r == HTTP_WIRE_OK) {
            check_head(&h, scanned_a);
        } else {
            assert(why != NULL);
        }
        body_from = scanned_a;
    }

    /* The rest as a chunked body, whole and three bytes at a time. */
    size_t rest = size - body_from, len1, len3, used1, used3;
    char *buf1 = malloc(rest + 1), *buf3 = malloc(rest + 1);
    enum http_wire_result c1 = decode(data + body_from, rest, rest ? rest : 1, buf1, &len1, &used1);
    enum http_wire_result c3 = decode(data + body_from, rest, 3, buf3, &len3, &used3);
    assert(c1 == c3);
    if (c1 == HTTP_WIRE_OK) {
        assert(len1 == len3 && memcmp(buf1, buf3, len1) == 0);
        assert(used1 == used3);
    }
    free(buf1);
    free(buf3);
    free(a);
    free(b);
    return 0;
}
