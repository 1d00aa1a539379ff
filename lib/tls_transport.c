/* twine: the TLS transport, a TLS layer over a TCP connection.
 *
 * The layer is the protocol of the TCP connection: what arrives goes into
 * OpenSSL through a memory BIO, and what OpenSSL writes to the other memory
 * BIO goes out through the TCP transport at once. The protocol the factory
 * builds sits on the layer's own transport and sees plaintext; it is built
 * once the handshake and verification succeeded, so nothing is written before
 * then. The layer lives until the TCP connection has ended: its lost hook
 * frees it, after the user's protocol heard connection_lost.
 *
 * Flow control: plaintext is encrypted as it is written, so what the TLS
 * transport has pending is what the TCP transport holds. The layer is the TCP
 * transport's producer with both watermarks at 0: it hears when that buffer
 * fills and when it is empty again, and passes the size on to the TLS
 * transport's own producer. */
#include "tls_internal.h"

#include <errno.h>
#include <ev.h>
#include <openssl/err.h>
#include <string.h>

enum {
    RECORD_SIZE = 16 * 1024,              /* the most plaintext one record carries */
    ENCRYPT_SIZE = 64 * 1024,             /* encrypted, then handed to TCP, at a time */
    WHAT_SIZE = 300,
};

struct tw_tls {
    tw_transport base;                    /* first: the transport of the user's protocol */
    tw_protocol tcp_p;                    /* the protocol on the TCP connection */
    tw_transport *tcp;                    /* borrowed: valid until the layer is freed */
    SSL *ssl;
    BIO *rbio, *wbio;                     /* owned by ssl: ciphertext in and out */
    ev_timer later;                       /* zero-delay: reads what waited while paused */
    tw_factory *f;
    const tw_tls_hooks *hooks;
    void *hook_arg;
    const char *name, *target;
    tw_failure *reason;                   /* replaces the TCP connection's reason */
    bool client;
    bool established;                     /* handshake done, peer verified */
    bool settled;                         /* the handshake's outcome was told (or abandoned) */
    bool dead;                            /* failed or aborted: no more TLS traffic */
    bool closing;                         /* lose_connection */
    bool write_shut;                      /* our close_notify is out */
    bool got_close_notify;
    bool tcp_eof;                         /* the peer shut down its TCP sending side */
    bool tcp_gone;                        /* the TCP connection_lost ran */
    bool paused;
};

/* One plaintext buffer serves every layer: data_received borrows it for the
 * call, and only the reactor thread reads. */
static char plain[RECORD_SIZE];

static struct ev_loop *loop(void) { return tw_reactor_loop(); }
static tw_tls *of_transport(const tw_transport *t) { return (tw_tls *)t; }
static tw_tls *of_tcp_protocol(tw_protocol *p) { return TW_CONTAINER_OF(p, tw_tls, tcp_p); }

/* "<stage> with host:port", for messages. */
static const char *describe(const tw_tls *t, const char *stage, char *buf)
{
    char addr[128];
    const char *peer = t->target;
    if (!peer) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        peer = tw_transport_get_peer(t->tcp, &ss, &len) == 0
            ? tw_format_address((struct sockaddr *)&ss, len, addr, sizeof addr) : "?";
    }
    snprintf(buf, WHAT_SIZE, "%s with %s", stage, peer);
    return buf;
}

static void set_reason(tw_tls *t, tw_failure *reason)
{
    if (t->reason)
        tw_failure_unref(reason);
    else
        t->reason = reason;
}

/* Hands what OpenSSL wrote to the TCP connection. */
static void flush_ciphertext(tw_tls *t)
{
    char *data;
    long n = BIO_get_mem_data(t->wbio, &data);
    if (n <= 0)
        return;
    tw_transport_write(t->tcp, data, (size_t)n);
    (void)BIO_reset(t->wbio);
}

static void send_close_notify(tw_tls *t)
{
    if (t->write_shut)
        return;
    t->write_shut = true;
    ERR_clear_error();
    SSL_shutdown(t->ssl);                 /* the peer's close_notify need not have come */
    ERR_clear_error();
    flush_ciphertext(t);
}

static void close_cleanly(tw_tls *t)
{
    send_close_notify(t);
    t->base.disconnecting = true;
    tw_transport_lose_connection(t->tcp);
}

/* A TLS error (ssl_error from SSL_get_error) after the handshake: the
 * connection is lost, with the TLS failure as the reason's cause. */
