/*
 * The token routes of API.md, admin only: POST /admin/tokens issues one
 * (its text is in that answer and nowhere else), GET /admin/tokens lists
 * them without secrets, DELETE /admin/tokens/{tokenId} revokes one.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "auth/service.h"
#include "auth/token.h"
#include "base/clock.h"
#include "base/id.h"
#include "http/json.h"

static struct auth_table *node_table(struct http_request *req)
{
    const struct wx_app *app = req->app;
    return app->auth != NULL ? auth_service_table(app->auth) : NULL;
}

/* {role, subject, expiresAt?} into c; NULL, or why not. */
static const char *parse_issue(struct http_request *req, struct token_command *c)
{
    static const char *const keys[] = {"role", "subject", "expiresAt", NULL};
    struct json_object *obj;
    const char *detail = NULL, *bad_key, *role = NULL, *expires = NULL;
    if (!http_json_parse_object(req->body, req->body_len, &obj, &detail))
        return detail;
    if (!http_json_only_keys(obj, keys, &bad_key))
        detail = "only role, subject and expiresAt are allowed";
    else if (!http_json_string(obj, "role", HTTP_FIELD_REQUIRED, 16, &req->arena, &role) ||
             !auth_role_parse(role, &c->role))
        detail = "role is required: admin, user or reader";
    else if (!http_json_id(obj, "subject", HTTP_FIELD_REQUIRED, &req->arena, &c->subject))
        detail = "subject is required: 1-64 characters of A-Z a-z 0-9 . _ : -";
    else if (!http_json_string(obj, "expiresAt", HTTP_FIELD_OPTIONAL, WX_RFC3339_BYTES + 16,
                               &req->arena, &expires) ||
             (expires != NULL && !wx_time_parse(expires, &c->expires_at_ms)))
        detail = "expiresAt must be an RFC 3339 timestamp";
    else if (expires != NULL && c->expires_at_ms <= wx_clock_now_ms(&wx_clock_system))
        detail = "expiresAt must be in the future";
    json_object_put(obj);
    return detail;
}

static void route_issue(struct http_request *req)
{
    struct token_command *c = wx_arena_alloc(&req->arena, sizeof(*c));
    char *id = wx_arena_alloc(&req->arena, WX_UUID_STR_BYTES);
    char *token = wx_arena_alloc(&req->arena, AUTH_TOKEN_BYTES + 1);
    if (c == NULL || id == NULL || token == NULL) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    c->kind = TOKEN_CMD_ISSUE;
    const char *detail = parse_issue(req, c);
    if (detail != NULL) {
        wx_bad_request(req, detail);
        return;
    }
    c->table = node_table(req);
    if (c->table != NULL && auth_table_full(c->table)) {
        http_reply_problem(req, AUTH_too_many_tokens, "revoke tokens nobody uses");
        return;
    }
    if (auth_token_new(wx_clock_now_ms(&wx_clock_system), id, token, c->hash) != 0) {
        http_reply_problem(req, ES_internal_error, "no randomness for a token");
        return;
    }
    c->token_id = id;
    c->token = token;
    wx_submit_committed(req, token_run_command, c, token_committed);
}

static void route_revoke(struct http_request *req)
{
    if (!wx_id_param(req, 0, "token"))
        return;
    struct token_command *c = wx_arena_alloc(&req->arena, sizeof(*c));
    if (c == NULL) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    c->kind = TOKEN_CMD_REVOKE;
    c->token_id = req->params[0];
    c->table = node_table(req);
    wx_submit_committed(req, token_run_command, c, token_committed);
}

static void route_list(struct http_request *req)
{
    const struct wx_app *app = req->app;
    size_t limit;
    if (!wx_page_limit(req, &limit))
        return;
    const char *after = http_query(req, "after");
    if (after != NULL && (after[0] != 'i' || !wx_id_ok(after + 1))) {
        wx_bad_request(req, "after must be a cursor from a previous page");
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    int err = token_query_list(app->projector, after ? after + 1 : NULL, limit, &b);
    if (err)
        wx_query_failed(req, err, ES_not_found, NULL);
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

static const char *const models[] = {"tokens", NULL};

const struct http_route token_routes[] = {
    {"POST", "/admin/tokens", route_issue, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_ADMIN},
    {"GET", "/admin/tokens", route_list, 0, models, HTTP_ACCESS_ADMIN},
    {"DELETE", "/admin/tokens/{tokenId}", route_revoke, 0, NULL, HTTP_ACCESS_ADMIN},
    {NULL, NULL, NULL, 0, NULL, HTTP_ACCESS_ADMIN},
};
