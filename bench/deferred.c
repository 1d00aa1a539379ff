/* twine benchmark: what Deferreds, long chains and DeferredLists cost.
 *
 *   case 1  create a Deferred, add 10 callbacks, fire it, free it (ns per cycle)
 *   case 2  a chain of N Deferreds, each one's callback waiting on the next,
 *           resolved by firing the last one (ns per link)
 *   case 3  a DeferredList over M already-fired Deferreds, fired and freed
 *           (ns per input)
 *
 * Each case runs once to warm up, then several times; the figure printed is
 * the best (smallest) run, with the median beside it as a comment. Output is
 * one "key value" line per figure, "#" lines are for people:
 *
 *     case1_ns 123.4
 *
 * bench/deferred-twisted.py measures the same cases on Twisted, and
 * bench/run-deferred.sh prints the two side by side.
 *
 * Usage: deferred [--quick] [--case N]
 *   --quick   fewer cycles and runs, for a short check
 *   --case N  measure only case N (1, 2 or 3), e.g. under a profiler */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime */

#include <twine/deferred.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CASE1_CALLBACKS = 10, MAX_RUNS = 64 };

/* Many short runs rather than a few long ones: on a shared machine the best
 * of them is the one least disturbed by neighbours. */
struct sizes {
    size_t case1_cycles;      /* create/fire/free cycles per run */
    size_t case2_links;       /* Deferreds in the chain */
    size_t case3_inputs;      /* inputs of the DeferredList */
    int case1_runs, case2_runs, case3_runs;
};

static const struct sizes full_sizes = {
    .case1_cycles = 200000, .case2_links = 1000000, .case3_inputs = 100000,
    .case1_runs = 41, .case2_runs = 11, .case3_runs = 41,
};

static const struct sizes quick_sizes = {
    .case1_cycles = 100000, .case2_links = 1000000, .case3_inputs = 100000,
    .case1_runs = 5, .case2_runs = 3, .case3_runs = 5,
};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "deferred benchmark: wrong result: %s\n", what);
        exit(1);
    }
}

/* Case 1 ------------------------------------------------------------------- */

/* Sets the result to the value plus one (an integer carried in the pointer). */
static void add_one(tw_result *r, void *arg)
{
    (void)arg;
    tw_result_set_value(r, (void *)((uintptr_t)r->value + 1), NULL);
}

static double run_case1(size_t cycles)
{
    double t0 = now_ns();
    for (size_t i = 0; i < cycles; i++) {
        tw_deferred *d = tw_deferred_new(NULL, NULL);
        for (int k = 0; k < CASE1_CALLBACKS; k++)
            tw_deferred_add_callback(d, add_one, NULL);
        tw_deferred_callback(d, (void *)(uintptr_t)i, NULL);
        const tw_result *r = tw_deferred_result(d);
        check(r && (uintptr_t)r->value == i + CASE1_CALLBACKS, "case 1 chain value");
        tw_deferred_unref(d);
    }
    return (now_ns() - t0) / (double)cycles;
}

/* Case 2 ------------------------------------------------------------------- */

/* Twisted's "return the next Deferred from a callback": the chain goes on
 * with the result of arg, the next link. */
static void wait_on_next(tw_result *r, void *arg)
{
    tw_result_wait(r, tw_deferred_ref(arg));
}

static tw_deferred **links;   /* case 2's Deferreds, allocated once */

/* Builds the chain link by link, fires every link but the last (each then
 * waits on its successor), fires the last, which resolves the whole chain
 * back to the first, and frees everything. */
static double run_case2(size_t n)
{
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        links[i] = tw_deferred_new(NULL, NULL);
    for (size_t i = 0; i + 1 < n; i++)
        tw_deferred_add_callback(links[i], wait_on_next, links[i + 1]);
    for (size_t i = 0; i + 1 < n; i++)
        tw_deferred_callback(links[i], NULL, NULL);
    check(!tw_deferred_has_result(links[0]), "case 2 chain resolved too early");
    tw_deferred_callback(links[n - 1], (void *)(uintptr_t)42, NULL);
    const tw_result *r = tw_deferred_result(links[0]);
    check(r && (uintptr_t)r->value == 42, "case 2 chain value");
    for (size_t i = 0; i < n; i++)
        tw_deferred_unref(links[i]);
    return (now_ns() - t0) / (double)n;
}

/* Case 3 ------------------------------------------------------------------- */

static tw_deferred **inputs;  /* case 3's inputs, allocated once */

static double run_case3(size_t n)
{
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        inputs[i] = tw_succeed((void *)(uintptr_t)i, NULL);
    tw_deferred *list = tw_deferred_list(inputs, n, 0);   /* takes the inputs */
    const tw_result *r = tw_deferred_result(list);
    check(r != NULL, "case 3 list fired");
    const tw_list_result *lr = r->value;
    check(lr->n == n && lr->entries[n - 1].ok &&
          (uintptr_t)lr->entries[n - 1].result.value == n - 1, "case 3 list entries");
    tw_deferred_unref(list);
    return (now_ns() - t0) / (double)n;
}

/* Measuring ---------------------------------------------------------------- */

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One warm-up run, then `runs` runs; prints the best as "<key>_ns". */
static void measure(const char *key, const char *what, double (*run)(size_t), size_t n, int runs)
{
    double t[MAX_RUNS];
    if (runs > MAX_RUNS)
        runs = MAX_RUNS;
    run(n);
    for (int i = 0; i < runs; i++)
        t[i] = run(n);
    qsort(t, (size_t)runs, sizeof t[0], compare_doubles);
    printf("# %s: best of %d runs, median %.1f ns, worst %.1f ns\n", what, runs,
           t[runs / 2], t[runs - 1]);
    printf("%s_ns %.1f\n", key, t[0]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct sizes s = full_sizes;
    int only = 0;   /* 0: every case */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            s = quick_sizes;
        } else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc &&
                   (only = atoi(argv[i + 1])) >= 1 && only <= 3) {
            i++;
        } else {
            fputs("usage: deferred [--quick] [--case 1|2|3]\n", stderr);
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }

    links = malloc(s.case2_links * sizeof *links);
    inputs = malloc(s.case3_inputs * sizeof *inputs);
    if (!links || !inputs) {
        fprintf(stderr, "deferred benchmark: out of memory\n");
        return 1;
    }

    printf("# twine Deferred benchmark, ns per operation, best of several runs\n");
    if (!only || only == 1) {
        printf("case1_cycles %zu\n", s.case1_cycles);
        measure("case1", "create + 10 callbacks + fire + free", run_case1, s.case1_cycles,
                s.case1_runs);
    }
    if (!only || only == 2) {
        printf("case2_links %zu\n", s.case2_links);
        measure("case2", "chain, per link", run_case2, s.case2_links, s.case2_runs);
    }
    if (!only || only == 3) {
        printf("case3_inputs %zu\n", s.case3_inputs);
        measure("case3", "DeferredList, per input", run_case3, s.case3_inputs, s.case3_runs);
    }

    free(links);
    free(inputs);
    return 0;
}
