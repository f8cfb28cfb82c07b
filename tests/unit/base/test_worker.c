/* The worker thread (src/base/worker.c): jobs run in order, each `done`
 * once; the queue refuses past its bound; stop runs what was queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

#include "base/err.h"
#include "base/worker.h"

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER; /* holds the first job */
static int order[16];
static int order_len;
static int done_count;

static void run_job(struct wx_job *job)
{
    if ((intptr_t)job->ctx == 0) {
        pthread_mutex_lock(&gate); /* waits until the test lets it go */
        pthread_mutex_unlock(&gate);
    }
    order[order_len++] = (int)(intptr_t)job->ctx;
}

static void done_job(struct wx_job *job)
{
    (void)job;
    done_count++;
}

static void test_worker(void **state)
{
    (void)state;
    struct wx_worker *w;
    assert_int_equal(wx_worker_start("test", 3, &w), 0);
    struct wx_job jobs[6];
    pthread_mutex_lock(&gate);
    jobs[0] = (struct wx_job){run_job, done_job, (void *)0, NULL};
    assert_int_equal(wx_worker_submit(w, &jobs[0]), 0);
    while (wx_worker_queued(w) != 0) /* the first is taken and waits at the gate */
        usleep(1000);
    for (int i = 1; i <= 3; i++) {
        jobs[i] = (struct wx_job){run_job, done_job, (void *)(intptr_t)i, NULL};
        assert_int_equal(wx_worker_submit(w, &jobs[i]), 0);
    }
    jobs[4] = (struct wx_job){run_job, done_job, (void *)4, NULL};
    assert_int_equal(wx_worker_submit(w, &jobs[4]), WX_ERR_FULL);
    pthread_mutex_unlock(&gate);
    wx_worker_stop(w); /* runs the three queued */
    assert_int_equal(order_len, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(order[i], i);
    assert_int_equal(done_count, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
