/*
 * Wallet read models fed by the projector, and the queries on them. Every
 * apply is idempotent: rows are keyed by what the event identifies
 * (wallet, version; transfer id) and a wallet row only moves forward.
 */
#include "wallet/projections.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/money.h"
#include "obs/log.h"

/* ---- decoding each event once for all consumers ---- */

struct decoded {
    struct wallet_event e;
    char actor[WX_ID_BYTES_MAX + 1]; /* e.actor's text */
    char text[]; /* e's strings; the event's data_len + 1 bytes */
};

static int codec_decode(const struct es_event *ev, void **out)
{
    *out = NULL;
    if (ev->data_len >= WALLET_EVENT_DATA_BYTES_MAX)
        return WX_ERR_CORRUPT;
    struct decoded *d = malloc(sizeof(*d) + ev->data_len + 1);
    if (d == NULL)
        return WX_ERR_NOMEM;
    int err = wallet_event_decode(ev, d->text, ev->data_len + 1, &d->e);
    if (err) {
        free(d);
        return err;
    }
    d->e.actor = es_event_actor(ev, d->actor) ? d->actor : NULL;
    *out = d;
    return 0;
}

static void codec_release(void *decoded)
{
    free(decoded);
}

const struct es_event_codec wallet_codec = {.decode = codec_decode, .release = codec_release};

/* ---- wallets ---- */

enum { W_CREATE, W_MOVE };

static const char *const wallets_sql[] = {
    [W_CREATE] = "INSERT INTO wallets{s}(id, owner_id, currency, balance_minor, version,"
                 " created_at_ms, updated_at_ms, created_by, updated_by)"
                 " VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5, ?6, ?6) ON CONFLICT (id) DO NOTHING",
    [W_MOVE] = "UPDATE wallets{s} SET balance_minor = ?2, version = ?3, updated_at_ms = ?4,"
               " updated_by = ?5 WHERE id = ?1 AND version < ?3",
    NULL,
};

/* createdBy and updatedBy came with authentication (issue 21). */
static const struct es_column_added wallets_columns_added[] = {
    {"wallets{s}", "created_by", "TEXT"},
    {"wallets{s}", "updated_by", "TEXT"},
    {NULL, NULL, NULL},
};

/* The three consumers read both categories (one decode of each event for
 * all of them); wallets and ledger care only about wallet streams. */
static bool wallet_stream_event(const struct es_event *ev)
{
    return es_stream_in_category(ev->stream_id, WALLET_CATEGORY);
}

static const char *const categories[] = {WALLET_CATEGORY, TRANSFER_CATEGORY, NULL};

static int apply_wallets(struct es_proj_tx *tx, const struct es_event *ev, const void *decoded)
{
    const struct decoded *d = decoded;
    if (d == NULL || !wallet_stream_event(ev))
        return 0;
    const struct wallet_event *e = &d->e;
    struct rm_stmt *st = es_proj_stmt(tx, e->kind == WALLET_CREATED ? W_CREATE : W_MOVE);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e->wallet_id);
    if (e->kind == WALLET_CREATED) {
        rm_bind_text(st, 2, e->owner_id);
        rm_bind_text(st, 3, e->currency);
        rm_bind_i64(st, 4, ev->version);
        rm_bind_i64(st, 5, ev->occurred_at_ms);
        rm_bind_text(st, 6, e->actor); /* NULL binds NULL */
    } else {
        rm_bind_i64(st, 2, e->balance_after_minor);
        rm_bind_i64(st, 3, ev->version);
        rm_bind_i64(st, 4, ev->occurred_at_ms);
        rm_bind_text(st, 5, e->actor);
    }
    return rm_run(st);
}

