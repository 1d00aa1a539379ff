/* twine: the reactor, timers and threads.
 *
 * One reactor per process, on libev's default loop. Everything it calls runs
 * in the thread that runs it (the reactor thread), from the loop; only
 * tw_call_from_thread may be called from other threads.
 *
 * Callbacks' `arg` pointers always stay the caller's; they must stay valid
 * until the callback has run, or been cancelled or removed.
 *
 * Timers live on a clock. Every timer function has two forms: tw_clock_X takes
 * the clock as its first argument, and tw_X is the same on tw_reactor_clock().
 * A test clock (tw_clock_new_test, Twisted's task.Clock) has a virtual time
 * that only tw_clock_advance moves, so timer logic is tested without waiting. */
#ifndef TWINE_REACTOR_H
#define TWINE_REACTOR_H

#include <twine/common.h>
#include <twine/deferred.h>

TW_BEGIN_DECLS

struct ev_loop;

/* The reactor --------------------------------------------------------------- */

/* Runs the loop until tw_reactor_stop() (or SIGINT or SIGTERM) and the
 * shutdown triggers have run. Returns 0 then, or -EALREADY when the reactor is
 * already running. The reactor may be run again after it returned; timers,
 * triggers and queued calls carry over to the next run. */
TW_API int tw_reactor_run(void);

/* Starts the shutdown: from the loop, the BEFORE, DURING and AFTER triggers
 * run, then tw_reactor_run returns. Returns 0, -ESRCH when the reactor is not
 * running, or -EALREADY when it is already shutting down. */
TW_API int tw_reactor_stop(void);

/* 1 from the start of tw_reactor_run until it returns (shutdown included). */
TW_API int tw_reactor_running(void);

/* The libev loop (the default loop), to add your own watchers. Borrowed: it
 * lives as long as the process. Watchers started on it stay started between
 * runs; the reactor's own watchers are stopped at the end of every run. */
TW_API struct ev_loop *tw_reactor_loop(void);

/* The reactor clock's time: seconds since the Unix epoch as libev's ev_now
 * gives it (the time the current loop iteration began; outside a run, the
 * current time). As in Twisted, due times follow a jump of the system clock. */
TW_API double tw_reactor_now(void);

/* Runs fn(arg) once the reactor runs: at once if it is running, otherwise
 * from the loop at the start of the next run, before any timer, in the order
 * of the calls. */
TW_API void tw_call_when_running(void (*fn)(void *arg), void *arg);

/* Shutdown triggers (Twisted's system event triggers for "shutdown"). Each
 * stop runs the BEFORE triggers, waits for the Deferreds they returned (at most
 * the shutdown timeout), then runs the DURING triggers, then the AFTER ones.
 * Within a phase triggers run in the order they were added. Triggers persist:
 * every later shutdown runs them again until they are removed. A trigger added
 * while its phase is running waits for the next shutdown. */
enum {
    TW_SHUTDOWN_BEFORE,
    TW_SHUTDOWN_DURING,
    TW_SHUTDOWN_AFTER
};

/* A trigger returns NULL or a Deferred (the caller's reference, given to the
 * reactor). Only BEFORE waits for it; its failure is logged. The Deferred a
 * DURING or AFTER trigger returns is released without waiting. */
typedef tw_deferred *(*tw_trigger_fn)(void *arg);

/* Returns the trigger's id (> 0), or -EINVAL for an unknown phase or no fn. */
TW_API int tw_reactor_add_system_event_trigger(int phase, tw_trigger_fn fn, void *arg);
/* Returns 0, or -ENOENT when no trigger has that id. */
TW_API int tw_reactor_remove_system_event_trigger(int id);
/* A DURING trigger that returns nothing; for removal, use the function above. */
TW_API void tw_reactor_add_shutdown_trigger(void (*fn)(void *arg), void *arg);

/* How long shutdown waits for the BEFORE triggers' Deferreds (default 30 s);
 * the ones still unfired then are cancelled, and shutdown goes on. Returns 0,
 * or -EINVAL for a negative or NaN value. */
