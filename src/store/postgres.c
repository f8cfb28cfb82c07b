/*
 * PostgreSQL event store (DESIGN.md §6, §12): the log, idempotency records
 * and snapshots in one database that several `wallex serve` nodes share.
 *
 * A writer batch is ONE statement (commit_sql): the batch's events,
 * idempotency records and snapshots travel as arrays in binary form, are
 * unnested and inserted by data-modifying CTEs, and the statement runs in
 * autocommit, so a batch costs one round trip and one WAL flush. Versions
 * are assigned here from each append's expectation; the unique
 * (stream_id, version) index is the optimistic lock between nodes. The
 * statement probes first: versions another node has already stored, base
 * versions that are not there and idempotency keys held by a younger
 * record are listed by the statement itself, every losing item at once,
 * and it raises WX409. An event another node commits while the statement
 * runs fails it with a unique violation naming the stream and version,
 * which name the item. Either way the whole batch rolls back and the
 * writer learns which items to decide again (es_batch_item.conflict).
 * (Events are a plain INSERT: ON CONFLICT DO NOTHING, tried first, costs
 * a third more per row.)
 *
 * Global order without gaps (DESIGN.md §6): every row carries the id of the
 * transaction that wrote it (xid8), and readers take only rows of
 * transactions older than the oldest one still running
 * (pg_snapshot_xmin(pg_current_snapshot())), ordered by (transaction_id,
 * position). A position is that pair: es_position.hi = xid, .lo = position.
 * Nothing in this process decides what read_log returns, so a reader on
 * another node sees the same log.
 *
 * Connections: one for the writer thread, and a bounded pool of readers.
 * A connection found dead is dropped and made again on next use; attempts
 * back off (WX_PG_RECONNECT_MS_*), and while they fail every call fails
 * at once, with the reason kept for /readyz (es_store_last_error).
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
#include "base/map.h"
#include "limits.h"
#include "obs/log.h"
#include "store/store.h"

#define PG_STR_(x) #x
#define PG_STR(x) PG_STR_(x)

/* The layout of wallex's tables, in schema_version. A database written by
 * a newer build is refused rather than misread. */
#define PG_SCHEMA_LAYOUT 1
#define PG_SCHEMA_DEFAULT "wallex"
/* pg_advisory_xact_lock key: nodes starting at once create the schema one
 * after the other ("wallex" in ASCII). */
#define PG_SCHEMA_LOCK_KEY "131260314576248"
/* Raised by commit_sql when an item lost a race; the DETAIL lists them. */
#define PG_CONFLICT_SQLSTATE "WX409"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_version(layout int NOT NULL);"
    "CREATE TABLE IF NOT EXISTS events("
    " position bigint GENERATED ALWAYS AS IDENTITY,"
    " transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),"
    " event_id text COLLATE \"C\" NOT NULL,"
    " stream_id text COLLATE \"C\" NOT NULL,"
    " version bigint NOT NULL,"
    " type text NOT NULL,"
    " schema_version int NOT NULL,"
    " data text NOT NULL,"
    " metadata text NOT NULL,"
    " occurred_at_ms bigint NOT NULL,"
    " PRIMARY KEY (transaction_id, position),"
    " UNIQUE (stream_id, version));"
    "CREATE TABLE IF NOT EXISTS idempotency("
    " key text COLLATE \"C\" PRIMARY KEY,"
    " request bytea NOT NULL,"
    " status int NOT NULL,"
    " body bytea NOT NULL,"
    " location text,"
    " position_hi bigint,"
    " position_lo bigint,"
    " created_at_ms bigint NOT NULL);"
    "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created_at_ms);"
    "CREATE TABLE IF NOT EXISTS snapshots("
    " stream_id text COLLATE \"C\" NOT NULL,"
    " version bigint NOT NULL,"
    " occurred_at_ms bigint NOT NULL,"
    " data bytea NOT NULL,"
    " PRIMARY KEY (stream_id, version));"
    "CREATE OR REPLACE FUNCTION commit_conflict(items int[]) RETURNS boolean"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " IF cardinality(items) > 0 THEN"
    "  RAISE EXCEPTION 'wallex: version conflict' USING ERRCODE = '" PG_CONFLICT_SQLSTATE "',"
    "  DETAIL = array_to_string(items, ',');"
    " END IF; RETURN true; END $$;";

/* Element types of the statement's arrays (pg_type.oid, fixed since
 * PostgreSQL 7). */
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_INT4 23
#define PG_OID_TEXT 25

/* The parameters of commit_sql, all arrays in binary form. */
enum commit_param {
    CP_EV_ITEM, CP_EV_STREAM, CP_EV_VERSION, CP_EV_ID, CP_EV_TYPE, CP_EV_SCHEMA, CP_EV_DATA,
    CP_EV_METADATA, CP_EV_AT,
    CP_CHK_ITEM, CP_CHK_STREAM, CP_CHK_VERSION,
    CP_ID_ITEM, CP_ID_KEY, CP_ID_REQUEST, CP_ID_STATUS, CP_ID_BODY, CP_ID_LOCATION,
    CP_ID_LAST_STREAM, CP_ID_LAST_VERSION, CP_ID_CREATED, CP_ID_EXPIRED,
    CP_SN_STREAM, CP_SN_VERSION, CP_SN_AT, CP_SN_DATA,
    CP_NX_ITEM, CP_NX_STREAM, CP_NX_VERSION,
    CP_COUNT
};

/* One statement per writer batch; see the file comment. Positions are
 * drawn from the sequence in batch order (ev_in sorts by ord, and a
 * volatile nextval in its target list is evaluated after the sort), so
 * sorted positions are batch order; the rows are then
 * inserted in (stream_id, version) order, so two nodes take the unique
 * index's entries in one global order and never deadlock on each other.
 * The plan is generic (planned once per connection): every part of it is
 * an index probe, a TID lookup or a hash over this batch's own rows.
 * chk holds the base version of each stream's first append when it is not
 * 0: it must exist, or the append would leave a gap (one index probe per
 * stream). nx holds the version after that base, for every first append
 * (with events or only a check): it must not exist yet, or another writer
 * got there first. Events are inserted only when chk and nx are empty, so
 * every item that lost a race is named in one WX409 (an insert that hit
 * a committed duplicate would name only the first, one item per failed
 * statement). A duplicate still arrives as a unique violation when the
 * other writer's row commits while this statement runs. An idempotency
 * record takes the position of its item's last event and replaces a
 * stored one only when that has expired. Snapshots keep the latest stored
 * one and the new one. Which items lost is worked out only when something
 * was not written (the CASE), and then raised. Every lookup is an index
 * probe or a hash over this batch's rows, never a scan of the log. */
