/*
 * The delivery store on SQLite: delivery.db beside the log, WAL, written
 * by the delivery thread alone through one connection, read by any thread
 * through a small pool (WAL readers never wait for the writer).
 *
 * synchronous=NORMAL: a process crash loses nothing; a power cut may lose
 * the last transactions, and with them a checkpoint's last moves, so those
 * events are delivered again (at least once: receivers dedupe by
 * webhook-id). A dead letter and the checkpoint that moved past it commit
 * together, so neither can be lost without the other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "bus/delivery.h"
#include "store/sqlconn.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS delivery_state("
    " subscription_id TEXT PRIMARY KEY, cursor_hi INTEGER NOT NULL, cursor_lo INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL,"
    " first_attempt_ms INTEGER NOT NULL, failing_since_ms INTEGER NOT NULL,"
    " delivered INTEGER NOT NULL, last_error TEXT NOT NULL) WITHOUT ROWID;"
    /* AUTOINCREMENT: a replayed (deleted) letter's id is never reused. */
    "CREATE TABLE IF NOT EXISTS dead_letters("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, subscription_id TEXT NOT NULL,"
    " event_id TEXT NOT NULL, position_hi INTEGER NOT NULL, position_lo INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL, last_error TEXT NOT NULL, first_attempt_ms INTEGER NOT NULL,"
    " last_attempt_ms INTEGER NOT NULL, replay INTEGER NOT NULL DEFAULT 0, body BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS dead_letters_sub ON dead_letters(subscription_id, id);";

static const char write_pragmas[] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";

#define DEAD_COLUMNS                                                                               \
    "id, subscription_id, event_id, position_hi, position_lo, attempts, last_error,"             \
    " first_attempt_ms, last_attempt_ms, replay"

enum {
    Q_STATE_GET,
    Q_STATE_PUT,
    Q_FORGET_STATE,
    Q_FORGET_DEAD,
    Q_DEAD_ADD,
    Q_DEAD_COUNT,
    Q_DEAD_LIST,
    Q_DEAD_GET,
    Q_DEAD_REQUEST,
    Q_DEAD_NEXT,
    Q_DEAD_DELETE,
    Q_DEAD_FAILED,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
};

static const char *const sql[SQLCONN_STMTS_MAX] = {
    [Q_STATE_GET] = "SELECT cursor_hi, cursor_lo, attempts, next_attempt_ms, first_attempt_ms,"
                    " failing_since_ms, delivered, last_error FROM delivery_state"
                    " WHERE subscription_id = ?1",
    [Q_STATE_PUT] = "INSERT OR REPLACE INTO delivery_state VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                    " ?8, ?9)",
    [Q_FORGET_STATE] = "DELETE FROM delivery_state WHERE subscription_id = ?1",
    [Q_FORGET_DEAD] = "DELETE FROM dead_letters WHERE subscription_id = ?1",
    [Q_DEAD_ADD] = "INSERT INTO dead_letters(subscription_id, event_id, position_hi, position_lo,"
                   " attempts, last_error, first_attempt_ms, last_attempt_ms, body)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_DEAD_COUNT] = "SELECT count(*) FROM dead_letters WHERE subscription_id = ?1",
    [Q_DEAD_LIST] = "SELECT " DEAD_COLUMNS " FROM dead_letters WHERE id > ?1"
                    " AND (?2 IS NULL OR subscription_id = ?2) ORDER BY id LIMIT ?3",
    [Q_DEAD_GET] = "SELECT " DEAD_COLUMNS ", body FROM dead_letters WHERE id = ?1",
    [Q_DEAD_REQUEST] = "UPDATE dead_letters SET replay = 1 WHERE id = ?1",
    [Q_DEAD_NEXT] = "SELECT " DEAD_COLUMNS ", body FROM dead_letters"
                    " WHERE subscription_id = ?1 AND replay = 1 ORDER BY id LIMIT 1",
    [Q_DEAD_DELETE] = "DELETE FROM dead_letters WHERE id = ?1",
    [Q_DEAD_FAILED] = "UPDATE dead_letters SET replay = 0, attempts = attempts + 1,"
                      " last_error = ?2, last_attempt_ms = ?3 WHERE id = ?1",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

