/*
 * The HTTP/1.1 server: a few threads, each with its own epoll set, its own
 * connections and a queue of parked requests resumed from other threads.
 *
 * A connection reads with edge-triggered events: one recv per request when
 * the request fits (a short read means the socket was drained), and no
 * epoll_ctl per request. A parked request (a command with the writer, a
 * query waiting for the read side) parks its connection: nothing is read
 * or parsed until http_resume hands the request back to the connection's
 * thread, which runs the park's resume and goes on with any pipelined
 * request. One eventfd write wakes a thread for a whole batch of resumes.
 *
 * Requests are parsed by http/wire.c. A connection holds a read buffer only
 * while a request is arriving or pipelined bytes wait, and that buffer grows
 * with what arrives, so idle keep-alive connections cost a small struct
 * each and a slow one a few KiB. Every malformed request is answered with
 * problem+json and the connection closed.
 *
 * Nothing waits without a bound: a request's head must arrive within the
 * head timeout of its first byte and its body within the body timeout of
 * the head (408 otherwise), an answer the client does not read closes the
 * connection after the send timeout without progress, an idle connection
 * closes after the idle timeout. A connection reads nothing while its own
 * answer is unsent, and a large answer to a GET is refused (503) while the
 * thread's unsent answers are over its share of the server's budget
 * (--unsent-bytes-max).
 */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "http/internal.h"
#include "limits.h"
#include "obs/log.h"

/* The most a read buffer grows to: a head, the largest body, and one more
 * read's worth of a chunked body's framing. */
#define CONN_IN_BYTES (WX_HTTP_HEAD_BYTES_MAX + WX_BODY_BYTES_MAX + 4096)

/* Tags for the epoll entries that are not connections. */
static char tag_listen, tag_wake;

/* ---- timer lists: appended with a fixed timeout, so sorted by deadline ---- */

static void list_unlink(struct http_conn *c)
{
    struct http_list *l = c->timer;
    if (l == NULL)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    c->timer = NULL;
}

static void list_append(struct http_list *l, struct http_conn *c, int64_t deadline_ms)
{
    list_unlink(c);
    c->timer = l;
    c->deadline_ms = deadline_ms;
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail != NULL)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

/* For timeouts that differ: walks back from the tail, where a timeout
 * like most others lands at once. */
static void list_insert_sorted(struct http_list *l, struct http_conn *c, int64_t deadline_ms)
{
    list_unlink(c);
    struct http_conn *after = l->tail;
    while (after != NULL && after->deadline_ms > deadline_ms)
        after = after->prev;
    c->timer = l;
    c->deadline_ms = deadline_ms;
    c->prev = after;
    c->next = after != NULL ? after->next : l->head;
    if (c->next != NULL)
        c->next->prev = c;
    else
        l->tail = c;
    if (after != NULL)
        after->next = c;
    else
        l->head = c;
}

static void wake(struct http_thread *t)
{
    uint64_t one = 1;
    ssize_t n = write(t->wakefd, &one, sizeof(one));
    (void)n; /* an eventfd write fails only when its counter is full */
}

/* ---- parking ---- */

void http_park(struct http_request *req, const struct http_park_ops *ops, int64_t timeout_ms)
{
    struct http_conn *c = req->conn;
    assert(req->state == REQ_READING && req->park == NULL);
    assert(ops->resume != NULL && ops->cancel != NULL && timeout_ms >= 0);
    req->state = REQ_PARKED;
    req->park = ops;
    if (timeout_ms > 0)
        list_insert_sorted(&c->thread->parked, c, c->thread->now_ms + timeout_ms);
    else
        list_unlink(c);
}

/* Any thread: hands the request back to its connection's thread. Only the
 * first resume of a batch pays for the wakeup. */
void http_resume(struct http_request *req)
{
    struct http_thread *t = req->conn->thread;
    bool twice = atomic_exchange(&req->resume_pending, true);
    assert(!twice); /* once per park */
    (void)twice;
    pthread_mutex_lock(&t->done_lock);
    bool first = t->resumed == NULL;
    req->resumed_next = t->resumed;
    t->resumed = req;
    pthread_mutex_unlock(&t->done_lock);
    if (first)
        wake(t);
}

bool http_client_gone(const struct http_request *req)
{
    return req->conn->orphan;
}

/* Asks a park to withdraw its wake-up (a timeout, a closing connection, a
 * stopping server). True when the request is unparked: answered (only on
 * a timeout) or to be ended; false when its resume is on its way. */
