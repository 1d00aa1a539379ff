/* twine: the HTTP server's sites and connections.
 *
 * A connection reads bytes into its input buffer and feeds the request
 * parser from there. The parser pauses at the end of each request; the
 * request is then dispatched, and nothing more is parsed until its response
 * is finished, so pipelined requests are answered one at a time, in order.
 * Meanwhile reading goes on (to notice a client that goes away) until the
 * buffer holds READ_AHEAD bytes. One timer per connection enforces the idle,
 * head and send timeouts; it is re-armed lazily, from the deadline, so that
 * most requests cost no timer operation. */
#include "http_server_internal.h"

#include <errno.h>
#include <ev.h>
#include <math.h>
#include <netinet/in.h>
#include <string.h>

enum {
    READ_AHEAD = 64 * 1024,               /* input buffered while a request is handled */
    KEEP_INPUT_BUFFER = 16 * 1024,        /* an empty input buffer this size is kept */
};

#define DEFAULT_IDLE_TIMEOUT 60.0
#define DEFAULT_HEAD_TIMEOUT 30.0
#define DEFAULT_MAX_BODY (1024 * 1024)
/* How long a connection closed after an error keeps reading (and dropping)
 * what the client still sends, so that its close does not reset the
 * connection before the client has read the error response. */
#define LINGER_SECONDS 2.0

struct tw_http_site {
    tw_factory factory;                   /* first: the ports' factory */
    unsigned refs;                        /* the owner's, and one per connection */
    bool freed;
    tw_http_routes routes;
    double idle_timeout, head_timeout;
    size_t max_body, max_head;
    tw_http_server_conn *conns;           /* open connections */
};

enum conn_state {
    ST_IDLE,                              /* between requests */
    ST_HEAD,                              /* reading a request head */
    ST_BODY,                              /* reading a request body */
    ST_HANDLING,                          /* a request is being answered */
    ST_CLOSING,                           /* flushing the last response, then closing */
    ST_LINGER                             /* after an error: dropping input, then closing */
};

struct tw_http_server_conn {
    tw_protocol proto;
    tw_http_site *site;
    tw_http_server_conn *prev, *next;     /* the site's list */
    tw_http_parser *parser;
    tw_http_request *req;                 /* being read or answered */
    enum conn_state state;
    int error;                            /* a status to answer with, then close */
    bool pumping;                         /* pump() is running: it picks up changes */
    bool dispatch_due;                    /* a request is complete */
    bool write_blocked;                   /* the transport paused us as a producer */
    bool read_paused;
    bool gone;
    char *in;                             /* unparsed input: in[in_off, in_off + in_len) */
    size_t in_off, in_len, in_cap;
    ev_timer timer;
    double deadline;                      /* INFINITY: none */
    size_t blocked_size;                  /* write buffer when last seen blocked */
    struct sockaddr_storage peer;
    socklen_t peer_len;
};

static struct ev_loop *loop(void) { return tw_reactor_loop(); }

static tw_http_server_conn *conn_of(tw_protocol *p)
{
    return TW_CONTAINER_OF(p, tw_http_server_conn, proto);
}

static tw_transport *transport(const tw_http_server_conn *c) { return c->proto.transport; }

tw_transport *tw_http_server_conn_transport(const tw_http_server_conn *c) { return transport(c); }

bool tw_http_server_conn_write_blocked(const tw_http_server_conn *c) { return c->write_blocked; }

/* Timeouts ----------------------------------------------------------------------------- */

static void arm_timer(tw_http_server_conn *c)
{
    double remaining = c->deadline - ev_now(loop());
    if (ev_is_active(&c->timer)) {
        if (ev_timer_remaining(loop(), &c->timer) <= remaining)
            return;                       /* it fires first, and re-arms */
        ev_timer_stop(loop(), &c->timer);
    }
    ev_timer_set(&c->timer, remaining > 0 ? remaining : 0., 0.);
    ev_timer_start(loop(), &c->timer);
}

static void set_deadline(tw_http_server_conn *c, double seconds)
{
    c->deadline = ev_now(loop()) + seconds;
    arm_timer(c);
}

static void clear_deadline(tw_http_server_conn *c)
{
    c->deadline = INFINITY;
}

/* The deadline the current state calls for. */
static void state_deadline(tw_http_server_conn *c)
{
    switch (c->state) {
    case ST_IDLE:
    case ST_BODY:
    case ST_CLOSING:
        set_deadline(c, c->site->idle_timeout);
        break;
    case ST_HEAD:
        set_deadline(c, c->site->head_timeout);
        break;
    case ST_HANDLING:
        clear_deadline(c);
        break;
    case ST_LINGER:
        set_deadline(c, LINGER_SECONDS);
        break;
    }
}

