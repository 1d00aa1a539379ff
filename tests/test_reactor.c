/* Tests for include/twine/reactor.h: timers on a test clock, Deferred timers,
 * looping calls, the reactor's run/stop/shutdown cycle, signals and threads.
 * Timer logic runs on a test clock; the tests that run the reactor use timers
 * of a few milliseconds at most and stop it when their events have arrived. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "testutil.h"

/* Recording the order of calls ---------------------------------------------------- */

static int order[256];
static int norder;
static double times[256];
static tw_clock *rec_clock;

static void record(void *arg)
{
    times[norder] = rec_clock ? tw_clock_now(rec_clock) : 0;
    order[norder++] = (int)(intptr_t)arg;
}

static void reset_record(tw_clock *c)
{
    norder = 0;
    rec_clock = c;
}

#define I(n) ((void *)(intptr_t)(n))

/* The test clock and delayed calls --------------------------------------------------- */

static void test_call_later_order(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    reset_record(c);
    tw_clock_call_later(c, 3, record, I(3));
    tw_clock_call_later(c, 1, record, I(10));
    tw_clock_call_later(c, 2, record, I(2));
    tw_clock_call_later(c, 1, record, I(11));
    tw_clock_call_later(c, 1, record, I(12));
    tw_clock_call_later(c, 0, record, I(0));
    assert_int_equal(tw_clock_pending(c), 6);

    assert_int_equal(tw_clock_advance(c, 0), 0);
    assert_int_equal(norder, 1);
    assert_int_equal(order[0], 0);

    assert_int_equal(tw_clock_advance(c, 2.5), 0);
    assert_int_equal(norder, 5);
    int want[] = { 0, 10, 11, 12, 2 };
    for (int i = 0; i < 5; i++)
        assert_int_equal(order[i], want[i]);
    assert_true(times[1] == 1 && times[3] == 1 && times[4] == 2);
    assert_true(tw_clock_now(c) == 2.5);

    tw_clock_advance(c, 10);
    assert_int_equal(norder, 6);
    assert_int_equal(order[5], 3);
    assert_true(times[5] == 3);
    assert_true(tw_clock_now(c) == 12.5);
    assert_int_equal(tw_clock_pending(c), 0);
    tw_clock_free(c);
}

static void test_equal_times_run_in_scheduling_order(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    reset_record(c);
    /* Interleave two due times so the heap has to reorder. */
    for (int i = 0; i < 200; i++)
        tw_clock_call_later(c, i % 2 ? 5 : 4, record, I(i));
    tw_clock_advance(c, 5);
    assert_int_equal(norder, 200);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(order[i], 2 * i);
        assert_int_equal(order[100 + i], 2 * i + 1);
    }
    tw_clock_free(c);
}

static void test_cancel_and_active(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    reset_record(c);
    tw_delayed_call *a = tw_delayed_call_ref(tw_clock_call_later(c, 1, record, I(1)));
    tw_delayed_call *b = tw_delayed_call_ref(tw_clock_call_later(c, 2, record, I(2)));
    tw_clock_call_later(c, 3, record, I(3));
    assert_true(tw_delayed_call_active(a));
    assert_true(tw_delayed_call_time(b) == 2);

    assert_int_equal(tw_delayed_call_cancel(b), 0);
    assert_false(tw_delayed_call_active(b));
    assert_int_equal(tw_delayed_call_cancel(b), -ECANCELED);
    assert_int_equal(tw_delayed_call_reset(b, 1), -ECANCELED);
    assert_int_equal(tw_delayed_call_delay(b, 1), -ECANCELED);
    assert_int_equal(tw_clock_pending(c), 2);

    tw_clock_advance(c, 5);
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 3);
    assert_false(tw_delayed_call_active(a));
    assert_int_equal(tw_delayed_call_cancel(a), -EALREADY);
    assert_int_equal(tw_delayed_call_reset(a, 1), -EALREADY);
    assert_int_equal(tw_delayed_call_delay(a, 1), -EALREADY);
    tw_delayed_call_unref(a);
    tw_delayed_call_unref(b);
    tw_delayed_call_unref(NULL);
    tw_clock_free(c);
}

static void test_cancel_the_earliest_and_the_last(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    reset_record(c);
    tw_delayed_call *calls[20];
    for (int i = 0; i < 20; i++)
        calls[i] = tw_clock_call_later(c, 20 - i, record, I(20 - i));
    tw_delayed_call_cancel(calls[19]);      /* due at 1: the heap's top */
    tw_delayed_call_cancel(calls[0]);       /* due at 20 */
    tw_delayed_call_cancel(calls[10]);      /* due at 10 */
    tw_clock_advance(c, 30);
    assert_int_equal(norder, 17);
    int expect = 2;
    for (int i = 0; i < norder; i++, expect++) {
        if (expect == 10)
            expect++;
        assert_int_equal(order[i], expect);
    }
    tw_clock_free(c);
}

static void test_reset_and_delay(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    reset_record(c);
    tw_delayed_call *a = tw_clock_call_later(c, 5, record, I(1));
    tw_clock_call_later(c, 3, record, I(2));
    tw_clock_advance(c, 1);

    assert_int_equal(tw_delayed_call_reset(a, 2), 0);   /* due at 3, after call 2 */
    assert_true(tw_delayed_call_time(a) == 3);
    tw_clock_advance(c, 2);
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 1);

    tw_delayed_call *b = tw_clock_call_later(c, 1, record, I(3));     /* due at 4 */
    assert_int_equal(tw_delayed_call_delay(b, 2.5), 0);
    assert_true(tw_delayed_call_time(b) == 6.5);
    assert_int_equal(tw_delayed_call_reset(b, NAN), -EINVAL);
    assert_int_equal(tw_delayed_call_delay(b, INFINITY), -EINVAL);
    tw_clock_advance(c, 3);
    assert_int_equal(norder, 2);
    tw_clock_advance(c, 0.5);
    assert_int_equal(norder, 3);
    assert_true(times[2] == 6.5);

    /* A negative reset means now. */
    tw_delayed_call *d = tw_clock_call_later(c, 9, record, I(4));
    tw_delayed_call_reset(d, -3);
    assert_true(tw_delayed_call_time(d) == tw_clock_now(c));
    tw_clock_advance(c, 0);
    assert_int_equal(norder, 4);
    tw_clock_free(c);
}

