/*
 * The read-model database on PostgreSQL: a schema of its own in the log's
 * database (<pg-schema>_read; the delivery state in <pg-schema>_bus), so
 * every node answers every query and users can report on the read models
 * with SQL.
 *
 * Write transactions run in libpq's pipeline mode: rm_run sends a statement
 * without waiting for its answer, and the answers are read when a row is
 * needed (rm_step), when WX_PG_PIPELINE_PENDING_MAX are waiting, or at
 * commit. The first error of a pipeline fails the transaction, so rows and
 * checkpoint still commit or fail together. An RM_ROWS statement's runs
 * are gathered and sent WX_RM_ROWS_PER_STATEMENT rows to one INSERT (its
 * VALUES list written out that many times, prepared once per session);
 * the rows left are sent as one more INSERT before the commit, or before
 * the next read or rm_exec, which could look at them. Read transactions are
 * REPEATABLE READ READ ONLY: every query of one sees the same snapshot
 * (the live table set and the rows of it).
 *
 * Read models are derived data (rm_config.disposable): their sessions run
 * with synchronous_commit off, so a projector commit does not wait for a
 * WAL flush (nor queue behind the log writer's). A crash of PostgreSQL
 * may then lose the last fraction of a second of read-side commits, rows
 * and checkpoint together (the WAL keeps their order), and they are
 * projected again from the log: the same bargain as SQLite's read side
 * without fsync (rm/bootguard.h). The delivery state is not derived and
 * keeps synchronous commits.
 *
 * Leases are session advisory locks (pg_try_advisory_lock) on the key of
 * "<schema>/<name>". A node that dies closes its sessions (kill -9: at
 * once; a vanished host: after the TCP keepalives below), which releases
 * them. A connection found dead is made again at its next use, and the
 * leases of the old session are forgotten with it, so whoever checks
 * rm_lease_held after a begin writes nothing it no longer holds.
 *
 * Reconnection backs off like the event store's (WX_PG_RECONNECT_MS_*):
 * while PostgreSQL is down, calls fail at once instead of each waiting for
 * a connect timeout.
 */
#include <assert.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "limits.h"
#include "obs/log.h"
#include "rm/rm.h"

#define RM_PG_STR_(x) #x
#define RM_PG_STR(x) RM_PG_STR_(x)

/* Nodes creating or dropping read-model tables take turns under this
 * transaction lock, scoped by schema ("wallex-rm" in ASCII as the scope). */
#define SCHEMA_LOCK_SCOPE "wallex-rm"

/* TCP keepalives on every session: a node whose host vanished (no FIN, no
 * RST) has its sessions, and so its leases, ended by the server after
 * about IDLE + INTERVAL * COUNT seconds; our side notices as fast. */
#define KEEPALIVE_IDLE_S 5
#define KEEPALIVE_INTERVAL_S 2
#define KEEPALIVE_COUNT 3

struct lease {
    char name[WX_ID_BYTES_MAX + 1];
    int64_t key;
};

struct pg_conn {
    struct rm_conn base; /* must be first */
    PGconn *pg;          /* NULL until (re)connected */
    /* Counts connects, and the DEALLOCATE ALL after a failed transaction
     * that sent a PREPARE: a statement prepared under another value is
     * prepared again. */
    uint64_t session;
    /* This pipeline transaction sent a PREPARE or a DEALLOCATE, which the
     * server skips once the pipeline has failed: a rollback then forgets
     * every prepared statement rather than guess which exist. */
    bool statements_unsure;
    /* Statements finalized outside a write transaction: deallocated at the
     * start of the next one (no round trip of their own, none at all when
     * the session ends first). Past the limit they stay until it ends. */
    char deallocs[WX_RM_DEALLOCS_MAX][24];
    size_t deallocs_len;
    bool reader;
    bool in_tx;
    bool pipeline; /* a write transaction: statements are sent ahead */
    int pending;   /* commands sent in the pipeline whose answers are unread */
    int failed;    /* the first error among them, 0 if none */
    struct pg_stmt *gathering; /* RM_ROWS statements with rows not yet sent */
    struct lease leases[WX_RM_LEASES_MAX];
    size_t leases_len;
    uint64_t names; /* prepared statement names handed out */
};

struct pg_db {
    struct rm_db base; /* must be first */
    char *url;
    char *schema;
    bool disposable; /* read models: commits need not wait for the WAL flush */

    pthread_mutex_t health_lock;
    int64_t retry_at_ms; /* monotonic; no connection attempt before */
    int64_t backoff_ms;

    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    struct pg_conn *idle[WX_PG_READ_MODEL_READERS_MAX];
    size_t idle_len;
    size_t open_len; /* idle and lent */
};

struct param {
    char *text; /* owned copy, NUL-terminated (text format needs it) */
    size_t cap;
    bool set;
};

