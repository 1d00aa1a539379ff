/* twine: clocks and their delayed calls.
 *
 * A clock is a binary min-heap of delayed calls keyed by (due time, sequence
 * number): calls due at the same time run in the order they were scheduled,
 * which libev's own timer heap does not promise. The reactor clock reads the
 * loop's time and, while the reactor runs, keeps one ev_timer armed for its
 * earliest call. A test clock's time moves only through tw_clock_advance. */
#include "reactor_internal.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <ev.h>

enum call_state { CALL_PENDING, CALL_RUNNING, CALL_CALLED, CALL_CANCELLED };

struct tw_delayed_call {
    unsigned refs;              /* the clock's until it ran or was cancelled, plus the users' */
    enum call_state state;
    tw_clock *clock;
    double due;
    uint64_t seq;               /* order of (re)scheduling, breaks ties of due */
    size_t index;               /* position in the heap while pending */
    void (*fn)(void *arg);
    void *arg;
    void (*discard)(void *arg);
};

struct tw_clock {
    bool test;
    double now;                 /* test clocks only */
    tw_delayed_call **heap;
    size_t n, cap;
    uint64_t next_seq;
};

static tw_clock reactor_clock;
static struct ev_loop *attached_loop;   /* set while the reactor runs */
static ev_timer reactor_timer;
static bool dispatching;               /* the reactor clock runs due calls: rearm once, after */

/* The heap ------------------------------------------------------------------- */

static bool runs_before(const tw_delayed_call *a, const tw_delayed_call *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(tw_clock *c, size_t i, tw_delayed_call *dc)
{
    c->heap[i] = dc;
    dc->index = i;
}

static void sift_up(tw_clock *c, size_t i)
{
    tw_delayed_call *dc = c->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!runs_before(dc, c->heap[parent]))
            break;
        place(c, i, c->heap[parent]);
        i = parent;
    }
    place(c, i, dc);
}

static void sift_down(tw_clock *c, size_t i)
{
    tw_delayed_call *dc = c->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= c->n)
            break;
        if (child + 1 < c->n && runs_before(c->heap[child + 1], c->heap[child]))
            child++;
        if (!runs_before(c->heap[child], dc))
            break;
        place(c, i, c->heap[child]);
        i = child;
    }
    place(c, i, dc);
}

static void heap_push(tw_clock *c, tw_delayed_call *dc)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->heap = tw_xrealloc(c->heap, c->cap * sizeof *c->heap);
    }
    place(c, c->n++, dc);
    sift_up(c, dc->index);
}

static void heap_remove(tw_clock *c, tw_delayed_call *dc)
{
    size_t i = dc->index;
    tw_delayed_call *last = c->heap[--c->n];
    if (last != dc) {
        place(c, i, last);
        sift_up(c, i);
        sift_down(c, last->index);
    }
}

static tw_delayed_call *heap_top(const tw_clock *c)
{
    return c->n ? c->heap[0] : NULL;
}

/* The reactor's timer ---------------------------------------------------------- */

static void rearm(void)
{
    if (!attached_loop || dispatching)
        return;
    ev_timer_stop(attached_loop, &reactor_timer);
    tw_delayed_call *top = heap_top(&reactor_clock);
    if (!top)
        return;
    double wait = top->due - ev_now(attached_loop);
    ev_timer_set(&reactor_timer, wait > 0 ? wait : 0, 0);
    ev_timer_start(attached_loop, &reactor_timer);
}

/* After dc was added, moved or removed: the timer follows the earliest call. */
static void schedule_changed(tw_clock *c, const tw_delayed_call *old_top, const tw_delayed_call *dc)
{
    const tw_delayed_call *top = heap_top(c);
    if (c == &reactor_clock && (top != old_top || top == dc))
        rearm();
}

static void run_call(tw_clock *c, tw_delayed_call *dc)
{
    heap_remove(c, dc);
    dc->state = CALL_RUNNING;
    dc->fn(dc->arg);
    dc->state = CALL_CALLED;
    tw_delayed_call_unref(dc);
}

/* Runs the due calls scheduled before this pass; the ones they schedule wait
 * for the next loop iteration, so a call that reschedules itself at once
 * cannot starve I/O. Such calls are never due before an older due call (their
 * time is at least the loop's), so stopping at the first one is enough. */
static void reactor_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    double now = ev_now(loop);
    uint64_t limit = reactor_clock.next_seq;
    dispatching = true;
    tw_delayed_call *top;
    while ((top = heap_top(&reactor_clock)) && top->due <= now && top->seq < limit)
        run_call(&reactor_clock, top);
    dispatching = false;
    rearm();
}

void tw_clock_attach(struct ev_loop *loop)
{
    attached_loop = loop;
    ev_init(&reactor_timer, reactor_timer_cb);
    rearm();
}

