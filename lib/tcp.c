/* twine: the stream connection transport over a non-blocking socket, shared by
 * TCP and UNIX-domain connections.
 *
 * Writes go straight to the socket while nothing is buffered; the rest waits
 * in a chunked buffer, with the write watcher active only while it is not
 * empty. Closing closes the socket at once, but connection_lost and the free
 * run from the loop (a zero-delay timer), never inside a call the protocol
 * made, so a transport is never freed under one of its own hooks. */
#include "net_internal.h"

#include <errno.h>
#include <ev.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <twine/reactor.h>
#include <unistd.h>

enum {
    READ_SIZE = 64 * 1024,
    READS_PER_WAKEUP = 16,                /* then other watchers get their turn */
    SEND_IOVS = 64,
};

typedef struct tw_stream {
    tw_transport base;                    /* first: the public handle */
    int fd;                               /* -1 once closed */
    ev_io rio, wio;
    ev_timer later;                       /* zero-delay: hooks that must run from the loop */
    tw_write_buffer wbuf;
    tw_factory *client_factory;           /* clients: its connection_lost is called */
    tw_stream_lost_fn lost_hook;
    void *lost_arg;
    tw_failure *lost_reason;              /* set once closed; connection_lost waits for the loop */
    bool paused;                          /* pause_reading */
    bool closing;                         /* lose_connection: flush, then close */
    bool write_shut_wanted;               /* lose_write_connection: flush, then shut down */
    bool write_shut;                      /* our sending side is shut down */
    bool write_lost_due;                  /* write_connection_lost waits for the loop */
    bool read_eof;                        /* the peer shut down its sending side */
    struct sockaddr_storage host, peer;
    socklen_t host_len, peer_len;         /* host_len 0: not asked for yet */
} tw_stream;

/* One read buffer serves every stream: data_received borrows it for the
 * call, and only the reactor thread reads. */
static char read_buf[READ_SIZE];

static struct ev_loop *loop(void) { return tw_reactor_loop(); }

static bool is_closed(const tw_stream *s) { return s->lost_reason != NULL; }

static void update_reading(tw_stream *s)
{
    bool want = !is_closed(s) && !s->closing && !s->read_eof && !s->paused;
    if (want && !ev_is_active(&s->rio))
        ev_io_start(loop(), &s->rio);
    else if (!want && ev_is_active(&s->rio))
        ev_io_stop(loop(), &s->rio);
}

static void schedule_later(tw_stream *s)
{
    if (!ev_is_active(&s->later)) {
        ev_timer_set(&s->later, 0., 0.);
        ev_timer_start(loop(), &s->later);
    }
}

/* Closes the socket now and drops the buffer; the protocol learns `reason`
 * (taken) from the loop. Later closes are ignored. */
static void close_with(tw_stream *s, tw_failure *reason)
{
    if (is_closed(s)) {
        tw_failure_unref(reason);
        return;
    }
    s->lost_reason = reason;
    s->base.disconnecting = true;
    ev_io_stop(loop(), &s->rio);
    ev_io_stop(loop(), &s->wio);
    tw_write_buffer_clear(&s->wbuf);
    close(s->fd);
    s->fd = -1;
    schedule_later(s);
}

static tw_failure *connection_done(void)
{
    return tw_failure_new(TW_ERR_CONNECTION_DONE, 0, NULL, "Connection was closed cleanly");
}

static void lose_errno(tw_stream *s, int err, const char *what)
{
    close_with(s, tw_failure_new(TW_ERR_CONNECTION_LOST, err, tw_failure_from_errno(err, what),
                                 "Connection lost: %s", strerror(err)));
}

/* Both directions are shut down: the connection is over, cleanly (once the
 * protocol has heard that its sending side is). */
static void close_if_both_shut(tw_stream *s)
{
    if (!is_closed(s) && s->read_eof && s->write_shut && !s->write_lost_due)
        close_with(s, connection_done());
}

static void shut_write(tw_stream *s)
{
    s->write_shut = true;
    /* ENOTCONN here means the peer is gone; reading reports that. */
    shutdown(s->fd, SHUT_WR);
}

static void call_write_connection_lost(tw_stream *s)
{
    tw_protocol *p = s->base.protocol;
    if (p->ops->write_connection_lost)
        p->ops->write_connection_lost(p);
    close_if_both_shut(s);
}

/* The connection is over: tell the protocol, the client factory and the hook,
 * in that order, then free the transport. */
