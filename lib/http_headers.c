/* twine: header lists: one growable array of fields, searched linearly
 * (messages carry a few dozen fields at most, so a scan beats a hash). */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* name and value share one allocation, which starts at name. */
typedef struct tw_http_field {
    char *name;
    char *value;
} tw_http_field;

struct tw_http_headers {
    tw_http_field *fields;
    size_t n, cap;
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* ASCII only, whatever the locale says. */
static int same_name(const char *a, const char *b)
{
    while (*a && lower((unsigned char)*a) == lower((unsigned char)*b))
        a++, b++;
    return !*a && !*b;
}

/* RFC 9110 tchar: the bytes a field name may hold. A table, because every
 * byte of every received field name passes through here. */
static const unsigned char tchar[256] = {
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
    ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

static int is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!tchar[(unsigned char)*s])
            return 0;
    return 1;
}

static int valid(const char *name, const char *value)
{
    return is_token(name) && !strpbrk(value, "\r\n");
}

static tw_http_field make_field(const char *name, const char *value)
{
    size_t nlen = strlen(name) + 1, vlen = strlen(value) + 1;
    tw_http_field f;
    f.name = tw_xmalloc(nlen + vlen);
    f.value = f.name + nlen;
    memcpy(f.name, name, nlen);
    memcpy(f.value, value, vlen);
    return f;
}

static void append(tw_http_headers *h, tw_http_field f)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 8;
        h->fields = tw_xrealloc(h->fields, h->cap * sizeof *h->fields);
    }
    h->fields[h->n++] = f;
}

tw_http_headers *tw_http_headers_new(void)
{
    return tw_xcalloc(1, sizeof(tw_http_headers));
}

void tw_http_headers_free(tw_http_headers *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->fields[i].name);
    free(h->fields);
    free(h);
}

tw_http_headers *tw_http_headers_copy(const tw_http_headers *h)
{
    tw_http_headers *c = tw_http_headers_new();
    for (size_t i = 0; i < tw_http_headers_count(h); i++)
        append(c, make_field(h->fields[i].name, h->fields[i].value));
    return c;
}

size_t tw_http_headers_count(const tw_http_headers *h)
{
    return h ? h->n : 0;
}

void tw_http_headers_at(const tw_http_headers *h, size_t i, const char **name, const char **value)
{
    int in = i < tw_http_headers_count(h);
    if (name)
        *name = in ? h->fields[i].name : NULL;
    if (value)
        *value = in ? h->fields[i].value : NULL;
}

const char *tw_http_headers_next(const tw_http_headers *h, const char *name, size_t *pos)
{
    for (size_t i = *pos; i < tw_http_headers_count(h); i++) {
        if (same_name(h->fields[i].name, name)) {
            *pos = i + 1;
            return h->fields[i].value;
        }
    }
    *pos = tw_http_headers_count(h);
    return NULL;
}

const char *tw_http_headers_get(const tw_http_headers *h, const char *name)
{
    size_t pos = 0;
    return tw_http_headers_next(h, name, &pos);
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* Whether the comma-separated list `v` holds `token`, in any case. */
static int list_has(const char *v, const char *token, size_t tlen)
{
    while (*v) {
        while (*v == ',' || is_space(*v))
            v++;
        const char *start = v;
        while (*v && *v != ',')
            v++;
        const char *end = v;
        while (end > start && is_space(end[-1]))
            end--;
        if ((size_t)(end - start) == tlen && !strncasecmp(start, token, tlen))
            return 1;
    }
    return 0;
}

int tw_http_headers_has_token(const tw_http_headers *h, const char *name, const char *token)
{
    size_t pos = 0, tlen = strlen(token);
    const char *v;
    while ((v = tw_http_headers_next(h, name, &pos)))
        if (list_has(v, token, tlen))
            return 1;
    return 0;
}

int tw_http_headers_add(tw_http_headers *h, const char *name, const char *value)
{
    if (!valid(name, value))
        return -EINVAL;
    append(h, make_field(name, value));
    return 0;
}

/* Removes the fields named `name` from index `from` on, keeping the order. */
static size_t remove_from(tw_http_headers *h, const char *name, size_t from)
{
    size_t kept = from;
    for (size_t i = from; i < h->n; i++) {
        if (same_name(h->fields[i].name, name))
            free(h->fields[i].name);
        else
            h->fields[kept++] = h->fields[i];
    }
    size_t removed = h->n - kept;
    h->n = kept;
    return removed;
}

int tw_http_headers_set(tw_http_headers *h, const char *name, const char *value)
{
    if (!valid(name, value))
        return -EINVAL;
    for (size_t i = 0; i < h->n; i++) {
        if (same_name(h->fields[i].name, name)) {
            free(h->fields[i].name);
            h->fields[i] = make_field(name, value);
            remove_from(h, name, i + 1);
            return 0;
        }
    }
    append(h, make_field(name, value));
    return 0;
}

size_t tw_http_headers_remove(tw_http_headers *h, const char *name)
{
    return remove_from(h, name, 0);
}
