/* twine: the Deferred, after Twisted's twisted.internet.defer.Deferred.
 *
 * A Deferred holds a list of (callback, errback) pairs and, once fired, a
 * result that each pair in turn transforms. A callback that waits on another
 * Deferred (tw_result_wait) pauses this one and appends a "continuation"
 * entry to the other; when that one reaches the entry, its result moves here
 * and this chain goes on. run_callbacks() walks such chains with an explicit
 * stack instead of recursion, so chains of any length and nesting need
 * constant C stack.
 *
 * References: a continuation entry holds a reference to the Deferred it
 * resumes (so a waiting chain lives as long as what it waits on); the waiting
 * Deferred points back without a reference (waiting_on), cleared when the
 * entry is consumed or destroyed. So an unfired Deferred that nobody holds any
 * more is freed, and with it whatever was only waiting on it: no cycles. */
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct cb_entry {
    tw_callback cb;
    tw_callback eb;
    void *arg;
    void (*arg_dtor)(void *arg);
};

/* The callback slot of a continuation entry; its arg is the Deferred to resume.
 * Only its address is used: the trampoline never calls it. */
static void continue_marker(tw_result *r, void *arg)
{
    (void)r;
    (void)arg;
    abort();
}
#define CONTINUE continue_marker

enum { INLINE_CBS = 4 };

struct tw_deferred {
    unsigned refs;
    unsigned paused;
    bool called;
    bool running;            /* one of its callbacks is on the C stack */
    bool suppress_already_called;
    tw_result result;
    /* Pending pairs are entries[pos..n). */
    struct cb_entry *cbs;
    uint32_t pos, n, cap;
    void (*canceller)(tw_deferred *d, void *arg);
    void *canceller_arg;
    void (*canceller_arg_dtor)(void *arg);
    bool canceller_fires;    /* cancel leaves firing to the canceller */
    tw_deferred *waiting_on;   /* not a reference; see the top of this file */
    uint32_t waiters;        /* continuation entries pending in cbs */
    tw_deferred *free_next;  /* the rest of deferred_free's work list */
    struct call_sites *sites;  /* only made while debugging is on */
    struct cb_entry inline_cbs[INLINE_CBS];
};

/* Where a Deferred was created and first fired; recorded when debugging. */
struct call_sites {
    const char *created_file, *fired_file;
    int created_line, fired_line;
};

/* Freed Deferreds and callback arrays of the first heap size are kept, a few
 * dozen of each, for the next ones: programs make and drop Deferreds at a
 * steady rate, and this spares malloc and free on that path. Only the reactor
 * thread touches Deferreds, so the caches need no lock. Under AddressSanitizer
 * they are off, so that a use after free is still caught. */
enum { FIRST_HEAP_CBS = 16, CACHE_SIZE = 64 };

#if defined(__SANITIZE_ADDRESS__)
#define TW_CACHES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TW_CACHES 0
#endif
#endif
#ifndef TW_CACHES
#define TW_CACHES 1
#endif

struct cache {
    unsigned n;
    void *items[CACHE_SIZE];
};

static struct cache deferred_cache, cbs_cache;

static inline void *cache_get(struct cache *c, size_t size)
{
    if (TW_CACHES && c->n > 0)
        return c->items[--c->n];
    return tw_xmalloc(size);
}

static inline void cache_put(struct cache *c, void *p)
{
    if (TW_CACHES && c->n < CACHE_SIZE)
        c->items[c->n++] = p;
    else
        free(p);
}

/* -1: not yet read from the environment. */
static int debug_state = -1;

static bool debug_from_environment(void)
{
    const char *env = getenv("TWINE_DEFERRED_DEBUG");
    debug_state = env && env[0] && strcmp(env, "0") != 0;
    return debug_state;
}

static inline bool debugging(void)
{
    if (TW_LIKELY(debug_state == 0))
        return false;
    return debug_state > 0 || debug_from_environment();
}

void tw_deferred_set_debug(int on)
{
    debug_state = on != 0;
}

int tw_deferred_get_debug(void)
{
    return debugging();
}

/* Results ---------------------------------------------------------------- */

static void release_value(tw_result *r)
{
    if (r->dtor && r->value)
        r->dtor(r->value);
    r->value = NULL;
    r->dtor = NULL;
}

/* Empties r: value, failure and a pending wait. */
void tw_result_release(tw_result *r)
{
    release_value(r);
    tw_failure_unref(r->failure);
    r->failure = NULL;
    if (r->wait_) {
        tw_deferred *w = r->wait_;
        r->wait_ = NULL;
        tw_deferred_unref(w);
    }
}

