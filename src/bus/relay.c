/* The Redis Streams relay; see relay.h. */
#include "bus/relay.h"

#include <assert.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "bus/subscription.h"
#include "es/domain.h"
#include "http/http.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "rm/rm.h"
#include "store/store.h"

/* The lease of the one node that publishes. */
#define RELAY_LEASE "relay"

/* Redis's refusal of an ID at or below the stream's top: already there. */
#define REFUSED_AS_OLD "equal or smaller than the target stream top item"

/* Publish delay (occurredAt to in Redis), in the projector's buckets. */
static const struct wx_hist_spec delay_spec = {
    .len = 12,
    .bounds = {1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000, 5000000,
               30000000},
    .le = {"0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "5", "30"},
    .micro = true,
};

struct stream_slot {
    char category[WX_CATEGORY_BYTES_MAX + 1];
    char name[BUS_RELAY_STREAM_NAME_BYTES_MAX + 1];
    bool exists; /* known to exist in Redis: add with NOMKSTREAM */
};

/* One XADD of a round, waiting for its reply. */
struct pending {
    struct es_position position;
    int64_t occurred_at_ms;
    size_t slot;
};

struct bus_relay {
    struct es_store *store;
    struct bus_redis_address addr;
    char template[BUS_RELAY_STREAM_NAME_BYTES_MAX + 1];
    bool per_category;
    char maxlen[24]; /* "" when not trimming */

    /* The relay thread's own. */
    struct rm_conn *lease; /* NULL: one node, always leading */
    bool leading;
    int64_t lease_due_ms; /* monotonic */
    redisContext *redis;
    struct stream_slot slots[BUS_RELAY_STREAMS_MAX];
    size_t slots_len;
    struct es_position position;
    struct pending pending[BUS_RELAY_BATCH_EVENTS_MAX];
    size_t pending_len;
    struct wx_buf scratch;
    struct wx_buf out; /* a round's commands, RESP */
    int64_t backoff_ms;
    int64_t pinged_ms; /* monotonic: the last sign of life from Redis */
    bool lost;         /* a round found a stream gone */

    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    bool stopping;
    bool kicked;
    struct es_position status_position;
    const char *status;
    char last_error[BUS_ERROR_BYTES];
    bool connected;

    atomic_uint_fast64_t published;
    atomic_uint_fast64_t skipped;
    atomic_uint_fast64_t reconnects;
    atomic_uint_fast64_t republishes;
    struct wx_hist delay_us;
};

/* ---- the URL ---- */

/* Copies text[0..len) into out (cap bytes); false when it does not fit. */
static bool copy_part(char *out, size_t cap, const char *text, size_t len)
{
    if (len >= cap)
        return false;
    memcpy(out, text, len);
    out[len] = '\0';
    return true;
}

static bool parse_int(const char *text, size_t len, int max, int *out)
{
    int64_t v;
    char tmp[16];
    if (!copy_part(tmp, sizeof(tmp), text, len) || !http_parse_i64(tmp, 0, max, &v))
        return false;
    *out = (int)v;
    return true;
}

bool bus_redis_url_parse(const char *url, struct bus_redis_address *out)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    const char *p = url;
    if (strncmp(p, "redis://", 8) != 0)
        return false;
    p += 8;
    const char *end = p + strcspn(p, "/");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *user_end = colon ? colon : at;
        if (!copy_part(out->user, sizeof(out->user), p, (size_t)(user_end - p)) ||
            (colon && !copy_part(out->password, sizeof(out->password), colon + 1,
                                 (size_t)(at - colon - 1))))
            return false;
        p = at + 1;
    }
    const char *host_end;
    if (*p == '[') { /* [::1]:6379 */
        host_end = memchr(p, ']', (size_t)(end - p));
        if (host_end == NULL || !copy_part(out->host, sizeof(out->host), p + 1,
                                           (size_t)(host_end - p - 1)))
            return false;
        host_end++;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        host_end = host_end ? host_end : end;
        if (!copy_part(out->host, sizeof(out->host), p, (size_t)(host_end - p)))
            return false;
    }
    if (out->host[0] == '\0')
        return false;
    if (host_end < end && (*host_end != ':' ||
                           !parse_int(host_end + 1, (size_t)(end - host_end - 1), 65535,
                                      &out->port) || out->port == 0))
        return false;
    if (*end == '/' && end[1] != '\0' && !parse_int(end + 1, strlen(end + 1), 65535, &out->db))
        return false;
    return true;
}

