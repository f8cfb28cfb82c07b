/*
 * wallex bench: the load generator for users (the seeds shipped Python
 * scripts for this). One thread drives C keep-alive connections with epoll.
 *
 * The wallets workload (the default) creates W wallets, runs O operations of
 * a configurable mix (default 60% transfers, 20% credits, 20% debits), shows
 * progress on a terminal, prints ops/s and latency percentiles per operation
 * type, then verifies from its own books: the sum of balances equals the
 * initial money plus the credits minus the debits it saw succeed, every
 * wallet's ledger has one entry per credit or debit event ending at its
 * balance, and the server sees no drift.
 *
 * The orders workload (--workload orders) creates W wallets with funds, then
 * runs O order commands: each connection creates an order of 3 items,
 * confirms it and pays it from a random wallet, then starts the next. It
 * verifies that every wallet's balance is its initial funds minus the totals
 * of the orders paid from it, that each paid order was debited from its
 * wallet exactly once (the debit's "reference"), that the server lists every
 * order with the status and total the bench saw, and that there is no drift.
 *
 * Exits 1 when verification fails.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/money.h"
#include "cli/bench.h"
#include "es/event.h"
#include "http/http.h"

#define BENCH_CONNECTIONS_MAX 4096
#define BENCH_RESPONSE_BYTES_MAX (1024 * 1024)
/* How long one answer may take: an operation under load, and a check
 * after it (/admin/drift folds the whole log, minutes on a large one). */
#define BENCH_ANSWER_MS_MAX 10000
#define BENCH_CHECK_MS_MAX 600000
/* "Authorization: Bearer " and a token of ours (84 bytes), with room. */
#define BENCH_AUTH_BYTES 256
#define LAT_BUCKETS 2048 /* log-linear: 16 sub-buckets per power of two of us */

enum op {
    OP_CREATE,
    OP_TRANSFER,
    OP_CREDIT,
    OP_DEBIT,
    OP_ORDER_CREATE,
    OP_ORDER_CONFIRM,
    OP_ORDER_PAY,
    OP_COUNT
};
static const char *const op_names[OP_COUNT] = {"create",    "transfer", "credit", "debit",
                                               "new-order", "confirm",  "pay"};

/* Every wallet starts with this much (1,000,000.00). */
#define BENCH_INITIAL_MINOR 100000000
/* Items of one order in the orders workload (the issue's "create with 3 items"). */
#define BENCH_ORDER_ITEMS 3

/* What the bench knows of one order it created: acknowledgements only. */
enum bench_order_status { BO_NONE, BO_PENDING, BO_CONFIRMED, BO_PAID };
static const char *const bo_names[] = {"(none)", "pending", "confirmed", "paid"};

struct bench_order {
    int64_t wallet; /* the wallet it is paid from */
    int64_t total_minor;
    enum bench_order_status status;
};

struct lat {
    uint64_t counts[LAT_BUCKETS];
    uint64_t n;
};

