/* Tests for include/twine/http_client.h: tw_get_page, the agent and its
 * pool, streamed bodies, tw_read_body and tw_download_page, against a
 * scripted twine server on the loopback interface. The server reads each
 * request and answers with canned bytes chosen by the path: whole, dripped
 * byte by byte, truncated, never, or by closing; it counts connections,
 * requests and closes, and keeps the last request for the test to check.
 * Every test stops the reactor itself once the events it waits for have
 * come; a safety timer fails a test that would hang. */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/x509_vfy.h>      /* the codes of TW_ERR_TLS verify failures */
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define SAFETY_SECONDS 20.0
#include "testutil.h"
#include "../lib/http_parse.h"        /* the codes of TW_ERR_HTTP_PARSE failures */


/* Running the reactor ------------------------------------------------------------ */


/* run_reactor, for tests where every expected event may already have come. */
static void run_until_done(void)
{
    if (waiting > 0)
        run_reactor();
}

static void count_down_later(void *arg)
{
    count_down();
}

/* Lets the loop run for `seconds`. */
static void run_for(double seconds)
{
    waiting++;
    tw_call_later(seconds, count_down_later, NULL);
    run_until_done();
}

/* Bodies the server sends compressed ----------------------------------------------- */

typedef struct packed {
    unsigned char *data;
    size_t len;
} packed;

static char plain[20000];            /* what they decode to */
static packed gzipped, zlibbed, raw_deflated;

static packed compress_with(int window_bits)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    packed p;
    p.data = malloc(deflateBound(&z, sizeof plain));
    z.next_in = (unsigned char *)plain;
    z.avail_in = sizeof plain;
    z.next_out = p.data;
    z.avail_out = (uInt)deflateBound(&z, sizeof plain);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    p.len = z.total_out;
    deflateEnd(&z);
    return p;
}

static void make_compressed_bodies(void)
{
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = "twine decodes gzip and deflate\n"[i % 31];
    gzipped = compress_with(15 + 16);
    zlibbed = compress_with(15);
    raw_deflated = compress_with(-15);
}

/* The scripted server --------------------------------------------------------------- */

typedef struct server server;
typedef struct sconn sconn;

struct sconn {
    tw_protocol base;
    server *s;
    sconn *next;                /* the server's open connections */
    int id;                     /* 1, 2... in the order accepted */
    int served;                 /* requests answered on it */
    bool head;                  /* the request being answered is a HEAD: no body */
    char *in;                   /* what was read and not yet handled */
    size_t len, cap;
    const char *drip;           /* a response sent a byte at a time */
    size_t drip_len, drip_pos;
    tw_delayed_call *timer;
};

struct server {
    tw_factory f;
    tw_port *port;
    int portno;
    int tls;
    char sni[256];              /* the server name the last TLS client sent, or "(none)" */
    int connections, requests, lost;
    int want_lost;              /* count down once this many connections are lost */
    int close_second;           /* 1: close a connection on its second request, unanswered;
                                 * 2: reset it */
    const char *cross;          /* where /cross redirects */
    sconn *open;
    char method[16];
    char head[16384];           /* the last request's head */
    char *body;                 /* the last request's body */
    size_t body_len;
    char *big;                  /* /big's body */
    size_t big_len;
    size_t big_written;
};

static sconn *sconn_of(tw_protocol *p) { return TW_CONTAINER_OF(p, sconn, base); }

static void send_bytes(sconn *c, const void *data, size_t len)
{
    tw_transport_write(c->base.transport, data, len);
}

static void send_str(sconn *c, const char *s)
{
    send_bytes(c, s, strlen(s));
}

static void send_response(sconn *c, int status, const char *extra, const void *body, size_t len)
{
    char head[2048];
    snprintf(head, sizeof head, "HTTP/1.1 %d Whatever\r\nContent-Length: %zu\r\n%s\r\n", status,
             len, extra ? extra : "");
    send_str(c, head);
    if (!c->head)
        send_bytes(c, body, len);
}

static void send_text(sconn *c, const char *text)
{
    send_response(c, 200, NULL, text, strlen(text));
}

static void redirect(sconn *c, int status, const char *location)
{
    char extra[1024];
    snprintf(extra, sizeof extra, "Location: %s\r\n", location);
    send_response(c, status, extra, "move on", 7);
}

/* Resets c: the client gets an RST, not a FIN. The transport keeps its
 * socket to itself, so it is found by its peer's address. */
static void reset(sconn *c)
{
    struct sockaddr_in peer, a;
    socklen_t len = sizeof peer;
    assert_int_equal(tw_transport_get_peer(c->base.transport, (struct sockaddr_storage *)&peer,
                                           &len), 0);
    for (int fd = 3; fd < 4096; fd++) {
        len = sizeof a;
        if (getpeername(fd, (struct sockaddr *)&a, &len) == 0 && a.sin_family == AF_INET &&
            a.sin_port == peer.sin_port && a.sin_addr.s_addr == peer.sin_addr.s_addr) {
            struct linger l = { .l_onoff = 1, .l_linger = 0 };
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            break;
        }
    }
    tw_transport_abort_connection(c->base.transport);
}

static void reset_later(void *arg)
{
    sconn *c = arg;
    c->timer = NULL;
    reset(c);
}

static void drip_tick(void *arg)
{
    sconn *c = arg;
    c->timer = NULL;
    send_bytes(c, c->drip + c->drip_pos++, 1);
    if (c->drip_pos < c->drip_len)
        c->timer = tw_call_later(0.001, drip_tick, c);
}

static void drip(sconn *c, const char *s)
{
    c->drip = s;
    c->drip_len = strlen(s);
    c->drip_pos = 0;
    c->timer = tw_call_later(0.001, drip_tick, c);
}

static const char chunked_response[] =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n";

static void send_compressed(sconn *c, const packed *p, const char *coding)
{
    char extra[128];
    snprintf(extra, sizeof extra, "Content-Encoding: %s\r\n", coding);
    send_response(c, 200, extra, p->data, p->len);
}