struct chain_state {
    tw_clock *c;
    int left;
    double at[8];
    int n;
};

static void chain_step(void *arg)
{
    struct chain_state *s = arg;
    s->at[s->n++] = tw_clock_now(s->c);
    if (--s->left > 0)
        tw_clock_call_later(s->c, 1, chain_step, s);
}

static void zero_delay_step(void *arg)
{
    struct chain_state *s = arg;
    s->at[s->n++] = tw_clock_now(s->c);
    if (--s->left > 0)
        tw_clock_call_later(s->c, 0, zero_delay_step, s);
}

static void test_calls_scheduled_from_calls(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct chain_state s = { .c = c, .left = 5 };
    tw_clock_call_later(c, 1, chain_step, &s);
    tw_clock_advance(c, 3.5);           /* runs at 1, 2 and 3 */
    assert_int_equal(s.n, 3);
    assert_true(s.at[0] == 1 && s.at[1] == 2 && s.at[2] == 3);
    assert_true(tw_clock_now(c) == 3.5);
    tw_clock_advance(c, 10);
    assert_int_equal(s.n, 5);
    assert_true(s.at[3] == 4 && s.at[4] == 5);

    struct chain_state z = { .c = c, .left = 4 };
    tw_clock_call_later(c, 0, zero_delay_step, &z);
    tw_clock_advance(c, 0);
    assert_int_equal(z.n, 4);
    tw_clock_free(c);
}

static void test_clock_bad_arguments(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    assert_int_equal(tw_clock_advance(c, -1), -EINVAL);
    assert_int_equal(tw_clock_advance(c, NAN), -EINVAL);
    assert_int_equal(tw_clock_advance(tw_reactor_clock(), 1), -EINVAL);
    assert_null(tw_clock_call_later(c, NAN, record, NULL));
    assert_null(tw_clock_call_later(c, INFINITY, record, NULL));
    assert_null(tw_clock_call_later(c, 1, NULL, NULL));
    assert_null(tw_clock_defer_later(c, NAN, NULL, NULL));
    assert_null(tw_clock_looping_call_new(c, NULL, NULL));

    /* A negative delay means now. */
    reset_record(c);
    tw_delayed_call *dc = tw_clock_call_later(c, -5, record, I(1));
    assert_true(tw_delayed_call_time(dc) == 0);
    tw_clock_advance(c, 0);
    assert_int_equal(norder, 1);
    tw_clock_free(c);
    tw_clock_free(NULL);
    tw_clock_free(tw_reactor_clock());   /* ignored */
}

/* Deferred callbacks used below ------------------------------------------------------- */

struct outcome {
    int fired;
    void *value;
    const char *domain;
    int code;
    char cause_domain[32];
};

static void note_outcome(tw_result *r, void *arg)
{
    struct outcome *o = arg;
    o->fired++;
    if (r->failure) {
        o->domain = tw_failure_domain(r->failure);
        o->code = tw_failure_code(r->failure);
        const tw_failure *cause = tw_failure_cause(r->failure);
        snprintf(o->cause_domain, sizeof o->cause_domain, "%s",
                 cause ? tw_failure_domain(cause) : "");
        tw_result_set_value(r, NULL, NULL);
    } else {
        o->domain = NULL;
        o->value = r->value;
    }
}

static void watch(tw_deferred *d, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    tw_deferred_add_both(d, note_outcome, o);
}

static void leave_42(tw_result *r, void *arg)
{
    (*(int *)arg)++;
    tw_result_set_value(r, tw_test_box(42), tw_test_box_free);
}

static void note_box(tw_result *r, void *arg)
{
    struct outcome *o = arg;
    o->fired++;
    o->code = r->value ? *(int *)r->value : -1;
}

static void leave_failure(tw_result *r, void *arg)
{
    (void)arg;
    tw_result_set_failure(r, tw_failure_new(TW_ERR_USAGE, 7, NULL, "fn failed"));
}

/* defer_later -------------------------------------------------------------------------- */

static void test_defer_later(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    int ran = 0;
    struct outcome o = { 0 };
    tw_deferred *d = tw_clock_defer_later(c, 2, leave_42, &ran);
    tw_deferred_add_callback(d, note_box, &o);
    tw_deferred_unref(d);               /* the timer keeps it alive */
    tw_clock_advance(c, 1.5);
    assert_int_equal(ran, 0);
    assert_int_equal(o.fired, 0);
    tw_clock_advance(c, 0.5);
    assert_int_equal(ran, 1);
    assert_int_equal(o.fired, 1);
    assert_int_equal(o.code, 42);
    assert_int_equal(tw_test_live_boxes, 0);

    d = tw_clock_defer_later(c, 1, NULL, NULL);
    watch(d, &o);
    tw_clock_advance(c, 1);
    assert_int_equal(o.fired, 1);
    assert_null(o.domain);
    assert_null(o.value);
    tw_deferred_unref(d);

    d = tw_clock_defer_later(c, 1, leave_failure, NULL);
    watch(d, &o);
    tw_clock_advance(c, 1);
    assert_ptr_equal(o.domain, TW_ERR_USAGE);
    assert_int_equal(o.code, 7);
    tw_deferred_unref(d);
    tw_clock_free(c);
}

