/*
 * The event bus routes; see routes.h. Subscription commands go to the
 * writer; queries read the read model and delivery.db (WAL readers: they
 * never wait for the delivery thread); replays are orders queued to the
 * delivery thread, answered 202 at once.
 */
#include "bus/routes.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/uuid.h"
#include "bus/delivery.h"
#include "bus/relay.h"
#include "bus/sign.h"
#include "bus/subscription.h"
#include "bus/webhook.h"
#include "http/json.h"
#include "store/store.h"

static const char *const models[] = {"subscriptions", NULL};

/* The bus's parts a route needs; false when it answered 503. */
static bool bus_parts(struct http_request *req, struct bus_webhook **w,
                      struct bus_delivery_store **d)
{
    const struct wx_app *app = req->app;
    *w = bus_webhook_of(app->bus);
    *d = bus_delivery_of(app->bus);
    if (*w != NULL && *d != NULL)
        return true;
    http_reply_problem(req, ES_store_unavailable, "webhook delivery is not running");
    return false;
}

/* ---- commands ---- */

void bus_route_create(struct http_request *req)
{
    struct bus_webhook *w;
    struct bus_delivery_store *d;
    if (!bus_parts(req, &w, &d))
        return;
    struct subscription_command *c = wx_arena_alloc(&req->arena, sizeof(*c));
    char *id = wx_arena_alloc(&req->arena, WX_UUID_STR_BYTES);
    char *secret = wx_arena_alloc(&req->arena, BUS_SECRET_BYTES_MAX + 1);
    if (c == NULL || id == NULL || secret == NULL) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    const char *detail;
    if (!subscription_parse_create(req->body, req->body_len, bus_webhook_deny_private(w),
                                   &req->arena, c, &detail)) {
        wx_bad_request(req, detail);
        return;
    }
    if (wx_uuid7(wx_clock_now_ms(&wx_clock_system), id) != 0 || bus_secret_new(secret) != 0) {
        http_reply_problem(req, ES_internal_error, "no randomness for an id or a secret");
        return;
    }
    c->subscription_id = id;
    c->secret = secret;
    wx_submit(req, subscription_run_command, c);
}

static void command_route(struct http_request *req, enum subscription_command_kind kind)
{
    if (!wx_id_param(req, 0, "subscription"))
        return;
    struct subscription_command *c = wx_arena_alloc(&req->arena, sizeof(*c));
    if (c == NULL) {
        http_reply_problem(req, ES_internal_error, "out of memory");
        return;
    }
    *c = (struct subscription_command){.kind = kind, .subscription_id = req->params[0]};
    wx_submit(req, subscription_run_command, c);
}

void bus_route_pause(struct http_request *req)
{
    command_route(req, SUBSCRIPTION_CMD_PAUSE);
}

void bus_route_resume(struct http_request *req)
{
    command_route(req, SUBSCRIPTION_CMD_RESUME);
}

void bus_route_delete(struct http_request *req)
{
    command_route(req, SUBSCRIPTION_CMD_DELETE);
}

/* ---- queries ---- */

void bus_route_list(struct http_request *req)
{
    wx_route_id_page(req, subscription_query_list);
}

static void key_time_or_null(struct wx_buf *b, const char *key, int64_t ms, bool *first)
{
    wx_buf_json_key(b, key, first);
    if (ms == 0) {
        wx_buf_adds(b, "null");
        return;
    }
    char at[WX_RFC3339_BYTES];
    wx_time_format(ms, at);
    wx_buf_json_str(b, at);
}

/* ,"delivery":{...} of a subscription, from delivery.db. */
static int delivery_json(struct bus_delivery_store *d, const char *id, struct wx_buf *b)
{
    struct bus_delivery_state st;
    int err = bus_delivery_state_get(d, id, &st);
    if (err == WX_ERR_NOT_FOUND) {
        wx_buf_adds(b, ",\"delivery\":null");
        return 0;
    }
    if (err)
        return err;
    char pos[ES_POSITION_TOKEN_BYTES];
    es_position_format(&st.cursor, pos);
    bool first = true;
    wx_buf_adds(b, ",\"delivery\":{");
    wx_buf_json_key(b, "position", &first);
    wx_buf_json_str(b, pos);
    wx_buf_json_key(b, "delivered", &first);
    wx_buf_add_i64(b, st.delivered);
    wx_buf_json_key(b, "attempts", &first);
    wx_buf_add_i64(b, st.attempts);
    key_time_or_null(b, "nextAttemptAt", st.attempts > 0 ? st.next_attempt_ms : 0, &first);
    key_time_or_null(b, "failingSince", st.failing_since_ms, &first);
    wx_buf_json_key(b, "lastError", &first);
    if (st.last_error[0])
        wx_buf_json_str(b, st.last_error);
    else
        wx_buf_adds(b, "null");
    wx_buf_addc(b, '}');
    return 0;
}

