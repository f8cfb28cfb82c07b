/*
 * libmicrohttpd glue. One request context per HTTP request, allocated on
 * the first call of the access handler (libmicrohttpd 0.9.75 keeps a
 * connection alive only when the answer comes on a later call), filled with
 * the body on the following calls, dispatched through the route table when
 * the body is complete. A command suspends the connection; the writer's
 * completion resumes it and the next call sends the answer.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/clock.h"
#include "obs/log.h"
#include "base/err.h"
#include "base/fault.h"
#include "base/uuid.h"
#include "es/writer.h"
#include "http/http.h"
#include "limits.h"
#include "obs/metrics.h"

enum request_state {
    REQ_READING,   /* receiving the body */
    REQ_WAITING,   /* suspended, the command is with the writer */
    REQ_ANSWERED,  /* a response is queued */
};

/* The statuses we answer with; anything else is counted as "other". */
static const int metric_statuses[] = {200, 201, 202, 400, 404, 405, 409, 413, 415, 422, 500, 503};
#define STATUS_SLOTS (sizeof(metric_statuses) / sizeof(metric_statuses[0]) + 1)

struct route_metrics {
    atomic_uint_fast64_t requests[STATUS_SLOTS];
    struct wx_hist latency_us[STATUS_SLOTS];
};

