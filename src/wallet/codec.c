/*
 * Wallet events as stored JSON (int64 minor units, camelCase) and the
 * resources of API.md as response JSON (decimal amounts with exactly the
 * currency's minor digits). Decoding a stored event checks it against the
 * state before folding it: a damaged log is an error, never a crash.
 */
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/jflat.h"
#include "base/money.h"
#include "wallet/wallet.h"

/* Every wallet event type is at its first schema. */
static const struct es_event_type type_created = {"WalletCreated", 1, NULL};
static const struct es_event_type type_credited = {"WalletCredited", 1, NULL};
static const struct es_event_type type_debited = {"WalletDebited", 1, NULL};
static const struct es_event_type type_transfer = {"TransferCompleted", 1, NULL};

static const struct es_event_type *const types_by_kind[] = {
    [WALLET_CREATED] = &type_created,
    [WALLET_CREDITED] = &type_credited,
    [WALLET_DEBITED] = &type_debited,
    [TRANSFER_COMPLETED] = &type_transfer,
};

const struct es_event_type *const wallet_event_types[] = {
    &type_created, &type_credited, &type_debited, &type_transfer, NULL,
};

const struct es_event_type *wallet_event_type(enum wallet_event_kind kind)
{
    return types_by_kind[kind];
}



void wallet_event_encode(struct wx_buf *b, const struct wallet_event *e)
{
    bool first = true;
    wx_buf_addc(b, '{');
    switch (e->kind) {
    case WALLET_CREATED:
        wx_buf_json_member_str(b, "walletId", e->wallet_id, &first);
        wx_buf_json_member_str(b, "ownerId", e->owner_id, &first);
        wx_buf_json_member_str(b, "currency", e->currency, &first);
        break;
    case WALLET_CREDITED:
    case WALLET_DEBITED:
        wx_buf_json_member_str(b, "walletId", e->wallet_id, &first);
        wx_buf_json_member_str(b, "currency", e->currency, &first);
        wx_buf_json_member_i64(b, "amountMinor", e->amount_minor, &first);
        wx_buf_json_member_i64(b, "balanceBeforeMinor", e->balance_before_minor, &first);
        wx_buf_json_member_i64(b, "balanceAfterMinor", e->balance_after_minor, &first);
        wx_buf_json_member_str(b, "description", e->description, &first);
        wx_buf_json_member_str(b, "transferId", e->transfer_id, &first);
        /* Only when there is one: events without it stay byte for byte
         * what they were before the field existed. */
        if (e->reference != NULL)
            wx_buf_json_member_str(b, "reference", e->reference, &first);
        break;
    case TRANSFER_COMPLETED:
        wx_buf_json_member_str(b, "transferId", e->transfer_id, &first);
        wx_buf_json_member_str(b, "fromWalletId", e->from_wallet_id, &first);
        wx_buf_json_member_str(b, "toWalletId", e->to_wallet_id, &first);
        wx_buf_json_member_str(b, "currency", e->currency, &first);
        wx_buf_json_member_i64(b, "amountMinor", e->amount_minor, &first);
        wx_buf_json_member_str(b, "description", e->description, &first);
        wx_buf_json_member_i64(b, "fromVersion", e->from_version, &first);
        wx_buf_json_member_i64(b, "toVersion", e->to_version, &first);
        break;
    }
    wx_buf_addc(b, '}');
}

/* ---- decoding stored events ---- */

/* NULL both for absent and for JSON null; *bad is set for a wrong type. */
static const char *get_opt_str(const struct wx_jflat *o, const char *key, size_t max_bytes,
                               bool *bad)
{
    const struct wx_jflat_field *f = wx_jflat_get(o, key);
    if (f == NULL || f->type == WX_JFLAT_NULL)
        return NULL;
    const char *s = wx_jflat_str(o, key, max_bytes);
    if (s == NULL)
        *bad = true;
    return s;
}