struct pg_stmt {
    struct rm_stmt base; /* must be first */
    char *sql;           /* with $N */
    bool persistent;
    char name[24];
    uint64_t prepared_session; /* 0: not prepared on the current session */
    struct param params[WX_RM_PARAMS_MAX];
    bool nomem; /* a parameter could not be copied: the next run fails */
    PGresult *res;
    int row; /* the current row of res, -1 before the first */

    /* RM_ROWS: the SQL around the VALUES list (up to and including
     * "VALUES ", and after its ")"), the statement of a full set of rows,
     * and the rows gathered (row r's parameter i is cells[r * params + i]).
     * Linked in the connection's `gathering` while rows_len > 0. */
    bool rows;
    char *rows_head;
    char *rows_tail;
    char rows_name[24];
    uint64_t rows_prepared_session;
    struct param *cells;
    int rows_len;
    struct pg_stmt *gathering_next;
};

static struct pg_db *db_of(struct rm_db *db)
{
    return (struct pg_db *)db;
}

static struct pg_conn *conn_of(struct rm_conn *c)
{
    return (struct pg_conn *)c;
}

static struct pg_stmt *stmt_of(struct rm_stmt *st)
{
    return (struct pg_stmt *)st;
}

/* ---- connecting ---- */

static int attempt_allowed(struct pg_db *d)
{
    int64_t now = wx_monotonic_ms();
    pthread_mutex_lock(&d->health_lock);
    int err = d->backoff_ms > 0 && now < d->retry_at_ms ? WX_ERR_IO : 0;
    pthread_mutex_unlock(&d->health_lock);
    return err;
}

static void attempt_done(struct pg_db *d, bool ok)
{
    pthread_mutex_lock(&d->health_lock);
    if (ok) {
        d->backoff_ms = 0;
    } else {
        d->backoff_ms = d->backoff_ms == 0 ? WX_PG_RECONNECT_MS_MIN : d->backoff_ms * 2;
        if (d->backoff_ms > WX_PG_RECONNECT_MS_MAX)
            d->backoff_ms = WX_PG_RECONNECT_MS_MAX;
        d->retry_at_ms = wx_monotonic_ms() + d->backoff_ms;
    }
    pthread_mutex_unlock(&d->health_lock);
}

static int simple(PGconn *pg, const char *sql, const char *what)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int err = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : WX_ERR_IO;
    if (err)
        wx_logf(WX_LOG_ERROR, "read side: %s: %s", what, PQerrorMessage(pg));
    PQclear(r);
    return err;
}

static int session_setup(struct pg_db *d, PGconn *pg)
{
    char *schema = PQescapeIdentifier(pg, d->schema, strlen(d->schema));
    if (schema == NULL)
        return WX_ERR_NOMEM;
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_printf(&b,
                  "SET search_path TO %s, pg_catalog; SET statement_timeout = %d;"
                  " SET client_min_messages = warning; SET tcp_keepalives_idle = %d;"
                  " SET tcp_keepalives_interval = %d; SET tcp_keepalives_count = %d;%s",
                  schema, WX_PG_STATEMENT_TIMEOUT_MS, KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S,
                  KEEPALIVE_COUNT, d->disposable ? " SET synchronous_commit = off;" : "");
    PQfreemem(schema);
    int err = wx_buf_ok(&b) ? simple(pg, b.data, "setting up a session") : WX_ERR_NOMEM;
    wx_buf_free(&b);
    return err;
}

static int connect_pg(struct pg_db *d, PGconn **out)
{
    int err = attempt_allowed(d);
    if (err)
        return err;
    /* Our defaults come before dbname, so a URL's own settings win. */
    const char *const keys[] = {"connect_timeout", "application_name", "client_encoding",
                                "keepalives_idle", "keepalives_interval", "keepalives_count",
                                "dbname", NULL};
    const char *const values[] = {RM_PG_STR(WX_PG_CONNECT_TIMEOUT_S), "wallex-read", "UTF8",
                                  RM_PG_STR(KEEPALIVE_IDLE_S), RM_PG_STR(KEEPALIVE_INTERVAL_S),
                                  RM_PG_STR(KEEPALIVE_COUNT), d->url, NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (pg == NULL) {
        attempt_done(d, false);
        return WX_ERR_NOMEM;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        wx_logf(WX_LOG_ERROR, "read side: cannot connect: %s", PQerrorMessage(pg));
        err = WX_ERR_IO;
    }
    if (!err)
        err = session_setup(d, pg);
    attempt_done(d, err == 0);
    if (err) {
        PQfinish(pg);
        return err;
    }
    *out = pg;
    return 0;
}

/* Takes s out of the connection's gathering list, if it is there. */
static void rows_unlink(struct pg_conn *c, struct pg_stmt *s)
{
    for (struct pg_stmt **at = &c->gathering; *at != NULL; at = &(*at)->gathering_next) {
        if (*at == s) {
            *at = s->gathering_next;
            s->gathering_next = NULL;
            return;
        }
    }
}

/* Forgets the rows gathered and not sent: their transaction is over. */
static void rows_drop(struct pg_conn *c)
{
    for (struct pg_stmt *s = c->gathering, *next; s != NULL; s = next) {
        next = s->gathering_next;
        s->rows_len = 0;
        s->gathering_next = NULL;
    }
    c->gathering = NULL;
}

/* The session is gone (or must go): everything that belonged to it too. */
static void conn_lost(struct pg_conn *c)
{
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = NULL;
    c->in_tx = false;
    c->pipeline = false;
    c->pending = 0;
    c->failed = 0;
    c->leases_len = 0;
    c->deallocs_len = 0;
    c->statements_unsure = false;
    rows_drop(c);
}

/* A live session for a call outside a transaction. */
static int conn_ready(struct pg_conn *c)
{
    if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK)
        return 0;
    conn_lost(c);
    int err = connect_pg(db_of(c->base.db), &c->pg);
    if (!err)
        c->session++;
    return err;
}

