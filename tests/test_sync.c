/* twine tests: locks, semaphores and queues (include/twine/sync.h).
 * Ported from Twisted's test_defer.py (OtherPrimitivesTests) where a test
 * names its original. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

static const char GENERIC_ERR[] = "generic";

/* Each test captures the log; any message fails it (nothing here should log). */
static int capture_log(void **state)
{
    (void)state;
    tw_test_capture_log();
    return 0;
}

static int expect_quiet_log(void **state)
{
    (void)state;
    int unexpected = tw_test_captured.count;
    if (unexpected)
        print_error("unexpected log messages:\n%s", tw_test_captured.all);
    tw_test_restore_log();
    return unexpected ? -1 : 0;
}

/* Callbacks ------------------------------------------------------------------- */

static void incr(tw_result *r, void *arg)
{
    (void)r;
    (*(int *)arg)++;
}

/* What a callback saw (borrowed: compare it, do not keep it). */
typedef struct observed {
    int calls;
    void *value;
    void (*dtor)(void *);
    const tw_failure *failure;
} observed;

static void observe(tw_result *r, void *arg)
{
    observed *o = arg;
    o->calls++;
    o->value = r->value;
    o->dtor = r->dtor;
    o->failure = r->failure;
}

/* Swallows any failure, so a test can drop a Deferred it has examined. */
static void swallow(tw_result *r, void *arg)
{
    (void)arg;
    tw_result_set_value(r, NULL, NULL);
}

static void drop_handled(tw_deferred *d)
{
    tw_deferred_add_errback(d, swallow, NULL);
    tw_deferred_unref(d);
}

static int is_cancelled(const observed *o)
{
    return o->calls == 1 && tw_failure_check(o->failure, TW_ERR_CANCELLED, -1);
}

/* The order in which waiters were served. */
typedef struct line {
    int served;
    int order[16];
} line;

typedef struct ticket {
    line *line;
    int id;
} ticket;

static void serve(tw_result *r, void *arg)
{
    (void)r;
    ticket *t = arg;
    t->line->order[t->line->served++] = t->id;
}

/* Adds an observer to d and drops the caller's reference. */
static void observe_and_drop(tw_deferred *d, observed *o)
{
    tw_deferred_add_both(d, observe, o);
    tw_deferred_unref(d);
}

/* Runs fn(arg) on a thread with a 256 KiB stack: deep recursion crashes it.
 * fn must not use cmocka's assertions (they cannot leave another thread). */