/* Moves *from into *to (which must be empty) and leaves *from empty. */
static void result_move(tw_result *to, tw_result *from)
{
    *to = *from;
    memset(from, 0, sizeof *from);
}

/* Out of line, so the common case below stays a leaf function. */
static __attribute__((noinline)) void replace_owned(tw_result *r, void *value,
                                                    void (*dtor)(void *))
{
    if (value == r->value && value) {
        /* Re-setting the same pointer must not free it. */
        r->dtor = NULL;
    }
    tw_result_release(r);
    r->value = value;
    r->dtor = dtor;
}

void tw_result_set_value(tw_result *r, void *value, void (*dtor)(void *))
{
    if (TW_UNLIKELY(r->dtor || r->failure || r->wait_)) {
        replace_owned(r, value, dtor);
        return;
    }
    r->value = value;            /* nothing owned to release: the common case */
    r->dtor = dtor;
}

void tw_result_set_failure(tw_result *r, tw_failure *f)
{
    if (!f)
        f = tw_failure_new(TW_ERR_USAGE, EINVAL, NULL, "tw_result_set_failure given no failure");
    if (f == r->failure) {
        tw_failure_unref(f);      /* the caller's reference; r still holds its own */
        release_value(r);
        return;
    }
    tw_result_release(r);
    r->failure = f;
}

void tw_result_wait(tw_result *r, tw_deferred *d)
{
    if (!d) {
        tw_result_set_failure(r, tw_failure_new(TW_ERR_USAGE, EINVAL, NULL,
                                                "tw_result_wait given no Deferred"));
        return;
    }
    if (d == r->wait_) {
        tw_deferred_unref(d);
        return;
    }
    tw_result_release(r);
    r->wait_ = d;
}

void *tw_result_steal(tw_result *r)
{
    void *v = r->value;
    r->value = NULL;
    r->dtor = NULL;
    return v;
}

int tw_result_trap(tw_result *r, const char *domain, int code)
{
    if (!tw_failure_check(r->failure, domain, code))
        return 0;
    tw_result_release(r);
    return 1;
}

/* Life cycle --------------------------------------------------------------- */

tw_deferred *tw_deferred_new_at(void (*canceller)(tw_deferred *, void *), void *arg,
                                void (*arg_dtor)(void *), const char *file, int line)
{
    tw_deferred *d = cache_get(&deferred_cache, sizeof *d);
    d->refs = 1;
    d->paused = 0;
    d->called = false;
    d->running = false;
    d->suppress_already_called = false;
    memset(&d->result, 0, sizeof d->result);
    d->cbs = d->inline_cbs;
    d->pos = d->n = 0;
    d->cap = INLINE_CBS;
    d->canceller = canceller;
    d->canceller_arg = arg;
    d->canceller_arg_dtor = arg_dtor;
    d->canceller_fires = false;
    d->waiting_on = NULL;
    d->waiters = 0;
    d->free_next = NULL;
    d->sites = NULL;
    if (TW_UNLIKELY(debugging()) && file) {
        d->sites = tw_xcalloc(1, sizeof *d->sites);
        d->sites->created_file = file;
        d->sites->created_line = line;
    }
    return d;
}

tw_deferred *tw_deferred_new(void (*canceller)(tw_deferred *, void *), void *arg)
{
    return tw_deferred_new_at(canceller, arg, NULL, NULL, 0);
}

tw_deferred *tw_deferred_new_full(void (*canceller)(tw_deferred *, void *), void *arg,
                                  void (*arg_dtor)(void *))
{
    return tw_deferred_new_at(canceller, arg, arg_dtor, NULL, 0);
}

tw_deferred *tw_deferred_ref(tw_deferred *d)
{
    d->refs++;
    return d;
}

/* " (created at f:l, first fired at f:l)" when debugging recorded them. */
static void describe_sites(const tw_deferred *d, char *buf, size_t size)
{
    const struct call_sites *s = d->sites;
    buf[0] = '\0';
    if (!s || (!s->created_file && !s->fired_file))
        return;
    int n = snprintf(buf, size, " (");
    if (s->created_file)
        n += snprintf(buf + n, size - (size_t)n, "created at %s:%d%s", s->created_file,
                      s->created_line, s->fired_file ? ", " : "");
    if (s->fired_file)
        n += snprintf(buf + n, size - (size_t)n, "first fired at %s:%d", s->fired_file,
                      s->fired_line);
    snprintf(buf + n, size - (size_t)n, ")");
}