/* A statement failed: the error code, after dropping a dead session. */
static int failure(struct pg_conn *c, PGresult *r, const char *what)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    int err = WX_ERR_IO;
    if (state != NULL && strcmp(state, "23505") == 0)
        err = WX_ERR_CONFLICT; /* unique_violation */
    else if (state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
                               strcmp(state, "42P01") == 0))
        err = WX_ERR_BUSY; /* serialization failure, deadlock, a table swapped away */
    if (c->pg != NULL && PQstatus(c->pg) != CONNECTION_OK) {
        wx_logf(WX_LOG_ERROR, "read side: connection lost (%s): %s", what,
                PQerrorMessage(c->pg));
        conn_lost(c);
    } else {
        wx_logf(err == WX_ERR_IO ? WX_LOG_ERROR : WX_LOG_WARN, "read side: %s: %s", what,
                r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
    }
    return err;
}

static int pg_conn_open(struct rm_db *db, enum rm_conn_kind kind, struct rm_conn **out)
{
    struct pg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return WX_ERR_NOMEM;
    c->base.db = db;
    c->reader = kind == RM_CONN_READER;
    /* Connected at first use, so a node starts while PostgreSQL is down
     * and catches up when it is back. */
    *out = &c->base;
    return 0;
}

static void pg_conn_close(struct rm_conn *conn)
{
    conn_lost(conn_of(conn));
    free(conn);
}

static int pg_read_acquire(struct rm_db *db, struct rm_conn **out)
{
    struct pg_db *d = db_of(db);
    struct timespec until;
    wx_deadline_after_ms(WX_PG_POOL_WAIT_MS_MAX, &until);
    pthread_mutex_lock(&d->pool_lock);
    while (d->idle_len == 0 && d->open_len >= WX_PG_READ_MODEL_READERS_MAX) {
        if (pthread_cond_timedwait(&d->pool_cond, &d->pool_lock, &until) != 0) {
            pthread_mutex_unlock(&d->pool_lock);
            return WX_ERR_BUSY;
        }
    }
    int err = 0;
    if (d->idle_len > 0) {
        *out = &d->idle[--d->idle_len]->base;
    } else {
        err = pg_conn_open(db, RM_CONN_READER, out);
        d->open_len += err == 0;
    }
    pthread_mutex_unlock(&d->pool_lock);
    return err;
}

static void pg_read_release(struct rm_db *db, struct rm_conn *conn)
{
    struct pg_db *d = db_of(db);
    struct pg_conn *c = conn_of(conn);
    assert(!c->in_tx);
    pthread_mutex_lock(&d->pool_lock);
    assert(d->idle_len < WX_PG_READ_MODEL_READERS_MAX);
    d->idle[d->idle_len++] = c;
    pthread_cond_signal(&d->pool_cond);
    pthread_mutex_unlock(&d->pool_lock);
}

/* ---- the database ---- */

static void pg_close(struct rm_db *db)
{
    struct pg_db *d = db_of(db);
    assert(d->idle_len == d->open_len); /* every reader is back */
    while (d->idle_len > 0)
        pg_conn_close(&d->idle[--d->idle_len]->base);
    pthread_mutex_destroy(&d->health_lock);
    pthread_mutex_destroy(&d->pool_lock);
    pthread_cond_destroy(&d->pool_cond);
    free(d->url);
    free(d->schema);
    free(d);
}

/* Creates the schema, one node at a time. */
static int ensure_schema(struct pg_db *d)
{
    PGconn *pg;
    int err = connect_pg(d, &pg);
    if (err)
        return err;
    char *schema = PQescapeIdentifier(pg, d->schema, strlen(d->schema));
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_printf(&b, "BEGIN; SELECT pg_advisory_xact_lock(%" PRId64 ");"
                      " CREATE SCHEMA IF NOT EXISTS %s; COMMIT;",
                  rm_lease_key(SCHEMA_LOCK_SCOPE, d->schema), schema ? schema : "");
    PQfreemem(schema);
    err = schema != NULL && wx_buf_ok(&b) ? simple(pg, b.data, "creating the schema")
                                          : WX_ERR_NOMEM;
    wx_buf_free(&b);
    PQfinish(pg);
    return err;
}

