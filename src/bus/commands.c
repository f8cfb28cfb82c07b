/*
 * Subscription commands on the writer thread: load the subscription, run
 * the decider (bus/subscription.c), stage its event and answer with the
 * resource as the write side committed it.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "bus/subscription.h"

static int stage(struct es_decide_ctx *ctx, const char *stream, struct subscription_state *s,
                 const struct subscription_event *e)
{
    subscription_evolve(s, e);
    struct wx_buf b;
    wx_buf_init(&b);
    subscription_event_encode(&b, e);
    /* Every field is bounded, so this holds; decoding relies on it. */
    assert(!wx_buf_ok(&b) || b.len <= SUBSCRIPTION_EVENT_DATA_BYTES_MAX);
    int err = wx_buf_ok(&b) ? es_decide_emit(ctx, stream, subscription_event_type(e->kind),
                                             b.data, b.len, s)
                            : WX_ERR_NOMEM;
    wx_buf_free(&b);
    return err;
}

static int run(struct es_decide_ctx *ctx, const struct subscription_command *c)
{
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    subscription_stream_id(c->subscription_id, stream);
    const void *loaded;
    int64_t version = 0;
    /* A created subscription's id is a fresh UUIDv7: nothing to read. */
    int err = c->kind == SUBSCRIPTION_CMD_CREATE
                  ? es_decide_load_new(ctx, &subscription_aggregate, stream, &loaded)
                  : es_decide_load(ctx, &subscription_aggregate, stream, &loaded, &version);
    if (err)
        return err;
    struct subscription_state s;
    memcpy(&s, loaded, sizeof(s));
    struct subscription_decision d;
    subscription_decide(&s, c, es_decide_now_ms(ctx), &d);
    if (d.outcome != ES_OK) {
        es_decide_reject(ctx, d.outcome, d.detail);
        return 0;
    }
    if (d.events_len > 0) {
        err = stage(ctx, stream, &s, &d.event);
        if (err)
            return err;
        version++;
    }
    if (c->kind == SUBSCRIPTION_CMD_DELETE) {
        es_decide_reply(ctx, 204, "", 0, NULL);
        return 0;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    bool created = c->kind == SUBSCRIPTION_CMD_CREATE;
    subscription_json(&b, c->subscription_id, &s, version, created ? c->secret : NULL);
    char location[32 + WX_ID_BYTES_MAX];
    snprintf(location, sizeof(location), "/subscriptions/%s", c->subscription_id);
    if (wx_buf_ok(&b))
        es_decide_reply(ctx, created ? 201 : 200, b.data, b.len, created ? location : NULL);
    else
        es_decide_fail(ctx, WX_ERR_NOMEM);
    wx_buf_free(&b);
    return 0;
}

void subscription_run_command(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    int err = run(ctx, cmd->payload);
    if (err)
        es_decide_fail(ctx, err);
}
