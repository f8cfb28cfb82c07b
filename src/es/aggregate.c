/* Folding a stream into an aggregate state; see aggregate.h. */
#include "es/aggregate.h"

#include <assert.h>

#include "base/err.h"
#include "limits.h"
#include "store/store.h"

struct fold_ctx {
    const struct es_aggregate_type *type;
    const struct es_fold_until *until;
    void *state;
    int64_t version;
    bool stopped;
};

/* Returned by the callback to stop early; never escapes es_fold. */
#define FOLD_STOP (-1)

static int fold_one(void *arg, const struct es_event *ev)
{
    struct fold_ctx *f = arg;
    if (f->until != NULL) {
        if (f->until->version_max > 0 && ev->version > f->until->version_max)
            return FOLD_STOP;
        if (f->until->occurred_max_ms > 0 && ev->occurred_at_ms > f->until->occurred_max_ms)
            return FOLD_STOP;
    }
    /* Versions are dense from 1: a gap means the log is damaged. */
    if (ev->version != f->version + 1)
        return WX_ERR_CORRUPT;
    int err = f->type->evolve_stored(f->state, ev);
    if (err)
        return err;
    f->version = ev->version;
    return 0;
}

int es_fold(struct es_store *store, const struct es_aggregate_type *type, const char *stream_id,
            const struct es_fold_until *until, void *state, int64_t *version_out)
{
    struct fold_ctx f = {.type = type, .until = until, .state = state, .version = 0};
    type->init(state);
    int err = es_store_read_stream(store, stream_id, 1, WX_STREAM_EVENTS_FOLD_MAX, fold_one, &f);
    if (err == FOLD_STOP)
        err = 0;
    if (err)
        return err;
    *version_out = f.version;
    return 0;
}
