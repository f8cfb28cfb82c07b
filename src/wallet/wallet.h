/*
 * The wallet domain as deciders (DESIGN.md §1): typed commands and events,
 * pure decide functions that turn (state, command) into events or a
 * rejection, and a pure evolve that folds an event into the state. Nothing
 * here does I/O; the writer and the HTTP routes glue it to the world.
 *
 * Streams: "wallet:<walletId>" holds WalletCreated, WalletCredited and
 * WalletDebited; "transfer:<transferId>" holds one TransferCompleted.
 * Amounts are int64 minor units everywhere.
 */
#ifndef WALLEX_WALLET_WALLET_H
#define WALLEX_WALLET_WALLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "es/aggregate.h"
#include "es/domain.h"
#include "es/outcome.h"
#include "limits.h"

/* Stream categories: "wallet:<walletId>", "transfer:<transferId>". */
#define WALLET_CATEGORY "wallet"
#define TRANSFER_CATEGORY "transfer"
#define WALLET_STREAM_PREFIX WALLET_CATEGORY ":"
#define TRANSFER_STREAM_PREFIX TRANSFER_CATEGORY ":"

/* ---- the wallet domain's bounds ---- */

/* A stored wallet event's data. The largest the codec writes is about 8.5
 * KiB (a description of control characters, each escaped to six bytes, and
 * ids); decoding unescapes into a buffer this big, and longer data is
 * corrupt. */
#define WALLET_EVENT_DATA_BYTES_MAX (16 * 1024)
/* An encoded wallet snapshot (eight short fields, under 512 bytes). */
#define WALLET_SNAPSHOT_BYTES_MAX 4096
/* A cross-domain reference on a credit or debit ("order:<orderId>"). */
#define WALLET_REFERENCE_BYTES_MAX WX_STREAM_ID_BYTES_MAX

/* ---- outcomes (es/outcome.h), append only ---- */

#define WALLET_OUTCOME_MAP(XX, P)                                                                 \
    XX(P, same_wallet, 400, "A transfer needs two different wallets")                             \
    XX(P, wallet_not_found, 404, "Wallet not found")                                              \
    XX(P, transfer_not_found, 404, "Transfer not found")                                          \
    XX(P, wallet_already_exists, 409, "Wallet already exists")                                    \
    XX(P, transfer_already_exists, 409, "Transfer already exists")                                \
    XX(P, insufficient_funds, 422, "Insufficient funds")                                          \
    XX(P, balance_overflow, 422, "The balance would exceed the largest representable amount")     \
    XX(P, currency_mismatch, 422, "The wallets hold different currencies")

enum wallet_outcome_id { WALLET_OUTCOME_MAP(ES_OUTCOME_ID, WALLET) WALLET_OUTCOMES_LEN };
extern const struct es_outcome wallet_outcomes[];

#define WALLET_same_wallet (&wallet_outcomes[WALLET_ID_same_wallet])
#define WALLET_wallet_not_found (&wallet_outcomes[WALLET_ID_wallet_not_found])
#define WALLET_transfer_not_found (&wallet_outcomes[WALLET_ID_transfer_not_found])
#define WALLET_wallet_already_exists (&wallet_outcomes[WALLET_ID_wallet_already_exists])
#define WALLET_transfer_already_exists (&wallet_outcomes[WALLET_ID_transfer_already_exists])
#define WALLET_insufficient_funds (&wallet_outcomes[WALLET_ID_insufficient_funds])
#define WALLET_balance_overflow (&wallet_outcomes[WALLET_ID_balance_overflow])
#define WALLET_currency_mismatch (&wallet_outcomes[WALLET_ID_currency_mismatch])

/* The domain, for main's list (wallet/domain.c). */
extern const struct es_domain wallet_domain;

