/*
 * How to send a batch of events to PostgreSQL in one commit, measured
 * (docs/architecture.md, "One statement per batch"):
 *
 *   pg_commit_bench URL BATCHES EVENTS_PER_BATCH
 *
 * into a scratch table shaped like wallex's events (two unique indexes),
 * each way in turn, alternating, and prints the median events/s of each:
 *   unnest    one INSERT ... SELECT FROM unnest(text arrays), autocommit
 *   pipeline  BEGIN, one prepared single-row INSERT per event, COMMIT, all
 *             in one libpq pipeline (one round trip)
 *   copy      BEGIN, COPY FROM STDIN (text), COMMIT: three round trips
 * Only a measurement; the store uses the first (src/store/postgres.c).
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"

#define ROUNDS 5

static const char data[] = "{\"walletId\":\"w-1234\",\"currency\":\"USD\",\"amountMinor\":100,"
                           "\"balanceAfterMinor\":1234500,\"description\":\"\"}";
static const char meta[] = "{\"correlationId\":\"01a23098-5994-791e-a936-24be08de527a\","
                           "\"occurredAt\":\"2026-12-01T07:53:40.500Z\"}";

static void must(PGconn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN) {
        fprintf(stderr, "pg_commit_bench: %s", PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
}

static void quoted(struct wx_buf *b, const char *s)
{
    wx_buf_addc(b, b->len > 0 ? ',' : '{');
    wx_buf_addc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            wx_buf_addc(b, '\\');
        wx_buf_addc(b, *s);
    }
    wx_buf_addc(b, '"');
}

static void by_unnest(PGconn *c, int64_t *seq, int n)
{
    struct wx_buf a[3];
    for (int k = 0; k < 3; k++)
        wx_buf_init(&a[k]);
    for (int i = 0; i < n; i++, (*seq)++) {
        char stream[32];
        snprintf(stream, sizeof(stream), "s%" PRId64, *seq);
        quoted(&a[0], stream);
        quoted(&a[1], data);
        quoted(&a[2], meta);
    }
    for (int k = 0; k < 3; k++)
        wx_buf_addc(&a[k], '}');
    const char *v[] = {a[0].data, a[1].data, a[2].data};
    must(c, PQexecParams(c, "INSERT INTO bench_events(stream_id, version, data, metadata)"
                            " SELECT s, 1, d, m FROM unnest($1::text[], $2::text[], $3::text[])"
                            " WITH ORDINALITY AS u(s, d, m, ord) ORDER BY ord",
                         3, NULL, v, NULL, NULL, 0));
    for (int k = 0; k < 3; k++)
        wx_buf_free(&a[k]);
}

static void by_pipeline(PGconn *c, int64_t *seq, int n)
{
    PQenterPipelineMode(c);
    PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    for (int i = 0; i < n; i++, (*seq)++) {
        char stream[32];
        snprintf(stream, sizeof(stream), "s%" PRId64, *seq);
        const char *v[] = {stream, data, meta};
        PQsendQueryPrepared(c, "one", 3, v, NULL, NULL, 0);
    }
    PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    PQpipelineSync(c);
    for (int i = 0; i < n + 2; i++) {
        must(c, PQgetResult(c));
        PQclear(PQgetResult(c)); /* the NULL that ends each */
    }
    PQclear(PQgetResult(c)); /* the sync */
    PQexitPipelineMode(c);
}

static void by_copy(PGconn *c, int64_t *seq, int n)
{
    must(c, PQexec(c, "BEGIN"));
    must(c, PQexec(c, "COPY bench_events(stream_id, version, data, metadata) FROM STDIN"));
    struct wx_buf b;
    wx_buf_init(&b);
    for (int i = 0; i < n; i++, (*seq)++)
        wx_buf_printf(&b, "s%" PRId64 "\t1\t%s\t%s\n", *seq, data, meta);
    PQputCopyData(c, b.data, (int)b.len);
    PQputCopyEnd(c, NULL);
    must(c, PQgetResult(c));
    wx_buf_free(&b);
    must(c, PQexec(c, "COMMIT"));
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: pg_commit_bench URL BATCHES EVENTS_PER_BATCH\n");
        return 2;
    }
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg_commit_bench: %s", PQerrorMessage(c));
        return 1;
    }
    int batches = (int)strtol(argv[2], NULL, 10), n = (int)strtol(argv[3], NULL, 10);
    if (batches < 1 || n < 1) {
        fprintf(stderr, "pg_commit_bench: BATCHES and EVENTS_PER_BATCH are positive\n");
        return 2;
    }
    must(c, PQexec(c, "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_events;"
                      " CREATE TABLE bench_events(position bigint GENERATED ALWAYS AS IDENTITY,"
                      " transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),"
                      " stream_id text NOT NULL, version bigint NOT NULL, data text NOT NULL,"
                      " metadata text NOT NULL, PRIMARY KEY (transaction_id, position),"
                      " UNIQUE (stream_id, version))"));
    must(c, PQprepare(c, "one", "INSERT INTO bench_events(stream_id, version, data, metadata)"
                                " VALUES ($1, 1, $2, $3)", 3, NULL));
    static void (*const ways[])(PGconn *, int64_t *, int) = {by_unnest, by_pipeline, by_copy};
    static const char *const names[] = {"unnest", "pipeline", "copy"};
    int64_t rates[3][ROUNDS], seq = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int w = 0; w < 3; w++) {
            int64_t t0 = wx_monotonic_us();
            for (int b = 0; b < batches; b++)
                ways[w](c, &seq, n);
            int64_t us = wx_monotonic_us() - t0;
            rates[w][r] = us > 0 ? (int64_t)batches * n * 1000000 / us : 0;
        }
    }
    for (int w = 0; w < 3; w++) {
        qsort(rates[w], ROUNDS, sizeof(int64_t), cmp);
        printf("%-8s %d events/commit: median %" PRId64 " events/s (of %d runs)\n", names[w], n,
               rates[w][ROUNDS / 2], ROUNDS);
    }
    must(c, PQexec(c, "DROP TABLE bench_events"));
    PQfinish(c);
    return 0;
}
