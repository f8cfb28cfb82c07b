/*
 * In-memory event store: the reference backend for the conformance suite and
 * fast unit tests. It keeps the same contract as SQLite (expected versions,
 * atomic batches, log order) without durability. One lock guards all.
 */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/grow.h"
#include "base/map.h"
#include "store/store.h"

struct mem_event {
    struct es_event ev; /* strings point into the allocations below */
    char *stream_id;
    char *type;
    char *data;
    char *metadata;
};

struct mem_snapshot {
    int64_t version;
    int64_t occurred_at_ms;
    char *data;
    size_t data_len;
};

struct mem_stream {
    size_t *indexes; /* into the log, oldest first */
    size_t len;
    size_t cap;
    struct mem_snapshot snaps[2]; /* the two latest, newest first (as SQLite keeps) */
    size_t snaps_len;
};

struct mem_idem {
    struct es_idem_record rec; /* strings are owned copies */
};

struct mem_store {
    struct es_store base; /* must be first */
    pthread_mutex_t lock;
    struct mem_event *log;
    size_t log_len;
    size_t log_cap;
    struct wx_map streams; /* stream id -> struct mem_stream */
    struct wx_map idem;    /* key -> struct mem_idem */
};

static char *dup_n(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

static void idem_free(struct mem_idem *r)
{
    if (r == NULL)
        return;
    free((char *)r->rec.key);
    free((char *)r->rec.request);
    free((char *)r->rec.body);
    free((char *)r->rec.location);
    free(r);
}

static void mem_close(struct es_store *store)
{
    struct mem_store *s = (struct mem_store *)store;
    for (size_t i = 0; i < s->log_len; i++) {
        free(s->log[i].stream_id);
        free(s->log[i].type);
        free(s->log[i].data);
        free(s->log[i].metadata);
    }
    free(s->log);
    for (size_t i = 0; i < s->streams.cap; i++) {
        struct wx_map_slot *sl = &s->streams.slots[i];
        if (sl->value != NULL) {
            struct mem_stream *st = sl->value;
            for (size_t k = 0; k < st->snaps_len; k++)
                free(st->snaps[k].data);
            free(st->indexes);
            free(st);
        }
    }
    wx_map_free(&s->streams);
    for (size_t i = 0; i < s->idem.cap; i++)
        if (s->idem.slots[i].value != NULL)
            idem_free(s->idem.slots[i].value);
    wx_map_free(&s->idem);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static int mem_open(const struct es_store_config *config, struct es_store **store_out)
{
    (void)config;
    struct mem_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WX_ERR_NOMEM;
    s->base.ops = &es_store_memory_ops;
    pthread_mutex_init(&s->lock, NULL);
    wx_map_init(&s->streams);
    wx_map_init(&s->idem);
    *store_out = &s->base;
    return 0;
}

static int64_t stream_len(struct mem_store *s, const char *stream_id)
{
    struct mem_stream *st = wx_map_get(&s->streams, stream_id);
    return st ? (int64_t)st->len : 0;
}

/* An idempotency record a new one may not replace: not expired yet. */
static bool idem_held(struct mem_store *s, const struct es_idem_record *r)
{
    const struct mem_idem *m = wx_map_get(&s->idem, r->key);
    return m != NULL && m->rec.created_at_ms >= r->expired_before_ms;
}

/* Phase one: check every expected version as if the batch applied in order,
 * before anything changes, so a conflict leaves the store untouched. Every
 * item that conflicts is marked; a marked item's appends count as not
 * made, so the items after it are checked as the store would see them. */
static int check_batch(struct mem_store *s, struct es_batch_item *items, size_t items_len)
{
    struct wx_map staged;
    wx_map_init(&staged);
    int err = 0;
    bool conflict = false;
    /* Staged lengths are stored in the map as (version + 1) cast to a pointer
     * so 0 (NULL) still means "not staged". */
    for (size_t i = 0; i < items_len && !err; i++) {
        bool ok = items[i].idem == NULL || !idem_held(s, items[i].idem);
        for (size_t a = 0; a < items[i].appends_len && ok; a++) {
            const struct es_stream_append *ap = &items[i].appends[a];
            uintptr_t v = (uintptr_t)wx_map_get(&staged, ap->stream_id);
            ok = es_expect_ok(&ap->expect, v ? (int64_t)(v - 1) : stream_len(s, ap->stream_id));
        }
        for (size_t a = 0; a < items[i].appends_len && ok && !err; a++) {
            const struct es_stream_append *ap = &items[i].appends[a];
            uintptr_t v = (uintptr_t)wx_map_get(&staged, ap->stream_id);
            int64_t current = v ? (int64_t)(v - 1) : stream_len(s, ap->stream_id);
            err = wx_map_put(&staged, ap->stream_id,
                             (void *)(uintptr_t)(current + (int64_t)ap->events_len + 1));
        }
        items[i].conflict = !ok;
        conflict = conflict || !ok;
    }
    wx_map_free(&staged);
    return err ? err : conflict ? WX_ERR_CONFLICT : 0;
}

static int append_event(struct mem_store *s, const char *stream_id, struct es_event *ev)
{
    struct mem_stream *st = wx_map_get(&s->streams, stream_id);
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL || wx_map_put(&s->streams, stream_id, st) != 0) {
            free(st);
            return WX_ERR_NOMEM;
        }
    }
    struct mem_event *log = wx_grow(s->log, &s->log_cap, s->log_len, sizeof(*log), 1024);
    if (log == NULL)
        return WX_ERR_NOMEM;
    s->log = log;
    size_t *ix = wx_grow(st->indexes, &st->cap, st->len, sizeof(*ix), 8);
    if (ix == NULL)
        return WX_ERR_NOMEM;
    st->indexes = ix;
    struct mem_event *me = &s->log[s->log_len];
    memset(me, 0, sizeof(*me));
    me->stream_id = dup_n(stream_id, strlen(stream_id));
    me->type = dup_n(ev->type, strlen(ev->type));
    me->data = dup_n(ev->data, ev->data_len);
    me->metadata = dup_n(ev->metadata, ev->metadata_len);
    if (!me->stream_id || !me->type || !me->data || !me->metadata) {
        free(me->stream_id);
        free(me->type);
        free(me->data);
        free(me->metadata);
        return WX_ERR_NOMEM;
    }
    ev->stream_id = stream_id;
    ev->version = (int64_t)st->len + 1;
    ev->position = (struct es_position){0, (uint64_t)s->log_len + 1};
    me->ev = *ev;
    me->ev.stream_id = me->stream_id;
    me->ev.type = me->type;
    me->ev.data = me->data;
    me->ev.metadata = me->metadata;
    st->indexes[st->len++] = s->log_len++;
    return 0;
}

