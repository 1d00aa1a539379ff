/* twine: Deferreds driven by a clock, after Twisted's twisted.internet.task:
 * deferLater, Deferred.addTimeout and LoopingCall.
 *
 * A pending timer holds a reference to the Deferred it will fire or cancel,
 * so a Deferred nobody else holds still fires (or times out) on time. */
#include "reactor_internal.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>

/* defer_later ------------------------------------------------------------------ */

struct later {
    tw_delayed_call *call;      /* borrowed from the clock while pending */
    tw_deferred *d;             /* the timer's reference while pending */
};

static void later_fire(void *arg)
{
    struct later *l = arg;
    tw_deferred *d = l->d;
    l->call = NULL;
    tw_deferred_callback(d, NULL, NULL);
    tw_deferred_unref(d);
}

static void later_cancel(tw_deferred *d, void *arg)
{
    struct later *l = arg;
    if (l->call) {
        tw_delayed_call_cancel(l->call);
        l->call = NULL;
        tw_deferred_unref(d);       /* tw_deferred_cancel holds one meanwhile */
    }
}

static void later_discard(void *arg)
{
    struct later *l = arg;
    tw_deferred *d = l->d;
    l->call = NULL;
    tw_deferred_cancel(d);
    tw_deferred_unref(d);
}

tw_deferred *tw_clock_defer_later(tw_clock *c, double seconds, tw_callback fn, void *arg)
{
    if (!isfinite(seconds))
        return NULL;
    struct later *l = tw_xmalloc(sizeof *l);
    l->d = tw_deferred_new_full(later_cancel, l, free);
    l->call = tw_clock_call_later_discard(c, seconds, later_fire, l, later_discard);
    tw_deferred_ref(l->d);
    if (fn)
        tw_deferred_add_callback(l->d, fn, arg);
    return l->d;
}

tw_deferred *tw_defer_later(double seconds, tw_callback fn, void *arg)
{
    return tw_clock_defer_later(tw_reactor_clock(), seconds, fn, arg);
}

/* deferred_timeout ---------------------------------------------------------------- */

struct timeout {
    tw_delayed_call *call;      /* borrowed from the clock while pending */
    tw_deferred *d;             /* the timer's reference while pending */
    double seconds;
    bool timed_out;
};

static void timeout_expire(void *arg)
{
    struct timeout *t = arg;
    tw_deferred *d = t->d;
    t->call = NULL;
    t->timed_out = true;
    tw_deferred_cancel(d);      /* may reach timeout_check, which frees t */
    tw_deferred_unref(d);
}

static void timeout_discard(void *arg)
{
    struct timeout *t = arg;
    tw_deferred *d = t->d;
    t->call = NULL;
    tw_deferred_unref(d);
}

/* Both sides, where addTimeout puts its two callbacks: the timer goes, and a
 * cancellation the timer caused becomes a timeout. */
static void timeout_check(tw_result *r, void *arg)
{
    struct timeout *t = arg;
    if (t->call) {
        tw_delayed_call_cancel(t->call);
        t->call = NULL;
        tw_deferred_unref(t->d);    /* the chain that runs us holds d too */
    }
    if (t->timed_out && tw_failure_check(r->failure, TW_ERR_CANCELLED, -1)) {
        tw_failure *cause = tw_failure_ref(r->failure);
        tw_result_set_failure(r, tw_failure_new(TW_ERR_TIMEOUT, ETIMEDOUT, cause,
                                                "Deferred timed out after %g seconds",
                                                t->seconds));
    }
}

tw_deferred *tw_clock_deferred_timeout(tw_clock *c, tw_deferred *d, double seconds)
{
    if (!isfinite(seconds))
        return d;
    struct timeout *t = tw_xmalloc(sizeof *t);
    t->d = tw_deferred_ref(d);
    t->seconds = seconds;
    t->timed_out = false;
    t->call = tw_clock_call_later_discard(c, seconds, timeout_expire, t, timeout_discard);
    tw_deferred_add_callbacks_full(d, timeout_check, timeout_check, t, free);
    return d;
}

tw_deferred *tw_deferred_timeout(tw_deferred *d, double seconds)
{
    return tw_clock_deferred_timeout(tw_reactor_clock(), d, seconds);
}

/* Looping calls ---------------------------------------------------------------------- */