/* The answers, by path. */
static void route(sconn *c, const char *method, const char *path)
{
    server *s = c->s;
    char buf[1024];
    if (!strcmp(path, "/cl")) {
        send_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    } else if (!strcmp(path, "/chunked")) {
        send_str(c, chunked_response);
    } else if (!strcmp(path, "/split")) {
        drip(c, chunked_response);
    } else if (!strcmp(path, "/close")) {
        send_str(c, "HTTP/1.1 200 OK\r\n\r\nuntil the close");
        tw_transport_lose_connection(c->base.transport);
    } else if (!strcmp(path, "/head")) {
        send_str(c, !strcmp(method, "HEAD") ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                                            : "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    } else if (!strcmp(path, "/204")) {
        send_str(c, "HTTP/1.1 204 No Content\r\n\r\n");
    } else if (!strcmp(path, "/304")) {
        send_str(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 5\r\n\r\n");
    } else if (!strcmp(path, "/1xx")) {
        send_str(c, "HTTP/1.1 100 Continue\r\n\r\n"
                    "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (!strcmp(path, "/repeat")) {
        send_str(c, "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Other: x\r\nSet-Cookie: b=2\r\n"
                    "content-length: 2\r\n\r\nok");
    } else if (!strcmp(path, "/short")) {
        send_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        tw_transport_lose_connection(c->base.transport);
    } else if (!strcmp(path, "/eof-chunk")) {
        send_str(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
        tw_transport_lose_connection(c->base.transport);
    } else if (!strcmp(path, "/bad-status")) {
        send_str(c, "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n");
    } else if (!strcmp(path, "/bad-header")) {
        send_str(c, "HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n");
    } else if (!strcmp(path, "/huge-head")) {
        size_t n = 70 * 1024;
        char *big = malloc(n + 1);
        memset(big, 'a', n);
        big[n] = '\0';
        send_str(c, "HTTP/1.1 200 OK\r\nX-Big: ");
        send_str(c, big);
        send_str(c, "\r\nContent-Length: 0\r\n\r\n");
        free(big);
    } else if (!strcmp(path, "/404")) {
        send_str(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here!");
    } else if (!strcmp(path, "/500")) {
        send_str(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops");
    } else if (!strncmp(path, "/go/", 4)) {
        snprintf(buf, sizeof buf, "http://127.0.0.1:%d/echo", s->portno);
        redirect(c, atoi(path + 4), buf);
    } else if (!strncmp(path, "/echo", 5) && strchr("?", path[5])) {
        snprintf(buf, sizeof buf, "%s %zu %.*s", method, s->body_len, (int)s->body_len,
                 s->body ? s->body : "");
        send_text(c, buf);
    } else if (!strcmp(path, "/rel/a/b")) {
        redirect(c, 302, "../c?x=1");
    } else if (!strcmp(path, "/rel/c?x=1")) {
        send_text(c, "relative ok");
    } else if (!strcmp(path, "/loop/a")) {
        redirect(c, 302, "/loop/b");
    } else if (!strcmp(path, "/loop/b")) {
        redirect(c, 302, "/loop/a");
    } else if (!strncmp(path, "/chain/", 7)) {
        snprintf(buf, sizeof buf, "/chain/%d", atoi(path + 7) + 1);
        redirect(c, 302, buf);
    } else if (!strcmp(path, "/cross")) {
        redirect(c, 302, s->cross);
    } else if (!strcmp(path, "/same")) {
        snprintf(buf, sizeof buf, "http://127.0.0.1:%d/echo", s->portno);
        redirect(c, 302, buf);
    } else if (!strcmp(path, "/never")) {
        /* no answer */
    } else if (!strcmp(path, "/slow-head")) {
        send_str(c, "HTTP/1.1 200 OK\r\nContent-");
    } else if (!strcmp(path, "/slow-body")) {
        send_str(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n12345");
    } else if (!strcmp(path, "/big")) {
        snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", s->big_len);
        send_str(c, buf);
        send_bytes(c, s->big, s->big_len);
    } else if (!strcmp(path, "/gzip")) {
        send_compressed(c, &gzipped, "gzip");
    } else if (!strcmp(path, "/deflate")) {
        send_compressed(c, &zlibbed, "deflate");
    } else if (!strcmp(path, "/raw-deflate")) {
        send_compressed(c, &raw_deflated, "deflate");
    } else if (!strcmp(path, "/bad-gzip")) {
        send_response(c, 200, "Content-Encoding: gzip\r\n", "definitely not gzip", 19);
    } else if (!strcmp(path, "/count")) {
        snprintf(buf, sizeof buf, "%d/%d", c->id, c->served);
        send_text(c, buf);
    } else if (!strcmp(path, "/reset-body")) {
        send_str(c, "HTTP/1.1 200 OK\r\n\r\npartial");
        c->timer = tw_call_later(0.05, reset_later, c);
    } else if (!strcmp(path, "/conn-close")) {
        /* The server says it closes, and does not (yet). */
        send_str(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    } else if (!strcmp(path, "/http10")) {
        send_str(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (!strcmp(path, "/drop")) {
        tw_transport_lose_connection(c->base.transport);
    } else {
        send_str(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

/* The value of a header field in a request head, or NULL (in a static buffer). */
static const char *head_field(const char *head, const char *name)
{
    static char value[1024];
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (!strncasecmp(line + 2, name, n) && line[2 + n] == ':') {
            const char *v = line + 3 + n;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r");
            snprintf(value, sizeof value, "%.*s", (int)len, v);
            return value;
        }
    }
    return NULL;
}

static void sconn_data(tw_protocol *p, const char *data, size_t len)
{
    sconn *c = sconn_of(p);
    server *s = c->s;
    if (c->len + len > c->cap) {
        c->cap = (c->len + len) * 2;
        c->in = realloc(c->in, c->cap + 1);
    }
    memcpy(c->in + c->len, data, len);
    c->len += len;
    c->in[c->len] = '\0';
    while (!tw_transport_disconnecting(p->transport)) {
        char *end = strstr(c->in, "\r\n\r\n");
        if (!end)
            return;
        size_t head_len = (size_t)(end - c->in) + 4;
        char head[16384];
        snprintf(head, sizeof head, "%.*s", (int)head_len, c->in);
        const char *cl = head_field(head, "Content-Length");
        size_t body_len = cl ? strtoul(cl, NULL, 10) : 0;
        if (c->len < head_len + body_len)
            return;

        memcpy(s->head, head, sizeof head);
        free(s->body);
        s->body = malloc(body_len + 1);
        memcpy(s->body, c->in + head_len, body_len);
        s->body[body_len] = '\0';
        s->body_len = body_len;
        char path[1024];
        sscanf(head, "%15s %1023s", s->method, path);
        memmove(c->in, c->in + head_len + body_len, c->len - head_len - body_len + 1);
        c->len -= head_len + body_len;
        s->requests++;
        if (s->close_second && c->served == 1) {
            if (s->close_second == 2)
                reset(c);
            else
                tw_transport_lose_connection(p->transport);
            return;
        }
        c->served++;
        c->head = !strcmp(s->method, "HEAD");
        route(c, s->method, path);
    }
}

static void sconn_lost(tw_protocol *p, tw_failure *reason)
{
    sconn *c = sconn_of(p);
    server *s = c->s;
    if (c->timer)
        tw_delayed_call_cancel(c->timer);
    for (sconn **q = &s->open; *q; q = &(*q)->next) {
        if (*q == c) {
            *q = c->next;
            break;
        }
    }
    s->lost++;
    if (s->want_lost && s->lost >= s->want_lost) {
        s->want_lost = 0;
        count_down();
    }
}

static void sconn_free(tw_protocol *p)
{
    sconn *c = sconn_of(p);
    free(c->in);
    free(c);
}

static void sconn_made(tw_protocol *p)
{
    sconn *c = sconn_of(p);
    if (c->s->tls) {
        const char *sni = tw_tls_server_name(p->transport);
        snprintf(c->s->sni, sizeof c->s->sni, "%s", sni ? sni : "(none)");
    }
}

static const tw_protocol_ops sconn_ops = {
    .connection_made = sconn_made,
    .data_received = sconn_data,
    .connection_lost = sconn_lost,
    .free = sconn_free,
};

static tw_protocol *sconn_build(tw_factory *f, const struct sockaddr *peer)
{
    server *s = f->data;
    sconn *c = calloc(1, sizeof *c);
    c->base.ops = &sconn_ops;
    c->s = s;
    c->id = ++s->connections;
    c->next = s->open;
    s->open = c;
    return &c->base;
}

static void server_start_tls(server *s, const tw_tls_options *tls)
{
    memset(s, 0, sizeof *s);
    s->f.build_protocol = sconn_build;
    s->f.data = s;
    int err = 0;
    s->port = tls ? tw_listen_tls("127.0.0.1", 0, &s->f, tls, &err)
                  : tw_listen_tcp("127.0.0.1", 0, &s->f, &err);
    assert_non_null(s->port);
    s->portno = tw_port_number(s->port);
    s->tls = tls != NULL;
}

static void server_start(server *s)
{
    server_start_tls(s, NULL);
}

/* Runs the loop until the server has lost n connections in all. */
static void wait_lost(server *s, int n)
{
    if (s->lost >= n)
        return;
    s->want_lost = n;
    waiting++;
    run_until_done();
}

static void port_stopped(tw_result *r, void *arg)
{
    count_down();
}

/* Aborts the server's connections, stops listening, and waits for both. */
static void server_stop(server *s)
{
    int gone = s->lost;
    for (sconn *c = s->open; c; c = c->next, gone++)
        tw_transport_abort_connection(c->base.transport);
    tw_deferred *d = tw_port_stop_listening(s->port);
    waiting++;
    tw_deferred_add_callback(d, port_stopped, NULL);
    tw_deferred_unref(d);
    run_until_done();
    wait_lost(s, gone);
    free(s->body);
    free(s->big);
}

static const char *url_of(const server *s, const char *path)
{
    static char bufs[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(bufs[i], sizeof bufs[i], "%s://127.0.0.1:%d%s", s->tls ? "https" : "http", s->portno,
             path);
    return bufs[i];
}

/* Outcomes ---------------------------------------------------------------------------- */

typedef struct outcome {
    int fired;
    tw_http_response *resp;             /* tw_get_page's success */
    tw_http_client_response *stream;    /* tw_http_agent_request's success */
    tw_http_content *content;           /* tw_read_body's success */
    tw_failure *failure;
    void (*then)(struct outcome *o);    /* called after recording */
    size_t max;                         /* read_body_now's limit */
} outcome;

static void got_value(tw_result *r, void *arg, int kind)
{
    outcome *o = arg;
    o->fired++;
    if (kind == 0)
        o->resp = tw_result_steal(r);
    else if (kind == 1)
        o->stream = tw_result_steal(r);
    else
        o->content = tw_result_steal(r);
    if (o->then)
        o->then(o);
    count_down();
}

static void got_page(tw_result *r, void *arg) { got_value(r, arg, 0); }
static void got_stream(tw_result *r, void *arg) { got_value(r, arg, 1); }
static void got_content(tw_result *r, void *arg) { got_value(r, arg, 2); }

static void got_failure(tw_result *r, void *arg)
{
    outcome *o = arg;
    o->fired++;
    o->failure = tw_failure_ref(r->failure);
    tw_result_set_value(r, NULL, NULL);
    if (o->then)
        o->then(o);
    count_down();
}

static void watch_page(outcome *o, tw_deferred *d)
{
    waiting++;
    tw_deferred_add_callbacks(d, got_page, got_failure, o);
    tw_deferred_unref(d);
}

static void watch_stream(outcome *o, tw_deferred *d)
{
    waiting++;
    tw_deferred_add_callbacks(d, got_stream, got_failure, o);
    tw_deferred_unref(d);
}

static void watch_content(outcome *o, tw_deferred *d)
{
    waiting++;
    tw_deferred_add_callbacks(d, got_content, got_failure, o);
    tw_deferred_unref(d);
}

static void outcome_clear(outcome *o)
{
    tw_http_response_free(o->resp);
    tw_http_client_response_free(o->stream);
    tw_http_content_free(o->content);
    tw_failure_unref(o->failure);
    memset(o, 0, sizeof *o);
}

/* tw_get_page(url, opt), run to its end. */
static void fetch(outcome *o, const char *url, const tw_page_options *opt)
{
    watch_page(o, tw_get_page(url, opt));
    assert_int_equal(o->fired, 0);      /* never before the call returns */
    run_until_done();
    assert_int_equal(o->fired, 1);
}

static void assert_failure(const outcome *o, const char *domain, int code)
{
    if (!tw_failure_check(o->failure, domain, code)) {
        char text[512] = "(no failure)";
        if (o->failure)
            tw_failure_format(o->failure, text, sizeof text);
        fail_msg("expected %s %d, got %s", domain, code, text);
    }
}

/* The page fetched; a failure instead fails the test with its text. */
static const tw_http_response *page(const outcome *o)
{
    if (!o->resp) {
        char text[512] = "(nothing)";
        if (o->failure)
            tw_failure_format(o->failure, text, sizeof text);
        fail_msg("expected a page, got %s", text);
    }
    return o->resp;
}

static void agent_closed(tw_result *r, void *arg)
{
    count_down();
}

/* Closes the agent and runs until its connections are gone. */
static void close_agent(tw_http_agent *a)
{
    waiting++;
    tw_deferred *d = tw_http_agent_close(a);
    tw_deferred_add_callback(d, agent_closed, NULL);
    tw_deferred_unref(d);
    run_until_done();
}

/* Failure payloads (failure.h), which carry the client's responses --------------------- */

static void test_failure_payload_goes_with_the_failure(void **state)
{
    tw_test_live_boxes = 0;
    tw_failure *f = tw_failure_new_with_data(TW_ERR_HTTP, 404, NULL, tw_test_box(7),
                                             tw_test_box_free, "%d %s", 404, "Not Found");
    assert_int_equal(tw_test_live_boxes, 1);
    assert_string_equal(tw_failure_message(f), "404 Not Found");
    int *box = tw_failure_data(f, tw_test_box_free);
    assert_non_null(box);
    assert_int_equal(*box, 7);
    assert_null(tw_failure_data(f, free));             /* another type tag */
    assert_null(tw_failure_data(NULL, tw_test_box_free));
    tw_failure *outer = tw_failure_new(TW_ERR_TIMEOUT, 0, tw_failure_ref(f), "timed out");
    assert_null(tw_failure_data(outer, tw_test_box_free));   /* not looked up in causes */
    assert_null(tw_http_failure_response(outer));            /* no response attached */
    tw_failure_unref(f);
    assert_int_equal(tw_test_live_boxes, 1);            /* the cause keeps it */
    tw_failure_unref(outer);
    assert_int_equal(tw_test_live_boxes, 0);
}

/* URLs ------------------------------------------------------------------------------------ */

static void assert_join(const char *ref, const char *want)
{
    char *got = tw_http_url_join("http://a/b/c/d;p?q", ref);
    assert_non_null(got);
    if (strcmp(got, want))
        fail_msg("join \"%s\": got \"%s\", want \"%s\"", ref, got, want);
    free(got);
}

/* RFC 3986, section 5.4: the normal and abnormal examples. */
static void test_url_join_follows_rfc_3986(void **state)
{
    static const char *const cases[][2] = {
        { "g:h", "g:h" }, { "g", "http://a/b/c/g" }, { "./g", "http://a/b/c/g" },
        { "g/", "http://a/b/c/g/" }, { "/g", "http://a/g" }, { "//g", "http://g" },
        { "?y", "http://a/b/c/d;p?y" }, { "g?y", "http://a/b/c/g?y" },
        { "#s", "http://a/b/c/d;p?q#s" }, { "g#s", "http://a/b/c/g#s" },
        { "g?y#s", "http://a/b/c/g?y#s" }, { ";x", "http://a/b/c/;x" },
        { "g;x", "http://a/b/c/g;x" }, { "g;x?y#s", "http://a/b/c/g;x?y#s" },
        { "", "http://a/b/c/d;p?q" }, { ".", "http://a/b/c/" }, { "./", "http://a/b/c/" },
        { "..", "http://a/b/" }, { "../", "http://a/b/" }, { "../g", "http://a/b/g" },
        { "../..", "http://a/" }, { "../../", "http://a/" }, { "../../g", "http://a/g" },
        { "../../../g", "http://a/g" }, { "../../../../g", "http://a/g" },
        { "/./g", "http://a/g" }, { "/../g", "http://a/g" }, { "g.", "http://a/b/c/g." },
        { ".g", "http://a/b/c/.g" }, { "g..", "http://a/b/c/g.." }, { "..g", "http://a/b/c/..g" },
        { "./../g", "http://a/b/g" }, { "./g/.", "http://a/b/c/g/" },
        { "g/./h", "http://a/b/c/g/h" }, { "g/../h", "http://a/b/c/h" },
        { "g;x=1/./y", "http://a/b/c/g;x=1/y" }, { "g;x=1/../y", "http://a/b/c/y" },
        { "g?y/./x", "http://a/b/c/g?y/./x" }, { "g?y/../x", "http://a/b/c/g?y/../x" },
        { "g#s/./x", "http://a/b/c/g#s/./x" }, { "g#s/../x", "http://a/b/c/g#s/../x" },
        { "http:g", "http:g" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_join(cases[i][0], cases[i][1]);
    assert_null(tw_http_url_join("no/scheme", "g"));
    char *j = tw_http_url_join("http://h:8080", "x");
    assert_string_equal(j, "http://h:8080/x");
    free(j);
}

static void test_bad_urls_fail_from_the_loop(void **state)
{
    static const struct {
        const char *url;
        int code;
    } cases[] = {
        { "ftp://example.com/", EPROTONOSUPPORT },
        { "http://user:secret@127.0.0.1/", EINVAL },
        { "http://127.0.0.1/a\r\nX-Injected: 1", EINVAL },
        { "http://[::1/", EINVAL },
        { "http://127.0.0.1:99999/", EINVAL },
        { "http:///nohost", EINVAL },
        { "no scheme at all", EINVAL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        outcome o = { 0 };
        fetch(&o, cases[i].url, NULL);
        assert_failure(&o, TW_ERR_USAGE, cases[i].code);
        assert_null(tw_http_failure_response(o.failure));
        outcome_clear(&o);
    }
    outcome o = { 0 };
    tw_page_options opt = { .method = "GE T" };
    fetch(&o, "http://127.0.0.1/", &opt);
    assert_failure(&o, TW_ERR_USAGE, EINVAL);
    outcome_clear(&o);
}

/* The request ---------------------------------------------------------------------------- */

static void test_request_line_and_header_fields(void **state)
{
    server s;
    server_start(&s);
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "X-Custom", "1");
    tw_http_headers_add(h, "Host", "evil.example");
    tw_http_headers_add(h, "Content-Length", "999");
    tw_http_headers_add(h, "x-custom", "2");
    assert_int_equal(tw_http_headers_add(h, "X-Injected", "a\r\nEvil: 1"), -EINVAL);
    tw_page_options opt = { .headers = h };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/echo?q=1&r=%20"), &opt);
    assert_int_equal(page(&o)->status, 200);
    char want[256];
    snprintf(want, sizeof want,
             "GET /echo?q=1&r=%%20 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: twine/%s\r\n"
             "X-Custom: 1\r\nx-custom: 2\r\n\r\n", s.portno, PACKAGE_VERSION);
    assert_string_equal(s.head, want);
    outcome_clear(&o);

    /* A POST without a body says so; the caller's User-Agent wins. */
    tw_http_headers_set(h, "User-Agent", "mine/1");
    tw_page_options post = { .method = "POST", .headers = h };
    fetch(&o, url_of(&s, "/echo"), &post);
    assert_string_equal(page(&o)->body, "POST 0 ");
    assert_string_equal(head_field(s.head, "Content-Length"), "0");
    assert_string_equal(head_field(s.head, "User-Agent"), "mine/1");
    assert_string_equal(head_field(s.head, "Host"), head_field(want, "Host"));
    outcome_clear(&o);

    /* The page options' user agent; fragments stay home. */
    tw_page_options ua = { .user_agent = "agent/2" };
    fetch(&o, url_of(&s, "/echo#fragment"), &ua);
    assert_non_null(strstr(s.head, "GET /echo HTTP/1.1\r\n"));
    assert_string_equal(head_field(s.head, "User-Agent"), "agent/2");
    outcome_clear(&o);
    tw_http_headers_free(h);
    server_stop(&s);
}

static void test_host_field_of_an_ipv6_url(void **state)
{
    server s;
    memset(&s, 0, sizeof s);
    s.f.build_protocol = sconn_build;
    s.f.data = &s;
    int err;
    s.port = tw_listen_tcp("::1", 0, &s.f, &err);
    if (!s.port)
        skip();                         /* no IPv6 loopback here */
    s.portno = tw_port_number(s.port);
    char url[128];
    snprintf(url, sizeof url, "http://[::1]:%d/cl", s.portno);
    outcome o = { 0 };
    fetch(&o, url, NULL);
    assert_string_equal(page(&o)->body, "hello");
    char host[64];
    snprintf(host, sizeof host, "[::1]:%d", s.portno);
    assert_string_equal(head_field(s.head, "Host"), host);
    outcome_clear(&o);
    server_stop(&s);
}

static void test_request_body_arrives_intact(void **state)
{
    server s;
    server_start(&s);
    size_t n = 200 * 1024;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)(i * 7 + (i >> 9));
    tw_page_options opt = { .method = "PUT", .body = body, .body_len = n };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/count"), &opt);
    assert_int_equal(page(&o)->status, 200);
    assert_string_equal(s.method, "PUT");
    assert_int_equal(s.body_len, n);
    assert_memory_equal(s.body, body, n);
    char length[32];
    snprintf(length, sizeof length, "%zu", n);
    assert_string_equal(head_field(s.head, "Content-Length"), length);
    outcome_clear(&o);
    free(body);
    server_stop(&s);
}

/* Framing --------------------------------------------------------------------------------- */

static void test_content_length_body(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/cl"), NULL);
    assert_int_equal(page(&o)->status, 200);
    assert_string_equal(page(&o)->reason, "OK");
    assert_int_equal(page(&o)->body_len, 5);
    assert_string_equal(page(&o)->body, "hello");
    assert_string_equal(page(&o)->url, url_of(&s, "/cl"));
    assert_string_equal(tw_http_headers_get(page(&o)->headers, "content-LENGTH"), "5");
    outcome_clear(&o);
    server_stop(&s);
}

/* A consumer of a streamed body, through the agent. */
typedef struct collector {
    tw_http_client_response *r;         /* owned once the head has come */
    char data[4096];                    /* the start of the body */
    size_t len, total;
    int ended;
    tw_failure *end;                    /* how the body ended */
    tw_failure *failure;                /* the request's failure */
    char trailer[64];
    /* Pausing: once total reaches pause_at, pause for a while. */
    size_t pause_at, at_pause;
    bool paused;
    server *s;
    size_t server_buffered;             /* the server's write buffer meanwhile */
} collector;

static void collect_data(void *arg, const char *data, size_t len);

static void check_and_resume(void *arg)
{
    collector *c = arg;
    assert_int_equal(c->total, c->at_pause);     /* nothing came while paused */
    assert_non_null(c->s->open);
    c->server_buffered = tw_transport_write_buffer_size(c->s->open->base.transport);
    c->paused = false;
    tw_http_client_response_resume(c->r);
}

static void collect_data(void *arg, const char *data, size_t len)
{
    collector *c = arg;
    assert_false(c->paused);
    size_t room = sizeof c->data - 1 - c->len;
    size_t n = len < room ? len : room;
    memcpy(c->data + c->len, data, n);
    c->len += n;
    c->data[c->len] = '\0';
    c->total += len;
    if (c->pause_at && !c->at_pause && c->total >= c->pause_at) {
        tw_http_client_response_pause(c->r);
        c->paused = true;
        c->at_pause = c->total;
        tw_call_later(0.3, check_and_resume, c);
    }
}

static void collect_end(void *arg, tw_failure *reason)
{
    collector *c = arg;
    c->ended++;
    c->end = reason ? tw_failure_ref(reason) : NULL;
    const char *t = c->r->trailers ? tw_http_headers_get(c->r->trailers, "X-Checksum") : NULL;
    snprintf(c->trailer, sizeof c->trailer, "%s", t ? t : "");
    count_down();
}

static void start_collecting(tw_result *r, void *arg)
{
    collector *c = arg;
    c->r = tw_result_steal(r);
    assert_int_equal(tw_http_client_response_deliver_body(c->r, collect_data, collect_end, c), 0);
    assert_int_equal(tw_http_client_response_deliver_body(c->r, NULL, NULL, NULL), -EALREADY);
}

static void collect_failed(tw_result *r, void *arg)
{
    collector *c = arg;
    c->failure = tw_failure_ref(r->failure);
    tw_result_set_value(r, NULL, NULL);
    count_down();
}

/* Requests through the agent and collects the body, run to its end. */
static void collect(collector *c, tw_http_agent *a, const char *method, const char *url)
{
    waiting++;
    tw_deferred *d = tw_http_agent_request(a, method, url, NULL, NULL, 0);
    tw_deferred_add_callbacks(d, start_collecting, collect_failed, c);
    tw_deferred_unref(d);
    run_until_done();
}

static void collector_clear(collector *c)
{
    tw_http_client_response_free(c->r);
    tw_failure_unref(c->end);
    tw_failure_unref(c->failure);
    memset(c, 0, sizeof *c);
}

static void test_chunked_body_with_trailers(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/chunked"), NULL);
    assert_int_equal(page(&o)->body_len, 11);
    assert_string_equal(page(&o)->body, "hello world");
    outcome_clear(&o);

    /* The same, a byte at a time. */
    fetch(&o, url_of(&s, "/split"), NULL);
    assert_string_equal(page(&o)->body, "hello world");
    outcome_clear(&o);

    tw_http_agent *a = tw_http_agent_new(NULL);
    collector c = { 0 };
    collect(&c, a, "GET", url_of(&s, "/chunked"));
    assert_null(c.end);
    assert_string_equal(c.data, "hello world");
    assert_string_equal(c.trailer, "abc");
    assert_int_equal(c.r->version_major, 1);
    assert_int_equal(c.r->version_minor, 1);
    assert_string_equal(c.r->method, "GET");
    assert_string_equal(c.r->url, url_of(&s, "/chunked"));
    collector_clear(&c);
    close_agent(a);
    server_stop(&s);
}

static void test_body_delimited_by_the_close(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/close"), NULL);
    assert_int_equal(page(&o)->status, 200);
    assert_string_equal(page(&o)->body, "until the close");
    outcome_clear(&o);
    server_stop(&s);
}

static void test_head_response_has_no_body(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent *a = tw_http_agent_new(NULL);
    tw_page_options opt = { .method = "HEAD", .agent = a };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/head"), &opt);
    assert_int_equal(page(&o)->status, 200);
    assert_int_equal(page(&o)->body_len, 0);
    assert_string_equal(page(&o)->body, "");
    assert_string_equal(tw_http_headers_get(page(&o)->headers, "Content-Length"), "5");
    outcome_clear(&o);
    /* The connection is still good for the next request. */
    opt.method = NULL;
    fetch(&o, url_of(&s, "/head"), &opt);
    assert_string_equal(page(&o)->body, "hello");
    assert_int_equal(s.connections, 1);
    outcome_clear(&o);
    close_agent(a);
    server_stop(&s);
}

static void test_204_and_304_have_no_body(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent *a = tw_http_agent_new(NULL);
    tw_page_options opt = { .agent = a };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/204"), &opt);
    assert_int_equal(page(&o)->status, 204);
    assert_int_equal(page(&o)->body_len, 0);
    outcome_clear(&o);

    collector c = { 0 };
    collect(&c, a, "GET", url_of(&s, "/304"));
    assert_int_equal(c.r->status, 304);
    assert_int_equal(c.total, 0);
    assert_null(c.end);
    collector_clear(&c);

    /* get_page takes a 304 for an answer that is not the page. */
    fetch(&o, url_of(&s, "/304"), &opt);
    assert_failure(&o, TW_ERR_HTTP, 304);
    outcome_clear(&o);
    fetch(&o, url_of(&s, "/cl"), &opt);
    assert_string_equal(page(&o)->body, "hello");
    assert_int_equal(s.connections, 1);
    outcome_clear(&o);
    close_agent(a);
    server_stop(&s);
}

static void test_informational_responses_are_skipped(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/1xx"), NULL);
    assert_int_equal(page(&o)->status, 200);
    assert_string_equal(page(&o)->body, "ok");
    assert_null(tw_http_headers_get(page(&o)->headers, "Link"));
    outcome_clear(&o);
    server_stop(&s);
}

static void test_repeated_header_fields_are_kept(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/repeat"), NULL);
    const tw_http_headers *h = page(&o)->headers;
    assert_int_equal(tw_http_headers_count(h), 4);
    size_t pos = 0;
    assert_string_equal(tw_http_headers_next(h, "set-cookie", &pos), "a=1");
    assert_string_equal(tw_http_headers_next(h, "SET-COOKIE", &pos), "b=2");
    assert_null(tw_http_headers_next(h, "Set-Cookie", &pos));
    assert_string_equal(tw_http_headers_get(h, "Content-Length"), "2");
    outcome_clear(&o);
    server_stop(&s);
}

/* Malformed and truncated responses ------------------------------------------------------- */

static void test_short_body_fails_with_what_came(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/short"), NULL);
    assert_failure(&o, TW_ERR_HTTP_PARSE, TW_HTTP_PARSE_EOF_IN_BODY);
    const tw_http_response *r = tw_http_failure_response(o.failure);
    assert_non_null(r);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->body_len, 3);
    assert_string_equal(r->body, "abc");
    assert_string_equal(r->url, url_of(&s, "/short"));
    outcome_clear(&o);
    server_stop(&s);
}

static void test_end_of_stream_inside_a_chunk(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/eof-chunk"), NULL);
    assert_failure(&o, TW_ERR_HTTP_PARSE, TW_HTTP_PARSE_EOF_IN_CHUNKED);
    assert_string_equal(tw_http_failure_response(o.failure)->body, "hel");
    outcome_clear(&o);
    server_stop(&s);
}

static void test_malformed_heads(void **state)
{
    static const struct {
        const char *path;
        int code;
    } cases[] = {
        { "/bad-status", TW_HTTP_PARSE_BAD_START_LINE },
        { "/bad-header", TW_HTTP_PARSE_BAD_HEADER },
        { "/huge-head", TW_HTTP_PARSE_HEAD_TOO_LARGE },
    };
    server s;
    server_start(&s);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        outcome o = { 0 };
        fetch(&o, url_of(&s, cases[i].path), NULL);
        assert_failure(&o, TW_ERR_HTTP_PARSE, cases[i].code);
        assert_null(tw_http_failure_response(o.failure));
        outcome_clear(&o);
    }
    server_stop(&s);
}

static void test_connection_closed_before_the_response(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/drop"), NULL);
    assert_failure(&o, TW_ERR_CONNECTION_LOST, -1);
    assert_int_equal(s.requests, 1);    /* a new connection: not sent again */
    outcome_clear(&o);
    server_stop(&s);
}

static void test_reset_during_a_body_delimited_by_the_close(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/reset-body"), NULL);
    assert_failure(&o, TW_ERR_CONNECTION_LOST, ECONNRESET);
    assert_string_equal(tw_http_failure_response(o.failure)->body, "partial");
    outcome_clear(&o);
    server_stop(&s);
}

/* Error statuses ------------------------------------------------------------------------------ */

static void test_error_statuses_errback_with_the_response(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/404"), NULL);
    assert_failure(&o, TW_ERR_HTTP, 404);
    assert_string_equal(tw_failure_message(o.failure), "404 Not Found");
    const tw_http_response *r = tw_http_failure_response(o.failure);
    assert_int_equal(r->status, 404);
    assert_string_equal(r->reason, "Not Found");
    assert_string_equal(r->body, "not here!");
    assert_int_equal(r->body_len, 9);
    assert_string_equal(r->url, url_of(&s, "/404"));
    outcome_clear(&o);

    fetch(&o, url_of(&s, "/500"), NULL);
    assert_failure(&o, TW_ERR_HTTP, 500);
    assert_string_equal(tw_failure_message(o.failure), "500 Internal Server Error");
    assert_string_equal(tw_http_failure_response(o.failure)->body, "oops");
    outcome_clear(&o);
    server_stop(&s);
}

/* Redirects ------------------------------------------------------------------------------------ */

static void test_redirects_are_followed_for_get(void **state)
{
    static const char *const paths[] = { "/go/301", "/go/302", "/go/303", "/go/307", "/go/308" };
    server s;
    server_start(&s);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        outcome o = { 0 };
        fetch(&o, url_of(&s, paths[i]), NULL);
        assert_int_equal(page(&o)->status, 200);
        assert_string_equal(page(&o)->body, "GET 0 ");
        assert_string_equal(page(&o)->url, url_of(&s, "/echo"));
        outcome_clear(&o);
    }
    assert_int_equal(s.requests, 10);
    server_stop(&s);
}

static void test_redirects_keep_head(void **state)
{
    static const char *const paths[] = { "/go/301", "/go/302", "/go/303", "/go/307", "/go/308" };
    server s;
    server_start(&s);
    tw_page_options opt = { .method = "HEAD" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        outcome o = { 0 };
        fetch(&o, url_of(&s, paths[i]), &opt);
        assert_int_equal(page(&o)->status, 200);
        assert_int_equal(page(&o)->body_len, 0);
        assert_string_equal(page(&o)->url, url_of(&s, "/echo"));
        assert_non_null(strstr(s.head, "HEAD /echo HTTP/1.1\r\n"));   /* the redirected one */
        outcome_clear(&o);
    }
    assert_int_equal(s.requests, 10);
    server_stop(&s);
}

static void test_303_turns_a_post_into_a_get(void **state)
{
    server s;
    server_start(&s);
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Content-Type", "text/plain");
    tw_page_options opt = { .method = "POST", .headers = h, .body = "data", .body_len = 4 };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/go/303"), &opt);
    assert_string_equal(page(&o)->body, "GET 0 ");
    assert_null(head_field(s.head, "Content-Type"));
    assert_null(head_field(s.head, "Content-Length"));
    outcome_clear(&o);
    tw_http_headers_free(h);
    server_stop(&s);
}

static void test_307_and_308_keep_the_method_and_body(void **state)
{
    server s;
    server_start(&s);
    tw_page_options opt = { .method = "POST", .body = "data", .body_len = 4 };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/go/307"), &opt);
    assert_string_equal(page(&o)->body, "POST 4 data");
    outcome_clear(&o);
    fetch(&o, url_of(&s, "/go/308"), &opt);
    assert_string_equal(page(&o)->body, "POST 4 data");
    outcome_clear(&o);
    server_stop(&s);
}

static void test_301_and_302_are_not_followed_for_post(void **state)
{
    server s;
    server_start(&s);
    tw_page_options opt = { .method = "POST", .body = "data", .body_len = 4 };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/go/301"), &opt);
    assert_failure(&o, TW_ERR_HTTP, 301);
    const tw_http_response *r = tw_http_failure_response(o.failure);
    assert_string_equal(tw_http_headers_get(r->headers, "Location"), url_of(&s, "/echo"));
    outcome_clear(&o);
    fetch(&o, url_of(&s, "/go/302"), &opt);
    assert_failure(&o, TW_ERR_HTTP, 302);
    outcome_clear(&o);
    assert_int_equal(s.requests, 2);
    server_stop(&s);
}

static void test_relative_location(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/rel/a/b"), NULL);
    assert_string_equal(page(&o)->body, "relative ok");
    assert_string_equal(page(&o)->url, url_of(&s, "/rel/c?x=1"));
    outcome_clear(&o);
    server_stop(&s);
}

static void test_redirect_loop_is_an_error(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/loop/a"), NULL);
    assert_failure(&o, TW_ERR_HTTP, 302);
    assert_non_null(strstr(tw_failure_message(o.failure), "redirect loop"));
    assert_int_equal(s.requests, 2);
    outcome_clear(&o);
    server_stop(&s);
}

static void test_redirect_limit(void **state)
{
    server s;
    server_start(&s);
    tw_page_options opt = { .max_redirects = 3 };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/chain/0"), &opt);
    assert_failure(&o, TW_ERR_HTTP, 302);
    assert_non_null(strstr(tw_failure_message(o.failure), "more than 3 redirects"));
    assert_int_equal(s.requests, 4);
    outcome_clear(&o);

    s.requests = 0;
    fetch(&o, url_of(&s, "/chain/0"), NULL);
    assert_failure(&o, TW_ERR_HTTP, 302);
    assert_int_equal(s.requests, 21);   /* the default: 20 followed */
    outcome_clear(&o);
    server_stop(&s);
}

static void test_redirects_not_followed_on_request(void **state)
{
    server s;
    server_start(&s);
    tw_page_options opt = { .max_redirects = -1 };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/go/302"), &opt);
    assert_failure(&o, TW_ERR_HTTP, 302);
    const tw_http_response *r = tw_http_failure_response(o.failure);
    assert_int_equal(r->status, 302);
    assert_string_equal(tw_http_headers_get(r->headers, "Location"), url_of(&s, "/echo"));
    assert_string_equal(r->body, "move on");
    assert_int_equal(s.requests, 1);
    outcome_clear(&o);
    server_stop(&s);
}

static void test_leaving_the_origin_drops_credentials(void **state)
{
    server a, b;
    server_start(&a);
    server_start(&b);
    char cross[128];
    snprintf(cross, sizeof cross, "%s", url_of(&b, "/echo"));
    a.cross = cross;
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Authorization", "Bearer secret");
    tw_http_headers_add(h, "Cookie", "session=1");
    tw_http_headers_add(h, "X-Other", "kept");
    tw_http_headers_add(h, "cookie", "second=2");      /* every one, in any case */
    tw_http_headers_add(h, "AUTHORIZATION", "Basic c2VjcmV0");
    tw_page_options opt = { .headers = h };
    outcome o = { 0 };
    fetch(&o, url_of(&a, "/cross"), &opt);
    assert_string_equal(page(&o)->url, cross);
    assert_null(head_field(b.head, "Authorization"));
    assert_null(head_field(b.head, "Cookie"));
    assert_null(strstr(b.head, "secret"));
    assert_null(strstr(b.head, "c2VjcmV0"));
    assert_null(strstr(b.head, "second=2"));
    assert_string_equal(head_field(b.head, "X-Other"), "kept");
    assert_string_equal(head_field(a.head, "Authorization"), "Bearer secret");
    outcome_clear(&o);

    fetch(&o, url_of(&a, "/same"), &opt);
    assert_string_equal(head_field(a.head, "Authorization"), "Bearer secret");
    assert_string_equal(head_field(a.head, "Cookie"), "session=1");
    assert_int_equal(b.requests, 1);
    outcome_clear(&o);
    tw_http_headers_free(h);
    server_stop(&a);
    server_stop(&b);
}

/* Timeouts and connection failures ------------------------------------------------------------ */

static void test_total_timeout_aborts_the_connection(void **state)
{
    server s;
    server_start(&s);
    tw_page_options opt = { .timeout = 0.2 };
    outcome o = { 0 };
    double start = monotonic_now();
    fetch(&o, url_of(&s, "/never"), &opt);
    double took = monotonic_now() - start;
    assert_failure(&o, TW_ERR_TIMEOUT, ETIMEDOUT);
    assert_true(took >= 0.19 && took < 5);
    wait_lost(&s, 1);
    outcome_clear(&o);

    /* Mid-body, the failure keeps what came. */
    fetch(&o, url_of(&s, "/slow-body"), &opt);
    assert_failure(&o, TW_ERR_TIMEOUT, ETIMEDOUT);
    const tw_http_response *r = tw_http_failure_response(o.failure);
    assert_non_null(r);
    assert_string_equal(r->body, "12345");
    wait_lost(&s, 2);
    outcome_clear(&o);
    server_stop(&s);
}

/* A port on 127.0.0.1 that refuses connections: bound, never listening. */
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

static void test_connect_timeout(void **state)
{
    /* A listener whose accept queue is full drops new SYNs. */
    int port;
    int l = refusing_socket(&port);
    assert_int_equal(listen(l, 0), 0);
    int filler = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)port) };
    assert_int_equal(connect(filler, (struct sockaddr *)&a, sizeof a), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    tw_page_options opt = { .connect_timeout = 0.2 };
    outcome o = { 0 };
    double start = monotonic_now();
    fetch(&o, url, &opt);
    assert_failure(&o, TW_ERR_TIMEOUT, ETIMEDOUT);
    assert_true(monotonic_now() - start < 5);
    outcome_clear(&o);
    close(filler);
    close(l);
}

static void test_connection_refused(void **state)
{
    int port;
    int fd = refusing_socket(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    outcome o = { 0 };
    fetch(&o, url, NULL);
    assert_failure(&o, TW_ERR_SYS, ECONNREFUSED);
    outcome_clear(&o);
    close(fd);
}

static void test_dns_failure(void **state)
{
    /* A DNS server on a UDP port nobody listens on. */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_int_equal(bind(u, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(u, (struct sockaddr *)&a, &len), 0);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", ntohs(a.sin_port));
    close(u);
    assert_int_equal(tw_dns_set_servers(servers), 0);
    assert_int_equal(tw_dns_set_timeout(0.2, 1), 0);
    outcome o = { 0 };
    fetch(&o, "http://nonexistent.invalid/", NULL);
    assert_failure(&o, TW_ERR_DNS, -1);
    outcome_clear(&o);
    assert_int_equal(tw_dns_set_servers(NULL), 0);
    assert_int_equal(tw_dns_set_timeout(0, 0), 0);
}

/* Cancellation ----------------------------------------------------------------------------- */

static void cancel_now(void *arg)
{
    tw_deferred_cancel(arg);
    tw_deferred_unref(arg);
}

static void test_cancel_before_connecting(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    tw_deferred *d = tw_get_page(url_of(&s, "/cl"), NULL);
    tw_deferred_ref(d);
    watch_page(&o, d);
    tw_deferred_cancel(d);
    tw_deferred_unref(d);
    assert_int_equal(o.fired, 1);
    assert_failure(&o, TW_ERR_CANCELLED, -1);
    outcome_clear(&o);
    run_for(0.05);
    assert_int_equal(s.requests, 0);
    server_stop(&s);
}

/* A total timeout does not turn the caller's own cancellation into a timeout. */
static void test_cancel_with_a_timeout_set_is_a_cancellation(void **state)
{
    server s;
    server_start(&s);
    tw_page_options opt = { .timeout = 10 };
    outcome o = { 0 };
    tw_deferred *d = tw_get_page(url_of(&s, "/slow-body"), &opt);
    tw_call_later(0.1, cancel_now, tw_deferred_ref(d));
    watch_page(&o, d);
    double start = monotonic_now();
    run_until_done();
    assert_true(monotonic_now() - start < 5);
    assert_failure(&o, TW_ERR_CANCELLED, -1);
    assert_string_equal(tw_http_failure_response(o.failure)->body, "12345");
    wait_lost(&s, 1);
    outcome_clear(&o);
    server_stop(&s);
}

/* Cancels the fetch of path after 0.1 s; the server sees its connection go. */
static void cancel_during(server *s, const char *path, outcome *o)
{
    tw_deferred *d = tw_get_page(url_of(s, path), NULL);
    tw_call_later(0.1, cancel_now, tw_deferred_ref(d));
    watch_page(o, d);
    run_until_done();
    assert_failure(o, TW_ERR_CANCELLED, -1);
    wait_lost(s, 1);
}

static void test_cancel_while_the_head_arrives(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    cancel_during(&s, "/slow-head", &o);
    assert_null(tw_http_failure_response(o.failure));
    outcome_clear(&o);
    server_stop(&s);
}

static void test_cancel_during_the_body(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    cancel_during(&s, "/slow-body", &o);
    const tw_http_response *r = tw_http_failure_response(o.failure);
    assert_non_null(r);
    assert_string_equal(r->body, "12345");
    outcome_clear(&o);
    server_stop(&s);
}

/* The pool ---------------------------------------------------------------------------------- */

/* Five requests, each started from the callback of the one before. */
typedef struct chain {
    outcome o;
    tw_page_options opt;
    const server *s;
    int done;
    char bodies[5][16];
} chain;

static void chain_next(outcome *o)
{
    chain *c = TW_CONTAINER_OF(o, chain, o);
    snprintf(c->bodies[c->done], sizeof c->bodies[0], "%s", o->resp ? o->resp->body : "failed");
    tw_http_response_free(o->resp);
    o->resp = NULL;
    if (++c->done < 5)
        watch_page(o, tw_get_page(url_of(c->s, "/count"), &c->opt));
}

static void test_keep_alive_reuses_one_connection(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent *a = tw_http_agent_new(NULL);
    chain c = { .opt = { .agent = a }, .s = &s };
    c.o.then = chain_next;
    watch_page(&c.o, tw_get_page(url_of(&s, "/count"), &c.opt));
    run_until_done();
    assert_int_equal(c.done, 5);
    for (int i = 0; i < 5; i++) {
        char want[16];
        snprintf(want, sizeof want, "1/%d", i + 1);
        assert_string_equal(c.bodies[i], want);
    }
    assert_int_equal(s.connections, 1);
    assert_int_equal(s.requests, 5);
    assert_int_equal(tw_http_agent_idle_count(a), 1);

    /* Across reactor runs too. */
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/count"), &c.opt);
    assert_string_equal(page(&o)->body, "1/6");
    outcome_clear(&o);
    close_agent(a);
    wait_lost(&s, 1);
    server_stop(&s);
}

/* The pool keeps connections apart by scheme, host name and port. */
static void test_pool_is_keyed_by_scheme_host_and_port(void **state)
{
    server s, t;
    server_start(&s);
    server_start(&t);
    tw_http_agent *a = tw_http_agent_new(NULL);
    tw_page_options opt = { .agent = a };
    outcome o = { 0 };
    char url[128];
    fetch(&o, url_of(&s, "/count"), &opt);
    assert_string_equal(page(&o)->body, "1/1");
    outcome_clear(&o);
    /* Another name for the same address and port: another connection. */
    snprintf(url, sizeof url, "http://localhost:%d/count", s.portno);
    fetch(&o, url, &opt);
    assert_string_equal(page(&o)->body, "2/1");
    outcome_clear(&o);
    /* Another port on the same host: the other server, its own connection. */
    fetch(&o, url_of(&t, "/count"), &opt);
    assert_string_equal(page(&o)->body, "1/1");
    outcome_clear(&o);
    assert_int_equal(tw_http_agent_idle_count(a), 3);
    /* Each goes on with its own. */
    fetch(&o, url_of(&s, "/count"), &opt);
    assert_string_equal(page(&o)->body, "1/2");
    outcome_clear(&o);
    fetch(&o, url, &opt);
    assert_string_equal(page(&o)->body, "2/2");
    outcome_clear(&o);
    /* https to the same host and port takes no plain connection: it connects
     * anew and waits for a handshake the plain server never answers. */
    snprintf(url, sizeof url, "https://127.0.0.1:%d/count", s.portno);
    tw_page_options tls = { .agent = a, .connect_timeout = 0.2 };
    fetch(&o, url, &tls);
    assert_failure(&o, TW_ERR_TIMEOUT, ETIMEDOUT);
    outcome_clear(&o);
    assert_int_equal(s.connections, 3);
    assert_int_equal(s.requests, 4);
    assert_int_equal(t.connections, 1);
    assert_int_equal(tw_http_agent_idle_count(a), 3);
    close_agent(a);
    server_stop(&s);
    server_stop(&t);
}

/* A response that says the connection ends (Connection: close, or HTTP/1.0
 * without keep-alive) does not put it back in the pool: the client closes it. */
static void test_server_saying_close_is_not_reused(void **state)
{
    static const char *const paths[] = { "/conn-close", "/http10" };
    tw_http_agent *a = tw_http_agent_new(NULL);
    tw_page_options opt = { .agent = a };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        server s;
        server_start(&s);
        outcome o = { 0 };
        fetch(&o, url_of(&s, paths[i]), &opt);
        assert_string_equal(page(&o)->body, "ok");
        outcome_clear(&o);
        assert_int_equal(tw_http_agent_idle_count(a), 0);
        wait_lost(&s, 1);               /* closed by the client */
        fetch(&o, url_of(&s, "/count"), &opt);
        assert_string_equal(page(&o)->body, "2/1");
        outcome_clear(&o);
        server_stop(&s);
    }
    close_agent(a);
}

/* A request whose own Connection field says close ends its connection, even
 * where the server would keep it (RFC 9112 9.6). */
static void test_request_saying_close_is_not_reused(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent *a = tw_http_agent_new(NULL);
    tw_http_headers *h = tw_http_headers_new();
    assert_int_equal(tw_http_headers_add(h, "Connection", "keep-alive, Close"), 0);
    tw_page_options closing = { .agent = a, .headers = h }, kept = { .agent = a };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/count"), &closing);
    assert_string_equal(page(&o)->body, "1/1");
    outcome_clear(&o);
    assert_int_equal(tw_http_agent_idle_count(a), 0);
    wait_lost(&s, 1);                   /* closed by the client */
    fetch(&o, url_of(&s, "/count"), &kept);
    assert_string_equal(page(&o)->body, "2/1");
    outcome_clear(&o);
    assert_int_equal(tw_http_agent_idle_count(a), 1);
    tw_http_headers_free(h);
    close_agent(a);
    server_stop(&s);
}

static void test_idle_connections_per_host_are_capped(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent_options ao = { .max_idle_per_host = 1 };
    tw_http_agent *a = tw_http_agent_new(&ao);
    tw_page_options opt = { .agent = a };
    outcome o[3] = { { 0 } };
    for (int i = 0; i < 3; i++)
        watch_page(&o[i], tw_get_page(url_of(&s, "/count"), &opt));
    run_until_done();
    for (int i = 0; i < 3; i++) {
        assert_non_null(o[i].resp);
        outcome_clear(&o[i]);
    }
    assert_int_equal(s.connections, 3);
    wait_lost(&s, 2);
    assert_int_equal(tw_http_agent_idle_count(a), 1);
    close_agent(a);
    server_stop(&s);
}

static void test_idle_timeout_closes_idle_connections(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent_options ao = { .idle_timeout = 0.1 };
    tw_http_agent *a = tw_http_agent_new(&ao);
    tw_page_options opt = { .agent = a };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/cl"), &opt);
    assert_int_equal(tw_http_agent_idle_count(a), 1);
    outcome_clear(&o);
    wait_lost(&s, 1);
    assert_int_equal(tw_http_agent_idle_count(a), 0);
    close_agent(a);
    server_stop(&s);
}

static void test_agent_without_keep_alive(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent_options ao = { .no_keep_alive = 1 };
    tw_http_agent *a = tw_http_agent_new(&ao);
    tw_page_options opt = { .agent = a };
    outcome o = { 0 };
    for (int i = 0; i < 2; i++) {
        fetch(&o, url_of(&s, "/count"), &opt);
        assert_string_equal(page(&o)->body, i ? "2/1" : "1/1");
        assert_string_equal(head_field(s.head, "Connection"), "close");
        outcome_clear(&o);
    }
    assert_int_equal(tw_http_agent_idle_count(a), 0);
    close_agent(a);
    server_stop(&s);
}

static void test_server_closing_a_kept_alive_connection(void **state)
{
    server s;
    server_start(&s);
    s.close_second = 1;                 /* a second request on a connection is dropped */
    tw_http_agent *a = tw_http_agent_new(NULL);
    tw_page_options opt = { .agent = a };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/count"), &opt);
    assert_string_equal(page(&o)->body, "1/1");
    outcome_clear(&o);
    /* A GET is sent once more, on a new connection. */
    fetch(&o, url_of(&s, "/count"), &opt);
    assert_string_equal(page(&o)->body, "2/1");
    assert_int_equal(s.connections, 2);
    assert_int_equal(s.requests, 3);
    outcome_clear(&o);
    /* A POST is not. */
    tw_page_options post = { .agent = a, .method = "POST", .body = "x", .body_len = 1 };
    fetch(&o, url_of(&s, "/count"), &post);
    assert_failure(&o, TW_ERR_CONNECTION_LOST, -1);
    assert_int_equal(s.connections, 2);
    assert_int_equal(s.requests, 4);
    outcome_clear(&o);
    close_agent(a);
    server_stop(&s);
}

static void test_server_resetting_a_kept_alive_connection(void **state)
{
    server s;
    server_start(&s);
    s.close_second = 2;
    tw_http_agent *a = tw_http_agent_new(NULL);
    tw_page_options opt = { .agent = a, .method = "DELETE" };
    outcome o = { 0 };
    for (int i = 0; i < 2; i++) {
        fetch(&o, url_of(&s, "/count"), &opt);
        assert_string_equal(page(&o)->body, i ? "2/1" : "1/1");
        outcome_clear(&o);
    }
    assert_int_equal(s.requests, 3);
    close_agent(a);
    server_stop(&s);
}

static void test_idle_connection_the_server_closes_leaves_the_pool(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent *a = tw_http_agent_new(NULL);
    tw_page_options opt = { .agent = a };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/count"), &opt);
    outcome_clear(&o);
    assert_int_equal(tw_http_agent_idle_count(a), 1);
    tw_transport_lose_connection(s.open->base.transport);
    run_for(0.1);
    assert_int_equal(tw_http_agent_idle_count(a), 0);
    fetch(&o, url_of(&s, "/count"), &opt);
    assert_string_equal(page(&o)->body, "2/1");
    assert_int_equal(s.requests, 2);
    outcome_clear(&o);
    close_agent(a);
    server_stop(&s);
}

static void close_agent_now(void *arg)
{
    tw_deferred *d = tw_http_agent_close(arg);
    tw_deferred_add_callback(d, agent_closed, NULL);
    tw_deferred_unref(d);
}

static void test_closing_the_agent_cancels_its_requests(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent *a = tw_http_agent_new(NULL);
    outcome o = { 0 };
    watch_stream(&o, tw_http_agent_request(a, "GET", url_of(&s, "/never"), NULL, NULL, 0));
    waiting++;                          /* the agent's close */
    tw_call_later(0.1, close_agent_now, a);
    run_until_done();
    assert_int_equal(s.requests, 1);
    assert_failure(&o, TW_ERR_CANCELLED, -1);
    wait_lost(&s, 1);
    outcome_clear(&o);
    server_stop(&s);
}

static void test_default_agent_closes_at_shutdown(void **state)
{
    server s;
    server_start(&s);
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/cl"), NULL);
    outcome_clear(&o);
    /* The reactor stopped: the idle connection was closed then. */
    wait_lost(&s, 1);
    server_stop(&s);
}

static void test_hundred_concurrent_fetches(void **state)
{
    enum { N = 100 };
    server s;
    server_start(&s);
    static outcome o[N];
    for (int i = 0; i < N; i++)
        watch_page(&o[i], tw_get_page(url_of(&s, "/cl"), NULL));
    run_until_done();
    for (int i = 0; i < N; i++) {
        assert_non_null(o[i].resp);
        assert_string_equal(page(&o[i])->body, "hello");
        outcome_clear(&o[i]);
    }
    assert_int_equal(s.requests, N);
    server_stop(&s);
}

/* Content codings and limits --------------------------------------------------------------- */

static void test_gzip_and_deflate_are_decoded(void **state)
{
    static const char *const paths[] = { "/gzip", "/deflate", "/raw-deflate" };
    server s;
    server_start(&s);
    tw_page_options opt = { .decode_content = 1 };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        outcome o = { 0 };
        fetch(&o, url_of(&s, paths[i]), &opt);
        assert_int_equal(page(&o)->body_len, sizeof plain);
        assert_memory_equal(page(&o)->body, plain, sizeof plain);
        assert_null(tw_http_headers_get(page(&o)->headers, "Content-Encoding"));
        assert_null(tw_http_headers_get(page(&o)->headers, "Content-Length"));
        assert_string_equal(head_field(s.head, "Accept-Encoding"), "gzip, deflate");
        outcome_clear(&o);
    }
    /* Not asked: the body as sent. */
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/gzip"), NULL);
    assert_int_equal(page(&o)->body_len, gzipped.len);
    assert_memory_equal(page(&o)->body, gzipped.data, gzipped.len);
    assert_string_equal(tw_http_headers_get(page(&o)->headers, "Content-Encoding"), "gzip");
    assert_null(head_field(s.head, "Accept-Encoding"));
    outcome_clear(&o);

    fetch(&o, url_of(&s, "/bad-gzip"), &opt);
    assert_failure(&o, TW_ERR_HTTP_BODY, EBADMSG);
    outcome_clear(&o);
    server_stop(&s);
}

static void test_max_body(void **state)
{
    server s;
    server_start(&s);
    tw_page_options opt = { .max_body = 4 };
    outcome o = { 0 };
    fetch(&o, url_of(&s, "/cl"), &opt);
    assert_failure(&o, TW_ERR_HTTP_BODY, EFBIG);
    assert_non_null(tw_http_failure_response(o.failure));
    outcome_clear(&o);
    opt.max_body = 5;
    fetch(&o, url_of(&s, "/cl"), &opt);
    assert_string_equal(page(&o)->body, "hello");
    outcome_clear(&o);
    /* The limit counts decoded bytes. */
    tw_page_options gz = { .max_body = 1000, .decode_content = 1 };
    fetch(&o, url_of(&s, "/gzip"), &gz);
    assert_failure(&o, TW_ERR_HTTP_BODY, EFBIG);
    outcome_clear(&o);
    server_stop(&s);
}

/* Streamed bodies ----------------------------------------------------------------------------- */

static void test_paused_body_holds_bounded_memory(void **state)
{
    server s;
    server_start(&s);
    s.big_len = 20 << 20;
    s.big = malloc(s.big_len);
    memset(s.big, 'z', s.big_len);
    tw_http_agent *a = tw_http_agent_new(NULL);
    collector c = { .pause_at = 1 << 20, .s = &s };
    collect(&c, a, "GET", url_of(&s, "/big"));
    assert_null(c.end);
    assert_int_equal(c.total, s.big_len);
    assert_true(c.at_pause >= 1 << 20 && c.at_pause < 2 << 20);
    /* While paused the client read nothing: the rest waited at the server. */
    assert_true(c.server_buffered > 5 << 20);
    collector_clear(&c);
    close_agent(a);
    server_stop(&s);
}

static tw_http_agent *late_agent;

static void read_body_later(void *arg)
{
    outcome *o = arg;
    watch_content(o, tw_read_body(o->stream));
    o->stream = NULL;                   /* tw_read_body took it */
    count_down();
}

static void keep_for_later(outcome *o)
{
    o->then = NULL;
    waiting++;
    tw_call_later(0.05, read_body_later, o);
}

static void test_read_body_after_the_callback(void **state)
{
    static const struct {
        const char *path;
        const char *body;
    } cases[] = { { "/cl", "hello" }, { "/chunked", "hello world" }, { "/204", "" } };
    server s;
    server_start(&s);
    late_agent = tw_http_agent_new(NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        outcome o = { .then = keep_for_later };
        watch_stream(&o, tw_http_agent_request(late_agent, "GET", url_of(&s, cases[i].path), NULL,
                                               NULL, 0));
        run_until_done();
        assert_non_null(o.content);
        assert_string_equal(o.content->data, cases[i].body);
        assert_int_equal(o.content->len, strlen(cases[i].body));
        outcome_clear(&o);
    }
    assert_int_equal(s.connections, 1);
    close_agent(late_agent);
    server_stop(&s);
}

static void read_body_now(outcome *o)
{
    if (!o->stream)
        return;
    o->then = NULL;
    watch_content(o, o->max ? tw_read_body_max(o->stream, o->max) : tw_read_body(o->stream));
    o->stream = NULL;
}

static void test_read_body_failures(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent *a = tw_http_agent_new(NULL);
    outcome o = { .then = read_body_now };
    watch_stream(&o, tw_http_agent_request(a, "GET", url_of(&s, "/short"), NULL, NULL, 0));
    run_until_done();
    assert_failure(&o, TW_ERR_HTTP_PARSE, TW_HTTP_PARSE_EOF_IN_BODY);
    const tw_http_response *r = tw_http_failure_response(o.failure);
    assert_string_equal(r->body, "abc");
    assert_int_equal(r->status, 200);
    outcome_clear(&o);

    o = (outcome){ .then = read_body_now, .max = 3 };
    watch_stream(&o, tw_http_agent_request(a, "GET", url_of(&s, "/cl"), NULL, NULL, 0));
    run_until_done();
    assert_failure(&o, TW_ERR_HTTP_BODY, EFBIG);
    outcome_clear(&o);
    close_agent(a);
    server_stop(&s);
}

static void let_go(outcome *o)
{
    tw_http_client_response_free(o->stream);
    o->stream = NULL;
}

static void test_letting_go_of_a_body_closes_the_connection(void **state)
{
    server s;
    server_start(&s);
    tw_http_agent *a = tw_http_agent_new(NULL);
    outcome o = { .then = let_go };
    watch_stream(&o, tw_http_agent_request(a, "GET", url_of(&s, "/slow-body"), NULL, NULL, 0));
    run_until_done();
    wait_lost(&s, 1);
    outcome_clear(&o);
    close_agent(a);
    server_stop(&s);
}

/* Downloads ------------------------------------------------------------------------------------- */

static int files_in(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static void test_download_page_writes_the_file(void **state)
{
    server s;
    server_start(&s);
    char dir[] = "/tmp/twine-download-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/page", dir);
    outcome o = { 0 };
    watch_page(&o, tw_download_page(url_of(&s, "/chunked"), path, NULL));
    run_until_done();
    assert_non_null(o.resp);
    assert_int_equal(page(&o)->status, 200);
    assert_int_equal(page(&o)->body_len, 0);
    size_t len;
    char *data = read_file(path, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(data, "hello world", 11);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0666 & ~mask);
    outcome_clear(&o);

    /* Decoded, and replacing the file. */
    tw_page_options opt = { .decode_content = 1 };
    watch_page(&o, tw_download_page(url_of(&s, "/gzip"), path, &opt));
    run_until_done();
    data = read_file(path, &len);
    assert_int_equal(len, sizeof plain);
    assert_memory_equal(data, plain, len);
    outcome_clear(&o);

    /* Failures leave the file as it was. What a truncated body brought is
     * kept in PATH.part; an error status leaves nothing behind. */
    char part[160];
    snprintf(part, sizeof part, "%s.part", path);
    static const struct {
        const char *path, *received;
        const char *domain;
        int code;
    } failing[] = {
        { "/short", "abc", TW_ERR_HTTP_PARSE, TW_HTTP_PARSE_EOF_IN_BODY },
        { "/eof-chunk", "hel", TW_ERR_HTTP_PARSE, TW_HTTP_PARSE_EOF_IN_CHUNKED },
        { "/404", NULL, TW_ERR_HTTP, 404 },
    };
    for (size_t i = 0; i < sizeof failing / sizeof failing[0]; i++) {
        watch_page(&o, tw_download_page(url_of(&s, failing[i].path), path, NULL));
        run_until_done();
        assert_failure(&o, failing[i].domain, failing[i].code);
        outcome_clear(&o);
        data = read_file(path, &len);
        assert_int_equal(len, sizeof plain);
        assert_memory_equal(data, plain, len);
        if (failing[i].received) {
            assert_int_equal(files_in(dir), 2);
            data = read_file(part, &len);
            assert_int_equal(len, strlen(failing[i].received));
            assert_memory_equal(data, failing[i].received, len);
        } else {
            assert_int_equal(files_in(dir), 2);   /* the older PATH.part stays */
        }
    }
    watch_page(&o, tw_download_page(url_of(&s, "/404"), path, NULL));
    run_until_done();
    assert_failure(&o, TW_ERR_HTTP, 404);
    assert_string_equal(tw_http_failure_response(o.failure)->body, "not here!");
    outcome_clear(&o);

    /* A whole body replaces the file and removes the stale PATH.part. */
    watch_page(&o, tw_download_page(url_of(&s, "/chunked"), path, NULL));
    run_until_done();
    assert_non_null(o.resp);
    outcome_clear(&o);
    assert_int_equal(files_in(dir), 1);
    data = read_file(path, &len);
    assert_int_equal(len, 11);

    /* A directory that does not exist. */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no/such/file", dir);
    watch_page(&o, tw_download_page(url_of(&s, "/cl"), missing, NULL));
    run_until_done();
    assert_failure(&o, TW_ERR_SYS, ENOENT);
    outcome_clear(&o);

    unlink(path);
    rmdir(dir);
    server_stop(&s);
}

/* HTTPS ------------------------------------------------------------------------------------------ */

static void test_https(void **state)
{
    char dir[] = "/tmp/twine-https-XXXXXX";
    assert_non_null(mkdtemp(dir));
    if (tw_test_make_certificates(dir, "IP:127.0.0.1") != 0) {
        tw_test_run("rm -rf '%s'", dir);
        skip();                         /* no openssl command */
    }
    char ca[128], cert[128], key[128];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    tw_tls_options tls = { .cert_file = cert, .key_file = key };
    server s;
    server_start_tls(&s, &tls);

    tw_http_agent_options ao = { .ca_file = ca };
    tw_http_agent *a = tw_http_agent_new(&ao);
    tw_page_options opt = { .agent = a };
    outcome o = { 0 };
    for (int i = 0; i < 2; i++) {
        fetch(&o, url_of(&s, "/count"), &opt);
        assert_string_equal(page(&o)->body, i ? "1/2" : "1/1");
        outcome_clear(&o);
    }
    fetch(&o, url_of(&s, "/close"), &opt);
    assert_string_equal(page(&o)->body, "until the close");
    outcome_clear(&o);

    /* Not trusted by the system's CAs; trusted when verification is off. */
    fetch(&o, url_of(&s, "/cl"), NULL);
    assert_failure(&o, TW_ERR_TLS, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_non_null(strstr(tw_failure_message(o.failure), "certificate verify failed"));
    assert_null(tw_http_failure_response(o.failure));
    outcome_clear(&o);
    tw_page_options insecure = { .insecure = 1 };
    fetch(&o, url_of(&s, "/cl"), &insecure);
    assert_string_equal(page(&o)->body, "hello");
    outcome_clear(&o);
    tw_page_options per_request = { .ca_file = ca };
    fetch(&o, url_of(&s, "/cl"), &per_request);
    assert_string_equal(page(&o)->body, "hello");
    outcome_clear(&o);

    close_agent(a);
    server_stop(&s);
    tw_test_run("rm -rf '%s'", dir);
}

static void assert_name_mismatch(const outcome *o, int code, const char *name)
{
    assert_failure(o, TW_ERR_TLS, code);
    const char *msg = tw_failure_message(o->failure);
    if (!strstr(msg, "host name mismatch") || !strstr(msg, name))
        fail_msg("expected a host name mismatch for %s, got \"%s\"", name, msg);
    assert_null(tw_http_failure_response(o->failure));
}

/* The URL's host is the name verified: a certificate that the trusted CA
 * signed, but for another name, is refused before any request is sent. A
 * host name is checked against the certificate's DNS names (and sent as
 * SNI), an IP literal against its IP addresses only. */
static void test_https_refuses_a_certificate_for_another_name(void **state)
{
    char dir[] = "/tmp/twine-https-XXXXXX";
    assert_non_null(mkdtemp(dir));
    if (tw_test_make_certificates(dir, "DNS:localhost") != 0 ||
        tw_test_make_signed_certificate(dir, "other", "DNS:other.example", 3) != 0) {
        tw_test_run("rm -rf '%s'", dir);
        skip();                         /* no openssl command */
    }
    char ca[128], cert[128], key[128], other_cert[128], other_key[128], url[128];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(other_cert, sizeof other_cert, "%s/other.pem", dir);
    snprintf(other_key, sizeof other_key, "%s/other.key", dir);
    tw_page_options opt = { .ca_file = ca };
    outcome o = { 0 };

    /* A certificate for DNS:localhost. */
    tw_tls_options tls = { .cert_file = cert, .key_file = key };
    server s;
    server_start_tls(&s, &tls);
    snprintf(url, sizeof url, "https://localhost:%d/cl", s.portno);
    fetch(&o, url, &opt);                         /* the control: the name matches */
    assert_string_equal(page(&o)->body, "hello");
    assert_string_equal(s.sni, "localhost");
    outcome_clear(&o);
    assert_int_equal(s.requests, 1);

    fetch(&o, url_of(&s, "/cl"), &opt);           /* https://127.0.0.1:port/cl */
    assert_name_mismatch(&o, X509_V_ERR_IP_ADDRESS_MISMATCH, "127.0.0.1");
    outcome_clear(&o);
    assert_int_equal(s.requests, 1);

    /* The same URL without verification: the name was all that was wrong. */
    tw_page_options insecure = { .insecure = 1 };
    fetch(&o, url_of(&s, "/cl"), &insecure);
    assert_string_equal(page(&o)->body, "hello");
    assert_string_equal(s.sni, "(none)");
    outcome_clear(&o);
    assert_int_equal(s.requests, 2);
    server_stop(&s);

    /* A certificate for DNS:other.example only, from the same CA. */
    tw_tls_options other = { .cert_file = other_cert, .key_file = other_key };
    server_start_tls(&s, &other);
    snprintf(url, sizeof url, "https://localhost:%d/cl", s.portno);
    fetch(&o, url, &opt);
    assert_name_mismatch(&o, X509_V_ERR_HOSTNAME_MISMATCH, "localhost");
    outcome_clear(&o);
    fetch(&o, url_of(&s, "/cl"), &opt);
    assert_name_mismatch(&o, X509_V_ERR_IP_ADDRESS_MISMATCH, "127.0.0.1");
    outcome_clear(&o);
    /* Through an agent trusting the CA too. */
    tw_http_agent_options ao = { .ca_file = ca };
    tw_http_agent *a = tw_http_agent_new(&ao);
    tw_page_options through_agent = { .agent = a };
    fetch(&o, url, &through_agent);
    assert_name_mismatch(&o, X509_V_ERR_HOSTNAME_MISMATCH, "localhost");
    outcome_clear(&o);
    assert_int_equal(tw_http_agent_idle_count(a), 0);
    close_agent(a);
    /* No handshake succeeded: no connection was built, no request read. */
    assert_int_equal(s.connections, 0);
    assert_int_equal(s.requests, 0);
    server_stop(&s);
    tw_test_run("rm -rf '%s'", dir);
}

int main(void)
{
    make_compressed_bodies();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failure_payload_goes_with_the_failure),
        cmocka_unit_test(test_url_join_follows_rfc_3986),
        cmocka_unit_test(test_bad_urls_fail_from_the_loop),
        cmocka_unit_test(test_request_line_and_header_fields),
        cmocka_unit_test(test_host_field_of_an_ipv6_url),
        cmocka_unit_test(test_request_body_arrives_intact),
        cmocka_unit_test(test_content_length_body),
        cmocka_unit_test(test_chunked_body_with_trailers),
        cmocka_unit_test(test_body_delimited_by_the_close),
        cmocka_unit_test(test_head_response_has_no_body),
        cmocka_unit_test(test_204_and_304_have_no_body),
        cmocka_unit_test(test_informational_responses_are_skipped),
        cmocka_unit_test(test_repeated_header_fields_are_kept),
        cmocka_unit_test(test_short_body_fails_with_what_came),
        cmocka_unit_test(test_end_of_stream_inside_a_chunk),
        cmocka_unit_test(test_malformed_heads),
        cmocka_unit_test(test_connection_closed_before_the_response),
        cmocka_unit_test(test_reset_during_a_body_delimited_by_the_close),
        cmocka_unit_test(test_error_statuses_errback_with_the_response),
        cmocka_unit_test(test_redirects_are_followed_for_get),
        cmocka_unit_test(test_redirects_keep_head),
        cmocka_unit_test(test_303_turns_a_post_into_a_get),
        cmocka_unit_test(test_307_and_308_keep_the_method_and_body),
        cmocka_unit_test(test_301_and_302_are_not_followed_for_post),
        cmocka_unit_test(test_relative_location),
        cmocka_unit_test(test_redirect_loop_is_an_error),
        cmocka_unit_test(test_redirect_limit),
        cmocka_unit_test(test_redirects_not_followed_on_request),
        cmocka_unit_test(test_leaving_the_origin_drops_credentials),
        cmocka_unit_test(test_total_timeout_aborts_the_connection),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_dns_failure),
        cmocka_unit_test(test_cancel_before_connecting),
        cmocka_unit_test(test_cancel_with_a_timeout_set_is_a_cancellation),
        cmocka_unit_test(test_cancel_while_the_head_arrives),
        cmocka_unit_test(test_cancel_during_the_body),
        cmocka_unit_test(test_keep_alive_reuses_one_connection),
        cmocka_unit_test(test_pool_is_keyed_by_scheme_host_and_port),
        cmocka_unit_test(test_server_saying_close_is_not_reused),
        cmocka_unit_test(test_request_saying_close_is_not_reused),
        cmocka_unit_test(test_idle_connections_per_host_are_capped),
        cmocka_unit_test(test_idle_timeout_closes_idle_connections),
        cmocka_unit_test(test_agent_without_keep_alive),
        cmocka_unit_test(test_server_closing_a_kept_alive_connection),
        cmocka_unit_test(test_server_resetting_a_kept_alive_connection),
        cmocka_unit_test(test_idle_connection_the_server_closes_leaves_the_pool),
        cmocka_unit_test(test_closing_the_agent_cancels_its_requests),
        cmocka_unit_test(test_default_agent_closes_at_shutdown),
        cmocka_unit_test(test_hundred_concurrent_fetches),
        cmocka_unit_test(test_gzip_and_deflate_are_decoded),
        cmocka_unit_test(test_max_body),
        cmocka_unit_test(test_paused_body_holds_bounded_memory),
        cmocka_unit_test(test_read_body_after_the_callback),
        cmocka_unit_test(test_read_body_failures),
        cmocka_unit_test(test_letting_go_of_a_body_closes_the_connection),
        cmocka_unit_test(test_download_page_writes_the_file),
        cmocka_unit_test(test_https),
        cmocka_unit_test(test_https_refuses_a_certificate_for_another_name),
    };
    /* TWINE_TEST_FILTER=pattern runs the matching tests only. */
    if (getenv("TWINE_TEST_FILTER"))
        cmocka_set_test_filter(getenv("TWINE_TEST_FILTER"));
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(gzipped.data);
    free(zlibbed.data);
    free(raw_deflated.data);
    return failed;
}
