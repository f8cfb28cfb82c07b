/* Folding a stream into an aggregate state; see aggregate.h. */
#include "es/aggregate.h"

#include <assert.h>

#include "base/arena.h"
#include "base/err.h"
#include "es/domain.h"
#include "limits.h"
#include "store/store.h"

struct fold_ctx {
    const struct es_aggregate_type *type;
    const struct es_fold_until *until;
    void *state;
    int64_t version;
    struct wx_buf scratch; /* upcast data */
};

/* Returned by the callback to stop early; never escapes es_fold. */
#define FOLD_STOP (-1)

static int fold_one(void *arg, const struct es_event *ev)
{
    struct fold_ctx *f = arg;
    if (f->until != NULL) {
        if (f->until->version_max > 0 && ev->version > f->until->version_max)
            return FOLD_STOP;
        if (f->until->by_time && ev->occurred_at_ms > f->until->occurred_max_ms)
            return FOLD_STOP;
    }
    return es_evolve_next(f->type, f->state, &f->version, ev, &f->scratch);
}

int es_evolve_next(const struct es_aggregate_type *type, void *state, int64_t *version,
                   const struct es_event *ev, struct wx_buf *scratch)
{
    /* Versions are dense from 1: a gap means the log is damaged. */
    if (ev->version != *version + 1)
        return WX_ERR_CORRUPT;
    struct es_event current;
    int err = es_upcast(ev, &current, scratch);
    if (!err)
        err = type->evolve_stored(state, &current);
    if (err)
        return err;
    *version = ev->version;
    return 0;
}

/* Loads the latest usable snapshot into state; the version it is at, or 0. */
static int from_snapshot(struct es_store *store, const struct es_aggregate_type *type,
                         const char *stream_id, const struct es_fold_until *until, void *state,
                         int64_t *version_out)
{
    *version_out = 0;
    if (type->decode == NULL)
        return 0;
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct es_snapshot snap;
    int err = es_store_snapshot_get(store, stream_id, until ? until->version_max : 0, &arena,
                                    &snap);
    if (err == WX_ERR_NOT_FOUND) {
        err = 0;
    } else if (!err && (until == NULL || !until->by_time ||
                        snap.occurred_at_ms <= until->occurred_max_ms)) {
        err = type->decode(snap.data, snap.data_len, state);
        if (!err)
            *version_out = snap.version;
    }
    wx_arena_release(&arena);
    return err;
}

int es_fold(struct es_store *store, const struct es_aggregate_type *type, const char *stream_id,
            const struct es_fold_until *until, void *state, int64_t *version_out)
{
    struct fold_ctx f = {.type = type, .until = until, .state = state, .version = 0};
    type->init(state);
    int err = from_snapshot(store, type, stream_id, until, state, &f.version);
    if (err)
        return err;
    wx_buf_init(&f.scratch);
    err = es_store_read_stream(store, stream_id, f.version + 1, WX_STREAM_EVENTS_FOLD_MAX,
                               fold_one, &f);
    wx_buf_free(&f.scratch);
    if (err == FOLD_STOP)
        err = 0;
    if (err)
        return err;
    *version_out = f.version;
    return 0;
}
