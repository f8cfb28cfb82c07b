/* Client-input validation and route matching (src/http/headers.c, route.c,
 * json.c), as tables of accepted and refused inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "http/http.h"
#include "http/json.h"

static void test_headers(void **state)
{
    (void)state;
    assert_true(http_idem_key_ok("abc-123"));
    assert_false(http_idem_key_ok(""));
    assert_false(http_idem_key_ok("has space"));
    char long_key[300];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_false(http_idem_key_ok(long_key));
    long_key[255] = '\0';
    assert_true(http_idem_key_ok(long_key));

    assert_true(http_traceparent_ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    assert_false(http_traceparent_ok("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
    assert_false(http_traceparent_ok("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
    assert_false(http_traceparent_ok("garbage"));

    assert_true(http_content_type_json("application/json"));
    assert_true(http_content_type_json("Application/JSON; charset=utf-8"));
    assert_false(http_content_type_json("application/jsonx"));
    assert_false(http_content_type_json("text/plain"));
    static const char *const ok[] = {"application/json;charset=UTF-8",
                                     "application/json ; charset=\"utf-8\" ; v=1",
                                     "application/json;", "application/json; x=y;;"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(http_content_type_json(ok[i]));
    static const char *const refused[] = {
        "application/json; charset=latin1", "application/json; charset=utf-16",
        "application/json; charset=\"utf-8", "application/json; charset",
        "application/json; =x", "application/json x", "application/json; charset=utf-8x",
        "application/json; charset=utf-8 x"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (http_content_type_json(refused[i]))
            fail_msg("accepted Content-Type %s", refused[i]);

    int64_t v;
    assert_true(http_parse_i64("50", 1, 1000, &v) && v == 50);
    assert_false(http_parse_i64("0", 1, 1000, &v));
    assert_false(http_parse_i64("1001", 1, 1000, &v));
    assert_false(http_parse_i64("99999999999999999999", 1, INT64_MAX, &v));
    assert_false(http_parse_i64("1x", 1, 1000, &v));
    assert_false(http_parse_i64("", 1, 1000, &v));
}

static void noop(struct http_request *req)
{
    (void)req;
}

static const struct http_route routes[] = {
    {"GET", "/wallets/{id}", noop, 0, NULL, HTTP_ACCESS_QUERY},
    {"POST", "/wallets/{id}/credit", noop, 10, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/wallets", noop, 10, NULL, HTTP_ACCESS_COMMAND},
};

static void test_routes(void **state)
{
    (void)state;
    struct wx_arena arena;
    wx_arena_init(&arena);
    const struct http_route *r;
    const char *params[HTTP_PATH_PARAMS_MAX];
    size_t n = 0;
    char allow[64];
    assert_int_equal(http_route_match(routes, 3, "POST", "/wallets/w-1/credit", &arena, &r,
                                      params, &n, allow, sizeof(allow)),
                     HTTP_MATCH_OK);
    assert_ptr_equal(r, &routes[1]);
    assert_int_equal(n, 1);
    assert_string_equal(params[0], "w-1");
    assert_int_equal(http_route_match(routes, 3, "DELETE", "/wallets/w", &arena, &r, params, &n,
                                      allow, sizeof(allow)),
                     HTTP_MATCH_NO_METHOD);
    assert_string_equal(allow, "GET, HEAD");
    /* HEAD is answered by the GET route. */
    assert_int_equal(http_route_match(routes, 3, "HEAD", "/wallets/w", &arena, &r, params, &n,
                                      allow, sizeof(allow)),
                     HTTP_MATCH_OK);
    assert_ptr_equal(r, &routes[0]);
    /* Parameters are decoded after the split: an encoded slash stays in
     * its segment. Literal segments match only their raw bytes. */
    assert_int_equal(http_route_match(routes, 3, "POST", "/wallets/w%2F1%2fcredit/credit", &arena,
                                      &r, params, &n, allow, sizeof(allow)),
                     HTTP_MATCH_OK);
    assert_string_equal(params[0], "w/1/credit");
    assert_int_equal(http_route_match(routes, 3, "GET", "/wallets/a%00b", &arena, &r, params, &n,
                                      allow, sizeof(allow)),
                     HTTP_MATCH_BAD_PARAM);
    static const char *const missing[] = {"/wallets/", "/wallets//credit", "/wallet", "/",
                                          "/wallets/w/credit/x", "", "/wallets/w/",
                                          "/wallets%2Fw", "/%77allets/w", "/wallets/w%2Fcredit/",
                                          "%2Fwallets/w", "/wallets%2F"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
        assert_int_equal(http_route_match(routes, 3, "GET", missing[i], &arena, &r, params, &n,
                                          allow, sizeof(allow)),
                         HTTP_MATCH_NO_ROUTE);
    wx_arena_release(&arena);
}

