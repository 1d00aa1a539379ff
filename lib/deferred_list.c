/* twine: DeferredList and gatherResults.
 *
 * The list's state lives as its Deferred's canceller argument. Each input
 * gets one (callback, errback) pair whose argument is the input's slot; the
 * pair holds a reference to the list, so the inputs keep it alive until they
 * have fired, and the slot forgets its input once the pair has run or the
 * input is freed. The list never holds references to its inputs. */
#include "internal.h"

#include <stdbool.h>
#include <string.h>

struct dlist;

struct dl_slot {
    tw_deferred *input;      /* not a reference; NULL once its pair is gone */
    struct dlist *owner;
};

struct dlist {
    tw_deferred *d;          /* the list's Deferred; not a reference */
    unsigned flags;
    size_t n, finished;
    tw_list_result *results; /* owned here until the list fires with it */
    struct dl_slot slots[];
};

static void list_result_free(void *p)
{
    tw_list_result *lr = p;
    for (size_t i = 0; i < lr->n; i++)
        tw_result_release(&lr->entries[i].result);
    free(lr);
}

static void first_result_free(void *p)
{
    tw_first_result *fr = p;
    tw_result_release(&fr->result);
    free(fr);
}

static void dlist_free(void *p)
{
    struct dlist *l = p;
    if (l->results)
        list_result_free(l->results);
    free(l);
}

static void fire_with_results(struct dlist *l)
{
    tw_list_result *lr = l->results;
    l->results = NULL;
    tw_deferred_callback(l->d, lr, list_result_free);
}

static void on_input(tw_result *r, void *arg)
{
    struct dl_slot *slot = arg;
    struct dlist *l = slot->owner;
    size_t i = (size_t)(slot - l->slots);
    bool ok = r->failure == NULL;

    l->finished++;
    if (!tw_deferred_called(l->d)) {
        tw_list_entry *e = &l->results->entries[i];
        e->ok = ok;
        if (!ok) {
            e->result.failure = tw_failure_ref(r->failure);
        } else if (!(l->flags & TW_DL_FIRE_ON_ONE_CALLBACK)) {
            e->result.value = r->value;       /* the entry owns it; the input goes on unowned */
            e->result.dtor = r->dtor;
            r->dtor = NULL;
        }

        if (ok && (l->flags & TW_DL_FIRE_ON_ONE_CALLBACK)) {
            tw_first_result *fr = tw_xcalloc(1, sizeof *fr);
            fr->index = i;
            fr->result.value = r->value;
            fr->result.dtor = r->dtor;
            r->dtor = NULL;
            tw_deferred_callback(l->d, fr, first_result_free);
        } else if (!ok && (l->flags & TW_DL_FIRE_ON_ONE_ERRBACK)) {
            tw_deferred_errback(l->d, tw_failure_new(TW_ERR_FIRST_ERROR, (int)i,
                tw_failure_ref(r->failure), "input %zu of a DeferredList failed", i));
        } else if (l->finished == l->n) {
            if (l->flags & TW_DL_FIRE_ON_ONE_CALLBACK)
                tw_deferred_errback(l->d, tw_failure_new(TW_ERR_FIRST_ERROR, 0,
                    tw_failure_ref(l->results->entries[0].result.failure),
                    "every input of a DeferredList failed"));
            else
                fire_with_results(l);
        }
    }
    if (!ok && (l->flags & TW_DL_CONSUME_ERRORS))
        tw_result_set_value(r, NULL, NULL);
}

static void slot_release(void *arg)
{
    struct dl_slot *slot = arg;
    tw_deferred *list = slot->owner->d;
    slot->input = NULL;
    tw_deferred_unref(list);
}

static void dlist_cancel(tw_deferred *d, void *arg)
{
    struct dlist *l = arg;
    (void)d;
    for (size_t i = 0; i < l->n; i++) {
        tw_deferred *input = l->slots[i].input;
        if (input) {
            tw_deferred_ref(input);
            tw_deferred_cancel(input);
            tw_deferred_unref(input);
        }
    }
}

tw_deferred *tw_deferred_list(tw_deferred **ds, size_t n, unsigned flags)
{
    struct dlist *l = tw_xmalloc(sizeof *l + n * sizeof l->slots[0]);
    l->flags = flags;
    l->n = n;
    l->finished = 0;
    l->results = tw_xcalloc(1, sizeof *l->results + n * sizeof l->results->entries[0]);
    l->results->n = n;
    l->d = tw_deferred_new_full(dlist_cancel, l, dlist_free);
    tw_deferred_set_canceller_fires(l->d);

    for (size_t i = 0; i < n; i++)
        l->slots[i] = (struct dl_slot){ ds[i], l };
    if (n == 0 && !(flags & TW_DL_FIRE_ON_ONE_CALLBACK))
        fire_with_results(l);

    tw_deferred *list = l->d;
    for (size_t i = 0; i < n; i++) {
        tw_deferred *input = ds[i];
        tw_deferred_ref(list);
        tw_deferred_add_callbacks_full(input, on_input, on_input, &l->slots[i], slot_release);
        tw_deferred_unref(input);
    }
    return list;
}

tw_deferred *tw_gather_results(tw_deferred **ds, size_t n)
{
    return tw_deferred_list(ds, n, TW_DL_FIRE_ON_ONE_ERRBACK | TW_DL_CONSUME_ERRORS);
}
