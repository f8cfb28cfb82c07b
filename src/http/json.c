/* Strict JSON request bodies; see json.h. */
#include "http/json.h"

#include <json-c/json.h>
#include <string.h>

#include "base/err.h"
#include "base/money.h"
#include "http/http.h"
#include "limits.h"

/* json-c's strict mode still takes 'single-quoted' strings, which are not
 * JSON; a ' outside a "..." string means such a string. */
static bool has_single_quoted_string(const char *body, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '\'') {
            return true;
        }
    }
    return false;
}

bool http_json_parse_object(const char *body, size_t len, struct json_object **obj_out,
                            const char **detail)
{
    if (len == 0) {
        *detail = "the request body is empty";
        return false;
    }
    if (memchr(body, '\0', len) != NULL) {
        *detail = "the request body contains a NUL byte";
        return false;
    }
    if (has_single_quoted_string(body, len)) {
        *detail = "the request body is not valid JSON";
        return false;
    }
    struct json_tokener *tok = json_tokener_new_ex(WX_JSON_DEPTH_MAX);
    if (tok == NULL) {
        *detail = "out of memory";
        return false;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (obj == NULL || jerr != json_tokener_success) {
        json_object_put(obj);
        *detail = jerr == json_tokener_error_depth ? "the JSON is nested too deeply"
                                                   : "the request body is not valid JSON";
        return false;
    }
    for (; end < len; end++) {
        char c = body[end];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            json_object_put(obj);
            *detail = "there is data after the JSON value";
            return false;
        }
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        *detail = "the request body must be a JSON object";
        return false;
    }
    *obj_out = obj;
    return true;
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

/* The field's value; NULL when absent or JSON null. */
static struct json_object *field(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

bool http_json_string(struct json_object *obj, const char *key, enum http_field need,
                      size_t max_bytes, struct wx_arena *arena, const char **out)
{
    struct json_object *v = field(obj, key);
    if (v == NULL) {
        *out = NULL;
        return need == HTTP_FIELD_OPTIONAL;
    }
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
    return *out == NULL ? need == HTTP_FIELD_OPTIONAL : http_id_ok(*out);
}

bool http_json_amount(struct json_object *obj, const char *key, enum http_field need,
                      struct wx_arena *arena, const char **out)
{
    struct json_object *v = field(obj, key);
    if (v == NULL) {
        *out = NULL;
        return need == HTTP_FIELD_OPTIONAL;
    }
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
     * minor units depends on the wallet's currency, which the decider knows. */
    int64_t minor;
    int err = wx_money_parse(text, len, 4, &minor);
    if (err != 0 && err != WX_ERR_OVERFLOW)
        return false;
    *out = wx_arena_strndup(arena, text, len);
    return *out != NULL;
}

bool http_json_version(struct json_object *obj, const char *key, int64_t *out)
{
    struct json_object *v = field(obj, key);
    if (v == NULL) {
        *out = -1;
        return true;
    }
    if (!json_object_is_type(v, json_type_int))
        return false;
    const char *text = json_object_get_string(v);
    return http_parse_i64(text, 0, INT64_MAX, out);
}