static void run_on_small_stack(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t thread;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
    assert_int_equal(pthread_create(&thread, &attr, fn, arg), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    pthread_attr_destroy(&attr);
}

enum { MANY = 100000 };

/* Lock ------------------------------------------------------------------------- */

/* A lock_run body that records its run and waits on `control`. */
typedef struct run_probe {
    int ran;
    tw_deferred *control;
} run_probe;

static void wait_on_control(tw_result *r, void *arg)
{
    run_probe *p = arg;
    p->ran++;
    tw_result_wait(r, tw_deferred_ref(p->control));
}

/* Twisted: OtherPrimitivesTests.testLock */
static void test_lock_acquire_release_run_and_cancel(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    int counter = 0;

    tw_deferred *d = tw_lock_acquire(lock);
    tw_deferred_add_callback(d, incr, &counter);
    tw_deferred_unref(d);
    assert_true(tw_lock_locked(lock));
    assert_int_equal(counter, 1);

    d = tw_lock_acquire(lock);
    tw_deferred_add_callback(d, incr, &counter);
    tw_deferred_unref(d);
    assert_true(tw_lock_locked(lock));
    assert_int_equal(counter, 1);

    assert_int_equal(tw_lock_release(lock), 0);
    assert_true(tw_lock_locked(lock));
    assert_int_equal(counter, 2);

    assert_int_equal(tw_lock_release(lock), 0);
    assert_false(tw_lock_locked(lock));
    assert_int_equal(counter, 2);

    run_probe probe = { .control = tw_deferred_new(NULL, NULL) };
    tw_deferred *result = tw_lock_run(lock, wait_on_control, &probe);
    assert_true(tw_lock_locked(lock));
    assert_int_equal(probe.ran, 1);
    observed run_result = { 0 };
    tw_deferred_add_callback(result, observe, &run_result);

    d = tw_lock_acquire(lock);
    tw_deferred_add_callback(d, incr, &counter);
    tw_deferred_unref(d);
    assert_true(tw_lock_locked(lock));
    assert_int_equal(counter, 2);

    static int second_unique;
    tw_deferred_callback(probe.control, &second_unique, NULL);
    assert_int_equal(run_result.calls, 1);
    assert_ptr_equal(run_result.value, &second_unique);
    assert_true(tw_lock_locked(lock));
    assert_int_equal(counter, 3);

    observed cancelled = { 0 };
    d = tw_lock_acquire(lock);
    tw_deferred_add_both(d, observe, &cancelled);
    tw_deferred_cancel(d);
    assert_true(is_cancelled(&cancelled));
    drop_handled(d);

    assert_int_equal(tw_lock_release(lock), 0);
    assert_false(tw_lock_locked(lock));

    tw_deferred_unref(probe.control);
    tw_deferred_unref(result);
    tw_lock_free(lock);
}

static void test_lock_acquire_fires_at_once_with_the_lock(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    assert_false(tw_lock_locked(lock));
    assert_int_equal(tw_lock_waiting(lock), 0);

    observed o = { 0 };
    observe_and_drop(tw_lock_acquire(lock), &o);
    assert_int_equal(o.calls, 1);
    assert_ptr_equal(o.value, lock);
    assert_null(o.failure);
    assert_true(tw_lock_locked(lock));
    assert_int_equal(tw_lock_release(lock), 0);
    tw_lock_free(lock);
}

static void test_lock_waiters_are_served_in_fifo_order(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    line served = { 0 };
    ticket tickets[5];
    tw_deferred_unref(tw_lock_acquire(lock));
    for (int i = 0; i < 5; i++) {
        tickets[i] = (ticket){ &served, i };
        tw_deferred *d = tw_lock_acquire(lock);
        tw_deferred_add_callback(d, serve, &tickets[i]);
        tw_deferred_unref(d);
    }
    assert_int_equal(tw_lock_waiting(lock), 5);

    for (int i = 0; i < 5; i++) {
        assert_int_equal(tw_lock_release(lock), 0);
        assert_int_equal(served.served, i + 1);
        assert_int_equal(served.order[i], i);
        assert_int_equal(tw_lock_waiting(lock), (size_t)(4 - i));
        assert_true(tw_lock_locked(lock));
    }
    assert_int_equal(tw_lock_release(lock), 0);
    assert_false(tw_lock_locked(lock));
    tw_lock_free(lock);
}

static void test_lock_release_when_unlocked_is_eperm(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    assert_int_equal(tw_lock_release(lock), -EPERM);
    tw_deferred_unref(tw_lock_acquire(lock));
    assert_int_equal(tw_lock_release(lock), 0);
    assert_int_equal(tw_lock_release(lock), -EPERM);
    assert_false(tw_lock_locked(lock));
    tw_lock_free(lock);
}

/* lock_run bodies: a value, a failure, or whatever probe->control gives. */
typedef struct run_check {
    tw_lock *lock;
    int ran;
    int locked_inside;
} run_check;

static void return_box(tw_result *r, void *arg)
{
    run_check *c = arg;
    c->ran++;
    c->locked_inside = tw_lock_locked(c->lock);
    tw_result_set_value(r, tw_test_box(42), tw_test_box_free);
}

static void return_failure(tw_result *r, void *arg)
{
    run_check *c = arg;
    c->ran++;
    c->locked_inside = tw_lock_locked(c->lock);
    tw_result_set_failure(r, tw_failure_new(GENERIC_ERR, 5, NULL, "body failed"));
}

static void test_lock_run_passes_the_value_on_and_releases(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    run_check check = { .lock = lock };
    tw_deferred *d = tw_lock_run(lock, return_box, &check);
    assert_int_equal(check.ran, 1);
    assert_true(check.locked_inside);
    assert_false(tw_lock_locked(lock));

    const tw_result *r = tw_deferred_result(d);
    assert_non_null(r);
    assert_null(r->failure);
    assert_int_equal(*(int *)r->value, 42);
    assert_int_equal(tw_test_live_boxes, 1);
    tw_deferred_unref(d);
    assert_int_equal(tw_test_live_boxes, 0);
    tw_lock_free(lock);
}

static void test_lock_run_passes_the_failure_on_and_releases(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    run_check check = { .lock = lock };
    observed o = { 0 };
    tw_deferred *d = tw_lock_run(lock, return_failure, &check);
    tw_deferred_add_errback(d, observe, &o);
    assert_int_equal(check.ran, 1);
    assert_true(check.locked_inside);
    assert_false(tw_lock_locked(lock));
    assert_true(tw_failure_check(o.failure, GENERIC_ERR, 5));
    drop_handled(d);
    tw_lock_free(lock);
}

static void test_lock_run_waits_for_the_lock(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    tw_deferred_unref(tw_lock_acquire(lock));
    run_check check = { .lock = lock };
    observed o = { 0 };
    observe_and_drop(tw_lock_run(lock, return_box, &check), &o);
    assert_int_equal(check.ran, 0);
    assert_int_equal(tw_lock_waiting(lock), 1);

    assert_int_equal(tw_lock_release(lock), 0);
    assert_int_equal(check.ran, 1);
    assert_true(check.locked_inside);
    assert_int_equal(o.calls, 1);
    assert_false(tw_lock_locked(lock));
    assert_int_equal(tw_test_live_boxes, 0);     /* released with the run's Deferred */
    tw_lock_free(lock);
}

static void test_lock_run_releases_when_its_deferred_fires(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    run_probe probe = { .control = tw_deferred_new(NULL, NULL) };
    tw_test_value v = { .id = 1 };
    observed o = { 0 };
    tw_deferred *d = tw_lock_run(lock, wait_on_control, &probe);
    tw_deferred_add_callback(d, observe, &o);
    assert_true(tw_lock_locked(lock));
    assert_int_equal(o.calls, 0);

    tw_deferred_callback(probe.control, &v, tw_test_value_dtor);
    assert_false(tw_lock_locked(lock));
    assert_int_equal(o.calls, 1);
    assert_ptr_equal(o.value, &v);
    assert_true(o.dtor == tw_test_value_dtor);    /* ownership moved along */

    tw_deferred_unref(probe.control);
    assert_int_equal(v.freed, 0);
    tw_deferred_unref(d);
    assert_int_equal(v.freed, 1);
    tw_lock_free(lock);
}

static void test_lock_run_releases_when_its_deferred_fails(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    run_probe probe = { .control = tw_deferred_new(NULL, NULL) };
    observed o = { 0 };
    tw_deferred *d = tw_lock_run(lock, wait_on_control, &probe);
    tw_deferred_add_errback(d, observe, &o);

    tw_failure *f = tw_failure_ref(tw_failure_new(GENERIC_ERR, 1, NULL, "later"));
    tw_deferred_errback(probe.control, f);
    assert_false(tw_lock_locked(lock));
    assert_ptr_equal(o.failure, f);

    tw_failure_unref(f);
    tw_deferred_unref(probe.control);
    drop_handled(d);
    tw_lock_free(lock);
}

static void test_lock_cancelling_a_running_run_releases(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    run_probe probe = { .control = tw_deferred_new(NULL, NULL) };
    observed o = { 0 };
    tw_deferred *d = tw_lock_run(lock, wait_on_control, &probe);
    tw_deferred_add_errback(d, observe, &o);

    tw_deferred_cancel(d);           /* cancels what the body waits on */
    assert_true(tw_deferred_called(probe.control));
    assert_true(is_cancelled(&o));
    assert_false(tw_lock_locked(lock));

    tw_deferred_unref(probe.control);
    drop_handled(d);
    tw_lock_free(lock);
}

/* Twisted: OtherPrimitivesTests.test_cancelLockAfterAcquired */
static void test_lock_cancel_after_acquired_does_nothing(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    observed o = { 0 };
    tw_deferred *d = tw_lock_acquire(lock);
    tw_deferred_add_errback(d, observe, &o);
    tw_deferred_cancel(d);
    assert_int_equal(o.calls, 0);
    assert_true(tw_lock_locked(lock));
    tw_deferred_unref(d);
    assert_int_equal(tw_lock_release(lock), 0);
    tw_lock_free(lock);
}

/* Twisted: OtherPrimitivesTests.test_cancelLockBeforeAcquired, and the others
 * in line still get the lock. */
static void test_lock_cancel_before_acquired_leaves_the_line(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    tw_deferred_unref(tw_lock_acquire(lock));
    observed cancelled = { 0 }, next = { 0 };
    tw_deferred *d = tw_lock_acquire(lock);
    tw_deferred_add_both(d, observe, &cancelled);
    observe_and_drop(tw_lock_acquire(lock), &next);
    assert_int_equal(tw_lock_waiting(lock), 2);

    tw_deferred_cancel(d);
    assert_true(is_cancelled(&cancelled));
    assert_int_equal(tw_lock_waiting(lock), 1);

    assert_int_equal(tw_lock_release(lock), 0);
    assert_int_equal(next.calls, 1);
    assert_ptr_equal(next.value, lock);
    assert_int_equal(cancelled.calls, 1);
    assert_int_equal(tw_lock_release(lock), 0);
    assert_false(tw_lock_locked(lock));

    drop_handled(d);
    tw_lock_free(lock);
}

static void test_lock_cancel_waiting_run_never_runs_the_body(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    tw_deferred_unref(tw_lock_acquire(lock));
    run_check check = { .lock = lock };
    observed o = { 0 };
    tw_deferred *d = tw_lock_run(lock, return_box, &check);
    tw_deferred_add_errback(d, observe, &o);
    tw_deferred_cancel(d);
    assert_true(is_cancelled(&o));
    assert_int_equal(tw_lock_waiting(lock), 0);

    assert_int_equal(tw_lock_release(lock), 0);
    assert_int_equal(check.ran, 0);
    assert_false(tw_lock_locked(lock));
    drop_handled(d);
    tw_lock_free(lock);
}

/* A waiter served ahead of another cancels it from its callback. */
typedef struct canceller_ctx {
    tw_deferred *victim;
} canceller_ctx;

static void cancel_victim(tw_result *r, void *arg)
{
    (void)r;
    tw_deferred_cancel(((canceller_ctx *)arg)->victim);
}

static void test_lock_waiter_cancelled_by_the_one_ahead(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    tw_deferred_unref(tw_lock_acquire(lock));
    canceller_ctx ctx;
    observed first = { 0 }, victim = { 0 }, last = { 0 };
    tw_deferred *d = tw_lock_acquire(lock);
    tw_deferred_add_callback(d, cancel_victim, &ctx);
    observe_and_drop(d, &first);
    ctx.victim = tw_lock_acquire(lock);
    tw_deferred_add_both(ctx.victim, observe, &victim);
    observe_and_drop(tw_lock_acquire(lock), &last);

    assert_int_equal(tw_lock_release(lock), 0);
    assert_int_equal(first.calls, 1);
    assert_true(is_cancelled(&victim));
    assert_int_equal(last.calls, 0);
    assert_int_equal(tw_lock_waiting(lock), 1);
    assert_int_equal(tw_lock_release(lock), 0);
    assert_int_equal(last.calls, 1);
    assert_int_equal(tw_lock_release(lock), 0);
    assert_false(tw_lock_locked(lock));

    drop_handled(ctx.victim);
    tw_lock_free(lock);
}

static void test_lock_free_cancels_the_waiters(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    tw_deferred_unref(tw_lock_acquire(lock));
    observed a = { 0 }, b = { 0 };
    tw_deferred *da = tw_lock_acquire(lock);
    tw_deferred *db = tw_lock_acquire(lock);
    tw_deferred_add_both(da, observe, &a);
    tw_deferred_add_both(db, observe, &b);

    tw_lock_free(lock);
    assert_true(is_cancelled(&a));
    assert_true(is_cancelled(&b));
    drop_handled(da);
    drop_handled(db);
}

/* A holder that releases and frees the lock from its callback: the waiters
 * behind it are cancelled, not handed the freed lock. */
static void release_and_free(tw_result *r, void *arg)
{
    (void)arg;
    tw_lock *lock = r->value;
    tw_lock_release(lock);
    tw_lock_free(lock);
}

static void test_lock_freed_from_a_callback_cancels_the_rest(void **state)
{
    (void)state;
    tw_lock *lock = tw_lock_new();
    tw_deferred_unref(tw_lock_acquire(lock));
    tw_deferred *d = tw_lock_acquire(lock);
    tw_deferred_add_callback(d, release_and_free, NULL);
    tw_deferred_unref(d);
    observed rest = { 0 };
    tw_deferred *waiting = tw_lock_acquire(lock);
    tw_deferred_add_both(waiting, observe, &rest);

    tw_lock_release(lock);
    assert_true(is_cancelled(&rest));
    drop_handled(waiting);
}

/* MANY waiters, each releasing in its callback, served by one release. */
typedef struct many_lock {
    tw_lock *lock;
    size_t waiting;
    int served, release_errors, locked_after;
} many_lock;

static void release_lock_from_callback(tw_result *r, void *arg)
{
    many_lock *m = arg;
    m->served++;
    if (tw_lock_release(r->value) != 0)
        m->release_errors++;
}

static void *many_lock_waiters(void *arg)
{
    many_lock *m = arg;
    m->lock = tw_lock_new();
    tw_deferred_unref(tw_lock_acquire(m->lock));
    for (int i = 0; i < MANY; i++) {
        tw_deferred *d = tw_lock_acquire(m->lock);
        tw_deferred_add_callback(d, release_lock_from_callback, m);
        tw_deferred_unref(d);
    }
    m->waiting = tw_lock_waiting(m->lock);
    if (tw_lock_release(m->lock) != 0)
        m->release_errors++;
    m->locked_after = tw_lock_locked(m->lock);
    tw_lock_free(m->lock);
    return NULL;
}

static void test_lock_many_synchronous_waiters_need_constant_stack(void **state)
{
    (void)state;
    many_lock m = { 0 };
    run_on_small_stack(many_lock_waiters, &m);
    assert_int_equal(m.waiting, MANY);
    assert_int_equal(m.served, MANY);
    assert_int_equal(m.release_errors, 0);
    assert_false(m.locked_after);
}

/* Semaphore ------------------------------------------------------------------- */

/* Records which side of the chain ran; the errback also traps the failure. */
static void mark_called_back(tw_result *r, void *arg)
{
    (void)r;
    *(int *)arg = 0;
}

static void mark_errbacked(tw_result *r, void *arg)
{
    *(int *)arg = 1;
    tw_result_set_value(r, NULL, NULL);
}

/* Twisted: OtherPrimitivesTests.testSemaphore */
static void test_semaphore_acquire_release_run_and_cancel(void **state)
{
    (void)state;
    enum { N = 13 };
    tw_semaphore *sem = tw_semaphore_new(N);
    int counter = 0;

    run_probe probe = { .control = tw_deferred_new(NULL, NULL) };
    observed results = { 0 };
    tw_deferred *d = tw_semaphore_run(sem, wait_on_control, &probe);
    tw_deferred_add_callback(d, observe, &results);
    tw_deferred_add_callback(d, incr, &counter);
    tw_deferred_unref(d);
    assert_int_equal(results.calls, 0);
    assert_int_equal(probe.ran, 1);
    tw_deferred_callback(probe.control, NULL, NULL);
    assert_int_equal(results.calls, 1);
    assert_null(results.value);
    assert_int_equal(counter, 1);
    tw_deferred_unref(probe.control);

    counter = 0;
    for (int i = 1; i <= N; i++) {
        d = tw_semaphore_acquire(sem);
        tw_deferred_add_callback(d, incr, &counter);
        tw_deferred_unref(d);
        assert_int_equal(counter, i);
    }

    int success = -1;
    d = tw_semaphore_acquire(sem);
    tw_deferred_add_callbacks(d, mark_called_back, mark_errbacked, &success);
    tw_deferred_cancel(d);
    assert_int_equal(success, 1);
    tw_deferred_unref(d);

    d = tw_semaphore_acquire(sem);
    tw_deferred_add_callback(d, incr, &counter);
    tw_deferred_unref(d);
    assert_int_equal(counter, N);

    assert_int_equal(tw_semaphore_release(sem), 0);
    assert_int_equal(counter, N + 1);

    for (int i = 1; i <= N; i++) {
        assert_int_equal(tw_semaphore_release(sem), 0);
        assert_int_equal(counter, N + 1);
    }
    assert_int_equal(tw_semaphore_tokens(sem), N);
    tw_semaphore_free(sem);
}

/* Twisted: OtherPrimitivesTests.test_semaphoreInvalidTokens */
static void test_semaphore_needs_a_token(void **state)
{
    (void)state;
    assert_null(tw_semaphore_new(0));
}

static void test_semaphore_counts_tokens(void **state)
{
    (void)state;
    tw_semaphore *sem = tw_semaphore_new(2);
    assert_int_equal(tw_semaphore_limit(sem), 2);
    assert_int_equal(tw_semaphore_tokens(sem), 2);

    observed a = { 0 }, b = { 0 }, c = { 0 };
    observe_and_drop(tw_semaphore_acquire(sem), &a);
    assert_int_equal(tw_semaphore_tokens(sem), 1);
    observe_and_drop(tw_semaphore_acquire(sem), &b);
    assert_int_equal(tw_semaphore_tokens(sem), 0);
    observe_and_drop(tw_semaphore_acquire(sem), &c);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 0);
    assert_int_equal(tw_semaphore_waiting(sem), 1);

    assert_int_equal(tw_semaphore_release(sem), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(tw_semaphore_tokens(sem), 0);
    assert_int_equal(tw_semaphore_waiting(sem), 0);
    assert_int_equal(tw_semaphore_limit(sem), 2);
    tw_semaphore_release(sem);
    tw_semaphore_release(sem);
    assert_int_equal(tw_semaphore_tokens(sem), 2);
    tw_semaphore_free(sem);
}

static void test_semaphore_release_beyond_limit_is_eperm(void **state)
{
    (void)state;
    tw_semaphore *sem = tw_semaphore_new(2);
    assert_int_equal(tw_semaphore_release(sem), -EPERM);
    tw_deferred_unref(tw_semaphore_acquire(sem));
    assert_int_equal(tw_semaphore_release(sem), 0);
    assert_int_equal(tw_semaphore_release(sem), -EPERM);
    assert_int_equal(tw_semaphore_tokens(sem), 2);
    tw_semaphore_free(sem);
}

/* Jobs started by semaphore_run; the test fires them later. */
enum { JOBS = 10, LIMIT = 3 };

typedef struct job_pool {
    int started, active, max_active;
    tw_deferred *jobs[JOBS];
    int values[JOBS];
} job_pool;

static void job_done(tw_result *r, void *arg)
{
    (void)r;
    ((job_pool *)arg)->active--;
}

static void start_job(tw_result *r, void *arg)
{
    job_pool *pool = arg;
    tw_deferred *job = tw_deferred_new(NULL, NULL);
    pool->jobs[pool->started++] = job;
    if (++pool->active > pool->max_active)
        pool->max_active = pool->active;
    tw_deferred_add_callback(job, job_done, pool);
    tw_result_wait(r, tw_deferred_ref(job));
}

static void test_semaphore_run_bounds_concurrency(void **state)
{
    (void)state;
    tw_semaphore *sem = tw_semaphore_new(LIMIT);
    job_pool pool = { 0 };
    observed runs[JOBS] = { { 0 } };
    for (int i = 0; i < JOBS; i++)
        observe_and_drop(tw_semaphore_run(sem, start_job, &pool), &runs[i]);
    assert_int_equal(pool.started, LIMIT);
    assert_int_equal(tw_semaphore_waiting(sem), JOBS - LIMIT);

    /* Finish the most recently started job each time. */
    bool finished[JOBS] = { false };
    for (int done = 0; done < JOBS; done++) {
        int k = pool.started - 1;
        while (finished[k])
            k--;
        pool.values[k] = 100 + k;
        tw_deferred_callback(pool.jobs[k], &pool.values[k], NULL);
        finished[k] = true;
        assert_true(pool.active <= LIMIT);
    }
    assert_int_equal(pool.started, JOBS);
    assert_int_equal(pool.max_active, LIMIT);
    assert_int_equal(pool.active, 0);
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(runs[i].calls, 1);
        assert_ptr_equal(runs[i].value, &pool.values[i]);    /* runs start in order */
        tw_deferred_unref(pool.jobs[i]);
    }
    assert_int_equal(tw_semaphore_tokens(sem), LIMIT);
    tw_semaphore_free(sem);
}

