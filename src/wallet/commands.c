/*
 * Wallet commands on the writer thread: load the wallets and transfers a
 * command touches, run the deciders (wallet/decide.c), stage the events
 * and answer with the resource as the write side committed it.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "base/err.h"
#include "es/writer.h"
#include "wallet/routes.h"
#include "wallet/wallet.h"

/* A loaded stream and the command's working copy of its state. */
struct loaded {
    char stream_id[WX_STREAM_ID_BYTES_MAX + 1];
    int64_t version;
    union {
        struct wallet_state wallet;
        struct transfer_state transfer;
    } s;
};

static int load(struct es_decide_ctx *ctx, const struct es_aggregate_type *type,
                const char *id, struct loaded *out)
{
    if (type == &wallet_aggregate)
        wallet_stream_id(id, out->stream_id);
    else
        transfer_stream_id(id, out->stream_id);
    const void *state;
    int err = es_decide_load(ctx, type, out->stream_id, &state, &out->version);
    if (!err)
        memcpy(&out->s, state, type->state_bytes_max);
    return err;
}

/* Evolves, encodes and stages one decided event on its stream. The state
 * records the command's actor, as the event's metadata will. */
static int stage(struct es_decide_ctx *ctx, struct loaded *l, const struct wallet_event *decided)
{
    struct wallet_event ev = *decided;
    const struct wallet_event *e = &ev;
    ev.actor = es_decide_actor(ctx);
    if (e->kind == TRANSFER_COMPLETED)
        transfer_evolve(&l->s.transfer, e);
    else
        wallet_evolve(&l->s.wallet, e);
    struct wx_buf b;
    wx_buf_init(&b);
    wallet_event_encode(&b, e);
    /* Ids and descriptions are bounded, so this holds; decoding relies on it. */
    assert(!wx_buf_ok(&b) || b.len < WALLET_EVENT_DATA_BYTES_MAX);
    int err = wx_buf_ok(&b) ? es_decide_emit(ctx, l->stream_id, wallet_event_type(e->kind),
                                             b.data, b.len, &l->s)
                            : WX_ERR_NOMEM;
    wx_buf_free(&b);
    if (!err)
        l->version++;
    return err;
}

int wallet_load_state(struct es_decide_ctx *ctx, const char *wallet_id, struct wallet_state *out,
                      int64_t *version_out)
{
    struct loaded l;
    int err = load(ctx, &wallet_aggregate, wallet_id, &l);
    if (!err) {
        *out = l.s.wallet;
        *version_out = l.version;
    }
    return err;
}

int wallet_stage_movement(struct es_decide_ctx *ctx, const char *wallet_id,
                          struct wallet_state *state, const struct wallet_event *e)
{
    assert(e->kind == WALLET_CREDITED || e->kind == WALLET_DEBITED);
    struct loaded l;
    wallet_stream_id(wallet_id, l.stream_id);
    l.s.wallet = *state;
    l.version = 0; /* only stage() counts it here; the writer keeps the real one */
    int err = stage(ctx, &l, e);
    if (!err)
        *state = l.s.wallet;
    return err;
}

static void reply_resource(struct es_decide_ctx *ctx, int status, struct wx_buf *b,
                           const char *location)
{
    if (!wx_buf_ok(b)) {
        es_decide_fail(ctx, WX_ERR_NOMEM);
        return;
    }
    es_decide_reply(ctx, status, b->data, b->len, location);
}

/* A wallet the caller may not act on answers as one that does not exist
 * (API.md: ids do not leak). True when it answered so. */
static bool hidden(struct es_decide_ctx *ctx, const struct wallet_state *w)
{
    if (!w->exists || auth_owns(es_decide_principal(ctx), w->owner_id))
        return false;
    es_decide_reject(ctx, WALLET_wallet_not_found, "no wallet with this walletId");
    return true;
}

static int run_wallet(struct es_decide_ctx *ctx, const struct wallet_command *c)
{
    struct loaded w;
    int err = load(ctx, &wallet_aggregate, c->wallet_id, &w);
    if (err)
        return err;
    if (c->kind != WALLET_CMD_CREATE && hidden(ctx, &w.s.wallet))
        return 0;
    struct wallet_decision d;
    if (c->kind == WALLET_CMD_CREATE)
        wallet_decide_create(&w.s.wallet, c, es_decide_now_ms(ctx), &d);
    else
        wallet_decide_amount(&w.s.wallet, w.version, c, es_decide_now_ms(ctx), &d);
    if (d.outcome != ES_OK) {
        es_decide_reject(ctx, d.outcome, d.detail);
        return 0;
    }
    for (size_t i = 0; i < d.events_len && !err; i++)
        err = stage(ctx, &w, &d.events[i]);
    if (err)
        return err;
    struct wx_buf b;
    wx_buf_init(&b);
    wallet_json(&b, c->wallet_id, &w.s.wallet, w.version);
    char location[16 + WX_ID_BYTES_MAX];
    snprintf(location, sizeof(location), "/wallets/%s", c->wallet_id);
    bool created = c->kind == WALLET_CMD_CREATE;
    reply_resource(ctx, created ? 201 : 200, &b, created ? location : NULL);
    wx_buf_free(&b);
    return 0;
}

static int run_transfer(struct es_decide_ctx *ctx, const struct wallet_command *c)
{
    struct loaded from, to, t;
    int err = load(ctx, &wallet_aggregate, c->from_wallet_id, &from);
    if (!err)
        err = load(ctx, &wallet_aggregate, c->to_wallet_id, &to);
    if (!err && c->transfer_id_generated) {
        /* A fresh UUIDv7: no need to read the store to know it is new. */
        const void *state;
        transfer_stream_id(c->transfer_id, t.stream_id);
        t.version = 0;
        err = es_decide_load_new(ctx, &transfer_aggregate, t.stream_id, &state);
        if (!err)
            memcpy(&t.s, state, transfer_aggregate.state_bytes_max);
    } else if (!err) {
        err = load(ctx, &transfer_aggregate, c->transfer_id, &t);
    }
    if (err)
        return err;
    if (hidden(ctx, &from.s.wallet))
        return 0;
    struct wallet_decision d;
    wallet_decide_transfer(&from.s.wallet, from.version, &to.s.wallet, to.version,
                           &t.s.transfer, c, es_decide_now_ms(ctx), &d);
    if (d.outcome != ES_OK) {
        es_decide_reject(ctx, d.outcome, d.detail);
        return 0;
    }
    err = stage(ctx, &from, &d.events[0]);
    if (!err)
        err = stage(ctx, &to, &d.events[1]);
    if (!err)
        err = stage(ctx, &t, &d.events[2]);
    if (err)
        return err;
    struct wx_buf b;
    wx_buf_init(&b);
    /* The receiving wallet may be anyone's: shown only to who may see it. */
    bool to_seen = auth_owns(es_decide_principal(ctx), to.s.wallet.owner_id);
    transfer_json(&b, c->transfer_id, &t.s.transfer, &from.s.wallet,
                  to_seen ? &to.s.wallet : NULL);
    char location[16 + WX_ID_BYTES_MAX];
    snprintf(location, sizeof(location), "/transfers/%s", c->transfer_id);
    reply_resource(ctx, 201, &b, location);
    wx_buf_free(&b);
    return 0;
}

void wallet_run_command(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    const struct wallet_command *c = cmd->payload;
    int err = c->kind == WALLET_CMD_TRANSFER ? run_transfer(ctx, c) : run_wallet(ctx, c);
    if (err)
        es_decide_fail(ctx, err);
}

