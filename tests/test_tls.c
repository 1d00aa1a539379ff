/* Tests for include/twine/tls.h: TLS clients and servers over real sockets on
 * the loopback interface (ports picked by the kernel). The certificates are
 * made when the suite starts, with the openssl command, in a temporary
 * directory removed at the end: a CA, a server certificate for "localhost"
 * and 127.0.0.1 signed by it, and a second, unrelated CA (self-signed, so it
 * also serves as a server certificate nobody vouches for). Every test stops
 * the reactor itself once the events it waits for have come; a safety timer
 * fails a test that would hang.
 *
 * TWINE_TEST_SCALE (a factor, default 1) scales the bulk transfer down for
 * slow runs such as valgrind's. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SAFETY_SECONDS 30.0
#include "testutil.h"


/* The certificates ------------------------------------------------------------------ */

static char dir[64];
static char ca_pem[128], server_pem[128], server_key[128], other_pem[128], other_key[128];
static char junk_pem[128];

static void path_in_dir(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", dir, name);
}

static int make_certificates(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/twine-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    path_in_dir(ca_pem, sizeof ca_pem, "ca.pem");
    path_in_dir(server_pem, sizeof server_pem, "server.pem");
    path_in_dir(server_key, sizeof server_key, "server.key");
    path_in_dir(other_pem, sizeof other_pem, "other.pem");
    path_in_dir(other_key, sizeof other_key, "other.key");
    path_in_dir(junk_pem, sizeof junk_pem, "junk.pem");
    if (tw_test_make_certificates(dir, "DNS:localhost, IP:127.0.0.1") != 0 ||
        tw_test_make_ca(dir, "other", "twine other CA") != 0 ||
        tw_test_run("cd %s && printf 'not a certificate\\n' > junk.pem", dir) != 0) {
        print_error("could not make the test certificates with the openssl command\n");
        return -1;
    }
    return 0;
}

static int remove_certificates(void **state)
{
    return tw_test_run("rm -rf '%s'", dir) == 0 ? 0 : -1;
}

/* Running the reactor ------------------------------------------------------------------ */


static double test_scale(void)
{
    const char *s = getenv("TWINE_TEST_SCALE");
    double f = s ? atof(s) : 1.0;
    return f > 0 && f <= 1 ? f : 1.0;
}

/* A configurable protocol and its factory ------------------------------------------------ */

typedef struct side side;
typedef struct conn conn;

struct side {
    tw_factory f;
    /* Behaviour, each optional. */
    void (*made)(conn *c);
    void (*data)(conn *c, const char *data, size_t len);
    void (*read_lost)(conn *c);
    int half_close;             /* give the protocol the half-close hooks */
    int refuse;                 /* build_protocol returns NULL */
    int count_made, count_data, count_lost, count_failed;   /* each counts down */
    /* What happened. */
    int built, made_n, lost_n, freed_n, failed_n, factory_lost_n;
    int done_n, lost_lost_n, read_lost_n, write_lost_n;
    tw_failure *reason;         /* the last connection_lost's */
    tw_failure *failure;        /* the last connection_failed's */
    char sni[256];              /* tw_tls_server_name at connection_made */
    conn *last;                 /* the last protocol built (until freed) */
};

struct conn {
    tw_protocol base;
    side *s;
    char *in;                   /* everything received */
    size_t in_len, in_cap;
    int lost;
};

static conn *conn_of(tw_protocol *p) { return TW_CONTAINER_OF(p, conn, base); }
static side *side_of(tw_factory *f) { return TW_CONTAINER_OF(f, side, f); }

static void conn_made(tw_protocol *p)
{
    conn *c = conn_of(p);
    const char *sni = tw_tls_server_name(p->transport);
    c->s->made_n++;
    snprintf(c->s->sni, sizeof c->s->sni, "%s", sni ? sni : "(none)");
    if (c->s->made)
        c->s->made(c);
    if (c->s->count_made)
        count_down();
}

