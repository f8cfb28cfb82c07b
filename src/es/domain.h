/*
 * Domains plug into the core here (DESIGN.md §11). A domain is one folder
 * under src/ that fills one `struct es_domain`: its
 * stream categories and aggregate types, its event types with their schema
 * versions and upcasters, its outcome codes, the codec and read-model
 * consumers of its events, its HTTP routes and its recovery checks. `main`
 * composes a list of domains; the core (es, store, proj, http) never names
 * one.
 *
 * The registry is filled once at start-up (es_domains_register), before
 * any thread reads it, and read without locks afterwards.
 */
#ifndef WALLEX_ES_DOMAIN_H
#define WALLEX_ES_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "es/aggregate.h"
#include "es/event.h"
#include "es/outcome.h"

struct http_route;
struct es_consumer;
struct es_event_codec;
struct es_projector;

/* Turns the data of one schema version of an event type into the next
 * version's (v -> v + 1), appending it to out. WX_ERR_CORRUPT for data it
 * cannot read. Pure: the same input always gives the same output. */
typedef int (*es_upcast_fn)(const struct es_event *event, struct wx_buf *out);

struct es_event_type {
    const char *name;   /* "ThingCreated" */
    int schema_version; /* what new events are written with; 1 and up */
    /* upcast[v - 1] turns version v into v + 1, for v < schema_version;
     * NULL when schema_version is 1. */
    const es_upcast_fn *upcast;
};

/* What a domain's drift check reports into: the differences it found, as
 * JSON objects, of which at most WX_DRIFT_REPORT_MAX are listed. */
struct es_drift_report {
    struct wx_buf *items; /* listed differences, comma-separated objects */
    size_t checked;       /* aggregates compared, over every domain */
    size_t drifted;       /* differences found, listed or not */
    size_t listed;
};

/* Adds one difference (a JSON object); listed while there is room. */
void es_drift_report_add(struct es_drift_report *r, const char *object_json, size_t len);
/* The usual difference: {"<id_key>": id, "model", "field", "readModel",
 * "events"}, the last two as text. WX_ERR_NOMEM when it could not be
 * built. */
int es_drift_report_diff(struct es_drift_report *r, const char *id_key, const char *id,
                         const char *model, const char *field, const char *read_model,
                         const char *events);

struct es_domain {
    const char *name; /* also the key of its part of reports */
    /* The aggregate types it owns; each names the stream category it uses.
     * NULL-terminated. */
    const struct es_aggregate_type *const *aggregates;
    /* Every event type it writes. NULL-terminated. */
    const struct es_event_type *const *event_types;
    /* Its outcome table (es/outcome.h). */
    const struct es_outcome *outcomes;
    size_t outcomes_len;
    /* Its read models, fed by the projector: each consumer says which
     * categories it reads and which codec decodes them. NULL-terminated;
     * NULL for none. */
    const struct es_consumer *const *consumers;
    /* Its routes, added to the server's table as they are; the table ends
     * with an entry whose method is NULL. */
    const struct http_route *routes;
    /* Recovery (NULL when it has nothing to check). drift compares its
     * read models with a fold of the log; verify checks its invariants
     * after the read side caught up, appending one JSON object (its part
     * of the report) and the violations it found (JSON strings,
     * comma-separated) to `violations`, counting them in *violations_len. */
    int (*drift)(struct es_projector *p, struct es_drift_report *report);
    int (*verify)(struct es_projector *p, struct wx_buf *report, struct wx_buf *violations,
                  size_t *violations_len);
};

/* One violation for a domain's verify: `text` as a JSON string appended
 * to `violations`, comma-separated, counted in *violations_len. */
void es_verify_violation(struct wx_buf *violations, size_t *violations_len, const char *text);

/* Registers the domains of this process: their outcome tables and event
 * types. WX_ERR_CONFLICT when two claim the same category, event type or
 * outcome code; WX_ERR_FULL past WX_DOMAINS_MAX. */
int es_domains_register(const struct es_domain *const *domains, size_t len);
/* Forgets every domain (tests). */
void es_domains_reset(void);
size_t es_domains_len(void);
const struct es_domain *es_domain_at(size_t i);

/* The registered event type of that name, or NULL. */
const struct es_event_type *es_event_type_find(const char *name);
/* The aggregate type whose category starts this stream id ("<category>:<id>"),
 * or NULL. */
const struct es_aggregate_type *es_aggregate_for_stream(const char *stream_id);

/* Turns a stored event into the current schema of its type: *out is *in
 * when it is current already (or its type is unknown here), otherwise a
 * copy whose data lives in scratch (valid until scratch changes).
 * WX_ERR_CORRUPT for a version newer than this build knows, or data an
 * upcaster cannot read. */
int es_upcast(const struct es_event *in, struct es_event *out, struct wx_buf *scratch);

/* True when a stream id has this category ("cat" for "cat:1"). */
bool es_stream_in_category(const char *stream_id, const char *category);

#endif