/* ---- status, under the lock ---- */

static void set_status(struct bus_relay *r, const char *status, const char *error)
{
    pthread_mutex_lock(&r->lock);
    if (error != NULL && strcmp(r->last_error, error) != 0)
        wx_logf(WX_LOG_WARN, "relay: %s: %s", r->template, error);
    r->status = status;
    r->connected = r->redis != NULL;
    r->status_position = r->position;
    if (error == NULL)
        r->last_error[0] = '\0';
    else
        snprintf(r->last_error, sizeof(r->last_error), "%s", error);
    pthread_mutex_unlock(&r->lock);
}

/* Waits until notified (when `kickable`), stopped, or ms passed. True
 * while the relay runs. */
static bool relay_wait(struct bus_relay *r, int64_t ms, bool kickable)
{
    struct timespec until;
    wx_deadline_after_ms(ms, &until);
    pthread_mutex_lock(&r->lock);
    while (!r->stopping && !(kickable && r->kicked))
        if (pthread_cond_timedwait(&r->wake, &r->lock, &until) != 0)
            break;
    if (kickable)
        r->kicked = false;
    bool running = !r->stopping;
    pthread_mutex_unlock(&r->lock);
    return running;
}

/* ---- streams ---- */

/* The slot of a stream category, added on first sight. */
static int slot_for(struct bus_relay *r, const char *category, size_t len, size_t *slot_out)
{
    if (!r->per_category) {
        *slot_out = 0;
        return 0;
    }
    for (size_t i = 0; i < r->slots_len; i++) {
        if (strlen(r->slots[i].category) == len && memcmp(r->slots[i].category, category, len) == 0) {
            *slot_out = i;
            return 0;
        }
    }
    if (r->slots_len == BUS_RELAY_STREAMS_MAX || len > WX_CATEGORY_BYTES_MAX)
        return WX_ERR_FULL;
    struct stream_slot *s = &r->slots[r->slots_len];
    memset(s, 0, sizeof(*s));
    memcpy(s->category, category, len);
    const char *hole = strstr(r->template, "{category}");
    int n = snprintf(s->name, sizeof(s->name), "%.*s%.*s%s", (int)(hole - r->template),
                     r->template, (int)len, category, hole + 10);
    if (n < 0 || (size_t)n >= sizeof(s->name))
        return WX_ERR_TOO_LARGE;
    *slot_out = r->slots_len++;
    return 0;
}

static void disconnect(struct bus_relay *r)
{
    redisFree(r->redis);
    r->redis = NULL;
}

/* A reply that must not be an error; its text into err_text. */
static redisReply *command(struct bus_relay *r, char *err_text, size_t cap, int argc,
                           const char **argv)
{
    redisReply *reply = redisCommandArgv(r->redis, argc, argv, NULL);
    if (reply == NULL) {
        snprintf(err_text, cap, "%s", r->redis->errstr[0] ? r->redis->errstr : "no answer");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err_text, cap, "%s: %s", argv[0], reply->str);
        freeReplyObject(reply);
        reply = NULL;
    }
    return reply;
}

/* A command whose answer only matters as not an error. */
static bool setup(struct bus_relay *r, char *err_text, size_t cap, int argc, const char **argv)
{
    redisReply *reply = command(r, err_text, cap, argc, argv);
    freeReplyObject(reply);
    return reply != NULL;
}