static size_t lat_bucket(int64_t us)
{
    if (us < 16)
        return (size_t)(us < 0 ? 0 : us);
    int msb = 63 - __builtin_clzll((unsigned long long)us);
    size_t b = (size_t)(msb - 3) * 16 + (size_t)((us >> (msb - 4)) & 15);
    return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

static int64_t lat_bucket_upper_us(size_t b)
{
    if (b < 16)
        return (int64_t)b;
    int msb = (int)(b / 16) + 3;
    int64_t sub = (int64_t)(b % 16);
    return ((16 + sub + 1) << (msb - 4)) - 1;
}

static int64_t lat_percentile(const struct lat *l, uint64_t per_mille_x10)
{
    if (l->n == 0)
        return 0;
    uint64_t want = (l->n * per_mille_x10 + 9999) / 10000;
    uint64_t seen = 0;
    for (size_t b = 0; b < LAT_BUCKETS; b++) {
        seen += l->counts[b];
        if (seen >= want && seen > 0)
            return lat_bucket_upper_us(b);
    }
    return lat_bucket_upper_us(LAT_BUCKETS - 1);
}

struct conn {
    int fd;
    const char *auth; /* "Authorization: Bearer ...\r\n", or "" */
    enum op op;
    int64_t sent_us;
    int64_t amount_minor;
    int64_t order; /* orders workload: the order this connection is on, -1: none */
    struct wx_buf out;
    size_t out_done;
    struct wx_buf in;
    bool busy;
};

struct bench {
    struct sockaddr_in addr;
    int ep;
    struct conn *conns;
    size_t conns_len;
    uint64_t rnd;
    unsigned mix_transfer, mix_credit; /* percent; debit is the rest */
    int64_t wallets;
    char prefix[32];
    char auth[BENCH_AUTH_BYTES]; /* the Authorization line of every request, or "" */
    int refused_status;          /* the last 4xx, to explain a failed setup */
    bool orders_workload;
    struct bench_order *orders; /* the orders workload's book, by number */
    int64_t orders_len, orders_cap;
    /* results */
    struct lat lat[OP_COUNT];
    uint64_t ok[OP_COUNT], refused[OP_COUNT], failed[OP_COUNT];
    int64_t credits_minor, debits_minor;
    struct es_position last_position; /* the latest X-Position seen (a pair on PostgreSQL) */
    uint64_t started, done;
};

static uint64_t next_rand(struct bench *b)
{
    b->rnd ^= b->rnd << 13;
    b->rnd ^= b->rnd >> 7;
    b->rnd ^= b->rnd << 17;
    return b->rnd;
}

static int conn_open(struct bench *b, struct conn *c)
{
    c->auth = b->auth;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&b->addr, sizeof(b->addr)) != 0) {
        fprintf(stderr, "wallex bench: connect: %s\n", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    return epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void request(struct conn *c, const char *method, const char *path, const char *body)
{
    wx_buf_reset(&c->out);
    wx_buf_printf(&c->out, "%s %s HTTP/1.1\r\nHost: bench\r\n%s", method, path, c->auth);
    if (body != NULL)
        wx_buf_printf(&c->out, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(body), body);
    else
        wx_buf_adds(&c->out, "\r\n");
    c->out_done = 0;
    wx_buf_reset(&c->in);
    c->busy = true;
    c->sent_us = wx_monotonic_us();
    while (c->out_done < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out_done, c->out.len - c->out_done);
        if (n <= 0)
            break; /* the read side will see the error */
        c->out_done += (size_t)n;
    }
}

/* A complete response in c->in: status and body offset, or false. */
static bool response_done(struct conn *c, int *status, const char **body, size_t *body_len,
                          struct es_position *position)
{
    if (c->in.len == 0)
        return false;
    const char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
    if (end == NULL)
        return false;
    size_t head = (size_t)(end - c->in.data) + 4;
    const char *cl = memmem(c->in.data, head, "Content-Length: ", 16);
    size_t len = cl ? (size_t)strtoull(cl + 16, NULL, 10) : 0;
    if (c->in.len < head + len)
        return false;
    *status = (int)strtol(c->in.data + 9, NULL, 10);
    *body = c->in.data + head;
    *body_len = len;
    const char *xp = memmem(c->in.data, head, "X-Position: ", 12);
    char token[ES_POSITION_TOKEN_BYTES];
    size_t t = 0;
    for (xp = xp ? xp + 12 : NULL; xp && t + 1 < sizeof(token) && (isdigit((unsigned char)*xp) ||
                                                                 *xp == '.');)
        token[t++] = *xp++;
    token[t] = '\0';
    if (t == 0 || !es_position_parse(token, position))
        *position = es_position_start();
    return true;
}

/* Waits for one response on any connection; returns it, or NULL on error. */
static struct conn *wait_response(struct bench *b, int timeout_ms, int *status,
                                  const char **body, size_t *body_len)
{
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(b->ep, evs, 64, timeout_ms);
        if (n <= 0) {
            fprintf(stderr, "wallex bench: no answer from the server for %d s\n",
                    timeout_ms / 1000);
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            char tmp[65536];
            ssize_t r = read(c->fd, tmp, sizeof(tmp));
            if (r <= 0 || c->in.len + (size_t)r > BENCH_RESPONSE_BYTES_MAX) {
                /* A refused token closes the connection (its body was
                 * never read): say what the server wanted. */
                fprintf(stderr, "wallex bench: connection closed by the server%s\n",
                        b->refused_status == 401 || b->refused_status == 403
                            ? " after a 401 or 403: it wants an admin token (--token, "
                              "WALLEX_TOKEN, or DATA_DIR/admin.token)"
                            : "");
                return NULL;
            }
            wx_buf_add(&c->in, tmp, (size_t)r);
            struct es_position pos;
            /* One response per call; epoll is level-triggered, so the other
             * ready sockets are reported again by the next wait. */
            if (response_done(c, status, body, body_len, &pos)) {
                c->busy = false;
                if (es_position_cmp(&pos, &b->last_position) > 0)
                    b->last_position = pos;
                return c;
            }
        }
    }
}

