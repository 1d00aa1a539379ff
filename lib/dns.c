/* twine: the resolver. c-ares does the lookups, the reactor's loop drives it.
 *
 * A channel (one c-ares channel with its watchers) is opened on the first
 * lookup and closed as soon as it has no lookup left, so an idle process
 * holds no resolver state. New lookups go to the current channel; changing a
 * setting retires it, and a retired channel lives on until its own lookups
 * are done. c-ares tells which sockets to watch through its socket-state
 * callback (one ev_io each); one ev_timer, re-armed from ares_timeout() after
 * every call into c-ares, drives its retries and timeouts.
 *
 * c-ares calls back from inside ares_process_fd, and a Deferred fired there
 * may start lookups or change settings; so a channel is never destroyed while
 * a call into it is on the stack (`busy`), only once that call has returned.
 * An outcome known before tw_resolve returns (an IP literal, a name found in
 * /etc/hosts, a bad argument) is fired from the loop with a zero-delay call. */
#include "internal.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <ev.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <twine/reactor.h>

_Static_assert(TW_DNS_ENODATA == ARES_ENODATA && TW_DNS_ESERVFAIL == ARES_ESERVFAIL
               && TW_DNS_ENOTFOUND == ARES_ENOTFOUND && TW_DNS_EREFUSED == ARES_EREFUSED
               && TW_DNS_EBADNAME == ARES_EBADNAME && TW_DNS_EBADFAMILY == ARES_EBADFAMILY
               && TW_DNS_ECONNREFUSED == ARES_ECONNREFUSED && TW_DNS_ETIMEOUT == ARES_ETIMEOUT
               && TW_DNS_EDESTRUCTION == ARES_EDESTRUCTION,
               "TW_DNS_* are c-ares statuses");

struct sock_watch {
    ev_io io;                   /* first: the watcher is the sock_watch */
    struct channel *ch;
    struct sock_watch *next;
};

struct channel {
    ares_channel ares;
    ev_timer timer;
    struct sock_watch *socks;
    size_t pending;             /* lookups c-ares has not called back yet */
    unsigned busy;              /* calls into c-ares on the stack */
    bool closing;               /* destroy even with lookups pending */
    struct channel *next;       /* every open channel */
};

struct lookup {
    tw_deferred *d;             /* the lookup's reference; NULL once cancelled */
    char *host;
    int port;
    struct channel *ch;         /* set until c-ares calls back */
    bool starting;              /* inside ares_getaddrinfo */
    tw_delayed_call *later;     /* set while a known outcome waits for the loop */
    tw_addresses *result;       /* the outcome, until it is fired */
    tw_failure *failure;
};

static struct {
    char *servers;              /* NULL: /etc/resolv.conf */
    int timeout_ms, tries;      /* 0: c-ares' defaults */
    struct channel *current;    /* where new lookups go */
    struct channel *open;
    bool initialised;
} dns;

/* Outcomes ------------------------------------------------------------------ */

static tw_failure *lookup_failure(const char *host, int status)
{
    if (status == ARES_ETIMEOUT)
        return tw_failure_new(TW_ERR_DNS, status, NULL, "lookup of %s timed out", host);
    return tw_failure_new(TW_ERR_DNS, status, NULL, "lookup of %s failed: %s", host,
                          ares_strerror(status));
}

static tw_addresses *addresses_new(size_t n)
{
    tw_addresses *a = tw_xcalloc(1, sizeof *a + n * sizeof a->addrs[0]);
    a->n = n;
    return a;
}

static void address_set(tw_address *a, const struct sockaddr *sa, socklen_t len, int port)
{
    memcpy(&a->addr, sa, len);
    a->len = len;
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)&a->addr)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&a->addr)->sin6_port = htons((uint16_t)port);
}

static bool usable(const struct ares_addrinfo_node *n)
{
    return (n->ai_family == AF_INET && n->ai_addrlen >= sizeof(struct sockaddr_in))
        || (n->ai_family == AF_INET6 && n->ai_addrlen >= sizeof(struct sockaddr_in6));
}

