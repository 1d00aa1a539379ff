/* twine: connectors, the attempts of tw_connect_tcp and tw_connect_unix.
 *
 * A connector resolves the host (unless it is an IP literal), tries each
 * address in turn with a non-blocking connect, and on success hands the
 * socket to a stream transport and fires its Deferred with the protocol. It
 * fails with the last address's error, on timeout, or when cancelled; every
 * outcome is delivered from the loop.
 *
 * A connect that completes at once (loopback handshakes do, inside the
 * connect call; UNIX sockets too) is seen by a zero-timeout poll() and
 * delivered by the zero-delay timer, without a write watcher: the socket's
 * first registration with the loop is then the stream's read watcher, which
 * saves two epoll_ctl calls a connection when the fd number is a reused one. */
#include "net_internal.h"

#include <errno.h>
#include <ev.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <twine/reactor.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 30.0

typedef struct connector {
    unsigned refs;                        /* the attempt, and the lookup's callbacks */
    tw_deferred *d;                       /* the attempt's; NULL once it has fired */
    tw_factory *f;
    char *target;                         /* "host:port" or the path, for messages */
    double timeout;
    tw_delayed_call *timer;               /* borrowed handle: cleared when it runs */
    tw_deferred *resolving;               /* the lookup in progress */
    tw_addresses *addrs;                  /* the addresses to try */
    size_t next;                          /* the next one to try */
    int fd;                               /* the attempt in progress, or -1 */
    ev_io io;
    ev_timer later;                       /* delivers an outcome known at once */
    tw_failure *error;                    /* the last attempt's failure */
    bool connected;                       /* the stream took over */
} connector;

static struct ev_loop *loop(void) { return tw_reactor_loop(); }

static void connector_unref(void *arg)
{
    connector *c = arg;
    if (--c->refs > 0)
        return;
    free(c->target);
    free(c->addrs);
    tw_failure_unref(c->error);
    free(c);
}

/* Stops whatever is in progress: the timer, the lookup, the socket. */
static void stop_attempt(connector *c)
{
    ev_timer_stop(loop(), &c->later);
    if (c->timer) {
        tw_delayed_call_cancel(c->timer);
        c->timer = NULL;
    }
    if (c->resolving) {
        tw_deferred *r = c->resolving;
        c->resolving = NULL;
        tw_deferred_cancel(r);
        tw_deferred_unref(r);
    }
    if (c->fd >= 0) {
        ev_io_stop(loop(), &c->io);
        close(c->fd);
        c->fd = -1;
    }
}

/* Ends the attempt with `why` (taken): the factory hears of it, then the
 * Deferred errbacks. */
static void fail(connector *c, tw_failure *why)
{
    tw_deferred *d = c->d;
    c->d = NULL;
    stop_attempt(c);
    if (c->f && c->f->connection_failed)
        c->f->connection_failed(c->f, why);
    tw_deferred_errback(d, why);
    tw_deferred_unref(d);
    connector_unref(c);
}

static void set_error(connector *c, tw_failure *why)
{
    tw_failure_unref(c->error);
    c->error = why;
}

static void connected(connector *c);

/* Delivers what start_connect or try_next learnt at once: the socket
 * connected (c->fd is set), or c->error. */
static void on_later(struct ev_loop *l, ev_timer *w, int revents)
{
    connector *c = TW_CONTAINER_OF(w, connector, later);
    if (c->fd >= 0) {
        connected(c);
        return;
    }
    tw_failure *why = c->error;
    c->error = NULL;
    fail(c, why);
}

/* Delivers the outcome from the loop: the caller may still be inside
 * tw_connect_tcp. */
static void deliver_later(connector *c)
{
    ev_timer_set(&c->later, 0., 0.);
    ev_timer_start(loop(), &c->later);
}