/* Twisted: OtherPrimitivesTests.test_cancelSemaphoreAfterAcquired */
static void test_semaphore_cancel_after_acquired_does_nothing(void **state)
{
    (void)state;
    tw_semaphore *sem = tw_semaphore_new(1);
    observed o = { 0 };
    tw_deferred *d = tw_semaphore_acquire(sem);
    tw_deferred_add_errback(d, observe, &o);
    tw_deferred_cancel(d);
    assert_int_equal(o.calls, 0);
    assert_int_equal(tw_semaphore_tokens(sem), 0);
    tw_deferred_unref(d);
    tw_semaphore_release(sem);
    tw_semaphore_free(sem);
}

/* Twisted: OtherPrimitivesTests.test_cancelSemaphoreBeforeAcquired */
static void test_semaphore_cancel_before_acquired_leaves_the_line(void **state)
{
    (void)state;
    tw_semaphore *sem = tw_semaphore_new(1);
    tw_deferred_unref(tw_semaphore_acquire(sem));
    observed cancelled = { 0 }, next = { 0 };
    tw_deferred *d = tw_semaphore_acquire(sem);
    tw_deferred_add_both(d, observe, &cancelled);
    observe_and_drop(tw_semaphore_acquire(sem), &next);

    tw_deferred_cancel(d);
    assert_true(is_cancelled(&cancelled));
    assert_int_equal(tw_semaphore_waiting(sem), 1);
    assert_int_equal(tw_semaphore_release(sem), 0);
    assert_int_equal(next.calls, 1);
    assert_int_equal(tw_semaphore_release(sem), 0);
    assert_int_equal(tw_semaphore_tokens(sem), 1);

    drop_handled(d);
    tw_semaphore_free(sem);
}

