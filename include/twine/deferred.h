/* twine: Deferreds, chains of callbacks that carry a result that comes later.
 *
 * The semantics follow Twisted's Deferred. Ownership, one rule: what you hand
 * over, you give away. A function that stores a Deferred, a failure or a value
 * it is given takes the caller's reference to it; keep one with tw_x_ref first
 * if you still need the object. */
#ifndef TWINE_DEFERRED_H
#define TWINE_DEFERRED_H

#include <twine/common.h>
#include <twine/failure.h>

TW_BEGIN_DECLS

/* Opaque, reference counted. Single-threaded: only the reactor thread may
 * touch a Deferred. */
typedef struct tw_deferred tw_deferred;

/* The chain's current result. A callback reads value or failure, and changes
 * the result only through the tw_result_* setters (which release the old one). */
typedef struct tw_result {
    void *value;                 /* the success value (may be NULL) */
    void (*dtor)(void *value);   /* frees value when the chain drops it; NULL: not owned */
    tw_failure *failure;         /* set: the chain is on the errback side */
    tw_deferred *wait_;          /* private: set by tw_result_wait */
} tw_result;

/* Callbacks and errbacks share one shape. Doing nothing passes the result on. */
typedef void (*tw_callback)(tw_result *r, void *arg);

/* Replaces the result with a success value; `value` is taken when dtor is set. */
TW_API void  tw_result_set_value(tw_result *r, void *value, void (*dtor)(void *));
/* Replaces the result with a failure (taken; NULL becomes a TW_ERR_USAGE failure). */
TW_API void  tw_result_set_failure(tw_result *r, tw_failure *f);
/* Releases the result and pauses the chain until d fires; the chain then goes
 * on with d's result (d is left holding nothing). Takes the reference to d;
 * d NULL fails the chain with TW_ERR_USAGE.
 * Waiting on the Deferred itself, or on one that waits on it, fails the chain
 * with TW_ERR_USAGE. */
TW_API void  tw_result_wait(tw_result *r, tw_deferred *d);
/* Returns the value and leaves value and dtor NULL: the caller now owns it. */
TW_API void *tw_result_steal(tw_result *r);
/* For errbacks: if r holds a failure matching domain and code (-1: any), drops
 * it, leaves r a success with a NULL value and returns 1; otherwise leaves r
 * alone and returns 0, so an errback that returns at once passes it on:
 *     if (!tw_result_trap(r, TW_ERR_TIMEOUT, -1)) return;   (Twisted: f.trap) */
TW_API int   tw_result_trap(tw_result *r, const char *domain, int code);

/* A new, unfired Deferred with one reference for the caller. `canceller`
 * (may be NULL) runs at most once, from tw_deferred_cancel, with `arg`.
 * With _full, arg_dtor(arg) runs when the Deferred is freed. */
TW_API tw_deferred *tw_deferred_new(void (*canceller)(tw_deferred *d, void *arg), void *arg);
TW_API tw_deferred *tw_deferred_new_full(void (*canceller)(tw_deferred *d, void *arg), void *arg,
                                         void (*arg_dtor)(void *arg));
TW_API tw_deferred *tw_deferred_ref(tw_deferred *d);
/* Drops a reference (NULL allowed). When the last one goes and the chain ended
 * in a failure nobody handled, logs "Unhandled error in Deferred" with it. */
TW_API void         tw_deferred_unref(tw_deferred *d);

/* Appends a (callback, errback) pair; NULL in either place passes that side
 * through. If d has fired (and is not paused) the pair runs at once; if a
 * callback of d is running, right after it returns. `arg` stays the caller's;
 * with _full, arg_dtor(arg) runs once, when the chain has passed the pair
 * (whichever side ran, or none) or when d is freed before reaching it. */
TW_API void tw_deferred_add_callbacks(tw_deferred *d, tw_callback cb, tw_callback eb, void *arg);
TW_API void tw_deferred_add_callbacks_full(tw_deferred *d, tw_callback cb, tw_callback eb,
                                           void *arg, void (*arg_dtor)(void *arg));
TW_API void tw_deferred_add_callback(tw_deferred *d, tw_callback cb, void *arg);
TW_API void tw_deferred_add_errback(tw_deferred *d, tw_callback eb, void *arg);
TW_API void tw_deferred_add_both(tw_deferred *d, tw_callback fn, void *arg);

/* Fire d with a success value (taken when dtor is set) or a failure (taken).
 * Return 0, or -EALREADY when d had fired (the rejected value is released at
 * once and a TW_ERR_ALREADY_CALLED report is logged). After a cancel without a
 * canceller, the one late firing is swallowed silently and returns 0. */
TW_API int tw_deferred_callback(tw_deferred *d, void *value, void (*dtor)(void *));
TW_API int tw_deferred_errback(tw_deferred *d, tw_failure *f);