static const char commit_sql[] =
    "WITH ev_in AS (SELECT u.*, nextval('events_position_seq') AS position FROM unnest($1::int[],"
    " $2::text[], $3::bigint[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[],"
    " $9::bigint[]) WITH ORDINALITY AS u(item, stream_id, version, event_id, type,"
    " schema_version, data, metadata, occurred_at_ms, ord) ORDER BY ord),"
    " chk AS (SELECT c.item FROM unnest($10::int[], $11::text[], $12::bigint[]) AS c(item,"
    " stream_id, version) LEFT JOIN LATERAL (SELECT 1 AS found FROM events e"
    " WHERE e.stream_id = c.stream_id AND e.version = c.version LIMIT 1) f ON true"
    " WHERE f.found IS NULL),"
    " nx AS (SELECT c.item FROM unnest($27::int[], $28::text[], $29::bigint[]) AS c(item,"
    " stream_id, version) JOIN LATERAL (SELECT 1 FROM events e WHERE e.stream_id = c.stream_id"
    " AND e.version = c.version LIMIT 1) f ON true),"
    " ev AS (INSERT INTO events(position, event_id, stream_id, version, type, schema_version,"
    " data, metadata, occurred_at_ms) OVERRIDING SYSTEM VALUE SELECT position, event_id,"
    " stream_id, version, type, schema_version, data, metadata, occurred_at_ms FROM ev_in"
    " WHERE NOT EXISTS (SELECT 1 FROM chk) AND NOT EXISTS (SELECT 1 FROM nx)"
    " ORDER BY stream_id, version RETURNING stream_id, version, position),"
    " id_in AS (SELECT * FROM unnest($13::int[], $14::text[], $15::bytea[], $16::int[],"
    " $17::bytea[], $18::text[], $19::text[], $20::bigint[], $21::bigint[], $22::bigint[])"
    " AS d(item, key, request, status, body, location, last_stream, last_version,"
    " created_at_ms, expired_before_ms)),"
    " id AS (INSERT INTO idempotency(key, request, status, body, location, position_hi,"
    " position_lo, created_at_ms) SELECT d.key, d.request, d.status, d.body, d.location,"
    " CASE WHEN e.position IS NOT NULL THEN pg_current_xact_id()::text::bigint END,"
    " e.position, d.created_at_ms FROM id_in d LEFT JOIN ev e ON e.stream_id = d.last_stream"
    " AND e.version = d.last_version"
    " ON CONFLICT (key) DO UPDATE SET request = excluded.request, status = excluded.status,"
    " body = excluded.body, location = excluded.location, position_hi = excluded.position_hi,"
    " position_lo = excluded.position_lo, created_at_ms = excluded.created_at_ms"
    " WHERE idempotency.created_at_ms < (SELECT d.expired_before_ms FROM id_in d"
    " WHERE d.key = excluded.key) RETURNING key),"
    " sn_in AS (SELECT * FROM unnest($23::text[], $24::bigint[], $25::bigint[], $26::bytea[])"
    " AS s(stream_id, version, occurred_at_ms, data)),"
    " sn_del AS (DELETE FROM snapshots WHERE ctid = ANY (ARRAY(SELECT m.ctid FROM (SELECT"
    " DISTINCT stream_id FROM sn_in) n CROSS JOIN LATERAL (SELECT ctid FROM snapshots m"
    " WHERE m.stream_id = n.stream_id ORDER BY m.version DESC OFFSET 1) m))),"
    " sn AS (INSERT INTO snapshots SELECT * FROM sn_in ON CONFLICT (stream_id, version)"
    " DO UPDATE SET occurred_at_ms = excluded.occurred_at_ms, data = excluded.data)"
    " SELECT commit_conflict(CASE WHEN (SELECT count(*) FROM id) = cardinality($13::int[])"
    " AND NOT EXISTS (SELECT 1 FROM chk) AND NOT EXISTS (SELECT 1 FROM nx) THEN '{}'::int[]"
    " ELSE ARRAY(SELECT item FROM chk UNION SELECT item FROM nx UNION SELECT d.item FROM id_in d WHERE NOT EXISTS (SELECT 1 FROM id WHERE id.key = d.key))"
    " END),"
    " pg_current_xact_id()::text,"
    " (SELECT string_agg(position::text, ',' ORDER BY position) FROM ev)";

/* The transaction id goes out as text under another name: ORDER BY
 * transaction_id would otherwise sort the text output column ("999" after
 * "1000") rather than the xid8. */
#define EVENT_COLUMNS                                                                         \
    "transaction_id::text AS xid_text, position, event_id, stream_id, version, type, data,"   \
    " metadata, occurred_at_ms, schema_version"

/* The rows every transaction still running could yet add to are left out:
 * they come later, in (transaction_id, position) order, once committed. */
#define VISIBLE "transaction_id < pg_snapshot_xmin(pg_current_snapshot())"

enum stmt_id {
    STMT_COMMIT,
    STMT_READ_LOG,
    STMT_READ_STREAM,
    STMT_READ_STREAMS,
    STMT_STREAM_VERSION,
    STMT_HEAD,
    STMT_TAIL,
    STMT_IDEM_GET,
    STMT_IDEM_EXPIRE,
    STMT_SNAPSHOT_GET,
    STMT_COUNT
};

static const struct {
    const char *name;
    const char *sql;
} stmts[STMT_COUNT] = {
    [STMT_COMMIT] = {"wx_commit", commit_sql},
    [STMT_READ_LOG] = {"wx_read_log",
                       "SELECT " EVENT_COLUMNS " FROM events WHERE (transaction_id, position) >"
                       " ($1::xid8, $2::bigint) AND " VISIBLE
                       " ORDER BY transaction_id, position LIMIT $3"},
    [STMT_READ_STREAM] = {"wx_read_stream",
                          "SELECT " EVENT_COLUMNS " FROM events WHERE stream_id = $1"
                          " AND version >= $2 ORDER BY version LIMIT $3"},
    [STMT_READ_STREAMS] = {"wx_read_streams",
                           "SELECT x.* FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY"
                           " AS c(sid, after, ord) JOIN LATERAL (SELECT " EVENT_COLUMNS
                           " FROM events WHERE stream_id = c.sid AND version > c.after) x"
                           " ON true ORDER BY c.ord, x.version LIMIT $3"},
    [STMT_STREAM_VERSION] = {"wx_stream_version",
                             "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1"},
    [STMT_HEAD] = {"wx_head", "SELECT transaction_id::text AS xid_text, position FROM events WHERE " VISIBLE
                              " ORDER BY transaction_id DESC, position DESC LIMIT 1"},
    [STMT_TAIL] = {"wx_tail", "SELECT transaction_id::text AS xid_text, position FROM events"
                              " ORDER BY transaction_id DESC, position DESC LIMIT 1"},
    [STMT_IDEM_GET] = {"wx_idem_get",
                       "SELECT request, status, body, location, position_hi, position_lo,"
                       " created_at_ms FROM idempotency WHERE key = $1"},
    [STMT_IDEM_EXPIRE] = {"wx_idem_expire",
                          "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency"
                          " WHERE created_at_ms < $1 LIMIT $2)"},
    [STMT_SNAPSHOT_GET] = {"wx_snapshot_get",
                           "SELECT version, occurred_at_ms, data FROM snapshots"
                           " WHERE stream_id = $1 AND version <= $2"
                           " ORDER BY version DESC LIMIT 1"},
};

