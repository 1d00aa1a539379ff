/* twine: URLs for the HTTP client: parsing the absolute http/https URLs it
 * fetches, and resolving a Location against the URL that answered with it
 * (RFC 3986, section 5). */
#include "http_client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>

/* A piece of a string; ptr NULL: the component is undefined. */
typedef struct span {
    const char *ptr;
    size_t len;
} span;

typedef struct uri_parts {
    span scheme, authority, path, query, fragment;
} uri_parts;

static uri_parts split(const char *s);

/* Parsing -------------------------------------------------------------------------- */

static bool needs_encoding(unsigned char c)
{
    return c == ' ' || c >= 0x7f;
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static int parse_port(const char *s, size_t len, int *port)
{
    if (len == 0)
        return 0;                     /* "host:" means the default */
    if (len > 5)
        return -EINVAL;
    int p = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        p = p * 10 + (s[i] - '0');
    }
    if (p < 1 || p > 65535)
        return -EINVAL;
    *port = p;
    return 0;
}

static bool valid_host(const char *s, size_t len, bool ipv6)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = ipv6 ? (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                             (c >= 'A' && c <= 'F') || c == ':' || c == '.'
                       : c > 0x20 && c < 0x7f && !strchr("/?#@[]\\\"<>^`{|}", c);
        if (!ok)
            return false;
    }
    return true;
}

int tw_url_parse(tw_url *u, const char *s)
{
    memset(u, 0, sizeof *u);
    if (!s)
        return -EINVAL;
    if (!strncasecmp(s, "http://", 7)) {
        s += 7;
    } else if (!strncasecmp(s, "https://", 8)) {
        s += 8;
        u->https = true;
    } else {
        return split(s).scheme.ptr ? -EPROTONOSUPPORT : -EINVAL;
    }
    for (const char *p = s; *p; p++)
        if (is_control((unsigned char)*p))
            return -EINVAL;

    size_t auth_len = strcspn(s, "/?#");
    const char *auth = s, *rest = s + auth_len;
    if (memchr(auth, '@', auth_len))
        return -EINVAL;               /* user information */

    const char *host = auth, *port = NULL;
    size_t host_len;
    if (*auth == '[') {
        const char *close = memchr(auth, ']', auth_len);
        if (!close)
            return -EINVAL;
        host = auth + 1;
        host_len = (size_t)(close - host);
        u->ipv6 = true;
        if (close + 1 < rest) {
            if (close[1] != ':')
                return -EINVAL;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', auth_len);
        host_len = colon ? (size_t)(colon - auth) : auth_len;
        if (colon)
            port = colon + 1;
    }
    if (!valid_host(host, host_len, u->ipv6))
        return -EINVAL;
    u->port = u->https ? 443 : 80;
    if (port && parse_port(port, (size_t)(rest - port), &u->port) < 0)
        return -EINVAL;

    /* The target: path and query, without the fragment, "/" at least. */
    size_t target_len = strcspn(rest, "#");
    size_t encoded = 0;
    for (size_t i = 0; i < target_len; i++)
        encoded += needs_encoding((unsigned char)rest[i]) ? 3 : 1;

    u->buf = tw_xmalloc(host_len + 1 + encoded + 2);
    char *h = u->buf;
    for (size_t i = 0; i < host_len; i++)
        h[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] + ('a' - 'A') : host[i]);
    h[host_len] = '\0';
    char *t = h + host_len + 1;
    u->host = h;
    u->target = t;
    if (target_len == 0 || rest[0] == '?')
        *t++ = '/';
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < target_len; i++) {
        unsigned char c = (unsigned char)rest[i];
        if (needs_encoding(c)) {
            *t++ = '%';
            *t++ = hex[c >> 4];
            *t++ = hex[c & 15];
        } else {
            *t++ = (char)c;
        }
    }
    *t = '\0';
    return 0;
}

void tw_url_clear(tw_url *u)
{
    free(u->buf);
    u->buf = NULL;
}

bool tw_url_same_origin(const tw_url *a, const tw_url *b)
{
    return a->https == b->https && a->port == b->port && !strcmp(a->host, b->host);
}

bool tw_url_default_port(const tw_url *u)
{
    return u->port == (u->https ? 443 : 80);
}

/* Resolving references (RFC 3986, section 5.2) ------------------------------------------- */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Splits s as RFC 3986's appendix B regular expression does. */
static uri_parts split(const char *s)
{
    uri_parts p;
    memset(&p, 0, sizeof p);
    const char *q = s;
    if (is_alpha(*q)) {
        while (is_alpha(*q) || (*q >= '0' && *q <= '9') || *q == '+' || *q == '-' || *q == '.')
            q++;
        if (*q == ':') {
            p.scheme = (span){ s, (size_t)(q - s) };
            s = q + 1;
        }
    }
    if (s[0] == '/' && s[1] == '/') {
        s += 2;
        size_t n = strcspn(s, "/?#");
        p.authority = (span){ s, n };
        s += n;
    }
    size_t n = strcspn(s, "?#");
    p.path = (span){ s, n };
    s += n;
    if (*s == '?') {
        n = strcspn(++s, "#");
        p.query = (span){ s, n };
        s += n;
    }
    if (*s == '#')
        p.fragment = (span){ s + 1, strlen(s + 1) };
    return p;
}