static void test_semaphore_free_cancels_the_waiters(void **state)
{
    (void)state;
    tw_semaphore *sem = tw_semaphore_new(1);
    tw_deferred_unref(tw_semaphore_acquire(sem));
    observed o = { 0 };
    tw_deferred *d = tw_semaphore_acquire(sem);
    tw_deferred_add_both(d, observe, &o);
    tw_semaphore_free(sem);
    assert_true(is_cancelled(&o));
    drop_handled(d);
}

/* MANY waiters, each releasing its token from its callback. */
typedef struct many_sem {
    size_t waiting;
    int served, release_errors;
    unsigned tokens_after;
} many_sem;

typedef struct sem_waiter_ctx {
    tw_semaphore *sem;
    many_sem *m;
} sem_waiter_ctx;

static void release_token_from_callback(tw_result *r, void *arg)
{
    (void)r;
    sem_waiter_ctx *ctx = arg;
    ctx->m->served++;
    if (tw_semaphore_release(ctx->sem) != 0)
        ctx->m->release_errors++;
}

static void *many_semaphore_waiters(void *arg)
{
    many_sem *m = arg;
    tw_semaphore *sem = tw_semaphore_new(LIMIT);
    sem_waiter_ctx ctx = { sem, m };
    for (int i = 0; i < LIMIT; i++)
        tw_deferred_unref(tw_semaphore_acquire(sem));
    for (int i = 0; i < MANY; i++) {
        tw_deferred *d = tw_semaphore_acquire(sem);
        tw_deferred_add_callback(d, release_token_from_callback, &ctx);
        tw_deferred_unref(d);
    }
    m->waiting = tw_semaphore_waiting(sem);
    for (int i = 0; i < LIMIT; i++)
        if (tw_semaphore_release(sem) != 0)
            m->release_errors++;
    m->tokens_after = tw_semaphore_tokens(sem);
    tw_semaphore_free(sem);
    return NULL;
}

