/*
 * Request bodies into typed order commands: every validation rule that
 * needs no state. Pure (no I/O, no clock), so the fuzzer calls it directly.
 * Strings of the command are copied into the arena.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "base/id.h"
#include "base/money.h"
#include "http/http.h"
#include "http/json.h"
#include "order/order.h"

#define ID_RULE "1-64 characters of A-Z a-z 0-9 . _ : -"

/* A quantity: a JSON integer from 1 to ORDER_QUANTITY_MAX. */
static bool get_quantity(struct json_object *obj, int64_t *out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, "quantity", &v) || !json_object_is_type(v, json_type_int))
        return false;
    return http_parse_i64(json_object_get_string(v), 1, ORDER_QUANTITY_MAX, out);
}

/* {productId, quantity, unitPrice} (unitPrice optional when changing). */
static const char *parse_line(struct json_object *o, bool product_in_body, bool price_required,
                              struct wx_arena *arena, struct order_line *l)
{
    if (product_in_body &&
        !http_json_id(o, "productId", HTTP_FIELD_REQUIRED, arena, &l->product_id))
        return "productId is required: " ID_RULE;
    if (!get_quantity(o, &l->quantity))
        return "quantity is required: an integer from 1 to 1000000";
    if (!http_json_decimal(o, "unitPrice", price_required ? HTTP_FIELD_REQUIRED
                                                          : HTTP_FIELD_OPTIONAL,
                           arena, &l->unit_price))
        return "unitPrice must be a non-negative decimal amount such as 9.99";
    return NULL;
}

static const char *parse_items(struct json_object *obj, struct wx_arena *arena,
                               struct order_command *c)
{
    static const char *const item_keys[] = {"productId", "quantity", "unitPrice", NULL};
    struct json_object *arr;
    if (!json_object_object_get_ex(obj, "items", &arr) || !json_object_is_type(arr, json_type_array))
        return "items is required: an array of {productId, quantity, unitPrice}";
    size_t n = json_object_array_length(arr);
    if (n > ORDER_ITEMS_MAX)
        return "an order holds at most 100 items";
    c->lines = wx_arena_alloc(arena, (n ? n : 1) * sizeof(*c->lines));
    if (c->lines == NULL)
        return "out of memory";
    for (size_t i = 0; i < n; i++) {
        struct json_object *it = json_object_array_get_idx(arr, i);
        const char *bad;
        if (!json_object_is_type(it, json_type_object))
            return "each item must be an object {productId, quantity, unitPrice}";
        if (!http_json_only_keys(it, item_keys, &bad))
            return "an item has a field other than productId, quantity and unitPrice";
        if (http_json_null_member(it) != NULL)
            return "an item has a null field: every item field needs a value";
        const char *why = parse_line(it, true, true, arena, &c->lines[i]);
        if (why != NULL)
            return why;
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->lines[j].product_id, c->lines[i].product_id) == 0)
                return "each productId may appear once in an order";
    }
    c->lines_len = n;
    return NULL;
}

static const char *parse_create(struct json_object *obj, struct wx_arena *arena,
                                const char *default_currency, struct order_command *c)
{
    if (!http_json_id(obj, "orderId", HTTP_FIELD_OPTIONAL, arena, &c->order_id))
        return "orderId must be " ID_RULE;
    /* GET /orders/statistics would hide such an order. */
    if (c->order_id != NULL && strcmp(c->order_id, "statistics") == 0)
        return "orderId 'statistics' is reserved";
    /* customer_id holds the caller's subject, when there is a caller: the
     * default (API.md); without one the field is required. */
    const char *customer = NULL;
    if (!http_json_id(obj, "customerId",
                      c->customer_id ? HTTP_FIELD_OPTIONAL : HTTP_FIELD_REQUIRED, arena,
                      &customer))
        return c->customer_id ? "customerId must be " ID_RULE
                              : "customerId is required: " ID_RULE;
    if (customer != NULL)
        c->customer_id = customer;
    if (!http_json_string(obj, "currency", HTTP_FIELD_OPTIONAL, WX_CURRENCY_BYTES, arena,
                          &c->currency) ||
        (c->currency != NULL && wx_currency_exponent(c->currency) < 0))
        return "currency must be an ISO 4217 code such as USD";
    if (c->currency == NULL)
        c->currency = default_currency;
    return parse_items(obj, arena, c);
}

