/* Webhook delivery on libcurl's multi interface; see webhook.h. */
#include "bus/webhook.h"

#include <assert.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/uuid.h"
#include "bus/delivery.h"
#include "bus/sign.h"
#include "bus/subscription.h"
#include "es/writer.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "proj/projector.h"
#include "store/store.h"

#ifndef WALLEX_VERSION
#define WALLEX_VERSION "dev"
#endif

/* A SubscriptionDisabled not in the read model this long after it was
 * submitted is taken as lost (the writer refused it): the subscription
 * delivers again and its next failure asks once more. */
#define DISABLE_SETTLE_MS 10000

/* An event read ahead, waiting for its delivery. */
struct ahead {
    struct es_position pos;
    char id[WX_UUID_STR_BYTES];
    struct wx_buf body;
};

/* What the writer says of a SubscriptionDisabled this thread submitted:
 * its log position once committed. Shared by the command (until it
 * completes) and the subscription (until it settles or goes): the last of
 * the two to let go frees it. */
struct disable_ticket {
    atomic_int refs;
    atomic_bool committed;
    struct es_position position; /* written before committed is set */
};

static void ticket_put(struct disable_ticket *t)
{
    if (t != NULL && atomic_fetch_sub(&t->refs, 1) == 1)
        free(t);
}

struct sub {
    char id[WX_ID_BYTES_MAX + 1];
    char url[BUS_URL_BYTES_MAX + 1];
    char types[BUS_EVENT_TYPES_JSON_BYTES_MAX + 1]; /* JSON array text */
    bool all_types;
    struct bus_signer *signer; /* NULL: no usable secret, nothing is sent */
    enum subscription_status status;
    bool seen; /* in the last catalog read */
    struct bus_delivery_state st;
    int64_t dirty_mono; /* 0: st is saved; else when it first changed unsaved */
    bool replay_check;  /* dead letters of it may wait for a replay */
    bool disable_sent;
    int64_t disable_sent_mono;
    struct disable_ticket *disable_ticket; /* the disable in flight, while disable_sent */
    int64_t dead; /* its dead letters in the store, for bus_webhook_stats */

    /* Events it wants after st.cursor, read ahead: q[q_head] is the one
     * being delivered. Every event up to `scanned` was looked at. */
    struct ahead q[BUS_WEBHOOK_PREFETCH_EVENTS];
    size_t q_head;
    size_t q_len;
    size_t q_bytes;
    struct es_position scanned;

    /* The request in flight, if any: `handle` while it runs. */
    CURL *easy;
    CURL *handle; /* kept from request to request, its options set once */
    struct curl_slist *headers;
    bool replaying;
    int64_t replay_id;
    struct wx_buf replay_body;
    char curl_error[CURL_ERROR_SIZE];
    char snippet[BUS_RESPONSE_SNIPPET_BYTES + 1];
    size_t snippet_len;
    bool refused_private;
};

enum control_kind { CONTROL_REPLAY_DEAD, CONTROL_REPLAY_FROM };

struct control {
    enum control_kind kind;
    int64_t dead_letter_id;
    char subscription_id[WX_ID_BYTES_MAX + 1];
    struct es_position from;
};

struct bus_webhook {
    struct bus_webhook_config cfg;
    bool leading;              /* this node delivers (holds the store's lease) */
    int64_t lease_due_mono;    /* the next look at the lease */
    int64_t requests_due_mono; /* the next look for orders given elsewhere */
    int64_t retry_ms[BUS_RETRY_SCHEDULE_MAX];
    CURLM *multi;
    struct sub *subs[BUS_SUBSCRIPTIONS_MAX];
    size_t subs_len;
    size_t inflight;
    struct es_position horizon;
    bool catalog_known;                 /* read once: catalog_generation is its generation */
    struct es_position reading_horizon; /* the checkpoint of the catalog being read */
    bool catalog_unsettled;             /* a disable sent here is not in it yet */
    uint64_t catalog_generation;
    bool catalog_full_warned;
    bool more; /* a scan stopped at its bound, or a request ended: go on at once */
    struct wx_buf scratch;

    pthread_t thread;
    bool started;
    atomic_bool stopping;
    atomic_bool kicked;
    /* Whether a commit should wake the thread: some subscription waits for
     * new events, or none has a request in flight to wake it soon. While every
     * subscription is busy or behind, commits only set `kicked`, seen at
     * the next request's end: a wake per commit was a third of the
     * thread's wakes under load, each costing a context switch. */
    atomic_bool wake_on_commit;
    pthread_mutex_t lock; /* guards the control queue */
    struct control control[BUS_WEBHOOK_CONTROL_MAX];
    size_t control_len;

    atomic_uint_fast64_t delivered;
    atomic_uint_fast64_t failed;
    atomic_uint_fast64_t dead_lettered;
    atomic_uint_fast64_t replayed;
    atomic_uint_fast64_t disabled;
    atomic_uint_fast64_t retry_depth; /* subscriptions waiting for a retry */
    atomic_uint_fast64_t tracked;
    atomic_uint_fast64_t inflight_now;
    atomic_uint_fast64_t dead_now; /* dead letters in the store, every subscription */
    /* The cursor of the active subscription furthest behind, once per
     * round of the thread (under lock): how far delivery lags the log. */
    bool slowest_known;
    struct es_position slowest;
    bool leading_now; /* `leading`, for other threads */
};

/* ---- subscriptions ---- */

static struct sub *find_sub(struct bus_webhook *w, const char *id)
{
    for (size_t i = 0; i < w->subs_len; i++)
        if (strcmp(w->subs[i]->id, id) == 0)
            return w->subs[i];
    return NULL;
}