/* A response that was already fully buffered by an earlier read. */
static struct conn *buffered_response(struct bench *b, int *status, const char **body,
                                      size_t *body_len)
{
    for (size_t i = 0; i < b->conns_len; i++) {
        struct conn *c = &b->conns[i];
        struct es_position pos;
        if (c->busy && response_done(c, status, body, body_len, &pos)) {
            c->busy = false;
            if (es_position_cmp(&pos, &b->last_position) > 0)
                b->last_position = pos;
            return c;
        }
    }
    return NULL;
}

static void wallet_id(struct bench *b, int64_t i, char *out, size_t out_bytes)
{
    snprintf(out, out_bytes, "%s-%" PRId64, b->prefix, i);
}

static void issue(struct bench *b, struct conn *c, enum op op)
{
    char body[256], path[128], a[64], t[64];
    int64_t amount = 1 + (int64_t)(next_rand(b) % 100); /* 0.01 .. 1.00 */
    c->op = op;
    c->amount_minor = amount;
    int64_t x = (int64_t)(next_rand(b) % (uint64_t)b->wallets);
    wallet_id(b, x, a, sizeof(a));
    switch (op) {
    case OP_CREATE:
        wallet_id(b, (int64_t)b->started, a, sizeof(a));
        snprintf(body, sizeof(body),
                 "{\"walletId\":\"%s\",\"ownerId\":\"%s\",\"initialBalance\":\"1000000.00\"}", a,
                 b->prefix);
        request(c, "POST", "/wallets", body);
        break;
    case OP_TRANSFER: {
        int64_t y = (int64_t)(next_rand(b) % (uint64_t)(b->wallets - 1));
        if (y >= x)
            y++;
        wallet_id(b, y, t, sizeof(t));
        snprintf(body, sizeof(body),
                 "{\"fromWalletId\":\"%s\",\"toWalletId\":\"%s\",\"amount\":\"%" PRId64
                 ".%02" PRId64 "\"}",
                 a, t, amount / 100, amount % 100);
        request(c, "POST", "/transfers", body);
        break;
    }
    case OP_CREDIT:
    case OP_DEBIT:
        snprintf(path, sizeof(path), "/wallets/%s/%s", a, op == OP_CREDIT ? "credit" : "debit");
        snprintf(body, sizeof(body), "{\"amount\":\"%" PRId64 ".%02" PRId64 "\"}", amount / 100,
                 amount % 100);
        request(c, "POST", path, body);
        break;
    default:
        break;
    }
    b->started++;
}

static void order_id(struct bench *b, int64_t n, char *out, size_t out_bytes)
{
    snprintf(out, out_bytes, "%s-o%" PRId64, b->prefix, n);
}

/* The orders workload: a connection takes its order on (create, confirm,
 * pay) while each step is acknowledged; after the payment or a refusal it
 * starts the next order. */
static void issue_order(struct bench *b, struct conn *c)
{
    char body[1024], path[160], id[64], w[64];
    if (c->order < 0 || b->orders[c->order].status == BO_PAID) {
        assert(b->orders_len < b->orders_cap); /* one operation at least per order */
        struct bench_order *o = &b->orders[b->orders_len];
        c->order = b->orders_len++;
        o->wallet = (int64_t)(next_rand(b) % (uint64_t)b->wallets);
        order_id(b, c->order, id, sizeof(id));
        int n = snprintf(body, sizeof(body),
                         "{\"orderId\":\"%s\",\"customerId\":\"%s\",\"items\":[", id, b->prefix);
        for (int i = 0; i < BENCH_ORDER_ITEMS; i++) {
            int64_t quantity = 1 + (int64_t)(next_rand(b) % 3);
            int64_t price = 1 + (int64_t)(next_rand(b) % 1000); /* 0.01 .. 10.00 */
            o->total_minor += quantity * price;
            n += snprintf(body + n, sizeof(body) - (size_t)n,
                          "%s{\"productId\":\"p%d\",\"quantity\":%" PRId64
                          ",\"unitPrice\":\"%" PRId64 ".%02" PRId64 "\"}",
                          i ? "," : "", i, quantity, price / 100, price % 100);
        }
        snprintf(body + n, sizeof(body) - (size_t)n, "]}");
        c->op = OP_ORDER_CREATE;
        request(c, "POST", "/orders", body);
    } else {
        const struct bench_order *o = &b->orders[c->order];
        bool pay = o->status == BO_CONFIRMED;
        order_id(b, c->order, id, sizeof(id));
        snprintf(path, sizeof(path), "/orders/%s/%s", id, pay ? "pay" : "confirm");
        wallet_id(b, o->wallet, w, sizeof(w));
        snprintf(body, sizeof(body), pay ? "{\"walletId\":\"%s\"}" : "{}", w);
        c->op = pay ? OP_ORDER_PAY : OP_ORDER_CONFIRM;
        request(c, "POST", path, body);
    }
    b->started++;
}