static void test_semaphore_many_synchronous_waiters_need_constant_stack(void **state)
{
    (void)state;
    many_sem m = { 0 };
    run_on_small_stack(many_semaphore_waiters, &m);
    assert_int_equal(m.waiting, MANY);
    assert_int_equal(m.served, MANY);
    assert_int_equal(m.release_errors, 0);
    assert_int_equal(m.tokens_after, LIMIT);
}

/* Queue ------------------------------------------------------------------------ */

/* Appends each value it gets (an int *) to a list of ints. */
typedef struct gotten {
    int n;
    int values[16];
} gotten;

static void append_value(tw_result *r, void *arg)
{
    gotten *g = arg;
    g->values[g->n++] = *(int *)r->value;
}

static void get_into(tw_queue *q, gotten *g)
{
    tw_deferred *d = tw_queue_get(q);
    assert_non_null(d);
    tw_deferred_add_callback(d, append_value, g);
    tw_deferred_unref(d);
}

/* Twisted: OtherPrimitivesTests.testQueue. In twine a size or backlog of 0
 * means no limit, so Twisted's size=0 and backlog=0 cases have no
 * counterpart (see test_queue_zero_means_no_limit). */
static void test_queue_size_and_backlog(void **state)
{
    (void)state;
    enum { N = 2, M = 2 };
    static int ints[2 * N + M];
    for (int i = 0; i < 2 * N + M; i++)
        ints[i] = i;

    tw_queue *q = tw_queue_new(N, M);
    gotten g = { 0 };
    for (int i = 0; i < M; i++)
        get_into(q, &g);
    assert_null(tw_queue_get(q));

    for (int i = 0; i < M; i++) {
        assert_int_equal(tw_queue_put(q, &ints[i], NULL), 0);
        assert_int_equal(g.n, i + 1);
        assert_int_equal(g.values[i], i);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(tw_queue_put(q, &ints[N + i], NULL), 0);
        assert_int_equal(g.n, M);
    }
    assert_int_equal(tw_queue_put(q, &ints[2 * N], NULL), -ENOBUFS);

    gotten later = { 0 };
    for (int i = 0; i < N; i++) {
        get_into(q, &later);
        assert_int_equal(later.n, i + 1);
        assert_int_equal(later.values[i], N + i);
    }
    tw_queue_free(q);

    q = tw_queue_new(0, 0);
    gotten unbounded = { 0 };
    for (int i = 0; i < N; i++)
        get_into(q, &unbounded);
    for (int i = 0; i < N; i++)
        tw_queue_put(q, &ints[i], NULL);
    assert_int_equal(unbounded.n, N);
    assert_int_equal(unbounded.values[0], 0);
    assert_int_equal(unbounded.values[1], 1);
    tw_queue_free(q);
}

