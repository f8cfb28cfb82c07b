/*
 * Store benchmarks, straight through the store ops (no HTTP, no writer):
 *
 * DIR may be a PostgreSQL URL (schema WALLEX_PG_SCHEMA) for ceiling and genlog.
 *
 *   store_bench ceiling DIR EVENTS BATCH   appends EVENTS wallet credits in
 *                                          transactions of BATCH events
 *                                          (synchronous=FULL) and prints events/s
 *   store_bench genlog DIR WALLETS EVENTS  writes a valid wallet log: creations,
 *                                          then credits and debits with correct
 *                                          balances, for rebuild benchmarks
 *   store_bench coldload DIR EVENTS EVERY  one wallet with EVENTS credits and a
 *                                          snapshot every EVERY events (1: none);
 *                                          times loading it into a fresh store
 *
 * Events are the same JSON the server writes (wallet_event_encode).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/uuid.h"
#include "es/aggregate.h"
#include "http/http.h"
#include "store/store.h"
#include "wallet/wallet.h"

#define BATCH_MAX 10000

static struct es_event events[BATCH_MAX];
static struct es_stream_append appends[BATCH_MAX];
static struct es_batch_item items[BATCH_MAX];
static char streams[BATCH_MAX][WX_STREAM_ID_BYTES_MAX + 1];
static struct wx_buf datas[BATCH_MAX];

static const char metadata[] = "{\"correlationId\":\"bench\",\"causationId\":\"bench\","
                               "\"occurredAt\":\"2026-01-01T00:00:00.000Z\"}";

struct wallets {
    int64_t n;
    int64_t *versions;
    int64_t *balances;
    struct wallet_state *states; /* genlog: kept to write snapshots like the writer */
};

static void stage(size_t i, int64_t w, struct wallets *ws, struct wallet_event *e, int64_t now)
{
    char id[32];
    snprintf(id, sizeof(id), "c%" PRId64, w);
    e->wallet_id = id;
    e->currency = "USD";
    e->occurred_at_ms = now;
    wallet_stream_id(id, streams[i]);
    wx_buf_reset(&datas[i]);
    wallet_event_encode(&datas[i], e);
    struct es_event *ev = &events[i];
    memset(ev, 0, sizeof(*ev));
    wx_uuid7(now, ev->event_id);
    ev->type = wallet_event_type(e->kind)->name;
    ev->schema_version = wallet_event_type(e->kind)->schema_version;
    ev->data = datas[i].data;
    ev->data_len = datas[i].len;
    ev->metadata = metadata;
    ev->metadata_len = sizeof(metadata) - 1;
    ev->occurred_at_ms = now;
    /* The store checks expectations in batch order, so a wallet may appear
     * several times in one batch. */
    appends[i] = (struct es_stream_append){streams[i], {ES_EXPECT_EXACT, ws->versions[w]}, ev, 1};
    items[i] = (struct es_batch_item){.appends = &appends[i], .appends_len = 1};
    ws->versions[w]++;
}

static struct es_snapshot snaps[BATCH_MAX];
static struct wx_buf snap_data[BATCH_MAX];

/* As the writer does: when a wallet reaches a multiple of the default
 * snapshot interval, its state rides along in the same transaction. */
static void maybe_snapshot(size_t i, int64_t w, struct wallets *ws, const struct wallet_event *e)
{
    if (ws->states == NULL)
        return;
    struct wallet_event copy = *e;
    char id[32];
    snprintf(id, sizeof(id), "c%" PRId64, w);
    copy.wallet_id = id;
    wallet_evolve(&ws->states[w], &copy);
    if (ws->versions[w] % WX_SNAPSHOT_EVERY_DEFAULT != 0)
        return;
    wx_buf_reset(&snap_data[i]);
    wallet_aggregate.encode(&ws->states[w], &snap_data[i]);
    snaps[i] = (struct es_snapshot){streams[i], ws->versions[w], e->occurred_at_ms,
                                    snap_data[i].data, snap_data[i].len};
    items[i].snapshots = &snaps[i];
    items[i].snapshots_len = 1;
}

/* DIR may be a PostgreSQL URL instead (postgres://..., or key=value
 * pairs); the schema is WALLEX_PG_SCHEMA's, "wallex" by default. */
