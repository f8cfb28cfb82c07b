/*
 * SQLite event store: the embedded default. One file, events.db, in WAL
 * mode with synchronous=FULL so a returned commit has been fsync'd. There
 * is one write connection (the writer thread's) and a small pool of read
 * connections for everyone else; WAL lets them read while the writer
 * writes. The log is ordered by rowid: with one writer, rowid order is
 * commit order (DESIGN.md §6).
 *
 * A commit appends rows in position order and touches no per-stream
 * B-tree: which positions belong to a stream is kept in index.db by
 * store/streamindex.c, flushed in batches. The writer records the unindexed
 * tail's positions per stream in memory (struct tail_stream); versions are
 * checked and streams read against index plus tail, and (stream, version)
 * stays unique because only the writer assigns versions. Another process
 * on the same files scans the tail instead.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/grow.h"
#include "base/map.h"
#include "obs/log.h"
#include "limits.h"
#include "store/sqlconn.h"
#include "store/store.h"
#include "store/streamindex.h"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS events("
    " position INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL,"
    " stream_id TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " type TEXT NOT NULL,"
    " data TEXT NOT NULL,"
    " metadata TEXT NOT NULL,"
    " occurred_at_ms INTEGER NOT NULL,"
    " schema_version INTEGER NOT NULL DEFAULT 1);"
    /* Data directories from before index.db had the stream index here. */
    "DROP INDEX IF EXISTS events_stream_version;"
    "CREATE TABLE IF NOT EXISTS idempotency("
    " key TEXT PRIMARY KEY,"
    " request BLOB NOT NULL,"
    " status INTEGER NOT NULL,"
    " body BLOB NOT NULL,"
    " location TEXT,"
    " position_hi INTEGER,"
    " position_lo INTEGER,"
    " created_at_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created_at_ms);"
    "CREATE TABLE IF NOT EXISTS snapshots("
    " stream_id TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " occurred_at_ms INTEGER NOT NULL,"
    " data BLOB NOT NULL,"
    " PRIMARY KEY(stream_id, version)) WITHOUT ROWID;";

#define EVENT_COLUMNS                                                                         \
    "position, event_id, stream_id, version, type, data, metadata, occurred_at_ms,"          \
    " schema_version"
#define EVENT_COLUMNS_E                                                                       \
    "e.position, e.event_id, e.stream_id, e.version, e.type, e.data, e.metadata,"          \
    " e.occurred_at_ms, e.schema_version"
/* The unindexed tail, on a connection with index.db attached as idx. */
#define TAIL_WHERE "position > " STREAM_INDEX_INDEXED_SQL

enum stmt_id {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_STREAM_VERSION,
    STMT_INSERT_EVENT,
    STMT_INSERT_IDEM,
    STMT_READ_STREAM,
    STMT_READ_LOG,
    STMT_HEAD,
    STMT_IDEM_GET,
    STMT_IDEM_EXPIRE,
    STMT_INSERT_SNAPSHOT,
    STMT_DELETE_OLD_SNAPSHOTS,
    STMT_GET_SNAPSHOT,
    STMT_READ_STREAM_INDEXED,
    STMT_READ_POSITION,
    STMT_COUNT
};
_Static_assert(STMT_COUNT <= SQLCONN_STMTS_MAX, "statement table too small");

static const char *const stmt_sql[SQLCONN_STMTS_MAX] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    /* ?2: this process's last committed position. The writer's memory
     * knows the tail up to there, so only what is beyond it is scanned;
     * another process (wallex drift) passes 0 and scans the whole tail. */
    [STMT_STREAM_VERSION] = "SELECT max(coalesce((SELECT max(version) FROM idx.stream_index"
                            " WHERE stream_id = ?1), 0), coalesce((SELECT max(version) FROM events"
                            " WHERE position > max(" STREAM_INDEX_INDEXED_SQL ", ?2)"
                            " AND stream_id = ?1), 0))",
    [STMT_INSERT_EVENT] = "INSERT INTO events(event_id, stream_id, version, type, data, metadata,"
                          " occurred_at_ms, schema_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                          " ?8)",
    /* A stored record is replaced only once expired (?9); otherwise no row
     * changes and the item conflicts (es_idem_record.expired_before_ms). */
    [STMT_INSERT_IDEM] = "INSERT INTO idempotency(key, request, status, body, location,"
                         " position_hi, position_lo, created_at_ms)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(key) DO UPDATE"
                         " SET request = excluded.request, status = excluded.status,"
                         " body = excluded.body, location = excluded.location,"
                         " position_hi = excluded.position_hi, position_lo = excluded.position_lo,"
                         " created_at_ms = excluded.created_at_ms WHERE created_at_ms < ?9",
    [STMT_READ_STREAM] = "SELECT * FROM (SELECT " EVENT_COLUMNS_E " FROM idx.stream_index i"
                         " JOIN events e ON e.position = i.position WHERE i.stream_id = ?1"
                         " AND i.version >= ?2 ORDER BY i.version LIMIT ?3)"
                         " UNION ALL SELECT * FROM (SELECT " EVENT_COLUMNS " FROM events"
                         " WHERE " TAIL_WHERE " AND stream_id = ?1 AND version >= ?2"
                         " ORDER BY position LIMIT ?3) ORDER BY 4 LIMIT ?3",
    [STMT_READ_LOG] = "SELECT " EVENT_COLUMNS " FROM events WHERE position > ?1"
                      " ORDER BY position LIMIT ?2",
    /* The writing process knows its tail (versions ?4 and up) from memory. */
    [STMT_READ_STREAM_INDEXED] = "SELECT " EVENT_COLUMNS_E " FROM idx.stream_index i"
                                 " JOIN events e ON e.position = i.position"
                                 " WHERE i.stream_id = ?1 AND i.version >= ?2 AND i.version < ?4"
                                 " ORDER BY i.version LIMIT ?3",
    [STMT_READ_POSITION] = "SELECT " EVENT_COLUMNS " FROM events WHERE position = ?1",
    [STMT_HEAD] = "SELECT coalesce(max(position), 0) FROM events",
    [STMT_IDEM_GET] = "SELECT request, status, body, location, position_hi, position_lo,"
                      " created_at_ms FROM idempotency WHERE key = ?1",
    [STMT_IDEM_EXPIRE] = "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency"
                         " WHERE created_at_ms < ?1 LIMIT ?2)",
    [STMT_INSERT_SNAPSHOT] = "INSERT OR REPLACE INTO snapshots(stream_id, version, occurred_at_ms,"
                             " data) VALUES (?1, ?2, ?3, ?4)",
    /* Keep the two latest per stream: time travel to an older version folds
     * from an older snapshot or from the start. */
    [STMT_DELETE_OLD_SNAPSHOTS] = "DELETE FROM snapshots WHERE stream_id = ?1 AND version <"
                                  " (SELECT min(version) FROM (SELECT version FROM snapshots"
                                  " WHERE stream_id = ?1 ORDER BY version DESC LIMIT 2))",
    [STMT_GET_SNAPSHOT] = "SELECT version, occurred_at_ms, data FROM snapshots"
                          " WHERE stream_id = ?1 AND version <= ?2 ORDER BY version DESC LIMIT 1",
};

