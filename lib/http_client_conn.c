/* twine: one HTTP/1.1 client connection: a protocol on a transport that
 * writes one request at a time and drives the response parser, and the
 * streamed response it delivers (deliver_body, pause, resume, free).
 *
 * The parser's callbacks only take note of a head or of the end of a
 * message and pause the parser; the feeding loop acts on them once the
 * parser has returned, so the caller's code (the request's Deferred, the end
 * of the body) never runs inside the parser, and the connection is back in
 * the pool before the caller hears that a response has ended: a request
 * started from that callback reuses it. Body bytes are the exception: they go
 * to on_data straight from the parser, without a copy.
 *
 * When the consumer cannot take the body (it paused, or has not asked for
 * the body yet), the parser stops, the rest of the read is held (one read at
 * most) and the transport stops reading; resuming drains what was held from
 * the loop, then reads again. */
#include "http_client_internal.h"

#include <errno.h>

static void conn_unref(tw_http_conn *c)
{
    if (--c->refs > 0)
        return;
    tw_http_parser_free(c->parser);
    free(c->held);
    tw_failure_unref(c->lost_reason);
    free(c);
}

/* Parts the exchange and the connection; each drops its reference to the
 * other, so the caller holds one to c. Returns x with the reference c had. */
static tw_http_exchange *detach(tw_http_conn *c)
{
    tw_http_exchange *x = c->x;
    c->x = NULL;
    x->conn = NULL;
    c->refs--;
    return x;
}

/* The consumer can take what the parser delivers next. */
static bool can_read(const tw_http_conn *c)
{
    const tw_http_exchange *x = c->x;
    return x && (x->phase == TW_HTTP_SENT || c->no_body || (x->delivering && !x->paused));
}

static void pause_reading(tw_http_conn *c)
{
    if (!c->lost && !c->reading_paused) {
        c->reading_paused = true;
        tw_transport_pause_reading(c->proto.transport);
    }
}

static void abort_transport(tw_http_conn *c)
{
    if (!c->lost)
        tw_transport_abort_connection(c->proto.transport);
}

/* Ends the exchange with f (taken) and aborts the connection. Before the
 * head the request fails (sent again with retry), after it the body ends. */
static void fail_exchange(tw_http_conn *c, tw_failure *f, bool retry)
{
    tw_http_exchange *x = detach(c);
    tw_http_parser_pause(c->parser);
    abort_transport(c);
    if (x->phase == TW_HTTP_SENT) {
        tw_http_exchange_failed(x, f, retry);
    } else {
        tw_http_exchange_end(x, f);
        tw_failure_unref(f);
    }
    tw_http_exchange_unref(x);
}

/* The response has ended: the connection goes back to the pool when it
 * can, then the consumer hears of the end. */
static void message_done(tw_http_conn *c, bool leftover)
{
    tw_http_exchange *x = detach(c);
    c->served++;
    /* A request still being written (the server answered early) would run
     * into the next one. */
    if (c->keep_alive && !x->closes && !leftover && !c->lost && !c->no_reuse && !c->cancelled &&
        tw_transport_write_buffer_size(c->proto.transport) == 0) {
        tw_http_parser_resume(c->parser);
        c->got_bytes = c->no_body = false;
        if (c->reading_paused) {
            c->reading_paused = false;
            tw_transport_resume_reading(c->proto.transport);
        }
        tw_http_agent_conn_reusable(c);
    } else if (leftover) {
        abort_transport(c);           /* bytes nobody asked for */
    } else if (!c->lost) {
        tw_transport_lose_connection(c->proto.transport);
    }
    tw_http_exchange_end(x, NULL);
    tw_http_exchange_unref(x);
}

/* Keeps len bytes the consumer cannot take yet, and stops reading. */
static void hold(tw_http_conn *c, const char *data, size_t len)
{
    if (len) {
        c->held = tw_xrealloc(c->held, c->held_len + len);
        memcpy(c->held + c->held_len, data, len);
        c->held_len += len;
    }
    pause_reading(c);
}

/* Feeds bytes (borrowed) to the parser and acts on what it found. */
static void feed(tw_http_conn *c, const char *data, size_t len)
{
    c->refs++;
    for (;;) {
        ssize_t n = tw_http_parser_feed(c->parser, data, len);
        if (n < 0) {
            fail_exchange(c, tw_failure_ref(tw_http_parser_failure(c->parser)), false);
            break;
        }
        data += n;
        len -= (size_t)n;
        bool event = c->head_ready || c->message_done;
        if (c->head_ready) {
            c->head_ready = false;
            tw_http_exchange_fire(c->x);
            if (!c->x)
                break;                /* the response was let go: aborted */
        }
        if (c->message_done) {
            c->message_done = false;
            message_done(c, len > 0);
            break;
        }
        if (!can_read(c)) {
            hold(c, data, len);
            break;
        }
        tw_http_parser_resume(c->parser);
        if (len == 0)
            break;
        if (n == 0 && !event) {       /* the parser takes nothing more */
            fail_exchange(c, tw_failure_new(TW_ERR_HTTP_PARSE, 0, NULL,
                                             "unexpected data after the response from %s",
                                             c->x->pub.url), false);
            break;
        }
    }
    conn_unref(c);
}