static bool park_cancel(struct http_request *req, bool timed_out)
{
    assert(req->state == REQ_PARKED);
    if (!req->park->cancel(req, timed_out))
        return false;
    req->park = NULL;
    if (req->state == REQ_PARKED)
        req->state = timed_out ? REQ_READING : REQ_ANSWERED;
    return true;
}

/* ---- connections ---- */

enum step {
    STEP_AGAIN,     /* something happened; look again */
    STEP_NEED_DATA, /* the request is not all in */
    STEP_CLOSED,    /* the connection is gone */
};

/* Keeps the thread's count of unsent answer bytes in step with c's; the
 * count is published for /metrics (read by the other threads). */
static void conn_account(struct http_conn *c)
{
    struct http_thread *t = c->thread;
    size_t unsent = c->out.len - c->out_sent;
    if (unsent == c->out_counted)
        return;
    t->out_bytes = t->out_bytes - c->out_counted + unsent;
    c->out_counted = unsent;
    atomic_store_explicit(&t->out_bytes_seen, t->out_bytes, memory_order_relaxed);
}

/* The thread's read buffer bytes, likewise. */
static void in_account(struct http_thread *t, size_t add, size_t sub)
{
    t->in_bytes = t->in_bytes + add - sub;
    atomic_store_explicit(&t->in_bytes_seen, t->in_bytes, memory_order_relaxed);
}

/* A read buffer of WX_HTTP_IN_BYTES_MIN, the size every one starts at. */
static char *buffer_get(struct http_thread *t)
{
    if (t->spare_len > 0)
        return t->spare[--t->spare_len];
    return malloc(WX_HTTP_IN_BYTES_MIN);
}

/* Buffers of the starting size go back to a small per-thread stack rather
 * than to malloc, for the next request; grown ones are freed. */
static void buffer_put(struct http_thread *t, char *b, size_t cap)
{
    if (b == NULL)
        return;
    if (cap == WX_HTTP_IN_BYTES_MIN && t->spare_len < WX_HTTP_SPARE_BUFFERS) {
        t->spare[t->spare_len++] = b;
    } else {
        free(b);
        t->freed_bytes += cap;
    }
}

/* malloc keeps what was freed in the middle of its heaps for the next
 * allocations, so RSS stayed up after thousands of slow clients were
 * gone. After many megabytes freed, it is asked to give the free pages
 * back (at most once a WX_HTTP_TRIM_MS: the walk over its heaps costs a
 * few milliseconds). */
static void give_back_memory(struct http_thread *t)
{
    if (t->freed_bytes < WX_HTTP_TRIM_BYTES || t->now_ms - t->trimmed_ms < WX_HTTP_TRIM_MS)
        return;
    malloc_trim(0);
    t->freed_bytes = 0;
    t->trimmed_ms = t->now_ms;
}

static void conn_release_in(struct http_conn *c)
{
    in_account(c->thread, 0, c->in_cap);
    buffer_put(c->thread, c->in, c->in_cap);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    c->scanned = 0;
}

static void conn_free(struct http_conn *c)
{
    struct http_thread *t = c->thread;
    list_unlink(c);
    for (struct http_conn **p = &t->pending; c->pending && *p != NULL; p = &(*p)->pending_next) {
        if (*p == c) {
            *p = c->pending_next;
            break;
        }
    }
    if (c->all_prev != NULL)
        c->all_prev->all_next = c->all_next;
    else
        t->all = c->all_next;
    if (c->all_next != NULL)
        c->all_next->all_prev = c->all_prev;
    if (c->req != NULL)
        http_request_end(c->req);
    if (c->orphan)
        t->orphans--;
    conn_release_in(c);
    t->freed_bytes += c->out.cap;
    wx_buf_free(&c->out);
    wx_buf_init(&c->out);
    c->out_sent = 0;
    conn_account(c);
    atomic_fetch_sub(&t->srv->connections, 1);
    free(c);
}

/* Closes the socket. A parked request's wake-up is withdrawn; when it
 * cannot be, the connection stays allocated, as an orphan, until the
 * resume has run. */
static void conn_close(struct http_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    list_unlink(c);
    if (c->req != NULL && c->req->state == REQ_PARKED && !park_cancel(c->req, false)) {
        c->orphan = true;
        c->thread->orphans++;
        return;
    }
    conn_free(c);
}

void http_conn_drop(struct http_request *req)
{
    assert(req->state == REQ_READING);
    req->state = REQ_ANSWERED; /* with nothing: status stays 0, uncounted */
    req->close = true;
}

/* Puts c on the timer list its state calls for, when it stops running for
 * now. The head and body deadlines run from the start of their phase and
 * no byte that arrives moves them (a client sending one byte a second
 * gets no more time than one that sends nothing); the idle timeout runs
 * from the last answer, the send timeout from the last byte sent. A
 * deadline is restarted only by leaving its list (list_unlink). */
