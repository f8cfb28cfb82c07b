/*
 * A strict reader of flat JSON objects: one object whose values are
 * strings, integers, true, false or null. It allocates nothing: keys and
 * string values are unescaped into the caller's buffer.
 *
 * Why not json-c: stored events are read back far more often than they are
 * written (the projector reads every one, a cold load hundreds), and json-c
 * builds a tree with a hash table and a malloc per value; decoding was a
 * quarter of the projector's time. Anything this reader accepts, json-c
 * reads the same (tests/fuzz/fuzz_jflat.c checks it); it refuses more:
 * nesting, fractions and exponents, integers beyond int64, lone surrogates,
 * raw control characters, trailing bytes.
 */
#ifndef WALLEX_BASE_JFLAT_H
#define WALLEX_BASE_JFLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

enum wx_jflat_type {
    WX_JFLAT_NULL,
    WX_JFLAT_BOOL,
    WX_JFLAT_INT,
    WX_JFLAT_STRING,
};

struct wx_jflat_field {
    const char *key; /* NUL-terminated, in the caller's buffer */
    size_t key_len;  /* strlen(key): keys with a NUL are refused */
    enum wx_jflat_type type;
    const char *str; /* WX_JFLAT_STRING: NUL-terminated, in the buffer */
    size_t str_len;
    int64_t i64; /* WX_JFLAT_INT */
    bool b;      /* WX_JFLAT_BOOL */
};

struct wx_jflat {
    struct wx_jflat_field fields[WX_JFLAT_FIELDS_MAX];
    size_t len;
};

/* Parses text[0..len) into out. buf must hold len + 1 bytes (unescaping
 * never grows a string). 0, or WX_ERR_CORRUPT for anything else, including
 * more than WX_JFLAT_FIELDS_MAX fields. */
int wx_jflat_parse(const char *text, size_t len, char *buf, size_t buf_bytes, struct wx_jflat *out);

/* The field named key (the last one, as json-c keeps it), or NULL. */
const struct wx_jflat_field *wx_jflat_get(const struct wx_jflat *j, const char *key);

/* A string field without NUL bytes and at most max_bytes long, or NULL. */
const char *wx_jflat_str(const struct wx_jflat *j, const char *key, size_t max_bytes);

/* An integer field into *out; false when absent or of another type. */
bool wx_jflat_i64(const struct wx_jflat *j, const char *key, int64_t *out);

#endif