static void report_unhandled(const tw_deferred *d)
{
    char sites[512], prefix[600];
    describe_sites(d, sites, sizeof sites);
    snprintf(prefix, sizeof prefix, "Unhandled error in Deferred%s", sites);
    tw_log_failure(TW_LOG_ERROR, d->result.failure, prefix);
}

/* Destroys the pending entries [pos, n) of d. A continuation entry may hold
 * the last reference to its waiter: that one goes on *todo, to be freed next. */
static void drop_entries(tw_deferred *d, tw_deferred **todo)
{
    while (d->pos < d->n) {
        struct cb_entry e = d->cbs[d->pos++];
        if (e.cb == CONTINUE) {
            tw_deferred *waiter = e.arg;
            waiter->waiting_on = NULL;
            if (--waiter->refs == 0) {
                waiter->free_next = *todo;
                *todo = waiter;
            }
        } else if (e.arg_dtor) {
            e.arg_dtor(e.arg);
        }
    }
}

/* Frees d and every waiter whose last reference it held, and theirs in turn:
 * a work list instead of recursion, so that dropping a long chain of waits
 * needs constant stack. */
static void deferred_free(tw_deferred *d)
{
    tw_deferred *todo = d;
    d->free_next = NULL;
    while (todo) {
        d = todo;
        todo = d->free_next;
        if (d->result.failure)
            report_unhandled(d);
        tw_result_release(&d->result);
        drop_entries(d, &todo);
        if (d->cbs != d->inline_cbs) {
            if (d->cap == FIRST_HEAP_CBS)
                cache_put(&cbs_cache, d->cbs);
            else
                free(d->cbs);
        }
        if (d->canceller_arg_dtor)
            d->canceller_arg_dtor(d->canceller_arg);
        free(d->sites);
        cache_put(&deferred_cache, d);
    }
}

void tw_deferred_unref(tw_deferred *d)
{
    if (d && --d->refs == 0)
        deferred_free(d);
}

/* The trampoline ------------------------------------------------------------ */

/* A stack of Deferreds, each holding a reference, inline until it grows. */
struct chain {
    tw_deferred **items;
    size_t n, cap;
    tw_deferred *inline_items[16];
};

static void chain_push(struct chain *c, tw_deferred *d)
{
    if (c->n == c->cap) {
        size_t cap = c->cap * 2;
        if (c->items == c->inline_items) {
            c->items = tw_xmalloc(cap * sizeof *c->items);
            memcpy(c->items, c->inline_items, sizeof c->inline_items);
        } else {
            c->items = tw_xrealloc(c->items, cap * sizeof *c->items);
        }
        c->cap = cap;
    }
    c->items[c->n++] = d;
}

/* True when waiting on `target` would make `d` wait on itself. d is running
 * its callbacks, so it waits on nothing itself: it can only be target or the
 * end of target's chain of waits, and the latter only when something waits on
 * d. Checking that first keeps the walk out of the common case, where it
 * would make a chain built from its inner end quadratic in its length. */
static bool would_cycle(const tw_deferred *d, const tw_deferred *target)
{
    if (target == d)
        return true;
    if (d->waiters == 0)
        return false;
    for (const tw_deferred *t = target; t; t = t->waiting_on)
        if (t == d)
            return true;
    return false;
}

/* A Deferred whose callback is on the C stack has no result to give away: its
 * callback still holds it. Waiting on it chains, and sees its final result. */
static bool has_result(const tw_deferred *d)
{
    return d->called && d->paused == 0 && !d->waiting_on && !d->running;
}

/* Makes room for one more entry at cbs[n]. */
static void grow_entries(tw_deferred *d)
{
    if (d->pos == d->n) {
        d->pos = d->n = 0;       /* everything ran: reuse the array from the start */
    } else if (d->n == d->cap && d->pos > 0) {
        memmove(d->cbs, d->cbs + d->pos, (d->n - d->pos) * sizeof *d->cbs);
        d->n -= d->pos;
        d->pos = 0;
    }
    if (d->n == d->cap) {
        uint32_t cap = d->cap < FIRST_HEAP_CBS ? FIRST_HEAP_CBS : d->cap * 2;
        if (d->cbs == d->inline_cbs) {
            d->cbs = cache_get(&cbs_cache, cap * sizeof *d->cbs);
            memcpy(d->cbs, d->inline_cbs, d->n * sizeof *d->cbs);
        } else {
            d->cbs = tw_xrealloc(d->cbs, cap * sizeof *d->cbs);
        }
        d->cap = cap;
    }
}

