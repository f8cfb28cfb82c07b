/*
 * The Redis Streams relay: one thread that appends every event of the log
 * to a Redis stream (or one per stream category) with XADD, the entry ID
 * being the event's position "<hi>-<lo>". Redis keeps a stream's IDs
 * strictly increasing and refuses an XADD at or below its top, so
 * publishing an event twice is impossible: after a crash the relay reads
 * the stream's last ID, which is its checkpoint, and goes on from there;
 * an XADD that raced with the crash is refused and counted as skipped.
 *
 * Redis down or slow never reaches a command: only this thread talks to
 * Redis, with timeouts, and retries with backoff. After a reconnect it
 * reads the checkpoint again, so a Redis that lost its data gets the log
 * again from the start. While the relay is sure a stream exists it adds
 * with NOMKSTREAM, so a stream that vanishes under a live connection
 * (FLUSHALL, DEL) is noticed at once instead of being re-created with a
 * gap.
 *
 * Several nodes run one relay between them (a lease; the others stand by):
 * its checkpoint is the stream itself, so the one taking over goes on
 * from the stream's last ID, and an XADD both might send is refused by
 * Redis once.
 *
 * Ownership: bus.c starts and stops it; bus_relay_stop frees it.
 */
#ifndef WALLEX_BUS_RELAY_H
#define WALLEX_BUS_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "bus/bus.h"
#include "es/event.h"

struct es_store;
struct rm_db;
struct bus_relay;

struct bus_relay_config {
    struct es_store *store;
    const char *url;    /* redis://[:password@]host[:port][/db] */
    const char *stream; /* "wallex:events"; "{category}" in it: one per category */
    int64_t maxlen;     /* XADD MAXLEN ~ this; 0: never trim */
    /* Several nodes: the relay publishes only while it holds the lease
     * "relay" in this database (on a connection of its own); the others
     * stand by. NULL: one node, always publishing. */
    struct rm_db *lease_db;
};

/* Parses a redis:// URL. False when malformed. */
struct bus_redis_address {
    char host[256];
    int port;
    int db;
    char user[64];      /* Redis 6 ACL user, "" for none */
    char password[128]; /* "" for none */
};
bool bus_redis_url_parse(const char *url, struct bus_redis_address *out);

/* WX_ERR_INVALID for a bad URL or stream name. */
int bus_relay_start(const struct bus_relay_config *config, struct bus_relay **out);
/* Stops the thread (waiting at most for one Redis timeout) and frees it.
 * Accepts NULL. */
void bus_relay_stop(struct bus_relay *r);
void bus_relay_notify(struct bus_relay *r);

struct bus_relay_status {
    const char *name;   /* the stream (or its template) */
    struct es_position position; /* the last event known to be in Redis */
    /* "running", "connecting", "failing", "ahead", or "standby" (another
     * node holds the relay's lease) */
    const char *status;
    const char *last_error; /* NULL when none */
    bool connected;
    uint64_t published;  /* entries added */
    uint64_t skipped;    /* XADDs Redis refused as already there */
    uint64_t reconnects;
    uint64_t republishes; /* times a stream was found lost and sent again */
};
/* A copy of the relay's status; strings in the arena. */
int bus_relay_status(struct bus_relay *r, struct wx_arena *arena, struct bus_relay_status *out);
/* Prometheus text: position, lag, state, counters, publish delay. */
void bus_relay_metrics(struct bus_relay *r, const struct es_position *head, struct wx_buf *b);

#endif