static bool parse_id(const char *id, struct es_position *out)
{
    return sscanf(id, "%" SCNu64 "-%" SCNu64, &out->hi, &out->lo) == 2;
}

/* Reads each stream's last ID; the largest is where publishing resumes:
 * the relay's one connection executes its XADDs in log order, so all
 * before the largest are in, and a Redis that restarted from its
 * persistence kept a prefix of what it had. */
static int sync_position(struct bus_relay *r, char *err_text, size_t cap)
{
    struct es_position top = es_position_start();
    for (size_t i = 0; i < r->slots_len; i++) {
        const char *argv[] = {"XREVRANGE", r->slots[i].name, "+", "-", "COUNT", "1"};
        redisReply *reply = command(r, err_text, cap, 6, argv);
        if (reply == NULL)
            return WX_ERR_IO;
        struct es_position last = es_position_start();
        bool ok = reply->type == REDIS_REPLY_ARRAY;
        r->slots[i].exists = ok && reply->elements > 0;
        if (r->slots[i].exists) {
            redisReply *entry = reply->element[0];
            ok = entry->type == REDIS_REPLY_ARRAY && entry->elements > 0 &&
                 entry->element[0]->type == REDIS_REPLY_STRING &&
                 parse_id(entry->element[0]->str, &last);
        }
        freeReplyObject(reply);
        if (!ok) {
            snprintf(err_text, cap, "%s holds entries wallex did not write", r->slots[i].name);
            return WX_ERR_CORRUPT;
        }
        if (es_position_cmp(&last, &top) > 0)
            top = last;
    }
    r->position = top;
    return 0;
}

static int connect_redis(struct bus_relay *r, char *err_text, size_t cap)
{
    struct timeval connect_tv = {BUS_REDIS_CONNECT_TIMEOUT_MS / 1000,
                                 BUS_REDIS_CONNECT_TIMEOUT_MS % 1000 * 1000};
    struct timeval command_tv = {BUS_REDIS_COMMAND_TIMEOUT_MS / 1000,
                                 BUS_REDIS_COMMAND_TIMEOUT_MS % 1000 * 1000};
    r->redis = redisConnectWithTimeout(r->addr.host, r->addr.port, connect_tv);
    if (r->redis == NULL || r->redis->err) {
        snprintf(err_text, cap, "connect %.64s:%d: %.128s", r->addr.host, r->addr.port,
                 r->redis ? r->redis->errstr : "out of memory");
        disconnect(r);
        return WX_ERR_IO;
    }
    redisSetTimeout(r->redis, command_tv);
    char db[16];
    snprintf(db, sizeof(db), "%d", r->addr.db);
    const char *auth_user[] = {"AUTH", r->addr.user, r->addr.password};
    const char *auth[] = {"AUTH", r->addr.password};
    const char *select[] = {"SELECT", db};
    bool ok = true;
    if (r->addr.password[0] != '\0')
        ok = r->addr.user[0] ? setup(r, err_text, cap, 3, auth_user)
                             : setup(r, err_text, cap, 2, auth);
    if (ok && r->addr.db != 0)
        ok = setup(r, err_text, cap, 2, select);
    int err = ok ? sync_position(r, err_text, cap) : WX_ERR_IO;
    if (err)
        disconnect(r);
    return err;
}

/* Connects, finds the checkpoint and checks it against the log. */
static int start_session(struct bus_relay *r)
{
    char why[BUS_ERROR_BYTES] = "";
    int err = connect_redis(r, why, sizeof(why));
    if (err) {
        set_status(r, "failing", why);
        return err;
    }
    if (r->lost) {
        /* A stream vanished: every event goes again, and Redis refuses
         * those the other streams still hold. */
        r->position = es_position_start();
        r->lost = false;
    }
    struct es_position head;
    err = es_store_head(r->store, &head);
    if (!err && es_position_cmp(&r->position, &head) > 0) {
        /* Publishing now would be refused as old until the log passed the
         * stream's top: events would be missing from Redis. Say so. */
        snprintf(why, sizeof(why),
                 "the stream is ahead of the log (another log, or a restored backup): delete it"
                 " or use another --redis-stream");
        disconnect(r);
        set_status(r, "ahead", why);
        return WX_ERR_CONFLICT;
    }
    atomic_fetch_add(&r->reconnects, 1);
    set_status(r, "running", err ? wx_strerror(err) : NULL);
    return err;
}

