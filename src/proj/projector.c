/*
 * The projector thread, checkpoints, table-set swaps and consumer leases;
 * see projector.h.
 *
 * On SQLite the read side is one node's, every consumer is projected here
 * and nothing below about leases ever happens (every lease is held). On
 * PostgreSQL (rm_shared) the thread also, every WX_PROJECTOR_LEASE_MS,
 * tries to take the leases of consumers no node projects, reads every
 * checkpoint ("follows" the consumers other nodes project, and learns of
 * rebuilds asked for elsewhere), and while X-Min-Position waiters wait,
 * follows every WX_PROJECTOR_SHARED_POLL_MS. A batch of a consumer begins
 * by locking its checkpoint row, so a one-aggregate rebuild on another node
 * (es_projector_replay_stream) and the holder's batches take turns.
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
#include "store/store.h"

static const char read_schema[] = "CREATE TABLE IF NOT EXISTS projections("
                                  " name " RM_TEXT " PRIMARY KEY,"
                                  " live_set TEXT NOT NULL,"
                                  " position_hi BIGINT NOT NULL,"
                                  " position_lo BIGINT NOT NULL,"
                                  " rebuild_set TEXT,"
                                  " rebuild_hi BIGINT,"
                                  " rebuild_lo BIGINT)" RM_WITHOUT_ROWID ";";

#define ROW_COLUMNS "live_set, position_hi, position_lo, rebuild_set, rebuild_hi, rebuild_lo"

enum {
    SQL_GET,
    SQL_ALL,
    SQL_INSERT,
    SQL_LOCK,
    SQL_SET_LIVE_POS,
    SQL_SET_REBUILD_POS,
    SQL_START_REBUILD,
    SQL_SWAP,
    SQL_RESET,
    SQL_COUNT
};

static const char *const proj_sql[SQL_COUNT] = {
    [SQL_GET] = "SELECT " ROW_COLUMNS " FROM projections WHERE name = ?1",
    [SQL_ALL] = "SELECT " ROW_COLUMNS ", name FROM projections",
    [SQL_INSERT] = "INSERT INTO projections(name, live_set, position_hi, position_lo)"
                   " VALUES (?1, '_a', 0, 0) ON CONFLICT (name) DO NOTHING",
    /* Whoever changes a consumer's rows locks its checkpoint first. */
    [SQL_LOCK] = "SELECT live_set, position_hi, position_lo FROM projections WHERE name = ?1"
                 "{pg: FOR UPDATE}",
    [SQL_SET_LIVE_POS] =
        "UPDATE projections SET position_hi = ?2, position_lo = ?3 WHERE name = ?1",
    [SQL_SET_REBUILD_POS] = "UPDATE projections SET rebuild_hi = ?2, rebuild_lo = ?3"
                            " WHERE name = ?1",
    [SQL_START_REBUILD] = "UPDATE projections SET rebuild_set = CASE live_set WHEN '_a' THEN '_b'"
                          " ELSE '_a' END, rebuild_hi = 0, rebuild_lo = 0"
                          " WHERE name = ?1 AND rebuild_set IS NULL RETURNING rebuild_set",
    [SQL_SWAP] = "UPDATE projections SET live_set = rebuild_set, position_hi = rebuild_hi,"
                 " position_lo = rebuild_lo, rebuild_set = NULL, rebuild_hi = NULL,"
                 " rebuild_lo = NULL WHERE name = ?1",
    [SQL_RESET] = "UPDATE projections SET live_set = '_a', position_hi = 0, position_lo = 0,"
                  " rebuild_set = NULL, rebuild_hi = NULL, rebuild_lo = NULL WHERE name = ?1",
};

/* A consumer's row of the projections table. */
struct row {
    char live[ES_SET_BYTES];
    char rebuild[ES_SET_BYTES]; /* "" when no rebuild runs */
    struct es_position live_pos, rebuild_pos;
};

struct cursor {
    struct es_proj_tx tx;
    struct es_position pos;
    bool active;
    bool behind; /* the last read filled a whole batch */
};

const int64_t es_lag_bucket_ms[ES_LAG_BUCKETS] = {1,   2,   5,   10,   20,   50,
                                                  100, 200, 500, 1000, 5000, 30000};

struct consumer_rt {
    const struct es_consumer *c;
    /* Live events by lag from occurredAt to projected. The projector thread
     * counts outside the lock (once per event) while /metrics and
     * /admin/projections read them: relaxed atomics, each count exact. */
    atomic_uint_fast64_t lag_counts[ES_LAG_BUCKETS + 1];
    struct cursor live;
    struct cursor rebuild;
    /* This node projects it (holds its lease). Otherwise live.pos and
     * rebuild.pos are the holder's, as last read from the database. */
    bool held;
    bool failed;
    char last_error[WX_ERROR_TEXT_BYTES];
    int64_t retry_at_ms; /* monotonic */
    int64_t backoff_ms;
};

struct job {
    int (*fn)(struct es_projector *p, struct rm_conn *conn, void *ctx);
    void *ctx;
    int err;
    bool done;
};

