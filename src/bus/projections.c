/*
 * The "subscriptions" read model, fed by the projector, and the queries on
 * it. The delivery thread reads its catalog here too, with the read
 * model's checkpoint as the horizon it delivers up to, so it never sees an
 * event of a subscription it does not know yet. Every apply is idempotent:
 * rows are keyed by subscription and only move forward by version.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "bus/subscription.h"
#include "proj/projector.h"

enum { S_CREATE, S_STATUS, S_DELETE };

static const char *const subscriptions_sql[] = {
    [S_CREATE] = "INSERT INTO subscriptions{s}(id, url, event_types, description,"
                 " secret, status, reason, version, created_at_ms, updated_at_ms, created_hi,"
                 " created_lo) VALUES (?1, ?2, ?3, ?4, ?5, 'active', NULL, ?6, ?7, ?7, ?8, ?9)"
                 " ON CONFLICT (id) DO NOTHING",
    [S_STATUS] = "UPDATE subscriptions{s} SET status = ?2, reason = ?3, version = ?4,"
                 " updated_at_ms = ?5 WHERE id = ?1 AND version < ?4",
    [S_DELETE] = "DELETE FROM subscriptions{s} WHERE id = ?1",
    NULL,
};

static const char *const categories[] = {SUBSCRIPTION_CATEGORY, NULL};

static int apply_created(struct es_proj_tx *tx, const struct es_event *ev,
                         const struct subscription_event *e)
{
    struct rm_stmt *st = es_proj_stmt(tx, S_CREATE);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e->subscription_id);
    rm_bind_text(st, 2, e->url);
    rm_bind_text(st, 3, e->event_types);
    rm_bind_text(st, 4, e->description); /* NULL binds NULL */
    rm_bind_text(st, 5, e->secret);
    rm_bind_i64(st, 6, ev->version);
    rm_bind_i64(st, 7, ev->occurred_at_ms);
    rm_bind_i64(st, 8, (int64_t)ev->position.hi);
    rm_bind_i64(st, 9, (int64_t)ev->position.lo);
    return rm_run(st);
}

/* Bumped whenever this process applies a subscription event (live or
 * rebuild), before its transaction commits, with the highest position of
 * such an event, and when a rebuilt set is swapped in: the delivery
 * thread reads the catalog again only when either tells it to (webhook.c,
 * refresh_catalog). */
static struct {
    pthread_mutex_t lock;
    uint64_t generation;
    struct es_position changed_at;
} catalog = {.lock = PTHREAD_MUTEX_INITIALIZER};

uint64_t subscription_catalog_generation(struct es_position *changed_at)
{
    pthread_mutex_lock(&catalog.lock);
    uint64_t generation = catalog.generation;
    *changed_at = catalog.changed_at;
    pthread_mutex_unlock(&catalog.lock);
    return generation;
}

static void catalog_changed(const struct es_position *at)
{
    pthread_mutex_lock(&catalog.lock);
    catalog.generation++;
    if (es_position_cmp(at, &catalog.changed_at) > 0)
        catalog.changed_at = *at;
    pthread_mutex_unlock(&catalog.lock);
}

/* A rebuilt catalog replaced the live one: its rows may differ from those
 * the delivery thread holds (a live set that had drifted), with no newer
 * subscription event to say so. */
static void catalog_swapped(void)
{
    pthread_mutex_lock(&catalog.lock);
    catalog.generation++;
    pthread_mutex_unlock(&catalog.lock);
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
    catalog_changed(&ev->position);
    if (e.kind == SUBSCRIPTION_EV_CREATED)
        return apply_created(tx, ev, &e);
    struct rm_stmt *st = es_proj_stmt(tx, e.kind == SUBSCRIPTION_EV_DELETED ? S_DELETE : S_STATUS);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e.subscription_id);
    if (e.kind != SUBSCRIPTION_EV_DELETED) {
        enum subscription_status status = e.kind == SUBSCRIPTION_EV_PAUSED ? SUBSCRIPTION_PAUSED
                                          : e.kind == SUBSCRIPTION_EV_DISABLED
                                              ? SUBSCRIPTION_DISABLED
                                              : SUBSCRIPTION_ACTIVE;
        rm_bind_text(st, 2, subscription_status_name(status));
        rm_bind_text(st, 3, e.reason);
        rm_bind_i64(st, 4, ev->version);
        rm_bind_i64(st, 5, ev->occurred_at_ms);
    }
    return rm_run(st);
}

