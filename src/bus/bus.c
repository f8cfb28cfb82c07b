/* The bus's composition: the delivery state, the relay and the
 * deliveries; see bus.h. */
#include "bus/bus.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/err.h"
#include "bus/delivery.h"
#include "bus/relay.h"
#include "bus/webhook.h"
#include "obs/log.h"
#include "proj/projector.h"

/* The schema of the delivery state on PostgreSQL, beside the log's: not
 * the read side's, which may be dropped and rebuilt at will. */
#define BUS_SCHEMA_SUFFIX "_bus"

struct bus {
    struct bus_delivery_store *delivery;
    struct bus_relay *relay;
    struct bus_webhook *webhook;
    bool redis_required;
};

void bus_thread_background(void)
{
    /* On Linux a nice value belongs to a thread, named by its tid. */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), BUS_THREAD_NICE) != 0)
        wx_logf(WX_LOG_DEBUG, "bus: could not lower a thread's priority");
}

static int start_relay(const struct bus_config *c, struct bus *bus)
{
    struct bus_relay_config rc = {
        .store = c->store,
        .url = c->redis_url,
        .stream = c->redis_stream ? c->redis_stream : BUS_REDIS_STREAM_DEFAULT,
        .maxlen = c->redis_maxlen,
        .lease_db = c->pg_url != NULL ? es_projector_rm(c->projector) : NULL,
    };
    int err = bus_relay_start(&rc, &bus->relay);
    if (err)
        wx_logf(WX_LOG_ERROR, "relay: cannot start (--redis %s, --redis-stream %s): %s",
                c->redis_url, rc.stream, wx_strerror(err));
    return err;
}

int bus_start(const struct bus_config *c, struct bus **bus_out)
{
    struct bus *bus = calloc(1, sizeof(*bus));
    if (bus == NULL)
        return WX_ERR_NOMEM;
    bus->redis_required = c->redis_url != NULL && c->redis_required;
    char path[4096], schema[128];
    snprintf(path, sizeof(path), "%s/%s", c->data_dir,
             c->memory ? "delivery-memory.db" : "delivery.db");
    snprintf(schema, sizeof(schema), "%s" BUS_SCHEMA_SUFFIX, c->pg_schema ? c->pg_schema : "");
    struct bus_delivery_config dc = {.fresh = c->memory};
    if (c->pg_url != NULL) {
        dc.url = c->pg_url;
        dc.schema = schema;
    } else {
        dc.path = path;
    }
    int err = bus_delivery_open(c->pg_url ? &bus_delivery_postgres_ops : &bus_delivery_sqlite_ops,
                                &dc, &bus->delivery);
    if (err)
        wx_logf(WX_LOG_ERROR, "webhooks: cannot open %s: %s", c->pg_url ? schema : path,
                wx_strerror(err));
    struct bus_webhook_config wc = {
        .store = c->store,
        .projector = c->projector,
        .writer = c->writer,
        .delivery = bus->delivery,
        .retry_ms = c->retry_ms,
        .retry_len = c->retry_len,
        .timeout_ms = c->webhook_timeout_ms,
        .disable_after_ms = c->disable_after_ms,
        .deny_private = c->deny_private,
        .shared = c->pg_url != NULL,
    };
    if (!err)
        err = bus_webhook_start(&wc, &bus->webhook);
    if (!err && c->redis_url != NULL)
        err = start_relay(c, bus);
    if (err) {
        bus_stop(bus);
        bus_free(bus);
        return err;
    }
    *bus_out = bus;
    return 0;
}

void bus_stop(struct bus *bus)
{
    if (bus != NULL)
        bus_webhook_stop(bus->webhook);
}

void bus_free(struct bus *bus)
{
    if (bus == NULL)
        return;
    bus_relay_stop(bus->relay);
    bus_webhook_stop(bus->webhook);
    bus_webhook_free(bus->webhook);
    bus_delivery_close(bus->delivery);
    free(bus);
}

void bus_notify(void *arg)
{
    struct bus *bus = arg;
    if (bus->relay != NULL)
        bus_relay_notify(bus->relay);
    if (bus->webhook != NULL)
        bus_webhook_notify(bus->webhook);
}

struct bus_relay *bus_relay_of(struct bus *bus)
{
    return bus ? bus->relay : NULL;
}

struct bus_webhook *bus_webhook_of(struct bus *bus)
{
    return bus ? bus->webhook : NULL;
}

struct bus_delivery_store *bus_delivery_of(struct bus *bus)
{
    return bus ? bus->delivery : NULL;
}

bool bus_ready(struct bus *bus, const char **why_out)
{
    if (bus == NULL || !bus->redis_required || bus->relay == NULL)
        return true;
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct bus_relay_status s;
    bus_relay_status(bus->relay, &arena, &s);
    /* Standing by: another node holds the relay's lease and publishes. */
    bool up = (s.connected && strcmp(s.status, "running") == 0) ||
              strcmp(s.status, "standby") == 0;
    wx_arena_release(&arena);
    *why_out = "the Redis relay is not connected; see /admin/relays";
    return up;
}

void bus_metrics(struct bus *bus, const struct es_position *head, struct wx_buf *b)
{
    if (bus == NULL)
        return;
    if (bus->relay != NULL)
        bus_relay_metrics(bus->relay, head, b);
    if (bus->webhook != NULL)
        bus_webhook_metrics(bus->webhook, b);
}
