/*
 * The single writer with group commit; see writer.h for the contract.
 *
 * State lives in three layers. The cache holds committed aggregate states
 * (bounded, LRU). The overlay holds what earlier commands of the current
 * batch staged; it becomes the cache only after the batch commits, and is
 * dropped when the commit fails. Each command works on private copies in
 * its decide context, which join the overlay only when the command
 * succeeds, so a rejected command leaves no trace.
 *
 * A batch runs in rounds (run_rounds). When the store says some items lost
 * a version race to another writer, those items and every later one
 * sharing a stream with them are taken out, the rest commit, the taken-out
 * streams leave the cache, and their commands are decided again as the
 * next round, on fresh state.
 */
#include "es/writer.h"

#include <assert.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/map.h"
#include "es/domain.h"
#include "limits.h"
#include "obs/log.h"
#include "store/store.h"

struct cache_entry {
    struct cache_entry *prev; /* towards the most recently used */
    struct cache_entry *next;
    const struct es_aggregate_type *type;
    int64_t version;
    char *stream_id;
    size_t state_bytes; /* in use, and allocated: the cache keeps no more */
    alignas(max_align_t) unsigned char state[];
};

struct staged_stream {
    const struct es_aggregate_type *type;
    int64_t version;
    void *state; /* batch arena */
};

struct cmd_stream {
    const char *stream_id; /* batch arena */
    const struct es_aggregate_type *type;
    int64_t version_before;
    int64_t version;
    void *state; /* batch arena, state_bytes_max: the command's private copy */
    struct es_event *events; /* batch arena, grown by doubling */
    size_t events_len, events_cap;
};

struct es_decide_ctx {
    struct es_writer *w;
    struct es_command *cmd;
    int64_t now_ms;
    struct cmd_stream streams[WX_COMMAND_STREAMS_MAX];
    size_t streams_len;
    size_t events_len; /* over all streams */
    bool answered;
    int err; /* a system error inside the handler: the command fails */
};

struct es_writer {
    struct es_store *store;
    const struct wx_clock *clock;
    int64_t idem_ttl_ms;
    size_t cache_streams_max;
    int64_t snapshot_every;
    bool check_reads;
    void (*on_commit)(void *ctx);
    void *on_commit_ctx;
    pthread_t thread;

    pthread_mutex_t lock; /* guards the queue and `stopping` */
    pthread_cond_t cond;
    struct es_command *queue_head;
    struct es_command *queue_tail;
    size_t queue_len;
    bool stopping;

    /* Writer thread only. */
    struct wx_map cache; /* stream id -> struct cache_entry */
    struct cache_entry *lru_head;
    struct cache_entry *lru_tail;
    struct wx_map overlay;    /* stream id -> struct staged_stream */
    struct wx_map batch_keys; /* idempotency keys claimed in this batch */
    struct wx_map tainted;    /* streams another writer changed under this batch */
    int64_t follow_until_ms;  /* monotonic: follow the log until then (cache_follow_log) */
    bool following;
    struct es_position follow_pos;
    struct wx_arena batch_arena;
    int64_t idem_expired_at_ms; /* monotonic time of the last cleanup */

    struct es_writer_stats stats;
};

/* ---- cache ---- */

static void lru_unlink(struct es_writer *w, struct cache_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        w->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        w->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct es_writer *w, struct cache_entry *e)
{
    e->prev = NULL;
    e->next = w->lru_head;
    if (w->lru_head)
        w->lru_head->prev = e;
    w->lru_head = e;
    if (w->lru_tail == NULL)
        w->lru_tail = e;
}

static struct cache_entry *cache_get(struct es_writer *w, const char *stream_id)
{
    struct cache_entry *e = wx_map_get(&w->cache, stream_id);
    if (e != NULL && e != w->lru_head) {
        lru_unlink(w, e);
        lru_push_front(w, e);
    }
    return e;
}

/* Caching is an optimisation: when memory runs out the entry is simply not
 * cached and the next load reads the store again. */
static void cache_drop(struct es_writer *w, struct cache_entry *e)
{
    lru_unlink(w, e);
    wx_map_remove(&w->cache, e->stream_id);
    free(e->stream_id);
    free(e);
}

static void cache_put(struct es_writer *w, const char *stream_id,
                      const struct es_aggregate_type *type, int64_t version, const void *state)
{
    size_t bytes = es_state_bytes(type, state);
    assert(bytes <= type->state_bytes_max);
    struct cache_entry *e = cache_get(w, stream_id);
    if (e != NULL) {
        assert(e->type == type);
        assert(version >= e->version);
        if (e->state_bytes == bytes) {
            e->version = version;
            memcpy(e->state, state, bytes);
            return;
        }
        cache_drop(w, e); /* its size changed: allocate it again */
    }
    e = malloc(sizeof(*e) + bytes);
    if (e == NULL)
        return;
    e->stream_id = strdup(stream_id);
    if (e->stream_id == NULL || wx_map_put(&w->cache, stream_id, e) != 0) {
        free(e->stream_id);
        free(e);
        return;
    }
    e->type = type;
    e->version = version;
    e->state_bytes = bytes;
    memcpy(e->state, state, bytes);
    lru_push_front(w, e);
    while (w->cache.len > w->cache_streams_max)
        cache_drop(w, w->lru_tail);
}

/* Every entry out; the map keeps its memory. */
static void cache_clear(struct es_writer *w)
{
    while (w->lru_tail != NULL)
        cache_drop(w, w->lru_tail);
}

static void cache_free(struct es_writer *w)
{
    struct cache_entry *e = w->lru_head;
    while (e != NULL) {
        struct cache_entry *next = e->next;
        free(e->stream_id);
        free(e);
        e = next;
    }
    w->lru_head = w->lru_tail = NULL;
    wx_map_free(&w->cache);
}

/* ---- bringing stale states up to the log ---- */