static int pg_open(const struct rm_config *config, struct rm_db **out)
{
    struct pg_db *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return WX_ERR_NOMEM;
    d->base.ops = &rm_postgres_ops;
    pthread_mutex_init(&d->health_lock, NULL);
    pthread_mutex_init(&d->pool_lock, NULL);
    pthread_cond_init(&d->pool_cond, NULL);
    d->url = strdup(config->url);
    d->schema = strdup(config->schema);
    d->disposable = config->disposable;
    int err = d->url && d->schema ? ensure_schema(d) : WX_ERR_NOMEM;
    if (err) {
        pg_close(&d->base);
        return err;
    }
    *out = &d->base;
    return 0;
}

/* ---- the pipeline ---- */

/* Reads the answers of every command sent since the last sync (one sync is
 * sent first); *last_out, when not NULL, gets the last command's result
 * (the caller clears it). The first error is returned, and kept in
 * c->failed until the transaction ends. */
static int pipeline_read(struct pg_conn *c, PGresult **last_out)
{
    if (PQpipelineSync(c->pg) != 1)
        return failure(c, NULL, "sending a pipeline sync");
    int commands = c->pending;
    c->pending = 0;
    for (int i = 0; i < commands; i++) {
        PGresult *r, *kept = NULL;
        while ((r = PQgetResult(c->pg)) != NULL) {
            ExecStatusType st = PQresultStatus(r);
            bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
            if (!ok && !c->failed && st != PGRES_PIPELINE_ABORTED)
                c->failed = failure(c, r, "a pipelined statement");
            if (c->pg == NULL) {
                PQclear(r);
                return c->failed ? c->failed : WX_ERR_IO;
            }
            if (ok && last_out != NULL && i == commands - 1 && kept == NULL)
                kept = r;
            else
                PQclear(r);
        }
        if (kept != NULL)
            *last_out = kept;
    }
    PGresult *sync = PQgetResult(c->pg);
    bool synced = sync != NULL && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced && !c->failed)
        c->failed = failure(c, NULL, "reading a pipeline sync");
    return c->failed;
}

/* Sends one command of a transaction's pipeline; its answer is read
 * later (pipeline_read). */
static int pipeline_send(struct pg_conn *c, struct pg_stmt *s, const char *const *values)
{
    int sent = s->persistent
                   ? PQsendQueryPrepared(c->pg, s->name, s->base.params, values, NULL, NULL, 0)
                   : PQsendQueryParams(c->pg, s->sql, s->base.params, NULL, values, NULL, NULL,
                                       0);
    if (sent != 1)
        return failure(c, NULL, "sending a statement");
    c->pending++;
    return 0;
}

/* The same for a statement of our own without parameters. */
static int pipeline_send_sql(struct pg_conn *c, const char *sql)
{
    if (PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0) != 1)
        return failure(c, NULL, "sending a statement");
    c->pending++;
    return 0;
}

/* A DEALLOCATE in the pipeline: skipped by the server if the pipeline has
 * failed, so the transaction's statements are unsure from now on. */
static int pipeline_deallocate(struct pg_conn *c, const char *name)
{
    char sql[48];
    snprintf(sql, sizeof(sql), "DEALLOCATE %s", name);
    c->statements_unsure = true;
    return pipeline_send_sql(c, sql);
}

/* ---- rows many to a statement (RM_ROWS) ---- */

/* The INSERT of `rows` rows: the VALUES list written out that many times. */
static void rows_sql(const struct pg_stmt *s, int rows, struct wx_buf *out)
{
    wx_buf_adds(out, s->rows_head);
    for (int r = 0, n = 1; r < rows; r++) {
        wx_buf_adds(out, r == 0 ? "(" : ", (");
        for (int i = 0; i < s->base.params; i++, n++)
            wx_buf_printf(out, i == 0 ? "$%d" : ", $%d", n);
        wx_buf_addc(out, ')');
    }
    wx_buf_adds(out, s->rows_tail);
}

/* Sends the statement's gathered rows as one INSERT: a full set by its
 * prepared statement, fewer by their own text. */
