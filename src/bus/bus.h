/*
 * The event bus (DESIGN.md §4, §13): the log carried out of the process to
 * two kinds of outside consumers, each following the log from a checkpoint
 * of its own on a thread of its own, so neither ever slows a command:
 *
 *   relay.c     every event into Redis Streams; the entry ID is the log
 *               position, so Redis itself refuses a re-publish and the
 *               stream's last ID is the checkpoint (exactly-once effect).
 *   webhook.c   every subscription's events POSTed to its URL, signed
 *               (Standard Webhooks), retried on a schedule, then
 *               dead-lettered; at least once, deduplicated by webhook-id.
 *
 * Subscriptions themselves are a small domain (subscription.h) whose
 * events are in the log like any other; delivery state (checkpoints,
 * attempts, dead letters) lives in delivery.db behind delivery.h.
 *
 * This header holds the bus's own bounds and the composition main uses.
 * Ownership: main owns the bus. bus_stop stops the delivery thread (the
 * one that submits commands) before the writer stops; bus_free stops the
 * relay and frees everything after the writer has stopped (its on_commit
 * wakes the bus until then).
 */
#ifndef WALLEX_BUS_BUS_H
#define WALLEX_BUS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "es/event.h"
#include "limits.h"

/* ---- the bus's bounds (module-only; the rest are in limits.h) ---- */

/* Events one relay round reads from the log and pipelines to Redis before
 * it reads the replies. Measured (bench/run, "relay"): 1000 reached the
 * goal with room; past it the gain is small and a round's reply buffer
 * grows (about 1 KiB of command per event). */
#define BUS_RELAY_BATCH_EVENTS_MAX 1000
/* A round's XADD commands stop growing past this many bytes (the events
 * after it go in the next round; one event alone may pass it). */
#define BUS_RELAY_ROUND_BYTES_MAX (1024 * 1024)
/* Streams the relay writes to: one, or one per stream category. */
#define BUS_RELAY_STREAMS_MAX 32
/* The stream name, after "{category}" is filled in. */
#define BUS_RELAY_STREAM_NAME_BYTES_MAX 128
/* Redis answers within these or the relay drops the connection and
 * reconnects with backoff; only the relay's own thread ever waits. */
#define BUS_REDIS_CONNECT_TIMEOUT_MS 2000
#define BUS_REDIS_COMMAND_TIMEOUT_MS 5000
/* An idle relay PINGs Redis this often, so a dead Redis shows in
 * /admin/relays (and /readyz with --redis-required) before an event does. */
#define BUS_REDIS_PING_MS 1000
/* Reconnect backoff: first wait, doubling up to the maximum. */
#define BUS_RETRY_MS_MIN 100
#define BUS_RETRY_MS_MAX 5000
/* With nothing new and no wake-up, the relay and the deliveries look at
 * the log this often anyway (a missed wake-up costs at most this). */
#define BUS_IDLE_MS 200
/* Several nodes on PostgreSQL: the relay and the deliveries each run on
 * one node, the holder of a lease; the others try to take it this often,
 * so this bounds how long publishing and delivering stand still after
 * their node died (its sessions end at once on kill -9). */
#define BUS_LEASE_MS 250
/* A redis:// URL, a password in it, and a Redis error kept for status. */
#define BUS_REDIS_URL_BYTES_MAX 512
#define BUS_ERROR_BYTES 256

/* Subscriptions one delivery thread follows; past it the newest wait (a
 * warning says so). Each costs one log scan per wake-up when behind. */
#define BUS_SUBSCRIPTIONS_MAX 1024
/* A subscription's URL and its event types (the JSON array as stored). */
#define BUS_URL_BYTES_MAX 2048
#define BUS_EVENT_TYPES_MAX 32
#define BUS_EVENT_TYPE_BYTES_MAX 64
#define BUS_EVENT_TYPES_JSON_BYTES_MAX (BUS_EVENT_TYPES_MAX * (BUS_EVENT_TYPE_BYTES_MAX + 3) + 2)
/* Random key bytes of a signing secret: Standard Webhooks asks for 24 to
 * 64; 32 are SHA-256's block-sized strength. The secret is "whsec_" and
 * their base64 (44 characters). */
#define BUS_SECRET_KEY_BYTES 32
#define BUS_SECRET_BYTES_MAX 64
/* Requests in flight over every subscription (one at most per
 * subscription, so order holds): past it, subscriptions wait their turn.
 * Idle keep-alive connections to receivers are capped the same. */
#define BUS_WEBHOOK_INFLIGHT_MAX 256
/* Events one subscription's scan reads past before it stops for this
 * round (events of other types it does not want). */
#define BUS_WEBHOOK_SCAN_EVENTS_MAX 2000
/* Events one subscription holds read ahead of its deliveries (one log
 * read serves that many), and their bytes: past either it reads no more
 * until they are delivered. */
#define BUS_WEBHOOK_PREFETCH_EVENTS 16
#define BUS_WEBHOOK_PREFETCH_BYTES (64 * 1024)
/* A successful delivery's checkpoint is saved within this; after a crash
 * at most this much of deliveries is sent again (at least once). Saving
 * each one cost a delivery.db commit per request. Failures and dead
 * letters are saved at once. */
#define BUS_WEBHOOK_CHECKPOINT_MS 100
/* Subscriptions are read from the read model at most this often, however
 * often commits wake the thread; it bounds the delay a pause or a resume
 * adds, not the deliveries. While no subscription exists commits do not
 * wake the thread, and the first one is found within BUS_IDLE_MS. */