static int kind_of(const char *type, enum wallet_event_kind *out)
{
    for (size_t i = 0; i < sizeof(types_by_kind) / sizeof(types_by_kind[0]); i++) {
        if (strcmp(type, types_by_kind[i]->name) == 0) {
            *out = (enum wallet_event_kind)i;
            return 0;
        }
    }
    return WX_ERR_CORRUPT;
}

int wallet_event_decode(const struct es_event *ev, char *text, size_t text_bytes,
                        struct wallet_event *e)
{
    memset(e, 0, sizeof(*e));
    if (kind_of(ev->type, &e->kind) != 0)
        return WX_ERR_CORRUPT;
    struct wx_jflat fields;
    const struct wx_jflat *o = &fields;
    if (ev->data_len >= text_bytes ||
        wx_jflat_parse(ev->data, ev->data_len, text, text_bytes, &fields) != 0)
        return WX_ERR_CORRUPT;
    e->occurred_at_ms = ev->occurred_at_ms;
    bool bad = false;
    e->currency = wx_jflat_str(o, "currency", WX_CURRENCY_BYTES);
    bad |= e->currency == NULL || wx_currency_exponent(e->currency) < 0;
    switch (e->kind) {
    case WALLET_CREATED:
        e->wallet_id = wx_jflat_str(o, "walletId", WX_ID_BYTES_MAX);
        e->owner_id = wx_jflat_str(o, "ownerId", WX_ID_BYTES_MAX);
        bad |= e->wallet_id == NULL || e->owner_id == NULL;
        break;
    case WALLET_CREDITED:
    case WALLET_DEBITED:
        e->wallet_id = wx_jflat_str(o, "walletId", WX_ID_BYTES_MAX);
        bad |= e->wallet_id == NULL;
        bad |= !wx_jflat_i64(o, "amountMinor", &e->amount_minor);
        bad |= !wx_jflat_i64(o, "balanceBeforeMinor", &e->balance_before_minor);
        bad |= !wx_jflat_i64(o, "balanceAfterMinor", &e->balance_after_minor);
        e->description = get_opt_str(o, "description", WX_DESCRIPTION_BYTES_MAX, &bad);
        e->transfer_id = get_opt_str(o, "transferId", WX_ID_BYTES_MAX, &bad);
        e->reference = get_opt_str(o, "reference", WALLET_REFERENCE_BYTES_MAX, &bad);
        break;
    case TRANSFER_COMPLETED:
        e->transfer_id = wx_jflat_str(o, "transferId", WX_ID_BYTES_MAX);
        e->from_wallet_id = wx_jflat_str(o, "fromWalletId", WX_ID_BYTES_MAX);
        e->to_wallet_id = wx_jflat_str(o, "toWalletId", WX_ID_BYTES_MAX);
        bad |= !e->transfer_id || !e->from_wallet_id || !e->to_wallet_id;
        bad |= !wx_jflat_i64(o, "amountMinor", &e->amount_minor);
        bad |= !wx_jflat_i64(o, "fromVersion", &e->from_version);
        bad |= !wx_jflat_i64(o, "toVersion", &e->to_version);
        e->description = get_opt_str(o, "description", WX_DESCRIPTION_BYTES_MAX, &bad);
        break;
    }
    return bad ? WX_ERR_CORRUPT : 0;
}

