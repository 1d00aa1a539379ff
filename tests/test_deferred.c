/* twine tests: the Deferred (include/twine/deferred.h).
 *
 * Most cases are ports of Twisted's twisted/test/test_defer.py; each names the
 * Twisted test it follows. Every test runs with the log captured, and the
 * teardown fails a test that logged anything it did not expect or left a
 * heap value alive. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

static const char TEST_ERR[] = "test";

static tw_failure *boom(int code)
{
    return tw_failure_new(TEST_ERR, code, NULL, "boom %d", code);
}

/* Fixtures ----------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    tw_deferred_set_debug(0);
    tw_test_live_boxes = 0;
    tw_test_capture_log();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int bad = tw_test_captured.count != 0 || tw_test_live_boxes != 0;
    if (tw_test_captured.count)
        print_error("unexpected log messages:\n%s", tw_test_captured.all);
    if (tw_test_live_boxes)
        print_error("%d heap values never freed\n", tw_test_live_boxes);
    tw_test_restore_log();
    tw_deferred_set_debug(0);
    return bad ? -1 : 0;
}

/* Asserts that exactly one message was logged since the last check, at ERROR
 * level, and returns it (valid until the next call); the capture restarts. */
static const char *take_logged_once(void)
{
    static char msg[sizeof tw_test_captured.last];
    assert_int_equal(tw_test_captured.count, 1);
    assert_int_equal(tw_test_captured.last_level, TW_LOG_ERROR);
    snprintf(msg, sizeof msg, "%s", tw_test_captured.last);
    tw_test_capture_log();
    return msg;
}

static void assert_nothing_logged(void)
{
    assert_int_equal(tw_test_captured.count, 0);
}

/* Callbacks ------------------------------------------------------------------ */

/* What a recording callback saw, the last time it ran. */
typedef struct seen {
    int calls;
    void *value;
    const char *domain;      /* the failure's domain; NULL on the success side */
    int code;
} seen;

/* Records the result and passes it on. */
static void record(tw_result *r, void *arg)
{
    seen *s = arg;
    s->calls++;
    s->value = r->value;
    s->domain = r->failure ? tw_failure_domain(r->failure) : NULL;
    s->code = r->failure ? tw_failure_code(r->failure) : 0;
}

/* Records the result and handles a failure (the chain goes on with NULL). */
static void record_and_handle(tw_result *r, void *arg)
{
    record(r, arg);
    if (r->failure)
        tw_result_set_value(r, NULL, NULL);
}

static void count(tw_result *r, void *arg)
{
    (void)r;
    ++*(int *)arg;
}

/* Replaces the result with arg, not owned. */
static void set_value(tw_result *r, void *arg)
{
    tw_result_set_value(r, arg, NULL);
}

/* Replaces the result with arg, a tw_test_value the chain now owns. */
static void set_counted_value(tw_result *r, void *arg)
{
    tw_result_set_value(r, arg, tw_test_value_dtor);
}

/* Replaces the result with a TEST_ERR failure whose code is arg. */
static void fail_with(tw_result *r, void *arg)
{
    tw_result_set_failure(r, boom((int)(intptr_t)arg));
}

static void leave_alone(tw_result *r, void *arg)
{
    (void)r;
    (void)arg;
}

/* An errback that handles any failure and ignores arg. */
static void handle(tw_result *r, void *arg)
{
    (void)arg;
    tw_result_set_value(r, NULL, NULL);
}

static void must_not_run(tw_result *r, void *arg)
{
    (void)r;
    (void)arg;
    fail_msg("a callback ran that must not");
}

/* Waits on the Deferred arg (Twisted: a callback that returns a Deferred). */
static void wait_on(tw_result *r, void *arg)
{
    tw_result_wait(r, tw_deferred_ref(arg));
}

/* The order in which callbacks ran, as "label=value;" entries. */
static char trace_buf[1024];

static void trace_reset(void)
{
    trace_buf[0] = '\0';
}

static void trace(const char *label, const tw_result *r)
{
    size_t used = strlen(trace_buf);
    if (r->failure)
        snprintf(trace_buf + used, sizeof trace_buf - used, "%s!%s;", label,
                 tw_failure_domain(r->failure));
    else
        snprintf(trace_buf + used, sizeof trace_buf - used, "%s=%s;", label,
                 r->value ? (const char *)r->value : "null");
}

/* Appends "arg=value;" (the value a string) and passes the result on. */
static void trace_cb(tw_result *r, void *arg)
{
    trace(arg, r);
}

/* The chain ---------------------------------------------------------------- */

/* Twisted: testCallbackWithoutArgs, testCallbackWithArgs. */
static void test_callback_receives_value_and_arg(void **state)
{
    (void)state;
    seen s = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callbacks(d, record, record_and_handle, &s);
    assert_int_equal(s.calls, 0);
    assert_int_equal(tw_deferred_callback(d, "hello", NULL), 0);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.value, "hello");
    assert_null(s.domain);
    tw_deferred_unref(d);
}

/* Twisted: testTwoCallbacks. A callback that leaves r alone passes it on. */
static void test_two_callbacks_see_the_same_result(void **state)
{
    (void)state;
    seen s1 = { 0 }, s2 = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, record, &s1);
    tw_deferred_add_callback(d, record, &s2);
    tw_deferred_callback(d, "hello", NULL);
    assert_string_equal(s1.value, "hello");
    assert_string_equal(s2.value, "hello");
    tw_deferred_unref(d);
}

static void test_callback_result_is_the_next_result(void **state)
{
    (void)state;
    seen s = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, set_value, "second");
    tw_deferred_add_callback(d, record, &s);
    tw_deferred_callback(d, "first", NULL);
    assert_string_equal(s.value, "second");
    assert_string_equal(tw_deferred_result(d)->value, "second");
    tw_deferred_unref(d);
}

static void test_errback_runs_for_a_failure_and_callbacks_are_skipped(void **state)
{
    (void)state;
    seen cb = { 0 }, eb = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callbacks(d, record, record_and_handle, &eb);
    tw_deferred_add_callback(d, record, &cb);
    /* the first pair handled the failure: the chain is back on the success side */
    tw_deferred_add_errback(d, record, &eb);

    assert_int_equal(tw_deferred_errback(d, boom(3)), 0);
    assert_int_equal(eb.calls, 1);
    assert_ptr_equal(eb.domain, TEST_ERR);
    assert_int_equal(eb.code, 3);
    assert_int_equal(cb.calls, 1);
    assert_null(cb.domain);
    assert_null(cb.value);
    tw_deferred_unref(d);
}

/* Twisted: testCallbackErrors. */
static void test_callback_that_sets_a_failure_goes_to_the_errback_side(void **state)
{
    (void)state;
    seen cb = { 0 }, eb = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, fail_with, (void *)(intptr_t)5);
    tw_deferred_add_callback(d, record, &cb);
    tw_deferred_add_errback(d, record_and_handle, &eb);
    tw_deferred_callback(d, "x", NULL);
    assert_int_equal(cb.calls, 0);
    assert_int_equal(eb.calls, 1);
    assert_ptr_equal(eb.domain, TEST_ERR);
    assert_int_equal(eb.code, 5);
    tw_deferred_unref(d);
}

static void test_errback_that_sets_a_value_goes_back_to_the_success_side(void **state)
{
    (void)state;
    seen cb = { 0 }, eb = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_errback(d, set_value, "recovered");
    tw_deferred_add_callbacks(d, record, record, &cb);
    tw_deferred_add_errback(d, record, &eb);
    tw_deferred_errback(d, boom(1));
    assert_int_equal(cb.calls, 1);
    assert_null(cb.domain);
    assert_string_equal(cb.value, "recovered");
    assert_int_equal(eb.calls, 0);
    tw_deferred_unref(d);
}

/* add_callback passes failures through, add_errback values, add_both sees both. */
static void test_one_sided_adders_pass_the_other_side_through(void **state)
{
    (void)state;
    seen both_ok = { 0 }, both_err = { 0 }, skipped = { 0 };

    tw_deferred *ok = tw_deferred_new(NULL, NULL);
    tw_deferred_add_errback(ok, record, &skipped);
    tw_deferred_add_both(ok, record, &both_ok);
    tw_deferred_callback(ok, "v", NULL);

    tw_deferred *err = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(err, record, &skipped);
    tw_deferred_add_both(err, record_and_handle, &both_err);
    tw_deferred_errback(err, boom(2));

    assert_int_equal(skipped.calls, 0);
    assert_int_equal(both_ok.calls, 1);
    assert_string_equal(both_ok.value, "v");
    assert_int_equal(both_err.calls, 1);
    assert_ptr_equal(both_err.domain, TEST_ERR);
    tw_deferred_unref(ok);
    tw_deferred_unref(err);
}

/* Twisted: test_addCallbacksNoneErrback. */
static void test_null_callback_or_errback_passes_through(void **state)
{
    (void)state;
    seen cb = { 0 }, eb = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callbacks(d, record, NULL, &cb);
    tw_deferred_errback(d, boom(4));
    tw_deferred_add_callbacks(d, NULL, record_and_handle, &eb);
    tw_deferred_add_callbacks(d, NULL, NULL, NULL);
    tw_deferred_add_callbacks(d, set_value, NULL, "after");
    tw_deferred_add_callbacks(d, NULL, record, &eb);
    assert_int_equal(cb.calls, 0);
    assert_int_equal(eb.calls, 1);
    assert_int_equal(eb.code, 4);
    assert_string_equal(tw_deferred_result(d)->value, "after");
    tw_deferred_unref(d);
}

