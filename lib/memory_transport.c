/* twine: the in-memory transport for tests (twine/testing.h). */
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <twine/testing.h>

enum { HOST_PORT = 12345, PEER_PORT = 54321 };

struct tw_memory_transport {
    tw_transport base;                    /* first: the vtable casts back */
    char *written;                        /* written[len] == '\0' */
    size_t len, cap;
    size_t buffer_size;                   /* the fake write-buffer size */
    enum { FRESH, CONNECTED, CLOSED } state;
    bool lose_called, abort_called, write_closed, reading_paused;
};

static tw_memory_transport *from_base(const tw_transport *t)
{
    return (tw_memory_transport *)t;
}

static bool refuses_writes(const tw_memory_transport *mt)
{
    return mt->state != CONNECTED || mt->lose_called || mt->write_closed;
}

static void reserve(tw_memory_transport *mt, size_t more)
{
    if (mt->len + more < mt->cap)
        return;
    size_t cap = mt->cap ? mt->cap : 64;
    while (mt->len + more >= cap)
        cap *= 2;
    mt->written = tw_xrealloc(mt->written, cap);
    mt->cap = cap;
}

static int mem_writev(tw_transport *t, const struct iovec *iov, int n)
{
    tw_memory_transport *mt = from_base(t);

    if (refuses_writes(mt))
        return -ENOTCONN;
    for (int i = 0; i < n; i++) {
        reserve(mt, iov[i].iov_len);
        if (iov[i].iov_len)
            memcpy(mt->written + mt->len, iov[i].iov_base, iov[i].iov_len);
        mt->len += iov[i].iov_len;
        mt->written[mt->len] = '\0';
    }
    return 0;
}

static void mem_lose_connection(tw_transport *t) { from_base(t)->lose_called = true; }

static void mem_abort_connection(tw_transport *t)
{
    tw_memory_transport *mt = from_base(t);
    mt->lose_called = true;
    mt->abort_called = true;
}

static void mem_lose_write_connection(tw_transport *t) { from_base(t)->write_closed = true; }
static void mem_pause_reading(tw_transport *t) { from_base(t)->reading_paused = true; }
static void mem_resume_reading(tw_transport *t) { from_base(t)->reading_paused = false; }

static int loopback(int port, struct sockaddr_storage *addr, socklen_t *len)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)addr;

    memset(addr, 0, sizeof *addr);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (len)
        *len = sizeof *sin;
    return 0;
}

static int mem_get_peer(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len)
{
    (void)t;
    return loopback(PEER_PORT, addr, len);
}

static int mem_get_host(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len)
{
    (void)t;
    return loopback(HOST_PORT, addr, len);
}

static size_t mem_write_buffer_size(const tw_transport *t) { return from_base(t)->buffer_size; }

static const struct tw_transport_vtable memory_vtable = {
    .writev = mem_writev,
    .lose_connection = mem_lose_connection,
    .abort_connection = mem_abort_connection,
    .lose_write_connection = mem_lose_write_connection,
    .pause_reading = mem_pause_reading,
    .resume_reading = mem_resume_reading,
    .get_peer = mem_get_peer,
    .get_host = mem_get_host,
    .write_buffer_size = mem_write_buffer_size,
};

tw_memory_transport *tw_memory_transport_new(void)
{
    tw_memory_transport *mt = tw_xcalloc(1, sizeof *mt);
    tw_transport_init(&mt->base, &memory_vtable);
    return mt;
}

void tw_memory_transport_free(tw_memory_transport *mt)
{
    if (!mt)
        return;
    tw_memory_transport_close(mt, 1);
    free(mt->written);
    free(mt);
}

tw_transport *tw_memory_transport_transport(tw_memory_transport *mt)
{
    return &mt->base;
}

int tw_memory_transport_attach(tw_memory_transport *mt, tw_protocol *p)
{
    if (mt->state != FRESH)
        return -EBUSY;
    mt->state = CONNECTED;
    tw_transport_connect_protocol(&mt->base, p);
    return 0;
}

int tw_memory_transport_feed(tw_memory_transport *mt, const void *data, size_t len)
{
    tw_protocol *p = mt->base.protocol;

    if (mt->state != CONNECTED || !p)
        return -ENOTCONN;
    if (len && p->ops->data_received)
        p->ops->data_received(p, data, len);
    return 0;
}

int tw_memory_transport_feed_in_steps(tw_memory_transport *mt, const void *data,
                                      size_t len, size_t step)
{
    const char *bytes = data;

    if (step == 0)
        return -EINVAL;
    for (size_t off = 0; off < len; off += step) {
        int rc = tw_memory_transport_feed(mt, bytes + off, len - off < step ? len - off : step);
        if (rc < 0)
            return rc;
    }
    return 0;
}

const char *tw_memory_transport_value(const tw_memory_transport *mt, size_t *len)
{
    if (len)
        *len = mt->len;
    return mt->written ? mt->written : "";
}

void tw_memory_transport_clear(tw_memory_transport *mt)
{
    mt->len = 0;
    if (mt->written)
        mt->written[0] = '\0';
}

int tw_memory_transport_disconnecting(const tw_memory_transport *mt) { return mt->lose_called; }
int tw_memory_transport_aborted(const tw_memory_transport *mt) { return mt->abort_called; }
int tw_memory_transport_write_closed(const tw_memory_transport *mt) { return mt->write_closed; }
int tw_memory_transport_reading_paused(const tw_memory_transport *mt) { return mt->reading_paused; }
int tw_memory_transport_connected(const tw_memory_transport *mt) { return mt->state == CONNECTED; }

void tw_memory_transport_close(tw_memory_transport *mt, int clean)
{
    if (mt->state != CONNECTED)
        return;
    mt->state = CLOSED;
    tw_failure *reason = clean
        ? tw_failure_new(TW_ERR_CONNECTION_DONE, 0, NULL, "Connection was closed cleanly.")
        : tw_failure_new(TW_ERR_CONNECTION_LOST, 0, NULL,
                         "Connection to the other side was lost in a non-clean fashion.");
    tw_transport_protocol_lost(&mt->base, reason);
    tw_failure_unref(reason);
}

void tw_memory_transport_peer_eof(tw_memory_transport *mt)
{
    tw_protocol *p = mt->base.protocol;

    if (mt->state != CONNECTED || !p)
        return;
    if (p->ops->read_connection_lost)
        p->ops->read_connection_lost(p);
    else
        tw_memory_transport_close(mt, 1);
}

void tw_memory_transport_set_buffer_size(tw_memory_transport *mt, size_t size)
{
    mt->buffer_size = size;
    tw_transport_buffer_changed(&mt->base, size);
}