/* An order command's answer into the book: the status it left the order
 * in, or the end of this order's life on the connection. */
static void settle_order(struct bench *b, struct conn *c, int status)
{
    static const enum bench_order_status after[OP_COUNT] = {
        [OP_ORDER_CREATE] = BO_PENDING,
        [OP_ORDER_CONFIRM] = BO_CONFIRMED,
        [OP_ORDER_PAY] = BO_PAID,
    };
    if (status == 200 || status == 201)
        b->orders[c->order].status = after[c->op];
    else
        c->order = -1;
}

static enum op pick(struct bench *b)
{
    unsigned r = (unsigned)(next_rand(b) % 100);
    if (r < b->mix_transfer)
        return OP_TRANSFER;
    if (r < b->mix_transfer + b->mix_credit)
        return OP_CREDIT;
    return OP_DEBIT;
}

static void progress(struct bench *b, uint64_t total, const char *what, int64_t started_us)
{
    static int64_t shown;
    int64_t now = wx_monotonic_us();
    if (!isatty(STDERR_FILENO) || (now - shown < 200000 && b->done < total))
        return;
    shown = now;
    int width = 40, filled = (int)(b->done * (uint64_t)width / (total ? total : 1));
    int64_t us = now - started_us;
    fprintf(stderr, "\r%-9s [%.*s%*s] %" PRIu64 "/%" PRIu64 "  %" PRIu64 " ops/s ", what, filled,
            "########################################", width - filled, "", b->done, total,
            us > 0 ? b->done * 1000000 / (uint64_t)us : 0);
    if (b->done >= total)
        fputc('\n', stderr);
}

/* What run_phase runs besides one operation type. */
#define PHASE_MIX (-1)    /* the wallet mix */
#define PHASE_ORDERS (-2) /* order lives: create, confirm, pay */

static void issue_next(struct bench *b, struct conn *c, int op)
{
    if (op == PHASE_ORDERS)
        issue_order(b, c);
    else
        issue(b, c, op == PHASE_MIX ? pick(b) : (enum op)op);
}

/* Runs `total` operations over the connections: one type, or a phase. */
static int run_phase(struct bench *b, uint64_t total, int op, const char *what)
{
    b->started = b->done = 0;
    int64_t started_us = wx_monotonic_us();
    for (size_t i = 0; i < b->conns_len && b->started < total; i++)
        issue_next(b, &b->conns[i], op);
    while (b->done < total) {
        int status;
        const char *body;
        size_t len;
        struct conn *c = buffered_response(b, &status, &body, &len);
        if (c == NULL)
            c = wait_response(b, BENCH_ANSWER_MS_MAX, &status, &body, &len);
        if (c == NULL)
            return -1;
        int64_t us = wx_monotonic_us() - c->sent_us;
        struct lat *l = &b->lat[c->op];
        l->counts[lat_bucket(us)]++;
        l->n++;
        if (status >= 200 && status < 300) {
            b->ok[c->op]++;
            if (c->op == OP_CREDIT)
                b->credits_minor += c->amount_minor;
            if (c->op == OP_DEBIT)
                b->debits_minor += c->amount_minor;
        } else if (status >= 400 && status < 500) {
            b->refused[c->op]++;
            b->refused_status = status;
        } else {
            b->failed[c->op]++;
        }
        if (op == PHASE_ORDERS)
            settle_order(b, c, status);
        b->done++;
        if (b->started < total)
            issue_next(b, c, op);
        progress(b, total, what, started_us);
    }
    return 0;
}