/* The writer's own reads of index.db: a separate connection, because
 * index.db attached to the write connection would be write-locked by every
 * BEGIN IMMEDIATE and stall the index's flushes. A commit's lookups share
 * one read transaction (IXR_BEGIN at the first, IXR_END with the commit):
 * each on its own took and dropped the WAL read lock, two fcntl calls. */
enum { IXR_VERSION, IXR_BEGIN, IXR_END, IXR_COUNT };
static const char *const index_reader_sql[SQLCONN_STMTS_MAX] = {
    [IXR_VERSION] = "SELECT coalesce(max(version), 0) FROM stream_index WHERE stream_id = ?1",
    [IXR_BEGIN] = "BEGIN",
    [IXR_END] = "COMMIT",
};

/* A stream's events in the unindexed tail: versions first_version,
 * first_version + 1, ... at these positions. Events leave as the index
 * reaches them, and the entry goes with its last one. */
struct tail_stream {
    int64_t first_version;
    int64_t *positions;
    size_t len, cap;
};

static int64_t tail_version(const struct tail_stream *t)
{
    return t->first_version + (int64_t)t->len - 1;
}

static void tail_stream_free(struct tail_stream *t)
{
    if (t != NULL)
        free(t->positions);
    free(t);
}

struct sqlite_store {
    struct es_store base; /* must be first */
    bool read_only;       /* es_store_config.read_only: no index, no writes */
    char *path;
    char *reader_pragmas; /* reader_pragmas plus the ATTACH of index.db */
    struct stream_index *index;
    struct sqlconn index_reader; /* writer thread only */
    bool index_read_open;        /* index_reader is inside IXR_BEGIN */
    /* Every stream with events in (tail_floor, committed_head], written by
     * the writer thread (under tail_lock), read by any thread. */
    pthread_mutex_t tail_lock;
    struct wx_map tail;
    int64_t tail_floor;
    _Atomic int64_t committed_head;
    bool broken; /* the tail could not be recorded: no more commits */
    /* The commit in progress: stream id -> its version + 1 so far. Its
     * events join `tail` when it commits. */
    struct wx_map pending;
    /* Versions the writer knows as committed: stream id -> version + 1;
     * [0] the young generation, [1] the old (WX_STORE_VERSIONS_MAX). The
     * writer is the only one appending, so what it knows stays true. */
    struct wx_map versions[2];
    pthread_mutex_t write_lock; /* commits come from one writer; this makes it certain */
    struct sqlconn writer;
    struct sqlpool readers;
    /* Checkpoints run on their own connection and thread, so copying WAL
     * pages back into events.db (and its fsync) never sits inside a
     * command's commit. The writer's WAL hook wakes the thread. */
    pthread_t checkpointer;
    bool checkpointer_started;
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
    bool ckpt_due;
    bool ckpt_stop;
};

#define WX_STR_(x) #x
#define WX_STR(x) WX_STR_(x)

/* WAL + synchronous=FULL: a commit returns after the WAL is fsync'd.
 * (1 KiB pages were tried: the raw store gains 1.6x at 26 events per
 * commit, but the whole server loses 20% because the projector then reads
 * the log through more pages; see docs/architecture.md.) */
static const char writer_pragmas[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;"
    " PRAGMA journal_size_limit=" WX_STR(WX_SQLITE_WAL_BYTES_MAX) ";";
static const char reader_pragmas[] = "PRAGMA cache_size=-16384;";

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    struct sqlite_store *s = arg;
    if (frames >= WX_SQLITE_CHECKPOINT_FRAMES) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_due = true;
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
    }
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    struct sqlite_store *s = arg;
    pthread_setname_np(pthread_self(), "wx-checkpoint"); /* for top -H and perf */
    struct sqlconn c;
    /* synchronous=FULL: the checkpoint fsyncs events.db before the WAL may
     * be reused, so what was durable in the WAL stays durable. */
    if (sqlconn_open(&c, s->path, true, "PRAGMA synchronous=FULL;", NULL, NULL) != 0)
        return NULL;
    pthread_mutex_lock(&s->ckpt_lock);
    while (!s->ckpt_stop) {
        while (!s->ckpt_due && !s->ckpt_stop)
            pthread_cond_wait(&s->ckpt_cond, &s->ckpt_lock);
        if (s->ckpt_stop)
            break;
        s->ckpt_due = false;
        pthread_mutex_unlock(&s->ckpt_lock);
        int log_frames = 0, done_frames = 0;
        int rc = sqlite3_wal_checkpoint_v2(c.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                           &done_frames);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            wx_logf(WX_LOG_WARN, "sqlite: checkpoint: %s", sqlite3_errstr(rc));
        pthread_mutex_lock(&s->ckpt_lock);
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    sqlconn_close(&c);
    return NULL;
}