#define BUS_WEBHOOK_CATALOG_MS 20
/* Retry schedule entries (API.md: 5s,5m,30m,2h,5h,10h,10h is seven). */
#define BUS_RETRY_SCHEDULE_MAX 16
/* The longest a receiver gets to answer, whatever is configured. */
#define BUS_WEBHOOK_TIMEOUT_MS_MAX (5 * 60 * 1000)
/* Dead letters one subscription may hold; at the bound the subscription is
 * disabled instead of dropping any (resume it after replaying or deleting
 * some). */
#define BUS_DEAD_LETTERS_PER_SUBSCRIPTION_MAX 10000
/* Replay requests and other orders from HTTP threads waiting for the
 * delivery thread; past it the route answers 503 overloaded. */
#define BUS_WEBHOOK_CONTROL_MAX 256
/* A receiver's answer is read and dropped; its first bytes are kept for
 * the dead letter's lastError. */
#define BUS_RESPONSE_SNIPPET_BYTES 96

/* Defaults of the flags (API.md, Event bus). */
#define BUS_REDIS_STREAM_DEFAULT "wallex:events"
#define BUS_RETRY_SCHEDULE_DEFAULT "5s,5m,30m,2h,5h,10h,10h"
#define BUS_WEBHOOK_TIMEOUT_DEFAULT "15s"
/* Svix disables an endpoint after five days of failures. */
#define BUS_DISABLE_AFTER_DEFAULT "5d"

/* The relay and delivery threads run at this nice value (Linux: per
 * thread): they catch up with whatever CPU commands leave, and on a
 * machine short of cores the writer and the HTTP threads come first.
 * Measured on 2 cores at full mixed load (bench/bus_threads, 2-6
 * rounds): at nice 10 the bus still took its share (relay + webhook /
 * off 0.82-0.85, the relay's publish delay p99 <= 100-500 ms); as
 * SCHED_IDLE 0.86-0.89; at 19, 0.93-0.95, the delay p99 <= 200-1000 ms
 * while the load lasts. Below saturation both keep
 * up within milliseconds: the lowest priority costs lag at a saturated
 * machine, where commands must come first. What else it costs there:
 * - a webhook response may wait to be read past a short
 *   --webhook-timeout: counted as failed, retried (at least once);
 * - a log read of the relay or a scan holds its SQLite read transaction
 *   longer, which holds back the WAL checkpoint meanwhile;
 * - on --store memory (tests, trials) the store's one lock is held
 *   across a read's callbacks, so the writer can wait behind a starved
 *   bus thread: priority inversion, bounded by one read. */
#define BUS_THREAD_NICE 19

/* Lowers the calling thread's priority to BUS_THREAD_NICE (best effort). */
void bus_thread_background(void);

/* ---- durations and the retry schedule (schedule.c) ---- */

/* "250ms", "5s", "5m", "2h", "5d" into milliseconds (> 0, at most
 * max_ms). False for anything else. */
bool bus_duration_parse(const char *text, int64_t max_ms, int64_t *ms_out);
/* "5s,5m,30m" into delays (each at most a week); false for an empty or
 * malformed list or more than BUS_RETRY_SCHEDULE_MAX entries. */
bool bus_schedule_parse(const char *text, int64_t delays_ms[BUS_RETRY_SCHEDULE_MAX],
                        size_t *len_out);

/* ---- composition (main) ---- */

struct es_store;
struct es_writer;
struct es_projector;
struct bus;
struct bus_relay;
struct bus_webhook;
struct bus_delivery_store;

struct bus_config {
    struct es_store *store;
    struct es_projector *projector;
    struct es_writer *writer;
    const char *data_dir;
    bool memory;           /* a memory store: delivery state starts empty too */
    /* PostgreSQL: the delivery state in schema <pg_schema>_bus of this
     * database, shared by every node; NULL: delivery.db in data_dir. */
    const char *pg_url;
    const char *pg_schema;
    const char *redis_url; /* NULL: no relay */
    const char *redis_stream;
    int64_t redis_maxlen; /* 0: no trimming */
    bool redis_required;  /* /readyz fails while Redis cannot be reached */
    int64_t retry_ms[BUS_RETRY_SCHEDULE_MAX];
    size_t retry_len;
    int64_t webhook_timeout_ms;
    int64_t disable_after_ms;
    bool deny_private;
};

/* Opens the delivery state and starts the relay (with a Redis URL) and
 * the delivery thread; on PostgreSQL each runs on one node at a time. */
int bus_start(const struct bus_config *config, struct bus **bus_out);
/* Stops the delivery thread, which submits to the writer; call before the
 * writer stops. The bus stays valid for bus_notify. Accepts NULL. */
void bus_stop(struct bus *bus);
/* Stops the relay and frees the bus, once the writer stopped. Accepts NULL. */
void bus_free(struct bus *bus);
/* The writer committed: wake the relay and the deliveries. Any thread,
 * never blocks. */
void bus_notify(void *bus);

struct bus_relay *bus_relay_of(struct bus *bus);       /* NULL without --redis */
struct bus_webhook *bus_webhook_of(struct bus *bus);
struct bus_delivery_store *bus_delivery_of(struct bus *bus);

/* For /readyz: false with a reason when a required relay is down. Accepts
 * NULL (no bus: ready). */
bool bus_ready(struct bus *bus, const char **why_out);
/* Appends the bus's metrics (Prometheus text). Accepts NULL. */
void bus_metrics(struct bus *bus, const struct es_position *head, struct wx_buf *b);

#endif