static void connected(connector *c)
{
    tw_deferred *d = c->d;
    struct sockaddr_storage peer = c->addrs->addrs[c->next - 1].addr;
    socklen_t peer_len = c->addrs->addrs[c->next - 1].len;
    int fd = c->fd;

    ev_io_stop(loop(), &c->io);
    c->fd = -1;
    c->connected = true;
    stop_attempt(c);
    tw_transport *t = tw_stream_open(fd, c->f, (struct sockaddr *)&peer, peer_len, true);
    if (!t) {
        c->connected = false;
        fail(c, tw_failure_new(TW_ERR_CONNECTION_DONE, 0, NULL,
                               "connection to %s refused by its factory", c->target));
        return;
    }
    c->d = NULL;
    tw_deferred_callback(d, tw_transport_protocol(t), NULL);
    tw_deferred_unref(d);
    connector_unref(c);
}

static void try_next(connector *c);

/* The pending error of a socket whose connect has ended. */
static int socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    return err;
}

static void on_connect_done(struct ev_loop *l, ev_io *w, int revents)
{
    connector *c = TW_CONTAINER_OF(w, connector, io);
    int err = socket_error(c->fd);
    if (err == 0) {
        connected(c);
        return;
    }
    ev_io_stop(loop(), &c->io);
    close(c->fd);
    c->fd = -1;
    set_error(c, tw_failure_new(TW_ERR_SYS, err, NULL, "connect to %s: %s", c->target,
                                strerror(err)));
    try_next(c);
}

/* Where a connect that returned EINPROGRESS stands: 1 connected, 0 still
 * in progress, or a negative errno. */
static int connect_state(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    if (poll(&pfd, 1, 0) != 1)
        return 0;
    if (pfd.revents & (POLLERR | POLLHUP)) {
        int err = socket_error(fd);
        return err ? -err : 0;
    }
    return (pfd.revents & POLLOUT) != 0;
}

/* Starts connecting to `a`: 1 if connected already (c->fd is the socket), 0
 * once in progress, or a negative errno. */
static int start_connect(connector *c, const tw_address *a)
{
    int fd = tw_socket(a->addr.ss_family, SOCK_STREAM);
    if (fd < 0)
        return fd;
    int state = 1;
    if (connect(fd, (const struct sockaddr *)&a->addr, a->len) < 0)
        state = errno == EINPROGRESS ? connect_state(fd) : -errno;
    if (state < 0) {
        close(fd);
        return state;
    }
    c->fd = fd;
    if (state == 0) {
        /* Still in progress: the outcome is read once it is writable. */
        ev_io_init(&c->io, on_connect_done, fd, EV_WRITE);
        ev_io_start(loop(), &c->io);
    }
    return state;
}

static void try_next(connector *c)
{
    while (c->next < c->addrs->n) {
        int err = start_connect(c, &c->addrs->addrs[c->next++]);
        if (err == 0)
            return;
        if (err == 1)
            break;                        /* connected: delivered from the loop */
        set_error(c, tw_failure_new(TW_ERR_SYS, -err, NULL, "connect to %s: %s", c->target,
                                    strerror(-err)));
    }
    deliver_later(c);
}

/* Resolving ------------------------------------------------------------------------------ */

static void on_resolved(tw_result *r, void *arg)
{
    connector *c = arg;
    if (!c->resolving)
        return;                           /* abandoned */
    tw_deferred_unref(c->resolving);
    c->resolving = NULL;
    c->addrs = tw_result_steal(r);
    try_next(c);
}

static void on_resolve_failed(tw_result *r, void *arg)
{
    connector *c = arg;
    tw_failure *why = tw_failure_ref(r->failure);
    tw_result_set_value(r, NULL, NULL);   /* handled here */
    if (!c->resolving) {
        tw_failure_unref(why);            /* abandoned: the cancel is ours */
        return;
    }
    tw_deferred_unref(c->resolving);
    c->resolving = NULL;
    fail(c, why);
}

/* Timeout and cancel ----------------------------------------------------------------------- */

