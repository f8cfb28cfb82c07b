/*
 * Reading request bodies with json-c, strictly: exactly valid UTF-8, no NUL
 * bytes, no raw control characters in strings, bounded nesting, one JSON
 * object and nothing after it. Field readers copy
 * what they return into the request arena and explain any failure in
 * `detail` (a static string) for the problem response.
 */
#ifndef WALLEX_HTTP_JSON_H
#define WALLEX_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"

struct json_object;

/* Parses an object; the caller puts it with json_object_put. */
bool http_json_parse_object(const char *body, size_t len, struct json_object **obj_out,
                            const char **detail);
/* True when every key of obj is in `allowed` (NULL-terminated). */
bool http_json_only_keys(struct json_object *obj, const char *const *allowed,
                         const char **bad_key_out);

/* The key of obj's first member whose value is JSON null, or NULL (json-c's
 * lookup gives NULL for a null and for an absent member alike; API.md
 * refuses null for an optional field rather than read it as absent). */
const char *http_json_null_member(struct json_object *obj);
/* A command's body: empty means {}; else one object whose keys are all in
 * `allowed` (NULL-terminated) and none null. NULL and *obj_out set, or the
 * problem's detail (in the arena when it names a key) and *obj_out NULL. */
const char *http_json_body_object(const char *body, size_t len, const char *const *allowed,
                                  struct wx_arena *arena, struct json_object **obj_out);

enum http_field {
    HTTP_FIELD_OPTIONAL,
    HTTP_FIELD_REQUIRED,
};

/* A string field of at most max_bytes, without NUL; absent gives NULL when
 * optional. JSON null is refused by every reader, optional or not. */
bool http_json_string(struct json_object *obj, const char *key, enum http_field need,
                      size_t max_bytes, struct wx_arena *arena, const char **out);
/* An id field (API.md id rules, base/id.h). */
bool http_json_id(struct json_object *obj, const char *key, enum http_field need,
                  struct wx_arena *arena, const char **out);
/* A money amount as decimal text: a JSON number or a string holding a
 * decimal, non-negative, no exponent, at most four fraction digits (the
 * most any currency has; base/money.h). The decider applies the currency's
 * own digits. */
bool http_json_decimal(struct json_object *obj, const char *key, enum http_field need,
                      struct wx_arena *arena, const char **out);
/* A non-negative integer field; -1 when absent and optional. */
bool http_json_version(struct json_object *obj, const char *key, int64_t *out);

#endif
