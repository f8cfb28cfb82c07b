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
#include "store/sqlconn.h"

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
    [W_CREATE] = "INSERT OR IGNORE INTO wallets{s}(id, owner_id, currency, balance_minor, version,"
                 " created_at_ms, updated_at_ms, created_by, updated_by)"
                 " VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5, ?6, ?6)",
    [W_MOVE] = "UPDATE wallets{s} SET balance_minor = ?2, version = ?3, updated_at_ms = ?4,"
               " updated_by = ?5 WHERE id = ?1 AND version < ?3",
    NULL,
};

/* createdBy and updatedBy came with authentication (issue 21). */
static const char *const wallets_columns_added[] = {
    "ALTER TABLE wallets{s} ADD COLUMN created_by TEXT",
    "ALTER TABLE wallets{s} ADD COLUMN updated_by TEXT",
    NULL,
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
    sqlite3_stmt *st = es_proj_stmt(tx, e->kind == WALLET_CREATED ? W_CREATE : W_MOVE);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, e->wallet_id);
    if (e->kind == WALLET_CREATED) {
        sqlconn_bind_text(st, 2, e->owner_id);
        sqlconn_bind_text(st, 3, e->currency);
        sqlite3_bind_int64(st, 4, ev->version);
        sqlite3_bind_int64(st, 5, ev->occurred_at_ms);
        sqlconn_bind_text(st, 6, e->actor); /* NULL binds NULL */
    } else {
        sqlite3_bind_int64(st, 2, e->balance_after_minor);
        sqlite3_bind_int64(st, 3, ev->version);
        sqlite3_bind_int64(st, 4, ev->occurred_at_ms);
        sqlconn_bind_text(st, 5, e->actor);
    }
    return sqlconn_run_i64(st, NULL);
}

const struct es_consumer wallet_consumer_wallets = {
    .name = "wallets",
    .categories = categories,
    .codec = &wallet_codec,
    .schema = "CREATE TABLE IF NOT EXISTS wallets{s}(id TEXT PRIMARY KEY, owner_id TEXT NOT NULL,"
              " currency TEXT NOT NULL, balance_minor INTEGER NOT NULL, version INTEGER NOT NULL,"
              " created_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,"
              " created_by TEXT, updated_by TEXT) WITHOUT ROWID;"
              "CREATE INDEX IF NOT EXISTS wallets{s}_owner ON wallets{s}(owner_id, id);",
    .columns_added = wallets_columns_added,
    .drop = "DROP TABLE IF EXISTS wallets{s};",
    .sql = wallets_sql,
    .apply = apply_wallets,
};

/* ---- ledger ---- */

/* Entries are appended to the tail, so a projector commit writes a few new
 * pages there instead of one page per wallet it touched (measured in
 * docs/architecture.md); the fold moves them in (wallet, version) order,
 * which writes each hot wallet's page once per fold. */
enum { L_PUT, L_FOLD_MOVE, L_FOLD_CLEAR };

#define LEDGER_COLUMNS                                                                             \
    "wallet_id, version, type, amount_minor, balance_before_minor, balance_after_minor,"          \
    " currency, description, transfer_id, event_id, position_hi, position_lo, occurred_at_ms"

#define LEDGER_COLUMN_TYPES                                                                        \
    "wallet_id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,"                     \
    " amount_minor INTEGER NOT NULL, balance_before_minor INTEGER NOT NULL,"                      \
    " balance_after_minor INTEGER NOT NULL, currency TEXT NOT NULL, description TEXT,"            \
    " transfer_id TEXT, event_id TEXT NOT NULL, position_hi INTEGER NOT NULL,"                    \
    " position_lo INTEGER NOT NULL, occurred_at_ms INTEGER NOT NULL"

static const char *const ledger_sql[] = {
    /* OR REPLACE on the tail's (wallet, version) keeps a replayed event at
     * one entry; an entry already folded is never replayed, because the
     * fold commits with the checkpoint that covers it. */
    [L_PUT] = "INSERT OR REPLACE INTO ledger_tail{s}(" LEDGER_COLUMNS ")"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [L_FOLD_MOVE] = "INSERT OR REPLACE INTO ledger{s}(" LEDGER_COLUMNS ") SELECT " LEDGER_COLUMNS
                    " FROM ledger_tail{s} ORDER BY wallet_id, version",
    [L_FOLD_CLEAR] = "DELETE FROM ledger_tail{s}",
    NULL,
};