struct es_projector {
    struct es_store *store;
    struct rm_db *db;
    struct rm_conn *w; /* the projector's own: rows, checkpoints, DDL, leases */
    struct rm_stmt *stmts[SQL_COUNT];
    bool shared;           /* several nodes: leases and following */
    int64_t lease_due_ms;  /* monotonic: the next lease attempts and slow follow */
    int64_t follow_due_ms; /* monotonic: the next fast follow, while watches wait */
    bool lease_failing;    /* the last attempt failed (logged once) */
    struct consumer_rt rt[WX_PROJECTOR_CONSUMERS_MAX];
    size_t rt_len;
    /* Events read from the log, once per read however many consumers it
     * fed (es_projector_events_read); the thread adds, /metrics reads. */
    atomic_uint_fast64_t events_read;

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

/* A read transaction and the live sets it sees. */
struct es_live {
    char name[WX_ID_BYTES_MAX + 1];
    char set[ES_SET_BYTES];
    struct es_position pos;
};

struct es_read {
    struct rm_conn *conn;
    struct es_live live[WX_PROJECTOR_CONSUMERS_MAX];
    size_t live_len;
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

void es_proj_tx_init(struct es_proj_tx *tx, const struct es_consumer *c, struct rm_conn *conn,
                     const char *set)
{
    memset(tx, 0, sizeof(*tx));
    tx->consumer = c;
    tx->conn = conn;
    snprintf(tx->set, sizeof(tx->set), "%s", set);
}

void es_proj_tx_finalize(struct es_proj_tx *tx)
{
    for (int i = 0; i < WX_CONSUMER_STMTS_MAX; i++) {
        rm_finalize(tx->stmts[i]);
        tx->stmts[i] = NULL;
    }
}

static int prepare_set(struct rm_conn *conn, const char *tmpl, const char *set, unsigned flags,
                       struct rm_stmt **st_out)
{
    *st_out = NULL;
    char sql[WX_RM_SQL_BYTES_MAX];
    int err = es_proj_sql(tmpl, set, sql, sizeof(sql));
    return err ? err : rm_prepare(conn, sql, flags, st_out);
}

struct rm_stmt *es_proj_stmt(struct es_proj_tx *tx, int id)
{
    assert(id >= 0 && id < WX_CONSUMER_STMTS_MAX && tx->consumer->sql[id] != NULL);
    if (tx->stmts[id] == NULL) {
        unsigned flags = RM_PERSISTENT | (tx->consumer->adds_rows >> id & 1u ? RM_ROWS : 0);
        if (prepare_set(tx->conn, tx->consumer->sql[id], tx->set, flags, &tx->stmts[id]) != 0)
            return NULL;
    } else {
        rm_reset(tx->stmts[id]);
    }
    return tx->stmts[id];
}

int es_proj_prepare(struct rm_conn *conn, const char *tmpl, const char *set,
                    struct rm_stmt **st_out)
{
    return prepare_set(conn, tmpl, set, 0, st_out);
}

static int exec_set(struct rm_conn *conn, const char *tmpl, const char *set)
{
    char sql[WX_RM_SQL_BYTES_MAX];
    int err = es_proj_sql(tmpl, set, sql, sizeof(sql));
    return err ? err : rm_exec(conn, sql);
}

/* A set's schema as this build has it: the tables, created when missing,
 * and the columns a later release added to tables an older one created
 * (es_consumer.columns_added), each added where the catalog does not have
 * it: neither dialect adds a column only if missing in a way the other
 * shares (SQLite has no ADD COLUMN IF NOT EXISTS). */
static int exec_schema(struct rm_conn *conn, const struct es_consumer *c, const char *set)
{
    int err = exec_set(conn, c->schema, set);
    for (const struct es_column_added *add = c->columns_added; !err && add && add->table; add++) {
        char table[WX_RM_NAME_BYTES_MAX], sql[WX_RM_SQL_BYTES_MAX];
        bool exists = false;
        err = es_proj_sql(add->table, set, table, sizeof(table));
        if (!err)
            err = rm_column_exists(conn, table, add->column, &exists);
        if (err || exists)
            continue;
        if ((size_t)snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", table,
                             add->column, add->type) >= sizeof(sql))
            err = WX_ERR_TOO_LARGE;
        else
            err = rm_exec(conn, sql);
    }
    return err;
}

/* The projector's own statement `id`, reset and unbound. */
static struct rm_stmt *stmt(struct es_projector *p, int id)
{
    if (p->stmts[id] == NULL) {
        if (rm_prepare(p->w, proj_sql[id], RM_PERSISTENT, &p->stmts[id]) != 0)
            return NULL;
    } else {
        rm_reset(p->stmts[id]);
    }
    return p->stmts[id];
}

static int run_name(struct es_projector *p, int id, const char *name)
{
    struct rm_stmt *st = stmt(p, id);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, name);
    return rm_run(st);
}

static int set_pos(struct es_projector *p, int id, const char *name, const struct es_position *pos)
{
    struct rm_stmt *st = stmt(p, id);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, name);
    rm_bind_i64(st, 2, (int64_t)pos->hi);
    rm_bind_i64(st, 3, (int64_t)pos->lo);
    return rm_run(st);
}

static bool set_ok(const char *set)
{
    return set != NULL && (strcmp(set, "_a") == 0 || strcmp(set, "_b") == 0);
}

static struct es_position pos_at(struct rm_stmt *st, int col)
{
    return (struct es_position){(uint64_t)rm_column_i64(st, col),
                                (uint64_t)rm_column_i64(st, col + 1)};
}

/* The row at st's cursor (ROW_COLUMNS) into r. */
static int row_from(struct rm_stmt *st, struct row *r)
{
    memset(r, 0, sizeof(*r));
    const char *live = rm_column_text(st, 0), *rebuild = rm_column_text(st, 3);
    if (!set_ok(live) || (rebuild != NULL && !set_ok(rebuild)))
        return WX_ERR_CORRUPT;
    snprintf(r->live, sizeof(r->live), "%s", live);
    r->live_pos = pos_at(st, 1);
    if (rebuild != NULL) {
        snprintf(r->rebuild, sizeof(r->rebuild), "%s", rebuild);
        r->rebuild_pos = pos_at(st, 4);
    }
    return 0;
}