struct pg_store {
    struct es_store base; /* must be first */
    char *url;
    char *schema;

    /* Reconnection: no attempt before retry_at_ms (monotonic); why the
     * last one failed, for /readyz. */
    pthread_mutex_t health_lock;
    int64_t retry_at_ms;
    int64_t backoff_ms;
    char last_error[WX_ERROR_TEXT_BYTES];

    pthread_mutex_t write_lock; /* commits come from one writer; this makes it certain */
    PGconn *writer;             /* NULL until (re)connected */
    struct wx_map pending;      /* the commit in progress: stream id -> version + 1 */
    struct wx_buf params[CP_COUNT]; /* the arrays, binary */
    int32_t counts[CP_COUNT];
    bool has_null[CP_COUNT];

    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    PGconn *idle[WX_PG_READERS_MAX];
    size_t idle_len;
    size_t open_len; /* idle and lent */
};

/* ---- health ---- */

static void note_failure(struct pg_store *s, const char *what, const char *why)
{
    pthread_mutex_lock(&s->health_lock);
    snprintf(s->last_error, sizeof(s->last_error), "%s: %s", what, why);
    size_t len = strlen(s->last_error);
    while (len > 0 && (s->last_error[len - 1] == '\n' || s->last_error[len - 1] == ' '))
        s->last_error[--len] = '\0';
    pthread_mutex_unlock(&s->health_lock);
    wx_logf(WX_LOG_ERROR, "postgres: %s: %s", what, why);
}

/* 0 when a connection may be attempted now. While healthy anyone may
 * connect; after a failure one caller at a time probes, once the backoff
 * has passed, and the others fail at once until it succeeds. */
static int attempt_allowed(struct pg_store *s)
{
    int64_t now = wx_monotonic_ms();
    int err = 0;
    pthread_mutex_lock(&s->health_lock);
    if (s->backoff_ms > 0 && now < s->retry_at_ms)
        err = WX_ERR_IO;
    else if (s->backoff_ms > 0)
        s->retry_at_ms = now + WX_PG_CONNECT_TIMEOUT_S * 1000;
    pthread_mutex_unlock(&s->health_lock);
    return err;
}

static void attempt_done(struct pg_store *s, bool ok)
{
    pthread_mutex_lock(&s->health_lock);
    if (ok) {
        s->backoff_ms = 0;
        s->retry_at_ms = 0;
        s->last_error[0] = '\0';
    } else {
        s->backoff_ms = s->backoff_ms == 0 ? WX_PG_RECONNECT_MS_MIN : s->backoff_ms * 2;
        if (s->backoff_ms > WX_PG_RECONNECT_MS_MAX)
            s->backoff_ms = WX_PG_RECONNECT_MS_MAX;
        s->retry_at_ms = wx_monotonic_ms() + s->backoff_ms;
    }
    pthread_mutex_unlock(&s->health_lock);
}

static void pg_last_error(struct es_store *store, char *out, size_t out_bytes)
{
    struct pg_store *s = (struct pg_store *)store;
    pthread_mutex_lock(&s->health_lock);
    snprintf(out, out_bytes, "%s", s->last_error);
    pthread_mutex_unlock(&s->health_lock);
}

/* ---- connections ---- */

static int exec_simple(struct pg_store *s, PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int err = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : WX_ERR_IO;
    if (err)
        note_failure(s, "setting up a connection", PQerrorMessage(c));
    PQclear(r);
    return err;
}

static int prepare_all(struct pg_store *s, PGconn *c)
{
    for (size_t i = 0; i < STMT_COUNT; i++) {
        PGresult *r = PQprepare(c, stmts[i].name, stmts[i].sql, 0, NULL);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            note_failure(s, "preparing statements", PQerrorMessage(c));
            return WX_ERR_IO;
        }
    }
    return 0;
}

/* Session settings every connection shares: wallex's schema first in the
 * search path, and a bound on every statement. */
static int session_setup(struct pg_store *s, PGconn *c)
{
    char *schema = PQescapeIdentifier(c, s->schema, strlen(s->schema));
    if (schema == NULL)
        return WX_ERR_NOMEM;
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_printf(&b, "SET search_path TO %s, pg_catalog; SET statement_timeout = %d;"
                      " SET client_min_messages = warning;",
                  schema, WX_PG_STATEMENT_TIMEOUT_MS);
    PQfreemem(schema);
    int err = wx_buf_ok(&b) ? exec_simple(s, c, b.data) : WX_ERR_NOMEM;
    wx_buf_free(&b);
    return err;
}

/* A new connection with the session set up; statements prepared when
 * `prepare` (the schema exists). */
static int connect_one(struct pg_store *s, bool prepare, PGconn **out)
{
    int err = attempt_allowed(s);
    if (err)
        return err;
    /* Our defaults come before dbname, so a URL's own settings win. */
    const char *const keys[] = {"connect_timeout", "application_name", "client_encoding",
                                "dbname", NULL};
    const char *const values[] = {PG_STR(WX_PG_CONNECT_TIMEOUT_S), "wallex", "UTF8", s->url,
                                  NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    if (c == NULL) {
        attempt_done(s, false);
        return WX_ERR_NOMEM;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        note_failure(s, "cannot connect", PQerrorMessage(c));
        err = WX_ERR_IO;
    }
    if (!err)
        err = session_setup(s, c);
    if (!err && prepare)
        err = prepare_all(s, c);
    attempt_done(s, err == 0);
    if (err) {
        PQfinish(c);
        return err;
    }
    *out = c;
    return 0;
}

/* A statement failed on c: true when the connection itself is gone (the
 * server restarted, the network broke), so it must be made again. */
static bool conn_lost(struct pg_store *s, PGconn *c, const char *what)
{
    note_failure(s, what, PQerrorMessage(c));
    return PQstatus(c) != CONNECTION_OK;
}

static void pool_drain_idle(struct pg_store *s)
{
    pthread_mutex_lock(&s->pool_lock);
    while (s->idle_len > 0) {
        PQfinish(s->idle[--s->idle_len]);
        s->open_len--;
    }
    pthread_cond_broadcast(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_lock);
}

static int pool_acquire(struct pg_store *s, PGconn **out)
{
    struct timespec until;
    wx_deadline_after_ms(WX_PG_POOL_WAIT_MS_MAX, &until);
    pthread_mutex_lock(&s->pool_lock);
    while (s->idle_len == 0 && s->open_len >= WX_PG_READERS_MAX) {
        if (pthread_cond_timedwait(&s->pool_cond, &s->pool_lock, &until) != 0) {
            pthread_mutex_unlock(&s->pool_lock);
            return WX_ERR_BUSY;
        }
    }
    if (s->idle_len > 0) {
        *out = s->idle[--s->idle_len];
        pthread_mutex_unlock(&s->pool_lock);
        return 0;
    }
    s->open_len++; /* a slot for the connection made below */
    pthread_mutex_unlock(&s->pool_lock);
    int err = connect_one(s, true, out);
    if (err) {
        pthread_mutex_lock(&s->pool_lock);
        s->open_len--;
        pthread_cond_signal(&s->pool_cond);
        pthread_mutex_unlock(&s->pool_lock);
    }
    return err;
}

static void pool_release(struct pg_store *s, PGconn *c, bool lost)
{
    pthread_mutex_lock(&s->pool_lock);
    if (lost) {
        PQfinish(c);
        s->open_len--;
    } else {
        assert(s->idle_len < WX_PG_READERS_MAX);
        s->idle[s->idle_len++] = c;
    }
    pthread_cond_signal(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_lock);
}

/* Runs a prepared read on a pooled connection. A connection found dead
 * (PostgreSQL restarted: every idle one is dead too) is dropped with the
 * idle ones, and the read is tried once more on a new connection. */
static int pool_query(struct pg_store *s, enum stmt_id id, int n, const char *const *values,
                      PGresult **res_out)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *c;
        int err = pool_acquire(s, &c);
        if (err)
            return err;
        PGresult *r = PQexecPrepared(c, stmts[id].name, n, values, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            pool_release(s, c, false);
            *res_out = r;
            return 0;
        }
        PQclear(r);
        bool lost = conn_lost(s, c, stmts[id].name);
        pool_release(s, c, lost);
        if (!lost)
            return WX_ERR_IO;
        pool_drain_idle(s);
    }
    return WX_ERR_IO;
}