static int rows_send(struct pg_conn *c, struct pg_stmt *s)
{
    int rows = s->rows_len, n = rows * s->base.params;
    s->rows_len = 0;
    if (rows == 0)
        return 0;
    const char *values[WX_RM_ROWS_PER_STATEMENT * WX_RM_PARAMS_MAX];
    for (int i = 0; i < n; i++)
        values[i] = s->cells[i].set ? s->cells[i].text : NULL;
    struct wx_buf sql;
    wx_buf_init(&sql);
    bool full = rows == WX_RM_ROWS_PER_STATEMENT;
    if (!full || s->rows_prepared_session != c->session)
        rows_sql(s, rows, &sql);
    int err = wx_buf_ok(&sql) ? 0 : WX_ERR_NOMEM;
    if (!err && full && s->rows_prepared_session != c->session) {
        if (PQsendPrepare(c->pg, s->rows_name, sql.data, n, NULL) != 1)
            err = failure(c, NULL, "sending a prepare");
        else
            c->pending++;
        if (!err)
            s->rows_prepared_session = c->session;
        c->statements_unsure = true;
    }
    int sent = err ? 0
               : full ? PQsendQueryPrepared(c->pg, s->rows_name, n, values, NULL, NULL, 0)
                      : PQsendQueryParams(c->pg, sql.data, n, NULL, values, NULL, NULL, 0);
    wx_buf_free(&sql);
    if (!err && sent != 1)
        err = failure(c, NULL, "sending rows");
    if (!err)
        c->pending++;
    return err;
}

/* Sends every statement's rows not sent yet (before a commit, or a read
 * that could look at them). */
static int rows_flush(struct pg_conn *c)
{
    int err = 0;
    while (c->gathering != NULL && !err) {
        struct pg_stmt *s = c->gathering;
        c->gathering = s->gathering_next;
        s->gathering_next = NULL;
        err = c->pg == NULL ? WX_ERR_IO : rows_send(c, s);
    }
    if (err)
        rows_drop(c);
    return err;
}

/* Keeps a copy of text in p (its buffer grows, never shrinks); false when
 * it cannot. */
static bool param_set(struct param *p, const char *text, size_t len)
{
    if (p->cap < len + 1) {
        size_t cap = len + 1 < 32 ? 32 : len + 1;
        char *grown = realloc(p->text, cap);
        if (grown == NULL)
            return false;
        p->text = grown;
        p->cap = cap;
    }
    memcpy(p->text, text, len);
    p->text[len] = '\0';
    p->set = true;
    return true;
}

static bool param_copy(struct param *dst, const struct param *src)
{
    dst->set = false;
    return !src->set || param_set(dst, src->text, strlen(src->text));
}

/* One run of an RM_ROWS statement in a write transaction: its row joins
 * the gathered ones, which go out once a full set is there. */
static int rows_add(struct pg_conn *c, struct pg_stmt *s)
{
    assert(s->rows_len < WX_RM_ROWS_PER_STATEMENT);
    struct param *row = &s->cells[s->rows_len * s->base.params];
    for (int i = 0; i < s->base.params; i++)
        if (!param_copy(&row[i], &s->params[i]))
            return WX_ERR_NOMEM;
    if (s->rows_len++ == 0) {
        s->gathering_next = c->gathering;
        c->gathering = s;
    }
    if (s->rows_len < WX_RM_ROWS_PER_STATEMENT)
        return 0;
    rows_unlink(c, s); /* first: rows_send empties it */
    return rows_send(c, s);
}

/* Splits an RM_ROWS statement around its "VALUES ($1, ..., $N)". */
static int rows_split(struct pg_stmt *s)
{
    size_t head, tail;
    int err = rm_rows_split(s->sql, '$', s->base.params, &head, &tail);
    if (err)
        return err;
    s->rows_head = strndup(s->sql, head);
    s->rows_tail = strdup(s->sql + tail);
    s->cells = calloc((size_t)WX_RM_ROWS_PER_STATEMENT * (size_t)s->base.params,
                      sizeof(*s->cells));
    return s->rows_head && s->rows_tail && s->cells ? 0 : WX_ERR_NOMEM;
}

/* ---- transactions ---- */

static int pg_begin(struct rm_conn *conn, enum rm_tx kind)
{
    struct pg_conn *c = conn_of(conn);
    assert(!c->in_tx);
    int err = conn_ready(c);
    if (err)
        return err;
    if (kind == RM_TX_READ || c->reader) {
        assert(kind == RM_TX_READ);
        /* A pooled session may have died idle (PostgreSQL restarted):
         * that shows only now, and a new one is tried once. */
        for (int attempt = 0; attempt < 2; attempt++) {
            err = attempt == 0 ? 0 : conn_ready(c);
            if (!err)
                err = simple(c->pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin");
            if (!err || PQstatus(c->pg) == CONNECTION_OK)
                break;
            conn_lost(c);
        }
        c->in_tx = err == 0;
        return err;
    }
    if (PQenterPipelineMode(c->pg) != 1)
        return failure(c, NULL, "entering pipeline mode");
    c->in_tx = c->pipeline = true;
    c->failed = 0;
    c->statements_unsure = false;
    err = pipeline_send_sql(c, "BEGIN");
    if (!err && kind == RM_TX_DDL) {
        char sql[96];
        snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%" PRId64 ")",
                 rm_lease_key(SCHEMA_LOCK_SCOPE, db_of(conn->db)->schema));
        err = pipeline_send_sql(c, sql);
    }
    for (size_t i = 0; i < c->deallocs_len && !err; i++)
        err = pipeline_deallocate(c, c->deallocs[i]);
    c->deallocs_len = 0;
    /* A begin half sent leaves the session in no state anyone could roll
     * back from (callers do not, after a failed begin): drop it. */
    if (err)
        conn_lost(c);
    return err;
}