static void test_queue_put_then_get(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 0);
    tw_test_value v = { .id = 1 };
    assert_int_equal(tw_queue_put(q, &v, tw_test_value_dtor), 0);
    assert_int_equal(tw_queue_pending(q), 1);
    assert_int_equal(tw_queue_waiting(q), 0);

    tw_deferred *d = tw_queue_get(q);
    const tw_result *r = tw_deferred_result(d);
    assert_non_null(r);
    assert_ptr_equal(r->value, &v);
    assert_true(r->dtor == tw_test_value_dtor);     /* the get's Deferred owns it */
    assert_int_equal(tw_queue_pending(q), 0);

    tw_queue_free(q);
    assert_int_equal(v.freed, 0);
    tw_deferred_unref(d);
    assert_int_equal(v.freed, 1);
}

static void test_queue_get_then_put(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 0);
    tw_test_value v = { .id = 1 };
    observed o = { 0 };
    tw_deferred *d = tw_queue_get(q);
    tw_deferred_add_callback(d, observe, &o);
    assert_int_equal(o.calls, 0);
    assert_int_equal(tw_queue_waiting(q), 1);
    assert_int_equal(tw_queue_pending(q), 0);

    assert_int_equal(tw_queue_put(q, &v, tw_test_value_dtor), 0);
    assert_int_equal(o.calls, 1);
    assert_ptr_equal(o.value, &v);
    assert_int_equal(tw_queue_waiting(q), 0);
    assert_int_equal(tw_queue_pending(q), 0);

    tw_deferred_unref(d);
    assert_int_equal(v.freed, 1);
    tw_queue_free(q);
    assert_int_equal(v.freed, 1);
}

static void test_queue_values_come_out_in_order(void **state)
{
    (void)state;
    static int ints[5] = { 0, 1, 2, 3, 4 };
    tw_queue *q = tw_queue_new(0, 0);
    for (int i = 0; i < 5; i++)
        tw_queue_put(q, &ints[i], NULL);
    assert_int_equal(tw_queue_pending(q), 5);
    gotten g = { 0 };
    for (int i = 0; i < 5; i++)
        get_into(q, &g);
    assert_int_equal(g.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.values[i], i);
    tw_queue_free(q);
}

static void test_queue_waiting_gets_are_served_in_order(void **state)
{
    (void)state;
    static int ints[5] = { 0, 1, 2, 3, 4 };
    tw_queue *q = tw_queue_new(0, 0);
    line served = { 0 };
    ticket tickets[5];
    for (int i = 0; i < 5; i++) {
        tickets[i] = (ticket){ &served, i };
        tw_deferred *d = tw_queue_get(q);
        tw_deferred_add_callback(d, serve, &tickets[i]);
        tw_deferred_unref(d);
    }
    assert_int_equal(tw_queue_waiting(q), 5);
    for (int i = 0; i < 5; i++) {
        tw_queue_put(q, &ints[i], NULL);
        assert_int_equal(served.served, i + 1);
        assert_int_equal(served.order[i], i);
        assert_int_equal(tw_queue_waiting(q), (size_t)(4 - i));
    }
    tw_queue_free(q);
}

static void test_queue_put_beyond_size_fails_and_releases_the_value(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(1, 0);
    tw_test_value kept = { .id = 1 }, refused = { .id = 2 };
    assert_int_equal(tw_queue_put(q, &kept, tw_test_value_dtor), 0);
    assert_int_equal(tw_queue_put(q, &refused, tw_test_value_dtor), -ENOBUFS);
    assert_int_equal(refused.freed, 1);
    assert_int_equal(kept.freed, 0);
    assert_int_equal(tw_queue_pending(q), 1);
    tw_queue_free(q);
    assert_int_equal(kept.freed, 1);
    assert_int_equal(refused.freed, 1);
}

static void test_queue_get_beyond_backlog_returns_null(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 1);
    observed o = { 0 };
    tw_deferred *d = tw_queue_get(q);
    tw_deferred_add_both(d, observe, &o);
    assert_null(tw_queue_get(q));
    assert_int_equal(tw_queue_waiting(q), 1);

    static int one = 1;
    tw_queue_put(q, &one, NULL);
    assert_ptr_equal(o.value, &one);
    tw_deferred_unref(d);

    d = tw_queue_get(q);               /* room in the backlog again */
    assert_non_null(d);
    drop_handled(d);
    tw_queue_free(q);
}

static void test_queue_zero_means_no_limit(void **state)
{
    (void)state;
    enum { COUNT = 1000 };
    tw_queue *q = tw_queue_new(0, 0);
    for (int i = 0; i < COUNT; i++)
        assert_int_equal(tw_queue_put(q, tw_test_box(i), tw_test_box_free), 0);
    assert_int_equal(tw_queue_pending(q), COUNT);
    tw_queue_free(q);
    assert_int_equal(tw_test_live_boxes, 0);

    q = tw_queue_new(0, 0);
    tw_deferred **gets = malloc(COUNT * sizeof *gets);
    for (int i = 0; i < COUNT; i++) {
        gets[i] = tw_queue_get(q);
        assert_non_null(gets[i]);
    }
    assert_int_equal(tw_queue_waiting(q), COUNT);
    tw_queue_free(q);
    for (int i = 0; i < COUNT; i++)
        drop_handled(gets[i]);
    free(gets);
}

