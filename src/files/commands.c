/*
 * Files commands on the writer thread, and the tree index they are decided
 * against.
 *
 * The index (files/tree.c) holds every live item: built from the log by
 * files_start, then changed by each command's handler as it stages the
 * command's event, so the commands of one batch see each other (two
 * creates of one name in one folder: the second is 409; two moves that
 * would make a cycle: the second is 422). A staged change is settled by
 * the writer's hooks: `committed` (it is in the log) or `discarded` (it is
 * not: a failed commit, or a failure after the index changed). A discarded
 * change leaves the index ahead of the log, so the index is marked dirty
 * and folded again from the log by the next files command once no other
 * change is unsettled; until then files commands answer 503 (retry).
 * Nothing but the writer thread touches the index after files_start.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/map.h"
#include "es/writer.h"
#include "files/routes.h"
#include "files/service.h"
#include "files/sweeper.h"
#include "obs/log.h"
#include "store/store.h"

static struct {
    struct es_store *store;
    struct files_tree *tree;
    bool dirty;      /* ahead of the log: fold it again */
    size_t inflight; /* staged changes not yet settled */
    /* Where a fold again must reach (see log_caught_up): the log's tail
     * when the fold was first needed, taken once per episode. */
    bool has_target;
    struct es_position target;
    bool waited_out; /* the last wait timed out: until a fold, look without waiting */
} rt;

/* ---- the index from the log ---- */

struct fold {
    const struct es_position *until;
    struct wx_map *versions;
    struct files_tree *tree;
    struct wx_buf scratch;
    struct files_decoded *d;
    struct es_position last;
    int64_t events;
};

static int fold_event(void *arg, const struct es_event *stored)
{
    struct fold *f = arg;
    f->events++;
    f->last = stored->position;
    if (f->until != NULL && es_position_cmp(&stored->position, f->until) > 0)
        return 0;
    if (!es_stream_in_category(stored->stream_id, FILES_CATEGORY))
        return 0;
    struct es_event ev;
    int err = es_upcast(stored, &ev, &f->scratch);
    if (!err)
        err = files_event_decode(&ev, f->d);
    if (!err)
        err = files_tree_apply(f->tree, &f->d->e);
    if (!err && f->versions != NULL &&
        wx_map_put(f->versions, f->d->e.item_id, (void *)(uintptr_t)ev.version) != 0)
        err = WX_ERR_NOMEM;
    if (err == WX_ERR_CORRUPT)
        wx_logf(WX_LOG_ERROR, "files: event %s of %s does not fit the tree", stored->event_id,
                stored->stream_id);
    return err;
}

int files_tree_fold_log(struct es_store *store, const struct es_position *until,
                        struct wx_map *versions, struct files_tree **out)
{
    struct fold f = {.until = until, .versions = versions, .last = es_position_start()};
    wx_buf_init(&f.scratch);
    f.d = malloc(sizeof(*f.d));
    int err = f.d == NULL ? WX_ERR_NOMEM : files_tree_new(&f.tree);
    while (!err && (f.until == NULL || es_position_cmp(&f.last, f.until) < 0)) {
        int64_t before = f.events;
        struct es_position after = f.last;
        err = es_store_read_log(store, &after, WX_SCAN_BATCH_EVENTS_MAX, fold_event, &f);
        if (f.events - before < WX_SCAN_BATCH_EVENTS_MAX)
            break;
    }
    free(f.d);
    wx_buf_free(&f.scratch);
    if (err) {
        files_tree_free(f.tree);
        return err;
    }
    *out = f.tree;
    return 0;
}

/* A reader of a shared store (PostgreSQL) sees the log only up to the
 * oldest transaction still open anywhere in the database (the gap-free
 * rule), so a change this writer committed a moment ago may not be
 * readable yet while, say, a projection's transaction is open. A fold
 * again that started then would miss it. So would one after a commit
 * whose answer was lost (it may have committed; its position is not
 * known). So the fold waits, briefly and boundedly, until the readable
 * head has reached the log's tail as it was when the fold was first
 * needed (the writer is held meanwhile: nothing of ours commits after
 * it); WX_ERR_BUSY (503, retry) if it has not. Once one wait has timed
 * out the next commands only look, until a fold succeeds (a long
 * transaction costs one wait, not one per command). */
static int log_caught_up(void)
{
    int err;
    if (!rt.has_target) {
        if ((err = es_store_tail(rt.store, &rt.target)) != 0)
            return err;
        rt.has_target = true;
    }
    int64_t deadline = wx_monotonic_ms() + (rt.waited_out ? 0 : WX_FILES_FOLD_WAIT_MS);
    for (;;) {
        struct es_position head;
        if ((err = es_store_head(rt.store, &head)) != 0)
            return err;
        if (es_position_cmp(&head, &rt.target) >= 0) {
            rt.has_target = rt.waited_out = false;
            return 0;
        }
        if (wx_monotonic_ms() >= deadline) {
            rt.waited_out = true;
            return WX_ERR_BUSY;
        }
        usleep(1000);
    }
}