/* The consumer's row as committed (or as this transaction sees it). */
static int row_get(struct es_projector *p, const char *name, struct row *r)
{
    struct rm_stmt *st = stmt(p, SQL_GET);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, name);
    bool found = false;
    int err = rm_step(st, &found);
    if (!err)
        err = found ? row_from(st, r) : WX_ERR_NOT_FOUND;
    rm_reset(st);
    return err;
}

/* ---- opening ---- */

/* In the open's DDL transaction: the row exists and so do the tables of
 * its sets. */
static int ensure_consumer(struct es_projector *p, struct consumer_rt *rt)
{
    struct row r;
    int err = run_name(p, SQL_INSERT, rt->c->name);
    if (!err)
        err = row_get(p, rt->c->name, &r);
    if (!err)
        err = exec_schema(p->w, rt->c, r.live);
    if (!err && r.rebuild[0] != '\0')
        err = exec_schema(p->w, rt->c, r.rebuild);
    return err;
}

/* Takes up the consumer as its row says: this node projects it from now. */
static int load_consumer(struct es_projector *p, struct consumer_rt *rt)
{
    struct row r;
    int err = row_get(p, rt->c->name, &r);
    if (err)
        return err;
    es_proj_tx_finalize(&rt->live.tx);
    es_proj_tx_finalize(&rt->rebuild.tx);
    pthread_mutex_lock(&p->lock);
    es_proj_tx_init(&rt->live.tx, rt->c, p->w, r.live);
    rt->live.pos = r.live_pos;
    rt->live.active = true;
    rt->rebuild.active = r.rebuild[0] != '\0';
    es_proj_tx_init(&rt->rebuild.tx, rt->c, p->w, rt->rebuild.active ? r.rebuild : "_a");
    rt->rebuild.pos = r.rebuild_pos;
    /* A holder that ended without a clean stop may have left rows staged
     * (kill -9 between folds). Counting one makes the first quiet moment,
     * or the next clean stop, fold them even if no event comes; folding an
     * empty stage costs one small transaction. */
    if (rt->c->fold != NULL) {
        rt->live.tx.staged = 1;
        rt->rebuild.tx.staged = rt->rebuild.active ? 1 : 0;
    }
    rt->held = true;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* ---- leases ---- */

static void lease_lost(struct es_projector *p, struct consumer_rt *rt)
{
    es_proj_tx_finalize(&rt->live.tx);
    es_proj_tx_finalize(&rt->rebuild.tx);
    pthread_mutex_lock(&p->lock);
    rt->held = false;
    rt->failed = false;
    rt->last_error[0] = '\0';
    rt->backoff_ms = 0;
    pthread_mutex_unlock(&p->lock);
    wx_logf(WX_LOG_WARN, "projector: %s: lease lost; another node may project it now", rt->c->name);
}

/* Tries the lease of every consumer no one here projects, and notices the
 * ones whose session was lost. */
static void leases_refresh(struct es_projector *p)
{
    for (size_t i = 0; i < p->rt_len; i++) {
        struct consumer_rt *rt = &p->rt[i];
        if (rt->held && !rm_lease_held(p->w, rt->c->name))
            lease_lost(p, rt);
        if (rt->held)
            continue;
        bool held = false;
        int err = rm_lease_try(p->w, rt->c->name, &held);
        if (!err && held && (err = load_consumer(p, rt)) != 0)
            rm_lease_release(p->w, rt->c->name);
        if (err && !p->lease_failing)
            wx_logf(WX_LOG_WARN, "projector: %s: taking its lease: %s (trying again every %d ms)",
                    rt->c->name, wx_strerror(err), WX_PROJECTOR_LEASE_MS);
        p->lease_failing = err != 0;
        if (err)
            return; /* PostgreSQL is away: the others would fail alike */
        if (held)
            wx_logf(WX_LOG_INFO, "projector: %s is projected on this node from %llu.%llu",
                    rt->c->name, (unsigned long long)rt->live.pos.hi,
                    (unsigned long long)rt->live.pos.lo);
    }
}

static struct consumer_rt *find(struct es_projector *p, const char *name)
{
    for (size_t i = 0; i < p->rt_len; i++)
        if (strcmp(p->rt[i].c->name, name) == 0)
            return &p->rt[i];
    return NULL;
}

static void watches_fire(struct es_projector_watch *fired);
static struct es_projector_watch *watches_take_reached(struct es_projector *p);

/* One row of SQL_ALL: a consumer projected elsewhere moves to where its
 * holder committed; one projected here learns of a rebuild asked for on
 * another node. */
static void follow_row(struct es_projector *p, struct consumer_rt *rt, const struct row *r)
{
    pthread_mutex_lock(&p->lock);
    if (!rt->held) {
        rt->live.pos = r->live_pos;
        snprintf(rt->live.tx.set, sizeof(rt->live.tx.set), "%s", r->live);
        rt->rebuild.active = r->rebuild[0] != '\0';
        rt->rebuild.pos = r->rebuild_pos;
    } else if (r->rebuild[0] != '\0' && !rt->rebuild.active) {
        es_proj_tx_init(&rt->rebuild.tx, rt->c, p->w, r->rebuild);
        rt->rebuild.pos = r->rebuild_pos;
        rt->rebuild.active = true;
        wx_logf(WX_LOG_INFO, "projector: rebuilding %s into set %s (asked for on another node)",
                rt->c->name, r->rebuild);
    }
    pthread_mutex_unlock(&p->lock);
}

/* Reads every checkpoint (SQL_ALL), then wakes the watches they reach. */
static int follow(struct es_projector *p)
{
    struct rm_stmt *st = stmt(p, SQL_ALL);
    if (st == NULL)
        return WX_ERR_IO;
    bool found;
    int err;
    while ((err = rm_step(st, &found)) == 0 && found) {
        struct consumer_rt *rt = find(p, rm_column_text(st, 6));
        struct row r;
        if (rt != NULL && (err = row_from(st, &r)) != 0)
            break;
        if (rt != NULL)
            follow_row(p, rt, &r);
    }
    rm_reset(st);
    pthread_mutex_lock(&p->lock);
    struct es_projector_watch *fired = p->watches != NULL ? watches_take_reached(p) : NULL;
    pthread_mutex_unlock(&p->lock);
    watches_fire(fired);
    return err;
}

/* Shared read side: leases and the slow follow when due, the fast follow
 * while anyone waits for a position. */
static void shared_upkeep(struct es_projector *p)
{
    int64_t now = wx_monotonic_ms();
    bool slow = now >= p->lease_due_ms;
    if (slow) {
        leases_refresh(p);
        p->lease_due_ms = now + WX_PROJECTOR_LEASE_MS;
    }
    pthread_mutex_lock(&p->lock);
    bool waiting = p->watches != NULL && now >= p->follow_due_ms;
    pthread_mutex_unlock(&p->lock);
    if (slow || waiting) {
        p->follow_due_ms = now + WX_PROJECTOR_SHARED_POLL_MS;
        int err = follow(p);
        if (err)
            wx_logf(WX_LOG_WARN, "projector: reading the checkpoints: %s", wx_strerror(err));
    }
}

static void projector_free(struct es_projector *p)
{
    for (size_t i = 0; i < p->rt_len; i++) {
        es_proj_tx_finalize(&p->rt[i].live.tx);
        es_proj_tx_finalize(&p->rt[i].rebuild.tx);
    }
    for (int i = 0; i < SQL_COUNT; i++)
        rm_finalize(p->stmts[i]);
    rm_conn_close(p->w);
    rm_close(p->db);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->moved);
    free(p);
}

