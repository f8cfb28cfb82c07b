/*
 * The wallet rules, as pure functions: no I/O, no clock reads, no
 * allocation. Every business rule of API.md lives here and is tested in
 * tests/unit/wallet/test_decide.c without a database.
 */
#include <assert.h>
#include <string.h>

#include "base/err.h"
#include "base/money.h"
#include "wallet/wallet.h"

void wallet_state_init(void *state)
{
    memset(state, 0, sizeof(struct wallet_state));
}

void transfer_state_init(void *state)
{
    memset(state, 0, sizeof(struct transfer_state));
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    assert(n < cap);
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

void wallet_evolve(struct wallet_state *s, const struct wallet_event *e)
{
    switch (e->kind) {
    case WALLET_CREATED:
        assert(!s->exists);
        s->exists = true;
        copy_str(s->owner_id, sizeof(s->owner_id), e->owner_id);
        copy_str(s->currency, sizeof(s->currency), e->currency);
        s->balance_minor = 0;
        s->created_at_ms = e->occurred_at_ms;
        copy_str(s->created_by, sizeof(s->created_by), e->actor);
        break;
    case WALLET_CREDITED:
    case WALLET_DEBITED:
        assert(s->exists);
        assert(e->balance_before_minor == s->balance_minor);
        s->balance_minor = e->balance_after_minor;
        assert(s->balance_minor >= 0);
        break;
    case TRANSFER_COMPLETED:
        assert(0 && "a transfer event on a wallet stream");
        break;
    }
    s->updated_at_ms = e->occurred_at_ms;
    copy_str(s->updated_by, sizeof(s->updated_by), e->actor);
}

void transfer_evolve(struct transfer_state *s, const struct wallet_event *e)
{
    assert(e->kind == TRANSFER_COMPLETED);
    assert(!s->exists);
    s->exists = true;
    copy_str(s->from_wallet_id, sizeof(s->from_wallet_id), e->from_wallet_id);
    copy_str(s->to_wallet_id, sizeof(s->to_wallet_id), e->to_wallet_id);
    copy_str(s->currency, sizeof(s->currency), e->currency);
    copy_str(s->description, sizeof(s->description), e->description);
    s->amount_minor = e->amount_minor;
    s->from_version = e->from_version;
    s->to_version = e->to_version;
    s->created_at_ms = e->occurred_at_ms;
}

static void reject(struct wallet_decision *out, const struct es_outcome *o, const char *detail)
{
    out->outcome = o;
    out->detail = detail;
    out->events_len = 0;
}

/* Parses a positive amount in the currency's minor units. */
static bool amount_minor(const char *text, const char *currency, bool allow_zero,
                         int64_t *minor_out, struct wallet_decision *out)
{
    int exponent = wx_currency_exponent(currency);
    assert(exponent >= 0); /* wallets only hold known currencies */
    int err = wx_money_parse(text, strlen(text), exponent, minor_out);
    if (err == WX_ERR_OVERFLOW) {
        reject(out, ES_invalid_request, "amount is too large");
        return false;
    }
    if (err) {
        reject(out, ES_invalid_request,
               "amount has more decimal places than the currency allows");
        return false;
    }
    if (*minor_out == 0 && !allow_zero) {
        reject(out, ES_invalid_request, "amount must be greater than zero");
        return false;
    }
    return true;
}

void wallet_decide_create(const struct wallet_state *s, const struct wallet_command *c,
                          int64_t now_ms, struct wallet_decision *out)
{
    assert(c->kind == WALLET_CMD_CREATE);
    memset(out, 0, sizeof(*out));
    if (s->exists) {
        reject(out, WALLET_wallet_already_exists, "a wallet with this walletId already exists");
        return;
    }
    int64_t initial = 0;
    if (c->amount != NULL && !amount_minor(c->amount, c->currency, true, &initial, out))
        return;

    out->outcome = ES_OK;
    out->events[0] = (struct wallet_event){
        .kind = WALLET_CREATED,
        .wallet_id = c->wallet_id,
        .owner_id = c->owner_id,
        .currency = c->currency,
        .occurred_at_ms = now_ms,
    };
    out->events_len = 1;
    if (initial > 0) {
        out->events[1] = (struct wallet_event){
            .kind = WALLET_CREDITED,
            .wallet_id = c->wallet_id,
            .currency = c->currency,
            .amount_minor = initial,
            .balance_before_minor = 0,
            .balance_after_minor = initial,
            .description = "Initial balance",
            .occurred_at_ms = now_ms,
        };
        out->events_len = 2;
    }
}

void wallet_decide_amount(const struct wallet_state *s, int64_t version,
                          const struct wallet_command *c, int64_t now_ms,
                          struct wallet_decision *out)
{
    assert(c->kind == WALLET_CMD_CREDIT || c->kind == WALLET_CMD_DEBIT);
    memset(out, 0, sizeof(*out));
    if (!s->exists) {
        reject(out, WALLET_wallet_not_found, "no wallet with this walletId");
        return;
    }
    if (c->expected_version >= 0 && c->expected_version != version) {
        reject(out, ES_version_conflict, "the wallet has changed since expectedVersion");
        return;
    }
    int64_t amount;
    if (!amount_minor(c->amount, s->currency, false, &amount, out))
        return;
    int64_t after;
    if (c->kind == WALLET_CMD_CREDIT) {
        if (__builtin_add_overflow(s->balance_minor, amount, &after)) {
            reject(out, WALLET_balance_overflow, "the balance would overflow");
            return;
        }
    } else {
        if (amount > s->balance_minor) {
            reject(out, WALLET_insufficient_funds, "the balance is lower than the amount");
            return;
        }
        after = s->balance_minor - amount;
    }
    out->outcome = ES_OK;
    out->events[0] = (struct wallet_event){
        .kind = c->kind == WALLET_CMD_CREDIT ? WALLET_CREDITED : WALLET_DEBITED,
        .wallet_id = c->wallet_id,
        .currency = s->currency,
        .amount_minor = amount,
        .balance_before_minor = s->balance_minor,
        .balance_after_minor = after,
        .description = c->description,
        .occurred_at_ms = now_ms,
    };
    out->events_len = 1;
}

void wallet_decide_transfer(const struct wallet_state *from, int64_t from_version,
                            const struct wallet_state *to, int64_t to_version,
                            const struct transfer_state *t, const struct wallet_command *c,
                            int64_t now_ms, struct wallet_decision *out)
{
    assert(c->kind == WALLET_CMD_TRANSFER);
    assert(strcmp(c->from_wallet_id, c->to_wallet_id) != 0); /* checked when parsed */
    memset(out, 0, sizeof(*out));
    if (!from->exists) {
        reject(out, WALLET_wallet_not_found, "the source wallet does not exist");
        return;
    }
    if (!to->exists) {
        reject(out, WALLET_wallet_not_found, "the destination wallet does not exist");
        return;
    }
    if (t->exists) {
        reject(out, WALLET_transfer_already_exists, "a transfer with this transferId already exists");
        return;
    }
    if (strcmp(from->currency, to->currency) != 0) {
        reject(out, WALLET_currency_mismatch, "the wallets hold different currencies");
        return;
    }
    int64_t amount;
    if (!amount_minor(c->amount, from->currency, false, &amount, out))
        return;
    if (amount > from->balance_minor) {
        reject(out, WALLET_insufficient_funds, "the source balance is lower than the amount");
        return;
    }
    int64_t to_after;
    if (__builtin_add_overflow(to->balance_minor, amount, &to_after)) {
        reject(out, WALLET_balance_overflow, "the destination balance would overflow");
        return;
    }
    out->outcome = ES_OK;
    out->events[0] = (struct wallet_event){
        .kind = WALLET_DEBITED,
        .wallet_id = c->from_wallet_id,
        .currency = from->currency,
        .amount_minor = amount,
        .balance_before_minor = from->balance_minor,
        .balance_after_minor = from->balance_minor - amount,
        .description = c->description,
        .transfer_id = c->transfer_id,
        .occurred_at_ms = now_ms,
    };
    out->events[1] = (struct wallet_event){
        .kind = WALLET_CREDITED,
        .wallet_id = c->to_wallet_id,
        .currency = to->currency,
        .amount_minor = amount,
        .balance_before_minor = to->balance_minor,
        .balance_after_minor = to_after,
        .description = c->description,
        .transfer_id = c->transfer_id,
        .occurred_at_ms = now_ms,
    };
    out->events[2] = (struct wallet_event){
        .kind = TRANSFER_COMPLETED,
        .currency = from->currency,
        .amount_minor = amount,
        .description = c->description,
        .transfer_id = c->transfer_id,
        .from_wallet_id = c->from_wallet_id,
        .to_wallet_id = c->to_wallet_id,
        .from_version = from_version + 1,
        .to_version = to_version + 1,
        .occurred_at_ms = now_ms,
    };
    out->events_len = 3;
}

void wallet_decide_movement(const struct wallet_state *s, const struct wallet_movement *m,
                            int64_t now_ms, struct wallet_decision *out)
{
    assert(m->kind == WALLET_CREDITED || m->kind == WALLET_DEBITED);
    assert(m->amount_minor > 0);
    memset(out, 0, sizeof(*out));
    if (!s->exists) {
        reject(out, WALLET_wallet_not_found, "no wallet with this walletId");
        return;
    }
    if (strcmp(s->currency, m->currency) != 0) {
        reject(out, WALLET_currency_mismatch, "the wallet holds another currency");
        return;
    }
    int64_t after;
    if (m->kind == WALLET_CREDITED) {
        if (__builtin_add_overflow(s->balance_minor, m->amount_minor, &after)) {
            reject(out, WALLET_balance_overflow, "the balance would overflow");
            return;
        }
    } else {
        if (m->amount_minor > s->balance_minor) {
            reject(out, WALLET_insufficient_funds, "the balance is lower than the amount");
            return;
        }
        after = s->balance_minor - m->amount_minor;
    }
    out->outcome = ES_OK;
    out->events[0] = (struct wallet_event){
        .kind = m->kind,
        .wallet_id = m->wallet_id,
        .currency = s->currency,
        .amount_minor = m->amount_minor,
        .balance_before_minor = s->balance_minor,
        .balance_after_minor = after,
        .description = m->description,
        .reference = m->reference,
        .occurred_at_ms = now_ms,
    };
    out->events_len = 1;
}
