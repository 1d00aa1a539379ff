/* twine: the reactor. It runs libev's default loop until stopped (by
 * tw_reactor_stop, SIGINT or SIGTERM), and a stop runs the shutdown triggers in
 * three phases, from the loop, as Twisted's reactor does: BEFORE (waiting, for
 * a bounded time, for the Deferreds those triggers return), DURING, AFTER.
 *
 * Every watcher of a run is started by tw_reactor_run and stopped before it
 * returns, so the loop is clean and the reactor can run again. */
#include "reactor_internal.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <ev.h>

enum run_state {
    IDLE,        /* not in tw_reactor_run */
    RUNNING,
    STOPPING,    /* the shutdown phases run */
    STOPPED      /* the phases are done; ev_run returns */
};

struct trigger {
    int id;                     /* 0: removed while its phase ran */
    int phase;
    tw_trigger_fn fn;
    void (*plain)(void *arg);   /* instead of fn, for tw_reactor_add_shutdown_trigger */
    void *arg;
};

struct startup_call {
    void (*fn)(void *arg);
    void *arg;
    struct startup_call *next;
};

static struct {
    struct ev_loop *loop;
    enum run_state state;
    ev_signal sigint, sigterm;
    ev_prepare startup;         /* runs the call_when_running list first thing */
    struct startup_call *startup_head, *startup_tail;

    struct trigger *triggers;   /* in the order they were added */
    size_t ntriggers, cap;
    int next_id;
    int firing;                 /* a phase runs: removal leaves a hole (id 0) */

    /* The BEFORE phase's wait. A callback belongs to the current wait only
     * if it carries the current generation. */
    double shutdown_timeout;
    uintptr_t generation;
    unsigned waiting;           /* Deferreds not fired, plus one while the phase runs */
    tw_deferred **before;       /* the phase's Deferreds, with a reference */
    size_t nbefore, before_cap;
    tw_delayed_call *wait_timer;
} R = { .shutdown_timeout = 30, .next_id = 1 };

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents);
static void on_startup(struct ev_loop *loop, ev_prepare *w, int revents);

struct ev_loop *tw_reactor_loop(void)
{
    if (!R.loop) {
        R.loop = ev_default_loop(0);
        if (!R.loop) {
            fprintf(stderr, "twine: libev could not initialise its default loop\n");
            abort();
        }
        ev_signal_init(&R.sigint, on_signal, SIGINT);
        ev_signal_init(&R.sigterm, on_signal, SIGTERM);
        ev_prepare_init(&R.startup, on_startup);
    }
    return R.loop;
}

double tw_reactor_now(void)
{
    struct ev_loop *loop = tw_reactor_loop();
    if (R.state == IDLE)
        ev_now_update(loop);
    return ev_now(loop);
}

int tw_reactor_running(void)
{
    return R.state != IDLE;
}

/* Running ------------------------------------------------------------------------ */

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    tw_log(TW_LOG_INFO, "received signal %d, shutting down", w->signum);
    tw_reactor_stop();
}

static void on_startup(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    ev_prepare_stop(loop, w);
    /* Calls added meanwhile join the end of the list (see call_when_running). */
    while (R.startup_head) {
        struct startup_call *c = R.startup_head;
        R.startup_head = c->next;
        if (!R.startup_head)
            R.startup_tail = NULL;
        c->fn(c->arg);
        free(c);
    }
}

