/* libFuzzer: any bytes as the body of each command route must parse or be
 * refused with a reason, never crash, and a parsed command must satisfy
 * what the deciders assert. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/arena.h"
#include "base/money.h"
#include "base/id.h"
#include "http/http.h"
#include "wallet/wallet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum wallet_command_kind kind = (enum wallet_command_kind)(data[0] % 4);
    /* With a caller (bit 2) a create's ownerId defaults to its subject. */
    const char *default_owner = data[0] & 4 ? "u-1" : NULL;
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct wallet_command *c = NULL;
    const struct es_outcome *outcome;
    const char *detail = NULL;
    bool ok = wallet_command_parse(kind, "w-1", (const char *)data + 1, size - 1, "USD",
                                   default_owner, &arena, &c, &outcome, &detail);
    if (!ok) {
        assert(detail != NULL);
        assert(outcome == ES_invalid_request || outcome == WALLET_same_wallet ||
               outcome == ES_internal_error);
    } else {
        assert(c->kind == kind);
        if (kind == WALLET_CMD_CREATE) {
            assert(wx_id_ok(c->wallet_id) && wx_id_ok(c->owner_id));
            assert(wx_currency_exponent(c->currency) >= 0);
        } else {
            assert(c->amount != NULL);
        }
        if (kind == WALLET_CMD_TRANSFER)
            assert(strcmp(c->from_wallet_id, c->to_wallet_id) != 0);
        if (c->amount != NULL) {
            /* Whatever passed the grammar parses or overflows for every currency. */
            int64_t minor;
            int err = wx_money_parse(c->amount, strlen(c->amount), 4, &minor);
            assert(err == 0 || err == 11 /* WX_ERR_OVERFLOW */);
        }
    }
    wx_arena_release(&arena);
    return 0;
}
