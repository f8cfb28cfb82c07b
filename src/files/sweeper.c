/*
 * The trash sweeper (files/sweeper.h). Every pass asks the read model for
 * the items trashed themselves longer ago than the retention (the tops of
 * trashed subtrees: a purge takes the subtree with it) and purges them one
 * by one through the writer, as the system actor FILES_SWEEPER_ACTOR.
 * The decider checks again that each is still trashed since before the
 * cut (it may have been restored, or trashed again, since the read model
 * said so), so a late read never purges the wrong thing.
 *
 * Several nodes on one PostgreSQL database: one sweeps, the holder of the
 * lease FILES_SWEEPER_LEASE on a read-model session of its own (tried at
 * every pass; it goes with the session when the node dies, and the next
 * pass of another node takes it). Without it every node swept, and two
 * purging the same item cost the loser a decision again for nothing.
 */
#include "files/sweeper.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/uuid.h"
#include "es/writer.h"
#include "files/projections.h"
#include "files/routes.h"
#include "files/service.h"
#include "obs/log.h"
#include "proj/projector.h"
#include "rm/rm.h"

#define FILES_SWEEPER_LEASE "files-sweeper"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool running, stopping;
    pthread_t thread;
    struct files_config cfg;
    int64_t interval_ms;
    struct rm_conn *lease; /* NULL: one node, always sweeping */
    int leading;           /* -1 before the first try, then 0 or 1 */
} sw = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

struct wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void purge_complete(struct es_command *cmd)
{
    struct wait *w = cmd->complete_ctx;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* One purge through the writer; its HTTP-like status, or 503 when the
 * writer would not take it. */
static int purge_one(const char *id, int64_t before_ms)
{
    struct files_command c = {
        .kind = FILES_CMD_PURGE,
        .item_id = id,
        .by_retention = true,
        .trashed_before_ms = before_ms,
    };
    struct files_job job = {.c = &c};
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    struct es_command cmd = {
        .handle = files_run_command,
        .payload = &job,
        .arena = &arena,
        .actor = FILES_SWEEPER_ACTOR,
        .complete = purge_complete,
        .complete_ctx = &w,
        .committed = files_job_committed,
        .discarded = files_job_discarded,
    };
    int status = 503;
    if (wx_uuid7(wx_clock_now_ms(sw.cfg.clock), cmd.command_id) == 0 &&
        es_writer_submit(sw.cfg.writer, &cmd) == 0) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        status = cmd.status;
    }
    wx_arena_release(&arena);
    return status;
}

static bool stopping(void)
{
    pthread_mutex_lock(&sw.lock);
    bool s = sw.stopping;
    pthread_mutex_unlock(&sw.lock);
    return s;
}

/* Whether this node sweeps: always alone; with others, while it holds
 * the lease (its session checked first: a lost one takes the lease with
 * it). */
static bool sweeper_lead(void)
{
    if (sw.lease == NULL)
        return true;
    bool held = rm_lease_keep(sw.lease, FILES_SWEEPER_LEASE);
    if ((int)held != sw.leading)
        wx_logf(WX_LOG_INFO, "files: %s", held ? "this node sweeps the trash from now"
                                               : "another node sweeps the trash; standing by");
    sw.leading = held;
    return held;
}

static void sweep(void)
{
    if (!sweeper_lead())
        return;
    int64_t before_ms = wx_clock_now_ms(sw.cfg.clock) - sw.cfg.retention_ms;
    char(*ids)[WX_ID_BYTES_MAX + 1] = malloc(FILES_SWEEP_PURGES_MAX * sizeof(*ids));
    size_t n = 0, purged = 0;
    int err = ids == NULL ? WX_ERR_NOMEM
                          : files_query_expired(sw.cfg.projector, before_ms, FILES_SWEEP_PURGES_MAX,
                                                ids, &n);
    if (err)
        wx_logf(WX_LOG_ERROR, "files: the trash sweeper could not read the trash: %s",
                wx_strerror(err));
    for (size_t i = 0; i < n && !err && !stopping(); i++) {
        int status = purge_one(ids[i], before_ms);
        if (status == 204)
            purged++;
        else if (status >= 500) /* the writer is failing: next pass */
            break;
    }
    if (purged > 0)
        wx_logf(WX_LOG_INFO, "files: the trash sweeper purged %zu items", purged);
    free(ids);
}

static void *sweeper_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "wx-files-sweep");
    pthread_mutex_lock(&sw.lock);
    while (!sw.stopping) {
        struct timespec until;
        wx_deadline_after_ms(sw.interval_ms, &until);
        pthread_cond_timedwait(&sw.cond, &sw.lock, &until);
        if (sw.stopping)
            break;
        pthread_mutex_unlock(&sw.lock);
        sweep();
        pthread_mutex_lock(&sw.lock);
    }
    pthread_mutex_unlock(&sw.lock);
    return NULL;
}

int files_sweeper_start(const struct files_config *config)
{
    if (config->retention_ms <= 0 || config->projector == NULL || config->writer == NULL)
        return 0;
    sw.cfg = *config;
    sw.interval_ms = config->retention_ms / 4;
    if (sw.interval_ms < FILES_SWEEP_INTERVAL_MS_MIN)
        sw.interval_ms = FILES_SWEEP_INTERVAL_MS_MIN;
    if (sw.interval_ms > FILES_SWEEP_INTERVAL_MS_MAX)
        sw.interval_ms = FILES_SWEEP_INTERVAL_MS_MAX;
    sw.stopping = false;
    sw.leading = -1;
    sw.lease = NULL;
    struct rm_db *db = es_projector_rm(config->projector);
    int err = rm_shared(db) ? rm_conn_open(db, RM_CONN_WRITER, &sw.lease) : 0;
    if (err)
        return err;
    if (pthread_create(&sw.thread, NULL, sweeper_main, NULL) != 0) {
        rm_conn_close(sw.lease);
        sw.lease = NULL;
        return WX_ERR_NOMEM;
    }
    sw.running = true;
    return 0;
}

void files_sweeper_stop(void)
{
    if (!sw.running)
        return;
    pthread_mutex_lock(&sw.lock);
    sw.stopping = true;
    pthread_cond_signal(&sw.cond);
    pthread_mutex_unlock(&sw.lock);
    pthread_join(sw.thread, NULL);
    sw.running = false;
    rm_conn_close(sw.lease); /* and the lease with its session */
    sw.lease = NULL;
}
