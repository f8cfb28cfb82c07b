/*
 * Webhook delivery: one thread drives every subscription's deliveries
 * through libcurl's multi interface (no thread per endpoint). Each
 * subscription follows the log from its own checkpoint (delivery.h), one
 * request in flight at a time so its receiver sees its events in log
 * order; a slow receiver holds up only itself (up to
 * BUS_WEBHOOK_INFLIGHT_MAX of them at once).
 *
 * A delivery is a POST of the Event JSON signed per Standard Webhooks
 * (sign.h); a 2xx within the timeout is success and moves the checkpoint.
 * Anything else is retried after the schedule's delays; after the last,
 * the event becomes a dead letter and the subscription moves on. The
 * checkpoint moves only after the receiver's 2xx, so a crash in between
 * sends that event again: at least once, receivers dedupe by webhook-id
 * (the event id). A subscription failing for disable_after is disabled
 * (a SubscriptionDisabled event) until resumed.
 *
 * The thread knows subscriptions from the "subscriptions" read model and
 * delivers only up to that model's checkpoint, so it never meets an event
 * of a subscription it does not know yet.
 *
 * Several nodes: the thread delivers only while its node holds the
 * delivery store's lease (tried every BUS_LEASE_MS); on taking it, it
 * starts from the state the last deliverer saved. Orders given to a node
 * that does not deliver are left in the store for the one that does.
 *
 * Ownership: bus.c owns it; bus_webhook_stop joins, bus_webhook_free frees.
 */
#ifndef WALLEX_BUS_WEBHOOK_H
#define WALLEX_BUS_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "bus/bus.h"
#include "es/event.h"

struct es_store;
struct es_projector;
struct es_writer;
struct bus_delivery_store;
struct bus_webhook;

struct bus_webhook_config {
    struct es_store *store;
    struct es_projector *projector;
    struct es_writer *writer; /* for SubscriptionDisabled */
    struct bus_delivery_store *delivery;
    const int64_t *retry_ms; /* delays between attempts; copied */
    size_t retry_len;
    int64_t timeout_ms;
    int64_t disable_after_ms;
    bool deny_private;
    /* Several nodes share the delivery state: deliver only while holding
     * its lease, and take orders given on other nodes from the store. */
    bool shared;
};

int bus_webhook_start(const struct bus_webhook_config *config, struct bus_webhook **out);
/* Stops the thread (requests in flight are abandoned: their events go
 * again after a restart). Accepts NULL. */
void bus_webhook_stop(struct bus_webhook *w);
/* Frees it; after bus_webhook_stop. Accepts NULL. */
void bus_webhook_free(struct bus_webhook *w);
/* New events were committed. Any thread; never blocks. */
void bus_webhook_notify(struct bus_webhook *w);
bool bus_webhook_deny_private(const struct bus_webhook *w);

/* Orders from HTTP threads, carried out by the delivery thread. 0, or
 * WX_ERR_FULL at BUS_WEBHOOK_CONTROL_MAX waiting. */
int bus_webhook_replay_dead_letter(struct bus_webhook *w, int64_t dead_letter_id);
/* Delivers the subscription's events again from `from` (inclusive). */
int bus_webhook_replay_from(struct bus_webhook *w, const char *subscription_id,
                            const struct es_position *from);

void bus_webhook_metrics(struct bus_webhook *w, struct wx_buf *b);

/* What a live view shows of the deliveries (ops' /admin/stats); the
 * counters are the metrics' own, the rest is published by the delivery
 * thread once per round (at least every BUS_IDLE_MS). Any thread. */
struct bus_webhook_stats {
    uint64_t subscriptions; /* followed by the delivery thread */
    uint64_t in_flight;     /* requests */
    uint64_t retrying;      /* subscriptions waiting to retry an event */
    uint64_t delivered, failed, dead_lettered, replayed; /* since the start */
    uint64_t dead_letters;  /* in the dead-letter queue now */
    bool slowest_known;     /* false without an active subscription */
    struct es_position slowest; /* the cursor of the active one furthest behind */
    /* This node delivers (holds the lease). Several nodes on one store:
     * the others stand by and count nothing of the subscriptions. */
    bool delivers_here;
};
void bus_webhook_stats(struct bus_webhook *w, struct bus_webhook_stats *out);

#endif