/* The connection is gone and the parser has taken everything it read. */
static void finish(tw_http_conn *c)
{
    tw_http_exchange *x = c->x;
    tw_failure *reason = c->lost_reason;
    c->refs++;
    tw_http_parser_resume(c->parser);
    if (c->cancelled) {
        fail_exchange(c, tw_failure_new(TW_ERR_CANCELLED, ECANCELED, NULL,
                                         "request for %s cancelled: its agent was closed",
                                         x->pub.url), false);
    } else if (x->phase == TW_HTTP_SENT && !c->got_bytes) {
        /* A reused connection the server had closed: safe to send again. */
        bool retry = c->served > 0 && x->idempotent && !x->retried;
        fail_exchange(c, tw_failure_new(TW_ERR_CONNECTION_LOST, tw_failure_code(reason),
                                         tw_failure_ref(reason),
                                         "connection closed before the response from %s",
                                         x->pub.url), retry);
    } else if (tw_failure_check(reason, TW_ERR_CONNECTION_DONE, -1)) {
        /* A clean end of stream: the parser says whether the response was whole. */
        if (tw_http_parser_eof(c->parser) < 0) {
            fail_exchange(c, tw_failure_ref(tw_http_parser_failure(c->parser)), false);
        } else if (c->message_done) {
            c->message_done = false;
            message_done(c, false);
        } else {
            fail_exchange(c, tw_failure_new(TW_ERR_CONNECTION_LOST, 0, tw_failure_ref(reason),
                                             "connection closed before the response from %s",
                                             x->pub.url), false);
        }
    } else {
        fail_exchange(c, tw_failure_new(TW_ERR_CONNECTION_LOST, tw_failure_code(reason),
                                         tw_failure_ref(reason), "connection lost while reading %s",
                                         x->pub.url), false);
    }
    conn_unref(c);
}

/* Delivers what was held, then reads again (or finishes a lost connection). */
static void drain(void *arg)
{
    tw_http_conn *c = arg;
    c->drain_call = NULL;
    if (can_read(c)) {
        char *held = c->held;
        size_t len = c->held_len;
        c->held = NULL;
        c->held_len = 0;
        tw_http_parser_resume(c->parser);
        if (len)
            feed(c, held, len);
        free(held);
        if (can_read(c) && !c->held) {
            if (c->lost) {
                finish(c);
            } else if (c->reading_paused) {
                c->reading_paused = false;
                tw_transport_resume_reading(c->proto.transport);
            }
        }
    }
    conn_unref(c);
}

/* The consumer can take more: drain from the loop if anything waits. */
static void schedule_drain(tw_http_conn *c)
{
    if (c->drain_call || !(c->held || c->reading_paused || c->lost))
        return;
    c->refs++;
    c->drain_call = tw_call_later(0, drain, c);
}

/* Parser callbacks --------------------------------------------------------------------- */

static int on_headers_complete(void *arg, const tw_http_head *head, tw_http_headers *headers)
{
    tw_http_conn *c = arg;
    tw_http_exchange *x = c->x;
    if (head->status < 200 && head->status != 101) {
        tw_http_headers_free(headers);    /* 1xx: the real answer follows */
        c->informational = true;
        return TW_HTTP_READ_BODY;
    }
    x->pub.status = head->status;
    x->pub.version_major = head->version_major;
    x->pub.version_minor = head->version_minor;
    x->reason = tw_xstrdup(head->reason);
    x->pub.reason = x->reason;
    x->headers = headers;
    x->pub.headers = headers;
    /* 101 was not asked for: the connection would leave HTTP. */
    c->no_reuse = head->status == 101;
    c->no_body = x->head_method || head->body == TW_HTTP_BODY_NONE || c->no_reuse;
    c->head_ready = true;
    tw_http_parser_pause(c->parser);
    return c->no_body ? TW_HTTP_NO_BODY : TW_HTTP_READ_BODY;
}

static void on_body(void *arg, const char *data, size_t len)
{
    tw_http_conn *c = arg;
    tw_http_exchange *x = c->x;
    if (x->on_data)
        x->on_data(x->arg, data, len);
    if (!c->x || c->x->paused)        /* let go of, or paused */
        tw_http_parser_pause(c->parser);
}

static void on_trailers(void *arg, tw_http_headers *trailers)
{
    tw_http_conn *c = arg;
    c->x->trailers = trailers;
    c->x->pub.trailers = trailers;
}

static void on_message_complete(void *arg, int keep_alive)
{
    tw_http_conn *c = arg;
    if (c->informational) {
        c->informational = false;
        return;
    }
    c->message_done = true;
    c->keep_alive = keep_alive;
    tw_http_parser_pause(c->parser);
}

static const tw_http_parser_callbacks parser_callbacks = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_trailers = on_trailers,
    .on_message_complete = on_message_complete,
};

/* The protocol ------------------------------------------------------------------------- */

