/* twine: the HTTP agent: requests, their connections, and the pool of idle
 * kept-alive connections (Twisted's Agent over HTTPConnectionPool).
 *
 * A request (an exchange) takes the idle connection returned last for its
 * scheme, host and port (and TLS settings), or connects anew. Connections
 * are grouped by that key in host entries, which live as long as one of
 * their connections does. Each idle connection has a timer; a host keeps at
 * most max_idle of them. */
#include "http_client_internal.h"

#include <errno.h>
#include <stdio.h>

#define DEFAULT_MAX_IDLE 2
#define DEFAULT_IDLE_TIMEOUT 240.0
#define DEFAULT_CONNECT_TIMEOUT 30.0
#define HOST_BUCKETS 64

struct tw_http_host {
    tw_http_host *next;               /* in its bucket */
    unsigned refs;                    /* its connections */
    unsigned hash;
    bool https;
    int port;
    int insecure;
    char *name;
    char *ca_file;
    tw_http_conn *idle_head, *idle_tail;  /* returned last first */
    size_t idle;
};

struct tw_http_agent {
    unsigned refs;                    /* the owner's, its connections' and exchanges' */
    bool closed;
    int max_idle;                     /* 0: none kept */
    double idle_timeout, connect_timeout;
    bool keep_alive;
    char *user_agent;
    char *ca_file;
    int insecure;
    tw_http_host *hosts[HOST_BUCKETS];
    size_t idle, nconns;
    tw_http_conn *conns;              /* every connection */
    tw_http_exchange *connecting;     /* exchanges waiting for a connection */
    tw_deferred *closed_d;            /* tw_http_agent_close's, until the last connection goes */
};

/* The agent ------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s ? tw_xstrdup(s) : NULL;
}

tw_http_agent *tw_http_agent_new(const tw_http_agent_options *opt)
{
    static const tw_http_agent_options defaults;
    if (!opt)
        opt = &defaults;
    tw_http_agent *a = tw_xcalloc(1, sizeof *a);
    a->refs = 1;
    a->max_idle = opt->max_idle_per_host == 0 ? DEFAULT_MAX_IDLE
                  : opt->max_idle_per_host < 0 ? 0 : opt->max_idle_per_host;
    a->idle_timeout = opt->idle_timeout > 0 ? opt->idle_timeout : DEFAULT_IDLE_TIMEOUT;
    a->connect_timeout = opt->connect_timeout > 0 ? opt->connect_timeout : DEFAULT_CONNECT_TIMEOUT;
    a->keep_alive = !opt->no_keep_alive;
    a->user_agent = tw_xstrdup(opt->user_agent ? opt->user_agent : "twine/" PACKAGE_VERSION);
    a->ca_file = dup_or_null(opt->ca_file);
    a->insecure = opt->insecure;
    return a;
}

tw_http_agent *tw_http_agent_ref(tw_http_agent *a)
{
    a->refs++;
    return a;
}

void tw_http_agent_unref(tw_http_agent *a)
{
    if (--a->refs > 0)
        return;
    tw_deferred_unref(a->closed_d);
    free(a->user_agent);
    free(a->ca_file);
    free(a);
}

size_t tw_http_agent_idle_count(const tw_http_agent *a)
{
    return a->idle;
}

/* Host entries ------------------------------------------------------------------------ */

