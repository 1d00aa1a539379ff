/* twine: listening ports (TCP and UNIX-domain) and their accept loop. */
#include "net_internal.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>
#include <twine/reactor.h>
#include <unistd.h>

enum {
    DEFAULT_BACKLOG = 511,
    ACCEPTS_PER_WAKEUP = 64,              /* then other watchers get their turn */
};

/* After running out of descriptors (or memory), how long to stop accepting
 * rather than spin on a socket that stays readable. */
#define ACCEPT_PAUSE 0.1

struct tw_port {
    int fd;                               /* -1 once closed */
    ev_io io;
    ev_timer retry;                       /* accepting again after ACCEPT_PAUSE */
    ev_timer later;                       /* fires `stopped` from the loop */
    tw_factory *factory;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *unix_path;                      /* removed when the port closes */
    tw_deferred *stopped;                 /* set by tw_port_stop_listening */
    void (*free_hook)(void *arg);         /* tw_port_set_free_hook */
    void *free_arg;
};

static struct ev_loop *loop(void) { return tw_reactor_loop(); }

static int accept_nonblock(int fd, struct sockaddr_storage *peer, socklen_t *len)
{
#ifdef SOCK_NONBLOCK
    return accept4(fd, (struct sockaddr *)peer, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int c = accept(fd, (struct sockaddr *)peer, len);
    if (c >= 0) {
        fcntl(c, F_SETFD, FD_CLOEXEC);
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
    }
    return c;
#endif
}

static void pause_accepting(tw_port *p, int err)
{
    char where[128];
    tw_log(TW_LOG_WARN, "could not accept a connection on %s: %s; pausing for %g s",
           tw_format_address((struct sockaddr *)&p->addr, p->addr_len, where, sizeof where),
           strerror(err), ACCEPT_PAUSE);
    ev_io_stop(loop(), &p->io);
    ev_timer_set(&p->retry, ACCEPT_PAUSE, 0.);
    ev_timer_start(loop(), &p->retry);
}

static void on_retry(struct ev_loop *l, ev_timer *w, int revents)
{
    tw_port *p = TW_CONTAINER_OF(w, tw_port, retry);
    ev_io_start(loop(), &p->io);
}

static void on_acceptable(struct ev_loop *l, ev_io *w, int revents)
{
    tw_port *p = TW_CONTAINER_OF(w, tw_port, io);
    /* A protocol's connection_made may stop the port: check between accepts. */
    for (int i = 0; i < ACCEPTS_PER_WAKEUP && ev_is_active(&p->io); i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept_nonblock(p->fd, &peer, &len);
        if (fd >= 0) {
            tw_stream_open(fd, p->factory, (struct sockaddr *)&peer, len, false);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        case EINTR:
        case ECONNABORTED:                /* the peer gave up while queued */
        case EPROTO:
            continue;
        default:                          /* EMFILE, ENFILE, ENOBUFS, ENOMEM... */
            pause_accepting(p, errno);
            return;
        }
    }
}

static void on_later(struct ev_loop *l, ev_timer *w, int revents)
{
    tw_port *p = TW_CONTAINER_OF(w, tw_port, later);
    tw_deferred *d = p->stopped;
    if (p->free_hook)
        p->free_hook(p->free_arg);
    free(p->unix_path);
    free(p);
    tw_deferred_callback(d, NULL, NULL);
    tw_deferred_unref(d);
}

/* Binding ------------------------------------------------------------------------- */

static void set_err(int *err, int code)
{
    if (err)
        *err = code;
}

/* v6only: -1 leaves the system's default. */
static tw_port *listen_on(const struct sockaddr_storage *addr, socklen_t len, int backlog,
                          int v6only, tw_factory *f, int *err)
{
    int fd = tw_socket(addr->ss_family, SOCK_STREAM);
    if (fd < 0) {
        set_err(err, fd);
        return NULL;
    }
    int one = 1;
    if (addr->ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->ss_family == AF_INET6 && v6only >= 0)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, backlog) < 0) {
        set_err(err, -errno);
        close(fd);
        return NULL;
    }

    tw_port *p = tw_xcalloc(1, sizeof *p);
    p->fd = fd;
    p->factory = f;
    p->addr_len = sizeof p->addr;
    if (getsockname(fd, (struct sockaddr *)&p->addr, &p->addr_len) < 0) {
        memcpy(&p->addr, addr, len);
        p->addr_len = len;
    }
    ev_io_init(&p->io, on_acceptable, fd, EV_READ);
    ev_timer_init(&p->retry, on_retry, 0., 0.);
    ev_timer_init(&p->later, on_later, 0., 0.);
    ev_io_start(loop(), &p->io);
    return p;
}

