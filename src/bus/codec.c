/*
 * Subscription events as stored JSON, the Subscription resource, and what
 * the bus publishes of any event (never a signing secret). Subscription
 * events are few, so they are read with json-c (eventTypes is an array,
 * which base/jflat does not read).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "bus/subscription.h"

static const struct es_event_type type_created = {"SubscriptionCreated", 1, NULL};
static const struct es_event_type type_paused = {"SubscriptionPaused", 1, NULL};
static const struct es_event_type type_resumed = {"SubscriptionResumed", 1, NULL};
static const struct es_event_type type_disabled = {"SubscriptionDisabled", 1, NULL};
static const struct es_event_type type_deleted = {"SubscriptionDeleted", 1, NULL};

static const struct es_event_type *const types_by_kind[] = {
    [SUBSCRIPTION_EV_CREATED] = &type_created,   [SUBSCRIPTION_EV_PAUSED] = &type_paused,
    [SUBSCRIPTION_EV_RESUMED] = &type_resumed,   [SUBSCRIPTION_EV_DISABLED] = &type_disabled,
    [SUBSCRIPTION_EV_DELETED] = &type_deleted,
};

const struct es_event_type *const subscription_event_types[] = {
    &type_created, &type_paused, &type_resumed, &type_disabled, &type_deleted, NULL,
};

const struct es_event_type *subscription_event_type(enum subscription_event_kind kind)
{
    return types_by_kind[kind];
}

void subscription_event_encode(struct wx_buf *b, const struct subscription_event *e)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_key(b, "subscriptionId", &first);
    wx_buf_json_str(b, e->subscription_id);
    if (e->kind == SUBSCRIPTION_EV_CREATED) {
        wx_buf_json_key(b, "url", &first);
        wx_buf_json_str(b, e->url);
        wx_buf_json_key(b, "eventTypes", &first);
        wx_buf_adds(b, e->event_types); /* validated JSON array text */
        wx_buf_json_key(b, "description", &first);
        if (e->description != NULL)
            wx_buf_json_str(b, e->description);
        else
            wx_buf_adds(b, "null");
        wx_buf_json_key(b, "secret", &first);
        wx_buf_json_str(b, e->secret);
    } else if (e->kind == SUBSCRIPTION_EV_DISABLED) {
        wx_buf_json_key(b, "reason", &first);
        wx_buf_json_str(b, e->reason);
    }
    wx_buf_addc(b, '}');
}

/* ---- decoding ---- */

struct text_out {
    char *at;
    size_t left;
};

/* Copies a string member into the text buffer; NULL when absent, null or
 * not a string (then *bad unless optional), or longer than max_bytes. */
static const char *take(struct json_object *o, const char *key, size_t max_bytes, bool optional,
                        struct text_out *t, bool *bad)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || v == NULL) {
        *bad |= !optional;
        return NULL;
    }
    if (!json_object_is_type(v, json_type_string)) {
        *bad = true;
        return NULL;
    }
    size_t len = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (len > max_bytes || len + 1 > t->left || memchr(s, '\0', len) != NULL) {
        *bad = true;
        return NULL;
    }
    char *out = t->at;
    memcpy(out, s, len);
    out[len] = '\0';
    t->at += len + 1;
    t->left -= len + 1;
    return out;
}

static const char *take_types(struct json_object *o, struct text_out *t, bool *bad)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, "eventTypes", &v) || !json_object_is_type(v, json_type_array)) {
        *bad = true;
        return NULL;
    }
    const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t len = strlen(s);
    if (len > BUS_EVENT_TYPES_JSON_BYTES_MAX || len + 1 > t->left) {
        *bad = true;
        return NULL;
    }
    char *out = t->at;
    memcpy(out, s, len + 1);
    t->at += len + 1;
    t->left -= len + 1;
    return out;
}

static int kind_of(const char *type, enum subscription_event_kind *out)
{
    for (size_t i = 0; i < sizeof(types_by_kind) / sizeof(types_by_kind[0]); i++) {
        if (strcmp(type, types_by_kind[i]->name) == 0) {
            *out = (enum subscription_event_kind)i;
            return 0;
        }
    }
    return WX_ERR_CORRUPT;
}

int subscription_event_decode(const struct es_event *ev, char *text, size_t text_bytes,
                              struct subscription_event *e)
{
    memset(e, 0, sizeof(*e));
    if (kind_of(ev->type, &e->kind) != 0 || ev->data_len >= text_bytes ||
        ev->data_len > SUBSCRIPTION_EVENT_DATA_BYTES_MAX)
        return WX_ERR_CORRUPT;
    struct json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return WX_ERR_NOMEM;
    struct json_object *o = json_tokener_parse_ex(tok, ev->data, (int)ev->data_len);
    bool bad = o == NULL || !json_object_is_type(o, json_type_object) ||
               json_tokener_get_parse_end(tok) != ev->data_len;
    json_tokener_free(tok);
    struct text_out t = {text, text_bytes};
    e->occurred_at_ms = ev->occurred_at_ms;
    if (!bad)
        e->subscription_id = take(o, "subscriptionId", WX_ID_BYTES_MAX, false, &t, &bad);
    if (!bad && e->kind == SUBSCRIPTION_EV_CREATED) {
        e->url = take(o, "url", BUS_URL_BYTES_MAX, false, &t, &bad);
        e->event_types = take_types(o, &t, &bad);
        e->description = take(o, "description", WX_DESCRIPTION_BYTES_MAX, true, &t, &bad);
        e->secret = take(o, "secret", BUS_SECRET_BYTES_MAX, false, &t, &bad);
    } else if (!bad && e->kind == SUBSCRIPTION_EV_DISABLED) {
        e->reason = take(o, "reason", SUBSCRIPTION_REASON_BYTES_MAX, false, &t, &bad);
    }
    json_object_put(o);
    return bad ? WX_ERR_CORRUPT : 0;
}