static unsigned hash_key(const tw_http_exchange *x)
{
    unsigned h = 2166136261u;         /* FNV-1a */
    for (const char *s = x->url.host; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return (h ^ (unsigned)x->url.port) * 16777619u;
}

static bool same_string(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static bool host_matches(const tw_http_host *h, unsigned hash, const tw_http_exchange *x)
{
    return h->hash == hash && h->https == x->url.https && h->port == x->url.port &&
           h->insecure == x->insecure && !strcmp(h->name, x->url.host) &&
           same_string(h->ca_file, x->ca_file);
}

static tw_http_host *host_find(tw_http_agent *a, const tw_http_exchange *x, bool create)
{
    unsigned hash = hash_key(x);
    tw_http_host **bucket = &a->hosts[hash % HOST_BUCKETS];
    for (tw_http_host *h = *bucket; h; h = h->next)
        if (host_matches(h, hash, x))
            return h;
    if (!create)
        return NULL;
    tw_http_host *h = tw_xcalloc(1, sizeof *h);
    h->hash = hash;
    h->https = x->url.https;
    h->port = x->url.port;
    h->insecure = x->insecure;
    h->name = tw_xstrdup(x->url.host);
    h->ca_file = dup_or_null(x->ca_file);
    h->next = *bucket;
    *bucket = h;
    return h;
}

static void host_unref(tw_http_agent *a, tw_http_host *h)
{
    if (--h->refs > 0)
        return;
    tw_http_host **p = &a->hosts[h->hash % HOST_BUCKETS];
    while (*p != h)
        p = &(*p)->next;
    *p = h->next;
    free(h->name);
    free(h->ca_file);
    free(h);
}

/* The pool ------------------------------------------------------------------------------ */

static void idle_remove(tw_http_agent *a, tw_http_conn *c)
{
    tw_http_host *h = c->host;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        h->idle_head = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        h->idle_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    c->idle = false;
    h->idle--;
    a->idle--;
    if (c->idle_timer) {
        tw_delayed_call_cancel(c->idle_timer);
        c->idle_timer = NULL;
    }
}

static void idle_expired(void *arg)
{
    tw_http_conn *c = arg;
    c->idle_timer = NULL;
    idle_remove(c->agent, c);
    tw_http_conn_close(c);
}

void tw_http_agent_conn_reusable(tw_http_conn *c)
{
    tw_http_agent *a = c->agent;
    if (a->closed || !a->keep_alive || a->max_idle == 0) {
        tw_http_conn_close(c);
        return;
    }
    tw_http_host *h = c->host;
    c->idle = true;
    c->idle_prev = NULL;
    c->idle_next = h->idle_head;
    if (h->idle_head)
        h->idle_head->idle_prev = c;
    else
        h->idle_tail = c;
    h->idle_head = c;
    h->idle++;
    a->idle++;
    c->idle_timer = tw_call_later(a->idle_timeout, idle_expired, c);
    if (h->idle > (size_t)a->max_idle) {
        tw_http_conn *oldest = h->idle_tail;
        idle_remove(a, oldest);
        tw_http_conn_close(oldest);
    }
}

/* The idle connection returned last, skipping those already closing (the
 * server's end of stream was read, and the loop has yet to report it). */
static tw_http_conn *pool_take(tw_http_agent *a, const tw_http_exchange *x)
{
    tw_http_host *h = host_find(a, x, false);
    while (h && h->idle_head) {
        tw_http_conn *c = h->idle_head;
        idle_remove(a, c);
        if (!tw_transport_disconnecting(c->proto.transport))
            return c;
    }
    return NULL;
}

static void add_conn(tw_http_agent *a, tw_http_conn *c, const tw_http_exchange *x)
{
    c->agent = tw_http_agent_ref(a);
    c->host = host_find(a, x, true);
    c->host->refs++;
    c->prev = NULL;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->nconns++;
}

void tw_http_agent_conn_lost(tw_http_conn *c)
{
    tw_http_agent *a = c->agent;
    if (c->idle)
        idle_remove(a, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    host_unref(a, c->host);
    c->host = NULL;
    c->agent = NULL;
    if (--a->nconns == 0 && a->closed_d) {
        tw_deferred *d = a->closed_d;
        a->closed_d = NULL;
        tw_deferred_callback(d, NULL, NULL);
        tw_deferred_unref(d);
    }
    tw_http_agent_unref(a);
}

/* Exchanges ------------------------------------------------------------------------------ */

void tw_http_exchange_unref(void *arg)
{
    tw_http_exchange *x = arg;
    if (--x->refs > 0)
        return;
    free(x->strings);
    tw_url_clear(&x->url);
    free(x->ca_file);
    free(x->wire);
    free(x->reason);
    tw_http_headers_free(x->headers);
    tw_http_headers_free(x->trailers);
    tw_failure_unref(x->end);
    tw_failure_unref(x->later_failure);
    tw_http_agent_unref(x->agent);
    free(x);
}

static void response_dtor(void *r)
{
    tw_http_client_response_free(r);
}

void tw_http_exchange_fire(tw_http_exchange *x)
{
    tw_deferred *d = x->d;
    x->d = NULL;
    x->phase = TW_HTTP_BODY;
    free(x->wire);
    x->wire = NULL;
    /* The request's reference becomes the result's. */
    tw_deferred_callback(d, &x->pub, response_dtor);
    tw_deferred_unref(d);
}

static void fail(tw_http_exchange *x, tw_failure *f)
{
    tw_deferred *d = x->d;
    x->d = NULL;
    tw_deferred_errback(d, f);
    tw_deferred_unref(d);
    tw_http_exchange_unref(x);
}

static void unlink_connecting(tw_http_exchange *x)
{
    tw_http_agent *a = x->agent;
    if (x->prev)
        x->prev->next = x->next;
    else
        a->connecting = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    tw_deferred_unref(x->connecting);
    x->connecting = NULL;
}

static void on_connected(tw_result *r, void *arg)
{
    tw_http_exchange *x = arg;
    tw_protocol *p = r->value;
    if (!x->connecting) {             /* nobody waits for it any more */
        tw_transport_abort_connection(p->transport);
        return;
    }
    unlink_connecting(x);
    tw_http_conn *c = tw_http_conn_of(p);
    add_conn(x->agent, c, x);
    tw_http_conn_send(c, x);
}

static void on_connect_failed(tw_result *r, void *arg)
{
    tw_http_exchange *x = arg;
    tw_failure *f = tw_failure_ref(r->failure);
    tw_result_set_value(r, NULL, NULL);
    if (!x->connecting) {             /* our own cancellation */
        tw_failure_unref(f);
        return;
    }
    unlink_connecting(x);
    fail(x, f);
}

/* The one step that depends on the scheme. */
static tw_deferred *open_connection(const tw_http_exchange *x)
{
    if (!x->url.https)
        return tw_connect_tcp(x->url.host, x->url.port, &tw_http_conn_factory,
                              x->connect_timeout);
    tw_tls_options tls = { .ca_file = x->ca_file, .insecure = x->insecure };
    return tw_connect_tls(x->url.host, x->url.port, &tw_http_conn_factory, &tls,
                          x->connect_timeout);
}

static void connect_new(tw_http_exchange *x)
{
    tw_http_agent *a = x->agent;
    x->phase = TW_HTTP_WAITING;
    x->connecting = open_connection(x);
    x->prev = NULL;
    x->next = a->connecting;
    if (a->connecting)
        a->connecting->prev = x;
    a->connecting = x;
    x->refs++;                        /* the callbacks' */
    tw_deferred_add_callbacks_full(x->connecting, on_connected, on_connect_failed, x,
                                   tw_http_exchange_unref);
}

void tw_http_exchange_failed(tw_http_exchange *x, tw_failure *f, bool retry)
{
    if (retry && !x->agent->closed) {
        x->retried = true;
        tw_failure_unref(f);
        connect_new(x);
        return;
    }
    fail(x, f);
}

static void cancel_request(tw_deferred *d, void *arg)
{
    tw_http_exchange *x = arg;
    if (x->later) {
        tw_delayed_call_cancel(x->later);
        x->later = NULL;
    }
    if (x->connecting) {
        tw_deferred *cd = tw_deferred_ref(x->connecting);
        unlink_connecting(x);
        tw_deferred_cancel(cd);
        tw_deferred_unref(cd);
    }
    if (x->conn)
        tw_http_conn_cancel(x->conn);
    fail(x, tw_failure_new(TW_ERR_CANCELLED, ECANCELED, NULL, "request for %s cancelled",
                           x->pub.url));
}

static void fail_now(void *arg)
{
    tw_http_exchange *x = arg;
    tw_failure *f = x->later_failure;
    x->later = NULL;
    x->later_failure = NULL;
    fail(x, f);
}

/* Fails with f (taken) from the loop: the caller is still in the request call. */
static void fail_later(tw_http_exchange *x, tw_failure *f)
{
    x->later_failure = f;
    x->later = tw_call_later(0, fail_now, x);
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c)))
            return false;
    }
    return true;
}

