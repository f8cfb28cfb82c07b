/*
 * The thin HTTP layer (DESIGN.md §9): a static route table, problem+json
 * for every error, and commands that park their connection until the
 * writer completes them. Handlers get a request with its own
 * arena (freed when the request ends) and answer exactly once, either with
 * http_reply* right away or with http_submit.
 */
#ifndef WALLEX_HTTP_HTTP_H
#define WALLEX_HTTP_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "es/outcome.h"
#include "http/wire.h"

struct http_request;
struct http_server;
struct es_command;
struct es_writer;

#define HTTP_PATH_PARAMS_MAX 4
#define HTTP_EXTRA_HEADERS_MAX 6

struct http_route {
    const char *method;
    const char *pattern; /* "/things/{id}/parts": {name} matches one segment */
    void (*handler)(struct http_request *req);
    size_t body_bytes_max; /* 0 for routes without a body */
};

struct http_header {
    const char *name;
    const char *value;
};

struct http_request {
    struct wx_arena arena;
    struct http_server *server;
    void *app; /* the application context given to http_server_start */
    const char *method;
    const char *path;
    const struct http_route *route;
    const char *params[HTTP_PATH_PARAMS_MAX];
    size_t params_len;
    char *body;
    size_t body_len;
    const char *idem_key;       /* validated, or NULL */
    const char *correlation_id; /* from the client (validated) or generated */
    const char *traceparent;    /* valid W3C traceparent, or NULL */
    struct http_header headers[HTTP_EXTRA_HEADERS_MAX]; /* for the response */
    size_t headers_len;
    /* private to server.c */
    struct http_conn *conn;
    struct http_wire_head wire; /* names and values point into conn's buffer */
    size_t next_request;        /* where the connection's next request starts */
    bool close;                 /* the connection closes after this answer */
    int state;
    struct es_command *cmd;
    struct http_request *done_next; /* in its thread's list of completed commands */
    int status; /* of the response, once answered */
    atomic_bool writer_done; /* set by the writer thread before it resumes */
    int64_t started_us;
};

struct http_server_config {
    const char *listen; /* "127.0.0.1:8080" */
    unsigned threads;
    unsigned connections_max;
    unsigned connection_timeout_s;
    const struct http_route *routes;
    size_t routes_len;
    void *app;
    struct es_writer *writer;
};

int http_server_start(const struct http_server_config *config, struct http_server **server_out);
/* The port actually bound (useful with port 0). */
unsigned http_server_port(const struct http_server *server);
/* Stops accepting new connections; open ones continue. */
void http_server_quiesce(struct http_server *server);
/* Requests that have started and not yet completed. */
unsigned http_server_active(const struct http_server *server);
/* Appends request counts and latency histograms per route and status, and
 * the open connections, in the Prometheus text format. */
void http_server_metrics(struct http_server *server, struct wx_buf *b);
/* Stops and frees. Call after the writer has completed every command. */
void http_server_stop(struct http_server *server);

/* Query string parameter, or NULL. */
const char *http_query(struct http_request *req, const char *name);
/* Request header, or NULL. */
const char *http_header(struct http_request *req, const char *name);
/* Adds a response header; name and value must outlive the request (use the
 * arena). */
void http_add_header(struct http_request *req, const char *name, const char *value);
/* Sends the response; content type application/json (problem+json for
 * status >= 400). */
void http_reply(struct http_request *req, int status, const char *body, size_t body_len);
void http_reply_buf(struct http_request *req, int status, struct wx_buf *b);
void http_reply_problem(struct http_request *req, const struct es_outcome *outcome, const char *detail);
/* Queues a command to the writer and answers when it completes. The
 * command must live in the request's arena. */
void http_submit(struct http_request *req, struct es_command *cmd);

/* ---- headers.c: validation of what clients send (never asserts) ---- */

/* 1-255 visible ASCII characters. */
bool http_idem_key_ok(const char *s);
/* 1-128 visible ASCII characters. */
bool http_correlation_id_ok(const char *s);
/* W3C Trace Context version 00. */
bool http_traceparent_ok(const char *s);
/* application/json, any case, optionally with parameters. */
bool http_content_type_json(const char *s);
/* Parses a decimal integer in [min, max]; false for anything else. */
bool http_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* ---- route.c ---- */

enum http_match {
    HTTP_MATCH_OK,
    HTTP_MATCH_NO_ROUTE,
    HTTP_MATCH_NO_METHOD, /* the path exists with other methods */
};

/* Matches method and path against the table. On OK sets *route_out and the
 * path parameters (copied into the arena). On NO_METHOD writes the allowed
 * methods, comma-separated, into allow (allow_bytes big). */
enum http_match http_route_match(const struct http_route *routes, size_t routes_len,
                                 const char *method, const char *path, struct wx_arena *arena,
                                 const struct http_route **route_out, const char **params,
                                 size_t *params_len, char *allow, size_t allow_bytes);

#endif
