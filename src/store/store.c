/*
 * The only way into a store backend: argument checks, backend lookup and
 * fault injection live here so every backend gets them for free.
 */
#include "store/store.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fault.h"

static const struct es_store_ops *const backends[] = {
    &es_store_sqlite_ops,
    &es_store_postgres_ops,
    &es_store_memory_ops,
};

const struct es_store_ops *es_store_backend(const char *name)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

int es_store_open(const char *backend, const struct es_store_config *config,
                  struct es_store **store_out)
{
    const struct es_store_ops *ops = es_store_backend(backend);
    if (ops == NULL)
        return WX_ERR_INVALID;
    struct es_store *store = NULL;
    int err = ops->open(config, &store);
    if (err)
        return err;
    assert(store->ops == ops);
    atomic_init(&store->faults.commit_fail_after, -1);
    atomic_init(&store->faults.commit_fail_count, 0);
    pthread_mutex_init(&store->faults.conflict_lock, NULL);
    store->faults.conflict_count = 0;
    *store_out = store;
    return 0;
}

void es_store_close(struct es_store *store)
{
    if (store == NULL)
        return;
    pthread_mutex_destroy(&store->faults.conflict_lock);
    store->ops->close(store);
}

void es_store_fault_conflict(struct es_store *store, const char *stream_id, int count)
{
    assert(strlen(stream_id) < sizeof(store->faults.conflict_stream));
    pthread_mutex_lock(&store->faults.conflict_lock);
    snprintf(store->faults.conflict_stream, sizeof(store->faults.conflict_stream), "%s",
             stream_id);
    store->faults.conflict_count = count;
    pthread_mutex_unlock(&store->faults.conflict_lock);
}

/* True when this commit must conflict by injection; the items appending to
 * the stream are marked. */
static bool fault_conflict_due(struct es_store *store, struct es_batch_item *items,
                               size_t items_len)
{
    struct es_store_faults *f = &store->faults;
    bool due = false;
    pthread_mutex_lock(&f->conflict_lock);
    for (size_t i = 0; i < items_len && f->conflict_count > 0; i++)
        for (size_t a = 0; a < items[i].appends_len; a++)
            if (strcmp(items[i].appends[a].stream_id, f->conflict_stream) == 0)
                due = items[i].conflict = true;
    if (due)
        f->conflict_count--;
    pthread_mutex_unlock(&f->conflict_lock);
    return due;
}

void es_store_last_error(struct es_store *store, char *out, size_t out_bytes)
{
    assert(out != NULL && out_bytes > 0);
    out[0] = '\0';
    if (store->ops->last_error != NULL)
        store->ops->last_error(store, out, out_bytes);
}

void es_store_fault_commit(struct es_store *store, int after_commits, int count)
{
    atomic_store(&store->faults.commit_fail_count, count);
    atomic_store(&store->faults.commit_fail_after, after_commits);
}

/* True when this commit must fail by injection. */
static bool fault_commit_due(struct es_store *store)
{
    int after = atomic_load(&store->faults.commit_fail_after);
    if (after < 0)
        return false;
    if (after > 0) {
        atomic_fetch_sub(&store->faults.commit_fail_after, 1);
        return false;
    }
    if (atomic_fetch_sub(&store->faults.commit_fail_count, 1) <= 1)
        atomic_store(&store->faults.commit_fail_after, -1);
    return true;
}

int es_store_commit(struct es_store *store, struct es_batch_item *items, size_t items_len)
{
    assert(items_len == 0 || items != NULL);
    for (size_t i = 0; i < items_len; i++) {
        items[i].conflict = false;
        for (size_t a = 0; a < items[i].appends_len; a++) {
            assert(items[i].appends[a].stream_id != NULL);
            assert(items[i].appends[a].events_len == 0 || items[i].appends[a].events != NULL);
            assert(items[i].appends[a].expect.kind != ES_EXPECT_ANY ||
                   items[i].appends[a].events_len > 0); /* a check of nothing */
        }
    }
    if (fault_commit_due(store) || wx_fault_active("store-commit-fail"))
        return WX_ERR_FAULT;
    if (fault_conflict_due(store, items, items_len))
        return WX_ERR_CONFLICT;
    int64_t delay_ms = wx_fault_value("store-commit-delay-ms");
    if (delay_ms > 0)
        usleep((useconds_t)(delay_ms > 10000 ? 10000 : delay_ms) * 1000);
    int err = store->ops->commit(store, items, items_len);
    if (err == 0 && wx_fault_active("store-commit-lost-ack"))
        return WX_ERR_IO; /* committed, but the caller cannot know: as a lost connection */
    if (err == WX_ERR_CONFLICT) {
        bool marked = false;
        for (size_t i = 0; i < items_len; i++)
            marked = marked || items[i].conflict;
        assert(marked); /* the writer needs to know which item lost */
    }
    if (err == 0) {
        /* Postcondition: versions are dense and positions increase. */
        for (size_t i = 0; i < items_len; i++)
            for (size_t a = 0; a < items[i].appends_len; a++) {
                const struct es_stream_append *ap = &items[i].appends[a];
                for (size_t e = 1; e < ap->events_len; e++)
                    assert(ap->events[e].version == ap->events[e - 1].version + 1);
            }
    }
    return err;
}

