/* twine tests: logging (include/twine/log.h). */
#include "testutil.h"

#include <unistd.h>

/* Every test starts and ends with the defaults: level INFO, stderr handler. */
static int restore_defaults(void **state)
{
    (void)state;
    tw_log_set_level(TW_LOG_INFO);
    tw_log_set_handler(NULL, NULL);
    return 0;
}

/* A handler that keeps a whole copy of the last message, however long. */
typedef struct whole_log {
    int count;
    int level;
    char *msg;
} whole_log;

static void whole_log_handler(int level, const char *msg, void *arg)
{
    whole_log *w = arg;
    w->count++;
    w->level = level;
    free(w->msg);
    w->msg = strdup(msg);
}

/* Runs the default handler with stderr sent to a temporary file, and returns
 * what it wrote (malloc'd). */
static char *default_handler_output(int level, const char *text)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);

    tw_log(level, "%s", text);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);

    assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
    long size = ftell(tmp);
    assert_true(size >= 0);
    char *out = calloc(1, (size_t)size + 1);
    rewind(tmp);
    size_t got = fread(out, 1, (size_t)size, tmp);
    assert_int_equal(got, (size_t)size);
    fclose(tmp);
    return out;
}

/* Levels ---------------------------------------------------------------------- */

static void test_levels_rise_in_order(void **state)
{
    (void)state;
    assert_true(TW_LOG_DEBUG < TW_LOG_INFO);
    assert_true(TW_LOG_INFO < TW_LOG_WARN);
    assert_true(TW_LOG_WARN < TW_LOG_ERROR);
    assert_true(TW_LOG_ERROR < TW_LOG_CRITICAL);
}

static void test_level_names(void **state)
{
    (void)state;
    assert_string_equal(tw_log_level_name(TW_LOG_DEBUG), "DEBUG");
    assert_string_equal(tw_log_level_name(TW_LOG_INFO), "INFO");
    assert_string_equal(tw_log_level_name(TW_LOG_WARN), "WARN");
    assert_string_equal(tw_log_level_name(TW_LOG_ERROR), "ERROR");
    assert_string_equal(tw_log_level_name(TW_LOG_CRITICAL), "CRITICAL");
    assert_non_null(tw_log_level_name(TW_LOG_CRITICAL + 1));
    assert_non_null(tw_log_level_name(-1));
}

/* Runs first, before any test has changed the level or the handler. */
static void test_defaults_at_start(void **state)
{
    (void)state;
    assert_int_equal(tw_log_get_level(), TW_LOG_INFO);
    char *out = default_handler_output(TW_LOG_INFO, "started");
    assert_string_equal(out, "twine: INFO: started\n");
    free(out);
}

static void test_below_info_is_dropped_by_default(void **state)
{
    (void)state;
    tw_test_capture_log();
    tw_log(TW_LOG_DEBUG, "quiet %d", 1);
    assert_int_equal(tw_test_captured.count, 0);

    tw_log(TW_LOG_INFO, "heard %d", 2);
    tw_log(TW_LOG_WARN, "heard %d", 3);
    tw_log(TW_LOG_ERROR, "heard %d", 4);
    tw_log(TW_LOG_CRITICAL, "heard %d", 5);
    assert_int_equal(tw_test_captured.count, 4);
    assert_string_equal(tw_test_captured.all, "heard 2\nheard 3\nheard 4\nheard 5\n");
    assert_int_equal(tw_test_captured.last_level, TW_LOG_CRITICAL);
}

static void test_set_level_lowers_the_threshold(void **state)
{
    (void)state;
    tw_test_capture_log();
    tw_log_set_level(TW_LOG_DEBUG);
    assert_int_equal(tw_log_get_level(), TW_LOG_DEBUG);
    tw_log(TW_LOG_DEBUG, "details");
    assert_int_equal(tw_test_captured.count, 1);
    assert_int_equal(tw_test_captured.last_level, TW_LOG_DEBUG);
    assert_string_equal(tw_test_captured.last, "details");
}

static void test_set_level_raises_the_threshold(void **state)
{
    (void)state;
    tw_test_capture_log();
    tw_log_set_level(TW_LOG_ERROR);
    assert_int_equal(tw_log_get_level(), TW_LOG_ERROR);
    tw_log(TW_LOG_INFO, "info");
    tw_log(TW_LOG_WARN, "warn");
    assert_int_equal(tw_test_captured.count, 0);
    tw_log(TW_LOG_ERROR, "error");
    tw_log(TW_LOG_CRITICAL, "critical");
    assert_string_equal(tw_test_captured.all, "error\ncritical\n");
}