static int wallet_evolve_stored(void *state, const struct es_event *ev)
{
    struct wallet_state *s = state;
    char text[WALLET_EVENT_DATA_BYTES_MAX];
    struct wallet_event e;
    int err = wallet_event_decode(ev, text, sizeof(text), &e);
    if (err)
        return err;
    char actor[WX_ID_BYTES_MAX + 1];
    e.actor = es_event_actor(ev, actor) ? actor : NULL;
    /* The same facts the deciders guarantee, checked on the way back in. */
    int64_t after = 0;
    switch (e.kind) {
    case WALLET_CREATED:
        err = s->exists ? WX_ERR_CORRUPT : 0;
        break;
    case WALLET_CREDITED:
        if (!s->exists || e.amount_minor <= 0 || e.balance_before_minor != s->balance_minor ||
            __builtin_add_overflow(s->balance_minor, e.amount_minor, &after) ||
            after != e.balance_after_minor || strcmp(e.currency, s->currency) != 0)
            err = WX_ERR_CORRUPT;
        break;
    case WALLET_DEBITED:
        if (!s->exists || e.amount_minor <= 0 || e.balance_before_minor != s->balance_minor ||
            e.amount_minor > s->balance_minor ||
            s->balance_minor - e.amount_minor != e.balance_after_minor ||
            strcmp(e.currency, s->currency) != 0)
            err = WX_ERR_CORRUPT;
        break;
    case TRANSFER_COMPLETED:
        err = WX_ERR_CORRUPT;
        break;
    }
    if (!err)
        wallet_evolve(s, &e);
    return err;
}

static int transfer_evolve_stored(void *state, const struct es_event *ev)
{
    struct transfer_state *s = state;
    char text[WALLET_EVENT_DATA_BYTES_MAX];
    struct wallet_event e;
    int err = wallet_event_decode(ev, text, sizeof(text), &e);
    if (!err && (e.kind != TRANSFER_COMPLETED || s->exists))
        err = WX_ERR_CORRUPT;
    if (!err)
        transfer_evolve(s, &e);
    return err;
}

/* Snapshot of a wallet: the same facts the events carry, versioned so a
 * later shape can still read this one. */
static void wallet_encode(const void *state, struct wx_buf *b)
{
    const struct wallet_state *s = state;
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_member_i64(b, "schema", 1, &first);
    wx_buf_json_member_str(b, "ownerId", s->owner_id, &first);
    wx_buf_json_member_str(b, "currency", s->currency, &first);
    wx_buf_json_member_i64(b, "balanceMinor", s->balance_minor, &first);
    wx_buf_json_member_i64(b, "createdAtMs", s->created_at_ms, &first);
    wx_buf_json_member_i64(b, "updatedAtMs", s->updated_at_ms, &first);
    /* Only when known: snapshots of states without actors stay as they
     * were, and readers take absent as "". */
    if (s->created_by[0] != '\0')
        wx_buf_json_member_str(b, "createdBy", s->created_by, &first);
    if (s->updated_by[0] != '\0')
        wx_buf_json_member_str(b, "updatedBy", s->updated_by, &first);
    wx_buf_addc(b, '}');
}

static int wallet_decode(const char *data, size_t len, void *state)
{
    struct wallet_state *s = state;
    char text[WALLET_SNAPSHOT_BYTES_MAX + 1];
    struct wx_jflat fields;
    const struct wx_jflat *o = NULL;
    if (len < sizeof(text) && wx_jflat_parse(data, len, text, sizeof(text), &fields) == 0)
        o = &fields;
    int64_t schema = 0;
    const char *owner = o ? wx_jflat_str(o, "ownerId", WX_ID_BYTES_MAX) : NULL;
    const char *currency = o ? wx_jflat_str(o, "currency", WX_CURRENCY_BYTES) : NULL;
    int err = WX_ERR_CORRUPT;
    wallet_state_init(s);
    if (o != NULL && wx_jflat_i64(o, "schema", &schema) && schema == 1 && owner && currency &&
        wx_currency_exponent(currency) >= 0 && wx_jflat_i64(o, "balanceMinor", &s->balance_minor) &&
        s->balance_minor >= 0 && wx_jflat_i64(o, "createdAtMs", &s->created_at_ms) &&
        wx_jflat_i64(o, "updatedAtMs", &s->updated_at_ms)) {
        s->exists = true;
        snprintf(s->owner_id, sizeof(s->owner_id), "%s", owner);
        snprintf(s->currency, sizeof(s->currency), "%s", currency);
        const char *created_by = wx_jflat_str(o, "createdBy", WX_ID_BYTES_MAX);
        const char *updated_by = wx_jflat_str(o, "updatedBy", WX_ID_BYTES_MAX);
        snprintf(s->created_by, sizeof(s->created_by), "%s", created_by ? created_by : "");
        snprintf(s->updated_by, sizeof(s->updated_by), "%s", updated_by ? updated_by : "");
        err = 0;
    }
    return err;
}

