/* deferred-demo: twine's Deferreds, timers and DeferredList in one program.
 *
 * It simulates a batch of page fetches: each "fetch" is a timer that fires
 * after a made-up latency, and some of them fail. A semaphore keeps at most
 * three in flight, a callback prints each result, an errback each failure,
 * and a DeferredList stops the reactor once the whole batch is done. Swap
 * fetch() for a real request and the shape stays the same. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <twine.h>

struct page {
    const char *url;
    double latency;               /* seconds */
    int status;                   /* what the simulated server answers */
};

static const struct page pages[] = {
    { "http://example.test/",          0.030, 200 },
    { "http://example.test/about",     0.010, 200 },
    { "http://example.test/missing",   0.020, 404 },
    { "http://example.test/news",      0.050, 200 },
    { "http://example.test/slow",      0.080, 200 },
    { "http://example.test/broken",    0.015, 500 },
    { "http://example.test/contact",   0.005, 200 },
};
enum { NPAGES = sizeof pages / sizeof pages[0], CONCURRENCY = 3 };

static int in_flight, max_in_flight;

/* Runs when the simulated answer arrives: a page body or an HTTP failure. */
static void answer(tw_result *r, void *arg)
{
    const struct page *p = arg;
    in_flight--;
    if (p->status >= 400) {
        tw_result_set_failure(r, tw_failure_new(TW_ERR_HTTP, p->status, NULL,
                                                "%s answered %d", p->url, p->status));
        return;
    }
    char *body = malloc(64);
    snprintf(body, 64, "<h1>%s</h1>", p->url);
    tw_result_set_value(r, body, free);
}

/* Starts one fetch; the semaphore calls it when a slot is free. */
static void fetch(tw_result *r, void *arg)
{
    const struct page *p = arg;
    if (++in_flight > max_in_flight)
        max_in_flight = in_flight;
    tw_result_wait(r, tw_defer_later(p->latency, answer, arg));
}

static void print_page(tw_result *r, void *arg)
{
    const struct page *p = arg;
    printf("  ok    %-30s %s\n", p->url, (const char *)r->value);
}

static void print_error(tw_result *r, void *arg)
{
    const struct page *p = arg;
    printf("  fail  %-30s %s\n", p->url, tw_failure_message(r->failure));
}

/* The DeferredList's callback: every fetch has finished. */
static void summarize(tw_result *r, void *arg)
{
    const tw_list_result *all = r->value;
    size_t ok = 0;
    (void)arg;
    for (size_t i = 0; i < all->n; i++)
        ok += all->entries[i].ok;
    printf("%zu pages: %zu ok, %zu failed; at most %d fetches at once\n",
           all->n, ok, all->n - ok, max_in_flight);
    tw_reactor_stop();
}

int main(void)
{
    tw_semaphore *slots = tw_semaphore_new(CONCURRENCY);
    tw_deferred *ds[NPAGES];

    printf("fetching %d pages, %d at a time\n", NPAGES, CONCURRENCY);
    for (size_t i = 0; i < NPAGES; i++) {
        ds[i] = tw_semaphore_run(slots, fetch, (void *)&pages[i]);
        tw_deferred_add_callbacks(ds[i], print_page, print_error, (void *)&pages[i]);
    }
    /* The list takes the references in ds; the inputs keep it alive. */
    tw_deferred *all = tw_deferred_list(ds, NPAGES, TW_DL_CONSUME_ERRORS);
    tw_deferred_add_callback(all, summarize, NULL);
    tw_deferred_unref(all);

    int rc = tw_reactor_run();
    tw_semaphore_free(slots);
    return rc == 0 && max_in_flight <= CONCURRENCY ? 0 : 1;
}
