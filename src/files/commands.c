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
 * change is unsettled; until then files commands answer 503 (retry). A
 * change that surely did not reach the log (it lost a version race to
 * another node) is undone instead, when it is the last one staged: the
 * losers of a race are always the batch's last tree changes, since each
 * appended to the one tree stream.
 *
 * Several nodes (a shared store): every tree change also appends to the
 * tree stream (treelog.c), and every files command first brings the index
 * up to the stream's version as the writer has it, reading the changes
 * other nodes made.
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
#include "base/fault.h"
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
    bool shared;          /* several nodes may write: keep the tree stream */
    int64_t tree_version; /* the tree stream's version the index reflects */
    const char *dirty;    /* why the index is ahead of the log (fold it again); NULL: it is not */
    size_t inflight;      /* staged changes not yet settled */
    /* The staged changes of the running batch, in the order staged. */
    struct files_job **staged;
    size_t staged_len, staged_cap;
    /* Where a fold again must reach (see log_caught_up): the log's tail
     * when the fold was first needed, taken once per episode. */
    bool has_target;
    struct es_position target;
    bool waited_out; /* the last wait timed out: until a fold, look without waiting */
} rt;

/* ---- the index from the log ---- */

/* The index cannot be trusted: the next files command folds it again. The
 * first reason is the one logged. */
static void mark_dirty(const char *why)
{
    if (rt.dirty == NULL)
        rt.dirty = why;
}

struct fold {
    const struct es_position *until;
    struct wx_map *versions;
    struct files_tree *tree;
    struct wx_buf scratch;
    struct files_decoded *d;
    struct es_position last;
    int64_t events;
    int64_t tree_version;
};

static int fold_event(void *arg, const struct es_event *stored)
{
    struct fold *f = arg;
    f->events++;
    f->last = stored->position;
    if (f->until != NULL && es_position_cmp(&stored->position, f->until) > 0)
        return 0;
    /* The tree stream's entries come in its version order: one stream's
     * events are in log order on every store. */
    if (strcmp(stored->stream_id, FILES_TREE_STREAM) == 0)
        f->tree_version = stored->version;
    if (!es_stream_in_category(stored->stream_id, FILES_CATEGORY))
        return 0;
    int err = files_tree_apply_stored(f->tree, stored, &f->scratch, f->d);
    if (!err && f->versions != NULL &&
        wx_map_put(f->versions, f->d->e.item_id, (void *)(uintptr_t)stored->version) != 0)
        err = WX_ERR_NOMEM;
    if (err == WX_ERR_CORRUPT)
        wx_logf(WX_LOG_ERROR, "files: event %s of %s does not fit the tree", stored->event_id,
                stored->stream_id);
    return err;
}

int files_tree_apply_stored(struct files_tree *t, const struct es_event *stored,
                            struct wx_buf *scratch, struct files_decoded *d)
{
    struct es_event ev;
    int err = es_upcast(stored, &ev, scratch);
    if (!err)
        err = files_event_decode(&ev, d);
    if (!err)
        err = files_tree_apply(t, &d->e);
    return err;
}

int files_tree_fold_log(struct es_store *store, const struct es_position *until,
                        struct wx_map *versions, struct files_tree **out, int64_t *tree_version)
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
    if (tree_version != NULL)
        *tree_version = f.tree_version;
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

/* At start (why == NULL: a line every start shows, the time it takes
 * delays the server's first answer) and when marked dirty (a warning
 * saying why). */
static int index_build(const char *why)
{
    bool at_start = why == NULL;
    int64_t started = wx_monotonic_ms();
    struct files_tree *t;
    int err = at_start ? 0 : log_caught_up();
    if (err == WX_ERR_BUSY) {
        wx_logf(WX_LOG_WARN, "files: the log is not yet readable up to the last committed"
                             " change; the tree index is folded again later");
        return err;
    }
    int64_t tree_version = 0;
    if (!err)
        err = files_tree_fold_log(rt.store, NULL, NULL, &t, &tree_version);
    if (err) {
        wx_logf(WX_LOG_ERROR, "files: the tree index could not be built: %s", wx_strerror(err));
        return err;
    }
    files_tree_free(rt.tree);
    rt.tree = t;
    rt.tree_version = tree_version;
    rt.dirty = NULL;
    long long ms = (long long)(wx_monotonic_ms() - started);
    if (at_start)
        wx_log_always("files: tree index of %zu items (%zu bytes) folded from the log in %lld ms",
                      files_tree_len(t), files_tree_bytes(t), ms);
    else
        wx_logf(WX_LOG_WARN,
                "files: tree index of %zu items folded again from the log in %lld ms %s",
                files_tree_len(t), ms, why);
    return 0;
}

