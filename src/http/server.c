/*
 * HTTP requests: what handlers see of one (path parameters, query, headers,
 * body), the answers they give, routing and the checks every request goes
 * through, and the metrics. Sockets and threads are conn.c's.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/fault.h"
#include "base/uuid.h"
#include "es/writer.h"
#include "http/http.h"
#include "http/internal.h"
#include "limits.h"
#include "obs/log.h"
#include "obs/metrics.h"

/* The statuses we answer with; anything else is counted as "other". */
static const int metric_statuses[] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 408,
                                      409, 413, 414, 415, 422, 429, 431, 500, 501, 503};
#define STATUS_SLOTS (sizeof(metric_statuses) / sizeof(metric_statuses[0]) + 1)

struct route_metrics {
    atomic_uint_fast64_t requests[STATUS_SLOTS];
    struct wx_hist latency_us[STATUS_SLOTS];
    /* The largest answer body the route has given: what its next answer
     * may cost, for the unsent-answer budget before the handler runs. */
    atomic_size_t answer_bytes_max;
};

static bool parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host))
        return false;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    int64_t port;
    if (!http_parse_i64(colon + 1, 0, 65535, &port))
        return false;
    memset(ss, 0, sizeof(*ss));
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *v6 = false;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    return inet_pton(AF_INET, host, &a->sin_addr) == 1;
}

/* ---- what handlers see ---- */

const char *http_query(struct http_request *req, const char *name)
{
    const char *q = req->wire.query;
    while (*q != '\0') {
        size_t n = strcspn(q, "&");
        char *pair = wx_arena_strndup(&req->arena, q, n);
        q += n;
        if (*q == '&')
            q++;
        if (pair == NULL)
            return NULL;
        char *eq = strchr(pair, '=');
        char *value = "";
        if (eq != NULL) {
            *eq = '\0';
            value = eq + 1;
        }
        /* A parameter with an escaped NUL is no parameter of ours. */
        if (http_wire_unescape(pair, true) && strcmp(pair, name) == 0)
            return http_wire_unescape(value, true) ? value : NULL;
    }
    return NULL;
}

const char *http_header(struct http_request *req, const char *name)
{
    return http_wire_header(&req->wire, name);
}

void http_add_header(struct http_request *req, const char *name, const char *value)
{
    assert(req->headers_len < HTTP_EXTRA_HEADERS_MAX);
    req->headers[req->headers_len++] = (struct http_header){name, value};
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* RFC 9110 §6.6.1: an origin server with a clock sends Date; one format a
 * second per thread. */
static const char *http_date(struct http_thread *t)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != t->date_s) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(t->date, sizeof(t->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        t->date_s = ts.tv_sec;
    }
    return t->date;
}

/* A large answer to a GET that would take this thread's unsent answers
 * (clients not reading theirs) past its share of the server's budget:
 * refused rather than buffered, so slow readers cannot grow memory without
 * bound. The client may retry. A thread with nothing unsent always sends
 * one, however large; small answers (/healthz, one resource, any command's)
 * always go out. */
static bool over_budget(struct http_request *req, size_t body_len)
{
    struct http_thread *t = req->conn->thread;
    return body_len > WX_HTTP_OUT_SMALL_BYTES && t->out_bytes > 0 &&
           t->out_bytes + body_len > t->out_budget && strcmp(req->method, "GET") == 0;
}

static struct route_metrics *route_metrics(struct http_request *req)
{
    struct http_server *srv = req->server;
    return &srv->metrics[req->route ? (size_t)(req->route - srv->routes) : srv->routes_len];
}

static void refuse_over_budget(struct http_request *req)
{
    atomic_fetch_add_explicit(&req->server->refused_out, 1, memory_order_relaxed);
    req->headers_len = 0;
    http_reply_problem(req, ES_overloaded, "too many answers wait for slow clients");
}

