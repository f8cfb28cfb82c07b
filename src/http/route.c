/*
 * Static route table matching (Redis's command table, for paths), on the
 * path as it came, still percent-encoded: a pattern's literal segments
 * match the raw bytes, so "/admin%2Fprojections" or "/%61dmin/projections"
 * reach no route, and only a {param} segment is decoded, after the path was
 * split on its literal slashes. An encoded "/" is then a character of that
 * parameter (which the handler's validation refuses), never a separator.
 */
#include <stdio.h>
#include <string.h>

#include "http/http.h"
#include "http/wire.h"

/* Matches one pattern; params are written only on success, decoded.
 * HTTP_MATCH_BAD_PARAM when one decodes to a NUL. */
static enum http_match match_pattern(const char *pattern, const char *path,
                                     struct wx_arena *arena, const char **params,
                                     size_t *params_len)
{
    const char *pp = pattern, *sp = path;
    const char *found[HTTP_PATH_PARAMS_MAX];
    size_t found_len[HTTP_PATH_PARAMS_MAX];
    size_t n = 0;
    while (*pp != '\0' && *sp != '\0') {
        if (*pp == '{') {
            const char *close = strchr(pp, '}');
            if (close == NULL || n == HTTP_PATH_PARAMS_MAX)
                return HTTP_MATCH_NO_ROUTE;
            size_t len = strcspn(sp, "/");
            if (len == 0)
                return HTTP_MATCH_NO_ROUTE;
            found[n] = sp;
            found_len[n++] = len;
            pp = close + 1;
            sp += len;
            continue;
        }
        if (*pp != *sp)
            return HTTP_MATCH_NO_ROUTE;
        pp++;
        sp++;
    }
    if (*pp != '\0' || *sp != '\0')
        return HTTP_MATCH_NO_ROUTE;
    if (params != NULL) {
        for (size_t i = 0; i < n; i++) {
            char *p = wx_arena_strndup(arena, found[i], found_len[i]);
            if (p == NULL)
                return HTTP_MATCH_NO_ROUTE; /* out of memory: treat as unknown */
            if (!http_wire_unescape(p, false))
                return HTTP_MATCH_BAD_PARAM;
            params[i] = p;
        }
        *params_len = n;
    }
    return HTTP_MATCH_OK;
}

/* HEAD is answered wherever GET is (RFC 9110 §9.3.2), by the GET handler;
 * http_reply leaves the body out. */
static bool method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

enum http_match http_route_match(const struct http_route *routes, size_t routes_len,
                                 const char *method, const char *path, struct wx_arena *arena,
                                 const struct http_route **route_out, const char **params,
                                 size_t *params_len, char *allow, size_t allow_bytes)
{
    bool path_known = false;
    size_t allow_len = 0;
    if (allow_bytes > 0)
        allow[0] = '\0';
    for (size_t i = 0; i < routes_len; i++) {
        if (match_pattern(routes[i].pattern, path, NULL, NULL, NULL) != HTTP_MATCH_OK)
            continue;
        if (method_matches(routes[i].method, method)) {
            enum http_match m = match_pattern(routes[i].pattern, path, arena, params, params_len);
            if (m == HTTP_MATCH_OK)
                *route_out = &routes[i];
            return m;
        }
        path_known = true;
        bool get = strcmp(routes[i].method, "GET") == 0;
        int n = snprintf(allow + allow_len, allow_bytes - allow_len, "%s%s%s",
                         allow_len ? ", " : "", routes[i].method, get ? ", HEAD" : "");
        if (n > 0 && (size_t)n < allow_bytes - allow_len)
            allow_len += (size_t)n;
    }
    return path_known ? HTTP_MATCH_NO_METHOD : HTTP_MATCH_NO_ROUTE;
}
