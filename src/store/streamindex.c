/* The SQLite store's stream index, kept off the commit path; see
 * streamindex.h. */
#include "store/streamindex.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/fault.h"
#include "limits.h"
#include "obs/log.h"
#include "store/sqlconn.h"

/* One row in stream_index_meta: how far the index goes, and the event id at
 * that position, so an index built from another log (a restored backup)
 * is noticed and rebuilt instead of trusted. */
static const char index_schema[] =
    "CREATE TABLE IF NOT EXISTS stream_index("
    " stream_id TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " position INTEGER NOT NULL,"
    " PRIMARY KEY(stream_id, version)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stream_index_meta("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " indexed INTEGER NOT NULL,"
    " event_id TEXT NOT NULL);"
    "INSERT OR IGNORE INTO stream_index_meta VALUES (1, 0, '');";

/* Derived data: losing the last flushes to a crash only means indexing
 * them again, so no fsync per flush. */
static const char index_pragmas[] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                    " PRAGMA cache_size=-32768;";

enum {
    IX_BEGIN,
    IX_COMMIT,
    IX_ROLLBACK,
    IX_INDEXED,
    IX_HEAD,
    IX_SAME_LOG,
    IX_INSERT,
    IX_SET,
    IX_CLEAR_ROWS,
    IX_CLEAR_META,
    IX_COUNT
};
_Static_assert(IX_COUNT <= SQLCONN_STMTS_MAX, "statement table too small");

static const char *const index_sql[SQLCONN_STMTS_MAX] = {
    /* Deferred, not IMMEDIATE: IMMEDIATE would also take the write lock
     * of the attached events.db and stall the writer. */
    [IX_BEGIN] = "BEGIN",
    [IX_COMMIT] = "COMMIT",
    [IX_ROLLBACK] = "ROLLBACK",
    [IX_INDEXED] = "SELECT indexed FROM stream_index_meta",
    [IX_HEAD] = "SELECT coalesce(max(position), 0) FROM ev.events",
    [IX_SAME_LOG] = "SELECT (SELECT indexed FROM stream_index_meta) <= ?1 AND"
                    " (SELECT event_id FROM stream_index_meta) IS"
                    " coalesce((SELECT event_id FROM ev.events WHERE position ="
                    " (SELECT indexed FROM stream_index_meta)), '')",
    /* In key order: the B-tree takes sorted inserts page by page. A
     * duplicate (stream, version) fails the flush: the log would be
     * corrupt, and that must be loud. */
    [IX_INSERT] = "INSERT INTO stream_index(stream_id, version, position)"
                  " SELECT stream_id, version, position FROM ev.events"
                  " WHERE position > ?1 AND position <= ?2 ORDER BY stream_id, version",
    [IX_SET] = ("UPDATE stream_index_meta SET indexed = ?1,"
                " event_id = (SELECT event_id FROM ev.events WHERE position = ?1)"),
    [IX_CLEAR_ROWS] = "DELETE FROM stream_index",
    [IX_CLEAR_META] = "UPDATE stream_index_meta SET indexed = 0, event_id = ''",
};

struct stream_index {
    struct sqlconn conn; /* index.db, with events.db attached as "ev" */
    _Atomic int64_t indexed;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool kicked;
    bool stop;
};

static int step(struct stream_index *ix, int id, int64_t *value_out)
{
    sqlite3_stmt *st = sqlconn_stmt(&ix->conn, id);
    return st == NULL ? WX_ERR_IO : sqlconn_run_i64(st, value_out);
}

/* Binds a to ?1 and b to ?2, as far as the statement has parameters. */
static int step_with(struct stream_index *ix, int id, int64_t a, int64_t b, int64_t *value_out)
{
    sqlite3_stmt *st = sqlconn_stmt(&ix->conn, id);
    if (st == NULL)
        return WX_ERR_IO;
    int params = sqlite3_bind_parameter_count(st);
    if (params >= 1)
        sqlite3_bind_int64(st, 1, a);
    if (params >= 2)
        sqlite3_bind_int64(st, 2, b);
    return sqlconn_run_i64(st, value_out);
}

/* Indexes at most `batch` events after the indexed position, in one
 * transaction. *more_out: the head is further still. BUSY means another
 * process flushed meanwhile (SQLite refuses to write from a stale read):
 * the next flush starts from where that one stopped. */
static int flush_once(struct stream_index *ix, int64_t batch, bool *more_out)
{
    int64_t indexed = 0, head = 0;
    *more_out = false;
    int err = step(ix, IX_BEGIN, NULL);
    if (err)
        return err;
    err = step(ix, IX_INDEXED, &indexed);
    if (!err)
        err = step(ix, IX_HEAD, &head);
    int64_t target = head - indexed > batch ? indexed + batch : head;
    if (!err && target > indexed) {
        err = step_with(ix, IX_INSERT, indexed, target, NULL);
        if (!err)
            err = step_with(ix, IX_SET, target, 0, NULL);
    }
    if (!err)
        err = step(ix, IX_COMMIT, NULL);
    if (err) {
        (void)step(ix, IX_ROLLBACK, NULL);
        return err;
    }
    if (target > indexed)
        atomic_store(&ix->indexed, target);
    *more_out = target < head;
    return 0;
}

/* At open: an index from another log is emptied, then everything up to
 * the head is indexed before the store takes commits. */