static void conn_arm(struct http_conn *c)
{
    struct http_thread *t = c->thread;
    struct http_server *srv = t->srv;
    struct http_list *l;
    int64_t timeout_ms;
    if (c->lingering || (c->req != NULL && c->req->state == REQ_PARKED))
        return; /* on the linger list, or where http_park put it */
    if (c->doomed) {
        /* Its 408 is not out yet: it gets a lingering close's time, once. */
        if (c->timer != &t->linger)
            list_append(&t->linger, c, t->now_ms + WX_HTTP_LINGER_MS);
        return;
    }
    if (c->out_sent < c->out.len) {
        l = &t->send;
        timeout_ms = srv->send_timeout_ms;
    } else if (c->req != NULL) {
        l = &t->body;
        timeout_ms = srv->body_timeout_ms;
    } else if (c->in_len > 0) {
        l = &t->head;
        timeout_ms = srv->head_timeout_ms;
    } else {
        l = &t->idle;
        timeout_ms = srv->idle_timeout_ms;
    }
    if (c->timer != l)
        list_append(l, c, t->now_ms + timeout_ms);
}

/* Drops the first n bytes of the read buffer (an answered request). */
static void conn_consume(struct http_conn *c, size_t n)
{
    assert(n <= c->in_len);
    if (n < c->in_len)
        memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
    c->scanned = 0;
}

/* A full read buffer doubles, up to what the largest request needs: the
 * buffer grows with what arrives instead of being that big from the first
 * byte. False when it cannot (wire.c refuses a request before that). */
static bool conn_grow_in(struct http_conn *c)
{
    if (c->in_cap >= CONN_IN_BYTES)
        return false;
    size_t cap = 2 * c->in_cap < CONN_IN_BYTES ? 2 * c->in_cap : CONN_IN_BYTES;
    char *p = realloc(c->in, cap);
    if (p == NULL)
        return false;
    in_account(c->thread, cap, c->in_cap);
    c->in = p;
    c->in_cap = cap;
    return true;
}

/* 1 read something, 0 nothing to read now, -1 end of stream or error. */
static int conn_read(struct http_conn *c)
{
    if (c->in == NULL) {
        if ((c->in = buffer_get(c->thread)) == NULL)
            return -1;
        c->in_cap = WX_HTTP_IN_BYTES_MIN;
        in_account(c->thread, c->in_cap, 0);
    }
    if (c->in_len == c->in_cap && !conn_grow_in(c))
        return -1;
    size_t room = c->in_cap - c->in_len;
    ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
    if (n > 0) {
        c->in_len += (size_t)n;
        /* A short read drained the socket; the next byte brings an edge. */
        if ((size_t)n < room)
            c->readable = false;
        return 1;
    }
    if (n < 0 && errno == EINTR)
        return 1;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->readable = false;
        return 0;
    }
    return -1;
}

/* Sends what is queued. -1 on a dead connection. Each byte sent restarts
 * the send timeout; the thread's unsent count follows. */
static int conn_flush(struct http_conn *c)
{
    if (!wx_buf_ok(&c->out))
        return -1;
    size_t before = c->out_sent;
    while (c->out_sent < c->out.len && c->writable) {
        ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent, MSG_NOSIGNAL);
        if (n > 0)
            c->out_sent += (size_t)n;
        else if (n < 0 && errno == EAGAIN)
            c->writable = false;
        else if (!(n < 0 && errno == EINTR))
            return -1;
    }
    if (c->out_sent == c->out.len) {
        c->out.len = 0;
        c->out_sent = 0;
    }
    if (c->out_sent != before && c->timer == &c->thread->send)
        list_unlink(c);
    conn_account(c);
    return 0;
}

/* An answer the client asked for with Expect: 100-continue, before it
 * sends a body it was not sure we would take. */