const struct es_consumer wallet_consumer_wallets = {
    .name = "wallets",
    .categories = categories,
    .codec = &wallet_codec,
    .schema = "CREATE TABLE IF NOT EXISTS wallets{s}(id " RM_TEXT " PRIMARY KEY,"
              " owner_id " RM_TEXT " NOT NULL, currency TEXT NOT NULL,"
              " balance_minor BIGINT NOT NULL, version BIGINT NOT NULL,"
              " created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,"
              " created_by TEXT, updated_by TEXT)" RM_WITHOUT_ROWID
              "{pg: WITH (fillfactor = 50)};"
              "CREATE INDEX IF NOT EXISTS wallets{s}_owner ON wallets{s}(owner_id, id);",
    .columns_added = wallets_columns_added,
    .drop = "DROP TABLE IF EXISTS wallets{s};",
    .sql = wallets_sql,
    .apply = apply_wallets,
};

/* ---- ledger ---- */

/* On SQLite entries are appended to the tail, so a projector commit writes
 * a few new pages there instead of one page per wallet it touched
 * (measured in docs/architecture.md); the fold moves them in (wallet,
 * version) order, which writes each hot wallet's page once per fold. On
 * PostgreSQL a table is a heap with no order to keep, so the tail would
 * only write each entry twice: entries go straight to ledger{s} (L_PUT),
 * nothing is staged and nothing folds. */
enum { L_PUT, L_FOLD_MOVE, L_FOLD_CLEAR };

#define LEDGER_COLUMNS                                                                             \
    "wallet_id, version, type, amount_minor, balance_before_minor, balance_after_minor,"          \
    " currency, description, transfer_id, event_id, position_hi, position_lo, occurred_at_ms"

#define LEDGER_COLUMN_TYPES                                                                        \
    "wallet_id " RM_TEXT " NOT NULL, version BIGINT NOT NULL, type TEXT NOT NULL,"               \
    " amount_minor BIGINT NOT NULL, balance_before_minor BIGINT NOT NULL,"                        \
    " balance_after_minor BIGINT NOT NULL, currency TEXT NOT NULL, description TEXT,"             \
    " transfer_id TEXT, event_id TEXT NOT NULL, position_hi BIGINT NOT NULL,"                     \
    " position_lo BIGINT NOT NULL, occurred_at_ms BIGINT NOT NULL"

static const char *const ledger_sql[] = {
    /* The unique (wallet, version) keeps a replayed event at one entry
     * (an entry says what its event says, so the first one stays); on
     * SQLite an entry already folded is never replayed, because the fold
     * commits with the checkpoint that covers it. */
    [L_PUT] = "INSERT INTO {sqlite:ledger_tail{s}}{pg:ledger{s}}(" LEDGER_COLUMNS ")"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
              " ON CONFLICT (wallet_id, version) DO NOTHING",
    /* WHERE true: SQLite would read ON CONFLICT as a join's ON otherwise. */
    [L_FOLD_MOVE] = "INSERT INTO ledger{s}(" LEDGER_COLUMNS ") SELECT " LEDGER_COLUMNS
                    " FROM ledger_tail{s} WHERE true ORDER BY wallet_id, version"
                    " ON CONFLICT (wallet_id, version) DO NOTHING",
    [L_FOLD_CLEAR] = "DELETE FROM ledger_tail{s}",
    NULL,
};

static int apply_ledger(struct es_proj_tx *tx, const struct es_event *ev, const void *decoded)
{
    const struct decoded *d = decoded;
    if (d == NULL || !wallet_stream_event(ev) || d->e.kind == WALLET_CREATED)
        return 0;
    struct wallet_event e = d->e;
    struct rm_stmt *st = es_proj_stmt(tx, L_PUT);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e.wallet_id);
    rm_bind_i64(st, 2, ev->version);
    rm_bind_text(st, 3, e.kind == WALLET_CREDITED ? "CREDIT" : "DEBIT");
    rm_bind_i64(st, 4, e.amount_minor);
    rm_bind_i64(st, 5, e.balance_before_minor);
    rm_bind_i64(st, 6, e.balance_after_minor);
    rm_bind_text(st, 7, e.currency);
    if (e.description != NULL)
        rm_bind_text(st, 8, e.description);
    if (e.transfer_id != NULL)
        rm_bind_text(st, 9, e.transfer_id);
    rm_bind_text(st, 10, ev->event_id);
    rm_bind_i64(st, 11, (int64_t)ev->position.hi);
    rm_bind_i64(st, 12, (int64_t)ev->position.lo);
    rm_bind_i64(st, 13, ev->occurred_at_ms);
    int err = rm_run(st);
    if (!err && rm_dialect_of(tx->conn->db) == RM_DIALECT_SQLITE)
        tx->staged++; /* only SQLite stages in the tail (L_PUT) */
    return err;
}