static void save_state(struct bus_webhook *w, struct sub *s)
{
    int err = bus_delivery_state_put(w->cfg.delivery, s->id, &s->st);
    if (err)
        wx_logf(WX_LOG_ERROR, "webhooks: saving %s: %s", s->id, wx_strerror(err));
    else
        s->dirty_mono = 0;
}

static void mark_dirty(struct sub *s)
{
    if (s->dirty_mono == 0)
        s->dirty_mono = wx_monotonic_ms();
}

static struct ahead *current(struct sub *s)
{
    return s->q_len > 0 ? &s->q[s->q_head] : NULL;
}

/* Done with the current event (delivered or dead-lettered). Once nothing
 * is read ahead, the checkpoint passes the unwanted events scanned too. */
static void pop_current(struct sub *s)
{
    assert(s->q_len > 0);
    s->q_bytes -= s->q[s->q_head].body.len;
    s->q_head = (s->q_head + 1) % BUS_WEBHOOK_PREFETCH_EVENTS;
    s->q_len--;
    if (s->q_len == 0 && es_position_cmp(&s->scanned, &s->st.cursor) > 0)
        s->st.cursor = s->scanned;
}

/* Forgets what was read ahead: the log is read again from the checkpoint. */
static void drop_ahead(struct sub *s)
{
    s->q_head = s->q_len = s->q_bytes = 0;
    s->scanned = s->st.cursor;
}

static void end_request(struct bus_webhook *w, struct sub *s)
{
    if (s->easy == NULL)
        return;
    curl_multi_remove_handle(w->multi, s->easy);
    curl_slist_free_all(s->headers);
    s->easy = NULL;
    s->headers = NULL;
    wx_buf_reset(&s->replay_body);
    assert(w->inflight > 0);
    w->inflight--;
}

static void free_sub(struct bus_webhook *w, struct sub *s)
{
    end_request(w, s);
    curl_easy_cleanup(s->handle);
    bus_signer_free(s->signer);
    for (size_t i = 0; i < BUS_WEBHOOK_PREFETCH_EVENTS; i++)
        wx_buf_free(&s->q[i].body);
    wx_buf_free(&s->replay_body);
    ticket_put(s->disable_ticket);
    free(s);
}

/* A subscription seen for the first time: its saved state, or a fresh
 * one that starts after its creation. */
static int add_sub(struct bus_webhook *w, const struct subscription_row *row, struct sub **out)
{
    if (w->subs_len == BUS_SUBSCRIPTIONS_MAX) {
        if (!w->catalog_full_warned)
            wx_logf(WX_LOG_WARN, "webhooks: more than %d subscriptions; the newest wait",
                    BUS_SUBSCRIPTIONS_MAX);
        w->catalog_full_warned = true;
        return WX_ERR_FULL;
    }
    struct sub *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WX_ERR_NOMEM;
    snprintf(s->id, sizeof(s->id), "%s", row->id);
    snprintf(s->url, sizeof(s->url), "%s", row->url);
    snprintf(s->types, sizeof(s->types), "%s", row->event_types);
    s->all_types = strstr(s->types, "\"*\"") != NULL;
    for (size_t i = 0; i < BUS_WEBHOOK_PREFETCH_EVENTS; i++)
        wx_buf_init(&s->q[i].body);
    wx_buf_init(&s->replay_body);
    s->replay_check = true; /* replays asked for before a restart */
    unsigned char key[BUS_SECRET_BYTES_MAX];
    size_t key_len;
    if (!bus_secret_key(row->secret, key, &key_len))
        wx_logf(WX_LOG_ERROR, "webhooks: %s has an unreadable secret", s->id);
    else if (bus_signer_new(key, key_len, &s->signer) != 0)
        wx_logf(WX_LOG_ERROR, "webhooks: %s: libcrypto cannot key HMAC-SHA256", s->id);
    int err = bus_delivery_state_get(w->cfg.delivery, s->id, &s->st);
    if (err == WX_ERR_NOT_FOUND) {
        memset(&s->st, 0, sizeof(s->st));
        s->st.cursor = row->created;
        err = 0;
    }
    struct es_position head;
    if (!err && es_store_head(w->cfg.store, &head) == 0 &&
        es_position_cmp(&s->st.cursor, &head) > 0) {
        /* The log is older than the checkpoint (a restored backup): what
         * comes next is new, so it must not be skipped. */
        wx_logf(WX_LOG_WARN, "webhooks: %s was ahead of the log; it resumes at its head", s->id);
        s->st.cursor = head;
    }
    if (!err)
        err = bus_delivery_dead_count(w->cfg.delivery, s->id, &s->dead);
    if (err) {
        free_sub(w, s);
        return err;
    }
    s->scanned = s->st.cursor;
    w->subs[w->subs_len++] = s;
    *out = s;
    return 0;
}

static void settle_disable(struct sub *s)
{
    s->disable_sent = false;
    ticket_put(s->disable_ticket);
    s->disable_ticket = NULL;
}

