/* twine: threads. Other threads hand calls to the reactor thread through a
 * mutex-protected FIFO that one ev_async drains from the loop (libev's
 * recipe); the thread pool runs blocking functions and hands each result back
 * the same way, through a queue of its own so that shutdown can deliver the
 * finished results without running anything else. */
#include "reactor_internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <ev.h>

/* Call queues ---------------------------------------------------------------------- */

struct call {
    void (*fn)(void *arg);
    void *arg;
    struct call *next;
};

struct callq {
    pthread_mutex_t lock;       /* guards head, tail, loop and the watcher's state */
    struct call *head, *tail;
    struct ev_loop *loop;       /* set while the reactor runs */
    ev_async async;
};

static struct callq thread_calls = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct callq pool_results = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void callq_push(struct callq *q, void (*fn)(void *), void *arg)
{
    struct call *c = tw_xmalloc(sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    if (q->loop)
        ev_async_send(q->loop, &q->async);
    pthread_mutex_unlock(&q->lock);
}

/* Runs the calls queued so far, in order; later ones wake the loop again. */
static void callq_drain(struct callq *q)
{
    pthread_mutex_lock(&q->lock);
    struct call *c = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    while (c) {
        struct call *next = c->next;
        c->fn(c->arg);
        free(c);
        c = next;
    }
}

static void callq_async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    callq_drain(TW_CONTAINER_OF(w, struct callq, async));
}

static void callq_attach(struct callq *q, struct ev_loop *loop)
{
    pthread_mutex_lock(&q->lock);
    ev_async_init(&q->async, callq_async_cb);
    ev_async_start(loop, &q->async);
    q->loop = loop;
    if (q->head)                /* queued before the run */
        ev_async_send(loop, &q->async);
    pthread_mutex_unlock(&q->lock);
}

static void callq_detach(struct callq *q)
{
    pthread_mutex_lock(&q->lock);
    ev_async_stop(q->loop, &q->async);
    q->loop = NULL;
    pthread_mutex_unlock(&q->lock);
}

void tw_call_from_thread(void (*fn)(void *), void *arg)
{
    callq_push(&thread_calls, fn, arg);
}

void tw_threads_attach(struct ev_loop *loop)
{
    callq_attach(&thread_calls, loop);
    callq_attach(&pool_results, loop);
}

void tw_threads_detach(void)
{
    callq_detach(&pool_results);
    callq_detach(&thread_calls);
}

/* The thread pool -------------------------------------------------------------------- */

struct job {
    void *(*fn)(void *arg);
    void *arg;
    void (*dtor)(void *value);
    tw_deferred *d;             /* the job's reference; NULL once cancelled */
    void *value;
    tw_failure *failure;        /* set when no worker could be started */
    bool started;               /* a worker took it (under the pool's lock) */
    struct job *prev, *next;    /* in the queue */
};

/* Workers and the reactor thread share the fields under `lock`; the worker
 * list and the trigger belong to the reactor thread. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct job *head, *tail;
    size_t queued;
    unsigned size;              /* at most this many calls run at once */
    unsigned busy;              /* workers running a call */
    unsigned idle;              /* workers waiting for one */
    bool stopping;

    pthread_t *workers;
    unsigned nworkers;
    int trigger_id;             /* the DURING trigger that stops the pool; 0: none */
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .size = 10,
};

static void queue_unlink(struct job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        pool.head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        pool.tail = job->prev;
    job->prev = job->next = NULL;
    pool.queued--;
}

/* In the reactor thread: fires the job's Deferred, or releases the value
 * nobody wants any more. */
static void job_finish(void *arg)
{
    struct job *job = arg;
    tw_deferred *d = job->d;
    if (!d) {
        if (job->dtor && job->value)
            job->dtor(job->value);
        tw_failure_unref(job->failure);
    } else if (job->failure) {
        tw_deferred_errback(d, job->failure);
    } else {
        tw_deferred_callback(d, job->value, job->dtor);
    }
    tw_deferred_unref(d);
    free(job);
}