void bus_route_get(struct http_request *req)
{
    const struct wx_app *app = req->app;
    struct bus_webhook *w;
    struct bus_delivery_store *d;
    if (!wx_id_param(req, 0, "subscription") || !bus_parts(req, &w, &d))
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = subscription_query_get(app->projector, req->params[0], &b);
    if (!err && wx_buf_ok(&b)) {
        b.len--; /* the resource's closing brace: the delivery state goes in */
        err = delivery_json(d, req->params[0], &b);
        wx_buf_addc(&b, '}');
    }
    if (err)
        wx_query_failed(req, err, BUS_subscription_not_found, "no subscription with this id");
    else
        http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

/* ---- replays ---- */

/* {"fromPosition": "<token>"} into *from; false when it answered 400. */
static bool parse_from(struct http_request *req, struct es_position *from)
{
    static const char *const keys[] = {"fromPosition", NULL};
    struct json_object *obj;
    const char *detail, *bad, *token = NULL;
    if (!http_json_parse_object(req->body, req->body_len, &obj, &detail)) {
        wx_bad_request(req, detail);
        return false;
    }
    bool ok = http_json_only_keys(obj, keys, &bad) &&
              http_json_string(obj, "fromPosition", HTTP_FIELD_REQUIRED, ES_POSITION_TOKEN_BYTES,
                               &req->arena, &token) &&
              es_position_parse(token, from);
    json_object_put(obj);
    if (!ok)
        wx_bad_request(req,
                       "the body must be {\"fromPosition\": a position token from X-Position}");
    return ok;
}

static void queued(struct http_request *req, int err, struct wx_buf *b)
{
    if (err == WX_ERR_FULL)
        http_reply_problem(req, ES_overloaded, "too many replays are waiting; try again");
    else if (err)
        http_reply_problem(req, ES_internal_error, wx_strerror(err));
    else
        http_reply_buf(req, 202, b);
}

void bus_route_replay_from(struct http_request *req)
{
    const struct wx_app *app = req->app;
    struct bus_webhook *w;
    struct bus_delivery_store *d;
    struct es_position from;
    if (!wx_id_param(req, 0, "subscription") || !bus_parts(req, &w, &d) || !parse_from(req, &from))
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    int err = subscription_query_get(app->projector, req->params[0], &b);
    if (err) {
        wx_query_failed(req, err, BUS_subscription_not_found, "no subscription with this id");
        wx_buf_free(&b);
        return;
    }
    wx_buf_reset(&b);
    char pos[ES_POSITION_TOKEN_BYTES];
    es_position_format(&from, pos);
    wx_buf_adds(&b, "{\"subscriptionId\":");
    wx_buf_json_str(&b, req->params[0]);
    wx_buf_adds(&b, ",\"fromPosition\":");
    wx_buf_json_str(&b, pos);
    wx_buf_adds(&b, ",\"status\":\"replaying\"}");
    queued(req, bus_webhook_replay_from(w, req->params[0], &from), &b);
    wx_buf_free(&b);
}

static bool dead_letter_id(const char *text, int64_t *id)
{
    return text != NULL && http_parse_i64(text, 1, INT64_MAX, id);
}

void bus_route_replay_dead_letter(struct http_request *req)
{
    struct bus_webhook *w;
    struct bus_delivery_store *d;
    int64_t id;
    if (!bus_parts(req, &w, &d))
        return;
    if (!dead_letter_id(req->params[0], &id)) {
        http_reply_problem(req, BUS_dead_letter_not_found, "no dead letter with this id");
        return;
    }
    struct bus_dead_letter dl;
    int err = bus_delivery_dead_get(d, id, &req->arena, &dl);
    if (err) {
        wx_query_failed(req, err, BUS_dead_letter_not_found, "no dead letter with this id");
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_printf(&b, "{\"deadLetterId\":\"%" PRId64 "\",\"subscriptionId\":", id);
    wx_buf_json_str(&b, dl.subscription_id);
    wx_buf_adds(&b, ",\"status\":\"replaying\"}");
    queued(req, bus_webhook_replay_dead_letter(w, id), &b);
    wx_buf_free(&b);
}

/* ---- admin lists ---- */

struct dead_page {
    struct wx_buf *b;
    size_t n;
    int64_t last_id;
};

static int dead_item(void *arg, const struct bus_dead_letter *dl)
{
    struct dead_page *p = arg;
    struct wx_buf *b = p->b;
    char pos[ES_POSITION_TOKEN_BYTES];
    es_position_format(&dl->position, pos);
    bool first = true;
    wx_buf_adds(b, p->n++ > 0 ? ",{" : "{");
    wx_buf_json_key(b, "deadLetterId", &first);
    wx_buf_printf(b, "\"%" PRId64 "\"", dl->id);
    wx_buf_json_key(b, "subscriptionId", &first);
    wx_buf_json_str(b, dl->subscription_id);
    wx_buf_json_key(b, "eventId", &first);
    wx_buf_json_str(b, dl->event_id);
    wx_buf_json_key(b, "position", &first);
    wx_buf_json_str(b, pos);
    wx_buf_json_key(b, "attempts", &first);
    wx_buf_add_i64(b, dl->attempts);
    wx_buf_json_key(b, "lastError", &first);
    wx_buf_json_str(b, dl->last_error);
    key_time_or_null(b, "firstAttemptAt", dl->first_attempt_ms, &first);
    key_time_or_null(b, "lastAttemptAt", dl->last_attempt_ms, &first);
    wx_buf_json_key(b, "replayRequested", &first);
    wx_buf_adds(b, dl->replay_requested ? "true" : "false");
    wx_buf_addc(b, '}');
    p->last_id = dl->id;
    return 0;
}

void bus_route_dead_letters(struct http_request *req)
{
    struct bus_webhook *w;
    struct bus_delivery_store *d;
    size_t limit;
    if (!bus_parts(req, &w, &d) || !wx_page_limit(req, &limit))
        return;
    const char *sub = http_query(req, "subscriptionId");
    const char *after = http_query(req, "after");
    int64_t after_id = 0;
    if (sub != NULL && !wx_id_ok(sub)) {
        wx_bad_request(req, "subscriptionId must be a subscription id");
        return;
    }
    if (after != NULL && (after[0] != 'd' || !http_parse_i64(after + 1, 0, INT64_MAX, &after_id))) {
        wx_bad_request(req, "after must be a cursor from a previous page");
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_adds(&b, "{\"data\":[");
    struct dead_page p = {.b = &b};
    int err = bus_delivery_dead_list(d, sub, after_id, limit, dead_item, &p);
    if (err) {
        wx_buf_free(&b);
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
        return;
    }
    wx_buf_adds(&b, "],\"nextCursor\":");
    if (p.n == limit)
        wx_buf_printf(&b, "\"d%" PRId64 "\"}", p.last_id);
    else
        wx_buf_adds(&b, "null}");
    http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

void bus_route_relays(struct http_request *req)
{
    const struct wx_app *app = req->app;
    struct bus_relay *r = bus_relay_of(app->bus);
    struct es_position head;
    int err = es_store_head(app->store, &head);
    if (err) {
        http_reply_problem(req, ES_store_unavailable, wx_strerror(err));
        return;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_adds(&b, "{\"data\":[");
    struct bus_relay_status s;
    if (r != NULL && bus_relay_status(r, &req->arena, &s) == 0) {
        char pos[ES_POSITION_TOKEN_BYTES], head_token[ES_POSITION_TOKEN_BYTES];
        es_position_format(&s.position, pos);
        es_position_format(&head, head_token);
        wx_buf_adds(&b, "{\"name\":");
        wx_buf_json_str(&b, s.name);
        wx_buf_adds(&b, ",\"kind\":\"redis\",\"position\":");
        wx_buf_json_str(&b, pos);
        wx_buf_adds(&b, ",\"headPosition\":");
        wx_buf_json_str(&b, head_token);
        wx_buf_printf(&b, ",\"lag\":%" PRIu64 ",\"status\":", es_position_lag(&head, &s.position));
        wx_buf_json_str(&b, s.status);
        wx_buf_adds(&b, ",\"lastError\":");
        if (s.last_error != NULL)
            wx_buf_json_str(&b, s.last_error);
        else
            wx_buf_adds(&b, "null");
        wx_buf_printf(&b,
                      ",\"connected\":%s,\"published\":%" PRIu64 ",\"skipped\":%" PRIu64
                      ",\"reconnects\":%" PRIu64 ",\"republishes\":%" PRIu64 "}",
                      s.connected ? "true" : "false", s.published, s.skipped, s.reconnects,
                      s.republishes);
    }
    wx_buf_adds(&b, "]}");
    http_reply_buf(req, 200, &b);
    wx_buf_free(&b);
}

const struct http_route bus_routes[] = {
    {"POST", "/subscriptions", bus_route_create, WX_BODY_BYTES_MAX, NULL, HTTP_ACCESS_ADMIN},
    {"GET", "/subscriptions", bus_route_list, 0, models, HTTP_ACCESS_ADMIN},
    {"GET", "/subscriptions/{id}", bus_route_get, 0, models, HTTP_ACCESS_ADMIN},
    {"DELETE", "/subscriptions/{id}", bus_route_delete, 0, NULL, HTTP_ACCESS_ADMIN},
    {"POST", "/subscriptions/{id}/pause", bus_route_pause, 0, NULL, HTTP_ACCESS_ADMIN},
    {"POST", "/subscriptions/{id}/resume", bus_route_resume, 0, NULL, HTTP_ACCESS_ADMIN},
    {"POST", "/subscriptions/{id}/replay", bus_route_replay_from, WX_BODY_BYTES_MAX, models,
     HTTP_ACCESS_ADMIN},
    {"GET", "/admin/relays", bus_route_relays, 0, NULL, HTTP_ACCESS_ADMIN},
    {"GET", "/admin/dead-letters", bus_route_dead_letters, 0, NULL, HTTP_ACCESS_ADMIN},
    {"POST", "/admin/dead-letters/{id}/replay", bus_route_replay_dead_letter, 0, NULL,
     HTTP_ACCESS_ADMIN},
    {NULL, NULL, NULL, 0, NULL, HTTP_ACCESS_ADMIN},
};
