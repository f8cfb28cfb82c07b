/*
 * The tree stream, "files:tree" (docs/architecture.md, "Concurrency: one
 * node, and several on PostgreSQL"). On a shared store every command that
 * changes the tree index also appends one TreeChanged event to it, naming
 * the item event it goes with ({"itemId", "itemVersion"}). Its versions
 * are then one order of every node's tree changes, and the store's
 * per-stream version check makes two nodes' changes conflict: a command
 * decided on an index that missed another node's change loses its race
 * and is decided again, after the index has caught up by reading the
 * stream's new entries and the item events they name (catch_up below).
 * Every files command reads the stream, so on a shared store even a
 * rejection made on a stale index is decided again (es_writer_config's
 * check_reads).
 *
 * One node (SQLite, memory) writes no TreeChanged: its writer decides
 * every command in turn against the only index.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/id.h"
#include "base/jflat.h"
#include "es/writer.h"
#include "files/files.h"
#include "files/service.h"
#include "obs/log.h"
#include "store/store.h"

const struct es_event_type files_tree_changed = {"TreeChanged", 1, NULL};

static void changed_encode(struct wx_buf *b, const char *item_id, int64_t item_version)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_key(b, "itemId", &first);
    wx_buf_json_str(b, item_id);
    wx_buf_json_key(b, "itemVersion", &first);
    wx_buf_add_i64(b, item_version);
    wx_buf_addc(b, '}');
}

/* The item event a TreeChanged names: its id into item_id. */
static int changed_decode(const struct es_event *ev, char item_id[WX_ID_BYTES_MAX + 1],
                          int64_t *item_version)
{
    char text[FILES_TREE_CHANGED_BYTES_MAX + 1];
    struct wx_jflat o;
    if (strcmp(ev->type, files_tree_changed.name) != 0 ||
        ev->data_len > FILES_TREE_CHANGED_BYTES_MAX ||
        wx_jflat_parse(ev->data, ev->data_len, text, sizeof(text), &o) != 0)
        return WX_ERR_CORRUPT;
    const char *id = wx_jflat_str(&o, "itemId", WX_ID_BYTES_MAX);
    if (id == NULL || !wx_id_ok(id) || !wx_jflat_i64(&o, "itemVersion", item_version) ||
        *item_version < 1)
        return WX_ERR_CORRUPT;
    memcpy(item_id, id, strlen(id) + 1);
    return 0;
}

/* ---- the aggregate: how many tree changes there were ---- */

struct tree_log {
    int64_t changes;
};

static void log_init(void *state)
{
    memset(state, 0, sizeof(struct tree_log));
}

static int log_evolve(void *state, const struct es_event *ev)
{
    char id[WX_ID_BYTES_MAX + 1];
    int64_t version;
    int err = changed_decode(ev, id, &version);
    if (!err)
        ((struct tree_log *)state)->changes++;
    return err;
}

/* A snapshot, so that a cold load (a restart, a cache cleared after a
 * failed commit) reads a few events, not every tree change ever made. */
static void log_encode(const void *state, struct wx_buf *out)
{
    wx_buf_adds(out, "{\"changes\":");
    wx_buf_add_i64(out, ((const struct tree_log *)state)->changes);
    wx_buf_addc(out, '}');
}

static int log_decode(const char *data, size_t len, void *state)
{
    char text[FILES_TREE_SNAPSHOT_BYTES_MAX + 1];
    struct wx_jflat o;
    struct tree_log *s = state;
    log_init(s);
    if (len >= sizeof(text) || wx_jflat_parse(data, len, text, sizeof(text), &o) != 0 ||
        !wx_jflat_i64(&o, "changes", &s->changes) || s->changes < 0)
        return WX_ERR_CORRUPT;
    return 0;
}