static void lose_tls(tw_tls *t, int ssl_error)
{
    char what[WHAT_SIZE];
    tw_failure *tls = tw_tls_failure(t->ssl, ssl_error, describe(t, "TLS", what), t->name);
    set_reason(t, t->tcp_eof
        ? tw_failure_new(TW_ERR_CONNECTION_LOST, 0, tls,
                         "Connection lost: closed without a TLS close_notify, so it may be truncated")
        : tw_failure_new(TW_ERR_CONNECTION_LOST, 0, tls, "Connection lost: TLS error"));
    t->dead = true;
    t->base.disconnecting = true;
    flush_ciphertext(t);                  /* the alert, if any */
    tw_transport_lose_connection(t->tcp);
}

/* The handshake ---------------------------------------------------------------------- */

static void settle(tw_tls *t, tw_protocol *p, tw_failure *why)
{
    t->settled = true;
    if (t->hooks)
        t->hooks->settled(t->hook_arg, p, why);
    else if (why)
        tw_log_failure(TW_LOG_DEBUG, why, "TLS server");
}

static void fail_handshake(tw_tls *t, tw_failure *why)
{
    t->dead = true;
    t->base.disconnecting = true;
    flush_ciphertext(t);                  /* the alert, if any */
    tw_transport_lose_connection(t->tcp);
    settle(t, NULL, why);
    tw_failure_unref(why);
}

/* The handshake succeeded: the factory builds the protocol. */
static void start_protocol(tw_tls *t)
{
    struct sockaddr_storage peer = { .ss_family = AF_UNSPEC };
    socklen_t len = sizeof peer;
    t->established = true;
    tw_transport_get_peer(t->tcp, &peer, &len);
    tw_protocol *p = t->f->build_protocol(t->f, (struct sockaddr *)&peer);
    if (!p) {
        char what[WHAT_SIZE];
        tw_failure *why = tw_failure_new(TW_ERR_CONNECTION_DONE, 0, NULL,
                                         "%s: refused by its factory",
                                         describe(t, "TLS connection", what));
        close_cleanly(t);
        settle(t, NULL, why);
        tw_failure_unref(why);
        return;
    }
    p->factory = t->f;
    tw_transport_connect_protocol(&t->base, p);
    settle(t, p, NULL);
}

static void handshake(tw_tls *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_NONE) {
        start_protocol(t);
    } else if (e != SSL_ERROR_WANT_READ) {
        char what[WHAT_SIZE];
        fail_handshake(t, tw_tls_failure(t->ssl, e, describe(t, "TLS handshake", what), t->name));
    }
}

/* Reading ------------------------------------------------------------------------------ */

static bool can_read(const tw_tls *t)
{
    return t->base.protocol && !t->dead && !t->closing && !t->paused && !t->got_close_notify &&
           !t->tcp_gone;
}

/* The peer's close_notify: a clean end of what it sends. */
static void peer_closed(tw_tls *t)
{
    tw_protocol *p = t->base.protocol;
    t->got_close_notify = true;
    if (p->ops->read_connection_lost) {
        p->ops->read_connection_lost(p);
        if (!t->write_shut)
            return;                       /* half-closed: writing goes on */
    }
    if (t->dead || t->closing)
        return;
    set_reason(t, tw_failure_new(TW_ERR_CONNECTION_DONE, 0, NULL, "Connection was closed cleanly"));
    close_cleanly(t);
}

/* Hands the protocol what OpenSSL can decrypt, until it pauses or closes. */
static void read_records(tw_tls *t)
{
    while (can_read(t)) {
        ERR_clear_error();
        int n = SSL_read(t->ssl, plain, sizeof plain);
        if (n > 0) {
            tw_protocol *p = t->base.protocol;
            if (p->ops->data_received)
                p->ops->data_received(p, plain, (size_t)n);
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN)
            peer_closed(t);
        else if (e != SSL_ERROR_WANT_READ)
            lose_tls(t, e);
        return;
    }
}

/* Runs OpenSSL on what has arrived. */
static void pump(tw_tls *t)
{
    if (t->dead)
        return;
    if (!t->settled)
        handshake(t);
    if (t->established)
        read_records(t);
    if (!t->tcp_gone)
        flush_ciphertext(t);
}

static void on_later(struct ev_loop *l, ev_timer *w, int revents)
{
    pump(TW_CONTAINER_OF(w, tw_tls, later));
}

/* The protocol on the TCP connection ------------------------------------------------------ */

static void on_tcp_gone(void *arg, tw_failure *reason);

static void tcp_pressure_changed(void *arg)
{
    tw_tls *t = arg;
    tw_transport_buffer_changed(&t->base, tw_transport_write_buffer_size(&t->base));
}

static const tw_producer_ops tcp_pressure = {
    .pause = tcp_pressure_changed,
    .resume = tcp_pressure_changed,
};

