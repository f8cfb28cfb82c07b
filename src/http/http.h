/*
 * The thin HTTP layer (DESIGN.md §9): a static route table, problem+json
 * for every error, and requests that park their connection while another
 * thread works for them (a command with the writer, a query waiting for the
 * read side). Handlers get a request with its own arena (freed when the
 * request ends) and answer exactly once: with http_reply* right away, with
 * http_submit, or later from a park's resume (http_park).
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
#include "obs/metrics.h"

struct http_request;
struct http_park_ops;
struct http_server;
struct es_command;
struct es_writer;

#define HTTP_PATH_PARAMS_MAX 4
#define HTTP_EXTRA_HEADERS_MAX 6

/* Who may call a route. The server asks the application's authenticator
 * (http_authenticator) about every route that is not OPEN, and the
 * authenticator gives the other classes their meaning; the server knows
 * none. The zero value is the narrowest, so a route whose table does not
 * say is closed, not open. */
enum http_access {
    HTTP_ACCESS_ADMIN = 0, /* operators only: the admin routes, subscriptions */
    HTTP_ACCESS_OPEN,      /* no credentials: health, readiness, the API document */
    HTTP_ACCESS_QUERY,     /* reads of resources that callers may own */
    HTTP_ACCESS_COMMAND,   /* changes to resources that callers may own */
    HTTP_ACCESS_OBSERVE,   /* reads over everyone's resources: metrics, statistics */
};

struct http_route {
    const char *method;
    const char *pattern; /* "/things/{id}/parts": {name} matches one segment */
    void (*handler)(struct http_request *req);
    size_t body_bytes_max; /* 0 for routes without a body */
    /* The read models a query reads (names, NULL-terminated; NULL for
     * none). A request with X-Min-Position runs its handler only once they
     * have reached that position (http_read_side), parked until then. */
    const char *const *read_models;
    enum http_access access;
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
    const char *path; /* as sent: percent-encoded, without the query */
    const struct http_route *route;
    const char *params[HTTP_PATH_PARAMS_MAX]; /* decoded */
    size_t params_len;
    char *body;
    size_t body_len;
    const char *idem_key;       /* validated, or NULL */
    const char *correlation_id; /* from the client (validated) or generated */
    const char *traceparent;    /* valid W3C traceparent, or NULL */
    /* The caller, as the authenticator saw it: opaque here, the
     * application's to read. NULL on OPEN routes and without one. */
    const void *principal;
    /* Set by the authenticator: Idempotency-Keys are this caller's own
     * ("<scope> <key>"), so two callers never answer each other's. */
    const char *idem_scope;
    struct http_header headers[HTTP_EXTRA_HEADERS_MAX]; /* for the response */
    size_t headers_len;
    /* private to http/ */
    struct http_conn *conn;
    struct http_wire_head wire; /* parsed in a copy of the head in the arena */
    size_t next_request;        /* where the connection's next request starts */
    bool close;                 /* the connection closes after this answer */
    int state;
    struct es_command *cmd;             /* with the writer (http_submit) */
    void *read_watch;                   /* waiting for the read side */
    const struct http_park_ops *park;   /* while parked */
    void *park_ctx;                     /* the parker's own, for its ops */
    struct http_request *resumed_next;  /* in its thread's list of resumed requests */
    atomic_bool resume_pending;         /* http_resume called, resume not yet run */
    int status; /* of the response, once answered */
    int64_t started_us;
};

enum http_watch {
    HTTP_WATCH_READY,     /* the read models are there: run the handler now */
    HTTP_WATCH_PARKED,    /* registered: the application calls http_resume(req) */
    HTTP_WATCH_BAD_TOKEN, /* the header is not a position */
    HTTP_WATCH_FULL,      /* too many requests wait already */
};

/* X-Min-Position for routes with read_models: the application knows what
 * positions and read models are, the server only parks and resumes. */
struct http_read_side {
    /* Bytes of the application's wake-up, allocated in a waiting request's
     * arena. */
    size_t watch_bytes;
    /* Registers in watch a wake-up for when the models reach the position
     * in token, which calls http_resume(req) once. */
    enum http_watch (*watch)(void *app, struct http_request *req, void *watch,
                             const char *const *models, const char *token);
    /* Withdraws it: true when withdrawn (http_resume will not be called),
     * false when the wake-up has fired. */
    bool (*unwatch)(void *app, void *watch);
};

/* Why the authenticator refused a request: its outcome, and one header to
 * add to the answer (WWW-Authenticate, Retry-After), or NULL. */
struct http_refusal {
    const struct es_outcome *outcome;
    const char *detail;
    const char *header, *value; /* must outlive the request: static or arena */
};

/* Authentication is the application's: the server only asks, once a
 * request's route is known and before its body is read (a refused body is
 * never read), for every route that is not HTTP_ACCESS_OPEN. */
struct http_authenticator {
    /* On the request's HTTP thread; must not block. True when the request
     * may go on (it may set req->principal and req->idem_scope, in the
     * arena); false with *refusal filled. */
    bool (*authenticate)(void *ctx, struct http_request *req, struct http_refusal *refusal);
    void *ctx;
};