/* Twisted: testImmediateSuccess. */
static void test_callbacks_added_after_firing_run_at_once_in_order(void **state)
{
    (void)state;
    trace_reset();
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_callback(d, "v", NULL);
    tw_deferred_add_callback(d, trace_cb, "a");
    assert_string_equal(trace_buf, "a=v;");
    tw_deferred_add_callback(d, set_value, "w");
    tw_deferred_add_callback(d, trace_cb, "b");
    assert_string_equal(trace_buf, "a=v;b=w;");
    tw_deferred_unref(d);
}

struct reentry {
    tw_deferred *d;
    tw_callback add;         /* what the first callback adds to d */
};

static void add_then_trace(tw_result *r, void *arg)
{
    struct reentry *re = arg;
    trace("start", r);
    tw_deferred_add_callback(re->d, re->add, "added");
    trace("end", r);
}

/* Twisted: test_nonReentrantCallbacks, test_reentrantRunCallbacks. */
static void test_callback_added_from_a_callback_runs_after_it_returns(void **state)
{
    (void)state;
    trace_reset();
    struct reentry re = { tw_deferred_new(NULL, NULL), trace_cb };
    tw_deferred_add_callback(re.d, add_then_trace, &re);
    tw_deferred_add_callback(re.d, trace_cb, "second");
    tw_deferred_callback(re.d, "v", NULL);
    assert_string_equal(trace_buf, "start=v;end=v;second=v;added=v;");
    tw_deferred_unref(re.d);
}

static void add_failing_callback(tw_result *r, void *arg)
{
    (void)r;
    tw_deferred_add_callback(arg, fail_with, (void *)(intptr_t)9);
}

/* Twisted: test_reentrantRunCallbacksWithFailure. */
static void test_failure_in_a_callback_added_from_a_callback_reaches_the_errback(void **state)
{
    (void)state;
    seen eb = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, add_failing_callback, d);
    tw_deferred_callback(d, NULL, NULL);
    tw_deferred_add_errback(d, record_and_handle, &eb);
    assert_int_equal(eb.calls, 1);
    assert_int_equal(eb.code, 9);
    tw_deferred_unref(d);
}

static void drop_own_reference(tw_result *r, void *arg)
{
    (void)r;
    tw_deferred_unref(arg);
}

/* The chain keeps its Deferred alive while it runs, whoever drops it. */
static void test_callback_may_drop_the_last_reference_to_its_deferred(void **state)
{
    (void)state;
    tw_test_value v = { 1, 0 }, w = { 2, 0 };
    int calls = 0;
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, drop_own_reference, d);
    tw_deferred_add_callback(d, count, &calls);
    assert_int_equal(tw_deferred_callback(d, &v, tw_test_value_dtor), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(v.freed, 1);

    /* the same from a callback added after firing, which runs at once */
    d = tw_succeed(&w, tw_test_value_dtor);
    tw_deferred_add_callback(d, drop_own_reference, d);
    assert_int_equal(w.freed, 1);
}

/* Results ------------------------------------------------------------------ */

static void test_set_value_releases_the_replaced_value_once(void **state)
{
    (void)state;
    tw_test_value a = { 1, 0 }, b = { 2, 0 };
    tw_result r = { 0 };
    tw_result_set_value(&r, &a, tw_test_value_dtor);
    tw_result_set_value(&r, &b, tw_test_value_dtor);
    assert_int_equal(a.freed, 1);
    assert_int_equal(b.freed, 0);
    assert_ptr_equal(r.value, &b);
    tw_result_set_value(&r, NULL, NULL);
    assert_int_equal(a.freed, 1);
    assert_int_equal(b.freed, 1);
    assert_null(r.value);
    assert_null(r.dtor);
}

static void test_set_value_with_the_same_pointer_keeps_it(void **state)
{
    (void)state;
    tw_test_value a = { 1, 0 };
    tw_result r = { 0 };
    tw_result_set_value(&r, &a, tw_test_value_dtor);
    tw_result_set_value(&r, &a, tw_test_value_dtor);
    assert_int_equal(a.freed, 0);
    tw_result_set_value(&r, NULL, NULL);
    assert_int_equal(a.freed, 1);
}

static void test_set_failure_releases_the_value(void **state)
{
    (void)state;
    tw_test_value a = { 1, 0 };
    tw_result r = { 0 };
    tw_result_set_value(&r, &a, tw_test_value_dtor);
    tw_result_set_failure(&r, boom(1));
    assert_int_equal(a.freed, 1);
    assert_null(r.value);
    assert_null(r.dtor);
    assert_true(tw_failure_check(r.failure, TEST_ERR, 1));

    /* a new failure replaces the old; a value replaces a failure */
    tw_result_set_failure(&r, boom(2));
    assert_true(tw_failure_check(r.failure, TEST_ERR, 2));
    tw_result_set_value(&r, "v", NULL);
    assert_null(r.failure);
    assert_string_equal(r.value, "v");
}

static void test_set_failure_with_null_gives_a_usage_failure(void **state)
{
    (void)state;
    tw_result r = { 0 };
    tw_result_set_failure(&r, NULL);
    assert_true(tw_failure_check(r.failure, TW_ERR_USAGE, -1));
    tw_result_set_value(&r, NULL, NULL);
    assert_null(r.failure);
}

static void count_free(void *arg)
{
    ++*(int *)arg;
}

static void test_wait_releases_the_value_and_a_replaced_wait_drops_the_deferred(void **state)
{
    (void)state;
    tw_test_value a = { 1, 0 };
    int freed = 0;
    tw_result r = { 0 };
    tw_result_set_value(&r, &a, tw_test_value_dtor);
    tw_result_wait(&r, tw_deferred_new_full(NULL, &freed, count_free));
    assert_int_equal(a.freed, 1);
    assert_null(r.value);
    assert_int_equal(freed, 0);
    tw_result_set_value(&r, NULL, NULL);
    assert_int_equal(freed, 1);
}

static void steal_into(tw_result *r, void *arg)
{
    *(void **)arg = tw_result_steal(r);
    assert_null(r->value);
    assert_null(r->dtor);
}

static void test_steal_leaves_the_value_to_the_caller(void **state)
{
    (void)state;
    tw_test_value a = { 1, 0 };
    void *stolen = NULL;
    seen after = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, steal_into, &stolen);
    tw_deferred_add_callback(d, record, &after);
    tw_deferred_callback(d, &a, tw_test_value_dtor);
    assert_ptr_equal(stolen, &a);
    assert_int_equal(after.calls, 1);
    assert_null(after.value);
    tw_deferred_unref(d);
    assert_int_equal(a.freed, 0);
}

/* Twisted: Failure.trap. */
static void test_trap_handles_only_a_matching_failure(void **state)
{
    (void)state;
    tw_result r = { 0 };

    tw_result_set_value(&r, "v", NULL);
    assert_int_equal(tw_result_trap(&r, TEST_ERR, -1), 0);
    assert_string_equal(r.value, "v");

    tw_result_set_failure(&r, boom(7));
    assert_int_equal(tw_result_trap(&r, TEST_ERR, 8), 0);
    assert_int_equal(tw_result_trap(&r, TW_ERR_TIMEOUT, -1), 0);
    assert_true(tw_failure_check(r.failure, TEST_ERR, 7));
    assert_int_equal(tw_result_trap(&r, TEST_ERR, 7), 1);
    assert_null(r.failure);
    assert_null(r.value);

    tw_result_set_failure(&r, boom(8));
    assert_int_equal(tw_result_trap(&r, TEST_ERR, -1), 1);
    assert_null(r.failure);
}

static void test_chain_releases_the_final_value_once_when_freed(void **state)
{
    (void)state;
    tw_test_value a = { 1, 0 }, b = { 2, 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, set_counted_value, &b);
    tw_deferred_callback(d, &a, tw_test_value_dtor);
    assert_int_equal(a.freed, 1);
    assert_int_equal(b.freed, 0);
    tw_deferred_unref(d);
    assert_int_equal(a.freed, 1);
    assert_int_equal(b.freed, 1);
}

/* Firing twice ----------------------------------------------------------------- */

/* Twisted's _call_1/_err_1 and _call_2/_err_2: the first and the second
 * firing, each on a line of its own that a debugging report names. */
static int fire_first(tw_deferred *d, bool errback)
{
    return errback ? tw_deferred_errback(d, boom(1)) : tw_deferred_callback(d, "first", NULL);
}
enum { FIRE_FIRST_LINE = __LINE__ - 2 };

static int fire_again(tw_deferred *d, bool errback, tw_test_value *v)
{
    return errback ? tw_deferred_errback(d, boom(2)) : tw_deferred_callback(d, v, tw_test_value_dtor);
}
enum { FIRE_AGAIN_LINE = __LINE__ - 2 };

/* Fires a Deferred, then again (each time with a value or a failure): the
 * second firing returns -EALREADY, releases what it was given, logs one
 * AlreadyCalled report and leaves the chain alone. With debugging the report
 * names where the Deferred was created, first fired and fired again; without,
 * no call site. Twisted: AlreadyCalledTests. */