struct http_server {
    struct MHD_Daemon *daemon;
    const struct http_route *routes;
    size_t routes_len;
    struct route_metrics *metrics; /* one per route, then one for no route */
    void *app;
    struct es_writer *writer;
    unsigned port;
    unsigned connections_max;
    atomic_uint active;
    atomic_uint connections;
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

const char *http_query(struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void http_add_header(struct http_request *req, const char *name, const char *value)
{
    assert(req->headers_len < HTTP_EXTRA_HEADERS_MAX);
    req->headers[req->headers_len++] = (struct http_header){name, value};
}

void http_reply(struct http_request *req, int status, const char *body, size_t body_len)
{
    assert(req->state != REQ_ANSWERED);
    req->state = REQ_ANSWERED;
    req->status = status;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body_len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return; /* libmicrohttpd closes the connection */
    bool typed = false;
    for (size_t i = 0; i < req->headers_len; i++) {
        MHD_add_response_header(resp, req->headers[i].name, req->headers[i].value);
        typed |= strcasecmp(req->headers[i].name, MHD_HTTP_HEADER_CONTENT_TYPE) == 0;
    }
    if (!typed)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                status >= 400 ? "application/problem+json" : "application/json");
    MHD_add_response_header(resp, "X-Correlation-Id", req->correlation_id);
    MHD_queue_response(req->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
}

void http_reply_buf(struct http_request *req, int status, struct wx_buf *b)
{
    if (!wx_buf_ok(b)) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    http_reply(req, status, b->data ? b->data : "", b->len);
}

void http_reply_problem(struct http_request *req, enum es_outcome outcome, const char *detail)
{
    struct wx_buf b;
    wx_buf_init(&b);
    es_problem_json(&b, outcome, detail);
    if (es_outcome_status(outcome) == 503)
        http_add_header(req, "Retry-After", "1");
    if (wx_buf_ok(&b))
        http_reply(req, es_outcome_status(outcome), b.data, b.len);
    else
        http_reply(req, 500, "{}", 2);
    wx_buf_free(&b);
}

/* Writer thread: the command is answered; wake its connection. */
static void on_command_complete(struct es_command *cmd)
{
    struct http_request *req = cmd->complete_ctx;
    atomic_store(&req->writer_done, true);
    MHD_resume_connection(req->conn);
}

static void send_command_result(struct http_request *req)
{
    struct es_command *cmd = req->cmd;
    char *token = NULL;
    if (cmd->has_position) {
        token = wx_arena_alloc(&req->arena, ES_POSITION_TOKEN_BYTES);
        if (token != NULL) {
            es_position_format(&cmd->position, token);
            http_add_header(req, "X-Position", token);
        }
    }
    if (cmd->location != NULL)
        http_add_header(req, MHD_HTTP_HEADER_LOCATION, cmd->location);
    if (cmd->replayed)
        http_add_header(req, "Idempotency-Replayed", "true");
    if (cmd->status == 503)
        http_add_header(req, "Retry-After", "1");
    http_reply(req, cmd->status, cmd->body ? cmd->body : "", cmd->body_len);
}

void http_submit(struct http_request *req, struct es_command *cmd)
{
    struct http_server *srv = req->server;
    cmd->arena = &req->arena;
    cmd->idem_key = req->idem_key;
    cmd->correlation_id = req->correlation_id;
    cmd->traceparent = req->traceparent;
    cmd->complete = on_command_complete;
    cmd->complete_ctx = req;
    if (wx_uuid7(wx_clock_now_ms(&wx_clock_system), cmd->command_id) != 0) {
        http_reply_problem(req, ES_internal_error, "no randomness for an id");
        return;
    }
    if (req->idem_key != NULL) {
        /* The request's identity for Idempotency-Key: method, path, body. */
        size_t ml = strlen(req->method), pl = strlen(req->path);
        char *r = wx_arena_alloc(&req->arena, ml + pl + req->body_len + 2);
        if (r == NULL) {
            http_reply_problem(req, ES_internal_error, "out of memory");
            return;
        }
        memcpy(r, req->method, ml);
        r[ml] = ' ';
        memcpy(r + ml + 1, req->path, pl);
        r[ml + 1 + pl] = '\n';
        memcpy(r + ml + pl + 2, req->body, req->body_len);
        cmd->request = r;
        cmd->request_len = ml + pl + req->body_len + 2;
    }
    req->cmd = cmd;
    /* Suspend before the writer can see the command: its completion resumes
     * the connection, and a resume must follow a suspend. */
    req->state = REQ_WAITING;
    MHD_suspend_connection(req->conn);
    int err = es_writer_submit(srv->writer, cmd);
    if (err) {
        enum es_outcome o = err == WX_ERR_FULL ? ES_overloaded : ES_shutting_down;
        struct wx_buf b;
        wx_buf_init(&b);
        es_problem_json(&b, o, NULL);
        cmd->status = es_outcome_status(o);
        cmd->body = wx_buf_ok(&b) ? wx_arena_strndup(&req->arena, b.data, b.len) : NULL;
        cmd->body_len = cmd->body ? b.len : 0;
        wx_buf_free(&b);
        atomic_store(&req->writer_done, true);
        MHD_resume_connection(req->conn);
    }
}

const char *http_header(struct http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* Validates the headers every request may carry. False when answered. */
static bool read_common_headers(struct http_request *req)
{
    const char *cid = http_header(req, "X-Correlation-Id");
    if (cid != NULL) {
        if (!http_correlation_id_ok(cid)) {
            http_reply_problem(req, ES_invalid_request,
                               "X-Correlation-Id must be 1-128 visible ASCII characters");
            return false;
        }
        req->correlation_id = wx_arena_strdup(&req->arena, cid);
    }
    /* An invalid traceparent is ignored, as W3C Trace Context asks. */
    const char *tp = http_header(req, "traceparent");
    if (tp != NULL && http_traceparent_ok(tp))
        req->traceparent = wx_arena_strdup(&req->arena, tp);
    if (strcmp(req->method, "POST") == 0) {
        const char *key = http_header(req, "Idempotency-Key");
        if (key != NULL) {
            if (!http_idem_key_ok(key)) {
                http_reply_problem(req, ES_invalid_request,
                                   "Idempotency-Key must be 1-255 visible ASCII characters");
                return false;
            }
            req->idem_key = wx_arena_strdup(&req->arena, key);
        }
    }
    return true;
}

static void dispatch(struct http_request *req)
{
    struct http_server *srv = req->server;
    char allow[128];
    if (strlen(req->path) > WX_URL_BYTES_MAX) {
        http_reply_problem(req, ES_invalid_request, "the URL is too long");
        return;
    }
    enum http_match m =
        http_route_match(srv->routes, srv->routes_len, req->method, req->path, &req->arena,
                         &req->route, req->params, &req->params_len, allow, sizeof(allow));
    if (m == HTTP_MATCH_NO_ROUTE) {
        http_reply_problem(req, ES_not_found, "no such route");
        return;
    }
    if (m == HTTP_MATCH_NO_METHOD) {
        http_add_header(req, MHD_HTTP_HEADER_ALLOW, wx_arena_strdup(&req->arena, allow));
        http_reply_problem(req, ES_method_not_allowed, "the route does not allow this method");
        return;
    }
    if (req->body_too_large || req->body_len > req->route->body_bytes_max) {
        http_reply_problem(req, ES_payload_too_large, "the request body is too large");
        return;
    }
    if (!read_common_headers(req))
        return;
    /* Routes that take a body take JSON; bodiless POSTs (admin actions)
     * need no Content-Type. */
    if (req->route->body_bytes_max > 0) {
        const char *ct = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (ct == NULL || !http_content_type_json(ct)) {
            http_reply_problem(req, ES_unsupported_media_type,
                               "Content-Type must be application/json");
            return;
        }
    }
    req->route->handler(req);
    /* A handler answers or submits; anything else is a bug we still answer. */
    if (req->state == REQ_READING)
        http_reply_problem(req, ES_internal_error, "the handler did not answer");
}

static struct http_request *request_new(struct http_server *srv, struct MHD_Connection *conn,
                                        const char *url, const char *method)
{
    struct http_request *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    wx_arena_init(&req->arena);
    req->server = srv;
    req->app = srv->app;
    req->conn = conn;
    req->state = REQ_READING;
    atomic_init(&req->writer_done, false);
    req->started_us = wx_monotonic_us();
    req->method = wx_arena_strdup(&req->arena, method);
    req->path = wx_arena_strdup(&req->arena, url);
    char *cid = wx_arena_alloc(&req->arena, WX_UUID_STR_BYTES);
    if (req->method == NULL || req->path == NULL || cid == NULL ||
        wx_uuid7(wx_clock_now_ms(&wx_clock_system), cid) != 0) {
        wx_arena_release(&req->arena);
        free(req);
        return NULL;
    }
    req->correlation_id = cid;
    atomic_fetch_add(&srv->active, 1);
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct http_server *srv = cls;
    struct http_request *req = *con_cls;
    if (req == NULL)
        return;
    /* A request still with the writer is never completed: libmicrohttpd
     * does not time out suspended connections. Once the writer has resumed
     * it, the client may hang up before the answer is sent, so a request can
     * end while still marked waiting. */
    assert(req->state != REQ_WAITING || atomic_load(&req->writer_done));
    *con_cls = NULL;
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
    free(req->body);
    free(req);
    atomic_fetch_sub(&srv->active, 1);
}

static bool body_append(struct http_request *req, const char *data, size_t len)
{
    /* The route decides the limit; before it is known, the global one. */
    if (req->body_too_large || req->body_len + len > WX_BODY_BYTES_MAX) {
        req->body_too_large = true;
        return true;
    }
    char *p = realloc(req->body, req->body_len + len + 1);
    if (p == NULL)
        return false;
    memcpy(p + req->body_len, data, len);
    req->body = p;
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return true;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)conn;
    (void)socket_context;
    struct http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&srv->connections, 1);
    else
        atomic_fetch_sub(&srv->connections, 1);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    (void)version;
    struct http_server *srv = cls;
    struct http_request *req = *con_cls;
    if (req == NULL) {
        req = request_new(srv, conn, url, method);
        if (req == NULL)
            return MHD_NO;
        *con_cls = req;
        /* Over the connection limit: a clear answer and a closed connection
         * rather than a silent wait in the backlog. */
        if (atomic_load(&srv->connections) > srv->connections_max) {
            http_add_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
            http_reply_problem(req, ES_overloaded, "too many open connections");
            return MHD_YES;
        }
        /* A declared body over the limit is refused before it is read; the
         * connection then closes, which is what an oversized upload deserves. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t declared;
        if (cl != NULL && http_parse_i64(cl, 0, INT64_MAX, &declared) &&
            declared > WX_BODY_BYTES_MAX) {
            req->body_too_large = true;
            http_reply_problem(req, ES_payload_too_large, "the request body is too large");
        }
        return MHD_YES;
    }
    if (req->state == REQ_WAITING) {
        req->state = REQ_READING; /* the answer comes now */
        if (req->cmd->has_position && !req->cmd->replayed && wx_fault_active("ack-drop"))
            return MHD_NO; /* fault injection: committed, but the answer is lost */
        send_command_result(req);
        return MHD_YES;
    }
    if (req->state == REQ_ANSWERED) {
        *upload_data_size = 0; /* discard the rest of an answered upload */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* An undeclared (chunked) body over the limit is read to its end and
         * dropped, then refused in dispatch. */
        if (!body_append(req, upload_data, *upload_data_size))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->body == NULL) {
        req->body = calloc(1, 1);
        if (req->body == NULL)
            return MHD_NO;
    }
    dispatch(req);
    return MHD_YES;
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
    atomic_init(&srv->active, 0);
    atomic_init(&srv->connections, 0);
    srv->connections_max = config->connections_max ? config->connections_max
                                                   : WX_HTTP_CONNECTIONS_MAX;
    srv->metrics = calloc(srv->routes_len + 1, sizeof(*srv->metrics));
    if (srv->metrics == NULL) {
        free(srv);
        return WX_ERR_NOMEM;
    }
    for (size_t r = 0; r <= srv->routes_len; r++)
        for (size_t k = 0; k < STATUS_SLOTS; k++)
            wx_hist_init(&srv->metrics[r].latency_us[k], &wx_hist_latency_us);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    unsigned threads = config->threads ? config->threads : WX_HTTP_THREADS_DEFAULT;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0, MHD_OPTION_CONNECTION_LIMIT,
        srv->connections_max + WX_HTTP_CONNECTIONS_SPARE, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, srv,
        MHD_OPTION_CONNECTION_TIMEOUT,
        config->connection_timeout_s ? config->connection_timeout_s : WX_HTTP_CONNECTION_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)WX_HTTP_CONNECTION_MEMORY_BYTES,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
        wx_logf(WX_LOG_ERROR, "http: cannot listen on %s", config->listen);
        free(srv->metrics);
        free(srv);
        return WX_ERR_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    *server_out = srv;
    return 0;
}

unsigned http_server_port(const struct http_server *srv)
{
    return srv->port;
}

void http_server_quiesce(struct http_server *srv)
{
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

unsigned http_server_active(const struct http_server *srv)
{
    return atomic_load(&srv->active);
}

void http_server_stop(struct http_server *srv)
{
    if (srv == NULL)
        return;
    MHD_stop_daemon(srv->daemon);
    free(srv->metrics);
    free(srv);
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
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    wx_metric_header(b, "wallex_http_open_connections", "gauge", "Open HTTP connections.");
    wx_buf_printf(b, "wallex_http_open_connections %u\n", info ? info->num_connections : 0);
    wx_metric_header(b, "wallex_http_requests_in_flight", "gauge",
                     "Requests started and not yet completed.");
    wx_buf_printf(b, "wallex_http_requests_in_flight %u\n", http_server_active(srv));
}