void http_reply(struct http_request *req, int status, const char *body, size_t body_len)
{
    assert(req->state != REQ_ANSWERED);
    if (status < 300 && body_len > WX_HTTP_OUT_SMALL_BYTES) {
        struct route_metrics *m = route_metrics(req);
        if (body_len > atomic_load_explicit(&m->answer_bytes_max, memory_order_relaxed))
            atomic_store_explicit(&m->answer_bytes_max, body_len, memory_order_relaxed);
        if (over_budget(req, body_len)) {
            refuse_over_budget(req);
            return;
        }
    }
    req->state = REQ_ANSWERED;
    req->status = status;
    struct http_conn *c = req->conn;
    if (c->orphan)
        return;
    if (!req->wire.keep_alive)
        req->close = true;
    struct wx_buf *b = &c->out;
    wx_buf_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, reason(status),
                  http_date(c->thread));
    bool typed = false;
    for (size_t i = 0; i < req->headers_len; i++) {
        wx_buf_adds(b, req->headers[i].name);
        wx_buf_add(b, ": ", 2);
        wx_buf_adds(b, req->headers[i].value);
        wx_buf_add(b, "\r\n", 2);
        typed |= strcasecmp(req->headers[i].name, "Content-Type") == 0;
    }
    if (!typed)
        wx_buf_adds(b, status >= 400 ? "Content-Type: application/problem+json\r\n"
                                     : "Content-Type: application/json\r\n");
    wx_buf_adds(b, "X-Correlation-Id: ");
    wx_buf_adds(b, req->correlation_id);
    /* RFC 9110 §8.6: a 204 carries no Content-Length (and no body). */
    if (status != 204) {
        wx_buf_adds(b, "\r\nContent-Length: ");
        wx_buf_add_i64(b, (int64_t)body_len);
    }
    if (req->close)
        wx_buf_adds(b, "\r\nConnection: close");
    else if (req->wire.minor == 0)
        wx_buf_adds(b, "\r\nConnection: keep-alive");
    wx_buf_add(b, "\r\n\r\n", 4);
    if (req->wire.method == NULL || strcmp(req->wire.method, "HEAD") != 0)
        wx_buf_add(b, body, body_len);
}

void http_reply_buf(struct http_request *req, int status, struct wx_buf *b)
{
    if (!wx_buf_ok(b)) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    http_reply(req, status, b->data ? b->data : "", b->len);
}

void http_reply_problem(struct http_request *req, const struct es_outcome *outcome, const char *detail)
{
    struct wx_buf b;
    wx_buf_init(&b);
    es_problem_json(&b, outcome, detail);
    if (outcome->status == 503)
        http_add_header(req, "Retry-After", "1");
    if (wx_buf_ok(&b))
        http_reply(req, outcome->status, b.data, b.len);
    else
        http_reply(req, 500, "{}", 2);
    wx_buf_free(&b);
}

/* ---- commands: parked while the writer has them ---- */

static void command_resume(struct http_request *req)
{
    struct es_command *cmd = req->cmd;
    if (cmd->has_position && !cmd->replayed && wx_fault_active("ack-drop")) {
        http_conn_drop(req); /* fault injection: committed, but the answer is lost */
        return;
    }
    char *token = NULL;
    if (cmd->has_position) {
        token = wx_arena_alloc(&req->arena, ES_POSITION_TOKEN_BYTES);
        if (token != NULL) {
            es_position_format(&cmd->position, token);
            http_add_header(req, "X-Position", token);
        }
    }
    if (cmd->location != NULL)
        http_add_header(req, "Location", cmd->location);
    if (cmd->replayed)
        http_add_header(req, "Idempotency-Replayed", "true");
    if (cmd->status == 503)
        http_add_header(req, "Retry-After", "1");
    http_reply(req, cmd->status, cmd->body ? cmd->body : "", cmd->body_len);
}

/* A queued command cannot be taken back from the writer: it always
 * completes, and the connection waits for it without a timeout. */
static bool command_cancel(struct http_request *req, bool timed_out)
{
    (void)req;
    assert(!timed_out);
    return false;
}

static const struct http_park_ops command_park = {
    .resume = command_resume,
    .cancel = command_cancel,
};

/* The writer's completion callback, on the writer thread. */
static void command_complete(struct es_command *cmd)
{
    http_resume(cmd->complete_ctx);
}

