/* twine: logging through one replaceable sink. */
#ifndef TWINE_LOG_H
#define TWINE_LOG_H

#include <twine/common.h>

TW_BEGIN_DECLS

enum {
    TW_LOG_DEBUG,
    TW_LOG_INFO,
    TW_LOG_WARN,
    TW_LOG_ERROR,
    TW_LOG_CRITICAL
};

/* Receives each message at or above the current level. `msg` is borrowed:
 * valid during the call only. */
typedef void (*tw_log_handler)(int level, const char *msg, void *arg);

/* Replaces the sink; NULL restores the default, which writes
 * "twine: LEVEL: message" lines to stderr. */
TW_API void tw_log_set_handler(tw_log_handler fn, void *arg);

/* Messages below `level` are dropped before formatting (default TW_LOG_INFO). */
TW_API void tw_log_set_level(int level);
TW_API int  tw_log_get_level(void);

TW_API void tw_log(int level, const char *fmt, ...) TW_PRINTF(2, 3);

/* "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL". */
TW_API const char *tw_log_level_name(int level);

TW_END_DECLS

#endif
