/* twine: allocation that aborts instead of returning NULL. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static void out_of_memory(size_t size)
{
    fprintf(stderr, "twine: out of memory allocating %zu bytes\n", size);
    abort();
}

void *tw_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (TW_UNLIKELY(!p))
        out_of_memory(size);
    return p;
}

void *tw_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (TW_UNLIKELY(!p))
        out_of_memory(n * size);
    return p;
}

void *tw_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (TW_UNLIKELY(!q))
        out_of_memory(size);
    return q;
}

char *tw_xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;
    return memcpy(tw_xmalloc(len), s, len);
}