static void tcp_made(tw_protocol *p)
{
    tw_tls *t = of_tcp_protocol(p);
    t->tcp = p->transport;
    tw_stream_set_lost_hook(t->tcp, on_tcp_gone, t);
    tw_transport_set_write_watermarks(t->tcp, 0, 0);
    tw_transport_register_producer(t->tcp, &tcp_pressure, t);
    if (t->client)
        pump(t);                          /* the ClientHello */
}

static void tcp_data(tw_protocol *p, const char *data, size_t len)
{
    tw_tls *t = of_tcp_protocol(p);
    /* After the peer's close_notify nothing more may come: what does is
     * dropped rather than piled up unread. */
    if (t->dead || t->got_close_notify)
        return;
    BIO_write(t->rbio, data, (int)len);   /* len is at most one read of the TCP transport */
    pump(t);
}

/* The peer's TCP end of stream: fine after its close_notify, a truncation
 * (or a failed handshake) before. */
static void tcp_read_lost(tw_protocol *p)
{
    tw_tls *t = of_tcp_protocol(p);
    t->tcp_eof = true;
    BIO_set_mem_eof_return(t->rbio, 0);   /* OpenSSL now sees the end once it has read all */
    if (!t->got_close_notify)
        pump(t);
    else if (t->write_shut && !t->dead)
        tw_transport_lose_connection(t->tcp);
}

/* Our close_notify and the TCP sending side are shut down. */
static void tcp_write_lost(tw_protocol *p)
{
    tw_tls *t = of_tcp_protocol(p);
    tw_protocol *up = t->base.protocol;
    if (up && up->ops->write_connection_lost)
        up->ops->write_connection_lost(up);
    if (t->got_close_notify && !t->dead)
        tw_transport_lose_connection(t->tcp);
}

static void tcp_lost(tw_protocol *p, tw_failure *reason)
{
    tw_tls *t = of_tcp_protocol(p);
    t->tcp_gone = true;
    ev_timer_stop(loop(), &t->later);
    if (!t->settled) {
        char what[WHAT_SIZE];
        tw_failure *why = tw_failure_new(TW_ERR_TLS, 0, tw_failure_ref(reason),
                                         "%s: the connection was lost",
                                         describe(t, "TLS handshake", what));
        t->dead = true;
        settle(t, NULL, why);
        tw_failure_unref(why);
        return;
    }
    if (!t->base.protocol)
        return;
    tw_failure *final = t->reason ? t->reason : reason;
    tw_transport_protocol_lost(&t->base, final);
    if (t->client && t->f->connection_lost)
        t->f->connection_lost(t->f, final);
}

static const tw_protocol_ops tcp_ops = {
    .connection_made = tcp_made,
    .data_received = tcp_data,
    .connection_lost = tcp_lost,
    .read_connection_lost = tcp_read_lost,
    .write_connection_lost = tcp_write_lost,
};

/* After the TCP connection ended (and connection_lost ran). */
static void on_tcp_gone(void *arg, tw_failure *reason)
{
    tw_tls *t = arg;
    const tw_tls_hooks *hooks = t->hooks;
    void *hook_arg = t->hook_arg;
    SSL_free(t->ssl);
    tw_failure_unref(t->reason);
    free(t);
    if (hooks)
        hooks->released(hook_arg);
}

/* The TLS transport ------------------------------------------------------------------------ */

/* Encrypts data and hands the records to TCP. false when the connection
 * cannot take more. */
static bool encrypt(tw_tls *t, const void *data, size_t len)
{
    size_t written;
    /* A hook run by the TCP write below may have closed us. */
    if (t->dead || t->closing || t->write_shut)
        return false;
    ERR_clear_error();
    int r = SSL_write_ex(t->ssl, data, len, &written);
    if (r != 1) {
        lose_tls(t, SSL_get_error(t->ssl, r));
        return false;
    }
    flush_ciphertext(t);
    return true;
}

/* Small pieces are gathered into whole records; large ones are encrypted in
 * place, a few records at a time so the ciphertext never piles up. */
static int tls_writev(tw_transport *tr, const struct iovec *iov, int n)
{
    tw_tls *t = of_transport(tr);
    if (t->dead || t->closing || t->write_shut || t->tcp_gone || tw_transport_disconnecting(t->tcp))
        return -ENOTCONN;
    if (n < 0 || (n > 0 && !iov))
        return -EINVAL;

    char stage[RECORD_SIZE];
    size_t staged = 0;
    for (int i = 0; i < n; i++) {
        const char *data = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len > 0) {
            size_t take;
            if (staged == 0 && len >= RECORD_SIZE) {
                take = len < ENCRYPT_SIZE ? len : ENCRYPT_SIZE;
                if (!encrypt(t, data, take))
                    return 0;
            } else {
                take = len < RECORD_SIZE - staged ? len : RECORD_SIZE - staged;
                memcpy(stage + staged, data, take);
                staged += take;
                if (staged == RECORD_SIZE) {
                    if (!encrypt(t, stage, staged))
                        return 0;
                    staged = 0;
                }
            }
            data += take;
            len -= take;
        }
    }
    if (staged > 0 && !encrypt(t, stage, staged))
        return 0;
    tw_transport_buffer_changed(tr, tw_transport_write_buffer_size(tr));
    return 0;
}

