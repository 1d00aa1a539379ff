/* twine: the public transport functions and producer flow control. */
#include "transport.h"

#include <errno.h>

enum { DEFAULT_HIGH_WATERMARK = 64 * 1024, DEFAULT_LOW_WATERMARK = 16 * 1024 };

void tw_transport_init(tw_transport *t, const struct tw_transport_vtable *vt)
{
    t->vt = vt;
    t->protocol = NULL;
    t->disconnecting = false;
    t->producer = NULL;
    t->producer_arg = NULL;
    t->producer_paused = false;
    t->high_watermark = DEFAULT_HIGH_WATERMARK;
    t->low_watermark = DEFAULT_LOW_WATERMARK;
}

void tw_transport_buffer_changed(tw_transport *t, size_t buffered)
{
    if (!t->producer)
        return;
    if (!t->producer_paused && buffered > t->high_watermark) {
        t->producer_paused = true;
        t->producer->pause(t->producer_arg);
    } else if (t->producer_paused && buffered <= t->low_watermark) {
        t->producer_paused = false;
        t->producer->resume(t->producer_arg);
    }
}

void tw_transport_connect_protocol(tw_transport *t, tw_protocol *p)
{
    t->protocol = p;
    p->transport = t;
    if (p->ops->connection_made)
        p->ops->connection_made(p);
}

void tw_transport_protocol_lost(tw_transport *t, tw_failure *reason)
{
    tw_protocol *p = t->protocol;
    const tw_producer_ops *producer = t->producer;

    t->protocol = NULL;
    t->disconnecting = true;
    t->producer = NULL;
    if (producer && producer->stop)
        producer->stop(t->producer_arg);
    if (!p)
        return;
    if (p->ops->connection_lost)
        p->ops->connection_lost(p, reason);
    if (p->ops->free)
        p->ops->free(p);
}

int tw_transport_write(tw_transport *t, const void *data, size_t len)
{
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    return t->vt->writev(t, &iov, 1);
}

int tw_transport_writev(tw_transport *t, const struct iovec *iov, int n)
{
    return t->vt->writev(t, iov, n);
}

void tw_transport_lose_connection(tw_transport *t)
{
    t->disconnecting = true;
    t->vt->lose_connection(t);
}

void tw_transport_abort_connection(tw_transport *t)
{
    t->disconnecting = true;
    t->vt->abort_connection(t);
}

int tw_transport_disconnecting(const tw_transport *t) { return t->disconnecting; }
void tw_transport_lose_write_connection(tw_transport *t) { t->vt->lose_write_connection(t); }
void tw_transport_pause_reading(tw_transport *t) { t->vt->pause_reading(t); }
void tw_transport_resume_reading(tw_transport *t) { t->vt->resume_reading(t); }

int tw_transport_get_peer(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len)
{
    return t->vt->get_peer(t, addr, len);
}

int tw_transport_get_host(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len)
{
    return t->vt->get_host(t, addr, len);
}

size_t tw_transport_write_buffer_size(const tw_transport *t)
{
    return t->vt->write_buffer_size(t);
}

tw_protocol *tw_transport_protocol(const tw_transport *t)
{
    return t->protocol;
}

int tw_transport_register_producer(tw_transport *t, const tw_producer_ops *ops, void *arg)
{
    if (t->producer)
        return -EBUSY;
    t->producer = ops;
    t->producer_arg = arg;
    t->producer_paused = false;
    tw_transport_buffer_changed(t, tw_transport_write_buffer_size(t));
    return 0;
}

void tw_transport_unregister_producer(tw_transport *t)
{
    t->producer = NULL;
    t->producer_arg = NULL;
    t->producer_paused = false;
}

int tw_transport_set_write_watermarks(tw_transport *t, size_t high, size_t low)
{
    if (low > high)
        return -EINVAL;
    t->high_watermark = high;
    t->low_watermark = low;
    tw_transport_buffer_changed(t, tw_transport_write_buffer_size(t));
    return 0;
}

static void pause_transport(void *arg) { tw_transport_pause_reading(arg); }
static void resume_transport(void *arg) { tw_transport_resume_reading(arg); }

const tw_producer_ops tw_transport_reading_producer = {
    .pause = pause_transport,
    .resume = resume_transport,
    .stop = NULL,
};
