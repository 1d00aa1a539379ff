/* twine: DeferredLock, DeferredSemaphore and DeferredQueue.
 *
 * Handing a token or a value to a waiter fires its Deferred, whose callbacks
 * may release or put again at once. Those nested calls only update the counts
 * and return; the outermost dispatch loop does the handing over, so 100,000
 * waiters that each release synchronously need constant C stack. */
#include "internal.h"

#include <errno.h>
#include <stdbool.h>

/* Semaphore (a lock is a semaphore of one token) ----------------------------- */

struct tw_semaphore {
    unsigned tokens, limit;
    bool dispatching;
    bool free_pending;       /* freed from inside a dispatch: free when it ends */
    tw_waitq waiters;
};

struct tw_lock {
    tw_semaphore sem;
};

static void cancel_all(tw_waitq *q)
{
    tw_deferred *d;
    while ((d = tw_waitq_pop(q))) {
        tw_deferred_errback(d, tw_failure_new(TW_ERR_CANCELLED, 0, NULL,
                                              "the lock, semaphore or queue was freed"));
        tw_deferred_unref(d);
    }
}

/* Teardown counts as a dispatch, so the errbacks of cancelled waiters that
 * release, acquire or free again only update state this loop then drops. */
static void sem_destroy(tw_semaphore *s)
{
    s->dispatching = true;
    cancel_all(&s->waiters);
    free(s);
}

static void sem_dispatch(tw_semaphore *s)
{
    if (s->dispatching)
        return;
    s->dispatching = true;
    while (!s->free_pending && s->tokens > 0 && s->waiters.n > 0) {
        tw_deferred *d = tw_waitq_pop(&s->waiters);
        s->tokens--;
        tw_deferred_callback(d, s, NULL);
        tw_deferred_unref(d);
    }
    s->dispatching = false;
    if (s->free_pending)
        sem_destroy(s);
}

static void sem_init(tw_semaphore *s, unsigned tokens)
{
    s->tokens = s->limit = tokens;
    s->dispatching = s->free_pending = false;
    s->waiters = (tw_waitq){ 0 };
}

tw_semaphore *tw_semaphore_new(unsigned tokens)
{
    if (tokens < 1)
        return NULL;
    tw_semaphore *s = tw_xmalloc(sizeof *s);
    sem_init(s, tokens);
    return s;
}

void tw_semaphore_free(tw_semaphore *s)
{
    if (!s)
        return;
    if (s->dispatching)
        s->free_pending = true;
    else
        sem_destroy(s);
}

tw_deferred *tw_semaphore_acquire(tw_semaphore *s)
{
    tw_deferred *d = tw_waitq_push(&s->waiters);
    sem_dispatch(s);
    return d;
}

int tw_semaphore_release(tw_semaphore *s)
{
    if (s->tokens >= s->limit)
        return -EPERM;
    s->tokens++;
    sem_dispatch(s);
    return 0;
}

unsigned tw_semaphore_tokens(const tw_semaphore *s) { return s->tokens; }
unsigned tw_semaphore_limit(const tw_semaphore *s) { return s->limit; }
size_t tw_semaphore_waiting(const tw_semaphore *s) { return s->waiters.n; }

/* run(): acquire, call fn, release once its result is ready. */
struct run_ctx {
    tw_semaphore *sem;
    tw_callback fn;
    void *arg;
};

static void release_and_pass(tw_result *r, void *arg)
{
    (void)r;
    tw_semaphore_release(arg);
}

static void run_execute(tw_result *r, void *arg)
{
    struct run_ctx *ctx = arg;
    tw_deferred *inner = tw_maybe_deferred(ctx->fn, ctx->arg);
    tw_deferred_add_both(inner, release_and_pass, ctx->sem);
    tw_result_wait(r, inner);
}

tw_deferred *tw_semaphore_run(tw_semaphore *s, tw_callback fn, void *arg)
{
    struct run_ctx *ctx = tw_xmalloc(sizeof *ctx);
    *ctx = (struct run_ctx){ s, fn, arg };
    tw_deferred *d = tw_semaphore_acquire(s);
    tw_deferred_add_callbacks_full(d, run_execute, NULL, ctx, free);
    return d;
}

