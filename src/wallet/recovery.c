/*
 * Recovery for the wallet read models: rebuild one wallet from its stream,
 * find drift between the read models and a fold of the log, and verify the
 * money invariants of SPEC.md. Drift and verify read inside one read
 * transaction, so they compare the read side at its own checkpoints with
 * the log up to those same positions: a lagging projection is not drift.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/map.h"
#include "store/store.h"
#include "wallet/projections.h"

/* ---- rebuild one wallet ---- */

/* delete_sql: NULL-terminated statements that forget the wallet's rows. */
static int rebuild_one_consumer(struct es_projector *p, struct rm_conn *conn, const char *name,
                                const char *const *delete_sql, const char *wallet_id)
{
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    wallet_stream_id(wallet_id, stream);
    struct es_forget_sql forget = {delete_sql, wallet_id};
    return es_projector_replay_stream(p, conn, name, stream, es_projector_forget_sql, &forget);
}

/* Wallets, then ledger: the order the domain registers them in, which is
 * the order their checkpoints are locked in (es_projector_replay_stream). */
static int rebuild_one_job(struct es_projector *p, struct rm_conn *conn, void *ctx)
{
    const char *wallet_id = ctx;
    int err = rm_begin(conn, RM_TX_WRITE);
    if (err)
        return err;
    static const char *const forget_wallet[] = {"DELETE FROM wallets{s} WHERE id = ?1", NULL};
    static const char *const forget_ledger[] = {
        "DELETE FROM ledger{s} WHERE wallet_id = ?1",
        "DELETE FROM ledger_tail{s} WHERE wallet_id = ?1",
        NULL,
    };
    err = rebuild_one_consumer(p, conn, "wallets", forget_wallet, wallet_id);
    if (!err)
        err = rebuild_one_consumer(p, conn, "ledger", forget_ledger, wallet_id);
    return rm_end(conn, err);
}

int wallet_rebuild_one(struct es_projector *p, const char *wallet_id)
{
    return es_projector_replay_job(p, rebuild_one_job, (void *)wallet_id);
}

/* ---- scanning the log ---- */

struct folded {
    struct wallet_state s;
    int64_t version;       /* at the wallets checkpoint */
    int64_t state_version; /* at the end of the scan */
    struct wallet_state at_head;
    bool seen_row;
};

struct money_total {
    char currency[WX_CURRENCY_BYTES + 1];
    __int128 credits, debits, balances, rows;
};

struct scan {
    struct es_read *r;
    struct es_drift_report *report;
    struct wx_buf scratch; /* upcast data */
    struct es_position wallets_pos, ledger_pos;
    struct wx_map wallets; /* id -> struct folded */
    struct rm_stmt *ledger_row;
    int64_t ledger_events;
    int64_t events;
    struct es_position last; /* of the last event scanned */
    struct money_total totals[16];
    size_t totals_len;
    int err;
};

static void drift_add(struct scan *sc, const char *wallet_id, const char *model, const char *field,
                      const char *read_model, const char *events)
{
    int err = es_drift_report_diff(sc->report, "walletId", wallet_id, model, field, read_model, events);
    if (err)
        sc->err = err;
}

static void drift_i64(struct scan *sc, const char *wallet_id, const char *model,
                      const char *field, int64_t read_model, int64_t events)
{
    char a[24], b[24];
    snprintf(a, sizeof(a), "%lld", (long long)read_model);
    snprintf(b, sizeof(b), "%lld", (long long)events);
    drift_add(sc, wallet_id, model, field, a, b);
}

static struct money_total *total_for(struct scan *sc, const char *currency)
{
    for (size_t i = 0; i < sc->totals_len; i++)
        if (strcmp(sc->totals[i].currency, currency) == 0)
            return &sc->totals[i];
    if (sc->totals_len == sizeof(sc->totals) / sizeof(sc->totals[0]))
        return NULL;
    struct money_total *t = &sc->totals[sc->totals_len++];
    memset(t, 0, sizeof(*t));
    snprintf(t->currency, sizeof(t->currency), "%s", currency);
    return t;
}

