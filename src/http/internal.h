/*
 * Private to http/: the server, its threads and their connections, shared
 * by server.c (requests: parsing what handlers see, answers, dispatch,
 * metrics) and conn.c (sockets, epoll, reading, writing, timeouts).
 */
#ifndef WALLEX_HTTP_INTERNAL_H
#define WALLEX_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "http/http.h"
#include "http/wire.h"
#include "limits.h"

enum request_state {
    REQ_READING,  /* the head is in; the body may still be arriving, or a
                     handler (or a park's resume) is running */
    REQ_PARKED,   /* waiting for another thread (http_park) */
    REQ_ANSWERED, /* the answer is in the connection's output */
};

struct http_thread;
struct route_metrics;

struct http_list {
    struct http_conn *head, *tail;
};

struct http_conn {
    int fd;
    struct http_thread *thread;
    char *in; /* NULL while idle; from WX_HTTP_IN_BYTES_MIN it doubles as
                 bytes arrive, up to what the largest request needs */
    size_t in_len, in_cap;
    size_t scanned;                 /* how far the head's end was looked for */
    struct http_wire_chunks chunks; /* when the request's body is chunked */
    bool sent_continue;
    struct wx_buf out;
    size_t out_sent;
    size_t out_counted;       /* of out's unsent bytes, those in the thread's count */
    struct http_request *req; /* the request being read or answered */
    bool readable, writable;
    bool peer_closed;     /* EPOLLRDHUP or EPOLLHUP: the client sends no more */
    bool close_after_out; /* the last answer closes the connection */
    bool lingering;       /* write side shut; reading what is left */
    bool doomed;          /* timed out: closes once its answer is out, or soon */
    bool pending;         /* used up its turn with work left: on t->pending */
    struct http_conn *pending_next;
    bool orphan; /* closed while parked, and the resume is on its way */
    /* Exactly one of the thread's timer lists holds a connection, unless
     * it is parked without a timeout; the deadline is its timeout. */
    struct http_list *timer;
    int64_t deadline_ms;
    struct http_conn *prev, *next;
    struct http_conn *all_prev, *all_next;
};

struct http_thread {
    struct http_server *srv;
    pthread_t tid;
    int epfd;
    int wakefd;
    bool listening;
    int64_t accept_resume_ms; /* accepting paused until then, when > 0 */
    /* Timer lists; all but parked have one timeout each, so appending
     * keeps them sorted by deadline. */
    struct http_list idle;   /* the idle timeout, from the last answer */
    struct http_list head;   /* the head timeout, from a request's first byte */
    struct http_list body;   /* the body timeout, from the end of the head */
    struct http_list send;   /* the send timeout, from the last byte sent */
    struct http_list linger; /* WX_HTTP_LINGER_MS */
    struct http_list parked; /* each park's own timeout, kept sorted */
    size_t out_bytes;        /* answer bytes queued on its connections, unsent */
    size_t out_budget;       /* its share of the server's unsent_bytes_max */
    size_t in_bytes;         /* its connections' read buffers */
    size_t in_budget;        /* its share of WX_HTTP_IN_BYTES_MAX */
    size_t freed_bytes;      /* buffers freed since malloc last gave memory back */
    int64_t trimmed_ms;
    atomic_size_t out_bytes_seen, in_bytes_seen; /* the two, for /metrics */
    struct http_conn *all;
    struct http_conn *pending; /* to run again before the next wait */
    size_t orphans;            /* connections closed while their resume is on its way */
    pthread_mutex_t done_lock;
    struct http_request *resumed; /* http_resume'd, newest first (under done_lock) */
    int *incoming;                /* accepted by another thread for this one (under done_lock) */
    size_t incoming_len, incoming_cap;
    char *spare[WX_HTTP_SPARE_BUFFERS]; /* read buffers to reuse */
    size_t spare_len;
    int64_t now_ms; /* read once per wakeup */
    int64_t date_s;
    char date[40];
};

struct http_server {
    const struct http_route *routes;
    size_t routes_len;
    struct route_metrics *metrics; /* one per route, then one for no route */
    void *app;
    struct es_writer *writer;
    const struct http_read_side *read_side;
    int64_t min_position_wait_ms;
    const struct http_authenticator *authenticator;
    unsigned port;
    unsigned connections_max;
    int64_t idle_timeout_ms, head_timeout_ms, body_timeout_ms, send_timeout_ms;
    size_t unsent_bytes_max;
    atomic_uint active;
    atomic_uint connections;
    atomic_bool stopping;
    atomic_bool draining; /* every new request: 503 shutting_down, close */
    atomic_uint_fast64_t evicted;  /* stalled connections closed to make room */
    atomic_uint_fast64_t refused_out; /* large answers refused over the budget */
    pthread_mutex_t listen_lock; /* the listening socket against quiesce */
    int listen_fd;
    struct http_thread *threads;
    unsigned threads_len;
    unsigned threads_started;
    unsigned next_thread; /* the next accepted connection's (under listen_lock) */
};

/* ---- server.c, for conn.c ---- */

/* A request on connection c, once its head is in; NULL without memory. */
struct http_request *http_request_new(struct http_conn *c);
/* Counts, logs and frees a request, answered or not. */
void http_request_end(struct http_request *req);
/* Routes a request whose head is in and checks what the head shows (the
 * method, the route, the body's size and type, the common headers). False
 * when it answered: with the connection closing when a body follows, which
 * is then never read. */
bool http_request_head(struct http_request *req);
/* Runs the handler of a request whose body is in (after X-Min-Position,
 * if any); the request is answered or parked. */
void http_dispatch(struct http_request *req);

/* ---- conn.c, for server.c ---- */

/* Listens and starts the threads; http_conns_stop undoes what was done. */
int http_conns_start(struct http_server *srv, const struct sockaddr_storage *addr, bool v6,
                     const char *listen);
void http_conns_stop(struct http_server *srv);
/* A request that ends its connection without an answer (a fault
 * injected to lose one). */
void http_conn_drop(struct http_request *req);

#endif