static int put_idem(struct mem_store *s, const struct es_idem_record *r)
{
    struct mem_idem *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return WX_ERR_NOMEM;
    m->rec = *r;
    m->rec.key = dup_n(r->key, strlen(r->key));
    m->rec.request = dup_n(r->request, r->request_len);
    m->rec.body = dup_n(r->body ? r->body : "", r->body_len);
    m->rec.location = r->location ? dup_n(r->location, strlen(r->location)) : NULL;
    if (!m->rec.key || !m->rec.request || !m->rec.body || (r->location && !m->rec.location)) {
        idem_free(m);
        return WX_ERR_NOMEM;
    }
    struct mem_idem *old = wx_map_get(&s->idem, r->key);
    if (wx_map_put(&s->idem, r->key, m) != 0) {
        idem_free(m);
        return WX_ERR_NOMEM;
    }
    idem_free(old);
    return 0;
}

static int put_snapshot(struct mem_store *s, const struct es_snapshot *snap)
{
    struct mem_stream *st = wx_map_get(&s->streams, snap->stream_id);
    if (st == NULL)
        return WX_ERR_INVALID; /* snapshots follow their stream's events */
    char *data = dup_n(snap->data, snap->data_len);
    if (data == NULL)
        return WX_ERR_NOMEM;
    if (st->snaps_len > 0 && st->snaps[0].version == snap->version) {
        free(st->snaps[0].data);
    } else {
        if (st->snaps_len == 2)
            free(st->snaps[1].data);
        st->snaps[1] = st->snaps[0];
        st->snaps_len = st->snaps_len < 2 ? st->snaps_len + 1 : 2;
    }
    st->snaps[0] = (struct mem_snapshot){snap->version, snap->occurred_at_ms, data,
                                         snap->data_len};
    return 0;
}

static int mem_commit(struct es_store *store, struct es_batch_item *items, size_t items_len)
{
    struct mem_store *s = (struct mem_store *)store;
    pthread_mutex_lock(&s->lock);
    int err = check_batch(s, items, items_len);
    for (size_t i = 0; i < items_len && !err; i++) {
        struct es_position last = {0, 0};
        bool appended = false;
        for (size_t a = 0; a < items[i].appends_len && !err; a++) {
            struct es_stream_append *ap = &items[i].appends[a];
            for (size_t e = 0; e < ap->events_len && !err; e++) {
                err = append_event(s, ap->stream_id, &ap->events[e]);
                last = ap->events[e].position;
                appended = true;
            }
        }
        for (size_t k = 0; k < items[i].snapshots_len && !err; k++)
            err = put_snapshot(s, &items[i].snapshots[k]);
        if (!err && items[i].idem != NULL) {
            items[i].idem->has_position = appended;
            items[i].idem->position = last;
            err = put_idem(s, items[i].idem);
        }
    }
    /* Only allocation can fail past check_batch; a memory store that ran
     * out of memory is not worth undoing half a batch for. */
    assert(err == 0 || err == WX_ERR_CONFLICT || err == WX_ERR_NOMEM || err == WX_ERR_INVALID);
    pthread_mutex_unlock(&s->lock);
    return err;
}