static void linger(tw_http_server_conn *c);

static void on_timer(struct ev_loop *l, ev_timer *w, int revents)
{
    tw_http_server_conn *c = TW_CONTAINER_OF(w, tw_http_server_conn, timer);
    if (isinf(c->deadline))
        return;
    if (ev_now(loop()) < c->deadline) {
        arm_timer(c);
        return;
    }
    if (c->write_blocked) {
        /* The send timeout: reset by any progress of the client's reading. */
        size_t size = tw_transport_write_buffer_size(transport(c));
        if (size < c->blocked_size) {
            c->blocked_size = size;
            set_deadline(c, c->site->idle_timeout);
            return;
        }
        tw_log(TW_LOG_DEBUG, "HTTP client stopped reading; aborting the connection");
        tw_transport_abort_connection(transport(c));
        return;
    }
    switch (c->state) {
    case ST_IDLE:
        c->state = ST_CLOSING;
        tw_transport_lose_connection(transport(c));
        break;
    case ST_HEAD:
    case ST_BODY:
        tw_http_send_error(transport(c), 408);
        linger(c);
        break;
    case ST_HANDLING:
        break;
    case ST_CLOSING:
    case ST_LINGER:
        tw_transport_abort_connection(transport(c));
        break;
    }
}

/* Input -------------------------------------------------------------------------------- */

static void input_append(tw_http_server_conn *c, const char *data, size_t len)
{
    if (c->in_off + c->in_len + len > c->in_cap) {
        if (c->in_off)
            memmove(c->in, c->in + c->in_off, c->in_len);
        c->in_off = 0;
        if (c->in_len + len > c->in_cap) {
            size_t cap = c->in_cap ? c->in_cap : 4096;
            while (cap < c->in_len + len)
                cap *= 2;
            c->in = tw_xrealloc(c->in, cap);
            c->in_cap = cap;
        }
    }
    memcpy(c->in + c->in_off + c->in_len, data, len);
    c->in_len += len;
}

static void input_consume(tw_http_server_conn *c, size_t n)
{
    c->in_off += n;
    c->in_len -= n;
    if (c->in_len == 0) {
        c->in_off = 0;
        if (c->in_cap > KEEP_INPUT_BUFFER) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
    }
}

static void update_reading(tw_http_server_conn *c)
{
    bool pause = c->in_len >= READ_AHEAD && c->state != ST_LINGER;
    if (pause == c->read_paused || c->gone)
        return;
    c->read_paused = pause;
    if (pause)
        tw_transport_pause_reading(transport(c));
    else
        tw_transport_resume_reading(transport(c));
}

/* Closing ------------------------------------------------------------------------------ */

/* After an error response: half-close, drop what the client still sends,
 * close when it does (or after LINGER_SECONDS). */
static void linger(tw_http_server_conn *c)
{
    if (c->req) {
        tw_http_request_discard(c->req);
        c->req = NULL;
    }
    c->state = ST_LINGER;
    c->dispatch_due = false;
    input_consume(c, c->in_len);
    update_reading(c);
    state_deadline(c);
    tw_transport_lose_write_connection(transport(c));
}

/* The client is gone or the site is freed (reason borrowed). Runs once. */
static void conn_gone(tw_http_server_conn *c, tw_failure *reason)
{
    if (c->gone)
        return;
    c->gone = true;
    clear_deadline(c);
    ev_timer_stop(loop(), &c->timer);
    tw_http_request *req = c->req;
    c->req = NULL;
    if (req)
        tw_http_request_connection_lost(req, reason);
}

/* Parsing ------------------------------------------------------------------------------ */

/* From a parser callback: answer `status` and close, once the parser has
 * returned. */
static void fail(tw_http_server_conn *c, int status)
{
    c->error = status;
    tw_http_parser_pause(c->parser);
}

static void on_message_begin(void *arg)
{
    tw_http_server_conn *c = arg;
    c->req = tw_http_request_new(c, &c->peer, c->peer_len);
    c->state = ST_HEAD;
    state_deadline(c);
}