struct sqlite_delivery {
    struct bus_delivery_store base;
    char *path;
    struct sqlconn w;
    struct sqlpool readers;
};

static struct sqlite_delivery *of(struct bus_delivery_store *s)
{
    return (struct sqlite_delivery *)s;
}

static void sqlite_close(struct bus_delivery_store *s)
{
    struct sqlite_delivery *d = of(s);
    sqlconn_close(&d->w);
    sqlpool_destroy(&d->readers);
    free(d->path);
    free(d);
}

static int sqlite_open(const char *path, bool fresh, struct bus_delivery_store **out)
{
    struct sqlite_delivery *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return WX_ERR_NOMEM;
    d->base.ops = &bus_delivery_sqlite_ops;
    d->path = strdup(path);
    sqlpool_init(&d->readers, d->path, NULL, sql);
    int err = d->path ? sqlconn_open(&d->w, d->path, true, write_pragmas, schema, sql)
                      : WX_ERR_NOMEM;
    if (!err && fresh)
        err = sqlconn_exec(&d->w, "DELETE FROM delivery_state; DELETE FROM dead_letters;");
    if (err) {
        sqlite_close(&d->base);
        return err;
    }
    *out = &d->base;
    return 0;
}

static int run(struct sqlconn *c, int id)
{
    sqlite3_stmt *st = sqlconn_stmt(c, id);
    return st == NULL ? WX_ERR_IO : sqlconn_run_i64(st, NULL);
}

static int tx_end(struct sqlconn *c, int err)
{
    if (!err)
        err = run(c, Q_COMMIT);
    if (err)
        run(c, Q_ROLLBACK);
    return err;
}

static void bind_position(sqlite3_stmt *st, int col, const struct es_position *p)
{
    sqlite3_bind_int64(st, col, (int64_t)p->hi);
    sqlite3_bind_int64(st, col + 1, (int64_t)p->lo);
}

static int state_read(struct sqlconn *c, const char *id, struct bus_delivery_state *out)
{
    sqlite3_stmt *st = sqlconn_stmt(c, Q_STATE_GET);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? WX_ERR_NOT_FOUND : sqlconn_err(rc);
    if (!err) {
        memset(out, 0, sizeof(*out));
        out->cursor = (struct es_position){(uint64_t)sqlite3_column_int64(st, 0),
                                           (uint64_t)sqlite3_column_int64(st, 1)};
        out->attempts = sqlite3_column_int64(st, 2);
        out->next_attempt_ms = sqlite3_column_int64(st, 3);
        out->first_attempt_ms = sqlite3_column_int64(st, 4);
        out->failing_since_ms = sqlite3_column_int64(st, 5);
        out->delivered = sqlite3_column_int64(st, 6);
        const char *e = (const char *)sqlite3_column_text(st, 7);
        snprintf(out->last_error, sizeof(out->last_error), "%s", e ? e : "");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

/* The delivery thread reads its own writes; any other thread uses the pool. */
static int sqlite_state_get(struct bus_delivery_store *s, const char *id,
                            struct bus_delivery_state *out)
{
    struct sqlite_delivery *d = of(s);
    struct sqlconn *c;
    int err = sqlpool_acquire(&d->readers, &c);
    if (err)
        return err;
    err = state_read(c, id, out);
    sqlpool_release(&d->readers, c);
    return err;
}

static int state_write(struct sqlconn *c, const char *id, const struct bus_delivery_state *v)
{
    sqlite3_stmt *st = sqlconn_stmt(c, Q_STATE_PUT);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, id);
    bind_position(st, 2, &v->cursor);
    sqlite3_bind_int64(st, 4, v->attempts);
    sqlite3_bind_int64(st, 5, v->next_attempt_ms);
    sqlite3_bind_int64(st, 6, v->first_attempt_ms);
    sqlite3_bind_int64(st, 7, v->failing_since_ms);
    sqlite3_bind_int64(st, 8, v->delivered);
    sqlconn_bind_text(st, 9, v->last_error);
    return sqlconn_run_i64(st, NULL);
}

static int sqlite_state_put(struct bus_delivery_store *s, const char *id,
                            const struct bus_delivery_state *v)
{
    return state_write(&of(s)->w, id, v);
}

static int run_text(struct sqlconn *c, int q, const char *text)
{
    sqlite3_stmt *st = sqlconn_stmt(c, q);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, text);
    return sqlconn_run_i64(st, NULL);
}