static int apply_ledger(struct es_proj_tx *tx, const struct es_event *ev, const void *decoded)
{
    const struct decoded *d = decoded;
    if (d == NULL || !wallet_stream_event(ev) || d->e.kind == WALLET_CREATED)
        return 0;
    struct wallet_event e = d->e;
    sqlite3_stmt *st = es_proj_stmt(tx, L_PUT);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, e.wallet_id);
    sqlite3_bind_int64(st, 2, ev->version);
    sqlconn_bind_text(st, 3, e.kind == WALLET_CREDITED ? "CREDIT" : "DEBIT");
    sqlite3_bind_int64(st, 4, e.amount_minor);
    sqlite3_bind_int64(st, 5, e.balance_before_minor);
    sqlite3_bind_int64(st, 6, e.balance_after_minor);
    sqlconn_bind_text(st, 7, e.currency);
    if (e.description != NULL)
        sqlconn_bind_text(st, 8, e.description);
    if (e.transfer_id != NULL)
        sqlconn_bind_text(st, 9, e.transfer_id);
    sqlconn_bind_text(st, 10, ev->event_id);
    sqlite3_bind_int64(st, 11, (int64_t)ev->position.hi);
    sqlite3_bind_int64(st, 12, (int64_t)ev->position.lo);
    sqlite3_bind_int64(st, 13, ev->occurred_at_ms);
    int err = sqlconn_run_i64(st, NULL);
    if (!err)
        tx->staged++;
    return err;
}

static int fold_ledger(struct es_proj_tx *tx)
{
    sqlite3_stmt *st = es_proj_stmt(tx, L_FOLD_MOVE);
    int err = st == NULL ? WX_ERR_IO : sqlconn_run_i64(st, NULL);
    if (!err) {
        st = es_proj_stmt(tx, L_FOLD_CLEAR);
        err = st == NULL ? WX_ERR_IO : sqlconn_run_i64(st, NULL);
    }
    return err;
}

const struct es_consumer wallet_consumer_ledger = {
    .name = "ledger",
    .categories = categories,
    .codec = &wallet_codec,
    .schema = "CREATE TABLE IF NOT EXISTS ledger{s}(" LEDGER_COLUMN_TYPES
              ", PRIMARY KEY(wallet_id, version)) WITHOUT ROWID;"
              "CREATE TABLE IF NOT EXISTS ledger_tail{s}(seq INTEGER PRIMARY KEY, "
              LEDGER_COLUMN_TYPES ");"
              "CREATE UNIQUE INDEX IF NOT EXISTS ledger_tail{s}_entry"
              " ON ledger_tail{s}(wallet_id, version);",
    .drop = "DROP TABLE IF EXISTS ledger{s}; DROP TABLE IF EXISTS ledger_tail{s};",
    .sql = ledger_sql,
    .apply = apply_ledger,
    .fold = fold_ledger,
};

/* ---- transfers ---- */

enum { T_PUT };

static const char *const transfers_sql[] = {
    [T_PUT] = "INSERT OR REPLACE INTO transfers{s}(transfer_id, from_wallet_id, to_wallet_id,"
              " amount_minor, currency, description, from_version, to_version, created_at_ms)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
    sqlite3_stmt *st = es_proj_stmt(tx, T_PUT);
    if (st == NULL)
        return WX_ERR_IO;
    sqlconn_bind_text(st, 1, e.transfer_id);
    sqlconn_bind_text(st, 2, e.from_wallet_id);
    sqlconn_bind_text(st, 3, e.to_wallet_id);
    sqlite3_bind_int64(st, 4, e.amount_minor);
    sqlconn_bind_text(st, 5, e.currency);
    if (e.description != NULL)
        sqlconn_bind_text(st, 6, e.description);
    sqlite3_bind_int64(st, 7, e.from_version);
    sqlite3_bind_int64(st, 8, e.to_version);
    sqlite3_bind_int64(st, 9, ev->occurred_at_ms);
    return sqlconn_run_i64(st, NULL);
}