static void maybe_continue(struct http_conn *c)
{
    struct http_request *req = c->req;
    if (req->wire.expect_continue && req->wire.minor == 1 && !c->sent_continue) {
        wx_buf_adds(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        c->sent_continue = true;
    }
}

/* A request we will not read further: answer and close (what follows it
 * on the connection is never read). */
static enum step answer_and_close(struct http_conn *c, const struct es_outcome *o, const char *why)
{
    c->req->close = true;
    c->req->next_request = c->in_len;
    http_reply_problem(c->req, o, why);
    return STEP_AGAIN;
}

/* The answer to a head or body wire.c refused. */
static const struct es_outcome *wire_outcome(enum http_wire_result r)
{
    switch (r) {
    case HTTP_WIRE_URI_TOO_LONG:
        return ES_uri_too_long;
    case HTTP_WIRE_HEAD_TOO_LARGE:
        return ES_header_fields_too_large;
    case HTTP_WIRE_BODY_TOO_LARGE:
        return ES_payload_too_large;
    default:
        return ES_invalid_request;
    }
}

static enum step conn_start_request(struct http_conn *c)
{
    struct http_server *srv = c->thread->srv;
    /* RFC 9112 §2.2: empty lines before a request line are ignored. */
    size_t skip = 0;
    while (skip + 1 < c->in_len && c->in[skip] == '\r' && c->in[skip + 1] == '\n')
        skip += 2;
    if (skip > 0)
        conn_consume(c, skip);
    if (c->in_len == 0) {
        /* Idle: a keep-alive connection gives its read buffer back, and
         * keeps an answer buffer only if it is small. */
        conn_release_in(c);
        if (c->out.cap > WX_HTTP_KEPT_OUT_BYTES) {
            c->thread->freed_bytes += c->out.cap;
            wx_buf_free(&c->out);
            wx_buf_init(&c->out);
        }
        return STEP_NEED_DATA;
    }
    enum http_wire_result r = http_wire_head_end(c->in, c->in_len, &c->scanned);
    if (r == HTTP_WIRE_INCOMPLETE)
        return STEP_NEED_DATA;
    if ((c->req = http_request_new(c)) == NULL) {
        conn_close(c);
        return STEP_CLOSED;
    }
    struct http_request *req = c->req;
    const char *why = r == HTTP_WIRE_BAD              ? "a line ends in a bare CR or LF"
                      : r == HTTP_WIRE_URI_TOO_LONG ? "the URL is too long"
                                                    : "the request line and headers are too large";
    if (r == HTTP_WIRE_OK) {
        /* Parsed in a copy in the request's arena: the read buffer may
         * grow (and move) while the body arrives. */
        char *head = wx_arena_alloc(&req->arena, c->scanned);
        if (head == NULL)
            return answer_and_close(c, ES_internal_error, "out of memory");
        memcpy(head, c->in, c->scanned);
        r = http_wire_parse_head(head, c->scanned, &req->wire, &why);
    }
    if (r != HTTP_WIRE_OK)
        return answer_and_close(c, wire_outcome(r), why);
    req->method = req->wire.method;
    req->path = req->wire.target;
    /* Over the connection limit: a clear answer and a closed connection
     * rather than a silent wait. */
    if (atomic_load(&srv->connections) > srv->connections_max)
        return answer_and_close(c, ES_overloaded, "too many open connections");
    if (!http_request_head(req))
        return STEP_AGAIN;
    if (req->wire.chunked)
        http_wire_chunks_init(&c->chunks, req->wire.head_bytes);
    c->sent_continue = false;
    return STEP_AGAIN;
}

/* Reads the body of the request whose head is in, and dispatches it. */
static enum step conn_body(struct http_conn *c)
{
    struct http_request *req = c->req;
    size_t body_at, body_len, next;
    if (req->wire.chunked) {
        const char *why = NULL;
        size_t body_max = req->route->body_bytes_max;
        enum http_wire_result r =
            http_wire_chunks_feed(&c->chunks, c->in, &c->in_len, body_max, &why);
        if (r == HTTP_WIRE_BODY_TOO_LARGE && body_max == 0)
            return answer_and_close(c, ES_body_not_allowed, "this route takes no request body");
        if (r != HTTP_WIRE_OK && r != HTTP_WIRE_INCOMPLETE)
            return answer_and_close(c, wire_outcome(r), why);
        if (r == HTTP_WIRE_INCOMPLETE) {
            maybe_continue(c);
            return STEP_NEED_DATA;
        }
        body_at = c->chunks.out_pos;
        body_len = c->chunks.out_len;
        next = c->chunks.in_pos;
    } else {
        size_t want = req->wire.content_length > 0 ? (size_t)req->wire.content_length : 0;
        if (c->in_len - req->wire.head_bytes < want) {
            maybe_continue(c);
            return STEP_NEED_DATA;
        }
        body_at = req->wire.head_bytes;
        body_len = want;
        next = body_at + want;
    }
    req->next_request = next;
    /* The body is copied out so it can end in a NUL without touching a
     * pipelined request behind it. */
    req->body = wx_arena_strndup(&req->arena, c->in + body_at, body_len);
    if (req->body == NULL)
        return answer_and_close(c, ES_internal_error, "out of memory");
    req->body_len = body_len;
    http_dispatch(req);
    return STEP_AGAIN;
}

/* A connection that used up its turn runs again after the others have had
 * theirs: one client pipelining requests (or pouring bytes into a
 * lingering close) cannot keep its thread from everyone else. */
static void conn_defer(struct http_conn *c)
{
    struct http_thread *t = c->thread;
    if (!c->pending) {
        c->pending = true;
        c->pending_next = t->pending;
        t->pending = c;
    }
}

/* A lingering close: reads and drops what the client still sends, up to a
 * turn's bytes, until the client closes too. False when closed. */
static bool conn_linger(struct http_conn *c)
{
    char sink[4096];
    for (size_t got = 0;;) {
        if (got >= WX_HTTP_TURN_BYTES) {
            conn_defer(c);
            return true;
        }
        ssize_t n = recv(c->fd, sink, sizeof(sink), 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            c->readable = false;
            return true;
        } else if (!(n < 0 && errno == EINTR)) {
            conn_close(c);
            return false;
        }
    }
}

/* The request on c has been answered: it ends, and the connection goes on
 * after it (or is to close once the answer is out). */
static void conn_end_request(struct http_conn *c)
{
    struct http_request *req = c->req;
    c->close_after_out |= req->close;
    size_t next = req->next_request;
    c->req = NULL;
    http_request_end(req);
    if (!c->close_after_out)
        conn_consume(c, next);
    /* The idle or the next request's head timeout starts afresh. */
    list_unlink(c);
}

/* The answer is out and the connection is to close: the write side is
 * shut, and what the client still sends is read and dropped a while. */
static void conn_start_linger(struct http_conn *c)
{
    struct http_thread *t = c->thread;
    shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    conn_release_in(c);
    list_append(&t->linger, c, t->now_ms + WX_HTTP_LINGER_MS);
}

/* Runs a connection as far as it can go without waiting, within a turn.
 * False when the connection was closed. */
static bool conn_steps(struct http_conn *c)
{
    for (int steps = 0;; steps++) {
        if (steps == WX_HTTP_TURN_STEPS) {
            conn_defer(c);
            return true;
        }
        if (c->lingering)
            return conn_linger(c);
        struct http_request *req = c->req;
        if (req != NULL && req->state == REQ_PARKED)
            return true;
        if (req != NULL && req->state == REQ_ANSWERED) {
            conn_end_request(c);
            continue;
        }
        if (conn_flush(c) < 0) {
            conn_close(c);
            return false;
        }
        if (c->out.len > 0)
            return true; /* EPOLLOUT brings us back; nothing is read meanwhile */
        if (c->close_after_out) {
            conn_start_linger(c);
            continue;
        }
        enum step s = req == NULL ? conn_start_request(c) : conn_body(c);
        if (s == STEP_CLOSED)
            return false;
        if (s != STEP_NEED_DATA)
            continue;
        if (!c->readable) {
            /* The client has half-closed and every byte it sent is read:
             * no request can complete any more (a partial one is dropped). */
            if (c->peer_closed || conn_flush(c) < 0) {
                conn_close(c);
                return false;
            }
            return true;
        }
        if (conn_read(c) < 0) {
            conn_close(c);
            return false;
        }
    }
}

static void conn_run(struct http_conn *c)
{
    if (conn_steps(c))
        conn_arm(c);
}

/* A head or body that did not arrive in time: 408, and the connection
 * closes soon (a slow client gets its answer, but keeps its slot no longer
 * than a lingering close). */
static void conn_time_out(struct http_conn *c)
{
    if (c->req == NULL && (c->req = http_request_new(c)) == NULL) {
        conn_close(c);
        return;
    }
    assert(c->req->state == REQ_READING);
    c->doomed = true;
    list_unlink(c);
    answer_and_close(c, ES_request_timeout, "the request did not arrive in time");
    conn_run(c);
}

/* Past --connections-max, or past the thread's share of read buffer
 * bytes, the thread makes room by closing its oldest stalled connections:
 * requests that have been arriving for at least WX_HTTP_STALLED_MS
 * (slowloris, slow bodies), until it is back within both. Idle keep-alive
 * connections, parked requests and answers being sent are never taken.
 * Called after a wakeup's events, never during them: a connection closed
 * here may have an event further down the batch. */
static void conn_evict_stalled(struct http_thread *t)
{
    struct http_server *srv = t->srv;
    while (atomic_load(&srv->connections) > srv->connections_max ||
           t->in_bytes > t->in_budget) {
        struct http_conn *h = t->head.head, *b = t->body.head;
        int64_t h_start = h != NULL ? h->deadline_ms - srv->head_timeout_ms : INT64_MAX;
        int64_t b_start = b != NULL ? b->deadline_ms - srv->body_timeout_ms : INT64_MAX;
        struct http_conn *victim = h_start <= b_start ? h : b;
        if (victim == NULL || t->now_ms - (h_start <= b_start ? h_start : b_start) <
                                  WX_HTTP_STALLED_MS)
            return;
        atomic_fetch_add_explicit(&srv->evicted, 1, memory_order_relaxed);
        conn_close(victim);
    }
}

/* ---- threads ---- */

static void accept_pause(struct http_thread *t)
{
    struct http_server *srv = t->srv;
    if (t->listening) {
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
        t->listening = false;
    }
    t->accept_resume_ms = t->now_ms + WX_HTTP_ACCEPT_PAUSE_MS;
}

static int listen_watch(struct http_thread *t)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &tag_listen};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->srv->listen_fd, &ev) != 0)
        return WX_ERR_IO;
    t->listening = true;
    return 0;
}