/* ---- schema ---- */

static int query_int(struct pg_store *s, PGconn *c, const char *sql, int64_t *out)
{
    PGresult *r = PQexec(c, sql);
    int err = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : WX_ERR_IO;
    if (err)
        note_failure(s, "reading the schema", PQerrorMessage(c));
    else
        *out = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                                                         : -1;
    PQclear(r);
    return err;
}

/* WX_ERR_NOT_FOUND when the schema has no wallex tables. */
static int schema_exists(struct pg_store *s, PGconn *c)
{
    const char *values[] = {s->schema};
    PGresult *r = PQexecParams(c, "SELECT 1 FROM pg_tables WHERE schemaname = $1"
                                  " AND tablename = 'schema_version'",
                               1, NULL, values, NULL, NULL, 0);
    int err = PQresultStatus(r) != PGRES_TUPLES_OK ? WX_ERR_IO
              : PQntuples(r) == 0                  ? WX_ERR_NOT_FOUND
                                                   : 0;
    if (err == WX_ERR_IO)
        note_failure(s, "looking for the schema", PQerrorMessage(c));
    PQclear(r);
    return err;
}

/* Creates or upgrades wallex's tables, one node at a time, and refuses a
 * layout newer than this build's. */
static int ensure_schema(struct pg_store *s, PGconn *c)
{
    char *schema = PQescapeIdentifier(c, s->schema, strlen(s->schema));
    if (schema == NULL)
        return WX_ERR_NOMEM;
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_printf(&b, "BEGIN; SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK_KEY ");"
                      " CREATE SCHEMA IF NOT EXISTS %s;", schema);
    PQfreemem(schema);
    int err = wx_buf_ok(&b) ? exec_simple(s, c, b.data) : WX_ERR_NOMEM;
    wx_buf_free(&b);
    int64_t layout = -1;
    if (!err)
        err = exec_simple(s, c, schema_sql);
    if (!err)
        err = query_int(s, c, "SELECT max(layout) FROM schema_version", &layout);
    if (!err && layout > PG_SCHEMA_LAYOUT) {
        wx_logf(WX_LOG_ERROR,
                "postgres: schema %s has layout %" PRId64 ", newer than this build's %d;"
                " upgrade wallex",
                s->schema, layout, PG_SCHEMA_LAYOUT);
        note_failure(s, "schema", "written by a newer wallex");
        err = WX_ERR_INVALID;
    }
    if (!err && layout < PG_SCHEMA_LAYOUT)
        err = exec_simple(s, c, "DELETE FROM schema_version; INSERT INTO schema_version"
                                " VALUES (" PG_STR(PG_SCHEMA_LAYOUT) ");");
    err = exec_simple(s, c, err ? "ROLLBACK" : "COMMIT") ? (err ? err : WX_ERR_IO) : err;
    return err;
}

/* ---- open and close ---- */

/* The batch statement's plan is made once per connection: planning it
 * afresh for every batch cost about as much as running it (0.5-1 ms). */
static int writer_setup(struct pg_store *s, PGconn *c)
{
    return exec_simple(s, c, "SET plan_cache_mode = force_generic_plan");
}


static void pg_close(struct es_store *store)
{
    struct pg_store *s = (struct pg_store *)store;
    if (s->writer != NULL)
        PQfinish(s->writer);
    assert(s->open_len == s->idle_len); /* every read connection was given back */
    while (s->idle_len > 0)
        PQfinish(s->idle[--s->idle_len]);
    for (size_t i = 0; i < CP_COUNT; i++)
        wx_buf_free(&s->params[i]);
    wx_map_free(&s->pending);
    pthread_mutex_destroy(&s->health_lock);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->pool_cond);
    free(s->url);
    free(s->schema);
    free(s);
}

static int pg_open(const struct es_store_config *config, struct es_store **store_out)
{
    if (config->url == NULL || config->url[0] == '\0') {
        wx_logf(WX_LOG_ERROR, "postgres: no connection URL (--pg or WALLEX_PG_URL)");
        return WX_ERR_INVALID;
    }
    struct pg_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WX_ERR_NOMEM;
    s->base.ops = &es_store_postgres_ops;
    pthread_mutex_init(&s->health_lock, NULL);
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_cond_init(&s->pool_cond, NULL);
    wx_map_init(&s->pending);
    for (size_t i = 0; i < CP_COUNT; i++)
        wx_buf_init(&s->params[i]);
    s->url = strdup(config->url);
    s->schema = strdup(config->pg_schema ? config->pg_schema : PG_SCHEMA_DEFAULT);
    int err = s->url && s->schema ? 0 : WX_ERR_NOMEM;
    if (!err)
        err = connect_one(s, false, &s->writer);
    if (!err && config->must_exist)
        err = schema_exists(s, s->writer);
    if (!err)
        err = ensure_schema(s, s->writer);
    if (!err)
        err = prepare_all(s, s->writer);
    if (!err)
        err = writer_setup(s, s->writer);
    if (err) {
        pg_close(&s->base);
        return err;
    }
    *store_out = &s->base;
    return 0;
}