/* The ledger row for one credit or debit must exist and say the same. */
static void check_ledger_row(struct scan *sc, const char *wallet_id, const struct es_event *ev,
                             const struct wallet_event *e)
{
    struct rm_stmt *st = sc->ledger_row;
    rm_reset(st);
    rm_bind_text(st, 1, wallet_id);
    rm_bind_i64(st, 2, ev->version);
    bool row = false;
    int err = rm_step(st, &row);
    char field[32];
    snprintf(field, sizeof(field), "entry v%lld", (long long)ev->version);
    if (err) {
        sc->err = err;
        return;
    }
    if (!row) {
        drift_add(sc, wallet_id, "ledger", field, "missing", "present");
        return;
    }
    const char *type = rm_column_text(st, 0);
    const char *want = e->kind == WALLET_CREDITED ? "CREDIT" : "DEBIT";
    if (strcmp(type, want) != 0)
        drift_add(sc, wallet_id, "ledger", field, type, want);
    if (rm_column_i64(st, 1) != e->amount_minor)
        drift_i64(sc, wallet_id, "ledger", "amountMinor", rm_column_i64(st, 1),
                  e->amount_minor);
    if (rm_column_i64(st, 2) != e->balance_before_minor)
        drift_i64(sc, wallet_id, "ledger", "balanceBeforeMinor", rm_column_i64(st, 2),
                  e->balance_before_minor);
    if (rm_column_i64(st, 3) != e->balance_after_minor)
        drift_i64(sc, wallet_id, "ledger", "balanceAfterMinor", rm_column_i64(st, 3),
                  e->balance_after_minor);
}

static int scan_event(void *arg, const struct es_event *stored)
{
    struct scan *sc = arg;
    sc->events++;
    sc->last = stored->position;
    if (!es_stream_in_category(stored->stream_id, WALLET_CATEGORY))
        return 0;
    struct es_event current;
    const struct es_event *ev = &current;
    int err = es_upcast(stored, &current, &sc->scratch);
    if (err)
        return err;
    const char *wallet_id = ev->stream_id + sizeof(WALLET_STREAM_PREFIX) - 1;
    struct folded *f = wx_map_get(&sc->wallets, wallet_id);
    if (f == NULL) {
        f = calloc(1, sizeof(*f));
        if (f == NULL || wx_map_put(&sc->wallets, wallet_id, f) != 0) {
            free(f);
            return WX_ERR_NOMEM;
        }
    }
    /* The fold checks every event against the state as it goes. */
    err = wallet_aggregate.evolve_stored(&f->at_head, ev);
    if (err)
        return err;
    f->state_version = ev->version;
    if (es_position_cmp(&ev->position, &sc->wallets_pos) <= 0) {
        f->s = f->at_head;
        f->version = ev->version;
    }
    char text[WALLET_EVENT_DATA_BYTES_MAX];
    struct wallet_event e;
    err = wallet_event_decode(ev, text, sizeof(text), &e);
    if (!err && e.kind != WALLET_CREATED) {
        struct money_total *t = total_for(sc, e.currency);
        if (t != NULL && e.transfer_id == NULL) {
            if (e.kind == WALLET_CREDITED)
                t->credits += e.amount_minor;
            else
                t->debits += e.amount_minor;
        }
        if (es_position_cmp(&ev->position, &sc->ledger_pos) <= 0) {
            sc->ledger_events++;
            check_ledger_row(sc, wallet_id, ev, &e);
        }
    }
    return err;
}

static void free_folded(struct wx_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].value);
    wx_map_free(m);
}

/* Reads the whole log up to the head with the read side's checkpoints fixed
 * by the open read transaction. */
static int scan_log(struct es_projector *p, struct scan *sc)
{
    int err = es_read_position(sc->r, "wallets", &sc->wallets_pos);
    if (!err)
        err = es_projector_prepare_live(sc->r, "ledger",
                                  LEDGER_BOTH("type, amount_minor, balance_before_minor,"
                                              " balance_after_minor",
                                              "WHERE wallet_id = ?1 AND version = ?2"),
                                  &sc->ledger_row, &sc->ledger_pos);
    if (err)
        return err;
    sc->last = es_position_start();
    wx_buf_init(&sc->scratch);
    for (;;) {
        int64_t events_before = sc->events;
        struct es_position after = sc->last;
        err = es_store_read_log(es_projector_store(p), &after, WX_SCAN_BATCH_EVENTS_MAX,
                                scan_event, sc);
        if (err || sc->events - events_before < WX_SCAN_BATCH_EVENTS_MAX)
            break;
    }
    wx_buf_free(&sc->scratch);
    rm_finalize(sc->ledger_row);
    sc->ledger_row = NULL;
    return err ? err : sc->err;
}