static int run_id(struct sqlconn *c, int q, int64_t id)
{
    sqlite3_stmt *st = sqlconn_stmt(c, q);
    if (st == NULL)
        return WX_ERR_IO;
    sqlite3_bind_int64(st, 1, id);
    return sqlconn_run_i64(st, NULL);
}

static int sqlite_forget(struct bus_delivery_store *s, const char *id)
{
    struct sqlconn *c = &of(s)->w;
    int err = run(c, Q_BEGIN);
    if (err)
        return err;
    err = run_text(c, Q_FORGET_STATE, id);
    if (!err)
        err = run_text(c, Q_FORGET_DEAD, id);
    return tx_end(c, err);
}

static int sqlite_dead_add(struct bus_delivery_store *s, const struct bus_dead_letter *dl,
                           const struct bus_delivery_state *state)
{
    struct sqlconn *c = &of(s)->w;
    int err = run(c, Q_BEGIN);
    if (err)
        return err;
    sqlite3_stmt *st = sqlconn_stmt(c, Q_DEAD_ADD);
    if (st == NULL) {
        err = WX_ERR_IO;
    } else {
        sqlconn_bind_text(st, 1, dl->subscription_id);
        sqlconn_bind_text(st, 2, dl->event_id);
        bind_position(st, 3, &dl->position);
        sqlite3_bind_int64(st, 5, dl->attempts);
        sqlconn_bind_text(st, 6, dl->last_error);
        sqlite3_bind_int64(st, 7, dl->first_attempt_ms);
        sqlite3_bind_int64(st, 8, dl->last_attempt_ms);
        sqlite3_bind_blob(st, 9, dl->body, (int)dl->body_len, SQLITE_STATIC);
        err = sqlconn_run_i64(st, NULL);
    }
    if (!err)
        err = state_write(c, dl->subscription_id, state);
    return tx_end(c, err);
}

static int sqlite_dead_count(struct bus_delivery_store *s, const char *id, int64_t *n_out)
{
    sqlite3_stmt *st = sqlconn_stmt(&of(s)->w, Q_DEAD_COUNT);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, id);
    return sqlconn_run_i64(st, n_out);
}

/* One row of DEAD_COLUMNS (and the body when with_body) into out. */
static int dead_row(sqlite3_stmt *st, bool with_body, struct wx_arena *arena,
                    struct bus_dead_letter *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    out->subscription_id = wx_arena_strdup(arena, (const char *)sqlite3_column_text(st, 1));
    out->event_id = wx_arena_strdup(arena, (const char *)sqlite3_column_text(st, 2));
    out->position = (struct es_position){(uint64_t)sqlite3_column_int64(st, 3),
                                         (uint64_t)sqlite3_column_int64(st, 4)};
    out->attempts = sqlite3_column_int64(st, 5);
    out->last_error = wx_arena_strdup(arena, (const char *)sqlite3_column_text(st, 6));
    out->first_attempt_ms = sqlite3_column_int64(st, 7);
    out->last_attempt_ms = sqlite3_column_int64(st, 8);
    out->replay_requested = sqlite3_column_int64(st, 9) != 0;
    if (with_body) {
        out->body_len = (size_t)sqlite3_column_bytes(st, 10);
        out->body = wx_arena_strndup(arena, sqlite3_column_blob(st, 10), out->body_len);
    }
    bool ok = out->subscription_id && out->event_id && out->last_error &&
              (!with_body || out->body);
    return ok ? 0 : WX_ERR_NOMEM;
}