static void check_fired_twice(bool first_errback, bool second_errback, bool debug)
{
    tw_deferred_set_debug(debug);
    seen s = { 0 };
    tw_test_value rejected = { 2, 0 };

    tw_deferred *d = tw_deferred_new(NULL, NULL); const int created = __LINE__;
    tw_deferred_add_callbacks(d, record, record_and_handle, &s);
    assert_int_equal(fire_first(d, first_errback), 0);
    assert_int_equal(fire_again(d, second_errback, &rejected), -EALREADY);

    const char *msg = take_logged_once();
    assert_non_null(strstr(msg, "already-called"));
    assert_int_equal(rejected.freed, second_errback ? 0 : 1);
    assert_int_equal(s.calls, 1);
    if (first_errback)
        assert_int_equal(s.code, 1);
    else
        assert_string_equal(s.value, "first");

    char site[512];
    snprintf(site, sizeof site, "created at %s:%d", __FILE__, created);
    assert_true((strstr(msg, site) != NULL) == debug);
    snprintf(site, sizeof site, "first fired at %s:%d", __FILE__, FIRE_FIRST_LINE);
    assert_true((strstr(msg, site) != NULL) == debug);
    snprintf(site, sizeof site, "%s:%d", __FILE__, FIRE_AGAIN_LINE);
    assert_true((strstr(msg, site) != NULL) == debug);
    if (!debug)
        assert_null(strstr(msg, __FILE__));
    tw_deferred_unref(d);
}

/* Twisted: testAlreadyCalled_CC, _CE, _EC, _EE. */
static void test_fired_twice_is_already_called(void **state)
{
    (void)state;
    check_fired_twice(false, false, false);
    check_fired_twice(false, true, false);
    check_fired_twice(true, false, false);
    check_fired_twice(true, true, false);
}

/* Twisted: testAlreadyCalledDebug_CC, _CE, _EC, _EE. */
static void test_fired_twice_with_debugging_names_the_call_sites(void **state)
{
    (void)state;
    check_fired_twice(false, false, true);
    check_fired_twice(false, true, true);
    check_fired_twice(true, false, true);
    check_fired_twice(true, true, true);
}

/* Twisted: testSwitchDebugging. A Deferred created with debugging off and
 * fired with it on records only the firing. */
static void test_switching_debugging_on_and_off(void **state)
{
    (void)state;
    int calls = 0;
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_both(d, count, &calls);
    tw_deferred_set_debug(1);
    tw_deferred_callback(d, NULL, NULL);
    assert_int_equal(calls, 1);
    assert_int_equal(tw_deferred_callback(d, NULL, NULL), -EALREADY);
    const char *msg = take_logged_once();
    assert_non_null(strstr(msg, "first fired at"));
    assert_null(strstr(msg, "created at"));
    tw_deferred_unref(d);

    tw_deferred_set_debug(0);
    d = tw_deferred_new(NULL, NULL);
    tw_deferred_callback(d, NULL, NULL);
    tw_deferred_set_debug(1);
    tw_deferred_add_both(d, count, &calls);
    assert_int_equal(calls, 2);
    assert_int_equal(tw_deferred_get_debug(), 1);
    tw_deferred_unref(d);
}

/* Pause and unpause ------------------------------------------------------------ */

/* Twisted: testPausedFailure. */
static void test_paused_deferred_holds_its_result_until_unpaused(void **state)
{
    (void)state;
    seen eb = { 0 };
    tw_deferred *d = tw_fail(boom(1));
    tw_deferred_pause(d);
    tw_deferred_add_errback(d, record_and_handle, &eb);
    assert_int_equal(eb.calls, 0);
    assert_true(tw_deferred_called(d));
    assert_true(tw_deferred_paused(d));
    assert_false(tw_deferred_has_result(d));
    assert_null(tw_deferred_result(d));
    tw_deferred_unpause(d);
    assert_int_equal(eb.calls, 1);
    assert_int_equal(eb.code, 1);
    assert_false(tw_deferred_paused(d));
    tw_deferred_unref(d);
}

static void test_pause_is_a_counter(void **state)
{
    (void)state;
    int calls = 0;
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_pause(d);
    tw_deferred_pause(d);
    tw_deferred_add_callback(d, count, &calls);
    tw_deferred_callback(d, NULL, NULL);
    tw_deferred_unpause(d);
    assert_int_equal(calls, 0);
    assert_true(tw_deferred_paused(d));
    tw_deferred_unpause(d);
    assert_int_equal(calls, 1);
    assert_false(tw_deferred_paused(d));
    tw_deferred_unref(d);
}

/* The counter does not go below zero: an extra unpause is ignored. */
static void test_extra_unpause_is_ignored(void **state)
{
    (void)state;
    int calls = 0;
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_unpause(d);
    assert_false(tw_deferred_paused(d));
    tw_deferred_pause(d);
    tw_deferred_callback(d, NULL, NULL);
    tw_deferred_add_callback(d, count, &calls);
    assert_int_equal(calls, 0);
    tw_deferred_unpause(d);
    assert_int_equal(calls, 1);
    tw_deferred_unref(d);
}

/* Twisted: testUnpauseBeforeCallback. */
static void test_unpause_before_firing_runs_nothing(void **state)
{
    (void)state;
    int calls = 0;
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_pause(d);
    tw_deferred_add_callback(d, count, &calls);
    tw_deferred_unpause(d);
    assert_int_equal(calls, 0);
    tw_deferred_callback(d, NULL, NULL);
    assert_int_equal(calls, 1);
    tw_deferred_unref(d);
}

static void test_callbacks_added_while_paused_wait_in_order(void **state)
{
    (void)state;
    trace_reset();
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, trace_cb, "before");
    tw_deferred_pause(d);
    tw_deferred_callback(d, "v", NULL);
    tw_deferred_add_callback(d, trace_cb, "during");
    assert_string_equal(trace_buf, "");
    tw_deferred_unpause(d);
    assert_string_equal(trace_buf, "before=v;during=v;");
    tw_deferred_unref(d);
}

static void pause_own(tw_result *r, void *arg)
{
    (void)r;
    tw_deferred_pause(arg);
}

static void test_callback_that_pauses_its_deferred_stops_the_chain(void **state)
{
    (void)state;
    int calls = 0;
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, pause_own, d);
    tw_deferred_add_callback(d, count, &calls);
    tw_deferred_callback(d, NULL, NULL);
    assert_int_equal(calls, 0);
    assert_false(tw_deferred_has_result(d));
    tw_deferred_unpause(d);
    assert_int_equal(calls, 1);
    assert_true(tw_deferred_has_result(d));
    tw_deferred_unref(d);
}

/* Chaining with tw_result_wait ------------------------------------------------- */

/* Twisted: testReturnDeferred. */
static void test_wait_pauses_until_the_inner_deferred_fires(void **state)
{
    (void)state;
    seen s = { 0 };
    tw_deferred *d1 = tw_deferred_new(NULL, NULL);
    tw_deferred *d2 = tw_deferred_new(NULL, NULL);
    tw_deferred_pause(d2);
    tw_deferred_add_callback(d1, wait_on, d2);
    tw_deferred_add_callback(d1, record, &s);
    tw_deferred_callback(d1, "1", NULL);
    assert_int_equal(s.calls, 0);
    assert_true(tw_deferred_called(d1));
    assert_true(tw_deferred_paused(d1));
    assert_false(tw_deferred_has_result(d1));
    tw_deferred_callback(d2, "2", NULL);
    assert_int_equal(s.calls, 0);
    tw_deferred_unpause(d2);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.value, "2");
    assert_false(tw_deferred_paused(d1));
    tw_deferred_unref(d1);
    tw_deferred_unref(d2);
}

/* Twisted: test_synchronousImplicitChain. */
static void test_wait_on_a_fired_deferred_takes_its_result_at_once(void **state)
{
    (void)state;
    tw_test_value v = { 1, 0 };
    seen first_after = { 0 }, second_after = { 0 };
    tw_deferred *first = tw_succeed(&v, tw_test_value_dtor);
    tw_deferred *second = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(second, wait_on, first);
    tw_deferred_callback(second, NULL, NULL);
    assert_true(tw_deferred_has_result(second));

    tw_deferred_add_callback(first, record, &first_after);
    assert_int_equal(first_after.calls, 1);
    assert_null(first_after.value);
    tw_deferred_add_callback(second, record, &second_after);
    assert_ptr_equal(second_after.value, &v);

    /* the value moved with its destructor: first drops nothing */
    tw_deferred_unref(first);
    assert_int_equal(v.freed, 0);
    tw_deferred_unref(second);
    assert_int_equal(v.freed, 1);
}

/* Twisted: test_asynchronousImplicitChain. The outer's callbacks run before
 * the inner's later ones, which see the inner left holding nothing. */
static void test_wait_on_an_unfired_deferred_goes_on_when_it_fires(void **state)
{
    (void)state;
    trace_reset();
    tw_deferred *first = tw_deferred_new(NULL, NULL);
    tw_deferred *second = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(second, wait_on, first);
    tw_deferred_callback(second, NULL, NULL);
    tw_deferred_add_callback(first, trace_cb, "first");
    tw_deferred_add_callback(second, trace_cb, "second");
    assert_string_equal(trace_buf, "");
    tw_deferred_callback(first, "result", NULL);
    assert_string_equal(trace_buf, "second=result;first=null;");
    tw_deferred_unref(first);
    tw_deferred_unref(second);
}

/* Twisted: test_synchronousImplicitErrorChain, test_chainedErrorCleanup. The
 * failure moves to the outer Deferred: the inner logs nothing when freed. */