void tw_call_when_running(void (*fn)(void *), void *arg)
{
    if ((R.state == RUNNING || R.state == STOPPING) && !R.startup_head) {
        fn(arg);
        return;
    }
    struct startup_call *c = tw_xmalloc(sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->next = NULL;
    if (R.startup_tail)
        R.startup_tail->next = c;
    else
        R.startup_head = c;
    R.startup_tail = c;
}

int tw_reactor_run(void)
{
    if (R.state != IDLE)
        return -EALREADY;
    struct ev_loop *loop = tw_reactor_loop();
    R.state = RUNNING;
    ev_now_update(loop);
    ev_signal_start(loop, &R.sigint);
    ev_signal_start(loop, &R.sigterm);
    if (R.startup_head)
        ev_prepare_start(loop, &R.startup);
    tw_clock_attach(loop);
    tw_threads_attach(loop);

    /* A watcher of the user's may break the loop too: only a stop ends a run. */
    while (R.state != STOPPED)
        ev_run(loop, 0);

    tw_threads_detach();
    tw_clock_detach();
    ev_prepare_stop(loop, &R.startup);
    ev_signal_stop(loop, &R.sigterm);
    ev_signal_stop(loop, &R.sigint);
    R.state = IDLE;
    return 0;
}

/* Triggers ------------------------------------------------------------------------ */

static int add_trigger(int phase, tw_trigger_fn fn, void (*plain)(void *), void *arg)
{
    if (phase < TW_SHUTDOWN_BEFORE || phase > TW_SHUTDOWN_AFTER || (!fn && !plain))
        return -EINVAL;
    if (R.ntriggers == R.cap) {
        R.cap = R.cap ? R.cap * 2 : 8;
        R.triggers = tw_xrealloc(R.triggers, R.cap * sizeof *R.triggers);
    }
    int id = R.next_id++;
    R.triggers[R.ntriggers++] = (struct trigger){ id, phase, fn, plain, arg };
    return id;
}

int tw_reactor_add_system_event_trigger(int phase, tw_trigger_fn fn, void *arg)
{
    return add_trigger(phase, fn, NULL, arg);
}

void tw_reactor_add_shutdown_trigger(void (*fn)(void *), void *arg)
{
    add_trigger(TW_SHUTDOWN_DURING, NULL, fn, arg);
}

/* Drops the holes that removals left while a phase ran. */
static void compact_triggers(void)
{
    size_t n = 0;
    for (size_t i = 0; i < R.ntriggers; i++)
        if (R.triggers[i].id != 0)
            R.triggers[n++] = R.triggers[i];
    R.ntriggers = n;
    if (n == 0) {
        free(R.triggers);
        R.triggers = NULL;
        R.cap = 0;
    }
}

int tw_reactor_remove_system_event_trigger(int id)
{
    for (size_t i = 0; i < R.ntriggers; i++) {
        if (id <= 0 || R.triggers[i].id != id)
            continue;
        R.triggers[i].id = 0;
        if (!R.firing)
            compact_triggers();
        return 0;
    }
    return -ENOENT;
}

int tw_reactor_set_shutdown_timeout(double seconds)
{
    if (!(seconds >= 0))
        return -EINVAL;
    R.shutdown_timeout = seconds;
    return 0;
}

/* Shutdown ------------------------------------------------------------------------- */

static void before_fired(tw_result *r, void *arg);

static void wait_for(tw_deferred *d)
{
    if (R.nbefore == R.before_cap) {
        R.before_cap = R.before_cap ? R.before_cap * 2 : 8;
        R.before = tw_xrealloc(R.before, R.before_cap * sizeof *R.before);
    }
    R.before[R.nbefore++] = tw_deferred_ref(d);
    R.waiting++;
    tw_deferred_add_both(d, before_fired, (void *)R.generation);
    tw_deferred_unref(d);
}

/* Runs the triggers of one phase that exist when it starts; the pointer to a
 * trigger is not kept across its call, which may add triggers. */
static void run_phase(int phase)
{
    size_t n = R.ntriggers;
    R.firing++;
    for (size_t i = 0; i < n; i++) {
        struct trigger t = R.triggers[i];
        if (t.id == 0 || t.phase != phase)
            continue;
        if (t.plain) {
            t.plain(t.arg);
            continue;
        }
        tw_deferred *d = t.fn(t.arg);
        if (d && phase == TW_SHUTDOWN_BEFORE)
            wait_for(d);
        else
            tw_deferred_unref(d);
    }
    if (--R.firing == 0)
        compact_triggers();
}

static void finish_shutdown(void)
{
    R.generation++;                 /* late BEFORE results are ignored */
    for (size_t i = 0; i < R.nbefore; i++)
        tw_deferred_unref(R.before[i]);
    free(R.before);
    R.before = NULL;
    R.nbefore = R.before_cap = 0;

    run_phase(TW_SHUTDOWN_DURING);
    run_phase(TW_SHUTDOWN_AFTER);
    R.state = STOPPED;
    ev_break(R.loop, EVBREAK_ALL);
}

static void before_done_one(void)
{
    if (--R.waiting > 0)
        return;
    if (R.wait_timer) {
        tw_delayed_call_cancel(R.wait_timer);
        R.wait_timer = NULL;
    }
    finish_shutdown();
}

/* Logs and consumes a BEFORE Deferred's failure (a cancellation is expected
 * after the timeout), and counts it as done if it belongs to this wait. */
static void before_fired(tw_result *r, void *arg)
{
    if (r->failure && !tw_failure_check(r->failure, TW_ERR_CANCELLED, -1))
        tw_log_failure(TW_LOG_ERROR, r->failure, "shutdown trigger failed");
    tw_result_set_value(r, NULL, NULL);
    if ((uintptr_t)arg == R.generation && R.state == STOPPING)
        before_done_one();
}

static void before_timed_out(void *arg)
{
    (void)arg;
    R.wait_timer = NULL;
    tw_log(TW_LOG_WARN, "shutdown: %u trigger Deferred(s) still pending after %g seconds; "
           "cancelling them", R.waiting, R.shutdown_timeout);
    R.generation++;                 /* their cancellation does not count down */
    for (size_t i = 0; i < R.nbefore; i++)
        tw_deferred_cancel(R.before[i]);
    finish_shutdown();
}

static void begin_shutdown(void *arg)
{
    (void)arg;
    R.waiting = 1;                  /* the phase itself, until its triggers have run */
    run_phase(TW_SHUTDOWN_BEFORE);
    if (R.waiting > 1)
        R.wait_timer = tw_call_later(R.shutdown_timeout, before_timed_out, NULL);
    before_done_one();
}

int tw_reactor_stop(void)
{
    if (R.state == IDLE)
        return -ESRCH;
    if (R.state != RUNNING)
        return -EALREADY;
    R.state = STOPPING;
    /* From the loop, as Twisted does: the caller's stack unwinds first. */
    tw_call_later(0, begin_shutdown, NULL);
    return 0;
}