/* The schema and every consumer's row and tables, then the consumers this
 * node may project. */
static int open_consumers(struct es_projector *p, const struct es_projector_config *config)
{
    int err = rm_begin(p->w, RM_TX_DDL);
    if (!err)
        err = rm_exec(p->w, read_schema);
    for (size_t i = 0; i < config->consumers_len && !err; i++) {
        p->rt[i].c = config->consumers[i];
        p->rt_len++;
        err = ensure_consumer(p, &p->rt[i]);
    }
    err = rm_end(p->w, err);
    for (size_t i = 0; i < p->rt_len && !err; i++) {
        es_proj_tx_init(&p->rt[i].live.tx, p->rt[i].c, p->w, "_a");
        es_proj_tx_init(&p->rt[i].rebuild.tx, p->rt[i].c, p->w, "_a");
        if (!p->shared)
            err = load_consumer(p, &p->rt[i]);
    }
    if (!err && p->shared) {
        leases_refresh(p);
        p->lease_due_ms = wx_monotonic_ms() + WX_PROJECTOR_LEASE_MS;
        err = follow(p);
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
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->moved, NULL);
    int err = rm_open(config->backend, &config->rm, &p->db);
    if (!err) {
        p->shared = rm_shared(p->db);
        err = rm_conn_open(p->db, RM_CONN_WRITER, &p->w);
    }
    if (!err)
        err = open_consumers(p, config);
    if (err) {
        wx_logf(WX_LOG_ERROR, "projector: cannot open the read side: %s", wx_strerror(err));
        projector_free(p);
        return err;
    }
    *out = p;
    return 0;
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
    atomic_fetch_add_explicit(&a->p->events_read, 1, memory_order_relaxed);
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

/* Just after a write transaction began: this node still holds the leases
 * of these consumers (the begin may have found the session lost and made
 * a new one, without them), and on a shared read side their checkpoints
 * are locked, so nobody else changes their rows until the commit. */
static int claim(struct es_projector *p, struct consumer_rt *const *rts, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!rm_lease_held(p->w, rts[i]->c->name)) {
            lease_lost(p, rts[i]);
            return WX_ERR_BUSY;
        }
        if (!p->shared || (i > 0 && rts[i] == rts[i - 1]))
            continue;
        struct rm_stmt *st = stmt(p, SQL_LOCK);
        if (st == NULL)
            return WX_ERR_IO;
        rm_bind_text(st, 1, rts[i]->c->name);
        int err = rm_run(st);
        if (err)
            return err;
    }
    return 0;
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
        /* On a shared read side the thread follows the other nodes'
         * checkpoints from now on; it may be asleep for a while. */
        if (p->shared && p->watches_len == 1) {
            p->kicked = true;
            pthread_cond_signal(&p->wake);
        }
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

/* The batch after the read: folds what is due and moves the checkpoints,
 * still inside the transaction. *folded_out marks the folded cursors. */