static void test_wait_on_a_failed_deferred_moves_the_failure(void **state)
{
    (void)state;
    seen first_after = { 0 }, eb = { 0 };
    tw_deferred *first = tw_fail(boom(6));
    tw_deferred *second = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(second, wait_on, first);
    tw_deferred_callback(second, NULL, NULL);
    tw_deferred_add_callback(first, record, &first_after);
    assert_int_equal(first_after.calls, 1);
    assert_null(first_after.domain);
    tw_deferred_unref(first);
    assert_nothing_logged();
    tw_deferred_add_errback(second, record_and_handle, &eb);
    assert_int_equal(eb.code, 6);
    tw_deferred_unref(second);
}

/* Twisted: test_asynchronousImplicitErrorChain. */
static void test_wait_on_a_deferred_that_fails_later(void **state)
{
    (void)state;
    seen second_err = { 0 }, first_after = { 0 }, second_after = { 0 };
    tw_deferred *first = tw_deferred_new(NULL, NULL);
    tw_deferred *second = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(second, wait_on, first);
    tw_deferred_callback(second, NULL, NULL);
    tw_deferred_add_errback(second, record_and_handle, &second_err);
    tw_deferred_add_callback(first, record, &first_after);
    tw_deferred_add_callback(second, record, &second_after);
    assert_int_equal(first_after.calls + second_after.calls, 0);

    tw_deferred_errback(first, boom(8));
    assert_int_equal(second_err.calls, 1);
    assert_int_equal(second_err.code, 8);
    assert_int_equal(first_after.calls, 1);
    assert_null(first_after.domain);
    assert_int_equal(second_after.calls, 1);
    tw_deferred_unref(first);
    tw_deferred_unref(second);
}

/* Twisted: test_doubleAsynchronousImplicitChaining. */
static void test_wait_is_transitive(void **state)
{
    (void)state;
    seen s = { 0 };
    tw_deferred *a = tw_deferred_new(NULL, NULL);
    tw_deferred *b = tw_deferred_new(NULL, NULL);
    tw_deferred *c = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(b, wait_on, c);
    tw_deferred_add_callback(a, wait_on, b);
    tw_deferred_add_callback(a, record, &s);
    tw_deferred_callback(b, NULL, NULL);   /* b waits on c */
    tw_deferred_callback(a, NULL, NULL);   /* a waits on b */
    assert_int_equal(s.calls, 0);
    tw_deferred_callback(c, "result", NULL);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.value, "result");
    tw_deferred_unref(a);
    tw_deferred_unref(b);
    tw_deferred_unref(c);
}

/* Twisted: test_resultOfDeferredResultOfDeferredOfFiredDeferredCalled. */
static void test_callbacks_on_the_middle_of_a_chain_run_once_the_last_fires(void **state)
{
    (void)state;
    seen s = { 0 };
    tw_deferred *first = tw_deferred_new(NULL, NULL);
    tw_deferred *second = tw_deferred_new(NULL, NULL);
    tw_deferred *third = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(first, wait_on, second);
    tw_deferred_add_callback(second, wait_on, third);
    tw_deferred_callback(second, NULL, NULL);
    tw_deferred_callback(first, NULL, NULL);
    tw_deferred_callback(third, NULL, NULL);
    tw_deferred_add_callback(second, record, &s);
    assert_int_equal(s.calls, 1);
    assert_null(s.value);
    tw_deferred_unref(first);
    tw_deferred_unref(second);
    tw_deferred_unref(third);
}

/* The callbacks of Twisted's test_nestedAsynchronousChainedDeferreds* and
 * test_innerCallbacksPreserved. Lists are rendered as "[x]" strings. */
struct nested {
    tw_deferred *inner;
    bool transform;          /* WithExtraCallbacks: inner gets a [x] callback */
    int failures;
};

static void nested_count_failure(tw_result *r, void *arg)
{
    struct nested *n = arg;
    n->failures++;
    tw_result_set_value(r, NULL, NULL);
}

/* Replaces the result with a formatted heap string the chain owns. */
static void set_heap_string(tw_result *r, const char *fmt, ...) TW_PRINTF(2, 3);
static void set_heap_string(tw_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *out = malloc((size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)len + 1, fmt, ap);
    va_end(ap);
    tw_result_set_value(r, out, free);
}

static void nested_transform(tw_result *r, void *arg)
{
    (void)arg;
    set_heap_string(r, "[%s]", (const char *)r->value);
}

static void nested_first(tw_result *r, void *arg)
{
    struct nested *n = arg;
    trace("firstCallback", r);
    if (n->transform)
        tw_deferred_add_callback(n->inner, nested_transform, NULL);
    tw_result_wait(r, tw_deferred_ref(n->inner));
}

static void nested_second(tw_result *r, void *arg)
{
    (void)arg;
    trace("secondCallback", r);
    set_heap_string(r, "%s%s", (const char *)r->value, (const char *)r->value);  /* result * 2 */
}

static void nested_cb(tw_result *r, void *arg)
{
    trace("start-of-cb", r);
    tw_deferred *d = tw_succeed("inner", NULL);
    tw_deferred_add_callback(d, nested_first, arg);
    tw_deferred_add_callback(d, nested_second, arg);
    tw_deferred_add_errback(d, nested_count_failure, arg);
    tw_result_wait(r, d);
}

static void check_nested_chain(bool transform, const char *fired_with, const char *expected)
{
    trace_reset();
    struct nested n = { tw_deferred_new(NULL, NULL), transform, 0 };
    tw_deferred *outer = tw_succeed("outer", NULL);
    tw_deferred_add_callback(outer, nested_cb, &n);
    tw_deferred_add_callback(outer, trace_cb, "final");
    assert_string_equal(trace_buf, "start-of-cb=outer;firstCallback=inner;");

    tw_deferred_callback(n.inner, (void *)fired_with, NULL);
    tw_deferred_add_errback(n.inner, nested_count_failure, &n);
    tw_deferred_add_errback(outer, nested_count_failure, &n);
    assert_int_equal(n.failures, 0);
    assert_string_equal(trace_buf, expected);
    tw_deferred_unref(n.inner);
    tw_deferred_unref(outer);
}

/* Twisted: test_nestedAsynchronousChainedDeferreds. */
static void test_nested_asynchronous_chained_deferreds(void **state)
{
    (void)state;
    check_nested_chain(false, "orange",
                       "start-of-cb=outer;firstCallback=inner;"
                       "secondCallback=orange;final=orangeorange;");
}

/* Twisted: test_nestedAsynchronousChainedDeferredsWithExtraCallbacks. */
static void test_nested_asynchronous_chained_deferreds_with_extra_callbacks(void **state)
{
    (void)state;
    check_nested_chain(true, "withers",
                       "start-of-cb=outer;firstCallback=inner;"
                       "secondCallback=[withers];final=[withers][withers];");
}

/* Twisted: test_innerCallbacksPreserved. The outer's last callback is added
 * after the inner fired. */
static void test_inner_callbacks_preserved(void **state)
{
    (void)state;
    trace_reset();
    struct nested n = { tw_deferred_new(NULL, NULL), false, 0 };
    tw_deferred *outer = tw_succeed("outer", NULL);
    tw_deferred_add_callback(outer, nested_cb, &n);
    tw_deferred_callback(n.inner, "orange", NULL);
    tw_deferred_add_callback(outer, trace_cb, "final");
    tw_deferred_add_errback(n.inner, nested_count_failure, &n);
    tw_deferred_add_errback(outer, nested_count_failure, &n);
    assert_int_equal(n.failures, 0);
    assert_string_equal(trace_buf, "start-of-cb=outer;firstCallback=inner;"
                                   "secondCallback=orange;final=orangeorange;");
    tw_deferred_unref(n.inner);
    tw_deferred_unref(outer);
}

/* Twisted: test_callbackOrderPreserved, with the inner Deferred waited on
 * directly instead of through gatherResults. */
struct order {
    tw_deferred *a;
    int failures;
};

static void order_first(tw_result *r, void *arg)
{
    struct order *o = arg;
    trace("firstCallback", r);
    tw_result_wait(r, tw_deferred_ref(o->a));
}

static void order_cb(tw_result *r, void *arg)
{
    struct order *o = arg;
    trace("cb", r);
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, order_first, o);
    tw_deferred_add_callback(d, trace_cb, "secondCallback");
    tw_deferred_add_errback(d, count, &o->failures);
    tw_deferred_callback(d, NULL, NULL);
    tw_result_wait(r, d);
}

static void test_callback_order_preserved(void **state)
{
    (void)state;
    trace_reset();
    struct order o = { tw_deferred_new(NULL, NULL), 0 };
    tw_deferred *outer = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(outer, order_cb, &o);
    tw_deferred_add_callback(outer, trace_cb, "final");
    tw_deferred_add_errback(outer, count, &o.failures);
    tw_deferred_callback(outer, "outer", NULL);
    assert_string_equal(trace_buf, "cb=outer;firstCallback=null;");
    tw_deferred_callback(o.a, "withers", NULL);
    assert_int_equal(o.failures, 0);
    assert_string_equal(trace_buf, "cb=outer;firstCallback=null;"
                                   "secondCallback=withers;final=withers;");
    tw_deferred_unref(o.a);
    tw_deferred_unref(outer);
}

