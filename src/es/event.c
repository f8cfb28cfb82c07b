/* Position tokens; see event.h. */
#include "es/event.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/jflat.h"

int es_position_cmp(const struct es_position *a, const struct es_position *b)
{
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return 0;
}

/* On SQLite positions are dense rowids, so the difference of the row
 * positions is that count. On PostgreSQL `lo` is one sequence for every
 * transaction, so the difference counts what was appended since, give or
 * take the numbers of rolled-back batches: an estimate, never 0 while
 * behind. */
uint64_t es_position_lag(const struct es_position *head, const struct es_position *pos)
{
    if (es_position_cmp(head, pos) <= 0)
        return 0;
    return head->lo > pos->lo ? head->lo - pos->lo : 1;
}

void es_position_format(const struct es_position *p, char out[ES_POSITION_TOKEN_BYTES])
{
    if (p->hi == 0)
        snprintf(out, ES_POSITION_TOKEN_BYTES, "%" PRIu64, p->lo);
    else
        snprintf(out, ES_POSITION_TOKEN_BYTES, "%" PRIu64 ".%" PRIu64, p->hi, p->lo);
}

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20 || (s[0] == '0' && len > 1))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
            return false;
    }
    *out = v;
    return true;
}

bool es_position_parse(const char *token, struct es_position *out)
{
    const char *dot = strchr(token, '.');
    struct es_position p = {0, 0};
    if (dot == NULL) {
        if (!parse_u64(token, strlen(token), &p.lo))
            return false;
    } else {
        if (!parse_u64(token, (size_t)(dot - token), &p.hi) || p.hi == 0 ||
            !parse_u64(dot + 1, strlen(dot + 1), &p.lo))
            return false;
    }
    *out = p;
    return true;
}

void es_event_json(struct wx_buf *b, const struct es_event *ev)
{
    char pos[ES_POSITION_TOKEN_BYTES];
    es_position_format(&ev->position, pos);
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_key(b, "eventId", &first);
    wx_buf_json_str(b, ev->event_id);
    wx_buf_json_key(b, "streamId", &first);
    wx_buf_json_str(b, ev->stream_id);
    wx_buf_json_key(b, "version", &first);
    wx_buf_add_i64(b, ev->version);
    wx_buf_json_key(b, "position", &first);
    wx_buf_json_str(b, pos);
    wx_buf_json_key(b, "type", &first);
    wx_buf_json_str(b, ev->type);
    wx_buf_json_key(b, "schemaVersion", &first);
    wx_buf_add_i64(b, ev->schema_version);
    /* Stored data and metadata are JSON objects the writer produced. */
    wx_buf_json_key(b, "data", &first);
    wx_buf_add(b, ev->data, ev->data_len);
    wx_buf_json_key(b, "metadata", &first);
    wx_buf_add(b, ev->metadata, ev->metadata_len);
    wx_buf_addc(b, '}');
}

/* Any metadata: the strict reader. */
static bool actor_parsed(const struct es_event *event, char out[WX_ID_BYTES_MAX + 1])
{
    char text[WX_EVENT_METADATA_BYTES_MAX + 1];
    struct wx_jflat fields;
    if (event->metadata_len >= sizeof(text) ||
        wx_jflat_parse(event->metadata, event->metadata_len, text, sizeof(text), &fields) != 0)
        return false;
    const char *actor = wx_jflat_str(&fields, "actor", WX_ID_BYTES_MAX);
    if (actor == NULL)
        return false;
    memcpy(out, actor, strlen(actor) + 1);
    return true;
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == ':' || c == '-';
}

/* The projector reads the actor of every event it applies: parsing the
 * whole metadata for it cost a microsecond an event. The writer puts
 * "actor" after other keys, and inside a JSON string every quote is
 * escaped, so a comma followed by a raw quote is always between members:
 * ,"actor":" appears only as that key. Its value is an id, which JSON
 * writes as it is. Anything else goes to the strict reader. */
bool es_event_actor(const struct es_event *event, char out[WX_ID_BYTES_MAX + 1])
{
    static const char key[] = ",\"actor\":\"";
    const char *m = event->metadata;
    size_t len = event->metadata_len;
    if (m == NULL)
        return false;
    const char *at = memmem(m, len, key, sizeof(key) - 1);
    if (at == NULL) /* none, unless some other writer put it first */
        return memmem(m, len, "\"actor\"", 7) != NULL && actor_parsed(event, out);
    const char *v = at + sizeof(key) - 1, *end = m + len;
    size_t n = 0;
    while (v + n < end && n <= WX_ID_BYTES_MAX && id_char(v[n]))
        n++;
    if (n == 0 || n > WX_ID_BYTES_MAX || v + n == end || v[n] != '"')
        return actor_parsed(event, out);
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}