/* ---- commit ---- */

/* The statement's arrays go in PostgreSQL's binary format (what
 * array_recv reads): no escaping here, no parsing there. A header of five
 * int32 (dimensions, has-nulls, element type, length, lower bound), then
 * each element as its int32 length (-1: NULL) and its bytes, integers big
 * endian. The header is written when the array is finished. */
#define PG_ARRAY_HEADER_BYTES 20

static const uint32_t param_oid[CP_COUNT] = {
    [CP_EV_ITEM] = PG_OID_INT4, [CP_EV_STREAM] = PG_OID_TEXT, [CP_EV_VERSION] = PG_OID_INT8,
    [CP_EV_ID] = PG_OID_TEXT, [CP_EV_TYPE] = PG_OID_TEXT, [CP_EV_SCHEMA] = PG_OID_INT4,
    [CP_EV_DATA] = PG_OID_TEXT, [CP_EV_METADATA] = PG_OID_TEXT, [CP_EV_AT] = PG_OID_INT8,
    [CP_CHK_ITEM] = PG_OID_INT4, [CP_CHK_STREAM] = PG_OID_TEXT, [CP_CHK_VERSION] = PG_OID_INT8,
    [CP_ID_ITEM] = PG_OID_INT4, [CP_ID_KEY] = PG_OID_TEXT, [CP_ID_REQUEST] = PG_OID_BYTEA,
    [CP_ID_STATUS] = PG_OID_INT4, [CP_ID_BODY] = PG_OID_BYTEA, [CP_ID_LOCATION] = PG_OID_TEXT,
    [CP_ID_LAST_STREAM] = PG_OID_TEXT, [CP_ID_LAST_VERSION] = PG_OID_INT8,
    [CP_ID_CREATED] = PG_OID_INT8, [CP_ID_EXPIRED] = PG_OID_INT8,
    [CP_SN_STREAM] = PG_OID_TEXT, [CP_SN_VERSION] = PG_OID_INT8, [CP_SN_AT] = PG_OID_INT8,
    [CP_SN_DATA] = PG_OID_BYTEA,
    [CP_NX_ITEM] = PG_OID_INT4, [CP_NX_STREAM] = PG_OID_TEXT, [CP_NX_VERSION] = PG_OID_INT8,
};

static void put_be32(struct wx_buf *b, uint32_t v)
{
    unsigned char x[4] = {v >> 24, v >> 16, v >> 8, v};
    wx_buf_add(b, x, 4);
}

static void arr_bytes(struct pg_store *s, enum commit_param p, const char *bytes, size_t len)
{
    assert(param_oid[p] == PG_OID_TEXT || param_oid[p] == PG_OID_BYTEA);
    assert(len <= INT32_MAX);
    put_be32(&s->params[p], (uint32_t)len);
    wx_buf_add(&s->params[p], bytes, len);
    s->counts[p]++;
}

/* A string, or NULL. */
static void arr_str(struct pg_store *s, enum commit_param p, const char *str)
{
    if (str != NULL) {
        arr_bytes(s, p, str, strlen(str));
        return;
    }
    put_be32(&s->params[p], UINT32_MAX); /* -1 */
    s->has_null[p] = true;
    s->counts[p]++;
}

static void arr_int(struct pg_store *s, enum commit_param p, int64_t v)
{
    struct wx_buf *b = &s->params[p];
    if (param_oid[p] == PG_OID_INT4) {
        assert(v >= INT32_MIN && v <= INT32_MAX);
        put_be32(b, 4);
        put_be32(b, (uint32_t)(int32_t)v);
    } else {
        assert(param_oid[p] == PG_OID_INT8);
        put_be32(b, 8);
        put_be32(b, (uint32_t)((uint64_t)v >> 32));
        put_be32(b, (uint32_t)v);
    }
    s->counts[p]++;
}

static void params_reset(struct pg_store *s)
{
    static const char header[PG_ARRAY_HEADER_BYTES];
    for (size_t i = 0; i < CP_COUNT; i++) {
        wx_buf_reset(&s->params[i]);
        wx_buf_add(&s->params[i], header, sizeof(header));
        s->counts[i] = 0;
        s->has_null[i] = false;
    }
}

/* Writes the header; an empty array has no dimension (12 bytes). */
static void params_finish(struct pg_store *s)
{
    for (size_t i = 0; i < CP_COUNT; i++) {
        struct wx_buf *b = &s->params[i];
        if (!wx_buf_ok(b))
            continue;
        uint32_t header[5] = {s->counts[i] > 0, s->has_null[i], param_oid[i],
                              (uint32_t)s->counts[i], 1};
        for (size_t k = 0; k < 5; k++) {
            unsigned char *x = (unsigned char *)b->data + 4 * k;
            x[0] = (unsigned char)(header[k] >> 24);
            x[1] = (unsigned char)(header[k] >> 16);
            x[2] = (unsigned char)(header[k] >> 8);
            x[3] = (unsigned char)header[k];
        }
        if (s->counts[i] == 0)
            b->len = 12;
    }
}

/* The writer's connection, made again when it was lost. */
static int writer_conn(struct pg_store *s, PGconn **out)
{
    if (s->writer == NULL) {
        int err = connect_one(s, true, &s->writer);
        if (!err && (err = writer_setup(s, s->writer)) != 0) {
            PQfinish(s->writer);
            s->writer = NULL;
        }
        if (err)
            return err;
    }
    *out = s->writer;
    return 0;
}

static void writer_lost(struct pg_store *s)
{
    PQfinish(s->writer);
    s->writer = NULL;
}

/* The stream's committed version, on the writer's connection (for an
 * ES_EXPECT_ANY append, whose versions follow whatever is there). */
static int writer_version(struct pg_store *s, const char *stream_id, int64_t *version_out)
{
    PGconn *c;
    int err = writer_conn(s, &c);
    if (err)
        return err;
    const char *values[] = {stream_id};
    PGresult *r = PQexecPrepared(c, stmts[STMT_STREAM_VERSION].name, 1, values, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        *version_out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    } else {
        err = WX_ERR_IO;
        if (conn_lost(s, c, "reading a stream version"))
            writer_lost(s);
    }
    PQclear(r);
    return err;
}

/* Where one append starts: after the batch's own earlier appends to the
 * stream, else where its expectation says (checked by the statement), or,
 * for ES_EXPECT_ANY, after what is stored now. */