/* ---- publishing ---- */

/* RESP, written here rather than by hiredis's argv formatter: a round's
 * commands go into one buffer and reach hiredis in one append. Formatting
 * each XADD through redisAppendCommandArgv (an sds per argument and per
 * command) was a quarter of the relay thread's time. */
static void resp_len(struct wx_buf *b, char kind, size_t n)
{
    char tmp[WX_U64_TEXT_BYTES];
    char *digits = wx_u64_text(n, tmp);
    wx_buf_addc(b, kind);
    wx_buf_add(b, digits, (size_t)(tmp + sizeof(tmp) - digits));
    wx_buf_add(b, "\r\n", 2);
}

static void resp_command(struct wx_buf *b, int argc, const char **argv, const size_t *lens)
{
    resp_len(b, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        resp_len(b, '$', lens[i]);
        wx_buf_add(b, argv[i], lens[i]);
        wx_buf_add(b, "\r\n", 2);
    }
}

/* Decimal text of v at out (room for WX_U64_TEXT_BYTES); its length. */
static size_t u64_text(uint64_t v, char *out)
{
    char tmp[WX_U64_TEXT_BYTES];
    char *digits = wx_u64_text(v, tmp);
    size_t n = (size_t)(tmp + sizeof(tmp) - digits);
    memcpy(out, digits, n);
    return n;
}

/* The same with a sign. The log's versions are positive, but a row is
 * published as it is, whatever it holds. */
static size_t i64_text(int64_t v, char out[1 + WX_U64_TEXT_BYTES])
{
    size_t sign = v < 0;
    out[0] = '-';
    return sign + u64_text(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, out + sign);
}

/* Stops a round's read when its commands fill BUS_RELAY_ROUND_BYTES_MAX. */
#define ROUND_FULL (-1)

static int append_xadd(void *arg, const struct es_event *stored)
{
    struct bus_relay *r = arg;
    assert(r->pending_len < BUS_RELAY_BATCH_EVENTS_MAX);
    assert(stored->position.hi != 0 || stored->position.lo != 0); /* never ID 0-0 */
    if (r->out.len >= BUS_RELAY_ROUND_BYTES_MAX)
        return ROUND_FULL; /* this event is read again next round */
    struct es_event ev;
    wx_buf_reset(&r->scratch);
    int err = bus_event_public_data(stored, &r->scratch, &ev);
    size_t slot = 0;
    if (!err)
        err = slot_for(r, ev.stream_id, strcspn(ev.stream_id, ":"), &slot);
    if (err)
        return err;
    /* The entry ID: hi-lo of the log position. */
    char id[2 * WX_U64_TEXT_BYTES + 1];
    char version[1 + WX_U64_TEXT_BYTES], schema[1 + WX_U64_TEXT_BYTES];
    char position[ES_POSITION_TOKEN_BYTES];
    size_t id_len = u64_text(ev.position.hi, id);
    id[id_len++] = '-';
    id_len += u64_text(ev.position.lo, id + id_len);
    size_t version_len = i64_text(ev.version, version);
    size_t schema_len = i64_text(ev.schema_version, schema);
    es_position_format(&ev.position, position);
    const char *argv[24];
    size_t lens[24];
    int argc = 0;
#define ARG(s, n) (argv[argc] = (s), lens[argc++] = (n))
#define ARGS(s) ARG(s, strlen(s))
    ARGS("XADD");
    ARGS(r->slots[slot].name);
    if (r->slots[slot].exists)
        ARGS("NOMKSTREAM");
    if (r->maxlen[0] != '\0') {
        ARGS("MAXLEN");
        ARGS("~");
        ARGS(r->maxlen);
    }
    ARG(id, id_len);
    ARGS("eventId"), ARGS(ev.event_id);
    ARGS("streamId"), ARGS(ev.stream_id);
    ARGS("type"), ARGS(ev.type);
    ARGS("version"), ARG(version, version_len);
    ARGS("position"), ARGS(position);
    ARGS("schemaVersion"), ARG(schema, schema_len);
    ARGS("data"), ARG(ev.data, ev.data_len);
    ARGS("metadata"), ARG(ev.metadata, ev.metadata_len);
#undef ARGS
#undef ARG
    resp_command(&r->out, argc, argv, lens);
    r->pending[r->pending_len++] = (struct pending){ev.position, ev.occurred_at_ms, slot};
    return 0;
}