static void sqlite_close(struct es_store *store)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    if (s->checkpointer_started) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_stop = true;
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
        pthread_join(s->checkpointer, NULL);
    }
    pthread_mutex_destroy(&s->ckpt_lock);
    pthread_cond_destroy(&s->ckpt_cond);
    stream_index_close(s->index);
    sqlpool_destroy(&s->readers);
    sqlconn_close(&s->index_reader);
    sqlconn_close(&s->writer);
    size_t cursor = 0;
    const char *key;
    void *value;
    while (wx_map_next(&s->tail, &cursor, &key, &value))
        tail_stream_free(value);
    wx_map_free(&s->tail);
    wx_map_free(&s->pending);
    wx_map_free(&s->versions[0]);
    wx_map_free(&s->versions[1]);
    pthread_mutex_destroy(&s->tail_lock);
    pthread_mutex_destroy(&s->write_lock);
    sqlite3_free(s->reader_pragmas);
    free(s->path);
    free(s);
}

/* The layout of events.db, in PRAGMA user_version: 0 (a new file) and 1
 * are the first; 2 added events.schema_version. A file from a newer build
 * is refused rather than misread. */
#define SCHEMA_LAYOUT 2
#define SCHEMA_LAYOUT_SQL "PRAGMA user_version = 2;"

/* A read-only open cannot upgrade: it refuses an older layout (the server,
 * or any writing tool, upgrades it when it next opens the file). */
static int check_layout(struct sqlconn *c, const char *path)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return WX_ERR_IO;
    int layout = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (layout == SCHEMA_LAYOUT)
        return 0;
    wx_logf(WX_LOG_ERROR, "sqlite: %s has layout %d, this build reads %d: start the server on it"
                          " once", path, layout, SCHEMA_LAYOUT);
    return WX_ERR_INVALID;
}

static int upgrade_schema(struct sqlconn *c, const char *path)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return WX_ERR_IO;
    int layout = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (layout < 0)
        return WX_ERR_IO;
    if (layout > SCHEMA_LAYOUT) {
        wx_logf(WX_LOG_ERROR, "sqlite: %s has layout %d, newer than this build's %d", path, layout,
                SCHEMA_LAYOUT);
        return WX_ERR_INVALID;
    }
    if (layout == SCHEMA_LAYOUT)
        return 0;
    /* A file made before the column existed has the table without it (the
     * CREATE above did nothing); a new file has it already. */
    bool has_column = false;
    if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM pragma_table_info('events')"
                                  " WHERE name = 'schema_version'",
                           -1, &st, NULL) != SQLITE_OK)
        return WX_ERR_IO;
    has_column = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    int err = 0;
    if (!has_column)
        err = sqlconn_exec(c, "ALTER TABLE events ADD COLUMN schema_version INTEGER NOT NULL"
                              " DEFAULT 1;");
    if (!err)
        err = sqlconn_exec(c, SCHEMA_LAYOUT_SQL);
    return err;
}

static int sqlite_open(const struct es_store_config *config, struct es_store **store_out)
{
    if (config->data_dir == NULL)
        return WX_ERR_INVALID;
    char events_path[4096];
    snprintf(events_path, sizeof(events_path), "%s/events.db", config->data_dir);
    if ((config->must_exist || config->read_only) && access(events_path, F_OK) != 0)
        return WX_ERR_NOT_FOUND;
    if (mkdir(config->data_dir, 0700) != 0 && errno != EEXIST) {
        wx_logf(WX_LOG_ERROR, "sqlite: mkdir %s: %s", config->data_dir, strerror(errno));
        return WX_ERR_IO;
    }
    struct sqlite_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WX_ERR_NOMEM;
    s->base.ops = &es_store_sqlite_ops;
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->tail_lock, NULL);
    wx_map_init(&s->tail);
    wx_map_init(&s->pending);
    wx_map_init(&s->versions[0]);
    wx_map_init(&s->versions[1]);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    pthread_cond_init(&s->ckpt_cond, NULL);
    size_t len = strlen(config->data_dir) + sizeof("/events.db");
    s->path = malloc(len);
    int err = WX_ERR_NOMEM;
    if (s->path == NULL)
        goto err_free;
    snprintf(s->path, len, "%s/events.db", config->data_dir);
    char index_path[4096];
    snprintf(index_path, sizeof(index_path), "%s/index.db", config->data_dir);
    s->reader_pragmas = sqlite3_mprintf("%s ATTACH DATABASE %Q AS idx;", reader_pragmas,
                                        index_path);
    if (s->reader_pragmas == NULL)
        goto err_free;
    sqlpool_init(&s->readers, s->path, s->reader_pragmas, stmt_sql);
    s->read_only = config->read_only;
    if (s->read_only) {
        /* A reader beside the writing process: its reads scan the tail the
         * index has not reached (committed_head stays 0), as any other
         * process's do. */
        err = sqlconn_open(&s->writer, s->path, false, reader_pragmas, NULL, stmt_sql);
        if (!err)
            err = check_layout(&s->writer, s->path);
        if (!err)
            err = sqlconn_open(&s->index_reader, index_path, false, reader_pragmas, NULL,
                               index_reader_sql);
        if (err)
            goto err_free;
        *store_out = &s->base;
        return 0;
    }
    err = sqlconn_open(&s->writer, s->path, true, writer_pragmas, schema_sql, stmt_sql);
    if (!err)
        err = upgrade_schema(&s->writer, s->path);
    if (!err)
        err = stream_index_open(s->path, index_path, &s->index);
    if (!err)
        err = sqlconn_open(&s->index_reader, index_path, false, reader_pragmas, NULL,
                           index_reader_sql);
    if (err)
        goto err_free;
    s->tail_floor = stream_index_indexed(s->index);
    /* No checkpoints inside commits: the hook hands them to the thread. */
    sqlite3_wal_autocheckpoint(s->writer.db, 0);
    sqlite3_wal_hook(s->writer.db, wal_hook, s);
    if (pthread_create(&s->checkpointer, NULL, checkpointer_main, s) == 0)
        s->checkpointer_started = true;
    else
        sqlite3_wal_autocheckpoint(s->writer.db, 1000); /* fall back to inline */
    *store_out = &s->base;
    return 0;