struct catch_up {
    struct es_writer *w;
    char stream_id[WX_STREAM_ID_BYTES_MAX + 1]; /* being folded; "" none */
    const struct es_aggregate_type *type;
    void *state; /* malloc, state_cap bytes */
    size_t state_cap;
    int64_t version;
    bool failed;
    size_t events;
    struct es_position last; /* of the last event seen */
    struct wx_buf scratch;
};

/* The folded state replaces the cached one; one that could not be folded
 * leaves the cache (and is folded from the store on its next use). */
static void catch_up_finish(struct catch_up *cu)
{
    if (cu->stream_id[0] == '\0')
        return;
    struct cache_entry *e = wx_map_get(&cu->w->cache, cu->stream_id);
    if (e != NULL && cu->failed)
        cache_drop(cu->w, e);
    else if (e != NULL)
        cache_put(cu->w, cu->stream_id, cu->type, cu->version, cu->state);
    cu->stream_id[0] = '\0';
}

static int catch_up_event(void *arg, const struct es_event *ev)
{
    struct catch_up *cu = arg;
    cu->events++;
    cu->last = ev->position;
    if (strcmp(ev->stream_id, cu->stream_id) != 0) {
        catch_up_finish(cu);
        struct cache_entry *e = wx_map_get(&cu->w->cache, ev->stream_id);
        if (e == NULL || strlen(ev->stream_id) >= sizeof(cu->stream_id))
            return 0; /* left the cache meanwhile: nothing to bring up */
        if (cu->state_cap < e->type->state_bytes_max) {
            void *grown = realloc(cu->state, e->type->state_bytes_max);
            if (grown == NULL) {
                cache_drop(cu->w, e);
                return 0;
            }
            cu->state = grown;
            cu->state_cap = e->type->state_bytes_max;
        }
        memcpy(cu->state, e->state, e->state_bytes);
        cu->type = e->type;
        cu->version = e->version;
        cu->failed = false;
        memcpy(cu->stream_id, ev->stream_id, strlen(ev->stream_id) + 1);
    }
    if (ev->version <= cu->version)
        return 0; /* in the state already (this writer's own, when following the log) */
    if (!cu->failed && es_evolve_next(cu->type, cu->state, &cu->version, ev, &cu->scratch) != 0)
        cu->failed = true; /* not the next version: a gap */
    return 0;
}

/* After a read through catch_up_event (err: how it ended): the last
 * stream's state into the cache when the read ended well, and the buffers
 * released. */
static int catch_up_end(struct catch_up *cu, int err)
{
    if (!err)
        catch_up_finish(cu);
    free(cu->state);
    wx_buf_free(&cu->scratch);
    return err;
}

/* The streams another writer changed under this batch (tainted): their
 * cached states are brought up to the log with one read of the events
 * they lack, rather than dropped and each folded again (a snapshot and a
 * stream read, two round trips per stream on PostgreSQL). When the read
 * fails or may have been cut short, they are dropped. */
static void cache_catch_up(struct es_writer *w)
{
    if (w->tainted.len == 0)
        return;
    struct es_stream_from *from =
        wx_arena_alloc(&w->batch_arena, w->tainted.len * sizeof(*from));
    size_t n = 0, cursor = 0;
    const char *key;
    void *value;
    while (from != NULL && wx_map_next(&w->tainted, &cursor, &key, &value)) {
        const struct cache_entry *e = wx_map_get(&w->cache, key);
        if (e != NULL)
            from[n++] = (struct es_stream_from){key, e->version};
    }
    struct catch_up cu = {.w = w};
    wx_buf_init(&cu.scratch);
    int err = from == NULL ? WX_ERR_NOMEM : 0;
    if (!err && n > 0)
        err = es_store_read_streams(w->store, from, n, WX_WRITER_CATCH_UP_EVENTS_MAX,
                                    catch_up_event, &cu);
    if (catch_up_end(&cu, err) != 0 || cu.events >= WX_WRITER_CATCH_UP_EVENTS_MAX) {
        cursor = 0;
        while (wx_map_next(&w->tainted, &cursor, &key, &value)) {
            struct cache_entry *e = wx_map_get(&w->cache, key);
            if (e != NULL)
                cache_drop(w, e);
        }
    }
    atomic_fetch_add(&w->stats.catch_up_events, cu.events);
}

/* While other writers keep winning races (a conflict in the last
 * WX_WRITER_FOLLOW_MS), the writer reads the log's new events before each
 * batch and brings the states it caches up to them, so its next decisions
 * start from what the other nodes wrote rather than lose the race and pay
 * for it (a failed commit, a read, another commit). Each look is one read
 * of at most WX_WRITER_CATCH_UP_EVENTS_MAX events; this writer's own
 * events are skipped (the cache has them). Without conflicts nothing is
 * read; a follow that starts again starts at the head. */
static void cache_follow_log(struct es_writer *w)
{
    int64_t now = wx_monotonic_ms();
    if (now >= w->follow_until_ms) {
        w->following = false;
        return;
    }
    if (!w->following) {
        if (es_store_head(w->store, &w->follow_pos) == 0)
            w->following = true;
        return;
    }
    struct catch_up cu = {.w = w, .last = w->follow_pos};
    wx_buf_init(&cu.scratch);
    int err = es_store_read_log(w->store, &w->follow_pos, WX_WRITER_CATCH_UP_EVENTS_MAX,
                                catch_up_event, &cu);
    if (catch_up_end(&cu, err) != 0) {
        w->following = false; /* a stream half brought up stays as it was: still a valid state */
        return;
    }
    w->follow_pos = cu.last;
    atomic_fetch_add(&w->stats.catch_up_events, cu.events);
}

/* ---- decide context ---- */

static struct cmd_stream *ctx_stream(struct es_decide_ctx *ctx, const char *stream_id)
{
    for (size_t i = 0; i < ctx->streams_len; i++)
        if (strcmp(ctx->streams[i].stream_id, stream_id) == 0)
            return &ctx->streams[i];
    return NULL;
}