/* Twisted: test_chainedPausedDeferredWithResult. */
static void test_wait_on_a_paused_deferred_with_a_result(void **state)
{
    (void)state;
    seen s = { 0 };
    tw_deferred *paused = tw_succeed("expected", NULL);
    tw_deferred_pause(paused);
    tw_deferred *chained = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(chained, wait_on, paused);
    tw_deferred_callback(chained, NULL, NULL);
    tw_deferred_add_callback(chained, record, &s);
    assert_int_equal(s.calls, 0);
    tw_deferred_unpause(paused);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.value, "expected");
    tw_deferred_unref(paused);
    tw_deferred_unref(chained);
}

/* Twisted: test_pausedDeferredChained. The outer, paused by its user, gets
 * the result but holds it; the inner's own chain goes on. */
static void test_paused_waiting_deferred_does_not_stop_the_inner_chain(void **state)
{
    (void)state;
    seen inner_after = { 0 }, outer_after = { 0 };
    tw_deferred *first = tw_deferred_new(NULL, NULL);
    tw_deferred *second = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(first, wait_on, second);
    tw_deferred_callback(first, NULL, NULL);
    tw_deferred_pause(first);
    tw_deferred_callback(second, "v", NULL);
    tw_deferred_add_callback(second, record, &inner_after);
    assert_int_equal(inner_after.calls, 1);
    assert_null(inner_after.value);

    tw_deferred_add_callback(first, record, &outer_after);
    assert_int_equal(outer_after.calls, 0);
    tw_deferred_unpause(first);
    assert_int_equal(outer_after.calls, 1);
    assert_string_equal(outer_after.value, "v");
    tw_deferred_unref(first);
    tw_deferred_unref(second);
}

/* An unpause without a matching pause must not take away the pause of a
 * wait: the outer Deferred still waits for the inner one. */
static void test_extra_unpause_does_not_end_a_wait(void **state)
{
    (void)state;
    seen s = { 0 };
    tw_deferred *outer = tw_deferred_new(NULL, NULL);
    tw_deferred *inner = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(outer, wait_on, inner);
    tw_deferred_add_callback(outer, record, &s);
    tw_deferred_callback(outer, NULL, NULL);
    tw_deferred_unpause(outer);
    assert_int_equal(s.calls, 0);
    assert_true(tw_deferred_paused(outer));
    tw_deferred_callback(inner, "inner", NULL);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.value, "inner");
    assert_false(tw_deferred_paused(outer));
    tw_deferred_unref(outer);
    tw_deferred_unref(inner);
}

/* Twisted: test_circularChainException (Twisted warns; twine fails the chain). */
static void test_wait_on_itself_fails_with_a_usage_failure(void **state)
{
    (void)state;
    seen eb = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, wait_on, d);
    tw_deferred_add_errback(d, record_and_handle, &eb);
    tw_deferred_callback(d, "foo", NULL);
    assert_int_equal(eb.calls, 1);
    assert_ptr_equal(eb.domain, TW_ERR_USAGE);
    assert_true(tw_deferred_has_result(d));
    tw_deferred_unref(d);
}

static void wait_on_null(tw_result *r, void *arg)
{
    (void)arg;
    tw_result_wait(r, NULL);
}

/* tw_result_wait(r, f()) with an f that returned NULL fails the chain
 * instead of crashing, as the other setters do with NULL. */
static void test_wait_on_null_fails_with_a_usage_failure(void **state)
{
    (void)state;
    seen eb = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, wait_on_null, NULL);
    tw_deferred_add_errback(d, record_and_handle, &eb);
    tw_deferred_callback(d, "foo", NULL);
    assert_int_equal(eb.calls, 1);
    assert_ptr_equal(eb.domain, TW_ERR_USAGE);
    tw_deferred_unref(d);
}

/* B's first callback fires A, whose callback waits on B while B's callback is
 * still running: A must not take the result out from under that callback,
 * but wait for B's chain and go on with its final result. */
struct running_wait {
    tw_deferred *a, *b;
    void *seen_after_fire;        /* B's value, read after firing A */
};

static void fire_a_then_read(tw_result *r, void *arg)
{
    struct running_wait *rw = arg;
    tw_deferred_callback(rw->a, NULL, NULL);
    rw->seen_after_fire = r->value;
}

static void set_final(tw_result *r, void *arg)
{
    (void)arg;
    tw_result_set_value(r, "final", NULL);
}

static void test_wait_on_a_running_deferred_sees_its_final_result(void **state)
{
    (void)state;
    struct running_wait rw = { tw_deferred_new(NULL, NULL), tw_deferred_new(NULL, NULL), NULL };
    seen a_cb = { 0 };
    tw_deferred_add_callback(rw.a, wait_on, rw.b);
    tw_deferred_add_callback(rw.a, record, &a_cb);
    tw_deferred_add_callback(rw.b, fire_a_then_read, &rw);
    tw_deferred_add_callback(rw.b, set_final, NULL);
    tw_deferred_callback(rw.b, "first", NULL);
    assert_string_equal(rw.seen_after_fire, "first");
    assert_int_equal(a_cb.calls, 1);
    assert_string_equal(a_cb.value, "final");
    tw_deferred_unref(rw.a);
    tw_deferred_unref(rw.b);
}

/* A waits on B, then B's callback waits on A: B fails with TW_ERR_USAGE, and
 * A, which waits on B, gets that failure. */
static void test_wait_on_a_deferred_waiting_on_it_fails_with_a_usage_failure(void **state)
{
    (void)state;
    seen a_err = { 0 };
    tw_deferred *a = tw_deferred_new(NULL, NULL);
    tw_deferred *b = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(a, wait_on, b);
    tw_deferred_add_errback(a, record_and_handle, &a_err);
    tw_deferred_add_callback(b, wait_on, a);
    tw_deferred_callback(a, NULL, NULL);
    tw_deferred_callback(b, NULL, NULL);
    assert_int_equal(a_err.calls, 1);
    assert_ptr_equal(a_err.domain, TW_ERR_USAGE);
    assert_true(tw_deferred_has_result(a));
    assert_true(tw_deferred_has_result(b));
    tw_deferred_unref(a);
    tw_deferred_unref(b);
}

/* Cancellation ------------------------------------------------------------------ */

/* Twisted: DeferredCancellerTests. The canceller's argument records its calls;
 * `fire` says what it does to the Deferred. */
typedef struct canceller_log {
    int calls;
    tw_deferred *d;          /* what the canceller was given */
    void *arg;
    enum { CANCELLER_LEAVES, CANCELLER_CALLBACKS, CANCELLER_ERRBACKS, CANCELLER_CANCELS } fire;
    int freed;               /* runs of canceller_log_free */
} canceller_log;

static void canceller(tw_deferred *d, void *arg)
{
    canceller_log *c = arg;
    c->calls++;
    c->d = d;
    c->arg = arg;
    if (c->fire == CANCELLER_CALLBACKS)
        tw_deferred_callback(d, "hello!", NULL);
    else if (c->fire == CANCELLER_ERRBACKS)
        tw_deferred_errback(d, boom(11));
    else if (c->fire == CANCELLER_CANCELS)
        tw_deferred_cancel(d);
}

/* Twisted: test_noCanceller, test_noCancellerMultipleCancel. */
static void test_cancel_without_canceller_errbacks_cancelled(void **state)
{
    (void)state;
    seen cb = { 0 }, eb = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callbacks(d, record, record_and_handle, &eb);
    tw_deferred_add_callback(d, record, &cb);
    tw_deferred_cancel(d);
    assert_int_equal(eb.calls, 1);
    assert_ptr_equal(eb.domain, TW_ERR_CANCELLED);
    tw_deferred_cancel(d);
    assert_int_equal(eb.calls, 1);
    assert_int_equal(cb.calls, 1);
    tw_deferred_unref(d);
}

/* Twisted: test_raisesAfterCancelAndCallback,
 * test_noCancellerMultipleCancelsAfterCancelAndCallback. */