/* Twisted: OtherPrimitivesTests.test_cancelQueueAfterSynchronousGet */
static void test_queue_cancel_after_the_get_fired_does_nothing(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 0);
    observed o = { 0 };
    tw_deferred *d = tw_queue_get(q);
    tw_deferred_add_errback(d, observe, &o);
    tw_queue_put(q, NULL, NULL);
    tw_deferred_cancel(d);
    assert_int_equal(o.calls, 0);
    assert_true(tw_deferred_called(d));
    tw_deferred_unref(d);
    tw_queue_free(q);
}

/* Twisted: OtherPrimitivesTests.test_cancelQueueAfterGet */
typedef struct requeue {
    tw_queue *queue;
    observed inner;
} requeue;

static void put_and_get_again(tw_result *r, void *arg)
{
    requeue *rq = arg;
    tw_queue_put(rq->queue, NULL, NULL);
    tw_deferred *d = tw_queue_get(rq->queue);
    tw_deferred_add_callback(d, observe, &rq->inner);
    tw_result_wait(r, d);
}

static void test_queue_cancel_waiting_get_leaves_the_line(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 0);
    tw_deferred *d = tw_queue_get(q);
    assert_int_equal(tw_queue_waiting(q), 1);
    tw_deferred_cancel(d);
    assert_int_equal(tw_queue_waiting(q), 0);
    const tw_result *r = tw_deferred_result(d);
    assert_true(tw_failure_check(r->failure, TW_ERR_CANCELLED, -1));

    requeue rq = { .queue = q };
    observed done = { 0 };
    tw_deferred_add_errback(d, swallow, NULL);     /* trap the cancellation */
    tw_deferred_add_callback(d, put_and_get_again, &rq);
    tw_deferred_add_callback(d, observe, &done);
    assert_int_equal(rq.inner.calls, 1);
    assert_null(rq.inner.value);
    assert_int_equal(done.calls, 1);
    assert_null(done.failure);
    assert_int_equal(tw_queue_pending(q), 0);

    tw_deferred_unref(d);
    tw_queue_free(q);
}

static void test_queue_value_skips_a_cancelled_get(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 0);
    observed first = { 0 }, second = { 0 };
    tw_deferred *d1 = tw_queue_get(q);
    tw_deferred_add_both(d1, observe, &first);
    observe_and_drop(tw_queue_get(q), &second);
    tw_deferred_cancel(d1);

    static int value = 7;
    tw_queue_put(q, &value, NULL);
    assert_true(is_cancelled(&first));
    assert_int_equal(second.calls, 1);
    assert_ptr_equal(second.value, &value);
    drop_handled(d1);
    tw_queue_free(q);
}

static void test_queue_free_releases_the_pending_values(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 0);
    tw_test_value v[3] = { { .id = 0 }, { .id = 1 }, { .id = 2 } };
    for (int i = 0; i < 3; i++)
        tw_queue_put(q, &v[i], tw_test_value_dtor);
    tw_queue_put(q, "unowned", NULL);
    tw_queue_free(q);
    for (int i = 0; i < 3; i++)
        assert_int_equal(v[i].freed, 1);
}

static void test_queue_free_cancels_the_waiting_gets(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 0);
    observed a = { 0 }, b = { 0 };
    tw_deferred *da = tw_queue_get(q);
    tw_deferred *db = tw_queue_get(q);
    tw_deferred_add_both(da, observe, &a);
    tw_deferred_add_both(db, observe, &b);
    tw_queue_free(q);
    assert_true(is_cancelled(&a));
    assert_true(is_cancelled(&b));
    drop_handled(da);
    drop_handled(db);
}

static void test_queue_counts_pending_and_waiting(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 0);
    assert_int_equal(tw_queue_pending(q), 0);
    assert_int_equal(tw_queue_waiting(q), 0);
    tw_deferred *g1 = tw_queue_get(q);
    tw_deferred *g2 = tw_queue_get(q);
    assert_int_equal(tw_queue_waiting(q), 2);
    assert_int_equal(tw_queue_pending(q), 0);
    for (int i = 0; i < 3; i++)
        tw_queue_put(q, NULL, NULL);
    assert_int_equal(tw_queue_waiting(q), 0);
    assert_int_equal(tw_queue_pending(q), 1);
    tw_deferred *g3 = tw_queue_get(q);
    assert_int_equal(tw_queue_pending(q), 0);
    assert_true(tw_deferred_called(g1) && tw_deferred_called(g2) && tw_deferred_called(g3));
    tw_deferred_unref(g1);
    tw_deferred_unref(g2);
    tw_deferred_unref(g3);
    tw_queue_free(q);
}

/* A get's callback that puts a value: it goes to the next waiting get, ahead
 * of values put later. */
typedef struct putter {
    tw_queue *queue;
    int *value;
} putter;

static void put_from_callback(tw_result *r, void *arg)
{
    (void)r;
    putter *p = arg;
    tw_queue_put(p->queue, p->value, NULL);
}

static void test_queue_put_from_a_get_callback_keeps_the_order(void **state)
{
    (void)state;
    static int first = 1, from_callback = 2, last = 3;
    tw_queue *q = tw_queue_new(0, 0);
    putter p = { q, &from_callback };
    gotten g = { 0 };
    tw_deferred *d = tw_queue_get(q);
    tw_deferred_add_callback(d, put_from_callback, &p);
    tw_deferred_add_callback(d, append_value, &g);
    tw_deferred_unref(d);
    get_into(q, &g);
    get_into(q, &g);

    tw_queue_put(q, &first, NULL);
    assert_int_equal(g.n, 2);
    tw_queue_put(q, &last, NULL);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.values[0], 1);
    assert_int_equal(g.values[1], 2);
    assert_int_equal(g.values[2], 3);
    assert_int_equal(tw_queue_pending(q), 0);
    tw_queue_free(q);
}

/* A get's callback that puts one more value and frees the queue: the value is
 * released and the get behind it is cancelled, not handed the value. */
