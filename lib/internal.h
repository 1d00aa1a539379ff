/* twine: what the library's sources share and the public headers must not show. */
#ifndef TWINE_INTERNAL_H
#define TWINE_INTERNAL_H

/* Inside the library the public names are functions, not call-site macros. */
#define TW_NO_CALL_SITES 1

#include "config.h"
#include <stdlib.h>
#include <twine.h>

#define TW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define TW_LIKELY(x)   __builtin_expect(!!(x), 1)

/* Allocation that cannot return NULL: twine aborts on exhausted memory, as
 * libev and most servers do, so no caller has a half-done state to undo. */
void *tw_xmalloc(size_t size);
void *tw_xcalloc(size_t n, size_t size);
void *tw_xrealloc(void *p, size_t size);
char *tw_xstrdup(const char *s);

/* Empties r: releases its value, failure and pending wait. */
void tw_result_release(tw_result *r);

/* From now on tw_deferred_cancel(d) only runs the canceller and leaves firing
 * d to it (a DeferredList fires when its cancelled inputs do). */
void tw_deferred_set_canceller_fires(tw_deferred *d);

/* A line of Deferreds waiting for something (a lock's token, a queue's
 * value), first come first served. Each waiter is a Deferred whose
 * cancellation takes it out of the line. */
struct tw_waiter;
typedef struct tw_waitq {
    struct tw_waiter *head, *tail;
    size_t n;
} tw_waitq;

/* A new waiting Deferred at the tail; the caller gets one reference. */
tw_deferred *tw_waitq_push(tw_waitq *q);
/* Takes the head out of the line and returns it, with the line's reference,
 * or NULL when the line is empty. */
tw_deferred *tw_waitq_pop(tw_waitq *q);

/* Logs "<prefix>: <failure formatted>" at `level`. */
void tw_log_failure(int level, const tw_failure *f, const char *prefix);

#endif
