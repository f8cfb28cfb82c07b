/*
 * SQLite event store: the embedded default. One file, events.db, in WAL
 * mode with synchronous=FULL so a returned commit has been fsync'd. There
 * is one write connection (the writer thread's) and a small pool of read
 * connections for everyone else; WAL lets them read while the writer
 * writes. The log is ordered by rowid: with one writer, rowid order is
 * commit order (DESIGN.md §6).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "obs/log.h"
#include "limits.h"
#include "store/sqlconn.h"
#include "store/store.h"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS events("
    " position INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL,"
    " stream_id TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " type TEXT NOT NULL,"
    " data TEXT NOT NULL,"
    " metadata TEXT NOT NULL,"
    " occurred_at_ms INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS events_stream_version ON events(stream_id, version);"
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

#define EVENT_COLUMNS "position, event_id, stream_id, version, type, data, metadata, occurred_at_ms"

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
    STMT_COUNT
};
_Static_assert(STMT_COUNT <= SQLCONN_STMTS_MAX, "statement table too small");

static const char *const stmt_sql[SQLCONN_STMTS_MAX] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_STREAM_VERSION] = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?1",
    [STMT_INSERT_EVENT] = "INSERT INTO events(event_id, stream_id, version, type, data, metadata,"
                          " occurred_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [STMT_INSERT_IDEM] = "INSERT OR REPLACE INTO idempotency(key, request, status, body, location,"
                         " position_hi, position_lo, created_at_ms)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [STMT_READ_STREAM] = "SELECT " EVENT_COLUMNS " FROM events WHERE stream_id = ?1"
                         " AND version >= ?2 ORDER BY version LIMIT ?3",
    [STMT_READ_LOG] = "SELECT " EVENT_COLUMNS " FROM events WHERE position > ?1"
                      " ORDER BY position LIMIT ?2",
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

struct sqlite_store {
    struct es_store base; /* must be first */
    char *path;
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
    sqlpool_destroy(&s->readers);
    sqlconn_close(&s->writer);
    pthread_mutex_destroy(&s->write_lock);
    free(s->path);
    free(s);
}

static int sqlite_open(const struct es_store_config *config, struct es_store **store_out)
{
    if (config->data_dir == NULL)
        return WX_ERR_INVALID;
    if (mkdir(config->data_dir, 0700) != 0 && errno != EEXIST) {
        wx_logf(WX_LOG_ERROR, "sqlite: mkdir %s: %s", config->data_dir, strerror(errno));
        return WX_ERR_IO;
    }
    struct sqlite_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WX_ERR_NOMEM;
    s->base.ops = &es_store_sqlite_ops;
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    pthread_cond_init(&s->ckpt_cond, NULL);
    size_t len = strlen(config->data_dir) + sizeof("/events.db");
    s->path = malloc(len);
    int err = WX_ERR_NOMEM;
    if (s->path == NULL)
        goto err_free;
    snprintf(s->path, len, "%s/events.db", config->data_dir);
    sqlpool_init(&s->readers, s->path, reader_pragmas, stmt_sql);
    err = sqlconn_open(&s->writer, s->path, true, writer_pragmas, schema_sql, stmt_sql);
    if (err)
        goto err_free;
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

static int append_one(struct sqlconn *c, struct es_stream_append *ap, struct es_position *last)
{
    sqlite3_stmt *sv = sqlconn_stmt(c, STMT_STREAM_VERSION);
    sqlite3_stmt *ins = sqlconn_stmt(c, STMT_INSERT_EVENT);
    if (sv == NULL || ins == NULL)
        return WX_ERR_IO;
    bind_text(sv, 1, ap->stream_id, strlen(ap->stream_id));
    int64_t current = 0;
    int err = sqlconn_run_i64(sv, &current);
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
        err = sqlconn_run_i64(ins, NULL);
        if (err)
            return err;
        ev->position = (struct es_position){0, (uint64_t)sqlite3_last_insert_rowid(c->db)};
        *last = ev->position;
    }
    return 0;
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
    return sqlconn_run_i64(st, NULL);
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

static int sqlite_commit(struct es_store *store, struct es_batch_item *items, size_t items_len)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    struct sqlconn *c = &s->writer;
    pthread_mutex_lock(&s->write_lock);
    int err = conn_step_simple(c, STMT_BEGIN);
    if (err)
        goto out_unlock;
    for (size_t i = 0; i < items_len; i++) {
        struct es_batch_item *item = &items[i];
        struct es_position last = {0, 0};
        bool appended = false;
        for (size_t a = 0; a < item->appends_len; a++) {
            err = append_one(c, &item->appends[a], &last);
            if (err)
                goto err_rollback;
            appended = true;
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
            if (err)
                goto err_rollback;
        }
    }
    err = conn_step_simple(c, STMT_COMMIT);
    if (err)
        goto err_rollback;
    goto out_unlock;
err_rollback:
    /* ROLLBACK may fail when SQLite already rolled back on its own; either
     * way the transaction is gone and nothing of the batch is stored. */
    (void)conn_step_simple(c, STMT_ROLLBACK);
out_unlock:
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

static int sqlite_read_stream(struct es_store *store, const char *stream_id, int64_t from_version,
                              size_t max_events, es_event_fn fn, void *ctx)
{
    struct sqlite_store *s = (struct sqlite_store *)store;
    struct sqlconn *c;
    sqlite3_stmt *st;
    int err = reader_stmt(s, STMT_READ_STREAM, &c, &st);
    if (err)
        return err;
    bind_text(st, 1, stream_id, strlen(stream_id));
    sqlite3_bind_int64(st, 2, from_version);
    sqlite3_bind_int64(st, 3, max_events > INT64_MAX ? INT64_MAX : (int64_t)max_events);
    err = each_event(st, fn, ctx);
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
    sqlite3_bind_int64(st, 1, after->lo > INT64_MAX ? INT64_MAX : (int64_t)after->lo);
    sqlite3_bind_int64(st, 2, max_events > INT64_MAX ? INT64_MAX : (int64_t)max_events);
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
    int err = reader_stmt(s, STMT_STREAM_VERSION, &c, &st);
    if (err)
        return err;
    bind_text(st, 1, stream_id, strlen(stream_id));
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