static void conn_data(tw_protocol *p, const char *data, size_t len)
{
    tw_http_conn *c = tw_http_conn_of(p);
    if (!c->x) {
        /* Idle, or its response was let go of: nobody asked for these. */
        tw_transport_abort_connection(p->transport);
        return;
    }
    c->got_bytes = true;
    if (c->held || !can_read(c))
        hold(c, data, len);
    else
        feed(c, data, len);
}

static void conn_lost(tw_protocol *p, tw_failure *reason)
{
    tw_http_conn *c = tw_http_conn_of(p);
    c->lost = true;
    c->lost_reason = tw_failure_ref(reason);
    if (c->agent)
        tw_http_agent_conn_lost(c);
    /* The end waits for the consumer when it cannot take it yet. */
    if (can_read(c) && !c->held)
        finish(c);
}

static void conn_free(tw_protocol *p)
{
    conn_unref(tw_http_conn_of(p));
}

static const tw_protocol_ops conn_ops = {
    .data_received = conn_data,
    .connection_lost = conn_lost,
    .free = conn_free,
};

static tw_protocol *build_conn(tw_factory *f, const struct sockaddr *peer)
{
    tw_http_conn *c = tw_xcalloc(1, sizeof *c);
    c->proto.ops = &conn_ops;
    c->refs = 1;
    c->parser = tw_http_parser_new(TW_HTTP_RESPONSE_PARSER, &parser_callbacks, c);
    return &c->proto;
}

/* Static, so it outlives every connection (a transport reads its client
 * factory after freeing the protocol). */
tw_factory tw_http_conn_factory = { .build_protocol = build_conn };

void tw_http_conn_send(tw_http_conn *c, tw_http_exchange *x)
{
    x->refs++;
    x->conn = c;
    x->phase = TW_HTTP_SENT;
    c->refs++;
    c->x = x;
    tw_transport_write(c->proto.transport, x->wire, x->wire_len);
}

void tw_http_conn_cancel(tw_http_conn *c)
{
    c->refs++;
    tw_http_exchange *x = detach(c);
    tw_http_parser_pause(c->parser);
    abort_transport(c);
    tw_http_exchange_unref(x);
    conn_unref(c);
}

void tw_http_conn_abort(tw_http_conn *c)
{
    c->cancelled = true;
    abort_transport(c);
}

void tw_http_conn_close(tw_http_conn *c)
{
    if (!c->lost)
        tw_transport_lose_connection(c->proto.transport);
}

/* The streamed response ----------------------------------------------------------------- */

static void deliver_end(void *arg)
{
    tw_http_exchange *x = arg;
    x->end_call = NULL;
    if (x->on_end)
        x->on_end(x->arg, x->end);
}

void tw_http_exchange_end(tw_http_exchange *x, tw_failure *f)
{
    x->phase = TW_HTTP_ENDED;
    x->end = f ? tw_failure_ref(f) : NULL;
    if (x->delivering && x->on_end)
        x->on_end(x->arg, f);         /* may free x */
}

int tw_http_client_response_deliver_body(tw_http_client_response *r, tw_http_data_fn on_data,
                                         tw_http_end_fn on_end, void *arg)
{
    tw_http_exchange *x = tw_http_exchange_of(r);
    if (x->delivering)
        return -EALREADY;
    x->delivering = true;
    x->on_data = on_data;
    x->on_end = on_end;
    x->arg = arg;
    if (x->phase == TW_HTTP_ENDED)
        x->end_call = tw_call_later(0, deliver_end, x);
    else if (x->conn && !x->paused)
        schedule_drain(x->conn);
    return 0;
}

void tw_http_client_response_pause(tw_http_client_response *r)
{
    tw_http_exchange *x = tw_http_exchange_of(r);
    x->paused = true;
    if (x->conn) {
        tw_http_parser_pause(x->conn->parser);
        pause_reading(x->conn);
    }
}

void tw_http_client_response_resume(tw_http_client_response *r)
{
    tw_http_exchange *x = tw_http_exchange_of(r);
    if (!x->paused)
        return;
    x->paused = false;
    if (x->conn && x->delivering)
        schedule_drain(x->conn);
}

void tw_http_client_response_free(tw_http_client_response *r)
{
    if (!r)
        return;
    tw_http_exchange *x = tw_http_exchange_of(r);
    x->on_data = NULL;
    x->on_end = NULL;
    if (x->end_call) {
        tw_delayed_call_cancel(x->end_call);
        x->end_call = NULL;
    }
    tw_http_conn *c = x->conn;
    if (c) {
        /* A body not yet ended is abandoned with its connection. */
        c->refs++;
        detach(c);
        tw_http_parser_pause(c->parser);
        abort_transport(c);
        tw_http_exchange_unref(x);
        conn_unref(c);
    }
    tw_http_exchange_unref(x);
}

tw_http_response *tw_http_exchange_take_response(tw_http_client_response *r)
{
    tw_http_exchange *x = tw_http_exchange_of(r);
    tw_http_response *resp = tw_xcalloc(1, sizeof *resp);
    resp->status = x->pub.status;
    resp->reason = x->reason;
    resp->headers = x->headers;
    x->reason = NULL;
    x->headers = NULL;
    x->pub.reason = "";
    x->pub.headers = NULL;
    return resp;
}