/* One synchronous GET on the first connection; the body is parsed JSON. */
static struct json_object *get_json(struct bench *b, const char *path)
{
    struct conn *c = &b->conns[0];
    char hdr[512];
    char pos[ES_POSITION_TOKEN_BYTES];
    es_position_format(&b->last_position, pos);
    snprintf(hdr, sizeof(hdr), "%s HTTP/1.1\r\nHost: bench\r\n%sX-Min-Position: %s", path, b->auth,
             pos);
    wx_buf_reset(&c->out);
    wx_buf_printf(&c->out, "GET %s\r\n\r\n", hdr);
    c->out_done = 0;
    wx_buf_reset(&c->in);
    c->busy = true;
    if (write(c->fd, c->out.data, c->out.len) != (ssize_t)c->out.len)
        return NULL;
    int status;
    const char *body;
    size_t len;
    struct conn *r = wait_response(b, BENCH_CHECK_MS_MAX, &status, &body, &len);
    if (r == NULL || status != 200)
        return NULL;
    return json_tokener_parse(body);
}

static bool money_field(struct json_object *o, const char *key, int64_t *minor)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return false;
    const char *text = json_object_get_string(v);
    return wx_money_parse(text, strlen(text), 2, minor) == 0;
}

/* Counts one wallet's credit/debit events and ledger entries (paged). */
static bool count_pages(struct bench *b, const char *base, bool events, int64_t *count,
                        int64_t *last_after)
{
    char path[256], cursor[64] = "";
    for (int guard = 0; guard < 100000; guard++) {
        snprintf(path, sizeof(path), "%s?limit=1000%s%s", base, cursor[0] ? "&after=" : "",
                 cursor);
        struct json_object *page = get_json(b, path), *data, *next;
        if (page == NULL || !json_object_object_get_ex(page, "data", &data)) {
            json_object_put(page);
            return false;
        }
        for (size_t i = 0; i < json_object_array_length(data); i++) {
            struct json_object *e = json_object_array_get_idx(data, i), *t;
            if (events) {
                json_object_object_get_ex(e, "type", &t);
                const char *type = json_object_get_string(t);
                *count += strcmp(type, "WalletCredited") == 0 || strcmp(type, "WalletDebited") == 0;
            } else {
                (*count)++;
                money_field(e, "balanceAfter", last_after);
            }
        }
        json_object_object_get_ex(page, "nextCursor", &next);
        bool more = next != NULL && json_object_is_type(next, json_type_string);
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", json_object_get_string(next));
        json_object_put(page);
        if (!more)
            return true;
    }
    return false;
}

static bool verify(struct bench *b, int64_t created_ok)
{
    bool ok = true;
    int64_t total = 0;
    char path[256], id[64];
    for (int64_t i = 0; i < b->wallets; i++) {
        wallet_id(b, i, id, sizeof(id));
        snprintf(path, sizeof(path), "/wallets/%s", id);
        struct json_object *w = get_json(b, path);
        int64_t balance = 0, events = 0, entries = 0, last = 0;
        if (w == NULL || !money_field(w, "balance", &balance)) {
            fprintf(stderr, "verify: cannot read wallet %s\n", id);
            json_object_put(w);
            return false;
        }
        json_object_put(w);
        total += balance;
        snprintf(path, sizeof(path), "/wallets/%s/events", id);
        ok &= count_pages(b, path, true, &events, NULL);
        snprintf(path, sizeof(path), "/wallets/%s/ledger", id);
        ok &= count_pages(b, path, false, &entries, &last);
        if (events != entries || last != balance) {
            fprintf(stderr, "verify: %s has %" PRId64 " credit/debit events, %" PRId64
                            " ledger entries, ledger ends at %" PRId64 ", balance %" PRId64 "\n",
                    id, events, entries, last, balance);
            ok = false;
        }
    }
    int64_t expected = created_ok * 100000000 + b->credits_minor - b->debits_minor;
    printf("verify: sum of balances %" PRId64 ".%02" PRId64 ", expected %" PRId64 ".%02" PRId64
           " (initial + credits - debits): %s\n",
           total / 100, total % 100, expected / 100, expected % 100,
           total == expected ? "ok" : "MISMATCH");
    ok &= total == expected;
    struct json_object *drift = get_json(b, "/admin/drift"), *d;
    bool clean = drift != NULL && json_object_object_get_ex(drift, "drifted", &d) &&
                 json_object_array_length(d) == 0;
    printf("verify: ledger entries against events for %" PRId64 " wallets: %s; server drift: %s\n",
           b->wallets, ok ? "ok" : "MISMATCH", clean ? "none" : "FOUND");
    json_object_put(drift);
    return ok && clean;
}

