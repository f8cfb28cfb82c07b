/*
 * The event envelope and the log position. A position is opaque to every
 * caller: SQLite orders the log by rowid, PostgreSQL by (transaction id,
 * position) (DESIGN.md §6), so it is a pair and only stores interpret it.
 * Clients see it as a token string.
 */
#ifndef WALLEX_ES_EVENT_H
#define WALLEX_ES_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/uuid.h"
#include "limits.h"

struct es_position {
    uint64_t hi; /* 0 on SQLite; the transaction id on PostgreSQL */
    uint64_t lo; /* the row's position */
};

#define ES_POSITION_TOKEN_BYTES 48

/* The start of the log: before every event. */
static inline struct es_position es_position_start(void)
{
    return (struct es_position){0, 0};
}

int es_position_cmp(const struct es_position *a, const struct es_position *b);
/* Events between a checkpoint and the head. On SQLite positions are dense
 * rowids, so the difference is that count; across transaction ids (hi) it
 * is unknown and reported as 0. */
uint64_t es_position_lag(const struct es_position *head, const struct es_position *pos);
void es_position_format(const struct es_position *p, char out[ES_POSITION_TOKEN_BYTES]);
/* False when the token is not one es_position_format can produce. */
bool es_position_parse(const char *token, struct es_position *out);

struct es_event {
    char event_id[WX_UUID_STR_BYTES];
    const char *stream_id;
    int64_t version; /* 1-based, assigned by the store on append */
    struct es_position position;
    const char *type;
    /* The shape of `data`: the event type's schema version when it was
     * written. Readers see current data through es_upcast (es/domain.h). */
    int schema_version;
    const char *data; /* JSON object text */
    size_t data_len;
    const char *metadata; /* JSON object text */
    size_t metadata_len;
    int64_t occurred_at_ms;
};

/* The metadata's "actor" (who caused the event: es_command.actor) into
 * out; false when it names none or does not read. */
bool es_event_actor(const struct es_event *event, char out[WX_ID_BYTES_MAX + 1]);

struct wx_buf;
/* The Event resource of API.md: eventId, streamId, version, position, type,
 * schemaVersion, data and metadata (the JSON objects, verbatim). */
void es_event_json(struct wx_buf *b, const struct es_event *event);

/* Called once per event while a store reads; the event is valid only during
 * the call. Return 0 to go on; anything else stops the read and is returned. */
typedef int (*es_event_fn)(void *ctx, const struct es_event *event);

#endif