void http_submit(struct http_request *req, struct es_command *cmd)
{
    struct http_server *srv = req->server;
    cmd->arena = &req->arena;
    cmd->idem_key = req->idem_key;
    cmd->correlation_id = req->correlation_id;
    cmd->traceparent = req->traceparent;
    cmd->complete = command_complete;
    cmd->complete_ctx = req;
    if (wx_uuid7(wx_clock_now_ms(&wx_clock_system), cmd->command_id) != 0) {
        http_reply_problem(req, ES_internal_error, "no randomness for an id");
        return;
    }
    if (req->idem_key != NULL) {
        /* The request's identity for Idempotency-Key: method, path (decoded,
         * so "w%31" and "w1" are one resource), body. */
        char *path = wx_arena_strdup(&req->arena, req->path);
        size_t ml = strlen(req->method);
        char *r = path != NULL && http_wire_unescape(path, false)
                      ? wx_arena_alloc(&req->arena, ml + strlen(path) + req->body_len + 2)
                      : NULL;
        if (r == NULL) {
            http_reply_problem(req, ES_internal_error, "out of memory");
            return;
        }
        size_t pl = strlen(path);
        memcpy(r, req->method, ml);
        r[ml] = ' ';
        memcpy(r + ml + 1, path, pl);
        r[ml + 1 + pl] = '\n';
        memcpy(r + ml + pl + 2, req->body, req->body_len);
        cmd->request = r;
        cmd->request_len = ml + pl + req->body_len + 2;
    }
    req->cmd = cmd;
    int err = es_writer_submit(srv->writer, cmd);
    if (err) {
        const struct es_outcome *o = err == WX_ERR_FULL ? ES_overloaded : ES_shutting_down;
        http_reply_problem(req, o, NULL);
        return;
    }
    /* From here the writer owns the command and the arena until it calls
     * command_complete, which may already have happened: the resume still
     * runs only after this handler returns. */
    http_park(req, &command_park, 0);
}

/* The request's trace, taken before anything is decided so that every
 * answer, a refusal of its credentials too, carries the client's
 * correlation id. An invalid one is refused below, once the caller is
 * known. */
static void read_trace_headers(struct http_request *req)
{
    const char *cid = http_header(req, "X-Correlation-Id");
    char *copy = cid != NULL && http_correlation_id_ok(cid)
                     ? wx_arena_strdup(&req->arena, cid)
                     : NULL;
    if (copy != NULL) /* without memory, the generated one stays */
        req->correlation_id = copy;
    /* An invalid traceparent is ignored, as W3C Trace Context asks. */
    const char *tp = http_header(req, "traceparent");
    if (tp != NULL && http_traceparent_ok(tp))
        req->traceparent = wx_arena_strdup(&req->arena, tp);
}

/* Validates the headers every request may carry: NULL, or why not. */
static const char *read_common_headers(struct http_request *req)
{
    const char *cid = http_header(req, "X-Correlation-Id");
    if (cid != NULL && !http_correlation_id_ok(cid))
        return "X-Correlation-Id must be 1-128 visible ASCII characters";
    if (strcmp(req->method, "POST") == 0) {
        const char *key = http_header(req, "Idempotency-Key");
        if (key != NULL) {
            if (!http_idem_key_ok(key))
                return "Idempotency-Key must be 1-255 visible ASCII characters";
            /* A key is its caller's: neither contains a space, so the
             * pair is unambiguous. */
            size_t scope = req->idem_scope ? strlen(req->idem_scope) + 1 : 0;
            char *k = wx_arena_alloc(&req->arena, scope + strlen(key) + 1);
            if (k == NULL)
                return "no memory for the Idempotency-Key";
            if (scope > 0) {
                memcpy(k, req->idem_scope, scope - 1);
                k[scope - 1] = ' ';
            }
            memcpy(k + scope, key, strlen(key) + 1);
            req->idem_key = k;
        }
    }
    return NULL;
}

/* Routes that take a body take JSON in UTF-8, said once; requests without
 * a body need no Content-Type. */