/* Each body is refused, with a detail that contains want (any detail when
 * want is NULL). */
static void refuse_all(const char *const *bodies, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++) {
        struct json_object *o = NULL;
        const char *detail = NULL;
        if (http_json_parse_object(bodies[i], strlen(bodies[i]), &o, &detail))
            fail_msg("accepted %s", bodies[i]);
        assert_non_null(detail);
        if (want != NULL && strstr(detail, want) == NULL)
            fail_msg("%s: detail \"%s\" lacks \"%s\"", bodies[i], detail, want);
    }
}

static void test_json_bodies(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "{", "[1]", "\"x\"", "{} x", "{\"a\":1,}", "{'a':1}", "{\"a\":\xff}",
        "{\"a\":\"\xc3\x28\"}", "{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}", "null",
    };
    refuse_all(bad, sizeof(bad) / sizeof(bad[0]), NULL);
    /* What json-c's own UTF-8 check lets through (issue 18). */
    static const char *const not_utf8[] = {
        "{\"d\":\"\xc0\xaf\"}",         "{\"d\":\"\xc1\xbf\"}",
        "{\"d\":\"\xe0\x80\xaf\"}",     "{\"d\":\"\xf0\x80\x80\xaf\"}",
        "{\"d\":\"\xed\xa0\x80\"}",     "{\"d\":\"\xf4\x90\x80\x80\"}",
        "{\"d\":\"\xf5\x80\x80\x80\"}", "{\"d\":1}\xc0",
    };
    refuse_all(not_utf8, sizeof(not_utf8) / sizeof(not_utf8[0]), "UTF-8");
    static const char *const raw_controls[] = {"{\"d\":\"a\tb\"}", "{\"d\":\"a\nb\"}",
                                               "{\"d\":\"\x01\"}", "{\"d\x1f\":1}"};
    refuse_all(raw_controls, sizeof(raw_controls) / sizeof(raw_controls[0]), "control");
    const char nul_body[] = "{\"a\":1}\0";
    struct json_object *o = NULL;
    const char *detail;
    assert_false(http_json_parse_object(nul_body, sizeof(nul_body) - 1, &o, &detail));

    struct wx_arena arena;
    wx_arena_init(&arena);
    const char body[] = "{\"n\":100.50,\"s\":\"0.3\",\"e\":1e5,\"neg\":-1,\"big\":"
                        "99999999999999999999999,\"z\":\"a\\u0000b\",\"b\":true} ";
    assert_true(http_json_parse_object(body, strlen(body), &o, &detail));
    const char *text;
    assert_true(http_json_decimal(o, "n", HTTP_FIELD_REQUIRED, &arena, &text));
    assert_string_equal(text, "100.50");
    assert_true(http_json_decimal(o, "s", HTTP_FIELD_REQUIRED, &arena, &text));
    assert_string_equal(text, "0.3");
    assert_false(http_json_decimal(o, "e", HTTP_FIELD_REQUIRED, &arena, &text));
    assert_false(http_json_decimal(o, "neg", HTTP_FIELD_REQUIRED, &arena, &text));
    assert_false(http_json_decimal(o, "b", HTTP_FIELD_REQUIRED, &arena, &text));
    assert_false(http_json_decimal(o, "missing", HTTP_FIELD_REQUIRED, &arena, &text));
    assert_true(http_json_decimal(o, "missing", HTTP_FIELD_OPTIONAL, &arena, &text));
    assert_null(text);
    json_object_put(o);
    /* null is no value of any field's type, optional or not (API.md). */
    const char nulls[] = "{\"a\":null,\"s\":null,\"v\":null}";
    assert_true(http_json_parse_object(nulls, strlen(nulls), &o, &detail));
    int64_t version;
    assert_false(http_json_decimal(o, "a", HTTP_FIELD_OPTIONAL, &arena, &text));
    assert_false(http_json_string(o, "s", HTTP_FIELD_OPTIONAL, 10, &arena, &text));
    assert_false(http_json_id(o, "s", HTTP_FIELD_OPTIONAL, &arena, &text));
    assert_false(http_json_version(o, "v", &version));
    assert_true(http_json_version(o, "missing", &version));
    assert_int_equal(version, -1);
    json_object_put(o);
    assert_true(http_json_parse_object(body, strlen(body), &o, &detail));
    /* Syntactically an amount; the decider finds it too large for int64. */
    assert_true(http_json_decimal(o, "big", HTTP_FIELD_REQUIRED, &arena, &text));
    assert_false(http_json_string(o, "z", HTTP_FIELD_REQUIRED, 100, &arena, &text));
    const char *bad_key;
    static const char *const allowed[] = {"n", "s", NULL};
    assert_false(http_json_only_keys(o, allowed, &bad_key));
    json_object_put(o);
    wx_arena_release(&arena);
}