const struct es_aggregate_type files_tree_log_aggregate = {
    .name = "tree",
    .category = FILES_TREE_CATEGORY,
    .state_bytes_max = sizeof(struct tree_log),
    .init = log_init,
    .evolve_stored = log_evolve,
    .encode = log_encode,
    .decode = log_decode,
    .snapshot_bytes_max = FILES_TREE_SNAPSHOT_BYTES_MAX,
};

/* ---- catching up with other nodes' changes ---- */

/* One entry of the tree stream, and the item event it names once read:
 * its parts kept as offsets into the chunk's bytes (struct chunk). */
struct ref {
    char item_id[WX_ID_BYTES_MAX + 1];
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    int64_t item_version;
    bool got;
    int schema_version;
    size_t type_at, data_at, data_len, meta_at, meta_len;
};

struct chunk {
    struct ref *at;
    size_t len, cap;
    int64_t next_version; /* of the tree stream: each read must be the next */
    struct wx_buf bytes;  /* the item events' type, data and metadata */
};

static int ref_event(void *arg, const struct es_event *ev)
{
    struct chunk *c = arg;
    if (ev->version != c->next_version || c->len == c->cap)
        return WX_ERR_CORRUPT;
    c->next_version++;
    struct ref *x = &c->at[c->len];
    memset(x, 0, sizeof(*x));
    int err = changed_decode(ev, x->item_id, &x->item_version);
    if (!err) {
        files_stream_id(x->item_id, x->stream);
        c->len++;
    }
    return err;
}

/* An event of one of the chunk's item streams: kept if an entry names it
 * (a stream read from an older version brings others too). */
static int item_event(void *arg, const struct es_event *ev)
{
    struct chunk *c = arg;
    for (size_t i = 0; i < c->len; i++) {
        struct ref *x = &c->at[i];
        if (x->got || x->item_version != ev->version || strcmp(x->stream, ev->stream_id) != 0)
            continue;
        x->got = true;
        x->schema_version = ev->schema_version;
        x->type_at = c->bytes.len;
        wx_buf_add(&c->bytes, ev->type, strlen(ev->type) + 1);
        x->data_at = c->bytes.len;
        x->data_len = ev->data_len;
        if (ev->data_len > 0)
            wx_buf_add(&c->bytes, ev->data, ev->data_len);
        wx_buf_addc(&c->bytes, '\0');
        x->meta_at = c->bytes.len;
        x->meta_len = ev->metadata_len;
        if (ev->metadata_len > 0)
            wx_buf_add(&c->bytes, ev->metadata, ev->metadata_len);
        wx_buf_addc(&c->bytes, '\0');
        return wx_buf_ok(&c->bytes) ? 0 : WX_ERR_NOMEM;
    }
    return 0;
}

/* The item events a chunk names, in one read of their streams (each from
 * the oldest version named): one round trip, where one per event made a
 * node that another outpaced fall further behind each round (bench/pg_probe
 * files: one node of two answered a hundred commands in ten seconds). */
static int read_items(struct es_store *store, struct chunk *c)
{
    struct es_stream_from from[FILES_TREE_CATCH_UP_CHUNK];
    size_t n = 0;
    for (size_t i = 0; i < c->len; i++) {
        size_t k = 0;
        while (k < n && strcmp(from[k].stream_id, c->at[i].stream) != 0)
            k++;
        if (k == n)
            from[n++] = (struct es_stream_from){c->at[i].stream, c->at[i].item_version - 1};
        else if (c->at[i].item_version - 1 < from[k].after_version)
            from[k].after_version = c->at[i].item_version - 1;
    }
    return es_store_read_streams(store, from, n, WX_SCAN_BATCH_EVENTS_MAX, item_event, c);
}

