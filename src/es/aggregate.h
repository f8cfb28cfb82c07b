/*
 * Aggregate types and folding. A domain describes each aggregate type with
 * the bound of its state, an initial state and `evolve_stored`, which folds
 * one stored event into the state (DESIGN.md §1: evolve is pure, no I/O).
 * es_fold reads a stream and folds it; the writer uses it for cold loads,
 * queries use it for "the aggregate as it was at version N".
 *
 * State is one flat block of at most state_bytes_max bytes, of which
 * state_bytes(state) are in use: a domain with a variable part (a list of
 * lines) puts it last, so copying the bytes in use copies the state. The
 * writer's cache keeps only those bytes.
 */
#ifndef WALLEX_ES_AGGREGATE_H
#define WALLEX_ES_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "es/event.h"

struct es_store;

struct es_aggregate_type {
    const char *name;
    /* Stream ids of this type are "<category>:<id>". */
    const char *category;
    /* The largest state; every state buffer handed to init, evolve and
     * decode is this big and aligned for any type. */
    size_t state_bytes_max;
    /* Bytes of the state in use, at most state_bytes_max; NULL when every
     * state uses them all. */
    size_t (*state_bytes)(const void *state);
    void (*init)(void *state);
    /* WX_ERR_CORRUPT when the event cannot be read or breaks an invariant.
     * The event is in its type's current schema (es_upcast ran first). */
    int (*evolve_stored)(void *state, const struct es_event *event);
    /* Snapshots; NULL when the type is never snapshotted. encode writes at
     * most snapshot_bytes_max bytes; decode returns WX_ERR_CORRUPT for data
     * it cannot read. */
    void (*encode)(const void *state, struct wx_buf *out);
    int (*decode)(const char *data, size_t len, void *state);
    size_t snapshot_bytes_max;
    /* Write-once streams (a record one command writes) stay out of the writer's cache: they
     * are not loaded again in the usual course, and caching one per
     * command filled the cache and made every lookup in it slower. */
    bool uncached;
};

/* Bytes of this state in use. */
static inline size_t es_state_bytes(const struct es_aggregate_type *type, const void *state)
{
    return type->state_bytes != NULL ? type->state_bytes(state) : type->state_bytes_max;
}

/* Stop conditions for a fold. */
struct es_fold_until {
    int64_t version_max;     /* fold events with version <= this; 0: no limit */
    bool by_time;            /* fold only events that occurred at or before: */
    int64_t occurred_max_ms; /* any instant, 1970 and before included */
};

/* Folds the stream into *state (type->state_bytes_max bytes, max_align_t
 * aligned) and returns the version reached; 0 when the stream is empty.
 * Starts from the latest snapshot within the bounds, when the type has
 * snapshots. Events are upcast to their current schema first. */
int es_fold(struct es_store *store, const struct es_aggregate_type *type, const char *stream_id,
            const struct es_fold_until *until, void *state, int64_t *version_out);

/* Folds one stored event, the stream's next, into *state at *version
 * (upcast first, into scratch) and moves *version on; WX_ERR_CORRUPT when
 * it is not the next version or does not fit the state. */
int es_evolve_next(const struct es_aggregate_type *type, void *state, int64_t *version,
                   const struct es_event *ev, struct wx_buf *scratch);

#endif
