/*
 * The order domain (seeds/001, API.md "Orders") as deciders: typed commands
 * and events, pure decide functions that turn (state, command) into events
 * or a rejection, and a pure evolve. Nothing here does I/O; the writer and
 * the routes glue it to the world.
 *
 * Streams: "order:<orderId>". Paying an order debits a wallet in the same
 * commit (one decision over two aggregates, no saga), cancelling a paid
 * order credits it back the same way; those wallet events carry the
 * reference "order:<orderId>" so verify can match both sides.
 * Amounts are int64 minor units everywhere.
 */
#ifndef WALLEX_ORDER_ORDER_H
#define WALLEX_ORDER_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "es/aggregate.h"
#include "es/domain.h"
#include "es/outcome.h"
#include "limits.h"

#define ORDER_CATEGORY "order"

/* ---- the order domain's bounds ---- */

/* Items of one order (API.md): a create with more is 400, a 101st add 422. */
#define ORDER_ITEMS_MAX 100
/* Units of one item (API.md: an integer 1..1,000,000). */
#define ORDER_QUANTITY_MAX 1000000
/* Free text of a cancellation. */
#define ORDER_REASON_BYTES_MAX 1024
/* A stored order event's data: the largest carries every item (a create
 * or a rollback: about 150 bytes an item, 100 items) and the ids. */
#define ORDER_EVENT_DATA_BYTES_MAX (32 * 1024)
/* An encoded order snapshot: the same items and a few fields more. */
#define ORDER_SNAPSHOT_BYTES_MAX (32 * 1024)
/* Currencies the statistics report tells apart (ISO 4217 has ~180). */
#define ORDER_STATS_CURRENCIES_MAX 256

/* ---- outcomes (es/outcome.h), append only ---- */

#define ORDER_OUTCOME_MAP(XX, P)                                                                  \
    XX(P, order_not_found, 404, "Order not found")                                                \
    XX(P, item_not_found, 404, "The order has no item with this productId")                      \
    XX(P, order_already_exists, 409, "Order already exists")                                      \
    XX(P, item_already_exists, 409, "The order has an item with this productId already")         \
    XX(P, invalid_transition, 422, "The order's status does not allow this")                     \
    XX(P, too_many_items, 422, "The order has as many items as it may")                           \
    XX(P, total_overflow, 422, "The total would exceed the largest representable amount")       \
    XX(P, invalid_version, 422, "The order has no earlier version with this number")             \
    XX(P, empty_order, 422, "An order without items cannot be confirmed")

enum order_outcome_id { ORDER_OUTCOME_MAP(ES_OUTCOME_ID, ORDER) ORDER_OUTCOMES_LEN };
extern const struct es_outcome order_outcomes[];

#define ORDER_order_not_found (&order_outcomes[ORDER_ID_order_not_found])
#define ORDER_item_not_found (&order_outcomes[ORDER_ID_item_not_found])
#define ORDER_order_already_exists (&order_outcomes[ORDER_ID_order_already_exists])
#define ORDER_item_already_exists (&order_outcomes[ORDER_ID_item_already_exists])
#define ORDER_invalid_transition (&order_outcomes[ORDER_ID_invalid_transition])
#define ORDER_too_many_items (&order_outcomes[ORDER_ID_too_many_items])
#define ORDER_total_overflow (&order_outcomes[ORDER_ID_total_overflow])
#define ORDER_invalid_version (&order_outcomes[ORDER_ID_invalid_version])
#define ORDER_empty_order (&order_outcomes[ORDER_ID_empty_order])

extern const struct es_domain order_domain;

/* ---- state ---- */

enum order_status {
    ORDER_PENDING,
    ORDER_CONFIRMED,
    ORDER_PAID,
    ORDER_SHIPPED,
    ORDER_DELIVERED,
    ORDER_CANCELLED,
};
#define ORDER_STATUSES 6

/* "pending", ...; false for a name that is no status. */
const char *order_status_name(enum order_status s);
bool order_status_parse(const char *name, enum order_status *out);

struct order_item {
    char product_id[WX_ID_BYTES_MAX + 1];
    int64_t quantity;
    int64_t unit_price_minor;
    int64_t line_total_minor; /* quantity x unit price, overflow-checked */
};

/* The items come last: the state in use is the part up to items_len
 * (es_aggregate_type.state_bytes), so the writer's cache keeps a small
 * order small. */
struct order_state {
    bool exists;
    enum order_status status;
    char customer_id[WX_ID_BYTES_MAX + 1];
    char currency[WX_CURRENCY_BYTES + 1];
    char paid_from[WX_ID_BYTES_MAX + 1]; /* wallet id, "" until paid */
    int64_t paid_minor;                  /* what the wallet paid (refunded on cancel) */
    int64_t total_minor;
    int64_t created_at_ms;
    int64_t updated_at_ms;
    /* Audit (API.md createdBy/updatedBy): the actors of its first and last
     * events' metadata; "" where an event named none. */
    char created_by[WX_ID_BYTES_MAX + 1];
    char updated_by[WX_ID_BYTES_MAX + 1];
    size_t items_len;
    struct order_item items[ORDER_ITEMS_MAX];
};

size_t order_state_bytes(const void *state);
void order_state_init(void *state);

/* ---- events ---- */

enum order_event_kind {
    ORDER_CREATED,
    ORDER_ITEM_ADDED,
    ORDER_ITEM_CHANGED,
    ORDER_ITEM_REMOVED,
    ORDER_CONFIRMED_EV,
    ORDER_PAID_EV,
    ORDER_SHIPPED_EV,
    ORDER_DELIVERED_EV,
    ORDER_CANCELLED_EV,
    ORDER_ROLLED_BACK,
};

