/* twine: the buffer and delivery state shared by the framing receivers. */
#include "receiver_core.h"

#include <stdint.h>
#include <string.h>

enum { MIN_CAPACITY = 64, KEEP_CAPACITY = 64 * 1024 };

void tw_receiver_core_init(tw_receiver_core *c)
{
    memset(c, 0, sizeof *c);
}

void tw_receiver_core_release(tw_receiver_core *c)
{
    free(c->buf);
    free(c->retired);
    tw_receiver_core_init(c);
}

static size_t grown(size_t cap, size_t need)
{
    if (cap < MIN_CAPACITY)
        cap = MIN_CAPACITY;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    return cap;
}

static bool points_into(const tw_receiver_core *c, const char *p)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)c->buf;
    return c->buf && a >= lo && a < lo + c->cap;
}

/* Moves the unconsumed bytes and `data` to a new block. The old block goes
 * only after the copy (data may point into it), and is kept while a hook may
 * hold pointers into it. */
static void append_to_new_block(tw_receiver_core *c, const char *data, size_t len)
{
    size_t keep = c->end - c->start;
    size_t cap = grown(c->cap, keep + len + 1);
    char *block = tw_xmalloc(cap);

    if (keep)
        memcpy(block, c->buf + c->start, keep);
    memcpy(block + keep, data, len);
    block[keep + len] = '\0';
    if (c->busy && !c->retired)
        c->retired = c->buf;
    else
        free(c->buf);
    c->buf = block;
    c->cap = cap;
    c->start = 0;
    c->end = keep + len;
}

void tw_receiver_core_append(tw_receiver_core *c, const char *data, size_t len)
{
    if (len == 0)
        return;
    /* Everything was handed out: keep the NUL that ends it. */
    if (c->busy && c->buf && c->start == c->end)
        c->start = ++c->end;
    if (c->end + len < c->cap) {
        memcpy(c->buf + c->end, data, len);
    } else if (c->busy || points_into(c, data)) {
        append_to_new_block(c, data, len);
        return;
    } else {
        size_t keep = c->end - c->start;
        if (keep && c->start)
            memmove(c->buf, c->buf + c->start, keep);
        c->start = 0;
        c->end = keep;
        if (keep + len >= c->cap) {
            c->cap = grown(c->cap, keep + len + 1);
            c->buf = tw_xrealloc(c->buf, c->cap);
        }
        memcpy(c->buf + c->end, data, len);
    }
    c->end += len;
    c->buf[c->end] = '\0';
}

size_t tw_receiver_core_take_all(tw_receiver_core *c, const char **data)
{
    size_t len = c->end - c->start;

    *data = c->buf ? c->buf + c->start : "";
    c->start = c->end;
    return len;
}

bool tw_receiver_core_can_deliver(const tw_receiver_core *c, const tw_protocol *p)
{
    if (c->paused || c->lost || c->doomed)
        return false;
    return !p->transport || !tw_transport_disconnecting(p->transport);
}

bool tw_receiver_core_begin(tw_receiver_core *c)
{
    if (c->busy)
        return false;
    c->busy = 1;
    return true;
}

bool tw_receiver_core_end(tw_receiver_core *c)
{
    c->busy = 0;
    free(c->retired);
    c->retired = NULL;
    if (c->start == c->end) {
        if (c->cap > KEEP_CAPACITY) {
            free(c->buf);
            c->buf = NULL;
            c->cap = 0;
        } else if (c->buf) {
            c->buf[0] = '\0';
        }
        c->start = c->end = 0;
    }
    return c->doomed;
}

bool tw_receiver_core_defer_free(tw_receiver_core *c)
{
    c->lost = 1;
    if (!c->busy)
        return false;
    c->doomed = 1;
    return true;
}