static void on_timeout(void *arg)
{
    connector *c = arg;
    c->timer = NULL;
    fail(c, tw_failure_new(TW_ERR_TIMEOUT, ETIMEDOUT, NULL,
                           "connection to %s timed out after %g seconds", c->target, c->timeout));
}

static void on_cancel(tw_deferred *d, void *arg)
{
    connector *c = arg;
    /* Cancelled from connection_made: the connection stands and the
     * Deferred fires with it. Cancelled from connection_failed: the
     * failure under way stands. */
    if (c->connected || !c->d)
        return;
    fail(c, tw_failure_new(TW_ERR_CANCELLED, ECANCELED, NULL,
                           "connection to %s cancelled", c->target));
}

/* Starting ----------------------------------------------------------------------------------- */

static connector *connector_new(tw_factory *f, const char *target, double timeout,
                                tw_deferred **out)
{
    connector *c = tw_xcalloc(1, sizeof *c);
    c->refs = 1;
    c->f = f;
    c->target = tw_xstrdup(target);
    c->timeout = timeout > 0 ? timeout : DEFAULT_TIMEOUT;
    c->fd = -1;
    ev_timer_init(&c->later, on_later, 0., 0.);
    c->d = tw_deferred_new(on_cancel, c);
    /* The canceller fires the Deferred itself, or leaves it to the connection. */
    tw_deferred_set_canceller_fires(c->d);
    *out = tw_deferred_ref(c->d);
    if (!f || !f->build_protocol) {
        set_error(c, tw_failure_new(TW_ERR_USAGE, EINVAL, NULL,
                                    "connect to %s: no factory to build a protocol", target));
        deliver_later(c);
        return NULL;
    }
    c->timer = tw_call_later(c->timeout, on_timeout, c);
    return c;
}

static void connect_addresses(connector *c, const struct sockaddr_storage *addr, socklen_t len)
{
    c->addrs = tw_xmalloc(sizeof *c->addrs + sizeof c->addrs->addrs[0]);
    c->addrs->n = 1;
    c->addrs->addrs[0].addr = *addr;
    c->addrs->addrs[0].len = len;
    try_next(c);
}

tw_deferred *tw_connect_tcp(const char *host, int port, tw_factory *f, double timeout)
{
    char target[300];
    snprintf(target, sizeof target, "%s:%d", host ? host : "(null)", port);
    tw_deferred *d;
    connector *c = connector_new(f, target, timeout, &d);
    if (!c)
        return d;
    if (!host || !*host || port <= 0 || port > 65535) {
        set_error(c, tw_failure_new(TW_ERR_USAGE, EINVAL, NULL, "connect to %s: bad address",
                                    target));
        deliver_later(c);
        return d;
    }

    struct sockaddr_storage addr;
    socklen_t len;
    if (tw_parse_ip(host, port, &addr, &len) == 0) {
        connect_addresses(c, &addr, len);
        return d;
    }
    /* c->resolving is c's reference; the callbacks hold c. */
    tw_deferred *r = tw_resolve(host, port, AF_UNSPEC);
    c->resolving = r;
    c->refs++;
    tw_deferred_add_callbacks_full(r, on_resolved, on_resolve_failed, c, connector_unref);
    return d;
}

tw_deferred *tw_connect_unix(const char *path, tw_factory *f, double timeout)
{
    tw_deferred *d;
    connector *c = connector_new(f, path ? path : "(null)", timeout, &d);
    if (!c)
        return d;
    struct sockaddr_storage addr;
    socklen_t len;
    int err = path ? tw_unix_address(path, &addr, &len) : -EINVAL;
    if (err < 0) {
        set_error(c, tw_failure_new(TW_ERR_SYS, -err, NULL, "connect to %s: %s", c->target,
                                    strerror(-err)));
        deliver_later(c);
        return d;
    }
    connect_addresses(c, &addr, len);
    return d;
}
