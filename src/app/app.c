/*
 * The helpers every domain's routes share, and the composition of the
 * domains' routes, consumers and recovery checks; see app.h.
 */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/uuid.h"
#include "base/worker.h"
#include "proj/projector.h"
#include "store/store.h"

/* ---- composition ---- */

static size_t routes_len(const struct http_route *routes)
{
    size_t n = 0;
    while (routes != NULL && routes[n].method != NULL)
        n++;
    return n;
}

int wx_app_routes(const struct http_route *first, size_t first_len, struct http_route **out,
                  size_t *len_out)
{
    size_t n = first_len;
    for (size_t d = 0; d < es_domains_len(); d++)
        n += routes_len(es_domain_at(d)->routes);
    struct http_route *routes = calloc(n, sizeof(*routes));
    if (routes == NULL)
        return WX_ERR_NOMEM;
    memcpy(routes, first, first_len * sizeof(*routes));
    size_t at = first_len;
    for (size_t d = 0; d < es_domains_len(); d++) {
        size_t len = routes_len(es_domain_at(d)->routes);
        if (len > 0)
            memcpy(routes + at, es_domain_at(d)->routes, len * sizeof(*routes));
        at += len;
    }
    *out = routes;
    *len_out = n;
    return 0;
}

int wx_app_consumers(const struct es_consumer ***out, size_t *len_out)
{
    size_t n = 0;
    for (size_t d = 0; d < es_domains_len(); d++)
        for (const struct es_consumer *const *c = es_domain_at(d)->consumers; c && *c; c++)
            n++;
    if (n > WX_PROJECTOR_CONSUMERS_MAX)
        return WX_ERR_FULL;
    const struct es_consumer **list = calloc(n ? n : 1, sizeof(*list));
    if (list == NULL)
        return WX_ERR_NOMEM;
    size_t at = 0;
    for (size_t d = 0; d < es_domains_len(); d++)
        for (const struct es_consumer *const *c = es_domain_at(d)->consumers; c && *c; c++)
            list[at++] = *c;
    *out = list;
    *len_out = n;
    return 0;
}

/* ---- recovery ---- */

int wx_app_drift(struct es_projector *p, struct wx_buf *out, size_t *drifted_out)
{
    struct wx_buf items;
    wx_buf_init(&items);
    struct es_drift_report r = {.items = &items};
    int err = 0;
    for (size_t d = 0; d < es_domains_len() && !err; d++)
        if (es_domain_at(d)->drift != NULL)
            err = es_domain_at(d)->drift(p, &r);
    if (!err) {
        wx_buf_printf(out, "{\"checked\":%zu,\"driftedCount\":%zu,\"drifted\":[", r.checked,
                      r.drifted);
        wx_buf_add(out, items.data ? items.data : "", items.len);
        wx_buf_adds(out, "]}");
        if (!wx_buf_ok(out) || !wx_buf_ok(&items))
            err = WX_ERR_NOMEM;
        *drifted_out = r.drifted;
    }
    wx_buf_free(&items);
    return err;
}

int wx_app_verify(struct es_projector *p, struct wx_buf *out, bool *ok_out)
{
    struct wx_buf parts, all, one;
    wx_buf_init(&parts);
    wx_buf_init(&all);
    wx_buf_init(&one);
    size_t total = 0;
    int err = 0;
    for (size_t d = 0; d < es_domains_len() && !err; d++) {
        const struct es_domain *dom = es_domain_at(d);
        if (dom->verify == NULL)
            continue;
        wx_buf_addc(&parts, ',');
        wx_buf_json_str(&parts, dom->name);
        wx_buf_addc(&parts, ':');
        size_t n = 0;
        wx_buf_reset(&one);
        err = dom->verify(p, &parts, &one, &n);
        if (!err && n > 0) {
            if (total > 0)
                wx_buf_addc(&all, ',');
            wx_buf_add(&all, one.data, one.len);
            total += n;
        }
    }
    if (!err) {
        wx_buf_printf(out, "{\"ok\":%s,\"violations\":[", total == 0 ? "true" : "false");
        wx_buf_add(out, all.data ? all.data : "", all.len);
        wx_buf_addc(out, ']');
        wx_buf_add(out, parts.data ? parts.data : "", parts.len);
        wx_buf_addc(out, '}');
        if (!wx_buf_ok(out) || !wx_buf_ok(&parts) || !wx_buf_ok(&all))
            err = WX_ERR_NOMEM;
        *ok_out = total == 0;
    }
    wx_buf_free(&parts);
    wx_buf_free(&all);
    wx_buf_free(&one);
    return err;
}

