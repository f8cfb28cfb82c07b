/*
 * Files routes: requests become typed files commands here (every rule that
 * needs no state) and go to the writer (files/commands.c), where the
 * caller's permissions are decided against the tree index. Queries read
 * the read model (files/query.c), which checks them on every item it
 * answers; the events route reads the log once the caller may read the
 * item.
 */
#include "files/routes.h"

#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "auth/auth.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/unicode.h"
#include "base/uuid.h"
#include "files/projections.h"
#include "http/http.h"

static void command_route(struct http_request *req, enum files_command_kind kind)
{
    bool create = kind == FILES_CMD_CREATE_FOLDER || kind == FILES_CMD_CREATE_FILE;
    const char *id = create ? NULL : req->params[0];
    const char *subject = kind == FILES_CMD_REVOKE ? req->params[1] : NULL;
    const char *permission = kind == FILES_CMD_REVOKE ? req->params[2] : NULL;
    struct files_job *job = wx_arena_alloc(&req->arena, sizeof(*job));
    const struct es_outcome *outcome = ES_internal_error;
    const char *detail = "out of memory";
    if (job == NULL || !files_command_parse(kind, id, subject, permission, req->body, req->body_len,
                                            &req->arena, &job->c, &outcome, &detail)) {
        http_reply_problem(req, outcome, detail);
        return;
    }
    if (create && job->c->item_id == NULL) {
        char *fresh = wx_arena_alloc(&req->arena, WX_UUID_STR_BYTES);
        if (fresh == NULL || wx_uuid7(wx_clock_now_ms(&wx_clock_system), fresh) != 0) {
            http_reply_problem(req, ES_internal_error, "no id could be generated");
            return;
        }
        job->c->item_id = fresh;
        job->c->item_id_generated = true;
    }
    job->staged = false;
    wx_submit_hooks(req, files_run_command, job, files_job_committed, files_job_discarded);
}

#define COMMAND(fn, kind)                                                                          \
    static void fn(struct http_request *req)                                                       \
    {                                                                                              \
        command_route(req, kind);                                                                  \
    }

COMMAND(route_create_folder, FILES_CMD_CREATE_FOLDER)
COMMAND(route_create_file, FILES_CMD_CREATE_FILE)
COMMAND(route_rename, FILES_CMD_RENAME)
COMMAND(route_move, FILES_CMD_MOVE)
COMMAND(route_update, FILES_CMD_UPDATE)
COMMAND(route_trash, FILES_CMD_TRASH)
COMMAND(route_restore, FILES_CMD_RESTORE)
COMMAND(route_purge, FILES_CMD_PURGE)
COMMAND(route_grant, FILES_CMD_GRANT)
COMMAND(route_revoke, FILES_CMD_REVOKE)

/* ---- queries ---- */

static const char *const models[] = {"items", NULL};

static struct files_caller caller(const struct http_request *req)
{
    return files_caller_of(wx_principal(req));
}

static void answer(struct http_request *req, int err, struct wx_buf *b, const char *not_found)
{
    if (err == WX_ERR_TOO_LARGE)
        http_reply_problem(req, FILES_tree_too_large,
                           "more than 1000 items: read it a page of children at a time");
    else if (err)
        wx_query_failed(req, err, FILES_file_not_found, not_found);
    else
        http_reply_buf(req, 200, b);
    wx_buf_free(b);
}

static void route_get(struct http_request *req)
{
    if (!wx_id_param(req, 0, "item"))
        return;
    struct files_caller who = caller(req);
    struct wx_buf b;
    wx_buf_init(&b);
    int err =
        files_query_get(((const struct wx_app *)req->app)->projector, &who, req->params[0], &b);
    answer(req, err, &b, "no file or folder with this id");
}

/* ?limit= and ?after= (a cursor of the list's sort). */
static bool page_params(struct http_request *req, enum files_cursor kind, struct files_page *page)
{
    memset(page, 0, sizeof(*page));
    if (!wx_page_limit(req, &page->limit))
        return false;
    const char *after = http_query(req, "after");
    if (after != NULL && !files_cursor_parse(after, kind, page, &req->arena)) {
        wx_bad_request(req, "after must be a cursor from a previous page");
        return false;
    }
    return true;
}

static void route_children(struct http_request *req)
{
    if (!wx_id_param(req, 0, "folder"))
        return;
    const char *sort = http_query(req, "sort");
    enum files_sort by = FILES_SORT_NAME;
    if (sort != NULL && strcmp(sort, "updatedAt") == 0)
        by = FILES_SORT_UPDATED;
    else if (sort != NULL && strcmp(sort, "name") != 0) {
        wx_bad_request(req, "sort must be name or updatedAt");
        return;
    }
    struct files_page page;
    if (!page_params(req, FILES_CURSOR_BOTH, &page))
        return;
    struct files_caller who = caller(req);
    struct wx_buf b;
    wx_buf_init(&b);
    int err = files_query_children(((const struct wx_app *)req->app)->projector, &who,
                                   req->params[0], by, &page, &b);
    answer(req, err, &b, "no folder with this id");
}

