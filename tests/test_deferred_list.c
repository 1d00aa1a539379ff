/* twine tests: DeferredList and gather_results (include/twine/deferred.h).
 * Ported from Twisted's test_defer.py where a test names its original. */
#include "testutil.h"

static const char GENERIC_ERR[] = "generic";

static tw_failure *generic(const char *msg)
{
    return tw_failure_new(GENERIC_ERR, 0, NULL, "%s", msg);
}

/* Each test captures the log; a message it did not expect (and clear) fails it. */
static int capture_log(void **state)
{
    (void)state;
    tw_test_capture_log();
    return 0;
}

static int expect_quiet_log(void **state)
{
    (void)state;
    int unexpected = tw_test_captured.count;
    if (unexpected)
        print_error("unexpected log messages:\n%s", tw_test_captured.all);
    tw_test_restore_log();
    return unexpected ? -1 : 0;
}

/* The success value d holds now (borrowed); fails unless d has one. */
static void *value_of(tw_deferred *d)
{
    const tw_result *r = tw_deferred_result(d);
    assert_non_null(r);
    assert_null(r->failure);
    return r->value;
}

/* The failure d holds now (borrowed); fails unless d has one. */
static const tw_failure *failure_of(tw_deferred *d)
{
    const tw_result *r = tw_deferred_result(d);
    assert_non_null(r);
    assert_non_null(r->failure);
    return r->failure;
}

static const tw_list_result *list_of(tw_deferred *dl)
{
    const tw_list_result *lr = value_of(dl);
    assert_non_null(lr);
    return lr;
}

/* Swallows any failure (the `lambda e: None` of Twisted's tests). */
static void swallow(tw_result *r, void *arg)
{
    (void)arg;
    tw_result_set_value(r, NULL, NULL);
}

/* Drops a Deferred whose failure the test has examined. */
static void drop_handled(tw_deferred *d)
{
    tw_deferred_add_errback(d, swallow, NULL);
    tw_deferred_unref(d);
}

/* What a callback saw (failure borrowed: compare it, do not keep it). */
typedef struct observed {
    int calls;
    void *value;
    void (*dtor)(void *);
    const tw_failure *failure;
} observed;

static void observe(tw_result *r, void *arg)
{
    observed *o = arg;
    o->calls++;
    o->value = r->value;
    o->dtor = r->dtor;
    o->failure = r->failure;
}

/* What a list's callback saw in its first entries (values borrowed). */
typedef struct list_seen {
    int calls;
    size_t n;
    int ok[3];
    void *values[3];
} list_seen;

static void see_list(tw_result *r, void *arg)
{
    list_seen *seen = arg;
    seen->calls++;
    assert_null(r->failure);
    const tw_list_result *lr = r->value;
    seen->n = lr->n;
    for (size_t i = 0; i < lr->n && i < 3; i++) {
        seen->ok[i] = lr->entries[i].ok;
        seen->values[i] = lr->entries[i].result.value;
    }
}

static void count_call(void *arg)
{
    (*(int *)arg)++;
}

/* A canceller that fires its Deferred with a value (Twisted's
 * fakeCallbackCanceller). */
static const char CALLBACK_RESULT[] = "Callback Result";

static void callback_canceller(tw_deferred *d, void *arg)
{
    (void)arg;
    tw_deferred_callback(d, (void *)CALLBACK_RESULT, NULL);
}

/* Makes n unfired Deferreds in d[] and hands a reference to each to ds[]. */
static void make_inputs(tw_deferred **d, tw_deferred **ds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        d[i] = tw_deferred_new(NULL, NULL);
        ds[i] = tw_deferred_ref(d[i]);
    }
}

/* The same with inputs whose canceller fires them with CALLBACK_RESULT. The
 * test keeps a reference, as whatever would fire them in a program does: the
 * list holds none, so an unfired input nobody holds is freed at once. */
static void make_cancellable_inputs(tw_deferred **d, tw_deferred **ds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        d[i] = tw_deferred_new(callback_canceller, NULL);
        ds[i] = tw_deferred_ref(d[i]);
    }
}

/* Results in order ------------------------------------------------------------ */

/* Twisted: DeferredTests.testDeferredList */
static void test_list_pairs_ok_and_result(void **state)
{
    (void)state;
    tw_deferred *d[3], *ds[3];
    make_inputs(d, ds, 3);
    tw_deferred *dl = tw_deferred_list(ds, 3, 0);

    tw_deferred_callback(d[0], "1", NULL);
    tw_deferred_add_errback(d[1], swallow, NULL);
    tw_deferred_errback(d[1], generic("2"));
    assert_false(tw_deferred_called(dl));
    tw_deferred_callback(d[2], "3", NULL);

    const tw_list_result *lr = list_of(dl);
    assert_int_equal(lr->n, 3);
    assert_true(lr->entries[0].ok);
    assert_string_equal(lr->entries[0].result.value, "1");
    assert_false(lr->entries[1].ok);
    assert_true(tw_failure_check(lr->entries[1].result.failure, GENERIC_ERR, -1));
    assert_string_equal(tw_failure_message(lr->entries[1].result.failure), "2");
    assert_null(lr->entries[1].result.value);
    assert_true(lr->entries[2].ok);
    assert_string_equal(lr->entries[2].result.value, "3");

    for (int i = 0; i < 3; i++)
        tw_deferred_unref(d[i]);
    tw_deferred_unref(dl);
}

