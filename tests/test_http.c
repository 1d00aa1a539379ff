/* twine tests: header lists and responses (include/twine/http.h). */
#include "testutil.h"

#include <errno.h>

/* Header lists ------------------------------------------------------------------ */

static void test_new_list_is_empty(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    assert_int_equal(tw_http_headers_count(h), 0);
    assert_null(tw_http_headers_get(h, "Host"));
    const char *name = "x", *value = "y";
    tw_http_headers_at(h, 0, &name, &value);
    assert_null(name);
    assert_null(value);
    tw_http_headers_free(h);
    tw_http_headers_free(NULL);
}

static void test_null_list_reads_as_empty(void **state)
{
    (void)state;
    size_t pos = 0;
    assert_int_equal(tw_http_headers_count(NULL), 0);
    assert_null(tw_http_headers_get(NULL, "Host"));
    assert_null(tw_http_headers_next(NULL, "Host", &pos));
    tw_http_headers *c = tw_http_headers_copy(NULL);
    assert_int_equal(tw_http_headers_count(c), 0);
    tw_http_headers_free(c);
}

static void test_add_keeps_order_and_repeats(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    assert_int_equal(tw_http_headers_add(h, "Host", "example.com"), 0);
    assert_int_equal(tw_http_headers_add(h, "Set-Cookie", "a=1"), 0);
    assert_int_equal(tw_http_headers_add(h, "Accept", "*/*"), 0);
    assert_int_equal(tw_http_headers_add(h, "set-cookie", "b=2"), 0);
    assert_int_equal(tw_http_headers_count(h), 4);

    static const char *const names[] = { "Host", "Set-Cookie", "Accept", "set-cookie" };
    static const char *const values[] = { "example.com", "a=1", "*/*", "b=2" };
    for (size_t i = 0; i < 4; i++) {
        const char *name, *value;
        tw_http_headers_at(h, i, &name, &value);
        assert_string_equal(name, names[i]);
        assert_string_equal(value, values[i]);
    }
    const char *only_value;
    tw_http_headers_at(h, 2, NULL, &only_value);
    assert_string_equal(only_value, "*/*");
    tw_http_headers_free(h);
}

static void test_get_is_case_insensitive_and_first(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Content-Type", "text/html");
    tw_http_headers_add(h, "X-Dup", "first");
    tw_http_headers_add(h, "x-dup", "second");
    assert_string_equal(tw_http_headers_get(h, "content-type"), "text/html");
    assert_string_equal(tw_http_headers_get(h, "CONTENT-TYPE"), "text/html");
    assert_string_equal(tw_http_headers_get(h, "X-DUP"), "first");
    assert_null(tw_http_headers_get(h, "Content-Typ"));
    assert_null(tw_http_headers_get(h, "Content-Type-X"));
    assert_null(tw_http_headers_get(h, ""));
    tw_http_headers_free(h);
}

static void test_next_walks_repeats(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Via", "1.1 a");
    tw_http_headers_add(h, "Host", "h");
    tw_http_headers_add(h, "VIA", "1.1 b");
    tw_http_headers_add(h, "via", "1.1 c");
    size_t pos = 0;
    const char *v;
    const char *seen[4];
    size_t n = 0;
    while ((v = tw_http_headers_next(h, "Via", &pos)) && n < 4)
        seen[n++] = v;
    assert_int_equal(n, 3);
    assert_string_equal(seen[0], "1.1 a");
    assert_string_equal(seen[1], "1.1 b");
    assert_string_equal(seen[2], "1.1 c");
    /* At the end it stays at the end. */
    assert_null(tw_http_headers_next(h, "Via", &pos));
    pos = 0;
    assert_null(tw_http_headers_next(h, "Absent", &pos));
    tw_http_headers_free(h);
}

