/* One worker thread over a bounded FIFO; see worker.h. */
#include "base/worker.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/err.h"

struct wx_worker {
    pthread_t thread;
    char name[16]; /* pthread_setname_np takes at most 15 characters */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct wx_job *head, *tail;
    size_t queued, queue_max;
    bool stopping;
};

static void *worker_main(void *arg)
{
    struct wx_worker *w = arg;
    pthread_setname_np(pthread_self(), w->name);
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->cond, &w->lock);
        struct wx_job *job = w->head;
        if (job == NULL)
            break; /* stopping, and nothing left */
        w->head = job->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->lock);
        job->run(job);
        job->done(job); /* the job may be freed from here on */
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int wx_worker_start(const char *name, size_t queue_max, struct wx_worker **out)
{
    assert(queue_max > 0);
    struct wx_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return WX_ERR_NOMEM;
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->queue_max = queue_max;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
        return WX_ERR_NOMEM;
    }
    *out = w;
    return 0;
}

int wx_worker_submit(struct wx_worker *w, struct wx_job *job)
{
    assert(job->run != NULL && job->done != NULL);
    int err = 0;
    job->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        err = WX_ERR_CLOSED;
    } else if (w->queued >= w->queue_max) {
        err = WX_ERR_FULL;
    } else {
        if (w->tail != NULL)
            w->tail->next = job;
        else
            w->head = job;
        w->tail = job;
        w->queued++;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return err;
}

size_t wx_worker_queued(struct wx_worker *w)
{
    pthread_mutex_lock(&w->lock);
    size_t n = w->queued;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void wx_worker_stop(struct wx_worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    assert(w->head == NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
}