static void test_list_keeps_input_order_whatever_the_firing_order(void **state)
{
    (void)state;
    enum { N = 5 };
    static const size_t order[N] = { 3, 0, 4, 2, 1 };
    static int values[N] = { 10, 11, 12, 13, 14 };
    tw_deferred *d[N], *ds[N];
    make_inputs(d, ds, N);
    tw_deferred *dl = tw_deferred_list(ds, N, 0);

    for (size_t k = 0; k < N; k++) {
        assert_false(tw_deferred_called(dl));
        tw_deferred_callback(d[order[k]], &values[order[k]], NULL);
    }
    const tw_list_result *lr = list_of(dl);
    assert_int_equal(lr->n, N);
    for (size_t i = 0; i < N; i++) {
        assert_true(lr->entries[i].ok);
        assert_ptr_equal(lr->entries[i].result.value, &values[i]);
        tw_deferred_unref(d[i]);
    }
    tw_deferred_unref(dl);
}

/* Twisted: DeferredTests.testEmptyDeferredList, DeferredListEmptyTests */
static void test_empty_list_fires_at_once(void **state)
{
    (void)state;
    observed o = { 0 };
    tw_deferred *dl = tw_deferred_list(NULL, 0, 0);
    tw_deferred_add_callback(dl, observe, &o);
    assert_int_equal(o.calls, 1);
    assert_int_equal(((const tw_list_result *)o.value)->n, 0);
    tw_deferred_unref(dl);
}

static void test_empty_list_never_fires_with_fire_on_one_callback(void **state)
{
    (void)state;
    observed o = { 0 };
    int released = 0;
    tw_deferred *dl = tw_deferred_list(NULL, 0, TW_DL_FIRE_ON_ONE_CALLBACK);
    tw_deferred_add_callbacks_full(dl, observe, observe, &o, NULL);
    tw_deferred_add_callbacks_full(dl, NULL, NULL, &released, count_call);
    assert_false(tw_deferred_called(dl));
    assert_int_equal(o.calls, 0);
    tw_deferred_unref(dl);
    assert_int_equal(o.calls, 0);
    assert_int_equal(released, 1);     /* freed, unfired */
}

/* Twisted: DeferredTests.testDeferredListWithAlreadyFiredDeferreds */
static void test_list_of_already_fired_inputs_fires_at_once(void **state)
{
    (void)state;
    tw_deferred *d1 = tw_deferred_new(NULL, NULL);
    tw_deferred *d2 = tw_deferred_new(NULL, NULL);
    tw_deferred_errback(d1, generic("Bang"));
    tw_deferred_callback(d2, "2", NULL);

    tw_deferred *ds[] = { tw_deferred_ref(d1), tw_deferred_ref(d2) };
    tw_deferred *dl = tw_deferred_list(ds, 2, 0);
    const tw_list_result *lr = list_of(dl);
    assert_int_equal(lr->n, 2);
    assert_false(lr->entries[0].ok);
    assert_string_equal(tw_failure_message(lr->entries[0].result.failure), "Bang");
    assert_true(lr->entries[1].ok);
    assert_string_equal(lr->entries[1].result.value, "2");

    drop_handled(d1);
    tw_deferred_unref(d2);
    tw_deferred_unref(dl);
}

static void test_list_with_fired_and_unfired_inputs(void **state)
{
    (void)state;
    tw_deferred *later = tw_deferred_new(NULL, NULL);
    tw_deferred *ds[] = { tw_succeed("now", NULL), tw_deferred_ref(later) };
    tw_deferred *dl = tw_deferred_list(ds, 2, 0);
    assert_false(tw_deferred_called(dl));
    tw_deferred_callback(later, "later", NULL);

    const tw_list_result *lr = list_of(dl);
    assert_string_equal(lr->entries[0].result.value, "now");
    assert_string_equal(lr->entries[1].result.value, "later");
    tw_deferred_unref(later);
    tw_deferred_unref(dl);
}

/* FIRE_ON_ONE_ERRBACK ----------------------------------------------------------- */

/* Twisted: DeferredTests.testDeferredListFireOnOneError */
static void test_fire_on_one_errback_fails_with_first_error(void **state)
{
    (void)state;
    tw_deferred *d[3], *ds[3];
    make_inputs(d, ds, 3);
    tw_deferred *dl = tw_deferred_list(ds, 3, TW_DL_FIRE_ON_ONE_ERRBACK);
    observed input = { 0 };
    tw_deferred_add_errback(d[1], observe, &input);
    tw_deferred_add_errback(d[1], swallow, NULL);

    tw_deferred_callback(d[0], "1", NULL);
    assert_false(tw_deferred_called(dl));

    tw_failure *f = tw_failure_ref(generic("from def2"));
    tw_deferred_errback(d[1], f);
    const tw_failure *first = failure_of(dl);
    assert_true(tw_failure_check(first, TW_ERR_FIRST_ERROR, 1));
    assert_ptr_equal(tw_failure_cause(first), f);
    assert_string_equal(tw_failure_message(tw_failure_cause(first)), "from def2");
    assert_int_equal(input.calls, 1);
    assert_ptr_equal(input.failure, f);     /* the input goes on with its failure */

    tw_failure_unref(f);
    for (int i = 0; i < 3; i++)
        tw_deferred_unref(d[i]);
    drop_handled(dl);
}