/* The lock's Deferreds fire with the lock, not its inner semaphore. */
static void to_lock(tw_result *r, void *arg)
{
    tw_result_set_value(r, arg, NULL);
}

tw_lock *tw_lock_new(void)
{
    tw_lock *l = tw_xmalloc(sizeof *l);
    sem_init(&l->sem, 1);
    return l;
}

void tw_lock_free(tw_lock *l)
{
    if (l)
        tw_semaphore_free(&l->sem);
}

tw_deferred *tw_lock_acquire(tw_lock *l)
{
    tw_deferred *d = tw_semaphore_acquire(&l->sem);
    tw_deferred_add_callback(d, to_lock, l);
    return d;
}

int tw_lock_release(tw_lock *l) { return tw_semaphore_release(&l->sem); }
int tw_lock_locked(const tw_lock *l) { return l->sem.tokens == 0; }
size_t tw_lock_waiting(const tw_lock *l) { return l->sem.waiters.n; }

tw_deferred *tw_lock_run(tw_lock *l, tw_callback fn, void *arg)
{
    return tw_semaphore_run(&l->sem, fn, arg);
}

/* Queue ----------------------------------------------------------------------- */

struct pending_value {
    void *value;
    void (*dtor)(void *);
};

struct tw_queue {
    size_t size, backlog;
    struct pending_value *ring;   /* pending values: ring[(head + i) % cap] */
    size_t head, count, cap;
    bool dispatching;
    bool free_pending;
    tw_waitq waiters;
};

tw_queue *tw_queue_new(size_t size, size_t backlog)
{
    tw_queue *q = tw_xcalloc(1, sizeof *q);
    q->size = size;
    q->backlog = backlog;
    return q;
}

static void queue_destroy(tw_queue *q)
{
    q->dispatching = true;       /* as in sem_destroy */
    cancel_all(&q->waiters);
    for (size_t i = 0; i < q->count; i++) {
        struct pending_value *p = &q->ring[(q->head + i) % q->cap];
        if (p->dtor && p->value)
            p->dtor(p->value);
    }
    free(q->ring);
    free(q);
}

void tw_queue_free(tw_queue *q)
{
    if (!q)
        return;
    if (q->dispatching)
        q->free_pending = true;
    else
        queue_destroy(q);
}

static void ring_push(tw_queue *q, void *value, void (*dtor)(void *))
{
    if (q->count == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        struct pending_value *ring = tw_xmalloc(cap * sizeof *ring);
        for (size_t i = 0; i < q->count; i++)
            ring[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->count) % q->cap] = (struct pending_value){ value, dtor };
    q->count++;
}

static struct pending_value ring_pop(tw_queue *q)
{
    struct pending_value p = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return p;
}

static void queue_dispatch(tw_queue *q)
{
    if (q->dispatching)
        return;
    q->dispatching = true;
    while (!q->free_pending && q->count > 0 && q->waiters.n > 0) {
        tw_deferred *d = tw_waitq_pop(&q->waiters);
        struct pending_value p = ring_pop(q);
        tw_deferred_callback(d, p.value, p.dtor);
        tw_deferred_unref(d);
    }
    q->dispatching = false;
    if (q->free_pending)
        queue_destroy(q);
}

/* While a dispatch runs, pending values and waiting gets coexist; each counts
 * only beyond what the other will absorb. */
int tw_queue_put(tw_queue *q, void *value, void (*dtor)(void *))
{
    if (q->size && q->count >= q->waiters.n + q->size) {
        if (dtor && value)
            dtor(value);
        return -ENOBUFS;
    }
    ring_push(q, value, dtor);
    queue_dispatch(q);
    return 0;
}

tw_deferred *tw_queue_get(tw_queue *q)
{
    if (q->backlog && q->waiters.n >= q->count + q->backlog)
        return NULL;
    tw_deferred *d = tw_waitq_push(&q->waiters);
    queue_dispatch(q);
    return d;
}

size_t tw_queue_pending(const tw_queue *q)
{
    return q->count > q->waiters.n ? q->count - q->waiters.n : 0;
}

size_t tw_queue_waiting(const tw_queue *q)
{
    return q->waiters.n > q->count ? q->waiters.n - q->count : 0;
}