static void finish(tw_stream *s)
{
    tw_failure *reason = s->lost_reason;
    tw_factory *f = s->client_factory;

    ev_timer_stop(loop(), &s->later);
    tw_transport_protocol_lost(&s->base, reason);
    if (f && f->connection_lost)
        f->connection_lost(f, reason);
    if (s->lost_hook)
        s->lost_hook(s->lost_arg, reason);
    tw_failure_unref(reason);
    free(s);
}

static void on_later(struct ev_loop *l, ev_timer *w, int revents)
{
    tw_stream *s = TW_CONTAINER_OF(w, tw_stream, later);
    if (s->write_lost_due && !is_closed(s)) {
        s->write_lost_due = false;
        call_write_connection_lost(s);
    }
    if (is_closed(s))
        finish(s);
}

/* Reading ------------------------------------------------------------------------- */

static void peer_eof(tw_stream *s)
{
    tw_protocol *p = s->base.protocol;
    if (!p->ops->read_connection_lost) {
        close_with(s, connection_done());
        return;
    }
    s->read_eof = true;
    update_reading(s);
    p->ops->read_connection_lost(p);
    close_if_both_shut(s);
}

static void on_readable(struct ev_loop *l, ev_io *w, int revents)
{
    tw_stream *s = TW_CONTAINER_OF(w, tw_stream, rio);
    for (int i = 0; i < READS_PER_WAKEUP; i++) {
        ssize_t n = read(s->fd, read_buf, READ_SIZE);
        if (n > 0) {
            tw_protocol *p = s->base.protocol;
            if (p->ops->data_received)
                p->ops->data_received(p, read_buf, (size_t)n);
            /* The protocol may have paused, closed or aborted. A short read
             * emptied the socket. */
            if (!ev_is_active(&s->rio) || n < READ_SIZE)
                return;
        } else if (n == 0) {
            peer_eof(s);
            return;
        } else if (errno != EINTR) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                lose_errno(s, errno, "read");
            return;
        }
    }
}

/* Writing ------------------------------------------------------------------------- */

/* Hands the kernel what it takes of the buffer. 0, or -1 when that lost the
 * connection. */
static int flush(tw_stream *s)
{
    struct iovec iov[SEND_IOVS];
    while (s->wbuf.size > 0) {
        int n = tw_write_buffer_iov(&s->wbuf, iov, SEND_IOVS);
        size_t asked = 0;
        for (int i = 0; i < n; i++)
            asked += iov[i].iov_len;
        ssize_t r = tw_send_iov(s->fd, iov, n);
        if (r == -EAGAIN || r == -EWOULDBLOCK)
            return 0;
        if (r < 0) {
            lose_errno(s, (int)-r, "send");
            return -1;
        }
        tw_write_buffer_consume(&s->wbuf, (size_t)r);
        if ((size_t)r < asked)
            return 0;                     /* the kernel is full */
    }
    return 0;
}

static void on_writable(struct ev_loop *l, ev_io *w, int revents)
{
    tw_stream *s = TW_CONTAINER_OF(w, tw_stream, wio);
    if (flush(s) < 0)
        return;
    if (s->wbuf.size == 0) {
        ev_io_stop(loop(), &s->wio);
        if (s->closing) {
            close_with(s, connection_done());
            return;
        }
        if (s->write_shut_wanted && !s->write_shut) {
            shut_write(s);
            call_write_connection_lost(s);
            if (is_closed(s))
                return;
        }
    }
    /* Last: resuming a producer may write again. */
    tw_transport_buffer_changed(&s->base, s->wbuf.size);
}

static int stream_writev(tw_transport *t, const struct iovec *iov, int n)
{
    tw_stream *s = (tw_stream *)t;
    if (is_closed(s) || s->closing || s->write_shut_wanted)
        return -ENOTCONN;
    if (n < 0 || (n > 0 && !iov))
        return -EINVAL;

    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (total == 0)
        return 0;

    size_t sent = 0;
    if (s->wbuf.size == 0) {
        ssize_t r = tw_send_iov(s->fd, iov, n < IOV_MAX ? n : IOV_MAX);
        if (r >= 0) {
            sent = (size_t)r;
        } else if (r != -EAGAIN && r != -EWOULDBLOCK) {
            /* The bytes are dropped; connection_lost tells the protocol. */
            lose_errno(s, (int)-r, "send");
            return 0;
        }
        if (sent == total)
            return 0;
    }
    tw_write_buffer_append(&s->wbuf, iov, n, sent);
    if (!ev_is_active(&s->wio))
        ev_io_start(loop(), &s->wio);
    tw_transport_buffer_changed(t, s->wbuf.size);
    return 0;
}