/* Twisted: DeferredTests.testDeferredListFireOnOneErrorWithAlreadyFiredDeferreds */
static void test_fire_on_one_errback_with_already_failed_input(void **state)
{
    (void)state;
    tw_deferred *d1 = tw_deferred_new(NULL, NULL);
    tw_deferred *d2 = tw_deferred_new(NULL, NULL);
    tw_deferred_errback(d1, generic("Bang"));

    tw_deferred *ds[] = { tw_deferred_ref(d1), tw_deferred_ref(d2) };
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_ERRBACK);
    const tw_failure *first = failure_of(dl);
    assert_true(tw_failure_check(first, TW_ERR_FIRST_ERROR, 0));
    assert_true(tw_failure_check(tw_failure_cause(first), GENERIC_ERR, -1));

    drop_handled(d1);
    tw_deferred_unref(d2);
    drop_handled(dl);
}

static void test_fire_on_one_errback_fires_once(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_ERRBACK | TW_DL_CONSUME_ERRORS);
    observed o = { 0 };
    tw_deferred_add_callbacks(dl, observe, observe, &o);

    tw_deferred_errback(d[1], generic("first"));
    tw_deferred_errback(d[0], generic("second"));
    assert_int_equal(o.calls, 1);
    assert_true(tw_failure_check(o.failure, TW_ERR_FIRST_ERROR, 1));
    assert_string_equal(tw_failure_message(tw_failure_cause(o.failure)), "first");

    tw_deferred_unref(d[0]);
    tw_deferred_unref(d[1]);
    drop_handled(dl);
}

/* CONSUME_ERRORS and unhandled failures --------------------------------------- */

/* Twisted: DeferredTests.testDeferredListDontConsumeErrors */
static void test_without_consume_errors_input_keeps_its_failure(void **state)
{
    (void)state;
    tw_deferred *d1 = tw_deferred_new(NULL, NULL);
    tw_deferred *ds[] = { tw_deferred_ref(d1) };
    tw_deferred *dl = tw_deferred_list(ds, 1, 0);
    observed trap = { 0 };
    tw_deferred_add_errback(d1, observe, &trap);

    tw_failure *f = tw_failure_ref(generic("Bang"));
    tw_deferred_errback(d1, f);
    assert_int_equal(trap.calls, 1);
    assert_ptr_equal(trap.failure, f);
    const tw_list_result *lr = list_of(dl);
    assert_false(lr->entries[0].ok);
    assert_ptr_equal(lr->entries[0].result.failure, f);   /* shared by reference */

    tw_failure_unref(f);
    drop_handled(d1);
    tw_deferred_unref(dl);
}

/* Twisted: DeferredTests.testDeferredListConsumeErrors */
static void test_consume_errors_input_goes_on_with_null(void **state)
{
    (void)state;
    tw_deferred *d1 = tw_deferred_new(NULL, NULL);
    tw_deferred *ds[] = { tw_deferred_ref(d1) };
    tw_deferred *dl = tw_deferred_list(ds, 1, TW_DL_CONSUME_ERRORS);
    observed after = { 0 };
    tw_deferred_add_callbacks(d1, observe, observe, &after);

    tw_deferred_errback(d1, generic("Bang"));
    assert_int_equal(after.calls, 1);
    assert_null(after.failure);
    assert_null(after.value);
    const tw_list_result *lr = list_of(dl);
    assert_false(lr->entries[0].ok);
    assert_string_equal(tw_failure_message(lr->entries[0].result.failure), "Bang");

    tw_deferred_unref(d1);
    tw_deferred_unref(dl);
    assert_int_equal(tw_test_captured.count, 0);
}

static void test_consume_errors_logs_nothing_for_handed_over_failures(void **state)
{
    (void)state;
    tw_deferred *later = tw_deferred_new(NULL, NULL);
    tw_deferred *ds[] = { tw_fail(generic("at once")), tw_deferred_ref(later) };
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_CONSUME_ERRORS);
    tw_deferred_unref(dl);
    tw_deferred_errback(later, generic("later"));
    tw_deferred_unref(later);
    assert_int_equal(tw_test_captured.count, 0);
}

static void test_without_consume_errors_unhandled_input_failure_is_logged(void **state)
{
    (void)state;
    tw_deferred *d1 = tw_deferred_new(NULL, NULL);
    tw_deferred *ds[] = { tw_deferred_ref(d1) };
    tw_deferred *dl = tw_deferred_list(ds, 1, 0);
    tw_deferred_errback(d1, generic("nobody handles me"));
    assert_false(list_of(dl)->entries[0].ok);
    tw_deferred_unref(dl);
    assert_int_equal(tw_test_captured.count, 0);

    tw_deferred_unref(d1);
    assert_int_equal(tw_test_captured.count, 1);
    assert_int_equal(tw_test_captured.last_level, TW_LOG_ERROR);
    assert_non_null(strstr(tw_test_captured.last, "Unhandled error in Deferred"));
    assert_non_null(strstr(tw_test_captured.last, "nobody handles me"));
    tw_test_capture_log();
}

static void test_handed_over_failed_input_is_logged_when_freed(void **state)
{
    (void)state;
    tw_deferred *ds[] = { tw_fail(generic("given away")) };
    tw_deferred *dl = tw_deferred_list(ds, 1, 0);
    assert_int_equal(tw_test_captured.count, 1);
    assert_non_null(strstr(tw_test_captured.last, "Unhandled error in Deferred"));
    assert_non_null(strstr(tw_test_captured.last, "given away"));
    tw_test_capture_log();

    assert_string_equal(tw_failure_message(list_of(dl)->entries[0].result.failure), "given away");
    tw_deferred_unref(dl);
}

/* Ownership of values ------------------------------------------------------------ */