/* Surrogate escapes: a lone half is refused, and every pair comes out as
 * its own code point, including those json-c 0.16 alone turns into U+FFFD
 * (U+1D800-U+1DFFF and the like). */
static void test_json_surrogates(void **state)
{
    (void)state;
    static const char *const lone[] = {
        "{\"s\":\"\\ud800\"}",        "{\"s\":\"\\udc00\"}",
        "{\"s\":\"x\\ud800\\u0041\"}", "{\"s\":\"\\ud800\\ud800\"}",
        "{\"\\udfff\":1}",             "{\"s\":\"\\ude0b\\ud836\"}",
    };
    refuse_all(lone, sizeof(lone) / sizeof(lone[0]), "surrogate");
    static const struct {
        const char *body, *want;
    } good[] = {
        {"{\"s\":\"\\ud836\\ude0b\"}", "\xf0\x9d\xa8\x8b"}, /* U+1DA0B */
        {"{\"s\":\"\\uD837\\uDC00\"}", "\xf0\x9d\xb0\x80"}, /* U+1DC00 */
        {"{\"s\":\"a\\ud83d\\ude00b\\\"\\ud876\\udc00\"}",
         "a\xf0\x9f\x98\x80" "b\"\xf0\xad\xa0\x80"},
        {"{\"s\":\"\\udbff\\udfff\"}", "\xf4\x8f\xbf\xbf"},
        /* An escaped backslash, then plain text: no escape at all. */
        {"{\"s\":\"\\\\ud800\", \"t\":\"\\ud836\\ude0b\"}", "\\ud800"},
    };
    struct wx_arena arena;
    wx_arena_init(&arena);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct json_object *o = NULL;
        const char *detail = NULL, *text = NULL;
        if (!http_json_parse_object(good[i].body, strlen(good[i].body), &o, &detail))
            fail_msg("refused %s: %s", good[i].body, detail);
        assert_true(http_json_string(o, "s", HTTP_FIELD_REQUIRED, 100, &arena, &text));
        assert_string_equal(text, good[i].want);
        json_object_put(o);
    }
    /* A key with a pair, and the pair's text ending the body early. */
    struct json_object *o = NULL;
    const char *detail = NULL, *text = NULL;
    const char key_body[] = "{\"\\ud836\\ude0b\":\"v\"}";
    assert_true(http_json_parse_object(key_body, strlen(key_body), &o, &detail));
    assert_true(http_json_string(o, "\xf0\x9d\xa8\x8b", HTTP_FIELD_REQUIRED, 100, &arena, &text));
    json_object_put(o);
    const char cut[] = "{\"s\":\"\\ud836\\ude0";
    assert_false(http_json_parse_object(cut, strlen(cut), &o, &detail));
    wx_arena_release(&arena);
}

/* One key twice in one object is refused, however it is spelled; the same
 * key in different objects is not a repeat. */
static void test_json_duplicate_keys(void **state)
{
    (void)state;
    static const char *const twice[] = {
        "{\"a\":1,\"a\":2}",
        "{\"a\":1 , \"b\":2,\"a\" :1}",
        "{\"amount\":\"1.00\",\"\\u0061mount\":\"1000.00\"}",
        "{\"o\":{\"k\":1,\"k\":1}}",
        "{\"l\":[{\"k\":1},{\"k\":1,\"k\":2}]}",
        "{\"\\ud836\\ude0b\":1,\"\xf0\x9d\xa8\x8b\":2}",
    };
    refuse_all(twice, sizeof(twice) / sizeof(twice[0]), "more than once");
    static const char *const once[] = {
        "{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}],\"c\":{}}",
        "{\"a\":\"x\\\":y\",\"b\":\"a:\",\"c\":[\"a\",\"a\"]}",
        "{\"A\":1,\"a\":2,\"a \":3}",
    };
    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
        struct json_object *o = NULL;
        const char *detail = NULL;
        if (!http_json_parse_object(once[i], strlen(once[i]), &o, &detail))
            fail_msg("refused %s: %s", once[i], detail);
        json_object_put(o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_json_bodies),
        cmocka_unit_test(test_json_surrogates),
        cmocka_unit_test(test_json_duplicate_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