/* The addresses of res in c-ares' order, or NULL when it has none. */
static tw_addresses *addresses_from(const struct ares_addrinfo *res, int port)
{
    size_t n = 0;
    for (const struct ares_addrinfo_node *i = res ? res->nodes : NULL; i; i = i->ai_next)
        n += usable(i);
    if (n == 0)
        return NULL;
    tw_addresses *a = addresses_new(n);
    n = 0;
    for (const struct ares_addrinfo_node *i = res->nodes; i; i = i->ai_next) {
        if (!usable(i))
            continue;
        socklen_t len = i->ai_family == AF_INET ? sizeof(struct sockaddr_in)
                                                : sizeof(struct sockaddr_in6);
        address_set(&a->addrs[n++], i->ai_addr, len, port);
    }
    return a;
}

/* Resolves an IP literal into lk->result (or lk->failure when it is of the
 * other family). Returns false when host is no literal. */
static bool resolve_literal(struct lookup *lk, const char *host, int family)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
    const struct sockaddr *sa;
    socklen_t len;
    if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
        sa = (const struct sockaddr *)&sin;
        len = sizeof sin;
    } else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
        sa = (const struct sockaddr *)&sin6;
        len = sizeof sin6;
    } else {
        return false;
    }
    if (family != AF_UNSPEC && family != sa->sa_family) {
        lk->failure = lookup_failure(host, ARES_ENOTFOUND);
        return true;
    }
    lk->result = addresses_new(1);
    address_set(&lk->result->addrs[0], sa, len, lk->port);
    return true;
}

/* Lookups ------------------------------------------------------------------- */

static void lookup_free(struct lookup *lk)
{
    free(lk->host);
    free(lk->result);
    tw_failure_unref(lk->failure);
    free(lk);
}

/* Fires lk's Deferred with its outcome and frees lk. */
static void lookup_fire(struct lookup *lk)
{
    tw_deferred *d = lk->d;
    tw_addresses *result = lk->result;
    tw_failure *failure = lk->failure;
    lk->result = NULL;
    lk->failure = NULL;
    lookup_free(lk);
    if (result)
        tw_deferred_callback(d, result, free);
    else
        tw_deferred_errback(d, failure);
    tw_deferred_unref(d);
}

static void on_later(void *arg)
{
    lookup_fire(arg);
}

static void fire_from_loop(struct lookup *lk)
{
    lk->later = tw_call_later(0, on_later, lk);
}

/* The canceller: the Deferred errbacks CANCELLED right after it returns. A
 * lookup c-ares still works on cannot be taken back (ares_cancel would cancel
 * them all), so it is only abandoned, and freed when c-ares calls back. */
static void lookup_cancel(tw_deferred *d, void *arg)
{
    struct lookup *lk = arg;
    tw_deferred_unref(lk->d);
    lk->d = NULL;
    if (lk->later) {
        tw_delayed_call_cancel(lk->later);
        lookup_free(lk);
    }
}

static void on_lookup_done(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct lookup *lk = arg;
    lk->ch->pending--;
    lk->ch = NULL;
    if (!lk->d) {
        ares_freeaddrinfo(res);
        lookup_free(lk);
        return;
    }
    if (status == ARES_SUCCESS) {
        lk->result = addresses_from(res, lk->port);
        if (!lk->result)
            status = ARES_ENODATA;
    }
    ares_freeaddrinfo(res);
    if (status != ARES_SUCCESS)
        lk->failure = lookup_failure(lk->host, status);
    if (!lk->starting)
        lookup_fire(lk);        /* tw_resolve fires the others from the loop */
}

/* Channels ------------------------------------------------------------------ */