/* A new entry for this command's streams, state zeroed. */
static int ctx_stream_add(struct es_decide_ctx *ctx, const struct es_aggregate_type *type,
                          const char *stream_id, struct cmd_stream **cs_out)
{
    struct es_writer *w = ctx->w;
    if (ctx->streams_len == WX_COMMAND_STREAMS_MAX)
        return WX_ERR_TOO_LARGE;
    struct cmd_stream *cs = &ctx->streams[ctx->streams_len];
    memset(cs, 0, sizeof(*cs));
    cs->type = type;
    cs->stream_id = wx_arena_strdup(&w->batch_arena, stream_id);
    cs->state = wx_arena_alloc(&w->batch_arena, type->state_bytes_max);
    if (cs->stream_id == NULL || cs->state == NULL)
        return WX_ERR_NOMEM;
    *cs_out = cs;
    return 0;
}

int es_decide_load_new(struct es_decide_ctx *ctx, const struct es_aggregate_type *type,
                       const char *stream_id, const void **state_out)
{
    assert(ctx_stream(ctx, stream_id) == NULL);
    assert(wx_map_get(&ctx->w->overlay, stream_id) == NULL);
    struct cmd_stream *cs;
    int err = ctx_stream_add(ctx, type, stream_id, &cs);
    if (err)
        return err;
    type->init(cs->state);
    ctx->streams_len++;
    *state_out = cs->state;
    return 0;
}

int es_decide_load(struct es_decide_ctx *ctx, const struct es_aggregate_type *type,
                   const char *stream_id, const void **state_out, int64_t *version_out)
{
    struct es_writer *w = ctx->w;
    struct cmd_stream *cs = ctx_stream(ctx, stream_id);
    if (cs != NULL) {
        assert(cs->type == type);
        goto out;
    }
    int err = ctx_stream_add(ctx, type, stream_id, &cs);
    if (err)
        return err;

    struct staged_stream *st = wx_map_get(&w->overlay, stream_id);
    struct cache_entry *ce;
    if (st != NULL) {
        assert(st->type == type);
        memcpy(cs->state, st->state, es_state_bytes(type, st->state));
        cs->version = st->version;
    } else if ((ce = cache_get(w, stream_id)) != NULL) {
        assert(ce->type == type);
        memcpy(cs->state, ce->state, ce->state_bytes);
        cs->version = ce->version;
        atomic_fetch_add(&w->stats.cache_hits, 1);
    } else {
        err = es_fold(w->store, type, stream_id, NULL, cs->state, &cs->version);
        if (err)
            return err;
        atomic_fetch_add(&w->stats.cache_misses, 1);
        if (cs->version > 0 && !type->uncached)
            cache_put(w, stream_id, type, cs->version, cs->state);
    }
    cs->version_before = cs->version;
    ctx->streams_len++;
out:
    *state_out = cs->state;
    *version_out = cs->version;
    return 0;
}

static char *event_metadata(struct es_decide_ctx *ctx, size_t *len_out)
{
    struct es_command *cmd = ctx->cmd;
    char at[WX_RFC3339_BYTES];
    wx_time_format(ctx->now_ms, at);
    struct wx_buf b;
    wx_buf_init(&b);
    bool first = true;
    wx_buf_addc(&b, '{');
    wx_buf_json_key(&b, "correlationId", &first);
    wx_buf_json_str(&b, cmd->correlation_id ? cmd->correlation_id : cmd->command_id);
    wx_buf_json_key(&b, "causationId", &first);
    wx_buf_json_str(&b, cmd->command_id);
    wx_buf_json_key(&b, "occurredAt", &first);
    wx_buf_json_str(&b, at);
    if (cmd->traceparent != NULL) {
        wx_buf_json_key(&b, "traceparent", &first);
        wx_buf_json_str(&b, cmd->traceparent);
    }
    if (cmd->actor != NULL) {
        wx_buf_json_key(&b, "actor", &first);
        wx_buf_json_str(&b, cmd->actor);
    }
    if (cmd->token_id != NULL) {
        wx_buf_json_key(&b, "tokenId", &first);
        wx_buf_json_str(&b, cmd->token_id);
    }
    wx_buf_addc(&b, '}');
    char *out = NULL;
    if (wx_buf_ok(&b)) {
        out = wx_arena_strndup(&ctx->w->batch_arena, b.data, b.len);
        *len_out = b.len;
    }
    wx_buf_free(&b);
    return out;
}

/* Room for one more event on the stream. */
static int stream_room(struct es_writer *w, struct cmd_stream *cs)
{
    if (cs->events_len < cs->events_cap)
        return 0;
    size_t cap = cs->events_cap ? 2 * cs->events_cap : 4;
    struct es_event *events = wx_arena_alloc(&w->batch_arena, cap * sizeof(*events));
    if (events == NULL)
        return WX_ERR_NOMEM;
    if (cs->events_len > 0)
        memcpy(events, cs->events, cs->events_len * sizeof(*events));
    cs->events = events;
    cs->events_cap = cap;
    return 0;
}

int es_decide_emit(struct es_decide_ctx *ctx, const char *stream_id,
                   const struct es_event_type *type, const char *data, size_t data_len,
                   const void *state_after)
{
    struct es_writer *w = ctx->w;
    struct cmd_stream *cs = ctx_stream(ctx, stream_id);
    assert(cs != NULL); /* handlers emit only on streams they loaded */
    assert(type->schema_version >= 1);
    if (ctx->events_len == WX_COMMAND_EVENTS_MAX || data_len > WX_EVENT_DATA_BYTES_MAX)
        return WX_ERR_TOO_LARGE;
    int err = stream_room(w, cs);
    if (err)
        return err;

    struct es_event *ev = &cs->events[cs->events_len];
    memset(ev, 0, sizeof(*ev));
    err = wx_uuid7(ctx->now_ms, ev->event_id);
    if (err)
        return err;
    ev->stream_id = cs->stream_id;
    ev->version = cs->version + 1;
    ev->type = type->name; /* static: event types live as long as the process */
    ev->schema_version = type->schema_version;
    ev->data = wx_arena_strndup(&w->batch_arena, data, data_len);
    ev->data_len = data_len;
    ev->metadata = event_metadata(ctx, &ev->metadata_len);
    ev->occurred_at_ms = ctx->now_ms;
    if (ev->type == NULL || ev->data == NULL || ev->metadata == NULL)
        return WX_ERR_NOMEM;
    if (state_after != cs->state)
        memcpy(cs->state, state_after, es_state_bytes(cs->type, state_after));
    cs->version++;
    cs->events_len++;
    ctx->events_len++;
    return 0;
}