static void test_defer_later_cancel(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    int ran = 0;
    struct outcome o;
    tw_deferred *d = tw_clock_defer_later(c, 2, leave_42, &ran);
    watch(d, &o);
    assert_int_equal(tw_clock_pending(c), 1);
    tw_deferred_cancel(d);
    assert_int_equal(o.fired, 1);
    assert_ptr_equal(o.domain, TW_ERR_CANCELLED);
    assert_int_equal(tw_clock_pending(c), 0);
    tw_clock_advance(c, 5);
    assert_int_equal(ran, 0);
    tw_deferred_unref(d);

    /* Freeing the clock cancels it too. */
    d = tw_clock_defer_later(c, 2, leave_42, &ran);
    watch(d, &o);
    tw_clock_free(c);
    assert_ptr_equal(o.domain, TW_ERR_CANCELLED);
    assert_int_equal(ran, 0);
    tw_deferred_unref(d);
}

/* deferred_timeout ------------------------------------------------------------------------- */

static int cancellers_run;

static void count_canceller(tw_deferred *d, void *arg)
{
    (void)d;
    (void)arg;
    cancellers_run++;
}

static void test_deferred_timeout_expires(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct outcome o;
    cancellers_run = 0;
    tw_deferred *d = tw_deferred_new(count_canceller, NULL);
    tw_deferred *same = tw_clock_deferred_timeout(c, d, 5);
    assert_ptr_equal(same, d);
    watch(d, &o);
    tw_clock_advance(c, 4.9);
    assert_int_equal(o.fired, 0);
    tw_clock_advance(c, 0.1);
    assert_int_equal(cancellers_run, 1);
    assert_int_equal(o.fired, 1);
    assert_ptr_equal(o.domain, TW_ERR_TIMEOUT);
    assert_int_equal(o.code, ETIMEDOUT);
    assert_string_equal(o.cause_domain, TW_ERR_CANCELLED);
    tw_deferred_unref(d);

    /* Nobody holds it: it still times out, and the failure is reported. */
    tw_test_capture_log();
    tw_deferred_unref(tw_clock_deferred_timeout(c, tw_deferred_new(NULL, NULL), 1));
    tw_clock_advance(c, 1);
    tw_test_restore_log();
    assert_non_null(strstr(tw_test_captured.all, "Unhandled error"));
    assert_non_null(strstr(tw_test_captured.all, "timed out after 1 seconds"));
    assert_int_equal(tw_clock_pending(c), 0);
    tw_clock_free(c);
}

static void test_deferred_timeout_result_first(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct outcome o;
    tw_deferred *d = tw_clock_deferred_timeout(c, tw_deferred_new(NULL, NULL), 5);
    watch(d, &o);
    tw_clock_advance(c, 1);
    tw_deferred_callback(d, I(99), NULL);
    assert_int_equal(o.fired, 1);
    assert_ptr_equal(o.value, I(99));
    assert_int_equal(tw_clock_pending(c), 0);
    tw_clock_advance(c, 10);
    assert_int_equal(o.fired, 1);
    tw_deferred_unref(d);

    /* A failure that came first is untouched too. */
    d = tw_clock_deferred_timeout(c, tw_deferred_new(NULL, NULL), 5);
    watch(d, &o);
    tw_deferred_errback(d, tw_failure_new(TW_ERR_USAGE, 3, NULL, "early"));
    assert_ptr_equal(o.domain, TW_ERR_USAGE);
    assert_int_equal(tw_clock_pending(c), 0);
    tw_deferred_unref(d);

    /* Already fired when the timeout is added. */
    d = tw_clock_deferred_timeout(c, tw_succeed(I(5), NULL), 5);
    assert_int_equal(tw_clock_pending(c), 0);
    assert_ptr_equal(tw_deferred_result(d)->value, I(5));
    tw_deferred_unref(d);

    /* No finite time: no timer. */
    d = tw_clock_deferred_timeout(c, tw_deferred_new(NULL, NULL), INFINITY);
    assert_int_equal(tw_clock_pending(c), 0);
    tw_deferred_cancel(d);
    tw_deferred_add_errback(d, note_outcome, &o);
    tw_deferred_unref(d);
    tw_clock_free(c);
}

static void test_deferred_timeout_user_cancel(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct outcome o;
    tw_deferred *d = tw_clock_deferred_timeout(c, tw_deferred_new(NULL, NULL), 5);
    watch(d, &o);
    tw_deferred_cancel(d);
    assert_ptr_equal(o.domain, TW_ERR_CANCELLED);
    assert_int_equal(tw_clock_pending(c), 0);
    tw_deferred_unref(d);
    tw_clock_free(c);
}

static void wait_on(tw_result *r, void *arg)
{
    tw_result_wait(r, tw_deferred_ref(arg));
}

/* A Deferred that has fired but waits on another one times out through it. */
static void test_deferred_timeout_while_waiting(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct outcome o;
    tw_deferred *inner = tw_deferred_new(NULL, NULL);
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, wait_on, inner);
    tw_deferred_callback(d, NULL, NULL);
    d = tw_clock_deferred_timeout(c, d, 1);
    watch(d, &o);
    tw_clock_advance(c, 1);
    assert_ptr_equal(o.domain, TW_ERR_TIMEOUT);
    tw_deferred_unref(inner);
    tw_deferred_unref(d);
    tw_clock_free(c);
}

/* Looping calls ---------------------------------------------------------------------------- */

struct looper {
    tw_clock *c;
    int calls;
    double at[64];
    tw_deferred *wait_for;     /* handed to the next call, once */
    int fail_at;               /* fails on this call (1-based); 0: never */
    tw_looping_call *lc;
    int stop_at;               /* stops itself on this call */
};

