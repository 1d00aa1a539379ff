/* twine: coordination primitives over Deferreds (Twisted's DeferredLock,
 * DeferredSemaphore and DeferredQueue). Waiters are served first come, first
 * served, and handing over to a waiter never nests on the C stack, however
 * many waiters release synchronously. */
#ifndef TWINE_SYNC_H
#define TWINE_SYNC_H

#include <twine/deferred.h>

TW_BEGIN_DECLS

typedef struct tw_lock tw_lock;
typedef struct tw_semaphore tw_semaphore;
typedef struct tw_queue tw_queue;

/* A lock with one owner. Freeing it cancels the Deferreds still waiting. */
TW_API tw_lock *tw_lock_new(void);
TW_API void     tw_lock_free(tw_lock *l);
/* Fires with the lock (borrowed) once acquired; cancelling a waiting acquire
 * takes it out of the line. The caller owns the returned reference. */
TW_API tw_deferred *tw_lock_acquire(tw_lock *l);
/* Returns -EPERM when the lock is not held. */
TW_API int      tw_lock_release(tw_lock *l);
TW_API int      tw_lock_locked(const tw_lock *l);
TW_API size_t   tw_lock_waiting(const tw_lock *l);
/* Acquires, then runs fn as tw_maybe_deferred does, releases when its result
 * is ready, and fires with that result. */
TW_API tw_deferred *tw_lock_run(tw_lock *l, tw_callback fn, void *arg);

/* A semaphore with `tokens` (>= 1; NULL otherwise) tokens. */
TW_API tw_semaphore *tw_semaphore_new(unsigned tokens);
TW_API void          tw_semaphore_free(tw_semaphore *s);
TW_API tw_deferred  *tw_semaphore_acquire(tw_semaphore *s);
/* Returns -EPERM when every token is already back. */
TW_API int           tw_semaphore_release(tw_semaphore *s);
TW_API unsigned      tw_semaphore_tokens(const tw_semaphore *s);   /* free now */
TW_API unsigned      tw_semaphore_limit(const tw_semaphore *s);
TW_API size_t        tw_semaphore_waiting(const tw_semaphore *s);
/* The usual way to bound concurrency: at most `tokens` fn at once. */
TW_API tw_deferred  *tw_semaphore_run(tw_semaphore *s, tw_callback fn, void *arg);

/* A queue of values. size: at most that many pending values (0: no limit);
 * backlog: at most that many waiting gets (0: no limit). Freeing it releases
 * the pending values and cancels the waiting gets. */
TW_API tw_queue    *tw_queue_new(size_t size, size_t backlog);
TW_API void         tw_queue_free(tw_queue *q);
/* Hands value to the oldest waiting get, or keeps it. Takes value when dtor is
 * set. Returns -ENOBUFS when the queue is full (value released: Twisted's
 * QueueOverflow). */
TW_API int          tw_queue_put(tw_queue *q, void *value, void (*dtor)(void *));
/* A Deferred for the next value (fired at once if one is pending), or NULL
 * when the backlog is full (Twisted's QueueUnderflow). Cancelling a waiting
 * get takes it out of the line. */
TW_API tw_deferred *tw_queue_get(tw_queue *q);
TW_API size_t       tw_queue_pending(const tw_queue *q);
TW_API size_t       tw_queue_waiting(const tw_queue *q);

TW_END_DECLS

#endif