/* Compares every wallet row with the fold; marks the folds it saw. */
static int compare_wallet_rows(struct scan *sc)
{
    struct rm_stmt *st;
    int err = es_projector_prepare_live(sc->r, "wallets",
                                  "SELECT id, owner_id, currency, balance_minor, version,"
                                  " created_at_ms, updated_at_ms, coalesce(created_by, ''),"
                                  " coalesce(updated_by, '') FROM wallets{s}",
                                  &st, NULL);
    if (err)
        return err;
    bool row;
    while ((err = rm_step(st, &row)) == 0 && row) {
        const char *id = rm_column_text(st, 0);
        struct folded *f = wx_map_get(&sc->wallets, id);
        if (f == NULL || f->version == 0) {
            drift_add(sc, id, "wallets", "row", "present", "absent");
            continue;
        }
        f->seen_row = true;
        const char *owner = rm_column_text(st, 1);
        const char *currency = rm_column_text(st, 2);
        if (strcmp(owner, f->s.owner_id) != 0)
            drift_add(sc, id, "wallets", "ownerId", owner, f->s.owner_id);
        if (strcmp(currency, f->s.currency) != 0)
            drift_add(sc, id, "wallets", "currency", currency, f->s.currency);
        if (rm_column_i64(st, 3) != f->s.balance_minor)
            drift_i64(sc, id, "wallets", "balanceMinor", rm_column_i64(st, 3),
                      f->s.balance_minor);
        if (rm_column_i64(st, 4) != f->version)
            drift_i64(sc, id, "wallets", "version", rm_column_i64(st, 4), f->version);
        if (rm_column_i64(st, 5) != f->s.created_at_ms)
            drift_i64(sc, id, "wallets", "createdAtMs", rm_column_i64(st, 5),
                      f->s.created_at_ms);
        if (rm_column_i64(st, 6) != f->s.updated_at_ms)
            drift_i64(sc, id, "wallets", "updatedAtMs", rm_column_i64(st, 6),
                      f->s.updated_at_ms);
        const char *created_by = rm_column_text(st, 7);
        const char *updated_by = rm_column_text(st, 8);
        if (strcmp(created_by, f->s.created_by) != 0)
            drift_add(sc, id, "wallets", "createdBy", created_by, f->s.created_by);
        if (strcmp(updated_by, f->s.updated_by) != 0)
            drift_add(sc, id, "wallets", "updatedBy", updated_by, f->s.updated_by);
        struct money_total *t = total_for(sc, currency);
        if (t != NULL)
            t->rows += rm_column_i64(st, 3);
    }
    rm_finalize(st);
    for (size_t i = 0; i < sc->wallets.cap && !err; i++) {
        struct folded *f = sc->wallets.slots[i].value;
        if (f != NULL && f->version > 0 && !f->seen_row)
            drift_add(sc, sc->wallets.slots[i].key, "wallets", "row", "absent", "present");
    }
    return err;
}

/* Ledger rows nobody accounts for (an entry without its event). */
static int compare_ledger_count(struct scan *sc)
{
    struct rm_stmt *st;
    int err = es_projector_prepare_live(
        sc->r, "ledger",
        "SELECT (SELECT count(*) FROM ledger{s}) + (SELECT count(*) FROM ledger_tail{s})", &st,
        NULL);
    if (err)
        return err;
    int64_t rows = 0;
    err = rm_run_i64(st, &rows);
    rm_finalize(st);
    if (!err && rows != sc->ledger_events)
        drift_i64(sc, "*", "ledger", "entries", rows, sc->ledger_events);
    return err;
}

/* Opens the read transaction, scans and compares; the caller reports. */
static int drift_run(struct es_projector *p, struct scan *sc, struct es_drift_report *report)
{
    memset(sc, 0, sizeof(*sc));
    sc->report = report;
    wx_map_init(&sc->wallets);
    int err = es_projector_read_begin(p, &sc->r);
    if (err)
        return err;
    err = scan_log(p, sc);
    if (!err)
        err = compare_wallet_rows(sc);
    if (!err)
        err = compare_ledger_count(sc);
    if (!err)
        report->checked += sc->wallets.len;
    return err ? err : sc->err;
}

static void drift_done(struct es_projector *p, struct scan *sc)
{
    es_projector_read_end(p, sc->r);
    free_folded(&sc->wallets);
}

int wallet_drift(struct es_projector *p, struct es_drift_report *report)
{
    struct scan sc;
    int err = drift_run(p, &sc, report);
    drift_done(p, &sc);
    return err;
}

/* ---- verify ---- */

static void add_i128(struct wx_buf *b, __int128 v)
{
    char tmp[48];
    char *e = tmp + sizeof(tmp), *q = e;
    unsigned __int128 m = v < 0 ? (unsigned __int128)0 - (unsigned __int128)v : (unsigned __int128)v;
    do {
        *--q = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m != 0);
    if (v < 0)
        *--q = '-';
    wx_buf_add(b, q, (size_t)(e - q));
}