err_free:
    sqlite_close(&s->base);
    return err;
}

static int conn_step_simple(struct sqlconn *c, enum stmt_id id)
{
    sqlite3_stmt *st = sqlconn_stmt(c, id);
    return st == NULL ? WX_ERR_IO : sqlconn_run_i64(st, NULL);
}

static int bind_text(sqlite3_stmt *st, int col, const char *s, size_t len)
{
    return sqlite3_bind_text64(st, col, s, len, SQLITE_STATIC, SQLITE_UTF8);
}

/* The stream's version from the in-memory tail, or -1 when it has no
 * events there (then index.db holds them all). Any thread. */
static int64_t tail_lookup_version(struct sqlite_store *s, const char *stream_id)
{
    pthread_mutex_lock(&s->tail_lock);
    struct tail_stream *t = wx_map_get(&s->tail, stream_id);
    int64_t version = t != NULL ? tail_version(t) : -1;
    pthread_mutex_unlock(&s->tail_lock);
    return version;
}

/* Remembers a committed version. When the young generation is full it
 * becomes the old one and the old one is dropped. Writer thread only. */
static void versions_put(struct sqlite_store *s, const char *stream_id, int64_t version)
{
    struct wx_map *young = &s->versions[0];
    if (young->len >= WX_STORE_VERSIONS_MAX && wx_map_get(young, stream_id) == NULL) {
        wx_map_free(&s->versions[1]);
        s->versions[1] = *young;
        wx_map_init(young);
    }
    /* Out of memory only costs a read of index.db later, as long as no
     * older version of the stream is left to be found. */
    if (wx_map_put(young, stream_id, (void *)(uintptr_t)(version + 1)) != 0) {
        wx_map_remove(young, stream_id);
        wx_map_remove(&s->versions[1], stream_id);
    }
}

/* A remembered version, or -1. A hit in the old generation moves the
 * stream to the young one, so streams in use stay. */
static int64_t versions_get(struct sqlite_store *s, const char *stream_id)
{
    uintptr_t v = (uintptr_t)wx_map_get(&s->versions[0], stream_id);
    if (v != 0)
        return (int64_t)(v - 1);
    v = (uintptr_t)wx_map_get(&s->versions[1], stream_id);
    if (v == 0)
        return -1;
    versions_put(s, stream_id, (int64_t)(v - 1));
    return (int64_t)(v - 1);
}

/* The stream's version as the commit in progress sees it: its own earlier
 * appends, then what the writer remembers, then the tail in memory, then
 * index.db (a stream missing from the tail has all its events indexed).
 * Writer thread only. */
static int writer_version(struct sqlite_store *s, const char *stream_id, int64_t *version_out)
{
    uintptr_t pending = (uintptr_t)wx_map_get(&s->pending, stream_id);
    if (pending != 0) {
        *version_out = (int64_t)(pending - 1);
        return 0;
    }
    int64_t version = versions_get(s, stream_id);
    if (version < 0)
        version = tail_lookup_version(s, stream_id);
    if (version >= 0) {
        *version_out = version;
        return 0;
    }
    /* The snapshot starts after the last commit trimmed the tail, so it
     * holds every event the tail has let go of. */
    if (!s->index_read_open) {
        sqlite3_stmt *begin = sqlconn_stmt(&s->index_reader, IXR_BEGIN);
        if (begin == NULL || sqlconn_run_i64(begin, NULL) != 0)
            return WX_ERR_IO;
        s->index_read_open = true;
    }
    sqlite3_stmt *st = sqlconn_stmt(&s->index_reader, IXR_VERSION);
    if (st == NULL)
        return WX_ERR_IO;
    bind_text(st, 1, stream_id, strlen(stream_id));
    int err = sqlconn_run_i64(st, version_out);
    /* A stream not there yet is not remembered: most are about to be
     * created once (written by one command) and never appended to again. */
    if (!err && *version_out > 0)
        versions_put(s, stream_id, *version_out);
    return err;
}

static int append_one(struct sqlite_store *s, struct es_stream_append *ap,
                      struct es_position *last)
{
    struct sqlconn *c = &s->writer;
    sqlite3_stmt *ins = sqlconn_stmt(c, STMT_INSERT_EVENT);
    if (ins == NULL)
        return WX_ERR_IO;
    int64_t current = 0;
    int err = writer_version(s, ap->stream_id, &current);
    if (err)
        return err;
    if (!es_expect_ok(&ap->expect, current))
        return WX_ERR_CONFLICT;

