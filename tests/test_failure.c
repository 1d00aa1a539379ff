/* twine tests: failures (include/twine/failure.h). */
#include "testutil.h"

#include <errno.h>

static const char MY_ERR[] = "my";

/* Construction and accessors ------------------------------------------------- */

static void test_new_sets_domain_code_and_message(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(TW_ERR_HTTP, 404, NULL, "not found: %s (%d)", "/x", 7);
    assert_ptr_equal(tw_failure_domain(f), TW_ERR_HTTP);
    assert_int_equal(tw_failure_code(f), 404);
    assert_string_equal(tw_failure_message(f), "not found: /x (7)");
    assert_null(tw_failure_cause(f));
    tw_failure_unref(f);
}

static void test_message_is_copied_when_made(void **state)
{
    (void)state;
    char text[] = "before";
    tw_failure *f = tw_failure_new(MY_ERR, 1, NULL, "%s", text);
    strcpy(text, "after!");
    assert_string_equal(tw_failure_message(f), "before");
    tw_failure_unref(f);
}

static void test_long_message_is_kept_whole(void **state)
{
    (void)state;
    char text[5000];
    memset(text, 'm', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    tw_failure *f = tw_failure_new(MY_ERR, 1, NULL, "<%s>", text);
    const char *msg = tw_failure_message(f);
    assert_int_equal(strlen(msg), strlen(text) + 2);
    assert_int_equal(msg[0], '<');
    assert_memory_equal(msg + 1, text, strlen(text));
    assert_int_equal(msg[strlen(msg) - 1], '>');
    tw_failure_unref(f);
}

static tw_failure *make_with_newv(const char *domain, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tw_failure *f = tw_failure_newv(domain, code, NULL, fmt, ap);
    va_end(ap);
    return f;
}

static void test_newv_formats_like_new(void **state)
{
    (void)state;
    tw_failure *f = make_with_newv(TW_ERR_TIMEOUT, 3, "%d seconds on %s", 30, "host");
    assert_ptr_equal(tw_failure_domain(f), TW_ERR_TIMEOUT);
    assert_int_equal(tw_failure_code(f), 3);
    assert_string_equal(tw_failure_message(f), "30 seconds on host");
    tw_failure_unref(f);
}

static void test_cause_is_taken_and_returned(void **state)
{
    (void)state;
    tw_failure *cause = tw_failure_new(TW_ERR_SYS, ECONNREFUSED, NULL, "refused");
    tw_failure *f = tw_failure_new(TW_ERR_HTTP, 502, cause, "bad gateway");
    assert_ptr_equal(tw_failure_cause(f), cause);
    assert_null(tw_failure_cause(cause));
    tw_failure_unref(f);          /* releases the cause with it */
}

/* check and find ------------------------------------------------------------- */

static void test_check_matches_domain_and_code(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(TW_ERR_HTTP, 500, NULL, "oops");
    assert_true(tw_failure_check(f, TW_ERR_HTTP, 500));
    assert_false(tw_failure_check(f, TW_ERR_HTTP, 404));
    assert_false(tw_failure_check(f, TW_ERR_SYS, 500));
    tw_failure_unref(f);
}

static void test_check_code_minus_one_matches_any_code(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(TW_ERR_HTTP, 503, NULL, "busy");
    assert_true(tw_failure_check(f, TW_ERR_HTTP, -1));
    assert_false(tw_failure_check(f, TW_ERR_TLS, -1));
    tw_failure_unref(f);
}

static void test_check_compares_domains_by_address(void **state)
{
    (void)state;
    static const char other_sys[] = "sys";    /* same text, other address */
    tw_failure *f = tw_failure_new(TW_ERR_SYS, EPIPE, NULL, "pipe");
    assert_string_equal(tw_failure_domain(f), other_sys);
    assert_false(tw_failure_check(f, other_sys, -1));
    assert_true(tw_failure_check(f, TW_ERR_SYS, EPIPE));
    tw_failure_unref(f);
}

static void test_check_of_null_is_false(void **state)
{
    (void)state;
    assert_false(tw_failure_check(NULL, TW_ERR_SYS, -1));
}

static void test_user_domain_needs_no_registry(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(MY_ERR, 42, NULL, "mine");
    assert_ptr_equal(tw_failure_domain(f), MY_ERR);
    assert_true(tw_failure_check(f, MY_ERR, 42));
    tw_failure_unref(f);
}

static void test_find_walks_the_cause_chain(void **state)
{
    (void)state;
    tw_failure *root = tw_failure_new(TW_ERR_SYS, ECONNRESET, NULL, "reset");
    tw_failure *mid = tw_failure_new(TW_ERR_TLS, 1, root, "handshake");
    tw_failure *top = tw_failure_new(TW_ERR_HTTP, 502, mid, "upstream");

    assert_ptr_equal(tw_failure_find(top, TW_ERR_HTTP, -1), top);
    assert_ptr_equal(tw_failure_find(top, TW_ERR_TLS, 1), mid);
    assert_ptr_equal(tw_failure_find(top, TW_ERR_SYS, ECONNRESET), root);
    assert_ptr_equal(tw_failure_find(top, TW_ERR_SYS, -1), root);
    assert_null(tw_failure_find(top, TW_ERR_SYS, EPIPE));
    assert_null(tw_failure_find(top, TW_ERR_DNS, -1));
    assert_null(tw_failure_find(mid, TW_ERR_HTTP, -1));   /* only downwards */
    assert_null(tw_failure_find(NULL, TW_ERR_SYS, -1));
    tw_failure_unref(top);
}

static void test_find_returns_the_first_match(void **state)
{
    (void)state;
    tw_failure *inner = tw_failure_new(MY_ERR, 2, NULL, "inner");
    tw_failure *outer = tw_failure_new(MY_ERR, 1, inner, "outer");
    assert_ptr_equal(tw_failure_find(outer, MY_ERR, -1), outer);
    assert_ptr_equal(tw_failure_find(outer, MY_ERR, 2), inner);
    tw_failure_unref(outer);
}

/* Reference counting --------------------------------------------------------- */

static void test_ref_returns_the_failure_and_keeps_it_alive(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(MY_ERR, 1, NULL, "shared");
    assert_ptr_equal(tw_failure_ref(f), f);
    tw_failure_unref(f);
    assert_string_equal(tw_failure_message(f), "shared");   /* still one reference */
    tw_failure_unref(f);
    tw_failure_unref(NULL);                                  /* allowed */
}

/* A cause kept by its maker outlives the failure it caused, and its last
 * reference frees it once (valgrind reports a double free or a leak). */
static void test_cause_held_elsewhere_outlives_its_effect(void **state)
{
    (void)state;
    tw_failure *cause = tw_failure_new(TW_ERR_SYS, EIO, NULL, "io");
    tw_failure *f = tw_failure_new(MY_ERR, 1, tw_failure_ref(cause), "effect");
    tw_failure_unref(f);
    assert_int_equal(tw_failure_code(cause), EIO);
    assert_string_equal(tw_failure_message(cause), "io");
    tw_failure_unref(cause);
}

static void test_cause_shared_by_two_failures_is_released_once(void **state)
{
    (void)state;
    tw_failure *cause = tw_failure_new(TW_ERR_SYS, EIO, NULL, "io");
    tw_failure *a = tw_failure_new(MY_ERR, 1, cause, "a");
    tw_failure *b = tw_failure_new(MY_ERR, 2, tw_failure_ref(cause), "b");
    tw_failure_unref(a);
    assert_ptr_equal(tw_failure_cause(b), cause);
    assert_string_equal(tw_failure_message(tw_failure_cause(b)), "io");
    tw_failure_unref(b);
}

static void test_million_cause_chain_is_released_without_recursion(void **state)
{
    (void)state;
    enum { DEPTH = 1000000 };
    tw_failure *f = tw_failure_new(MY_ERR, 0, NULL, "root");
    for (int i = 1; i < DEPTH; i++)
        f = tw_failure_new(MY_ERR, i, f, "level");
    assert_int_equal(tw_failure_code(f), DEPTH - 1);

    const tw_failure *root = tw_failure_find(f, MY_ERR, 0);
    assert_non_null(root);
    assert_string_equal(tw_failure_message(root), "root");
    assert_null(tw_failure_cause(root));
    tw_failure_unref(f);
}

/* Formatting ------------------------------------------------------------------ */

static void test_format_single_failure(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(TW_ERR_HTTP, 404, NULL, "not found");
    char buf[64];
    size_t n = tw_failure_format(f, buf, sizeof buf);
    assert_string_equal(buf, "http 404: not found");
    assert_int_equal(n, strlen(buf));
    tw_failure_unref(f);
}

static void test_format_includes_every_cause(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(TW_ERR_HTTP, 502, tw_failure_new(TW_ERR_TLS, 1,
        tw_failure_new(TW_ERR_SYS, 104, NULL, "reset"), "handshake"), "upstream");
    char buf[256];
    size_t n = tw_failure_format(f, buf, sizeof buf);
    const char *want = "http 502: upstream, caused by tls 1: handshake, caused by sys 104: reset";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    tw_failure_unref(f);
}

/* Every buffer size from 0 to one past the text behaves like snprintf: the
 * text cut to size - 1 bytes, always terminated, and the full length back. */
static void test_format_truncates_like_snprintf(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(TW_ERR_HTTP, 500, tw_failure_new(TW_ERR_SYS, 32, NULL,
                                   "broken pipe"), "write failed");
    const char *want = "http 500: write failed, caused by sys 32: broken pipe";
    size_t len = strlen(want);

    for (size_t size = 0; size <= len + 1; size++) {
        char buf[128];
        memset(buf, '#', sizeof buf);
        assert_int_equal(tw_failure_format(f, buf, size), len);
        if (size == 0) {
            assert_int_equal(buf[0], '#');        /* nothing written */
            continue;
        }
        size_t kept = size - 1 < len ? size - 1 : len;
        assert_memory_equal(buf, want, kept);
        assert_int_equal(buf[kept], '\0');
        assert_int_equal(buf[kept + 1], '#');     /* nothing written past size */
    }
    tw_failure_unref(f);
}

static void test_format_with_null_buffer_measures(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(MY_ERR, 7, NULL, "seven");
    assert_int_equal(tw_failure_format(f, NULL, 0), strlen("my 7: seven"));
    tw_failure_unref(f);
}

static void test_format_negative_code_and_empty_message(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_new(MY_ERR, -3, NULL, "%s", "");
    char buf[32];
    assert_int_equal(tw_failure_format(f, buf, sizeof buf), strlen("my -3: "));
    assert_string_equal(buf, "my -3: ");
    tw_failure_unref(f);
}

/* From errno ------------------------------------------------------------------ */

static void test_from_errno_positive(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_from_errno(ECONNREFUSED, "connect");
    char want[128];
    snprintf(want, sizeof want, "connect: %s", strerror(ECONNREFUSED));
    assert_ptr_equal(tw_failure_domain(f), TW_ERR_SYS);
    assert_int_equal(tw_failure_code(f), ECONNREFUSED);
    assert_string_equal(tw_failure_message(f), want);
    assert_null(tw_failure_cause(f));
    tw_failure_unref(f);
}

static void test_from_errno_negative_is_made_positive(void **state)
{
    (void)state;
    tw_failure *f = tw_failure_from_errno(-ENOENT, "open");
    char want[128];
    snprintf(want, sizeof want, "open: %s", strerror(ENOENT));
    assert_true(tw_failure_check(f, TW_ERR_SYS, ENOENT));
    assert_string_equal(tw_failure_message(f), want);
    tw_failure_unref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_sets_domain_code_and_message),
        cmocka_unit_test(test_message_is_copied_when_made),
        cmocka_unit_test(test_long_message_is_kept_whole),
        cmocka_unit_test(test_newv_formats_like_new),
        cmocka_unit_test(test_cause_is_taken_and_returned),
        cmocka_unit_test(test_check_matches_domain_and_code),
        cmocka_unit_test(test_check_code_minus_one_matches_any_code),
        cmocka_unit_test(test_check_compares_domains_by_address),
        cmocka_unit_test(test_check_of_null_is_false),
        cmocka_unit_test(test_user_domain_needs_no_registry),
        cmocka_unit_test(test_find_walks_the_cause_chain),
        cmocka_unit_test(test_find_returns_the_first_match),
        cmocka_unit_test(test_ref_returns_the_failure_and_keeps_it_alive),
        cmocka_unit_test(test_cause_held_elsewhere_outlives_its_effect),
        cmocka_unit_test(test_cause_shared_by_two_failures_is_released_once),
        cmocka_unit_test(test_million_cause_chain_is_released_without_recursion),
        cmocka_unit_test(test_format_single_failure),
        cmocka_unit_test(test_format_includes_every_cause),
        cmocka_unit_test(test_format_truncates_like_snprintf),
        cmocka_unit_test(test_format_with_null_buffer_measures),
        cmocka_unit_test(test_format_negative_code_and_empty_message),
        cmocka_unit_test(test_from_errno_positive),
        cmocka_unit_test(test_from_errno_negative_is_made_positive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