/* ---- route helpers ---- */

void wx_submit_hooks(struct http_request *req, es_command_fn handle, void *payload,
                     void (*committed)(struct es_command *cmd),
                     void (*discarded)(struct es_command *cmd))
{
    struct es_command *cmd = wx_arena_alloc(&req->arena, sizeof(*cmd));
    if (cmd == NULL) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    cmd->handle = handle;
    cmd->payload = payload;
    cmd->committed = committed;
    cmd->discarded = discarded;
    const struct auth_principal *p = wx_principal(req);
    if (p != NULL) {
        cmd->principal = p;
        cmd->actor = p->subject;
        cmd->token_id = p->token_id;
    }
    http_submit(req, cmd);
}

void wx_submit_committed(struct http_request *req, es_command_fn handle, void *payload,
                         void (*committed)(struct es_command *cmd))
{
    wx_submit_hooks(req, handle, payload, committed, NULL);
}

void wx_submit(struct http_request *req, es_command_fn handle, void *payload)
{
    wx_submit_hooks(req, handle, payload, NULL, NULL);
}

const struct auth_principal *wx_principal(const struct http_request *req)
{
    return req->principal;
}

void wx_bad_request(struct http_request *req, const char *detail)
{
    http_reply_problem(req, ES_invalid_request, detail);
}

bool wx_id_param(struct http_request *req, size_t i, const char *what)
{
    if (i < req->params_len && wx_id_ok(req->params[i]))
        return true;
    char *msg = wx_arena_alloc(&req->arena, 96);
    if (msg != NULL)
        snprintf(msg, 96, "the %s id must be 1-64 characters of A-Z a-z 0-9 . _ : -", what);
    wx_bad_request(req, msg ? msg : "bad id");
    return false;
}

void wx_query_failed(struct http_request *req, int err, const struct es_outcome *not_found,
                     const char *detail)
{
    if (err == WX_ERR_NOT_FOUND)
        http_reply_problem(req, not_found, detail);
    else if (err == WX_ERR_BUSY)
        http_reply_problem(req, ES_projection_lagging, "the read side is catching up");
    else
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
}

struct read_watch {
    struct es_projector_watch w; /* first: the projector hands this back */
    struct http_request *req;
};

static void read_watch_reached(struct es_projector_watch *w)
{
    http_resume(((struct read_watch *)w)->req);
}

static enum http_watch read_side_watch(void *app_ptr, struct http_request *req, void *watch,
                                       const char *const *models, const char *token)
{
    const struct wx_app *app = app_ptr;
    struct read_watch *rw = watch;
    memset(rw, 0, sizeof(*rw));
    if (!es_position_parse(token, &rw->w.position))
        return HTTP_WATCH_BAD_TOKEN;
    rw->w.names = models;
    rw->w.reached = read_watch_reached;
    rw->req = req;
    bool reached;
    if (es_projector_watch(app->projector, &rw->w, &reached) != 0)
        return HTTP_WATCH_FULL;
    return reached ? HTTP_WATCH_READY : HTTP_WATCH_PARKED;
}

static bool read_side_unwatch(void *app_ptr, void *watch)
{
    const struct wx_app *app = app_ptr;
    return es_projector_unwatch(app->projector, &((struct read_watch *)watch)->w);
}

const struct http_read_side wx_read_side = {
    .watch_bytes = sizeof(struct read_watch),
    .watch = read_side_watch,
    .unwatch = read_side_unwatch,
};

struct off_thread {
    struct wx_job job;
    struct http_request *req;
    void (*work)(void *ctx);
    void (*answer)(struct http_request *req, void *ctx);
    void *ctx;
};

static void off_run(struct wx_job *job)
{
    struct off_thread *o = job->ctx;
    o->work(o->ctx);
}

static void off_done(struct wx_job *job)
{
    struct off_thread *o = job->ctx;
    http_resume(o->req); /* the request (and o, in its arena) is its thread's again */
}

static void off_resume(struct http_request *req)
{
    struct off_thread *o = req->park_ctx;
    if (!http_client_gone(req))
        o->answer(req, o->ctx);
}

/* A queued or running job cannot be withdrawn: its resume always comes. */
static bool off_cancel(struct http_request *req, bool timed_out)
{
    (void)req;
    (void)timed_out;
    return false;
}

