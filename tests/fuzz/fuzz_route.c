/* libFuzzer: route matching on any method and path against the real route
 * table; a match's parameters are non-empty, decoded segments, never longer
 * than the path. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "wallet/routes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    const char *method = (size > 0 && data[0] & 1) ? "POST" : "GET";
    struct wx_arena arena;
    wx_arena_init(&arena);
    const struct http_route *route = NULL;
    const char *params[HTTP_PATH_PARAMS_MAX];
    size_t n = 0;
    char allow[128];
    size_t routes_len = 0;
    while (wallet_routes[routes_len].method != NULL)
        routes_len++;
    enum http_match m = http_route_match(wallet_routes, routes_len, method, text, &arena,
                                         &route, params, &n, allow, sizeof(allow));
    if (m == HTTP_MATCH_OK) {
        assert(route != NULL && strcmp(route->method, method) == 0);
        for (size_t i = 0; i < n; i++)
            assert(params[i][0] != '\0' && strlen(params[i]) <= size);
    } else if (m == HTTP_MATCH_NO_METHOD) {
        assert(allow[0] != '\0');
    }
    wx_arena_release(&arena);
    free(text);
    return 0;
}
