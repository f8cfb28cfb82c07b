/*
 * The files domain's moving parts in a running server: the tree index its
 * commands are decided against (commands.c), and the trash sweeper that
 * purges what has been in the trash longer than the retention
 * (sweeper.c). main starts them once the writer runs and before the HTTP
 * server listens, and stops them once the writer has stopped.
 *
 * Threads: the index belongs to the writer thread from files_start on
 * (built on the caller's thread before any files command can reach the
 * writer); the sweeper has a thread of its own that reads the read model
 * and submits purges like any client.
 */
#ifndef WALLEX_FILES_SERVICE_H
#define WALLEX_FILES_SERVICE_H

#include <stdint.h>

#include "base/clock.h"

struct es_store;
struct es_writer;
struct es_projector;

struct files_config {
    struct es_store *store;
    struct es_writer *writer;
    struct es_projector *projector;
    const struct wx_clock *clock;
    int64_t retention_ms; /* trash retention; 0: items stay in the trash */
};

/* Builds the tree index from the log and starts the sweeper. */
int files_start(const struct files_config *config);
/* Stops the sweeper; before the writer stops (it submits to it). */
void files_quiesce(void);
/* Stops the sweeper if still running and frees the index; after the
 * writer has stopped. Both are safe without a start. */
void files_stop(void);

/* Folds the log's files events into a new tree: every event, or those at
 * or before *until (NULL: all). With `versions`, each item's id maps to
 * its stream's version reached ((void *)(uintptr_t)version); with
 * `tree_version`, the version of the tree stream (treelog.c) the fold
 * reached (0 when the log has none). WX_ERR_CORRUPT when an event does
 * not fit. */
struct es_position;
struct files_tree;
struct wx_map;
int files_tree_fold_log(struct es_store *store, const struct es_position *until,
                        struct wx_map *versions, struct files_tree **out, int64_t *tree_version);

/* Applies one stored files event (upcast and decoded into d, with
 * scratch for the upcast) to t: what a fold and a catch-up do with each. */
struct es_event;
struct files_decoded;
struct wx_buf;
int files_tree_apply_stored(struct files_tree *t, const struct es_event *stored,
                            struct wx_buf *scratch, struct files_decoded *d);

/* Brings the tree index t from tree stream version *version up to
 * to_version (treelog.c): reads the stream's entries and the item events
 * they name, and applies them in the stream's order, moving *version with
 * each. WX_ERR_FULL when that is more than FILES_TREE_CATCH_UP_EVENTS_MAX
 * changes (fold the log again instead), WX_ERR_CORRUPT when a change does
 * not fit. */
int files_tree_log_catch_up(struct es_store *store, struct files_tree *t, int64_t *version,
                            int64_t to_version);

/* In a command's handler on a shared store: the tree stream's version
 * as the writer has it (the batch's own changes included), and one
 * TreeChanged staged for the item event at item_version. */
struct es_decide_ctx;
int files_tree_log_load(struct es_decide_ctx *ctx, int64_t *version);
int files_tree_log_emit(struct es_decide_ctx *ctx, const char *item_id, int64_t item_version);

/* What the index holds: items and bytes (0 before a start). */
size_t files_index_items(void);
size_t files_index_bytes(void);

#endif