static int catalog_row(void *arg, const struct subscription_row *row)
{
    struct bus_webhook *w = arg;
    struct sub *s = find_sub(w, row->id);
    if (s == NULL && add_sub(w, row, &s) != 0)
        return 0; /* logged; tried again at the next read */
    s->seen = true;
    if (s->disable_sent) {
        /* Disabled here, not yet in the read model: stay disabled, and
         * read the catalog again next time (its generation may not move
         * again). Once the read model has passed the disable's position,
         * an active row was resumed after it. */
        struct disable_ticket *t = s->disable_ticket;
        bool applied = t != NULL && atomic_load(&t->committed) &&
                       es_position_cmp(&w->reading_horizon, &t->position) >= 0;
        bool lost = wx_monotonic_ms() - s->disable_sent_mono > DISABLE_SETTLE_MS;
        if (row->status == SUBSCRIPTION_ACTIVE && !applied && !lost) {
            w->catalog_unsettled = true;
            return 0;
        }
        settle_disable(s);
        if (row->status != SUBSCRIPTION_ACTIVE) {
            s->status = row->status;
            return 0;
        }
    }
    if (s->status != SUBSCRIPTION_ACTIVE && row->status == SUBSCRIPTION_ACTIVE) {
        /* Resumed: a disabled one starts its schedule afresh, now. */
        if (s->status == SUBSCRIPTION_DISABLED) {
            s->st.attempts = 0;
            s->st.failing_since_ms = 0;
        }
        s->st.next_attempt_ms = 0;
    }
    s->status = row->status;
    return 0;
}

/* Reads the catalog and the horizon; forgets deleted subscriptions. When
 * this process projects the subscriptions (a store of its own) and applied
 * none since the last read, only the horizon moves, from memory: reading
 * the catalog on every commit cost 7% of the server's instructions under
 * the mixed load with no subscription at all (bench/instructions). */
static void refresh_catalog(struct bus_webhook *w)
{
    struct es_position changed_at;
    uint64_t generation = subscription_catalog_generation(&changed_at);
    struct es_position horizon;
    if (w->catalog_known && generation == w->catalog_generation &&
        es_position_cmp(&w->horizon, &changed_at) >= 0 && !es_store_shared(w->cfg.store) &&
        es_projector_position(w->cfg.projector, "subscriptions", &horizon) == 0) {
        w->horizon = horizon;
        return;
    }
    for (size_t i = 0; i < w->subs_len; i++)
        w->subs[i]->seen = false;
    /* The read model's checkpoint is taken before its rows are read
     * (subscription_catalog's read transaction): catalog_row compares with it. */
    w->reading_horizon = w->horizon;
    w->catalog_unsettled = false;
    int err = subscription_catalog(w->cfg.projector, BUS_SUBSCRIPTIONS_MAX, catalog_row, w,
                                   &w->reading_horizon);
    horizon = w->reading_horizon;
    if (err) {
        wx_logf(WX_LOG_WARN, "webhooks: reading subscriptions: %s", wx_strerror(err));
        return;
    }
    w->catalog_known = !w->catalog_unsettled; /* else read again: nothing may move it */
    w->catalog_generation = generation;
    w->horizon = horizon;
    for (size_t i = 0; i < w->subs_len;) {
        struct sub *s = w->subs[i];
        if (s->seen) {
            i++;
            continue;
        }
        err = bus_delivery_forget(w->cfg.delivery, s->id);
        if (err)
            wx_logf(WX_LOG_ERROR, "webhooks: forgetting %s: %s", s->id, wx_strerror(err));
        free_sub(w, s);
        w->subs[i] = w->subs[--w->subs_len];
    }
    atomic_store(&w->tracked, w->subs_len);
}

/* ---- finding the next event ---- */

#define SCAN_STOP (-1)

struct scan {
    struct bus_webhook *w;
    struct sub *s;
    size_t read;
    int err;
};

static bool wants(const struct sub *s, const char *type)
{
    if (s->all_types)
        return true;
    char quoted[BUS_EVENT_TYPE_BYTES_MAX + 3];
    int n = snprintf(quoted, sizeof(quoted), "\"%s\"", type);
    return n > 0 && (size_t)n < sizeof(quoted) && strstr(s->types, quoted) != NULL;
}

static int scan_event(void *arg, const struct es_event *ev)
{
    struct scan *sc = arg;
    struct sub *s = sc->s;
    if (es_position_cmp(&ev->position, &sc->w->horizon) > 0 ||
        s->q_len == BUS_WEBHOOK_PREFETCH_EVENTS || s->q_bytes >= BUS_WEBHOOK_PREFETCH_BYTES)
        return SCAN_STOP; /* this event is read again next time */
    sc->read++;
    if (wants(s, ev->type)) {
        struct ahead *a = &s->q[(s->q_head + s->q_len) % BUS_WEBHOOK_PREFETCH_EVENTS];
        wx_buf_reset(&a->body);
        wx_buf_reset(&sc->w->scratch);
        sc->err = bus_event_public_json(ev, &sc->w->scratch, &a->body);
        if (sc->err)
            return SCAN_STOP;
        a->pos = ev->position;
        memcpy(a->id, ev->event_id, sizeof(a->id));
        s->q_len++;
        s->q_bytes += a->body.len;
    }
    s->scanned = ev->position;
    return 0;
}

/* Reads the subscription's next events up to the horizon, ahead. */
static void scan(struct bus_webhook *w, struct sub *s)
{
    struct scan sc = {.w = w, .s = s};
    struct es_position from = s->scanned;
    int err = es_store_read_log(w->cfg.store, &from, BUS_WEBHOOK_SCAN_EVENTS_MAX, scan_event, &sc);
    if (err == SCAN_STOP)
        err = sc.err;
    if (err) {
        wx_logf(WX_LOG_ERROR, "webhooks: reading the log for %s: %s", s->id, wx_strerror(err));
        return;
    }
    w->more |= sc.read == BUS_WEBHOOK_SCAN_EVENTS_MAX;
    if (s->q_len == 0 && es_position_cmp(&s->scanned, &s->st.cursor) > 0) {
        s->st.cursor = s->scanned; /* nothing it wants: move on */
        mark_dirty(s);
    }
}

/* ---- requests ---- */

/* Whether the subscription may start a request: active, able to sign,
 * and none in flight. */