struct tw_looping_call {
    unsigned refs;              /* the owner's, plus one while fn's Deferred is pending */
    bool owned;                 /* the owner has not freed it yet */
    bool running;
    bool waiting;               /* fn's Deferred has not fired yet */
    tw_clock *clock;
    tw_callback fn;
    void *arg;
    double interval, start_time;
    tw_delayed_call *call;      /* the next call, borrowed from the clock */
    tw_deferred *done;          /* what start returned, until it fires */
};

static void tick(void *arg);

static void lc_unref(void *arg)
{
    tw_looping_call *lc = arg;
    if (--lc->refs == 0)
        free(lc);
}

/* The caller must not touch lc afterwards unless it holds a reference: the
 * Deferred's callbacks may free it. */
static void fire_done(tw_looping_call *lc, tw_failure *f)
{
    tw_deferred *d = lc->done;
    lc->done = NULL;
    if (f)
        tw_deferred_errback(d, f);
    else
        tw_deferred_callback(d, lc, NULL);
    tw_deferred_unref(d);
}

static void tick_discard(void *arg)
{
    tw_looping_call *lc = arg;
    lc->call = NULL;
}

/* Schedules the next call at the first start + k * interval after `when`. */
static void schedule_from(tw_looping_call *lc, double when)
{
    double wait = 0;
    if (lc->interval > 0) {
        wait = lc->interval - fmod(when - lc->start_time, lc->interval);
        if (when + wait == when)    /* too small to move the time: skip to the next */
            wait = lc->interval;
    }
    lc->call = tw_clock_call_later_discard(lc->clock, wait, tick, lc, tick_discard);
}

static void fn_done(tw_result *r, void *arg)
{
    (void)r;
    tw_looping_call *lc = arg;
    lc->waiting = false;
    if (lc->running)
        schedule_from(lc, tw_clock_now(lc->clock));
    else
        fire_done(lc, NULL);
}

static void fn_failed(tw_result *r, void *arg)
{
    tw_looping_call *lc = arg;
    tw_failure *f = tw_failure_ref(r->failure);
    tw_result_set_value(r, NULL, NULL);     /* handled: it goes to the start Deferred */
    lc->waiting = false;
    lc->running = false;
    fire_done(lc, f);
}

static void call_fn(tw_looping_call *lc)
{
    lc->waiting = true;
    lc->refs++;
    tw_deferred *d = tw_maybe_deferred(lc->fn, lc->arg);
    tw_deferred_add_callbacks_full(d, fn_done, fn_failed, lc, lc_unref);
    tw_deferred_unref(d);
}

static void tick(void *arg)
{
    tw_looping_call *lc = arg;
    lc->call = NULL;
    call_fn(lc);
}

tw_looping_call *tw_clock_looping_call_new(tw_clock *c, tw_callback fn, void *arg)
{
    if (!fn)
        return NULL;
    tw_looping_call *lc = tw_xcalloc(1, sizeof *lc);
    lc->refs = 1;
    lc->owned = true;
    lc->clock = c;
    lc->fn = fn;
    lc->arg = arg;
    return lc;
}

tw_looping_call *tw_looping_call_new(tw_callback fn, void *arg)
{
    return tw_clock_looping_call_new(tw_reactor_clock(), fn, arg);
}

tw_deferred *tw_looping_call_start(tw_looping_call *lc, double interval, int now)
{
    if (lc->running || lc->waiting || !(interval >= 0) || !isfinite(interval))
        return NULL;
    lc->running = true;
    lc->interval = interval;
    lc->start_time = tw_clock_now(lc->clock);
    lc->done = tw_deferred_new(NULL, NULL);
    tw_deferred *d = tw_deferred_ref(lc->done);
    if (now)
        call_fn(lc);
    else
        schedule_from(lc, lc->start_time);
    return d;
}

int tw_looping_call_stop(tw_looping_call *lc)
{
    if (!lc->running)
        return -ESRCH;
    lc->running = false;
    if (lc->call) {
        tw_delayed_call_cancel(lc->call);
        lc->call = NULL;
    }
    if (!lc->waiting)
        fire_done(lc, NULL);
    return 0;
}

int tw_looping_call_running(const tw_looping_call *lc)
{
    return lc->running;
}

void tw_looping_call_free(tw_looping_call *lc)
{
    /* Stopping fires the start Deferred, whose callbacks may free lc again. */
    if (!lc || !lc->owned)
        return;
    lc->owned = false;
    if (lc->running)
        tw_looping_call_stop(lc);
    lc_unref(lc);
}
