/*
 * GET /admin/stats: the dashboard's live feed (web/, served under /ui). One
 * JSON snapshot of cumulative counters and histograms, read from the same
 * atomics /metrics renders (nothing is scraped or parsed back), plus the
 * gauges of the moment: connections, queue depth, projection and delivery
 * lag, resident memory. The server keeps no window and no per-viewer
 * state: a viewer takes two snapshots and divides their difference by the
 * time between them (rates, and percentiles of the interval from the
 * histograms' per-bucket counts), so any number of viewers cost one
 * snapshot per poll each and nothing in between.
 */
#include <inttypes.h>
#include <string.h>

#include "app/app.h"
#include "base/clock.h"
#include "base/err.h"
#include "bus/bus.h"
#include "bus/relay.h"
#include "bus/webhook.h"
#include "es/domain.h"
#include "es/writer.h"
#include "obs/metrics.h"
#include "ops/ops.h"
#include "proj/projector.h"
#include "store/store.h"

/* What the overview counts as what (http_server_stats' kinds). */
enum stats_kind {
    KIND_COMMAND,    /* changes through the writer: every method but GET */
    KIND_QUERY,      /* GET (and HEAD) of the domains' resources */
    KIND_OPERATIONS, /* health, metrics, the API document, the dashboard, /admin */
    KIND_UNMATCHED,  /* no route */
    KINDS,
};
_Static_assert(KINDS <= HTTP_STATS_KINDS_MAX, "http_server_stats has a slot per kind");

static const char *const kind_names[KINDS] = {"commands", "queries", "operations", "unmatched"};

static size_t kind_of(const struct http_route *route)
{
    if (route == NULL)
        return KIND_UNMATCHED;
    if (strncmp(route->pattern, "/admin/", 7) == 0)
        return KIND_OPERATIONS;
    for (size_t i = 0; i < ops_routes_len; i++)
        if (strcmp(route->pattern, ops_routes[i].pattern) == 0)
            return KIND_OPERATIONS;
    return strcmp(route->method, "GET") == 0 ? KIND_QUERY : KIND_COMMAND;
}

static void http_part(struct http_server *server, struct wx_buf *b)
{
    struct http_server_stats st;
    http_server_stats(server, kind_of, &st);
    wx_buf_printf(b, "\"http\":{\"openConnections\":%u,\"inFlight\":%u", st.connections,
                  st.in_flight);
    for (size_t k = 0; k < KINDS; k++) {
        wx_buf_printf(
            b, ",\"%s\":{\"requests\":%" PRIu64 ",\"serverErrors\":%" PRIu64 ",\"latencyUs\":",
            kind_names[k], st.requests[k], st.server_errors[k]);
        wx_hist_snapshot_json(b, &st.latency_us[k]);
        wx_buf_addc(b, '}');
    }
    wx_buf_addc(b, '}');
}

static void writer_part(const struct es_writer *writer, struct wx_buf *b)
{
    const struct es_writer_stats *st = es_writer_stats(writer);
    wx_buf_printf(b,
                  ",\"writer\":{\"batches\":%" PRIu64 ",\"commands\":%" PRIu64
                  ",\"events\":%" PRIu64 ",\"commitFailures\":%" PRIu64 ",\"conflicts\":%" PRIu64
                  ",\"queueDepth\":%" PRIu64 ",\"batchCommands\":",
                  (uint64_t)atomic_load(&st->batches), (uint64_t)atomic_load(&st->commands),
                  (uint64_t)atomic_load(&st->events), (uint64_t)atomic_load(&st->commit_failures),
                  (uint64_t)atomic_load(&st->conflicts), (uint64_t)atomic_load(&st->queue_depth));
    struct wx_hist_snapshot h;
    wx_hist_snapshot_init(&h, st->batch_commands.spec);
    wx_hist_snapshot_add(&h, &st->batch_commands);
    wx_hist_snapshot_json(b, &h);
    wx_buf_adds(b, ",\"commitUs\":");
    wx_hist_snapshot_init(&h, st->commit_us.spec);
    wx_hist_snapshot_add(&h, &st->commit_us);
    wx_hist_snapshot_json(b, &h);
    wx_buf_addc(b, '}');
}

/* The first event after a checkpoint: its occurredAt is how old the
 * oldest event a consumer has not applied yet is. */
static int first_occurred(void *ctx, const struct es_event *event)
{
    *(int64_t *)ctx = event->occurred_at_ms;
    return 0;
}

/* Milliseconds since the oldest event after `pos` happened; 0 when there
 * is none (caught up) or the log cannot say. One indexed read of one
 * event, shared by consumers at the same checkpoint (*memo). */
static int64_t lag_ms(struct es_store *store, const struct es_position *head,
                      const struct es_position *pos, int64_t now_ms, struct es_position *memo_pos,
                      int64_t *memo_ms)
{
    if (es_position_cmp(pos, head) >= 0)
        return 0;
    if (memo_pos->hi == pos->hi && memo_pos->lo == pos->lo && *memo_ms >= 0)
        return *memo_ms;
    int64_t occurred = -1;
    if (es_store_read_log(store, pos, 1, first_occurred, &occurred) != 0 || occurred < 0)
        return 0;
    *memo_pos = *pos;
    *memo_ms = now_ms > occurred ? now_ms - occurred : 0;
    return *memo_ms;
}

