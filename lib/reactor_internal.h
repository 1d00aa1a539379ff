/* twine: what the reactor's sources (clock.c, reactor.c, task.c, threads.c)
 * share with each other. */
#ifndef TWINE_REACTOR_INTERNAL_H
#define TWINE_REACTOR_INTERNAL_H

#include "internal.h"

struct ev_loop;

/* tw_clock_call_later, and if tw_clock_free drops the call before it runs,
 * discard(arg) runs instead (never after a run or a cancel). */
tw_delayed_call *tw_clock_call_later_discard(tw_clock *c, double seconds, void (*fn)(void *arg),
                                             void *arg, void (*discard)(void *arg));

/* While the reactor runs, the reactor clock keeps one ev_timer on `loop`
 * armed for its earliest call. */
void tw_clock_attach(struct ev_loop *loop);
void tw_clock_detach(void);

/* While the reactor runs, calls queued from other threads wake `loop`. */
void tw_threads_attach(struct ev_loop *loop);
void tw_threads_detach(void);

#endif
