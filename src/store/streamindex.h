/*
 * The SQLite store's stream index: for each (stream, version), the position
 * of its event. It lives in index.db beside events.db and is kept by its
 * own thread a few thousand events at a time, not inside every commit.
 *
 * Why: a B-tree keyed by stream puts each stream's next entry on that
 * stream's own page, so a commit touching 100 streams rewrote about 100
 * index pages into the WAL, and again at checkpoint. Flushed in batches
 * here, a hot stream's page is written once per flush instead of once per
 * commit: mixed ops at 64 connections went from 13.6-13.9k to 18.5-19.9k/s
 * (bench/ab, docs/architecture.md).
 *
 * Events after `indexed` are "the tail". The writing process keeps each
 * stream's tail positions in memory (sqlite.c) and reads the index below
 * them; another process on the same files scans the tail. index.db is
 * derived data (synchronous=NORMAL): when it is missing, behind, or was
 * built from another log, opening it catches up or rebuilds it from
 * events.db.
 */
#ifndef WALLEX_STORE_STREAMINDEX_H
#define WALLEX_STORE_STREAMINDEX_H

#include <stdint.h>

struct stream_index;

/* Opens or creates index.db, brings it up to events.db's head (this may
 * take a while on a large log without an index: it logs progress), then
 * starts the flushing thread. */
int stream_index_open(const char *events_path, const char *index_path,
                      struct stream_index **out);
/* Accepts NULL. */
void stream_index_close(struct stream_index *ix);
/* Every event at or below this position is in index.db, committed. */
int64_t stream_index_indexed(struct stream_index *ix);
/* The writer committed up to `head`: flushes early when the tail is long. */
void stream_index_committed(struct stream_index *ix, int64_t head);

/* SQL a connection with index.db attached as "idx" uses to find the
 * indexed position, for unions of index and tail. */
#define STREAM_INDEX_INDEXED_SQL "(SELECT indexed FROM idx.stream_index_meta)"

#endif
