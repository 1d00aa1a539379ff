/* twine: TLS connectors, the attempts of tw_connect_tls.
 *
 * An attempt connects with tw_connect_tcp, whose factory puts a TLS layer on
 * the connection, and fires once that layer's handshake has settled. Its own
 * timer covers the whole attempt; every outcome is delivered from the loop. */
#include "tls_internal.h"

#include <errno.h>
#include <stdio.h>

#define DEFAULT_TIMEOUT 30.0

typedef struct connector {
    unsigned refs;                        /* the attempt, the TCP callbacks, the TLS layer */
    tw_deferred *d;                       /* the caller's; NULL once it has fired */
    tw_deferred *tcp;                     /* the TCP attempt, until it fires */
    tw_factory tcp_factory;               /* puts the TLS layer on the TCP connection */
    tw_factory *f;
    SSL_CTX *ctx;
    char *name;                           /* verified and sent as SNI */
    char *target;                         /* "host:port", for messages */
    double timeout;
    tw_delayed_call *timer;               /* the timeout, or an early failure's delivery */
    tw_failure *early;                    /* a failure known at once */
    tw_tls *tls;                          /* the handshake under way */
} connector;

static void connector_unref(void *arg)
{
    connector *c = arg;
    if (--c->refs > 0)
        return;
    SSL_CTX_free(c->ctx);
    tw_failure_unref(c->early);
    free(c->name);
    free(c->target);
    free(c);
}

/* Ends the attempt with `why` (taken): whatever is under way stops, the
 * factory hears of it, then the Deferred errbacks. */
static void fail(connector *c, tw_failure *why)
{
    tw_deferred *d = c->d;
    c->d = NULL;
    if (c->timer) {
        tw_delayed_call_cancel(c->timer);
        c->timer = NULL;
    }
    if (c->tcp) {
        tw_deferred *tcp = c->tcp;
        c->tcp = NULL;
        tw_deferred_cancel(tcp);
        tw_deferred_unref(tcp);
    }
    if (c->tls) {
        tw_tls *t = c->tls;
        c->tls = NULL;
        tw_tls_abandon(t);
    }
    if (c->f && c->f->connection_failed)
        c->f->connection_failed(c->f, why);
    tw_deferred_errback(d, why);
    tw_deferred_unref(d);
    connector_unref(c);
}

/* The TLS layer ---------------------------------------------------------------------------- */

static void on_settled(void *arg, tw_protocol *p, tw_failure *why)
{
    connector *c = arg;
    c->tls = NULL;
    if (why) {
        fail(c, tw_failure_ref(why));
        return;
    }
    tw_deferred *d = c->d;
    c->d = NULL;
    if (c->timer) {
        tw_delayed_call_cancel(c->timer);
        c->timer = NULL;
    }
    tw_deferred_callback(d, p, NULL);
    tw_deferred_unref(d);
    connector_unref(c);
}

static const tw_tls_hooks hooks = {
    .settled = on_settled,
    .released = connector_unref,
};

static tw_protocol *build_layer(tw_factory *f, const struct sockaddr *peer)
{
    connector *c = TW_CONTAINER_OF(f, connector, tcp_factory);
    c->tls = tw_tls_new(c->ctx, true, c->name, c->target, c->f, &hooks, c);
    c->refs++;
    return tw_tls_tcp_protocol(c->tls);
}

/* The TCP attempt ------------------------------------------------------------------------------ */

static void on_tcp_connected(tw_result *r, void *arg)
{
    connector *c = arg;
    if (!c->tcp)
        return;                           /* the attempt failed meanwhile */
    tw_deferred_unref(c->tcp);
    c->tcp = NULL;
}

static void on_tcp_failed(tw_result *r, void *arg)
{
    connector *c = arg;
    tw_failure *why = tw_failure_ref(r->failure);
    tw_result_set_value(r, NULL, NULL);   /* handled here */
    if (!c->tcp) {
        tw_failure_unref(why);            /* abandoned: the cancel is ours */
        return;
    }
    tw_deferred_unref(c->tcp);
    c->tcp = NULL;
    fail(c, why);
}

/* Timeout, cancel, early failures ---------------------------------------------------------------- */

static void on_timeout(void *arg)
{
    connector *c = arg;
    c->timer = NULL;
    fail(c, tw_failure_new(TW_ERR_TIMEOUT, ETIMEDOUT, NULL,
                           "TLS connection to %s timed out after %g seconds", c->target,
                           c->timeout));
}

static void on_early(void *arg)
{
    connector *c = arg;
    tw_failure *why = c->early;
    c->timer = NULL;
    c->early = NULL;
    fail(c, why);
}

/* Delivers `why` (taken) from the loop: the caller is still inside
 * tw_connect_tls. */
static void fail_later(connector *c, tw_failure *why)
{
    c->early = why;
    c->timer = tw_call_later(0, on_early, c);
}

static void on_cancel(tw_deferred *d, void *arg)
{
    connector *c = arg;
    /* Cancelled once the handshake succeeded (from build_protocol or
     * connection_made): the connection stands and the Deferred fires with it. */
    if (!c->d || (c->tls && tw_tls_established(c->tls)))
        return;
    fail(c, tw_failure_new(TW_ERR_CANCELLED, ECANCELED, NULL, "TLS connection to %s cancelled",
                           c->target));
}

/* Starting ---------------------------------------------------------------------------------------- */

tw_deferred *tw_connect_tls(const char *host, int port, tw_factory *f,
                            const tw_tls_options *opt, double timeout)
{
    char target[300];
    snprintf(target, sizeof target, "%s:%d", host ? host : "(null)", port);
    connector *c = tw_xcalloc(1, sizeof *c);
    c->refs = 1;
    c->f = f;
    c->target = tw_xstrdup(target);
    c->timeout = timeout > 0 ? timeout : DEFAULT_TIMEOUT;
    c->d = tw_deferred_new(on_cancel, c);
    /* The canceller fires the Deferred itself, or leaves it to the handshake. */
    tw_deferred_set_canceller_fires(c->d);
    tw_deferred *d = tw_deferred_ref(c->d);

    if (!f || !f->build_protocol) {
        fail_later(c, tw_failure_new(TW_ERR_USAGE, EINVAL, NULL,
                                     "TLS connection to %s: no factory to build a protocol",
                                     target));
        return d;
    }
    tw_failure *why = NULL;
    c->ctx = tw_tls_client_context(opt, &why);
    if (!c->ctx) {
        fail_later(c, why);
        return d;
    }
    const char *name = opt && opt->server_name ? opt->server_name : host;
    c->name = name ? tw_xstrdup(name) : NULL;
    c->timer = tw_call_later(c->timeout, on_timeout, c);
    c->tcp_factory.build_protocol = build_layer;
    /* c->tcp is c's reference; the callbacks hold c. */
    c->tcp = tw_connect_tcp(host, port, &c->tcp_factory, c->timeout);
    c->refs++;
    tw_deferred_add_callbacks_full(c->tcp, on_tcp_connected, on_tcp_failed, c, connector_unref);
    return d;
}
