/* twine: a first-come-first-served line of waiting Deferreds. */
#include "internal.h"

struct tw_waiter {
    struct tw_waiter *prev, *next;
    tw_waitq *q;            /* NULL once out of the line */
    tw_deferred *d;         /* the line's reference while in it */
};

static void unlink_waiter(struct tw_waiter *w)
{
    tw_waitq *q = w->q;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    q->n--;
    w->q = NULL;
    w->prev = w->next = NULL;
}

/* Cancelling a waiter takes it out of the line; tw_deferred_cancel then
 * errbacks it with TW_ERR_CANCELLED. */
static void cancel_waiter(tw_deferred *d, void *arg)
{
    struct tw_waiter *w = arg;
    if (w->q) {
        unlink_waiter(w);
        tw_deferred_unref(d);
    }
}

tw_deferred *tw_waitq_push(tw_waitq *q)
{
    struct tw_waiter *w = tw_xmalloc(sizeof *w);
    w->d = tw_deferred_new_full(cancel_waiter, w, free);
    w->q = q;
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->n++;
    return tw_deferred_ref(w->d);
}

tw_deferred *tw_waitq_pop(tw_waitq *q)
{
    struct tw_waiter *w = q->head;
    if (!w)
        return NULL;
    unlink_waiter(w);
    return w->d;
}