static void test_entry_owns_the_moved_value(void **state)
{
    (void)state;
    tw_test_value before = { .id = 1 }, after = { .id = 2 };
    tw_deferred *fired = tw_succeed(&before, tw_test_value_dtor);
    tw_deferred *later = tw_deferred_new(NULL, NULL);
    tw_deferred *ds[] = { tw_deferred_ref(fired), tw_deferred_ref(later) };
    tw_deferred *dl = tw_deferred_list(ds, 2, 0);

    observed seen_before = { 0 }, seen_after = { 0 };
    tw_deferred_add_callback(fired, observe, &seen_before);
    tw_deferred_add_callback(later, observe, &seen_after);
    tw_deferred_callback(later, &after, tw_test_value_dtor);

    /* The inputs go on with the same pointers, unowned. */
    assert_ptr_equal(seen_before.value, &before);
    assert_null(seen_before.dtor);
    assert_ptr_equal(seen_after.value, &after);
    assert_null(seen_after.dtor);

    const tw_list_result *lr = list_of(dl);
    assert_ptr_equal(lr->entries[0].result.value, &before);
    assert_true(lr->entries[0].result.dtor == tw_test_value_dtor);
    assert_ptr_equal(lr->entries[1].result.value, &after);
    assert_true(lr->entries[1].result.dtor == tw_test_value_dtor);

    tw_deferred_unref(fired);
    tw_deferred_unref(later);
    assert_int_equal(before.freed, 0);
    assert_int_equal(after.freed, 0);
    tw_deferred_unref(dl);
    assert_int_equal(before.freed, 1);
    assert_int_equal(after.freed, 1);
}

/* As the headline program does: the list is dropped at once, the inputs keep
 * it alive until it fires, and it goes away (with its values) right after. */
static void test_inputs_keep_the_list_alive(void **state)
{
    (void)state;
    tw_test_value v[3] = { { .id = 0 }, { .id = 1 }, { .id = 2 } };
    tw_deferred *d[3], *ds[3];
    make_inputs(d, ds, 3);
    tw_deferred *dl = tw_deferred_list(ds, 3, TW_DL_CONSUME_ERRORS);
    list_seen seen = { 0 };
    tw_deferred_add_both(dl, see_list, &seen);
    tw_deferred_unref(dl);

    tw_deferred_callback(d[2], &v[2], tw_test_value_dtor);
    tw_deferred_errback(d[1], generic("one failed"));
    assert_int_equal(seen.calls, 0);
    tw_deferred_callback(d[0], &v[0], tw_test_value_dtor);

    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.n, 3);
    assert_true(seen.ok[0] && !seen.ok[1] && seen.ok[2]);
    assert_ptr_equal(seen.values[0], &v[0]);
    assert_ptr_equal(seen.values[2], &v[2]);
    assert_int_equal(v[0].freed, 1);    /* the list's result is gone already */
    assert_int_equal(v[2].freed, 1);
    for (int i = 0; i < 3; i++)
        tw_deferred_unref(d[i]);
    assert_int_equal(v[0].freed, 1);
    assert_int_equal(v[2].freed, 1);
}

static void test_unheld_unfired_input_is_freed_without_leak(void **state)
{
    (void)state;
    int input_freed = 0, list_freed = 0;
    tw_deferred *ds[] = { tw_deferred_new_full(NULL, &input_freed, count_call) };
    tw_deferred *dl = tw_deferred_list(ds, 1, 0);
    assert_int_equal(input_freed, 1);    /* nobody else held it */
    assert_false(tw_deferred_called(dl));

    tw_deferred_add_callbacks_full(dl, NULL, NULL, &list_freed, count_call);
    tw_deferred_unref(dl);
    assert_int_equal(list_freed, 1);
}

/* FIRE_ON_ONE_CALLBACK ---------------------------------------------------------- */

static void test_fire_on_one_callback_moves_value_into_first_result(void **state)
{
    (void)state;
    tw_test_value first = { .id = 1 }, second = { .id = 0 };
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_CALLBACK);
    observed input = { 0 };
    tw_deferred_add_callback(d[1], observe, &input);

    tw_deferred_callback(d[1], &first, tw_test_value_dtor);
    const tw_first_result *fr = value_of(dl);
    assert_non_null(fr);
    assert_int_equal(fr->index, 1);
    assert_ptr_equal(fr->result.value, &first);
    assert_true(fr->result.dtor == tw_test_value_dtor);
    assert_null(fr->result.failure);
    assert_ptr_equal(input.value, &first);
    assert_null(input.dtor);

    /* A later success stays with its input. */
    tw_deferred_callback(d[0], &second, tw_test_value_dtor);
    assert_ptr_equal(value_of(dl), fr);
    tw_deferred_unref(d[0]);
    assert_int_equal(second.freed, 1);

    tw_deferred_unref(d[1]);
    assert_int_equal(first.freed, 0);
    tw_deferred_unref(dl);
    assert_int_equal(first.freed, 1);
}

static void test_fire_on_one_callback_skips_earlier_failures(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_CALLBACK | TW_DL_CONSUME_ERRORS);
    tw_deferred_errback(d[0], generic("no"));
    assert_false(tw_deferred_called(dl));
    tw_deferred_callback(d[1], "yes", NULL);

    const tw_first_result *fr = value_of(dl);
    assert_int_equal(fr->index, 1);
    assert_string_equal(fr->result.value, "yes");
    tw_deferred_unref(d[0]);
    tw_deferred_unref(d[1]);
    tw_deferred_unref(dl);
}