const struct es_consumer wallet_consumer_transfers = {
    .name = "transfers",
    .categories = categories,
    .codec = &wallet_codec,
    .schema = "CREATE TABLE IF NOT EXISTS transfers{s}(transfer_id TEXT PRIMARY KEY,"
              " from_wallet_id TEXT NOT NULL, to_wallet_id TEXT NOT NULL,"
              " amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, description TEXT,"
              " from_version INTEGER NOT NULL, to_version INTEGER NOT NULL,"
              " created_at_ms INTEGER NOT NULL) WITHOUT ROWID;",
    .drop = "DROP TABLE IF EXISTS transfers{s};",
    .sql = transfers_sql,
    .apply = apply_transfers,
};

const struct es_consumer *const wallet_consumers[] = {
    &wallet_consumer_wallets,
    &wallet_consumer_ledger,
    &wallet_consumer_transfers,
    NULL,
};

/* ---- queries ---- */

static int prepare_live(struct sqlconn *c, const char *name, const char *tmpl,
                        sqlite3_stmt **st_out)
{
    return es_projector_prepare_live(c, name, tmpl, st_out, NULL);
}

#define WALLET_COLUMNS                                                                             \
    "id, owner_id, currency, balance_minor, version, created_at_ms, updated_at_ms, created_by,"   \
    " updated_by"

static void wallet_from_row(sqlite3_stmt *st, struct wallet_state *s, int64_t *version)
{
    wallet_state_init(s);
    s->exists = true;
    snprintf(s->owner_id, sizeof(s->owner_id), "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(s->currency, sizeof(s->currency), "%s", (const char *)sqlite3_column_text(st, 2));
    s->balance_minor = sqlite3_column_int64(st, 3);
    *version = sqlite3_column_int64(st, 4);
    s->created_at_ms = sqlite3_column_int64(st, 5);
    s->updated_at_ms = sqlite3_column_int64(st, 6);
    const char *created_by = (const char *)sqlite3_column_text(st, 7);
    const char *updated_by = (const char *)sqlite3_column_text(st, 8);
    snprintf(s->created_by, sizeof(s->created_by), "%s", created_by ? created_by : "");
    snprintf(s->updated_by, sizeof(s->updated_by), "%s", updated_by ? updated_by : "");
}

/* Reads one wallet row into s; WX_ERR_NOT_FOUND when absent. */
static int read_wallet(struct sqlconn *c, const char *id, struct wallet_state *s, int64_t *version)
{
    sqlite3_stmt *st;
    int err = prepare_live(c, "wallets", "SELECT " WALLET_COLUMNS " FROM wallets{s} WHERE id = ?1",
                           &st);
    if (err)
        return err;
    sqlconn_bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        wallet_from_row(st, s, version);
    else if (rc == SQLITE_DONE)
        err = WX_ERR_NOT_FOUND;
    else if ((err = sqlconn_err(rc)) == 0)
        err = WX_ERR_IO; /* sqlconn_err maps SQLITE_OK to 0; no row is no success */
    sqlite3_finalize(st);
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
    struct sqlconn *c;
    int err = es_projector_read_begin(p, &c);
    if (err)
        return err;
    struct wallet_state s;
    int64_t version;
    err = read_wallet(c, wallet_id, &s, &version);
    if (!err && !visible(&s, owner_only))
        err = WX_ERR_NOT_FOUND;
    if (!err)
        wallet_json(out, wallet_id, &s, version);
    es_projector_read_end(p, c);
    return err;
}

int wallet_query_by_owner(struct es_projector *p, const char *owner_id, const char *after,
                          size_t limit, struct wx_buf *out)
{
    struct sqlconn *c;
    int err = es_projector_read_begin(p, &c);
    if (err)
        return err;
    sqlite3_stmt *st;
    err = prepare_live(c, "wallets",
                       "SELECT " WALLET_COLUMNS " FROM wallets{s} WHERE owner_id = ?1"
                       " AND id > ?2 ORDER BY id LIMIT ?3",
                       &st);
    if (err)
        goto out_end;
    sqlconn_bind_text(st, 1, owner_id);
    sqlconn_bind_text(st, 2, after ? after : "");
    sqlite3_bind_int64(st, 3, (int64_t)limit + 1);
    wx_buf_adds(out, "{\"data\":[");
    size_t n = 0;
    char last[WX_ID_BYTES_MAX + 1] = "";
    bool more = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit || (n > 0 && out->len >= WX_PAGE_BYTES_MAX)) { /* a full page */
            more = true;
            break;
        }
        struct wallet_state s;
        int64_t version;
        wallet_from_row(st, &s, &version);
        snprintf(last, sizeof(last), "%s", (const char *)sqlite3_column_text(st, 0));
        if (n++ > 0)
            wx_buf_addc(out, ',');
        wallet_json(out, last, &s, version);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = sqlconn_err(rc);
    sqlite3_finalize(st);
    wx_buf_adds(out, "],\"nextCursor\":");
    if (more) {
        wx_buf_adds(out, "\"i");
        wx_buf_adds(out, last); /* ids are URL-safe by their grammar */
        wx_buf_adds(out, "\"}");
    } else {
        wx_buf_adds(out, "null}");
    }
out_end:
    es_projector_read_end(p, c);
    return err;
}