int es_decide_fold_at(struct es_decide_ctx *ctx, const struct es_aggregate_type *type,
                      const char *stream_id, int64_t version, const void **state_out)
{
    assert(version >= 1);
    void *state = wx_arena_alloc(&ctx->w->batch_arena, type->state_bytes_max);
    if (state == NULL)
        return WX_ERR_NOMEM;
    struct es_fold_until until = {.version_max = version};
    int64_t reached;
    int err = es_fold(ctx->w->store, type, stream_id, &until, state, &reached);
    if (err)
        return err;
    if (reached != version)
        return WX_ERR_BUSY;
    *state_out = state;
    return 0;
}

void *es_decide_alloc(struct es_decide_ctx *ctx, size_t bytes)
{
    return wx_arena_alloc(&ctx->w->batch_arena, bytes);
}

int64_t es_decide_now_ms(const struct es_decide_ctx *ctx)
{
    return ctx->now_ms;
}

const char *es_decide_actor(const struct es_decide_ctx *ctx)
{
    return ctx->cmd->actor;
}

const void *es_decide_principal(const struct es_decide_ctx *ctx)
{
    return ctx->cmd->principal;
}

static void answer(struct es_command *cmd, int status, const struct es_outcome *outcome,
                   const char *body, size_t body_len, const char *location)
{
    cmd->status = status;
    cmd->outcome = outcome;
    cmd->body = wx_arena_strndup(cmd->arena, body, body_len);
    cmd->body_len = cmd->body ? body_len : 0;
    cmd->location = location ? wx_arena_strdup(cmd->arena, location) : NULL;
}

void es_decide_reply(struct es_decide_ctx *ctx, int status, const char *body, size_t body_len,
                     const char *location)
{
    assert(!ctx->answered);
    ctx->answered = true;
    answer(ctx->cmd, status, ES_OK, body, body_len, location);
    if (ctx->cmd->body == NULL)
        ctx->err = WX_ERR_NOMEM;
}

/* A problem answer with nothing staged, from the handler or the writer. */
static void answer_problem_ext(struct es_command *cmd, const struct es_outcome *outcome,
                               const char *detail, const char *extra)
{
    struct wx_buf b;
    wx_buf_init(&b);
    es_problem_json_ext(&b, outcome, detail, extra);
    answer(cmd, outcome->status, outcome, wx_buf_ok(&b) ? b.data : "{}",
           wx_buf_ok(&b) ? b.len : 2, NULL);
    wx_buf_free(&b);
}

static void answer_problem(struct es_command *cmd, const struct es_outcome *outcome,
                           const char *detail)
{
    answer_problem_ext(cmd, outcome, detail, NULL);
}

void es_decide_fail(struct es_decide_ctx *ctx, int err)
{
    assert(err != 0);
    ctx->err = err;
}

bool es_decide_failed(const struct es_decide_ctx *ctx)
{
    return ctx->err != 0;
}

void es_decide_reject_ext(struct es_decide_ctx *ctx, const struct es_outcome *outcome,
                          const char *detail, const char *extra)
{
    assert(!ctx->answered);
    assert(outcome != ES_OK);
    ctx->answered = true;
    /* A rejection stages nothing, whatever the handler emitted before. */
    for (size_t i = 0; i < ctx->streams_len; i++)
        ctx->streams[i].events_len = 0;
    ctx->events_len = 0;
    answer_problem_ext(ctx->cmd, outcome, detail, extra);
}

void es_decide_reject(struct es_decide_ctx *ctx, const struct es_outcome *outcome,
                      const char *detail)
{
    es_decide_reject_ext(ctx, outcome, detail, NULL);
}

/* ---- batches ---- */

enum cmd_effect {
    EFFECT_BROKEN = -1, /* out of memory midway: the batch cannot be trusted */
    EFFECT_NONE = 0,    /* answered without writing anything */
    EFFECT_WRITE = 1,   /* has events and/or an idempotency record in the batch */
};

/* Idempotency before deciding: true when the command is already answered. */
static bool idem_precheck(struct es_writer *w, struct es_command *cmd, int64_t now_ms)
{
    if (wx_map_get(&w->batch_keys, cmd->idem_key) != NULL) {
        answer_problem(cmd, ES_idempotency_key_in_use,
                       "A request with this Idempotency-Key is still being processed");
        return true;
    }
    struct es_idem_record rec;
    int err = es_store_idem_get(w->store, cmd->idem_key, cmd->arena, &rec);
    if (err == WX_ERR_NOT_FOUND)
        return false;
    if (err) {
        answer_problem(cmd, ES_store_unavailable, "The idempotency record could not be read");
        return true;
    }
    if (rec.created_at_ms < now_ms - w->idem_ttl_ms)
        return false; /* expired: the key is free again */
    if (rec.request_len != cmd->request_len ||
        memcmp(rec.request, cmd->request, cmd->request_len) != 0) {
        answer_problem(cmd, ES_idempotency_key_reused,
                       "This Idempotency-Key was used with a different request");
        return true;
    }
    cmd->status = rec.status;
    cmd->outcome = NULL; /* replays are counted as idempotency hits, not by outcome */
    cmd->body = rec.body;
    cmd->body_len = rec.body_len;
    cmd->location = rec.location;
    cmd->has_position = rec.has_position;
    cmd->position = rec.position;
    cmd->replayed = true;
    atomic_fetch_add(&w->stats.idem_replays, 1);
    return true;
}