static struct es_store *open_dir(const char *dir)
{
    bool pg = strncmp(dir, "postgres", 8) == 0 || strchr(dir, '=') != NULL;
    const char *schema = getenv("WALLEX_PG_SCHEMA");
    struct es_store_config cfg = {.data_dir = dir, .url = dir, .pg_schema = schema};
    struct es_store *s = NULL;
    int err = es_store_open(pg ? "postgres" : "sqlite", &cfg, &s);
    if (err) {
        fprintf(stderr, "store_bench: open %s: %s\n", dir, wx_strerror(err));
        exit(1);
    }
    return s;
}

static void commit(struct es_store *s, size_t n)
{
    int err = es_store_commit(s, items, n);
    if (err) {
        fprintf(stderr, "store_bench: commit: %s\n", wx_strerror(err));
        exit(1);
    }
}

static void create_wallets(struct es_store *s, struct wallets *ws, int64_t batch, int64_t now)
{
    for (int64_t w = 0; w < ws->n;) {
        size_t n = 0;
        for (; n < (size_t)batch && w < ws->n; n++, w++) {
            struct wallet_event e = {.kind = WALLET_CREATED, .owner_id = "bench"};
            stage(n, w, ws, &e, now);
            maybe_snapshot(n, w, ws, &e);
        }
        commit(s, n);
    }
}

/* Appends `total` events of credits (and debits when `mixed`) over the
 * wallets, `batch` per transaction; returns microseconds spent. */
static int64_t append_moves(struct es_store *s, struct wallets *ws, int64_t total, int64_t batch,
                            bool mixed, int64_t now)
{
    uint64_t rnd = 88172645463325252ULL;
    int64_t start = wx_monotonic_us();
    for (int64_t done = 0; done < total;) {
        size_t n = 0;
        for (; n < (size_t)batch && done < total; n++, done++) {
            rnd ^= rnd << 13;
            rnd ^= rnd >> 7;
            rnd ^= rnd << 17;
            int64_t w = (int64_t)(rnd % (uint64_t)ws->n);
            int64_t amount = 1 + (int64_t)(rnd >> 40) % 500;
            bool debit = mixed && (rnd & 3) == 0 && ws->balances[w] >= amount;
            int64_t after = ws->balances[w] + (debit ? -amount : amount);
            struct wallet_event e = {.kind = debit ? WALLET_DEBITED : WALLET_CREDITED,
                                     .amount_minor = amount,
                                     .balance_before_minor = ws->balances[w],
                                     .balance_after_minor = after};
            stage(n, w, ws, &e, now);
            maybe_snapshot(n, w, ws, &e);
            ws->balances[w] = after;
        }
        commit(s, n);
    }
    return wx_monotonic_us() - start;
}

static bool arg_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!http_parse_i64(s, min, max, out)) {
        fprintf(stderr, "store_bench: '%s' must be an integer from %" PRId64 " to %" PRId64 "\n",
                s, min, max);
        return false;
    }
    return true;
}

/* One wallet, `total` credits, a snapshot every `every` events (none when
 * every == 1), then the median time of five loads in fresh store handles. */