int es_store_read_stream(struct es_store *store, const char *stream_id, int64_t from_version,
                         size_t max_events, es_event_fn fn, void *ctx)
{
    assert(stream_id != NULL && fn != NULL);
    if (from_version < 1)
        from_version = 1;
    return store->ops->read_stream(store, stream_id, from_version, max_events, fn, ctx);
}

struct counted {
    es_event_fn fn;
    void *ctx;
    size_t events;
};

static int count_event(void *arg, const struct es_event *ev)
{
    struct counted *c = arg;
    c->events++;
    return c->fn(c->ctx, ev);
}

int es_store_read_streams(struct es_store *store, const struct es_stream_from *from, size_t n,
                          size_t max_events, es_event_fn fn, void *ctx)
{
    assert(fn != NULL && (from != NULL || n == 0));
    if (n == 0 || max_events == 0)
        return 0;
    if (store->ops->read_streams != NULL)
        return store->ops->read_streams(store, from, n, max_events, fn, ctx);
    struct counted c = {fn, ctx, 0};
    int err = 0;
    for (size_t i = 0; i < n && !err && c.events < max_events; i++)
        err = es_store_read_stream(store, from[i].stream_id, from[i].after_version + 1,
                                   max_events - c.events, count_event, &c);
    return err;
}

int es_store_read_log(struct es_store *store, const struct es_position *after,
                      size_t max_events, es_event_fn fn, void *ctx)
{
    assert(after != NULL && fn != NULL);
    return store->ops->read_log(store, after, max_events, fn, ctx);
}

int es_store_stream_version(struct es_store *store, const char *stream_id, int64_t *version_out)
{
    assert(stream_id != NULL);
    return store->ops->stream_version(store, stream_id, version_out);
}

int es_store_head(struct es_store *store, struct es_position *head_out)
{
    return store->ops->head(store, head_out);
}

int es_store_tail(struct es_store *store, struct es_position *tail_out)
{
    return store->ops->tail != NULL ? store->ops->tail(store, tail_out)
                                     : store->ops->head(store, tail_out);
}

int es_store_idem_get(struct es_store *store, const char *key, struct wx_arena *arena,
                      struct es_idem_record *record_out)
{
    assert(key != NULL && arena != NULL);
    return store->ops->idem_get(store, key, arena, record_out);
}

int es_store_idem_expire(struct es_store *store, int64_t before_ms, size_t max_records,
                         size_t *deleted_out)
{
    return store->ops->idem_expire(store, before_ms, max_records, deleted_out);
}

int es_store_snapshot_get(struct es_store *store, const char *stream_id, int64_t version_max,
                          struct wx_arena *arena, struct es_snapshot *snapshot_out)
{
    assert(stream_id != NULL && arena != NULL);
    return store->ops->snapshot_get(store, stream_id, version_max, arena, snapshot_out);
}

int es_store_backup(struct es_store *store, const char *dest_dir)
{
    assert(dest_dir != NULL);
    if (store->ops->backup == NULL)
        return WX_ERR_INVALID;
    return store->ops->backup(store, dest_dir);
}

bool es_store_shared(const struct es_store *store)
{
    return store->ops->shared;
}

bool es_expect_ok(const struct es_expect *expect, int64_t current)
{
    switch (expect->kind) {
    case ES_EXPECT_ANY:
        return true;
    case ES_EXPECT_NO_STREAM:
        return current == 0;
    case ES_EXPECT_EXACT:
        return current == expect->version;
    }
    return false;
}