static void loop_fn(tw_result *r, void *arg)
{
    struct looper *l = arg;
    l->at[l->calls++] = tw_clock_now(l->c);
    if (l->fail_at == l->calls) {
        tw_result_set_failure(r, tw_failure_new(TW_ERR_USAGE, 11, NULL, "loop failed"));
        return;
    }
    if (l->stop_at == l->calls)
        tw_looping_call_stop(l->lc);
    if (l->wait_for) {
        tw_result_wait(r, l->wait_for);
        l->wait_for = NULL;
    }
}

static void test_looping_call_interval(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct looper l = { .c = c };
    tw_looping_call *lc = tw_clock_looping_call_new(c, loop_fn, &l);
    struct outcome o;
    tw_deferred *d = tw_looping_call_start(lc, 1, 1);
    watch(d, &o);
    assert_non_null(d);
    assert_int_equal(l.calls, 1);           /* now: at once */
    assert_null(tw_looping_call_start(lc, 1, 1));
    assert_true(tw_looping_call_running(lc));
    tw_clock_advance(c, 3.5);
    assert_int_equal(l.calls, 4);
    for (int i = 0; i < 4; i++)
        assert_true(l.at[i] == i);

    assert_int_equal(tw_looping_call_stop(lc), 0);
    assert_int_equal(o.fired, 1);
    assert_ptr_equal(o.value, lc);
    assert_int_equal(tw_looping_call_stop(lc), -ESRCH);
    assert_false(tw_looping_call_running(lc));
    assert_int_equal(tw_clock_pending(c), 0);
    tw_clock_advance(c, 5);
    assert_int_equal(l.calls, 4);
    tw_deferred_unref(d);

    /* Restart without `now`: the first call after one interval. */
    l.calls = 0;
    d = tw_looping_call_start(lc, 2, 0);
    assert_int_equal(l.calls, 0);
    tw_clock_advance(c, 1.9);
    assert_int_equal(l.calls, 0);
    tw_clock_advance(c, 4.1);
    assert_int_equal(l.calls, 3);
    assert_true(l.at[0] == 10.5 && l.at[1] == 12.5 && l.at[2] == 14.5);
    tw_looping_call_free(lc);               /* stops it */
    assert_int_equal(tw_clock_pending(c), 0);
    assert_true(tw_deferred_has_result(d));
    tw_deferred_unref(d);

    lc = tw_clock_looping_call_new(c, loop_fn, &l);
    assert_null(tw_looping_call_start(lc, -1, 0));
    assert_null(tw_looping_call_start(lc, NAN, 0));
    tw_looping_call_free(lc);
    tw_looping_call_free(NULL);
    tw_clock_free(c);
}

static void test_looping_call_waits_and_skips_missed_intervals(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct looper l = { .c = c };
    tw_looping_call *lc = tw_clock_looping_call_new(c, loop_fn, &l);
    /* The first call waits 2.5 s: the calls at 1 and 2 are skipped. */
    l.wait_for = tw_clock_defer_later(c, 2.5, NULL, NULL);
    tw_deferred *d = tw_looping_call_start(lc, 1, 1);
    tw_clock_advance(c, 2.9);
    assert_int_equal(l.calls, 1);
    tw_clock_advance(c, 0.1);
    assert_int_equal(l.calls, 2);
    assert_true(l.at[1] == 3);

    /* Stopped while waiting: the start Deferred fires when the wait ends. */
    struct outcome o;
    watch(d, &o);
    tw_deferred *wait = tw_deferred_new(NULL, NULL);
    l.wait_for = tw_deferred_ref(wait);
    tw_clock_advance(c, 1);
    assert_int_equal(l.calls, 3);
    assert_int_equal(tw_looping_call_stop(lc), 0);
    assert_int_equal(o.fired, 0);
    assert_null(tw_looping_call_start(lc, 1, 1));   /* still waiting */
    tw_deferred_callback(wait, NULL, NULL);
    assert_int_equal(o.fired, 1);
    assert_int_equal(l.calls, 3);
    tw_deferred_unref(wait);
    tw_deferred_unref(d);

    /* Freed while waiting: the memory goes once the wait ends. */
    wait = tw_deferred_new(NULL, NULL);
    l.wait_for = tw_deferred_ref(wait);
    d = tw_looping_call_start(lc, 1, 1);
    watch(d, &o);
    tw_looping_call_free(lc);
    assert_int_equal(o.fired, 0);
    tw_deferred_callback(wait, NULL, NULL);
    assert_int_equal(o.fired, 1);
    tw_deferred_unref(wait);
    tw_deferred_unref(d);
    tw_clock_free(c);
}

static void test_looping_call_failure_stops_it(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct looper l = { .c = c, .fail_at = 3 };
    tw_looping_call *lc = tw_clock_looping_call_new(c, loop_fn, &l);
    struct outcome o;
    tw_deferred *d = tw_looping_call_start(lc, 1, 0);
    watch(d, &o);
    tw_clock_advance(c, 10);
    assert_int_equal(l.calls, 3);
    assert_int_equal(o.fired, 1);
    assert_ptr_equal(o.domain, TW_ERR_USAGE);
    assert_int_equal(o.code, 11);
    assert_false(tw_looping_call_running(lc));
    assert_int_equal(tw_looping_call_stop(lc), -ESRCH);
    assert_int_equal(tw_clock_pending(c), 0);
    tw_deferred_unref(d);

    /* Failing on the very first call, inside start. */
    l.calls = 0;
    l.fail_at = 1;
    d = tw_looping_call_start(lc, 1, 1);
    assert_non_null(d);
    watch(d, &o);
    assert_ptr_equal(o.domain, TW_ERR_USAGE);
    tw_deferred_unref(d);
    tw_looping_call_free(lc);
    tw_clock_free(c);
}