static int batch_finish(struct es_projector *p, struct advance_ctx *a, int64_t now_ms,
                        bool *folded_out)
{
    int err = 0;
    for (size_t i = 0; i < a->len && !err; i++) {
        struct es_proj_tx *tx = &a->curs[i]->tx;
        if (fold_due(tx, now_ms)) {
            err = tx->consumer->fold(tx);
            folded_out[i] = true;
        }
    }
    for (size_t i = 0; i < a->len && !err && a->applied > 0; i++)
        err = set_pos(p, a->curs[i] == &a->rts[i]->live ? SQL_SET_LIVE_POS : SQL_SET_REBUILD_POS,
                      a->rts[i]->c->name, &a->last);
    return err;
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
    int err = rm_begin(p->w, RM_TX_WRITE);
    if (err)
        return err;
    err = claim(p, a->rts, a->len);
    size_t batch = first->behind ? WX_PROJECTOR_CATCHUP_EVENTS_MAX : WX_PROJECTOR_BATCH_EVENTS_MAX;
    struct es_position from = first->pos;
    wx_buf_init(&a->scratch);
    if (!err)
        err = es_store_read_log(p->store, &from, batch, apply_one, a);
    wx_buf_free(&a->scratch);
    if (err == READ_STOP)
        err = 0;
    int64_t now_ms = wx_monotonic_ms();
    bool folded[WX_PROJECTOR_CONSUMERS_MAX] = {false};
    if (!err)
        err = batch_finish(p, a, now_ms, folded);
    int64_t delay_ms = wx_fault_value("projector-commit-delay-ms");
    if (!err && delay_ms > 0) /* tests: readers between the apply and the commit */
        usleep((useconds_t)(delay_ms > 10000 ? 10000 : delay_ms) * 1000);
    err = rm_end(p->w, err);
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
    int err = rm_begin(p->w, RM_TX_DDL);
    if (err)
        return err;
    struct consumer_rt *rts[] = {rt};
    err = claim(p, rts, 1);
    if (!err)
        err = run_name(p, SQL_SWAP, rt->c->name);
    if (!err)
        err = exec_set(p->w, rt->c->drop, old);
    err = rm_end(p->w, err);
    if (err)
        return err;
    pthread_mutex_lock(&p->lock);
    es_proj_tx_init(&rt->live.tx, rt->c, p->w, rt->rebuild.tx.set);
    rt->live.tx.staged = staged;
    rt->live.pos = rt->rebuild.pos;
    rt->rebuild.active = false;
    struct es_projector_watch *fired = p->watches != NULL ? watches_take_reached(p) : NULL;
    pthread_mutex_unlock(&p->lock);
    watches_fire(fired);
    wx_logf(WX_LOG_INFO, "projector: %s rebuilt and swapped in (set %s)", rt->c->name,
            rt->live.tx.set);
    if (rt->c->swapped != NULL)
        rt->c->swapped();
    return 0;
}

static void note_failure(struct es_projector *p, struct consumer_rt *rt, int err)
{
    if (!rt->held)
        return; /* the lease went; another node takes over */
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

/* One consumer on its own: its live cursor to the head (when live is
 * set: a consumer retried after a failure), its rebuild to the live
 * checkpoint, then the swap. */
static int step_one(struct es_projector *p, struct consumer_rt *rt, const struct es_position *head,
                    bool live, bool *progress)
{
    int err = 0;
    if (live && es_position_cmp(&rt->live.pos, head) < 0)
        err = advance(p, rt, &rt->live, NULL, progress);
    /* The rebuild never passes the live checkpoint, so it meets it
     * exactly and the swap keeps the same position. */
    if (!err && rt->held && rt->rebuild.active &&
        es_position_cmp(&rt->rebuild.pos, &rt->live.pos) < 0)
        err = advance(p, rt, &rt->rebuild, &rt->live.pos, progress);
    if (!err && rt->held && rt->rebuild.active &&
        es_position_cmp(&rt->rebuild.pos, &rt->live.pos) == 0) {
        err = swap_sets(p, rt);
        *progress = true;
    }
    return err;
}

/* The healthy live cursors share reads. Taken from the lowest position
 * up, the cursors at one position advance together, in one read and one
 * transaction, up to the next cursor's position at most (cap); a group
 * that reaches it takes in the cursors there and goes on with them in the
 * same step, so groups that drifted apart (one failed for a while, one
 * was added by an upgrade) meet even under steady load and from then on
 * read the log once for all. Cursors at the head are caps too, so nobody
 * overtakes them. A group short of its cap (a whole batch read) leaves
 * the next group to advance on its own, so no group waits for another.
 * *grouped_out marks the consumers handled here; a group whose
 * transaction fails is left unmarked to advance one by one, so a failing
 * consumer holds up only itself. */
static void advance_groups(struct es_projector *p, const struct es_position *head,
                           bool *grouped_out, bool *progress)
{
    size_t order[WX_PROJECTOR_CONSUMERS_MAX];
    struct es_position at[WX_PROJECTOR_CONSUMERS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < p->rt_len; i++) {
        const struct consumer_rt *rt = &p->rt[i];
        if (!rt->held || rt->failed)
            continue;
        size_t k = n++;
        for (; k > 0 && es_position_cmp(&at[k - 1], &rt->live.pos) > 0; k--) {
            at[k] = at[k - 1];
            order[k] = order[k - 1];
        }
        at[k] = rt->live.pos;
        order[k] = i;
    }
    struct advance_ctx group = {.len = 0};
    size_t first = 0; /* the group's first member in order[] */
    for (size_t next = 0; next < n;) {
        const struct es_position pos = at[next];
        for (; next < n && es_position_cmp(&at[next], &pos) == 0; next++) {
            /* In registration order, the order claim locks checkpoints in
             * everywhere (a stream's replay too): two nodes never wait on
             * each other's locks. */
            size_t k = group.len++;
            for (; k > 0 && group.rts[k - 1] > &p->rt[order[next]]; k--) {
                group.rts[k] = group.rts[k - 1];
                group.curs[k] = group.curs[k - 1];
            }
            group.rts[k] = &p->rt[order[next]];
            group.curs[k] = &p->rt[order[next]].live;
        }
        bool reached = false;
        if (es_position_cmp(&pos, head) < 0) {
            group.cap = next < n ? &at[next] : NULL;
            if (advance_all(p, &group, progress) != 0) {
                group.len = 0;
                first = next;
                continue; /* its members go one by one */
            }
            reached = group.cap != NULL && es_position_cmp(&group.curs[0]->pos, group.cap) == 0;
        }
        for (size_t k = first; k < next; k++)
            grouped_out[order[k]] = true;
        if (!reached) {
            group.len = 0;
            first = next;
        }
    }
}

int es_projector_step(struct es_projector *p, bool *progress_out)
{
    struct es_position head;
    int err = es_store_head(p->store, &head);
    if (err)
        return err;
    bool progress = false;
    int64_t now = wx_monotonic_ms();
    bool grouped[WX_PROJECTOR_CONSUMERS_MAX] = {false};
    advance_groups(p, &head, grouped, &progress);
    for (size_t i = 0; i < p->rt_len; i++) {
        struct consumer_rt *rt = &p->rt[i];
        if (!rt->held || (rt->failed && now < rt->retry_at_ms))
            continue;
        err = step_one(p, rt, &head, !grouped[i], &progress);
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
    for (size_t i = 0; i < p->rt_len; i++) {
        if (!p->rt[i].held) {
            wx_logf(WX_LOG_ERROR,
                    "projector: %s is projected by a running node; rebuild it"
                    " there (POST /admin/projections/%s/rebuild)",
                    p->rt[i].c->name, p->rt[i].c->name);
            return WX_ERR_BUSY;
        }
    }
    int err = rm_begin(p->w, RM_TX_DDL);
    for (size_t i = 0; i < p->rt_len && !err; i++) {
        struct consumer_rt *rt = &p->rt[i];
        es_proj_tx_finalize(&rt->live.tx);
        es_proj_tx_finalize(&rt->rebuild.tx);
        err = exec_set(p->w, rt->c->drop, "_a");
        if (!err)
            err = exec_set(p->w, rt->c->drop, "_b");
        if (!err)
            err = exec_set(p->w, rt->c->schema, "_a");
        if (!err)
            err = run_name(p, SQL_RESET, rt->c->name);
        es_proj_tx_init(&rt->live.tx, rt->c, p->w, "_a");
        rt->live.pos = es_position_start();
        rt->rebuild.active = false;
    }
    return rm_end(p->w, err);
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
            if (!rt->held || !curs[k]->active || rt->failed ||
                fault_injected("projection", rt->c->name))
                continue;
            /* At close even rows staged a moment ago are folded. */
            int64_t at_ms = all ? INT64_MAX : now_ms;
            if (!fold_due(tx, at_ms))
                continue;
            struct consumer_rt *rts[] = {rt};
            int err = rm_begin(p->w, RM_TX_WRITE);
            if (!err)
                err = claim(p, rts, 1);
            if (!err)
                err = tx->consumer->fold(tx);
            err = rm_end(p->w, err);
            if (err)
                wx_logf(WX_LOG_WARN, "projector: folding %s: %s", rt->c->name, wx_strerror(err));
            else
                fold_done(tx, now_ms);
        }
    }
}

