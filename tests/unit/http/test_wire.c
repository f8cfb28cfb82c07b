/* HTTP/1.1 heads and chunked bodies (src/http/wire.c): what is read, what is
 * refused, and that a body arriving a byte at a time decodes the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/wire.h"

/* Parses a whole head from a copy of text (which the parser writes into). */
static enum http_wire_result parse(const char *text, struct http_wire_head *h, char **copy)
{
    size_t len = strlen(text), scanned = 0;
    *copy = strdup(text);
    assert_non_null(*copy);
    enum http_wire_result r = http_wire_head_end(*copy, len, &scanned);
    if (r != HTTP_WIRE_OK)
        return r;
    const char *why = NULL;
    r = http_wire_parse_head(*copy, scanned, h, &why);
    if (r != HTTP_WIRE_OK)
        assert_non_null(why);
    return r;
}

static void test_heads_read(void **state)
{
    (void)state;
    struct http_wire_head h;
    char *b;
    const char *post = "POST /wallets/w%201/credit?x=1&y=2 HTTP/1.1\r\nHost: a\r\n"
                       "Content-Type:  application/json \t\r\nContent-Length: 12\r\n"
                       "Expect: 100-continue\r\n\r\n{\"amount\":1}";
    assert_int_equal(parse(post, &h, &b), HTTP_WIRE_OK);
    assert_string_equal(h.method, "POST");
    assert_string_equal(h.target, "/wallets/w%201/credit");
    assert_string_equal(h.query, "x=1&y=2");
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.content_length, 12);
    assert_true(h.keep_alive && h.expect_continue && !h.chunked);
    assert_string_equal(http_wire_header(&h, "content-type"), "application/json");
    assert_null(http_wire_header(&h, "Idempotency-Key"));
    assert_int_equal(h.head_bytes, strlen(post) - 12);
    free(b);

    /* Keep-alive by version and Connection, in any case, in a list. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, Close\r\n\r\n", &h, &b),
                     HTTP_WIRE_OK);
    assert_false(h.keep_alive);
    free(b);
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &h, &b), HTTP_WIRE_OK);
    assert_false(h.keep_alive);
    assert_int_equal(h.content_length, -1);
    free(b);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &h, &b),
                     HTTP_WIRE_OK);
    assert_true(h.keep_alive);
    free(b);
    /* absolute-form (RFC 9112 §3.2.2): the path is routed, the authority
     * ignored; an empty path is "/". */
    assert_int_equal(
        parse("GET http://a.b:8080/wallets/w%31?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", &h, &b),
        HTTP_WIRE_OK);
    assert_string_equal(h.target, "/wallets/w%31");
    assert_string_equal(h.query, "x=1");
    assert_int_equal(h.target_bytes, strlen("http://a.b:8080/wallets/w%31?x=1"));
    free(b);
    assert_int_equal(parse("GET HTTPS://h?q HTTP/1.1\r\nHost: a\r\n\r\n", &h, &b),
                     HTTP_WIRE_OK);
    assert_string_equal(h.target, "/");
    assert_string_equal(h.query, "q");
    free(b);
    /* Any token is a method here; the server answers 501 to those it does
     * not know. */
    assert_int_equal(parse("BREWWWWWWWWWWWWWWWWWWWWW / HTTP/1.1\r\nHost: a\r\n\r\n", &h, &b),
                     HTTP_WIRE_OK);
    free(b);
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", &h, &b),
        HTTP_WIRE_OK);
    assert_true(h.chunked);
    free(b);
    /* Leading zeros are no significant digits. */
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000000003\r\n\r\n",
              &h, &b),
        HTTP_WIRE_OK);
    assert_int_equal(h.content_length, 3);
    free(b);
    /* The same Content-Length twice says one thing. */
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &h,
              &b),
        HTTP_WIRE_OK);
    assert_int_equal(h.content_length, 3);
    free(b);
}