static void *worker_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (!pool.stopping && (!pool.head || pool.busy >= pool.size)) {
            pool.idle++;
            pthread_cond_wait(&pool.wake, &pool.lock);
            pool.idle--;
        }
        if (pool.stopping)
            break;
        struct job *job = pool.head;
        queue_unlink(job);
        job->started = true;
        pool.busy++;
        pthread_mutex_unlock(&pool.lock);

        job->value = job->fn(job->arg);
        callq_push(&pool_results, job_finish, job);

        pthread_mutex_lock(&pool.lock);
        pool.busy--;
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* A job not yet started leaves the queue and never runs; a running one is
 * left to finish, and job_finish releases its value. */
static void job_cancel(tw_deferred *d, void *arg)
{
    struct job *job = arg;
    pthread_mutex_lock(&pool.lock);
    bool queued = !job->started;
    if (queued)
        queue_unlink(job);
    pthread_mutex_unlock(&pool.lock);
    job->d = NULL;
    tw_deferred_unref(d);
    if (queued)
        free(job);
}

/* The DURING shutdown trigger: cancels the calls not started, waits for the
 * running ones and delivers every finished result. */
static tw_deferred *pool_stop(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pool.lock);
    pool.stopping = true;
    struct job *unstarted = pool.head;
    for (struct job *job = unstarted; job; job = job->next)
        job->started = true;        /* out of the queue: a cancel must not unlink it */
    pool.head = pool.tail = NULL;
    pool.queued = 0;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    for (unsigned i = 0; i < pool.nworkers; i++)
        pthread_join(pool.workers[i], NULL);
    free(pool.workers);
    pool.workers = NULL;
    pool.nworkers = 0;
    pool.stopping = false;          /* no worker left to read it */
    tw_reactor_remove_system_event_trigger(pool.trigger_id);
    pool.trigger_id = 0;

    callq_drain(&pool_results);
    while (unstarted) {
        struct job *job = unstarted;
        unstarted = job->next;
        job->failure = tw_failure_new(TW_ERR_CANCELLED, 0, NULL,
                                      "the reactor shut down before the call ran");
        job_finish(job);
    }
    return NULL;
}

/* Starts a worker with every signal blocked: signals are the loop's. */
static int start_worker(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int err = pthread_create(&t, NULL, worker_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return -err;
    pool.workers = tw_xrealloc(pool.workers, (pool.nworkers + 1) * sizeof *pool.workers);
    pool.workers[pool.nworkers++] = t;
    if (!pool.trigger_id)
        pool.trigger_id = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_DURING, pool_stop, NULL);
    return 0;
}

tw_deferred *tw_defer_to_thread(void *(*fn)(void *), void *arg, void (*dtor)(void *))
{
    if (!fn)
        return NULL;
    struct job *job = tw_xcalloc(1, sizeof *job);
    job->fn = fn;
    job->arg = arg;
    job->dtor = dtor;
    job->d = tw_deferred_new(job_cancel, job);

    pthread_mutex_lock(&pool.lock);
    job->prev = pool.tail;
    if (pool.tail)
        pool.tail->next = job;
    else
        pool.head = job;
    pool.tail = job;
    pool.queued++;
    bool more = pool.queued > pool.idle && pool.nworkers < pool.size;
    pthread_cond_signal(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    int err = more ? start_worker() : 0;
    if (err && pool.nworkers == 0) {
        /* Nobody would ever run it: fail it, from the loop. */
        pthread_mutex_lock(&pool.lock);
        queue_unlink(job);
        job->started = true;
        pthread_mutex_unlock(&pool.lock);
        job->failure = tw_failure_from_errno(err, "starting a thread pool worker");
        callq_push(&pool_results, job_finish, job);
    } else if (err) {
        tw_log(TW_LOG_WARN, "thread pool: cannot start another worker: error %d", -err);
    }
    return tw_deferred_ref(job->d);
}

int tw_reactor_set_thread_pool_size(unsigned n)
{
    if (n < 1)
        return -EINVAL;
    pthread_mutex_lock(&pool.lock);
    pool.size = n;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    return 0;
}