/* A text column, or null. */
static void column_json(struct wx_buf *out, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        wx_buf_adds(out, "null");
    else
        wx_buf_json_str(out, (const char *)sqlite3_column_text(st, i));
}

/* The LedgerEntry of the row at the cursor (the columns of
 * wallet_query_ledger's SELECT); WX_ERR_CORRUPT for an unknown currency. */
static int ledger_entry_json(sqlite3_stmt *st, const char *wallet_id, struct wx_buf *out)
{
    int64_t version = sqlite3_column_int64(st, 0);
    const char *currency = (const char *)sqlite3_column_text(st, 5);
    int exponent = wx_currency_exponent(currency);
    if (exponent < 0)
        return WX_ERR_CORRUPT;
    char at[WX_RFC3339_BYTES];
    wx_time_format(sqlite3_column_int64(st, 9), at);
    wx_buf_printf(out, "{\"entryId\":\"%s:%lld\",\"walletId\":", wallet_id, (long long)version);
    wx_buf_json_str(out, wallet_id);
    wx_buf_printf(out, ",\"version\":%lld,\"type\":\"%s\",\"amount\":", (long long)version,
                  (const char *)sqlite3_column_text(st, 1));
    wx_money_format(out, sqlite3_column_int64(st, 2), exponent);
    wx_buf_adds(out, ",\"balanceBefore\":");
    wx_money_format(out, sqlite3_column_int64(st, 3), exponent);
    wx_buf_adds(out, ",\"balanceAfter\":");
    wx_money_format(out, sqlite3_column_int64(st, 4), exponent);
    wx_buf_adds(out, ",\"currency\":");
    wx_buf_json_str(out, currency);
    wx_buf_adds(out, ",\"description\":");
    column_json(out, st, 6);
    wx_buf_adds(out, ",\"transferId\":");
    column_json(out, st, 7);
    wx_buf_adds(out, ",\"eventId\":");
    wx_buf_json_str(out, (const char *)sqlite3_column_text(st, 8));
    wx_buf_adds(out, ",\"occurredAt\":");
    wx_buf_json_str(out, at);
    wx_buf_addc(out, '}');
    return 0;
}

int wallet_query_ledger(struct es_projector *p, const char *wallet_id, const char *owner_only,
                        int64_t after_version, size_t limit, struct wx_buf *out)
{
    struct sqlconn *c;
    int err = es_projector_read_begin(p, &c);
    if (err)
        return err;
    struct wallet_state s;
    int64_t wversion;
    sqlite3_stmt *st = NULL;
    err = read_wallet(c, wallet_id, &s, &wversion);
    if (!err && !visible(&s, owner_only))
        err = WX_ERR_NOT_FOUND;
    if (!err)
        err = prepare_live(c, "ledger",
                           LEDGER_BOTH("version, type, amount_minor, balance_before_minor,"
                                       " balance_after_minor, currency, description,"
                                       " transfer_id, event_id, occurred_at_ms",
                                       "WHERE wallet_id = ?1 AND version > ?2")
                           " ORDER BY version LIMIT ?3",
                           &st);
    if (err)
        goto out_end;
    sqlconn_bind_text(st, 1, wallet_id);
    sqlite3_bind_int64(st, 2, after_version);
    sqlite3_bind_int64(st, 3, (int64_t)limit + 1);
    wx_buf_adds(out, "{\"data\":[");
    size_t n = 0;
    int64_t last = 0;
    bool more = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit || (n > 0 && out->len >= WX_PAGE_BYTES_MAX)) { /* a full page */
            more = true;
            break;
        }
        if (n++ > 0)
            wx_buf_addc(out, ',');
        err = ledger_entry_json(st, wallet_id, out);
        if (err)
            break;
        last = sqlite3_column_int64(st, 0);
    }
    if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = sqlconn_err(rc);
    sqlite3_finalize(st);
    if (more)
        wx_buf_printf(out, "],\"nextCursor\":\"v%lld\"}", (long long)last);
    else
        wx_buf_adds(out, "],\"nextCursor\":null}");
