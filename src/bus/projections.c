/*
 * The "subscriptions" read model, fed by the projector, and the queries on
 * it. The delivery thread reads its catalog here too, with the read
 * model's checkpoint as the horizon it delivers up to, so it never sees an
 * event of a subscription it does not know yet. Every apply is idempotent:
 * rows are keyed by subscription and only move forward by version.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "bus/subscription.h"
#include "proj/projector.h"
#include "store/sqlconn.h"

enum { S_CREATE, S_STATUS, S_DELETE };

static const char *const subscriptions_sql[] = {
    [S_CREATE] = "INSERT OR IGNORE INTO subscriptions{s}(id, url, event_types, description,"
                 " secret, status, reason, version, created_at_ms, updated_at_ms, created_hi,"
                 " created_lo) VALUES (?1, ?2, ?3, ?4, ?5, 'active', NULL, ?6, ?7, ?7, ?8, ?9)",
    [S_STATUS] = "UPDATE subscriptions{s} SET status = ?2, reason = ?3, version = ?4,"
                 " updated_at_ms = ?5 WHERE id = ?1 AND version < ?4",
    [S_DELETE] = "DELETE FROM subscriptions{s} WHERE id = ?1",
    NULL,
};

static const char *const categories[] = {SUBSCRIPTION_CATEGORY, NULL};

static int apply_created(struct es_proj_tx *tx, const struct es_event *ev,
                         const struct subscription_event *e)
{
    sqlite3_stmt *st = es_proj_stmt(tx, S_CREATE);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, e->subscription_id);
    sqlconn_bind_text(st, 2, e->url);
    sqlconn_bind_text(st, 3, e->event_types);
    sqlconn_bind_text(st, 4, e->description); /* NULL binds NULL */
    sqlconn_bind_text(st, 5, e->secret);
    sqlite3_bind_int64(st, 6, ev->version);
    sqlite3_bind_int64(st, 7, ev->occurred_at_ms);
    sqlite3_bind_int64(st, 8, (int64_t)ev->position.hi);
    sqlite3_bind_int64(st, 9, (int64_t)ev->position.lo);
    return sqlconn_run_i64(st, NULL);
}

/* Bumped whenever this process applies a subscription event (live or
 * rebuild), before its transaction commits: the delivery thread reads the
 * catalog again only when it moved (webhook.c, refresh_catalog). */
static atomic_uint_fast64_t catalog_generation;

uint64_t subscription_catalog_generation(void)
{
    return atomic_load(&catalog_generation);
}

static int apply_subscriptions(struct es_proj_tx *tx, const struct es_event *ev,
                               const void *decoded)
{
    (void)decoded;
    char text[SUBSCRIPTION_EVENT_DATA_BYTES_MAX + 1];
    struct subscription_event e;
    int err = subscription_event_decode(ev, text, sizeof(text), &e);
    if (err)
        return err;
    atomic_fetch_add(&catalog_generation, 1);
    if (e.kind == SUBSCRIPTION_EV_CREATED)
        return apply_created(tx, ev, &e);
    sqlite3_stmt *st = es_proj_stmt(tx, e.kind == SUBSCRIPTION_EV_DELETED ? S_DELETE : S_STATUS);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, e.subscription_id);
    if (e.kind != SUBSCRIPTION_EV_DELETED) {
        enum subscription_status status = e.kind == SUBSCRIPTION_EV_PAUSED     ? SUBSCRIPTION_PAUSED
                                          : e.kind == SUBSCRIPTION_EV_DISABLED ? SUBSCRIPTION_DISABLED
                                                                            : SUBSCRIPTION_ACTIVE;
        sqlconn_bind_text(st, 2, subscription_status_name(status));
        sqlconn_bind_text(st, 3, e.reason);
        sqlite3_bind_int64(st, 4, ev->version);
        sqlite3_bind_int64(st, 5, ev->occurred_at_ms);
    }
    return sqlconn_run_i64(st, NULL);
}

const struct es_consumer subscription_consumer = {
    .name = "subscriptions",
    .categories = categories,
    .schema = "CREATE TABLE IF NOT EXISTS subscriptions{s}(id TEXT PRIMARY KEY,"
              " url TEXT NOT NULL, event_types TEXT NOT NULL, description TEXT,"
              " secret TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,"
              " version INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,"
              " updated_at_ms INTEGER NOT NULL, created_hi INTEGER NOT NULL,"
              " created_lo INTEGER NOT NULL) WITHOUT ROWID;",
    .drop = "DROP TABLE IF EXISTS subscriptions{s};",
    .sql = subscriptions_sql,
    .apply = apply_subscriptions,
};

const struct es_consumer *const bus_consumers[] = {&subscription_consumer, NULL};

/* ---- queries ---- */

