/*
 * The projector thread, checkpoints and table-set swaps; see projector.h.
 *
 * The read side is disposable, so its database runs with
 * synchronous=NORMAL: after a crash it may lose its last transactions, and
 * their events are simply projected again from the checkpoint that was
 * lost with them (rows and checkpoint always commit together).
 */
#include "proj/projector.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/fault.h"
#include "es/domain.h"
#include "obs/log.h"
#include "proj/bootguard.h"
#include "store/sqlconn.h"
#include "store/store.h"

static const char read_schema[] =
    "CREATE TABLE IF NOT EXISTS projections("
    " name TEXT PRIMARY KEY,"
    " live_set TEXT NOT NULL,"
    " position_hi INTEGER NOT NULL,"
    " position_lo INTEGER NOT NULL,"
    " rebuild_set TEXT,"
    " rebuild_hi INTEGER,"
    " rebuild_lo INTEGER) WITHOUT ROWID;";

static const char write_pragmas[] = "PRAGMA journal_mode=WAL;"
                                    " PRAGMA synchronous=NORMAL;"
                                    " PRAGMA cache_size=-65536;";
static const char read_pragmas[] = "PRAGMA cache_size=-16384;";

enum {
    SQL_GET,
    SQL_INSERT,
    SQL_SET_LIVE_POS,
    SQL_SET_REBUILD_POS,
    SQL_START_REBUILD,
    SQL_SWAP,
    SQL_RESET,
    SQL_BEGIN,
    SQL_BEGIN_IMMEDIATE,
    SQL_COMMIT,
    SQL_ROLLBACK,
};