typedef struct closer {
    tw_queue *queue;
    tw_test_value *extra;
} closer;

static void put_then_free(tw_result *r, void *arg)
{
    (void)r;
    closer *c = arg;
    tw_queue_put(c->queue, c->extra, tw_test_value_dtor);
    tw_queue_free(c->queue);
}

static void test_queue_freed_from_a_get_callback_cancels_the_rest(void **state)
{
    (void)state;
    tw_queue *q = tw_queue_new(0, 0);
    tw_test_value extra = { .id = 9 };
    closer c = { q, &extra };
    tw_deferred *d = tw_queue_get(q);
    tw_deferred_add_callback(d, put_then_free, &c);
    tw_deferred_unref(d);
    observed rest = { 0 };
    tw_deferred *waiting = tw_queue_get(q);
    tw_deferred_add_both(waiting, observe, &rest);

    tw_queue_put(q, NULL, NULL);
    assert_true(is_cancelled(&rest));
    assert_int_equal(extra.freed, 1);
    drop_handled(waiting);
}

/* MANY waiting gets, each putting the next value from its callback. */
typedef struct many_gets {
    tw_queue *queue;
    size_t waiting;
    int served, put_errors;
    size_t pending_after, waiting_after;
} many_gets;

static void put_next_from_callback(tw_result *r, void *arg)
{
    (void)r;
    many_gets *m = arg;
    m->served++;
    if (tw_queue_put(m->queue, NULL, NULL) != 0)
        m->put_errors++;
}

static void *many_queue_gets(void *arg)
{
    many_gets *m = arg;
    m->queue = tw_queue_new(0, 0);
    for (int i = 0; i < MANY; i++) {
        tw_deferred *d = tw_queue_get(m->queue);
        tw_deferred_add_callback(d, put_next_from_callback, m);
        tw_deferred_unref(d);
    }
    m->waiting = tw_queue_waiting(m->queue);
    if (tw_queue_put(m->queue, NULL, NULL) != 0)
        m->put_errors++;
    m->pending_after = tw_queue_pending(m->queue);
    m->waiting_after = tw_queue_waiting(m->queue);
    tw_queue_free(m->queue);
    return NULL;
}

static void test_queue_many_synchronous_gets_need_constant_stack(void **state)
{
    (void)state;
    many_gets m = { 0 };
    run_on_small_stack(many_queue_gets, &m);
    assert_int_equal(m.waiting, MANY);
    assert_int_equal(m.served, MANY);
    assert_int_equal(m.put_errors, 0);
    assert_int_equal(m.pending_after, 1);     /* the last callback's value */
    assert_int_equal(m.waiting_after, 0);
}

#define SYNC_TEST(fn) cmocka_unit_test_setup_teardown(fn, capture_log, expect_quiet_log)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SYNC_TEST(test_lock_acquire_release_run_and_cancel),
        SYNC_TEST(test_lock_acquire_fires_at_once_with_the_lock),
        SYNC_TEST(test_lock_waiters_are_served_in_fifo_order),
        SYNC_TEST(test_lock_release_when_unlocked_is_eperm),
        SYNC_TEST(test_lock_run_passes_the_value_on_and_releases),
        SYNC_TEST(test_lock_run_passes_the_failure_on_and_releases),
        SYNC_TEST(test_lock_run_waits_for_the_lock),
        SYNC_TEST(test_lock_run_releases_when_its_deferred_fires),
        SYNC_TEST(test_lock_run_releases_when_its_deferred_fails),
        SYNC_TEST(test_lock_cancelling_a_running_run_releases),
        SYNC_TEST(test_lock_cancel_after_acquired_does_nothing),
        SYNC_TEST(test_lock_cancel_before_acquired_leaves_the_line),
        SYNC_TEST(test_lock_cancel_waiting_run_never_runs_the_body),
        SYNC_TEST(test_lock_waiter_cancelled_by_the_one_ahead),
        SYNC_TEST(test_lock_free_cancels_the_waiters),
        SYNC_TEST(test_lock_freed_from_a_callback_cancels_the_rest),
        SYNC_TEST(test_lock_many_synchronous_waiters_need_constant_stack),
        SYNC_TEST(test_semaphore_acquire_release_run_and_cancel),
        SYNC_TEST(test_semaphore_needs_a_token),
        SYNC_TEST(test_semaphore_counts_tokens),
        SYNC_TEST(test_semaphore_release_beyond_limit_is_eperm),
        SYNC_TEST(test_semaphore_run_bounds_concurrency),
        SYNC_TEST(test_semaphore_cancel_after_acquired_does_nothing),
        SYNC_TEST(test_semaphore_cancel_before_acquired_leaves_the_line),
        SYNC_TEST(test_semaphore_free_cancels_the_waiters),
        SYNC_TEST(test_semaphore_many_synchronous_waiters_need_constant_stack),
        SYNC_TEST(test_queue_size_and_backlog),
        SYNC_TEST(test_queue_put_then_get),
        SYNC_TEST(test_queue_get_then_put),
        SYNC_TEST(test_queue_values_come_out_in_order),
        SYNC_TEST(test_queue_waiting_gets_are_served_in_order),
        SYNC_TEST(test_queue_put_beyond_size_fails_and_releases_the_value),
        SYNC_TEST(test_queue_get_beyond_backlog_returns_null),
        SYNC_TEST(test_queue_zero_means_no_limit),
        SYNC_TEST(test_queue_cancel_after_the_get_fired_does_nothing),
        SYNC_TEST(test_queue_cancel_waiting_get_leaves_the_line),
        SYNC_TEST(test_queue_value_skips_a_cancelled_get),
        SYNC_TEST(test_queue_free_releases_the_pending_values),
        SYNC_TEST(test_queue_free_cancels_the_waiting_gets),
        SYNC_TEST(test_queue_counts_pending_and_waiting),
        SYNC_TEST(test_queue_put_from_a_get_callback_keeps_the_order),
        SYNC_TEST(test_queue_freed_from_a_get_callback_cancels_the_rest),
        SYNC_TEST(test_queue_many_synchronous_gets_need_constant_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
