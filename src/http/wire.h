/*
 * HTTP/1.1 on the wire (RFC 9112): the request head and chunked bodies,
 * parsed in place, with nothing but the bytes given. No sockets here, so
 * the fuzzer drives exactly what a client can reach.
 *
 * Strict on purpose: CRLF line ends only (a bare CR or LF is refused as
 * soon as it is seen), no whitespace before a header's colon, no folded
 * lines, one Content-Length, never Content-Length with Transfer-Encoding,
 * chunk sizes followed only by whitespace, an extension or CRLF, and
 * trailer lines that are header fields. Each of those is a way two parsers
 * (a proxy's and ours) can disagree about where a request ends, which is
 * how requests are smuggled; a client that sends them gets a 400, not a
 * guess. tests/diff/ holds us against h11 and lists where we differ.
 */
#ifndef WALLEX_HTTP_WIRE_H
#define WALLEX_HTTP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

enum http_wire_result {
    HTTP_WIRE_OK,
    HTTP_WIRE_INCOMPLETE,      /* more bytes needed */
    HTTP_WIRE_BAD,             /* answer 400 and close; *why says what */
    HTTP_WIRE_URI_TOO_LONG,    /* the request target: 414, close */
    HTTP_WIRE_HEAD_TOO_LARGE,  /* the head or the trailer section: 431, close */
    HTTP_WIRE_BODY_TOO_LARGE,  /* 413, close */
};

struct http_wire_header {
    const char *name;  /* as sent; compare without case */
    const char *value; /* optional whitespace trimmed */
};

struct http_wire_head {
    const char *method;
    const char *target; /* the path, before any '?', still percent-encoded (of
                           an absolute-form target: its path, "/" when empty) */
    const char *query;  /* after the '?', or "" */
    size_t target_bytes; /* of the target as sent, query and all */
    int minor;         /* HTTP/1.minor, 0 or 1 */
    struct http_wire_header headers[WX_HTTP_HEADERS_MAX];
    size_t headers_len;
    int64_t content_length; /* -1 when none was sent */
    bool chunked;
    bool keep_alive; /* what the client asked for, by version and Connection */
    bool expect_continue;
    size_t head_bytes; /* through the blank line */
};

/* Looks for the end of a head in buf[0..len); *scanned carries where the
 * last call stopped, so a head that trickles in is not searched again from
 * its start. OK when buf holds a whole head; BAD at the first bare CR or
 * LF (a client that ends lines with LF alone would otherwise wait for a
 * blank line that never comes); URI_TOO_LONG or HEAD_TOO_LARGE when it
 * cannot fit in WX_HTTP_HEAD_BYTES_MAX. */
enum http_wire_result http_wire_head_end(const char *buf, size_t len, size_t *scanned);

/* Parses a whole head (http_wire_head_end said OK) in place: names and
 * values are NUL-terminated inside buf. */
enum http_wire_result http_wire_parse_head(char *buf, size_t len, struct http_wire_head *out,
                                           const char **why);

/* Decodes a chunked body in place, as it arrives. The decoded bytes are
 * written from buf[out_pos] on (never past what was read, so the same
 * buffer serves), raw bytes are read from buf[in_pos..*len). OK once the
 * last chunk and its trailer fields are in; in_pos then points past them.
 * Trailer fields are checked as header fields and dropped. INCOMPLETE has
 * decoded every raw byte and cut *len back to the end of the decoded body,
 * where the next bytes read go. */
struct http_wire_chunks {
    int state;
    size_t in_pos;         /* next raw byte to read */
    size_t out_pos;        /* where the decoded body starts */
    size_t out_len;        /* decoded bytes so far */
    uint64_t chunk_left;   /* data bytes left in the current chunk */
    size_t line_bytes;     /* of the size line, or of the whole trailer section */
    size_t digits;         /* significant hex digits of the size so far */
    size_t trailer_fields; /* trailer lines so far */
};

void http_wire_chunks_init(struct http_wire_chunks *c, size_t body_start);
enum http_wire_result http_wire_chunks_feed(struct http_wire_chunks *c, char *buf, size_t *len,
                                            size_t body_bytes_max, const char **why);

/* Decodes %XX in place (and '+' as a space when plus_is_space). False for a
 * decoded NUL, which would cut the string short. */
bool http_wire_unescape(char *s, bool plus_is_space);

/* Case-insensitive lookup of a header in a parsed head, or NULL. */
const char *http_wire_header(const struct http_wire_head *h, const char *name);

#endif