struct wallet_state {
    bool exists;
    char owner_id[WX_ID_BYTES_MAX + 1];
    char currency[WX_CURRENCY_BYTES + 1];
    int64_t balance_minor;
    int64_t created_at_ms;
    int64_t updated_at_ms;
    /* Audit (API.md createdBy/updatedBy): the actors of its first and last
     * events' metadata; "" where an event named none. */
    char created_by[WX_ID_BYTES_MAX + 1];
    char updated_by[WX_ID_BYTES_MAX + 1];
};

struct transfer_state {
    bool exists;
    char from_wallet_id[WX_ID_BYTES_MAX + 1];
    char to_wallet_id[WX_ID_BYTES_MAX + 1];
    char currency[WX_CURRENCY_BYTES + 1];
    int64_t amount_minor;
    int64_t from_version; /* the wallets' versions right after the transfer */
    int64_t to_version;
    int64_t created_at_ms;
    char description[WX_DESCRIPTION_BYTES_MAX + 1];
};

enum wallet_event_kind {
    WALLET_CREATED,
    WALLET_CREDITED,
    WALLET_DEBITED,
    TRANSFER_COMPLETED,
};

/* One typed event. Strings are borrowed from the command or the decoded
 * JSON; they live as long as those. */
struct wallet_event {
    enum wallet_event_kind kind;
    const char *wallet_id;   /* the stream's wallet; NULL for transfers */
    const char *owner_id;    /* WalletCreated */
    const char *currency;
    int64_t amount_minor;    /* credited/debited/transferred */
    int64_t balance_before_minor;
    int64_t balance_after_minor;
    const char *description; /* may be NULL */
    const char *transfer_id; /* NULL unless part of a transfer */
    /* Credits and debits another domain's command made (paying an order):
     * "<category>:<id>" of what caused it, or NULL. The wallet domain keeps
     * it without reading it; the other domain's verify checks both sides. */
    const char *reference;
    const char *from_wallet_id; /* TransferCompleted */
    const char *to_wallet_id;
    int64_t from_version;
    int64_t to_version;
    int64_t occurred_at_ms;
    /* Who caused it: the command's actor, or a stored event's metadata
     * (es_event_actor); NULL when it names none. Not part of the data. */
    const char *actor;
};

enum wallet_command_kind {
    WALLET_CMD_CREATE,
    WALLET_CMD_CREDIT,
    WALLET_CMD_DEBIT,
    WALLET_CMD_TRANSFER,
};

/* A parsed, syntactically valid command. Amounts stay decimal text until the
 * decider knows the wallet's currency and so its minor digits. */
struct wallet_command {
    enum wallet_command_kind kind;
    const char *wallet_id;      /* create, credit, debit */
    const char *owner_id;       /* create */
    const char *currency;       /* create */
    const char *amount;         /* credit, debit, transfer; create's initialBalance or NULL */
    const char *description;    /* may be NULL */
    int64_t expected_version;   /* credit, debit; -1 when absent */
    const char *transfer_id;    /* transfer */
    bool transfer_id_generated; /* by the server: its stream cannot exist yet */
    const char *from_wallet_id; /* transfer */
    const char *to_wallet_id;   /* transfer */
};

/* What a decider returns: events for each stream, or a rejection. */
struct wallet_decision {
    const struct es_outcome *outcome; /* ES_OK or the rule that was broken */
    const char *detail;      /* static text for a rejection */
    struct wallet_event events[3];
    size_t events_len;
};

void wallet_state_init(void *state);
void transfer_state_init(void *state);

/* Pure: apply one event. The event must be valid for the state (deciders
 * only produce such events); a stored event is checked by the decoder. */
void wallet_evolve(struct wallet_state *s, const struct wallet_event *e);
void transfer_evolve(struct transfer_state *s, const struct wallet_event *e);

void wallet_decide_create(const struct wallet_state *s, const struct wallet_command *c,
                          int64_t now_ms, struct wallet_decision *out);
/* Credit or debit, by c->kind. */
void wallet_decide_amount(const struct wallet_state *s, int64_t version,
                          const struct wallet_command *c, int64_t now_ms,
                          struct wallet_decision *out);