/* Handles the reply to pending[i]; false when the round must stop. */
static bool take_reply(struct bus_relay *r, size_t i, redisReply *reply, char *why, size_t cap)
{
    const struct pending *p = &r->pending[i];
    if (reply->type == REDIS_REPLY_NIL) { /* NOMKSTREAM: the stream is gone */
        r->lost = true;
        snprintf(why, cap, "%s vanished; publishing the log again from the start",
                 r->slots[p->slot].name);
        return false;
    }
    if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, REFUSED_AS_OLD) != NULL) {
        atomic_fetch_add(&r->skipped, 1); /* published before a crash */
    } else if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, cap, "XADD: %s", reply->str);
        return false;
    } else {
        atomic_fetch_add(&r->published, 1);
        int64_t delay_ms = wx_clock_now_ms(&wx_clock_system) - p->occurred_at_ms;
        wx_hist_observe(&r->delay_us, delay_ms > 0 ? delay_ms * 1000 : 0);
    }
    r->slots[p->slot].exists = true;
    r->position = p->position;
    return true;
}

/* One round: up to a batch of events (or BUS_RELAY_ROUND_BYTES_MAX of
 * commands) pipelined, then every reply in order. *full_out when either
 * bound stopped it (more to come at once). */
static int publish_round(struct bus_relay *r, bool *full_out)
{
    r->pending_len = 0;
    wx_buf_reset(&r->out);
    struct es_position from = r->position;
    int err = es_store_read_log(r->store, &from, BUS_RELAY_BATCH_EVENTS_MAX, append_xadd, r);
    *full_out = err == ROUND_FULL || r->pending_len == BUS_RELAY_BATCH_EVENTS_MAX;
    if (err == ROUND_FULL)
        err = 0;
    if (r->pending_len > 0 &&
        (!wx_buf_ok(&r->out) ||
         redisAppendFormattedCommand(r->redis, r->out.data, r->out.len) != REDIS_OK)) {
        r->pending_len = 0; /* nothing went out: no reply to wait for */
        err = WX_ERR_NOMEM;
    }
    if (r->out.cap > BUS_RELAY_ROUND_BYTES_MAX * 2) {
        wx_buf_free(&r->out); /* one huge event's round: do not keep its memory */
        wx_buf_init(&r->out);
    }
    char why[BUS_ERROR_BYTES] = "";
    bool going = true;
    /* Every appended command gets its reply read, even after a failure,
     * so the connection could stay in step; it is dropped anyway. */
    for (size_t i = 0; i < r->pending_len; i++) {
        void *reply = NULL;
        if (redisGetReply(r->redis, &reply) != REDIS_OK) {
            snprintf(why, sizeof(why), "%s", r->redis->errstr[0] ? r->redis->errstr : "no reply");
            going = false;
            break;
        }
        if (going)
            going = take_reply(r, i, reply, why, sizeof(why));
        freeReplyObject(reply);
    }
    if (err && going)
        snprintf(why, sizeof(why), "reading the log: %s", wx_strerror(err));
    if (err || !going) {
        if (r->lost)
            atomic_fetch_add(&r->republishes, 1);
        set_status(r, "failing", why);
        return err ? err : WX_ERR_IO;
    }
    if (r->pending_len > 0) {
        r->pinged_ms = wx_monotonic_ms();
        set_status(r, "running", NULL);
        return 0;
    }
    /* Idle: make sure Redis is still there. */
    if (wx_monotonic_ms() - r->pinged_ms >= BUS_REDIS_PING_MS) {
        const char *ping[] = {"PING"};
        if (!setup(r, why, sizeof(why), 1, ping)) {
            set_status(r, "failing", why);
            return WX_ERR_IO;
        }
        r->pinged_ms = wx_monotonic_ms();
    }
    return 0;
}