tw_port *tw_listen_tcp_opts(const char *interface, int port, tw_factory *f,
                           const tw_listen_options *opt, int *err)
{
    if (!f || !f->build_protocol || port < 0 || port > 65535) {
        set_err(err, -EINVAL);
        return NULL;
    }
    int backlog = opt && opt->backlog > 0 ? opt->backlog : DEFAULT_BACKLOG;
    int v6only = opt && opt->ipv6_only ? 1 : 0;
    struct sockaddr_storage addr;
    socklen_t len;

    if (interface && *interface) {
        if (tw_parse_ip(interface, port, &addr, &len) < 0) {
            set_err(err, -EINVAL);
            return NULL;
        }
        return listen_on(&addr, len, backlog, v6only, f, err);
    }
    /* Every address: IPv6 and IPv4 on one socket, or IPv4 alone on a
     * system without IPv6. */
    tw_parse_ip("::", port, &addr, &len);
    int e = 0;
    tw_port *p = listen_on(&addr, len, backlog, v6only, f, &e);
    if (p || (e != -EAFNOSUPPORT && e != -EPROTONOSUPPORT && e != -EADDRNOTAVAIL)) {
        if (!p)
            set_err(err, e);
        return p;
    }
    tw_parse_ip("0.0.0.0", port, &addr, &len);
    return listen_on(&addr, len, backlog, -1, f, err);
}

tw_port *tw_listen_tcp(const char *interface, int port, tw_factory *f, int *err)
{
    return tw_listen_tcp_opts(interface, port, f, NULL, err);
}

tw_port *tw_listen_unix(const char *path, tw_factory *f, int *err)
{
    struct sockaddr_storage addr;
    socklen_t len;
    if (!f || !f->build_protocol || !path) {
        set_err(err, -EINVAL);
        return NULL;
    }
    int e = tw_unix_address(path, &addr, &len);
    if (e < 0) {
        set_err(err, e);
        return NULL;
    }
    /* A socket file left by an earlier listener would make bind fail. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    tw_port *p = listen_on(&addr, len, DEFAULT_BACKLOG, -1, f, err);
    if (p)
        p->unix_path = tw_xstrdup(path);
    return p;
}

/* Queries and stopping ------------------------------------------------------------ */

int tw_port_number(const tw_port *p)
{
    if (p->addr.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&p->addr)->sin_port);
    if (p->addr.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&p->addr)->sin6_port);
    return -1;
}

int tw_port_get_host(const tw_port *p, struct sockaddr_storage *addr, socklen_t *len)
{
    memcpy(addr, &p->addr, p->addr_len);
    *len = p->addr_len;
    return 0;
}

void tw_port_set_free_hook(tw_port *p, void (*fn)(void *), void *arg)
{
    p->free_hook = fn;
    p->free_arg = arg;
}

tw_deferred *tw_port_stop_listening(tw_port *p)
{
    if (p->stopped)
        return tw_deferred_ref(p->stopped);
    p->stopped = tw_deferred_new(NULL, NULL);
    ev_io_stop(loop(), &p->io);
    ev_timer_stop(loop(), &p->retry);
    close(p->fd);
    p->fd = -1;
    if (p->unix_path)
        unlink(p->unix_path);
    ev_timer_start(loop(), &p->later);
    return tw_deferred_ref(p->stopped);
}