const struct es_consumer subscription_consumer = {
    .name = "subscriptions",
    .categories = categories,
    .schema = "CREATE TABLE IF NOT EXISTS subscriptions{s}(id " RM_TEXT " PRIMARY KEY,"
              " url TEXT NOT NULL, event_types TEXT NOT NULL, description TEXT,"
              " secret TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,"
              " version BIGINT NOT NULL, created_at_ms BIGINT NOT NULL,"
              " updated_at_ms BIGINT NOT NULL, created_hi BIGINT NOT NULL,"
              " created_lo BIGINT NOT NULL)" RM_WITHOUT_ROWID ";",
    .drop = "DROP TABLE IF EXISTS subscriptions{s};",
    .sql = subscriptions_sql,
    .apply = apply_subscriptions,
    .swapped = catalog_swapped,
};

const struct es_consumer *const bus_consumers[] = {&subscription_consumer, NULL};

/* ---- queries ---- */

#define SUBSCRIPTION_COLUMNS                                                                       \
    "id, url, event_types, description, status, reason, version, created_at_ms, updated_at_ms,"    \
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

static const char *column(struct rm_stmt *st, int i)
{
    const char *s = rm_column_text(st, i);
    return s ? s : "";
}

/* Appends the resource of the current row. */
static void row_json(struct rm_stmt *st, struct wx_buf *out)
{
    struct subscription_state s;
    subscription_state_init(&s);
    s.exists = true;
    snprintf(s.url, sizeof(s.url), "%s", column(st, 1));
    snprintf(s.event_types, sizeof(s.event_types), "%s", column(st, 2));
    s.has_description = !rm_column_null(st, 3);
    snprintf(s.description, sizeof(s.description), "%s", column(st, 3));
    s.status = status_of(column(st, 4));
    snprintf(s.reason, sizeof(s.reason), "%s", column(st, 5));
    s.created_at_ms = rm_column_i64(st, 7);
    s.updated_at_ms = rm_column_i64(st, 8);
    subscription_json(out, column(st, 0), &s, rm_column_i64(st, 6), NULL);
}

int subscription_query_get(struct es_projector *p, const char *id, struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st;
    err = es_projector_prepare_live(
        r, "subscriptions", "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions{s} WHERE id = ?1",
        &st, NULL);
    if (!err) {
        rm_bind_text(st, 1, id);
        bool row = false;
        err = rm_step(st, &row);
        if (!err && row)
            row_json(st, out);
        else if (!err)
            err = WX_ERR_NOT_FOUND;
        rm_finalize(st);
    }
    es_projector_read_end(p, r);
    return err;
}

static int subscription_page_row(struct rm_stmt *st, struct wx_buf *out)
{
    row_json(st, out);
    return 0;
}

int subscription_query_list(struct es_projector *p, const char *after, size_t limit,
                            struct wx_buf *out)
{
    return es_projector_id_page(p, "subscriptions",
                                "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions{s}"
                                " WHERE id > ?1 ORDER BY id LIMIT ?2",
                                after, limit, subscription_page_row, out);
}

int subscription_catalog(struct es_projector *p, size_t max_rows, subscription_row_fn fn, void *ctx,
                         struct es_position *horizon_out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st;
    err = es_projector_prepare_live(r, "subscriptions",
                                    "SELECT " SUBSCRIPTION_COLUMNS " FROM subscriptions{s}"
                                    " ORDER BY id LIMIT ?1",
                                    &st, horizon_out);
    if (!err) {
        rm_bind_i64(st, 1, (int64_t)max_rows);
        bool row;
        while (!err && (err = rm_step(st, &row)) == 0 && row) {
            struct subscription_row sub = {
                .id = column(st, 0),
                .url = column(st, 1),
                .event_types = column(st, 2),
                .status = status_of(column(st, 4)),
                .secret = column(st, 9),
                .created = {(uint64_t)rm_column_i64(st, 10), (uint64_t)rm_column_i64(st, 11)},
            };
            err = fn(ctx, &sub);
        }
        rm_finalize(st);
    }
    es_projector_read_end(p, r);
    return err;
}