static void channel_destroy(struct channel *ch)
{
    if (dns.current == ch)
        dns.current = NULL;
    for (struct channel **link = &dns.open; *link; link = &(*link)->next) {
        if (*link == ch) {
            *link = ch->next;
            break;
        }
    }
    ch->busy++;                 /* pending lookups are called back from in here */
    ares_destroy(ch->ares);
    ev_timer_stop(tw_reactor_loop(), &ch->timer);
    while (ch->socks) {
        struct sock_watch *w = ch->socks;
        ch->socks = w->next;
        ev_io_stop(tw_reactor_loop(), &w->io);
        free(w);
    }
    free(ch);
}

/* After a call into c-ares has returned: closes the channel if it is done,
 * or re-arms its timer for c-ares' next deadline. */
static void channel_settle(struct channel *ch)
{
    if (ch->busy)
        return;                 /* the outermost call settles */
    if (ch->pending == 0 || ch->closing) {
        channel_destroy(ch);
        return;
    }
    struct timeval tv;
    ev_timer_stop(tw_reactor_loop(), &ch->timer);
    if (ares_timeout(ch->ares, NULL, &tv)) {
        ev_timer_set(&ch->timer, (double)tv.tv_sec + tv.tv_usec / 1e6, 0.);
        ev_timer_start(tw_reactor_loop(), &ch->timer);
    }
}

static void channel_process(struct channel *ch, ares_socket_t rfd, ares_socket_t wfd)
{
    ch->busy++;
    ares_process_fd(ch->ares, rfd, wfd);
    ch->busy--;
    channel_settle(ch);
}

