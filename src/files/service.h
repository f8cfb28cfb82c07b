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
 * its stream's version reached ((void *)(uintptr_t)version). WX_ERR_CORRUPT
 * when an event does not fit. */
struct es_position;
struct files_tree;
struct wx_map;
int files_tree_fold_log(struct es_store *store, const struct es_position *until,
                        struct wx_map *versions, struct files_tree **out);

/* What the index holds: items and bytes (0 before a start). */
size_t files_index_items(void);
size_t files_index_bytes(void);

#endif