void tw_clock_detach(void)
{
    ev_timer_stop(attached_loop, &reactor_timer);
    attached_loop = NULL;
    if (reactor_clock.n == 0) {
        free(reactor_clock.heap);
        reactor_clock.heap = NULL;
        reactor_clock.cap = 0;
    }
}

/* Clocks ---------------------------------------------------------------------- */

tw_clock *tw_reactor_clock(void)
{
    return &reactor_clock;
}

tw_clock *tw_clock_new_test(void)
{
    tw_clock *c = tw_xcalloc(1, sizeof *c);
    c->test = true;
    return c;
}

void tw_clock_free(tw_clock *c)
{
    if (!c || c == &reactor_clock)
        return;
    /* A discard hook may schedule more calls here; they are dropped too. */
    while (c->n) {
        tw_delayed_call *dc = c->heap[--c->n];
        dc->state = CALL_CANCELLED;
        if (dc->discard)
            dc->discard(dc->arg);
        tw_delayed_call_unref(dc);
    }
    free(c->heap);
    free(c);
}

double tw_clock_now(const tw_clock *c)
{
    return c->test ? c->now : tw_reactor_now();
}

size_t tw_clock_pending(const tw_clock *c)
{
    return c->n;
}

int tw_clock_advance(tw_clock *c, double seconds)
{
    if (!c->test || !(seconds >= 0))
        return -EINVAL;
    double end = c->now + seconds;
    tw_delayed_call *top;
    while ((top = heap_top(c)) && top->due <= end) {
        if (top->due > c->now)
            c->now = top->due;
        run_call(c, top);
    }
    if (end > c->now)      /* a call may have advanced the clock itself */
        c->now = end;
    return 0;
}

/* Delayed calls ------------------------------------------------------------------ */

tw_delayed_call *tw_clock_call_later_discard(tw_clock *c, double seconds, void (*fn)(void *),
                                             void *arg, void (*discard)(void *))
{
    if (!fn || !isfinite(seconds))
        return NULL;
    tw_delayed_call *dc = tw_xmalloc(sizeof *dc);
    dc->refs = 1;
    dc->state = CALL_PENDING;
    dc->clock = c;
    dc->due = tw_clock_now(c) + (seconds > 0 ? seconds : 0);
    dc->seq = c->next_seq++;
    dc->fn = fn;
    dc->arg = arg;
    dc->discard = discard;
    const tw_delayed_call *old_top = heap_top(c);
    heap_push(c, dc);
    schedule_changed(c, old_top, dc);
    return dc;
}

tw_delayed_call *tw_clock_call_later(tw_clock *c, double seconds, void (*fn)(void *), void *arg)
{
    return tw_clock_call_later_discard(c, seconds, fn, arg, NULL);
}

tw_delayed_call *tw_call_later(double seconds, void (*fn)(void *), void *arg)
{
    return tw_clock_call_later_discard(&reactor_clock, seconds, fn, arg, NULL);
}

tw_delayed_call *tw_delayed_call_ref(tw_delayed_call *dc)
{
    dc->refs++;
    return dc;
}

void tw_delayed_call_unref(tw_delayed_call *dc)
{
    if (dc && --dc->refs == 0)
        free(dc);
}

static int check_pending(const tw_delayed_call *dc)
{
    switch (dc->state) {
    case CALL_PENDING:
        return 0;
    case CALL_CANCELLED:
        return -ECANCELED;
    default:
        return -EALREADY;
    }
}

int tw_delayed_call_cancel(tw_delayed_call *dc)
{
    int err = check_pending(dc);
    if (err)
        return err;
    tw_clock *c = dc->clock;
    const tw_delayed_call *old_top = heap_top(c);
    heap_remove(c, dc);
    dc->state = CALL_CANCELLED;
    schedule_changed(c, old_top, dc);
    tw_delayed_call_unref(dc);
    return 0;
}

/* Moves dc to `due`, behind the calls already scheduled for that time. */
static int reschedule(tw_delayed_call *dc, double due)
{
    tw_clock *c = dc->clock;
    const tw_delayed_call *old_top = heap_top(c);
    dc->due = due;
    dc->seq = c->next_seq++;
    sift_up(c, dc->index);
    sift_down(c, dc->index);
    schedule_changed(c, old_top, dc);
    return 0;
}

int tw_delayed_call_reset(tw_delayed_call *dc, double seconds)
{
    int err = check_pending(dc);
    if (err)
        return err;
    if (!isfinite(seconds))
        return -EINVAL;
    return reschedule(dc, tw_clock_now(dc->clock) + (seconds > 0 ? seconds : 0));
}

int tw_delayed_call_delay(tw_delayed_call *dc, double seconds)
{
    int err = check_pending(dc);
    if (err)
        return err;
    if (!isfinite(seconds))
        return -EINVAL;
    return reschedule(dc, dc->due + seconds);
}

int tw_delayed_call_active(const tw_delayed_call *dc)
{
    return dc->state == CALL_PENDING;
}

double tw_delayed_call_time(const tw_delayed_call *dc)
{
    return dc->due;
}