/* At start (a line every start shows: the time it takes delays the
 * server's first answer) and after a discarded change (a warning). */
static int index_build(bool at_start)
{
    int64_t started = wx_monotonic_ms();
    struct files_tree *t;
    int err = at_start ? 0 : log_caught_up();
    if (err == WX_ERR_BUSY) {
        wx_logf(WX_LOG_WARN, "files: the log is not yet readable up to the last committed"
                             " change; the tree index is folded again later");
        return err;
    }
    if (!err)
        err = files_tree_fold_log(rt.store, NULL, NULL, &t);
    if (err) {
        wx_logf(WX_LOG_ERROR, "files: the tree index could not be built: %s", wx_strerror(err));
        return err;
    }
    files_tree_free(rt.tree);
    rt.tree = t;
    rt.dirty = false;
    long long ms = (long long)(wx_monotonic_ms() - started);
    if (at_start)
        wx_log_always("files: tree index of %zu items (%zu bytes) folded from the log in %lld ms",
                      files_tree_len(t), files_tree_bytes(t), ms);
    else
        wx_logf(WX_LOG_WARN,
                "files: tree index of %zu items folded again from the log in %lld ms after a"
                " change that did not commit",
                files_tree_len(t), ms);
    return 0;
}

int files_start(const struct files_config *config)
{
    assert(rt.tree == NULL);
    rt.store = config->store;
    int err = index_build(true);
    if (!err)
        err = files_sweeper_start(config);
    return err;
}

void files_quiesce(void)
{
    files_sweeper_stop();
}

void files_stop(void)
{
    files_sweeper_stop();
    files_tree_free(rt.tree);
    memset(&rt, 0, sizeof(rt));
}

size_t files_index_items(void)
{
    return rt.tree != NULL ? files_tree_len(rt.tree) : 0;
}

size_t files_index_bytes(void)
{
    return rt.tree != NULL ? files_tree_bytes(rt.tree) : 0;
}

/* ---- settling staged changes ---- */

static void settle(struct files_job *job, bool durable)
{
    if (!job->staged)
        return;
    job->staged = false;
    assert(rt.inflight > 0);
    rt.inflight--;
    if (!durable)
        rt.dirty = true;
}

void files_job_committed(struct es_command *cmd)
{
    settle(cmd->payload, true);
}

void files_job_discarded(struct es_command *cmd)
{
    settle(cmd->payload, false);
}

/* The index the next decision may trust: refolded from the log when a
 * change was discarded, once nothing staged is unsettled (before that the
 * log lacks changes the batch will still commit). WX_ERR_BUSY (503) until
 * then. */
static int index_ready(struct files_job *job)
{
    if (job->staged) /* decided again without its first run settled */
        settle(job, false);
    if (rt.tree == NULL)
        return WX_ERR_INVALID; /* files_start was not called */
    if (!rt.dirty)
        return 0;
    if (rt.inflight > 0)
        return WX_ERR_BUSY;
    return index_build(false);
}

/* ---- the handler ---- */

struct files_caller files_caller_of(const struct auth_principal *p)
{
    if (p == NULL)
        return (struct files_caller){FILES_ROLE_ADMIN, NULL};
    switch (p->role) {
    case AUTH_ROLE_ADMIN:
        return (struct files_caller){FILES_ROLE_ADMIN, p->subject};
    case AUTH_ROLE_READER:
        return (struct files_caller){FILES_ROLE_READER, p->subject};
    case AUTH_ROLE_USER:
        break;
    }
    return (struct files_caller){FILES_ROLE_USER, p->subject};
}

/* The item's stream into a copy of its own (the decision points into it). */
static int load(struct es_decide_ctx *ctx, const struct files_command *c, const char *stream,
                struct files_item **s_out, int64_t *version_out)
{
    struct files_item *s = es_decide_alloc(ctx, sizeof(*s));
    if (s == NULL)
        return WX_ERR_NOMEM;
    const void *state;
    int err;
    *version_out = 0;
    if (c->item_id_generated) /* a fresh UUIDv7: nothing to read */
        err = es_decide_load_new(ctx, &files_aggregate, stream, &state);
    else
        err = es_decide_load(ctx, &files_aggregate, stream, &state, version_out);
    if (!err)
        memcpy(s, state, files_item_bytes(state));
    *s_out = s;
    return err;
}