static int mem_read_stream(struct es_store *store, const char *stream_id, int64_t from_version,
                           size_t max_events, es_event_fn fn, void *ctx)
{
    struct mem_store *s = (struct mem_store *)store;
    int err = 0;
    pthread_mutex_lock(&s->lock);
    struct mem_stream *st = wx_map_get(&s->streams, stream_id);
    size_t n = 0;
    for (size_t i = (size_t)(from_version - 1); st && i < st->len && n < max_events && !err; i++) {
        err = fn(ctx, &s->log[st->indexes[i]].ev);
        n++;
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

static int mem_read_log(struct es_store *store, const struct es_position *after,
                        size_t max_events, es_event_fn fn, void *ctx)
{
    struct mem_store *s = (struct mem_store *)store;
    if (after->hi != 0)
        return WX_ERR_INVALID;
    int err = 0;
    pthread_mutex_lock(&s->lock);
    size_t n = 0;
    for (size_t i = after->lo; i < s->log_len && n < max_events && !err; i++, n++)
        err = fn(ctx, &s->log[i].ev);
    pthread_mutex_unlock(&s->lock);
    return err;
}

static int mem_stream_version(struct es_store *store, const char *stream_id, int64_t *version_out)
{
    struct mem_store *s = (struct mem_store *)store;
    pthread_mutex_lock(&s->lock);
    *version_out = stream_len(s, stream_id);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int mem_head(struct es_store *store, struct es_position *head_out)
{
    struct mem_store *s = (struct mem_store *)store;
    pthread_mutex_lock(&s->lock);
    *head_out = (struct es_position){0, s->log_len};
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int mem_idem_get(struct es_store *store, const char *key, struct wx_arena *arena,
                        struct es_idem_record *record_out)
{
    struct mem_store *s = (struct mem_store *)store;
    int err = 0;
    pthread_mutex_lock(&s->lock);
    struct mem_idem *m = wx_map_get(&s->idem, key);
    if (m == NULL) {
        err = WX_ERR_NOT_FOUND;
        goto out_unlock;
    }
    struct es_idem_record r = m->rec;
    r.key = wx_arena_strdup(arena, m->rec.key);
    r.request = wx_arena_strndup(arena, m->rec.request, m->rec.request_len);
    r.body = wx_arena_strndup(arena, m->rec.body, m->rec.body_len);
    r.location = m->rec.location ? wx_arena_strdup(arena, m->rec.location) : NULL;
    if (!r.key || !r.request || !r.body || (m->rec.location && !r.location))
        err = WX_ERR_NOMEM;
    else
        *record_out = r;
out_unlock:
    pthread_mutex_unlock(&s->lock);
    return err;
}

static int mem_idem_expire(struct es_store *store, int64_t before_ms, size_t max_records,
                           size_t *deleted_out)
{
    struct mem_store *s = (struct mem_store *)store;
    size_t deleted = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->idem.cap && deleted < max_records; i++) {
        struct wx_map_slot *sl = &s->idem.slots[i];
        struct mem_idem *m = sl->value;
        if (m == NULL || m->rec.created_at_ms >= before_ms)
            continue;
        wx_map_remove(&s->idem, m->rec.key);
        idem_free(m);
        deleted++;
    }
    pthread_mutex_unlock(&s->lock);
    *deleted_out = deleted;
    return 0;
}

static int mem_snapshot_get(struct es_store *store, const char *stream_id, int64_t version_max,
                            struct wx_arena *arena, struct es_snapshot *snapshot_out)
{
    struct mem_store *s = (struct mem_store *)store;
    int err = WX_ERR_NOT_FOUND;
    pthread_mutex_lock(&s->lock);
    struct mem_stream *st = wx_map_get(&s->streams, stream_id);
    for (size_t k = 0; st != NULL && k < st->snaps_len; k++) {
        const struct mem_snapshot *m = &st->snaps[k];
        if (version_max > 0 && m->version > version_max)
            continue;
        struct es_snapshot snap = {wx_arena_strdup(arena, stream_id), m->version,
                                   m->occurred_at_ms, wx_arena_strndup(arena, m->data, m->data_len),
                                   m->data_len};
        err = snap.stream_id && snap.data ? 0 : WX_ERR_NOMEM;
        if (!err)
            *snapshot_out = snap;
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return err;
}

const struct es_store_ops es_store_memory_ops = {
    .name = "memory",
    .shared = false,
    .open = mem_open,
    .close = mem_close,
    .commit = mem_commit,
    .read_stream = mem_read_stream,
    .read_log = mem_read_log,
    .stream_version = mem_stream_version,
    .head = mem_head,
    .idem_get = mem_idem_get,
    .idem_expire = mem_idem_expire,
    .snapshot_get = mem_snapshot_get,
    .last_error = NULL,
};
