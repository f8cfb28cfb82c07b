/* Strict JSON request bodies; see json.h. */
#include "http/json.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/id.h"
#include "base/money.h"
#include "base/unicode.h"
#include "http/http.h"
#include "limits.h"

static bool json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* At p, just after a high surrogate's "\uXXXX": its low half, if there is one. */
static bool low_half(const char *p, const char *end, uint32_t *lo)
{
    return end - p >= 6 && p[0] == '\\' && p[1] == 'u' && wx_hex4(p + 2, end, lo) &&
           wx_is_low_surrogate(*lo);
}

enum scan {
    SCAN_OK,
    SCAN_PAIRS,        /* valid, with escaped surrogate pairs to decode */
    SCAN_SINGLE_QUOTE, /* a 'single-quoted' string */
    SCAN_LONE_SURROGATE,
    SCAN_CONTROL, /* a raw control character inside a string */
};

/* What json-c would get wrong, found before it reads the body:
 * - its strict mode still takes 'single-quoted' strings, which are not JSON
 *   (a ' outside a "..." string means such a string);
 * - it turns a lone surrogate escape into U+FFFD, changing what the client
 *   sent without a word; we refuse it instead;
 * - json-c 0.16 also turns valid pairs for U+1D800-U+1DFFF, U+2D800-... (any
 *   code point whose low 16 bits look like a surrogate) into U+FFFD
 *   (json-c/json-c pull request 893). So pairs are decoded here first;
 * - it takes raw control characters (U+0000-U+001F) inside strings, which
 *   RFC 8259 §7 forbids there (they must be escaped).
 * Also counts the keys the text names into *keys_out, for the repeated-key
 * check after json-c: in JSON that json-c accepts, a string is a key exactly
 * when a ':' follows it, and decoding pairs moves no quote or colon. */
static enum scan scan_strings(const char *body, size_t len, size_t *keys_out)
{
    const char *p = body, *end = body + len;
    bool in_string = false, pairs = false;
    size_t keys = 0;
    while (p < end) {
        char c = *p++;
        if (!in_string) {
            if (c == '"')
                in_string = true;
            else if (c == '\'')
                return SCAN_SINGLE_QUOTE;
            continue;
        }
        if (c == '"') {
            in_string = false;
            const char *q = p;
            while (q < end && json_space(*q))
                q++;
            keys += q < end && *q == ':';
            continue;
        }
        if ((unsigned char)c < 0x20)
            return SCAN_CONTROL;
        if (c != '\\' || p == end)
            continue;
        c = *p++;
        uint32_t u, lo;
        if (c != 'u' || !wx_hex4(p, end, &u))
            continue; /* json-c refuses a bad escape itself */
        p += 4;
        if (wx_is_low_surrogate(u))
            return SCAN_LONE_SURROGATE;
        if (!wx_is_high_surrogate(u))
            continue;
        if (!low_half(p, end, &lo))
            return SCAN_LONE_SURROGATE;
        p += 6;
        pairs = true;
    }
    *keys_out = keys;
    return pairs ? SCAN_PAIRS : SCAN_OK;
}

/* The body with each escaped surrogate pair written as its four UTF-8
 * bytes, which json-c passes through; NUL-terminated, at most len bytes
 * before the NUL. scan_strings found the body free of lone surrogates. */
static char *decode_pairs(const char *body, size_t len, size_t *len_out)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    const char *p = body, *end = body + len;
    char *o = out;
    bool in_string = false;
    while (p < end) {
        char c = *p++;
        *o++ = c;
        if (c == '"') {
            in_string = !in_string;
            continue;
        }
        if (!in_string || c != '\\' || p == end)
            continue;
        uint32_t hi, lo;
        if (*p == 'u' && wx_hex4(p + 1, end, &hi) && wx_is_high_surrogate(hi) &&
            low_half(p + 5, end, &lo)) {
            o--; /* the backslash */
            o += wx_utf8_encode(wx_surrogate_pair(hi, lo), (unsigned char *)o);
            p += 11;
        } else {
            *o++ = *p++; /* the escaped character, whatever it is */
        }
    }
    *o = '\0';
    *len_out = (size_t)(o - out);
    return out;
}