/* The stream and the index must tell one story about an item the index
 * holds; otherwise the index is folded again and the command retried. */
static int agrees(const struct files_item *s, uint32_t n)
{
    if (n == FILES_NODE_NONE)
        return 0;
    uint32_t p = files_tree_parent(rt.tree, n);
    const char *parent = p == FILES_NODE_NONE ? "" : files_tree_id(rt.tree, p);
    if (s->exists && !s->purged && strcmp(s->name, files_tree_name(rt.tree, n)) == 0 &&
        strcmp(s->parent_id, parent) == 0 && s->trashed == files_tree_trashed(rt.tree, n))
        return 0;
    wx_logf(WX_LOG_ERROR, "files: the tree index and the stream of %s disagree",
            files_tree_id(rt.tree, n));
    rt.dirty = true;
    return WX_ERR_BUSY;
}

static int reply_item(struct es_decide_ctx *ctx, const struct files_command *c,
                      const struct files_item *s, int64_t version, const struct files_caller *who)
{
    uint32_t n = files_tree_find(rt.tree, c->item_id);
    if (n == FILES_NODE_NONE) { /* purged */
        es_decide_reply(ctx, 204, "", 0, NULL);
        return 0;
    }
    struct wx_buf path, b;
    wx_buf_init(&path);
    wx_buf_init(&b);
    files_tree_path(rt.tree, n, &path);
    struct files_view v = {
        .path = path.data,
        .trashed = files_tree_hidden(rt.tree, n),
        .level = files_tree_level(rt.tree, n, who),
    };
    int err = 0;
    if (wx_buf_ok(&path))
        files_item_json(&b, c->item_id, s, version, &v);
    bool created = c->kind == FILES_CMD_CREATE_FOLDER || c->kind == FILES_CMD_CREATE_FILE;
    char location[16 + WX_ID_BYTES_MAX];
    snprintf(location, sizeof(location), "/items/%s", c->item_id);
    if (wx_buf_ok(&path) && wx_buf_ok(&b))
        es_decide_reply(ctx, created ? 201 : 200, b.data, b.len, created ? location : NULL);
    else
        err = WX_ERR_NOMEM;
    wx_buf_free(&path);
    wx_buf_free(&b);
    return err;
}

/* Stages the decided event on the item's stream and in the index. */
static int stage(struct es_decide_ctx *ctx, struct files_job *job, const char *stream,
                 struct files_item *s, const struct files_decision *d)
{
    files_evolve(s, &d->event);
    struct wx_buf b;
    wx_buf_init(&b);
    files_event_encode(&b, &d->event);
    assert(!wx_buf_ok(&b) || b.len <= FILES_EVENT_DATA_BYTES_MAX);
    int err = wx_buf_ok(&b)
                  ? es_decide_emit(ctx, stream, files_event_type(d->event.kind), b.data, b.len, s)
                  : WX_ERR_NOMEM;
    wx_buf_free(&b);
    if (!err)
        err = files_tree_apply(rt.tree, &d->event);
    if (err == WX_ERR_CORRUPT) { /* the decider passed what the tree refuses */
        wx_logf(WX_LOG_ERROR, "files: a decided %s does not fit the tree index",
                files_event_type(d->event.kind)->name);
        rt.dirty = true;
    }
    if (err)
        return err;
    job->staged = true;
    rt.inflight++;
    return 0;
}

static int run(struct es_decide_ctx *ctx, struct files_job *job)
{
    const struct files_command *c = job->c;
    int err = index_ready(job);
    if (err)
        return err;
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    files_stream_id(c->item_id, stream);
    struct files_item *s;
    int64_t version;
    if ((err = load(ctx, c, stream, &s, &version)) != 0)
        return err;
    bool create = c->kind == FILES_CMD_CREATE_FOLDER || c->kind == FILES_CMD_CREATE_FILE;
    if (!create && (err = agrees(s, files_tree_find(rt.tree, c->item_id))) != 0)
        return err;
    struct files_caller who = files_caller_of(es_decide_principal(ctx));
    struct files_decision *d = es_decide_alloc(ctx, sizeof(*d));
    if (d == NULL)
        return WX_ERR_NOMEM;
    files_decide(rt.tree, s, version, c, &who, es_decide_actor(ctx), es_decide_now_ms(ctx), d);
    if (d->outcome != ES_OK) {
        es_decide_reject(ctx, d->outcome, d->detail);
        return 0;
    }
    if (d->changes) {
        if ((err = stage(ctx, job, stream, s, d)) != 0)
            return err;
        version++;
    }
    return reply_item(ctx, c, s, version, &who);
}

void files_run_command(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    int err = run(ctx, cmd->payload);
    if (err)
        es_decide_fail(ctx, err);
}