static const struct http_park_ops off_park = {.resume = off_resume, .cancel = off_cancel};

void wx_off_thread(struct http_request *req, void (*work)(void *ctx),
                   void (*answer)(struct http_request *req, void *ctx), void *ctx)
{
    const struct wx_app *app = req->app;
    struct off_thread *o = wx_arena_alloc(&req->arena, sizeof(*o));
    if (o == NULL) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    *o = (struct off_thread){
        .job = {.run = off_run, .done = off_done, .ctx = o},
        .req = req,
        .work = work,
        .answer = answer,
        .ctx = ctx,
    };
    int err = wx_worker_submit(app->admin, &o->job);
    if (err) {
        http_reply_problem(req, err == WX_ERR_FULL ? ES_overloaded : ES_shutting_down,
                           "admin work is queued to its bound; try again");
        return;
    }
    /* The job may already be done, and the request resumed: a resume
     * waits on this thread's list until the handler has returned. */
    req->park_ctx = o;
    http_park(req, &off_park, 0);
}

struct off_json {
    const struct wx_app *app;
    const char *arg;
    int (*work)(const struct wx_app *app, const char *arg, struct wx_buf *out);
    int status;
    const struct es_outcome *not_found, *busy;
    const char *not_found_detail;
    int err;
    struct wx_buf out; /* malloc'd by the worker, freed by the answer */
};

static void off_json_work(void *ctx)
{
    struct off_json *j = ctx;
    wx_buf_init(&j->out);
    j->err = j->work(j->app, j->arg, &j->out);
    if (!j->err && !wx_buf_ok(&j->out))
        j->err = WX_ERR_NOMEM;
}

static void off_json_answer(struct http_request *req, void *ctx)
{
    struct off_json *j = ctx;
    if (j->err == WX_ERR_BUSY && j->busy != NULL)
        http_reply_problem(req, j->busy, NULL);
    else if (j->err)
        wx_query_failed(req, j->err, j->not_found, j->not_found_detail);
    else
        http_reply_buf(req, j->status, &j->out);
    wx_buf_free(&j->out);
}

void wx_off_thread_json(struct http_request *req,
                        int (*work)(const struct wx_app *app, const char *arg, struct wx_buf *out),
                        const char *arg, int status, const struct es_outcome *not_found,
                        const char *not_found_detail, const struct es_outcome *busy)
{
    struct off_json *j = wx_arena_alloc(&req->arena, sizeof(*j));
    if (j == NULL) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    *j = (struct off_json){.app = req->app,
                           .arg = arg,
                           .work = work,
                           .status = status,
                           .not_found = not_found,
                           .busy = busy,
                           .not_found_detail = not_found_detail};
    wx_off_thread(req, off_json_work, off_json_answer, j);
}

bool wx_page_limit(struct http_request *req, size_t *limit)
{
    const char *l = http_query(req, "limit");
    int64_t v = WX_PAGE_LIMIT_DEFAULT;
    if (l != NULL && !http_parse_i64(l, 1, WX_PAGE_LIMIT_MAX, &v)) {
        wx_bad_request(req, "limit must be an integer from 1 to 1000");
        return false;
    }
    *limit = (size_t)v;
    return true;
}

bool wx_page_versions(struct http_request *req, size_t *limit, int64_t *after_version)
{
    if (!wx_page_limit(req, limit))
        return false;
    *after_version = 0;
    const char *a = http_query(req, "after");
    if (a != NULL && (a[0] != 'v' || !http_parse_i64(a + 1, 0, INT64_MAX - 1, after_version))) {
        wx_bad_request(req, "after must be a cursor from a previous page");
        return false;
    }
    return true;
}

bool wx_page_ids(struct http_request *req, size_t *limit, const char **after_id)
{
    if (!wx_page_limit(req, limit))
        return false;
    const char *a = http_query(req, "after");
    if (a != NULL && (a[0] != 'i' || !wx_id_ok(a + 1))) {
        wx_bad_request(req, "after must be a cursor from a previous page");
        return false;
    }
    *after_id = a != NULL ? a + 1 : NULL;
    return true;
}