static void test_looping_call_stops_itself(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct looper l = { .c = c, .stop_at = 2 };
    l.lc = tw_clock_looping_call_new(c, loop_fn, &l);
    struct outcome o;
    tw_deferred *d = tw_looping_call_start(l.lc, 0.5, 1);
    watch(d, &o);
    tw_clock_advance(c, 5);
    assert_int_equal(l.calls, 2);
    assert_int_equal(o.fired, 1);
    assert_ptr_equal(o.value, l.lc);
    tw_deferred_unref(d);
    tw_looping_call_free(l.lc);
    tw_clock_free(c);
}

static void free_looper_on_done(tw_result *r, void *arg)
{
    (void)r;
    tw_looping_call_free(arg);
}

/* The start Deferred's callback may free the looping call, even when the
 * free itself fired it. */
static void test_looping_call_freed_by_its_deferred(void **state)
{
    (void)state;
    tw_clock *c = tw_clock_new_test();
    struct looper l = { .c = c };
    tw_looping_call *lc = tw_clock_looping_call_new(c, loop_fn, &l);
    tw_deferred *d = tw_looping_call_start(lc, 1, 0);
    tw_deferred_add_callback(d, free_looper_on_done, lc);
    tw_looping_call_stop(lc);
    tw_deferred_unref(d);

    lc = tw_clock_looping_call_new(c, loop_fn, &l);
    d = tw_looping_call_start(lc, 1, 0);
    tw_deferred_add_callback(d, free_looper_on_done, lc);
    tw_looping_call_free(lc);
    tw_deferred_unref(d);
    tw_clock_free(c);
}

/* The reactor ---------------------------------------------------------------------------- */

static void stop_reactor(void *arg)
{
    (void)arg;
    assert_int_equal(tw_reactor_stop(), 0);
}

static int runs_seen;

static void check_running(void *arg)
{
    (void)arg;
    runs_seen++;
    assert_true(tw_reactor_running());
    assert_int_equal(tw_reactor_run(), -EALREADY);
    assert_int_equal(tw_reactor_stop(), 0);
    assert_int_equal(tw_reactor_stop(), -EALREADY);
}

static void test_run_stop_run_again(void **state)
{
    (void)state;
    assert_false(tw_reactor_running());
    assert_int_equal(tw_reactor_stop(), -ESRCH);
    assert_non_null(tw_reactor_loop());
    runs_seen = 0;
    for (int i = 0; i < 3; i++) {
        tw_call_later(0, check_running, NULL);
        assert_int_equal(tw_reactor_run(), 0);
        assert_false(tw_reactor_running());
        assert_int_equal(tw_reactor_stop(), -ESRCH);
    }
    assert_int_equal(runs_seen, 3);
    assert_int_equal(tw_clock_pending(tw_reactor_clock()), 0);
}

struct real_timer {
    double scheduled, ran;
};

static void note_time(void *arg)
{
    struct real_timer *t = arg;
    t->ran = tw_reactor_now();
}

static void schedule_equal_times(void *arg)
{
    (void)arg;
    reset_record(NULL);
    /* Scheduled within one callback: the same loop time, so equal due times. */
    for (int i = 0; i < 10; i++)
        tw_call_later(0.005, record, I(i));
    tw_call_later(0.01, stop_reactor, NULL);
}