static void route_tree(struct http_request *req)
{
    if (!wx_id_param(req, 0, "folder"))
        return;
    int64_t depth = 1;
    const char *d = http_query(req, "depth");
    if (d != NULL && !http_parse_i64(d, 1, FILES_TREE_QUERY_DEPTH_MAX, &depth)) {
        wx_bad_request(req, "depth must be an integer from 1 to 64");
        return;
    }
    struct files_caller who = caller(req);
    struct wx_buf b;
    wx_buf_init(&b);
    int err = files_query_tree(((const struct wx_app *)req->app)->projector, &who, req->params[0],
                               (int)depth, &b);
    answer(req, err, &b, "no folder with this id");
}

static void route_search(struct http_request *req)
{
    const char *under = http_query(req, "under");
    const char *prefix = http_query(req, "prefix");
    if (under == NULL || !wx_id_ok(under)) {
        wx_bad_request(req, "under is required: the id of the folder to search in");
        return;
    }
    if (prefix != NULL &&
        (strlen(prefix) > FILES_NAME_BYTES_MAX || !wx_utf8_valid(prefix, strlen(prefix)))) {
        wx_bad_request(req, "prefix must be at most 255 bytes of UTF-8");
        return;
    }
    struct files_page page;
    if (!page_params(req, FILES_CURSOR_NAME, &page))
        return;
    struct files_caller who = caller(req);
    struct wx_buf b;
    wx_buf_init(&b);
    int err = files_query_search(((const struct wx_app *)req->app)->projector, &who, under,
                                 prefix ? prefix : "", &page, &b);
    answer(req, err, &b, "no folder with this id");
}

/* A caller's list across the tree (shared with it, its trash): a page in
 * `order` from `query`. */
static void caller_page(struct http_request *req, enum files_cursor order,
                        int (*query)(struct es_projector *p, const struct files_caller *who,
                                     const struct files_page *page, struct wx_buf *out))
{
    struct files_page page;
    if (!page_params(req, order, &page))
        return;
    struct files_caller who = caller(req);
    struct wx_buf b;
    wx_buf_init(&b);
    int err = query(((const struct wx_app *)req->app)->projector, &who, &page, &b);
    answer(req, err, &b, NULL);
}

static void route_shared(struct http_request *req)
{
    caller_page(req, FILES_CURSOR_NAME, files_query_shared);
}

static void route_trash_list(struct http_request *req)
{
    caller_page(req, FILES_CURSOR_TIME, files_query_trash);
}

/* An item's events to whoever may read it; an admin or a reader sees
 * every stream's, purged items' included. */
static void route_events(struct http_request *req)
{
    if (!wx_id_param(req, 0, "item"))
        return;
    const char *id = req->params[0];
    if (!auth_sees_all(wx_principal(req))) {
        struct files_caller who = caller(req);
        bool readable = false;
        int err =
            files_query_readable(((const struct wx_app *)req->app)->projector, &who, id, &readable);
        if (err || !readable) {
            wx_query_failed(req, err ? err : WX_ERR_NOT_FOUND, FILES_file_not_found,
                            "no file or folder with this id");
            return;
        }
    }
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    files_stream_id(id, stream);
    wx_route_stream_events(req, stream, FILES_file_not_found, "no file or folder with this id");
}

/* On the admin worker: the rebuild waits for the projector thread and
 * reads the item's stream. */
static int rebuild_item(const struct wx_app *app, const char *id, struct wx_buf *out)
{
    int err = files_rebuild_one(app->projector, id);
    struct files_caller admin = {FILES_ROLE_ADMIN, NULL};
    /* A purged item is rebuilt as absent: 404 after the rebuild too. */
    return err ? err : files_query_get(app->projector, &admin, id, out);
}

static void route_admin_rebuild(struct http_request *req)
{
    if (!wx_id_param(req, 0, "item"))
        return;
    wx_off_thread_json(req, rebuild_item, req->params[0], 200, FILES_file_not_found,
                       "no file or folder with this id", NULL);
}

const struct http_route files_routes[] = {
    {"POST", "/folders", route_create_folder, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"GET", "/folders/{id}/children", route_children, 0, models, HTTP_ACCESS_QUERY},
    {"GET", "/folders/{id}/tree", route_tree, 0, models, HTTP_ACCESS_QUERY},
    {"POST", "/files", route_create_file, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"GET", "/items", route_search, 0, models, HTTP_ACCESS_QUERY},
    {"GET", "/items/{id}", route_get, 0, models, HTTP_ACCESS_QUERY},
    {"PATCH", "/items/{id}", route_update, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"DELETE", "/items/{id}", route_purge, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"GET", "/items/{id}/events", route_events, 0, models, HTTP_ACCESS_QUERY},
    {"POST", "/items/{id}/rename", route_rename, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/items/{id}/move", route_move, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/items/{id}/trash", route_trash, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/items/{id}/restore", route_restore, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"POST", "/items/{id}/grants", route_grant, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_COMMAND},
    {"DELETE", "/items/{id}/grants/{subject}/{permission}", route_revoke, 0, NULL,
     HTTP_ACCESS_COMMAND},
    {"GET", "/shared-with-me", route_shared, 0, models, HTTP_ACCESS_QUERY},
    {"GET", "/trash", route_trash_list, 0, models, HTTP_ACCESS_QUERY},
    {"POST", "/admin/items/{id}/rebuild", route_admin_rebuild, 0, NULL, HTTP_ACCESS_ADMIN},
    {NULL, NULL, NULL, 0, NULL, HTTP_ACCESS_ADMIN},
};