/* A snapshot rides along when the stream crossed a multiple of N. */
static int stage_snapshot(struct es_writer *w, const struct cmd_stream *cs,
                          struct es_batch_item *item)
{
    if (cs->type->encode == NULL ||
        cs->version_before / w->snapshot_every == cs->version / w->snapshot_every)
        return 0;
    if (item->snapshots == NULL) {
        item->snapshots =
            wx_arena_alloc(&w->batch_arena, WX_COMMAND_STREAMS_MAX * sizeof(*item->snapshots));
        if (item->snapshots == NULL)
            return WX_ERR_NOMEM;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    cs->type->encode(cs->state, &b);
    char *data = wx_buf_ok(&b) ? wx_arena_strndup(&w->batch_arena, b.data, b.len) : NULL;
    size_t len = b.len;
    wx_buf_free(&b);
    if (data == NULL)
        return WX_ERR_NOMEM;
    if (len > cs->type->snapshot_bytes_max) {
        /* A snapshot is only a shortcut: without it the stream folds from
         * the one before, or from its start. Never worth failing a command. */
        wx_logf(WX_LOG_ERROR, "writer: a %s snapshot of %zu bytes is over its bound of %zu",
                cs->type->name, len, cs->type->snapshot_bytes_max);
        return 0;
    }
    assert(item->snapshots_len < WX_COMMAND_STREAMS_MAX);
    item->snapshots[item->snapshots_len++] = (struct es_snapshot){
        .stream_id = cs->stream_id,
        .version = cs->version,
        .occurred_at_ms = cs->events[cs->events_len - 1].occurred_at_ms,
        .data = data,
        .data_len = len,
    };
    return 0;
}

/* The decided command's writes as a batch item: its appends (and, on a
 * shared store, checks of what it only read), its state into the overlay,
 * due snapshots and its idempotency record. */
static enum cmd_effect stage_item(struct es_writer *w, struct es_decide_ctx *ctx,
                                  struct es_batch_item *item, int64_t now_ms)
{
    struct es_command *cmd = ctx->cmd;
    memset(item, 0, sizeof(*item));
    size_t appends = 0;
    for (size_t i = 0; i < ctx->streams_len; i++)
        appends += ctx->streams[i].events_len > 0 || w->check_reads;
    if (appends > 0) {
        item->appends = wx_arena_alloc(&w->batch_arena, appends * sizeof(*item->appends));
        if (item->appends == NULL)
            goto err_nomem;
        for (size_t i = 0; i < ctx->streams_len; i++) {
            struct cmd_stream *cs = &ctx->streams[i];
            if (cs->events_len == 0) {
                /* Read, not changed: the store checks it is still so. */
                if (w->check_reads)
                    item->appends[item->appends_len++] = (struct es_stream_append){
                        cs->stream_id, {ES_EXPECT_EXACT, cs->version_before}, NULL, 0};
                continue;
            }
            struct staged_stream *st = wx_map_get(&w->overlay, cs->stream_id);
            if (st == NULL) {
                st = wx_arena_alloc(&w->batch_arena, sizeof(*st));
                if (st == NULL || wx_map_put(&w->overlay, cs->stream_id, st) != 0)
                    goto err_nomem;
            }
            st->type = cs->type;
            st->version = cs->version;
            st->state = cs->state;
            struct es_stream_append *ap = &item->appends[item->appends_len++];
            ap->stream_id = cs->stream_id;
            ap->expect = (struct es_expect){ES_EXPECT_EXACT, cs->version_before};
            ap->events = cs->events;
            ap->events_len = cs->events_len;
            if (stage_snapshot(w, cs, item) != 0)
                goto err_nomem;
        }
    }
    /* API.md: validation failures (400) are never remembered, whether the
     * HTTP layer or the decider found them ("1e3" and "1.001" alike), so a
     * corrected retry with the same key is decided afresh. */
    if (cmd->idem_key != NULL && cmd->status != 400) {
        struct es_idem_record *r = wx_arena_alloc(&w->batch_arena, sizeof(*r));
        if (r == NULL || wx_map_put(&w->batch_keys, cmd->idem_key, r) != 0)
            goto err_nomem;
        r->key = cmd->idem_key;
        r->request = cmd->request;
        r->request_len = cmd->request_len;
        r->status = cmd->status;
        r->body = cmd->body;
        r->body_len = cmd->body_len;
        r->location = cmd->location;
        r->created_at_ms = now_ms;
        /* Another node may have claimed the key since idem_precheck: only a
         * record that has expired may be replaced. */
        r->expired_before_ms = now_ms - w->idem_ttl_ms;
        item->idem = r;
    }
    return item->appends_len > 0 || item->idem != NULL ? EFFECT_WRITE : EFFECT_NONE;

err_nomem:
    /* The overlay may already hold this command's state: the batch cannot be
     * trusted, so the caller fails it whole. */
    return EFFECT_BROKEN;
}

/* *ran_out says whether the handler ran (then `committed` or `discarded`
 * follows, once its round is settled). */
static enum cmd_effect run_command(struct es_writer *w, struct es_command *cmd,
                                   struct es_batch_item *item, int64_t now_ms, bool *ran_out)
{
    *ran_out = false;
    cmd->may_be_in_log = false;
    cmd->status = 0;
    cmd->has_position = false;
    cmd->replayed = false;
    if (cmd->idem_key != NULL && idem_precheck(w, cmd, now_ms))
        return EFFECT_NONE;

    if (cmd->idem_key != NULL)
        atomic_fetch_add_explicit(&w->stats.idem_misses, 1, memory_order_relaxed);
    struct es_decide_ctx *ctx = wx_arena_alloc(&w->batch_arena, sizeof(*ctx));
    if (ctx == NULL) {
        answer_problem(cmd, ES_internal_error, "Out of memory");
        return EFFECT_NONE;
    }
    ctx->w = w;
    ctx->cmd = cmd;
    ctx->now_ms = now_ms;
    cmd->handle(ctx, cmd);
    *ran_out = true;