static void test_reactor_timers(void **state)
{
    (void)state;
    struct real_timer t = { 0 };
    t.scheduled = tw_reactor_now();
    tw_call_later(0.01, note_time, &t);
    tw_call_later(0, schedule_equal_times, NULL);
    tw_delayed_call *never = tw_call_later(0.005, stop_reactor, NULL);
    tw_delayed_call_cancel(never);
    assert_int_equal(tw_reactor_run(), 0);
    assert_true(t.ran - t.scheduled >= 0.01 - 1e-6);
    assert_int_equal(norder, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(order[i], i);
}

static int spins, woken;

static void wake(void *arg)
{
    (void)arg;
    woken = 1;
}

/* Reschedules itself at once until the loop got around to the woken call. */
static void spin(void *arg)
{
    (void)arg;
    if (spins == 0)
        tw_call_from_thread(wake, NULL);    /* its wake-up needs a loop iteration */
    if (woken || ++spins > 100000)
        tw_reactor_stop();
    else
        tw_call_later(0, spin, NULL);
}

/* A call that reschedules itself at once waits for the next loop iteration,
 * so it cannot starve the loop's other events. */
static void test_zero_delay_calls_do_not_starve_the_loop(void **state)
{
    (void)state;
    spins = woken = 0;
    tw_call_later(0, spin, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_int_equal(woken, 1);
    assert_true(spins < 10);
}

/* The timer's reference to the Deferred goes once it has fired it. */
static void fire_and_release(void *arg)
{
    tw_deferred_callback(arg, NULL, NULL);
    tw_deferred_unref(arg);
}

static void stop_on_fire(tw_result *r, void *arg)
{
    (void)r;
    (void)arg;
    tw_reactor_stop();
}

static void test_reactor_deferred_timers(void **state)
{
    (void)state;
    struct outcome timed, later;
    tw_deferred *d = tw_deferred_timeout(tw_deferred_new(NULL, NULL), 0.005);
    watch(d, &timed);
    tw_deferred *dl = tw_defer_later(0.01, NULL, NULL);
    watch(dl, &later);
    tw_deferred_add_callback(dl, stop_on_fire, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_ptr_equal(timed.domain, TW_ERR_TIMEOUT);
    assert_int_equal(later.fired, 1);
    assert_null(later.domain);
    tw_deferred_unref(d);
    tw_deferred_unref(dl);

    /* A real looping call: three ticks of 2 ms, then it stops the reactor. */
    struct looper l = { .c = tw_reactor_clock(), .stop_at = 3 };
    l.lc = tw_looping_call_new(loop_fn, &l);
    tw_deferred *ld = tw_looping_call_start(l.lc, 0.002, 1);
    tw_deferred_add_callback(ld, stop_on_fire, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_int_equal(l.calls, 3);
    assert_true(l.at[2] - l.at[0] >= 0.004 - 1e-6);
    tw_deferred_unref(ld);
    tw_looping_call_free(l.lc);
}

/* Shutdown triggers ---------------------------------------------------------------------- */

static char phases[64];

static tw_deferred *note_phase(void *arg)
{
    strncat(phases, arg, sizeof phases - strlen(phases) - 1);
    return NULL;
}

static void note_phase_plain(void *arg)
{
    note_phase(arg);
}

static void test_shutdown_trigger_phases(void **state)
{
    (void)state;
    phases[0] = '\0';
    int ids[5];
    ids[0] = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_AFTER, note_phase, "A");
    ids[1] = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_DURING, note_phase, "D");
    ids[2] = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE, note_phase, "B");
    ids[3] = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE, note_phase, "b");
    ids[4] = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE, note_phase, "x");
    for (int i = 0; i < 5; i++)
        assert_true(ids[i] > 0);
    tw_reactor_add_shutdown_trigger(note_phase_plain, "d");
    assert_int_equal(tw_reactor_add_system_event_trigger(7, note_phase, "?"), -EINVAL);
    assert_int_equal(tw_reactor_add_system_event_trigger(TW_SHUTDOWN_AFTER, NULL, NULL), -EINVAL);
    assert_int_equal(tw_reactor_remove_system_event_trigger(ids[4]), 0);
    assert_int_equal(tw_reactor_remove_system_event_trigger(ids[4]), -ENOENT);

    tw_call_later(0, stop_reactor, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_string_equal(phases, "BbDdA");

    /* Triggers persist: the next stop runs them again. */
    phases[0] = '\0';
    tw_call_later(0, stop_reactor, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_string_equal(phases, "BbDdA");

    for (int i = 0; i < 4; i++)
        assert_int_equal(tw_reactor_remove_system_event_trigger(ids[i]), 0);
    /* The plain trigger's id is the one after the last. */
    int probe = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_AFTER, note_phase, "p");
    assert_int_equal(tw_reactor_remove_system_event_trigger(probe), 0);
    assert_int_equal(tw_reactor_remove_system_event_trigger(ids[4] + 1), 0);
    phases[0] = '\0';
    tw_call_later(0, stop_reactor, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_string_equal(phases, "");
}

static tw_deferred *before_later(void *arg)
{
    strncat(phases, "B", sizeof phases - strlen(phases) - 1);
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_call_later(*(double *)arg, fire_and_release, tw_deferred_ref(d));
    return d;
}

static tw_deferred *note_time_during(void *arg)
{
    *(double *)arg = tw_reactor_now();
    strncat(phases, "D", sizeof phases - strlen(phases) - 1);
    return NULL;
}

static void test_shutdown_waits_for_before_deferred(void **state)
{
    (void)state;
    phases[0] = '\0';
    double wait = 0.01, stop_at = 0, during_at = 0;
    int b = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE, before_later, &wait);
    int d = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_DURING, note_time_during, &during_at);
    tw_call_later(0, stop_reactor, NULL);
    stop_at = tw_reactor_now();
    assert_int_equal(tw_reactor_run(), 0);
    assert_string_equal(phases, "BD");
    assert_true(during_at - stop_at >= wait - 1e-6);
    tw_reactor_remove_system_event_trigger(b);
    tw_reactor_remove_system_event_trigger(d);
}

static tw_deferred *before_never(void *arg)
{
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    watch(d, arg);
    return d;
}

static tw_deferred *before_failing(void *arg)
{
    (void)arg;
    return tw_fail(tw_failure_new(TW_ERR_USAGE, 5, NULL, "trigger failure"));
}

static void test_shutdown_wait_is_bounded(void **state)
{
    (void)state;
    struct outcome o;
    double during_at = 0;
    phases[0] = '\0';
    assert_int_equal(tw_reactor_set_shutdown_timeout(-1), -EINVAL);
    assert_int_equal(tw_reactor_set_shutdown_timeout(0.01), 0);
    int b = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE, before_never, &o);
    int f = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE, before_failing, NULL);
    int d = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_DURING, note_time_during, &during_at);
    tw_test_capture_log();
    tw_call_later(0, stop_reactor, NULL);
    double stop_at = tw_reactor_now();
    assert_int_equal(tw_reactor_run(), 0);
    tw_test_restore_log();
    assert_string_equal(phases, "D");
    assert_true(during_at - stop_at >= 0.01 - 1e-6);
    assert_int_equal(o.fired, 1);
    assert_ptr_equal(o.domain, TW_ERR_CANCELLED);
    assert_non_null(strstr(tw_test_captured.all, "trigger failure"));
    assert_non_null(strstr(tw_test_captured.all, "still pending"));
    tw_reactor_remove_system_event_trigger(b);
    tw_reactor_remove_system_event_trigger(f);
    tw_reactor_remove_system_event_trigger(d);
    tw_reactor_set_shutdown_timeout(30);
}

/* call_when_running ----------------------------------------------------------------------- */

static void when_running_nested(void *arg)
{
    record(arg);
    tw_call_when_running(record, I(9));     /* running: at once */
    assert_int_equal(order[norder - 1], 9);
}