    for (size_t i = 0; i < ap->events_len; i++) {
        struct es_event *ev = &ap->events[i];
        ev->stream_id = ap->stream_id;
        ev->version = current + 1 + (int64_t)i;
        bind_text(ins, 1, ev->event_id, strlen(ev->event_id));
        bind_text(ins, 2, ap->stream_id, strlen(ap->stream_id));
        sqlite3_bind_int64(ins, 3, ev->version);
        bind_text(ins, 4, ev->type, strlen(ev->type));
        bind_text(ins, 5, ev->data, ev->data_len);
        bind_text(ins, 6, ev->metadata, ev->metadata_len);
        sqlite3_bind_int64(ins, 7, ev->occurred_at_ms);
        sqlite3_bind_int(ins, 8, ev->schema_version);
        err = sqlconn_run_i64(ins, NULL);
        if (err)
            return err;
        ev->position = (struct es_position){0, (uint64_t)sqlite3_last_insert_rowid(c->db)};
        *last = ev->position;
    }
    if (ap->events_len == 0)
        return 0;
    uintptr_t version = (uintptr_t)(current + (int64_t)ap->events_len);
    return wx_map_put(&s->pending, ap->stream_id, (void *)(version + 1));
}

static int tail_push(struct sqlite_store *s, const struct es_event *ev)
{
    struct tail_stream *t = wx_map_get(&s->tail, ev->stream_id);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL || wx_map_put(&s->tail, ev->stream_id, t) != 0) {
            free(t);
            return WX_ERR_NOMEM;
        }
    }
    int64_t *p = wx_grow(t->positions, &t->cap, t->len, sizeof(*p), 4);
    if (p == NULL)
        return WX_ERR_NOMEM;
    t->positions = p;
    if (t->len == 0)
        t->first_version = ev->version;
    assert(ev->version == t->first_version + (int64_t)t->len);
    t->positions[t->len++] = (int64_t)ev->position.lo;
    return 0;
}

/* Drops what the index now holds: a prefix of each stream's positions. */
static void tail_trim(struct sqlite_store *s, int64_t indexed)
{
    size_t cursor = 0;
    const char *key;
    void *value;
    while (wx_map_next(&s->tail, &cursor, &key, &value)) {
        struct tail_stream *t = value;
        size_t k = 0;
        while (k < t->len && t->positions[k] <= indexed)
            k++;
        if (k == t->len) {
            wx_map_remove(&s->tail, key);
            tail_stream_free(t);
        } else if (k > 0) {
            memmove(t->positions, t->positions + k, (t->len - k) * sizeof(*t->positions));
            t->len -= k;
            t->first_version += (int64_t)k;
        }
    }
    s->tail_floor = indexed;
}

/* After COMMIT: the batch's events join the tail, and what the index has
 * caught up with leaves it. */
static int tail_publish(struct sqlite_store *s, const struct es_batch_item *items,
                        size_t items_len, int64_t head)
{
    int err = 0;
    int64_t indexed = stream_index_indexed(s->index);
    pthread_mutex_lock(&s->tail_lock);
    for (size_t i = 0; i < items_len && !err; i++)
        for (size_t a = 0; a < items[i].appends_len && !err; a++)
            for (size_t e = 0; e < items[i].appends[a].events_len && !err; e++)
                err = tail_push(s, &items[i].appends[a].events[e]);
    if (indexed > s->tail_floor)
        tail_trim(s, indexed);
    if (head > 0)
        atomic_store(&s->committed_head, head);
    pthread_mutex_unlock(&s->tail_lock);
    return err;
}

static int insert_idem(struct sqlconn *c, const struct es_idem_record *r)
{
    sqlite3_stmt *st = sqlconn_stmt(c, STMT_INSERT_IDEM);
    if (st == NULL)
        return WX_ERR_IO;
    bind_text(st, 1, r->key, strlen(r->key));
    sqlite3_bind_blob64(st, 2, r->request, r->request_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, r->status);
    sqlite3_bind_blob64(st, 4, r->body ? r->body : "", r->body_len, SQLITE_STATIC);
    if (r->location != NULL)
        bind_text(st, 5, r->location, strlen(r->location));
    if (r->has_position) {
        sqlite3_bind_int64(st, 6, (int64_t)r->position.hi);
        sqlite3_bind_int64(st, 7, (int64_t)r->position.lo);
    }
    sqlite3_bind_int64(st, 8, r->created_at_ms);
    sqlite3_bind_int64(st, 9, r->expired_before_ms);
    int err = sqlconn_run_i64(st, NULL);
    if (!err && sqlite3_changes(c->db) == 0)
        err = WX_ERR_CONFLICT;
    return err;
}

static int insert_snapshot(struct sqlconn *c, const struct es_snapshot *snap)
{
    sqlite3_stmt *st = sqlconn_stmt(c, STMT_INSERT_SNAPSHOT);
    sqlite3_stmt *del = sqlconn_stmt(c, STMT_DELETE_OLD_SNAPSHOTS);
    if (st == NULL || del == NULL)
        return WX_ERR_IO;
    bind_text(st, 1, snap->stream_id, strlen(snap->stream_id));
    sqlite3_bind_int64(st, 2, snap->version);
    sqlite3_bind_int64(st, 3, snap->occurred_at_ms);
    sqlite3_bind_blob64(st, 4, snap->data, snap->data_len, SQLITE_STATIC);
    int err = sqlconn_run_i64(st, NULL);
    if (err)
        return err;
    bind_text(del, 1, snap->stream_id, strlen(snap->stream_id));
    return sqlconn_run_i64(del, NULL);
}

/* After COMMIT, every stream appended to is remembered at its new version,
 * except streams this batch created: most are written once (by one
 * command) and would only push out the long-lived ones. Nothing is remembered
 * of them yet either, since only versions above 0 ever are. */