static bool content_type_ok(struct http_request *req)
{
    size_t n = 0;
    const char *ct = NULL;
    for (size_t i = 0; i < req->wire.headers_len; i++) {
        if (strcasecmp(req->wire.headers[i].name, "Content-Type") == 0) {
            ct = req->wire.headers[i].value;
            n++;
        }
    }
    return n == 1 && http_content_type_json(ct);
}

/* RFC 9110 §9 and RFC 5789: methods we recognise. Another is 501; one of
 * these on a route without it is 405 with Allow. */
static bool method_known(const char *m)
{
    static const char *const known[] = {"GET",     "HEAD",  "POST",    "PUT",  "DELETE",
                                        "OPTIONS", "TRACE", "CONNECT", "PATCH"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(m, known[i]) == 0)
            return true;
    return false;
}

/* Every parameter of the query decodes: one with an escaped NUL is refused
 * whole rather than read as absent (?atVersion=1%00 is not "no atVersion"). */
static bool query_ok(struct http_request *req)
{
    char *copy = wx_arena_strdup(&req->arena, req->wire.query);
    return copy != NULL && http_wire_unescape(copy, true);
}

/* A refusal before the body is read: a body that follows is never read,
 * so the connection closes after the answer. */
static bool refuse(struct http_request *req, const struct es_outcome *o, const char *detail)
{
    if (req->wire.chunked || req->wire.content_length > 0)
        req->close = true;
    http_reply_problem(req, o, detail);
    return false;
}

bool http_request_head(struct http_request *req)
{
    struct http_server *srv = req->server;
    req->next_request = req->wire.head_bytes;
    if (atomic_load(&srv->draining)) {
        req->close = true;
        http_reply_problem(req, ES_shutting_down, "the server is stopping");
        return false;
    }
    if (!method_known(req->method))
        return refuse(req, ES_not_implemented, "the server does not know this method");
    if (!query_ok(req))
        return refuse(req, ES_invalid_request, "the query string has an escaped NUL");
    char allow[128];
    enum http_match m =
        http_route_match(srv->routes, srv->routes_len, req->method, req->path, &req->arena,
                         &req->route, req->params, &req->params_len, allow, sizeof(allow));
    if (m == HTTP_MATCH_NO_ROUTE)
        return refuse(req, ES_not_found, "no such route");
    if (m == HTTP_MATCH_BAD_PARAM)
        return refuse(req, ES_invalid_request, "the path has an escaped NUL");
    if (m == HTTP_MATCH_NO_METHOD) {
        http_add_header(req, "Allow", wx_arena_strdup(&req->arena, allow));
        return refuse(req, ES_method_not_allowed, "the route does not allow this method");
    }
    read_trace_headers(req);
    /* Before anything else of the request is believed or its body read. */
    const struct http_authenticator *auth = srv->authenticator;
    if (auth != NULL && req->route->access != HTTP_ACCESS_OPEN) {
        struct http_refusal r = {0};
        if (!auth->authenticate(auth->ctx, req, &r)) {
            assert(r.outcome != NULL && r.outcome->status >= 400);
            if (r.header != NULL)
                http_add_header(req, r.header, r.value);
            return refuse(req, r.outcome, r.detail);
        }
    }
    size_t body_max = req->route->body_bytes_max;
    if (body_max == 0 && req->wire.content_length > 0)
        return refuse(req, ES_body_not_allowed, "this route takes no request body");
    /* A declared body over the limit is refused before it is read. */
    if (req->wire.content_length > (int64_t)body_max)
        return refuse(req, ES_payload_too_large, "the request body is too large");
    const char *why = read_common_headers(req);
    if (why != NULL)
        return refuse(req, ES_invalid_request, why);
    /* RFC 9110 §8.3: Content-Type describes content; a request that sends
     * none (a POST that takes no body, or one whose body is optional)
     * needs none. */
    bool bodiless = !req->wire.chunked && req->wire.content_length <= 0;
    if (body_max > 0 && !bodiless && !content_type_ok(req))
        return refuse(req, ES_unsupported_media_type,
                      "Content-Type must be application/json, once, in UTF-8");
    return true;
}

