/*
 * Aggregate types and folding. A domain describes each aggregate type with
 * its state size, an initial state and `evolve_stored`, which folds one
 * stored event into the state (DESIGN.md §1: evolve is pure, no I/O).
 * es_fold reads a stream and folds it; the writer uses it for cold loads,
 * queries use it for "the wallet as it was at version N".
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
    size_t state_bytes;
    void (*init)(void *state);
    /* WX_ERR_CORRUPT when the event cannot be read or breaks an invariant. */
    int (*evolve_stored)(void *state, const struct es_event *event);
    /* Snapshots; NULL when the type is never snapshotted. decode returns
     * WX_ERR_CORRUPT for data it cannot read. */
    void (*encode)(const void *state, struct wx_buf *out);
    int (*decode)(const char *data, size_t len, void *state);
    /* Write-once streams (a transfer) stay out of the writer's cache: they
     * are not loaded again in the usual course, and caching one per
     * command filled the cache and made every lookup in it slower. */
    bool uncached;
};

/* Stop conditions for a fold; zero values mean "no limit". */
struct es_fold_until {
    int64_t version_max;     /* fold events with version <= this */
    int64_t occurred_max_ms; /* fold events that occurred at or before this */
};

/* Folds the stream into *state (which the caller sized by type->state_bytes)
 * and returns the version reached; 0 when the stream is empty. Starts from
 * the latest snapshot within the bounds, when the type has snapshots. */
int es_fold(struct es_store *store, const struct es_aggregate_type *type, const char *stream_id,
            const struct es_fold_until *until, void *state, int64_t *version_out);

#endif