static bool ready(const struct sub *s)
{
    return s->easy == NULL && s->status == SUBSCRIPTION_ACTIVE && s->signer != NULL;
}

static size_t keep_snippet(char *data, size_t size, size_t n, void *arg)
{
    struct sub *s = arg;
    size_t len = size * n;
    size_t room = BUS_RESPONSE_SNIPPET_BYTES - s->snippet_len;
    size_t take = len < room ? len : room;
    memcpy(s->snippet + s->snippet_len, data, take);
    s->snippet_len += take;
    s->snippet[s->snippet_len] = '\0';
    return len; /* the rest is read and dropped */
}

/* --webhook-deny-private: every address curl would connect to is checked,
 * whatever name resolved to it (a name cannot be rebound around it). */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct sub *s = arg;
    if (purpose == CURLSOCKTYPE_IPCXN && bus_address_private(&a->addr)) {
        s->refused_private = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static struct curl_slist *headers_for(const char *msg_id, int64_t ts, const char *signature)
{
    char line[128];
    struct curl_slist *h = NULL, *next;
    const char *fixed[] = {"Content-Type: application/json", ("User-Agent: wallex/" WALLEX_VERSION),
                           "Expect:"};
    for (size_t i = 0; i < 3; i++)
        if ((next = curl_slist_append(h, fixed[i])) != NULL)
            h = next;
    snprintf(line, sizeof(line), "webhook-id: %s", msg_id);
    if ((next = curl_slist_append(h, line)) != NULL)
        h = next;
    snprintf(line, sizeof(line), "webhook-timestamp: %" PRId64, ts);
    if ((next = curl_slist_append(h, line)) != NULL)
        h = next;
    snprintf(line, sizeof(line), "webhook-signature: %s", signature);
    if ((next = curl_slist_append(h, line)) != NULL)
        h = next;
    return h;
}

/* The subscription's handle, with what every request of it shares. */
static CURL *handle_of(struct bus_webhook *w, struct sub *s)
{
    if (s->handle != NULL)
        return s->handle;
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* straight to the receiver, whatever the environment */
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep_snippet);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->curl_error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    if (w->cfg.deny_private) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, s);
    }
    s->handle = e;
    return e;
}

/* Starts one POST of body for the subscription. */
static int start_request(struct bus_webhook *w, struct sub *s, const char *msg_id,
                         const struct wx_buf *body)
{
    int64_t ts = wx_clock_now_ms(&wx_clock_system) / 1000;
    char signature[BUS_SIGNATURE_BYTES];
    int err = bus_signer_sign(s->signer, msg_id, ts, body->data, body->len, signature);
    if (err)
        return err;
    CURL *e = handle_of(w, s);
    s->headers = headers_for(msg_id, ts, signature);
    if (e == NULL || s->headers == NULL) {
        curl_slist_free_all(s->headers);
        s->headers = NULL;
        return WX_ERR_NOMEM;
    }
    s->snippet_len = 0;
    s->snippet[0] = s->curl_error[0] = '\0';
    s->refused_private = false;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        curl_slist_free_all(s->headers);
        s->headers = NULL;
        return WX_ERR_NOMEM;
    }
    s->easy = e;
    w->inflight++;
    return 0;
}

/* Starts a replay of the subscription's oldest dead letter waiting for
 * one; false when there is none. */
static bool start_replay(struct bus_webhook *w, struct sub *s)
{
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct bus_dead_letter dl;
    int err = bus_delivery_dead_next_replay(w->cfg.delivery, s->id, &arena, &dl);
    if (!err) {
        wx_buf_reset(&s->replay_body);
        wx_buf_add(&s->replay_body, dl.body, dl.body_len);
        err = wx_buf_ok(&s->replay_body) ? start_request(w, s, dl.event_id, &s->replay_body)
                                         : WX_ERR_NOMEM;
        s->replaying = err == 0;
        s->replay_id = dl.id;
    }
    if (err && err != WX_ERR_NOT_FOUND)
        wx_logf(WX_LOG_ERROR, "webhooks: replaying for %s: %s", s->id, wx_strerror(err));
    s->replay_check = false;
    wx_arena_release(&arena);
    return err == 0;
}

/* Starts what is due for each active subscription without a request. */
static void start_due(struct bus_webhook *w, int64_t now_ms, int64_t now_mono)
{
    for (size_t i = 0; i < w->subs_len && w->inflight < BUS_WEBHOOK_INFLIGHT_MAX; i++) {
        struct sub *s = w->subs[i];
        if (!ready(s))
            continue;
        if (s->replay_check && start_replay(w, s))
            continue;
        if (s->q_len == 0 && es_position_cmp(&s->scanned, &w->horizon) < 0)
            scan(w, s);
        struct ahead *a = current(s);
        if (a != NULL && now_ms >= s->st.next_attempt_ms) {
            if (s->st.first_attempt_ms == 0)
                s->st.first_attempt_ms = now_ms;
            s->replaying = false;
            int err = start_request(w, s, a->id, &a->body);
            if (err)
                wx_logf(WX_LOG_ERROR, "webhooks: request for %s: %s", s->id, wx_strerror(err));
        }
    }
    for (size_t i = 0; i < w->subs_len; i++)
        if (w->subs[i]->dirty_mono != 0 &&
            now_mono - w->subs[i]->dirty_mono >= BUS_WEBHOOK_CHECKPOINT_MS)
            save_state(w, w->subs[i]);
    atomic_store(&w->inflight_now, w->inflight);
}

/* ---- outcomes ---- */

struct disable_cmd {
    struct es_command cmd;
    struct disable_ticket *ticket;
    struct wx_arena arena;
    struct subscription_command c;
    char id[WX_ID_BYTES_MAX + 1];
    char reason[SUBSCRIPTION_REASON_BYTES_MAX + 1];
};