static void run_handler(struct http_request *req)
{
    req->route->handler(req);
    /* A handler answers, submits or parks; anything else is a bug we still
     * answer. */
    if (req->state == REQ_READING)
        http_reply_problem(req, ES_internal_error, "the handler did not answer");
}

/* ---- X-Min-Position: parked until the read side is there ---- */

static void read_side_resume(struct http_request *req)
{
    if (!http_client_gone(req))
        run_handler(req);
}

static bool read_side_cancel(struct http_request *req, bool timed_out)
{
    struct http_server *srv = req->server;
    if (!srv->read_side->unwatch(srv->app, req->read_watch))
        return false;
    if (timed_out)
        http_reply_problem(req, ES_projection_lagging,
                           "the read side has not reached X-Min-Position yet");
    return true;
}

static const struct http_park_ops read_side_park = {
    .resume = read_side_resume,
    .cancel = read_side_cancel,
};

static void read_side_wait(struct http_request *req, const char *token)
{
    struct http_server *srv = req->server;
    req->read_watch = wx_arena_alloc(&req->arena, srv->read_side->watch_bytes);
    if (req->read_watch == NULL) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    switch (srv->read_side->watch(srv->app, req, req->read_watch, req->route->read_models,
                                  token)) {
    case HTTP_WATCH_READY:
        run_handler(req);
        return;
    case HTTP_WATCH_BAD_TOKEN:
        http_reply_problem(req, ES_invalid_request,
                           "X-Min-Position must be a position token from X-Position");
        return;
    case HTTP_WATCH_FULL:
        http_reply_problem(req, ES_overloaded, "too many requests wait for the read side");
        return;
    case HTTP_WATCH_PARKED:
        break;
    }
    /* No wait allowed: withdrawn at once, unless it fired meanwhile. */
    if (srv->min_position_wait_ms == 0 && read_side_cancel(req, true))
        return;
    http_park(req, &read_side_park, srv->min_position_wait_ms);
}

void http_dispatch(struct http_request *req)
{
    struct http_server *srv = req->server;
    /* Stop producing what cannot be sent: a route that has given a large
     * answer is refused before its handler runs (a 6.5 MB page took up to
     * 70 ms of the thread), not after, while its answer would not fit. */
    size_t expect = atomic_load_explicit(&route_metrics(req)->answer_bytes_max,
                                         memory_order_relaxed);
    if (over_budget(req, expect)) {
        refuse_over_budget(req);
        return;
    }
    const char *min_position = http_header(req, "X-Min-Position");
    if (min_position != NULL && req->route->read_models != NULL && srv->read_side != NULL) {
        read_side_wait(req, min_position);
        return;
    }
    run_handler(req);
}

struct http_request *http_request_new(struct http_conn *c)
{
    struct http_server *srv = c->thread->srv;
    struct http_request *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    wx_arena_init(&req->arena);
    req->server = srv;
    req->app = srv->app;
    req->conn = c;
    req->state = REQ_READING;
    req->method = "-"; /* until the head is parsed */
    req->path = "-";
    atomic_init(&req->resume_pending, false);
    req->started_us = wx_monotonic_us();
    char *cid = wx_arena_alloc(&req->arena, WX_UUID_STR_BYTES);
    if (cid == NULL || wx_uuid7(wx_clock_now_ms(&wx_clock_system), cid) != 0) {
        wx_arena_release(&req->arena);
        free(req);
        return NULL;
    }
    req->correlation_id = cid;
    atomic_fetch_add(&srv->active, 1);
    return req;
}

