/* twine: request targets: the path and query of a target, percent-decoding. */
#include "http_server_internal.h"

#include <string.h>

void tw_http_split_target(const char *target, const char **path, size_t *path_len,
                          const char **query)
{
    const char *p = target;
    /* absolute-form ("http://host/path?q"): the path starts after the
     * authority. */
    const char *scheme_end = strstr(target, "://");
    if (*target != '/' && scheme_end && !memchr(target, '/', (size_t)(scheme_end - target)))
        p = scheme_end + 3 + strcspn(scheme_end + 3, "/?");

    const char *q = strchr(p, '?');
    size_t len = q ? (size_t)(q - p) : strlen(p);
    if (len == 0 && p != target) {
        *path = "/";
        *path_len = 1;
    } else {
        *path = p;
        *path_len = len;
    }
    *query = q ? q + 1 : NULL;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t tw_http_percent_decode(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex(in[i + 1]) : -1;
            int lo = hi >= 0 ? hex(in[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (ssize_t)o;
}