static int fold_ledger(struct es_proj_tx *tx)
{
    struct rm_stmt *st = es_proj_stmt(tx, L_FOLD_MOVE);
    int err = st == NULL ? WX_ERR_IO : rm_run(st);
    if (!err) {
        st = es_proj_stmt(tx, L_FOLD_CLEAR);
        err = st == NULL ? WX_ERR_IO : rm_run(st);
    }
    return err;
}

const struct es_consumer wallet_consumer_ledger = {
    .name = "ledger",
    .categories = categories,
    .codec = &wallet_codec,
    /* The tail is appended in arrival order (SQLite's rowid), which a
     * projector commit writes as a few new pages. PostgreSQL keeps it
     * (empty) so both dialects have the same tables and queries. */
    .schema = "CREATE TABLE IF NOT EXISTS ledger{s}(" LEDGER_COLUMN_TYPES
              ", PRIMARY KEY(wallet_id, version))" RM_WITHOUT_ROWID ";"
              "CREATE TABLE IF NOT EXISTS ledger_tail{s}(" LEDGER_COLUMN_TYPES ");"
              "CREATE UNIQUE INDEX IF NOT EXISTS ledger_tail{s}_entry"
              " ON ledger_tail{s}(wallet_id, version);",
    .drop = "DROP TABLE IF EXISTS ledger{s}; DROP TABLE IF EXISTS ledger_tail{s};",
    .sql = ledger_sql,
    .adds_rows = 1u << L_PUT,
    .apply = apply_ledger,
    .fold = fold_ledger,
};

/* ---- transfers ---- */

enum { T_PUT };

static const char *const transfers_sql[] = {
    [T_PUT] = "INSERT INTO transfers{s}(transfer_id, from_wallet_id, to_wallet_id,"
              " amount_minor, currency, description, from_version, to_version, created_at_ms)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (transfer_id) DO NOTHING",
    NULL,
};

static int apply_transfers(struct es_proj_tx *tx, const struct es_event *ev,
                           const void *decoded)
{
    (void)ev;
    const struct decoded *d = decoded;
    if (d == NULL || d->e.kind != TRANSFER_COMPLETED)
        return 0;
    struct wallet_event e = d->e;
    struct rm_stmt *st = es_proj_stmt(tx, T_PUT);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e.transfer_id);
    rm_bind_text(st, 2, e.from_wallet_id);
    rm_bind_text(st, 3, e.to_wallet_id);
    rm_bind_i64(st, 4, e.amount_minor);
    rm_bind_text(st, 5, e.currency);
    if (e.description != NULL)
        rm_bind_text(st, 6, e.description);
    rm_bind_i64(st, 7, e.from_version);
    rm_bind_i64(st, 8, e.to_version);
    rm_bind_i64(st, 9, ev->occurred_at_ms);
    return rm_run(st);
}

const struct es_consumer wallet_consumer_transfers = {
    .name = "transfers",
    .categories = categories,
    .codec = &wallet_codec,
    .schema = "CREATE TABLE IF NOT EXISTS transfers{s}(transfer_id " RM_TEXT " PRIMARY KEY,"
              " from_wallet_id TEXT NOT NULL, to_wallet_id TEXT NOT NULL,"
              " amount_minor BIGINT NOT NULL, currency TEXT NOT NULL, description TEXT,"
              " from_version BIGINT NOT NULL, to_version BIGINT NOT NULL,"
              " created_at_ms BIGINT NOT NULL)" RM_WITHOUT_ROWID ";",
    .drop = "DROP TABLE IF EXISTS transfers{s};",
    .sql = transfers_sql,
    .adds_rows = 1u << T_PUT,
    .apply = apply_transfers,
};