static int projections_part(const struct wx_app *app, struct wx_arena *arena,
                            const struct es_position *head, struct wx_buf *b)
{
    struct es_projection_status *list;
    size_t n;
    int err = es_projector_status(app->projector, arena, &list, &n);
    if (err)
        return err;
    int64_t now_ms = wx_clock_now_ms(&wx_clock_system);
    struct es_position memo_pos = *head;
    int64_t memo_ms = -1;
    wx_buf_adds(b, ",\"projections\":[");
    for (size_t i = 0; i < n; i++) {
        char pos[ES_POSITION_TOKEN_BYTES];
        es_position_format(&list[i].position, pos);
        wx_buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        wx_buf_json_str(b, list[i].name);
        wx_buf_adds(b, ",\"status\":");
        wx_buf_json_str(b, list[i].status);
        wx_buf_adds(b, ",\"position\":");
        wx_buf_json_str(b, pos);
        wx_buf_printf(b, ",\"lag\":%" PRIu64 ",\"lagMs\":%" PRId64 ",\"projectedHere\":%s",
                      es_position_lag(head, &list[i].position),
                      lag_ms(app->store, head, &list[i].position, now_ms, &memo_pos, &memo_ms),
                      list[i].here ? "true" : "false");
        wx_buf_adds(b, ",\"lastError\":");
        if (list[i].last_error != NULL)
            wx_buf_json_str(b, list[i].last_error);
        else
            wx_buf_adds(b, "null");
        if (list[i].rebuilding) {
            es_position_format(&list[i].rebuild_position, pos);
            wx_buf_adds(b, ",\"rebuildPosition\":");
            wx_buf_json_str(b, pos);
            wx_buf_printf(b, ",\"rebuildLag\":%" PRIu64,
                          es_position_lag(head, &list[i].rebuild_position));
        }
        wx_buf_addc(b, '}');
    }
    wx_buf_addc(b, ']');
    return 0;
}

static void relay_part(struct bus *bus, struct wx_arena *arena, const struct es_position *head,
                       struct wx_buf *b)
{
    struct bus_relay *relay = bus ? bus_relay_of(bus) : NULL;
    struct bus_relay_status s;
    if (relay == NULL || bus_relay_status(relay, arena, &s) != 0) {
        wx_buf_adds(b, ",\"relay\":null");
        return;
    }
    char pos[ES_POSITION_TOKEN_BYTES];
    es_position_format(&s.position, pos);
    wx_buf_adds(b, ",\"relay\":{\"name\":");
    wx_buf_json_str(b, s.name);
    wx_buf_adds(b, ",\"status\":");
    wx_buf_json_str(b, s.status);
    wx_buf_printf(b, ",\"connected\":%s,\"position\":", s.connected ? "true" : "false");
    wx_buf_json_str(b, pos);
    wx_buf_printf(b, ",\"lag\":%" PRIu64 ",\"published\":%" PRIu64 ",\"lastError\":",
                  es_position_lag(head, &s.position), s.published);
    if (s.last_error != NULL)
        wx_buf_json_str(b, s.last_error);
    else
        wx_buf_adds(b, "null");
    wx_buf_addc(b, '}');
}

static void webhooks_part(struct bus *bus, const struct es_position *head, struct wx_buf *b)
{
    struct bus_webhook *w = bus ? bus_webhook_of(bus) : NULL;
    if (w == NULL) {
        wx_buf_adds(b, ",\"webhooks\":null");
        return;
    }
    struct bus_webhook_stats s;
    bus_webhook_stats(w, &s);
    wx_buf_printf(b,
                  ",\"webhooks\":{\"subscriptions\":%" PRIu64 ",\"inFlight\":%" PRIu64
                  ",\"retrying\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"failed\":%" PRIu64
                  ",\"deadLettered\":%" PRIu64 ",\"replayed\":%" PRIu64 ",\"deadLetters\":%" PRIu64
                  ",\"deliversHere\":%s,\"lag\":",
                  s.subscriptions, s.in_flight, s.retrying, s.delivered, s.failed, s.dead_lettered,
                  s.replayed, s.dead_letters, s.delivers_here ? "true" : "false");
    if (s.slowest_known)
        wx_buf_printf(b, "%" PRIu64 "}", es_position_lag(head, &s.slowest));
    else
        wx_buf_adds(b, "null}");
}

/* Parts of the dashboard that exist only with some domains: it shows the
 * folder tree once a domain serves one. */
static void features_part(struct wx_buf *b)
{
    bool folders = false;
    for (size_t i = 0; i < es_domains_len(); i++) {
        const struct http_route *r = es_domain_at(i)->routes;
        for (; r != NULL && r->method != NULL; r++)
            folders |= strcmp(r->pattern, "/folders/{id}/tree") == 0;
    }
    wx_buf_printf(b, ",\"features\":{\"folders\":%s}", folders ? "true" : "false");
}

void ops_route_admin_stats(struct http_request *req)
{
    const struct wx_app *app = req->app;
    struct es_position head;
    int err = es_store_head(app->store, &head);
    if (err) {
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
        return;
    }
    char now[WX_RFC3339_BYTES], head_token[ES_POSITION_TOKEN_BYTES];
    wx_time_format(wx_clock_now_ms(&wx_clock_system), now);
    es_position_format(&head, head_token);
    struct wx_buf b;
    wx_buf_init(&b);
    /* Rates divide by the monotonic clock's interval: the wall clock may
     * be stepped between two polls. */
    wx_buf_printf(&b, "{\"time\":\"%s\",\"monotonicMs\":%" PRId64 ",\"headPosition\":", now,
                  wx_monotonic_ms());
    wx_buf_json_str(&b, head_token);
    wx_buf_addc(&b, ',');
    http_part(req->server, &b);
    writer_part(app->writer, &b);
    err = projections_part(app, &req->arena, &head, &b);
    relay_part(app->bus, &req->arena, &head, &b);
    webhooks_part(app->bus, &head, &b);
    wx_buf_printf(&b, ",\"process\":{\"residentBytes\":%" PRIu64 "}", wx_process_rss_bytes());
    features_part(&b);
    wx_buf_addc(&b, '}');
    if (err)
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}