static int on_headers_complete(void *arg, const tw_http_head *head, tw_http_headers *headers)
{
    tw_http_server_conn *c = arg;
    if (head->version_major != 1) {
        tw_http_headers_free(headers);
        fail(c, 505);
        return TW_HTTP_NO_BODY;
    }
    tw_http_request_set_head(c->req, head, headers);
    if (head->body == TW_HTTP_BODY_NONE)
        return TW_HTTP_READ_BODY;
    if (head->body == TW_HTTP_BODY_LENGTH && head->content_length > c->site->max_body) {
        fail(c, 413);
        return TW_HTTP_NO_BODY;
    }
    c->state = ST_BODY;
    state_deadline(c);
    if (head->expect_continue && head->version_minor >= 1)
        tw_transport_write(transport(c), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return TW_HTTP_READ_BODY;
}

static void on_body(void *arg, const char *data, size_t len)
{
    tw_http_server_conn *c = arg;
    if (c->req->body_len + len > c->site->max_body)
        fail(c, 413);
    else
        tw_http_request_append_body(c->req, data, len);
}

static void on_message_complete(void *arg, int keep_alive)
{
    tw_http_server_conn *c = arg;
    if (!keep_alive)
        c->req->keep_alive = false;
    c->state = ST_HANDLING;
    clear_deadline(c);
    c->dispatch_due = true;
    tw_http_parser_pause(c->parser);
}

static const tw_http_parser_callbacks parser_callbacks = {
    .on_message_begin = on_message_begin,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void parse_failed(tw_http_server_conn *c)
{
    tw_failure *f = tw_http_parser_failure(c->parser);
    int code = tw_failure_code(f);
    bool too_large = code == TW_HTTP_PARSE_HEAD_TOO_LARGE || code == TW_HTTP_PARSE_TOO_MANY_FIELDS;
    tw_log_failure(TW_LOG_DEBUG, f, "HTTP request refused");
    tw_http_send_error(transport(c), too_large ? 431 : 400);
    linger(c);
}

/* Moves the connection on as far as it can: parses buffered input,
 * dispatches complete requests, answers protocol errors. Whatever re-enters
 * it (a handler answering at once) only records what changed; the running
 * pump picks it up, so the stack never grows with pipelined requests. */
static void pump(tw_http_server_conn *c)
{
    if (c->pumping)
        return;
    c->pumping = true;
    while (!c->gone && !tw_transport_disconnecting(transport(c))) {
        if (c->dispatch_due) {
            c->dispatch_due = false;
            tw_http_request_dispatch(c->req, &c->site->routes);
            continue;
        }
        if (c->state == ST_HANDLING || c->state == ST_LINGER || c->state == ST_CLOSING ||
            c->write_blocked || c->in_len == 0)
            break;
        ssize_t n = tw_http_parser_feed(c->parser, c->in + c->in_off, c->in_len);
        if (n < 0) {
            parse_failed(c);
            break;
        }
        input_consume(c, (size_t)n);
        if (c->error) {
            tw_http_send_error(transport(c), c->error);
            linger(c);
            break;
        }
        if (n == 0 && !c->dispatch_due)
            break;                        /* the parser left HTTP (an upgrade) */
    }
    c->pumping = false;
    update_reading(c);
}

void tw_http_server_conn_response_done(tw_http_server_conn *c, bool keep_alive)
{
    c->req = NULL;
    if (!keep_alive) {
        c->state = ST_CLOSING;
        state_deadline(c);
        tw_transport_lose_connection(transport(c));
        return;
    }
    c->state = ST_IDLE;
    state_deadline(c);
    tw_http_parser_resume(c->parser);
    pump(c);
}

/* The protocol ------------------------------------------------------------------------- */

static void on_pause(void *arg)
{
    tw_http_server_conn *c = arg;
    c->write_blocked = true;
    c->blocked_size = tw_transport_write_buffer_size(transport(c));
    set_deadline(c, c->site->idle_timeout);
    if (c->req)
        tw_http_request_pause_producer(c->req);
}

static void on_resume(void *arg)
{
    tw_http_server_conn *c = arg;
    c->write_blocked = false;
    if (c->state == ST_HANDLING)
        clear_deadline(c);
    if (c->req)
        tw_http_request_resume_producer(c->req);
    pump(c);
}

/* The connection itself is the transport's producer; it passes pause and
 * resume on to the producer of the request being answered. */
static const tw_producer_ops conn_producer = {
    .pause = on_pause,
    .resume = on_resume,
};

static void connection_made(tw_protocol *p)
{
    tw_http_server_conn *c = conn_of(p);
    tw_transport_register_producer(transport(c), &conn_producer, c);
    state_deadline(c);
}

static void data_received(tw_protocol *p, const char *data, size_t len)
{
    tw_http_server_conn *c = conn_of(p);
    if (c->state == ST_LINGER || c->state == ST_CLOSING)
        return;
    input_append(c, data, len);
    if (c->state == ST_BODY)
        state_deadline(c);                /* the body timeout counts from its last bytes */
    pump(c);
}

static void connection_lost(tw_protocol *p, tw_failure *reason)
{
    conn_gone(conn_of(p), reason);
}

static void site_unref(tw_http_site *s)
{
    if (--s->refs == 0)
        free(s);
}

static void conn_free(tw_protocol *p)
{
    tw_http_server_conn *c = conn_of(p);
    ev_timer_stop(loop(), &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->site->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    tw_http_parser_free(c->parser);
    free(c->in);
    site_unref(c->site);
    free(c);
}

static const tw_protocol_ops conn_ops = {
    .connection_made = connection_made,
    .data_received = data_received,
    .connection_lost = connection_lost,
    .free = conn_free,
};

static tw_protocol *build_protocol(tw_factory *f, const struct sockaddr *peer)
{
    tw_http_site *s = TW_CONTAINER_OF(f, tw_http_site, factory);
    if (s->freed)
        return NULL;
    tw_http_server_conn *c = tw_xcalloc(1, sizeof *c);
    c->proto.ops = &conn_ops;
    c->site = s;
    s->refs++;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    c->parser = tw_http_parser_new(TW_HTTP_REQUEST_PARSER, &parser_callbacks, c);
    tw_http_parser_set_limits(c->parser, s->max_head, 0);
    c->state = ST_IDLE;
    c->deadline = INFINITY;
    ev_timer_init(&c->timer, on_timer, 0., 0.);
    c->peer_len = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                  : peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                               : sizeof(sa_family_t);
    memcpy(&c->peer, peer, c->peer_len);
    return &c->proto;
}

/* Sites -------------------------------------------------------------------------------- */

tw_http_site *tw_http_site_new(void)
{
    tw_http_site *s = tw_xcalloc(1, sizeof *s);
    s->factory.build_protocol = build_protocol;
    s->refs = 1;
    s->idle_timeout = DEFAULT_IDLE_TIMEOUT;
    s->head_timeout = DEFAULT_HEAD_TIMEOUT;
    s->max_body = DEFAULT_MAX_BODY;
    s->max_head = TW_HTTP_PARSE_MAX_HEAD_BYTES;
    return s;
}

void tw_http_site_free(tw_http_site *s)
{
    if (!s)
        return;
    s->freed = true;
    tw_failure *reason = tw_failure_new(TW_ERR_CONNECTION_LOST, ECONNABORTED, NULL,
                                        "The site was freed");
    for (tw_http_server_conn *c = s->conns; c; c = c->next) {
        conn_gone(c, reason);
        tw_transport_abort_connection(transport(c));
    }
    tw_failure_unref(reason);
    tw_http_routes_clear(&s->routes);
    site_unref(s);
}

int tw_http_site_route_full(tw_http_site *s, const char *method, const char *pattern,
                            tw_http_handler handler, void *arg, void (*arg_dtor)(void *))
{
    return tw_http_routes_add(&s->routes, method, pattern, handler, arg, arg_dtor);
}

int tw_http_site_route(tw_http_site *s, const char *method, const char *pattern,
                       tw_http_handler handler, void *arg)
{
    return tw_http_routes_add(&s->routes, method, pattern, handler, arg, NULL);
}

static int valid_timeout(double seconds)
{
    return seconds > 0 && !isinf(seconds);
}

int tw_http_site_set_idle_timeout(tw_http_site *s, double seconds)
{
    if (!valid_timeout(seconds))
        return -EINVAL;
    s->idle_timeout = seconds;
    return 0;
}

int tw_http_site_set_head_timeout(tw_http_site *s, double seconds)
{
    if (!valid_timeout(seconds))
        return -EINVAL;
    s->head_timeout = seconds;
    return 0;
}

void tw_http_site_set_max_body(tw_http_site *s, size_t bytes)
{
    s->max_body = bytes;
}

int tw_http_site_set_max_head(tw_http_site *s, size_t bytes)
{
    if (bytes == 0 || bytes > TW_HTTP_PARSE_MAX_HEAD_BYTES_CAP)
        return -EINVAL;
    s->max_head = bytes;
    return 0;
}

tw_port *tw_http_listen(tw_http_site *s, const char *interface, int port, int *err)
{
    return tw_listen_tcp(interface, port, &s->factory, err);
}