#define SUBSCRIPTION_COLUMNS                                                                       \
    "id, url, event_types, description, status, reason, version, created_at_ms, updated_at_ms,"   \
    " secret, created_hi, created_lo"

static enum subscription_status status_of(const char *name)
{
    static const enum subscription_status all[] = {SUBSCRIPTION_ACTIVE, SUBSCRIPTION_PAUSED,
                                                   SUBSCRIPTION_DISABLED};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (name != NULL && strcmp(name, subscription_status_name(all[i])) == 0)
            return all[i];
    return SUBSCRIPTION_DELETED; /* never stored; a damaged row delivers nothing */
}

static const char *column(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

/* Appends the resource of the current row. */
static void row_json(sqlite3_stmt *st, struct wx_buf *out)
{
    struct subscription_state s;
    subscription_state_init(&s);
    s.exists = true;
    snprintf(s.url, sizeof(s.url), "%s", column(st, 1));
    snprintf(s.event_types, sizeof(s.event_types), "%s", column(st, 2));
    s.has_description = sqlite3_column_type(st, 3) != SQLITE_NULL;
    snprintf(s.description, sizeof(s.description), "%s", column(st, 3));
    s.status = status_of(column(st, 4));
    snprintf(s.reason, sizeof(s.reason), "%s", column(st, 5));
    s.created_at_ms = sqlite3_column_int64(st, 7);
    s.updated_at_ms = sqlite3_column_int64(st, 8);
    subscription_json(out, column(st, 0), &s, sqlite3_column_int64(st, 6), NULL);
}

int subscription_query_get(struct es_projector *p, const char *id, struct wx_buf *out)
{
    struct sqlconn *c;
    int err = es_projector_read_begin(p, &c);
    if (err)
        return err;
    sqlite3_stmt *st;
    err = es_projector_prepare_live(
        c, "subscriptions", "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions{s} WHERE id = ?1",
        &st, NULL);
    if (!err) {
        sqlconn_bind_text(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            row_json(st, out);
        else
            err = rc == SQLITE_DONE ? WX_ERR_NOT_FOUND : WX_ERR_IO;
        sqlite3_finalize(st);
    }
    es_projector_read_end(p, c);
    return err;
}

int subscription_query_list(struct es_projector *p, const char *after, size_t limit,
                            struct wx_buf *out)
{
    struct sqlconn *c;
    int err = es_projector_read_begin(p, &c);
    if (err)
        return err;
    sqlite3_stmt *st;
    err = es_projector_prepare_live(c, "subscriptions",
                                    "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions{s}"
                                    " WHERE id > ?1 ORDER BY id LIMIT ?2",
                                    &st, NULL);
    if (err)
        goto out_end;
    sqlconn_bind_text(st, 1, after ? after : "");
    sqlite3_bind_int64(st, 2, (int64_t)limit + 1);
    wx_buf_adds(out, "{\"data\":[");
    size_t n = 0;
    char last[WX_ID_BYTES_MAX + 1] = "";
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < limit) {
        if (n++ > 0)
            wx_buf_addc(out, ',');
        row_json(st, out);
        snprintf(last, sizeof(last), "%s", column(st, 0));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = WX_ERR_IO;
    wx_buf_adds(out, "],\"nextCursor\":");
    if (rc == SQLITE_ROW) {
        wx_buf_adds(out, "\"i");
        wx_buf_adds(out, last);
        wx_buf_adds(out, "\"}");
    } else {
        wx_buf_adds(out, "null}");
    }
    sqlite3_finalize(st);
out_end:
    es_projector_read_end(p, c);
    return err;
}

int subscription_catalog(struct es_projector *p, size_t max_rows, subscription_row_fn fn,
                         void *ctx, struct es_position *horizon_out)
{
    struct sqlconn *c;
    int err = es_projector_read_begin(p, &c);
    if (err)
        return err;
    sqlite3_stmt *st;
    err = es_projector_prepare_live(c, "subscriptions",
                                    "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions{s}"
                                    " ORDER BY id LIMIT ?1",
                                    &st, horizon_out);
    if (!err) {
        sqlite3_bind_int64(st, 1, (int64_t)max_rows);
        int rc;
        while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct subscription_row row = {
                .id = column(st, 0),
                .url = column(st, 1),
                .event_types = column(st, 2),
                .status = status_of(column(st, 4)),
                .secret = column(st, 9),
                .created = {(uint64_t)sqlite3_column_int64(st, 10),
                            (uint64_t)sqlite3_column_int64(st, 11)},
            };
            err = fn(ctx, &row);
        }
        if (!err && rc != SQLITE_DONE)
            err = WX_ERR_IO;
        sqlite3_finalize(st);
    }
    es_projector_read_end(p, c);
    return err;
}
