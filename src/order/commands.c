/*
 * Order commands on the writer thread: load the order (and, to pay or
 * refund, the wallet), run the deciders, stage the events of both streams
 * in one command — so the payment and the order's new status commit
 * together or not at all — and answer with the order as committed.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "base/err.h"
#include "es/writer.h"
#include "order/routes.h"
#include "order/order.h"
#include "wallet/wallet.h"

/* The wallet side of paying (a debit) or refunding (a credit): decided by
 * the wallet rules, staged with the order's event. False when it answered
 * (a rejection or a failure). */
static bool move_money(struct es_decide_ctx *ctx, const struct order_state *s,
                       const char *order_id, const struct order_decision *d)
{
    struct wallet_state w;
    int64_t version;
    int err = wallet_load_state(ctx, d->event.wallet_id, &w, &version);
    if (err) {
        es_decide_fail(ctx, err);
        return false;
    }
    bool pay = d->event.kind == ORDER_PAID_EV;
    /* A caller pays from its own wallets; another's is as if absent. A
     * refund goes back where the payment came from, whoever cancels. */
    if (pay && w.exists && !auth_owns(es_decide_principal(ctx), w.owner_id)) {
        es_decide_reject(ctx, WALLET_wallet_not_found, "no wallet with this walletId");
        return false;
    }
    char reference[WX_STREAM_ID_BYTES_MAX + 1];
    order_stream_id(order_id, reference);
    char description[64 + WX_ID_BYTES_MAX];
    snprintf(description, sizeof(description), "%s order %s", pay ? "Payment for" : "Refund of",
             order_id);
    struct wallet_movement m = {
        .kind = pay ? WALLET_DEBITED : WALLET_CREDITED,
        .wallet_id = d->event.wallet_id,
        .currency = s->currency,
        .amount_minor = d->event.amount_minor,
        .description = description,
        .reference = reference,
    };
    struct wallet_decision wd;
    if (m.amount_minor > 0) {
        wallet_decide_movement(&w, &m, es_decide_now_ms(ctx), &wd);
    } else {
        /* A free order moves nothing, but is paid from a wallet that
         * exists and holds its currency, like any other. */
        memset(&wd, 0, sizeof(wd));
        wd.outcome = ES_OK;
        if (!w.exists) {
            wd.outcome = WALLET_wallet_not_found;
            wd.detail = "no wallet with this walletId";
        } else if (strcmp(w.currency, s->currency) != 0) {
            wd.outcome = WALLET_currency_mismatch;
            wd.detail = "the wallet holds another currency";
        }
    }
    if (wd.outcome != ES_OK) {
        es_decide_reject(ctx, wd.outcome, wd.detail);
        return false;
    }
    for (size_t i = 0; i < wd.events_len; i++) {
        err = wallet_stage_movement(ctx, d->event.wallet_id, &w, &wd.events[i]);
        if (err) {
            es_decide_fail(ctx, err);
            return false;
        }
    }
    return true;
}

static void reject(struct es_decide_ctx *ctx, const struct order_decision *d)
{
    if (!d->with_status) {
        es_decide_reject(ctx, d->outcome, d->detail);
        return;
    }
    char extra[64];
    snprintf(extra, sizeof(extra), "\"currentStatus\":\"%s\"",
             order_status_name(d->current_status));
    es_decide_reject_ext(ctx, d->outcome, d->detail, extra);
}

/* Loads the order into a copy of its own (the decision points into it). */
static int load(struct es_decide_ctx *ctx, const struct order_command *c, const char *stream,
                struct order_state **s_out, int64_t *version_out)
{
    struct order_state *s = es_decide_alloc(ctx, sizeof(*s));
    if (s == NULL)
        return WX_ERR_NOMEM;
    const void *state;
    int err;
    if (c->order_id_generated) {
        /* A fresh UUIDv7: no need to read the store to know it is new. */
        *version_out = 0;
        err = es_decide_load_new(ctx, &order_aggregate, stream, &state);
    } else {
        err = es_decide_load(ctx, &order_aggregate, stream, &state, version_out);
    }
    if (!err)
        memcpy(s, state, order_state_bytes(state));
    *s_out = s;
    return err;
}

static int decide(struct es_decide_ctx *ctx, const struct order_command *c, const char *stream,
                  const struct order_state *s, int64_t version, struct order_decision *d)
{
    if (c->kind != ORDER_CMD_ROLLBACK) {
        order_decide(s, version, c, es_decide_now_ms(ctx), d);
        return 0;
    }
    const void *then = NULL;
    bool reachable = s->exists && c->to_version < version &&
                     (s->status == ORDER_PENDING || s->status == ORDER_CONFIRMED);
    if (reachable) {
        int err = es_decide_fold_at(ctx, &order_aggregate, stream, c->to_version, &then);
        if (err)
            return err;
    }
    order_decide_rollback(s, version, then, c, es_decide_now_ms(ctx), d);
    return 0;
}

static int run(struct es_decide_ctx *ctx, const struct order_command *c)
{
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    order_stream_id(c->order_id, stream);
    struct order_state *s;
    int64_t version;
    int err = load(ctx, c, stream, &s, &version);
    /* Another customer's order is, to this caller, no order at all; but a
     * create with its id is 409 as API.md lists (and as a wallet's is):
     * a client-chosen id is taken whoever holds it. */
    if (!err && s->exists && c->kind != ORDER_CMD_CREATE &&
        !auth_owns(es_decide_principal(ctx), s->customer_id)) {
        es_decide_reject(ctx, ORDER_order_not_found, "no order with this orderId");
        return 0;
    }
    struct order_decision *d = es_decide_alloc(ctx, sizeof(*d));
    if (!err && d == NULL)
        err = WX_ERR_NOMEM;
    if (!err)
        err = decide(ctx, c, stream, s, version, d);
    if (err)
        return err;
    if (d->outcome != ES_OK) {
        reject(ctx, d);
        return 0;
    }
    /* The wallet first: its refusal (funds, currency) refuses the whole
     * command before the order's event is staged. */
    if ((d->event.kind == ORDER_PAID_EV || d->moves_money) && !move_money(ctx, s, c->order_id, d))
        return 0;
    d->event.actor = es_decide_actor(ctx); /* the state records it, as the metadata will */
    order_evolve(s, &d->event);
    struct wx_buf b;
    wx_buf_init(&b);
    order_event_encode(&b, &d->event);
    err = wx_buf_ok(&b) ? es_decide_emit(ctx, stream, order_event_type(d->event.kind), b.data,
                                         b.len, s)
                        : WX_ERR_NOMEM;
    wx_buf_reset(&b);
    if (!err) {
        order_json(&b, c->order_id, s, version + 1);
        char location[16 + WX_ID_BYTES_MAX];
        snprintf(location, sizeof(location), "/orders/%s", c->order_id);
        bool created = c->kind == ORDER_CMD_CREATE;
        if (wx_buf_ok(&b))
            es_decide_reply(ctx, created ? 201 : 200, b.data, b.len, created ? location : NULL);
        else
            err = WX_ERR_NOMEM;
    }
    wx_buf_free(&b);
    return err;
}

void order_run_command(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    int err = run(ctx, cmd->payload);
    if (err)
        es_decide_fail(ctx, err);
}