const struct es_consumer *const wallet_consumers[] = {
    &wallet_consumer_wallets,
    &wallet_consumer_ledger,
    &wallet_consumer_transfers,
    NULL,
};

/* ---- queries ---- */

static int prepare_live(struct es_read *r, const char *name, const char *tmpl,
                        struct rm_stmt **st_out)
{
    return es_projector_prepare_live(r, name, tmpl, st_out, NULL);
}

#define WALLET_COLUMNS                                                                             \
    "id, owner_id, currency, balance_minor, version, created_at_ms, updated_at_ms, created_by,"   \
    " updated_by"

static void wallet_from_row(struct rm_stmt *st, struct wallet_state *s, int64_t *version)
{
    wallet_state_init(s);
    s->exists = true;
    snprintf(s->owner_id, sizeof(s->owner_id), "%s", rm_column_text(st, 1));
    snprintf(s->currency, sizeof(s->currency), "%s", rm_column_text(st, 2));
    s->balance_minor = rm_column_i64(st, 3);
    *version = rm_column_i64(st, 4);
    s->created_at_ms = rm_column_i64(st, 5);
    s->updated_at_ms = rm_column_i64(st, 6);
    const char *created_by = rm_column_text(st, 7);
    const char *updated_by = rm_column_text(st, 8);
    snprintf(s->created_by, sizeof(s->created_by), "%s", created_by ? created_by : "");
    snprintf(s->updated_by, sizeof(s->updated_by), "%s", updated_by ? updated_by : "");
}

/* Reads one wallet row into s; WX_ERR_NOT_FOUND when absent. */
static int read_wallet(struct es_read *r, const char *id, struct wallet_state *s, int64_t *version)
{
    struct rm_stmt *st;
    int err = prepare_live(r, "wallets", "SELECT " WALLET_COLUMNS " FROM wallets{s} WHERE id = ?1",
                           &st);
    if (err)
        return err;
    rm_bind_text(st, 1, id);
    bool row = false;
    err = rm_step(st, &row);
    if (!err && row)
        wallet_from_row(st, s, version);
    else if (!err)
        err = WX_ERR_NOT_FOUND;
    rm_finalize(st);
    return err;
}

/* A wallet another owner has is, to this caller, no wallet at all. */
static bool visible(const struct wallet_state *s, const char *owner_only)
{
    return owner_only == NULL || strcmp(s->owner_id, owner_only) == 0;
}

int wallet_query_get(struct es_projector *p, const char *wallet_id, const char *owner_only,
                     struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct wallet_state s;
    int64_t version;
    err = read_wallet(r, wallet_id, &s, &version);
    if (!err && !visible(&s, owner_only))
        err = WX_ERR_NOT_FOUND;
    if (!err)
        wallet_json(out, wallet_id, &s, version);
    es_projector_read_end(p, r);
    return err;
}

/* Appends the page's wallets; *last_out is the id of the last one, *more
 * when a next page exists. */
static int owner_rows(struct rm_stmt *st, size_t limit, struct wx_buf *out,
                      char last_out[WX_ID_BYTES_MAX + 1], bool *more)
{
    size_t n = 0;
    bool row;
    int err;
    while ((err = rm_step(st, &row)) == 0 && row) {
        if (n == limit || (n > 0 && out->len >= WX_PAGE_BYTES_MAX)) { /* a full page */
            *more = true;
            break;
        }
        struct wallet_state s;
        int64_t version;
        wallet_from_row(st, &s, &version);
        snprintf(last_out, WX_ID_BYTES_MAX + 1, "%s", rm_column_text(st, 0));
        if (n++ > 0)
            wx_buf_addc(out, ',');
        wallet_json(out, last_out, &s, version);
    }
    return err;
}

