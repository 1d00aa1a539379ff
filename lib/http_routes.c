/* twine: the server's route table: (method, path pattern) pairs kept most
 * specific first, so that the first route matching a request is the one to
 * use. Patterns are small (exact paths, ":name" segments, a final '*'), and
 * a site holds a few dozen routes at most, so matching is a linear scan. */
#include "http_server_internal.h"

#include <errno.h>
#include <string.h>

enum route_kind { ROUTE_EXACT, ROUTE_PARAMS, ROUTE_PREFIX };

struct tw_http_route {
    char *method;               /* NULL: any method */
    char *pattern;
    size_t pattern_len;
    enum route_kind kind;
    tw_http_handler handler;
    void *arg;
    void (*arg_dtor)(void *);
};

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_param_start(const char *pattern, const char *p)
{
    return *p == ':' && p > pattern && p[-1] == '/';
}

/* The pattern's kind, or -1 when it is malformed. */
static int classify(const char *pattern)
{
    if (pattern[0] != '/')
        return -1;
    int kind = ROUTE_EXACT;
    for (const char *p = pattern; *p; p++) {
        if (*p == '*') {
            if (p[1])
                return -1;
            kind = ROUTE_PREFIX;
        } else if (is_param_start(pattern, p)) {
            if (p[1] == '\0' || p[1] == '/')
                return -1;
            if (kind == ROUTE_EXACT)
                kind = ROUTE_PARAMS;
        }
    }
    return kind;
}

/* Whether a should come before b: the more specific kind, then the longer
 * pattern. Equal ones keep the order they were added in. */
static bool more_specific(const tw_http_route *a, const tw_http_route *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind;
    return a->pattern_len > b->pattern_len;
}

int tw_http_routes_add(tw_http_routes *rt, const char *method, const char *pattern,
                       tw_http_handler handler, void *arg, void (*arg_dtor)(void *))
{
    int kind = pattern && handler ? classify(pattern) : -1;
    bool any = !method || !strcmp(method, "*");
    if (kind < 0 || (!any && !*method))
        return -EINVAL;
    for (const char *m = any ? "" : method; *m; m++)
        if (!is_tchar(*m))
            return -EINVAL;

    tw_http_route *r = tw_xcalloc(1, sizeof *r);
    r->method = any ? NULL : tw_xstrdup(method);
    r->pattern = tw_xstrdup(pattern);
    r->pattern_len = strlen(pattern);
    r->kind = (enum route_kind)kind;
    r->handler = handler;
    r->arg = arg;
    r->arg_dtor = arg_dtor;

    if (rt->n == rt->cap) {
        rt->cap = rt->cap ? 2 * rt->cap : 8;
        rt->v = tw_xrealloc(rt->v, rt->cap * sizeof *rt->v);
    }
    size_t at = rt->n;
    while (at > 0 && more_specific(r, rt->v[at - 1]))
        at--;
    memmove(rt->v + at + 1, rt->v + at, (rt->n - at) * sizeof *rt->v);
    rt->v[at] = r;
    rt->n++;
    return 0;
}

void tw_http_routes_clear(tw_http_routes *rt)
{
    for (size_t i = 0; i < rt->n; i++) {
        tw_http_route *r = rt->v[i];
        if (r->arg_dtor)
            r->arg_dtor(r->arg);
        free(r->method);
        free(r->pattern);
        free(r);
    }
    free(rt->v);
    memset(rt, 0, sizeof *rt);
}

/* Matching ---------------------------------------------------------------------------- */

static void add_param(tw_http_match *m, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
    m->params = tw_xrealloc(m->params, (m->nparams + 1) * sizeof *m->params);
    tw_http_param *p = &m->params[m->nparams++];
    p->name = tw_xmalloc(name_len + value_len + 2);
    memcpy(p->name, name, name_len);
    p->name[name_len] = '\0';
    p->value = p->name + name_len + 1;
    memcpy(p->value, value, value_len);
    p->value[value_len] = '\0';
}

/* Whether path matches r's pattern; with m set, adds the parameters to it. */
static bool matches(const tw_http_route *r, const char *path, tw_http_match *m)
{
    const char *pat = r->pattern, *p = pat, *s = path;
    while (*p) {
        if (*p == '*') {
            if (m)
                add_param(m, "*", 1, s, strlen(s));
            return true;
        }
        if (is_param_start(pat, p)) {
            size_t name_len = strcspn(p + 1, "/");
            size_t seg_len = strcspn(s, "/");
            if (seg_len == 0)
                return false;
            if (m)
                add_param(m, p + 1, name_len, s, seg_len);
            p += 1 + name_len;
            s += seg_len;
            continue;
        }
        if (*p != *s)
            return false;
        p++, s++;
    }
    return *s == '\0';
}

static bool accepts(const tw_http_route *r, const char *method, bool head)
{
    return !r->method || !strcmp(r->method, method) || (head && !strcmp(r->method, "GET"));
}

/* Appends method to a ", "-separated list unless it is there already. */
static void allow_add(char **allow, const char *method)
{
    size_t len = *allow ? strlen(*allow) : 0, mlen = strlen(method);
    for (const char *a = *allow; a && *a;) {
        size_t n = strcspn(a, ",");
        if (n == mlen && !strncmp(a, method, n))
            return;
        a += n;
        a += strspn(a, ", ");
    }
    *allow = tw_xrealloc(*allow, len + mlen + 3);
    if (len) {
        memcpy(*allow + len, ", ", 2);
        len += 2;
    }
    memcpy(*allow + len, method, mlen + 1);
}

int tw_http_routes_find(const tw_http_routes *rt, const char *method, const char *path,
                        tw_http_match *m)
{
    memset(m, 0, sizeof *m);
    bool head = !strcmp(method, "HEAD"), found_path = false;
    for (size_t i = 0; i < rt->n; i++) {
        const tw_http_route *r = rt->v[i];
        if (!matches(r, path, NULL))
            continue;
        if (accepts(r, method, head)) {
            matches(r, path, m);
            m->handler = r->handler;
            m->arg = r->arg;
            return 200;
        }
        found_path = true;
    }
    if (!found_path)
        return 404;
    /* No route for any method matched, so each of these has one. */
    for (size_t i = 0; i < rt->n; i++) {
        const tw_http_route *r = rt->v[i];
        if (!matches(r, path, NULL))
            continue;
        allow_add(&m->allow, r->method);
        if (!strcmp(r->method, "GET"))
            allow_add(&m->allow, "HEAD");
    }
    return 405;
}

void tw_http_params_free(tw_http_param *params, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(params[i].name);
    free(params);
}