static void test_call_when_running(void **state)
{
    (void)state;
    reset_record(NULL);
    tw_call_later(0, record, I(3));         /* timers come after */
    tw_call_when_running(record, I(1));
    tw_call_when_running(when_running_nested, I(2));
    tw_call_later(0.001, stop_reactor, NULL);
    assert_int_equal(norder, 0);
    assert_int_equal(tw_reactor_run(), 0);
    assert_int_equal(norder, 4);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 9);
    assert_int_equal(order[3], 3);
}

/* Signals ------------------------------------------------------------------------------- */

static void raise_signal(void *arg)
{
    raise((int)(intptr_t)arg);
}

static void test_signals_stop_the_reactor(void **state)
{
    (void)state;
    int signals[] = { SIGTERM, SIGINT };
    for (int i = 0; i < 2; i++) {
        phases[0] = '\0';
        int id = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_DURING, note_phase, "D");
        tw_call_when_running(raise_signal, I(signals[i]));
        tw_test_capture_log();
        assert_int_equal(tw_reactor_run(), 0);
        tw_test_restore_log();
        assert_string_equal(phases, "D");
        tw_reactor_remove_system_event_trigger(id);
    }
}

/* call_from_thread ---------------------------------------------------------------------- */

enum { SENDERS = 4, CALLS_PER_SENDER = 1000 };

static pthread_t reactor_thread;
static int next_seq[SENDERS];
static int from_thread_calls, from_thread_errors;

struct sent {
    int sender, seq;
};

static struct sent sent_calls[SENDERS][CALLS_PER_SENDER];

static void arrived(void *arg)
{
    struct sent *s = arg;
    if (!pthread_equal(pthread_self(), reactor_thread) || s->seq != next_seq[s->sender])
        from_thread_errors++;
    next_seq[s->sender]++;
    if (++from_thread_calls == SENDERS * CALLS_PER_SENDER)
        tw_reactor_stop();
}

static void *sender_main(void *arg)
{
    int sender = (int)(intptr_t)arg;
    for (int i = 0; i < CALLS_PER_SENDER; i++) {
        sent_calls[sender][i] = (struct sent){ sender, i };
        tw_call_from_thread(arrived, &sent_calls[sender][i]);
    }
    return NULL;
}

static pthread_t senders[SENDERS];

static void start_late_senders(void *arg)
{
    (void)arg;
    for (int i = 2; i < SENDERS; i++)
        assert_int_equal(pthread_create(&senders[i], NULL, sender_main, I(i)), 0);
}

