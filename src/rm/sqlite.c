/*
 * The read-model database on SQLite: one file beside the log (readmodel.db
 * for read models, delivery.db for webhook state), WAL, one writer
 * connection per writing thread and a bounded pool of query_only readers
 * (WAL readers never wait for the writer). One process owns the data
 * directory (its LOCK file), so every lease is held.
 *
 * Read models are derived data: they run without fsync under a boot
 * marker (rm/bootguard.h), and a clean close checkpoints them with fsync
 * and marks them clean. Other files (delivery.db) run synchronous=NORMAL.
 */
#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "limits.h"
#include "obs/log.h"
#include "rm/bootguard.h"
#include "rm/rm.h"
#include "store/sqlconn.h"

static const char disposable_writer_pragmas[] = "PRAGMA journal_mode=WAL;"
                                                " PRAGMA synchronous=NORMAL;"
                                                " PRAGMA cache_size=-65536;";
static const char disposable_reader_pragmas[] = "PRAGMA cache_size=-16384;";
static const char kept_writer_pragmas[] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";

enum { TX_BEGIN, TX_BEGIN_IMMEDIATE, TX_COMMIT, TX_ROLLBACK, TX_STMTS };

static const char *const tx_sql[SQLCONN_STMTS_MAX] = {
    [TX_BEGIN] = "BEGIN",
    [TX_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [TX_COMMIT] = "COMMIT",
    [TX_ROLLBACK] = "ROLLBACK",
};

struct sq_conn {
    struct rm_conn base; /* must be first */
    struct sqlconn c;    /* the handle and its cached BEGIN/COMMIT */
    bool writer;
};

struct sq_db {
    struct rm_db base; /* must be first */
    char *path;
    bool disposable;
    bool unsynced; /* synchronous=OFF: bulk, or under the boot marker */
    bool marked;   /* the boot marker is ours to mark clean at close */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    struct sq_conn readers[WX_SQLITE_READERS_MAX];
    bool busy[WX_SQLITE_READERS_MAX];
    size_t readers_open;
};

struct sq_stmt {
    struct rm_stmt base; /* must be first */
    sqlite3_stmt *st;
};

static struct sq_db *db_of(struct rm_db *db)
{
    return (struct sq_db *)db;
}

static struct sq_conn *conn_of(struct rm_conn *c)
{
    return (struct sq_conn *)c;
}

static sqlite3_stmt *st_of(struct rm_stmt *st)
{
    return ((struct sq_stmt *)st)->st;
}

/* ---- connections ---- */

static int conn_init(struct sq_db *d, struct sq_conn *c, bool writer)
{
    memset(c, 0, sizeof(*c));
    c->base.db = &d->base;
    c->writer = writer;
    const char *pragmas = d->disposable ? (writer ? disposable_writer_pragmas
                                                  : disposable_reader_pragmas)
                                        : (writer ? kept_writer_pragmas : NULL);
    int err = sqlconn_open(&c->c, d->path, writer, pragmas, NULL, tx_sql);
    if (!err && writer && d->unsynced)
        err = sqlconn_exec(&c->c, "PRAGMA synchronous=OFF;");
    if (err)
        sqlconn_close(&c->c);
    return err;
}

static int sq_conn_open(struct rm_db *db, enum rm_conn_kind kind, struct rm_conn **out)
{
    struct sq_conn *c = malloc(sizeof(*c));
    if (c == NULL)
        return WX_ERR_NOMEM;
    int err = conn_init(db_of(db), c, kind == RM_CONN_WRITER);
    if (err) {
        free(c);
        return err;
    }
    *out = &c->base;
    return 0;
}

static void sq_conn_close(struct rm_conn *conn)
{
    sqlconn_close(&conn_of(conn)->c);
    free(conn);
}

static int sq_read_acquire(struct rm_db *db, struct rm_conn **out)
{
    struct sq_db *d = db_of(db);
    int err = 0;
    pthread_mutex_lock(&d->pool_lock);
    for (;;) {
        for (size_t i = 0; i < d->readers_open; i++) {
            if (!d->busy[i]) {
                d->busy[i] = true;
                *out = &d->readers[i].base;
                goto out_unlock;
            }
        }
        if (d->readers_open < WX_SQLITE_READERS_MAX) {
            size_t i = d->readers_open;
            err = conn_init(d, &d->readers[i], false);
            if (err)
                goto out_unlock;
            d->readers_open++;
            d->busy[i] = true;
            *out = &d->readers[i].base;
            goto out_unlock;
        }
        pthread_cond_wait(&d->pool_cond, &d->pool_lock);
    }
out_unlock:
    pthread_mutex_unlock(&d->pool_lock);
    return err;
}

static void sq_read_release(struct rm_db *db, struct rm_conn *conn)
{
    struct sq_db *d = db_of(db);
    pthread_mutex_lock(&d->pool_lock);
    size_t i = (size_t)(conn_of(conn) - d->readers);
    assert(i < d->readers_open && d->busy[i]);
    d->busy[i] = false;
    pthread_cond_signal(&d->pool_cond);
    pthread_mutex_unlock(&d->pool_lock);
}

/* ---- the database ---- */

static void sq_close(struct rm_db *db);

static int sq_open(const struct rm_config *config, struct rm_db **out)
{
    struct sq_db *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return WX_ERR_NOMEM;
    d->base.ops = &rm_sqlite_ops;
    d->disposable = config->disposable;
    pthread_mutex_init(&d->pool_lock, NULL);
    pthread_cond_init(&d->pool_cond, NULL);
    d->path = strdup(config->path);
    int err = d->path == NULL ? WX_ERR_NOMEM : 0;
    bool unsynced = false;
    if (!err && config->disposable && !config->beside) {
        err = boot_guard_open(d->path, &unsynced);
        d->marked = !err && unsynced;
    }
    d->unsynced = unsynced || config->bulk;
    if (err) {
        sq_close(&d->base);
        return err;
    }
    *out = &d->base;
    return 0;
}

/* Everything on disk with fsync, the WAL emptied, then the boot marker
 * says clean. Left unmarked when that fails: the next boot rebuilds. */
static void close_synced(struct sq_db *d)
{
    struct sq_conn c;
    int log_frames = 0, done_frames = 0;
    int err = conn_init(d, &c, true);
    if (!err)
        err = sqlconn_exec(&c.c, "PRAGMA synchronous=FULL;");
    if (!err && sqlite3_wal_checkpoint_v2(c.c.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
                                          &done_frames) != SQLITE_OK)
        err = WX_ERR_IO;
    sqlconn_close(&c.c);
    if (err || boot_guard_clean(d->path) != 0)
        wx_logf(WX_LOG_WARN, "read side: %s not closed cleanly; a reboot would rebuild it",
                d->path);
}

static void sq_close(struct rm_db *db)
{
    struct sq_db *d = db_of(db);
    for (size_t i = 0; i < d->readers_open; i++) {
        assert(!d->busy[i]); /* every reader is back */
        sqlconn_close(&d->readers[i].c);
    }
    if (d->marked)
        close_synced(d);
    pthread_mutex_destroy(&d->pool_lock);
    pthread_cond_destroy(&d->pool_cond);
    free(d->path);
    free(d);
}

/* ---- transactions ---- */

static int run_tx(struct rm_conn *conn, int id)
{
    sqlite3_stmt *st = sqlconn_stmt(&conn_of(conn)->c, id);
    return st == NULL ? WX_ERR_IO : sqlconn_run_i64(st, NULL);
}

static int sq_exec(struct rm_conn *conn, const char *sql)
{
    char text[WX_RM_SQL_BYTES_MAX];
    int err = rm_sql_dialect(sql, RM_DIALECT_SQLITE, false, text, sizeof(text), NULL);
    return err ? err : sqlconn_exec(&conn_of(conn)->c, text);
}

static int sq_begin(struct rm_conn *conn, enum rm_tx kind)
{
    /* A write starts with the write lock, so it never fails half-way to
     * upgrade a read lock another writer also wants. */
    return run_tx(conn, kind == RM_TX_READ ? TX_BEGIN : TX_BEGIN_IMMEDIATE);
}

static int sq_commit(struct rm_conn *conn)
{
    return run_tx(conn, TX_COMMIT);
}

static void sq_rollback(struct rm_conn *conn)
{
    /* SQLite may have rolled back already; either way nothing remains. */
    if (!sqlite3_get_autocommit(conn_of(conn)->c.db))
        run_tx(conn, TX_ROLLBACK);
}

/* ---- statements ---- */

static int sq_prepare(struct rm_conn *conn, const char *sql, unsigned flags, struct rm_stmt **out)
{
    char text[WX_RM_SQL_BYTES_MAX];
    int params = 0;
    int err = rm_sql_dialect(sql, RM_DIALECT_SQLITE, false, text, sizeof(text), &params);
    if (err)
        return err;
    struct sq_stmt *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WX_ERR_NOMEM;
    sqlite3 *db = conn_of(conn)->c.db;
    int rc = sqlite3_prepare_v3(db, text, -1, flags & RM_PERSISTENT ? SQLITE_PREPARE_PERSISTENT : 0,
                                &s->st, NULL);
    if (rc != SQLITE_OK) {
        wx_logf(WX_LOG_ERROR, "read side: prepare: %s: %.200s", sqlite3_errmsg(db), text);
        free(s);
        return sqlconn_err(rc) ? sqlconn_err(rc) : WX_ERR_IO;
    }
    s->base.conn = conn;
    s->base.params = sqlite3_bind_parameter_count(s->st);
    s->base.columns = sqlite3_column_count(s->st);
    *out = &s->base;
    return 0;
}

static void sq_finalize(struct rm_stmt *st)
{
    sqlite3_finalize(st_of(st));
    free(st);
}

static void sq_reset(struct rm_stmt *st)
{
    sqlite3_reset(st_of(st));
    sqlite3_clear_bindings(st_of(st));
}

static void sq_bind_text(struct rm_stmt *st, int col, const char *text, size_t len)
{
    sqlite3_bind_text(st_of(st), col, text, (int)len, SQLITE_STATIC);
}

static void sq_bind_i64(struct rm_stmt *st, int col, int64_t value)
{
    sqlite3_bind_int64(st_of(st), col, value);
}

static void sq_bind_null(struct rm_stmt *st, int col)
{
    sqlite3_bind_null(st_of(st), col);
}

static int sq_step(struct rm_stmt *st, bool *row_out)
{
    int rc = sqlite3_step(st_of(st));
    *row_out = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return 0;
    int err = sqlconn_err(rc);
    return err ? err : WX_ERR_IO;
}

static int sq_run(struct rm_stmt *st)
{
    bool row;
    int err = sq_step(st, &row);
    sq_reset(st);
    return err;
}

static const char *sq_column_text(struct rm_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st_of(st), col);
}