struct http_server_config {
    const char *listen; /* "127.0.0.1:8080" */
    unsigned threads;
    unsigned connections_max;
    unsigned connection_timeout_s; /* idle keep-alive connections */
    /* 0 for the defaults of limits.h: a request's head must arrive within
     * head_timeout_ms of its first byte and its body within
     * body_timeout_ms of the head (else 408); an answer making no progress
     * for send_timeout_ms closes the connection. */
    int64_t head_timeout_ms, body_timeout_ms, send_timeout_ms;
    /* 0 for WX_HTTP_OUT_BYTES_MAX: answer bytes queued for clients that do
     * not read, past which large GET answers are refused (503). */
    size_t unsent_bytes_max;
    const struct http_route *routes;
    size_t routes_len;
    void *app;
    struct es_writer *writer;
    /* NULL: X-Min-Position is ignored. Past min_position_wait_ms (0: no
     * wait) a request still waiting is answered 503 projection_lagging. */
    const struct http_read_side *read_side;
    int64_t min_position_wait_ms;
    /* NULL: every route is open to whoever reaches the listen address. */
    const struct http_authenticator *authenticator;
};

int http_server_start(const struct http_server_config *config, struct http_server **server_out);
/* The port actually bound (useful with port 0). */
unsigned http_server_port(const struct http_server *server);
/* Stops accepting new connections; open ones continue. */
void http_server_quiesce(struct http_server *server);
/* Quiesces, then answers every new request 503 shutting_down with
 * Connection: close, without running a handler: what handlers use (the
 * writer) can be stopped once http_server_active is 0. Requests already
 * running or parked go on. */
void http_server_drain(struct http_server *server);
/* Requests that have started and not yet completed. */
unsigned http_server_active(const struct http_server *server);
/* Appends request counts and latency histograms per route and status, and
 * the open connections, in the Prometheus text format. */
void http_server_metrics(struct http_server *server, struct wx_buf *b);
/* Totals for a live view (ops' /admin/stats), from the same atomics as
 * http_server_metrics: requests, server errors (5xx) and latencies summed
 * over the routes that `kind_of` puts in each kind (0 to
 * HTTP_STATS_KINDS_MAX - 1; it gets NULL for requests that matched no
 * route), so the caller decides what a command or a query is. */
#define HTTP_STATS_KINDS_MAX 4
struct http_server_stats {
    uint64_t requests[HTTP_STATS_KINDS_MAX];
    uint64_t server_errors[HTTP_STATS_KINDS_MAX];
    struct wx_hist_snapshot latency_us[HTTP_STATS_KINDS_MAX];
    unsigned connections; /* open now */
    unsigned in_flight;   /* requests started and not yet completed */
};
void http_server_stats(struct http_server *server,
                       size_t (*kind_of)(const struct http_route *route),
                       struct http_server_stats *out);
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
/* Queues a command to the writer and answers when it completes (the
 * request is parked meanwhile). The command must live in the request's
 * arena. */
void http_submit(struct http_request *req, struct es_command *cmd);

/* ---- parking: a request that waits for another thread ----
 *
 * A handler that must wait (for the writer, the read side, a worker) never
 * blocks its HTTP thread: it registers a wake-up with whoever it waits for,
 * parks the request and returns. The connection then reads and answers
 * nothing until the wake-up's http_resume (any thread) brings the request
 * back to its own HTTP thread, which runs the park's resume. Every park
 * ends in exactly one of: resume runs, or cancel returns true. */
struct http_park_ops {
    /* On the request's HTTP thread after http_resume: answers, submits or
     * parks again. It also runs when the client has gone meanwhile
     * (http_client_gone): its answer is then dropped, but whatever the
     * wake-up handed over is released here. */
    void (*resume)(struct http_request *req);
    /* On the request's HTTP thread when the park's timeout passes
     * (timed_out), or when the connection closes or the server stops
     * (!timed_out). True when it withdrew the wake-up: http_resume will
     * never be called for this park, and on a timeout it has answered.
     * False when http_resume is already on its way: resume runs later. */
    bool (*cancel)(struct http_request *req, bool timed_out);
};

/* Parks a request that has not answered, from its handler or a resume, on
 * its HTTP thread. timeout_ms 0: no timeout. The wake-up may be registered
 * before or after the call (even fire before it): resume never runs before
 * the handler that parked has returned. */
void http_park(struct http_request *req, const struct http_park_ops *ops, int64_t timeout_ms);
/* Any thread, exactly once per park: the request's resume is to run. */
void http_resume(struct http_request *req);
/* The client closed the connection: an answer would go nowhere. */
bool http_client_gone(const struct http_request *req);

/* ---- headers.c: validation of what clients send (never asserts) ---- */

/* 1-255 visible ASCII characters. */
bool http_idem_key_ok(const char *s);
/* 1-128 visible ASCII characters. */
bool http_correlation_id_ok(const char *s);
/* W3C Trace Context version 00. */
bool http_traceparent_ok(const char *s);
/* application/json, any case, optionally with well-formed parameters of
 * which a charset can only be UTF-8. */
bool http_content_type_json(const char *s);
/* Parses a decimal integer in [min, max]; false for anything else. */
bool http_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* ---- route.c ---- */

enum http_match {
    HTTP_MATCH_OK,
    HTTP_MATCH_NO_ROUTE,
    HTTP_MATCH_NO_METHOD, /* the path exists with other methods */
    HTTP_MATCH_BAD_PARAM, /* a path parameter has an escaped NUL */
};

/* Matches method and the path as sent (percent-encoded) against the
 * table: literal segments match its raw bytes, parameters are decoded
 * after the split. On OK sets *route_out and the parameters (copied into
 * the arena). On NO_METHOD writes the allowed methods, comma-separated,
 * into allow (allow_bytes big). */
enum http_match http_route_match(const struct http_route *routes, size_t routes_len,
                                 const char *method, const char *path, struct wx_arena *arena,
                                 const struct http_route **route_out, const char **params,
                                 size_t *params_len, char *allow, size_t allow_bytes);

#endif