static void conn_data(tw_protocol *p, const char *data, size_t len)
{
    conn *c = conn_of(p);
    assert_true(len > 0);
    assert_false(c->lost);
    if (c->in_len + len > c->in_cap) {
        c->in_cap = (c->in_len + len) * 2;
        c->in = realloc(c->in, c->in_cap);
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
    if (c->s->data)
        c->s->data(c, data, len);
}

static void conn_lost(tw_protocol *p, tw_failure *reason)
{
    conn *c = conn_of(p);
    side *s = c->s;
    assert_false(c->lost);
    c->lost = 1;
    s->lost_n++;
    if (tw_failure_check(reason, TW_ERR_CONNECTION_DONE, -1))
        s->done_n++;
    if (tw_failure_check(reason, TW_ERR_CONNECTION_LOST, -1))
        s->lost_lost_n++;
    tw_failure_unref(s->reason);
    s->reason = tw_failure_ref(reason);
    assert_int_equal(tw_transport_disconnecting(p->transport), 1);
    assert_int_equal(tw_transport_write(p->transport, "x", 1), -ENOTCONN);
    tw_transport_lose_connection(p->transport);
    if (s->count_lost)
        count_down();
}

static void conn_read_lost(tw_protocol *p)
{
    conn *c = conn_of(p);
    c->s->read_lost_n++;
    if (c->s->read_lost)
        c->s->read_lost(c);
}

static void conn_write_lost(tw_protocol *p)
{
    conn_of(p)->s->write_lost_n++;
}

static void conn_free(tw_protocol *p)
{
    conn *c = conn_of(p);
    assert_true(c->lost);
    c->s->freed_n++;
    if (c->s->last == c)
        c->s->last = NULL;
    free(c->in);
    free(c);
}

static const tw_protocol_ops plain_ops = {
    .connection_made = conn_made,
    .data_received = conn_data,
    .connection_lost = conn_lost,
    .free = conn_free,
};

static const tw_protocol_ops half_close_ops = {
    .connection_made = conn_made,
    .data_received = conn_data,
    .connection_lost = conn_lost,
    .free = conn_free,
    .read_connection_lost = conn_read_lost,
    .write_connection_lost = conn_write_lost,
};

static tw_protocol *side_build(tw_factory *f, const struct sockaddr *peer)
{
    side *s = side_of(f);
    assert_non_null(peer);
    assert_int_equal(peer->sa_family, AF_INET);
    if (s->refuse)
        return NULL;
    s->built++;
    conn *c = calloc(1, sizeof *c);
    c->base.ops = s->half_close ? &half_close_ops : &plain_ops;
    c->s = s;
    s->last = c;
    return &c->base;
}

static void side_failed(tw_factory *f, tw_failure *reason)
{
    side *s = side_of(f);
    s->failed_n++;
    tw_failure_unref(s->failure);
    s->failure = tw_failure_ref(reason);
    if (s->count_failed)
        count_down();
}

static void side_factory_lost(tw_factory *f, tw_failure *reason)
{
    side_of(f)->factory_lost_n++;
}

static void side_init(side *s)
{
    memset(s, 0, sizeof *s);
    s->f.build_protocol = side_build;
    s->f.connection_failed = side_failed;
    s->f.connection_lost = side_factory_lost;
}

/* At the end of a test: every protocol built was freed. */
static void side_clear(side *s)
{
    assert_int_equal(s->freed_n, s->built);
    tw_failure_unref(s->reason);
    tw_failure_unref(s->failure);
    s->reason = s->failure = NULL;
}

/* Behaviours. */
static const char greeting[] = "hello over TLS";

static void echo(conn *c, const char *data, size_t len)
{
    assert_int_equal(tw_transport_write(c->base.transport, data, len), 0);
}

static void write_greeting(conn *c)
{
    assert_int_equal(tw_transport_write(c->base.transport, greeting, strlen(greeting)), 0);
}

/* Closes once the greeting has come back whole. */
static void close_after_greeting(conn *c, const char *data, size_t len)
{
    size_t want = strlen(greeting);
    if (c->in_len >= want) {
        assert_int_equal(c->in_len, want);
        assert_memory_equal(c->in, greeting, want);
        tw_transport_lose_connection(c->base.transport);
    }
}

/* Ports and connection attempts ---------------------------------------------------------------- */

static tw_port *tls_server(side *s, const char *cert, const char *key, const char *ca)
{
    tw_tls_options o = { .cert_file = cert, .key_file = key, .ca_file = ca };
    int err = 1;
    tw_port *p = tw_listen_tls("127.0.0.1", 0, &s->f, &o, &err);
    assert_non_null(p);
    assert_int_equal(err, 1);            /* untouched on success */
    assert_true(tw_port_number(p) > 0);
    return p;
}

static tw_port *tcp_server(side *s)
{
    int err;
    tw_port *p = tw_listen_tcp("127.0.0.1", 0, &s->f, &err);
    assert_non_null(p);
    return p;
}

static void on_port_stopped(tw_result *r, void *arg)
{
    count_down();
}

static void stop_port(tw_port *p)
{
    tw_deferred *d = tw_port_stop_listening(p);
    tw_deferred_add_callback(d, on_port_stopped, NULL);
    tw_deferred_unref(d);
    waiting++;
    run_reactor();
}

/* What a connect Deferred fired with. */
typedef struct outcome {
    int fired;
    int count;                  /* firing counts down */
    side *s;                    /* the client side */
    int made_before;            /* connection_made had run when it fired */
    tw_protocol *p;             /* borrowed */
    tw_failure *failure;        /* a reference */
} outcome;

static void outcome_ok(tw_result *r, void *arg)
{
    outcome *o = arg;
    o->fired++;
    o->p = r->value;
    o->made_before = o->s->made_n;
    if (o->count)
        count_down();
}

static void outcome_failed(tw_result *r, void *arg)
{
    outcome *o = arg;
    o->fired++;
    o->failure = tw_failure_ref(r->failure);
    tw_result_set_value(r, NULL, NULL);
    if (o->count)
        count_down();
}

/* Connects client to 127.0.0.1:port (or `host`) and watches the Deferred. */
static tw_deferred *tls_connect(outcome *o, side *client, const char *host, int port,
                                const tw_tls_options *opt, double timeout, int count)
{
    tw_deferred *d = tw_connect_tls(host ? host : "127.0.0.1", port, &client->f, opt, timeout);
    assert_non_null(d);
    o->s = client;
    o->count = count;
    tw_deferred_add_callbacks(d, outcome_ok, outcome_failed, o);
    assert_int_equal(o->fired, 0);       /* from the loop, not at once */
    if (count)
        waiting++;
    return d;
}

static void watch(outcome *o, side *client, const char *host, int port,
                  const tw_tls_options *opt, double timeout, int count)
{
    tw_deferred_unref(tls_connect(o, client, host, port, opt, timeout, count));
}

static void outcome_clear(outcome *o)
{
    tw_failure_unref(o->failure);
    memset(o, 0, sizeof *o);
}

static void assert_tls_failure(const tw_failure *f, int code, const char *needle)
{
    char text[1024];
    assert_non_null(f);
    tw_failure_format(f, text, sizeof text);
    if (!tw_failure_check(f, TW_ERR_TLS, code) || !strstr(tw_failure_message(f), needle))
        fail_msg("expected a TLS failure (code %d) mentioning \"%s\", got: %s", code, needle, text);
}

/* Echo and a clean close -------------------------------------------------------------------------- */

static void test_echo_and_clean_close(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = echo;
    server.count_lost = 1;
    client.made = write_greeting;
    client.data = close_after_greeting;
    client.count_lost = 1;
    tw_port *p = tls_server(&server, server_pem, server_key, NULL);

    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost" };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 0);
    waiting = 2;
    run_reactor();

    assert_int_equal(o.fired, 1);
    assert_null(o.failure);
    assert_non_null(o.p);
    assert_int_equal(o.made_before, 1);  /* fired right after connection_made */
    assert_int_equal(client.made_n, 1);
    assert_int_equal(server.made_n, 1);
    assert_int_equal(client.done_n, 1);  /* both ends closed cleanly */
    assert_int_equal(server.done_n, 1);
    assert_int_equal(client.factory_lost_n, 1);
    assert_int_equal(server.factory_lost_n, 0);
    assert_int_equal(client.failed_n, 0);
    /* The SNI the client sent, as both ends see it. */
    assert_string_equal(server.sni, "localhost");
    assert_string_equal(client.sni, "localhost");
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* The host argument is the name verified and sent when server_name is not set. */
static void test_host_is_the_default_server_name(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = echo;
    server.count_lost = 1;
    client.made = write_greeting;
    client.data = close_after_greeting;
    client.count_lost = 1;
    tw_port *p = tls_server(&server, server_pem, server_key, NULL);

    tw_tls_options opt = { .ca_file = ca_pem };
    outcome o = { 0 };
    watch(&o, &client, "localhost", tw_port_number(p), &opt, 5, 0);
    waiting = 2;
    run_reactor();
    assert_null(o.failure);
    assert_string_equal(server.sni, "localhost");
    assert_int_equal(client.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* An IP literal is verified against the certificate's IP addresses, and no
 * SNI is sent for it. */
static void test_ip_literal_is_verified_without_sni(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    client.made = write_greeting;
    client.data = close_after_greeting;
    client.count_lost = 1;
    server.data = echo;
    server.count_lost = 1;
    tw_port *p = tls_server(&server, server_pem, server_key, NULL);

    tw_tls_options opt = { .ca_file = ca_pem };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 0);
    waiting = 2;
    run_reactor();
    assert_null(o.failure);
    assert_string_equal(server.sni, "(none)");
    assert_string_equal(client.sni, "(none)");
    outcome_clear(&o);

    /* Another address than the certificate's. */
    opt.server_name = "127.0.0.2";
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 1);
    run_reactor();
    assert_tls_failure(o.failure, X509_V_ERR_IP_ADDRESS_MISMATCH, "host name mismatch");
    assert_non_null(strstr(tw_failure_message(o.failure), "127.0.0.2"));
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Verification failures ---------------------------------------------------------------------------- */

/* Connects with opt and expects a TLS failure; no protocol is built on either
 * side, and the client's factory hears the same failure. */
static void expect_refusal(const char *cert, const char *key, const tw_tls_options *opt,
                           int code, const char *needle)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    tw_port *p = tls_server(&server, cert, key, NULL);
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), opt, 5, 1);
    run_reactor();
    assert_int_equal(o.fired, 1);
    assert_tls_failure(o.failure, code, needle);
    assert_int_equal(client.failed_n, 1);
    assert_ptr_equal(client.failure, o.failure);
    assert_int_equal(client.built, 0);
    assert_int_equal(server.built, 0);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static void test_host_name_mismatch(void **state)
{
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "wrong.example" };
    expect_refusal(server_pem, server_key, &opt, X509_V_ERR_HOSTNAME_MISMATCH,
                   "host name mismatch");
}