int wallet_query_by_owner(struct es_projector *p, const char *owner_id, const char *after,
                          size_t limit, struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st;
    err = prepare_live(r, "wallets",
                       "SELECT " WALLET_COLUMNS " FROM wallets{s} WHERE owner_id = ?1"
                       " AND id > ?2 ORDER BY id LIMIT ?3",
                       &st);
    if (err)
        goto out_end;
    rm_bind_text(st, 1, owner_id);
    rm_bind_text(st, 2, after ? after : "");
    rm_bind_i64(st, 3, (int64_t)limit + 1);
    wx_buf_adds(out, "{\"data\":[");
    char last[WX_ID_BYTES_MAX + 1] = "";
    bool more = false;
    err = owner_rows(st, limit, out, last, &more);
    rm_finalize(st);
    wx_buf_adds(out, "],\"nextCursor\":");
    if (more) {
        wx_buf_adds(out, "\"i");
        wx_buf_adds(out, last); /* ids are URL-safe by their grammar */
        wx_buf_adds(out, "\"}");
    } else {
        wx_buf_adds(out, "null}");
    }
out_end:
    es_projector_read_end(p, r);
    return err;
}

/* A JSON string of the column, or null. */
static void json_str_or_null(struct wx_buf *out, struct rm_stmt *st, int col)
{
    if (rm_column_null(st, col))
        wx_buf_adds(out, "null");
    else
        wx_buf_json_str(out, rm_column_text(st, col));
}

/* One LedgerEntry of the current row. */
static int ledger_entry_json(struct rm_stmt *st, const char *wallet_id, struct wx_buf *out)
{
    int64_t version = rm_column_i64(st, 0);
    const char *currency = rm_column_text(st, 5);
    int exponent = wx_currency_exponent(currency);
    if (exponent < 0)
        return WX_ERR_CORRUPT;
    char at[WX_RFC3339_BYTES];
    wx_time_format(rm_column_i64(st, 9), at);
    wx_buf_printf(out, "{\"entryId\":\"%s:%lld\",\"walletId\":", wallet_id, (long long)version);
    wx_buf_json_str(out, wallet_id);
    wx_buf_printf(out, ",\"version\":%lld,\"type\":\"%s\",\"amount\":", (long long)version,
                  rm_column_text(st, 1));
    wx_money_format(out, rm_column_i64(st, 2), exponent);
    wx_buf_adds(out, ",\"balanceBefore\":");
    wx_money_format(out, rm_column_i64(st, 3), exponent);
    wx_buf_adds(out, ",\"balanceAfter\":");
    wx_money_format(out, rm_column_i64(st, 4), exponent);
    wx_buf_adds(out, ",\"currency\":");
    wx_buf_json_str(out, currency);
    wx_buf_adds(out, ",\"description\":");
    json_str_or_null(out, st, 6);
    wx_buf_adds(out, ",\"transferId\":");
    json_str_or_null(out, st, 7);
    wx_buf_adds(out, ",\"eventId\":");
    wx_buf_json_str(out, rm_column_text(st, 8));
    wx_buf_adds(out, ",\"occurredAt\":");
    wx_buf_json_str(out, at);
    wx_buf_addc(out, '}');
    return 0;
}

int wallet_query_ledger(struct es_projector *p, const char *wallet_id, const char *owner_only,
                        int64_t after_version, size_t limit, struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct wallet_state s;
    int64_t wversion;
    struct rm_stmt *st = NULL;
    err = read_wallet(r, wallet_id, &s, &wversion);
    if (!err && !visible(&s, owner_only))
        err = WX_ERR_NOT_FOUND;
    if (!err)
        err = prepare_live(r, "ledger",
                           LEDGER_BOTH("version, type, amount_minor, balance_before_minor,"
                                       " balance_after_minor, currency, description,"
                                       " transfer_id, event_id, occurred_at_ms",
                                       "WHERE wallet_id = ?1 AND version > ?2")
                           " ORDER BY version LIMIT ?3",
                           &st);
    if (err)
        goto out_end;
    rm_bind_text(st, 1, wallet_id);
    rm_bind_i64(st, 2, after_version);
    rm_bind_i64(st, 3, (int64_t)limit + 1);
    wx_buf_adds(out, "{\"data\":[");
    size_t n = 0;
    int64_t last = 0;
    bool more = false, row;
    while (!err && (err = rm_step(st, &row)) == 0 && row) {
        if (n == limit || (n > 0 && out->len >= WX_PAGE_BYTES_MAX)) { /* a full page */
            more = true;
            break;
        }
        if (n++ > 0)
            wx_buf_addc(out, ',');
        err = ledger_entry_json(st, wallet_id, out);
        if (err)
            break;
        last = rm_column_i64(st, 0);
    }
    rm_finalize(st);
    if (more)
        wx_buf_printf(out, "],\"nextCursor\":\"v%lld\"}", (long long)last);
    else
        wx_buf_adds(out, "],\"nextCursor\":null}");
out_end:
    es_projector_read_end(p, r);
    return err;
}