static int append_base(struct pg_store *s, size_t item, const struct es_stream_append *ap,
                       int64_t *base_out)
{
    uintptr_t pending = (uintptr_t)wx_map_get(&s->pending, ap->stream_id);
    if (pending != 0) {
        *base_out = (int64_t)(pending - 1);
        return es_expect_ok(&ap->expect, *base_out) ? 0 : WX_ERR_CONFLICT;
    }
    if (ap->expect.kind == ES_EXPECT_ANY)
        return writer_version(s, ap->stream_id, base_out);
    *base_out = ap->expect.kind == ES_EXPECT_EXACT ? ap->expect.version : 0;
    if (*base_out > 0) {
        arr_int(s, CP_CHK_ITEM, (int64_t)item);
        arr_str(s, CP_CHK_STREAM, ap->stream_id);
        arr_int(s, CP_CHK_VERSION, *base_out);
    }
    /* Nothing may follow the base yet (a check, or the first event). */
    arr_int(s, CP_NX_ITEM, (int64_t)item);
    arr_str(s, CP_NX_STREAM, ap->stream_id);
    arr_int(s, CP_NX_VERSION, *base_out + 1);
    return 0;
}

static int plan_append(struct pg_store *s, size_t item, struct es_stream_append *ap,
                       int64_t *ord)
{
    int64_t base = 0;
    int err = append_base(s, item, ap, &base);
    if (err)
        return err;
    for (size_t e = 0; e < ap->events_len; e++) {
        struct es_event *ev = &ap->events[e];
        ev->stream_id = ap->stream_id;
        ev->version = base + 1 + (int64_t)e;
        arr_int(s, CP_EV_ITEM, (int64_t)item);
        arr_str(s, CP_EV_STREAM, ap->stream_id);
        arr_int(s, CP_EV_VERSION, ev->version);
        arr_str(s, CP_EV_ID, ev->event_id);
        arr_str(s, CP_EV_TYPE, ev->type);
        arr_int(s, CP_EV_SCHEMA, ev->schema_version);
        arr_bytes(s, CP_EV_DATA, ev->data, ev->data_len);
        arr_bytes(s, CP_EV_METADATA, ev->metadata, ev->metadata_len);
        arr_int(s, CP_EV_AT, ev->occurred_at_ms);
        (*ord)++;
    }
    uintptr_t version = (uintptr_t)(base + (int64_t)ap->events_len);
    return wx_map_put(&s->pending, ap->stream_id, (void *)(version + 1));
}

/* last: the item's last event, NULL when it appended none. */
static void plan_idem(struct pg_store *s, size_t item, const struct es_idem_record *r,
                      const struct es_event *last)
{
    arr_int(s, CP_ID_ITEM, (int64_t)item);
    arr_str(s, CP_ID_KEY, r->key);
    arr_bytes(s, CP_ID_REQUEST, r->request, r->request_len);
    arr_int(s, CP_ID_STATUS, r->status);
    arr_bytes(s, CP_ID_BODY, r->body ? r->body : "", r->body_len);
    arr_str(s, CP_ID_LOCATION, r->location);
    arr_str(s, CP_ID_LAST_STREAM, last ? last->stream_id : NULL);
    arr_int(s, CP_ID_LAST_VERSION, last ? last->version : 0);
    arr_int(s, CP_ID_CREATED, r->created_at_ms);
    arr_int(s, CP_ID_EXPIRED, r->expired_before_ms);
}

/* Fills the statement's arrays; WX_ERR_CONFLICT (the item marked) when
 * the batch contradicts itself. *events_out: events in the batch. */
static int plan_batch(struct pg_store *s, struct es_batch_item *items, size_t items_len,
                      int64_t *events_out)
{
    wx_map_clear(&s->pending);
    params_reset(s);
    int64_t ord = 0;
    for (size_t i = 0; i < items_len; i++) {
        for (size_t a = 0; a < items[i].appends_len; a++) {
            int err = plan_append(s, i, &items[i].appends[a], &ord);
            items[i].conflict = err == WX_ERR_CONFLICT;
            if (err)
                return err;
        }
        if (items[i].idem != NULL) {
            const struct es_event *last = NULL;
            for (size_t a = 0; a < items[i].appends_len; a++)
                if (items[i].appends[a].events_len > 0)
                    last = &items[i].appends[a].events[items[i].appends[a].events_len - 1];
            plan_idem(s, i, items[i].idem, last);
        }
        for (size_t k = 0; k < items[i].snapshots_len; k++) {
            const struct es_snapshot *sn = &items[i].snapshots[k];
            arr_str(s, CP_SN_STREAM, sn->stream_id);
            arr_int(s, CP_SN_VERSION, sn->version);
            arr_int(s, CP_SN_AT, sn->occurred_at_ms);
            arr_bytes(s, CP_SN_DATA, sn->data, sn->data_len);
        }
    }
    params_finish(s);
    for (size_t i = 0; i < CP_COUNT; i++)
        if (!wx_buf_ok(&s->params[i]))
            return WX_ERR_NOMEM;
    *events_out = ord;
    return 0;
}

/* Marks the items a conflict's DETAIL names ("3,7"); when it names none
 * the writer cannot tell which lost, so every item is decided again. */
static void mark_conflicts(PGresult *r, struct es_batch_item *items, size_t items_len)
{
    const char *p = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    bool marked = false;
    while (p != NULL && *p != '\0') {
        char *end;
        unsigned long long i = strtoull(p, &end, 10);
        if (end == p)
            break;
        if (i < items_len)
            marked = items[i].conflict = true;
        p = *end == ',' ? end + 1 : end;
    }
    for (size_t i = 0; i < items_len && !marked; i++)
        items[i].conflict = true;
}

/* An event another writer stored first: the unique violation's DETAIL,
 * "Key (stream_id, version)=(cat:a, 5) already exists.", names the
 * stream and version, and so the item that appended them. Stream ids have
 * no ", " in them (base/id.h). When it cannot be read, every item is
 * decided again. */
static void mark_duplicate(PGresult *r, struct es_batch_item *items, size_t items_len)
{
    const char *d = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    const char *open = d ? strstr(d, ")=(") : NULL;
    const char *comma = open ? strstr(open, ", ") : NULL;
    bool marked = false;
    if (comma != NULL) {
        size_t stream_len = (size_t)(comma - (open + 3));
        int64_t version = strtoll(comma + 2, NULL, 10);
        for (size_t i = 0; i < items_len && !marked; i++) {
            for (size_t a = 0; a < items[i].appends_len; a++) {
                const struct es_stream_append *ap = &items[i].appends[a];
                if (ap->events_len > 0 && strlen(ap->stream_id) == stream_len &&
                    memcmp(ap->stream_id, open + 3, stream_len) == 0 &&
                    version >= ap->events[0].version &&
                    version <= ap->events[ap->events_len - 1].version)
                    marked = items[i].conflict = true;
            }
        }
    }
    for (size_t i = 0; i < items_len && !marked; i++)
        items[i].conflict = true;
}

/* The committed positions (the transaction id and one position per event,
 * in batch order) into the events and the idempotency records. */