    if (ctx->err == 0 && !ctx->answered)
        ctx->err = WX_ERR_INVALID; /* a handler bug; fail the command, not the server */
    if (ctx->err) {
        wx_logf(WX_LOG_ERROR, "writer: command failed: %s", wx_strerror(ctx->err));
        bool store = ctx->err == WX_ERR_IO || ctx->err == WX_ERR_BUSY || ctx->err == WX_ERR_FAULT;
        answer_problem(cmd, store ? ES_store_unavailable : ES_internal_error,
                       wx_strerror(ctx->err));
        return EFFECT_NONE;
    }

    return stage_item(w, ctx, item, now_ms);
}

/* One round of a batch: its commands (submission order), the items they
 * staged, and which command staged which item. */
struct round {
    struct es_command **cmds;
    size_t len;
    struct es_batch_item *items;
    size_t *item_cmd; /* item -> index into cmds */
    size_t items_len;
    bool *again;      /* per command: lost a race, decide it again */
    bool *ran;        /* per command: its handler ran, not settled yet */
};

/* Decides every command of the round; false when memory ran out midway
 * (then every command with something to write is answered 500). */
static bool decide_round(struct es_writer *w, struct round *r, int64_t now_ms)
{
    bool broken = false;
    r->items_len = 0;
    for (size_t i = 0; i < r->len; i++) {
        struct es_command *cmd = r->cmds[i];
        r->again[i] = false;
        r->ran[i] = false;
        if (broken) {
            answer_problem(cmd, ES_internal_error, "Out of memory");
            continue;
        }
        enum cmd_effect effect = run_command(w, cmd, &r->items[r->items_len], now_ms, &r->ran[i]);
        if (effect == EFFECT_BROKEN)
            broken = true;
        else if (effect == EFFECT_WRITE)
            r->item_cmd[r->items_len++] = i;
    }
    if (broken)
        for (size_t k = 0; k < r->items_len; k++)
            answer_problem(r->cmds[r->item_cmd[k]], ES_internal_error, "Out of memory");
    return !broken;
}

static bool item_touches(const struct es_batch_item *item, const struct wx_map *streams)
{
    for (size_t a = 0; a < item->appends_len; a++)
        if (wx_map_get(streams, item->appends[a].stream_id) != NULL)
            return true;
    return false;
}

/* After a conflict: the items that lost, and every later item that shares
 * a stream with one of them (it was decided on state that included the
 * lost item's events), leave the round and are decided again. Their
 * streams are "tainted": the cache's state of them is stale. */
static int take_out_conflicts(struct es_writer *w, struct round *r)
{
    size_t kept = 0;
    for (size_t k = 0; k < r->items_len; k++) {
        struct es_batch_item *item = &r->items[k];
        if (item->conflict || item_touches(item, &w->tainted)) {
            for (size_t a = 0; a < item->appends_len; a++)
                if (wx_map_put(&w->tainted, item->appends[a].stream_id, w) != 0)
                    return WX_ERR_NOMEM;
            r->again[r->item_cmd[k]] = true;
            continue;
        }
        r->items[kept] = *item;
        r->item_cmd[kept++] = r->item_cmd[k];
    }
    assert(kept < r->items_len); /* the store marks at least one item */
    r->items_len = kept;
    return 0;
}

/* Commits the round's items; on a conflict, commits the others without
 * the ones that lost (each pass takes out at least one item, so this ends). */
static int commit_round(struct es_writer *w, struct round *r)
{
    int err = 0;
    while (r->items_len > 0) {
        int64_t commit_started = wx_monotonic_us();
        err = es_store_commit(w->store, r->items, r->items_len);
        wx_hist_observe(&w->stats.commit_us, wx_monotonic_us() - commit_started);
        if (err != WX_ERR_CONFLICT)
            break;
        atomic_fetch_add(&w->stats.conflicts, 1);
        w->follow_until_ms = wx_monotonic_ms() + WX_WRITER_FOLLOW_MS;
        err = take_out_conflicts(w, r);
        if (err)
            break;
    }
    return err;
}

/* After a round: the committed overlay becomes the cache, tainted streams
 * leave it, and the committed commands learn their positions; after a
 * failed commit their answers become 503. */
static void settle_round(struct es_writer *w, struct round *r, int err)
{
    for (size_t i = 0; i < w->overlay.cap && !err; i++) {
        struct wx_map_slot *sl = &w->overlay.slots[i];
        struct staged_stream *st = sl->value;
        if (st != NULL && !st->type->uncached && wx_map_get(&w->tainted, sl->key) == NULL)
            cache_put(w, sl->key, st->type, st->version, st->state);
    }
    cache_catch_up(w);
    for (size_t k = 0; k < r->items_len; k++) {
        struct es_command *cmd = r->cmds[r->item_cmd[k]];
        struct es_batch_item *item = &r->items[k];
        if (err) {
            cmd->may_be_in_log = true;
            answer_problem(cmd, ES_store_unavailable,
                           "The event store could not commit; nothing was applied");
        } else {
            for (size_t a = 0; a < item->appends_len; a++) {
                const struct es_stream_append *ap = &item->appends[a];
                if (ap->events_len == 0)
                    continue; /* a check */
                cmd->has_position = true;
                cmd->position = ap->events[ap->events_len - 1].position;
                atomic_fetch_add(&w->stats.events, ap->events_len);
            }
            if (item->appends_len > 0) {
                r->ran[r->item_cmd[k]] = false; /* settled */
                if (cmd->committed != NULL)
                    cmd->committed(cmd);
            }
        }
    }
    /* Every other run of a handler this round wrote nothing to the log: it
     * rejected or failed, its commit failed, or it lost a race and is
     * decided again next round (on what the log holds, so what it staged
     * must be forgotten first). */
    for (size_t i = 0; i < r->len; i++)
        if (r->ran[i] && r->cmds[i]->discarded != NULL)
            r->cmds[i]->discarded(r->cmds[i]);
    if (err) {
        atomic_fetch_add(&w->stats.commit_failures, 1);
        wx_logf(WX_LOG_ERROR, "writer: batch of %zu commands failed: %s", r->len,
                wx_strerror(err));
        /* A shared store that failed a commit may have lost the connection
         * to a server that then failed over to a standby without our last
         * commits: the cache could then be ahead of the log, and nothing
         * moves a state back (a catch-up only reads forward). Start
         * again from the log. */
        if (es_store_shared(w->store))
            cache_clear(w);
    } else if (r->items_len > 0) {
        atomic_fetch_add(&w->stats.batches, 1);
        if (w->on_commit != NULL)
            w->on_commit(w->on_commit_ctx);
    }
    wx_map_clear(&w->overlay);
}

/* The commands that lost a race become the next round, in submission
 * order, their idempotency keys free again. Returns how many. */
static size_t next_round(struct es_writer *w, struct round *r, struct es_command **next)
{
    size_t len = 0;
    for (size_t i = 0; i < r->len; i++) {
        if (!r->again[i])
            continue;
        if (r->cmds[i]->idem_key != NULL)
            wx_map_remove(&w->batch_keys, r->cmds[i]->idem_key);
        next[len++] = r->cmds[i];
    }
    wx_map_clear(&w->tainted);
    return len;
}

/* Decides and commits the batch; commands that lost a version race to
 * another node are decided again on fresh state (DESIGN.md §3), at most
 * WX_WRITER_CONFLICT_RETRIES_MAX times, while the others commit. */
static void run_rounds(struct es_writer *w, struct es_command **cmds, size_t n,
                       struct es_command **spare)
{
    struct round r = {
        .cmds = cmds,
        .len = n,
        .items = wx_arena_alloc(&w->batch_arena, n * sizeof(*r.items)),
        .item_cmd = wx_arena_alloc(&w->batch_arena, n * sizeof(*r.item_cmd)),
        .again = wx_arena_alloc(&w->batch_arena, n * sizeof(*r.again)),
        .ran = wx_arena_alloc(&w->batch_arena, n * sizeof(*r.ran)),
    };
    if (r.items == NULL || r.item_cmd == NULL || r.again == NULL || r.ran == NULL) {
        for (size_t i = 0; i < n; i++)
            answer_problem(cmds[i], ES_internal_error, "Out of memory");
        return;
    }
    for (int round = 0; r.len > 0; round++) {
        if (round > WX_WRITER_CONFLICT_RETRIES_MAX) {
            for (size_t i = 0; i < r.len; i++)
                answer_problem(r.cmds[i], ES_version_conflict,
                               "Other writers kept changing this resource; try again");
            break;
        }
        int err = WX_ERR_NOMEM;
        if (decide_round(w, &r, wx_clock_now_ms(w->clock)))
            err = commit_round(w, &r);
        else
            r.items_len = 0; /* answered 500 already; nothing was sent */
        settle_round(w, &r, err);
        struct es_command **next = spare;
        spare = r.cmds;
        r.len = next_round(w, &r, next);
        r.cmds = next;
        if (r.len > 0)
            atomic_fetch_add(&w->stats.conflict_retries, r.len);
    }
}

static void run_batch(struct es_writer *w, struct es_command *first, size_t n)
{
    struct es_command **cmds = wx_arena_alloc(&w->batch_arena, n * sizeof(*cmds));
    struct es_command **spare = wx_arena_alloc(&w->batch_arena, n * sizeof(*spare));
    struct es_command *cmd = first;
    for (size_t i = 0; i < n; i++, cmd = cmd->next) {
        if (cmds == NULL || spare == NULL)
            answer_problem(cmd, ES_internal_error, "Out of memory");
        else
            cmds[i] = cmd;
    }
    if (cmds != NULL && spare != NULL) {
        cache_follow_log(w);
        run_rounds(w, cmds, n, spare);
    }
    wx_hist_observe(&w->stats.batch_commands, (int64_t)n);

    /* Complete in submission order. The `next` link is read before
     * `complete`, after which the command belongs to its submitter again. */
    cmd = first;
    for (size_t i = 0; i < n; i++) {
        struct es_command *next = cmd->next;
        if (!cmd->replayed) { /* replays are counted as idempotency hits */
            size_t slot = es_outcome_slot(cmd->outcome);
            assert(slot < w->stats.outcomes_len);
            atomic_fetch_add_explicit(&w->stats.outcomes[slot], 1, memory_order_relaxed);
        }
        cmd->complete(cmd);
        cmd = next;
    }
    atomic_fetch_add(&w->stats.commands, n);
    wx_map_clear(&w->overlay);
    wx_map_clear(&w->batch_keys);
    wx_map_clear(&w->tainted);
    wx_arena_release(&w->batch_arena);
}

static void expire_idempotency(struct es_writer *w)
{
    int64_t mono = wx_monotonic_ms();
    if (mono - w->idem_expired_at_ms < WX_IDEM_EXPIRE_INTERVAL_MS)
        return;
    w->idem_expired_at_ms = mono;
    size_t deleted = 0;
    int64_t before = wx_clock_now_ms(w->clock) - w->idem_ttl_ms;
    int err = es_store_idem_expire(w->store, before, WX_IDEM_EXPIRE_BATCH_MAX, &deleted);
    if (err)
        wx_logf(WX_LOG_ERROR, "writer: expiring idempotency records: %s", wx_strerror(err));
}

static void *writer_main(void *arg)
{
    struct es_writer *w = arg;
    pthread_setname_np(pthread_self(), "wx-writer"); /* for top -H and perf */
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (w->queue_head == NULL && !w->stopping) {
            struct timespec until;
            wx_deadline_after_ms(WX_IDEM_EXPIRE_INTERVAL_MS, &until);
            pthread_cond_timedwait(&w->cond, &w->lock, &until);
            if (w->queue_head == NULL && !w->stopping) {
                pthread_mutex_unlock(&w->lock);
                expire_idempotency(w);
                pthread_mutex_lock(&w->lock);
            }
        }
        if (w->queue_head == NULL && w->stopping) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        struct es_command *first = w->queue_head;
        struct es_command *last = first;
        size_t n = 1;
        while (n < WX_WRITER_BATCH_COMMANDS_MAX && last->next != NULL) {
            last = last->next;
            n++;
        }
        w->queue_head = last->next;
        if (w->queue_head == NULL)
            w->queue_tail = NULL;
        last->next = NULL;
        w->queue_len -= n;
        atomic_store(&w->stats.queue_depth, w->queue_len);
        pthread_mutex_unlock(&w->lock);

        run_batch(w, first, n);
        expire_idempotency(w);
    }
    return NULL;
}