static void test_heads_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\x00\x01\x02\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                       /* no Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two */
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "BREW /coffee HTCPCP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", /* two Hosts, any version */
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",        /* asterisk-form */
        "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",    /* authority-form */
        "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET x HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n", /* space before colon */
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", /* bare LF */
        "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", /* bare CR */
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        /* the same length said two ways: refused, as h11 does */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 04\r\nContent-Length: 4\r\n\r\n",
        /* smuggling: both framings, or a coding we do not undo */
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n"),
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_wire_head h;
        char *b;
        /* The first entry has a NUL inside, which strdup would cut. */
        enum http_wire_result r;
        if (i == 0) {
            char raw[] = "\x00\x01\x02\r\n\r\n";
            size_t scanned = 0;
            const char *why = NULL;
            assert_int_equal(http_wire_head_end(raw, sizeof(raw) - 1, &scanned), HTTP_WIRE_OK);
            r = http_wire_parse_head(raw, scanned, &h, &why);
        } else {
            r = parse(bad[i], &h, &b);
            free(b);
        }
        if (r != HTTP_WIRE_BAD)
            fail_msg("accepted bad head %zu: %s", i, bad[i]);
    }
    /* A Content-Length that cannot fit is a body too large, not a bad head. */
    struct http_wire_head h;
    char *b;
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", &h, &b),
        HTTP_WIRE_BODY_TOO_LARGE);
    free(b);
    /* A URL over WX_URL_BYTES_MAX is 414, in origin- and absolute-form. */
    char url[WX_URL_BYTES_MAX + 64];
    memset(url, 'a', sizeof(url));
    memcpy(url, "GET /", 5);
    snprintf(url + WX_URL_BYTES_MAX + 5, 64 - 5, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(parse(url, &h, &b), HTTP_WIRE_URI_TOO_LONG);
    free(b);
    memcpy(url, "GET http://a/", 13);
    assert_int_equal(parse(url, &h, &b), HTTP_WIRE_URI_TOO_LONG);
    free(b);
    /* Too many header lines. */
    char many[WX_HTTP_HEADERS_MAX * 8 + 64];
    size_t n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < WX_HTTP_HEADERS_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "X: %d\r\n", i % 10);
    snprintf(many + n, sizeof(many) - n, "\r\n");
    assert_int_equal(parse(many, &h, &b), HTTP_WIRE_HEAD_TOO_LARGE);
    free(b);
}

static void test_head_end(void **state)
{
    (void)state;
    const char *text = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next";
    size_t scanned = 0;
    /* Byte by byte: found exactly once the blank line is complete. */
    size_t end = strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    for (size_t len = 0; len < end; len++)
        assert_int_equal(http_wire_head_end(text, len, &scanned), HTTP_WIRE_INCOMPLETE);
    assert_int_equal(http_wire_head_end(text, end, &scanned), HTTP_WIRE_OK);
    assert_int_equal(scanned, end);
    /* A head that cannot end within the limit: 414 while it is still the
     * request line's target, 431 otherwise. */
    char *big = malloc(WX_HTTP_HEAD_BYTES_MAX + 8);
    assert_non_null(big);
    memset(big, 'a', WX_HTTP_HEAD_BYTES_MAX + 8);
    scanned = 0;
    assert_int_equal(http_wire_head_end(big, WX_HTTP_HEAD_BYTES_MAX + 8, &scanned),
                     HTTP_WIRE_HEAD_TOO_LARGE);
    memcpy(big, "GET /", 5);
    scanned = 0;
    assert_int_equal(http_wire_head_end(big, WX_HTTP_HEAD_BYTES_MAX + 8, &scanned),
                     HTTP_WIRE_URI_TOO_LONG);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 20);
    scanned = 0;
    assert_int_equal(http_wire_head_end(big, WX_HTTP_HEAD_BYTES_MAX + 8, &scanned),
                     HTTP_WIRE_HEAD_TOO_LARGE);
    free(big);
    /* A bare LF or CR is refused as soon as it arrives, not after a
     * timeout waiting for a CRLF CRLF that never comes. */
    static const char *const bare[] = {"GET /healthz HTTP/1.1\nHost: x\n\n", "\n",
                                       "GET / HTTP/1.1\r\nHost: x\n", "GET /\rx",
                                       "GET / HTTP/1.1\r\n\r\r\n"};
    for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++) {
        size_t len = strlen(bare[i]);
        scanned = 0;
        /* Byte by byte, as it would trickle in: refused at the bare byte. */
        enum http_wire_result r = HTTP_WIRE_INCOMPLETE;
        for (size_t at = 1; at <= len && r == HTTP_WIRE_INCOMPLETE; at++)
            r = http_wire_head_end(bare[i], at, &scanned);
        if (r != HTTP_WIRE_BAD)
            fail_msg("bare CR or LF not refused: case %zu", i);
    }
}

/* Feeds raw in pieces of step bytes, as a socket would; returns the result
 * and the decoded body. */
static enum http_wire_result chunked(const char *raw, size_t step, size_t body_max, char *body,
                                     size_t *body_len, size_t *end)
{
    size_t len = strlen(raw);
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    struct http_wire_chunks c;
    http_wire_chunks_init(&c, 0);
    size_t have = 0; /* bytes in buf: decoded body, then what is not yet read */
    enum http_wire_result r = HTTP_WIRE_INCOMPLETE;
    for (size_t at = 0; at < len && r == HTTP_WIRE_INCOMPLETE;) {
        size_t n = len - at < step ? len - at : step;
        memcpy(buf + have, raw + at, n);
        have += n;
        at += n;
        const char *why = NULL;
        r = http_wire_chunks_feed(&c, buf, &have, body_max, &why);
        if (r == HTTP_WIRE_INCOMPLETE) {
            /* The decoder keeps the decoded body only. */
            assert_int_equal(have, c.out_pos + c.out_len);
        } else if (r != HTTP_WIRE_OK) {
            assert_non_null(why);
        } else {
            *end = c.in_pos + (len - at);
        }
    }
    memcpy(body, buf + c.out_pos, c.out_len);
    *body_len = c.out_len;
    free(buf);
    return r;
}