/* A connection accepted (and counted) for thread t, on t. */
static void conn_new(struct http_thread *t, int fd)
{
    struct http_server *srv = t->srv;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct http_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        atomic_fetch_sub(&srv->connections, 1);
        return;
    }
    c->fd = fd;
    c->thread = t;
    c->writable = true;
    wx_buf_init(&c->out);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        free(c);
        atomic_fetch_sub(&srv->connections, 1);
        return;
    }
    c->all_next = t->all;
    if (t->all != NULL)
        t->all->all_prev = c;
    t->all = c;
    conn_arm(c);
}

/* Gives an accepted connection to thread to, which sets it up. */
static void hand_over(struct http_thread *to, int fd)
{
    pthread_mutex_lock(&to->done_lock);
    bool ok = true;
    if (to->incoming_len == to->incoming_cap) {
        size_t cap = to->incoming_cap ? 2 * to->incoming_cap : 16;
        int *p = realloc(to->incoming, cap * sizeof(*p));
        if (p == NULL) {
            ok = false;
        } else {
            to->incoming = p;
            to->incoming_cap = cap;
        }
    }
    if (ok)
        to->incoming[to->incoming_len++] = fd;
    pthread_mutex_unlock(&to->done_lock);
    if (!ok) {
        close(fd);
        atomic_fetch_sub(&to->srv->connections, 1);
        return;
    }
    wake(to);
}