static bool idempotent(const char *method)
{
    static const char *const methods[] = { "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE" };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(method, methods[i]))
            return true;
    return false;
}

/* Everything the request needs before it can go; NULL or why it cannot. */
static tw_failure *prepare(tw_http_exchange *x, const tw_http_headers *h, const void *body,
                           size_t len, const tw_http_request_options *o)
{
    tw_http_agent *a = x->agent;
    const char *method = x->pub.method, *url = x->pub.url;
    if (!is_token(method))
        return tw_failure_new(TW_ERR_USAGE, EINVAL, NULL, "invalid HTTP method \"%.64s\"", method);
    int err = tw_url_parse(&x->url, url);
    if (err == -EPROTONOSUPPORT)
        return tw_failure_new(TW_ERR_USAGE, EPROTONOSUPPORT, NULL,
                              "unsupported URL scheme in \"%.200s\"", url);
    if (err < 0)
        return tw_failure_new(TW_ERR_USAGE, EINVAL, NULL, "invalid URL \"%.200s\"", url);
    if (a->closed)
        return tw_failure_new(TW_ERR_CANCELLED, ECANCELED, NULL,
                              "request for %s cancelled: its agent was closed", url);

    x->head_method = !strcmp(method, "HEAD");
    x->idempotent = idempotent(method);
    /* A connection the request asks to close serves no other (RFC 9112 9.6). */
    x->closes = !a->keep_alive || tw_http_headers_has_token(h, "Connection", "close");
    x->connect_timeout = o && o->connect_timeout > 0 ? o->connect_timeout : a->connect_timeout;
    if (x->url.https) {
        bool own = o && (o->ca_file || o->insecure);
        x->ca_file = dup_or_null(own ? o->ca_file : a->ca_file);
        x->insecure = own ? o->insecure : a->insecure;
    }
    tw_http_request_spec spec = {
        .method = method,
        .url = &x->url,
        .headers = h,
        .user_agent = o && o->user_agent ? o->user_agent : a->user_agent,
        .accept_encoding = o && o->accept_encoding,
        .close = !a->keep_alive,          /* else the caller's Connection field stands */
        .body = body,
        .body_len = body ? len : 0,
    };
    x->wire = tw_http_request_build(&spec, &x->wire_len);
    return NULL;
}

