/* twine: TLS listening ports: a TCP port whose factory puts a TLS layer on
 * every connection it accepts. */
#include "tls_internal.h"

#include <errno.h>

typedef struct listener {
    tw_factory tcp_factory;               /* what the TCP port builds with */
    tw_factory *f;                        /* the caller's */
    SSL_CTX *ctx;
} listener;

static tw_protocol *build_layer(tw_factory *tcp_factory, const struct sockaddr *peer)
{
    listener *l = TW_CONTAINER_OF(tcp_factory, listener, tcp_factory);
    return tw_tls_tcp_protocol(tw_tls_new(l->ctx, false, NULL, NULL, l->f, NULL, NULL));
}

/* With the port: the connections hold their own references to the context. */
static void listener_free(void *arg)
{
    listener *l = arg;
    SSL_CTX_free(l->ctx);
    free(l);
}

tw_port *tw_listen_tls(const char *interface, int port, tw_factory *f,
                       const tw_tls_options *opt, int *err)
{
    int e = -EINVAL;
    SSL_CTX *ctx = f && f->build_protocol ? tw_tls_server_context(opt, &e) : NULL;
    if (!ctx) {
        if (err)
            *err = e;
        return NULL;
    }
    listener *l = tw_xcalloc(1, sizeof *l);
    l->tcp_factory.build_protocol = build_layer;
    l->f = f;
    l->ctx = ctx;
    tw_port *p = tw_listen_tcp(interface, port, &l->tcp_factory, err);
    if (!p) {
        listener_free(l);
        return NULL;
    }
    tw_port_set_free_hook(p, listener_free, l);
    return p;
}