static void remember_versions(struct sqlite_store *s, const struct es_batch_item *items,
                              size_t items_len)
{
    for (size_t i = 0; i < items_len; i++) {
        for (size_t a = 0; a < items[i].appends_len; a++) {
            const struct es_stream_append *ap = &items[i].appends[a];
            uintptr_t v = (uintptr_t)wx_map_get(&s->pending, ap->stream_id);
            bool created = ap->expect.kind == ES_EXPECT_NO_STREAM ||
                           (ap->expect.kind == ES_EXPECT_EXACT && ap->expect.version == 0);
            if (v != 0 && !created) /* v == 0: no events */
                versions_put(s, ap->stream_id, (int64_t)(v - 1));
        }
    }
}

static int sqlite_commit(struct es_store *store, struct es_batch_item *items, size_t items_len)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    assert(!s->read_only);
    struct sqlconn *c = &s->writer;
    pthread_mutex_lock(&s->write_lock);
    wx_map_clear(&s->pending);
    int64_t head = atomic_load(&s->committed_head);
    int err = 0;
    if (s->broken) {
        err = WX_ERR_BUSY;
        goto out_unlock;
    }
    /* Backpressure: a writer far ahead of the index waits for it (a bulk
     * load outrunning it), and gives up when it does not move (failing). */
    for (int64_t waited_ms = 0; head - stream_index_indexed(s->index) > WX_STREAM_INDEX_TAIL_MAX;
         waited_ms++) {
        if (waited_ms == WX_STREAM_INDEX_STALL_MS_MAX) {
            wx_logf(WX_LOG_ERROR, "sqlite: stream index is %lld events behind; refusing commits",
                    (long long)(head - stream_index_indexed(s->index)));
            err = WX_ERR_BUSY;
            goto out_unlock;
        }
        stream_index_committed(s->index, head);
        usleep(1000);
    }
    err = conn_step_simple(c, STMT_BEGIN);
    if (err)
        goto out_unlock;
    for (size_t i = 0; i < items_len; i++) {
        struct es_batch_item *item = &items[i];
        struct es_position last = {0, 0};
        bool appended = false;
        for (size_t a = 0; a < item->appends_len; a++) {
            err = append_one(s, &item->appends[a], &last);
            item->conflict = err == WX_ERR_CONFLICT;
            if (err)
                goto err_rollback;
            appended = appended || item->appends[a].events_len > 0;
        }
        for (size_t k = 0; k < item->snapshots_len; k++) {
            err = insert_snapshot(c, &item->snapshots[k]);
            if (err)
                goto err_rollback;
        }
        if (item->idem != NULL) {
            item->idem->has_position = appended;
            item->idem->position = last;
            err = insert_idem(c, item->idem);
            item->conflict = err == WX_ERR_CONFLICT;
            if (err)
                goto err_rollback;
        }
        if (appended)
            head = (int64_t)last.lo;
    }
    err = conn_step_simple(c, STMT_COMMIT);
    if (err)
        goto err_rollback;
    /* Committed, so the batch succeeded whatever follows. But a tail we
     * failed to remember could let a later commit miss a version: then
     * this process takes no more commits, until a restart rebuilds the
     * tail from the log. */
    if (tail_publish(s, items, items_len, head) != 0) {
        wx_logf(WX_LOG_ERROR, "sqlite: out of memory recording the tail; refusing commits");
        s->broken = true;
    }
    remember_versions(s, items, items_len);
    stream_index_committed(s->index, head);
    goto out_unlock;
err_rollback:
    /* ROLLBACK may fail when SQLite already rolled back on its own; either
     * way the transaction is gone and nothing of the batch is stored. */
    (void)conn_step_simple(c, STMT_ROLLBACK);
out_unlock:
    if (s->index_read_open) {
        /* Ending a read transaction loses nothing; if it fails, roll it
         * back so the next commit's BEGIN finds the connection idle. */
        sqlite3_stmt *end = sqlconn_stmt(&s->index_reader, IXR_END);
        if ((end == NULL || sqlconn_run_i64(end, NULL) != 0) &&
            !sqlite3_get_autocommit(s->index_reader.db))
            (void)sqlite3_exec(s->index_reader.db, "ROLLBACK", NULL, NULL, NULL);
        s->index_read_open = false;
    }
    pthread_mutex_unlock(&s->write_lock);
    return err;
}

static void event_from_row(sqlite3_stmt *st, struct es_event *ev)
{
    ev->position = (struct es_position){0, (uint64_t)sqlite3_column_int64(st, 0)};
    const char *id = (const char *)sqlite3_column_text(st, 1);
    snprintf(ev->event_id, sizeof(ev->event_id), "%s", id ? id : "");
    ev->stream_id = (const char *)sqlite3_column_text(st, 2);
    ev->version = sqlite3_column_int64(st, 3);
    ev->type = (const char *)sqlite3_column_text(st, 4);
    ev->data = (const char *)sqlite3_column_text(st, 5);
    ev->data_len = (size_t)sqlite3_column_bytes(st, 5);
    ev->metadata = (const char *)sqlite3_column_text(st, 6);
    ev->metadata_len = (size_t)sqlite3_column_bytes(st, 6);
    ev->occurred_at_ms = sqlite3_column_int64(st, 7);
    ev->schema_version = sqlite3_column_int(st, 8);
}

static int each_event(sqlite3_stmt *st, es_event_fn fn, void *ctx)
{
    int err = 0;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            err = sqlconn_err(rc);
            break;
        }
        struct es_event ev;
        event_from_row(st, &ev);
        if (ev.stream_id == NULL || ev.type == NULL || ev.data == NULL || ev.metadata == NULL) {
            err = WX_ERR_CORRUPT;
            break;
        }
        err = fn(ctx, &ev);
        if (err)
            break;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

/* A pooled read connection with statement `id` ready to bind. The caller
 * gives the connection back with sqlpool_release; on error there is none. */
