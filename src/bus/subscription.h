/*
 * Webhook subscriptions as a small domain of their own (DESIGN.md §11):
 * the stream "subscription:<id>" holds SubscriptionCreated (with its
 * signing secret: the log is the only source of truth), then Paused,
 * Resumed, Disabled (by the delivery thread, after failing too long) and
 * Deleted. Pure deciders and evolve here; the writer-thread handlers in
 * commands.c, the read model in projections.c, the routes in routes.c.
 */
#ifndef WALLEX_BUS_SUBSCRIPTION_H
#define WALLEX_BUS_SUBSCRIPTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "bus/bus.h"
#include "es/aggregate.h"
#include "es/domain.h"
#include "es/outcome.h"
#include "es/writer.h"
#include "limits.h"

#define SUBSCRIPTION_CATEGORY "subscription"

/* A stored subscription event's data: the URL, the event types and a
 * description at their bounds, escaped, stay well under this. */
#define SUBSCRIPTION_EVENT_DATA_BYTES_MAX (16 * 1024)
/* Why a subscription was disabled. */
#define SUBSCRIPTION_REASON_BYTES_MAX 256

/* ---- outcomes (es/outcome.h), append only ---- */

#define BUS_OUTCOME_MAP(XX, P)                                                                    \
    XX(P, subscription_not_found, 404, "Subscription not found")                                  \
    XX(P, dead_letter_not_found, 404, "Dead letter not found")

enum bus_outcome_id { BUS_OUTCOME_MAP(ES_OUTCOME_ID, BUS) BUS_OUTCOMES_LEN };
extern const struct es_outcome bus_outcomes[];

#define BUS_subscription_not_found (&bus_outcomes[BUS_ID_subscription_not_found])
#define BUS_dead_letter_not_found (&bus_outcomes[BUS_ID_dead_letter_not_found])

/* The domain, for main's list (bus/domain.c). */
extern const struct es_domain bus_domain;

enum subscription_status {
    SUBSCRIPTION_ACTIVE,
    SUBSCRIPTION_PAUSED,
    SUBSCRIPTION_DISABLED,
    SUBSCRIPTION_DELETED,
};

/* "active", "paused", "disabled", "deleted". */
const char *subscription_status_name(enum subscription_status s);

struct subscription_state {
    bool exists; /* created, deleted or not */
    enum subscription_status status;
    int64_t created_at_ms;
    int64_t updated_at_ms;
    char url[BUS_URL_BYTES_MAX + 1];
    char event_types[BUS_EVENT_TYPES_JSON_BYTES_MAX + 1]; /* JSON array text */
    char description[WX_DESCRIPTION_BYTES_MAX + 1];
    bool has_description;
    char reason[SUBSCRIPTION_REASON_BYTES_MAX + 1]; /* while disabled */
};

enum subscription_event_kind {
    SUBSCRIPTION_EV_CREATED,
    SUBSCRIPTION_EV_PAUSED,
    SUBSCRIPTION_EV_RESUMED,
    SUBSCRIPTION_EV_DISABLED,
    SUBSCRIPTION_EV_DELETED,
};

/* One typed event; strings borrowed from the command or the decoded JSON. */
struct subscription_event {
    enum subscription_event_kind kind;
    const char *subscription_id;
    const char *url;         /* created */
    const char *event_types; /* created: JSON array text */
    const char *description; /* created; may be NULL */
    const char *secret;      /* created */
    const char *reason;      /* disabled */
    int64_t occurred_at_ms;
};

enum subscription_command_kind {
    SUBSCRIPTION_CMD_CREATE,
    SUBSCRIPTION_CMD_PAUSE,
    SUBSCRIPTION_CMD_RESUME,
    SUBSCRIPTION_CMD_DISABLE,
    SUBSCRIPTION_CMD_DELETE,
};

struct subscription_command {
    enum subscription_command_kind kind;
    const char *subscription_id; /* generated for create */
    const char *url;
    const char *event_types;     /* validated JSON array text */
    const char *description;     /* may be NULL */
    const char *secret;          /* generated for create */
    const char *reason;          /* disable */
};

struct subscription_decision {
    const struct es_outcome *outcome; /* ES_OK or the rule that was broken */
    const char *detail;
    struct subscription_event event;
    size_t events_len; /* 0 or 1: pausing a paused subscription changes nothing */
};