static void test_unknown_ca(void **state)
{
    tw_tls_options other = { .ca_file = other_pem, .server_name = "localhost" };
    expect_refusal(server_pem, server_key, &other, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                   "certificate verify failed: unable to get local issuer certificate");
    tw_tls_options system_store = { .server_name = "localhost" };
    expect_refusal(server_pem, server_key, &system_store,
                   X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                   "certificate verify failed: unable to get local issuer certificate");
    /* The defaults are the system store too. */
    expect_refusal(server_pem, server_key, NULL, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                   "unable to get local issuer certificate");
}

static void test_self_signed_server(void **state)
{
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost" };
    expect_refusal(other_pem, other_key, &opt, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
                   "certificate verify failed: self");
}

static void test_insecure_connects_anyway(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = echo;
    server.count_lost = 1;
    client.made = write_greeting;
    client.data = close_after_greeting;
    client.count_lost = 1;
    /* An unknown CA and a wrong name at once, or a self-signed certificate. */
    tw_port *p = tls_server(&server, server_pem, server_key, NULL);
    tw_port *p2 = tls_server(&server, other_pem, other_key, NULL);
    tw_tls_options opt = { .ca_file = other_pem, .server_name = "wrong.example", .insecure = 1 };
    tw_tls_options plain = { .insecure = 1 };
    outcome o = { 0 }, o2 = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 0);
    waiting = 2;
    run_reactor();
    assert_null(o.failure);
    assert_string_equal(server.sni, "wrong.example"); /* still sent */
    watch(&o2, &client, "127.0.0.1", tw_port_number(p2), &plain, 5, 0);
    waiting = 2;
    run_reactor();
    assert_null(o2.failure);
    assert_int_equal(client.done_n, 2);
    assert_int_equal(server.done_n, 2);
    stop_port(p);
    stop_port(p2);
    outcome_clear(&o);
    outcome_clear(&o2);
    side_clear(&server);
    side_clear(&client);
}

