/*
 * The event store: one abstraction, several backends (sqlite, postgres,
 * memory), reached through `struct es_store_ops` like SQLite's
 * sqlite3_io_methods. A backend puts `struct es_store` first in its own
 * struct. Callers use only the es_store_* wrappers below, which check
 * arguments and inject faults for tests.
 *
 * Thread model: es_store_commit and es_store_idem_expire are called by one
 * writer thread at a time; the read calls may come from any thread at once.
 *
 * Ownership: the store owns everything it returns through callbacks only for
 * the duration of the callback; records copied out go into the caller's
 * arena. es_store_close frees the store.
 */
#ifndef WALLEX_STORE_STORE_H
#define WALLEX_STORE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "es/event.h"
#include "limits.h"

enum es_expect_kind {
    ES_EXPECT_ANY,       /* append whatever the stream's version */
    ES_EXPECT_NO_STREAM, /* the stream must not exist yet */
    ES_EXPECT_EXACT,     /* the stream must be at exactly `version` */
};

struct es_expect {
    enum es_expect_kind kind;
    int64_t version; /* for ES_EXPECT_EXACT; 0 means "no stream" too */
};

/* Events for one stream. The store checks `expect` against the stream as it
 * is inside the transaction (earlier items of the same batch included),
 * assigns versions and positions and writes them into `events`. With no
 * events it is a check only: the item conflicts unless the stream is still
 * at `expect` when the batch commits (a decision that read the stream
 * without changing it, made on a shared store). */
struct es_stream_append {
    const char *stream_id;
    struct es_expect expect;
    struct es_event *events;
    size_t events_len;
};

/* A stream and the version a reader already has of it (es_store_read_streams). */
struct es_stream_from {
    const char *stream_id;
    int64_t after_version;
};

/* The remembered outcome of one Idempotency-Key. */
struct es_idem_record {
    const char *key;
    const char *request; /* method, path and body: the request's identity */
    size_t request_len;
    int status;
    const char *body;
    size_t body_len;
    const char *location; /* NULL when the response had none */
    bool has_position;    /* set by the store when the item appended events */
    struct es_position position;
    int64_t created_at_ms;
    /* A record already stored for the key is replaced only when it was
     * created before this (it has expired); a younger one means another
     * writer (another node) holds the key, and the item conflicts. 0: any
     * stored record conflicts. */
    int64_t expired_before_ms;
};

/* An aggregate's state at a version, written with the events that led to
 * it. Loads start from the latest snapshot instead of the first event. */
struct es_snapshot {
    const char *stream_id;
    int64_t version;
    int64_t occurred_at_ms; /* of the event at `version` */
    const char *data;       /* the aggregate type's encoding */
    size_t data_len;
};

/* Everything one command writes. The idempotency record, if any, is written
 * after the item's events, and its position is that of the item's last
 * event, so a replay can answer X-Position too. */
struct es_batch_item {
    struct es_stream_append *appends;
    size_t appends_len;
    struct es_idem_record *idem; /* NULL when the request had no key */
    struct es_snapshot *snapshots; /* written with the events; may be NULL */
    size_t snapshots_len;
    /* Out: set by a commit that returns WX_ERR_CONFLICT on each item that
     * could not be written as it was decided (a stream not at the expected
     * version, or its idempotency key held by a younger record). At least
     * one item is marked; an unmarked item may still depend on a marked one
     * (the same stream, later in the batch). Cleared by every commit. */
    bool conflict;
};

struct es_store_config {
    const char *data_dir;  /* sqlite: where events.db lives */
    const char *url;       /* postgres: connection string (URL or key=value) */
    const char *pg_schema; /* postgres: the schema holding wallex's tables; NULL: "wallex" */
    /* Open only a store that is there already (tools reading a log, the
     * source of a migration): WX_ERR_NOT_FOUND instead of creating one. */
    bool must_exist;
    /* Only read, beside a server that may be writing (wallex events, drift):
     * no schema, no upgrade, no index upkeep, so nothing waits on the
     * server's write locks. Implies must_exist. commit is not called. */
    bool read_only;
};

struct es_store;