static void test_cancel_without_canceller_swallows_one_late_callback(void **state)
{
    (void)state;
    seen s = { 0 };
    tw_test_value late = { 1, 0 }, later = { 2, 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callbacks(d, record, record_and_handle, &s);
    tw_deferred_cancel(d);

    assert_int_equal(tw_deferred_callback(d, &late, tw_test_value_dtor), 0);
    assert_nothing_logged();
    assert_int_equal(late.freed, 1);
    tw_deferred_cancel(d);
    assert_int_equal(s.calls, 1);
    assert_ptr_equal(s.domain, TW_ERR_CANCELLED);

    assert_int_equal(tw_deferred_callback(d, &later, tw_test_value_dtor), -EALREADY);
    assert_non_null(strstr(take_logged_once(), "already-called"));
    assert_int_equal(later.freed, 1);
    assert_int_equal(tw_deferred_errback(d, boom(1)), -EALREADY);
    assert_non_null(strstr(take_logged_once(), "already-called"));
    tw_deferred_unref(d);
}

/* Twisted: test_raisesAfterCancelAndErrback,
 * test_noCancellerMultipleCancelsAfterCancelAndErrback. */
static void test_cancel_without_canceller_swallows_one_late_errback(void **state)
{
    (void)state;
    seen s = { 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callbacks(d, record, record_and_handle, &s);
    tw_deferred_cancel(d);
    assert_int_equal(tw_deferred_errback(d, boom(1)), 0);
    assert_nothing_logged();
    assert_ptr_equal(s.domain, TW_ERR_CANCELLED);
    tw_deferred_cancel(d);
    assert_int_equal(s.calls, 1);

    assert_int_equal(tw_deferred_callback(d, NULL, NULL), -EALREADY);
    assert_non_null(strstr(take_logged_once(), "already-called"));
    assert_int_equal(tw_deferred_errback(d, boom(2)), -EALREADY);
    assert_non_null(strstr(take_logged_once(), "already-called"));
    tw_deferred_unref(d);
}

/* Twisted: test_simpleCanceller, test_cancellerArg, test_cancellerMultipleCancel.
 * With a canceller, a late firing is not swallowed. */
static void test_canceller_runs_once_with_the_deferred_and_its_arg(void **state)
{
    (void)state;
    seen s = { 0 };
    canceller_log c = { .fire = CANCELLER_LEAVES };
    tw_deferred *d = tw_deferred_new(canceller, &c);
    tw_deferred_add_callbacks(d, record, record_and_handle, &s);
    tw_deferred_cancel(d);
    assert_int_equal(c.calls, 1);
    assert_ptr_equal(c.d, d);
    assert_ptr_equal(c.arg, &c);
    assert_int_equal(s.calls, 1);
    assert_ptr_equal(s.domain, TW_ERR_CANCELLED);
    tw_deferred_cancel(d);
    assert_int_equal(c.calls, 1);
    assert_int_equal(s.calls, 1);

    assert_int_equal(tw_deferred_callback(d, NULL, NULL), -EALREADY);
    assert_non_null(strstr(take_logged_once(), "already-called"));
    assert_int_equal(tw_deferred_errback(d, boom(1)), -EALREADY);
    assert_non_null(strstr(take_logged_once(), "already-called"));
    tw_deferred_unref(d);
}

/* Twisted: test_cancelAfterCallback, test_cancelAfterErrback. */
static void test_cancel_after_firing_does_nothing(void **state)
{
    (void)state;
    seen ok = { 0 }, err = { 0 };
    canceller_log c = { .fire = CANCELLER_ERRBACKS };

    tw_deferred *d = tw_deferred_new(canceller, &c);
    tw_deferred_add_callbacks(d, record, record_and_handle, &ok);
    tw_deferred_callback(d, "biff!", NULL);
    tw_deferred_cancel(d);
    assert_int_equal(ok.calls, 1);
    assert_null(ok.domain);
    assert_string_equal(ok.value, "biff!");
    tw_deferred_unref(d);

    d = tw_deferred_new(canceller, &c);
    tw_deferred_add_callbacks(d, record, record_and_handle, &err);
    tw_deferred_errback(d, boom(3));
    tw_deferred_cancel(d);
    assert_int_equal(err.calls, 1);
    assert_ptr_equal(err.domain, TEST_ERR);
    assert_int_equal(err.code, 3);
    tw_deferred_unref(d);

    assert_int_equal(c.calls, 0);
}

/* Twisted: test_cancellerThatErrbacks, test_cancellerThatCallbacks. */
static void test_canceller_that_fires_the_deferred_wins(void **state)
{
    (void)state;
    seen err = { 0 }, ok = { 0 };
    canceller_log errs = { .fire = CANCELLER_ERRBACKS }, calls = { .fire = CANCELLER_CALLBACKS };

    tw_deferred *d = tw_deferred_new(canceller, &errs);
    tw_deferred_add_callbacks(d, record, record_and_handle, &err);
    tw_deferred_cancel(d);
    assert_int_equal(errs.calls, 1);
    assert_int_equal(err.calls, 1);
    assert_ptr_equal(err.domain, TEST_ERR);
    assert_int_equal(err.code, 11);
    tw_deferred_unref(d);

    d = tw_deferred_new(canceller, &calls);
    tw_deferred_add_callbacks(d, record, record_and_handle, &ok);
    tw_deferred_cancel(d);
    assert_int_equal(calls.calls, 1);
    assert_int_equal(ok.calls, 1);
    assert_null(ok.domain);
    assert_string_equal(ok.value, "hello!");
    tw_deferred_unref(d);
}

/* A canceller that cancels its Deferred again does not run again: the inner
 * cancel errbacks, and the outer one finds the Deferred fired. */
static void test_canceller_that_cancels_again_runs_once(void **state)
{
    (void)state;
    seen s = { 0 };
    canceller_log c = { .fire = CANCELLER_CANCELS };
    tw_deferred *d = tw_deferred_new(canceller, &c);
    tw_deferred_add_callbacks(d, record, record_and_handle, &s);
    tw_deferred_cancel(d);
    assert_int_equal(c.calls, 1);
    assert_int_equal(s.calls, 1);
    assert_ptr_equal(s.domain, TW_ERR_CANCELLED);
    tw_deferred_unref(d);
}

/* Twisted: test_cancelNestedDeferred. */
static void test_cancel_of_a_waiting_deferred_cancels_the_inner_one(void **state)
{
    (void)state;
    seen s = { 0 };
    canceller_log inner_c = { .fire = CANCELLER_LEAVES }, outer_c = { .fire = CANCELLER_LEAVES };
    tw_deferred *b = tw_deferred_new(canceller, &inner_c);
    tw_deferred *a = tw_deferred_new(canceller, &outer_c);
    tw_deferred_callback(a, NULL, NULL);
    tw_deferred_add_callback(a, wait_on, b);
    tw_deferred_cancel(a);
    tw_deferred_add_callbacks(a, record, record_and_handle, &s);
    assert_int_equal(inner_c.calls, 1);
    assert_ptr_equal(inner_c.d, b);
    assert_int_equal(outer_c.calls, 0);
    assert_int_equal(s.calls, 1);
    assert_ptr_equal(s.domain, TW_ERR_CANCELLED);
    tw_deferred_unref(a);
    tw_deferred_unref(b);
}

static void canceller_log_free(void *arg)
{
    ((canceller_log *)arg)->freed++;
}

static void test_new_full_frees_the_canceller_arg_once_at_free(void **state)
{
    (void)state;
    seen eb = { 0 };
    canceller_log unfired = { .fire = CANCELLER_LEAVES }, cancelled = { .fire = CANCELLER_LEAVES };
    tw_deferred *d = tw_deferred_new_full(canceller, &unfired, canceller_log_free);
    tw_deferred_unref(d);
    assert_int_equal(unfired.calls, 0);
    assert_int_equal(unfired.freed, 1);

    d = tw_deferred_new_full(canceller, &cancelled, canceller_log_free);
    tw_deferred_add_errback(d, record_and_handle, &eb);
    tw_deferred_cancel(d);
    tw_deferred_cancel(d);
    assert_int_equal(cancelled.calls, 1);
    assert_ptr_equal(cancelled.arg, &cancelled);
    assert_ptr_equal(eb.domain, TW_ERR_CANCELLED);
    assert_int_equal(cancelled.freed, 0);
    tw_deferred_unref(d);
    assert_int_equal(cancelled.freed, 1);
}

/* Unhandled failures ------------------------------------------------------------- */

/* Twisted: LogTests.test_errorLog. */
static void test_unhandled_failure_is_logged_when_the_last_reference_goes(void **state)
{
    (void)state;
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, fail_with, (void *)(intptr_t)7);
    tw_deferred_callback(d, NULL, NULL);
    tw_deferred_ref(d);
    tw_deferred_unref(d);
    assert_nothing_logged();
    tw_deferred_unref(d);
    const char *msg = take_logged_once();
    assert_non_null(strstr(msg, "Unhandled error in Deferred"));
    assert_non_null(strstr(msg, "test 7: boom 7"));
    assert_null(strstr(msg, __FILE__));
}

static void test_handled_failure_is_not_logged(void **state)
{
    (void)state;
    seen eb = { 0 };
    tw_deferred *d = tw_fail(boom(1));
    tw_deferred_add_errback(d, record_and_handle, &eb);
    tw_deferred_unref(d);
    assert_int_equal(eb.calls, 1);
    assert_nothing_logged();
}

/* The failure moved out of the inner Deferred: only the outer reports it. */
static void test_failure_moved_by_wait_is_reported_by_the_outer_only(void **state)
{
    (void)state;
    tw_deferred *inner = tw_deferred_new(NULL, NULL);
    tw_deferred *outer = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(outer, wait_on, inner);
    tw_deferred_callback(outer, NULL, NULL);
    tw_deferred_errback(inner, boom(12));
    tw_deferred_unref(inner);
    assert_nothing_logged();
    tw_deferred_unref(outer);
    assert_non_null(strstr(take_logged_once(), "test 12: boom 12"));
}

/* Twisted: test_errorClearedByChaining. */
static void test_failure_cleared_by_a_wait_in_an_errback_is_not_logged(void **state)
{
    (void)state;
    int freed = 0;
    tw_deferred *bad = tw_fail(boom(1));
    tw_deferred *good = tw_deferred_new_full(NULL, &freed, count_free);
    tw_deferred_add_errback(bad, wait_on, good);
    tw_deferred_unref(good);
    tw_deferred_unref(bad);
    assert_int_equal(freed, 1);
    assert_nothing_logged();
}

/* Twisted: test_errorLogDebugInfo. */
static void test_unhandled_failure_with_debugging_names_the_call_sites(void **state)
{
    (void)state;
    tw_deferred_set_debug(1);
    tw_deferred *d = tw_deferred_new(NULL, NULL); const int created = __LINE__;
    tw_deferred_errback(d, boom(2)); const int fired = __LINE__;
    tw_deferred_unref(d);

    const char *msg = take_logged_once();
    char site[512];
    assert_non_null(strstr(msg, "Unhandled error in Deferred"));
    assert_non_null(strstr(msg, "test 2: boom 2"));
    snprintf(site, sizeof site, "created at %s:%d", __FILE__, created);
    assert_non_null(strstr(msg, site));
    snprintf(site, sizeof site, "first fired at %s:%d", __FILE__, fired);
    assert_non_null(strstr(msg, site));
}

/* arg ownership ----------------------------------------------------------------- */

static void check_freed(tw_result *r, void *arg)
{
    (void)r;
    assert_int_equal(((tw_test_value *)arg)->freed, 1);
}

static void test_arg_dtor_runs_once_after_its_pair_ran(void **state)
{
    (void)state;
    tw_test_value on_cb = { 1, 0 }, on_eb = { 2, 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callbacks_full(d, leave_alone, must_not_run, &on_cb, tw_test_value_dtor);
    tw_deferred_add_callback(d, check_freed, &on_cb);
    tw_deferred_add_callback(d, fail_with, (void *)(intptr_t)1);
    tw_deferred_add_callbacks_full(d, must_not_run, handle, &on_eb, tw_test_value_dtor);
    tw_deferred_add_callback(d, check_freed, &on_eb);
    assert_int_equal(on_cb.freed + on_eb.freed, 0);
    tw_deferred_callback(d, NULL, NULL);
    assert_int_equal(on_cb.freed, 1);
    assert_int_equal(on_eb.freed, 1);
    tw_deferred_unref(d);
    assert_int_equal(on_cb.freed, 1);
    assert_int_equal(on_eb.freed, 1);
}

/* A pair whose side for the result is NULL is passed, and its arg freed. */
static void test_arg_dtor_runs_once_when_the_chain_passes_its_pair(void **state)
{
    (void)state;
    tw_test_value arg = { 1, 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callbacks_full(d, NULL, must_not_run, &arg, tw_test_value_dtor);
    tw_deferred_callback(d, "v", NULL);
    assert_int_equal(arg.freed, 1);
    assert_string_equal(tw_deferred_result(d)->value, "v");
    tw_deferred_unref(d);
    assert_int_equal(arg.freed, 1);
}

static void test_arg_dtor_runs_once_when_freed_before_its_pair(void **state)
{
    (void)state;
    tw_test_value unfired = { 1, 0 }, paused = { 2, 0 };
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callbacks_full(d, must_not_run, must_not_run, &unfired, tw_test_value_dtor);
    tw_deferred_unref(d);
    assert_int_equal(unfired.freed, 1);

    d = tw_deferred_new(NULL, NULL);
    tw_deferred_pause(d);
    tw_deferred_callback(d, NULL, NULL);
    tw_deferred_add_callbacks_full(d, must_not_run, must_not_run, &paused, tw_test_value_dtor);
    assert_int_equal(paused.freed, 0);
    tw_deferred_unref(d);
    assert_int_equal(paused.freed, 1);
}

/* Conveniences and state --------------------------------------------------------- */

/* Twisted: testImmediateSuccess, testImmediateFailure. */
static void test_succeed_and_fail_are_already_fired(void **state)
{
    (void)state;
    seen ok = { 0 }, err = { 0 };
    int *box = tw_test_box(5);
    tw_deferred *s = tw_succeed(box, tw_test_box_free);
    tw_deferred *f = tw_fail(boom(1));
    assert_true(tw_deferred_has_result(s));
    assert_true(tw_deferred_has_result(f));
    assert_ptr_equal(tw_deferred_result(s)->value, box);
    assert_true(tw_failure_check(tw_deferred_result(f)->failure, TEST_ERR, 1));
    tw_deferred_add_callback(s, record, &ok);
    tw_deferred_add_errback(f, record_and_handle, &err);
    assert_ptr_equal(ok.value, box);
    assert_int_equal(err.code, 1);
    tw_deferred_unref(s);
    tw_deferred_unref(f);
    assert_int_equal(tw_test_live_boxes, 0);
}

static void test_state_accessors(void **state)
{
    (void)state;
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    assert_false(tw_deferred_called(d));
    assert_false(tw_deferred_has_result(d));
    assert_false(tw_deferred_paused(d));
    assert_null(tw_deferred_result(d));

    tw_deferred *inner = tw_deferred_new(NULL, NULL);
    tw_deferred_add_callback(d, wait_on, inner);
    tw_deferred_callback(d, NULL, NULL);
    assert_true(tw_deferred_called(d));
    assert_true(tw_deferred_paused(d));
    assert_false(tw_deferred_has_result(d));
    assert_null(tw_deferred_result(d));

    tw_deferred_callback(inner, "v", NULL);
    assert_true(tw_deferred_has_result(d));
    assert_false(tw_deferred_paused(d));
    const tw_result *r = tw_deferred_result(d);
    assert_non_null(r);
    assert_string_equal(r->value, "v");
    assert_null(r->failure);
    assert_true(tw_deferred_has_result(inner));
    assert_null(tw_deferred_result(inner)->value);
    tw_deferred_unref(d);
    tw_deferred_unref(inner);
}

static void give_box(tw_result *r, void *arg)
{
    tw_result_set_value(r, tw_test_box(*(int *)arg), tw_test_box_free);
}

/* Twisted: test_maybeDeferredSync, test_maybeDeferredSyncWithArgs,
 * test_maybeDeferredSyncFailure. */
static void test_maybe_deferred_of_a_value_or_a_failure(void **state)
{
    (void)state;
    int ten = 10;
    seen ok = { 0 }, err = { 0 }, none = { 0 };

    tw_deferred *d = tw_maybe_deferred(give_box, &ten);
    assert_true(tw_deferred_has_result(d));
    tw_deferred_add_callbacks(d, record, record_and_handle, &ok);
    assert_int_equal(*(int *)ok.value, 10);
    assert_null(ok.domain);
    tw_deferred_unref(d);
    assert_int_equal(tw_test_live_boxes, 0);

    d = tw_maybe_deferred(fail_with, (void *)(intptr_t)4);
    tw_deferred_add_callbacks(d, record, record_and_handle, &err);
    assert_int_equal(err.code, 4);
    tw_deferred_unref(d);

    d = tw_maybe_deferred(leave_alone, NULL);
    tw_deferred_add_callback(d, record, &none);
    assert_int_equal(none.calls, 1);
    assert_null(none.value);
    tw_deferred_unref(d);
}

/* Twisted: test_maybeDeferredAsync, test_maybeDeferredAsyncError. */
static void test_maybe_deferred_of_a_wait(void **state)
{
    (void)state;
    seen ok = { 0 }, err = { 0 };
    tw_deferred *d1 = tw_deferred_new(NULL, NULL);
    tw_deferred *d2 = tw_maybe_deferred(wait_on, d1);
    tw_deferred_callback(d1, "Success", NULL);
    tw_deferred_add_callback(d2, record, &ok);
    assert_string_equal(ok.value, "Success");
    tw_deferred_unref(d1);
    tw_deferred_unref(d2);

    d1 = tw_deferred_new(NULL, NULL);
    d2 = tw_maybe_deferred(wait_on, d1);
    tw_deferred_errback(d1, boom(5));
    tw_deferred_add_errback(d2, record_and_handle, &err);
    assert_int_equal(err.code, 5);
    tw_deferred_unref(d1);
    tw_deferred_unref(d2);
}

/* No recursion ------------------------------------------------------------------ */

/* A chain this long overflows any stack that grows with its length. */
enum { DEEP = 1000000 };

static const char deep_result[] = "deep";

/* The state of one deep run; the thread only records, the test asserts. */
struct deep {
    size_t n;                /* the chain has Deferreds 0..n */
    size_t freed;            /* Deferreds freed (their arg_dtor ran) */
    size_t cancelled;        /* canceller calls */
    int before_last;         /* calls of the outermost pair before the last fired */
    seen outer;              /* what the outermost Deferred's last pair saw */
    size_t misordered;       /* callbacks that ran out of order */
    size_t ran;
};

static void deep_freed(void *arg)
{
    ((struct deep *)arg)->freed++;
}

static void deep_cancel(tw_deferred *d, void *arg)
{
    (void)d;
    ((struct deep *)arg)->cancelled++;
}

/* Runs fn(arg) on a thread with a 256 KiB stack, where a recursion as deep as
 * the chain crashes. cmocka cannot fail a test from another thread, so fn
 * records what it sees and the test asserts afterwards. */
static void run_on_small_stack(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t thread;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
    assert_int_equal(pthread_create(&thread, &attr, fn, arg), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    pthread_attr_destroy(&attr);
}

/* Deferreds 0..n where the callback of each but the last waits on the next,
 * and the outermost records its result. */
static tw_deferred **deep_chain(struct deep *t)
{
    tw_deferred **ds = malloc((t->n + 1) * sizeof *ds);
    for (size_t i = 0; i <= t->n; i++)
        ds[i] = tw_deferred_new_full(deep_cancel, t, deep_freed);
    for (size_t i = 0; i < t->n; i++)
        tw_deferred_add_callback(ds[i], wait_on, ds[i + 1]);
    tw_deferred_add_callbacks(ds[0], record, record_and_handle, &t->outer);
    return ds;
}

/* Fires 0, 1, ..., n-1, each then waiting on the next, still unfired one, and
 * drops each: the one it waits on keeps it. Leaves n unfired, held by ds. */
static void deep_fire_outermost_first(struct deep *t, tw_deferred **ds, bool keep_outermost)
{
    for (size_t i = 0; i < t->n; i++) {
        tw_deferred_callback(ds[i], NULL, NULL);
        if (i > 0 || !keep_outermost)
            tw_deferred_unref(ds[i]);
    }
}

static void *deep_outermost_first(void *arg)
{
    struct deep *t = arg;
    tw_deferred **ds = deep_chain(t);
    deep_fire_outermost_first(t, ds, false);
    t->before_last = t->outer.calls;
    tw_deferred_callback(ds[t->n], (void *)deep_result, NULL);
    tw_deferred_unref(ds[t->n]);
    free(ds);
    return NULL;
}

static void check_deep_outer_saw(const struct deep *t, const char *domain)
{
    assert_int_equal(t->before_last, 0);
    assert_int_equal(t->outer.calls, 1);
    assert_ptr_equal(t->outer.domain, domain);
    if (!domain)
        assert_ptr_equal(t->outer.value, deep_result);
    assert_int_equal(t->freed, t->n + 1);
}

static void test_deep_chain_fired_outermost_first(void **state)
{
    (void)state;
    struct deep t = { .n = DEEP };
    run_on_small_stack(deep_outermost_first, &t);
    check_deep_outer_saw(&t, NULL);
    assert_int_equal(t.cancelled, 0);
}

/* Twisted: test_boundedStackDepth. The outermost fires first, then the
 * others from the innermost out, each waiting on one that already waits;
 * the last one then fails, and the failure travels the whole chain. */
static void *deep_innermost_first(void *arg)
{
    struct deep *t = arg;
    tw_deferred **ds = deep_chain(t);
    tw_deferred_callback(ds[0], NULL, NULL);
    tw_deferred_unref(ds[0]);
    for (size_t i = t->n - 1; i > 0; i--) {
        tw_deferred_callback(ds[i], NULL, NULL);
        tw_deferred_unref(ds[i]);
    }
    t->before_last = t->outer.calls;
    tw_deferred_errback(ds[t->n], boom(13));
    tw_deferred_unref(ds[t->n]);
    free(ds);
    return NULL;
}

static void test_deep_chain_fired_innermost_first(void **state)
{
    (void)state;
    struct deep t = { .n = DEEP };
    run_on_small_stack(deep_innermost_first, &t);
    check_deep_outer_saw(&t, TEST_ERR);
    assert_int_equal(t.outer.code, 13);
}

/* Cancelling the outermost cancels the innermost, through every wait. */
static void *deep_cancel_outermost(void *arg)
{
    struct deep *t = arg;
    tw_deferred **ds = deep_chain(t);
    deep_fire_outermost_first(t, ds, true);
    t->before_last = t->outer.calls;
    tw_deferred_cancel(ds[0]);
    tw_deferred_unref(ds[0]);
    tw_deferred_unref(ds[t->n]);
    free(ds);
    return NULL;
}

static void test_deep_chain_cancelled_from_the_outermost(void **state)
{
    (void)state;
    struct deep t = { .n = DEEP };
    run_on_small_stack(deep_cancel_outermost, &t);
    check_deep_outer_saw(&t, TW_ERR_CANCELLED);
    assert_int_equal(t.cancelled, 1);
}

/* The innermost is dropped unfired: the whole waiting chain goes with it. */
static void *deep_drop_unfired(void *arg)
{
    struct deep *t = arg;
    tw_deferred **ds = deep_chain(t);
    deep_fire_outermost_first(t, ds, false);
    tw_deferred_unref(ds[t->n]);
    free(ds);
    return NULL;
}

static void test_deep_chain_dropped_unfired_is_freed(void **state)
{
    (void)state;
    struct deep t = { .n = DEEP };
    run_on_small_stack(deep_drop_unfired, &t);
    assert_int_equal(t.outer.calls, 0);
    assert_int_equal(t.freed, t.n + 1);
}

/* The i-th callback added gets i as its arg: it counts itself misordered
 * unless i callbacks ran before it. */
static void deep_step(tw_result *r, void *arg)
{
    struct deep *t = r->value;
    if (t->ran++ != (size_t)(uintptr_t)arg)
        t->misordered++;
}

static void *deep_many_callbacks(void *arg)
{
    struct deep *t = arg;
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    for (size_t i = 0; i < t->n; i++)
        tw_deferred_add_callback(d, deep_step, (void *)(uintptr_t)i);
    tw_deferred_callback(d, t, NULL);
    for (size_t i = t->n; i < 2 * t->n; i++)
        tw_deferred_add_callback(d, deep_step, (void *)(uintptr_t)i);
    tw_deferred_unref(d);
    return NULL;
}

/* A million callbacks added before firing and a million after. */
static void test_one_deferred_with_a_million_callbacks(void **state)
{
    (void)state;
    struct deep t = { .n = DEEP };
    run_on_small_stack(deep_many_callbacks, &t);
    assert_int_equal(t.ran, 2 * t.n);
    assert_int_equal(t.misordered, 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_callback_receives_value_and_arg),
        T(test_two_callbacks_see_the_same_result),
        T(test_callback_result_is_the_next_result),
        T(test_errback_runs_for_a_failure_and_callbacks_are_skipped),
        T(test_callback_that_sets_a_failure_goes_to_the_errback_side),
        T(test_errback_that_sets_a_value_goes_back_to_the_success_side),
        T(test_one_sided_adders_pass_the_other_side_through),
        T(test_null_callback_or_errback_passes_through),
        T(test_callbacks_added_after_firing_run_at_once_in_order),
        T(test_callback_added_from_a_callback_runs_after_it_returns),
        T(test_failure_in_a_callback_added_from_a_callback_reaches_the_errback),
        T(test_callback_may_drop_the_last_reference_to_its_deferred),

        T(test_set_value_releases_the_replaced_value_once),
        T(test_set_value_with_the_same_pointer_keeps_it),
        T(test_set_failure_releases_the_value),
        T(test_set_failure_with_null_gives_a_usage_failure),
        T(test_wait_releases_the_value_and_a_replaced_wait_drops_the_deferred),
        T(test_steal_leaves_the_value_to_the_caller),
        T(test_trap_handles_only_a_matching_failure),
        T(test_chain_releases_the_final_value_once_when_freed),

        T(test_fired_twice_is_already_called),
        T(test_fired_twice_with_debugging_names_the_call_sites),
        T(test_switching_debugging_on_and_off),

        T(test_paused_deferred_holds_its_result_until_unpaused),
        T(test_pause_is_a_counter),
        T(test_extra_unpause_is_ignored),
        T(test_unpause_before_firing_runs_nothing),
        T(test_callbacks_added_while_paused_wait_in_order),
        T(test_callback_that_pauses_its_deferred_stops_the_chain),

        T(test_wait_pauses_until_the_inner_deferred_fires),
        T(test_wait_on_a_fired_deferred_takes_its_result_at_once),
        T(test_wait_on_an_unfired_deferred_goes_on_when_it_fires),
        T(test_wait_on_a_failed_deferred_moves_the_failure),
        T(test_wait_on_a_deferred_that_fails_later),
        T(test_wait_is_transitive),
        T(test_callbacks_on_the_middle_of_a_chain_run_once_the_last_fires),
        T(test_nested_asynchronous_chained_deferreds),
        T(test_nested_asynchronous_chained_deferreds_with_extra_callbacks),
        T(test_inner_callbacks_preserved),
        T(test_callback_order_preserved),
        T(test_wait_on_a_paused_deferred_with_a_result),
        T(test_paused_waiting_deferred_does_not_stop_the_inner_chain),
        T(test_extra_unpause_does_not_end_a_wait),
        T(test_wait_on_itself_fails_with_a_usage_failure),
        T(test_wait_on_a_deferred_waiting_on_it_fails_with_a_usage_failure),
        T(test_wait_on_null_fails_with_a_usage_failure),
        T(test_wait_on_a_running_deferred_sees_its_final_result),

        T(test_cancel_without_canceller_errbacks_cancelled),
        T(test_cancel_without_canceller_swallows_one_late_callback),
        T(test_cancel_without_canceller_swallows_one_late_errback),
        T(test_canceller_runs_once_with_the_deferred_and_its_arg),
        T(test_cancel_after_firing_does_nothing),
        T(test_canceller_that_fires_the_deferred_wins),
        T(test_canceller_that_cancels_again_runs_once),
        T(test_cancel_of_a_waiting_deferred_cancels_the_inner_one),
        T(test_new_full_frees_the_canceller_arg_once_at_free),

        T(test_unhandled_failure_is_logged_when_the_last_reference_goes),
        T(test_handled_failure_is_not_logged),
        T(test_failure_moved_by_wait_is_reported_by_the_outer_only),
        T(test_failure_cleared_by_a_wait_in_an_errback_is_not_logged),
        T(test_unhandled_failure_with_debugging_names_the_call_sites),

        T(test_arg_dtor_runs_once_after_its_pair_ran),
        T(test_arg_dtor_runs_once_when_the_chain_passes_its_pair),
        T(test_arg_dtor_runs_once_when_freed_before_its_pair),

        T(test_succeed_and_fail_are_already_fired),
        T(test_state_accessors),
        T(test_maybe_deferred_of_a_value_or_a_failure),
        T(test_maybe_deferred_of_a_wait),

        T(test_deep_chain_fired_outermost_first),
        T(test_deep_chain_fired_innermost_first),
        T(test_deep_chain_cancelled_from_the_outermost),
        T(test_deep_chain_dropped_unfired_is_freed),
        T(test_one_deferred_with_a_million_callbacks),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
