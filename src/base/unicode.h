/*
 * The pieces of JSON's \uXXXX escapes that both JSON readers need: the body
 * reader in http/json.c, which fixes what json-c gets wrong, and base/jflat,
 * which reads the log's flat payloads itself.
 */
#ifndef WALLEX_BASE_UNICODE_H
#define WALLEX_BASE_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit (either case), or -1. */
int wx_hex_digit(unsigned char c);
/* Four hex digits at p (end bounds the text) into *v; false if there are not. */
bool wx_hex4(const char *p, const char *end, uint32_t *v);

static inline bool wx_is_high_surrogate(uint32_t u)
{
    return u >= 0xD800 && u <= 0xDBFF;
}

static inline bool wx_is_low_surrogate(uint32_t u)
{
    return u >= 0xDC00 && u <= 0xDFFF;
}

/* The code point of a high and a low surrogate (U+10000-U+10FFFF). */
static inline uint32_t wx_surrogate_pair(uint32_t hi, uint32_t lo)
{
    return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
}

/* cp (not a surrogate, at most U+10FFFF) as UTF-8 in out; its byte count. */
size_t wx_utf8_encode(uint32_t cp, unsigned char out[4]);

#endif
