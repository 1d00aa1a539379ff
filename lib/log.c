/* twine: the log sink. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void default_handler(int level, const char *msg, void *arg)
{
    (void)arg;
    fprintf(stderr, "twine: %s: %s\n", tw_log_level_name(level), msg);
}

static tw_log_handler handler = default_handler;
static void *handler_arg;
static int min_level = TW_LOG_INFO;

void tw_log_set_handler(tw_log_handler fn, void *arg)
{
    handler = fn ? fn : default_handler;
    handler_arg = fn ? arg : NULL;
}

void tw_log_set_level(int level)
{
    min_level = level;
}

int tw_log_get_level(void)
{
    return min_level;
}

const char *tw_log_level_name(int level)
{
    static const char *const names[] = { "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL" };
    if (level < TW_LOG_DEBUG || level > TW_LOG_CRITICAL)
        return "?";
    return names[level];
}

static void log_message(int level, const char *prefix, const char *fmt, va_list ap)
{
    char small[512];
    char *msg = small;
    size_t plen = prefix ? strlen(prefix) : 0;
    va_list copy;

    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    size_t need = plen + (size_t)n + 1;
    if (need > sizeof small)
        msg = tw_xmalloc(need);
    if (plen)
        memcpy(msg, prefix, plen);
    vsnprintf(msg + plen, need - plen, fmt, ap);
    handler(level, msg, handler_arg);
    if (msg != small)
        free(msg);
}

void tw_log(int level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_message(level, NULL, fmt, ap);
    va_end(ap);
}

void tw_log_failure(int level, const tw_failure *f, const char *prefix)
{
    if (level < min_level)
        return;
    size_t need = tw_failure_format(f, NULL, 0) + 1;
    char small[512];
    char *text = need > sizeof small ? tw_xmalloc(need) : small;
    tw_failure_format(f, text, need);
    tw_log(level, "%s: %s", prefix, text);
    if (text != small)
        free(text);
}
