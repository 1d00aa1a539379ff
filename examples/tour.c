/* tour: the Deferred tour from README.md, as a program. */
#include <stdio.h>
#include <stdlib.h>
#include <twine.h>

static void parse(tw_result *r, void *arg)        /* callback: value -> value */
{
    int *n = malloc(sizeof *n);
    *n = 42;
    tw_result_set_value(r, n, free);
}

static void fetch_more(tw_result *r, void *arg)   /* callback: wait on another Deferred */
{
    tw_result_wait(r, tw_defer_later(0.01, NULL, NULL));
}

static void report(tw_result *r, void *arg)       /* errback */
{
    fprintf(stderr, "failed: %s\n", tw_failure_message(r->failure));
    tw_result_set_value(r, NULL, NULL);            /* handled: back to the success side */
}

static void done(tw_result *r, void *arg)         /* runs on either side */
{
    printf("done (%s)\n", r->failure ? "failure" : "success");
    tw_reactor_stop();
}

int main(void)
{
    tw_deferred *d = tw_defer_later(0.01, parse, NULL);  /* fires in 10 ms */
    tw_deferred_add_callback(d, fetch_more, NULL);
    tw_deferred_add_errback(d, report, NULL);
    tw_deferred_add_both(d, done, NULL);
    tw_deferred_unref(d);                                /* the timer keeps it alive */
    return tw_reactor_run();
}
