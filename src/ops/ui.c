/*
 * GET /ui and /ui/{asset}: the dashboard, served from the files built into
 * the binary (ops/assets.h). The page is static and holds no secret: it
 * asks the operator for a token and calls the API with it from the
 * browser, so these routes need none (API.md, Identity).
 *
 * The page handles bearer tokens, so it is served with a policy that lets
 * it run only its own script and style and talk only to this server:
 * nothing injected into it could load code or send a token elsewhere, and
 * no other site may frame it.
 */
#include <string.h>

#include "ops/assets.h"
#include "ops/ops.h"

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

static const struct ops_asset *find(const char *name)
{
    for (size_t i = 0; i < wallex_ui_assets_len; i++)
        if (strcmp(wallex_ui_assets[i].name, name) == 0)
            return &wallex_ui_assets[i];
    return NULL;
}

static void serve(struct http_request *req, const struct ops_asset *a)
{
    http_add_header(req, "Content-Type", a->content_type);
    /* Small files, asked again at each load: a new build is seen at once. */
    http_add_header(req, "Cache-Control", "no-cache");
    http_add_header(req, "X-Content-Type-Options", "nosniff");
    http_add_header(req, "Referrer-Policy", "no-referrer");
    http_add_header(req, "Content-Security-Policy", csp);
    http_reply(req, 200, (const char *)a->data, a->len);
}

void ops_route_ui(struct http_request *req)
{
    const struct ops_asset *a = find("index.html");
    if (a == NULL) {
        http_reply_problem(req, ES_not_found, "this build has no dashboard");
        return;
    }
    serve(req, a);
}

void ops_route_ui_asset(struct http_request *req)
{
    const struct ops_asset *a = find(req->params[0]);
    if (a == NULL) {
        http_reply_problem(req, ES_not_found, "the dashboard has no such file");
        return;
    }
    serve(req, a);
}