int es_writer_start(const struct es_writer_config *config, struct es_writer **writer_out)
{
    assert(config->store != NULL && config->clock != NULL);
    struct es_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return WX_ERR_NOMEM;
    w->store = config->store;
    w->clock = config->clock;
    w->idem_ttl_ms = config->idem_ttl_ms > 0 ? config->idem_ttl_ms : WX_IDEM_TTL_MS_DEFAULT;
    w->cache_streams_max =
        config->cache_streams_max > 0 ? config->cache_streams_max : WX_CACHE_STREAMS_MAX;
    w->snapshot_every =
        config->snapshot_every > 0 ? config->snapshot_every : WX_SNAPSHOT_EVERY_DEFAULT;
    w->check_reads = config->check_reads || es_store_shared(config->store);
    w->on_commit = config->on_commit;
    w->on_commit_ctx = config->on_commit_ctx;
    w->idem_expired_at_ms = wx_monotonic_ms() - WX_IDEM_EXPIRE_INTERVAL_MS;
    w->stats.outcomes_len = es_outcome_slots();
    w->stats.outcomes = calloc(w->stats.outcomes_len, sizeof(*w->stats.outcomes));
    if (w->stats.outcomes == NULL) {
        free(w);
        return WX_ERR_NOMEM;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    wx_hist_init(&w->stats.batch_commands, &wx_hist_size);
    wx_hist_init(&w->stats.commit_us, &wx_hist_latency_us);
    wx_map_init(&w->cache);
    wx_map_init(&w->overlay);
    wx_map_init(&w->batch_keys);
    wx_map_init(&w->tainted);
    wx_arena_init(&w->batch_arena);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w->stats.outcomes);
        free(w);
        return WX_ERR_NOMEM;
    }
    *writer_out = w;
    return 0;
}