static int reader_stmt(struct sqlite_store *s, enum stmt_id id, struct sqlconn **conn_out,
                       sqlite3_stmt **st_out)
{
    int err = sqlpool_acquire(&s->readers, conn_out);
    if (err)
        return err;
    *st_out = sqlconn_stmt(*conn_out, id);
    if (*st_out == NULL) {
        sqlpool_release(&s->readers, *conn_out);
        return WX_ERR_IO;
    }
    return 0;
}

/* Counts what it passes on, so the index part and the tail part of a
 * stream read share one limit. */
struct counted {
    es_event_fn fn;
    void *ctx;
    size_t n;
};

static int count_event(void *arg, const struct es_event *ev)
{
    struct counted *c = arg;
    c->n++;
    return c->fn(c->ctx, ev);
}

/* A count or position for an SQLite int64 parameter, clamped. */
static int64_t limit_i64(uint64_t n)
{
    return n > INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* In the writing process: the index below the stream's first tail version,
 * then the tail's positions, copied from memory, read one by one. */
static int read_stream_known_tail(struct sqlite_store *s, struct sqlconn *c,
                                  const char *stream_id, int64_t from_version, size_t max_events,
                                  es_event_fn fn, void *ctx)
{
    int64_t tail_first = INT64_MAX, *positions = NULL;
    size_t positions_len = 0;
    pthread_mutex_lock(&s->tail_lock);
    struct tail_stream *t = wx_map_get(&s->tail, stream_id);
    if (t != NULL) {
        tail_first = t->first_version;
        size_t skip = from_version > tail_first ? (size_t)(from_version - tail_first) : 0;
        if (skip < t->len) {
            positions_len = t->len - skip < max_events ? t->len - skip : max_events;
            positions = malloc(positions_len * sizeof(*positions));
            if (positions != NULL)
                memcpy(positions, t->positions + skip, positions_len * sizeof(*positions));
        }
    }
    pthread_mutex_unlock(&s->tail_lock);
    if (positions_len > 0 && positions == NULL)
        return WX_ERR_NOMEM;
    struct counted cn = {fn, ctx, 0};
    int err = 0;
    if (from_version < tail_first) {
        sqlite3_stmt *st = sqlconn_stmt(c, STMT_READ_STREAM_INDEXED);
        if (st == NULL) {
            err = WX_ERR_IO;
        } else {
            bind_text(st, 1, stream_id, strlen(stream_id));
            sqlite3_bind_int64(st, 2, from_version);
            sqlite3_bind_int64(st, 3, limit_i64(max_events));
            sqlite3_bind_int64(st, 4, tail_first);
            err = each_event(st, count_event, &cn);
        }
    }
    sqlite3_stmt *pos = sqlconn_stmt(c, STMT_READ_POSITION);
    if (pos == NULL && !err)
        err = WX_ERR_IO;
    for (size_t i = 0; i < positions_len && !err && cn.n < max_events; i++) {
        size_t before = cn.n;
        sqlite3_bind_int64(pos, 1, positions[i]);
        err = each_event(pos, count_event, &cn);
        if (!err && cn.n == before)
            err = WX_ERR_CORRUPT; /* a committed position must be there */
    }
    free(positions);
    return err;
}

static int sqlite_read_stream(struct es_store *store, const char *stream_id, int64_t from_version,
                              size_t max_events, es_event_fn fn, void *ctx)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    struct sqlconn *c;
    int err = sqlpool_acquire(&s->readers, &c);
    if (err)
        return err;
    sqlite3_stmt *st;
    if (atomic_load(&s->committed_head) > 0) {
        err = read_stream_known_tail(s, c, stream_id, from_version, max_events, fn, ctx);
    } else if ((st = sqlconn_stmt(c, STMT_READ_STREAM)) == NULL) {
        err = WX_ERR_IO;
    } else {
        /* Not the writing process (or nothing written yet): the tail is
         * whatever index.db does not hold, scanned. */
        bind_text(st, 1, stream_id, strlen(stream_id));
        sqlite3_bind_int64(st, 2, from_version);
        sqlite3_bind_int64(st, 3, limit_i64(max_events));
        err = each_event(st, fn, ctx);
    }
    sqlpool_release(&s->readers, c);
    return err;
}

static int sqlite_read_log(struct es_store *store, const struct es_position *after,
                           size_t max_events, es_event_fn fn, void *ctx)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    if (after->hi != 0)
        return WX_ERR_INVALID;
    struct sqlconn *c;
    sqlite3_stmt *st;
    int err = reader_stmt(s, STMT_READ_LOG, &c, &st);
    if (err)
        return err;
    sqlite3_bind_int64(st, 1, limit_i64(after->lo));
    sqlite3_bind_int64(st, 2, limit_i64(max_events));
    err = each_event(st, fn, ctx);
    sqlpool_release(&s->readers, c);
    return err;
}

static int sqlite_stream_version(struct es_store *store, const char *stream_id,
                                 int64_t *version_out)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    struct sqlconn *c;
    sqlite3_stmt *st;
    /* The head first: a stream missing from the tail below has no events
     * up to this head beyond the index. */
    int64_t head = atomic_load(&s->committed_head);
    int64_t version = tail_lookup_version(s, stream_id);
    if (version >= 0) {
        *version_out = version;
        return 0;
    }
    int err = reader_stmt(s, STMT_STREAM_VERSION, &c, &st);
    if (err)
        return err;
    bind_text(st, 1, stream_id, strlen(stream_id));
    sqlite3_bind_int64(st, 2, head);
    err = sqlconn_run_i64(st, version_out);
    sqlpool_release(&s->readers, c);
    return err;
}