/* events[0] debits `from`, events[1] credits `to`, events[2] is the
 * transfer's own TransferCompleted. */
void wallet_decide_transfer(const struct wallet_state *from, int64_t from_version,
                            const struct wallet_state *to, int64_t to_version,
                            const struct transfer_state *t, const struct wallet_command *c,
                            int64_t now_ms, struct wallet_decision *out);

/* A credit or debit another domain's command makes (paying an order and
 * refunding it), decided by the same rules as the wallet's own: the wallet
 * must exist (wallet_not_found) and hold the currency (currency_mismatch),
 * a debit needs the funds (insufficient_funds), a credit must not overflow
 * (balance_overflow). events[0] is the one event on the wallet's stream. */
struct wallet_movement {
    enum wallet_event_kind kind; /* WALLET_CREDITED or WALLET_DEBITED */
    const char *wallet_id;
    const char *currency;
    int64_t amount_minor; /* > 0 */
    const char *description;
    const char *reference; /* "<category>:<id>" of what caused it */
};
void wallet_decide_movement(const struct wallet_state *s, const struct wallet_movement *m,
                            int64_t now_ms, struct wallet_decision *out);

/* ---- commands.c, for other domains' commands on the writer thread ---- */

struct es_decide_ctx;
/* Loads a wallet into *out (its state) and *version_out (0: none). */
int wallet_load_state(struct es_decide_ctx *ctx, const char *wallet_id, struct wallet_state *out,
                      int64_t *version_out);
/* Evolves *state by e (a movement wallet_decide_movement decided) and
 * stages e on the wallet's stream, in the same command as the caller's
 * own events. */
int wallet_stage_movement(struct es_decide_ctx *ctx, const char *wallet_id,
                          struct wallet_state *state, const struct wallet_event *e);

/* ---- parse.c: request bodies ---- */

struct wx_arena;
/* Parses a request body into a command (strings copied into the arena).
 * wallet_id is the path parameter of credit and debit. A create's ownerId
 * is default_owner when absent (the caller's subject), and required when
 * that is NULL (no authentication). On failure *outcome is
 * invalid_request (or same_wallet) and *detail says why. */
bool wallet_command_parse(enum wallet_command_kind kind, const char *wallet_id, const char *body,
                          size_t len, const char *default_currency, const char *default_owner,
                          struct wx_arena *arena, struct wallet_command **cmd_out,
                          const struct es_outcome **outcome, const char **detail);

/* ---- codec.c: events as stored JSON, resources as response JSON ---- */

/* The registered event type of each kind (es/domain.h). */
const struct es_event_type *wallet_event_type(enum wallet_event_kind kind);
void wallet_event_encode(struct wx_buf *b, const struct wallet_event *e);

struct es_event;
/* Decodes a stored event into *e, its strings unescaped into text, which
 * holds ev->data_len + 1 bytes at least (WALLET_EVENT_DATA_BYTES_MAX
 * always does). WX_ERR_CORRUPT when it does not read. */
int wallet_event_decode(const struct es_event *ev, char *text, size_t text_bytes,
                        struct wallet_event *e);

extern const struct es_aggregate_type wallet_aggregate;
extern const struct es_aggregate_type transfer_aggregate;
extern const struct es_event_type *const wallet_event_types[];

/* The Wallet resource of API.md. */
void wallet_json(struct wx_buf *b, const char *wallet_id, const struct wallet_state *s,
                 int64_t version);
/* The Transfer resource of API.md; from or to NULL (null in the JSON)
 * for a wallet the caller may not see. */
void transfer_json(struct wx_buf *b, const char *transfer_id, const struct transfer_state *t,
                   const struct wallet_state *from, const struct wallet_state *to);

/* Stream id of a wallet or transfer id, written into out. */
void wallet_stream_id(const char *wallet_id, char out[WX_STREAM_ID_BYTES_MAX + 1]);
void transfer_stream_id(const char *transfer_id, char out[WX_STREAM_ID_BYTES_MAX + 1]);

#endif