/* The number N of "<prefix>-o<N>" (after `prefix_len` bytes of it), or
 * -1 when the text does not name one of this run's orders. */
static int64_t order_number(const struct bench *b, const char *text, size_t prefix_len)
{
    char *end;
    errno = 0;
    long long n = strtoll(text + prefix_len, &end, 10);
    if (errno != 0 || end == text + prefix_len || *end != '\0' || n < 0 || n >= b->orders_len)
        return -1;
    return (int64_t)n;
}

/* One wallet's events: each debit made for an order of this run is checked
 * against the book (that order, paid, from this wallet, its total) and
 * counted in debits[]; *events counts the credit and debit events. */
static bool order_debits(struct bench *b, const char *wallet, int64_t w, uint8_t *debits,
                         int64_t *events)
{
    char path[256], cursor[64] = "", ref[64];
    size_t ref_len = (size_t)snprintf(ref, sizeof(ref), "order:%s-o", b->prefix);
    bool ok = true;
    for (int guard = 0; guard < 100000; guard++) {
        snprintf(path, sizeof(path), "/wallets/%s/events?limit=1000%s%s", wallet,
                 cursor[0] ? "&after=" : "", cursor);
        struct json_object *page = get_json(b, path), *data, *next, *v, *d;
        if (page == NULL || !json_object_object_get_ex(page, "data", &data)) {
            json_object_put(page);
            return false;
        }
        for (size_t i = 0; i < json_object_array_length(data); i++) {
            struct json_object *e = json_object_array_get_idx(data, i);
            const char *type =
                json_object_object_get_ex(e, "type", &v) ? json_object_get_string(v) : "";
            bool debit = strcmp(type, "WalletDebited") == 0;
            *events += debit || strcmp(type, "WalletCredited") == 0;
            const char *reference = NULL;
            if (debit && json_object_object_get_ex(e, "data", &d) &&
                json_object_object_get_ex(d, "reference", &v))
                reference = json_object_get_string(v);
            if (reference == NULL || strncmp(reference, ref, ref_len) != 0)
                continue;
            int64_t n = order_number(b, reference, ref_len);
            json_object_object_get_ex(d, "amountMinor", &v);
            int64_t amount = json_object_get_int64(v);
            if (n < 0 || b->orders[n].status != BO_PAID || b->orders[n].wallet != w ||
                b->orders[n].total_minor != amount) {
                fprintf(stderr, "verify: %s debited %" PRId64 " for %s, not an order it paid\n",
                        wallet, amount, reference);
                ok = false;
            } else if (debits[n] < UINT8_MAX) {
                debits[n]++;
            }
        }
        bool more = json_object_object_get_ex(page, "nextCursor", &next) &&
                    json_object_is_type(next, json_type_string);
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", json_object_get_string(next));
        json_object_put(page);
        if (!more)
            return ok;
    }
    return false;
}

/* Every wallet: initial funds minus the totals paid from it, its ledger
 * one entry per credit or debit event; every paid order debited once. */
static bool verify_order_payments(struct bench *b)
{
    uint8_t *debits = calloc((size_t)b->orders_len + 1, 1);
    int64_t *paid = calloc((size_t)b->wallets, sizeof(*paid));
    bool ok = debits != NULL && paid != NULL;
    int64_t paid_orders = 0;
    for (int64_t n = 0; ok && n < b->orders_len; n++) {
        if (b->orders[n].status == BO_PAID) {
            paid[b->orders[n].wallet] += b->orders[n].total_minor;
            paid_orders++;
        }
    }
    char path[256], id[64];
    for (int64_t i = 0; ok && i < b->wallets; i++) {
        wallet_id(b, i, id, sizeof(id));
        snprintf(path, sizeof(path), "/wallets/%s", id);
        struct json_object *w = get_json(b, path);
        int64_t balance = 0, events = 0, entries = 0, last = 0;
        if (w == NULL || !money_field(w, "balance", &balance)) {
            fprintf(stderr, "verify: cannot read wallet %s\n", id);
            ok = false;
        }
        json_object_put(w);
        ok = ok && order_debits(b, id, i, debits, &events);
        snprintf(path, sizeof(path), "/wallets/%s/ledger", id);
        ok = ok && count_pages(b, path, false, &entries, &last);
        if (ok &&
            (balance != BENCH_INITIAL_MINOR - paid[i] || events != entries || last != balance)) {
            fprintf(stderr,
                    "verify: %s holds %" PRId64 ", expected %" PRId64 " (initial funds"
                    " minus paid orders); %" PRId64 " events, %" PRId64 " ledger entries\n",
                    id, balance, BENCH_INITIAL_MINOR - paid[i], events, entries);
            ok = false;
        }
    }
    int64_t once = 0;
    for (int64_t n = 0; ok && n < b->orders_len; n++)
        once += debits[n] == (b->orders[n].status == BO_PAID ? 1 : 0);
    ok = ok && once == b->orders_len;
    printf("verify: %" PRId64 " wallets hold their initial funds minus the orders paid from them,"
           " each of %" PRId64 " paid orders debited exactly once: %s\n",
           b->wallets, paid_orders, ok ? "ok" : "MISMATCH");
    free(debits);
    free(paid);
    return ok;
}