TW_API int tw_reactor_set_shutdown_timeout(double seconds);

/* Clocks and delayed calls -------------------------------------------------- */

typedef struct tw_clock tw_clock;
typedef struct tw_delayed_call tw_delayed_call;

/* The reactor's clock. Borrowed; lives as long as the process. Its calls run
 * while the reactor runs. */
TW_API tw_clock *tw_reactor_clock(void);

/* A test clock, owned by the caller: its time starts at 0 and moves only
 * through tw_clock_advance. */
TW_API tw_clock *tw_clock_new_test(void);

/* Frees a test clock (NULL and the reactor clock are ignored), not from one
 * of its own calls. Its pending calls are dropped without running, as if
 * cancelled: a tw_defer_later Deferred on it errbacks with TW_ERR_CANCELLED,
 * a tw_deferred_timeout on it never expires, a looping call on it stalls. */
TW_API void tw_clock_free(tw_clock *c);

TW_API double tw_clock_now(const tw_clock *c);

/* How many calls are pending on c (Twisted's getDelayedCalls). */
TW_API size_t tw_clock_pending(const tw_clock *c);

/* Moves a test clock forward by `seconds`: the time steps to each call that
 * falls due in that span, in order, and runs it (calls scheduled by those
 * calls run too if they fall due within the span); then the time is set to
 * the end of the span. (Twisted's Clock.advance runs them all at the end
 * time instead.) Returns 0, or -EINVAL for the reactor clock or a
 * negative or NaN amount. */
TW_API int tw_clock_advance(tw_clock *c, double seconds);

/* Schedules fn(arg) `seconds` from now (negative counts as 0). Calls due at
 * the same time run in the order they were scheduled; on the reactor clock, a
 * call scheduled while due calls run waits for the next loop iteration.
 * Returns NULL when fn is NULL or seconds is not finite.
 *
 * The handle is borrowed: it belongs to the clock and stays valid until the
 * call has run (fn has returned) or was cancelled. To use it after that (for
 * instance to cancel a call that may have run), take a reference with
 * tw_delayed_call_ref and drop it with tw_delayed_call_unref. */
TW_API tw_delayed_call *tw_clock_call_later(tw_clock *c, double seconds,
                                            void (*fn)(void *arg), void *arg);
TW_API tw_delayed_call *tw_call_later(double seconds, void (*fn)(void *arg), void *arg);

TW_API tw_delayed_call *tw_delayed_call_ref(tw_delayed_call *dc);
/* NULL is allowed. */
TW_API void tw_delayed_call_unref(tw_delayed_call *dc);

/* These return 0, -EALREADY when the call has run or is running (Twisted's
 * AlreadyCalled), or -ECANCELED when it was cancelled (AlreadyCancelled).
 * reset: due `seconds` from now (negative counts as 0); delay: due `seconds`
 * later than it was. Both return -EINVAL when seconds is not finite. A
 * rescheduled call runs after the calls already scheduled for the same time. */
TW_API int tw_delayed_call_cancel(tw_delayed_call *dc);
TW_API int tw_delayed_call_reset(tw_delayed_call *dc, double seconds);
TW_API int tw_delayed_call_delay(tw_delayed_call *dc, double seconds);

/* 1 while the call waits to run; 0 once it runs, ran or was cancelled. */
TW_API int tw_delayed_call_active(const tw_delayed_call *dc);
/* When it is (or was) due, on its clock's time. */
TW_API double tw_delayed_call_time(const tw_delayed_call *dc);

/* Deferred timers ------------------------------------------------------------- */

/* Twisted's deferLater: a Deferred that fires `seconds` from now; fn (may be
 * NULL) runs then as its first callback, with a NULL value, and what it leaves
 * in the result is what the Deferred goes on with (a value, a failure, or a
 * Deferred it waits on). Cancelling it before then cancels the timer and
 * errbacks TW_ERR_CANCELLED (fn does not run). The caller owns the returned
 * reference. */
TW_API tw_deferred *tw_clock_defer_later(tw_clock *c, double seconds, tw_callback fn, void *arg);
TW_API tw_deferred *tw_defer_later(double seconds, tw_callback fn, void *arg);