const struct es_aggregate_type wallet_aggregate = {
    .name = "wallet",
    .category = WALLET_CATEGORY,
    .state_bytes_max = sizeof(struct wallet_state),
    .init = wallet_state_init,
    .evolve_stored = wallet_evolve_stored,
    .encode = wallet_encode,
    .decode = wallet_decode,
    .snapshot_bytes_max = WALLET_SNAPSHOT_BYTES_MAX,
};

const struct es_aggregate_type transfer_aggregate = {
    .name = "transfer",
    .category = TRANSFER_CATEGORY,
    .state_bytes_max = sizeof(struct transfer_state),
    .init = transfer_state_init,
    .evolve_stored = transfer_evolve_stored,
    .uncached = true,
};

/* ---- response resources ---- */



/* An actor, or null when the events named none. */
static void key_actor(struct wx_buf *b, const char *key, const char *actor, bool *first)
{
    wx_buf_json_member_str(b, key, actor[0] != '\0' ? actor : NULL, first);
}

void wallet_json(struct wx_buf *b, const char *wallet_id, const struct wallet_state *s,
                 int64_t version)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_member_str(b, "id", wallet_id, &first);
    wx_buf_json_member_str(b, "ownerId", s->owner_id, &first);
    wx_buf_json_member_str(b, "currency", s->currency, &first);
    wx_money_json_member(b, "balance", s->balance_minor, s->currency, &first);
    wx_buf_json_member_i64(b, "version", version, &first);
    wx_time_json_member(b, "createdAt", s->created_at_ms, &first);
    wx_time_json_member(b, "updatedAt", s->updated_at_ms, &first);
    key_actor(b, "createdBy", s->created_by, &first);
    key_actor(b, "updatedBy", s->updated_by, &first);
    wx_buf_addc(b, '}');
}

void transfer_json(struct wx_buf *b, const char *transfer_id, const struct transfer_state *t,
                   const struct wallet_state *from, const struct wallet_state *to)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_member_str(b, "transferId", transfer_id, &first);
    wx_buf_json_member_str(b, "fromWalletId", t->from_wallet_id, &first);
    wx_buf_json_member_str(b, "toWalletId", t->to_wallet_id, &first);
    wx_money_json_member(b, "amount", t->amount_minor, t->currency, &first);
    wx_buf_json_member_str(b, "currency", t->currency, &first);
    wx_buf_json_member_str(b, "description", t->description[0] ? t->description : NULL, &first);
    wx_time_json_member(b, "createdAt", t->created_at_ms, &first);
    wx_buf_json_key(b, "from", &first);
    if (from != NULL)
        wallet_json(b, t->from_wallet_id, from, t->from_version);
    else
        wx_buf_adds(b, "null");
    wx_buf_json_key(b, "to", &first);
    if (to != NULL)
        wallet_json(b, t->to_wallet_id, to, t->to_version);
    else
        wx_buf_adds(b, "null");
    wx_buf_addc(b, '}');
}

void wallet_stream_id(const char *wallet_id, char out[WX_STREAM_ID_BYTES_MAX + 1])
{
    snprintf(out, WX_STREAM_ID_BYTES_MAX + 1, WALLET_STREAM_PREFIX "%s", wallet_id);
}

void transfer_stream_id(const char *transfer_id, char out[WX_STREAM_ID_BYTES_MAX + 1])
{
    snprintf(out, WX_STREAM_ID_BYTES_MAX + 1, TRANSFER_STREAM_PREFIX "%s", transfer_id);
}