static void disable_done(struct es_command *cmd)
{
    struct disable_cmd *d = cmd->complete_ctx;
    if (cmd->status >= 500)
        wx_logf(WX_LOG_WARN, "webhooks: disabling %s failed (%d); tried again later", d->id,
                cmd->status);
    if (cmd->has_position) {
        d->ticket->position = cmd->position;
        atomic_store(&d->ticket->committed, true);
    }
    ticket_put(d->ticket);
    wx_arena_release(&d->arena);
    free(d);
}

/* Records SubscriptionDisabled through the writer, without waiting. */
static void disable(struct bus_webhook *w, struct sub *s, const char *reason)
{
    struct disable_cmd *d = calloc(1, sizeof(*d));
    struct disable_ticket *t = calloc(1, sizeof(*t));
    if (d == NULL || t == NULL || w->cfg.writer == NULL) {
        free(d);
        free(t);
        return;
    }
    atomic_init(&t->refs, 2); /* the command's and the subscription's */
    atomic_init(&t->committed, false);
    d->ticket = t;
    wx_arena_init(&d->arena);
    snprintf(d->id, sizeof(d->id), "%s", s->id);
    snprintf(d->reason, sizeof(d->reason), "%s", reason);
    d->c = (struct subscription_command){
        .kind = SUBSCRIPTION_CMD_DISABLE, .subscription_id = d->id, .reason = d->reason};
    d->cmd.handle = subscription_run_command;
    d->cmd.payload = &d->c;
    d->cmd.arena = &d->arena;
    d->cmd.complete = disable_done;
    d->cmd.complete_ctx = d;
    if (wx_uuid7(wx_clock_now_ms(&wx_clock_system), d->cmd.command_id) != 0 ||
        es_writer_submit(w->cfg.writer, &d->cmd) != 0) {
        wx_arena_release(&d->arena);
        free(d);
        free(t);
        return; /* the next failure tries again */
    }
    wx_logf(WX_LOG_WARN, "webhooks: disabling subscription %s: %s", s->id, reason);
    atomic_fetch_add(&w->disabled, 1);
    ticket_put(s->disable_ticket);
    s->disable_ticket = t;
    s->disable_sent = true;
    s->disable_sent_mono = wx_monotonic_ms();
    s->status = SUBSCRIPTION_DISABLED; /* until the read model says otherwise */
}

static void delivered(struct bus_webhook *w, struct sub *s)
{
    s->st.cursor = current(s)->pos;
    pop_current(s);
    s->st.attempts = 0;
    s->st.next_attempt_ms = 0;
    s->st.first_attempt_ms = 0;
    s->st.failing_since_ms = 0;
    s->st.delivered++;
    s->st.last_error[0] = '\0';
    mark_dirty(s); /* saved within BUS_WEBHOOK_CHECKPOINT_MS */
    atomic_fetch_add(&w->delivered, 1);
}

/* Moves the current event to the dead letters; false when the queue is
 * at its bound (the subscription is disabled instead). */
static bool dead_letter(struct bus_webhook *w, struct sub *s, int64_t now_ms)
{
    int64_t n = 0;
    int err = bus_delivery_dead_count(w->cfg.delivery, s->id, &n);
    if (!err && n >= BUS_DEAD_LETTERS_PER_SUBSCRIPTION_MAX) {
        if (!s->disable_sent)
            disable(w, s, "its dead-letter queue is full");
        return false;
    }
    struct ahead *a = current(s);
    struct bus_dead_letter dl = {
        .subscription_id = s->id,
        .event_id = a->id,
        .position = a->pos,
        .attempts = s->st.attempts,
        .last_error = s->st.last_error,
        .first_attempt_ms = s->st.first_attempt_ms ? s->st.first_attempt_ms : now_ms,
        .last_attempt_ms = now_ms,
        .body = a->body.data,
        .body_len = a->body.len,
    };
    struct bus_delivery_state next = s->st;
    next.cursor = a->pos;
    next.attempts = 0;
    next.next_attempt_ms = 0;
    next.first_attempt_ms = 0;
    if (!err)
        err = bus_delivery_dead_add(w->cfg.delivery, &dl, &next);
    if (err) {
        wx_logf(WX_LOG_ERROR, "webhooks: dead letter for %s: %s", s->id, wx_strerror(err));
        return false;
    }
    s->st = next;
    s->dead++;
    pop_current(s);
    mark_dirty(s); /* when the checkpoint also passed unwanted events */
    atomic_fetch_add(&w->dead_lettered, 1);
    return true;
}

static void failed(struct bus_webhook *w, struct sub *s, const char *why, int64_t now_ms)
{
    atomic_fetch_add(&w->failed, 1);
    snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", why);
    s->st.attempts++;
    if (s->st.failing_since_ms == 0)
        s->st.failing_since_ms = now_ms;
    size_t len = w->cfg.retry_len;
    if ((size_t)s->st.attempts > len && dead_letter(w, s, now_ms)) {
        /* moved on */
    } else {
        size_t k = (size_t)s->st.attempts <= len ? (size_t)s->st.attempts - 1 : len - 1;
        s->st.next_attempt_ms = now_ms + w->retry_ms[k];
        save_state(w, s);
    }
    if (!s->disable_sent && now_ms - s->st.failing_since_ms >= w->cfg.disable_after_ms) {
        char reason[SUBSCRIPTION_REASON_BYTES_MAX + 1];
        char since[WX_RFC3339_BYTES];
        wx_time_format(s->st.failing_since_ms, since);
        snprintf(reason, sizeof(reason), "every delivery failed since %s; last: %.150s", since,
                 why);
        disable(w, s, reason);
    }
}