/* Twisted's Deferred.addTimeout: if d has not fired `seconds` from now, it is
 * cancelled, and the TW_ERR_CANCELLED failure that results becomes a
 * TW_ERR_TIMEOUT failure (code ETIMEDOUT, the cancellation as its cause). If
 * d fires first the timer is cancelled and the result left alone; a
 * cancellation by the user stays TW_ERR_CANCELLED. Takes the caller's
 * reference to d and returns it, so it chains: d = tw_deferred_timeout(d, 5). */
TW_API tw_deferred *tw_clock_deferred_timeout(tw_clock *c, tw_deferred *d, double seconds);
TW_API tw_deferred *tw_deferred_timeout(tw_deferred *d, double seconds);

/* Looping calls (Twisted's task.LoopingCall) ------------------------------------ */

typedef struct tw_looping_call tw_looping_call;

/* A looping call of fn(result, arg) on clock c (which must outlive its use),
 * owned by the caller. fn is called with an empty result; it may leave a
 * value (ignored), a failure (which stops the loop), or a Deferred to wait on
 * with tw_result_wait (the next call waits until it has fired). Returns NULL
 * when fn is NULL. */
TW_API tw_looping_call *tw_clock_looping_call_new(tw_clock *c, tw_callback fn, void *arg);
TW_API tw_looping_call *tw_looping_call_new(tw_callback fn, void *arg);

/* Starts calling fn every `interval` seconds, the first time at once when
 * `now` is set, otherwise after one interval. Calls are aligned to
 * start + k * interval: when a call (or what it waits on) overruns, the
 * intervals it missed are skipped. Interval 0 calls fn once per loop
 * iteration (on a test clock, tw_clock_advance would never return).
 * Returns a Deferred (the caller's reference) that fires with lc (borrowed)
 * once stopped, or errbacks with fn's failure (which stops it). Returns NULL
 * when lc is running, when fn's Deferred from a stopped run is still pending,
 * or when interval is negative or not finite. */
TW_API tw_deferred *tw_looping_call_start(tw_looping_call *lc, double interval, int now);

/* Stops the loop: no further calls. The start Deferred fires at once, or, when
 * fn's Deferred is still pending, once that one has fired. Returns 0 or
 * -ESRCH when lc is not running. */
TW_API int tw_looping_call_stop(tw_looping_call *lc);

/* 1 between start and stop (or fn's failure). */
TW_API int tw_looping_call_running(const tw_looping_call *lc);

/* Stops lc if it runs (as tw_looping_call_stop) and frees it; if fn's
 * Deferred is still pending, the memory goes once it has fired. NULL is
 * allowed. */
TW_API void tw_looping_call_free(tw_looping_call *lc);

/* Threads ---------------------------------------------------------------------- */

/* Runs fn(arg) in the reactor thread, from the loop. Any thread may call it,
 * also before the reactor first runs; calls from one thread run in the order
 * they were made. Calls still queued when a run ends run in the next one. */
TW_API void tw_call_from_thread(void (*fn)(void *arg), void *arg);

/* Runs fn(arg) on a thread of the reactor's pool and fires the returned
 * Deferred (the caller's reference) in the reactor thread with fn's return
 * value, owned by the chain when dtor is set. fn must not touch twine objects
 * other than through tw_call_from_thread. Returns NULL when fn is NULL. Cancelling it before a worker
 * picked the call up means fn never runs; cancelling it while fn runs
 * errbacks TW_ERR_CANCELLED at once and releases fn's late value with dtor.
 * Workers start on demand; shutdown (DURING phase) cancels the calls not yet
 * started and waits for the running ones; the next run starts the pool anew. */
TW_API tw_deferred *tw_defer_to_thread(void *(*fn)(void *arg), void *arg, void (*dtor)(void *));

/* At most n (>= 1; default 10) calls run at once. Returns 0 or -EINVAL. */
TW_API int tw_reactor_set_thread_pool_size(unsigned n);

TW_END_DECLS

#endif