static int sqlite_head(struct es_store *store, struct es_position *head_out)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    struct sqlconn *c;
    sqlite3_stmt *st;
    int err = reader_stmt(s, STMT_HEAD, &c, &st);
    if (err)
        return err;
    int64_t lo = 0;
    err = sqlconn_run_i64(st, &lo);
    if (!err)
        *head_out = (struct es_position){0, (uint64_t)lo};
    sqlpool_release(&s->readers, c);
    return err;
}

static int sqlite_idem_get(struct es_store *store, const char *key, struct wx_arena *arena,
                           struct es_idem_record *record_out)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    struct sqlconn *c;
    sqlite3_stmt *st;
    int err = reader_stmt(s, STMT_IDEM_GET, &c, &st);
    if (err)
        return err;
    bind_text(st, 1, key, strlen(key));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = WX_ERR_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        err = sqlconn_err(rc);
    } else {
        struct es_idem_record r = {0};
        r.key = wx_arena_strdup(arena, key);
        r.request_len = (size_t)sqlite3_column_bytes(st, 0);
        r.request = wx_arena_strndup(arena, sqlite3_column_blob(st, 0), r.request_len);
        r.status = sqlite3_column_int(st, 1);
        r.body_len = (size_t)sqlite3_column_bytes(st, 2);
        const void *body = sqlite3_column_blob(st, 2);
        r.body = wx_arena_strndup(arena, body ? body : "", r.body_len);
        if (sqlite3_column_type(st, 3) != SQLITE_NULL)
            r.location = wx_arena_strdup(arena, (const char *)sqlite3_column_text(st, 3));
        if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
            r.has_position = true;
            r.position.hi = (uint64_t)sqlite3_column_int64(st, 4);
            r.position.lo = (uint64_t)sqlite3_column_int64(st, 5);
        }
        r.created_at_ms = sqlite3_column_int64(st, 6);
        if (r.key == NULL || r.request == NULL || r.body == NULL)
            err = WX_ERR_NOMEM;
        else
            *record_out = r;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlpool_release(&s->readers, c);
    return err;
}

static int sqlite_idem_expire(struct es_store *store, int64_t before_ms, size_t max_records,
                              size_t *deleted_out)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    pthread_mutex_lock(&s->write_lock);
    sqlite3_stmt *st = sqlconn_stmt(&s->writer, STMT_IDEM_EXPIRE);
    int err = WX_ERR_IO;
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, before_ms);
        sqlite3_bind_int64(st, 2, (int64_t)max_records);
        err = sqlconn_run_i64(st, NULL);
        if (!err)
            *deleted_out = (size_t)sqlite3_changes(s->writer.db);
    }
    pthread_mutex_unlock(&s->write_lock);
    return err;
}

static int sqlite_snapshot_get(struct es_store *store, const char *stream_id, int64_t version_max,
                               struct wx_arena *arena, struct es_snapshot *snapshot_out)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    struct sqlconn *c;
    sqlite3_stmt *st;
    int err = reader_stmt(s, STMT_GET_SNAPSHOT, &c, &st);
    if (err)
        return err;
    bind_text(st, 1, stream_id, strlen(stream_id));
    sqlite3_bind_int64(st, 2, version_max > 0 ? version_max : INT64_MAX);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct es_snapshot snap = {
            .stream_id = wx_arena_strdup(arena, stream_id),
            .version = sqlite3_column_int64(st, 0),
            .occurred_at_ms = sqlite3_column_int64(st, 1),
            .data_len = (size_t)sqlite3_column_bytes(st, 2),
        };
        const void *data = sqlite3_column_blob(st, 2);
        snap.data = wx_arena_strndup(arena, data ? data : "", snap.data_len);
        if (snap.stream_id == NULL || snap.data == NULL)
            err = WX_ERR_NOMEM;
        else
            *snapshot_out = snap;
    } else {
        err = rc == SQLITE_DONE ? WX_ERR_NOT_FOUND : sqlconn_err(rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlpool_release(&s->readers, c);
    return err;
}

/* SQLite's online backup from a read connection: one read transaction, so
 * the copy is the log as of one commit, and in WAL mode the writer is never
 * blocked. The copy is a plain database file, fsync'd when done. */
static int sqlite_backup(struct es_store *store, const char *dest_dir)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    if (mkdir(dest_dir, 0700) != 0 && errno != EEXIST)
        return WX_ERR_IO;
    char path[4096];
    snprintf(path, sizeof(path), "%s/events.db", dest_dir);
    if (access(path, F_OK) == 0)
        return WX_ERR_CONFLICT; /* never overwrite a backup */
    struct sqlconn *src;
    int err = sqlpool_acquire(&s->readers, &src);
    if (err)
        return err;
    sqlite3 *dest = NULL;
    int rc = sqlite3_open_v2(path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_backup *b = sqlite3_backup_init(dest, "main", src->db, "main");
        if (b == NULL) {
            rc = sqlite3_errcode(dest);
        } else {
            rc = sqlite3_backup_step(b, -1);
            sqlite3_backup_finish(b);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(dest, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL);
    sqlite3_close(dest);
    sqlpool_release(&s->readers, src);
    return sqlconn_err(rc) ? sqlconn_err(rc) : (rc == SQLITE_OK ? 0 : WX_ERR_IO);
}

const struct es_store_ops es_store_sqlite_ops = {
    .name = "sqlite",
    .shared = false, /* one writer per data directory (its LOCK) */
    .open = sqlite_open,
    .close = sqlite_close,
    .commit = sqlite_commit,
    .read_stream = sqlite_read_stream,
    .read_log = sqlite_read_log,
    .stream_version = sqlite_stream_version,
    .head = sqlite_head,
    .idem_get = sqlite_idem_get,
    .idem_expire = sqlite_idem_expire,
    .backup = sqlite_backup,
    .snapshot_get = sqlite_snapshot_get,
};