/* Where DESIGN.md departs from Twisted (#4919): the list errbacks. */
static void test_fire_on_one_callback_fails_when_every_input_fails(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_CALLBACK | TW_DL_CONSUME_ERRORS);
    tw_failure *f0 = tw_failure_ref(generic("input 0"));

    tw_deferred_errback(d[1], generic("input 1"));
    assert_false(tw_deferred_called(dl));
    tw_deferred_errback(d[0], f0);

    const tw_failure *f = failure_of(dl);
    assert_true(tw_failure_check(f, TW_ERR_FIRST_ERROR, 0));
    assert_ptr_equal(tw_failure_cause(f), f0);

    tw_failure_unref(f0);
    tw_deferred_unref(d[0]);
    tw_deferred_unref(d[1]);
    drop_handled(dl);
}

/* Cancellation ------------------------------------------------------------------ */

/* Twisted: DeferredTests.test_cancelDeferredList */
static void test_cancel_cancels_every_input(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, 0);
    tw_deferred_cancel(dl);

    assert_true(tw_failure_check(failure_of(d[0]), TW_ERR_CANCELLED, -1));
    assert_true(tw_failure_check(failure_of(d[1]), TW_ERR_CANCELLED, -1));
    const tw_list_result *lr = list_of(dl);
    assert_false(lr->entries[0].ok);
    assert_true(tw_failure_check(lr->entries[0].result.failure, TW_ERR_CANCELLED, -1));
    assert_false(lr->entries[1].ok);
    assert_true(tw_failure_check(lr->entries[1].result.failure, TW_ERR_CANCELLED, -1));

    drop_handled(d[0]);
    drop_handled(d[1]);
    tw_deferred_unref(dl);
}

/* Twisted: DeferredTests.test_cancelDeferredListCallback */
static void test_cancel_fires_with_what_the_cancellers_did(void **state)
{
    (void)state;
    tw_deferred *one = tw_deferred_new(callback_canceller, NULL);
    tw_deferred *two = tw_deferred_new(NULL, NULL);
    tw_deferred *ds[] = { tw_deferred_ref(one), tw_deferred_ref(two) };
    tw_deferred *dl = tw_deferred_list(ds, 2, 0);
    tw_deferred_cancel(dl);

    assert_true(tw_failure_check(failure_of(two), TW_ERR_CANCELLED, -1));
    const tw_list_result *lr = list_of(dl);
    assert_true(lr->entries[0].ok);
    assert_string_equal(lr->entries[0].result.value, CALLBACK_RESULT);
    assert_false(lr->entries[1].ok);
    assert_true(tw_failure_check(lr->entries[1].result.failure, TW_ERR_CANCELLED, -1));

    tw_deferred_unref(one);
    drop_handled(two);
    tw_deferred_unref(dl);
}

/* Twisted: DeferredTests.test_cancelDeferredListWithFireOnOneCallback; every
 * input then fails, so (DESIGN.md) the list errbacks with input 0's failure. */
static void test_cancel_with_fire_on_one_callback(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_CALLBACK);
    tw_deferred_cancel(dl);

    assert_true(tw_failure_check(failure_of(d[0]), TW_ERR_CANCELLED, -1));
    assert_true(tw_failure_check(failure_of(d[1]), TW_ERR_CANCELLED, -1));
    const tw_failure *f = failure_of(dl);
    assert_true(tw_failure_check(f, TW_ERR_FIRST_ERROR, 0));
    assert_ptr_equal(tw_failure_cause(f), failure_of(d[0]));

    drop_handled(d[0]);
    drop_handled(d[1]);
    drop_handled(dl);
}

/* Twisted: DeferredTests.test_cancelDeferredListWithFireOnOneCallbackAndDeferredCallback */
static void test_cancel_with_fire_on_one_callback_and_a_canceller_that_callbacks(void **state)
{
    (void)state;
    tw_deferred *one = tw_deferred_new(callback_canceller, NULL);
    tw_deferred *two = tw_deferred_new(NULL, NULL);
    tw_deferred *ds[] = { tw_deferred_ref(one), tw_deferred_ref(two) };
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_CALLBACK);
    tw_deferred_cancel(dl);

    assert_true(tw_failure_check(failure_of(two), TW_ERR_CANCELLED, -1));
    const tw_first_result *fr = value_of(dl);
    assert_int_equal(fr->index, 0);
    assert_string_equal(fr->result.value, CALLBACK_RESULT);

    tw_deferred_unref(one);
    drop_handled(two);
    tw_deferred_unref(dl);
}

/* Twisted: DeferredTests.test_cancelDeferredListWithFireOnOneErrback */
static void test_cancel_with_fire_on_one_errback(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_ERRBACK);
    tw_deferred_cancel(dl);

    assert_true(tw_failure_check(failure_of(d[0]), TW_ERR_CANCELLED, -1));
    assert_true(tw_failure_check(failure_of(d[1]), TW_ERR_CANCELLED, -1));
    const tw_failure *f = failure_of(dl);
    assert_true(tw_failure_check(f, TW_ERR_FIRST_ERROR, 0));
    assert_true(tw_failure_check(tw_failure_cause(f), TW_ERR_CANCELLED, -1));

    drop_handled(d[0]);
    drop_handled(d[1]);
    drop_handled(dl);
}

/* Twisted: DeferredTests.test_cancelDeferredListWithFireOnOneErrbackAllDeferredsCallback */
static void test_cancel_with_fire_on_one_errback_when_every_canceller_callbacks(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_cancellable_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_ERRBACK);
    tw_deferred_cancel(dl);

    const tw_list_result *lr = list_of(dl);
    for (int i = 0; i < 2; i++) {
        assert_true(lr->entries[i].ok);
        assert_string_equal(lr->entries[i].result.value, CALLBACK_RESULT);
        tw_deferred_unref(d[i]);
    }
    tw_deferred_unref(dl);
}

