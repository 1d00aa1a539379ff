/* Tests for include/twine/net.h: TCP and UNIX-domain transports, listening
 * ports, connectors and the reconnecting client, over real sockets on the
 * loopback interface (ports picked by the kernel). Every test stops the
 * reactor itself once the events it waits for have come; a safety timer fails
 * a test that would hang.
 *
 * TWINE_TEST_SCALE (a factor, default 1) scales the bulk transfer down for
 * slow runs such as valgrind's. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SAFETY_SECONDS 30.0
#include "testutil.h"
#include <twine/reactor.h>


/* Running the reactor ------------------------------------------------------------ */


static double test_scale(void)
{
    const char *s = getenv("TWINE_TEST_SCALE");
    double f = s ? atof(s) : 1.0;
    return f > 0 && f <= 1 ? f : 1.0;
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A configurable protocol and its factory ------------------------------------------ */

typedef struct side side;
typedef struct conn conn;

struct side {
    tw_factory f;
    /* Behaviour, each optional. */
    void (*made)(conn *c);
    void (*data)(conn *c, const char *data, size_t len);
    void (*lost)(conn *c, tw_failure *reason);
    void (*read_lost)(conn *c);
    void (*write_lost)(conn *c);
    void (*failed)(side *s);    /* after connection_failed's bookkeeping */
    int half_close;             /* give the protocol the half-close hooks */
    int refuse;                 /* build_protocol returns NULL */
    int count_lost;             /* each connection_lost counts down */
    int count_failed;           /* each connection_failed counts down */
    /* What happened. */
    int built, made_n, lost_n, freed_n, factory_lost_n, failed_n;
    int read_lost_n, write_lost_n, done_n, lost_lost_n;
    int factory_lost_early;     /* the factory heard before the protocol */
    char tag[64];               /* what write_tag sends */
    tw_failure *reason;         /* the last connection_lost's */
    tw_failure *failure;        /* the last connection_failed's */
    struct sockaddr_storage built_peer;
    conn *last;                 /* the last protocol built (until freed) */
};

struct conn {
    tw_protocol base;
    side *s;
    char *in;                   /* everything received */
    size_t in_len, in_cap;
    int lost;                   /* connection_lost ran */
    char tag[64];
    size_t n;                   /* a counter for the test's use */
};

static conn *conn_of(tw_protocol *p) { return TW_CONTAINER_OF(p, conn, base); }

static void conn_made(tw_protocol *p)
{
    conn *c = conn_of(p);
    c->s->made_n++;
    assert_non_null(p->transport);
    if (c->s->made)
        c->s->made(c);
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
    /* Writing and closing from here are harmless. */
    assert_int_equal(tw_transport_write(p->transport, "x", 1), -ENOTCONN);
    tw_transport_lose_connection(p->transport);
    if (s->lost)
        s->lost(c, reason);
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
    conn *c = conn_of(p);
    c->s->write_lost_n++;
    if (c->s->write_lost)
        c->s->write_lost(c);
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

static side *side_of(tw_factory *f) { return TW_CONTAINER_OF(f, side, f); }

static tw_protocol *side_build(tw_factory *f, const struct sockaddr *peer)
{
    side *s = side_of(f);
    assert_non_null(peer);
    memcpy(&s->built_peer, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                 : peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                 : sizeof(sa_family_t));
    if (s->refuse)
        return NULL;
    s->built++;
    conn *c = calloc(1, sizeof *c);
    c->base.ops = s->half_close ? &half_close_ops : &plain_ops;
    c->s = s;
    snprintf(c->tag, sizeof c->tag, "%s", s->tag);
    s->last = c;
    return &c->base;
}

static void side_factory_lost(tw_factory *f, tw_failure *reason)
{
    side *s = side_of(f);
    s->factory_lost_n++;
    if (s->factory_lost_n > s->lost_n)
        s->factory_lost_early = 1;
}

static void side_failed(tw_factory *f, tw_failure *reason)
{
    side *s = side_of(f);
    s->failed_n++;
    tw_failure_unref(s->failure);
    s->failure = tw_failure_ref(reason);
    if (s->failed)
        s->failed(s);
    if (s->count_failed)
        count_down();
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
static void echo(conn *c, const char *data, size_t len)
{
    assert_int_equal(tw_transport_write(c->base.transport, data, len), 0);
}

static void write_tag(conn *c)
{
    assert_int_equal(tw_transport_write(c->base.transport, c->tag, strlen(c->tag)), 0);
}

/* Closes once the tag has come back whole. */
static void close_after_tag(conn *c, const char *data, size_t len)
{
    size_t want = strlen(c->tag);
    if (c->in_len >= want) {
        assert_int_equal(c->in_len, want);
        assert_memory_equal(c->in, c->tag, want);
        tw_transport_lose_connection(c->base.transport);
    }
}

/* Ports and connections ------------------------------------------------------------ */

static tw_port *listen_on(side *s, const char *iface)
{
    int err = 1;
    tw_port *p = tw_listen_tcp(iface, 0, &s->f, &err);
    assert_non_null(p);
    assert_int_equal(err, 1);            /* untouched on success */
    assert_true(tw_port_number(p) > 0);
    return p;
}

static void on_port_stopped(tw_result *r, void *arg)
{
    (*(int *)arg)++;
    count_down();
}

/* Stops p and waits until it has closed. */
static void stop_port(tw_port *p)
{
    int fired = 0;
    tw_deferred *d = tw_port_stop_listening(p);
    tw_deferred_add_callback(d, on_port_stopped, &fired);
    tw_deferred_unref(d);
    assert_int_equal(fired, 0);          /* from the loop, not at once */
    waiting++;
    run_reactor();
    assert_int_equal(fired, 1);
}

/* What a connect Deferred fired with. */
typedef struct outcome {
    int fired;
    int count;                  /* firing counts down */
    tw_protocol *p;             /* borrowed */
    tw_failure *failure;        /* a reference */
} outcome;

static void outcome_ok(tw_result *r, void *arg)
{
    outcome *o = arg;
    o->fired++;
    o->p = r->value;
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

static void watch(outcome *o, tw_deferred *d, int count)
{
    assert_non_null(d);
    o->count = count;
    tw_deferred_add_callbacks(d, outcome_ok, outcome_failed, o);
    tw_deferred_unref(d);
    assert_int_equal(o->fired, 0);       /* from the loop, not at once */
    if (count)
        waiting++;
}

static void outcome_clear(outcome *o)
{
    tw_failure_unref(o->failure);
    memset(o, 0, sizeof *o);
}

static int address_port(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
}

/* A port on 127.0.0.1 that refuses connections: bound, never listening. The
 * socket keeps the port from anyone else; close it when done. */
static int refusing_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A plain blocking client socket connected to 127.0.0.1:port. */
static int raw_connect(int port)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET,
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        .sin_port = htons((uint16_t)port),
    };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Resets a connection: the peer gets an RST, not a FIN. */
static void reset_close(int fd)
{
    struct linger l = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
    close(fd);
}

/* Listening -------------------------------------------------------------------------- */

static void test_listen_reports_the_port_it_got(void **state)
{
    side s;
    side_init(&s);
    const char *ifaces[] = { "127.0.0.1", "::1", NULL, "" };
    for (size_t i = 0; i < 4; i++) {
        tw_port *p = listen_on(&s, ifaces[i]);
        struct sockaddr_storage a;
        socklen_t len = 0;
        assert_int_equal(tw_port_get_host(p, &a, &len), 0);
        assert_int_equal(address_port(&a), tw_port_number(p));
        if (i == 0)
            assert_int_equal(a.ss_family, AF_INET);
        if (i == 1)
            assert_int_equal(a.ss_family, AF_INET6);
        stop_port(p);
    }
}

static void test_listen_failures_are_immediate(void **state)
{
    side s;
    side_init(&s);
    int err = 0;
    assert_null(tw_listen_tcp("localhost", 0, &s.f, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(tw_listen_tcp("127.0.0.1", 70000, &s.f, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(tw_listen_tcp("127.0.0.1", 0, NULL, &err));
    assert_int_equal(err, -EINVAL);

    tw_port *p = listen_on(&s, "127.0.0.1");
    assert_null(tw_listen_tcp("127.0.0.1", tw_port_number(p), &s.f, &err));
    assert_int_equal(err, -EADDRINUSE);
    assert_null(tw_listen_tcp("192.0.2.1", 0, &s.f, &err));   /* not ours */
    assert_int_equal(err, -EADDRNOTAVAIL);
    stop_port(p);
}

static void close_in_connection_made(conn *c);

static void test_port_is_reusable_at_once(void **state)
{
    /* The server closes first, so its end of the connection waits in
     * TIME_WAIT on the port; SO_REUSEADDR lets a new listener bind it. */
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = close_in_connection_made;
    server.count_lost = 1;
    client.count_lost = 1;
    tw_port *p = listen_on(&server, "127.0.0.1");
    int port = tw_port_number(p);
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", port, &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_int_equal(client.done_n, 1);
    stop_port(p);

    int err = 0;
    p = tw_listen_tcp("127.0.0.1", port, &server.f, &err);
    assert_non_null(p);
    assert_int_equal(tw_port_number(p), port);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static void test_stop_listening_leaves_connections_alone(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = echo;
    server.count_lost = 1;
    client.count_lost = 1;
    tw_port *p = listen_on(&server, "127.0.0.1");
    int port = tw_port_number(p);

    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", port, &client.f, 5), 1);
    run_reactor();
    assert_non_null(o.p);
    assert_int_equal(server.made_n, 1);

    /* Twice before it closed: the same Deferred. */
    tw_deferred *d1 = tw_port_stop_listening(p);
    tw_deferred *d2 = tw_port_stop_listening(p);
    assert_ptr_equal(d1, d2);
    tw_deferred_unref(d2);
    int stopped = 0;
    tw_deferred_add_callback(d1, on_port_stopped, &stopped);
    tw_deferred_unref(d1);
    assert_int_equal(stopped, 0);
    waiting++;
    run_reactor();
    assert_int_equal(stopped, 1);

    /* The accepted connection still echoes. */
    conn *c = conn_of(o.p);
    snprintf(c->tag, sizeof c->tag, "still here");
    client.data = close_after_tag;
    write_tag(c);
    waiting = 2;
    run_reactor();
    assert_int_equal(client.done_n, 1);
    assert_int_equal(server.done_n, 1);

    /* New connections are refused. */
    outcome o2 = { 0 };
    watch(&o2, tw_connect_tcp("127.0.0.1", port, &client.f, 5), 1);
    run_reactor();
    assert_true(tw_failure_check(o2.failure, TW_ERR_SYS, ECONNREFUSED));
    outcome_clear(&o);
    outcome_clear(&o2);
    side_clear(&server);
    side_clear(&client);
}

/* Echo over TCP and UNIX sockets ----------------------------------------------------------- */

static void check_addresses(tw_transport *t, int family, int host_port, int peer_port)
{
    struct sockaddr_storage a;
    socklen_t len = 0;
    assert_int_equal(tw_transport_get_host(t, &a, &len), 0);
    assert_int_equal(a.ss_family, family);
    assert_true(len > 0);
    if (host_port)
        assert_int_equal(address_port(&a), host_port);
    assert_int_equal(tw_transport_get_peer(t, &a, &len), 0);
    assert_int_equal(a.ss_family, family);
    if (peer_port)
        assert_int_equal(address_port(&a), peer_port);
}

static int server_port;

static void server_checks_addresses(conn *c)
{
    check_addresses(c->base.transport, c->s->built_peer.ss_family, server_port, 0);
}

/* family: the server's view of the client's address; 0 for the family
 * the port was bound with. */
static void echo_once(const char *iface, const char *host, int family)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = server_checks_addresses;
    server.data = echo;
    server.count_lost = 1;
    client.made = write_tag;
    client.data = close_after_tag;
    client.count_lost = 1;
    snprintf(client.tag, sizeof client.tag, "hello over %s", host);
    tw_port *p = listen_on(&server, iface);
    server_port = tw_port_number(p);
    if (!family) {
        struct sockaddr_storage a;
        socklen_t len;
        tw_port_get_host(p, &a, &len);
        family = a.ss_family;
    }

    outcome o = { 0 };
    watch(&o, tw_connect_tcp(host, server_port, &client.f, 5), 0);
    assert_int_equal(client.built, 0);   /* connecting takes the loop */
    waiting = 2;
    run_reactor();

    assert_int_equal(o.fired, 1);
    assert_non_null(o.p);
    assert_int_equal(client.made_n, 1);
    assert_int_equal(server.made_n, 1);
    assert_int_equal(client.done_n, 1);
    assert_int_equal(server.done_n, 1);
    assert_int_equal(client.freed_n, 1);
    assert_int_equal(server.freed_n, 1);
    /* The client factory hears of the loss after the protocol; a server
     * factory is not told. */
    assert_int_equal(client.factory_lost_n, 1);
    assert_false(client.factory_lost_early);
    assert_int_equal(server.factory_lost_n, 0);
    assert_int_equal(client.failed_n, 0);
    assert_int_equal(server.built_peer.ss_family, family);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static void test_echo_over_ipv4(void **state) { echo_once("127.0.0.1", "127.0.0.1", AF_INET); }
static void test_echo_over_ipv6(void **state) { echo_once("::1", "::1", AF_INET6); }
/* Dual stack where there is IPv6: an IPv4 client shows as IPv4-mapped. */
static void test_echo_on_every_address(void **state) { echo_once(NULL, "127.0.0.1", 0); }

static void client_checks_addresses(conn *c)
{
    check_addresses(c->base.transport, AF_INET, 0, server_port);
    write_tag(c);
}

static void test_connect_by_name_tries_each_address(void **state)
{
    /* "localhost" comes from the hosts file; the server is on IPv4 only, so
     * an IPv6 address the resolver may also give is refused and skipped. */
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = echo;
    server.count_lost = 1;
    client.made = client_checks_addresses;
    client.data = close_after_tag;
    client.count_lost = 1;
    snprintf(client.tag, sizeof client.tag, "hello, localhost");
    tw_port *p = listen_on(&server, "127.0.0.1");
    server_port = tw_port_number(p);
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("localhost", server_port, &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_non_null(o.p);
    assert_int_equal(client.done_n, 1);
    assert_int_equal(server.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static char unix_path[108];

static void make_unix_path(void)
{
    snprintf(unix_path, sizeof unix_path, "/tmp/twine-test-net-%d.sock", (int)getpid());
}

static void test_echo_over_unix_socket(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = echo;
    server.count_lost = 1;
    client.made = write_tag;
    client.data = close_after_tag;
    client.count_lost = 1;
    snprintf(client.tag, sizeof client.tag, "hello over a UNIX socket");
    make_unix_path();

    /* A socket file left behind is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, unix_path);
    unlink(unix_path);
    assert_int_equal(bind(stale, (struct sockaddr *)&sun, sizeof sun), 0);
    close(stale);

    int err = 0;
    tw_port *p = tw_listen_unix(unix_path, &server.f, &err);
    assert_non_null(p);
    assert_int_equal(tw_port_number(p), -1);
    struct sockaddr_storage a;
    socklen_t len;
    assert_int_equal(tw_port_get_host(p, &a, &len), 0);
    assert_int_equal(a.ss_family, AF_UNIX);
    assert_string_equal(((struct sockaddr_un *)&a)->sun_path, unix_path);

    outcome o = { 0 };
    watch(&o, tw_connect_unix(unix_path, &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_non_null(o.p);
    assert_int_equal(client.done_n, 1);
    assert_int_equal(server.done_n, 1);
    assert_int_equal(client.factory_lost_n, 1);
    stop_port(p);
    struct stat st;
    assert_int_equal(stat(unix_path, &st), -1);  /* the file went with the port */

    /* Nobody listening now. */
    client.count_failed = 1;
    outcome o2 = { 0 };
    watch(&o2, tw_connect_unix(unix_path, &client.f, 5), 0);
    waiting = 1;
    run_reactor();
    assert_true(tw_failure_check(o2.failure, TW_ERR_SYS, ENOENT));
    assert_ptr_equal(client.failure, o2.failure);
    outcome_clear(&o);
    outcome_clear(&o2);
    side_clear(&server);
    side_clear(&client);
}

/* Fragmentation, writev, big writes -------------------------------------------------------- */

#define PATTERN_PERIOD 65521            /* prime: a shifted chunk never matches */
#define CHUNK (64 * 1024)

static unsigned char pattern[PATTERN_PERIOD + CHUNK];

static void fill_pattern(void)
{
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < PATTERN_PERIOD; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pattern[i] = (unsigned char)x;
    }
    for (size_t i = PATTERN_PERIOD; i < sizeof pattern; i++)
        pattern[i] = pattern[i - PATTERN_PERIOD];
}

/* The pattern's bytes [offset, offset + len), len <= CHUNK. */
static const unsigned char *pattern_at(size_t offset)
{
    return pattern + offset % PATTERN_PERIOD;
}

static int matches_pattern(const char *data, size_t len, size_t offset)
{
    while (len > 0) {
        size_t n = len < CHUNK ? len : CHUNK;
        if (memcmp(data, pattern_at(offset), n) != 0)
            return 0;
        data += n;
        len -= n;
        offset += n;
    }
    return 1;
}

#define FRAGMENTED_TOTAL (3 * 1024 * 1024 + 17)

/* Writes the pattern in many shapes: single bytes, odd sizes, writev with
 * empty entries and with many, and one big write, then closes. */
static void write_in_pieces(conn *c)
{
    tw_transport *t = c->base.transport;
    size_t off = 0;
    for (int i = 0; i < 100; i++, off++)
        assert_int_equal(tw_transport_write(t, pattern_at(off), 1), 0);
    assert_int_equal(tw_transport_write(t, "", 0), 0);
    for (size_t n = 1; n < 5000; n += 97) {
        assert_int_equal(tw_transport_write(t, pattern_at(off), n), 0);
        off += n;
    }
    for (int i = 0; i < 50; i++) {
        struct iovec iov[4] = {
            { (void *)pattern_at(off), 10 },
            { NULL, 0 },
            { (void *)pattern_at(off + 10), 1000 },
            { (void *)pattern_at(off + 1010), 3333 },
        };
        assert_int_equal(tw_transport_writev(t, iov, 4), 0);
        off += 4343;
    }
    /* More entries than one sendmsg takes (IOV_MAX). */
    static struct iovec many_iov[1500];
    for (int i = 0; i < 1500; i++, off += 3)
        many_iov[i] = (struct iovec){ (void *)pattern_at(off), 3 };
    assert_int_equal(tw_transport_writev(t, many_iov, 1500), 0);
    char *big = malloc(FRAGMENTED_TOTAL - off);
    for (size_t i = 0; i < FRAGMENTED_TOTAL - off; i++)
        big[i] = (char)*pattern_at(off + i);
    assert_int_equal(tw_transport_write(t, big, FRAGMENTED_TOTAL - off), 0);
    free(big);
    assert_int_equal(tw_transport_disconnecting(t), 0);
    tw_transport_lose_connection(t);
    assert_int_equal(tw_transport_disconnecting(t), 1);
    assert_int_equal(tw_transport_write(t, "late", 4), -ENOTCONN);
    assert_int_equal(c->s->lost_n, 0);    /* from the loop, not at once */
}

static void test_lose_connection_flushes_everything(void **state)
{
    /* The server writes 3 MB in odd pieces and closes at once; the client
     * gets every byte, in order, in fragments of whatever size. */
    fill_pattern();
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = write_in_pieces;
    server.count_lost = 1;
    client.count_lost = 1;
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_int_equal(server.done_n, 1);
    assert_int_equal(client.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static size_t fragments_seen;

static void check_received_pattern(conn *c)
{
    assert_int_equal(c->in_len, FRAGMENTED_TOTAL);
    assert_true(matches_pattern(c->in, c->in_len, 0));
}

static void count_fragment(conn *c, const char *data, size_t len)
{
    fragments_seen++;
}

static void client_checks_pattern(conn *c, tw_failure *reason)
{
    check_received_pattern(c);
}

static void test_data_arrives_whole_and_in_order(void **state)
{
    fill_pattern();
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = write_in_pieces;
    server.count_lost = 1;
    client.data = count_fragment;
    client.lost = client_checks_pattern;
    client.count_lost = 1;
    fragments_seen = 0;
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_true(fragments_seen > 1);
    assert_int_equal(client.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Closing: abort, reset, half-close, re-entrancy ---------------------------------------------- */

static int abort_returned;

static void write_then_abort(conn *c)
{
    static char big[1 << 20];
    tw_transport *t = c->base.transport;
    /* Until the kernel takes no more (the peer is not reading yet). */
    for (int i = 0; i < 256 && tw_transport_write_buffer_size(t) == 0; i++)
        assert_int_equal(tw_transport_write(t, big, sizeof big), 0);
    assert_true(tw_transport_write_buffer_size(t) > 0);
    tw_transport_abort_connection(t);
    assert_int_equal(tw_transport_write_buffer_size(t), 0);   /* dropped */
    tw_transport_abort_connection(t);                          /* twice is harmless */
    tw_transport_lose_connection(t);
    assert_int_equal(c->s->lost_n, 0);
    abort_returned = 1;
}

static void test_abort_drops_the_buffer(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = write_then_abort;
    server.count_lost = 1;
    client.count_lost = 1;
    abort_returned = 0;
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_true(abort_returned);
    assert_int_equal(server.lost_lost_n, 1);
    assert_true(tw_failure_check(server.reason, TW_ERR_CONNECTION_LOST, ECONNABORTED));
    /* The client saw the end of it. */
    assert_int_equal(client.lost_n, 1);
    assert_true(client.last == NULL);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static int raw_peer = -1;

static void reset_raw_peer(conn *c, const char *data, size_t len)
{
    if (raw_peer >= 0) {
        reset_close(raw_peer);
        raw_peer = -1;
    }
}

static void test_peer_reset_is_connection_lost(void **state)
{
    side server;
    side_init(&server);
    server.data = reset_raw_peer;
    server.count_lost = 1;
    tw_port *p = listen_on(&server, "127.0.0.1");
    raw_peer = raw_connect(tw_port_number(p));
    assert_int_equal(write(raw_peer, "hello", 5), 5);
    waiting = 1;
    run_reactor();
    assert_int_equal(server.lost_n, 1);
    assert_int_equal(server.lost_lost_n, 1);
    assert_true(tw_failure_check(server.reason, TW_ERR_CONNECTION_LOST, ECONNRESET));
    assert_non_null(tw_failure_find(server.reason, TW_ERR_SYS, ECONNRESET));
    stop_port(p);
    side_clear(&server);
}

/* Writes until the peer's reset turns a send into EPIPE or ECONNRESET. */
static void flood(conn *c)
{
    static char block[CHUNK];
    reset_close(raw_peer);
    raw_peer = -1;
    for (int i = 0; i < 64; i++)
        tw_transport_write(c->base.transport, block, sizeof block);
}

static void test_writing_to_a_reset_peer_does_not_kill(void **state)
{
    /* No SIGPIPE: the process lives on and the protocol hears of it. */
    side server;
    side_init(&server);
    server.made = flood;
    server.count_lost = 1;
    tw_port *p = listen_on(&server, "127.0.0.1");
    raw_peer = raw_connect(tw_port_number(p));
    waiting = 1;
    run_reactor();
    assert_int_equal(server.lost_lost_n, 1);
    const tw_failure *sys = tw_failure_find(server.reason, TW_ERR_SYS, -1);
    assert_non_null(sys);
    assert_true(tw_failure_code(sys) == EPIPE || tw_failure_code(sys) == ECONNRESET);
    stop_port(p);
    side_clear(&server);
}

/* Half-close: the server says its piece and shuts its sending side; the
 * client reads to the end, answers, and closes. */
static void say_and_shut(conn *c)
{
    tw_transport *t = c->base.transport;
    assert_int_equal(tw_transport_write(t, "question", 8), 0);
    tw_transport_lose_write_connection(t);
    assert_int_equal(tw_transport_write(t, "more", 4), -ENOTCONN);
    assert_int_equal(c->s->write_lost_n, 0);   /* from the loop */
}

static void answer_at_eof(conn *c)
{
    assert_int_equal(c->in_len, 8);
    assert_memory_equal(c->in, "question", 8);
    assert_int_equal(tw_transport_write(c->base.transport, "answer", 6), 0);
    tw_transport_lose_connection(c->base.transport);
}

static void server_checks_answer(conn *c, tw_failure *reason)
{
    assert_int_equal(c->in_len, 6);
    assert_memory_equal(c->in, "answer", 6);
}

static void test_half_close(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.half_close = 1;
    server.made = say_and_shut;
    server.lost = server_checks_answer;
    server.count_lost = 1;
    client.half_close = 1;
    client.read_lost = answer_at_eof;
    client.count_lost = 1;
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_int_equal(server.write_lost_n, 1);
    assert_int_equal(client.read_lost_n, 1);
    /* The server's reading ended too once both halves were shut. */
    assert_int_equal(server.read_lost_n, 1);
    assert_int_equal(server.done_n, 1);
    assert_int_equal(client.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static void test_end_of_stream_without_half_close_closes(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.half_close = 1;
    server.made = say_and_shut;
    server.count_lost = 1;
    client.count_lost = 1;               /* no read_connection_lost hook */
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_int_equal(client.done_n, 1);
    assert_int_equal(server.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static void close_in_connection_made(conn *c)
{
    assert_int_equal(tw_transport_write(c->base.transport, "bye", 3), 0);
    tw_transport_lose_connection(c->base.transport);
    tw_transport_lose_connection(c->base.transport);
    assert_int_equal(c->s->lost_n, 0);
}

static int bye_seen;

static void abort_on_data(conn *c, const char *data, size_t len)
{
    bye_seen++;
    tw_transport_abort_connection(c->base.transport);
    tw_transport_pause_reading(c->base.transport);
    tw_transport_resume_reading(c->base.transport);
    assert_int_equal(c->s->lost_n, 0);
}

static void test_hooks_may_close(void **state)
{
    /* The server says "bye" and closes from connection_made; the client
     * aborts from data_received. Each side is lost once, from the loop. */
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = close_in_connection_made;
    server.count_lost = 1;
    client.data = abort_on_data;
    client.count_lost = 1;
    bye_seen = 0;
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_int_equal(server.lost_n, 1);
    assert_int_equal(server.done_n, 1);
    assert_int_equal(client.lost_n, 1);
    assert_int_equal(client.lost_lost_n, 1);
    assert_int_equal(bye_seen, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Connecting: refused, timeout, DNS, cancel, refusal by the factory --------------------------- */

static void test_refused_connection_errbacks(void **state)
{
    side client;
    side_init(&client);
    int port;
    int fd = refusing_socket(&port);
    int fds = open_fds();
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", port, &client.f, 5), 1);
    run_reactor();
    assert_true(tw_failure_check(o.failure, TW_ERR_SYS, ECONNREFUSED));
    assert_int_equal(client.failed_n, 1);
    assert_ptr_equal(client.failure, o.failure);   /* the same failure */
    assert_int_equal(client.built, 0);
    assert_int_equal(client.factory_lost_n, 0);
    assert_int_equal(open_fds(), fds);              /* the attempt's socket is closed */
    close(fd);
    outcome_clear(&o);
    side_clear(&client);
}

/* A listener on 127.0.0.1 whose accept queue is full: it drops new SYNs, so
 * connecting to it hangs. */
static int full_listener(int *port, int *filler)
{
    int l = refusing_socket(port);
    assert_int_equal(listen(l, 0), 0);
    *filler = raw_connect(*port);
    return l;
}

static void test_connection_timeout_errbacks(void **state)
{
    side client;
    side_init(&client);
    int port, filler;
    int l = full_listener(&port, &filler);
    int fds = open_fds();
    outcome o = { 0 };
    double start = monotonic_now();
    watch(&o, tw_connect_tcp("127.0.0.1", port, &client.f, 0.2), 1);
    run_reactor();
    double took = monotonic_now() - start;
    assert_true(tw_failure_check(o.failure, TW_ERR_TIMEOUT, ETIMEDOUT));
    assert_non_null(strstr(tw_failure_message(o.failure), "after 0.2 seconds"));
    assert_true(took >= 0.19 && took < 5);
    assert_int_equal(client.failed_n, 1);
    assert_ptr_equal(client.failure, o.failure);
    assert_int_equal(open_fds(), fds);
    close(filler);
    close(l);
    outcome_clear(&o);
    side_clear(&client);
}

/* A listener whose backlog is full drops the SYN, so the connect is still in
 * progress when tw_connect_tcp returns; making room lets the kernel's
 * retransmitted SYN (about a second later) through, and the connect
 * completes through the write watcher rather than at once. */
typedef struct room { int listener, filler; } room;

static void make_room(void *arg)
{
    room *r = arg;
    int fd = accept(r->listener, NULL, NULL);
    assert_true(fd >= 0);
    close(fd);
    close(r->filler);
}

static void test_connect_in_progress_completes(void **state)
{
    side client;
    side_init(&client);
    client.count_lost = 1;
    int port;
    room r;
    r.listener = full_listener(&port, &r.filler);
    outcome o = { 0 };
    double start = monotonic_now();
    watch(&o, tw_connect_tcp("127.0.0.1", port, &client.f, 10), 1);
    tw_call_later(0.05, make_room, &r);
    run_reactor();
    assert_true(monotonic_now() - start > 0.5);   /* it waited for the retransmission */
    assert_int_equal(o.fired, 1);
    assert_null(o.failure);
    assert_non_null(o.p);
    assert_int_equal(client.made_n, 1);
    tw_transport_abort_connection(o.p->transport);
    waiting = 1;
    run_reactor();
    assert_int_equal(client.lost_n, 1);
    close(r.listener);
    outcome_clear(&o);
    side_clear(&client);
}

/* A UDP port on 127.0.0.1 with nobody behind it, or (silent) a socket that
 * takes queries and never answers. */
static int dns_server(int silent, int *fd)
{
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_int_equal(bind(u, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(u, (struct sockaddr *)&a, &len), 0);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(tw_dns_set_servers(servers), 0);
    if (silent) {
        *fd = u;
    } else {
        close(u);
        *fd = -1;
    }
    return ntohs(a.sin_port);
}

static void dns_defaults(int fd)
{
    if (fd >= 0)
        close(fd);
    assert_int_equal(tw_dns_set_servers(NULL), 0);
    assert_int_equal(tw_dns_set_timeout(0, 0), 0);
}

static void test_dns_failure_errbacks(void **state)
{
    side client;
    side_init(&client);
    int fd;
    dns_server(0, &fd);
    assert_int_equal(tw_dns_set_timeout(0.2, 1), 0);
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("nonexistent.invalid", 80, &client.f, 5), 1);
    run_reactor();
    assert_true(tw_failure_check(o.failure, TW_ERR_DNS, -1));
    assert_int_equal(client.failed_n, 1);
    assert_ptr_equal(client.failure, o.failure);
    dns_defaults(fd);
    outcome_clear(&o);
    side_clear(&client);
}

static void test_timeout_covers_the_lookup(void **state)
{
    side client;
    side_init(&client);
    int fd;
    dns_server(1, &fd);
    assert_int_equal(tw_dns_set_timeout(5, 1), 0);
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("slow.invalid", 80, &client.f, 0.1), 1);
    run_reactor();
    assert_true(tw_failure_check(o.failure, TW_ERR_TIMEOUT, ETIMEDOUT));
    assert_int_equal(client.failed_n, 1);
    dns_defaults(fd);
    outcome_clear(&o);
    side_clear(&client);
}

static void stop_now(void *arg)
{
    tw_reactor_stop();
}

static void test_cancel_aborts_the_attempt(void **state)
{
    side client;
    side_init(&client);
    int port, filler;
    int l = full_listener(&port, &filler);
    int fds = open_fds();

    tw_deferred *d = tw_connect_tcp("127.0.0.1", port, &client.f, 5);
    outcome o = { 0 };
    tw_deferred_add_callbacks(d, outcome_ok, outcome_failed, &o);
    tw_deferred_cancel(d);
    assert_int_equal(o.fired, 1);
    assert_true(tw_failure_check(o.failure, TW_ERR_CANCELLED, -1));
    assert_int_equal(client.failed_n, 1);
    assert_ptr_equal(client.failure, o.failure);
    assert_int_equal(open_fds(), fds);
    tw_deferred_cancel(d);                /* again: nothing */
    tw_deferred_unref(d);
    outcome_clear(&o);

    /* Cancelled while the name is being looked up. */
    int dns_fd;
    dns_server(1, &dns_fd);
    d = tw_connect_tcp("slow.invalid", 80, &client.f, 5);
    tw_deferred_add_callbacks(d, outcome_ok, outcome_failed, &o);
    tw_deferred_cancel(d);
    tw_deferred_unref(d);
    assert_true(tw_failure_check(o.failure, TW_ERR_CANCELLED, -1));
    assert_int_equal(client.failed_n, 2);
    /* The abandoned lookup winds down with the loop. */
    tw_call_later(0.05, stop_now, NULL);
    run_reactor();
    dns_defaults(dns_fd);
    close(filler);
    close(l);
    outcome_clear(&o);
    side_clear(&client);
}

static void test_cancel_after_connecting_does_nothing(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = echo;
    server.count_lost = 1;
    client.data = close_after_tag;
    client.count_lost = 1;
    snprintf(client.tag, sizeof client.tag, "after cancel");
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    tw_deferred *d = tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5);
    watch(&o, tw_deferred_ref(d), 1);
    run_reactor();
    assert_non_null(o.p);
    tw_deferred_cancel(d);
    tw_deferred_unref(d);
    assert_null(o.failure);
    assert_int_equal(client.failed_n, 0);
    write_tag(conn_of(o.p));
    waiting = 2;
    run_reactor();
    assert_int_equal(client.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static void test_factory_may_refuse(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.refuse = 1;
    client.count_lost = 1;
    tw_port *p = listen_on(&server, "127.0.0.1");

    /* The server refuses: the client sees a clean close. */
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 1;
    run_reactor();
    assert_non_null(o.p);
    assert_int_equal(server.built, 0);
    assert_int_equal(server.built_peer.ss_family, AF_INET);
    assert_int_equal(client.done_n, 1);
    outcome_clear(&o);

    /* The client refuses: the attempt fails, and the server's side of the
     * connection ends cleanly. */
    server.refuse = 0;
    server.count_lost = 1;
    client.refuse = 1;
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 1);
    waiting++;
    run_reactor();
    assert_true(tw_failure_check(o.failure, TW_ERR_CONNECTION_DONE, -1));
    assert_int_equal(client.failed_n, 1);
    assert_int_equal(server.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

static void test_bad_arguments_fail_from_the_loop(void **state)
{
    side client;
    side_init(&client);
    outcome o1 = { 0 }, o2 = { 0 }, o3 = { 0 };
    watch(&o1, tw_connect_tcp(NULL, 80, &client.f, 5), 1);
    watch(&o2, tw_connect_tcp("127.0.0.1", 0, &client.f, 5), 1);
    watch(&o3, tw_connect_tcp("127.0.0.1", 80, NULL, 5), 1);
    run_reactor();
    assert_true(tw_failure_check(o1.failure, TW_ERR_USAGE, EINVAL));
    assert_true(tw_failure_check(o2.failure, TW_ERR_USAGE, EINVAL));
    assert_true(tw_failure_check(o3.failure, TW_ERR_USAGE, EINVAL));
    assert_int_equal(client.failed_n, 2);
    outcome_clear(&o1);
    outcome_clear(&o2);
    outcome_clear(&o3);
    side_clear(&client);
}

static void send_a_megabyte(conn *c)
{
    static char mb[1 << 20];
    assert_int_equal(tw_transport_write(c->base.transport, mb, sizeof mb), 0);
    tw_transport_lose_connection(c->base.transport);
}

static void close_on_first_data(conn *c, const char *data, size_t len)
{
    assert_int_equal(++c->n, 1);          /* nothing comes after lose_connection */
    tw_transport_lose_connection(c->base.transport);
}

static void test_no_data_after_lose_connection(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = send_a_megabyte;
    server.count_lost = 1;
    client.data = close_on_first_data;
    client.count_lost = 1;
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_int_equal(client.done_n, 1);
    assert_int_equal(server.lost_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Reading flow control ---------------------------------------------------------------------- */

static int reading_paused;

static void resume_later(void *arg)
{
    conn *c = arg;
    reading_paused = 0;
    tw_transport_resume_reading(c->base.transport);
}

/* Pauses on every delivery, and resumes a millisecond later. */
static void pause_each_time(conn *c, const char *data, size_t len)
{
    assert_false(reading_paused);        /* a pause takes effect at once */
    c->n++;
    reading_paused = 1;
    tw_transport_pause_reading(c->base.transport);
    tw_call_later(0.001, resume_later, c);
}

static void pause_at_once(conn *c)
{
    reading_paused = 1;
    tw_transport_pause_reading(c->base.transport);
    tw_call_later(0.05, resume_later, c);
}

static size_t pause_calls;

static void check_nothing_came_while_paused(conn *c, tw_failure *reason)
{
    assert_int_equal(c->in_len, 1 << 20);
    pause_calls = c->n;
}


static void test_pause_and_resume_reading(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = pause_at_once;
    server.data = pause_each_time;
    server.lost = check_nothing_came_while_paused;
    server.count_lost = 1;
    client.made = send_a_megabyte;
    client.count_lost = 1;
    reading_paused = 0;
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_int_equal(server.done_n, 1);
    assert_true(pause_calls >= 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* Producers --------------------------------------------------------------------------------- */

static int producer_paused, producer_resumed, producer_stopped;

static void producer_pause(void *arg) { producer_paused++; }
static void producer_stop(void *arg) { producer_stopped++; }

static void producer_resume(void *arg)
{
    conn *c = arg;
    producer_resumed++;
    assert_true(tw_transport_write_buffer_size(c->base.transport) <= 100);
    tw_transport_lose_connection(c->base.transport);
}

static const tw_producer_ops counting_producer = {
    .pause = producer_pause,
    .resume = producer_resume,
    .stop = producer_stop,
};

static void produce(conn *c)
{
    static char block[4 << 20];
    tw_transport *t = c->base.transport;
    assert_int_equal(tw_transport_set_write_watermarks(t, 10, 20), -EINVAL);
    assert_int_equal(tw_transport_set_write_watermarks(t, 1000, 100), 0);
    assert_int_equal(tw_transport_register_producer(t, &counting_producer, c), 0);
    assert_int_equal(tw_transport_register_producer(t, &counting_producer, c), -EBUSY);
    assert_int_equal(tw_transport_write(t, block, sizeof block), 0);
    assert_int_equal(producer_paused, 1);     /* at once, from inside the write */
    assert_int_equal(tw_transport_write(t, block, 10), 0);
    assert_int_equal(producer_paused, 1);
}

static void test_producer_follows_the_watermarks(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    server.made = produce;
    server.count_lost = 1;
    client.count_lost = 1;
    producer_paused = producer_resumed = producer_stopped = 0;
    tw_port *p = listen_on(&server, "127.0.0.1");
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 5), 0);
    waiting = 2;
    run_reactor();
    assert_int_equal(producer_paused, 1);
    assert_int_equal(producer_resumed, 1);
    assert_int_equal(producer_stopped, 1);   /* when the connection went */
    assert_int_equal(client.done_n, 1);
    stop_port(p);
    outcome_clear(&o);
    side_clear(&server);
    side_clear(&client);
}

/* 1,000 concurrent connections ------------------------------------------------------------- */

#define MANY 1000

static conn *many[MANY];
static int many_made;

/* Once every client is connected, each sends its own message. */
static void many_made_hook(conn *c)
{
    many[many_made++] = c;
    snprintf(c->tag, sizeof c->tag, "message from client %d", many_made);
    if (many_made == MANY)
        for (int i = 0; i < MANY; i++)
            write_tag(many[i]);
}

static void test_thousand_concurrent_connections(void **state)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 4 * MANY && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    side server, client;
    side_init(&server);
    side_init(&client);
    server.data = echo;
    server.count_lost = 1;
    client.made = many_made_hook;
    client.data = close_after_tag;
    client.count_lost = 1;
    many_made = 0;

    tw_listen_options opt = { .backlog = 2 * MANY };
    int err;
    tw_port *p = tw_listen_tcp_opts("127.0.0.1", 0, &server.f, &opt, &err);
    assert_non_null(p);
    static outcome o[MANY];
    memset(o, 0, sizeof o);
    for (int i = 0; i < MANY; i++)
        watch(&o[i], tw_connect_tcp("127.0.0.1", tw_port_number(p), &client.f, 20), 0);
    waiting = 2 * MANY;
    double start = monotonic_now();
    run_reactor();
    double took = monotonic_now() - start;
    for (int i = 0; i < MANY; i++) {
        assert_non_null(o[i].p);
        outcome_clear(&o[i]);
    }
    assert_int_equal(client.done_n, MANY);
    assert_int_equal(server.done_n, MANY);
    assert_int_equal(server.freed_n, MANY);
    assert_int_equal(client.freed_n, MANY);
    print_message("%d connections served in %.2f s\n", MANY, took);
    stop_port(p);
    side_clear(&server);
    side_clear(&client);
}

/* 100 MB through an echo server, in bounded memory ------------------------------------------ */

#define HIGH_WATERMARK (64 * 1024)           /* the defaults */
#define LOW_WATERMARK (16 * 1024)
#define ONE_READ (64 * 1024)                 /* the most one data_received brings */
#define PAUSE_EVERY (1024 * 1024)

/* The client sends the pattern as fast as its producer may, and reads with
 * pauses: every PAUSE_EVERY bytes it stops reading until the server's write
 * buffer has gone past the high watermark (or it has nothing left to send),
 * so the server's flow control has work to do. The server is an echo whose
 * own reading is the producer of its writes. Both ends run in this process,
 * so the client may look at the server's transport. */
static struct bulk {
    tw_factory server_f, client_f;
    tw_protocol server_p, client_p;
    size_t total, sent, received, next_pause;
    size_t server_max_buffer;
    int server_over_high;
    int client_pauses;
    int producer_paused;
    int reading_paused;
    tw_transport *client_t, *server_t;
    int mismatch;
    int done;
} B;

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
    while (!B.producer_paused && B.sent < B.total) {
        size_t n = B.total - B.sent < CHUNK ? B.total - B.sent : CHUNK;
        assert_int_equal(tw_transport_write(B.client_t, pattern_at(B.sent), n), 0);
        B.sent += n;
    }
    if (B.sent == B.total && B.reading_paused) {
        B.reading_paused = 0;
        tw_transport_resume_reading(B.client_t);
    }
}

static void bulk_producer_pause(void *arg) { B.producer_paused = 1; }

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
    /* Pause only while the server reads (its buffer at most the low
     * watermark): then its buffer will pass the high one and resume us. */
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

static void test_hundred_megabytes_in_bounded_memory(void **state)
{
    fill_pattern();
    memset(&B, 0, sizeof B);
    B.server_f.build_protocol = bulk_build_server;
    B.client_f.build_protocol = bulk_build_client;
    B.total = (size_t)(100.0 * 1024 * 1024 * test_scale());
    B.next_pause = PAUSE_EVERY;

    int err;
    tw_port *p = tw_listen_tcp("127.0.0.1", 0, &B.server_f, &err);
    assert_non_null(p);
    outcome o = { 0 };
    watch(&o, tw_connect_tcp("127.0.0.1", tw_port_number(p), &B.client_f, 5), 0);
    waiting = 2;
    double start = monotonic_now();
    run_reactor();
    double took = monotonic_now() - start;

    assert_int_equal(B.done, 2);
    assert_int_equal(B.sent, B.total);
    assert_int_equal(B.received, B.total);
    assert_int_equal(B.mismatch, 0);
    /* The server's buffer never held more than the watermark and one read. */
    assert_true(B.server_max_buffer <= HIGH_WATERMARK + ONE_READ);
    /* ...and the test did push it there (a scaled-down run may fit in the
     * kernel's socket buffers before the client ever pauses). */
    if (B.total >= 32 << 20) {
        assert_true(B.client_pauses > 0);
        assert_true(B.server_over_high > 0);
    }
    print_message("%zu MB echoed in %.2f s (%d client pauses, server over the watermark %d times,"
                  " at most %zu bytes buffered)\n", B.total >> 20, took, B.client_pauses,
                  B.server_over_high, B.server_max_buffer);
    stop_port(p);
    outcome_clear(&o);
}

/* Running out of descriptors ---------------------------------------------------------------- */

static struct rlimit saved_nofile;
static int *fillers;
static int nfillers;
static int pause_logged;

/* The highest descriptor in use below `below` (valgrind keeps its own above
 * the limit it shows). */
static int highest_open_fd(int below)
{
    int hi = -1;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd > hi && fd < below)
            hi = fd;
    }
    closedir(d);
    return hi;
}

/* Valgrind emulates the descriptor limit by closing what a call returned
 * above it, which loses an accepted connection: no test for it there. */
static int under_valgrind(void)
{
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload");
}

/* Leaves no descriptor free: the limit just above the ones in use, and the
 * few free ones below it taken. 0, or -1 when that cannot be arranged. */
static int use_up_descriptors(void)
{
    if (under_valgrind())
        return -1;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
    int limit = highest_open_fd((int)saved_nofile.rlim_cur) + 1 + 8;
    struct rlimit tight = saved_nofile;
    tight.rlim_cur = (rlim_t)limit;
    if (limit > 65536 || tight.rlim_cur > saved_nofile.rlim_cur ||
        setrlimit(RLIMIT_NOFILE, &tight) < 0)
        return -1;
    fillers = malloc((size_t)limit * sizeof *fillers);
    nfillers = 0;
    int fd;
    while (nfillers < limit && (fd = dup(0)) >= 0)
        fillers[nfillers++] = fd;
    return errno == EMFILE ? 0 : -1;
}

static void give_descriptors_back(void)
{
    while (nfillers > 0)
        close(fillers[--nfillers]);
    free(fillers);
    fillers = NULL;
    setrlimit(RLIMIT_NOFILE, &saved_nofile);
}

/* The listener's warning: give the descriptors back. */
static void restore_on_warning(int level, const char *msg, void *arg)
{
    if (level == TW_LOG_WARN && strstr(msg, "could not accept")) {
        pause_logged++;
        give_descriptors_back();
    }
}

static void count_made(conn *c) { count_down(); }

static void test_accept_pauses_when_out_of_descriptors(void **state)
{
    side server;
    side_init(&server);
    server.made = count_made;
    tw_port *p = listen_on(&server, "127.0.0.1");
    int c1 = raw_connect(tw_port_number(p));
    int c2 = raw_connect(tw_port_number(p));

    if (use_up_descriptors() < 0) {
        give_descriptors_back();
        close(c1);
        close(c2);
        stop_port(p);
        skip();
    }
    pause_logged = 0;
    tw_log_set_handler(restore_on_warning, NULL);
    waiting = 2;
    double start = monotonic_now();
    run_reactor();
    double took = monotonic_now() - start;
    tw_log_set_handler(NULL, NULL);
    give_descriptors_back();
    assert_int_equal(pause_logged, 1);   /* once: it did not spin */
    assert_int_equal(server.made_n, 2);
    assert_true(took >= 0.09);

    server.count_lost = 1;
    close(c1);
    close(c2);
    waiting = 2;
    run_reactor();
    stop_port(p);
    side_clear(&server);
}

/* The reconnecting client ------------------------------------------------------------------- */

static tw_test_log rc_log;

static void capture(int level, const char *msg, void *arg)
{
    rc_log.count++;
    snprintf(rc_log.last, sizeof rc_log.last, "%s", msg);
}

/* Waits for the attempt in progress to fail. */
static void wait_for_failure(side *client)
{
    int before = client->failed_n;
    waiting = 1;
    run_reactor();
    assert_int_equal(client->failed_n, before + 1);
    assert_true(tw_failure_check(client->failure, TW_ERR_SYS, ECONNREFUSED));
}

/* The retry is due exactly `delay` from now on the clock. */
static void advance_to_retry(tw_clock *clk, double delay)
{
    assert_int_equal(tw_clock_pending(clk), 1);
    assert_int_equal(tw_clock_advance(clk, delay * (1 - 1e-9)), 0);
    assert_int_equal(tw_clock_pending(clk), 1);
    assert_int_equal(tw_clock_advance(clk, delay * 2e-9), 0);
    assert_int_equal(tw_clock_pending(clk), 0);
}

static void test_reconnect_delays_grow_by_the_factor(void **state)
{
    side client;
    side_init(&client);
    client.count_failed = 1;
    int port;
    int fd = refusing_socket(&port);
    tw_clock *clk = tw_clock_new_test();
    tw_reconnecting_client *rc = tw_reconnecting_client_new("127.0.0.1", port, &client.f, 5);
    assert_true(tw_reconnecting_client_delay(rc) == 1.0);
    tw_reconnecting_client_set_clock(rc, clk);
    tw_reconnecting_client_set_backoff(rc, 1.0, M_E, 0, 3600, 0);

    double want = 1.0;
    for (unsigned i = 1; i <= 6; i++) {
        wait_for_failure(&client);
        want *= M_E;
        assert_true(fabs(tw_reconnecting_client_delay(rc) - want) < 1e-9);
        assert_int_equal(tw_reconnecting_client_retries(rc), i);
        if (i < 6)
            advance_to_retry(clk, want);
    }
    tw_reconnecting_client_free(rc);
    assert_int_equal(tw_clock_pending(clk), 0);
    tw_clock_free(clk);
    close(fd);
    side_clear(&client);
}

static void test_reconnect_delay_is_capped(void **state)
{
    side client;
    side_init(&client);
    client.count_failed = 1;
    int port;
    int fd = refusing_socket(&port);
    tw_clock *clk = tw_clock_new_test();
    tw_reconnecting_client *rc = tw_reconnecting_client_new("127.0.0.1", port, &client.f, 5);
    tw_reconnecting_client_set_clock(rc, clk);
    tw_reconnecting_client_set_backoff(rc, 1.0, M_E, 0, 10, 0);
    double want[] = { M_E, M_E * M_E, 10, 10 };
    for (int i = 0; i < 4; i++) {
        wait_for_failure(&client);
        assert_true(fabs(tw_reconnecting_client_delay(rc) - want[i]) < 1e-9);
        if (i < 3)
            advance_to_retry(clk, want[i]);
    }
    tw_reconnecting_client_free(rc);
    tw_clock_free(clk);
    close(fd);
    side_clear(&client);
}

static void test_reconnect_gives_up_after_max_retries(void **state)
{
    side client;
    side_init(&client);
    client.count_failed = 1;
    int port;
    int fd = refusing_socket(&port);
    tw_clock *clk = tw_clock_new_test();
    tw_reconnecting_client *rc = tw_reconnecting_client_new("127.0.0.1", port, &client.f, 5);
    tw_reconnecting_client_set_clock(rc, clk);
    tw_reconnecting_client_set_backoff(rc, 0.5, 2, 0, 3600, 3);
    double delay = 0.5;
    for (int i = 1; i <= 3; i++) {
        wait_for_failure(&client);
        delay *= 2;
        advance_to_retry(clk, delay);
    }
    memset(&rc_log, 0, sizeof rc_log);
    tw_log_set_handler(capture, NULL);
    wait_for_failure(&client);           /* the fourth failure: no retry */
    tw_log_set_handler(NULL, NULL);
    assert_int_equal(tw_clock_pending(clk), 0);
    assert_int_equal(client.failed_n, 4);
    assert_non_null(strstr(rc_log.last, "after 4 retries"));
    tw_reconnecting_client_free(rc);
    tw_clock_free(clk);
    close(fd);
    side_clear(&client);
}

static void test_reconnect_jitter_is_normal_around_the_delay(void **state)
{
    side client;
    side_init(&client);
    client.count_failed = 1;
    int port;
    int fd = refusing_socket(&port);
    tw_clock *clk = tw_clock_new_test();
    double first[2];
    for (int k = 0; k < 2; k++) {
        tw_reconnecting_client *rc = tw_reconnecting_client_new("127.0.0.1", port, &client.f, 5);
        tw_reconnecting_client_set_clock(rc, clk);
        tw_reconnecting_client_set_seed(rc, 42);
        wait_for_failure(&client);
        first[k] = tw_reconnecting_client_delay(rc);
        tw_reconnecting_client_free(rc);
    }
    assert_true(first[0] == first[1]);           /* the same seed, the same delay */
    assert_true(first[0] != M_E);
    assert_true(fabs(first[0] - M_E) < M_E * 0.119626565582 * 6);
    tw_clock_free(clk);
    close(fd);
    side_clear(&client);
}

static void test_reconnect_resets_after_a_good_connection(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    client.count_failed = 1;
    int port;
    int fd = refusing_socket(&port);
    tw_clock *clk = tw_clock_new_test();
    tw_reconnecting_client *rc = tw_reconnecting_client_new("127.0.0.1", port, &client.f, 5);
    tw_reconnecting_client_set_clock(rc, clk);
    tw_reconnecting_client_set_backoff(rc, 1.0, M_E, 0, 3600, 0);
    wait_for_failure(&client);
    advance_to_retry(clk, M_E);
    wait_for_failure(&client);
    assert_int_equal(tw_reconnecting_client_retries(rc), 2);

    /* Someone listens there now. */
    close(fd);
    int err;
    tw_port *p = tw_listen_tcp("127.0.0.1", port, &server.f, &err);
    assert_non_null(p);
    client.made = count_made;
    server.made = count_made;
    advance_to_retry(clk, M_E * M_E);
    waiting = 2;
    run_reactor();
    assert_int_equal(client.made_n, 1);
    assert_true(tw_reconnecting_client_delay(rc) == 1.0);
    assert_int_equal(tw_reconnecting_client_retries(rc), 0);
    assert_ptr_equal(tw_reconnecting_client_protocol(rc), &client.last->base);

    /* The server drops it: the client retries, from the initial delay. */
    client.count_lost = 1;
    server.count_lost = 1;
    tw_transport_abort_connection(server.last->base.transport);
    waiting = 2;
    run_reactor();
    assert_int_equal(client.factory_lost_n, 1);
    assert_null(tw_reconnecting_client_protocol(rc));
    assert_true(fabs(tw_reconnecting_client_delay(rc) - M_E) < 1e-9);
    assert_int_equal(tw_reconnecting_client_retries(rc), 1);
    assert_int_equal(tw_clock_pending(clk), 1);

    /* stop_trying: nothing more. */
    tw_reconnecting_client_stop_trying(rc);
    assert_int_equal(tw_clock_pending(clk), 0);
    assert_int_equal(tw_clock_advance(clk, 100), 0);
    assert_int_equal(client.built, 1);
    tw_reconnecting_client_free(rc);
    tw_clock_free(clk);
    stop_port(p);
    side_clear(&server);
    side_clear(&client);
}

static void test_reconnect_stop_trying_cancels_the_attempt(void **state)
{
    side client;
    side_init(&client);
    int port, filler;
    int l = full_listener(&port, &filler);
    tw_reconnecting_client *rc = tw_reconnecting_client_new("127.0.0.1", port, &client.f, 5);
    tw_reconnecting_client_stop_trying(rc);
    assert_int_equal(client.failed_n, 1);
    assert_true(tw_failure_check(client.failure, TW_ERR_CANCELLED, -1));
    assert_int_equal(tw_reconnecting_client_retries(rc), 0);
    tw_reconnecting_client_free(rc);
    close(filler);
    close(l);
    side_clear(&client);
}

static void test_reconnect_free_aborts_the_connection(void **state)
{
    side server, client;
    side_init(&server);
    side_init(&client);
    client.made = count_made;
    server.made = count_made;
    tw_port *p = listen_on(&server, "127.0.0.1");
    tw_reconnecting_client *rc = tw_reconnecting_client_new("127.0.0.1", tw_port_number(p),
                                                            &client.f, 5);
    waiting = 2;
    run_reactor();
    client.count_lost = 1;
    server.count_lost = 1;
    tw_reconnecting_client_free(rc);
    assert_int_equal(client.lost_n, 0);  /* from the loop */
    waiting = 2;
    run_reactor();
    assert_true(tw_failure_check(client.reason, TW_ERR_CONNECTION_LOST, ECONNABORTED));
    assert_int_equal(client.factory_lost_n, 1);
    assert_int_equal(server.lost_n, 1);
    stop_port(p);
    side_clear(&server);
    side_clear(&client);
}

static tw_reconnecting_client *the_rc;

static void free_the_client(side *s)
{
    tw_reconnecting_client_free(the_rc);
    the_rc = NULL;
}

static void free_the_client_on_made(conn *c)
{
    free_the_client(c->s);
    count_down();
}

static void test_reconnect_free_from_the_factory_hooks(void **state)
{
    /* From connection_failed: no retry, nothing left behind. */
    side client;
    side_init(&client);
    client.failed = free_the_client;
    client.count_failed = 1;
    int port;
    int fd = refusing_socket(&port);
    the_rc = tw_reconnecting_client_new("127.0.0.1", port, &client.f, 5);
    waiting = 1;
    run_reactor();
    assert_null(the_rc);
    assert_int_equal(client.failed_n, 1);
    close(fd);

    /* From connection_made: the new connection is aborted. */
    side server;
    side_init(&server);
    server.count_lost = 1;
    client.failed = NULL;
    client.count_failed = 0;
    client.made = free_the_client_on_made;
    client.count_lost = 1;
    tw_port *p = listen_on(&server, "127.0.0.1");
    the_rc = tw_reconnecting_client_new("127.0.0.1", tw_port_number(p), &client.f, 5);
    waiting = 3;
    run_reactor();
    assert_null(the_rc);
    assert_true(tw_failure_check(client.reason, TW_ERR_CONNECTION_LOST, ECONNABORTED));
    assert_int_equal(server.lost_n, 1);
    stop_port(p);
    side_clear(&server);
    side_clear(&client);
}

static tw_port *the_port;
static int stopped_from_made;

static void stop_listening_on_made(conn *c)
{
    if (the_port) {
        tw_deferred *d = tw_port_stop_listening(the_port);
        tw_deferred_add_callback(d, on_port_stopped, &stopped_from_made);
        tw_deferred_unref(d);
        the_port = NULL;
    }
    tw_transport_lose_connection(c->base.transport);
}

static void test_stop_listening_from_connection_made(void **state)
{
    /* Three clients are queued; the first connection stops the port, and the
     * ones it had not accepted yet are refused or reset. */
    side server;
    side_init(&server);
    server.made = stop_listening_on_made;
    stopped_from_made = 0;
    the_port = listen_on(&server, "127.0.0.1");
    int port = tw_port_number(the_port);
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = raw_connect(port);
    server.count_lost = 1;
    waiting = 2;                          /* the port stopped, the connection lost */
    run_reactor();
    assert_int_equal(stopped_from_made, 1);
    assert_int_equal(server.built, 1);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    side_clear(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_reports_the_port_it_got),
        cmocka_unit_test(test_listen_failures_are_immediate),
        cmocka_unit_test(test_port_is_reusable_at_once),
        cmocka_unit_test(test_stop_listening_leaves_connections_alone),
        cmocka_unit_test(test_echo_over_ipv4),
        cmocka_unit_test(test_echo_over_ipv6),
        cmocka_unit_test(test_echo_on_every_address),
        cmocka_unit_test(test_connect_by_name_tries_each_address),
        cmocka_unit_test(test_echo_over_unix_socket),
        cmocka_unit_test(test_lose_connection_flushes_everything),
        cmocka_unit_test(test_data_arrives_whole_and_in_order),
        cmocka_unit_test(test_abort_drops_the_buffer),
        cmocka_unit_test(test_peer_reset_is_connection_lost),
        cmocka_unit_test(test_writing_to_a_reset_peer_does_not_kill),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_end_of_stream_without_half_close_closes),
        cmocka_unit_test(test_hooks_may_close),
        cmocka_unit_test(test_refused_connection_errbacks),
        cmocka_unit_test(test_connection_timeout_errbacks),
        cmocka_unit_test(test_connect_in_progress_completes),
        cmocka_unit_test(test_dns_failure_errbacks),
        cmocka_unit_test(test_timeout_covers_the_lookup),
        cmocka_unit_test(test_cancel_aborts_the_attempt),
        cmocka_unit_test(test_cancel_after_connecting_does_nothing),
        cmocka_unit_test(test_factory_may_refuse),
        cmocka_unit_test(test_bad_arguments_fail_from_the_loop),
        cmocka_unit_test(test_no_data_after_lose_connection),
        cmocka_unit_test(test_pause_and_resume_reading),
        cmocka_unit_test(test_producer_follows_the_watermarks),
        cmocka_unit_test(test_thousand_concurrent_connections),
        cmocka_unit_test(test_hundred_megabytes_in_bounded_memory),
        cmocka_unit_test(test_accept_pauses_when_out_of_descriptors),
        cmocka_unit_test(test_reconnect_delays_grow_by_the_factor),
        cmocka_unit_test(test_reconnect_delay_is_capped),
        cmocka_unit_test(test_reconnect_gives_up_after_max_retries),
        cmocka_unit_test(test_reconnect_jitter_is_normal_around_the_delay),
        cmocka_unit_test(test_reconnect_resets_after_a_good_connection),
        cmocka_unit_test(test_reconnect_stop_trying_cancels_the_attempt),
        cmocka_unit_test(test_reconnect_free_aborts_the_connection),
        cmocka_unit_test(test_reconnect_free_from_the_factory_hooks),
        cmocka_unit_test(test_stop_listening_from_connection_made),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
