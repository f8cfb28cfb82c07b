/*
 * Operations routes, the same whatever domains the server composes:
 * health, readiness, metrics, the OpenAPI document, projection status and
 * rebuilds, drift over every domain, and the dashboard (ui.c) with its live
 * feed (stats.c). Health, readiness, the API document and the dashboard's
 * static page and assets are open (load balancers and browsers need them
 * without a token; the page asks for one); metrics are for observers, the
 * rest for operators (the access column of the table; src/auth gives it
 * meaning).
 */
#include "ops/ops.h"

#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "auth/service.h"
#include "base/err.h"
#include "bus/bus.h"
#include "es/writer.h"
#include "obs/metrics.h"
#include "proj/projector.h"
#include "store/store.h"

void ops_route_healthz(struct http_request *req)
{
    http_reply(req, 200, "{\"status\":\"ok\"}", 15);
}

void ops_route_readyz(struct http_request *req)
{
    const struct wx_app *app = req->app;
    struct es_position head;
    if (es_store_head(app->store, &head) != 0) {
        /* Say why: on PostgreSQL, the connection error and that the node
         * is reconnecting by itself. */
        char why[WX_ERROR_TEXT_BYTES], detail[WX_ERROR_TEXT_BYTES + 64];
        es_store_last_error(app->store, why, sizeof(why));
        snprintf(detail, sizeof(detail), "the event store does not answer%s%s",
                 why[0] ? ": " : "", why);
        http_reply_problem(req, ES_store_unavailable, detail);
        return;
    }
    if (!es_projector_ready(app->projector)) {
        http_reply_problem(req, ES_projection_lagging,
                           "a projection has failed; see /admin/projections");
        return;
    }
    const char *why;
    if (!bus_ready(app->bus, &why)) {
        http_reply_problem(req, ES_store_unavailable, why);
        return;
    }
    http_reply(req, 200, "{\"status\":\"ready\"}", 18);
}