void http_request_end(struct http_request *req)
{
    struct http_server *srv = req->server;
    /* No park is left behind: nobody will resume a freed request. */
    assert(req->state != REQ_PARKED && !atomic_load(&req->resume_pending));
    if (req->status != 0) {
        size_t r = req->route ? (size_t)(req->route - srv->routes) : srv->routes_len;
        size_t slot = 0;
        while (slot < STATUS_SLOTS - 1 && metric_statuses[slot] != req->status)
            slot++;
        atomic_fetch_add_explicit(&srv->metrics[r].requests[slot], 1, memory_order_relaxed);
        int64_t latency_us = wx_monotonic_us() - req->started_us;
        wx_hist_observe(&srv->metrics[r].latency_us[slot], latency_us);
        wx_log_request(req->correlation_id, req->method,
                       req->route ? req->route->pattern : "unmatched", req->path, req->status,
                       latency_us);
    }
    wx_arena_release(&req->arena);
    free(req);
    atomic_fetch_sub(&srv->active, 1);
}
int http_server_start(const struct http_server_config *config, struct http_server **server_out)
{
    struct sockaddr_storage addr;
    bool v6;
    if (!parse_listen(config->listen, &addr, &v6)) {
        wx_logf(WX_LOG_ERROR, "http: cannot parse listen address '%s'", config->listen);
        return WX_ERR_INVALID;
    }
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return WX_ERR_NOMEM;
    srv->routes = config->routes;
    srv->routes_len = config->routes_len;
    srv->app = config->app;
    srv->writer = config->writer;
    srv->read_side = config->read_side;
    srv->authenticator = config->authenticator;
    srv->min_position_wait_ms = config->min_position_wait_ms;
    atomic_init(&srv->active, 0);
    srv->connections_max =
        config->connections_max ? config->connections_max : WX_HTTP_CONNECTIONS_MAX;
    srv->idle_timeout_ms =
        1000 * (int64_t)(config->connection_timeout_s ? config->connection_timeout_s
                                                      : WX_HTTP_CONNECTION_TIMEOUT_S);
    srv->head_timeout_ms =
        config->head_timeout_ms ? config->head_timeout_ms : WX_HTTP_HEAD_TIMEOUT_MS_DEFAULT;
    srv->body_timeout_ms =
        config->body_timeout_ms ? config->body_timeout_ms : WX_HTTP_BODY_TIMEOUT_MS_DEFAULT;
    srv->send_timeout_ms =
        config->send_timeout_ms ? config->send_timeout_ms : WX_HTTP_SEND_TIMEOUT_MS_DEFAULT;
    srv->unsent_bytes_max =
        config->unsent_bytes_max ? config->unsent_bytes_max : WX_HTTP_OUT_BYTES_MAX;
    srv->threads_len = config->threads ? config->threads : WX_HTTP_THREADS_DEFAULT;
    srv->metrics = calloc(srv->routes_len + 1, sizeof(*srv->metrics));
    int err = srv->metrics == NULL ? WX_ERR_NOMEM : 0;
    if (!err) {
        for (size_t r = 0; r <= srv->routes_len; r++)
            for (size_t k = 0; k < STATUS_SLOTS; k++)
                wx_hist_init(&srv->metrics[r].latency_us[k], &wx_hist_latency_us);
        for (size_t r = 0; r <= srv->routes_len; r++)
            atomic_init(&srv->metrics[r].answer_bytes_max, 0);
        err = http_conns_start(srv, &addr, v6, config->listen);
    }
    if (err) {
        http_server_stop(srv);
        return err;
    }
    *server_out = srv;
    return 0;
}

unsigned http_server_port(const struct http_server *srv)
{
    return srv->port;
}

unsigned http_server_active(const struct http_server *srv)
{
    return atomic_load(&srv->active);
}

void http_server_stop(struct http_server *srv)
{
    if (srv == NULL)
        return;
    http_conns_stop(srv);
    free(srv->metrics);
    free(srv);
}

void http_server_stats(struct http_server *srv, size_t (*kind_of)(const struct http_route *route),
                       struct http_server_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t k = 0; k < HTTP_STATS_KINDS_MAX; k++)
        wx_hist_snapshot_init(&out->latency_us[k], &wx_hist_latency_us);
    for (size_t r = 0; r <= srv->routes_len; r++) {
        size_t kind = kind_of(r < srv->routes_len ? &srv->routes[r] : NULL);
        assert(kind < HTTP_STATS_KINDS_MAX);
        for (size_t k = 0; k < STATUS_SLOTS; k++) {
            uint64_t n = atomic_load_explicit(&srv->metrics[r].requests[k], memory_order_relaxed);
            if (n == 0)
                continue; /* and its histogram is empty: most slots are */
            out->requests[kind] += n;
            if (k < STATUS_SLOTS - 1 && metric_statuses[k] >= 500)
                out->server_errors[kind] += n;
            wx_hist_snapshot_add(&out->latency_us[kind], &srv->metrics[r].latency_us[k]);
        }
    }
    out->connections = atomic_load(&srv->connections);
    out->in_flight = http_server_active(srv);
}