/* How many keys json-c kept. Recursion is bounded by WX_JSON_DEPTH_MAX,
 * which the tokener enforced. */
static size_t keys_in_tree(struct json_object *v)
{
    size_t n = 0;
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, child)
        {
            (void)key;
            n += 1 + keys_in_tree(child);
        }
    } else if (json_object_is_type(v, json_type_array)) {
        size_t len = json_object_array_length(v);
        for (size_t i = 0; i < len; i++)
            n += keys_in_tree(json_object_array_get_idx(v, i));
    }
    return n;
}

/* The checks on the body's text before json-c reads it. *text and *len
 * are what json-c is to read: the body, or a copy with surrogate pairs
 * decoded (*decoded, which the caller frees). *keys counts the keys the
 * text names. False with *detail when the body is refused. */
static bool body_text(const char **text, size_t *len, char **decoded, size_t *keys,
                      const char **detail)
{
    *decoded = NULL;
    if (*len == 0) {
        *detail = "the request body is empty";
        return false;
    }
    if (memchr(*text, '\0', *len) != NULL) {
        *detail = "the request body contains a NUL byte";
        return false;
    }
    /* json-c's own check lets overlong forms, surrogates and values past
     * U+10FFFF through, and they would be stored in the log for good. */
    if (!wx_utf8_valid(*text, *len)) {
        *detail = "the request body is not valid UTF-8";
        return false;
    }
    switch (scan_strings(*text, *len, keys)) {
    case SCAN_OK:
        return true;
    case SCAN_PAIRS:
        *decoded = decode_pairs(*text, *len, len);
        if (*decoded == NULL) {
            *detail = "out of memory";
            return false;
        }
        *text = *decoded;
        return true;
    case SCAN_SINGLE_QUOTE:
        *detail = "the request body is not valid JSON";
        return false;
    case SCAN_LONE_SURROGATE:
        *detail = "a string has a lone UTF-16 surrogate escape (\\uD800-\\uDFFF)";
        return false;
    case SCAN_CONTROL:
        *detail = "a string has a raw control character; escape it (\\u0000-\\u001F)";
        return false;
    }
    return false;
}

