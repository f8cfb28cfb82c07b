/*
 * A worker thread with a bounded queue, for work that must not run on an
 * HTTP thread (drift over the whole log, rebuilding one aggregate's rows):
 * a request hands such work over and waits parked, as a command waits for
 * the writer (DESIGN.md §9).
 *
 * Ownership: the submitter owns each job; the worker calls `run` and then
 * `done` exactly once, both on the worker thread, and never touches the
 * job after `done`.
 */
#ifndef WALLEX_BASE_WORKER_H
#define WALLEX_BASE_WORKER_H

#include <stddef.h>

struct wx_job {
    void (*run)(struct wx_job *job);
    void (*done)(struct wx_job *job); /* after run; may hand the job back elsewhere */
    void *ctx;
    struct wx_job *next; /* the worker's queue link */
};

struct wx_worker;

/* Starts the thread (named for top -H); queue_max jobs may wait. */
int wx_worker_start(const char *name, size_t queue_max, struct wx_worker **out);
/* Queues a job: 0, WX_ERR_FULL at the bound (the caller answers 503
 * overloaded) or WX_ERR_CLOSED once stopping. On an error nothing is
 * called. Any thread. */
int wx_worker_submit(struct wx_worker *w, struct wx_job *job);
/* Jobs waiting, for metrics. */
size_t wx_worker_queued(struct wx_worker *w);
/* Runs every queued job to its end, stops the thread and frees the worker.
 * Accepts NULL. */
void wx_worker_stop(struct wx_worker *w);

#endif