static int leave_pipeline(struct pg_conn *c)
{
    if (c->pg == NULL || !c->pipeline)
        return 0;
    c->pipeline = false;
    return PQexitPipelineMode(c->pg) == 1 ? 0 : failure(c, NULL, "leaving pipeline mode");
}

static int pg_commit(struct rm_conn *conn)
{
    struct pg_conn *c = conn_of(conn);
    if (c->pg == NULL || !c->in_tx)
        return WX_ERR_IO; /* the session was lost with the transaction */
    int err;
    if (c->pipeline) {
        err = rows_flush(c);
        if (!err)
            err = pipeline_send_sql(c, "COMMIT");
        if (!err)
            err = pipeline_read(c, NULL);
        if (!err)
            err = leave_pipeline(c);
    } else {
        err = simple(c->pg, "COMMIT", "commit");
    }
    if (!err) {
        c->in_tx = false;
        c->statements_unsure = false;
    }
    return err;
}

static void pg_rollback(struct rm_conn *conn)
{
    struct pg_conn *c = conn_of(conn);
    if (c->pg == NULL || !c->in_tx)
        return;
    if (c->pipeline) {
        rows_drop(c);
        if (c->pending > 0)
            pipeline_read(c, NULL);
        if (c->pg != NULL)
            leave_pipeline(c);
    }
    bool unsure = c->statements_unsure;
    if (c->pg != NULL && simple(c->pg, "ROLLBACK", "rollback") != 0)
        conn_lost(c); /* a session that cannot roll back is in no known state */
    /* A PREPARE this transaction sent may have been skipped after an
     * earlier error of its pipeline: forget every statement rather than
     * run one that does not exist for the rest of the session. When even
     * that fails, the session goes (a new one prepares everything). */
    if (c->pg != NULL && unsure) {
        if (simple(c->pg, "DEALLOCATE ALL", "forgetting prepared statements") == 0) {
            c->session++;
            c->deallocs_len = 0;
        } else {
            conn_lost(c);
        }
    }
    c->statements_unsure = false;
    c->in_tx = false;
    c->failed = 0;
}

static int pg_exec(struct rm_conn *conn, const char *sql)
{
    struct pg_conn *c = conn_of(conn);
    char text[WX_RM_SQL_BYTES_MAX];
    int err = rm_sql_dialect(sql, RM_DIALECT_POSTGRES, true, text, sizeof(text), NULL);
    if (err)
        return err;
    bool piped = c->pipeline;
    if (piped) {
        /* Several statements in one string go by the simple protocol,
         * which a pipeline does not take: read it out, send, go back. */
        err = rows_flush(c);
        if (!err)
            err = c->pending > 0 ? pipeline_read(c, NULL) : c->failed;
        if (!err)
            err = leave_pipeline(c);
    } else if (!c->in_tx) {
        err = conn_ready(c);
    }
    if (err)
        return err;
    PGresult *r = PQexec(c->pg, text);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        err = failure(c, r, "executing");
    PQclear(r);
    if (!err && piped) {
        if (PQenterPipelineMode(c->pg) != 1)
            return failure(c, NULL, "entering pipeline mode");
        c->pipeline = true;
    }
    if (err && piped && c->pg != NULL)
        c->pipeline = false; /* the caller rolls back outside the pipeline */
    return err;
}

/* ---- statements ---- */

static void pg_finalize(struct rm_stmt *st);

/* Frees a statement's server side when it was prepared on this session
 * (a projector's set swap or a stream's replay prepares new ones): in a
 * write transaction, as one more command of its pipeline; otherwise at
 * the start of the next write transaction. */
static void deallocate(struct pg_conn *c, const char *name, uint64_t prepared_session)
{
    if (c->pg == NULL || prepared_session != c->session)
        return;
    if (c->pipeline)
        pipeline_deallocate(c, name);
    else if (c->deallocs_len < WX_RM_DEALLOCS_MAX)
        snprintf(c->deallocs[c->deallocs_len++], sizeof(c->deallocs[0]), "%s", name);
}

static int pg_prepare(struct rm_conn *conn, const char *sql, unsigned flags, struct rm_stmt **out)
{
    struct pg_conn *c = conn_of(conn);
    char text[WX_RM_SQL_BYTES_MAX];
    int params = 0;
    int err = rm_sql_dialect(sql, RM_DIALECT_POSTGRES, true, text, sizeof(text), &params);
    if (err)
        return err;
    if (params > WX_RM_PARAMS_MAX)
        return WX_ERR_TOO_LARGE;
    struct pg_stmt *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->sql = strdup(text)) == NULL) {
        free(s);
        return WX_ERR_NOMEM;
    }
    s->base.conn = conn;
    s->base.params = params;
    s->persistent = flags & RM_PERSISTENT;
    snprintf(s->name, sizeof(s->name), "wxr_%" PRIu64, ++c->names);
    s->row = -1;
    s->rows = flags & RM_ROWS;
    if (s->rows) {
        snprintf(s->rows_name, sizeof(s->rows_name), "wxr_%" PRIu64, ++c->names);
        err = rows_split(s);
        if (err) {
            pg_finalize(&s->base);
            return err;
        }
    }
    *out = &s->base;
    return 0;
}