bool http_json_parse_object(const char *body, size_t len, struct json_object **obj_out,
                            const char **detail)
{
    char *decoded;
    size_t keys = 0;
    if (!body_text(&body, &len, &decoded, &keys, detail))
        return false;
    bool ok = false;
    struct json_object *obj = NULL;
    struct json_tokener *tok = json_tokener_new_ex(WX_JSON_DEPTH_MAX);
    if (tok == NULL) {
        *detail = "out of memory";
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (obj == NULL || jerr != json_tokener_success) {
        *detail = jerr == json_tokener_error_depth ? "the JSON is nested too deeply"
                                                   : "the request body is not valid JSON";
        goto out;
    }
    for (; end < len; end++) {
        if (!json_space(body[end])) {
            *detail = "there is data after the JSON value";
            goto out;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        *detail = "the request body must be a JSON object";
        goto out;
    }
    /* json-c keeps the last of two equal keys; a proxy or an audit log may
     * keep the first. {"amount":"1.00","amount":"1000.00"} must not mean
     * one thing to them and another to us (RFC 7493 section 2.3). */
    if (keys != keys_in_tree(obj)) {
        *detail = "a key appears more than once in one object";
        goto out;
    }
    *obj_out = obj;
    obj = NULL;
    ok = true;
out:
    json_object_put(obj);
    free(decoded);
    return ok;
}

bool http_json_only_keys(struct json_object *obj, const char *const *allowed,
                         const char **bad_key_out)
{
    json_object_object_foreach(obj, key, val)
    {
        (void)val;
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            *bad_key_out = key;
            return false;
        }
    }
    return true;
}

/* The field's value: false when absent. A JSON null is present, with *v
 * NULL, and valid for no field (API.md: an optional field is a value of
 * its type or absent). */
static bool field(struct json_object *obj, const char *key, struct json_object **v)
{
    *v = NULL;
    return json_object_object_get_ex(obj, key, v);
}

bool http_json_string(struct json_object *obj, const char *key, enum http_field need,
                      size_t max_bytes, struct wx_arena *arena, const char **out)
{
    struct json_object *v;
    *out = NULL;
    if (!field(obj, key, &v))
        return need == HTTP_FIELD_OPTIONAL;
    if (!json_object_is_type(v, json_type_string))
        return false;
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (len > max_bytes || strlen(s) != len) /* too long, or "\u0000" inside */
        return false;
    *out = wx_arena_strndup(arena, s, len);
    return *out != NULL;
}

bool http_json_id(struct json_object *obj, const char *key, enum http_field need,
                  struct wx_arena *arena, const char **out)
{
    if (!http_json_string(obj, key, need, WX_ID_BYTES_MAX, arena, out))
        return false;
    return *out == NULL ? need == HTTP_FIELD_OPTIONAL : wx_id_ok(*out);
}

bool http_json_decimal(struct json_object *obj, const char *key, enum http_field need,
                      struct wx_arena *arena, const char **out)
{
    struct json_object *v;
    *out = NULL;
    if (!field(obj, key, &v))
        return need == HTTP_FIELD_OPTIONAL;
    enum json_type t = json_object_get_type(v);
    if (t != json_type_int && t != json_type_double && t != json_type_string)
        return false;
    /* json-c keeps a number's original text; a number too large for uint64
     * comes back clamped, which still overflows int64 minor units below. */
    const char *text = json_object_get_string(v);
    size_t len = t == json_type_string ? (size_t)json_object_get_string_len(v) : strlen(text);
    if (len == 0 || len > 64 || strlen(text) != len)
        return false;
    /* Only the grammar is checked here; whether the value fits in int64
     * minor units depends on the currency, which the decider knows. */
    int64_t minor;
    int err = wx_money_parse(text, len, 4, &minor);
    if (err != 0 && err != WX_ERR_OVERFLOW)
        return false;
    *out = wx_arena_strndup(arena, text, len);
    return *out != NULL;
}

bool http_json_version(struct json_object *obj, const char *key, int64_t *out)
{
    struct json_object *v;
    *out = -1;
    if (!field(obj, key, &v))
        return true;
    if (!json_object_is_type(v, json_type_int))
        return false;
    const char *text = json_object_get_string(v);
    return http_parse_i64(text, 0, INT64_MAX, out);
}

const char *http_json_null_member(struct json_object *obj)
{
    json_object_object_foreach(obj, key, val)
    {
        if (val == NULL)
            return key;
    }
    return NULL;
}

/* "<before>'<key>'<after>" in the arena: a problem detail naming a key. */
static const char *key_problem(struct wx_arena *arena, const char *before, const char *key,
                               const char *after)
{
    char *msg = wx_arena_alloc(arena, 160);
    if (msg == NULL)
        return "a field is not valid";
    snprintf(msg, 160, "%s'%.64s'%s", before, key, after);
    return msg;
}

const char *http_json_body_object(const char *body, size_t len, const char *const *allowed,
                                  struct wx_arena *arena, struct json_object **obj)
{
    const char *detail = NULL;
    if (len == 0) {
        *obj = json_object_new_object();
        return *obj ? NULL : "out of memory";
    }
    if (!http_json_parse_object(body, len, obj, &detail))
        return detail;
    const char *bad_key;
    if (!http_json_only_keys(*obj, allowed, &bad_key))
        detail = key_problem(arena, "unknown field ", bad_key, "");
    else if ((bad_key = http_json_null_member(*obj)) != NULL)
        detail = key_problem(arena, "field ", bad_key, " is null: leave an optional field out");
    if (detail != NULL) {
        json_object_put(*obj);
        *obj = NULL;
    }
    return detail;
}