void es_writer_stop(struct es_writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    assert(w->queue_head == NULL);
    cache_free(w);
    wx_map_free(&w->overlay);
    wx_map_free(&w->batch_keys);
    wx_map_free(&w->tainted);
    wx_arena_release(&w->batch_arena);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w->stats.outcomes);
    free(w);
}

int es_writer_submit(struct es_writer *w, struct es_command *cmd)
{
    assert(cmd->handle != NULL && cmd->complete != NULL && cmd->arena != NULL);
    assert(cmd->idem_key == NULL || cmd->request != NULL);
    int err = 0;
    cmd->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        err = WX_ERR_CLOSED;
    } else if (w->queue_len >= WX_WRITER_QUEUE_MAX) {
        err = WX_ERR_FULL;
    } else {
        if (w->queue_tail)
            w->queue_tail->next = cmd;
        else
            w->queue_head = cmd;
        w->queue_tail = cmd;
        w->queue_len++;
        atomic_store(&w->stats.queue_depth, w->queue_len);
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return err;
}

const struct es_writer_stats *es_writer_stats(const struct es_writer *w)
{
    return &w->stats;
}

static void counter(struct wx_buf *b, const char *name, const char *help, uint64_t v)
{
    wx_metric_header(b, name, "counter", help);
    wx_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

void es_writer_metrics(const struct es_writer *w, struct wx_buf *b)
{
    const struct es_writer_stats *st = &w->stats;
    counter(b, "wallex_writer_batches_total", "Store transactions committed by the writer.",
            atomic_load(&st->batches));
    counter(b, "wallex_writer_commit_failures_total", "Batches whose commit failed (503).",
            atomic_load(&st->commit_failures));
    counter(b, "wallex_writer_conflicts_total",
            "Commits that lost a version race to another writer (some commands decided again).",
            atomic_load(&st->conflicts));
    counter(b, "wallex_writer_conflict_retries_total",
            "Commands decided again on fresh state after losing a version race.",
            atomic_load(&st->conflict_retries));
    counter(b, "wallex_writer_catch_up_events_total",
            "Events read to bring cached states that lost a version race up to the log.",
            atomic_load(&st->catch_up_events));
    counter(b, "wallex_events_appended_total", "Events appended to the log.",
            atomic_load(&st->events));
    counter(b, "wallex_idempotency_hits_total",
            "Commands answered from an Idempotency-Key record.", atomic_load(&st->idem_replays));
    counter(b, "wallex_idempotency_misses_total",
            "Commands with an Idempotency-Key that were decided afresh.",
            atomic_load(&st->idem_misses));
    counter(b, "wallex_aggregate_cache_hits_total", "Aggregate loads served from memory.",
            atomic_load(&st->cache_hits));
    counter(b, "wallex_aggregate_cache_misses_total", "Aggregate loads folded from the store.",
            atomic_load(&st->cache_misses));
    wx_metric_header(b, "wallex_writer_queue_depth", "gauge", "Commands waiting for the writer.");
    wx_buf_printf(b, "wallex_writer_queue_depth %llu\n",
                  (unsigned long long)atomic_load(&st->queue_depth));
    wx_metric_header(b, "wallex_commands_total", "counter", "Commands completed, by outcome code.");
    for (size_t o = 0; o < st->outcomes_len; o++) {
        uint64_t v = atomic_load(&st->outcomes[o]);
        if (v > 0)
            wx_buf_printf(b, "wallex_commands_total{code=\"%s\"} %llu\n", es_outcome_at(o)->code,
                          (unsigned long long)v);
    }
    wx_metric_header(b, "wallex_writer_batch_commands", "histogram",
                     "Commands decided and committed per writer batch.");
    wx_hist_render(b, "wallex_writer_batch_commands", "", &st->batch_commands);
    wx_metric_header(b, "wallex_store_commit_seconds", "histogram",
                     "Store commit latency (one transaction with its fsync).");
    wx_hist_render(b, "wallex_store_commit_seconds", "", &st->commit_us);
}