/* Every ledger entry's balanceBefore is the previous entry's balanceAfter,
 * the first starts at zero, and no balance is negative. */
static int check_ledger_chains(struct scan *sc, struct wx_buf *v, size_t *n)
{
    /* Both parts come in (wallet, version) order from their keys, so the
     * union is a merge, not a sort of the whole ledger. */
    struct rm_stmt *st;
    int err = es_projector_prepare_live(
        sc->r, "ledger",
        LEDGER_BOTH("wallet_id, version, balance_before_minor, balance_after_minor", "")
        " ORDER BY wallet_id, version",
        &st, NULL);
    if (err)
        return err;
    char wallet[WX_ID_BYTES_MAX + 1] = "";
    int64_t prev_after = 0;
    bool row;
    while ((err = rm_step(st, &row)) == 0 && row) {
        const char *w = rm_column_text(st, 0);
        if (strcmp(w, wallet) != 0) {
            snprintf(wallet, sizeof(wallet), "%s", w);
            prev_after = 0;
        }
        int64_t before = rm_column_i64(st, 2), after = rm_column_i64(st, 3);
        char text[160];
        if (before != prev_after) {
            snprintf(text, sizeof(text), "ledger of %s: version %lld starts at %lld, not %lld", w,
                     (long long)rm_column_i64(st, 1), (long long)before,
                     (long long)prev_after);
            es_verify_violation(v, n, text);
        }
        if (after < 0) {
            snprintf(text, sizeof(text), "ledger of %s: negative balance at version %lld", w,
                     (long long)rm_column_i64(st, 1));
            es_verify_violation(v, n, text);
        }
        prev_after = after;
    }
    rm_finalize(st);
    return err;
}

int wallet_verify(struct es_projector *p, struct wx_buf *out, struct wx_buf *v, size_t *nv_out)
{
    struct scan sc;
    struct wx_buf drifted;
    wx_buf_init(&drifted);
    struct es_drift_report report = {.items = &drifted};
    size_t nv = *nv_out;
    int err = drift_run(p, &sc, &report);
    if (!err)
        err = check_ledger_chains(&sc, v, &nv);
    if (err)
        goto out;
    if (report.drifted > 0) {
        char text[96];
        snprintf(text, sizeof(text), "%zu differences between the wallet read models and the log",
                 report.drifted);
        es_verify_violation(v, &nv, text);
    }
    /* Money is conserved: per currency, the sum of balances equals what came
     * in minus what went out; transfers only move it. */
    wx_buf_adds(out, "{\"currencies\":[");
    for (size_t i = 0; i < sc.totals_len; i++) {
        struct money_total *t = &sc.totals[i];
        __int128 folded = 0;
        for (size_t w = 0; w < sc.wallets.cap; w++) {
            struct folded *f = sc.wallets.slots[w].value;
            if (f == NULL)
                continue;
            /* The fold itself refuses a debit below zero (evolve_stored). */
            if (strcmp(f->at_head.currency, t->currency) == 0)
                folded += f->at_head.balance_minor;
        }
        t->balances = folded;
        if (t->credits - t->debits != folded) {
            char text[96];
            snprintf(text, sizeof(text), "%s: balances do not equal credits minus debits",
                     t->currency);
            es_verify_violation(v, &nv, text);
        }
        if (i > 0)
            wx_buf_addc(out, ',');
        wx_buf_adds(out, "{\"currency\":");
        wx_buf_json_str(out, t->currency);
        wx_buf_adds(out, ",\"externalCreditsMinor\":");
        add_i128(out, t->credits);
        wx_buf_adds(out, ",\"externalDebitsMinor\":");
        add_i128(out, t->debits);
        wx_buf_adds(out, ",\"balancesMinor\":");
        add_i128(out, t->balances);
        wx_buf_adds(out, ",\"readModelBalancesMinor\":");
        add_i128(out, t->rows);
        wx_buf_addc(out, '}');
    }
    wx_buf_printf(out, "],\"events\":%lld,\"wallets\":%zu,\"ledgerEntries\":%lld,"
                       "\"drifted\":[",
                  (long long)sc.events, sc.wallets.len, (long long)sc.ledger_events);
    wx_buf_add(out, drifted.data ? drifted.data : "", drifted.len);
    wx_buf_adds(out, "]}");
    *nv_out = nv;
out:
    drift_done(p, &sc);
    wx_buf_free(&drifted);
    return err;
}