static void test_unreadable_ca_file_errbacks(void **state)
{
    side client;
    side_init(&client);
    char missing[160];
    path_in_dir(missing, sizeof missing, "missing.pem");
    tw_tls_options opt = { .ca_file = missing };
    outcome o = { 0 };
    /* Nothing listens there: the attempt fails before connecting. */
    watch(&o, &client, "127.0.0.1", 1, &opt, 5, 1);
    run_reactor();
    assert_non_null(o.failure);
    assert_true(tw_failure_check(o.failure, TW_ERR_TLS, -1));
    assert_non_null(strstr(tw_failure_message(o.failure), "cannot load the CA file"));
    assert_int_equal(client.failed_n, 1);
    outcome_clear(&o);

    tw_tls_options junk = { .ca_file = junk_pem };
    watch(&o, &client, "127.0.0.1", 1, &junk, 5, 1);
    run_reactor();
    assert_true(tw_failure_check(o.failure, TW_ERR_TLS, -1));
    outcome_clear(&o);
    side_clear(&client);
}

/* Peers that are no TLS server ----------------------------------------------------------------------- */

static void close_at_once(conn *c) { tw_transport_lose_connection(c->base.transport); }

/* Documented choice: a peer that closes during the handshake is a TW_ERR_TLS
 * failure (OpenSSL's "unexpected eof", or the TCP failure as the cause when
 * the close was a reset), never a bare TW_ERR_CONNECTION_LOST. */
static void test_plain_server_closing_at_once(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = close_at_once;
    server.count_lost = 1;
    tw_port *p = tcp_server(&server);
    tw_tls_options opt = { .ca_file = ca_pem };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 1);
    waiting++;
    run_reactor();
    assert_non_null(o.failure);
    assert_true(tw_failure_check(o.failure, TW_ERR_TLS, -1));
    assert_int_equal(client.built, 0);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static void answer_http(conn *c)
{
    assert_null(tw_tls_server_name(c->base.transport));   /* no TLS transport */
    static const char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(tw_transport_write(c->base.transport, reply, sizeof reply - 1), 0);
}

static void test_plain_server_answering_garbage(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = answer_http;
    server.count_lost = 1;      /* the client closes after its alert */
    tw_port *p = tcp_server(&server);
    tw_tls_options opt = { .ca_file = ca_pem };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 1);
    waiting++;
    run_reactor();
    assert_non_null(o.failure);
    assert_true(tw_failure_check(o.failure, TW_ERR_TLS, -1));
    assert_non_null(strstr(tw_failure_message(o.failure), "TLS handshake with 127.0.0.1:"));
    assert_int_equal(client.built, 0);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Timeout and cancel ----------------------------------------------------------------------------- */

static void test_handshake_timeout(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.count_lost = 1;      /* the client gives up and aborts */
    tw_port *p = tcp_server(&server);   /* accepts, never answers */
    tw_tls_options opt = { .ca_file = ca_pem };
    outcome o = { 0 };
    double start = monotonic_now();
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 0.3, 1);
    waiting++;
    run_reactor();
    double took = monotonic_now() - start;
    assert_non_null(o.failure);
    assert_true(tw_failure_check(o.failure, TW_ERR_TIMEOUT, ETIMEDOUT));
    assert_true(took >= 0.25);
    assert_int_equal(server.made_n, 1);  /* the TCP connection was made */
    assert_int_equal(client.failed_n, 1);
    assert_int_equal(client.built, 0);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static tw_deferred *to_cancel;

/* The ClientHello came: the handshake is under way. */
static void cancel_client(conn *c, const char *data, size_t len)
{
    if (to_cancel) {
        tw_deferred *d = to_cancel;
        to_cancel = NULL;
        tw_deferred_cancel(d);
        tw_deferred_unref(d);
    }
}