void ops_route_admin_projections(struct http_request *req)
{
    const struct wx_app *app = req->app;
    struct es_position head;
    struct es_projection_status *list;
    size_t n;
    int err = es_store_head(app->store, &head);
    if (!err)
        err = es_projector_status(app->projector, &req->arena, &list, &n);
    if (err) {
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
        return;
    }
    char head_token[ES_POSITION_TOKEN_BYTES];
    es_position_format(&head, head_token);
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_adds(&b, "{\"data\":[");
    for (size_t i = 0; i < n; i++) {
        char pos[ES_POSITION_TOKEN_BYTES];
        es_position_format(&list[i].position, pos);
        uint64_t lag = es_position_lag(&head, &list[i].position);
        if (i > 0)
            wx_buf_addc(&b, ',');
        wx_buf_adds(&b, "{\"name\":");
        wx_buf_json_str(&b, list[i].name);
        wx_buf_adds(&b, ",\"position\":");
        wx_buf_json_str(&b, pos);
        wx_buf_adds(&b, ",\"headPosition\":");
        wx_buf_json_str(&b, head_token);
        wx_buf_printf(&b, ",\"lag\":%llu,\"projectedHere\":%s,\"status\":",
                      (unsigned long long)lag, list[i].here ? "true" : "false");
        wx_buf_json_str(&b, list[i].status);
        wx_buf_adds(&b, ",\"lastError\":");
        if (list[i].last_error != NULL)
            wx_buf_json_str(&b, list[i].last_error);
        else
            wx_buf_adds(&b, "null");
        /* Cumulative counts by upper bound, like a Prometheus histogram. */
        wx_buf_adds(&b, ",\"lagHistogramMs\":{");
        uint64_t cumulative = 0;
        for (size_t k = 0; k <= ES_LAG_BUCKETS; k++) {
            cumulative += list[i].lag_counts[k];
            if (k < ES_LAG_BUCKETS)
                wx_buf_printf(&b, "\"%lld\":%llu,", (long long)es_lag_bucket_ms[k],
                              (unsigned long long)cumulative);
            else
                wx_buf_printf(&b, "\"+Inf\":%llu}", (unsigned long long)cumulative);
        }
        if (list[i].rebuilding) {
            es_position_format(&list[i].rebuild_position, pos);
            wx_buf_adds(&b, ",\"rebuildPosition\":");
            wx_buf_json_str(&b, pos);
        }
        wx_buf_addc(&b, '}');
    }
    wx_buf_adds(&b, "]}");
    http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

/* On the admin worker: es_projector_rebuild waits for the projector
 * thread, which may be in the middle of a long batch. */
static int rebuild_projection(const struct wx_app *app, const char *name, struct wx_buf *out)
{
    int err = es_projector_rebuild(app->projector, name);
    if (err)
        return err;
    wx_buf_adds(out, "{\"name\":");
    wx_buf_json_str(out, name);
    wx_buf_adds(out, ",\"status\":\"rebuilding\"}");
    return 0;
}

void ops_route_admin_rebuild_projection(struct http_request *req)
{
    wx_off_thread_json(req, rebuild_projection, req->params[0], 202, ES_not_found,
                       "no projection with this name", ES_rebuild_in_progress);
}

/* On the admin worker: drift folds the whole log. */
static int drift(const struct wx_app *app, const char *arg, struct wx_buf *out)
{
    (void)arg;
    size_t drifted;
    return wx_app_drift(app->projector, out, &drifted);
}

void ops_route_admin_drift(struct http_request *req)
{
    wx_off_thread_json(req, drift, NULL, 200, ES_not_found, NULL, NULL);
}

/* Lag bucket bounds of the projector (ms) as Prometheus "le" seconds. */
static const char *const lag_le[ES_LAG_BUCKETS] = {"0.001", "0.002", "0.005", "0.01", "0.02",
                                                   "0.05",  "0.1",   "0.2",   "0.5",  "1",
                                                   "5",     "30"};

static void projection_metrics(const struct wx_app *app, struct wx_arena *arena,
                               struct wx_buf *b)
{
    struct es_position head;
    struct es_projection_status *list;
    size_t n;
    if (es_store_head(app->store, &head) != 0 ||
        es_projector_status(app->projector, arena, &list, &n) != 0)
        return;
    wx_metric_header(b, "wallex_log_head_position", "gauge", "Position of the last event.");
    wx_buf_printf(b, "wallex_log_head_position %llu\n", (unsigned long long)head.lo);
    wx_metric_header(b, "wallex_projection_position", "gauge", "Checkpoint of each read model.");
    for (size_t i = 0; i < n; i++)
        wx_buf_printf(b, "wallex_projection_position{name=\"%s\"} %llu\n", list[i].name,
                      (unsigned long long)list[i].position.lo);
    wx_metric_header(b, "wallex_projection_lag_events", "gauge",
                     "Events in the log not yet in each read model.");
    for (size_t i = 0; i < n; i++)
        wx_buf_printf(b, "wallex_projection_lag_events{name=\"%s\"} %llu\n", list[i].name,
                      (unsigned long long)es_position_lag(&head, &list[i].position));
    wx_metric_header(b, "wallex_projector_events_read_total", "counter",
                     "Events the projector read from the log, once per read however many"
                     " read models it fed.");
    wx_buf_printf(b, "wallex_projector_events_read_total %llu\n",
                  (unsigned long long)es_projector_events_read(app->projector));
    wx_metric_header(b, "wallex_projection_failed", "gauge", "1 while a read model is failing.");
    for (size_t i = 0; i < n; i++)
        wx_buf_printf(b, "wallex_projection_failed{name=\"%s\"} %d\n", list[i].name,
                      list[i].last_error != NULL);
    wx_metric_header(b, "wallex_projection_delay_seconds", "histogram",
                     "Time from an event's occurredAt to its projection.");
    for (size_t i = 0; i < n; i++) {
        uint64_t cumulative = 0;
        for (size_t k = 0; k <= ES_LAG_BUCKETS; k++) {
            cumulative += list[i].lag_counts[k];
            wx_buf_printf(b, "wallex_projection_delay_seconds_bucket{name=\"%s\",le=\"%s\"} %llu\n",
                          list[i].name, k < ES_LAG_BUCKETS ? lag_le[k] : "+Inf",
                          (unsigned long long)cumulative);
        }
        wx_buf_printf(b, "wallex_projection_delay_seconds_count{name=\"%s\"} %llu\n",
                      list[i].name, (unsigned long long)cumulative);
    }
}

void ops_route_metrics(struct http_request *req)
{
    const struct wx_app *app = req->app;
    struct wx_buf b;
    wx_buf_init(&b);
    http_server_metrics(req->server, &b);
    es_writer_metrics(app->writer, &b);
    projection_metrics(app, &req->arena, &b);
    struct es_position head;
    if (es_store_head(app->store, &head) == 0)
        bus_metrics(app->bus, &head, &b);
    if (app->auth != NULL)
        auth_service_metrics(app->auth, &b);
    wx_metric_header(&b, "wallex_process_resident_memory_bytes", "gauge",
                     "Resident memory of the server process.");
    wx_buf_printf(&b, "wallex_process_resident_memory_bytes %llu\n",
                  (unsigned long long)wx_process_rss_bytes());
    if (!wx_buf_ok(&b)) {
        http_reply_problem(req, ES_internal_error, "out of memory");
    } else {
        http_add_header(req, "Content-Type", "text/plain; version=0.0.4");
        http_reply(req, 200, b.data, b.len);
    }
    wx_buf_free(&b);
}

/* docs/openapi.yaml, embedded at build time (cmake/embed.cmake). */
extern const unsigned char wallex_openapi_yaml[];
extern const size_t wallex_openapi_yaml_len;

void ops_route_openapi(struct http_request *req)
{
    http_add_header(req, "Content-Type", "application/yaml");
    http_reply(req, 200, (const char *)wallex_openapi_yaml, wallex_openapi_yaml_len);
}

const struct http_route ops_routes[] = {
    {"GET", "/healthz", ops_route_healthz, 0, NULL, HTTP_ACCESS_OPEN},
    {"GET", "/readyz", ops_route_readyz, 0, NULL, HTTP_ACCESS_OPEN},
    {"GET", "/metrics", ops_route_metrics, 0, NULL, HTTP_ACCESS_OBSERVE},
    {"GET", "/openapi.yaml", ops_route_openapi, 0, NULL, HTTP_ACCESS_OPEN},
    {"GET", "/admin/projections", ops_route_admin_projections, 0, NULL, HTTP_ACCESS_ADMIN},
    {"POST", "/admin/projections/{name}/rebuild", ops_route_admin_rebuild_projection, 0, NULL,
     HTTP_ACCESS_ADMIN},
    {"GET", "/admin/drift", ops_route_admin_drift, 0, NULL, HTTP_ACCESS_ADMIN},
    /* API.md: a reader has no admin routes, so the overview is the admin's. */
    {"GET", "/admin/stats", ops_route_admin_stats, 0, NULL, HTTP_ACCESS_ADMIN},
    {"GET", "/ui", ops_route_ui, 0, NULL, HTTP_ACCESS_OPEN},
    {"GET", "/ui/{asset}", ops_route_ui_asset, 0, NULL, HTTP_ACCESS_OPEN},
};
const size_t ops_routes_len = sizeof(ops_routes) / sizeof(ops_routes[0]);
