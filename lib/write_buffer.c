/* twine: the chunked buffer of bytes a stream has not yet handed to the kernel. */
#include "net_internal.h"

#include <string.h>

enum { MIN_CHUNK = 16 * 1024 };

struct tw_write_chunk {
    tw_write_chunk *next;
    size_t start, end, cap;               /* unsent bytes are data[start, end) */
    char data[];
};

static tw_write_chunk *chunk_new(size_t cap)
{
    tw_write_chunk *c = tw_xmalloc(sizeof *c + cap);
    c->next = NULL;
    c->start = c->end = 0;
    c->cap = cap;
    return c;
}

static void append_bytes(tw_write_buffer *b, const char *p, size_t len)
{
    tw_write_chunk *t = b->tail;
    if (t && t->cap > t->end) {
        size_t n = t->cap - t->end < len ? t->cap - t->end : len;
        memcpy(t->data + t->end, p, n);
        t->end += n;
        b->size += n;
        p += n;
        len -= n;
    }
    if (len == 0)
        return;
    /* The rest goes into one new chunk, so a large write is one copy. */
    tw_write_chunk *c = chunk_new(len > MIN_CHUNK ? len : MIN_CHUNK);
    memcpy(c->data, p, len);
    c->end = len;
    if (b->tail)
        b->tail->next = c;
    else
        b->head = c;
    b->tail = c;
    b->size += len;
}

void tw_write_buffer_append(tw_write_buffer *b, const struct iovec *iov, int n, size_t skip)
{
    for (int i = 0; i < n; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        append_bytes(b, (const char *)iov[i].iov_base + skip, len - skip);
        skip = 0;
    }
}

int tw_write_buffer_iov(const tw_write_buffer *b, struct iovec *iov, int max)
{
    int n = 0;
    for (tw_write_chunk *c = b->head; c && n < max; c = c->next) {
        iov[n].iov_base = c->data + c->start;
        iov[n].iov_len = c->end - c->start;
        n++;
    }
    return n;
}

void tw_write_buffer_consume(tw_write_buffer *b, size_t n)
{
    b->size -= n;
    while (n > 0) {
        tw_write_chunk *c = b->head;
        size_t avail = c->end - c->start;
        if (n < avail) {
            c->start += n;
            return;
        }
        n -= avail;
        b->head = c->next;
        free(c);
    }
    if (!b->head)
        b->tail = NULL;
}

void tw_write_buffer_clear(tw_write_buffer *b)
{
    while (b->head) {
        tw_write_chunk *c = b->head;
        b->head = c->next;
        free(c);
    }
    b->tail = NULL;
    b->size = 0;
}