/* GET /orders?customerId=<prefix>: every order the bench created, each
 * with the status and total it saw, and no other. */
static bool verify_order_list(struct bench *b)
{
    uint8_t *seen = calloc((size_t)b->orders_len + 1, 1);
    char path[256], cursor[128] = "", id[64];
    size_t prefix_len = (size_t)snprintf(id, sizeof(id), "%s-o", b->prefix);
    int64_t listed = 0, want = 0, wrong = 0;
    bool more = seen != NULL;
    while (more) {
        snprintf(path, sizeof(path), "/orders?customerId=%s&limit=1000%s%s", b->prefix,
                 cursor[0] ? "&after=" : "", cursor);
        struct json_object *page = get_json(b, path), *data, *next, *v;
        if (page == NULL || !json_object_object_get_ex(page, "data", &data)) {
            json_object_put(page);
            free(seen);
            return false;
        }
        for (size_t i = 0; i < json_object_array_length(data); i++) {
            struct json_object *o = json_object_array_get_idx(data, i);
            json_object_object_get_ex(o, "orderId", &v);
            int64_t n = order_number(b, json_object_get_string(v), prefix_len), total = -1;
            json_object_object_get_ex(o, "status", &v);
            const char *status = json_object_get_string(v);
            money_field(o, "total", &total);
            listed++;
            if (n < 0 || seen[n]++ || strcmp(status, bo_names[b->orders[n].status]) != 0 ||
                total != b->orders[n].total_minor)
                wrong++;
        }
        more = json_object_object_get_ex(page, "nextCursor", &next) &&
               json_object_is_type(next, json_type_string);
        if (more)
            snprintf(cursor, sizeof(cursor), "%s", json_object_get_string(next));
        json_object_put(page);
    }
    for (int64_t n = 0; n < b->orders_len; n++)
        want += b->orders[n].status != BO_NONE;
    printf("verify: %" PRId64 " orders listed, %" PRId64 " created; status and total as the bench"
           " saw them: %s\n", listed, want, wrong == 0 && listed == want ? "ok" : "MISMATCH");
    free(seen);
    return wrong == 0 && listed == want;
}

static bool server_drift_clean(struct bench *b)
{
    struct json_object *drift = get_json(b, "/admin/drift"), *d;
    bool clean = drift != NULL && json_object_object_get_ex(drift, "drifted", &d) &&
                 json_object_array_length(d) == 0;
    json_object_put(drift);
    return clean;
}

static bool verify_orders(struct bench *b)
{
    int64_t count[4] = {0};
    for (int64_t n = 0; n < b->orders_len; n++)
        count[b->orders[n].status]++;
    printf("orders: %" PRId64 " created, %" PRId64 " left pending, %" PRId64 " confirmed, %" PRId64
           " paid\n", b->orders_len - count[BO_NONE], count[BO_PENDING], count[BO_CONFIRMED],
           count[BO_PAID]);
    bool ok = verify_order_payments(b);
    ok &= verify_order_list(b);
    bool clean = server_drift_clean(b);
    printf("verify: server drift: %s\n", clean ? "none" : "FOUND");
    return ok && clean;
}