static void accept_some(struct http_thread *t)
{
    struct http_server *srv = t->srv;
    pthread_mutex_lock(&srv->listen_lock);
    for (int i = 0; i < WX_HTTP_ACCEPTS_PER_WAKE && srv->listen_fd >= 0; i++) {
        /* Past the spare connections, new ones wait in the backlog. */
        if (atomic_load(&srv->connections) >= srv->connections_max + WX_HTTP_CONNECTIONS_SPARE) {
            accept_pause(t);
            break;
        }
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            /* Round robin: whichever thread epoll woke, the connections
             * spread over all of them (one thread woken for a burst of
             * connects would otherwise take the whole burst). */
            atomic_fetch_add(&srv->connections, 1);
            struct http_thread *to = &srv->threads[srv->next_thread++ % srv->threads_len];
            if (to == t)
                conn_new(t, fd);
            else
                hand_over(to, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            wx_logf(WX_LOG_WARN, "http: cannot accept (%s); pausing %d ms", strerror(errno),
                    WX_HTTP_ACCEPT_PAUSE_MS);
            accept_pause(t);
        }
        break;
    }
    pthread_mutex_unlock(&srv->listen_lock);
}

static void accept_resume(struct http_thread *t)
{
    struct http_server *srv = t->srv;
    pthread_mutex_lock(&srv->listen_lock);
    t->accept_resume_ms = 0;
    if (srv->listen_fd >= 0 && !t->listening)
        listen_watch(t);
    pthread_mutex_unlock(&srv->listen_lock);
}

/* The requests resumed for thread t since it last looked, oldest first. */
static struct http_request *take_resumed(struct http_thread *t)
{
    pthread_mutex_lock(&t->done_lock);
    struct http_request *list = t->resumed;
    t->resumed = NULL;
    pthread_mutex_unlock(&t->done_lock);
    struct http_request *fifo = NULL;
    while (list != NULL) {
        struct http_request *next = list->resumed_next;
        list->resumed_next = fifo;
        fifo = list;
        list = next;
    }
    return fifo;
}