static void test_call_from_thread(void **state)
{
    (void)state;
    reactor_thread = pthread_self();
    memset(next_seq, 0, sizeof next_seq);
    from_thread_calls = from_thread_errors = 0;
    /* Two start before the loop runs, two while it runs. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&senders[i], NULL, sender_main, I(i)), 0);
    tw_call_when_running(start_late_senders, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    for (int i = 0; i < SENDERS; i++)
        pthread_join(senders[i], NULL);
    assert_int_equal(from_thread_calls, SENDERS * CALLS_PER_SENDER);
    assert_int_equal(from_thread_errors, 0);
}

/* The thread pool -------------------------------------------------------------------------- */

enum { POOL_CALLS = 100, POOL_SIZE = 4 };

static atomic_int pool_running, pool_max;
static int pool_delivered, pool_wrong_thread, pool_wrong_value;

static void *blocking_square(void *arg)
{
    int now = atomic_fetch_add(&pool_running, 1) + 1;
    int max = atomic_load(&pool_max);
    while (now > max && !atomic_compare_exchange_weak(&pool_max, &max, now))
        ;
    struct timespec ts = { 0, 1000000 };    /* 1 ms of "work" */
    nanosleep(&ts, NULL);
    atomic_fetch_sub(&pool_running, 1);
    int v = (int)(intptr_t)arg;
    int *result = malloc(sizeof *result);
    *result = v * v;
    return result;
}

static void pool_result(tw_result *r, void *arg)
{
    int v = (int)(intptr_t)arg;
    if (!pthread_equal(pthread_self(), reactor_thread))
        pool_wrong_thread++;
    if (r->failure || *(int *)r->value != v * v)
        pool_wrong_value++;
    if (++pool_delivered == POOL_CALLS)
        tw_reactor_stop();
}

static void submit_pool_calls(void *arg)
{
    (void)arg;
    for (int i = 0; i < POOL_CALLS; i++) {
        tw_deferred *d = tw_defer_to_thread(blocking_square, I(i), free);
        tw_deferred_add_callbacks(d, pool_result, pool_result, I(i));
        tw_deferred_unref(d);
    }
    assert_int_equal(pool_delivered, 0);    /* never before the call returned */
}

static void test_defer_to_thread(void **state)
{
    (void)state;
    reactor_thread = pthread_self();
    pool_delivered = pool_wrong_thread = pool_wrong_value = 0;
    atomic_store(&pool_max, 0);
    assert_null(tw_defer_to_thread(NULL, NULL, NULL));
    assert_int_equal(tw_reactor_set_thread_pool_size(0), -EINVAL);
    assert_int_equal(tw_reactor_set_thread_pool_size(POOL_SIZE), 0);
    tw_call_when_running(submit_pool_calls, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_int_equal(pool_delivered, POOL_CALLS);
    assert_int_equal(pool_wrong_thread, 0);
    assert_int_equal(pool_wrong_value, 0);
    assert_true(atomic_load(&pool_max) >= 1);
    assert_true(atomic_load(&pool_max) <= POOL_SIZE);

    /* The pool starts again on a later run. */
    pool_delivered = 0;
    tw_call_when_running(submit_pool_calls, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_int_equal(pool_delivered, POOL_CALLS);
    tw_reactor_set_thread_pool_size(10);
}

/* A worker blocked until the test lets it go. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open, gate_entered;
static atomic_int ran_after_cancel;
static int late_values_freed;

static void *wait_at_gate(void *arg)
{
    pthread_mutex_lock(&gate_lock);
    gate_entered = 1;
    pthread_cond_broadcast(&gate_cond);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    return arg;
}

static void *must_not_run(void *arg)
{
    atomic_fetch_add(&ran_after_cancel, 1);
    return arg;
}

static void count_late_value(void *value)
{
    (void)value;
    late_values_freed++;
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static struct outcome running_o, queued_o, released_o;

static void cancel_thread_calls(void *arg)
{
    (void)arg;
    tw_deferred *running = tw_defer_to_thread(wait_at_gate, I(1), count_late_value);
    watch(running, &running_o);
    tw_deferred *queued = tw_defer_to_thread(must_not_run, I(2), NULL);
    watch(queued, &queued_o);

    /* Wait (bounded by the worker) until the first call runs. */
    pthread_mutex_lock(&gate_lock);
    while (!gate_entered)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);

    tw_deferred_cancel(queued);
    assert_ptr_equal(queued_o.domain, TW_ERR_CANCELLED);
    tw_deferred_cancel(running);
    assert_ptr_equal(running_o.domain, TW_ERR_CANCELLED);
    tw_deferred_unref(queued);
    tw_deferred_unref(running);

    /* The gate opens; a call queued after it shows the worker went on. */
    tw_deferred *after = tw_defer_to_thread(must_not_run, I(3), NULL);
    watch(after, &released_o);
    tw_deferred_add_callback(after, stop_on_fire, NULL);
    tw_deferred_unref(after);
    open_gate();
}

static void test_cancel_thread_calls(void **state)
{
    (void)state;
    gate_open = gate_entered = 0;
    late_values_freed = 0;
    atomic_store(&ran_after_cancel, 0);
    tw_reactor_set_thread_pool_size(1);
    tw_call_when_running(cancel_thread_calls, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    assert_int_equal(released_o.fired, 1);
    assert_ptr_equal(released_o.value, I(3));
    assert_int_equal(atomic_load(&ran_after_cancel), 1);     /* only the third */
    assert_int_equal(late_values_freed, 1);
    tw_reactor_set_thread_pool_size(10);
}

static void block_then_stop(void *arg)
{
    (void)arg;
    tw_deferred *running = tw_defer_to_thread(wait_at_gate, I(7), NULL);
    watch(running, &running_o);
    tw_deferred *queued = tw_defer_to_thread(must_not_run, I(8), NULL);
    watch(queued, &queued_o);
    tw_deferred_unref(running);
    tw_deferred_unref(queued);
    pthread_mutex_lock(&gate_lock);
    while (!gate_entered)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    tw_reactor_stop();
}

/* Runs in the DURING phase just before the pool's own trigger. */
static tw_deferred *open_gate_trigger(void *arg)
{
    (void)arg;
    open_gate();
    return NULL;
}

/* Shutdown waits for the running call, delivers its result, and cancels the
 * queued one. Whether the freed worker takes the queued call before the pool
 * stops is a race (it normally loses): either way exactly one outcome. */
static void test_shutdown_stops_the_pool(void **state)
{
    (void)state;
    gate_open = gate_entered = 0;
    atomic_store(&ran_after_cancel, 0);
    tw_reactor_set_thread_pool_size(1);
    int id = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_DURING, open_gate_trigger, NULL);
    tw_call_when_running(block_then_stop, NULL);
    assert_int_equal(tw_reactor_run(), 0);
    tw_reactor_remove_system_event_trigger(id);
    assert_int_equal(running_o.fired, 1);
    assert_ptr_equal(running_o.value, I(7));
    assert_int_equal(queued_o.fired, 1);
    if (atomic_load(&ran_after_cancel) == 0)
        assert_ptr_equal(queued_o.domain, TW_ERR_CANCELLED);
    else
        assert_ptr_equal(queued_o.value, I(8));
    tw_reactor_set_thread_pool_size(10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_later_order),
        cmocka_unit_test(test_equal_times_run_in_scheduling_order),
        cmocka_unit_test(test_cancel_and_active),
        cmocka_unit_test(test_cancel_the_earliest_and_the_last),
        cmocka_unit_test(test_reset_and_delay),
        cmocka_unit_test(test_calls_scheduled_from_calls),
        cmocka_unit_test(test_clock_bad_arguments),
        cmocka_unit_test(test_defer_later),
        cmocka_unit_test(test_defer_later_cancel),
        cmocka_unit_test(test_deferred_timeout_expires),
        cmocka_unit_test(test_deferred_timeout_result_first),
        cmocka_unit_test(test_deferred_timeout_user_cancel),
        cmocka_unit_test(test_deferred_timeout_while_waiting),
        cmocka_unit_test(test_looping_call_interval),
        cmocka_unit_test(test_looping_call_waits_and_skips_missed_intervals),
        cmocka_unit_test(test_looping_call_failure_stops_it),
        cmocka_unit_test(test_looping_call_stops_itself),
        cmocka_unit_test(test_looping_call_freed_by_its_deferred),
        cmocka_unit_test(test_run_stop_run_again),
        cmocka_unit_test(test_reactor_timers),
        cmocka_unit_test(test_zero_delay_calls_do_not_starve_the_loop),
        cmocka_unit_test(test_reactor_deferred_timers),
        cmocka_unit_test(test_shutdown_trigger_phases),
        cmocka_unit_test(test_shutdown_waits_for_before_deferred),
        cmocka_unit_test(test_shutdown_wait_is_bounded),
        cmocka_unit_test(test_call_when_running),
        cmocka_unit_test(test_signals_stop_the_reactor),
        cmocka_unit_test(test_call_from_thread),
        cmocka_unit_test(test_defer_to_thread),
        cmocka_unit_test(test_cancel_thread_calls),
        cmocka_unit_test(test_shutdown_stops_the_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