struct es_store_ops {
    const char *name;
    /* Several writers (nodes) may append to the same log, so a writer's
     * cached state can be stale: it checks what it read (see
     * es_stream_append). */
    bool shared;
    int (*open)(const struct es_store_config *config, struct es_store **store_out);
    void (*close)(struct es_store *store);
    /* All items in one transaction, durable (fsync'd) before it returns 0.
     * On any error nothing of the batch is stored; on WX_ERR_CONFLICT the
     * items that conflicted are marked (es_batch_item.conflict). */
    int (*commit)(struct es_store *store, struct es_batch_item *items, size_t items_len);
    /* Events of one stream with version >= from_version, oldest first, at
     * most max_events of them. */
    int (*read_stream)(struct es_store *store, const char *stream_id, int64_t from_version,
                       size_t max_events, es_event_fn fn, void *ctx);
    /* The events of several streams after a version of each, stream by
     * stream (in from's order or any other), each stream's oldest first, at
     * most max_events (<= WX_SCAN_BATCH_EVENTS_MAX) in all; one round trip
     * where the backend has a server. NULL: es_store_read_streams reads
     * the streams one by one. */
    int (*read_streams)(struct es_store *store, const struct es_stream_from *from, size_t n,
                        size_t max_events, es_event_fn fn, void *ctx);
    /* Events after `after` in log order, at most max_events. */
    int (*read_log)(struct es_store *store, const struct es_position *after, size_t max_events,
                    es_event_fn fn, void *ctx);
    /* The stream's current version, 0 when it does not exist. */
    int (*stream_version)(struct es_store *store, const char *stream_id, int64_t *version_out);
    /* The position of the last event in the log (start when empty). */
    int (*head)(struct es_store *store, struct es_position *head_out);
    /* The position of the last committed event, readable or not: a shared
     * store's head stops below the oldest transaction still open anywhere
     * (the gap-free rule), its tail does not. A reader that must see a
     * commit whose position it does not know (its outcome was lost) waits
     * for the head to reach the tail taken after it. NULL: the head. */
    int (*tail)(struct es_store *store, struct es_position *tail_out);
    /* WX_ERR_NOT_FOUND when there is no record for the key. */
    int (*idem_get)(struct es_store *store, const char *key, struct wx_arena *arena,
                    struct es_idem_record *record_out);
    /* Deletes at most max_records records created before before_ms. */
    int (*idem_expire)(struct es_store *store, int64_t before_ms, size_t max_records,
                       size_t *deleted_out);
    /* A consistent copy of the whole store into dest_dir while it keeps
     * serving; NULL when the backend cannot. */
    int (*backup)(struct es_store *store, const char *dest_dir);
    /* The latest snapshot of a stream with version <= version_max (0: no
     * bound); WX_ERR_NOT_FOUND when there is none. Strings into arena. */
    int (*snapshot_get)(struct es_store *store, const char *stream_id, int64_t version_max,
                        struct wx_arena *arena, struct es_snapshot *snapshot_out);
    /* Why the store last failed to reach its server, for /readyz and the
     * logs ("" when it has no server or nothing failed); NULL when the
     * backend has no server. */
    void (*last_error)(struct es_store *store, char *out, size_t out_bytes);
};

/* Faults a test can ask the wrappers to inject (SQLite's os.c style). */
struct es_store_faults {
    atomic_int commit_fail_after;  /* fail commits once this many more pass; <0 off */
    atomic_int commit_fail_count;  /* how many commits to fail then */
    /* Commits appending to this stream conflict, this many more times, as
     * if another node had appended to it first (es_store_fault_conflict). */
    pthread_mutex_t conflict_lock;
    char conflict_stream[WX_STREAM_ID_BYTES_MAX + 1];
    int conflict_count;
};

struct es_store {
    const struct es_store_ops *ops;
    struct es_store_faults faults;
};

/* Finds a backend by name ("sqlite", "postgres", "memory"), or NULL. */
const struct es_store_ops *es_store_backend(const char *name);

int es_store_open(const char *backend, const struct es_store_config *config,
                  struct es_store **store_out);
void es_store_close(struct es_store *store);
int es_store_commit(struct es_store *store, struct es_batch_item *items, size_t items_len);
int es_store_read_stream(struct es_store *store, const char *stream_id, int64_t from_version,
                         size_t max_events, es_event_fn fn, void *ctx);
int es_store_read_streams(struct es_store *store, const struct es_stream_from *from, size_t n,
                          size_t max_events, es_event_fn fn, void *ctx);
int es_store_read_log(struct es_store *store, const struct es_position *after,
                      size_t max_events, es_event_fn fn, void *ctx);
int es_store_stream_version(struct es_store *store, const char *stream_id, int64_t *version_out);
int es_store_head(struct es_store *store, struct es_position *head_out);
int es_store_tail(struct es_store *store, struct es_position *tail_out);
int es_store_idem_get(struct es_store *store, const char *key, struct wx_arena *arena,
                      struct es_idem_record *record_out);
int es_store_idem_expire(struct es_store *store, int64_t before_ms, size_t max_records,
                         size_t *deleted_out);

int es_store_snapshot_get(struct es_store *store, const char *stream_id, int64_t version_max,
                          struct wx_arena *arena, struct es_snapshot *snapshot_out);

/* WX_ERR_INVALID when the backend has no backup. */
int es_store_backup(struct es_store *store, const char *dest_dir);

/* After `after_commits` more successful commits, fail the next `count`
 * commits with WX_ERR_FAULT without storing anything. */
void es_store_fault_commit(struct es_store *store, int after_commits, int count);
/* The next `count` commits that append to stream_id fail with
 * WX_ERR_CONFLICT, that item marked, storing nothing: another node won the
 * race each time. */
void es_store_fault_conflict(struct es_store *store, const char *stream_id, int count);

/* Why the store cannot reach its server, into out ("" when it can, or has
 * no server). */
void es_store_last_error(struct es_store *store, char *out, size_t out_bytes);

/* True when other writers may append to this store (es_store_ops.shared). */
bool es_store_shared(const struct es_store *store);

/* Shared by backends: does a stream at `current` satisfy `expect`? */
bool es_expect_ok(const struct es_expect *expect, int64_t current);

extern const struct es_store_ops es_store_sqlite_ops;
extern const struct es_store_ops es_store_postgres_ops;
extern const struct es_store_ops es_store_memory_ops;

#endif