static const char *const proj_sql[SQLCONN_STMTS_MAX] = {
    [SQL_GET] = "SELECT live_set, position_hi, position_lo, rebuild_set, rebuild_hi, rebuild_lo"
                " FROM projections WHERE name = ?1",
    [SQL_INSERT] = "INSERT INTO projections(name, live_set, position_hi, position_lo)"
                   " VALUES (?1, '_a', 0, 0)",
    [SQL_SET_LIVE_POS] = "UPDATE projections SET position_hi = ?2, position_lo = ?3 WHERE name = ?1",
    [SQL_SET_REBUILD_POS] = "UPDATE projections SET rebuild_hi = ?2, rebuild_lo = ?3"
                            " WHERE name = ?1",
    [SQL_START_REBUILD] = "UPDATE projections SET rebuild_set = ?2, rebuild_hi = 0, rebuild_lo = 0"
                          " WHERE name = ?1",
    [SQL_SWAP] = "UPDATE projections SET live_set = rebuild_set, position_hi = rebuild_hi,"
                 " position_lo = rebuild_lo, rebuild_set = NULL, rebuild_hi = NULL,"
                 " rebuild_lo = NULL WHERE name = ?1",
    [SQL_RESET] = "UPDATE projections SET live_set = '_a', position_hi = 0, position_lo = 0,"
                  " rebuild_set = NULL, rebuild_hi = NULL, rebuild_lo = NULL WHERE name = ?1",
    [SQL_BEGIN] = "BEGIN",
    [SQL_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
};

struct cursor {
    struct es_proj_tx tx;
    struct es_position pos;
    bool active;
    bool behind; /* the last read filled a whole batch */
};

const int64_t es_lag_bucket_ms[ES_LAG_BUCKETS] = {1, 2, 5, 10, 20, 50, 100, 200, 500,
                                                  1000, 5000, 30000};

struct consumer_rt {
    const struct es_consumer *c;
    /* Live events by lag from occurredAt to projected. The projector thread
     * counts outside the lock (once per event) while /metrics and
     * /admin/projections read them: relaxed atomics, each count exact. */
    atomic_uint_fast64_t lag_counts[ES_LAG_BUCKETS + 1];
    struct cursor live;
    struct cursor rebuild;
    bool failed;
    char last_error[WX_ERROR_TEXT_BYTES];
    int64_t retry_at_ms; /* monotonic */
    int64_t backoff_ms;
};

struct job {
    int (*fn)(struct es_projector *p, sqlite3 *db, void *ctx);
    void *ctx;
    int err;
    bool done;
};

struct es_projector {
    struct es_store *store;
    char *db_path;
    bool unsynced; /* synchronous=OFF under the boot marker (proj/bootguard.h) */
    struct sqlconn wdb;
    struct sqlpool readers;
    struct consumer_rt rt[WX_PROJECTOR_CONSUMERS_MAX];
    size_t rt_len;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* guards everything below and the rt status fields */
    pthread_cond_t wake;  /* the thread waits here */
    pthread_cond_t moved; /* callers of es_projector_job wait here */
    bool stopping;
    bool kicked;
    struct job *job;
    struct es_projector_watch *watches; /* registered, in no order */
    size_t watches_len;
};

/* ---- statements with table-set suffixes ---- */

int es_proj_sql(const char *tmpl, const char *set, char *out, size_t out_bytes)
{
    size_t o = 0, setlen = strlen(set);
    for (const char *p = tmpl; *p != '\0';) {
        if (p[0] == '{' && p[1] == 's' && p[2] == '}') {
            if (o + setlen >= out_bytes)
                return WX_ERR_TOO_LARGE;
            memcpy(out + o, set, setlen);
            o += setlen;
            p += 3;
        } else {
            if (o + 1 >= out_bytes)
                return WX_ERR_TOO_LARGE;
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return 0;
}

void es_proj_tx_init(struct es_proj_tx *tx, const struct es_consumer *c, sqlite3 *db,
                     const char *set)
{
    memset(tx, 0, sizeof(*tx));
    tx->consumer = c;
    tx->db = db;
    snprintf(tx->set, sizeof(tx->set), "%s", set);
}

void es_proj_tx_finalize(struct es_proj_tx *tx)
{
    for (int i = 0; i < WX_CONSUMER_STMTS_MAX; i++) {
        sqlite3_finalize(tx->stmts[i]);
        tx->stmts[i] = NULL;
    }
}

/* `tmpl` for set, prepared on db with SQLite's prepare flags. */
static int prepare_set(sqlite3 *db, const char *tmpl, const char *set, unsigned flags,
                       sqlite3_stmt **st_out)
{
    *st_out = NULL;
    char sql[4096];
    int err = es_proj_sql(tmpl, set, sql, sizeof(sql));
    if (err)
        return err;
    if (sqlite3_prepare_v3(db, sql, -1, flags, st_out, NULL) != SQLITE_OK) {
        wx_logf(WX_LOG_ERROR, "projector: prepare: %s", sqlite3_errmsg(db));
        return WX_ERR_IO;
    }
    return 0;
}

sqlite3_stmt *es_proj_stmt(struct es_proj_tx *tx, int id)
{
    assert(id >= 0 && id < WX_CONSUMER_STMTS_MAX && tx->consumer->sql[id] != NULL);
    if (tx->stmts[id] == NULL) {
        if (prepare_set(tx->db, tx->consumer->sql[id], tx->set, SQLITE_PREPARE_PERSISTENT,
                        &tx->stmts[id]) != 0)
            return NULL;
    } else {
        sqlite3_reset(tx->stmts[id]);
        sqlite3_clear_bindings(tx->stmts[id]);
    }
    return tx->stmts[id];
}

int es_proj_prepare(sqlite3 *db, const char *tmpl, const char *set, sqlite3_stmt **st_out)
{
    return prepare_set(db, tmpl, set, 0, st_out);
}

static int exec_set(sqlite3 *db, const char *tmpl, const char *set)
{
    char sql[4096];
    int err = es_proj_sql(tmpl, set, sql, sizeof(sql));
    if (err)
        return err;
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        wx_logf(WX_LOG_ERROR, "projector: %s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return sqlconn_err(rc);
}

/* A set's schema as this build has it: the tables, created when missing,
 * and the columns a later release added to tables an older one created.
 * SQLite has no ADD COLUMN IF NOT EXISTS; the one error it gives for a
 * column already there is "duplicate column name", and only that is
 * taken as done. */
static int exec_schema(sqlite3 *db, const struct es_consumer *c, const char *set)
{
    int err = exec_set(db, c->schema, set);
    for (const char *const *add = c->columns_added; !err && add && *add; add++) {
        char sql[1024];
        err = es_proj_sql(*add, set, sql, sizeof(sql));
        char *msg = NULL;
        int rc = err ? SQLITE_OK : sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK && (msg == NULL || strncmp(msg, "duplicate column name", 21) != 0)) {
            wx_logf(WX_LOG_ERROR, "projector: %s", msg ? msg : sqlite3_errstr(rc));
            err = sqlconn_err(rc);
        }
        sqlite3_free(msg);
    }
    return err;
}

static int simple(struct es_projector *p, int id)
{
    sqlite3_stmt *st = sqlconn_stmt(&p->wdb, id);
    return st == NULL ? WX_ERR_IO : sqlconn_run_i64(st, NULL);
}

static int set_pos(struct es_projector *p, int id, const char *name, const struct es_position *pos)
{
    sqlite3_stmt *st = sqlconn_stmt(&p->wdb, id);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, (int64_t)pos->hi);
    sqlite3_bind_int64(st, 3, (int64_t)pos->lo);
    return sqlconn_run_i64(st, NULL);
}

/* Ends the transaction: commit when all went well, else roll back (SQLite
 * may have rolled back already; either way nothing of it remains). */
static int tx_end(struct es_projector *p, int err)
{
    if (!err)
        err = simple(p, SQL_COMMIT);
    if (err)
        simple(p, SQL_ROLLBACK);
    return err;
}

static const char *other_set(const char *set)
{
    return strcmp(set, "_a") == 0 ? "_b" : "_a";
}

/* ---- opening ---- */

static int load_consumer(struct es_projector *p, struct consumer_rt *rt)
{
    sqlite3_stmt *st = sqlconn_stmt(&p->wdb, SQL_GET);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, rt->c->name);
    int rc = sqlite3_step(st);
    char live[ES_SET_BYTES] = "_a", rebuild[ES_SET_BYTES] = "";
    if (rc == SQLITE_ROW) {
        snprintf(live, sizeof(live), "%s", (const char *)sqlite3_column_text(st, 0));
        rt->live.pos = (struct es_position){(uint64_t)sqlite3_column_int64(st, 1),
                                            (uint64_t)sqlite3_column_int64(st, 2)};
        if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
            snprintf(rebuild, sizeof(rebuild), "%s", (const char *)sqlite3_column_text(st, 3));
            rt->rebuild.pos = (struct es_position){(uint64_t)sqlite3_column_int64(st, 4),
                                                   (uint64_t)sqlite3_column_int64(st, 5)};
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlconn_err(rc);
    if (strcmp(live, "_a") != 0 && strcmp(live, "_b") != 0)
        return WX_ERR_CORRUPT;
    int err = 0;
    if (rc == SQLITE_DONE) {
        st = sqlconn_stmt(&p->wdb, SQL_INSERT);
        sqlconn_bind_text(st, 1, rt->c->name);
        err = sqlconn_run_i64(st, NULL);
    }
    if (!err)
        err = exec_schema(p->wdb.db, rt->c, live);
    es_proj_tx_init(&rt->live.tx, rt->c, p->wdb.db, live);
    rt->live.active = true;
    if (!err && rebuild[0] != '\0') {
        err = exec_schema(p->wdb.db, rt->c, rebuild);
        es_proj_tx_init(&rt->rebuild.tx, rt->c, p->wdb.db, rebuild);
        rt->rebuild.active = true;
    }
    /* A process that ended without a clean stop may have left rows staged
     * (kill -9 between folds). Counting one makes the first quiet moment,
     * or the next clean stop, fold them even if no event comes; folding an
     * empty stage costs one small transaction. */
    if (rt->c->fold != NULL) {
        rt->live.tx.staged = 1;
        rt->rebuild.tx.staged = rt->rebuild.active ? 1 : 0;
    }
    return err;
}

int es_projector_open(const struct es_projector_config *config, struct es_projector **out)
{
    assert(config->consumers_len <= WX_PROJECTOR_CONSUMERS_MAX);
    struct es_projector *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return WX_ERR_NOMEM;
    p->store = config->store;
    p->db_path = strdup(config->db_path);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->moved, NULL);
    int err = WX_ERR_NOMEM;
    if (p->db_path == NULL)
        goto err_close;
    sqlpool_init(&p->readers, p->db_path, read_pragmas, NULL);
    err = config->shared ? 0 : boot_guard_open(p->db_path, &p->unsynced);
    if (!err)
        err = sqlconn_open(&p->wdb, p->db_path, true, write_pragmas, read_schema, proj_sql);
    if (!err && (config->bulk || p->unsynced))
        err = sqlconn_exec(&p->wdb, "PRAGMA synchronous=OFF;");
    if (err)
        goto err_close;
    err = simple(p, SQL_BEGIN_IMMEDIATE);
    for (size_t i = 0; i < config->consumers_len && !err; i++) {
        p->rt[i].c = config->consumers[i];
        p->rt_len++;
        err = load_consumer(p, &p->rt[i]);
    }
    err = tx_end(p, err);
    if (err)
        goto err_close;
    *out = p;
    return 0;
err_close:
    wx_logf(WX_LOG_ERROR, "projector: cannot open %s: %s", config->db_path, wx_strerror(err));
    es_projector_close(p);
    return err;
}

/* ---- projecting ---- */

/* Stops a read at the cap; never escapes this file. */
#define READ_STOP (-1)

/* One batch applied to one or more cursors that start at the same
 * position, in one transaction with their checkpoints. */
struct advance_ctx {
    struct es_projector *p;
    struct consumer_rt *rts[WX_PROJECTOR_CONSUMERS_MAX];
    struct cursor *curs[WX_PROJECTOR_CONSUMERS_MAX];
    size_t len;
    const struct es_position *cap;
    struct es_position last;
    size_t applied;
    struct wx_buf scratch; /* upcast event data */
};

static void count_lag(struct consumer_rt *rt, const struct es_event *ev)
{
    int64_t lag = wx_clock_now_ms(&wx_clock_system) - ev->occurred_at_ms;
    size_t b = 0;
    while (b < ES_LAG_BUCKETS && lag > es_lag_bucket_ms[b])
        b++;
    atomic_fetch_add_explicit(&rt->lag_counts[b], 1, memory_order_relaxed);
}

/* Does the consumer read events of this stream? The category is the
 * stream id's first category_len bytes (up to its ':'), found once per
 * event rather than once per consumer and category. */
static bool takes(const struct es_consumer *c, const char *stream_id, size_t category_len)
{
    if (c->categories == NULL)
        return true;
    for (const char *const *cat = c->categories; *cat != NULL; cat++)
        if (strncmp(*cat, stream_id, category_len) == 0 && (*cat)[category_len] == '\0')
            return true;
    return false;
}

/* Each codec decodes an event once for all the consumers that share it. */
struct decoded_slot {
    const struct es_event_codec *codec;
    void *decoded;
};

static int decoded_for(const struct es_consumer *c, const struct es_event *ev,
                       struct decoded_slot *slots, size_t *slots_len, void **out)
{
    *out = NULL;
    if (c->codec == NULL)
        return 0;
    for (size_t i = 0; i < *slots_len; i++) {
        if (slots[i].codec == c->codec) {
            *out = slots[i].decoded;
            return 0;
        }
    }
    assert(*slots_len < WX_PROJECTOR_CONSUMERS_MAX);
    int err = c->codec->decode(ev, out);
    if (!err)
        slots[(*slots_len)++] = (struct decoded_slot){c->codec, *out};
    return err;
}

static int apply_one(void *arg, const struct es_event *stored)
{
    struct advance_ctx *a = arg;
    if (a->cap != NULL && es_position_cmp(&stored->position, a->cap) > 0)
        return READ_STOP;
    struct es_event ev;
    int err = es_upcast(stored, &ev, &a->scratch);
    struct decoded_slot slots[WX_PROJECTOR_CONSUMERS_MAX];
    size_t slots_len = 0;
    size_t category_len = strcspn(ev.stream_id, ":");
    for (size_t i = 0; i < a->len && !err; i++) {
        const struct es_consumer *c = a->curs[i]->tx.consumer;
        assert(es_position_cmp(&ev.position, &a->curs[i]->pos) > 0);
        if (takes(c, ev.stream_id, category_len)) {
            void *decoded;
            err = decoded_for(c, &ev, slots, &slots_len, &decoded);
            if (!err)
                err = c->apply(&a->curs[i]->tx, &ev, decoded);
        }
        if (!err && a->curs[i] == &a->rts[i]->live)
            count_lag(a->rts[i], &ev);
    }
    for (size_t i = 0; i < slots_len; i++)
        slots[i].codec->release(slots[i].decoded);
    if (err)
        return err;
    a->last = ev.position;
    a->applied++;
    return 0;
}

/* "projection-NAME" parks a consumer (it fails); "fold-NAME" only holds
 * its staged rows where they are, so tests can read both places. */
static bool fault_injected(const char *what, const char *name)
{
    char fault[64];
    snprintf(fault, sizeof(fault), "%s-%s", what, name);
    return wx_fault_active(fault);
}

static bool fold_due(const struct es_proj_tx *tx, int64_t now_ms)
{
    return tx->consumer->fold != NULL && tx->staged > 0 &&
           (tx->staged >= WX_PROJECTOR_FOLD_ROWS ||
            now_ms - tx->folded_at_ms >= WX_PROJECTOR_FOLD_MS) &&
           !fault_injected("fold", tx->consumer->name);
}

static void fold_done(struct es_proj_tx *tx, int64_t now_ms)
{
    tx->staged = 0;
    tx->folded_at_ms = now_ms;
}

/* ---- watches ---- */

static bool caught_up(struct es_projector *p, const char *const *names,
                      const struct es_position *pos);

/* Under the lock, after live checkpoints moved: unlinks every watch they
 * reached, for watches_fire to call outside the lock (a callback takes
 * locks of its own). */
static struct es_projector_watch *watches_take_reached(struct es_projector *p)
{
    struct es_projector_watch *fired = NULL;
    for (struct es_projector_watch *w = p->watches, *next; w != NULL; w = next) {
        next = w->next;
        if (!caught_up(p, w->names, &w->position))
            continue;
        if (w->prev != NULL)
            w->prev->next = w->next;
        else
            p->watches = w->next;
        if (w->next != NULL)
            w->next->prev = w->prev;
        p->watches_len--;
        w->prev = NULL;
        w->next = fired;
        fired = w;
    }
    return fired;
}

static void watches_fire(struct es_projector_watch *fired)
{
    while (fired != NULL) {
        struct es_projector_watch *w = fired;
        fired = w->next;
        w->next = NULL;
        w->reached(w); /* may free w */
    }
}

int es_projector_watch(struct es_projector *p, struct es_projector_watch *w, bool *reached_out)
{
    assert(w->reached != NULL);
    int err = 0;
    pthread_mutex_lock(&p->lock);
    *reached_out = caught_up(p, w->names, &w->position);
    if (!*reached_out && p->watches_len >= WX_PROJECTOR_WATCHES_MAX) {
        err = WX_ERR_FULL;
    } else if (!*reached_out) {
        w->prev = NULL;
        w->next = p->watches;
        if (p->watches != NULL)
            p->watches->prev = w;
        p->watches = w;
        p->watches_len++;
    }
    pthread_mutex_unlock(&p->lock);
    return err;
}

bool es_projector_unwatch(struct es_projector *p, struct es_projector_watch *w)
{
    pthread_mutex_lock(&p->lock);
    /* Registered exactly when linked: the head has no prev, the rest do. */
    bool registered = w->prev != NULL || p->watches == w;
    if (registered) {
        if (w->prev != NULL)
            w->prev->next = w->next;
        else
            p->watches = w->next;
        if (w->next != NULL)
            w->next->prev = w->prev;
        p->watches_len--;
        w->prev = w->next = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    return registered;
}

/* Applies the next batch after the cursors' common position (not past cap)
 * in one transaction with their checkpoints, and folds what is due. */
static int advance_all(struct es_projector *p, struct advance_ctx *a, bool *progress)
{
    assert(a->len > 0);
    for (size_t i = 0; i < a->len; i++)
        if (fault_injected("projection", a->rts[i]->c->name))
            return WX_ERR_FAULT;
    struct cursor *first = a->curs[0];
    a->p = p;
    a->last = first->pos;
    a->applied = 0;
    int err = simple(p, SQL_BEGIN);
    if (err)
        return err;
    size_t batch = first->behind ? WX_PROJECTOR_CATCHUP_EVENTS_MAX : WX_PROJECTOR_BATCH_EVENTS_MAX;
    struct es_position from = first->pos;
    wx_buf_init(&a->scratch);
    err = es_store_read_log(p->store, &from, batch, apply_one, a);
    wx_buf_free(&a->scratch);
    if (err == READ_STOP)
        err = 0;
    int64_t now_ms = wx_monotonic_ms();
    bool folded[WX_PROJECTOR_CONSUMERS_MAX] = {false};
    for (size_t i = 0; i < a->len && !err; i++) {
        struct es_proj_tx *tx = &a->curs[i]->tx;
        if (fold_due(tx, now_ms)) {
            err = tx->consumer->fold(tx);
            folded[i] = true;
        }
    }
    for (size_t i = 0; i < a->len && !err && a->applied > 0; i++)
        err = set_pos(p, a->curs[i] == &a->rts[i]->live ? SQL_SET_LIVE_POS : SQL_SET_REBUILD_POS,
                      a->rts[i]->c->name, &a->last);
    err = tx_end(p, err);
    if (err)
        return err;
    for (size_t i = 0; i < a->len; i++)
        if (folded[i])
            fold_done(&a->curs[i]->tx, now_ms);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < a->len; i++) {
        a->curs[i]->behind = a->applied == batch;
        a->curs[i]->pos = a->last;
    }
    struct es_projector_watch *fired = p->watches != NULL ? watches_take_reached(p) : NULL;
    pthread_mutex_unlock(&p->lock);
    watches_fire(fired);
    *progress |= a->applied > 0;
    return 0;
}

static int advance(struct es_projector *p, struct consumer_rt *rt, struct cursor *cur,
                   const struct es_position *cap, bool *progress)
{
    struct advance_ctx a = {.rts = {rt}, .curs = {cur}, .len = 1, .cap = cap};
    return advance_all(p, &a, progress);
}

static int swap_sets(struct es_projector *p, struct consumer_rt *rt)
{
    es_proj_tx_finalize(&rt->live.tx);
    es_proj_tx_finalize(&rt->rebuild.tx);
    int64_t staged = rt->rebuild.tx.staged; /* carried over to the live handle */
    char old[ES_SET_BYTES];
    snprintf(old, sizeof(old), "%s", rt->live.tx.set);
    int err = simple(p, SQL_BEGIN_IMMEDIATE);
    if (err)
        return err;
    sqlite3_stmt *st = sqlconn_stmt(&p->wdb, SQL_SWAP);
    if (st == NULL) {
        err = WX_ERR_IO;
    } else {
        sqlconn_bind_text(st, 1, rt->c->name);
        err = sqlconn_run_i64(st, NULL);
    }
    if (!err)
        err = exec_set(p->wdb.db, rt->c->drop, old);
    err = tx_end(p, err);
    if (err)
        return err;
    pthread_mutex_lock(&p->lock);
    es_proj_tx_init(&rt->live.tx, rt->c, p->wdb.db, rt->rebuild.tx.set);
    rt->live.tx.staged = staged;
    rt->live.pos = rt->rebuild.pos;
    rt->rebuild.active = false;
    struct es_projector_watch *fired = p->watches != NULL ? watches_take_reached(p) : NULL;
    pthread_mutex_unlock(&p->lock);
    watches_fire(fired);
    wx_logf(WX_LOG_INFO, "projector: %s rebuilt and swapped in (set %s)", rt->c->name,
            rt->live.tx.set);
    return 0;
}

static void note_failure(struct es_projector *p, struct consumer_rt *rt, int err)
{
    pthread_mutex_lock(&p->lock);
    if (!rt->failed)
        wx_logf(WX_LOG_ERROR, "projector: %s failed: %s; retrying with backoff", rt->c->name,
                wx_strerror(err));
    rt->failed = true;
    snprintf(rt->last_error, sizeof(rt->last_error), "%s", wx_strerror(err));
    rt->backoff_ms = rt->backoff_ms ? rt->backoff_ms * 2 : WX_PROJECTOR_RETRY_MS_MIN;
    if (rt->backoff_ms > WX_PROJECTOR_RETRY_MS_MAX)
        rt->backoff_ms = WX_PROJECTOR_RETRY_MS_MAX;
    rt->retry_at_ms = wx_monotonic_ms() + rt->backoff_ms;
    pthread_mutex_unlock(&p->lock);
}

static void note_success(struct es_projector *p, struct consumer_rt *rt)
{
    if (!rt->failed)
        return;
    pthread_mutex_lock(&p->lock);
    wx_logf(WX_LOG_INFO, "projector: %s recovered", rt->c->name);
    rt->failed = false;
    rt->backoff_ms = 0;
    rt->last_error[0] = '\0';
    pthread_mutex_unlock(&p->lock);
}

int es_projector_step(struct es_projector *p, bool *progress_out)
{
    struct es_position head;
    int err = es_store_head(p->store, &head);
    if (err)
        return err;
    bool progress = false;
    int64_t now = wx_monotonic_ms();
    /* The usual case: every healthy live cursor at the same position. One
     * read and one transaction feed them all; when that fails, the loop
     * below advances them one by one so a failing consumer holds up only
     * itself. */
    struct advance_ctx group = {.len = 0};
    bool aligned = true;
    for (size_t i = 0; i < p->rt_len; i++) {
        struct consumer_rt *rt = &p->rt[i];
        if (rt->failed)
            aligned = false;
        else if (group.len > 0 && es_position_cmp(&rt->live.pos, &group.curs[0]->pos) != 0)
            aligned = false;
        group.rts[group.len] = rt;
        group.curs[group.len++] = &rt->live;
    }
    if (aligned && group.len > 1 && es_position_cmp(&group.curs[0]->pos, &head) < 0 &&
        advance_all(p, &group, &progress) != 0)
        progress = false; /* retried one by one below */
    for (size_t i = 0; i < p->rt_len; i++) {
        struct consumer_rt *rt = &p->rt[i];
        if (rt->failed && now < rt->retry_at_ms)
            continue;
        err = 0;
        if (es_position_cmp(&rt->live.pos, &head) < 0)
            err = advance(p, rt, &rt->live, NULL, &progress);
        /* The rebuild never passes the live checkpoint, so it meets it
         * exactly and the swap keeps the same position. */
        if (!err && rt->rebuild.active && es_position_cmp(&rt->rebuild.pos, &rt->live.pos) < 0)
            err = advance(p, rt, &rt->rebuild, &rt->live.pos, &progress);
        if (!err && rt->rebuild.active && es_position_cmp(&rt->rebuild.pos, &rt->live.pos) == 0) {
            err = swap_sets(p, rt);
            progress = true;
        }
        if (err)
            note_failure(p, rt, err);
        else
            note_success(p, rt);
    }
    *progress_out = progress;
    return 0;
}

int es_projector_reset(struct es_projector *p)
{
    assert(!p->thread_started);
    int err = simple(p, SQL_BEGIN_IMMEDIATE);
    for (size_t i = 0; i < p->rt_len && !err; i++) {
        struct consumer_rt *rt = &p->rt[i];
        es_proj_tx_finalize(&rt->live.tx);
        es_proj_tx_finalize(&rt->rebuild.tx);
        err = exec_set(p->wdb.db, rt->c->drop, "_a");
        if (!err)
            err = exec_set(p->wdb.db, rt->c->drop, "_b");
        if (!err)
            err = exec_set(p->wdb.db, rt->c->schema, "_a");
        sqlite3_stmt *st = sqlconn_stmt(&p->wdb, SQL_RESET);
        if (!err && st != NULL) {
            sqlconn_bind_text(st, 1, rt->c->name);
            err = sqlconn_run_i64(st, NULL);
        }
        es_proj_tx_init(&rt->live.tx, rt->c, p->wdb.db, "_a");
        rt->live.pos = es_position_start();
        rt->rebuild.active = false;
    }
    return tx_end(p, err);
}

/* Folds staged rows outside a batch: those due when the log is quiet, or
 * all of them at close. Each in its own transaction; a failure is logged
 * and left staged for the next try (reads are right either way). */
static void fold_pending(struct es_projector *p, bool all)
{
    int64_t now_ms = wx_monotonic_ms();
    for (size_t i = 0; i < p->rt_len; i++) {
        struct consumer_rt *rt = &p->rt[i];
        struct cursor *curs[] = {&rt->live, &rt->rebuild};
        for (size_t k = 0; k < 2; k++) {
            struct es_proj_tx *tx = &curs[k]->tx;
            if (!curs[k]->active || rt->failed || fault_injected("projection", rt->c->name))
                continue;
            /* At close even rows staged a moment ago are folded. */
            int64_t at_ms = all ? INT64_MAX : now_ms;
            if (!fold_due(tx, at_ms))
                continue;
            int err = simple(p, SQL_BEGIN);
            if (!err)
                err = tx_end(p, tx->consumer->fold(tx));
            if (err)
                wx_logf(WX_LOG_WARN, "projector: folding %s: %s", rt->c->name, wx_strerror(err));
            else
                fold_done(tx, now_ms);
        }
    }
}

/* ---- thread ---- */

static void *projector_main(void *arg)
{
    struct es_projector *p = arg;
    pthread_setname_np(pthread_self(), "wx-projector"); /* for top -H and perf */
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->stopping) {
            /* A job posted just before the stop would otherwise leave its
             * caller waiting on a pointer to its own stack forever. */
            if (p->job != NULL) {
                p->job->err = WX_ERR_CLOSED;
                p->job->done = true;
                p->job = NULL;
                pthread_cond_broadcast(&p->moved);
            }
            pthread_mutex_unlock(&p->lock);
            break;
        }
        struct job *job = p->job;
        pthread_mutex_unlock(&p->lock);
        if (job != NULL) {
            job->err = job->fn(p, p->wdb.db, job->ctx);
            pthread_mutex_lock(&p->lock);
            job->done = true;
            p->job = NULL;
            pthread_cond_broadcast(&p->moved);
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        bool progress = false;
        int err = es_projector_step(p, &progress);
        if (err)
            wx_logf(WX_LOG_ERROR, "projector: reading the log head: %s", wx_strerror(err));
        if (progress) {
            bool behind = false;
            for (size_t i = 0; i < p->rt_len; i++)
                behind |= p->rt[i].live.behind || p->rt[i].rebuild.active;
            if (!behind)
                usleep(WX_PROJECTOR_COALESCE_MS * 1000);
            continue;
        }
        fold_pending(p, false);
        pthread_mutex_lock(&p->lock);
        if (!p->kicked && !p->stopping && p->job == NULL) {
            struct timespec until;
            wx_deadline_after_ms(WX_PROJECTOR_IDLE_MS, &until);
            pthread_cond_timedwait(&p->wake, &p->lock, &until);
        }
        p->kicked = false;
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

int es_projector_start(struct es_projector *p)
{
    if (pthread_create(&p->thread, NULL, projector_main, p) != 0)
        return WX_ERR_NOMEM;
    p->thread_started = true;
    return 0;
}

/* Everything on disk with fsync, the WAL emptied, then the boot marker
 * says clean. Left unmarked when that fails: the next boot rebuilds. */
static void close_synced(struct es_projector *p)
{
    int log_frames = 0, done_frames = 0;
    int rc = sqlconn_exec(&p->wdb, "PRAGMA synchronous=FULL;") == 0
                 ? sqlite3_wal_checkpoint_v2(p->wdb.db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                             &log_frames, &done_frames)
                 : SQLITE_ERROR;
    if (rc != SQLITE_OK || boot_guard_clean(p->db_path) != 0)
        wx_logf(WX_LOG_WARN, "projector: %s not closed cleanly; a reboot would rebuild it",
                p->db_path);
}

void es_projector_close(struct es_projector *p)
{
    if (p == NULL)
        return;
    assert(p->watches == NULL); /* nobody is left to be woken */
    if (p->thread_started) {
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    if (p->wdb.db != NULL)
        fold_pending(p, true); /* a restart then starts with nothing staged */
    if (p->wdb.db != NULL && p->unsynced)
        close_synced(p);
    for (size_t i = 0; i < p->rt_len; i++) {
        es_proj_tx_finalize(&p->rt[i].live.tx);
        es_proj_tx_finalize(&p->rt[i].rebuild.tx);
    }
    sqlconn_close(&p->wdb);
    if (p->db_path != NULL)
        sqlpool_destroy(&p->readers);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->moved);
    free(p->db_path);
    free(p);
}

void es_projector_notify(struct es_projector *p)
{
    pthread_mutex_lock(&p->lock);
    p->kicked = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* ---- queries on the projector ---- */

static struct consumer_rt *find(struct es_projector *p, const char *name)
{
    for (size_t i = 0; i < p->rt_len; i++)
        if (strcmp(p->rt[i].c->name, name) == 0)
            return &p->rt[i];
    return NULL;
}

const struct es_consumer *es_projector_consumer(struct es_projector *p, const char *name)
{
    struct consumer_rt *rt = find(p, name);
    return rt ? rt->c : NULL;
}

struct es_store *es_projector_store(struct es_projector *p)
{
    return p->store;
}

static bool caught_up(struct es_projector *p, const char *const *names,
                      const struct es_position *pos)
{
    for (size_t i = 0; i < p->rt_len; i++) {
        bool wanted = names == NULL;
        for (size_t n = 0; names != NULL && names[n] != NULL && !wanted; n++)
            wanted = strcmp(names[n], p->rt[i].c->name) == 0;
        if (wanted && es_position_cmp(&p->rt[i].live.pos, pos) < 0)
            return false;
    }
    return true;
}

bool es_projector_ready(struct es_projector *p)
{
    bool ready = true;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->rt_len; i++)
        ready &= !p->rt[i].failed;
    pthread_mutex_unlock(&p->lock);
    return ready;
}

int es_projector_position(struct es_projector *p, const char *name, struct es_position *out)
{
    int err = WX_ERR_NOT_FOUND;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->rt_len; i++) {
        if (strcmp(p->rt[i].c->name, name) == 0) {
            *out = p->rt[i].live.pos;
            err = 0;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return err;
}

int es_projector_status(struct es_projector *p, struct wx_arena *arena,
                        struct es_projection_status **list_out, size_t *len_out)
{
    struct es_projection_status *list = wx_arena_alloc(arena, p->rt_len * sizeof(*list) + 1);
    if (list == NULL)
        return WX_ERR_NOMEM;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->rt_len; i++) {
        struct consumer_rt *rt = &p->rt[i];
        list[i].name = rt->c->name;
        list[i].position = rt->live.pos;
        list[i].rebuilding = rt->rebuild.active;
        list[i].rebuild_position = rt->rebuild.pos;
        list[i].status = rt->failed ? "failed" : rt->rebuild.active ? "rebuilding" : "running";
        list[i].last_error = rt->last_error[0] ? wx_arena_strdup(arena, rt->last_error) : NULL;
        for (size_t k = 0; k <= ES_LAG_BUCKETS; k++)
            list[i].lag_counts[k] = atomic_load_explicit(&rt->lag_counts[k], memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->lock);
    *list_out = list;
    *len_out = p->rt_len;
    return 0;
}

int es_projector_job(struct es_projector *p, int (*fn)(struct es_projector *, sqlite3 *, void *),
                     void *ctx)
{
    if (!p->thread_started)
        return fn(p, p->wdb.db, ctx);
    struct job job = {.fn = fn, .ctx = ctx};
    pthread_mutex_lock(&p->lock);
    while (p->job != NULL && !p->stopping) /* one job at a time */
        pthread_cond_wait(&p->moved, &p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        return WX_ERR_CLOSED;
    }
    /* job lives on this stack: the projector thread clears p->job under the
     * lock before it sets done, whether it ran the job or is stopping. */
    p->job = &job;
    pthread_cond_signal(&p->wake);
    while (!job.done)
        pthread_cond_wait(&p->moved, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return job.err;
}

static int start_rebuild(struct es_projector *p, sqlite3 *db, void *ctx)
{
    (void)db;
    struct consumer_rt *rt = ctx;
    if (rt->rebuild.active)
        return WX_ERR_BUSY;
    const char *set = other_set(rt->live.tx.set);
    int err = simple(p, SQL_BEGIN_IMMEDIATE);
    if (err)
        return err;
    err = exec_set(p->wdb.db, rt->c->drop, set);
    if (!err)
        err = exec_set(p->wdb.db, rt->c->schema, set);
    sqlite3_stmt *st = sqlconn_stmt(&p->wdb, SQL_START_REBUILD);
    if (!err && st != NULL) {
        sqlconn_bind_text(st, 1, rt->c->name);
        sqlconn_bind_text(st, 2, set);
        err = sqlconn_run_i64(st, NULL);
    }
    err = tx_end(p, err);
    if (err)
        return err;
    pthread_mutex_lock(&p->lock);
    es_proj_tx_init(&rt->rebuild.tx, rt->c, p->wdb.db, set);
    rt->rebuild.pos = es_position_start();
    rt->rebuild.active = true;
    pthread_mutex_unlock(&p->lock);
    wx_logf(WX_LOG_INFO, "projector: rebuilding %s into set %s", rt->c->name, set);
    return 0;
}

int es_projector_rebuild(struct es_projector *p, const char *name)
{
    struct consumer_rt *rt = find(p, name);
    if (rt == NULL)
        return WX_ERR_NOT_FOUND;
    return es_projector_job(p, start_rebuild, rt);
}

int es_projector_live(sqlite3 *db, const char *name, char set_out[ES_SET_BYTES],
                      struct es_position *position_out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT live_set, position_hi, position_lo FROM projections"
                               " WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    int err = 0;
    if (rc == SQLITE_ROW) {
        snprintf(set_out, ES_SET_BYTES, "%s", (const char *)sqlite3_column_text(st, 0));
        if (position_out != NULL)
            *position_out = (struct es_position){(uint64_t)sqlite3_column_int64(st, 1),
                                                 (uint64_t)sqlite3_column_int64(st, 2)};
    } else {
        err = rc == SQLITE_DONE ? WX_ERR_NOT_FOUND : sqlconn_err(rc);
    }
    sqlite3_finalize(st);
    return err;
}

int es_projector_read_begin(struct es_projector *p, struct sqlconn **conn_out)
{
    int err = sqlpool_acquire(&p->readers, conn_out);
    if (err)
        return err;
    err = sqlconn_exec(*conn_out, "BEGIN");
    if (err)
        sqlpool_release(&p->readers, *conn_out);
    return err;
}

void es_projector_read_end(struct es_projector *p, struct sqlconn *conn)
{
    sqlconn_exec(conn, "COMMIT");
    sqlpool_release(&p->readers, conn);
}

int es_projector_prepare_live(struct sqlconn *c, const char *name, const char *tmpl,
                              sqlite3_stmt **st_out, struct es_position *position_out)
{
    *st_out = NULL;
    char set[ES_SET_BYTES];
    int err = es_projector_live(c->db, name, set, position_out);
    if (err)
        return err == WX_ERR_NOT_FOUND ? WX_ERR_IO : err;
    return es_proj_prepare(c->db, tmpl, set, st_out);
}

struct replay_ctx {
    struct es_proj_tx *tx;
    struct es_position upto;
    struct wx_buf scratch; /* upcast data */
};

static int replay_one(void *arg, const struct es_event *stored)
{
    struct replay_ctx *r = arg;
    if (es_position_cmp(&stored->position, &r->upto) > 0)
        return 0;
    const struct es_consumer *c = r->tx->consumer;
    struct es_event ev;
    void *decoded = NULL;
    int err = es_upcast(stored, &ev, &r->scratch);
    if (!err && c->codec != NULL)
        err = c->codec->decode(&ev, &decoded);
    if (!err)
        err = c->apply(r->tx, &ev, decoded);
    if (c->codec != NULL)
        c->codec->release(decoded);
    return err;
}

int es_projector_replay_stream(struct es_projector *p, sqlite3 *db, const char *consumer,
                               const char *stream_id,
                               int (*forget)(struct es_proj_tx *tx, void *ctx), void *ctx)
{
    const struct es_consumer *c = es_projector_consumer(p, consumer);
    if (c == NULL)
        return WX_ERR_NOT_FOUND;
    char set[ES_SET_BYTES];
    struct replay_ctx r;
    int err = es_projector_live(db, consumer, set, &r.upto);
    if (err)
        return err;
    struct es_proj_tx tx;
    es_proj_tx_init(&tx, c, db, set);
    r.tx = &tx;
    wx_buf_init(&r.scratch);
    err = forget(&tx, ctx);
    if (!err)
        err = es_store_read_stream(p->store, stream_id, 1, WX_STREAM_EVENTS_FOLD_MAX, replay_one,
                                   &r);
    wx_buf_free(&r.scratch);
    es_proj_tx_finalize(&tx);
    return err;
}

int es_projector_forget_sql(struct es_proj_tx *tx, void *forget_sql)
{
    const struct es_forget_sql *f = forget_sql;
    int err = 0;
    for (size_t i = 0; !err && f->sql[i] != NULL; i++) {
        sqlite3_stmt *st;
        err = es_proj_prepare(tx->db, f->sql[i], tx->set, &st);
        if (err)
            return err;
        sqlconn_bind_text(st, 1, f->arg);
        err = sqlconn_err(sqlite3_step(st));
        sqlite3_finalize(st);
    }
    return err;
}
