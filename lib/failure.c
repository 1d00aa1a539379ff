/* twine: failures: domain, code, message, an optional cause and an optional payload. */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char TW_ERR_SYS[] = "sys";
const char TW_ERR_DNS[] = "dns";
const char TW_ERR_TLS[] = "tls";
const char TW_ERR_HTTP[] = "http";
const char TW_ERR_HTTP_PARSE[] = "http-parse";
const char TW_ERR_TIMEOUT[] = "timeout";
const char TW_ERR_CANCELLED[] = "cancelled";
const char TW_ERR_ALREADY_CALLED[] = "already-called";
const char TW_ERR_FIRST_ERROR[] = "first-error";
const char TW_ERR_USAGE[] = "usage";
const char TW_ERR_CONNECTION_LOST[] = "connection-lost";
const char TW_ERR_CONNECTION_DONE[] = "connection-done";

struct tw_failure {
    unsigned refs;
    int code;
    const char *domain;
    tw_failure *cause;
    void *data;                 /* the payload, freed by data_dtor */
    void (*data_dtor)(void *data);
    char message[];
};

tw_failure *tw_failure_newv(const char *domain, int code, tw_failure *cause,
                            const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = fmt ? vsnprintf(NULL, 0, fmt, copy) : 0;
    va_end(copy);
    if (n < 0)
        n = 0;

    tw_failure *f = tw_xmalloc(sizeof *f + (size_t)n + 1);
    f->refs = 1;
    f->code = code;
    f->domain = domain ? domain : TW_ERR_USAGE;
    f->cause = cause;
    f->data = NULL;
    f->data_dtor = NULL;
    f->message[0] = '\0';
    if (fmt)
        vsnprintf(f->message, (size_t)n + 1, fmt, ap);
    return f;
}

tw_failure *tw_failure_new(const char *domain, int code, tw_failure *cause,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tw_failure *f = tw_failure_newv(domain, code, cause, fmt, ap);
    va_end(ap);
    return f;
}

tw_failure *tw_failure_new_with_data(const char *domain, int code, tw_failure *cause,
                                     void *data, void (*dtor)(void *), const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tw_failure *f = tw_failure_newv(domain, code, cause, fmt, ap);
    va_end(ap);
    f->data = data;
    f->data_dtor = dtor;
    return f;
}

void *tw_failure_data(const tw_failure *f, void (*dtor)(void *))
{
    return f && f->data_dtor == dtor ? f->data : NULL;
}

tw_failure *tw_failure_from_errno(int err, const char *what)
{
    if (err < 0 && err != INT_MIN)
        err = -err;
    if (what)
        return tw_failure_new(TW_ERR_SYS, err, NULL, "%s: %s", what, strerror(err));
    return tw_failure_new(TW_ERR_SYS, err, NULL, "%s", strerror(err));
}

tw_failure *tw_failure_ref(tw_failure *f)
{
    f->refs++;
    return f;
}

void tw_failure_unref(tw_failure *f)
{
    /* Causes are released in a loop, so a long chain needs no stack. */
    while (f && --f->refs == 0) {
        tw_failure *cause = f->cause;
        if (f->data_dtor && f->data)
            f->data_dtor(f->data);
        free(f);
        f = cause;
    }
}

const char *tw_failure_domain(const tw_failure *f) { return f->domain; }
int tw_failure_code(const tw_failure *f) { return f->code; }
const char *tw_failure_message(const tw_failure *f) { return f->message; }
const tw_failure *tw_failure_cause(const tw_failure *f) { return f->cause; }

int tw_failure_check(const tw_failure *f, const char *domain, int code)
{
    return f && f->domain == domain && (code == -1 || f->code == code);
}

const tw_failure *tw_failure_find(const tw_failure *f, const char *domain, int code)
{
    for (; f; f = f->cause)
        if (tw_failure_check(f, domain, code))
            return f;
    return NULL;
}

size_t tw_failure_format(const tw_failure *f, char *buf, size_t size)
{
    size_t len = 0;
    for (const tw_failure *c = f; c; c = c->cause) {
        size_t room = len < size ? size - len : 0;
        int n = snprintf(room ? buf + len : NULL, room, "%s%s %d: %s",
                         c == f ? "" : ", caused by ", c->domain, c->code, c->message);
        if (n > 0)
            len += (size_t)n;
    }
    if (!f && size)
        buf[0] = '\0';
    return len;
}