/* Twisted: DeferredTests.test_cancelDeferredListWithOriginalDeferreds */
static void test_cancel_only_reaches_the_inputs_given(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[3];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, 0);
    tw_deferred *three = tw_deferred_new(NULL, NULL);
    ds[2] = three;                  /* the list copied the array */
    tw_deferred_cancel(dl);

    assert_true(tw_failure_check(failure_of(d[0]), TW_ERR_CANCELLED, -1));
    assert_true(tw_failure_check(failure_of(d[1]), TW_ERR_CANCELLED, -1));
    assert_false(tw_deferred_called(three));

    drop_handled(d[0]);
    drop_handled(d[1]);
    tw_deferred_unref(three);
    tw_deferred_unref(dl);
}

/* Twisted: DeferredTests.test_cancelFiredOnOneCallbackDeferredList */
static void test_cancel_after_fire_on_one_callback_does_nothing(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_CALLBACK);
    tw_deferred_callback(d[0], NULL, NULL);
    tw_deferred_cancel(dl);

    assert_false(tw_deferred_called(d[1]));
    assert_int_equal(((const tw_first_result *)value_of(dl))->index, 0);
    tw_deferred_unref(d[0]);
    tw_deferred_unref(d[1]);
    tw_deferred_unref(dl);
}

/* Twisted: DeferredTests.test_cancelFiredOnOneErrbackDeferredList */
static void test_cancel_after_fire_on_one_errback_does_nothing(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *dl = tw_deferred_list(ds, 2, TW_DL_FIRE_ON_ONE_ERRBACK);
    tw_deferred_errback(d[0], generic("test"));
    tw_deferred_cancel(dl);

    assert_false(tw_deferred_called(d[1]));
    assert_true(tw_failure_check(failure_of(d[0]), GENERIC_ERR, -1));
    assert_true(tw_failure_check(failure_of(dl), TW_ERR_FIRST_ERROR, 0));
    drop_handled(d[0]);
    tw_deferred_unref(d[1]);
    drop_handled(dl);
}

/* A cancelled list fires when its inputs have: here one is fired but paused,
 * so the list waits for the unpause. Fired inputs are left alone. */
static void test_cancelled_list_fires_when_its_inputs_do(void **state)
{
    (void)state;
    tw_deferred *unfired = tw_deferred_new(NULL, NULL);
    tw_deferred *paused = tw_deferred_new(NULL, NULL);
    tw_deferred_pause(paused);
    tw_deferred_callback(paused, "paused", NULL);
    tw_deferred *ds[] = { tw_deferred_ref(unfired), tw_deferred_ref(paused),
                          tw_succeed("done", NULL) };
    tw_deferred *dl = tw_deferred_list(ds, 3, 0);

    tw_deferred_cancel(dl);
    assert_true(tw_failure_check(failure_of(unfired), TW_ERR_CANCELLED, -1));
    assert_false(tw_deferred_called(dl));

    tw_deferred_unpause(paused);
    const tw_list_result *lr = list_of(dl);
    assert_false(lr->entries[0].ok);
    assert_true(tw_failure_check(lr->entries[0].result.failure, TW_ERR_CANCELLED, -1));
    assert_true(lr->entries[1].ok);
    assert_string_equal(lr->entries[1].result.value, "paused");
    assert_true(lr->entries[2].ok);
    assert_string_equal(lr->entries[2].result.value, "done");

    drop_handled(unfired);
    tw_deferred_unref(paused);
    tw_deferred_unref(dl);
}

/* Cancelling reaches an input that has fired but waits on another Deferred
 * (Twisted's chained Deferreds): the one it waits on is cancelled. */
static void wait_on_arg(tw_result *r, void *arg)
{
    tw_result_wait(r, tw_deferred_ref(arg));
}

static void test_cancel_reaches_what_an_input_waits_on(void **state)
{
    (void)state;
    tw_deferred *inner = tw_deferred_new(NULL, NULL);
    tw_deferred *input = tw_succeed(NULL, NULL);
    tw_deferred_add_callback(input, wait_on_arg, inner);
    tw_deferred *ds[] = { input };
    tw_deferred *dl = tw_deferred_list(ds, 1, TW_DL_CONSUME_ERRORS);
    assert_false(tw_deferred_called(dl));

    tw_deferred_cancel(dl);
    assert_true(tw_deferred_called(inner));
    const tw_list_result *lr = list_of(dl);
    assert_false(lr->entries[0].ok);
    assert_true(tw_failure_check(lr->entries[0].result.failure, TW_ERR_CANCELLED, -1));

    tw_deferred_unref(inner);
    tw_deferred_unref(dl);
}

/* Nesting ------------------------------------------------------------------------ */

/* An outer list owns the inner lists' results, and with them their values. */
static void test_list_of_lists(void **state)
{
    (void)state;
    tw_deferred *d[4], *ds[4];
    make_inputs(d, ds, 4);
    tw_deferred *inner[] = { tw_deferred_list(ds, 2, 0), tw_deferred_list(ds + 2, 2, 0) };
    tw_deferred *outer = tw_deferred_list(inner, 2, 0);

    for (int i = 3; i >= 0; i--) {
        tw_deferred_callback(d[i], tw_test_box(i), tw_test_box_free);
        tw_deferred_unref(d[i]);
    }
    const tw_list_result *lr = list_of(outer);
    assert_int_equal(lr->n, 2);
    for (int i = 0; i < 2; i++) {
        assert_true(lr->entries[i].ok);
        const tw_list_result *sub = lr->entries[i].result.value;
        assert_int_equal(sub->n, 2);
        assert_int_equal(*(int *)sub->entries[0].result.value, 2 * i);
        assert_int_equal(*(int *)sub->entries[1].result.value, 2 * i + 1);
    }
    assert_int_equal(tw_test_live_boxes, 4);
    tw_deferred_unref(outer);
    assert_int_equal(tw_test_live_boxes, 0);
}