static inline void append_entry(tw_deferred *d, tw_callback cb, tw_callback eb, void *arg,
                                void (*arg_dtor)(void *))
{
    if (TW_UNLIKELY(d->n == d->cap))
        grow_entries(d);
    d->cbs[d->n++] = (struct cb_entry){ cb, eb, arg, arg_dtor };
}

/* After a callback of `cur` asked to wait on r->wait_: either take that
 * Deferred's result at once, or pause cur until it fires. Returns true when
 * cur is now paused. */
static bool start_wait(tw_deferred *cur)
{
    tw_deferred *inner = cur->result.wait_;
    cur->result.wait_ = NULL;

    if (would_cycle(cur, inner)) {
        tw_deferred_unref(inner);
        cur->result.failure = tw_failure_new(TW_ERR_USAGE, EDEADLK, NULL,
            "a callback made its Deferred wait on itself");
        return false;
    }
    if (has_result(inner)) {
        result_move(&cur->result, &inner->result);
        tw_deferred_unref(inner);
        return false;
    }
    cur->paused++;
    cur->waiting_on = inner;
    append_entry(inner, CONTINUE, NULL, tw_deferred_ref(cur), NULL);
    inner->waiters++;
    tw_deferred_unref(inner);   /* the caller's reference; inner's holders keep it alive */
    return true;
}

static void run_callbacks(tw_deferred *d)
{
    if (d->running || d->pos == d->n)
        return;

    struct chain c;              /* inline_items is filled as it is used */
    c.items = c.inline_items;
    c.n = 0;
    c.cap = sizeof c.inline_items / sizeof c.inline_items[0];
    chain_push(&c, tw_deferred_ref(d));

    while (c.n) {
        tw_deferred *cur = c.items[c.n - 1];
        bool finished = true;

        /* A Deferred resumed while paused by its user waits for unpause; the
         * one below it on the stack goes on with its own callbacks. */
        while (!cur->paused && cur->pos < cur->n) {
            /* Read the entry before the call: the callback may add entries,
             * which can move the array. */
            const struct cb_entry *ep = &cur->cbs[cur->pos++];
            tw_callback fn = cur->result.failure ? ep->eb : ep->cb;
            void *arg = ep->arg;
            void (*arg_dtor)(void *) = ep->arg_dtor;

            if (TW_UNLIKELY(ep->cb == CONTINUE)) {
                tw_deferred *chainee = arg;       /* its reference moves to the stack */
                cur->waiters--;
                result_move(&chainee->result, &cur->result);
                chainee->waiting_on = NULL;
                chainee->paused--;
                if (cur->pos == cur->n) {
                    /* Nothing left for cur: the chainee takes its place, so
                     * a long chain of waits needs no deeper stack. */
                    c.items[c.n - 1] = chainee;
                    tw_deferred_unref(cur);
                } else {
                    chain_push(&c, chainee);
                }
                finished = false;
                break;
            }

            if (fn) {
                cur->running = true;
                fn(&cur->result, arg);
                cur->running = false;
            }
            if (arg_dtor)
                arg_dtor(arg);
            if (cur->result.wait_ && start_wait(cur))
                break;
        }
        if (finished) {
            c.n--;
            tw_deferred_unref(cur);
        }
    }
    if (c.items != c.inline_items)
        free(c.items);
}

/* Callbacks ------------------------------------------------------------------ */

void tw_deferred_add_callbacks_full(tw_deferred *d, tw_callback cb, tw_callback eb, void *arg,
                                    void (*arg_dtor)(void *))
{
    append_entry(d, cb, eb, arg, arg_dtor);
    if (d->called)
        run_callbacks(d);
}

void tw_deferred_add_callbacks(tw_deferred *d, tw_callback cb, tw_callback eb, void *arg)
{
    tw_deferred_add_callbacks_full(d, cb, eb, arg, NULL);
}

void tw_deferred_add_callback(tw_deferred *d, tw_callback cb, void *arg)
{
    tw_deferred_add_callbacks_full(d, cb, NULL, arg, NULL);
}

void tw_deferred_add_errback(tw_deferred *d, tw_callback eb, void *arg)
{
    tw_deferred_add_callbacks_full(d, NULL, eb, arg, NULL);
}

void tw_deferred_add_both(tw_deferred *d, tw_callback fn, void *arg)
{
    tw_deferred_add_callbacks_full(d, fn, fn, arg, NULL);
}

/* Firing --------------------------------------------------------------------- */