out_end:
    es_projector_read_end(p, c);
    return err;
}

/* The wallet as a transfer left it: the ledger entry at that version gives
 * the balance and time; the wallet row gives owner, currency, creation. */
static int wallet_at(struct sqlconn *c, const char *id, int64_t version, struct wallet_state *s)
{
    int64_t now_version;
    int err = read_wallet(c, id, s, &now_version);
    if (err)
        return err == WX_ERR_NOT_FOUND ? WX_ERR_CORRUPT : err;
    sqlite3_stmt *st;
    err = prepare_live(c, "ledger",
                       LEDGER_BOTH("balance_after_minor, occurred_at_ms",
                                   "WHERE wallet_id = ?1 AND version = ?2"),
                       &st);
    if (err)
        return err;
    sqlconn_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, version);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->balance_minor = sqlite3_column_int64(st, 0);
        s->updated_at_ms = sqlite3_column_int64(st, 1);
    } else {
        /* The ledger lags the transfers model: not there yet. */
        err = rc == SQLITE_DONE ? WX_ERR_BUSY : sqlconn_err(rc);
    }
    sqlite3_finalize(st);
    return err;
}

int wallet_query_transfer(struct es_projector *p, const char *transfer_id,
                          const char *owner_only, struct wx_buf *out)
{
    struct sqlconn *c;
    int err = es_projector_read_begin(p, &c);
    if (err)
        return err;
    sqlite3_stmt *st;
    err = prepare_live(c, "transfers",
                       "SELECT from_wallet_id, to_wallet_id, amount_minor, currency, description,"
                       " from_version, to_version, created_at_ms FROM transfers{s}"
                       " WHERE transfer_id = ?1",
                       &st);
    if (err)
        goto out_end;
    sqlconn_bind_text(st, 1, transfer_id);
    int rc = sqlite3_step(st);
    struct transfer_state t;
    transfer_state_init(&t);
    if (rc == SQLITE_ROW) {
        t.exists = true;
        snprintf(t.from_wallet_id, sizeof(t.from_wallet_id), "%s",
                 (const char *)sqlite3_column_text(st, 0));
        snprintf(t.to_wallet_id, sizeof(t.to_wallet_id), "%s",
                 (const char *)sqlite3_column_text(st, 1));
        t.amount_minor = sqlite3_column_int64(st, 2);
        snprintf(t.currency, sizeof(t.currency), "%s", (const char *)sqlite3_column_text(st, 3));
        if (sqlite3_column_type(st, 4) != SQLITE_NULL)
            snprintf(t.description, sizeof(t.description), "%s",
                     (const char *)sqlite3_column_text(st, 4));
        t.from_version = sqlite3_column_int64(st, 5);
        t.to_version = sqlite3_column_int64(st, 6);
        t.created_at_ms = sqlite3_column_int64(st, 7);
    } else {
        err = rc == SQLITE_DONE ? WX_ERR_NOT_FOUND : sqlconn_err(rc);
    }
    sqlite3_finalize(st);
    struct wallet_state from, to;
    if (!err)
        err = wallet_at(c, t.from_wallet_id, t.from_version, &from);
    if (!err)
        err = wallet_at(c, t.to_wallet_id, t.to_version, &to);
    /* A caller sees a transfer of one of its wallets, and only its side. */
    bool from_seen = !err && visible(&from, owner_only), to_seen = !err && visible(&to, owner_only);
    if (!err && !from_seen && !to_seen)
        err = WX_ERR_NOT_FOUND;
    if (!err)
        transfer_json(out, transfer_id, &t, from_seen ? &from : NULL, to_seen ? &to : NULL);
out_end:
    es_projector_read_end(p, c);
    return err;
}