static void test_chunks(void **state)
{
    (void)state;
    char body[256];
    size_t body_len, end;
    const char *raw = "4\r\n{\"am\r\nA;ext=1\r\nount\":\"1.0\r\n2 \r\n0\"\r\n1\r\n}\r\n0\r\n"
                      "Trailer: x\r\n\r\nGET /";
    for (size_t step = 1; step <= strlen(raw); step++) {
        end = 0;
        assert_int_equal(chunked(raw, step, 64, body, &body_len, &end), HTTP_WIRE_OK);
        assert_int_equal(body_len, strlen("{\"amount\":\"1.00\"}"));
        assert_memory_equal(body, "{\"amount\":\"1.00\"}", body_len);
    }
    /* Over the body limit: refused as soon as the size line says so. */
    assert_int_equal(chunked("41\r\n", 1, 64, body, &body_len, &end), HTTP_WIRE_BODY_TOO_LARGE);
    assert_int_equal(chunked("20\r\n"
                             "0123456789abcdef0123456789abcdef\r\n21\r\n",
                             7, 64, body, &body_len, &end),
                     HTTP_WIRE_BODY_TOO_LARGE);
    assert_int_equal(chunked("fffffffff\r\n", 3, 64, body, &body_len, &end),
                     HTTP_WIRE_BODY_TOO_LARGE);
    /* Leading zeros are no digits of the size, whitespace may end it, and
     * trailer fields are read as fields. */
    static const char *const good[] = {
        "0000000000000000003\r\nabc\r\n0\r\n\r\n",
        "3 \t\r\nabc\r\n0\r\n\r\n",
        "3 ;a=b\r\nabc\r\n0;x\r\n\r\n",
        "3\r\nabc\r\n0\r\nA: b\r\nC:\r\nD:  e f \r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (chunked(good[i], 1, 64, body, &body_len, &end) != HTTP_WIRE_OK || body_len != 3 ||
            memcmp(body, "abc", 3) != 0)
            fail_msg("refused good chunked body %zu", i);
    }
    char zeros[WX_HTTP_CHUNK_LINE_BYTES_MAX + 8];
    memset(zeros, '0', sizeof(zeros));
    snprintf(zeros + WX_HTTP_CHUNK_LINE_BYTES_MAX, 8, "1\r\n");
    assert_int_equal(chunked(zeros, 5, 64, body, &body_len, &end), HTTP_WIRE_BAD);
    static const char *const bad[] = {
        "zz\r\n",
        "\r\n",
        "-1\r\n",
        " 1\r\n",
        "c 0\r\n",      /* read as 12 before */
        "1 1\r\na\r\n",
        "1x\r\n",
        ";x\r\n",
        "1;a\x01\r\n",
        "4\r\nabcdX\r\n",
        "4\n\r\nabcd\r\n0\r\n\r\n",
        "1\r\na\r\n0\r\nBad\x01trailer\r\n\r\n",
        "0\r\n\n",
        /* a request hiding behind a proxy as a "trailer" */
        "0\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "0\r\nthis is not a header\r\n\r\n",
        "0\r\nA: b\r\n folded\r\n\r\n",
        "0\r\n: v\r\n\r\n",
        "0\r\nA : v\r\n\r\n",
        "0\r\nA: v\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (chunked(bad[i], 1, 64, body, &body_len, &end) != HTTP_WIRE_BAD)
            fail_msg("accepted bad chunked body %zu", i);
    /* Cut short: still waiting. */
    assert_int_equal(chunked("4\r\nab", 1, 64, body, &body_len, &end), HTTP_WIRE_INCOMPLETE);
}

static void test_unescape(void **state)
{
    (void)state;
    char a[] = "/wallets/w%2D1%2f%zz%4";
    assert_true(http_wire_unescape(a, false));
    assert_string_equal(a, "/wallets/w-1/%zz%4");
    char b[] = "a+b%2Bc";
    assert_true(http_wire_unescape(b, true));
    assert_string_equal(b, "a b+c");
    char c[] = "/a%00b";
    assert_false(http_wire_unescape(c, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heads_read), cmocka_unit_test(test_heads_refused),
        cmocka_unit_test(test_head_end),   cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