static void pg_reset(struct rm_stmt *st)
{
    struct pg_stmt *s = stmt_of(st);
    PQclear(s->res);
    s->res = NULL;
    s->row = -1;
    st->columns = 0;
    s->nomem = false;
    for (int i = 0; i < st->params; i++)
        s->params[i].set = false;
}

static void pg_finalize(struct rm_stmt *st)
{
    struct pg_stmt *s = stmt_of(st);
    pg_reset(st);
    /* Only statements that keep something on their connection look at it
     * (a statement may outlive a reader's loan). */
    struct pg_conn *c = s->rows || s->persistent ? conn_of(st->conn) : NULL;
    if (s->rows) {
        rows_unlink(c, s);
        /* Rows gathered still belong to the transaction: they go now, and
         * their errors come back at the commit like any. */
        if (s->rows_len > 0 && c->pipeline && c->pg != NULL) {
            int err = rows_send(c, s);
            if (err && !c->failed)
                c->failed = err;
        }
    }
    if (c != NULL) {
        deallocate(c, s->name, s->prepared_session);
        if (s->rows)
            deallocate(c, s->rows_name, s->rows_prepared_session);
    }
    for (int i = 0; i < WX_RM_PARAMS_MAX; i++)
        free(s->params[i].text);
    if (s->cells != NULL)
        for (int i = 0; i < WX_RM_ROWS_PER_STATEMENT * st->params; i++)
            free(s->cells[i].text);
    free(s->cells);
    free(s->rows_head);
    free(s->rows_tail);
    free(s->sql);
    free(s);
}

static void put_param(struct pg_stmt *s, int col, const char *text, size_t len)
{
    if (!param_set(&s->params[col - 1], text, len))
        s->nomem = true;
}

static void pg_bind_text(struct rm_stmt *st, int col, const char *text, size_t len)
{
    put_param(stmt_of(st), col, text, len);
}

static void pg_bind_i64(struct rm_stmt *st, int col, int64_t value)
{
    char text[24];
    int n = snprintf(text, sizeof(text), "%" PRId64, value);
    put_param(stmt_of(st), col, text, (size_t)n);
}

static void pg_bind_null(struct rm_stmt *st, int col)
{
    stmt_of(st)->params[col - 1].set = false;
}

static void values_of(struct pg_stmt *s, const char *values[WX_RM_PARAMS_MAX])
{
    for (int i = 0; i < s->base.params; i++)
        values[i] = s->params[i].set ? s->params[i].text : NULL;
}

/* Prepares a persistent statement on this session when it is not yet. */
static int ensure_prepared(struct pg_conn *c, struct pg_stmt *s)
{
    if (!s->persistent || s->prepared_session == c->session)
        return 0;
    if (c->pipeline) {
        /* Taken for prepared from now on; if the transaction fails, the
         * server may have skipped it, and the rollback forgets them all. */
        c->statements_unsure = true;
        if (PQsendPrepare(c->pg, s->name, s->sql, s->base.params, NULL) != 1)
            return failure(c, NULL, "sending a prepare");
        c->pending++;
    } else {
        PGresult *r = PQprepare(c->pg, s->name, s->sql, s->base.params, NULL);
        int err = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : failure(c, r, "prepare");
        PQclear(r);
        if (err)
            return err;
    }
    s->prepared_session = c->session;
    return 0;
}