static size_t sq_column_len(struct rm_stmt *st, int col)
{
    return (size_t)sqlite3_column_bytes(st_of(st), col);
}

static int64_t sq_column_i64(struct rm_stmt *st, int col)
{
    return sqlite3_column_int64(st_of(st), col);
}

static bool sq_column_null(struct rm_stmt *st, int col)
{
    return sqlite3_column_type(st_of(st), col) == SQLITE_NULL;
}

/* ---- leases: this process owns the data directory ---- */

static int sq_lease_try(struct rm_conn *conn, const char *name, bool *held_out)
{
    (void)conn;
    (void)name;
    *held_out = true;
    return 0;
}

static bool sq_lease_held(struct rm_conn *conn, const char *name)
{
    (void)conn;
    (void)name;
    return true;
}

static void sq_lease_release(struct rm_conn *conn, const char *name)
{
    (void)conn;
    (void)name;
}

const struct rm_ops rm_sqlite_ops = {
    .name = "sqlite",
    .dialect = RM_DIALECT_SQLITE,
    .shared = false,
    .open = sq_open,
    .close = sq_close,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .read_acquire = sq_read_acquire,
    .read_release = sq_read_release,
    .exec = sq_exec,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .reset = sq_reset,
    .bind_text = sq_bind_text,
    .bind_i64 = sq_bind_i64,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .run = sq_run,
    .column_text = sq_column_text,
    .column_len = sq_column_len,
    .column_i64 = sq_column_i64,
    .column_null = sq_column_null,
    .lease_try = sq_lease_try,
    .lease_held = sq_lease_held,
    .lease_release = sq_lease_release,
};