/* ---- thread ---- */

static size_t held_count(struct es_projector *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->rt_len; i++)
        n += p->rt[i].held;
    return n;
}

/* How long the thread sleeps when nothing is left to do. The writer wakes
 * it after each commit of this node; what other nodes commit, and the
 * checkpoints they move, are looked at every SHARED_POLL_MS while this
 * node projects something or someone waits for a position. */
static int64_t idle_ms(struct es_projector *p)
{
    if (!p->shared)
        return WX_PROJECTOR_IDLE_MS;
    if (held_count(p) > 0 || p->watches != NULL)
        return WX_PROJECTOR_SHARED_POLL_MS;
    int64_t until = p->lease_due_ms - wx_monotonic_ms();
    return until < 1 ? 1 : until;
}

/* Runs a job posted by another thread; true when there was one. */
static bool run_job(struct es_projector *p)
{
    pthread_mutex_lock(&p->lock);
    struct job *job = p->job;
    pthread_mutex_unlock(&p->lock);
    if (job == NULL)
        return false;
    job->err = job->fn(p, p->w, job->ctx);
    pthread_mutex_lock(&p->lock);
    job->done = true;
    p->job = NULL;
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
    return true;
}

/* Under the lock: true when the thread must end. A job posted just before
 * the stop would otherwise leave its caller waiting on a pointer to its
 * own stack forever. */
static bool stop_requested(struct es_projector *p)
{
    if (!p->stopping)
        return false;
    if (p->job != NULL) {
        p->job->err = WX_ERR_CLOSED;
        p->job->done = true;
        p->job = NULL;
        pthread_cond_broadcast(&p->moved);
    }
    return true;
}