/* The outcome of a finished request, as a short text; "" for success. */
static void outcome_text(struct sub *s, CURLcode code, char *out, size_t cap)
{
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (code == CURLE_OK && status >= 200 && status < 300)
        out[0] = '\0';
    else if (s->refused_private)
        snprintf(out, cap, "refused: the URL resolves to a loopback or private address");
    else if (code != CURLE_OK)
        snprintf(out, cap, "%s", s->curl_error[0] ? s->curl_error : curl_easy_strerror(code));
    else
        snprintf(out, cap, "HTTP %ld: %.*s", status, (int)s->snippet_len, s->snippet);
}

static void finish_requests(struct bus_webhook *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        w->more = true; /* its subscription may start its next request at once */
        struct sub *s = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        assert(s != NULL && s->easy == m->easy_handle);
        char why[BUS_ERROR_BYTES];
        outcome_text(s, m->data.result, why, sizeof(why));
        bool ok = why[0] == '\0';
        end_request(w, s);
        int64_t now_ms = wx_clock_now_ms(&wx_clock_system);
        if (s->replaying) {
            int err = bus_delivery_dead_replayed(w->cfg.delivery, s->replay_id, ok, why, now_ms);
            if (err)
                wx_logf(WX_LOG_ERROR, "webhooks: replayed letter: %s", wx_strerror(err));
            atomic_fetch_add(ok ? &w->replayed : &w->failed, 1);
            if (ok && !err && s->dead > 0)
                s->dead--; /* the letter left the store */
            s->replaying = false;
            s->replay_check = true; /* there may be more */
        } else if (current(s) == NULL) {
            /* its events were dropped meanwhile (a replay from a position) */
        } else if (ok) {
            delivered(w, s);
        } else {
            failed(w, s, why, now_ms);
        }
    }
}

/* ---- orders from HTTP threads ---- */

static int enqueue(struct bus_webhook *w, const struct control *c)
{
    pthread_mutex_lock(&w->lock);
    bool full = w->control_len == BUS_WEBHOOK_CONTROL_MAX;
    if (!full)
        w->control[w->control_len++] = *c;
    pthread_mutex_unlock(&w->lock);
    if (!full && !atomic_exchange(&w->kicked, true))
        curl_multi_wakeup(w->multi);
    return full ? WX_ERR_FULL : 0;
}

int bus_webhook_replay_dead_letter(struct bus_webhook *w, int64_t dead_letter_id)
{
    struct control c = {.kind = CONTROL_REPLAY_DEAD, .dead_letter_id = dead_letter_id};
    return enqueue(w, &c);
}

int bus_webhook_replay_from(struct bus_webhook *w, const char *subscription_id,
                            const struct es_position *from)
{
    struct control c = {.kind = CONTROL_REPLAY_FROM, .from = *from};
    snprintf(c.subscription_id, sizeof(c.subscription_id), "%s", subscription_id);
    return enqueue(w, &c);
}

/* The position just before p: reading "after" it starts at p itself. */
static struct es_position before(const struct es_position *p)
{
    if (p->lo > 0)
        return (struct es_position){p->hi, p->lo - 1};
    return p->hi > 0 ? (struct es_position){p->hi - 1, UINT64_MAX} : es_position_start();
}

/* An order, on the node that delivers. */
static void apply_control(struct bus_webhook *w, const struct control *c)
{
    if (c->kind == CONTROL_REPLAY_DEAD) {
        struct wx_arena arena;
        wx_arena_init(&arena);
        struct bus_dead_letter dl;
        int err = bus_delivery_dead_get(w->cfg.delivery, c->dead_letter_id, &arena, &dl);
        if (!err)
            err = bus_delivery_dead_request_replay(w->cfg.delivery, dl.id);
        struct sub *s = err ? NULL : find_sub(w, dl.subscription_id);
        if (s != NULL)
            s->replay_check = true;
        if (err && err != WX_ERR_NOT_FOUND)
            wx_logf(WX_LOG_ERROR, "webhooks: replay request: %s", wx_strerror(err));
        wx_arena_release(&arena);
        return;
    }
    struct sub *s = find_sub(w, c->subscription_id);
    if (s == NULL)
        return;
    if (!s->replaying)
        end_request(w, s); /* its event is delivered again with the rest */
    s->st.cursor = before(&c->from);
    drop_ahead(s);
    s->st.attempts = 0;
    s->st.next_attempt_ms = 0;
    s->st.first_attempt_ms = 0;
    save_state(w, s);
}

/* An order: carried out here, or left for the node that delivers. */
static void run_control(struct bus_webhook *w, const struct control *c)
{
    if (w->leading) {
        apply_control(w, c);
        return;
    }
    struct bus_delivery_request r = {
        .dead_letter_id = c->kind == CONTROL_REPLAY_DEAD ? c->dead_letter_id : 0,
        .subscription_id = c->kind == CONTROL_REPLAY_FROM ? c->subscription_id : NULL,
        .from = c->from,
    };
    int err = bus_delivery_request_add(w->cfg.delivery, &r);
    if (err)
        wx_logf(WX_LOG_ERROR, "webhooks: passing an order to the delivering node: %s",
                wx_strerror(err));
}

/* An order left by another node, as if given here. */
static int take_request(void *arg, const struct bus_delivery_request *r)
{
    struct bus_webhook *w = arg;
    struct control c = {.kind = r->dead_letter_id > 0 ? CONTROL_REPLAY_DEAD : CONTROL_REPLAY_FROM,
                        .dead_letter_id = r->dead_letter_id,
                        .from = r->from};
    snprintf(c.subscription_id, sizeof(c.subscription_id), "%s",
             r->subscription_id ? r->subscription_id : "");
    apply_control(w, &c);
    return 0;
}