/* One typed event. Strings and items are borrowed from the command, the
 * state or the decoded JSON and live as long as those. */
struct order_event {
    enum order_event_kind kind;
    const char *order_id;
    const char *customer_id;              /* created */
    const char *currency;                 /* created */
    const struct order_item *items;       /* created, rolled back: the whole list */
    size_t items_len;
    struct order_item item;               /* item added, changed; removed: product_id */
    const char *wallet_id;                /* paid; cancelled when refunded */
    int64_t amount_minor;                 /* paid; cancelled: refunded (0: none) */
    const char *reason;                   /* cancelled, may be NULL */
    int64_t to_version;                   /* rolled back */
    enum order_status status;             /* rolled back: the status restored */
    int64_t occurred_at_ms;
    /* Who caused it: the command's actor, or a stored event's metadata
     * (es_event_actor); NULL when it names none. Not part of the data. */
    const char *actor;
};

/* Pure: apply one event the deciders produced (or the decoder checked). */
void order_evolve(struct order_state *s, const struct order_event *e);

/* ---- commands ---- */

enum order_command_kind {
    ORDER_CMD_CREATE,
    ORDER_CMD_ADD_ITEM,
    ORDER_CMD_CHANGE_ITEM,
    ORDER_CMD_REMOVE_ITEM,
    ORDER_CMD_CONFIRM,
    ORDER_CMD_PAY,
    ORDER_CMD_SHIP,
    ORDER_CMD_DELIVER,
    ORDER_CMD_CANCEL,
    ORDER_CMD_ROLLBACK,
};

/* A parsed, syntactically valid command. Prices stay decimal text until the
 * decider knows the order's currency and so its minor digits. */
struct order_line {
    const char *product_id;
    int64_t quantity;
    const char *unit_price; /* decimal text; NULL: unchanged (change item) */
};

struct order_command {
    enum order_command_kind kind;
    const char *order_id;
    bool order_id_generated; /* by the server: its stream cannot exist yet */
    const char *customer_id; /* create */
    const char *currency;    /* create */
    struct order_line *lines; /* create: the items; add and change: one */
    size_t lines_len;
    const char *product_id;   /* change, remove: the path's productId */
    const char *wallet_id;    /* pay */
    const char *reason;       /* cancel, may be NULL */
    int64_t expected_version; /* confirm, ship, deliver; -1 when absent */
    int64_t to_version;       /* rollback */
};

/* What a decider returns: the order's events and, for pay and a paid
 * cancel, the wallet movement to make in the same commit; or a rejection. */
struct order_decision {
    const struct es_outcome *outcome; /* ES_OK or the rule broken */
    const char *detail;               /* static text */
    bool with_status;                 /* invalid_transition: say currentStatus */
    enum order_status current_status;
    struct order_event event;         /* exactly one on success */
    bool moves_money;                 /* pay debits, a paid cancel credits */
    struct order_item scratch[ORDER_ITEMS_MAX]; /* items of a create */
};

/* Every decider is pure: state in, decision out. `version` is the order
 * stream's version (0: none). */
void order_decide(const struct order_state *s, int64_t version, const struct order_command *c,
                  int64_t now_ms, struct order_decision *out);

/* Rollback needs the order as it was: the writer folds it to to_version and
 * hands it over (NULL when to_version is out of range). */
void order_decide_rollback(const struct order_state *s, int64_t version,
                           const struct order_state *then, const struct order_command *c,
                           int64_t now_ms, struct order_decision *out);

/* ---- parse.c: request bodies (pure, for the fuzzer too) ---- */

struct wx_arena;
/* Parses a request body into a command; order_id and product_id are the
 * path parameters where the route has them (checked here). A create's
 * customerId is default_customer when absent (the caller's subject), and
 * required when that is NULL (no authentication). On failure *detail says
 * why (400 invalid_request, or 500 without memory in *outcome). */
bool order_command_parse(enum order_command_kind kind, const char *order_id,
                         const char *product_id, const char *body, size_t len,
                         const char *default_currency, const char *default_customer,
                         struct wx_arena *arena, struct order_command **cmd_out,
                         const struct es_outcome **outcome, const char **detail);

/* ---- codec.c: stored events, snapshots, the Order resource ---- */

const struct es_event_type *order_event_type(enum order_event_kind kind);
extern const struct es_event_type *const order_event_types[];
void order_event_encode(struct wx_buf *b, const struct order_event *e);

struct es_event;
/* A decoded stored event; its strings and items live in the struct. */
struct order_decoded {
    struct order_event e;
    struct order_item items[ORDER_ITEMS_MAX];
    char order_id[WX_ID_BYTES_MAX + 1];
    char customer_id[WX_ID_BYTES_MAX + 1];
    char currency[WX_CURRENCY_BYTES + 1];
    char wallet_id[WX_ID_BYTES_MAX + 1];
    char reason[ORDER_REASON_BYTES_MAX + 1];
    char actor[WX_ID_BYTES_MAX + 1];
};
/* Decodes a stored event in its current schema (upcast first).
 * WX_ERR_CORRUPT when it does not read or breaks a bound. */
int order_event_decode(const struct es_event *ev, struct order_decoded *d);

extern const struct es_aggregate_type order_aggregate;

/* The Order resource of API.md. */
void order_json(struct wx_buf *b, const char *order_id, const struct order_state *s,
                int64_t version);

void order_stream_id(const char *order_id, char out[WX_STREAM_ID_BYTES_MAX + 1]);

#endif