/* Runs a resumed request's resume on its thread, then its connection. */
static void run_resume(struct http_request *req)
{
    struct http_conn *c = req->conn;
    const struct http_park_ops *ops = req->park;
    assert(req->state == REQ_PARKED && ops != NULL);
    req->park = NULL;
    req->state = REQ_READING;
    /* Before resume: it may park again, and the next wake-up come at once. */
    atomic_store(&req->resume_pending, false);
    ops->resume(req);
    if (req->state == REQ_READING)
        http_reply_problem(req, ES_internal_error, "the request was resumed and not answered");
    if (c->orphan) {
        if (req->state == REQ_PARKED && !park_cancel(req, false))
            return; /* still an orphan: its next resume ends it */
        conn_free(c);
        return;
    }
    conn_run(c);
}

/* Sets up the connections other threads accepted for this one, then runs
 * the resumes handed over. */
static void drain_done(struct http_thread *t)
{
    uint64_t v;
    ssize_t n = read(t->wakefd, &v, sizeof(v));
    (void)n;
    pthread_mutex_lock(&t->done_lock);
    int *incoming = t->incoming;
    size_t incoming_len = t->incoming_len;
    t->incoming = NULL;
    t->incoming_len = t->incoming_cap = 0;
    pthread_mutex_unlock(&t->done_lock);
    for (size_t i = 0; i < incoming_len; i++)
        conn_new(t, incoming[i]);
    free(incoming);
    for (struct http_request *req = take_resumed(t), *next; req != NULL; req = next) {
        next = req->resumed_next;
        run_resume(req);
    }
}

/* Connections whose deadline on l passed: closed, or (a request that did
 * not arrive in time) answered 408 first. */
static void expire(struct http_thread *t, struct http_list *l, bool answer)
{
    while (l->head != NULL && l->head->deadline_ms <= t->now_ms) {
        if (answer)
            conn_time_out(l->head);
        else
            conn_close(l->head);
    }
}

/* Parks whose timeout passed: each is asked to withdraw its wake-up and
 * answer; one that cannot waits for its resume without a timeout. */
static void expire_parked(struct http_thread *t)
{
    struct http_list *l = &t->parked;
    while (l->head != NULL && l->head->deadline_ms <= t->now_ms) {
        struct http_conn *c = l->head;
        list_unlink(c);
        if (!park_cancel(c->req, true))
            continue;
        if (c->req->state == REQ_READING)
            http_reply_problem(c->req, ES_internal_error, "the wait ended without an answer");
        conn_run(c);
    }
}

static void *thread_main(void *arg)
{
    struct http_thread *t = arg;
    struct http_server *srv = t->srv;
    struct epoll_event ev[WX_HTTP_EVENTS_BATCH];
    while (!atomic_load(&srv->stopping)) {
        int n =
            epoll_wait(t->epfd, ev, WX_HTTP_EVENTS_BATCH, t->pending != NULL ? 0 : WX_HTTP_TICK_MS);
        t->now_ms = wx_monotonic_ms();
        bool woken = false;
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &tag_listen) {
                accept_some(t);
            } else if (p == &tag_wake) {
                woken = true;
            } else {
                struct http_conn *c = p;
                uint32_t e = ev[i].events;
                if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    c->readable = true;
                /* Remembered: the FIN may come with the request's last
                 * bytes, and no later edge will say so. */
                if (e & (EPOLLRDHUP | EPOLLHUP))
                    c->peer_closed = true;
                if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                    c->writable = true;
                conn_run(c);
            }
        }
        /* After the events: answering may close a connection that is
         * further down this batch's events. */
        if (woken)
            drain_done(t);
        conn_evict_stalled(t);
        expire(t, &t->idle, false);
        expire(t, &t->head, true);
        expire(t, &t->body, true);
        expire(t, &t->send, false);
        expire(t, &t->linger, false);
        expire_parked(t);
        give_back_memory(t);
        if (t->accept_resume_ms > 0 && t->now_ms >= t->accept_resume_ms)
            accept_resume(t);
        /* Connections whose turn ran out go on; new events come first. */
        struct http_conn *pending = t->pending;
        t->pending = NULL;
        while (pending != NULL) {
            struct http_conn *c = pending;
            pending = c->pending_next;
            c->pending = false;
            conn_run(c);
        }
    }
    return NULL;
}
/* ---- the server ---- */

