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

void files_tree_changed_encode(struct wx_buf *b, const char *item_id, int64_t item_version)
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

struct ref {
    char item_id[WX_ID_BYTES_MAX + 1];
    int64_t item_version;
};

struct refs {
    struct ref *at;
    size_t len, cap;
    int64_t next_version; /* of the tree stream: each read must be the next */
};

static int ref_event(void *arg, const struct es_event *ev)
{
    struct refs *r = arg;
    if (ev->version != r->next_version || r->len == r->cap)
        return WX_ERR_CORRUPT;
    r->next_version++;
    struct ref *x = &r->at[r->len];
    int err = changed_decode(ev, x->item_id, &x->item_version);
    if (!err)
        r->len++;
    return err;
}

struct one {
    struct files_tree *tree;
    int64_t version;
    struct wx_buf scratch;
    struct files_decoded *d;
    bool applied;
};

static int one_event(void *arg, const struct es_event *stored)
{
    struct one *o = arg;
    if (stored->version != o->version)
        return WX_ERR_CORRUPT;
    int err = files_tree_apply_stored(o->tree, stored, &o->scratch, o->d);
    o->applied = err == 0;
    return err;
}

int files_tree_log_catch_up(struct es_store *store, struct files_tree *t, int64_t *version,
                            int64_t to_version)
{
    if (to_version <= *version)
        return 0;
    if (to_version - *version > FILES_TREE_CATCH_UP_EVENTS_MAX)
        return WX_ERR_FULL;
    struct refs r = {.cap = FILES_TREE_CATCH_UP_CHUNK};
    struct one o = {.tree = t};
    wx_buf_init(&o.scratch);
    r.at = malloc(FILES_TREE_CATCH_UP_CHUNK * sizeof(*r.at));
    o.d = malloc(sizeof(*o.d));
    int err = r.at == NULL || o.d == NULL ? WX_ERR_NOMEM : 0;
    while (!err && *version < to_version) {
        size_t want = to_version - *version < FILES_TREE_CATCH_UP_CHUNK
                          ? (size_t)(to_version - *version)
                          : FILES_TREE_CATCH_UP_CHUNK;
        r.len = 0;
        r.next_version = *version + 1;
        err = es_store_read_stream(store, FILES_TREE_STREAM, *version + 1, want, ref_event, &r);
        if (!err && r.len < want)
            err = WX_ERR_CORRUPT; /* the stream ends before the version the writer loaded */
        /* Each change in turn, the tree stream's version moving with it,
         * so that an error leaves the index at a version it has reached. */
        for (size_t i = 0; i < r.len && !err; i++) {
            char stream[WX_STREAM_ID_BYTES_MAX + 1];
            files_stream_id(r.at[i].item_id, stream);
            o.version = r.at[i].item_version;
            o.applied = false;
            err = es_store_read_stream(store, stream, o.version, 1, one_event, &o);
            if (!err && !o.applied)
                err = WX_ERR_CORRUPT; /* named, but not in the log */
            if (!err)
                (*version)++;
            else if (err == WX_ERR_CORRUPT)
                wx_logf(WX_LOG_ERROR,
                        "files: tree change %" PRId64 " (%s version %" PRId64
                        ") does not fit the tree index",
                        *version + 1, stream, o.version);
        }
    }
    wx_buf_free(&o.scratch);
    free(o.d);
    free(r.at);
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
    files_tree_changed_encode(&b, item_id, item_version);
    err = wx_buf_ok(&b)
              ? es_decide_emit(ctx, FILES_TREE_STREAM, &files_tree_changed, b.data, b.len, after)
              : WX_ERR_NOMEM;
    wx_buf_free(&b);
    return err;
}