/* Cancels d: runs its canceller; if d has not fired then, errbacks it with
 * TW_ERR_CANCELLED. On a fired Deferred that waits on another, cancels that
 * one; on any other fired Deferred does nothing. */
TW_API void tw_deferred_cancel(tw_deferred *d);

/* Pause/unpause nest (a counter). A paused Deferred holds its result. */
TW_API void tw_deferred_pause(tw_deferred *d);
TW_API void tw_deferred_unpause(tw_deferred *d);

/* State, for tests and assertions. has_result: fired, neither paused nor
 * waiting on another Deferred, and none of its callbacks running, so callbacks
 * added now run at once. */
TW_API int tw_deferred_called(const tw_deferred *d);
TW_API int tw_deferred_has_result(const tw_deferred *d);
TW_API int tw_deferred_paused(const tw_deferred *d);
/* The current result, borrowed; NULL unless has_result. */
TW_API const tw_result *tw_deferred_result(const tw_deferred *d);

/* Already-fired Deferreds. Take value (when dtor is set) or f. */
TW_API tw_deferred *tw_succeed(void *value, void (*dtor)(void *));
TW_API tw_deferred *tw_fail(tw_failure *f);

/* Calls fn with an empty result at once and returns a Deferred for what it left
 * there: the Deferred it waited on, a fired one for a value or a failure
 * (Twisted's maybeDeferred). */
TW_API tw_deferred *tw_maybe_deferred(tw_callback fn, void *arg);

/* DeferredList ----------------------------------------------------------- */

enum {
    TW_DL_FIRE_ON_ONE_CALLBACK = 1 << 0,
    TW_DL_FIRE_ON_ONE_ERRBACK  = 1 << 1,
    TW_DL_CONSUME_ERRORS       = 1 << 2
};

/* What a DeferredList fires with (gather_results too, every entry ok). Each
 * entry owns its result: the list moves an input's value and destructor into
 * the entry, and the input goes on with the same pointer, unowned, valid as
 * long as the list's result lives. Failures are shared by reference. */
typedef struct tw_list_entry { int ok; tw_result result; } tw_list_entry;
typedef struct tw_list_result { size_t n; tw_list_entry entries[]; } tw_list_result;

/* FIRE_ON_ONE_CALLBACK fires with this; FIRE_ON_ONE_ERRBACK errbacks with a
 * TW_ERR_FIRST_ERROR failure whose code is the index and whose cause is the
 * input's failure. */
typedef struct tw_first_result { size_t index; tw_result result; } tw_first_result;

/* Fires once every input has fired, with a tw_list_result of (ok, result)
 * pairs in input order; see the flags above. Takes the references to ds[i];
 * the array itself is copied. The inputs keep the list alive until it fires.
 * An empty list fires at once, except with FIRE_ON_ONE_CALLBACK (never).
 * With FIRE_ON_ONE_CALLBACK, if every input fails the list errbacks with a
 * TW_ERR_FIRST_ERROR failure, code 0, cause input 0's failure. Cancelling the
 * list cancels its unfired inputs. */
TW_API tw_deferred *tw_deferred_list(tw_deferred **ds, size_t n, unsigned flags);

/* Fires with a tw_list_result of the values (every entry ok), or errbacks with
 * the first failure as TW_ERR_FIRST_ERROR (code: index, cause: the failure).
 * Always consumes the inputs' errors. Takes the references to ds[i]. */
TW_API tw_deferred *tw_gather_results(tw_deferred **ds, size_t n);

/* Debugging ---------------------------------------------------------------- */

/* With debugging on, each Deferred records the file:line where it was created
 * and first fired, and reports of AlreadyCalled and unhandled errors name them.
 * Off by default; the TWINE_DEFERRED_DEBUG environment variable (set to 1)
 * turns it on at start-up. The macros below pass the call sites. */
TW_API void tw_deferred_set_debug(int on);
TW_API int  tw_deferred_get_debug(void);

TW_API tw_deferred *tw_deferred_new_at(void (*canceller)(tw_deferred *, void *), void *arg,
                                       void (*arg_dtor)(void *), const char *file, int line);
TW_API int tw_deferred_callback_at(tw_deferred *d, void *value, void (*dtor)(void *),
                                   const char *file, int line);
TW_API int tw_deferred_errback_at(tw_deferred *d, tw_failure *f, const char *file, int line);

#ifndef TW_NO_CALL_SITES
#define tw_deferred_new(c, a) tw_deferred_new_at((c), (a), NULL, __FILE__, __LINE__)
#define tw_deferred_new_full(c, a, ad) tw_deferred_new_at((c), (a), (ad), __FILE__, __LINE__)
#define tw_deferred_callback(d, v, dt) tw_deferred_callback_at((d), (v), (dt), __FILE__, __LINE__)
#define tw_deferred_errback(d, f) tw_deferred_errback_at((d), (f), __FILE__, __LINE__)
#endif

TW_END_DECLS

#endif