static int apply_ref(struct files_tree *t, struct chunk *c, struct ref *x, struct wx_buf *scratch,
                     struct files_decoded *d)
{
    const char *bytes = c->bytes.data;
    struct es_event ev = {
        .stream_id = x->stream,
        .version = x->item_version,
        .type = bytes + x->type_at,
        .schema_version = x->schema_version,
        .data = bytes + x->data_at,
        .data_len = x->data_len,
        .metadata = bytes + x->meta_at,
        .metadata_len = x->meta_len,
    };
    return files_tree_apply_stored(t, &ev, scratch, d);
}

int files_tree_log_catch_up(struct es_store *store, struct files_tree *t, int64_t *version,
                            int64_t to_version)
{
    if (to_version <= *version)
        return 0;
    if (to_version - *version > FILES_TREE_CATCH_UP_EVENTS_MAX)
        return WX_ERR_FULL;
    struct chunk c = {.cap = FILES_TREE_CATCH_UP_CHUNK};
    struct wx_buf scratch;
    wx_buf_init(&c.bytes);
    wx_buf_init(&scratch);
    c.at = malloc(FILES_TREE_CATCH_UP_CHUNK * sizeof(*c.at));
    struct files_decoded *d = malloc(sizeof(*d));
    int err = c.at == NULL || d == NULL ? WX_ERR_NOMEM : 0;
    while (!err && *version < to_version) {
        size_t want = to_version - *version < FILES_TREE_CATCH_UP_CHUNK
                          ? (size_t)(to_version - *version)
                          : FILES_TREE_CATCH_UP_CHUNK;
        c.len = 0;
        c.next_version = *version + 1;
        wx_buf_reset(&c.bytes);
        err = es_store_read_stream(store, FILES_TREE_STREAM, *version + 1, want, ref_event, &c);
        if (!err && c.len < want)
            err = WX_ERR_CORRUPT; /* the stream ends before the version the writer loaded */
        if (!err)
            err = read_items(store, &c);
        /* Each change in turn, the tree stream's version moving with it,
         * so that an error leaves the index at a version it has reached. */
        for (size_t i = 0; i < c.len && !err; i++) {
            struct ref *x = &c.at[i];
            if (!x->got) /* the chunk's read stopped short of it (WX_SCAN_BATCH_EVENTS_MAX) */
                err = es_store_read_stream(store, x->stream, x->item_version, 1, item_event, &c);
            if (!err && !x->got)
                err = WX_ERR_CORRUPT; /* named, but not in the log */
            if (!err)
                err = apply_ref(t, &c, x, &scratch, d);
            if (!err)
                (*version)++;
            else if (err == WX_ERR_CORRUPT)
                wx_logf(WX_LOG_ERROR,
                        "files: tree change %" PRId64 " (%s version %" PRId64
                        ") does not fit the tree index",
                        *version + 1, x->stream, x->item_version);
        }
    }
    wx_buf_free(&scratch);
    wx_buf_free(&c.bytes);
    free(d);
    free(c.at);
    return err;
}

/* ---- in a command ---- */

int files_tree_log_load(struct es_decide_ctx *ctx, int64_t *version)
{
    const void *state;
    return es_decide_load(ctx, &files_tree_log_aggregate, FILES_TREE_STREAM, &state, version);
}

int files_tree_log_emit(struct es_decide_ctx *ctx, const char *item_id, int64_t item_version)
{
    const void *before;
    int64_t version;
    int err = es_decide_load(ctx, &files_tree_log_aggregate, FILES_TREE_STREAM, &before, &version);
    if (err)
        return err;
    struct tree_log *after = es_decide_alloc(ctx, sizeof(*after));
    if (after == NULL)
        return WX_ERR_NOMEM;
    *after = *(const struct tree_log *)before;
    after->changes++;
    struct wx_buf b;
    wx_buf_init(&b);
    changed_encode(&b, item_id, item_version);
    err = wx_buf_ok(&b)
              ? es_decide_emit(ctx, FILES_TREE_STREAM, &files_tree_changed, b.data, b.len, after)
              : WX_ERR_NOMEM;
    wx_buf_free(&b);
    return err;
}