/* The rest of the vtable ------------------------------------------------------------- */

static void stream_lose_connection(tw_transport *t)
{
    tw_stream *s = (tw_stream *)t;
    if (is_closed(s) || s->closing)
        return;
    s->closing = true;
    update_reading(s);
    if (s->wbuf.size == 0)
        close_with(s, connection_done());
}

static void stream_abort_connection(tw_transport *t)
{
    close_with((tw_stream *)t, tw_failure_new(TW_ERR_CONNECTION_LOST, ECONNABORTED, NULL,
                                              "Connection was aborted"));
}

static void stream_lose_write_connection(tw_transport *t)
{
    tw_stream *s = (tw_stream *)t;
    if (is_closed(s) || s->closing || s->write_shut_wanted)
        return;
    s->write_shut_wanted = true;
    if (s->wbuf.size == 0) {
        shut_write(s);
        s->write_lost_due = true;
        schedule_later(s);
    }
}

static void stream_pause_reading(tw_transport *t)
{
    tw_stream *s = (tw_stream *)t;
    s->paused = true;
    update_reading(s);
}

static void stream_resume_reading(tw_transport *t)
{
    tw_stream *s = (tw_stream *)t;
    s->paused = false;
    update_reading(s);
}

static int copy_address(const struct sockaddr_storage *from, socklen_t from_len,
                        struct sockaddr_storage *addr, socklen_t *len)
{
    if (from_len == 0)
        return -ENOTCONN;
    memcpy(addr, from, from_len);
    *len = from_len;
    return 0;
}

static int stream_get_peer(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len)
{
    const tw_stream *s = (const tw_stream *)t;
    return copy_address(&s->peer, s->peer_len, addr, len);
}

/* Read from the socket when first asked for, which most connections never
 * are: one system call less per connection. */
static int stream_get_host(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len)
{
    tw_stream *s = (tw_stream *)t;
    if (s->host_len == 0 && s->fd >= 0) {
        socklen_t n = sizeof s->host;
        if (getsockname(s->fd, (struct sockaddr *)&s->host, &n) < 0)
            return -errno;
        s->host_len = n;
    }
    return copy_address(&s->host, s->host_len, addr, len);
}

static size_t stream_write_buffer_size(const tw_transport *t)
{
    return ((const tw_stream *)t)->wbuf.size;
}

static const struct tw_transport_vtable stream_vtable = {
    .writev = stream_writev,
    .lose_connection = stream_lose_connection,
    .abort_connection = stream_abort_connection,
    .lose_write_connection = stream_lose_write_connection,
    .pause_reading = stream_pause_reading,
    .resume_reading = stream_resume_reading,
    .get_peer = stream_get_peer,
    .get_host = stream_get_host,
    .write_buffer_size = stream_write_buffer_size,
};

/* Opening --------------------------------------------------------------------------- */

tw_transport *tw_stream_open(int fd, tw_factory *f, const struct sockaddr *peer,
                             socklen_t peer_len, bool client)
{
    tw_protocol *p = f->build_protocol(f, peer);
    if (!p) {
        close(fd);
        return NULL;
    }

    tw_stream *s = tw_xcalloc(1, sizeof *s);
    tw_transport_init(&s->base, &stream_vtable);
    s->fd = fd;
    ev_io_init(&s->rio, on_readable, fd, EV_READ);
    ev_io_init(&s->wio, on_writable, fd, EV_WRITE);
    ev_timer_init(&s->later, on_later, 0., 0.);
    s->client_factory = client ? f : NULL;
    if (peer_len > sizeof s->peer)
        peer_len = sizeof s->peer;
    memcpy(&s->peer, peer, peer_len);
    s->peer_len = peer_len;
    if (peer->sa_family == AF_INET || peer->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }

    p->factory = f;
    tw_transport_connect_protocol(&s->base, p);
    update_reading(s);
    return &s->base;
}

void tw_stream_set_lost_hook(tw_transport *t, tw_stream_lost_fn fn, void *arg)
{
    tw_stream *s = (tw_stream *)t;
    s->lost_hook = fn;
    s->lost_arg = arg;
}
