/* twine: failures, the values that travel down errback chains. */
#ifndef TWINE_FAILURE_H
#define TWINE_FAILURE_H

#include <stdarg.h>
#include <twine/common.h>

TW_BEGIN_DECLS

/* Opaque, immutable, reference counted. */
typedef struct tw_failure tw_failure;

/* Error domains. They are compared by address, so a program adds its own with
 * `const char MY_ERR[] = "my";` and no registry. */
TW_API extern const char TW_ERR_SYS[];              /* code: the errno value */
TW_API extern const char TW_ERR_DNS[];              /* code: a c-ares status */
TW_API extern const char TW_ERR_TLS[];
TW_API extern const char TW_ERR_HTTP[];             /* code: the HTTP status */
TW_API extern const char TW_ERR_HTTP_PARSE[];
TW_API extern const char TW_ERR_TIMEOUT[];
TW_API extern const char TW_ERR_CANCELLED[];
TW_API extern const char TW_ERR_ALREADY_CALLED[];
TW_API extern const char TW_ERR_FIRST_ERROR[];      /* code: the input's index; cause: its failure */
TW_API extern const char TW_ERR_USAGE[];            /* the API was used against its contract */
TW_API extern const char TW_ERR_CONNECTION_LOST[];
TW_API extern const char TW_ERR_CONNECTION_DONE[];

/* Makes a failure with one reference for the caller. `domain` is borrowed for
 * the failure's lifetime (normally a static TW_ERR_X). `cause` is taken (the
 * caller's reference moves into the new failure) and may be NULL. The message
 * is formatted now and copied. Never returns NULL: without memory it aborts. */
TW_API tw_failure *tw_failure_new(const char *domain, int code, tw_failure *cause,
                                  const char *fmt, ...) TW_PRINTF(4, 5);
TW_API tw_failure *tw_failure_newv(const char *domain, int code, tw_failure *cause,
                                   const char *fmt, va_list ap) TW_PRINTF(4, 0);

/* A failure that carries a payload for whoever handles it (an HTTP client
 * failure carries the response received, for instance). `data` is taken:
 * dtor(data) runs when the failure goes (dtor may not be NULL). The
 * destructor doubles as the payload's type tag, see tw_failure_data. */
TW_API tw_failure *tw_failure_new_with_data(const char *domain, int code, tw_failure *cause,
                                            void *data, void (*dtor)(void *data),
                                            const char *fmt, ...) TW_PRINTF(6, 7);

/* f's payload when it was attached with this very destructor, otherwise NULL
 * (also for f NULL). Borrowed from f. */
TW_API void *tw_failure_data(const tw_failure *f, void (*dtor)(void *data));

/* A TW_ERR_SYS failure for errno value `err` (positive or negative), with
 * `what` and strerror in the message: "connect: Connection refused". */
TW_API tw_failure *tw_failure_from_errno(int err, const char *what);

/* Adds a reference and returns f. */
TW_API tw_failure *tw_failure_ref(tw_failure *f);
/* Drops a reference; NULL is allowed. */
TW_API void        tw_failure_unref(tw_failure *f);

/* Accessors. Returned pointers are borrowed from f. */
TW_API const char       *tw_failure_domain(const tw_failure *f);
TW_API int               tw_failure_code(const tw_failure *f);
TW_API const char       *tw_failure_message(const tw_failure *f);
TW_API const tw_failure *tw_failure_cause(const tw_failure *f);

/* 1 when f is of `domain` (same address) and `code`, or any code when
 * code is -1; 0 otherwise (also for f NULL). */
TW_API int tw_failure_check(const tw_failure *f, const char *domain, int code);

/* The first of f and its chain of causes that matches, or NULL. Borrowed. */
TW_API const tw_failure *tw_failure_find(const tw_failure *f, const char *domain, int code);

/* Writes "domain code: message" and ", caused by ..." for each cause into buf
 * (always NUL-terminated when size > 0). Returns the length the whole text
 * needs, like snprintf. */
TW_API size_t tw_failure_format(const tw_failure *f, char *buf, size_t size);

TW_END_DECLS

#endif