/* ---- the thread ---- */

static void backoff(struct bus_relay *r)
{
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BUS_RETRY_MS_MIN;
    if (r->backoff_ms > BUS_RETRY_MS_MAX)
        r->backoff_ms = BUS_RETRY_MS_MAX;
}

/* Whether this node publishes: the lease, tried (and the session it lives
 * on checked) every BUS_LEASE_MS. */
static bool relay_lead(struct bus_relay *r)
{
    int64_t now = wx_monotonic_ms();
    if (r->lease == NULL || now < r->lease_due_ms)
        return r->lease == NULL || r->leading;
    r->lease_due_ms = now + BUS_LEASE_MS;
    bool held = rm_lease_keep(r->lease, RELAY_LEASE);
    if (held != r->leading)
        wx_logf(WX_LOG_INFO, "relay: %s", held ? "this node publishes from now"
                                               : "another node publishes; standing by");
    r->leading = held;
    return held;
}

static void *relay_main(void *arg)
{
    struct bus_relay *r = arg;
    pthread_setname_np(pthread_self(), "wx-relay");
    bus_thread_background();
    bool running = true;
    while (running) {
        if (!relay_lead(r)) {
            disconnect(r);
            set_status(r, "standby", NULL);
            running = relay_wait(r, BUS_LEASE_MS, false);
            continue;
        }
        if (r->redis == NULL && start_session(r) != 0) {
            backoff(r);
            /* Commits do not cut a backoff short: under load they would
             * turn it into a reconnect storm. */
            running = relay_wait(r, r->backoff_ms, false);
            continue;
        }
        bool full = false;
        if (publish_round(r, &full) != 0) {
            disconnect(r);
            pthread_mutex_lock(&r->lock);
            r->connected = false;
            pthread_mutex_unlock(&r->lock);
            backoff(r);
            running = relay_wait(r, r->lost ? 0 : r->backoff_ms, false);
            continue;
        }
        r->backoff_ms = 0;
        running = full ? relay_wait(r, 0, false) : relay_wait(r, BUS_IDLE_MS, true);
    }
    disconnect(r);
    return NULL;
}

int bus_relay_start(const struct bus_relay_config *config, struct bus_relay **out)
{
    struct bus_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return WX_ERR_NOMEM;
    r->store = config->store;
    r->status = "connecting";
    wx_hist_init(&r->delay_us, &delay_spec);
    wx_buf_init(&r->scratch);
    wx_buf_init(&r->out);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    int err = config->lease_db != NULL ? rm_conn_open(config->lease_db, RM_CONN_WRITER, &r->lease)
                                       : 0;
    if (err)
        goto err_free;
    err = WX_ERR_INVALID;
    if (!bus_redis_url_parse(config->url, &r->addr) ||
        !copy_part(r->template, sizeof(r->template), config->stream, strlen(config->stream)) ||
        config->stream[0] == '\0')
        goto err_free;
    r->per_category = strstr(r->template, "{category}") != NULL;
    if (config->maxlen > 0)
        snprintf(r->maxlen, sizeof(r->maxlen), "%" PRId64, config->maxlen);
    if (!r->per_category) {
        snprintf(r->slots[0].name, sizeof(r->slots[0].name), "%s", r->template);
        r->slots_len = 1;
    }
    /* Every category the domains write, so the checkpoint covers them all. */
    for (size_t d = 0; d < es_domains_len() && r->per_category; d++)
        for (const struct es_aggregate_type *const *a = es_domain_at(d)->aggregates; a && *a; a++) {
            size_t slot;
            if ((err = slot_for(r, (*a)->category, strlen((*a)->category), &slot)) != 0)
                goto err_free;
        }
    err = pthread_create(&r->thread, NULL, relay_main, r) == 0 ? 0 : WX_ERR_NOMEM;
    if (err)
        goto err_free;
    r->started = true;
    *out = r;
    return 0;
err_free:
    bus_relay_stop(r);
    return err;
}