/* Runs the statement and keeps its rows in s->res. */
static int execute(struct pg_conn *c, struct pg_stmt *s)
{
    if (s->nomem)
        return WX_ERR_NOMEM;
    int err = c->in_tx ? (c->pg == NULL ? WX_ERR_IO : 0) : conn_ready(c);
    if (!err)
        err = ensure_prepared(c, s);
    if (err)
        return err;
    const char *values[WX_RM_PARAMS_MAX];
    values_of(s, values);
    PGresult *r = NULL;
    if (c->pipeline) {
        err = rows_flush(c);
        if (!err)
            err = pipeline_send(c, s, values);
        if (!err)
            err = pipeline_read(c, &r);
        if (!err && r == NULL)
            err = WX_ERR_IO;
    } else {
        r = s->persistent
                ? PQexecPrepared(c->pg, s->name, s->base.params, values, NULL, NULL, 0)
                : PQexecParams(c->pg, s->sql, s->base.params, NULL, values, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
            err = failure(c, r, "a query");
    }
    if (err) {
        PQclear(r);
        return err;
    }
    s->res = r;
    s->base.columns = PQnfields(r);
    return 0;
}

static int pg_step(struct rm_stmt *st, bool *row_out)
{
    struct pg_stmt *s = stmt_of(st);
    *row_out = false;
    if (s->res == NULL) {
        int err = execute(conn_of(st->conn), s);
        if (err)
            return err;
    }
    s->row++;
    *row_out = s->row < PQntuples(s->res);
    return 0;
}

static int pg_run(struct rm_stmt *st)
{
    struct pg_stmt *s = stmt_of(st);
    struct pg_conn *c = conn_of(st->conn);
    int err;
    if (c->pipeline) {
        const char *values[WX_RM_PARAMS_MAX];
        values_of(s, values);
        err = c->pg == NULL ? WX_ERR_IO : s->nomem ? WX_ERR_NOMEM : 0;
        if (!err && s->rows)
            err = rows_add(c, s);
        else if (!err)
            err = ensure_prepared(c, s);
        if (!err && !s->rows)
            err = pipeline_send(c, s, values);
        if (!err && c->pending >= WX_PG_PIPELINE_PENDING_MAX)
            err = pipeline_read(c, NULL);
    } else {
        err = execute(c, s);
    }
    pg_reset(st);
    return err;
}

static const char *pg_column_text(struct rm_stmt *st, int col)
{
    struct pg_stmt *s = stmt_of(st);
    assert(s->res != NULL && s->row >= 0 && s->row < PQntuples(s->res));
    return PQgetisnull(s->res, s->row, col) ? NULL : PQgetvalue(s->res, s->row, col);
}

static size_t pg_column_len(struct rm_stmt *st, int col)
{
    struct pg_stmt *s = stmt_of(st);
    return (size_t)PQgetlength(s->res, s->row, col);
}

static int64_t pg_column_i64(struct rm_stmt *st, int col)
{
    const char *text = pg_column_text(st, col);
    /* sum() of bigints is numeric; whole values only ever reach here. */
    return text == NULL ? 0 : strtoll(text, NULL, 10);
}

static bool pg_column_null(struct rm_stmt *st, int col)
{
    struct pg_stmt *s = stmt_of(st);
    return PQgetisnull(s->res, s->row, col);
}

/* ---- leases ---- */

static struct lease *lease_find(struct pg_conn *c, const char *name)
{
    for (size_t i = 0; i < c->leases_len; i++)
        if (strcmp(c->leases[i].name, name) == 0)
            return &c->leases[i];
    return NULL;
}

static int lock_call(struct pg_conn *c, const char *fn, int64_t key, bool *true_out)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT %s(%" PRId64 ")", fn, key);
    PGresult *r = PQexec(c->pg, sql);
    int err = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? 0 : failure(c, r, fn);
    if (!err)
        *true_out = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return err;
}

static int pg_lease_try(struct rm_conn *conn, const char *name, bool *held_out)
{
    struct pg_conn *c = conn_of(conn);
    assert(!c->in_tx && strlen(name) <= WX_ID_BYTES_MAX);
    *held_out = false;
    int err = conn_ready(c);
    if (err || lease_find(c, name) != NULL) {
        *held_out = !err;
        return err;
    }
    if (c->leases_len == WX_RM_LEASES_MAX)
        return WX_ERR_FULL;
    int64_t key = rm_lease_key(db_of(conn->db)->schema, name);
    err = lock_call(c, "pg_try_advisory_lock", key, held_out);
    if (!err && *held_out) {
        struct lease *l = &c->leases[c->leases_len++];
        snprintf(l->name, sizeof(l->name), "%s", name);
        l->key = key;
    }
    return err;
}

static bool pg_lease_held(struct rm_conn *conn, const char *name)
{
    struct pg_conn *c = conn_of(conn);
    return c->pg != NULL && lease_find(c, name) != NULL;
}

static void pg_lease_release(struct rm_conn *conn, const char *name)
{
    struct pg_conn *c = conn_of(conn);
    struct lease *l = lease_find(c, name);
    if (l == NULL)
        return;
    bool released;
    if (!c->in_tx && c->pg != NULL)
        lock_call(c, "pg_advisory_unlock", l->key, &released);
    *l = c->leases[--c->leases_len];
}

const struct rm_ops rm_postgres_ops = {
    .name = "postgres",
    .dialect = RM_DIALECT_POSTGRES,
    .shared = true,
    .open = pg_open,
    .close = pg_close,
    .conn_open = pg_conn_open,
    .conn_close = pg_conn_close,
    .read_acquire = pg_read_acquire,
    .read_release = pg_read_release,
    .exec = pg_exec,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .reset = pg_reset,
    .bind_text = pg_bind_text,
    .bind_i64 = pg_bind_i64,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .run = pg_run,
    .column_text = pg_column_text,
    .column_len = pg_column_len,
    .column_i64 = pg_column_i64,
    .column_null = pg_column_null,
    .lease_try = pg_lease_try,
    .lease_held = pg_lease_held,
    .lease_release = pg_lease_release,
};