static int listen_socket(const struct sockaddr_storage *addr, bool v6, unsigned *port_out)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (bind(fd, (const struct sockaddr *)addr, len) != 0 ||
        listen(fd, WX_HTTP_LISTEN_BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
        close(fd);
        return -1;
    }
    *port_out = ntohs(v6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                         : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

/* Closes every connection of a stopped thread. A parked request whose
 * wake-up cannot be withdrawn (its resume is on its way) is waited for, so
 * nothing calls http_resume on freed memory; past the grace period it is
 * leaked instead, with an error. */
static void thread_close_all(struct http_thread *t)
{
    for (struct http_conn *c = t->all, *next; c != NULL; c = next) {
        next = c->all_next;
        if (!c->orphan)
            conn_close(c);
    }
    int64_t deadline_ms = wx_monotonic_ms() + WX_SHUTDOWN_GRACE_MS;
    while (t->orphans > 0) {
        struct http_request *req = take_resumed(t);
        if (req == NULL && wx_monotonic_ms() > deadline_ms) {
            wx_logf(WX_LOG_ERROR, "http: stopped with %zu requests never resumed", t->orphans);
            return;
        }
        if (req == NULL)
            usleep(1000);
        for (struct http_request *next; req != NULL; req = next) {
            next = req->resumed_next;
            run_resume(req);
        }
    }
}

static void thread_free(struct http_thread *t)
{
    thread_close_all(t);
    for (size_t i = 0; i < t->incoming_len; i++) {
        close(t->incoming[i]);
        atomic_fetch_sub(&t->srv->connections, 1);
    }
    free(t->incoming);
    for (size_t i = 0; i < t->spare_len; i++)
        free(t->spare[i]);
    assert(t->orphans > 0 || t->out_bytes == 0);
    if (t->epfd >= 0)
        close(t->epfd);
    if (t->wakefd >= 0)
        close(t->wakefd);
    pthread_mutex_destroy(&t->done_lock);
}

int http_conns_start(struct http_server *srv, const struct sockaddr_storage *addr, bool v6,
                     const char *listen)
{
    srv->listen_fd = -1;
    pthread_mutex_init(&srv->listen_lock, NULL);
    atomic_init(&srv->connections, 0);
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->draining, false);
    atomic_init(&srv->evicted, 0);
    srv->threads = calloc(srv->threads_len, sizeof(*srv->threads));
    if (srv->threads == NULL)
        return WX_ERR_NOMEM;
    for (unsigned i = 0; i < srv->threads_len; i++) {
        struct http_thread *t = &srv->threads[i];
        t->srv = srv;
        t->epfd = t->wakefd = -1;
        t->out_budget = srv->unsent_bytes_max / srv->threads_len;
        t->in_budget = WX_HTTP_IN_BYTES_MAX / srv->threads_len;
        atomic_init(&t->out_bytes_seen, 0);
        atomic_init(&t->in_bytes_seen, 0);
        pthread_mutex_init(&t->done_lock, NULL);
    }
    srv->listen_fd = listen_socket(addr, v6, &srv->port);
    if (srv->listen_fd < 0) {
        wx_logf(WX_LOG_ERROR, "http: cannot listen on %s: %s", listen, strerror(errno));
        return WX_ERR_IO;
    }
    for (unsigned i = 0; i < srv->threads_len; i++) {
        struct http_thread *t = &srv->threads[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_wake};
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        t->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (t->epfd < 0 || t->wakefd < 0 ||
            epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wakefd, &ev) != 0 || listen_watch(t) != 0) {
            wx_logf(WX_LOG_ERROR, "http: cannot set up a thread: %s", strerror(errno));
            return WX_ERR_IO;
        }
    }
    for (unsigned i = 0; i < srv->threads_len; i++) {
        if (pthread_create(&srv->threads[i].tid, NULL, thread_main, &srv->threads[i]) != 0) {
            wx_logf(WX_LOG_ERROR, "http: cannot start a thread");
            return WX_ERR_IO;
        }
        srv->threads_started++;
        pthread_setname_np(srv->threads[i].tid, "wx-http");
    }
    return 0;
}

void http_conns_stop(struct http_server *srv)
{
    atomic_store(&srv->stopping, true);
    for (unsigned i = 0; i < srv->threads_started; i++)
        wake(&srv->threads[i]);
    for (unsigned i = 0; i < srv->threads_started; i++)
        pthread_join(srv->threads[i].tid, NULL);
    for (unsigned i = 0; srv->threads != NULL && i < srv->threads_len; i++)
        thread_free(&srv->threads[i]);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    pthread_mutex_destroy(&srv->listen_lock);
    free(srv->threads);
}

void http_server_drain(struct http_server *srv)
{
    http_server_quiesce(srv);
    atomic_store(&srv->draining, true);
}

void http_server_quiesce(struct http_server *srv)
{
    pthread_mutex_lock(&srv->listen_lock);
    if (srv->listen_fd >= 0) {
        for (unsigned i = 0; i < srv->threads_len; i++) {
            if (srv->threads[i].listening)
                epoll_ctl(srv->threads[i].epfd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
            srv->threads[i].listening = false;
        }
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
    pthread_mutex_unlock(&srv->listen_lock);
}