/* Publishes what bus_webhook_stats reads of the subscriptions. */
static void publish_stats(struct bus_webhook *w)
{
    uint64_t dead = 0;
    bool known = false;
    struct es_position slowest = es_position_start();
    for (size_t i = 0; i < w->subs_len; i++) {
        const struct sub *s = w->subs[i];
        dead += (uint64_t)s->dead;
        if (s->status != SUBSCRIPTION_ACTIVE)
            continue; /* a paused one lags on purpose */
        if (!known || es_position_cmp(&s->st.cursor, &slowest) < 0)
            slowest = s->st.cursor;
        known = true;
    }
    atomic_store(&w->dead_now, dead);
    pthread_mutex_lock(&w->lock);
    w->slowest_known = known;
    w->slowest = slowest;
    w->leading_now = w->leading;
    pthread_mutex_unlock(&w->lock);
}

/* Forgets every subscription (requests in flight abandoned): on taking the
 * lease each starts from the state the last deliverer saved, and on losing
 * it nothing more is delivered or written here. */
static void drop_subs(struct bus_webhook *w)
{
    while (w->subs_len > 0)
        free_sub(w, w->subs[--w->subs_len]);
    atomic_store(&w->tracked, 0);
    atomic_store(&w->wake_on_commit, false); /* standing by: only orders wake it */
    atomic_store(&w->inflight_now, w->inflight);
}

/* Whether this node delivers: the lease, tried every BUS_LEASE_MS. */
static bool lease_check(struct bus_webhook *w, int64_t now_mono)
{
    if (now_mono < w->lease_due_mono)
        return w->leading;
    w->lease_due_mono = now_mono + BUS_LEASE_MS;
    bool held = false;
    if (bus_delivery_lease(w->cfg.delivery, &held) != 0)
        held = false;
    if (held != w->leading) {
        drop_subs(w);
        wx_logf(WX_LOG_INFO, "webhooks: %s",
                held ? "this node delivers from now" : "another node delivers; standing by");
    }
    w->leading = held;
    publish_stats(w); /* a node standing by shows nothing of the last lead */
    return held;
}

/* On the node that delivers, with other nodes: orders they were given. */
static void take_requests(struct bus_webhook *w, int64_t now_mono)
{
    if (!w->cfg.shared || now_mono < w->requests_due_mono)
        return;
    w->requests_due_mono = now_mono + BUS_IDLE_MS;
    int err = bus_delivery_requests_take(w->cfg.delivery, take_request, w);
    if (err)
        wx_logf(WX_LOG_WARN, "webhooks: orders from other nodes: %s", wx_strerror(err));
}

static void run_controls(struct bus_webhook *w)
{
    struct control batch[BUS_WEBHOOK_CONTROL_MAX];
    pthread_mutex_lock(&w->lock);
    size_t n = w->control_len;
    memcpy(batch, w->control, n * sizeof(batch[0]));
    w->control_len = 0;
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < n; i++)
        run_control(w, &batch[i]);
}

/* ---- the thread ---- */

/* How long the thread may sleep: until the next retry or checkpoint save
 * is due, at most the idle interval. */
static int64_t sleep_ms(struct bus_webhook *w, int64_t now_ms)
{
    int64_t ms = w->more ? 0 : BUS_IDLE_MS;
    uint64_t waiting = 0;
    bool room = w->inflight < BUS_WEBHOOK_INFLIGHT_MAX, hungry = false;
    int64_t now_mono = wx_monotonic_ms();
    for (size_t i = 0; i < w->subs_len; i++) {
        struct sub *s = w->subs[i];
        if (s->dirty_mono != 0) {
            int64_t save_in = BUS_WEBHOOK_CHECKPOINT_MS - (now_mono - s->dirty_mono);
            ms = save_in < ms ? (save_in > 0 ? save_in : 0) : ms;
        }
        if (s->q_len > 0 && s->st.attempts > 0)
            waiting++;
        if (room && s->q_len > 0 && ready(s)) {
            int64_t due = s->st.next_attempt_ms - now_ms;
            ms = due < ms ? (due > 0 ? due : 0) : ms;
        }
        hungry |= s->q_len == 0 && ready(s);
    }
    atomic_store(&w->retry_depth, waiting);
    /* With no subscription a commit wakes nothing: a new one is found by
     * the catalog read every BUS_IDLE_MS. */
    atomic_store(&w->wake_on_commit, hungry || (w->inflight == 0 && w->subs_len > 0));
    return ms;
}

