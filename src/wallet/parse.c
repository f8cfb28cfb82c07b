/*
 * Request bodies into typed wallet commands: every validation rule that
 * needs no state. Pure (no I/O, no clock), so the fuzzers call it directly.
 * Strings of the command are copied into the arena.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "base/id.h"
#include "base/money.h"
#include "http/http.h"
#include "http/json.h"
#include "wallet/wallet.h"

/* Parses the body and checks its keys; false with *detail set when not. */
static bool body_object(const char *body, size_t len, const char *const *allowed,
                        struct wx_arena *arena, struct json_object **obj, const char **detail)
{
    if (!http_json_parse_object(body, len, obj, detail))
        return false;
    const char *bad_key;
    if (!http_json_only_keys(*obj, allowed, &bad_key)) {
        char *msg = wx_arena_alloc(arena, 128);
        if (msg != NULL)
            snprintf(msg, 128, "unknown field '%.64s'", bad_key);
        *detail = msg ? msg : "unknown field";
        json_object_put(*obj);
        return false;
    }
    return true;
}

static const char *parse_create(struct json_object *obj, struct wx_arena *arena,
                                const char *default_currency, const char *default_owner,
                                struct wallet_command *c)
{
    c->expected_version = -1;
    if (!http_json_id(obj, "walletId", HTTP_FIELD_REQUIRED, arena, &c->wallet_id))
        return "walletId is required: 1-64 characters of A-Z a-z 0-9 . _ : -";
    if (!http_json_id(obj, "ownerId", default_owner ? HTTP_FIELD_OPTIONAL : HTTP_FIELD_REQUIRED,
                      arena, &c->owner_id))
        return default_owner ? "ownerId must be 1-64 characters of A-Z a-z 0-9 . _ : -"
                             : "ownerId is required: 1-64 characters of A-Z a-z 0-9 . _ : -";
    if (c->owner_id == NULL)
        c->owner_id = default_owner;
    if (!http_json_string(obj, "currency", HTTP_FIELD_OPTIONAL, WX_CURRENCY_BYTES, arena,
                          &c->currency) ||
        (c->currency != NULL && wx_currency_exponent(c->currency) < 0))
        return "currency must be an ISO 4217 code such as USD";
    if (!http_json_decimal(obj, "initialBalance", HTTP_FIELD_OPTIONAL, arena, &c->amount))
        return "initialBalance must be a non-negative decimal amount";
    if (c->currency == NULL)
        c->currency = default_currency;
    return NULL;
}

static const char *parse_amount(struct json_object *obj, struct wx_arena *arena,
                                struct wallet_command *c)
{
    if (!http_json_decimal(obj, "amount", HTTP_FIELD_REQUIRED, arena, &c->amount))
        return "amount is required: a positive decimal such as 10.50";
    if (!http_json_string(obj, "description", HTTP_FIELD_OPTIONAL, WX_DESCRIPTION_BYTES_MAX,
                          arena, &c->description))
        return "description must be a string of at most 1024 bytes";
    if (!http_json_version(obj, "expectedVersion", &c->expected_version))
        return "expectedVersion must be a non-negative integer";
    return NULL;
}

static const char *parse_transfer(struct json_object *obj, struct wx_arena *arena,
                                  struct wallet_command *c, const struct es_outcome **outcome)
{
    c->expected_version = -1;
    if (!http_json_id(obj, "transferId", HTTP_FIELD_OPTIONAL, arena, &c->transfer_id))
        return "transferId must be 1-64 characters of A-Z a-z 0-9 . _ : -";
    if (!http_json_id(obj, "fromWalletId", HTTP_FIELD_REQUIRED, arena, &c->from_wallet_id))
        return "fromWalletId is required: 1-64 characters of A-Z a-z 0-9 . _ : -";
    if (!http_json_id(obj, "toWalletId", HTTP_FIELD_REQUIRED, arena, &c->to_wallet_id))
        return "toWalletId is required: 1-64 characters of A-Z a-z 0-9 . _ : -";
    if (!http_json_decimal(obj, "amount", HTTP_FIELD_REQUIRED, arena, &c->amount))
        return "amount is required: a positive decimal such as 10.50";
    if (!http_json_string(obj, "description", HTTP_FIELD_OPTIONAL, WX_DESCRIPTION_BYTES_MAX,
                          arena, &c->description))
        return "description must be a string of at most 1024 bytes";
    if (strcmp(c->from_wallet_id, c->to_wallet_id) == 0) {
        *outcome = WALLET_same_wallet;
        return "fromWalletId and toWalletId must differ";
    }
    return NULL;
}

bool wallet_command_parse(enum wallet_command_kind kind, const char *wallet_id, const char *body,
                          size_t len, const char *default_currency, const char *default_owner,
                          struct wx_arena *arena, struct wallet_command **cmd_out,
                          const struct es_outcome **outcome, const char **detail)
{
    static const char *const create_keys[] = {"walletId", "ownerId", "initialBalance",
                                              "currency", NULL};
    static const char *const amount_keys[] = {"amount", "description", "expectedVersion", NULL};
    static const char *const transfer_keys[] = {"transferId", "fromWalletId", "toWalletId",
                                                "amount", "description", NULL};
    *outcome = ES_invalid_request;
    if ((kind == WALLET_CMD_CREDIT || kind == WALLET_CMD_DEBIT) && !wx_id_ok(wallet_id)) {
        *detail = "the wallet id must be 1-64 characters of A-Z a-z 0-9 . _ : -";
        return false;
    }
    const char *const *keys = kind == WALLET_CMD_CREATE     ? create_keys
                              : kind == WALLET_CMD_TRANSFER ? transfer_keys
                                                            : amount_keys;
    struct json_object *obj;
    if (!body_object(body, len, keys, arena, &obj, detail))
        return false;
    struct wallet_command *c = wx_arena_alloc(arena, sizeof(*c));
    if (c == NULL) {
        *outcome = ES_internal_error;
        *detail = "out of memory";
        json_object_put(obj);
        return false;
    }
    c->kind = kind;
    if (kind == WALLET_CMD_CREATE) {
        *detail = parse_create(obj, arena, default_currency, default_owner, c);
    } else if (kind == WALLET_CMD_TRANSFER) {
        *detail = parse_transfer(obj, arena, c, outcome);
    } else {
        c->wallet_id = wallet_id;
        *detail = parse_amount(obj, arena, c);
    }
    json_object_put(obj);
    if (*detail != NULL)
        return false;
    *cmd_out = c;
    return true;
}