/* The wallet as a transfer left it: the ledger entry at that version gives
 * the balance and time; the wallet row gives owner, currency, creation. */
static int wallet_at(struct es_read *r, const char *id, int64_t version, struct wallet_state *s)
{
    int64_t now_version;
    int err = read_wallet(r, id, s, &now_version);
    if (err)
        return err == WX_ERR_NOT_FOUND ? WX_ERR_CORRUPT : err;
    struct rm_stmt *st;
    err = prepare_live(r, "ledger",
                       LEDGER_BOTH("balance_after_minor, occurred_at_ms",
                                   "WHERE wallet_id = ?1 AND version = ?2"),
                       &st);
    if (err)
        return err;
    rm_bind_text(st, 1, id);
    rm_bind_i64(st, 2, version);
    bool row = false;
    err = rm_step(st, &row);
    if (!err && row) {
        s->balance_minor = rm_column_i64(st, 0);
        s->updated_at_ms = rm_column_i64(st, 1);
    } else if (!err) {
        err = WX_ERR_BUSY; /* the ledger lags the transfers model: not there yet */
    }
    rm_finalize(st);
    return err;
}

/* The transfer row into t; WX_ERR_NOT_FOUND when absent. */
static int read_transfer(struct es_read *r, const char *transfer_id, struct transfer_state *t)
{
    struct rm_stmt *st;
    int err = prepare_live(r, "transfers",
                           "SELECT from_wallet_id, to_wallet_id, amount_minor, currency,"
                           " description, from_version, to_version, created_at_ms"
                           " FROM transfers{s} WHERE transfer_id = ?1",
                           &st);
    if (err)
        return err;
    rm_bind_text(st, 1, transfer_id);
    bool row = false;
    err = rm_step(st, &row);
    transfer_state_init(t);
    if (!err && row) {
        t->exists = true;
        snprintf(t->from_wallet_id, sizeof(t->from_wallet_id), "%s", rm_column_text(st, 0));
        snprintf(t->to_wallet_id, sizeof(t->to_wallet_id), "%s", rm_column_text(st, 1));
        t->amount_minor = rm_column_i64(st, 2);
        snprintf(t->currency, sizeof(t->currency), "%s", rm_column_text(st, 3));
        if (!rm_column_null(st, 4))
            snprintf(t->description, sizeof(t->description), "%s", rm_column_text(st, 4));
        t->from_version = rm_column_i64(st, 5);
        t->to_version = rm_column_i64(st, 6);
        t->created_at_ms = rm_column_i64(st, 7);
    } else if (!err) {
        err = WX_ERR_NOT_FOUND;
    }
    rm_finalize(st);
    return err;
}

int wallet_query_transfer(struct es_projector *p, const char *transfer_id,
                          const char *owner_only, struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct transfer_state t;
    struct wallet_state from, to;
    err = read_transfer(r, transfer_id, &t);
    if (!err)
        err = wallet_at(r, t.from_wallet_id, t.from_version, &from);
    if (!err)
        err = wallet_at(r, t.to_wallet_id, t.to_version, &to);
    /* A caller sees a transfer of one of its wallets, and only its side. */
    bool from_seen = !err && visible(&from, owner_only), to_seen = !err && visible(&to, owner_only);
    if (!err && !from_seen && !to_seen)
        err = WX_ERR_NOT_FOUND;
    if (!err)
        transfer_json(out, transfer_id, &t, from_seen ? &from : NULL, to_seen ? &to : NULL);
    es_projector_read_end(p, r);
    return err;
}