static int catch_up(struct stream_index *ix)
{
    int64_t head = 0, same = 0, indexed = 0;
    int err = step(ix, IX_HEAD, &head);
    if (!err)
        err = step_with(ix, IX_SAME_LOG, head, 0, &same);
    if (!err && !same) {
        wx_logf(WX_LOG_WARN, "stream index: built from another log; rebuilding it");
        err = step(ix, IX_BEGIN, NULL);
        if (!err)
            err = step(ix, IX_CLEAR_ROWS, NULL);
        if (!err)
            err = step(ix, IX_CLEAR_META, NULL);
        if (!err)
            err = step(ix, IX_COMMIT, NULL);
        if (err)
            (void)step(ix, IX_ROLLBACK, NULL);
    }
    if (!err)
        err = step(ix, IX_INDEXED, &indexed);
    atomic_store(&ix->indexed, indexed);
    if (!err && head - indexed > WX_STREAM_INDEX_FLUSH_EVENTS_MAX)
        wx_logf(WX_LOG_WARN, "stream index: indexing %lld events", (long long)(head - indexed));
    int64_t started_ms = wx_monotonic_ms();
    bool more = !err;
    while (more && !err)
        err = flush_once(ix, WX_STREAM_INDEX_CATCH_UP_EVENTS, &more);
    if (!err && head - indexed > WX_STREAM_INDEX_FLUSH_EVENTS_MAX)
        wx_logf(WX_LOG_WARN, "stream index: done in %lld ms",
                (long long)(wx_monotonic_ms() - started_ms));
    return err;
}

static void *index_main(void *arg)
{
    struct stream_index *ix = arg;
    pthread_setname_np(pthread_self(), "wx-index"); /* for top -H and perf */
    int64_t backoff_ms = 0;
    pthread_mutex_lock(&ix->lock);
    while (!ix->stop) {
        if (!ix->kicked) {
            struct timespec until;
            wx_deadline_after_ms(backoff_ms > 0 ? backoff_ms : WX_STREAM_INDEX_FLUSH_MS, &until);
            pthread_cond_timedwait(&ix->wake, &ix->lock, &until);
        }
        ix->kicked = false;
        if (ix->stop)
            break;
        pthread_mutex_unlock(&ix->lock);
        int err = 0;
        if (!wx_fault_active("stream-index")) {
            bool more = true;
            for (int i = 0; more && !err && i < WX_STREAM_INDEX_ROUNDS_MAX; i++)
                err = flush_once(ix, WX_STREAM_INDEX_FLUSH_EVENTS_MAX, &more);
        }
        if (err && err != WX_ERR_BUSY) {
            backoff_ms = backoff_ms == 0 ? WX_STREAM_INDEX_FLUSH_MS : backoff_ms * 2;
            if (backoff_ms > WX_STREAM_INDEX_BACKOFF_MS_MAX)
                backoff_ms = WX_STREAM_INDEX_BACKOFF_MS_MAX;
            wx_logf(WX_LOG_ERROR, "stream index: flush failed: %s; retrying in %lld ms",
                    wx_strerror(err), (long long)backoff_ms);
        } else {
            backoff_ms = 0;
        }
        pthread_mutex_lock(&ix->lock);
    }
    pthread_mutex_unlock(&ix->lock);
    return NULL;
}

int stream_index_open(const char *events_path, const char *index_path,
                      struct stream_index **out)
{
    struct stream_index *ix = calloc(1, sizeof(*ix));
    if (ix == NULL)
        return WX_ERR_NOMEM;
    pthread_mutex_init(&ix->lock, NULL);
    pthread_cond_init(&ix->wake, NULL);
    int err = sqlconn_open(&ix->conn, index_path, true, index_pragmas, index_schema, index_sql);
    if (err)
        goto err_close;
    char *attach = sqlite3_mprintf("ATTACH DATABASE %Q AS ev;", events_path);
    err = attach == NULL ? WX_ERR_NOMEM : sqlconn_exec(&ix->conn, attach);
    sqlite3_free(attach);
    if (!err)
        err = catch_up(ix);
    if (err)
        goto err_close;
    if (pthread_create(&ix->thread, NULL, index_main, ix) != 0) {
        err = WX_ERR_NOMEM;
        goto err_close;
    }
    ix->started = true;
    *out = ix;
    return 0;
err_close:
    wx_logf(WX_LOG_ERROR, "stream index: open %s: %s", index_path, wx_strerror(err));
    stream_index_close(ix);
    return err;
}

void stream_index_close(struct stream_index *ix)
{
    if (ix == NULL)
        return;
    if (ix->started) {
        pthread_mutex_lock(&ix->lock);
        ix->stop = true;
        pthread_cond_signal(&ix->wake);
        pthread_mutex_unlock(&ix->lock);
        pthread_join(ix->thread, NULL);
        /* What is indexed now need not be at the next open. */
        bool more = !wx_fault_active("stream-index");
        for (int i = 0; more && i < WX_STREAM_INDEX_ROUNDS_MAX; i++)
            if (flush_once(ix, WX_STREAM_INDEX_FLUSH_EVENTS_MAX, &more) != 0)
                break;
    }
    sqlconn_close(&ix->conn);
    pthread_mutex_destroy(&ix->lock);
    pthread_cond_destroy(&ix->wake);
    free(ix);
}

int64_t stream_index_indexed(struct stream_index *ix)
{
    return atomic_load(&ix->indexed);
}

void stream_index_committed(struct stream_index *ix, int64_t head)
{
    if (head - atomic_load(&ix->indexed) < WX_STREAM_INDEX_FLUSH_EVENTS_MIN)
        return;
    pthread_mutex_lock(&ix->lock);
    if (!ix->kicked) {
        ix->kicked = true;
        pthread_cond_signal(&ix->wake);
    }
    pthread_mutex_unlock(&ix->lock);
}