void http_server_metrics(struct http_server *srv, struct wx_buf *b)
{
    char labels[160];
    wx_metric_header(b, "wallex_http_requests_total", "counter",
                     "HTTP requests answered, by route and status.");
    for (size_t r = 0; r <= srv->routes_len; r++) {
        for (size_t k = 0; k < STATUS_SLOTS; k++) {
            uint64_t v = atomic_load(&srv->metrics[r].requests[k]);
            if (v == 0)
                continue;
            wx_buf_printf(b, "wallex_http_requests_total{method=\"%s\",route=\"%s\",status=\"",
                          r < srv->routes_len ? srv->routes[r].method : "",
                          r < srv->routes_len ? srv->routes[r].pattern : "unmatched");
            if (k < STATUS_SLOTS - 1)
                wx_buf_printf(b, "%d\"} %llu\n", metric_statuses[k], (unsigned long long)v);
            else
                wx_buf_printf(b, "other\"} %llu\n", (unsigned long long)v);
        }
    }
    wx_metric_header(b, "wallex_http_request_duration_seconds", "histogram",
                     "Time from the request's first byte to its completion.");
    for (size_t r = 0; r <= srv->routes_len; r++) {
        for (size_t k = 0; k < STATUS_SLOTS; k++) {
            if (atomic_load(&srv->metrics[r].requests[k]) == 0)
                continue;
            char status[8];
            if (k < STATUS_SLOTS - 1)
                snprintf(status, sizeof(status), "%d", metric_statuses[k]);
            else
                snprintf(status, sizeof(status), "other");
            snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\",status=\"%s\"",
                     r < srv->routes_len ? srv->routes[r].method : "",
                     r < srv->routes_len ? srv->routes[r].pattern : "unmatched", status);
            wx_hist_render(b, "wallex_http_request_duration_seconds", labels,
                           &srv->metrics[r].latency_us[k]);
        }
    }
    wx_metric_header(b, "wallex_http_open_connections", "gauge", "Open HTTP connections.");
    wx_buf_printf(b, "wallex_http_open_connections %u\n", atomic_load(&srv->connections));
    wx_metric_header(b, "wallex_http_requests_in_flight", "gauge",
                     "Requests started and not yet completed.");
    wx_buf_printf(b, "wallex_http_requests_in_flight %u\n", http_server_active(srv));
    size_t in = 0, out = 0;
    for (unsigned i = 0; i < srv->threads_len; i++) {
        in += atomic_load_explicit(&srv->threads[i].in_bytes_seen, memory_order_relaxed);
        out += atomic_load_explicit(&srv->threads[i].out_bytes_seen, memory_order_relaxed);
    }
    wx_metric_header(b, "wallex_http_read_buffer_bytes", "gauge",
                     "Read buffers of connections with a request arriving.");
    wx_buf_printf(b, "wallex_http_read_buffer_bytes %zu\n", in);
    wx_metric_header(b, "wallex_http_unsent_answer_bytes", "gauge",
                     "Answer bytes queued for clients that have not taken them yet.");
    wx_buf_printf(b, "wallex_http_unsent_answer_bytes %zu\n", out);
    wx_metric_header(b, "wallex_http_stalled_evicted_total", "counter",
                     "Connections still sending a request after a second, closed to make "
                     "room for a new one past --connections-max.");
    wx_buf_printf(b, "wallex_http_stalled_evicted_total %llu\n",
                  (unsigned long long)atomic_load(&srv->evicted));
    wx_metric_header(b, "wallex_http_large_answers_refused_total", "counter",
                     "Large GET answers refused (503) while unsent answers were over budget.");
    wx_buf_printf(b, "wallex_http_large_answers_refused_total %llu\n",
                  (unsigned long long)atomic_load(&srv->refused_out));
}
