/* libFuzzer: the flat JSON reader against the request body reader. Whatever
 * base/jflat accepts, http_json_parse_object (json-c underneath) must read
 * as the same object: the same keys, and each value of the same type and
 * content. (jflat may refuse more.) Each string it reads must also come
 * back byte for byte through the encoder (wx_buf_json_strn) and jflat
 * again. */
#include <assert.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/jflat.h"
#include "http/json.h"

static void string_round_trip(const struct wx_jflat_field *f)
{
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_adds(&b, "{\"k\":");
    wx_buf_json_strn(&b, f->str, f->str_len);
    wx_buf_addc(&b, '}');
    assert(wx_buf_ok(&b));
    char *out = malloc(b.len + 1);
    assert(out != NULL);
    struct wx_jflat j;
    assert(wx_jflat_parse(b.data, b.len, out, b.len + 1, &j) == 0);
    assert(j.len == 1 && j.fields[0].type == WX_JFLAT_STRING);
    assert(j.fields[0].str_len == f->str_len);
    assert(memcmp(j.fields[0].str, f->str, f->str_len) == 0);
    free(out);
    wx_buf_free(&b);
}

static void same_value(const struct wx_jflat_field *f, struct json_object *v)
{
    switch (f->type) {
    case WX_JFLAT_NULL:
        assert(v == NULL);
        break;
    case WX_JFLAT_BOOL:
        assert(json_object_is_type(v, json_type_boolean));
        assert((bool)json_object_get_boolean(v) == f->b);
        break;
    case WX_JFLAT_INT:
        assert(json_object_is_type(v, json_type_int));
        assert(json_object_get_int64(v) == f->i64);
        break;
    case WX_JFLAT_STRING:
        assert(json_object_is_type(v, json_type_string));
        assert((size_t)json_object_get_string_len(v) == f->str_len);
        assert(memcmp(json_object_get_string(v), f->str, f->str_len) == 0);
        string_round_trip(f);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    assert(buf != NULL);
    struct wx_jflat j;
    if (wx_jflat_parse((const char *)data, size, buf, size + 1, &j) != 0) {
        free(buf);
        return 0;
    }
    struct json_object *o = NULL;
    const char *detail;
    if (!http_json_parse_object((const char *)data, size, &o, &detail)) {
        /* The body reader refuses bytes that are not UTF-8 and keys given
         * twice, which jflat reads (events are UTF-8 and written by us, each
         * key once, by construction). Plain json-c stands in for it then,
         * unless a \u escape could meet json-c 0.16's bug with surrogate
         * pairs, which http_json_parse_object works around. */
        if (memmem(data, size, "\\u", 2) != NULL) {
            for (size_t i = 0; i < j.len; i++)
                if (j.fields[i].type == WX_JFLAT_STRING)
                    string_round_trip(&j.fields[i]);
            free(buf);
            return 0;
        }
        struct json_tokener *tok = json_tokener_new();
        assert(tok != NULL);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
        json_tokener_free(tok);
    }
    assert(o != NULL && json_object_is_type(o, json_type_object));
    size_t distinct = 0;
    for (size_t i = 0; i < j.len; i++) {
        const struct wx_jflat_field *f = &j.fields[i];
        if (wx_jflat_get(&j, f->key) != f)
            continue; /* a later field of the same name wins, as in json-c */
        distinct++;
        struct json_object *v = NULL;
        assert(json_object_object_get_ex(o, f->key, &v));
        same_value(f, v);
    }
    assert((size_t)json_object_object_length(o) == distinct);
    json_object_put(o);
    free(buf);
    return 0;
}
