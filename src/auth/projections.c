/*
 * The "tokens" read model: one row per token with the hash of its secret,
 * fed by the projector, rebuildable like every read model. Every node loads
 * its token table from here at start and reads the rows changed since its
 * last look twice a second (auth/service.c), so a token issued or revoked
 * through another node is known everywhere within a second. Each row keeps
 * the position of the event that last changed it: that is the change
 * query's cursor. Every apply is idempotent (rows only move forward by
 * version).
 */
#include <stdio.h>
#include <string.h>

#include "auth/token.h"
#include "base/err.h"
#include "base/id.h"
#include "proj/projector.h"
#include "rm/rm.h"

enum { T_ISSUE, T_REVOKE };

static const char *const tokens_sql[] = {
    [T_ISSUE] = "INSERT INTO tokens{s}(id, role, subject, secret_sha256, expires_at_ms,"
                " revoked, version, created_at_ms, updated_at_ms, position_hi, position_lo)"
                " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING",
    [T_REVOKE] = "UPDATE tokens{s} SET revoked = 1, version = ?2, updated_at_ms = ?3,"
                 " position_hi = ?4, position_lo = ?5 WHERE id = ?1 AND version < ?2",
    NULL,
};

static const char *const categories[] = {TOKEN_CATEGORY, NULL};

static int apply_tokens(struct es_proj_tx *tx, const struct es_event *ev, const void *decoded)
{
    (void)decoded;
    char text[TOKEN_EVENT_DATA_BYTES_MAX + 1];
    struct token_event e;
    int err = token_event_decode(ev, text, sizeof(text), &e);
    if (err)
        return err;
    struct rm_stmt *st = es_proj_stmt(tx, e.kind == TOKEN_ISSUED ? T_ISSUE : T_REVOKE);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e.token_id);
    char hex[2 * AUTH_HASH_BYTES + 1]; /* bound without a copy: lives until the run */
    if (e.kind == TOKEN_ISSUED) {
        auth_hash_hex(e.hash, hex);
        rm_bind_text(st, 2, auth_role_name(e.role));
        rm_bind_text(st, 3, e.subject);
        rm_bind_text(st, 4, hex);
        if (e.expires_at_ms > 0)
            rm_bind_i64(st, 5, e.expires_at_ms);
        else
            rm_bind_null(st, 5);
        rm_bind_i64(st, 6, ev->version);
        rm_bind_i64(st, 7, ev->occurred_at_ms);
        rm_bind_i64(st, 8, (int64_t)ev->position.hi);
        rm_bind_i64(st, 9, (int64_t)ev->position.lo);
    } else {
        rm_bind_i64(st, 2, ev->version);
        rm_bind_i64(st, 3, ev->occurred_at_ms);
        rm_bind_i64(st, 4, (int64_t)ev->position.hi);
        rm_bind_i64(st, 5, (int64_t)ev->position.lo);
    }
    return rm_run(st);
}

const struct es_consumer token_consumer = {
    .name = "tokens",
    .categories = categories,
    .schema = "CREATE TABLE IF NOT EXISTS tokens{s}(id " RM_TEXT " PRIMARY KEY,"
              " role TEXT NOT NULL, subject TEXT NOT NULL, secret_sha256 TEXT NOT NULL,"
              " expires_at_ms BIGINT, revoked BIGINT NOT NULL, version BIGINT NOT NULL,"
              " created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,"
              " position_hi BIGINT NOT NULL, position_lo BIGINT NOT NULL)" RM_WITHOUT_ROWID ";"
              "CREATE INDEX IF NOT EXISTS tokens{s}_changed"
              " ON tokens{s}(position_hi, position_lo);",
    .drop = "DROP TABLE IF EXISTS tokens{s};",
    .sql = tokens_sql,
    .apply = apply_tokens,
};

const struct es_consumer *const token_consumers[] = {&token_consumer, NULL};

/* ---- queries ---- */

#define TOKEN_COLUMNS                                                                              \
    "id, role, subject, secret_sha256, expires_at_ms, revoked, version, created_at_ms,"           \
    " updated_at_ms"

static const char *column(struct rm_stmt *st, int i)
{
    const char *s = rm_column_text(st, i);
    return s ? s : "";
}

/* The row at the cursor into s; WX_ERR_CORRUPT for one this build did not
 * write. */
static int row_state(struct rm_stmt *st, struct token_state *s, int64_t *version)
{
    token_state_init(s);
    s->exists = true;
    const char *subject = column(st, 2);
    if (!auth_role_parse(column(st, 1), &s->role) || !wx_id_ok(subject) ||
        !auth_hash_unhex(column(st, 3), s->hash) || !wx_id_ok(column(st, 0)))
        return WX_ERR_CORRUPT;
    memcpy(s->subject, subject, strlen(subject) + 1);
    s->expires_at_ms = rm_column_null(st, 4) ? 0 : rm_column_i64(st, 4); /* 0: never */
    s->revoked = rm_column_i64(st, 5) != 0;
    *version = rm_column_i64(st, 6);
    s->created_at_ms = rm_column_i64(st, 7);
    s->updated_at_ms = rm_column_i64(st, 8);
    return 0;
}

int token_query_list(struct es_projector *p, const char *after, size_t limit,
                     struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st;
    err = es_projector_prepare_live(r, "tokens",
                                    "SELECT " TOKEN_COLUMNS " FROM tokens{s}"
                                    " WHERE id > ?1 ORDER BY id LIMIT ?2",
                                    &st, NULL);
    if (err)
        goto out_end;
    rm_bind_text(st, 1, after ? after : "");
    rm_bind_i64(st, 2, (int64_t)limit + 1);
    wx_buf_adds(out, "{\"data\":[");
    size_t n = 0;
    char last[WX_ID_BYTES_MAX + 1] = "";
    bool row = false;
    while (!err && (err = rm_step(st, &row)) == 0 && row && n < limit) {
        struct token_state s;
        int64_t version;
        err = row_state(st, &s, &version);
        if (err)
            break;
        snprintf(last, sizeof(last), "%s", column(st, 0));
        if (n++ > 0)
            wx_buf_addc(out, ',');
        token_json(out, last, &s, false, NULL);
    }
    wx_buf_adds(out, "],\"nextCursor\":");
    if (!err && row) { /* the row past the page's limit */
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

int token_query_changes(struct es_projector *p, struct es_position *cursor, token_row_fn fn,
                        void *ctx)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st;
    struct es_position checkpoint;
    err = es_projector_prepare_live(r, "tokens",
                                    "SELECT " TOKEN_COLUMNS " FROM tokens{s}"
                                    " WHERE position_hi > ?1 OR (position_hi = ?1 AND"
                                    " position_lo > ?2) ORDER BY position_hi, position_lo",
                                    &st, &checkpoint);
    if (err)
        goto out_end;
    rm_bind_i64(st, 1, (int64_t)cursor->hi);
    rm_bind_i64(st, 2, (int64_t)cursor->lo);
    bool row = false;
    while (!err && (err = rm_step(st, &row)) == 0 && row) {
        struct token_state s;
        int64_t version;
        err = row_state(st, &s, &version);
        if (!err)
            err = fn(ctx, column(st, 0), &s, version);
    }
    rm_finalize(st);
    if (!err)
        *cursor = checkpoint;
out_end:
    es_projector_read_end(p, r);
    return err;
}