static void tls_lose_connection(tw_transport *tr)
{
    tw_tls *t = of_transport(tr);
    if (t->dead || t->closing || t->tcp_gone)
        return;
    t->closing = true;
    close_cleanly(t);
}

static void tls_abort_connection(tw_transport *tr)
{
    tw_tls *t = of_transport(tr);
    t->dead = true;
    tw_transport_abort_connection(t->tcp);
}

static void tls_lose_write_connection(tw_transport *tr)
{
    tw_tls *t = of_transport(tr);
    if (t->dead || t->closing || t->write_shut || t->tcp_gone)
        return;
    send_close_notify(t);
    tw_transport_lose_write_connection(t->tcp);
}

static void tls_pause_reading(tw_transport *tr)
{
    tw_tls *t = of_transport(tr);
    t->paused = true;
    tw_transport_pause_reading(t->tcp);
}

static void tls_resume_reading(tw_transport *tr)
{
    tw_tls *t = of_transport(tr);
    t->paused = false;
    if (t->tcp_gone)
        return;
    tw_transport_resume_reading(t->tcp);
    /* What OpenSSL holds already would wait for the next TCP read: read it
     * from the loop. */
    bool waiting = BIO_ctrl_pending(t->rbio) > 0 || SSL_pending(t->ssl) > 0 || t->tcp_eof;
    if (waiting && !ev_is_active(&t->later)) {
        ev_timer_set(&t->later, 0., 0.);
        ev_timer_start(loop(), &t->later);
    }
}

static int tls_get_peer(const tw_transport *tr, struct sockaddr_storage *addr, socklen_t *len)
{
    return tw_transport_get_peer(of_transport(tr)->tcp, addr, len);
}

static int tls_get_host(const tw_transport *tr, struct sockaddr_storage *addr, socklen_t *len)
{
    return tw_transport_get_host(of_transport(tr)->tcp, addr, len);
}

/* OpenSSL's output goes to TCP as soon as it is made. */
static size_t tls_write_buffer_size(const tw_transport *tr)
{
    return tw_transport_write_buffer_size(of_transport(tr)->tcp);
}

static const struct tw_transport_vtable tls_vtable = {
    .writev = tls_writev,
    .lose_connection = tls_lose_connection,
    .abort_connection = tls_abort_connection,
    .lose_write_connection = tls_lose_write_connection,
    .pause_reading = tls_pause_reading,
    .resume_reading = tls_resume_reading,
    .get_peer = tls_get_peer,
    .get_host = tls_get_host,
    .write_buffer_size = tls_write_buffer_size,
};

/* The layer's life ---------------------------------------------------------------------------- */

tw_tls *tw_tls_new(SSL_CTX *ctx, bool client, const char *name, const char *target,
                   tw_factory *f, const tw_tls_hooks *hooks, void *arg)
{
    tw_tls *t = tw_xcalloc(1, sizeof *t);
    tw_transport_init(&t->base, &tls_vtable);
    t->tcp_p.ops = &tcp_ops;
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio)
        abort();                          /* out of memory, as tw_xmalloc */
    BIO_set_mem_eof_return(t->rbio, -1);  /* empty: more is to come */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (client) {
        SSL_set_connect_state(t->ssl);
        tw_tls_set_peer_name(t->ssl, name);
    } else {
        SSL_set_accept_state(t->ssl);
    }
    ev_timer_init(&t->later, on_later, 0., 0.);
    t->client = client;
    t->name = name;
    t->target = target;
    t->f = f;
    t->hooks = hooks;
    t->hook_arg = arg;
    return t;
}

tw_protocol *tw_tls_tcp_protocol(tw_tls *t) { return &t->tcp_p; }

bool tw_tls_established(const tw_tls *t) { return t->established; }

void tw_tls_abandon(tw_tls *t)
{
    t->settled = true;
    t->dead = true;
    t->base.disconnecting = true;
    tw_transport_abort_connection(t->tcp);
}

const char *tw_tls_server_name(const tw_transport *t)
{
    if (!t || t->vt != &tls_vtable)
        return NULL;
    return SSL_get_servername(of_transport(t)->ssl, TLSEXT_NAMETYPE_host_name);
}