tw_deferred *tw_http_agent_request_opts(tw_http_agent *a, const char *method, const char *url,
                                        const tw_http_headers *h, const void *body, size_t len,
                                        const tw_http_request_options *o)
{
    tw_http_exchange *x = tw_xcalloc(1, sizeof *x);
    x->refs = 1;
    x->agent = tw_http_agent_ref(a ? a : tw_http_default_agent());
    a = x->agent;
    if (!method)
        method = "";
    if (!url)
        url = "";
    size_t mlen = strlen(method) + 1, ulen = strlen(url) + 1;
    x->strings = tw_xmalloc(mlen + ulen);
    memcpy(x->strings, method, mlen);
    memcpy(x->strings + mlen, url, ulen);
    x->pub.method = x->strings;
    x->pub.url = x->strings + mlen;
    x->pub.reason = "";
    x->d = tw_deferred_new(cancel_request, x);
    tw_deferred *d = tw_deferred_ref(x->d);

    tw_failure *f = prepare(x, h, body, len, o);
    if (f) {
        fail_later(x, f);
        return d;
    }
    tw_http_conn *c = pool_take(a, x);
    if (c)
        tw_http_conn_send(c, x);
    else
        connect_new(x);
    return d;
}

tw_deferred *tw_http_agent_request(tw_http_agent *a, const char *method, const char *url,
                                   const tw_http_headers *h, const void *body, size_t len)
{
    return tw_http_agent_request_opts(a, method, url, h, body, len, NULL);
}

/* Closing ---------------------------------------------------------------------------------- */

static tw_http_agent *default_agent;
static int default_trigger;

tw_deferred *tw_http_agent_close(tw_http_agent *a)
{
    if (a == default_agent) {         /* the next use makes a new one */
        default_agent = NULL;
        tw_reactor_remove_system_event_trigger(default_trigger);
        default_trigger = 0;
    }
    a->closed = true;
    while (a->connecting)
        tw_deferred_cancel(a->connecting->d);
    for (tw_http_conn *c = a->conns; c; c = c->next) {
        if (c->idle) {
            idle_remove(a, c);
            tw_http_conn_close(c);
        } else if (c->x && c->x->phase == TW_HTTP_SENT) {
            tw_deferred_cancel(c->x->d);
        } else {
            tw_http_conn_abort(c);
        }
    }
    tw_deferred *d = tw_deferred_new(NULL, NULL);
    if (a->nconns > 0)
        a->closed_d = tw_deferred_ref(d);
    else
        tw_deferred_callback(d, NULL, NULL);
    tw_http_agent_unref(a);
    return d;
}

void tw_http_agent_free(tw_http_agent *a)
{
    if (a)
        tw_deferred_unref(tw_http_agent_close(a));
}

/* The default agent --------------------------------------------------------------------- */

static tw_deferred *close_default_agent(void *arg)
{
    return default_agent ? tw_http_agent_close(default_agent) : NULL;
}

tw_http_agent *tw_http_default_agent(void)
{
    if (!default_agent) {
        default_agent = tw_http_agent_new(NULL);
        default_trigger = tw_reactor_add_system_event_trigger(TW_SHUTDOWN_BEFORE,
                                                              close_default_agent, NULL);
    }
    return default_agent;
}