static void test_has_token_reads_comma_lists(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    assert_int_equal(tw_http_headers_has_token(h, "Connection", "close"), 0);
    tw_http_headers_add(h, "Connection", "keep-alive");
    tw_http_headers_add(h, "Transfer-Encoding", "gzip ,\tChunked ");
    tw_http_headers_add(h, "connection", ",, Upgrade,close");
    tw_http_headers_add(h, "Accept", "closed, enclose, clos");
    assert_int_equal(tw_http_headers_has_token(h, "Connection", "close"), 1);
    assert_int_equal(tw_http_headers_has_token(h, "CONNECTION", "upgrade"), 1);
    assert_int_equal(tw_http_headers_has_token(h, "Connection", "keep-alive"), 1);
    assert_int_equal(tw_http_headers_has_token(h, "Transfer-Encoding", "chunked"), 1);
    assert_int_equal(tw_http_headers_has_token(h, "Transfer-Encoding", "gzip"), 1);
    /* Whole elements only, and only in the fields of that name. */
    assert_int_equal(tw_http_headers_has_token(h, "Accept", "close"), 0);
    assert_int_equal(tw_http_headers_has_token(h, "Transfer-Encoding", "close"), 0);
    assert_int_equal(tw_http_headers_has_token(h, "Connection", "keep"), 0);
    assert_int_equal(tw_http_headers_has_token(NULL, "Connection", "close"), 0);
    tw_http_headers_free(h);
}

static void test_set_replaces_in_place(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "A", "1");
    tw_http_headers_add(h, "Cookie", "x");
    tw_http_headers_add(h, "B", "2");
    tw_http_headers_add(h, "cookie", "y");
    assert_int_equal(tw_http_headers_set(h, "COOKIE", "z"), 0);
    assert_int_equal(tw_http_headers_count(h), 3);
    const char *name, *value;
    tw_http_headers_at(h, 1, &name, &value);
    assert_string_equal(name, "COOKIE");
    assert_string_equal(value, "z");
    tw_http_headers_at(h, 2, &name, &value);
    assert_string_equal(name, "B");

    assert_int_equal(tw_http_headers_set(h, "New", "v"), 0);
    assert_int_equal(tw_http_headers_count(h), 4);
    tw_http_headers_at(h, 3, &name, &value);
    assert_string_equal(name, "New");
    assert_string_equal(value, "v");
    tw_http_headers_free(h);
}

static void test_remove_takes_every_spelling(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "X", "1");
    tw_http_headers_add(h, "Keep", "k");
    tw_http_headers_add(h, "x", "2");
    tw_http_headers_add(h, "X", "3");
    assert_int_equal(tw_http_headers_remove(h, "x"), 3);
    assert_int_equal(tw_http_headers_count(h), 1);
    assert_string_equal(tw_http_headers_get(h, "keep"), "k");
    assert_int_equal(tw_http_headers_remove(h, "x"), 0);
    assert_int_equal(tw_http_headers_remove(h, "Keep"), 1);
    assert_int_equal(tw_http_headers_count(h), 0);
    tw_http_headers_free(h);
}

static void test_copy_is_deep(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "A", "1");
    tw_http_headers_add(h, "a", "2");
    tw_http_headers *c = tw_http_headers_copy(h);
    tw_http_headers_set(h, "A", "changed");
    tw_http_headers_free(h);
    assert_int_equal(tw_http_headers_count(c), 2);
    size_t pos = 0;
    assert_string_equal(tw_http_headers_next(c, "A", &pos), "1");
    assert_string_equal(tw_http_headers_next(c, "A", &pos), "2");
    tw_http_headers_free(c);
}

static void test_strings_are_copied(void **state)
{
    (void)state;
    char name[] = "Name", value[] = "value";
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, name, value);
    strcpy(name, "Nope");
    strcpy(value, "VALUE");
    assert_string_equal(tw_http_headers_get(h, "Name"), "value");
    tw_http_headers_free(h);
}

static void test_invalid_fields_refused(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    assert_int_equal(tw_http_headers_add(h, "", "v"), -EINVAL);
    assert_int_equal(tw_http_headers_add(h, "Bad Name", "v"), -EINVAL);
    assert_int_equal(tw_http_headers_add(h, "Bad:Name", "v"), -EINVAL);
    assert_int_equal(tw_http_headers_add(h, "X", "a\r\nInjected: yes"), -EINVAL);
    assert_int_equal(tw_http_headers_add(h, "X", "a\nb"), -EINVAL);
    tw_http_headers_add(h, "X", "kept");
    assert_int_equal(tw_http_headers_set(h, "X", "a\rb"), -EINVAL);
    assert_int_equal(tw_http_headers_set(h, "X(", "v"), -EINVAL);
    assert_int_equal(tw_http_headers_count(h), 1);
    assert_string_equal(tw_http_headers_get(h, "X"), "kept");
    /* Every token character, and values with any other byte, are fine. */
    assert_int_equal(tw_http_headers_add(h, "!#$%&'*+-.^_`|~09azAZ", "\t \x7f\xc3\xa9 \"q\""), 0);
    assert_int_equal(tw_http_headers_add(h, "Empty", ""), 0);
    assert_int_equal(tw_http_headers_count(h), 3);
    tw_http_headers_free(h);
}