static int sqlite_dead_list(struct bus_delivery_store *s, const char *id, int64_t after_id,
                            size_t max_rows, bus_dead_letter_fn fn, void *ctx)
{
    struct sqlite_delivery *d = of(s);
    struct sqlconn *c;
    int err = sqlpool_acquire(&d->readers, &c);
    if (err)
        return err;
    sqlite3_stmt *st = sqlconn_stmt(c, Q_DEAD_LIST);
    if (st == NULL) {
        sqlpool_release(&d->readers, c);
        return WX_ERR_IO;
    }
    sqlite3_bind_int64(st, 1, after_id);
    if (id != NULL)
        sqlconn_bind_text(st, 2, id);
    sqlite3_bind_int64(st, 3, (int64_t)max_rows);
    int rc;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct wx_arena arena;
        wx_arena_init(&arena);
        struct bus_dead_letter dl;
        err = dead_row(st, false, &arena, &dl);
        if (!err)
            err = fn(ctx, &dl);
        wx_arena_release(&arena);
    }
    if (!err && rc != SQLITE_DONE)
        err = sqlconn_err(rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlpool_release(&d->readers, c);
    return err;
}

/* One row by a statement bound to one value (an id or a subscription). */
static int dead_one(sqlite3_stmt *st, struct wx_arena *arena, struct bus_dead_letter *out)
{
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_ROW ? dead_row(st, true, arena, out)
              : rc == SQLITE_DONE ? WX_ERR_NOT_FOUND
                                  : sqlconn_err(rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

static int sqlite_dead_get(struct bus_delivery_store *s, int64_t id, struct wx_arena *arena,
                           struct bus_dead_letter *out)
{
    struct sqlite_delivery *d = of(s);
    struct sqlconn *c;
    int err = sqlpool_acquire(&d->readers, &c);
    if (err)
        return err;
    sqlite3_stmt *st = sqlconn_stmt(c, Q_DEAD_GET);
    if (st == NULL) {
        err = WX_ERR_IO;
    } else {
        sqlite3_bind_int64(st, 1, id);
        err = dead_one(st, arena, out);
    }
    sqlpool_release(&d->readers, c);
    return err;
}

static int sqlite_dead_request_replay(struct bus_delivery_store *s, int64_t id)
{
    return run_id(&of(s)->w, Q_DEAD_REQUEST, id);
}

static int sqlite_dead_next_replay(struct bus_delivery_store *s, const char *id,
                                   struct wx_arena *arena, struct bus_dead_letter *out)
{
    sqlite3_stmt *st = sqlconn_stmt(&of(s)->w, Q_DEAD_NEXT);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, id);
    return dead_one(st, arena, out);
}

static int sqlite_dead_replayed(struct bus_delivery_store *s, int64_t id, bool delivered,
                                const char *last_error, int64_t at_ms)
{
    struct sqlconn *c = &of(s)->w;
    if (delivered)
        return run_id(c, Q_DEAD_DELETE, id);
    sqlite3_stmt *st = sqlconn_stmt(c, Q_DEAD_FAILED);
    if (st == NULL)
        return WX_ERR_IO;
    sqlite3_bind_int64(st, 1, id);
    sqlconn_bind_text(st, 2, last_error);
    sqlite3_bind_int64(st, 3, at_ms);
    return sqlconn_run_i64(st, NULL);
}

const struct bus_delivery_ops bus_delivery_sqlite_ops = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .state_get = sqlite_state_get,
    .state_put = sqlite_state_put,
    .forget = sqlite_forget,
    .dead_add = sqlite_dead_add,
    .dead_count = sqlite_dead_count,
    .dead_list = sqlite_dead_list,
    .dead_get = sqlite_dead_get,
    .dead_request_replay = sqlite_dead_request_replay,
    .dead_next_replay = sqlite_dead_next_replay,
    .dead_replayed = sqlite_dead_replayed,
};