static const char *parse_body(struct json_object *obj, struct wx_arena *arena,
                              const char *default_currency, struct order_command *c)
{
    switch (c->kind) {
    case ORDER_CMD_CREATE:
        return parse_create(obj, arena, default_currency, c);
    case ORDER_CMD_ADD_ITEM:
    case ORDER_CMD_CHANGE_ITEM:
        c->lines = wx_arena_alloc(arena, sizeof(*c->lines));
        if (c->lines == NULL)
            return "out of memory";
        c->lines_len = 1;
        c->lines[0].product_id = c->product_id;
        return parse_line(obj, c->kind == ORDER_CMD_ADD_ITEM, c->kind == ORDER_CMD_ADD_ITEM,
                          arena, &c->lines[0]);
    case ORDER_CMD_PAY:
        if (!http_json_id(obj, "walletId", HTTP_FIELD_REQUIRED, arena, &c->wallet_id))
            return "walletId is required: " ID_RULE;
        return NULL;
    case ORDER_CMD_CANCEL:
        if (!http_json_string(obj, "reason", HTTP_FIELD_OPTIONAL, ORDER_REASON_BYTES_MAX, arena,
                              &c->reason))
            return "reason must be a string of at most 1024 bytes";
        return NULL;
    case ORDER_CMD_ROLLBACK: {
        struct json_object *v;
        if (!json_object_object_get_ex(obj, "toVersion", &v) ||
            !json_object_is_type(v, json_type_int) ||
            !http_parse_i64(json_object_get_string(v), 1, INT64_MAX, &c->to_version))
            return "toVersion is required: a version of the order from 1";
        return NULL;
    }
    case ORDER_CMD_CONFIRM:
    case ORDER_CMD_SHIP:
    case ORDER_CMD_DELIVER:
        if (!http_json_version(obj, "expectedVersion", &c->expected_version))
            return "expectedVersion must be a non-negative integer";
        return NULL;
    case ORDER_CMD_REMOVE_ITEM:
        return NULL;
    }
    return "unknown command";
}

bool order_command_parse(enum order_command_kind kind, const char *order_id,
                         const char *product_id, const char *body, size_t len,
                         const char *default_currency, const char *default_customer,
                         struct wx_arena *arena, struct order_command **cmd_out,
                         const struct es_outcome **outcome, const char **detail)
{
    static const char *const keys[][5] = {
        [ORDER_CMD_CREATE] = {"orderId", "customerId", "currency", "items", NULL},
        [ORDER_CMD_ADD_ITEM] = {"productId", "quantity", "unitPrice", NULL},
        [ORDER_CMD_CHANGE_ITEM] = {"quantity", "unitPrice", NULL},
        [ORDER_CMD_REMOVE_ITEM] = {NULL},
        [ORDER_CMD_CONFIRM] = {"expectedVersion", NULL},
        [ORDER_CMD_PAY] = {"walletId", NULL},
        [ORDER_CMD_SHIP] = {"expectedVersion", NULL},
        [ORDER_CMD_DELIVER] = {"expectedVersion", NULL},
        [ORDER_CMD_CANCEL] = {"reason", NULL},
        [ORDER_CMD_ROLLBACK] = {"toVersion", NULL},
    };
    *outcome = ES_invalid_request;
    if (kind != ORDER_CMD_CREATE && (order_id == NULL || !wx_id_ok(order_id))) {
        *detail = "the order id must be " ID_RULE;
        return false;
    }
    if ((kind == ORDER_CMD_CHANGE_ITEM || kind == ORDER_CMD_REMOVE_ITEM) &&
        (product_id == NULL || !wx_id_ok(product_id))) {
        *detail = "the productId must be " ID_RULE;
        return false;
    }
    struct order_command *c = wx_arena_alloc(arena, sizeof(*c));
    if (c == NULL) {
        *outcome = ES_internal_error;
        *detail = "out of memory";
        return false;
    }
    c->kind = kind;
    c->order_id = order_id;
    c->product_id = product_id;
    c->expected_version = -1;
    if (kind == ORDER_CMD_CREATE)
        c->customer_id = default_customer;
    struct json_object *obj = NULL;
    *detail = http_json_body_object(body, len, keys[kind], arena, &obj);
    if (*detail == NULL)
        *detail = parse_body(obj, arena, default_currency, c);
    json_object_put(obj);
    if (*detail != NULL)
        return false;
    *cmd_out = c;
    return true;
}