static int subscription_evolve_stored(void *state, const struct es_event *ev)
{
    struct subscription_state *s = state;
    char text[SUBSCRIPTION_EVENT_DATA_BYTES_MAX + 1];
    struct subscription_event e;
    int err = subscription_event_decode(ev, text, sizeof(text), &e);
    if (err)
        return err;
    /* The same facts the decider guarantees, checked on the way back in. */
    bool created = e.kind == SUBSCRIPTION_EV_CREATED;
    if (created == s->exists || s->status == SUBSCRIPTION_DELETED)
        return WX_ERR_CORRUPT;
    subscription_evolve(s, &e);
    return 0;
}

const struct es_aggregate_type subscription_aggregate = {
    .name = "subscription",
    .category = SUBSCRIPTION_CATEGORY,
    .state_bytes_max = sizeof(struct subscription_state),
    .init = subscription_state_init,
    .evolve_stored = subscription_evolve_stored,
};

/* ---- the resource ---- */


void subscription_json(struct wx_buf *b, const char *id, const struct subscription_state *s,
                       int64_t version, const char *secret)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_key(b, "subscriptionId", &first);
    wx_buf_json_str(b, id);
    wx_buf_json_key(b, "url", &first);
    wx_buf_json_str(b, s->url);
    wx_buf_json_key(b, "eventTypes", &first);
    wx_buf_adds(b, s->event_types[0] ? s->event_types : "[]");
    wx_buf_json_key(b, "description", &first);
    if (s->has_description)
        wx_buf_json_str(b, s->description);
    else
        wx_buf_adds(b, "null");
    wx_buf_json_key(b, "status", &first);
    wx_buf_json_str(b, subscription_status_name(s->status));
    if (s->status == SUBSCRIPTION_DISABLED) {
        wx_buf_json_key(b, "disabledReason", &first);
        wx_buf_json_str(b, s->reason);
    }
    if (secret != NULL) {
        wx_buf_json_key(b, "secret", &first);
        wx_buf_json_str(b, secret);
    }
    wx_buf_json_key(b, "version", &first);
    wx_buf_add_i64(b, version);
    wx_time_json_member(b, "createdAt", s->created_at_ms, &first);
    wx_time_json_member(b, "updatedAt", s->updated_at_ms, &first);
    wx_buf_addc(b, '}');
}

void subscription_stream_id(const char *id, char out[WX_STREAM_ID_BYTES_MAX + 1])
{
    snprintf(out, WX_STREAM_ID_BYTES_MAX + 1, SUBSCRIPTION_CATEGORY ":%s", id);
}

/* ---- what goes out of the process ---- */

/* Data of a SubscriptionCreated without its secret, into out. */
static int strip_secret(const struct es_event *ev, struct wx_buf *out)
{
    struct json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return WX_ERR_NOMEM;
    struct json_object *o = json_tokener_parse_ex(tok, ev->data, (int)ev->data_len);
    json_tokener_free(tok);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return WX_ERR_CORRUPT;
    }
    json_object_object_del(o, "secret");
    wx_buf_adds(out, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return wx_buf_ok(out) ? 0 : WX_ERR_NOMEM;
}

int bus_event_public_data(const struct es_event *stored, struct wx_buf *scratch,
                          struct es_event *event_out)
{
    int err = es_upcast(stored, event_out, scratch);
    if (err || strcmp(event_out->type, type_created.name) != 0 ||
        !es_stream_in_category(event_out->stream_id, SUBSCRIPTION_CATEGORY))
        return err;
    struct wx_buf stripped;
    wx_buf_init(&stripped);
    err = strip_secret(event_out, &stripped);
    if (!err) {
        /* scratch may hold the upcast data: replace it only now. */
        wx_buf_reset(scratch);
        wx_buf_add(scratch, stripped.data, stripped.len);
        err = wx_buf_ok(scratch) ? 0 : WX_ERR_NOMEM;
        event_out->data = scratch->data;
        event_out->data_len = scratch->len;
    }
    wx_buf_free(&stripped);
    return err;
}

int bus_event_public_json(const struct es_event *stored, struct wx_buf *scratch,
                          struct wx_buf *out)
{
    struct es_event ev;
    int err = bus_event_public_data(stored, scratch, &ev);
    if (err)
        return err;
    es_event_json(out, &ev);
    return wx_buf_ok(out) ? 0 : WX_ERR_NOMEM;
}