static int coldload(const char *dir, int64_t total, int64_t every)
{
    struct es_store *s = open_dir(dir);
    struct wallets ws = {.n = 1};
    ws.versions = calloc(1, sizeof(int64_t));
    ws.balances = calloc(1, sizeof(int64_t));
    int64_t now = wx_clock_now_ms(&wx_clock_system);
    struct wallet_state st;
    wallet_state_init(&st);
    for (int64_t done = 0; done <= total;) {
        size_t n = 0;
        for (; n < BATCH_MAX && done <= total; n++, done++) {
            struct wallet_event e = {.kind = done == 0 ? WALLET_CREATED : WALLET_CREDITED,
                                     .owner_id = "bench", .amount_minor = 1,
                                     .balance_before_minor = ws.balances[0],
                                     .balance_after_minor = ws.balances[0] + (done ? 1 : 0)};
            stage(n, 0, &ws, &e, now);
            e.wallet_id = "c0";
            wallet_evolve(&st, &e);
            ws.balances[0] = e.balance_after_minor;
            if (every > 1 && ws.versions[0] % every == 0) {
                wx_buf_reset(&snap_data[n]);
                wallet_aggregate.encode(&st, &snap_data[n]);
                snaps[n] = (struct es_snapshot){streams[n], ws.versions[0], now,
                                                snap_data[n].data, snap_data[n].len};
                items[n].snapshots = &snaps[n];
                items[n].snapshots_len = 1;
            }
        }
        commit(s, n);
    }
    es_store_close(s);
    int64_t times[5];
    for (int r = 0; r < 5; r++) {
        s = open_dir(dir);
        struct wallet_state loaded;
        int64_t version = 0;
        int64_t t0 = wx_monotonic_us();
        int err = es_fold(s, &wallet_aggregate, "wallet:c0", NULL, &loaded, &version);
        times[r] = wx_monotonic_us() - t0;
        es_store_close(s);
        if (err || version != total + 1 || loaded.balance_minor != total) {
            fprintf(stderr, "store_bench: bad load (%s, version %" PRId64 ")\n", wx_strerror(err),
                    version);
            return 1;
        }
    }
    for (int i = 1; i < 5; i++)
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            int64_t t = times[j];
            times[j] = times[j - 1];
            times[j - 1] = t;
        }
    printf("cold load: %" PRId64 " events, %s: median %" PRId64 ".%03" PRId64 " ms\n",
           total + 1, every > 1 ? "snapshots" : "no snapshots", times[2] / 1000, times[2] % 1000);
    free(ws.versions);
    free(ws.balances);
    for (size_t i = 0; i < BATCH_MAX; i++)
        wx_buf_free(&snap_data[i]);
    return 0;
}

int main(int argc, char **argv)
{
    int64_t a, b;
    if (argc != 5 || !arg_i64(argv[3], 1, INT64_MAX / 2, &a) ||
        !arg_i64(argv[4], 1, INT64_MAX / 2, &b)) {
        fprintf(stderr, "usage: store_bench ceiling DIR EVENTS BATCH\n"
                        "       store_bench genlog DIR WALLETS EVENTS\n"
                        "       store_bench coldload DIR EVENTS EVERY\n");
        return 2;
    }
    if (strcmp(argv[1], "coldload") == 0) {
        int rc = coldload(argv[2], a, b);
        for (size_t i = 0; i < BATCH_MAX; i++)
            wx_buf_free(&datas[i]);
        return rc;
    }
    struct es_store *s = open_dir(argv[2]);
    int64_t now = wx_clock_now_ms(&wx_clock_system);
    struct wallets ws = {0};
    if (strcmp(argv[1], "ceiling") == 0) {
        if (b > BATCH_MAX) {
            fprintf(stderr, "store_bench: BATCH is at most %d\n", BATCH_MAX);
            return 2;
        }
        ws.n = 1000;
        ws.versions = calloc((size_t)ws.n, sizeof(int64_t));
        ws.balances = calloc((size_t)ws.n, sizeof(int64_t));
        create_wallets(s, &ws, b, now); /* setup, not measured */
        int64_t us = append_moves(s, &ws, a, b, false, now);
        printf("store ceiling: %" PRId64 " events, %" PRId64 " per transaction: %" PRId64
               " events/s\n",
               a, b, us > 0 ? a * 1000000 / us : 0);
    } else if (strcmp(argv[1], "genlog") == 0) {
        ws.n = a;
        ws.versions = calloc((size_t)ws.n, sizeof(int64_t));
        ws.balances = calloc((size_t)ws.n, sizeof(int64_t));
        ws.states = calloc((size_t)ws.n, sizeof(struct wallet_state));
        create_wallets(s, &ws, BATCH_MAX, now);
        append_moves(s, &ws, b, BATCH_MAX, true, now);
        printf("genlog: %" PRId64 " wallets, %" PRId64 " events\n", a, a + b);
    } else {
        fprintf(stderr, "store_bench: unknown mode '%s'\n", argv[1]);
        return 2;
    }
    free(ws.versions);
    free(ws.balances);
    free(ws.states);
    for (size_t i = 0; i < BATCH_MAX; i++) {
        wx_buf_free(&datas[i]);
        wx_buf_free(&snap_data[i]);
    }
    es_store_close(s);
    return 0;
}