static void test_cancel_during_the_handshake(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = cancel_client;
    server.count_lost = 1;
    tw_port *p = tcp_server(&server);
    tw_tls_options opt = { .ca_file = ca_pem };
    outcome o = { 0 };
    to_cancel = tls_connect(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 1);
    waiting++;
    run_reactor();
    assert_null(to_cancel);
    assert_non_null(o.failure);
    assert_true(tw_failure_check(o.failure, TW_ERR_CANCELLED, -1));
    assert_int_equal(client.failed_n, 1);
    assert_int_equal(client.built, 0);
    assert_int_equal(server.lost_n, 1);  /* the attempt was aborted */
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* The client's factory refuses the verified connection. */
static void test_client_factory_may_refuse(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    client.refuse = 1;
    server.count_lost = 1;
    tw_port *p = tls_server(&server, server_pem, server_key, NULL);
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost" };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 1);
    waiting++;
    run_reactor();
    assert_true(tw_failure_check(o.failure, TW_ERR_CONNECTION_DONE, -1));
    assert_int_equal(client.failed_n, 1);
    assert_int_equal(server.done_n, 1);  /* closed with a close_notify */
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Writes around the handshake ------------------------------------------------------------------------ */

/* The client writes from connection_made, while the server's side of the
 * handshake is still waiting for the client's Finished, and again from the
 * Deferred's callback; the server writes from its connection_made. All of
 * it arrives, in order, after the receiving protocol's connection_made. */
static const char *early_parts[] = { "first ", "second ", "third " };

static void write_early(conn *c)
{
    struct iovec iov[2] = {
        { (void *)early_parts[1], strlen(early_parts[1]) },
        { (void *)early_parts[2], strlen(early_parts[2]) },
    };
    assert_int_equal(tw_transport_write(c->base.transport, early_parts[0],
                                        strlen(early_parts[0])), 0);
    assert_int_equal(tw_transport_writev(c->base.transport, iov, 2), 0);
}

static void write_from_callback(tw_result *r, void *arg)
{
    tw_protocol *p = r->value;
    assert_int_equal(tw_transport_write(p->transport, "fourth", 6), 0);
}

static void server_greets(conn *c)
{
    assert_int_equal(tw_transport_write(c->base.transport, "welcome", 7), 0);
}

static const char all_parts[] = "first second third fourth";

static void close_once_all_came(conn *c, const char *data, size_t len)
{
    if (c->in_len >= strlen(all_parts)) {
        assert_int_equal(c->in_len, strlen(all_parts));
        assert_memory_equal(c->in, all_parts, c->in_len);
        tw_transport_lose_connection(c->base.transport);
    }
}

static size_t client_got;

static void remember_received(conn *c, const char *data, size_t len)
{
    client_got = c->in_len;
    assert_memory_equal(c->in, "welcome", c->in_len);
}

static void test_early_writes_arrive(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = server_greets;
    server.data = close_once_all_came;
    server.count_lost = 1;
    client.made = write_early;
    client.data = remember_received;
    client.count_lost = 1;
    client_got = 0;
    tw_port *p = tls_server(&server, server_pem, server_key, NULL);
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost" };
    outcome o = { 0 };
    tw_deferred *d = tls_connect(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 0);
    tw_deferred_add_callback(d, write_from_callback, NULL);
    tw_deferred_unref(d);
    waiting = 2;
    run_reactor();
    assert_null(o.failure);
    assert_int_equal(client_got, 7);
    assert_int_equal(server.done_n, 1);
    assert_int_equal(client.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Closing ---------------------------------------------------------------------------------------- */

static void say_bye_and_close(conn *c)
{
    assert_int_equal(tw_transport_write(c->base.transport, "bye", 3), 0);
    tw_transport_lose_connection(c->base.transport);
    assert_int_equal(tw_transport_write(c->base.transport, "late", 4), -ENOTCONN);
}

static void count_received(conn *c, const char *data, size_t len)
{
    client_got = c->in_len;
}

/* The peer's close_notify is a clean close. */
static void test_peer_close_notify_is_clean(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = say_bye_and_close;
    server.count_lost = 1;
    client.data = count_received;
    client.count_lost = 1;
    client_got = 0;
    tw_port *p = tls_server(&server, server_pem, server_key, NULL);
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost" };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 0);
    waiting = 2;
    run_reactor();
    assert_null(o.failure);
    assert_int_equal(client_got, 3);
    assert_int_equal(client.done_n, 1);
    assert_int_equal(server.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static void abort_at_once(conn *c) { tw_transport_abort_connection(c->base.transport); }

/* A TCP close without a close_notify may be a truncation: CONNECTION_LOST,
 * with the TLS failure as its cause. */
static void test_close_without_close_notify_is_lost(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = abort_at_once;
    server.count_lost = 1;
    client.count_lost = 1;
    tw_port *p = tls_server(&server, server_pem, server_key, NULL);
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost" };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 0);
    waiting = 2;
    run_reactor();
    assert_null(o.failure);              /* the client had finished its handshake */
    assert_int_equal(client.lost_lost_n, 1);
    assert_true(tw_failure_check(client.reason, TW_ERR_CONNECTION_LOST, -1));
    assert_non_null(tw_failure_find(client.reason, TW_ERR_TLS, -1));
    assert_non_null(strstr(tw_failure_message(client.reason), "close_notify"));
    assert_true(tw_failure_check(server.reason, TW_ERR_CONNECTION_LOST, ECONNABORTED));
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Half-close: the server sends "bye" and its close_notify; the client, with
 * read_connection_lost, answers after it and closes. */
static void bye_then_half_close(conn *c)
{
    assert_int_equal(tw_transport_write(c->base.transport, "bye", 3), 0);
    tw_transport_lose_write_connection(c->base.transport);
    assert_int_equal(tw_transport_write(c->base.transport, "late", 4), -ENOTCONN);
}

static void answer_and_close(conn *c)
{
    assert_int_equal(c->in_len, 3);
    assert_int_equal(tw_transport_write(c->base.transport, "ack", 3), 0);
    tw_transport_lose_connection(c->base.transport);
}

static void test_half_close(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.half_close = 1;
    server.made = bye_then_half_close;
    server.count_lost = 1;
    client.half_close = 1;
    client.read_lost = answer_and_close;
    client.count_lost = 1;
    tw_port *p = tls_server(&server, server_pem, server_key, NULL);
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost" };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 0);
    waiting = 2;
    run_reactor();
    assert_null(o.failure);
    assert_int_equal(client.read_lost_n, 1);
    assert_int_equal(server.write_lost_n, 1);
    assert_int_equal(server.read_lost_n, 1);  /* the client's close_notify */
    assert_int_equal(client.done_n, 1);
    assert_int_equal(server.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Client certificates ------------------------------------------------------------------------------ */

static void test_client_certificate(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = echo;
    server.count_lost = 1;
    client.made = write_greeting;
    client.data = close_after_greeting;
    client.count_lost = 1;
    /* The server trusts the CA for clients; the client shows a certificate
     * the CA signed. */
    tw_port *p = tls_server(&server, server_pem, server_key, ca_pem);
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost",
                           .cert_file = server_pem, .key_file = server_key };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &opt, 5, 0);
    waiting = 2;
    run_reactor();
    assert_null(o.failure);
    assert_int_equal(server.done_n, 1);
    assert_int_equal(client.done_n, 1);
    outcome_clear(&o);

    /* Without one, the server refuses the handshake. With TLS 1.3 the client
     * has finished its side by then: its connection is lost, with the
     * server's alert as the cause. */
    int built = server.built;
    tw_tls_options none = { .ca_file = ca_pem, .server_name = "localhost" };
    client.made = NULL;
    client.data = NULL;
    watch(&o, &client, "127.0.0.1", tw_port_number(p), &none, 5, 0);
    waiting = 1;
    run_reactor();
    assert_int_equal(server.built, built);
    assert_null(o.failure);
    assert_true(tw_failure_check(client.reason, TW_ERR_CONNECTION_LOST, -1));
    assert_non_null(tw_failure_find(client.reason, TW_ERR_TLS, -1));
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Listening failures ---------------------------------------------------------------------------------- */

static void test_listen_failures_are_immediate(void **state)
{
    side server;
    side_init(&server);
    char missing[160];
    path_in_dir(missing, sizeof missing, "missing.pem");
    int err = 0;

    assert_null(tw_listen_tls("127.0.0.1", 0, &server.f, NULL, &err));
    assert_int_equal(err, -EINVAL);
    tw_tls_options no_cert = { .key_file = server_key };
    assert_null(tw_listen_tls("127.0.0.1", 0, &server.f, &no_cert, &err));
    assert_int_equal(err, -EINVAL);
    tw_tls_options good = { .cert_file = server_pem, .key_file = server_key };
    assert_null(tw_listen_tls("127.0.0.1", 0, NULL, &good, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(tw_listen_tls("not an address", 0, &server.f, &good, &err));
    assert_int_equal(err, -EINVAL);

    tw_tls_options absent = { .cert_file = missing, .key_file = server_key };
    assert_null(tw_listen_tls("127.0.0.1", 0, &server.f, &absent, &err));
    assert_int_equal(err, -ENOENT);

    /* Files that are no PEM, or a key of another certificate: the reason is
     * logged. */
    tw_test_capture_log();
    tw_tls_options junk = { .cert_file = junk_pem, .key_file = server_key };
    assert_null(tw_listen_tls("127.0.0.1", 0, &server.f, &junk, &err));
    assert_int_equal(err, -EINVAL);
    assert_int_equal(tw_test_captured.last_level, TW_LOG_ERROR);
    assert_non_null(strstr(tw_test_captured.last, "cannot load the certificate"));
    tw_tls_options mismatch = { .cert_file = server_pem, .key_file = other_key };
    assert_null(tw_listen_tls("127.0.0.1", 0, &server.f, &mismatch, &err));
    assert_int_equal(err, -EINVAL);
    assert_non_null(strstr(tw_test_captured.last, "cannot load the private key"));
    tw_tls_options bad_ca = { .cert_file = server_pem, .key_file = server_key,
                              .ca_file = junk_pem };
    assert_null(tw_listen_tls("127.0.0.1", 0, &server.f, &bad_ca, &err));
    assert_int_equal(err, -EINVAL);
    assert_int_equal(tw_test_captured.count, 3);
    tw_test_restore_log();
    side_clear(&server);
}

/* 10 MB each way through an echo server, in bounded memory ------------------------------------------ */

#define HIGH_WATERMARK (64 * 1024)           /* the defaults */
#define LOW_WATERMARK (16 * 1024)
#define RECORD (16 * 1024 + 64)              /* one TLS record's ciphertext, at most */
#define CHUNK (64 * 1024)                    /* what the client writes at a time */
#define PAUSE_EVERY (1024 * 1024)

/* The client sends a pattern as fast as its producer may and reads with
 * pauses: every PAUSE_EVERY bytes it stops reading until the server's write
 * buffer has gone past the high watermark (or it has sent everything). The
 * server is an echo whose own reading is the producer of its writes. */
static struct bulk {
    tw_factory server_f, client_f;
    tw_protocol server_p, client_p;
    size_t total, sent, received, next_pause;
    size_t server_max_buffer, client_max_buffer;
    int server_over_high, client_pauses, producer_pauses;
    int producer_paused, reading_paused, writing;
    tw_transport *client_t, *server_t;
    int mismatch, done;
} B;

static unsigned char pattern_byte(size_t i) { return (unsigned char)(i * 7 + (i >> 12)); }

static int matches_pattern(const char *data, size_t len, size_t offset)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] != pattern_byte(offset + i))
            return 0;
    return 1;
}

static void bulk_server_made(tw_protocol *p)
{
    B.server_t = p->transport;
    assert_int_equal(tw_transport_register_producer(p->transport, &tw_transport_reading_producer,
                                                    p->transport), 0);
}

static void bulk_server_data(tw_protocol *p, const char *data, size_t len)
{
    assert_int_equal(tw_transport_write(p->transport, data, len), 0);
    size_t buffered = tw_transport_write_buffer_size(p->transport);
    if (buffered > B.server_max_buffer)
        B.server_max_buffer = buffered;
    if (buffered > HIGH_WATERMARK) {
        B.server_over_high++;
        if (B.reading_paused) {
            B.reading_paused = 0;
            tw_transport_resume_reading(B.client_t);
        }
    }
}

static void bulk_lost(tw_protocol *p, tw_failure *reason)
{
    if (tw_failure_check(reason, TW_ERR_CONNECTION_DONE, -1))
        B.done++;
    count_down();
}

static void bulk_pump(void)
{
    static char chunk[CHUNK];
    assert_false(B.writing);            /* never resumed from inside a write */
    while (!B.producer_paused && B.sent < B.total) {
        size_t n = B.total - B.sent < CHUNK ? B.total - B.sent : CHUNK;
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)pattern_byte(B.sent + i);
        B.writing = 1;
        assert_int_equal(tw_transport_write(B.client_t, chunk, n), 0);
        B.writing = 0;
        B.sent += n;
        size_t buffered = tw_transport_write_buffer_size(B.client_t);
        if (buffered > B.client_max_buffer)
            B.client_max_buffer = buffered;
    }
    if (B.sent == B.total && B.reading_paused) {
        B.reading_paused = 0;
        tw_transport_resume_reading(B.client_t);
    }
}

static void bulk_producer_pause(void *arg)
{
    B.producer_paused = 1;
    B.producer_pauses++;
}

static void bulk_producer_resume(void *arg)
{
    B.producer_paused = 0;
    bulk_pump();
}

static const tw_producer_ops bulk_producer = {
    .pause = bulk_producer_pause,
    .resume = bulk_producer_resume,
};

static void bulk_client_made(tw_protocol *p)
{
    B.client_t = p->transport;
    assert_int_equal(tw_transport_register_producer(p->transport, &bulk_producer, NULL), 0);
    bulk_pump();
}

static void bulk_client_data(tw_protocol *p, const char *data, size_t len)
{
    if (!matches_pattern(data, len, B.received))
        B.mismatch++;
    B.received += len;
    if (B.received == B.total) {
        tw_transport_lose_connection(p->transport);
        return;
    }
    if (B.received >= B.next_pause && B.sent < B.total &&
        tw_transport_write_buffer_size(B.server_t) <= LOW_WATERMARK) {
        while (B.next_pause <= B.received)
            B.next_pause += PAUSE_EVERY;
        B.client_pauses++;
        B.reading_paused = 1;
        tw_transport_pause_reading(p->transport);
    }
}

static const tw_protocol_ops bulk_server_ops = {
    .connection_made = bulk_server_made,
    .data_received = bulk_server_data,
    .connection_lost = bulk_lost,
};

static const tw_protocol_ops bulk_client_ops = {
    .connection_made = bulk_client_made,
    .data_received = bulk_client_data,
    .connection_lost = bulk_lost,
};

static tw_protocol *bulk_build_server(tw_factory *f, const struct sockaddr *peer)
{
    B.server_p.ops = &bulk_server_ops;
    return &B.server_p;
}

static tw_protocol *bulk_build_client(tw_factory *f, const struct sockaddr *peer)
{
    B.client_p.ops = &bulk_client_ops;
    return &B.client_p;
}

static void test_ten_megabytes_each_way_in_bounded_memory(void **state)
{
    memset(&B, 0, sizeof B);
    B.server_f.build_protocol = bulk_build_server;
    B.client_f.build_protocol = bulk_build_client;
    B.total = (size_t)(10.0 * 1024 * 1024 * test_scale());
    B.next_pause = PAUSE_EVERY;

    tw_tls_options server_opt = { .cert_file = server_pem, .key_file = server_key };
    int err;
    tw_port *p = tw_listen_tls("127.0.0.1", 0, &B.server_f, &server_opt, &err);
    assert_non_null(p);
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost" };
    tw_deferred *d = tw_connect_tls("127.0.0.1", tw_port_number(p), &B.client_f, &opt, 5);
    tw_deferred_unref(d);
    waiting = 2;
    double start = monotonic_now();
    run_reactor();
    double took = monotonic_now() - start;

    assert_int_equal(B.done, 2);
    assert_int_equal(B.sent, B.total);
    assert_int_equal(B.received, B.total);
    assert_int_equal(B.mismatch, 0);
    /* Each end's buffer stayed within the watermark and what one call
     * added: a record for the echo, a chunk for the client. */
    assert_true(B.server_max_buffer <= HIGH_WATERMARK + RECORD);
    assert_true(B.client_max_buffer <= HIGH_WATERMARK + CHUNK + 4 * 64);
    assert_true(B.producer_pauses > 0);
    print_message("%zu MB each way in %.2f s (client producer paused %d times, reading %d times;"
                  " server over the watermark %d times; at most %zu / %zu bytes buffered)\n",
                  B.total >> 20, took, B.producer_pauses, B.client_pauses, B.server_over_high,
                  B.server_max_buffer, B.client_max_buffer);
    stop_port(p);
}

/* Interoperation with openssl s_server ------------------------------------------------------------------- */

/* Starts `openssl s_server -rev` (an echo that reverses each line) on a
 * port the kernel picks, for one connection; returns its pid and the port
 * it printed. Its output stays on *out until the end, lest it die writing. */
static pid_t start_s_server(int *port, int *out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(fds[1], 1);
        dup2(null, 2);
        close(fds[0]);
        execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
               "-rev", "-cert", server_pem, "-key", server_key, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    /* It prints "ACCEPT 127.0.0.1:<port>" once it listens. */
    char text[4096];
    size_t len = 0;
    char *line = NULL;
    while (!line && len < sizeof text - 1) {
        struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        ssize_t n = read(fds[0], text + len, sizeof text - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        text[len] = '\0';
        char *at = strstr(text, "ACCEPT 127.0.0.1:");
        if (at && strchr(at, '\n'))
            line = at;
    }
    if (!line) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        fail_msg("openssl s_server did not say which port it listens on");
    }
    *port = atoi(line + strlen("ACCEPT 127.0.0.1:"));
    *out = fds[0];
    return pid;
}

static char interop_reply[64];

static void send_line(conn *c)
{
    assert_int_equal(tw_transport_write(c->base.transport, "hello\n", 6), 0);
}

/* Keeps the reply and closes once it is whole. */
static void close_after_reply(conn *c, const char *data, size_t len)
{
    size_t n = c->in_len < sizeof interop_reply - 1 ? c->in_len : sizeof interop_reply - 1;
    memcpy(interop_reply, c->in, n);
    interop_reply[n] = '\0';
    if (c->in_len >= 6)
        tw_transport_lose_connection(c->base.transport);
}

static void test_interop_with_openssl_s_server(void **state)
{
    int port, out;
    pid_t pid = start_s_server(&port, &out);
    side client;
    side_init(&client);
    client.made = send_line;
    client.data = close_after_reply;
    client.count_lost = 1;
    interop_reply[0] = '\0';
    tw_tls_options opt = { .ca_file = ca_pem, .server_name = "localhost" };
    outcome o = { 0 };
    watch(&o, &client, "127.0.0.1", port, &opt, 10, 0);
    waiting = 1;
    run_reactor();
    assert_null(o.failure);
    assert_string_equal(interop_reply, "olleh\n");
    assert_int_equal(client.done_n, 1);

    /* It served its one connection and exits (the reactor's loop may have
     * reaped it already: libev's default loop reaps every child). */
    int status = 0, exited = 0;
    for (int i = 0; i < 500 && !exited; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        exited = r == pid || (r < 0 && errno == ECHILD);
        if (!exited)
            usleep(10000);
    }
    if (!exited) {
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
    }
    close(out);
    assert_true(exited);
    outcome_clear(&o);
    side_clear(&client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_and_clean_close),
        cmocka_unit_test(test_host_is_the_default_server_name),
        cmocka_unit_test(test_ip_literal_is_verified_without_sni),
        cmocka_unit_test(test_host_name_mismatch),
        cmocka_unit_test(test_unknown_ca),
        cmocka_unit_test(test_self_signed_server),
        cmocka_unit_test(test_insecure_connects_anyway),
        cmocka_unit_test(test_unreadable_ca_file_errbacks),
        cmocka_unit_test(test_plain_server_closing_at_once),
        cmocka_unit_test(test_plain_server_answering_garbage),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_cancel_during_the_handshake),
        cmocka_unit_test(test_client_factory_may_refuse),
        cmocka_unit_test(test_early_writes_arrive),
        cmocka_unit_test(test_peer_close_notify_is_clean),
        cmocka_unit_test(test_close_without_close_notify_is_lost),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_listen_failures_are_immediate),
        cmocka_unit_test(test_ten_megabytes_each_way_in_bounded_memory),
        cmocka_unit_test(test_interop_with_openssl_s_server),
    };
    return cmocka_run_group_tests(tests, make_certificates, remove_certificates);
}