static int assign_positions(PGresult *r, struct es_batch_item *items, size_t items_len,
                            int64_t events)
{
    uint64_t xid = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    const char *p = PQgetisnull(r, 0, 2) ? "" : PQgetvalue(r, 0, 2);
    int64_t seen = 0;
    for (size_t i = 0; i < items_len; i++) {
        struct es_position last = {0, 0};
        bool appended = false;
        for (size_t a = 0; a < items[i].appends_len; a++) {
            struct es_stream_append *ap = &items[i].appends[a];
            appended = appended || ap->events_len > 0;
            for (size_t e = 0; e < ap->events_len; e++, seen++) {
                char *end;
                uint64_t pos = strtoull(p, &end, 10);
                if (end == p || xid == 0)
                    return WX_ERR_CORRUPT;
                last = ap->events[e].position = (struct es_position){xid, pos};
                p = *end == ',' ? end + 1 : end;
            }
        }
        if (items[i].idem != NULL) {
            items[i].idem->has_position = appended;
            items[i].idem->position = last;
        }
    }
    return seen == events && *p == '\0' ? 0 : WX_ERR_CORRUPT;
}

/* Returned by commit_once for a deadlock victim: send it again. */
#define COMMIT_AGAIN (-1)

static int commit_once(struct pg_store *s, struct es_batch_item *items, size_t items_len,
                       int64_t events)
{
    PGconn *c;
    int err = writer_conn(s, &c);
    if (err)
        return err;
    const char *values[CP_COUNT];
    int lengths[CP_COUNT], formats[CP_COUNT];
    for (size_t i = 0; i < CP_COUNT; i++) {
        values[i] = s->params[i].data;
        lengths[i] = (int)s->params[i].len;
        formats[i] = 1; /* binary */
    }
    PGresult *r = PQexecPrepared(c, stmts[STMT_COMMIT].name, CP_COUNT, values, lengths, formats,
                                 0);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        err = assign_positions(r, items, items_len, events);
    } else if (state != NULL && strcmp(state, PG_CONFLICT_SQLSTATE) == 0) {
        mark_conflicts(r, items, items_len);
        err = WX_ERR_CONFLICT;
    } else if (state != NULL && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0)) {
        err = COMMIT_AGAIN;
    } else if (state != NULL && strcmp(state, "23505") == 0) {
        mark_duplicate(r, items, items_len);
        err = WX_ERR_CONFLICT;
    } else {
        err = WX_ERR_IO;
        if (conn_lost(s, c, "commit"))
            writer_lost(s);
    }
    PQclear(r);
    return err;
}

static int pg_commit(struct es_store *store, struct es_batch_item *items, size_t items_len)
{
    struct pg_store *s = (struct pg_store *)store;
    pthread_mutex_lock(&s->write_lock);
    int64_t events = 0;
    int err = plan_batch(s, items, items_len, &events);
    for (int attempt = 0; !err || err == COMMIT_AGAIN; attempt++) {
        if (attempt > WX_PG_DEADLOCK_RETRIES_MAX) {
            err = WX_ERR_BUSY;
            break;
        }
        err = commit_once(s, items, items_len, events);
        if (err != COMMIT_AGAIN)
            break;
    }
    pthread_mutex_unlock(&s->write_lock);
    return err;
}

/* ---- reads ---- */

static int each_event(PGresult *r, es_event_fn fn, void *ctx, struct es_event *last)
{
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        struct es_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.position.hi = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        ev.position.lo = strtoull(PQgetvalue(r, i, 1), NULL, 10);
        snprintf(ev.event_id, sizeof(ev.event_id), "%s", PQgetvalue(r, i, 2));
        ev.stream_id = PQgetvalue(r, i, 3);
        ev.version = strtoll(PQgetvalue(r, i, 4), NULL, 10);
        ev.type = PQgetvalue(r, i, 5);
        ev.data = PQgetvalue(r, i, 6);
        ev.data_len = (size_t)PQgetlength(r, i, 6);
        ev.metadata = PQgetvalue(r, i, 7);
        ev.metadata_len = (size_t)PQgetlength(r, i, 7);
        ev.occurred_at_ms = strtoll(PQgetvalue(r, i, 8), NULL, 10);
        ev.schema_version = (int)strtol(PQgetvalue(r, i, 9), NULL, 10);
        int err = fn(ctx, &ev);
        if (err)
            return err;
        *last = ev;
    }
    return 0;
}

/* A page of at most this many rows; big reads go page by page so no
 * result holds more than this in memory. */
static size_t page_rows(size_t left)
{
    return left < WX_SCAN_BATCH_EVENTS_MAX ? left : WX_SCAN_BATCH_EVENTS_MAX;
}

static int pg_read_stream(struct es_store *store, const char *stream_id, int64_t from_version,
                          size_t max_events, es_event_fn fn, void *ctx)
{
    struct pg_store *s = (struct pg_store *)store;
    int err = 0;
    for (size_t left = max_events; left > 0 && !err;) {
        char from[24], limit[24];
        snprintf(from, sizeof(from), "%" PRId64, from_version);
        snprintf(limit, sizeof(limit), "%zu", page_rows(left));
        const char *values[] = {stream_id, from, limit};
        PGresult *r;
        err = pool_query(s, STMT_READ_STREAM, 3, values, &r);
        if (err)
            break;
        size_t n = (size_t)PQntuples(r);
        struct es_event last;
        err = each_event(r, fn, ctx, &last);
        PQclear(r);
        if (n < page_rows(left))
            break;
        left -= n;
        from_version = last.version + 1;
    }
    return err;
}

/* An array literal of the strings, each quoted ("a","b\\"c"). */
static void text_array(struct wx_buf *b, const struct es_stream_from *from, size_t n)
{
    wx_buf_addc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            wx_buf_addc(b, ',');
        wx_buf_addc(b, '"');
        for (const char *p = from[i].stream_id; *p != '\0'; p++) {
            if (*p == '"' || *p == '\\')
                wx_buf_addc(b, '\\');
            wx_buf_addc(b, *p);
        }
        wx_buf_addc(b, '"');
    }
    wx_buf_addc(b, '}');
}

/* One statement: max_events is at most a page (store.h). */
static int pg_read_streams(struct es_store *store, const struct es_stream_from *from, size_t n,
                           size_t max_events, es_event_fn fn, void *ctx)
{
    struct pg_store *s = (struct pg_store *)store;
    assert(max_events <= WX_SCAN_BATCH_EVENTS_MAX);
    struct wx_buf ids, versions;
    wx_buf_init(&ids);
    wx_buf_init(&versions);
    text_array(&ids, from, n);
    wx_buf_addc(&versions, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            wx_buf_addc(&versions, ',');
        wx_buf_add_i64(&versions, from[i].after_version);
    }
    wx_buf_addc(&versions, '}');
    char limit[24];
    snprintf(limit, sizeof(limit), "%zu", max_events);
    int err = wx_buf_ok(&ids) && wx_buf_ok(&versions) ? 0 : WX_ERR_NOMEM;
    if (!err) {
        const char *values[] = {ids.data, versions.data, limit};
        PGresult *r;
        err = pool_query(s, STMT_READ_STREAMS, 3, values, &r);
        if (!err) {
            struct es_event last;
            err = each_event(r, fn, ctx, &last);
            PQclear(r);
        }
    }
    wx_buf_free(&ids);
    wx_buf_free(&versions);
    return err;
}