static void *projector_main(void *arg)
{
    struct es_projector *p = arg;
    pthread_setname_np(pthread_self(), "wx-projector"); /* for top -H and perf */
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool stop = stop_requested(p);
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        if (run_job(p))
            continue;
        if (p->shared)
            shared_upkeep(p);
        bool progress = false;
        int err = held_count(p) > 0 ? es_projector_step(p, &progress) : 0;
        if (err)
            wx_logf(WX_LOG_ERROR, "projector: reading the log head: %s", wx_strerror(err));
        if (progress) {
            bool behind = false;
            for (size_t i = 0; i < p->rt_len; i++)
                behind |= p->rt[i].held && (p->rt[i].live.behind || p->rt[i].rebuild.active);
            if (!behind)
                usleep(WX_PROJECTOR_COALESCE_MS * 1000);
            continue;
        }
        fold_pending(p, false);
        pthread_mutex_lock(&p->lock);
        if (!p->kicked && !p->stopping && p->job == NULL) {
            struct timespec until;
            wx_deadline_after_ms(idle_ms(p), &until);
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
    fold_pending(p, true); /* a restart then starts with nothing staged */
    projector_free(p);
}

void es_projector_notify(struct es_projector *p)
{
    pthread_mutex_lock(&p->lock);
    p->kicked = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

/* ---- queries on the projector ---- */

const struct es_consumer *es_projector_consumer(struct es_projector *p, const char *name)
{
    struct consumer_rt *rt = find(p, name);
    return rt ? rt->c : NULL;
}

struct es_store *es_projector_store(struct es_projector *p)
{
    return p->store;
}

struct rm_db *es_projector_rm(struct es_projector *p)
{
    return p->db;
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

int es_projector_await(struct es_projector *p, const struct es_position *head, int64_t timeout_ms)
{
    assert(!p->thread_started);
    int64_t deadline = wx_monotonic_ms() + timeout_ms;
    for (;;) {
        int err = p->shared ? follow(p) : 0;
        if (err)
            return err;
        if (caught_up(p, NULL, head))
            return 0;
        if (wx_monotonic_ms() >= deadline)
            return WX_ERR_BUSY;
        usleep(WX_PROJECTOR_SHARED_POLL_MS * 1000);
    }
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

uint64_t es_projector_events_read(struct es_projector *p)
{
    return atomic_load_explicit(&p->events_read, memory_order_relaxed);
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
        list[i].here = rt->held;
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

int es_projector_job(struct es_projector *p,
                     int (*fn)(struct es_projector *p, struct rm_conn *conn, void *ctx), void *ctx)
{
    if (!p->thread_started)
        return fn(p, p->w, ctx);
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

int es_projector_replay_job(struct es_projector *p,
                            int (*fn)(struct es_projector *p, struct rm_conn *conn, void *ctx),
                            void *ctx)
{
    int err = es_projector_job(p, fn, ctx);
    for (int tries = 1; err == WX_ERR_BUSY && tries < WX_PROJECTOR_JOB_TRIES; tries++) {
        usleep((useconds_t)(WX_PROJECTOR_JOB_RETRY_MS * tries) * 1000);
        err = es_projector_job(p, fn, ctx);
    }
    return err;
}

/* Marks the consumer's row as rebuilding into its other set, whose tables
 * it makes afresh; *set_out names it. WX_ERR_BUSY when a rebuild runs. */
static int rebuild_mark(struct es_projector *p, struct consumer_rt *rt, char set_out[ES_SET_BYTES])
{
    struct rm_stmt *st = stmt(p, SQL_START_REBUILD);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, rt->c->name);
    bool marked = false;
    int err = rm_step(st, &marked);
    if (!err && marked && !set_ok(rm_column_text(st, 0)))
        err = WX_ERR_CORRUPT;
    if (!err && marked)
        snprintf(set_out, ES_SET_BYTES, "%s", rm_column_text(st, 0));
    if (!err) {
        bool more;
        err = rm_step(st, &more); /* SQLite writes RETURNING rows as it steps */
    }
    rm_reset(st);
    if (!err && !marked)
        err = WX_ERR_BUSY;
    if (!err)
        err = exec_set(p->w, rt->c->drop, set_out);
    if (!err)
        err = exec_set(p->w, rt->c->schema, set_out);
    return err;
}

static int start_rebuild(struct es_projector *p, struct rm_conn *conn, void *ctx)
{
    (void)conn;
    struct consumer_rt *rt = ctx;
    if (rt->held && rt->rebuild.active)
        return WX_ERR_BUSY;
    char set[ES_SET_BYTES] = "";
    int err = rm_begin(p->w, RM_TX_DDL);
    if (!err)
        err = rebuild_mark(p, rt, set);
    err = rm_end(p->w, err);
    if (err)
        return err;
    wx_logf(WX_LOG_INFO, "projector: rebuilding %s into set %s%s", rt->c->name, set,
            rt->held ? "" : " (on the node that projects it)");
    if (!rt->held)
        return 0; /* its holder learns of it when it next reads the checkpoints */
    pthread_mutex_lock(&p->lock);
    es_proj_tx_finalize(&rt->rebuild.tx);
    es_proj_tx_init(&rt->rebuild.tx, rt->c, p->w, set);
    rt->rebuild.pos = es_position_start();
    rt->rebuild.active = true;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int es_projector_rebuild(struct es_projector *p, const char *name)
{
    struct consumer_rt *rt = find(p, name);
    if (rt == NULL)
        return WX_ERR_NOT_FOUND;
    return es_projector_job(p, start_rebuild, rt);
}

/* ---- reads ---- */

int es_projector_read_begin(struct es_projector *p, struct es_read **out)
{
    struct es_read *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return WX_ERR_NOMEM;
    int err = rm_read_acquire(p->db, &r->conn);
    if (err) {
        free(r);
        return err;
    }
    err = rm_begin(r->conn, RM_TX_READ);
    struct rm_stmt *st = NULL;
    if (!err)
        err = rm_prepare(r->conn, proj_sql[SQL_ALL], 0, &st);
    bool found;
    while (!err && (err = rm_step(st, &found)) == 0 && found) {
        struct es_live *l = &r->live[r->live_len];
        const char *set = rm_column_text(st, 0), *name = rm_column_text(st, 6);
        if (find(p, name) == NULL)
            continue; /* a read model of another build of wallex */
        if (!set_ok(set) || r->live_len == WX_PROJECTOR_CONSUMERS_MAX) {
            err = WX_ERR_CORRUPT;
            break;
        }
        snprintf(l->name, sizeof(l->name), "%s", name);
        snprintf(l->set, sizeof(l->set), "%s", set);
        l->pos = pos_at(st, 1);
        r->live_len++;
    }
    rm_finalize(st);
    if (err) {
        es_projector_read_end(p, r);
        return err;
    }
    *out = r;
    return 0;
}

void es_projector_read_end(struct es_projector *p, struct es_read *r)
{
    if (r == NULL)
        return;
    rm_end(r->conn, 0); /* a read transaction: nothing to keep or lose */
    rm_read_release(p->db, r->conn);
    free(r);
}

static const struct es_live *live_of(struct es_read *r, const char *name)
{
    for (size_t i = 0; i < r->live_len; i++)
        if (strcmp(r->live[i].name, name) == 0)
            return &r->live[i];
    return NULL;
}

int es_read_position(struct es_read *r, const char *name, struct es_position *position_out)
{
    const struct es_live *l = live_of(r, name);
    if (l == NULL)
        return WX_ERR_IO; /* every consumer has its row from the projector's open */
    *position_out = l->pos;
    return 0;
}

int es_projector_prepare_live(struct es_read *r, const char *name, const char *tmpl,
                              struct rm_stmt **st_out, struct es_position *position_out)
{
    *st_out = NULL;
    const struct es_live *l = live_of(r, name);
    if (l == NULL)
        return WX_ERR_IO;
    if (position_out != NULL)
        *position_out = l->pos;
    return es_proj_prepare(r->conn, tmpl, l->set, st_out);
}

int es_projector_id_page(struct es_projector *p, const char *name, const char *tmpl,
                         const char *after, size_t limit, es_page_row_fn row, struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st;
    err = es_projector_prepare_live(r, name, tmpl, &st, NULL);
    if (err)
        goto out_end;
    rm_bind_text(st, 1, after ? after : "");
    rm_bind_i64(st, 2, (int64_t)limit + 1);
    wx_buf_adds(out, "{\"data\":[");
    size_t n = 0;
    char last[WX_ID_BYTES_MAX + 1] = "";
    bool more = false;
    while (!err && (err = rm_step(st, &more)) == 0 && more && n < limit) {
        const char *id = rm_column_text(st, 0);
        snprintf(last, sizeof(last), "%s", id ? id : "");
        if (n++ > 0)
            wx_buf_addc(out, ',');
        err = row(st, out);
    }
    wx_buf_adds(out, "],\"nextCursor\":");
    if (!err && more) { /* the row past the page's limit */
        wx_buf_adds(out, "\"i");
        wx_buf_adds(out, last);
        wx_buf_adds(out, "\"}");
    } else {
        wx_buf_adds(out, "null}");
    }
    rm_finalize(st);
out_end:
    es_projector_read_end(p, r);
    return err;
}

/* ---- one aggregate again ---- */

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

/* Locks the consumer's checkpoint in conn's transaction and reads its live
 * set and position. */
static int lock_live(struct es_projector *p, struct rm_conn *conn, const char *name,
                     char set_out[ES_SET_BYTES], struct es_position *pos_out)
{
    struct rm_stmt *st;
    int err = conn == p->w ? ((st = stmt(p, SQL_LOCK)) ? 0 : WX_ERR_IO)
                           : rm_prepare(conn, proj_sql[SQL_LOCK], 0, &st);
    if (err)
        return err;
    rm_bind_text(st, 1, name);
    bool found = false;
    err = rm_step(st, &found);
    if (!err && (!found || !set_ok(rm_column_text(st, 0))))
        err = WX_ERR_CORRUPT;
    if (!err) {
        snprintf(set_out, ES_SET_BYTES, "%s", rm_column_text(st, 0));
        *pos_out = pos_at(st, 1);
    }
    if (conn == p->w)
        rm_reset(st);
    else
        rm_finalize(st);
    return err;
}

int es_projector_replay_stream(struct es_projector *p, struct rm_conn *conn, const char *consumer,
                               const char *stream_id,
                               int (*forget)(struct es_proj_tx *tx, void *ctx), void *ctx)
{
    const struct es_consumer *c = es_projector_consumer(p, consumer);
    if (c == NULL)
        return WX_ERR_NOT_FOUND;
    char set[ES_SET_BYTES];
    struct replay_ctx r;
    int err = lock_live(p, conn, consumer, set, &r.upto);
    if (err)
        return err;
    struct es_proj_tx tx;
    es_proj_tx_init(&tx, c, conn, set);
    r.tx = &tx;
    wx_buf_init(&r.scratch);
    err = forget(&tx, ctx);
    if (!err)
        err =
            es_store_read_stream(p->store, stream_id, 1, WX_STREAM_EVENTS_FOLD_MAX, replay_one, &r);
    wx_buf_free(&r.scratch);
    es_proj_tx_finalize(&tx);
    return err;
}

int es_projector_lock_live(struct es_projector *p, struct rm_conn *conn, const char *consumer,
                           char set_out[ES_SET_BYTES], struct es_position *position_out)
{
    if (es_projector_consumer(p, consumer) == NULL)
        return WX_ERR_NOT_FOUND;
    return lock_live(p, conn, consumer, set_out, position_out);
}

int es_projector_forget_sql(struct es_proj_tx *tx, void *forget_sql)
{
    const struct es_forget_sql *f = forget_sql;
    int err = 0;
    for (size_t i = 0; !err && f->sql[i] != NULL; i++) {
        struct rm_stmt *st;
        err = es_proj_prepare(tx->conn, f->sql[i], tx->set, &st);
        if (err)
            return err;
        rm_bind_text(st, 1, f->arg);
        err = rm_run(st);
        rm_finalize(st);
    }
    return err;
}