int files_start(const struct files_config *config)
{
    assert(rt.tree == NULL);
    rt.store = config->store;
    rt.shared = es_store_shared(config->store);
    int err = index_build(NULL);
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
    free(rt.staged);
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

/* A staged purge back in sight. Its subtree may hold the top of a purge
 * staged before it (a file purged, then its trashed folder), which the
 * unmarking showed again: those still staged are put out of sight again. */
static int unpurge(const char *item_id)
{
    int err = files_tree_purge_settle(rt.tree, item_id, false);
    for (size_t i = 0; i < rt.staged_len && !err; i++) {
        const struct files_job *j = rt.staged[i];
        if (j->fate != FATE_COMMITTED && j->event->kind == FILES_PURGED &&
            files_tree_find(rt.tree, j->event->item_id) != FILES_NODE_NONE)
            err = files_tree_purge_stage(rt.tree, j->event->item_id);
    }
    return err;
}

/* Applies the change that takes e back out of the index: the inverse
 * event (a purge is only staged until its commit, files_tree_purge_stage,
 * so it has one too). */
static int undo(const struct files_event *e)
{
    struct files_event inv = {.item_id = e->item_id};
    switch (e->kind) {
    case FILES_FILE_UPDATED:
        return 0; /* not in the index */
    case FILES_FOLDER_CREATED:
    case FILES_FILE_CREATED:
        inv.kind = FILES_PURGED; /* a leaf: what was staged under it went first */
        break;
    case FILES_RENAMED:
        inv.kind = FILES_RENAMED;
        inv.name = e->previous_name;
        break;
    case FILES_MOVED: /* back where it was, the top level included */
        return files_tree_move_back(rt.tree, e->item_id, e->previous_parent_id);
    case FILES_PURGED: /* staged only: back in sight */
        return unpurge(e->item_id);
    case FILES_TRASHED:
        inv.kind = FILES_RESTORED;
        break;
    case FILES_RESTORED:
        inv.kind = FILES_TRASHED;
        break;
    case FILES_GRANT_ADDED: /* added only where not held, revoked only where held */
    case FILES_GRANT_REVOKED:
        inv.kind = e->kind == FILES_GRANT_ADDED ? FILES_GRANT_REVOKED : FILES_GRANT_ADDED;
        inv.subject = e->subject;
        inv.permission = e->permission;
        break;
    default:
        return WX_ERR_INVALID;
    }
    return files_tree_apply(rt.tree, &inv);
}

/* Undoes lost changes from the top of the batch's staged ones; a lost
 * change under one still unsettled waits for it, one under a committed
 * change cannot be undone (the index is then folded again). */
static void undo_lost(void)
{
    while (rt.staged_len > 0 && rt.staged[rt.staged_len - 1]->fate == FATE_LOST) {
        struct files_job *job = rt.staged[--rt.staged_len];
        if (rt.dirty == NULL && undo(job->event) != 0)
            mark_dirty("after a change that lost a race could not be undone");
        rt.tree_version = job->tree_version_before;
    }
    if (rt.inflight > 0)
        return;
    for (size_t i = 0; i < rt.staged_len; i++)
        if (rt.staged[i]->fate != FATE_COMMITTED)
            mark_dirty("after a change that lost a race could not be undone");
    rt.staged_len = 0;
}

static void settle(struct files_job *job, enum files_fate fate)
{
    if (!job->staged)
        return;
    job->staged = false;
    assert(rt.inflight > 0);
    rt.inflight--;
    job->fate = fate;
    if (fate == FATE_COMMITTED && job->event->kind == FILES_PURGED)
        files_tree_purge_settle(rt.tree, job->event->item_id, true);
    if (fate == FATE_UNKNOWN)
        mark_dirty("after a change that did not commit");
    undo_lost();
}

void files_job_committed(struct es_command *cmd)
{
    settle(cmd->payload, FATE_COMMITTED);
}

void files_job_discarded(struct es_command *cmd)
{
    settle(cmd->payload, cmd->may_be_in_log ? FATE_UNKNOWN : FATE_LOST);
}

/* The index the next decision may trust: refolded from the log when a
 * change was discarded, once nothing staged is unsettled (before that the
 * log lacks changes the batch will still commit). WX_ERR_BUSY (503) until
 * then. */
static int index_ready(struct files_job *job)
{
    if (job->staged) /* decided again without its first run settled */
        settle(job, FATE_UNKNOWN);
    if (rt.tree == NULL)
        return WX_ERR_INVALID; /* files_start was not called */
    if (rt.dirty == NULL)
        return 0;
    if (rt.inflight > 0)
        return WX_ERR_BUSY;
    return index_build(rt.dirty);
}

/* ---- other nodes' changes ---- */

/* An index ahead of the writer's copy of the tree stream: normally the
 * copy is stale (the commit will refuse it, and the command is decided
 * again on a fresh one). But if the store itself is behind the index, the
 * log lost tree changes the index holds (PostgreSQL failed over to a
 * standby that had not received them): the index is folded again from
 * the log as it now is, or every later decision would count them. Only
 * with nothing staged, when the index's version is all committed. */
static int tree_lost(void)
{
    if (rt.inflight > 0)
        return 0;
    int64_t stored;
    int err = es_store_stream_version(rt.store, FILES_TREE_STREAM, &stored);
    if (err || stored >= rt.tree_version)
        return err;
    wx_logf(WX_LOG_ERROR,
            "files: the log's tree stream is at version %lld, behind the index's %lld: the log"
            " lost changes",
            (long long)stored, (long long)rt.tree_version);
    mark_dirty("after the log lost tree changes it held");
    return index_build(rt.dirty);
}

/* On a shared store: the tree stream's version as this command sees it
 * (*version), with the index brought up to it. Behind by more than a
 * catch-up reads, the index is folded again. */
static int tree_ready(struct es_decide_ctx *ctx, int64_t *version)
{
    int err = files_tree_log_load(ctx, version);
    if (!err && *version < rt.tree_version)
        err = tree_lost();
    if (err || *version <= rt.tree_version)
        return err;
    /* The first files command of a round catches up, before anything is
     * staged: a later one sees this round's own changes, or the writer's
     * copy the first saw. Not so only when that copy was not kept (a
     * stream that did not exist yet, or one pushed out of the writer's
     * cache within the round): catching up under staged changes would
     * put other nodes' changes above ours, so the command is 503 and
     * retried. */
    if (rt.inflight > 0)
        return WX_ERR_BUSY;
    err = files_tree_log_catch_up(rt.store, rt.tree, &rt.tree_version, *version);
    if (err == WX_ERR_FULL) {
        mark_dirty("to catch up with other nodes' changes");
        if ((err = index_build(rt.dirty)) == 0)
            err = files_tree_log_catch_up(rt.store, rt.tree, &rt.tree_version, *version);
        if (err == WX_ERR_FULL)
            err = WX_ERR_BUSY;
    }
    if (err == WX_ERR_CORRUPT) {
        mark_dirty("after another node's change did not fit it");
        err = WX_ERR_BUSY;
    }
    return err;
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

/* On a shared store the item's state or the index may be behind another
 * node's change: the store has a newer version of the item's stream than
 * the command read, or of the tree stream than the index reflects. The
 * index reflects the tree stream's version before this round's own
 * changes (not committed yet, so not in the store) and those changes:
 * comparing the store's version with the index's own would take another
 * node's change for one of ours. */
static bool behind_the_store(const char *stream, int64_t version)
{
    int64_t v;
    int64_t tree_version = rt.staged_len > 0 ? rt.staged[0]->tree_version_before : rt.tree_version;
    return (es_store_stream_version(rt.store, stream, &v) == 0 && v > version) ||
           (es_store_stream_version(rt.store, FILES_TREE_STREAM, &v) == 0 && v > tree_version);
}

/* The item's own grants and the index's are the same set. */
static bool same_grants(const struct files_item *s, uint32_t n)
{
    const char *subjects[FILES_GRANTS_MAX];
    uint8_t levels[FILES_GRANTS_MAX];
    size_t len = files_tree_grants(rt.tree, n, subjects, levels);
    if (len != s->grants_len)
        return false;
    for (size_t i = 0; i < s->grants_len; i++) {
        size_t g = 0;
        while (g < len && strcmp(subjects[g], s->grants[i].subject) != 0)
            g++;
        if (g == len || levels[g] != s->grants[i].levels)
            return false;
    }
    return true;
}

/* The stream and the index must tell one story about an item the index
 * holds (name, parent, trash, grants: what the deciders read from either);
 * otherwise the index is folded again and the command retried.
 * On a shared store the two may differ only because one copy is behind
 * another node's change: then *stale is set, and the command is decided
 * again once the commit has refused what it read. */
static int agrees(const struct files_item *s, uint32_t n, const char *stream, int64_t version,
                  bool *stale)
{
    *stale = false;
    if (n == FILES_NODE_NONE)
        return 0;
    uint32_t p = files_tree_parent(rt.tree, n);
    const char *parent = p == FILES_NODE_NONE ? "" : files_tree_id(rt.tree, p);
    if (s->exists && !s->purged && strcmp(s->name, files_tree_name(rt.tree, n)) == 0 &&
        strcmp(s->parent_id, parent) == 0 && s->trashed == files_tree_trashed(rt.tree, n) &&
        same_grants(s, n))
        return 0;
    if (rt.shared && behind_the_store(stream, version)) {
        *stale = true;
        return 0;
    }
    wx_logf(WX_LOG_ERROR, "files: the tree index and the stream of %s disagree",
            files_tree_id(rt.tree, n));
    mark_dirty("after it disagreed with an item's stream");
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

/* A copy in the batch's memory; NULL stays NULL. */
static const char *batch_str(struct es_decide_ctx *ctx, const char *str, int *err)
{
    if (str == NULL)
        return NULL;
    size_t len = strlen(str);
    char *copy = es_decide_alloc(ctx, len + 1);
    if (copy == NULL) {
        *err = WX_ERR_NOMEM;
        return NULL;
    }
    memcpy(copy, str, len + 1);
    return copy;
}

/* The staged change as undo needs it after the index changed: a rename
 * frees the index's copy of the old name the decider pointed to. */
static const struct files_event *undo_copy(struct es_decide_ctx *ctx, const struct files_event *e,
                                           int *err)
{
    struct files_event *copy = es_decide_alloc(ctx, sizeof(*copy));
    if (copy == NULL) {
        *err = WX_ERR_NOMEM;
        return NULL;
    }
    *copy = *e;
    copy->previous_name = batch_str(ctx, e->previous_name, err);
    copy->previous_parent_id = batch_str(ctx, e->previous_parent_id, err);
    return copy;
}

/* Room for one more staged change (a batch holds at most its commands). */
static int staged_reserve(void)
{
    if (rt.staged_len < rt.staged_cap)
        return 0;
    size_t cap = rt.staged_cap ? 2 * rt.staged_cap : 64;
    struct files_job **staged = realloc(rt.staged, cap * sizeof(*staged));
    if (staged == NULL)
        return WX_ERR_NOMEM;
    rt.staged = staged;
    rt.staged_cap = cap;
    return 0;
}

/* Stages the decided event on the item's stream (and, on a shared store,
 * its entry on the tree stream, which was at tree_version) and in the
 * index. */
static int stage(struct es_decide_ctx *ctx, struct files_job *job, const char *stream,
                 struct files_item *s, int64_t version, int64_t tree_version,
                 const struct files_decision *d)
{
    int err = staged_reserve();
    if (err)
        return err;
    files_evolve(s, &d->event);
    struct wx_buf b;
    wx_buf_init(&b);
    files_event_encode(&b, &d->event);
    assert(!wx_buf_ok(&b) || b.len <= FILES_EVENT_DATA_BYTES_MAX);
    err = wx_buf_ok(&b)
              ? es_decide_emit(ctx, stream, files_event_type(d->event.kind), b.data, b.len, s)
              : WX_ERR_NOMEM;
    wx_buf_free(&b);
    bool tree_change = d->event.kind != FILES_FILE_UPDATED;
    if (!err && rt.shared && tree_change)
        err = files_tree_log_emit(ctx, d->event.item_id, version + 1);
    const struct files_event *kept = err ? NULL : undo_copy(ctx, &d->event, &err);
    /* A purge leaves the index when it commits: undone, a subtree would
     * have to be built again. */
    if (!err)
        err = d->event.kind == FILES_PURGED ? files_tree_purge_stage(rt.tree, d->event.item_id)
                                            : files_tree_apply(rt.tree, &d->event);
    if (err == WX_ERR_CORRUPT) { /* the decider passed what the tree refuses */
        wx_logf(WX_LOG_ERROR, "files: a decided %s does not fit the tree index",
                files_event_type(d->event.kind)->name);
        mark_dirty("after a decided change did not fit it");
    }
    if (err)
        return err;
    job->staged = true;
    job->event = kept;
    job->fate = FATE_UNSETTLED;
    job->tree_version_before = rt.tree_version;
    if (rt.shared && tree_change)
        rt.tree_version = tree_version + 1;
    rt.staged[rt.staged_len++] = job;
    rt.inflight++;
    return 0;
}

static int run(struct es_decide_ctx *ctx, struct files_job *job)
{
    const struct files_command *c = job->c;
    int err = index_ready(job);
    if (err)
        return err;
    int64_t tree_version = 0;
    if (rt.shared && (err = tree_ready(ctx, &tree_version)) != 0)
        return err;
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    files_stream_id(c->item_id, stream);
    struct files_item *s;
    int64_t version;
    if ((err = load(ctx, c, stream, &s, &version)) != 0)
        return err;
    bool create = c->kind == FILES_CMD_CREATE_FOLDER || c->kind == FILES_CMD_CREATE_FILE;
    bool stale = false;
    if (!create &&
        (err = agrees(s, files_tree_find(rt.tree, c->item_id), stream, version, &stale)) != 0)
        return err;
    if (stale) { /* refused at commit, since what it read has moved on: decided again */
        es_decide_reject(ctx, ES_version_conflict, "Another node changed the item meanwhile");
        return 0;
    }
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
        if ((err = stage(ctx, job, stream, s, version, tree_version, d)) != 0)
            return err;
        version++;
        if (d->event.kind == FILES_FOLDER_CREATED && wx_fault_active("files-fail-after-stage"))
            return WX_ERR_NOMEM;
    }
    return reply_item(ctx, c, s, version, &who);
}

/* Takes a change that failed after it was staged (its answer could not be
 * built) out of the index at once: its events will not be sent, and a
 * later command of the round must not decide on it (the commit could not
 * tell: nothing of it reaches the store). It is the last one staged. */
static void unstage(struct files_job *job)
{
    if (rt.staged_len == 0 || rt.staged[rt.staged_len - 1] != job) {
        assert(!"the failed job is the last one staged");
        mark_dirty("after a change that failed was not the last one staged");
        return;
    }
    rt.staged_len--;
    job->staged = false;
    assert(rt.inflight > 0);
    rt.inflight--;
    if (rt.dirty == NULL && undo(job->event) != 0)
        mark_dirty("after a change that failed could not be undone");
    rt.tree_version = job->tree_version_before;
}

void files_run_command(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    struct files_job *job = cmd->payload;
    int err = run(ctx, job);
    if (err)
        es_decide_fail(ctx, err);
    if (es_decide_failed(ctx) && job->staged) /* the answer's copy may have failed too */
        unstage(job);
}