/* Scale ----------------------------------------------------------------------- */

enum { MANY = 100000 };

static void test_list_of_many_already_fired_inputs(void **state)
{
    (void)state;
    tw_deferred **ds = malloc(MANY * sizeof *ds);
    for (int i = 0; i < MANY; i++)
        ds[i] = tw_succeed(tw_test_box(i), tw_test_box_free);
    tw_deferred *dl = tw_deferred_list(ds, MANY, 0);
    free(ds);

    const tw_list_result *lr = list_of(dl);
    assert_int_equal(lr->n, MANY);
    for (int i = 0; i < MANY; i++) {
        assert_true(lr->entries[i].ok);
        assert_int_equal(*(int *)lr->entries[i].result.value, i);
    }
    assert_int_equal(tw_test_live_boxes, MANY);
    tw_deferred_unref(dl);
    assert_int_equal(tw_test_live_boxes, 0);
}

static void test_list_of_many_inputs_fired_in_reverse(void **state)
{
    (void)state;
    tw_deferred **d = malloc(MANY * sizeof *d);
    tw_deferred **ds = malloc(MANY * sizeof *ds);
    make_inputs(d, ds, MANY);
    tw_deferred *dl = tw_deferred_list(ds, MANY, 0);
    free(ds);
    for (int i = MANY - 1; i >= 0; i--) {
        tw_deferred_callback(d[i], tw_test_box(i), tw_test_box_free);
        tw_deferred_unref(d[i]);
    }
    free(d);

    const tw_list_result *lr = list_of(dl);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(*(int *)lr->entries[i].result.value, i);
    tw_deferred_unref(dl);
    assert_int_equal(tw_test_live_boxes, 0);
}

/* gather_results ---------------------------------------------------------------- */

/* Twisted: DeferredTests.test_gatherResults (success) */
static void test_gather_fires_with_the_values_in_order(void **state)
{
    (void)state;
    tw_deferred *d[3], *ds[3];
    make_inputs(d, ds, 3);
    tw_deferred *g = tw_gather_results(ds, 3);
    tw_deferred_callback(d[2], "c", NULL);
    tw_deferred_callback(d[0], "a", NULL);
    assert_false(tw_deferred_called(g));
    tw_deferred_callback(d[1], "b", NULL);

    const tw_list_result *lr = list_of(g);
    assert_int_equal(lr->n, 3);
    static const char *const want[] = { "a", "b", "c" };
    for (int i = 0; i < 3; i++) {
        assert_true(lr->entries[i].ok);
        assert_string_equal(lr->entries[i].result.value, want[i]);
        tw_deferred_unref(d[i]);
    }
    tw_deferred_unref(g);
}

static void test_gather_owns_the_values(void **state)
{
    (void)state;
    tw_test_value v = { .id = 7 };
    tw_deferred *ds[] = { tw_succeed(&v, tw_test_value_dtor) };
    tw_deferred *g = tw_gather_results(ds, 1);
    assert_ptr_equal(list_of(g)->entries[0].result.value, &v);
    assert_int_equal(v.freed, 0);
    tw_deferred_unref(g);
    assert_int_equal(v.freed, 1);
}

static void test_gather_of_nothing_fires_at_once(void **state)
{
    (void)state;
    tw_deferred *g = tw_gather_results(NULL, 0);
    assert_int_equal(list_of(g)->n, 0);
    tw_deferred_unref(g);
}

/* Twisted: DeferredTests.test_gatherResults (failure) */
static void test_gather_fails_with_the_first_error(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_ref(generic("value error"));
    tw_deferred *ds[] = { tw_succeed("1", NULL), tw_fail(f) };
    tw_deferred *g = tw_gather_results(ds, 2);

    const tw_failure *first = failure_of(g);
    assert_true(tw_failure_check(first, TW_ERR_FIRST_ERROR, 1));
    assert_ptr_equal(tw_failure_cause(first), f);
    tw_failure_unref(f);
    drop_handled(g);
}

static void test_gather_reports_the_earliest_failure_in_time(void **state)
{
    (void)state;
    tw_deferred *d[3], *ds[3];
    make_inputs(d, ds, 3);
    tw_deferred *g = tw_gather_results(ds, 3);
    tw_deferred_errback(d[2], generic("first in time"));
    tw_deferred_errback(d[0], generic("second in time"));

    const tw_failure *first = failure_of(g);
    assert_true(tw_failure_check(first, TW_ERR_FIRST_ERROR, 2));
    assert_string_equal(tw_failure_message(tw_failure_cause(first)), "first in time");
    for (int i = 0; i < 3; i++)
        tw_deferred_unref(d[i]);
    drop_handled(g);
}