/* Handlers -------------------------------------------------------------------- */

static void test_handler_gets_level_message_and_arg(void **state)
{
    (void)state;
    whole_log w = { 0 };
    tw_log_set_handler(whole_log_handler, &w);
    tw_log(TW_LOG_WARN, "%s has %d %s", "queue", 3, "items");
    assert_int_equal(w.count, 1);
    assert_int_equal(w.level, TW_LOG_WARN);
    assert_string_equal(w.msg, "queue has 3 items");
    free(w.msg);
}

static void test_replaced_handler_no_longer_called(void **state)
{
    (void)state;
    whole_log first = { 0 }, second = { 0 };
    tw_log_set_handler(whole_log_handler, &first);
    tw_log(TW_LOG_INFO, "one");
    tw_log_set_handler(whole_log_handler, &second);
    tw_log(TW_LOG_INFO, "two");
    assert_int_equal(first.count, 1);
    assert_string_equal(first.msg, "one");
    assert_int_equal(second.count, 1);
    assert_string_equal(second.msg, "two");
    free(first.msg);
    free(second.msg);
}

static void test_default_handler_writes_to_stderr(void **state)
{
    (void)state;
    char *out = default_handler_output(TW_LOG_WARN, "disk almost full");
    assert_string_equal(out, "twine: WARN: disk almost full\n");
    free(out);
}

static void test_null_handler_restores_the_default(void **state)
{
    (void)state;
    whole_log w = { 0 };
    tw_log_set_handler(whole_log_handler, &w);
    tw_log_set_handler(NULL, NULL);

    char *out = default_handler_output(TW_LOG_ERROR, "back to stderr");
    assert_string_equal(out, "twine: ERROR: back to stderr\n");
    assert_int_equal(w.count, 0);
    free(out);
}

static void test_default_handler_respects_the_level(void **state)
{
    (void)state;
    char *out = default_handler_output(TW_LOG_DEBUG, "not shown");
    assert_string_equal(out, "");
    free(out);
}

/* Long messages ------------------------------------------------------------- */

/* Logs a message of `len` bytes, "0123456789" repeated, and checks that the
 * handler received exactly that. */
static void check_message_of_length(size_t len)
{
    char *text = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        text[i] = (char)('0' + i % 10);
    text[len] = '\0';

    whole_log w = { 0 };
    tw_log_set_handler(whole_log_handler, &w);
    tw_log(TW_LOG_INFO, "%s", text);
    assert_int_equal(w.count, 1);
    assert_int_equal(strlen(w.msg), len);
    assert_string_equal(w.msg, text);
    free(w.msg);
    free(text);
}

static void test_messages_around_the_inline_buffer_size(void **state)
{
    (void)state;
    for (size_t len = 500; len <= 520; len++)
        check_message_of_length(len);
}

static void test_long_message_is_delivered_whole(void **state)
{
    (void)state;
    check_message_of_length(100000);
}

static void test_long_formatted_message_is_delivered_whole(void **state)
{
    (void)state;
    char part[400];
    memset(part, 'x', sizeof part - 1);
    part[sizeof part - 1] = '\0';

    whole_log w = { 0 };
    tw_log_set_handler(whole_log_handler, &w);
    tw_log(TW_LOG_ERROR, "[%s|%d|%s]", part, 12345, part);
    size_t want = 1 + 399 + 1 + 5 + 1 + 399 + 1;
    assert_int_equal(strlen(w.msg), want);
    assert_memory_equal(w.msg + 1 + 399, "|12345|", 7);
    assert_int_equal(w.msg[want - 1], ']');
    free(w.msg);
}

#define LOG_TEST(fn) cmocka_unit_test_setup_teardown(fn, restore_defaults, restore_defaults)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_defaults_at_start, restore_defaults),
        LOG_TEST(test_levels_rise_in_order),
        LOG_TEST(test_level_names),
        LOG_TEST(test_below_info_is_dropped_by_default),
        LOG_TEST(test_set_level_lowers_the_threshold),
        LOG_TEST(test_set_level_raises_the_threshold),
        LOG_TEST(test_handler_gets_level_message_and_arg),
        LOG_TEST(test_replaced_handler_no_longer_called),
        LOG_TEST(test_default_handler_writes_to_stderr),
        LOG_TEST(test_null_handler_restores_the_default),
        LOG_TEST(test_default_handler_respects_the_level),
        LOG_TEST(test_messages_around_the_inline_buffer_size),
        LOG_TEST(test_long_message_is_delivered_whole),
        LOG_TEST(test_long_formatted_message_is_delivered_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