void subscription_state_init(void *state);
/* Pure: the event must be valid for the state (deciders only make such). */
void subscription_evolve(struct subscription_state *s, const struct subscription_event *e);
void subscription_decide(const struct subscription_state *s, const struct subscription_command *c,
                         int64_t now_ms, struct subscription_decision *out);

/* ---- codec.c ---- */

const struct es_event_type *subscription_event_type(enum subscription_event_kind kind);
void subscription_event_encode(struct wx_buf *b, const struct subscription_event *e);
/* Decodes a stored event; its strings are copied into `text` (ev->data_len
 * + 1 bytes at least). WX_ERR_CORRUPT when it does not read. */
int subscription_event_decode(const struct es_event *ev, char *text, size_t text_bytes,
                              struct subscription_event *e);
extern const struct es_aggregate_type subscription_aggregate;
extern const struct es_event_type *const subscription_event_types[];

/* The Subscription resource: subscriptionId, url, eventTypes, description,
 * status, (disabledReason,) version, createdAt, updatedAt; and secret when
 * given (only the 201 of its creation). */
void subscription_json(struct wx_buf *b, const char *id, const struct subscription_state *s,
                       int64_t version, const char *secret);
void subscription_stream_id(const char *id, char out[WX_STREAM_ID_BYTES_MAX + 1]);

/* What the bus publishes of an event: the Event resource (es_event_json),
 * upcast to its current schema, with a subscription's signing secret left
 * out: outside consumers never see one. scratch holds upcast data. */
int bus_event_public_json(const struct es_event *stored, struct wx_buf *scratch,
                          struct wx_buf *out);
/* The same event's data alone, for the relay's `data` field. *data_out
 * points into stored, scratch or out. */
int bus_event_public_data(const struct es_event *stored, struct wx_buf *scratch,
                          struct es_event *event_out);

/* ---- parse.c: request bodies ---- */

struct wx_arena;
/* POST /subscriptions {url, eventTypes, description?}: validated into c
 * (strings in the arena; eventTypes re-encoded as a JSON array of known
 * event type names, or ["*"]). deny_private refuses loopback and private
 * literal addresses and "localhost". False with *detail when invalid. */
bool subscription_parse_create(const char *body, size_t len, bool deny_private,
                               struct wx_arena *arena, struct subscription_command *c,
                               const char **detail);
struct sockaddr;
/* Is this IPv4 or IPv6 address loopback, private, link-local or
 * unspecified? (webhook.c checks every address it connects to with it.) */
bool bus_address_private(const struct sockaddr *sa);

/* ---- projections.c: the read model "subscriptions" ---- */

struct es_projector;
extern const struct es_consumer subscription_consumer;
extern const struct es_consumer *const bus_consumers[];

/* GET /subscriptions/{id}: the resource (no secret), or WX_ERR_NOT_FOUND. */
int subscription_query_get(struct es_projector *p, const char *id, struct wx_buf *out);
/* A page ordered by id (UUIDv7: creation order), ids after `after`. */
int subscription_query_list(struct es_projector *p, const char *after, size_t limit,
                            struct wx_buf *out);

/* What the delivery thread needs of each subscription. */
struct subscription_row {
    const char *id;
    const char *url;
    const char *event_types; /* JSON array text */
    const char *secret;
    enum subscription_status status;
    struct es_position created; /* deliveries start after it */
};
typedef int (*subscription_row_fn)(void *ctx, const struct subscription_row *row);
/* Moves whenever this process's projector applies a subscription event
 * (before that transaction commits), and *changed_at is the log position
 * of the latest such event: a catalog read that started after the
 * generation last moved and whose horizon has reached changed_at is still
 * the catalog. (The generation alone is not enough: a read between the
 * apply and its commit takes the new generation with the old rows.) */
uint64_t subscription_catalog_generation(struct es_position *changed_at);
/* Every subscription (at most max_rows, oldest first) as of one read
 * transaction, and the read model's checkpoint in that same transaction:
 * every subscription change up to *horizon_out is in what fn saw. */
int subscription_catalog(struct es_projector *p, size_t max_rows, subscription_row_fn fn,
                         void *ctx, struct es_position *horizon_out);

/* ---- commands.c, on the writer thread ---- */

/* Runs a struct subscription_command (the payload). */
void subscription_run_command(struct es_decide_ctx *ctx, struct es_command *cmd);

#endif
