/*
 * The pieces of Unicode that both JSON readers need: \uXXXX escapes and
 * UTF-8, for the body reader in http/json.c (which checks what json-c lets
 * through) and base/jflat (which reads the log's flat payloads itself).
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

/* s[0..len) is well-formed UTF-8 (Unicode §3.9, table 3-7): no overlong
 * form (C0 AF, E0 80 AF, F0 80 80 AF), no surrogate (ED A0 80), nothing
 * past U+10FFFF (F4 90 80 80, F5-FF), no stray or missing continuation. */
bool wx_utf8_valid(const char *s, size_t len);

#endif