static void *webhook_main(void *arg)
{
    struct bus_webhook *w = arg;
    pthread_setname_np(pthread_self(), "wx-webhooks");
    bus_thread_background();
    int64_t catalog_at = 0;
    bool catalog_due = true; /* a commit woke us since the last read */
    while (!atomic_load(&w->stopping)) {
        int64_t now_mono = wx_monotonic_ms();
        if (!lease_check(w, now_mono)) {
            run_controls(w);
            catalog_due = true;
            int64_t wait = w->lease_due_mono - now_mono;
            if (!atomic_exchange(&w->kicked, false)) /* orders kick; commits not while by */
                curl_multi_poll(w->multi, NULL, 0, (int)(wait > 0 ? wait : 0), NULL);
            continue;
        }
        take_requests(w, now_mono);
        catalog_due |= atomic_exchange(&w->kicked, false);
        int64_t since = now_mono - catalog_at;
        if ((catalog_due && since >= BUS_WEBHOOK_CATALOG_MS) || since >= BUS_IDLE_MS) {
            refresh_catalog(w);
            catalog_at = now_mono;
            catalog_due = false;
        }
        run_controls(w);
        w->more = false;
        int running = 0;
        curl_multi_perform(w->multi, &running);
        finish_requests(w);
        start_due(w, wx_clock_now_ms(&wx_clock_system), now_mono);
        curl_multi_perform(w->multi, &running);
        finish_requests(w);
        int64_t wait = sleep_ms(w, wx_clock_now_ms(&wx_clock_system));
        publish_stats(w);
        if (catalog_due) {
            int64_t left = BUS_WEBHOOK_CATALOG_MS - (wx_monotonic_ms() - catalog_at);
            wait = left < wait ? (left > 0 ? left : 0) : wait;
        }
        if (!atomic_load(&w->kicked))
            curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

int bus_webhook_start(const struct bus_webhook_config *config, struct bus_webhook **out)
{
    assert(config->retry_len >= 1 && config->retry_len <= BUS_RETRY_SCHEDULE_MAX);
    assert(config->timeout_ms > 0 && config->disable_after_ms > 0);
    struct bus_webhook *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return WX_ERR_NOMEM;
    w->cfg = *config;
    memcpy(w->retry_ms, config->retry_ms, config->retry_len * sizeof(w->retry_ms[0]));
    w->cfg.retry_ms = w->retry_ms;
    wx_buf_init(&w->scratch);
    pthread_mutex_init(&w->lock, NULL);
    w->multi = curl_multi_init();
    int err = w->multi ? 0 : WX_ERR_NOMEM;
    if (!err) {
        curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)BUS_WEBHOOK_INFLIGHT_MAX);
        err = pthread_create(&w->thread, NULL, webhook_main, w) == 0 ? 0 : WX_ERR_NOMEM;
    }
    if (err) {
        bus_webhook_free(w);
        return err;
    }
    w->started = true;
    *out = w;
    return 0;
}

void bus_webhook_stop(struct bus_webhook *w)
{
    if (w == NULL || !w->started)
        return;
    atomic_store(&w->stopping, true);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    w->started = false;
    /* Checkpoints not saved yet are kept for the next start. */
    for (size_t i = 0; i < w->subs_len; i++)
        if (w->subs[i]->dirty_mono != 0)
            save_state(w, w->subs[i]);
}

void bus_webhook_free(struct bus_webhook *w)
{
    if (w == NULL)
        return;
    assert(!w->started);
    for (size_t i = 0; i < w->subs_len; i++)
        free_sub(w, w->subs[i]);
    curl_multi_cleanup(w->multi);
    wx_buf_free(&w->scratch);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void bus_webhook_notify(struct bus_webhook *w)
{
    /* Pairs with the thread's store of wake_on_commit before it looks at
     * kicked and sleeps: one of the two sees the other. */
    if (!atomic_exchange(&w->kicked, true) && atomic_load(&w->wake_on_commit))
        curl_multi_wakeup(w->multi);
}

bool bus_webhook_deny_private(const struct bus_webhook *w)
{
    return w->cfg.deny_private;
}

void bus_webhook_stats(struct bus_webhook *w, struct bus_webhook_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->subscriptions = atomic_load(&w->tracked);
    out->in_flight = atomic_load(&w->inflight_now);
    out->retrying = atomic_load(&w->retry_depth);
    out->delivered = (uint64_t)atomic_load(&w->delivered) + atomic_load(&w->replayed);
    out->failed = atomic_load(&w->failed);
    out->dead_lettered = atomic_load(&w->dead_lettered);
    out->replayed = atomic_load(&w->replayed);
    out->dead_letters = atomic_load(&w->dead_now);
    pthread_mutex_lock(&w->lock);
    out->slowest_known = w->slowest_known;
    out->slowest = w->slowest;
    out->delivers_here = w->leading_now;
    pthread_mutex_unlock(&w->lock);
}

void bus_webhook_metrics(struct bus_webhook *w, struct wx_buf *b)
{
    wx_metric_header(b, "wallex_webhook_deliveries_total", "counter",
                     "Webhook requests by outcome (replays of dead letters included).");
    wx_buf_printf(b, "wallex_webhook_deliveries_total{outcome=\"success\"} %" PRIu64 "\n",
                  (uint64_t)atomic_load(&w->delivered) + atomic_load(&w->replayed));
    wx_buf_printf(b, "wallex_webhook_deliveries_total{outcome=\"failure\"} %" PRIu64 "\n",
                  (uint64_t)atomic_load(&w->failed));
    static const char *const gauges[][3] = {
        {"wallex_webhook_dead_letters_total", "counter", "Events moved to the dead-letter queue."},
        {"wallex_webhook_replays_total", "counter", "Dead letters delivered on replay."},
        {"wallex_webhook_disabled_total", "counter", "Subscriptions disabled for failing."},
        {"wallex_webhook_retry_queue_depth", "gauge", "Subscriptions waiting to retry an event."},
        {"wallex_webhook_inflight", "gauge", "Webhook requests in flight."},
        {"wallex_webhook_subscriptions", "gauge", "Subscriptions the delivery thread follows."},
    };
    uint64_t values[] = {atomic_load(&w->dead_lettered), atomic_load(&w->replayed),
                         atomic_load(&w->disabled),      atomic_load(&w->retry_depth),
                         atomic_load(&w->inflight_now),  atomic_load(&w->tracked)};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        wx_metric_header(b, gauges[i][0], gauges[i][1], gauges[i][2]);
        wx_buf_printf(b, "%s %" PRIu64 "\n", gauges[i][0], values[i]);
    }
}