void bus_relay_stop(struct bus_relay *r)
{
    if (r == NULL)
        return;
    if (r->started) {
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
    }
    wx_buf_free(&r->scratch);
    wx_buf_free(&r->out);
    rm_conn_close(r->lease);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}

void bus_relay_notify(struct bus_relay *r)
{
    pthread_mutex_lock(&r->lock);
    r->kicked = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

int bus_relay_status(struct bus_relay *r, struct wx_arena *arena, struct bus_relay_status *out)
{
    pthread_mutex_lock(&r->lock);
    *out = (struct bus_relay_status){
        .name = r->template,
        .position = r->status_position,
        .status = r->status,
        .connected = r->connected,
        .last_error = r->last_error[0] ? wx_arena_strdup(arena, r->last_error) : NULL,
    };
    pthread_mutex_unlock(&r->lock);
    out->published = atomic_load(&r->published);
    out->skipped = atomic_load(&r->skipped);
    out->reconnects = atomic_load(&r->reconnects);
    out->republishes = atomic_load(&r->republishes);
    return 0;
}

void bus_relay_metrics(struct bus_relay *r, const struct es_position *head, struct wx_buf *b)
{
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct bus_relay_status s;
    bus_relay_status(r, &arena, &s);
    char labels[BUS_RELAY_STREAM_NAME_BYTES_MAX + 16];
    snprintf(labels, sizeof(labels), "stream=\"%s\"", s.name);
    wx_metric_header(b, "wallex_relay_position", "gauge", "Last log position known in Redis.");
    wx_buf_printf(b, "wallex_relay_position{%s} %" PRIu64 "\n", labels, s.position.lo);
    wx_metric_header(b, "wallex_relay_lag_events", "gauge", "Events in the log not yet in Redis.");
    wx_buf_printf(b, "wallex_relay_lag_events{%s} %" PRIu64 "\n", labels,
                  es_position_lag(head, &s.position));
    wx_metric_header(b, "wallex_relay_up", "gauge", "1 while the relay is connected and not failing.");
    wx_buf_printf(b, "wallex_relay_up{%s} %d\n", labels,
                  s.connected && strcmp(s.status, "running") == 0);
    static const char *const counters[][2] = {
        {"wallex_relay_published_total", "Entries added to Redis."},
        {"wallex_relay_skipped_total", "XADDs Redis refused as already there (after a crash)."},
        {"wallex_relay_reconnects_total", "Connections to Redis made."},
        {"wallex_relay_republishes_total", "Times a stream was found lost and published again."},
    };
    uint64_t values[] = {s.published, s.skipped, s.reconnects, s.republishes};
    for (size_t i = 0; i < 4; i++) {
        wx_metric_header(b, counters[i][0], "counter", counters[i][1]);
        wx_buf_printf(b, "%s{%s} %" PRIu64 "\n", counters[i][0], labels, values[i]);
    }
    wx_metric_header(b, "wallex_relay_delay_seconds", "histogram",
                     "Time from an event's occurredAt to its entry in Redis.");
    wx_hist_render(b, "wallex_relay_delay_seconds", labels, &r->delay_us);
    wx_arena_release(&arena);
}