static void on_sock_ready(struct ev_loop *l, ev_io *io, int revents)
{
    /* c-ares may close the socket and free this watcher while it processes. */
    struct channel *ch = ((struct sock_watch *)io)->ch;
    ares_socket_t fd = io->fd;
    channel_process(ch, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
}

static void on_timer(struct ev_loop *l, ev_timer *t, int revents)
{
    channel_process(t->data, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

/* c-ares' socket-state callback: watch fd for what it asks, or no more. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct channel *ch = data;
    struct sock_watch **link = &ch->socks;
    while (*link && (*link)->io.fd != fd)
        link = &(*link)->next;
    struct sock_watch *w = *link;
    if (!readable && !writable) {
        if (w) {
            ev_io_stop(tw_reactor_loop(), &w->io);
            *link = w->next;
            free(w);
        }
        return;
    }
    if (w) {
        ev_io_stop(tw_reactor_loop(), &w->io);
    } else {
        w = tw_xcalloc(1, sizeof *w);
        w->ch = ch;
        w->next = ch->socks;
        ch->socks = w;
        ev_init(&w->io, on_sock_ready);
    }
    ev_io_set(&w->io, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    ev_io_start(tw_reactor_loop(), &w->io);
}

/* Opens a c-ares channel with the current settings; with ch, reporting its
 * sockets to ch. Returns an ares status. */
static int ares_open(ares_channel *out, const char *servers, struct channel *ch)
{
    struct ares_options o;
    memset(&o, 0, sizeof o);
    int mask = ARES_OPT_LOOKUPS;
    o.lookups = (char *)"fb";   /* /etc/hosts, then DNS */
    if (ch) {
        o.sock_state_cb = on_sock_state;
        o.sock_state_cb_data = ch;
        mask |= ARES_OPT_SOCK_STATE_CB;
    }
    if (dns.timeout_ms) {
        o.timeout = dns.timeout_ms;
        mask |= ARES_OPT_TIMEOUTMS;
    }
    if (dns.tries) {
        o.tries = dns.tries;
        mask |= ARES_OPT_TRIES;
    }
    int status = ares_init_options(out, &o, mask);
    if (status != ARES_SUCCESS)
        return status;
    if (servers && (status = ares_set_servers_ports_csv(*out, servers)) != ARES_SUCCESS)
        ares_destroy(*out);
    return status;
}

/* Shutdown closes every channel: lookups still pending fail. */
static void on_shutdown(void *arg)
{
    for (;;) {
        struct channel *ch = dns.open;
        while (ch && ch->closing)
            ch = ch->next;
        if (!ch)
            return;
        ch->closing = true;
        if (dns.current == ch)
            dns.current = NULL;
        channel_settle(ch);
    }
}

static int library_init(void)
{
    if (dns.initialised)
        return ARES_SUCCESS;
    int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status == ARES_SUCCESS) {
        tw_reactor_add_shutdown_trigger(on_shutdown, NULL);
        dns.initialised = true;
    }
    return status;
}

/* The channel new lookups go to, opened if need be; NULL and *status when
 * c-ares cannot open one. */
static struct channel *current_channel(int *status)
{
    if (dns.current)
        return dns.current;
    if ((*status = library_init()) != ARES_SUCCESS)
        return NULL;
    struct channel *ch = tw_xcalloc(1, sizeof *ch);
    if ((*status = ares_open(&ch->ares, dns.servers, ch)) != ARES_SUCCESS) {
        free(ch);
        return NULL;
    }
    ev_init(&ch->timer, on_timer);
    ch->timer.data = ch;
    ch->next = dns.open;
    dns.open = ch;
    dns.current = ch;
    return ch;
}

/* Settings apply to lookups started from now on: the channel in use drains. */
static void retire_current(void)
{
    struct channel *ch = dns.current;
    dns.current = NULL;
    if (ch)
        channel_settle(ch);
}

/* The API ------------------------------------------------------------------- */

/* Starts lk on c-ares. Returns false when the outcome is already known. */
static bool start_lookup(struct lookup *lk, int family)
{
    int status;
    struct channel *ch = current_channel(&status);
    if (!ch) {
        lk->failure = lookup_failure(lk->host, status);
        return false;
    }
    struct ares_addrinfo_hints hints = { .ai_family = family };
    ch->pending++;
    ch->busy++;
    lk->ch = ch;
    lk->starting = true;
    ares_getaddrinfo(ch->ares, lk->host, NULL, &hints, on_lookup_done, lk);
    lk->starting = false;
    ch->busy--;
    bool waiting = lk->ch != NULL;
    channel_settle(ch);
    return waiting;
}

tw_deferred *tw_resolve(const char *host, int port, int family)
{
    struct lookup *lk = tw_xcalloc(1, sizeof *lk);
    tw_deferred *d = tw_deferred_new(lookup_cancel, lk);
    lk->d = tw_deferred_ref(d);
    lk->host = tw_xstrdup(host ? host : "(null)");
    lk->port = port;
    if (!host || port < 0 || port > 65535)
        lk->failure = tw_failure_new(TW_ERR_USAGE, EINVAL, NULL,
                                     "tw_resolve: no host, or port %d out of range", port);
    else if (family != AF_INET && family != AF_INET6 && family != AF_UNSPEC)
        lk->failure = lookup_failure(host, ARES_EBADFAMILY);
    else if (!resolve_literal(lk, host, family) && start_lookup(lk, family))
        return d;
    fire_from_loop(lk);
    return d;
}

int tw_dns_set_servers(const char *servers)
{
    if (servers) {
        if (!*servers)
            return -EINVAL;
        ares_channel probe;         /* the servers must be ones c-ares accepts */
        int status = library_init();
        if (status == ARES_SUCCESS)
            status = ares_open(&probe, servers, NULL);
        if (status != ARES_SUCCESS)
            return status == ARES_ENOMEM ? -ENOMEM : -EINVAL;
        ares_destroy(probe);
    }
    free(dns.servers);
    dns.servers = servers ? tw_xstrdup(servers) : NULL;
    retire_current();
    return 0;
}

int tw_dns_set_timeout(double timeout, int tries)
{
    if (!(timeout >= 0 && timeout <= INT_MAX / 1000.0) || tries < 0)
        return -EINVAL;
    dns.timeout_ms = (int)ceil(timeout * 1000);
    dns.tries = tries;
    retire_current();
    return 0;
}