void wx_route_id_page(struct http_request *req, wx_id_page_query query)
{
    const struct wx_app *app = req->app;
    size_t limit;
    const char *after;
    if (!wx_page_ids(req, &limit, &after))
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = query(app->projector, after, limit, &b);
    if (err)
        wx_query_failed(req, err, ES_not_found, NULL);
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

bool wx_new_id(struct http_request *req, char **id_out)
{
    char *id = wx_arena_alloc(&req->arena, WX_UUID_STR_BYTES);
    if (id == NULL || wx_uuid7(wx_clock_now_ms(&wx_clock_system), id) != 0) {
        http_reply_problem(req, ES_internal_error, "no id could be generated");
        return false;
    }
    *id_out = id;
    return true;
}

bool wx_time_travel(struct http_request *req, struct es_fold_until *until, bool *asked)
{
    const char *at_version = http_query(req, "atVersion");
    const char *as_of = http_query(req, "asOf");
    *until = (struct es_fold_until){0, false, 0};
    *asked = at_version != NULL || as_of != NULL;
    if (at_version != NULL && !http_parse_i64(at_version, 1, INT64_MAX, &until->version_max)) {
        wx_bad_request(req, "atVersion must be a positive integer");
        return false;
    }
    if (as_of != NULL && !wx_time_parse(as_of, &until->occurred_max_ms)) {
        wx_bad_request(req, "asOf must be an RFC 3339 timestamp");
        return false;
    }
    until->by_time = as_of != NULL;
    return *asked;
}

bool wx_fold_as_of(struct http_request *req, const struct es_aggregate_type *type,
                   const char *stream_id, const struct es_fold_until *until, void *state,
                   int64_t *version_out, const struct es_outcome *not_found)
{
    const struct wx_app *app = req->app;
    int err = es_fold(app->store, type, stream_id, until, state, version_out);
    if (err) {
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
        return false;
    }
    if (*version_out == 0 || (until->version_max > 0 && *version_out < until->version_max)) {
        http_reply_problem(req, not_found, "it did not exist then");
        return false;
    }
    return true;
}

void wx_stream_id(const char *category, const char *id, char out[WX_STREAM_ID_BYTES_MAX + 1])
{
    snprintf(out, WX_STREAM_ID_BYTES_MAX + 1, "%s:%s", category, id);
}

struct events_page {
    struct wx_buf *b;
    struct wx_buf scratch;
    size_t count;
    size_t limit;
    int64_t last_version;
    bool more;
    int err;
};

static int page_event(void *arg, const struct es_event *stored)
{
    struct events_page *p = arg;
    /* A page ends at its count or its bytes, whichever comes first; one
     * more event was asked for, to know whether a next page exists. */
    if (p->count == p->limit || (p->count > 0 && p->b->len >= WX_PAGE_BYTES_MAX)) {
        p->more = true;
        return 1;
    }
    struct es_event ev;
    int err = es_upcast(stored, &ev, &p->scratch);
    if (err) {
        p->err = err;
        return 1;
    }
    if (p->count > 0)
        wx_buf_addc(p->b, ',');
    es_event_json(p->b, &ev);
    p->count++;
    p->last_version = ev.version;
    return 0;
}

void wx_route_stream_events(struct http_request *req, const char *stream_id,
                            const struct es_outcome *not_found, const char *detail)
{
    const struct wx_app *app = req->app;
    size_t limit;
    int64_t after;
    if (!wx_page_versions(req, &limit, &after))
        return;
    int64_t from = 1;
    const char *fv = http_query(req, "fromVersion");
    if (fv != NULL && !http_parse_i64(fv, 1, INT64_MAX - 1, &from)) {
        wx_bad_request(req, "fromVersion must be a positive integer");
        return;
    }
    if (after + 1 > from)
        from = after + 1;
    int64_t head;
    int err = es_store_stream_version(app->store, stream_id, &head);
    if (!err && head == 0) {
        http_reply_problem(req, not_found, detail);
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_adds(&b, "{\"data\":[");
    struct events_page p = {.b = &b, .limit = limit};
    wx_buf_init(&p.scratch);
    if (!err)
        err = es_store_read_stream(app->store, stream_id, from, limit + 1, page_event, &p);
    if (err == 1)
        err = p.err;
    wx_buf_free(&p.scratch);
    if (err) {
        wx_buf_free(&b);
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
        return;
    }
    wx_buf_adds(&b, "],\"nextCursor\":");
    if (p.more)
        wx_buf_printf(&b, "\"v%lld\"}", (long long)p.last_version);
    else
        wx_buf_adds(&b, "null}");
    http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}