/* RFC 3986, 5.2.4: out receives in without its "." and ".." segments. out
 * has room for in.len + 1 bytes; returns the length written. */
static size_t remove_dot_segments(span in, char *out)
{
    const char *s = in.ptr, *end = in.ptr + in.len;
    size_t n = 0;
    while (s < end) {
        size_t left = (size_t)(end - s);
        if (left >= 3 && !strncmp(s, "../", 3)) {
            s += 3;
        } else if (left >= 2 && !strncmp(s, "./", 2)) {
            s += 2;
        } else if (left >= 3 && !strncmp(s, "/./", 3)) {
            s += 2;
        } else if (left == 2 && !strncmp(s, "/.", 2)) {
            s += 1;
            out[n++] = '/';
            s = end;
        } else if ((left >= 4 && !strncmp(s, "/../", 4)) || (left == 3 && !strncmp(s, "/..", 3))) {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;                  /* the last segment and its "/" go */
            if (left == 3) {
                out[n++] = '/';
                s = end;
            } else {
                s += 3;
            }
        } else if ((left == 1 && *s == '.') || (left == 2 && !strncmp(s, "..", 2))) {
            s = end;
        } else {
            /* The first segment, with its leading "/" if any. */
            const char *seg = s;
            if (*s == '/')
                s++;
            while (s < end && *s != '/')
                s++;
            memcpy(out + n, seg, (size_t)(s - seg));
            n += (size_t)(s - seg);
        }
    }
    return n;
}

/* RFC 3986, 5.2.3: the base path without its last segment, then ref's. */
static char *merge(const uri_parts *base, span ref_path, size_t *len)
{
    char *m = tw_xmalloc(base->path.len + ref_path.len + 2);
    size_t n = 0;
    if (base->authority.ptr && base->path.len == 0) {
        m[n++] = '/';
    } else {
        const char *slash = NULL;
        for (size_t i = 0; i < base->path.len; i++)
            if (base->path.ptr[i] == '/')
                slash = base->path.ptr + i;
        if (slash) {
            n = (size_t)(slash - base->path.ptr) + 1;
            memcpy(m, base->path.ptr, n);
        }
    }
    memcpy(m + n, ref_path.ptr, ref_path.len);
    n += ref_path.len;
    *len = n;
    return m;
}

char *tw_http_url_join(const char *base_s, const char *ref_s)
{
    if (!base_s || !ref_s)
        return NULL;
    uri_parts base = split(base_s), ref = split(ref_s), t;
    memset(&t, 0, sizeof t);
    if (!base.scheme.ptr)
        return NULL;

    char *merged = NULL;              /* a path built here, when one is */
    size_t merged_len = 0;
    if (ref.scheme.ptr) {
        t = ref;
    } else {
        t.scheme = base.scheme;
        if (ref.authority.ptr) {
            t.authority = ref.authority;
            t.path = ref.path;
            t.query = ref.query;
        } else {
            t.authority = base.authority;
            if (ref.path.len == 0) {
                t.path = base.path;
                t.query = ref.query.ptr ? ref.query : base.query;
            } else {
                if (ref.path.ptr[0] == '/') {
                    t.path = ref.path;
                } else {
                    merged = merge(&base, ref.path, &merged_len);
                    t.path = (span){ merged, merged_len };
                }
                t.query = ref.query;
            }
        }
        t.fragment = ref.fragment;
    }

    size_t cap = t.scheme.len + t.authority.len + t.path.len + t.query.len + t.fragment.len + 8;
    char *out = tw_xmalloc(cap);
    size_t n = 0;
    memcpy(out, t.scheme.ptr, t.scheme.len);
    n += t.scheme.len;
    out[n++] = ':';
    if (t.authority.ptr) {
        out[n++] = '/';
        out[n++] = '/';
        memcpy(out + n, t.authority.ptr, t.authority.len);
        n += t.authority.len;
    }
    n += remove_dot_segments(t.path, out + n);
    if (t.query.ptr) {
        out[n++] = '?';
        memcpy(out + n, t.query.ptr, t.query.len);
        n += t.query.len;
    }
    if (t.fragment.ptr) {
        out[n++] = '#';
        memcpy(out + n, t.fragment.ptr, t.fragment.len);
        n += t.fragment.len;
    }
    out[n] = '\0';
    free(merged);
    return out;
}