/* Refuses a second firing: releases what it was given, and unless a cancel
 * arranged to swallow it, logs the report and returns -EALREADY. */
static int refuse_fire(tw_deferred *d, tw_result *given, const char *file, int line)
{
    tw_result_release(given);
    if (d->suppress_already_called) {
        d->suppress_already_called = false;
        return 0;
    }
    char sites[512];
    describe_sites(d, sites, sizeof sites);
    if (file && debugging())
        tw_log(TW_LOG_ERROR, "%s: Deferred fired twice, again at %s:%d%s",
               TW_ERR_ALREADY_CALLED, file, line, sites);
    else
        tw_log(TW_LOG_ERROR, "%s: Deferred fired twice%s", TW_ERR_ALREADY_CALLED, sites);
    return -EALREADY;
}

static int fire(tw_deferred *d, tw_result *given, const char *file, int line)
{
    if (d->called)
        return refuse_fire(d, given, file, line);
    d->called = true;
    if (TW_UNLIKELY(debugging()) && file) {
        if (!d->sites)
            d->sites = tw_xcalloc(1, sizeof *d->sites);
        d->sites->fired_file = file;
        d->sites->fired_line = line;
    }
    result_move(&d->result, given);
    run_callbacks(d);
    return 0;
}

int tw_deferred_callback_at(tw_deferred *d, void *value, void (*dtor)(void *),
                            const char *file, int line)
{
    tw_result r = { .value = value, .dtor = dtor };
    return fire(d, &r, file, line);
}

int tw_deferred_errback_at(tw_deferred *d, tw_failure *f, const char *file, int line)
{
    if (!f)
        f = tw_failure_new(TW_ERR_USAGE, EINVAL, NULL, "tw_deferred_errback given no failure");
    tw_result r = { .failure = f };
    return fire(d, &r, file, line);
}

int tw_deferred_callback(tw_deferred *d, void *value, void (*dtor)(void *))
{
    return tw_deferred_callback_at(d, value, dtor, NULL, 0);
}

int tw_deferred_errback(tw_deferred *d, tw_failure *f)
{
    return tw_deferred_errback_at(d, f, NULL, 0);
}

void tw_deferred_cancel(tw_deferred *d)
{
    /* A fired Deferred that waits on another cancels that one instead: follow
     * the chain of waits in a loop, so that a long one needs no stack. */
    while (d->called && d->waiting_on)
        d = d->waiting_on;
    if (d->called)
        return;

    tw_deferred_ref(d);
    void (*canceller)(tw_deferred *, void *) = d->canceller;
    d->canceller = NULL;            /* runs at most once */
    if (canceller)
        canceller(d, d->canceller_arg);
    else
        d->suppress_already_called = true;
    if (!d->called && !d->canceller_fires)
        tw_deferred_errback(d, tw_failure_new(TW_ERR_CANCELLED, 0, NULL, "Deferred cancelled"));
    tw_deferred_unref(d);
}

void tw_deferred_set_canceller_fires(tw_deferred *d)
{
    d->canceller_fires = true;
}

void tw_deferred_pause(tw_deferred *d)
{
    d->paused++;
}

void tw_deferred_unpause(tw_deferred *d)
{
    /* An unpause without a matching pause is ignored; that includes the pause
     * a wait on another Deferred holds, which only the continuation ends. */
    if (d->paused == (d->waiting_on ? 1u : 0u))
        return;
    if (--d->paused == 0 && d->called)
        run_callbacks(d);
}

int tw_deferred_called(const tw_deferred *d) { return d->called; }
int tw_deferred_has_result(const tw_deferred *d) { return has_result(d); }
int tw_deferred_paused(const tw_deferred *d) { return d->paused > 0; }

const tw_result *tw_deferred_result(const tw_deferred *d)
{
    return has_result(d) ? &d->result : NULL;
}

/* Conveniences ---------------------------------------------------------------- */

tw_deferred *tw_succeed(void *value, void (*dtor)(void *))
{
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_callback(d, value, dtor);
    return d;
}

tw_deferred *tw_fail(tw_failure *f)
{
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_errback(d, f);
    return d;
}

tw_deferred *tw_maybe_deferred(tw_callback fn, void *arg)
{
    tw_result r = { 0 };
    fn(&r, arg);
    if (r.wait_) {
        tw_deferred *d = r.wait_;
        r.wait_ = NULL;
        tw_result_release(&r);
        return d;
    }
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    d->called = true;
    result_move(&d->result, &r);
    return d;
}