/* Twisted: DeferredTests.test_gatherResultsWithConsumeErrors */
static void test_gather_consumes_the_inputs_errors(void **state)
{
    (void)state;
    tw_deferred *good = tw_succeed("1", NULL);
    tw_deferred *bad = tw_fail(generic("oh noes"));
    tw_deferred *ds[] = { good, tw_deferred_ref(bad) };
    tw_deferred *g = tw_gather_results(ds, 2);

    observed unconsumed = { 0 };
    tw_deferred_add_errback(bad, observe, &unconsumed);
    observed gathered = { 0 };
    tw_deferred_add_errback(g, observe, &gathered);
    assert_int_equal(unconsumed.calls, 0);
    assert_int_equal(gathered.calls, 1);
    assert_true(tw_failure_check(gathered.failure, TW_ERR_FIRST_ERROR, 1));
    assert_string_equal(tw_failure_message(tw_failure_cause(gathered.failure)), "oh noes");

    tw_deferred_unref(bad);
    drop_handled(g);
    assert_int_equal(tw_test_captured.count, 0);
}

/* Twisted: DeferredTests.test_cancelGatherResults */
static void test_cancel_gather_cancels_every_input(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_inputs(d, ds, 2);
    tw_deferred *g = tw_gather_results(ds, 2);
    tw_deferred_cancel(g);

    /* gather consumed the inputs' CANCELLED failures... */
    assert_null(value_of(d[0]));
    assert_null(value_of(d[1]));
    /* ...and reports the first of them. */
    const tw_failure *f = failure_of(g);
    assert_true(tw_failure_check(f, TW_ERR_FIRST_ERROR, 0));
    assert_true(tw_failure_check(tw_failure_cause(f), TW_ERR_CANCELLED, -1));

    tw_deferred_unref(d[0]);
    tw_deferred_unref(d[1]);
    drop_handled(g);
}

/* Twisted: DeferredTests.test_cancelGatherResultsWithAllDeferredsCallback */
static void test_cancel_gather_when_every_canceller_callbacks(void **state)
{
    (void)state;
    tw_deferred *d[2], *ds[2];
    make_cancellable_inputs(d, ds, 2);
    tw_deferred *g = tw_gather_results(ds, 2);
    tw_deferred_cancel(g);

    const tw_list_result *lr = list_of(g);
    assert_string_equal(lr->entries[0].result.value, CALLBACK_RESULT);
    assert_string_equal(lr->entries[1].result.value, CALLBACK_RESULT);
    tw_deferred_unref(d[0]);
    tw_deferred_unref(d[1]);
    tw_deferred_unref(g);
}

#define DL_TEST(fn) cmocka_unit_test_setup_teardown(fn, capture_log, expect_quiet_log)

int main(void)
{
    const struct CMUnitTest tests[] = {
        DL_TEST(test_list_pairs_ok_and_result),
        DL_TEST(test_list_keeps_input_order_whatever_the_firing_order),
        DL_TEST(test_empty_list_fires_at_once),
        DL_TEST(test_empty_list_never_fires_with_fire_on_one_callback),
        DL_TEST(test_list_of_already_fired_inputs_fires_at_once),
        DL_TEST(test_list_with_fired_and_unfired_inputs),
        DL_TEST(test_fire_on_one_errback_fails_with_first_error),
        DL_TEST(test_fire_on_one_errback_with_already_failed_input),
        DL_TEST(test_fire_on_one_errback_fires_once),
        DL_TEST(test_without_consume_errors_input_keeps_its_failure),
        DL_TEST(test_consume_errors_input_goes_on_with_null),
        DL_TEST(test_consume_errors_logs_nothing_for_handed_over_failures),
        DL_TEST(test_without_consume_errors_unhandled_input_failure_is_logged),
        DL_TEST(test_handed_over_failed_input_is_logged_when_freed),
        DL_TEST(test_entry_owns_the_moved_value),
        DL_TEST(test_inputs_keep_the_list_alive),
        DL_TEST(test_unheld_unfired_input_is_freed_without_leak),
        DL_TEST(test_fire_on_one_callback_moves_value_into_first_result),
        DL_TEST(test_fire_on_one_callback_skips_earlier_failures),
        DL_TEST(test_fire_on_one_callback_fails_when_every_input_fails),
        DL_TEST(test_cancel_cancels_every_input),
        DL_TEST(test_cancel_fires_with_what_the_cancellers_did),
        DL_TEST(test_cancel_with_fire_on_one_callback),
        DL_TEST(test_cancel_with_fire_on_one_callback_and_a_canceller_that_callbacks),
        DL_TEST(test_cancel_with_fire_on_one_errback),
        DL_TEST(test_cancel_with_fire_on_one_errback_when_every_canceller_callbacks),
        DL_TEST(test_cancel_only_reaches_the_inputs_given),
        DL_TEST(test_cancel_after_fire_on_one_callback_does_nothing),
        DL_TEST(test_cancel_after_fire_on_one_errback_does_nothing),
        DL_TEST(test_cancelled_list_fires_when_its_inputs_do),
        DL_TEST(test_cancel_reaches_what_an_input_waits_on),
        DL_TEST(test_list_of_lists),
        DL_TEST(test_list_of_many_already_fired_inputs),
        DL_TEST(test_list_of_many_inputs_fired_in_reverse),
        DL_TEST(test_gather_fires_with_the_values_in_order),
        DL_TEST(test_gather_owns_the_values),
        DL_TEST(test_gather_of_nothing_fires_at_once),
        DL_TEST(test_gather_fails_with_the_first_error),
        DL_TEST(test_gather_reports_the_earliest_failure_in_time),
        DL_TEST(test_gather_consumes_the_inputs_errors),
        DL_TEST(test_cancel_gather_cancels_every_input),
        DL_TEST(test_cancel_gather_when_every_canceller_callbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