static void report(const struct bench *b, const char *what, int64_t us, uint64_t n)
{
    printf("%s: %" PRIu64 " operations in %" PRId64 " ms: %" PRIu64 " ops/s\n", what, n,
           us / 1000, us > 0 ? n * 1000000 / (uint64_t)us : 0);
    printf("  %-9s %9s %9s %9s %9s %9s %9s %9s %9s\n", "type", "ok", "refused", "failed",
           "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max~ ms");
    for (int o = 0; o < OP_COUNT; o++) {
        const struct lat *l = &b->lat[o];
        if (l->n == 0)
            continue;
        int64_t p[5] = {lat_percentile(l, 5000), lat_percentile(l, 9000), lat_percentile(l, 9900),
                        lat_percentile(l, 9990), lat_percentile(l, 10000)};
        printf("  %-9s %9" PRIu64 " %9" PRIu64 " %9" PRIu64, op_names[o], b->ok[o], b->refused[o],
               b->failed[o]);
        for (int k = 0; k < 5; k++)
            printf(" %5" PRId64 ".%03" PRId64, p[k] / 1000, p[k] % 1000);
        printf("\n");
    }
}

int wallex_bench(const struct bench_options *o)
{
    struct bench *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return 1;
    int rc = 1;
    b->rnd = o->seed ? o->seed : (uint64_t)wx_monotonic_us() | 1;
    b->wallets = o->wallets;
    b->mix_transfer = o->mix_transfer;
    b->mix_credit = o->mix_credit;
    if (o->token != NULL)
        snprintf(b->auth, sizeof(b->auth), "Authorization: Bearer %s\r\n", o->token);
    snprintf(b->prefix, sizeof(b->prefix), "bench-%08" PRIx64, next_rand(b) & 0xffffffff);
    b->addr.sin_family = AF_INET;
    b->addr.sin_port = htons(o->port);
    inet_pton(AF_INET, o->host, &b->addr.sin_addr);
    b->ep = epoll_create1(0);
    b->conns_len = o->connections;
    b->conns = calloc(b->conns_len, sizeof(*b->conns));
    for (size_t i = 0; i < b->conns_len; i++)
        if (b->conns == NULL || conn_open(b, &b->conns[i]) != 0)
            goto out;

    printf("wallets: %s-0 .. %s-%" PRId64 "\n", b->prefix, b->prefix, o->wallets - 1);
    int64_t t0 = wx_monotonic_us();
    if (run_phase(b, (uint64_t)o->wallets, OP_CREATE, "wallets") != 0)
        goto out;
    report(b, "create wallets", wx_monotonic_us() - t0, (uint64_t)o->wallets);
    int64_t created = (int64_t)b->ok[OP_CREATE];
    if (created != o->wallets) {
        fprintf(stderr, "wallex bench: only %" PRId64 " of %" PRId64 " wallets were created%s\n",
                created, o->wallets,
                b->refused_status == 401 || b->refused_status == 403
                    ? " (the server wants an admin token: --token, WALLEX_TOKEN)"
                    : "");
        goto out;
    }
    memset(b->lat, 0, sizeof(b->lat));
    if (o->orders) {
        /* An order takes one operation at least: the book never grows. */
        b->orders_cap = o->ops;
        b->orders = calloc((size_t)b->orders_cap, sizeof(*b->orders));
        if (b->orders == NULL) {
            fprintf(stderr, "wallex bench: no memory for %" PRId64 " orders\n", o->ops);
            goto out;
        }
        for (size_t i = 0; i < b->conns_len; i++)
            b->conns[i].order = -1;
    }
    t0 = wx_monotonic_us();
    if (run_phase(b, (uint64_t)o->ops, o->orders ? PHASE_ORDERS : PHASE_MIX,
                  o->orders ? "orders" : "ops") != 0)
        goto out;
    report(b, o->orders ? "order operations" : "mixed operations", wx_monotonic_us() - t0,
           (uint64_t)o->ops);
    if (o->orders)
        rc = verify_orders(b) ? 0 : 1;
    else
        rc = verify(b, created) ? 0 : 1;
    printf("bench: %s\n", rc == 0 ? "verified" : "VERIFICATION FAILED");
out:
    for (size_t i = 0; b->conns != NULL && i < b->conns_len; i++) {
        if (b->conns[i].fd > 0)
            close(b->conns[i].fd);
        wx_buf_free(&b->conns[i].out);
        wx_buf_free(&b->conns[i].in);
    }
    free(b->conns);
    free(b->orders);
    close(b->ep);
    free(b);
    return rc;
}