static int pg_read_log(struct es_store *store, const struct es_position *after,
                       size_t max_events, es_event_fn fn, void *ctx)
{
    struct pg_store *s = (struct pg_store *)store;
    struct es_position from = *after;
    int err = 0;
    for (size_t left = max_events; left > 0 && !err;) {
        char hi[24], lo[24], limit[24];
        snprintf(hi, sizeof(hi), "%" PRIu64, from.hi);
        snprintf(lo, sizeof(lo), "%" PRIu64, from.lo > INT64_MAX ? (uint64_t)INT64_MAX : from.lo);
        snprintf(limit, sizeof(limit), "%zu", page_rows(left));
        const char *values[] = {hi, lo, limit};
        PGresult *r;
        err = pool_query(s, STMT_READ_LOG, 3, values, &r);
        if (err)
            break;
        size_t n = (size_t)PQntuples(r);
        struct es_event last;
        err = each_event(r, fn, ctx, &last);
        PQclear(r);
        if (n < page_rows(left))
            break;
        left -= n;
        from = last.position;
    }
    return err;
}

static int pg_stream_version(struct es_store *store, const char *stream_id, int64_t *version_out)
{
    struct pg_store *s = (struct pg_store *)store;
    const char *values[] = {stream_id};
    PGresult *r;
    int err = pool_query(s, STMT_STREAM_VERSION, 1, values, &r);
    if (err)
        return err;
    if (PQntuples(r) == 1)
        *version_out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        err = WX_ERR_IO;
    PQclear(r);
    return err;
}

/* The position of the one row of a head or tail query (start: none). */
static int last_position(struct pg_store *s, enum stmt_id id, struct es_position *out)
{
    PGresult *r;
    int err = pool_query(s, id, 0, NULL, &r);
    if (err)
        return err;
    *out = es_position_start();
    if (PQntuples(r) == 1)
        *out = (struct es_position){strtoull(PQgetvalue(r, 0, 0), NULL, 10),
                                    strtoull(PQgetvalue(r, 0, 1), NULL, 10)};
    PQclear(r);
    return 0;
}

static int pg_head(struct es_store *store, struct es_position *head_out)
{
    return last_position((struct pg_store *)store, STMT_HEAD, head_out);
}

static int pg_tail(struct es_store *store, struct es_position *tail_out)
{
    return last_position((struct pg_store *)store, STMT_TAIL, tail_out);
}

/* A bytea column (text form, "\x...") into the arena, NUL-terminated. */
static const char *arena_bytes(struct wx_arena *arena, PGresult *r, int row, int col,
                               size_t *len_out)
{
    size_t len = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &len);
    if (raw == NULL)
        return NULL;
    char *copy = wx_arena_strndup(arena, (const char *)raw, len);
    PQfreemem(raw);
    *len_out = len;
    return copy;
}

static int pg_idem_get(struct es_store *store, const char *key, struct wx_arena *arena,
                       struct es_idem_record *record_out)
{
    struct pg_store *s = (struct pg_store *)store;
    const char *values[] = {key};
    PGresult *r;
    int err = pool_query(s, STMT_IDEM_GET, 1, values, &r);
    if (err)
        return err;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return WX_ERR_NOT_FOUND;
    }
    struct es_idem_record rec = {0};
    rec.key = wx_arena_strdup(arena, key);
    rec.request = arena_bytes(arena, r, 0, 0, &rec.request_len);
    rec.status = (int)strtol(PQgetvalue(r, 0, 1), NULL, 10);
    rec.body = arena_bytes(arena, r, 0, 2, &rec.body_len);
    if (!PQgetisnull(r, 0, 3))
        rec.location = wx_arena_strdup(arena, PQgetvalue(r, 0, 3));
    if (!PQgetisnull(r, 0, 5)) {
        rec.has_position = true;
        rec.position.hi = strtoull(PQgetvalue(r, 0, 4), NULL, 10);
        rec.position.lo = strtoull(PQgetvalue(r, 0, 5), NULL, 10);
    }
    rec.created_at_ms = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    if (rec.key == NULL || rec.request == NULL || rec.body == NULL ||
        (!PQgetisnull(r, 0, 3) && rec.location == NULL))
        err = WX_ERR_NOMEM;
    else
        *record_out = rec;
    PQclear(r);
    return err;
}

static int pg_idem_expire(struct es_store *store, int64_t before_ms, size_t max_records,
                          size_t *deleted_out)
{
    struct pg_store *s = (struct pg_store *)store;
    char before[24], limit[24];
    snprintf(before, sizeof(before), "%" PRId64, before_ms);
    snprintf(limit, sizeof(limit), "%zu", max_records);
    const char *values[] = {before, limit};
    PGresult *r;
    int err = pool_query(s, STMT_IDEM_EXPIRE, 2, values, &r);
    if (err)
        return err;
    *deleted_out = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

static int pg_snapshot_get(struct es_store *store, const char *stream_id, int64_t version_max,
                           struct wx_arena *arena, struct es_snapshot *snapshot_out)
{
    struct pg_store *s = (struct pg_store *)store;
    char max[24];
    snprintf(max, sizeof(max), "%" PRId64, version_max > 0 ? version_max : INT64_MAX);
    const char *values[] = {stream_id, max};
    PGresult *r;
    int err = pool_query(s, STMT_SNAPSHOT_GET, 2, values, &r);
    if (err)
        return err;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return WX_ERR_NOT_FOUND;
    }
    struct es_snapshot snap = {
        .stream_id = wx_arena_strdup(arena, stream_id),
        .version = strtoll(PQgetvalue(r, 0, 0), NULL, 10),
        .occurred_at_ms = strtoll(PQgetvalue(r, 0, 1), NULL, 10),
    };
    snap.data = arena_bytes(arena, r, 0, 2, &snap.data_len);
    if (snap.stream_id == NULL || snap.data == NULL)
        err = WX_ERR_NOMEM;
    else
        *snapshot_out = snap;
    PQclear(r);
    return err;
}

const struct es_store_ops es_store_postgres_ops = {
    .name = "postgres",
    .shared = true,
    .open = pg_open,
    .close = pg_close,
    .commit = pg_commit,
    .read_stream = pg_read_stream,
    .read_streams = pg_read_streams,
    .read_log = pg_read_log,
    .stream_version = pg_stream_version,
    .head = pg_head,
    .tail = pg_tail,
    .idem_get = pg_idem_get,
    .idem_expire = pg_idem_expire,
    .backup = NULL, /* pg_dump or the server's own base backups do this */
    .snapshot_get = pg_snapshot_get,
    .last_error = pg_last_error,
};
