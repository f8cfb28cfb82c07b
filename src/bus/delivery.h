/*
 * Webhook delivery state: each subscription's checkpoint on the log, the
 * attempts at its current event, and its dead letters. This is not a
 * disposable read model (a rebuild from the log cannot know what a
 * receiver already got), so it has a store of its own, behind an ops
 * struct like the event store's: SQLite (delivery.db beside the log) or
 * PostgreSQL (schema <pg-schema>_bus, shared by every node). Both are one
 * implementation over the read-model database (rm/rm.h), SQL written once.
 *
 * Several nodes: one delivers at a time, the holder of the store's lease
 * (bus_delivery_lease). Every write of state and dead letters checks the
 * lease in its own transaction, so a node that lost it writes nothing
 * more. Orders given on another node (replays) reach the deliverer as
 * requests in the store.
 *
 * Thread model: the delivery thread is the only writer; reads (the admin
 * routes) may come from any thread at once and never wait for it.
 * Ownership: strings returned go into the caller's arena;
 * bus_delivery_close frees the store.
 */
#ifndef WALLEX_BUS_DELIVERY_H
#define WALLEX_BUS_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "bus/bus.h"
#include "es/event.h"

struct bus_delivery_state {
    struct es_position cursor;  /* every event up to here is done with */
    int64_t attempts;           /* failed attempts at the event after it */
    int64_t next_attempt_ms;    /* Unix ms of the next attempt; 0: now */
    int64_t first_attempt_ms;   /* of the current event, 0 before any */
    int64_t failing_since_ms;   /* first failure since the last success; 0: healthy */
    int64_t delivered;          /* successful deliveries, ever */
    char last_error[BUS_ERROR_BYTES];
};

struct bus_dead_letter {
    int64_t id;
    const char *subscription_id;
    const char *event_id;
    struct es_position position;
    int64_t attempts;
    const char *last_error;
    int64_t first_attempt_ms;
    int64_t last_attempt_ms;
    bool replay_requested;
    const char *body; /* the Event JSON as it was sent */
    size_t body_len;
};

typedef int (*bus_dead_letter_fn)(void *ctx, const struct bus_dead_letter *dl);

/* An order for the delivering node, given on another: replay a dead letter
 * (dead_letter_id > 0), or a subscription from a position. */
struct bus_delivery_request {
    int64_t dead_letter_id;
    const char *subscription_id;
    struct es_position from;
};

typedef int (*bus_delivery_request_fn)(void *ctx, const struct bus_delivery_request *r);

struct bus_delivery_config {
    const char *path;   /* sqlite: delivery.db */
    const char *url;    /* postgres: connection string */
    const char *schema; /* postgres: the schema of the delivery tables */
    bool fresh;         /* start empty (a memory store) */
};

struct bus_delivery_store;

struct bus_delivery_ops {
    const char *name;
    int (*open)(const struct bus_delivery_config *config, struct bus_delivery_store **out);
    void (*close)(struct bus_delivery_store *s);
    /* WX_ERR_NOT_FOUND when the subscription has no state yet. */
    int (*state_get)(struct bus_delivery_store *s, const char *subscription_id,
                     struct bus_delivery_state *out);
    int (*state_put)(struct bus_delivery_store *s, const char *subscription_id,
                     const struct bus_delivery_state *state);
    /* The state and every dead letter of a deleted subscription. */
    int (*forget)(struct bus_delivery_store *s, const char *subscription_id);
    /* Records a dead letter and the state that moved past it, at once. */
    int (*dead_add)(struct bus_delivery_store *s, const struct bus_dead_letter *dl,
                    const struct bus_delivery_state *state);
    int (*dead_count)(struct bus_delivery_store *s, const char *subscription_id, int64_t *n_out);
    /* Oldest first, ids after after_id, at most max_rows; subscription_id
     * NULL for all. Without bodies. */
    int (*dead_list)(struct bus_delivery_store *s, const char *subscription_id, int64_t after_id,
                     size_t max_rows, bus_dead_letter_fn fn, void *ctx);
    /* WX_ERR_NOT_FOUND when there is none. With its body. */
    int (*dead_get)(struct bus_delivery_store *s, int64_t id, struct wx_arena *arena,
                    struct bus_dead_letter *out);
    int (*dead_request_replay)(struct bus_delivery_store *s, int64_t id);
    /* The oldest dead letter of a subscription waiting for a replay, with
     * its body; WX_ERR_NOT_FOUND when none. */
    int (*dead_next_replay)(struct bus_delivery_store *s, const char *subscription_id,
                            struct wx_arena *arena, struct bus_dead_letter *out);
    /* After a replay: delivered (the letter goes) or failed once more. */
    int (*dead_replayed)(struct bus_delivery_store *s, int64_t id, bool delivered,
                         const char *last_error, int64_t at_ms);
    /* Takes or keeps the right to deliver; *held_out says whether this
     * node has it. Always held on a store of one node. */
    int (*lease)(struct bus_delivery_store *s, bool *held_out);
    /* Leaves an order for the node that delivers. */
    int (*request_add)(struct bus_delivery_store *s, const struct bus_delivery_request *r);
    /* The waiting orders, oldest first, then forgets them (deliverer only). */
    int (*requests_take)(struct bus_delivery_store *s, bus_delivery_request_fn fn, void *ctx);
};

struct bus_delivery_store {
    const struct bus_delivery_ops *ops;
};

extern const struct bus_delivery_ops bus_delivery_sqlite_ops;
extern const struct bus_delivery_ops bus_delivery_postgres_ops;

/* Checked wrappers (preconditions asserted), callers use only these. */
int bus_delivery_open(const struct bus_delivery_ops *ops, const struct bus_delivery_config *config,
                      struct bus_delivery_store **out);
void bus_delivery_close(struct bus_delivery_store *s);
int bus_delivery_state_get(struct bus_delivery_store *s, const char *subscription_id,
                           struct bus_delivery_state *out);
int bus_delivery_state_put(struct bus_delivery_store *s, const char *subscription_id,
                           const struct bus_delivery_state *state);
int bus_delivery_forget(struct bus_delivery_store *s, const char *subscription_id);
int bus_delivery_dead_add(struct bus_delivery_store *s, const struct bus_dead_letter *dl,
                          const struct bus_delivery_state *state);
int bus_delivery_dead_count(struct bus_delivery_store *s, const char *subscription_id,
                            int64_t *n_out);
int bus_delivery_dead_list(struct bus_delivery_store *s, const char *subscription_id,
                           int64_t after_id, size_t max_rows, bus_dead_letter_fn fn, void *ctx);
int bus_delivery_dead_get(struct bus_delivery_store *s, int64_t id, struct wx_arena *arena,
                          struct bus_dead_letter *out);
int bus_delivery_dead_request_replay(struct bus_delivery_store *s, int64_t id);
int bus_delivery_dead_next_replay(struct bus_delivery_store *s, const char *subscription_id,
                                  struct wx_arena *arena, struct bus_dead_letter *out);
int bus_delivery_dead_replayed(struct bus_delivery_store *s, int64_t id, bool delivered,
                               const char *last_error, int64_t at_ms);
int bus_delivery_lease(struct bus_delivery_store *s, bool *held_out);
int bus_delivery_request_add(struct bus_delivery_store *s, const struct bus_delivery_request *r);
int bus_delivery_requests_take(struct bus_delivery_store *s, bus_delivery_request_fn fn,
                               void *ctx);

#endif