static void test_many_fields(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    char name[32], value[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "X-%d", i % 10);
        snprintf(value, sizeof value, "%d", i);
        tw_http_headers_add(h, name, value);
    }
    assert_int_equal(tw_http_headers_count(h), 1000);
    assert_string_equal(tw_http_headers_get(h, "x-7"), "7");
    assert_int_equal(tw_http_headers_remove(h, "X-3"), 100);
    const char *v;
    tw_http_headers_at(h, 899, NULL, &v);
    assert_string_equal(v, "999");
    tw_http_headers_free(h);
}

/* Responses ----------------------------------------------------------------------- */

static void test_response_new_owns_its_parts(void **state)
{
    (void)state;
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Content-Type", "text/plain");
    char reason[] = "Not Found";
    tw_http_response *r = tw_http_response_new(404, reason, h);
    strcpy(reason, "changed!!");
    assert_int_equal(r->status, 404);
    assert_string_equal(r->reason, "Not Found");
    assert_ptr_equal(r->headers, h);
    assert_string_equal(tw_http_headers_get(r->headers, "content-type"), "text/plain");
    assert_non_null(r->body);
    assert_string_equal(r->body, "");
    assert_int_equal(r->body_len, 0);
    assert_null(r->url);
    tw_http_response_free(r);
    tw_http_response_free(NULL);
}

static void test_response_defaults(void **state)
{
    (void)state;
    tw_http_response *r = tw_http_response_new(204, NULL, NULL);
    assert_string_equal(r->reason, "");
    assert_non_null(r->headers);
    assert_int_equal(tw_http_headers_count(r->headers), 0);
    tw_http_response_free(r);
}

static void test_response_body_is_copied_and_terminated(void **state)
{
    (void)state;
    tw_http_response *r = tw_http_response_new(200, "OK", NULL);
    const char data[] = { 'a', '\0', 'b' };
    tw_http_response_set_body(r, data, sizeof data);
    assert_int_equal(r->body_len, 3);
    assert_memory_equal(r->body, data, 3);
    assert_int_equal(r->body[3], '\0');
    tw_http_response_set_body(r, "replaced", 8);
    assert_string_equal(r->body, "replaced");
    assert_int_equal(r->body_len, 8);
    tw_http_response_set_body(r, NULL, 0);
    assert_string_equal(r->body, "");
    assert_int_equal(r->body_len, 0);
    tw_http_response_free(r);
}

static void test_response_frees_a_url_it_was_given(void **state)
{
    (void)state;
    tw_http_response *r = tw_http_response_new(200, "OK", NULL);
    r->url = strdup("http://example.com/final");
    tw_http_response_free(r);   /* valgrind and ASan check that nothing leaks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_list_is_empty),
        cmocka_unit_test(test_null_list_reads_as_empty),
        cmocka_unit_test(test_add_keeps_order_and_repeats),
        cmocka_unit_test(test_get_is_case_insensitive_and_first),
        cmocka_unit_test(test_next_walks_repeats),
        cmocka_unit_test(test_has_token_reads_comma_lists),
        cmocka_unit_test(test_set_replaces_in_place),
        cmocka_unit_test(test_remove_takes_every_spelling),
        cmocka_unit_test(test_copy_is_deep),
        cmocka_unit_test(test_strings_are_copied),
        cmocka_unit_test(test_invalid_fields_refused),
        cmocka_unit_test(test_many_fields),
        cmocka_unit_test(test_response_new_owns_its_parts),
        cmocka_unit_test(test_response_defaults),
        cmocka_unit_test(test_response_body_is_copied_and_terminated),
        cmocka_unit_test(test_response_frees_a_url_it_was_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
