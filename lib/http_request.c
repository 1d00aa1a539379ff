/* twine: server requests: what the client asked, the handler call, and the
 * answer, whole or streamed, written as HTTP/1.1 onto the connection.
 *
 * A request is reference counted inside the library: one reference stands
 * for the answer still owed (or, before dispatch, for the connection reading
 * it), others are short holds while user code runs, so that a handler that
 * answers from inside a call never frees the request under its caller. */
#include "http_server_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SERVER_NAME PACKAGE_NAME "/" PACKAGE_VERSION

/* Lifetime ----------------------------------------------------------------------------- */

tw_http_request *tw_http_request_new(tw_http_server_conn *c, const struct sockaddr_storage *peer,
                                     socklen_t peer_len)
{
    tw_http_request *req = tw_xcalloc(1, sizeof *req);
    req->refs = 1;
    req->state = TW_HTTP_REQ_READING;
    req->conn = c;
    memcpy(&req->peer, peer, peer_len);
    req->peer_len = peer_len;
    req->length = UINT64_MAX;
    return req;
}

static void destroy(tw_http_request *req)
{
    free(req->target);
    tw_http_headers_free(req->headers);
    free(req->body);
    tw_http_params_free(req->params, req->nparams);
    tw_deferred_unref(req->handler_d);
    tw_deferred_unref(req->finish_d);
    free(req);
}

static void release(tw_http_request *req)
{
    if (--req->refs == 0)
        destroy(req);
}

void tw_http_request_discard(tw_http_request *req)
{
    destroy(req);
}

void tw_http_request_set_head(tw_http_request *req, const tw_http_head *head,
                              tw_http_headers *headers)
{
    snprintf(req->method, sizeof req->method, "%s", head->method);
    req->is_head = !strcmp(req->method, "HEAD");
    req->version_major = head->version_major;
    req->version_minor = head->version_minor;
    req->keep_alive = head->keep_alive && !head->upgrade;
    req->headers = headers;

    /* target, then path and decoded path, each at most as long as it (or "/"). */
    size_t tlen = strlen(head->target);
    char *buf = tw_xmalloc(3 * (tlen + 2));
    memcpy(buf, head->target, tlen + 1);
    const char *path;
    size_t plen;
    tw_http_split_target(buf, &path, &plen, &req->query);
    req->target = buf;
    req->path = buf + tlen + 1;
    memcpy(req->path, path, plen);
    req->path[plen] = '\0';
    req->decoded_path = req->path + plen + 1;
    if (tw_http_percent_decode(req->path, plen, req->decoded_path) < 0)
        req->decoded_path = NULL;

    if (head->body == TW_HTTP_BODY_LENGTH) {
        req->body_cap = (size_t)head->content_length + 1;
        req->body = tw_xmalloc(req->body_cap);
    }
}

void tw_http_request_append_body(tw_http_request *req, const char *data, size_t len)
{
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        req->body = tw_xrealloc(req->body, cap);
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
}

/* Accessors ---------------------------------------------------------------------------- */

const char *tw_http_request_method(const tw_http_request *req) { return req->method; }
const char *tw_http_request_target(const tw_http_request *req) { return req->target; }
const char *tw_http_request_path(const tw_http_request *req) { return req->path; }
const char *tw_http_request_decoded_path(const tw_http_request *req) { return req->decoded_path; }
const char *tw_http_request_query(const tw_http_request *req) { return req->query; }
const tw_http_headers *tw_http_request_headers(const tw_http_request *req) { return req->headers; }

void tw_http_request_version(const tw_http_request *req, int *major, int *minor)
{
    if (major)
        *major = req->version_major;
    if (minor)
        *minor = req->version_minor;
}

const void *tw_http_request_body(const tw_http_request *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body_len ? req->body : "";
}

int tw_http_request_peer(const tw_http_request *req, struct sockaddr_storage *addr, socklen_t *len)
{
    if (req->peer_len == 0)
        return -ENOTCONN;
    memcpy(addr, &req->peer, req->peer_len);
    *len = req->peer_len;
    return 0;
}

const char *tw_http_request_param(const tw_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (!strcmp(req->params[i].name, name))
            return req->params[i].value;
    return NULL;
}

/* Response heads ----------------------------------------------------------------------- */

/* A growing buffer that starts on the stack: most heads fit. */
typedef struct head_buf {
    char *p;
    size_t len, cap;
    char local[1024];
} head_buf;

static void hb_init(head_buf *b)
{
    b->p = b->local;
    b->len = 0;
    b->cap = sizeof b->local;
}

static void hb_put(head_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = 2 * b->cap > b->len + n ? 2 * b->cap : b->len + n;
        if (b->p == b->local) {
            b->p = tw_xmalloc(cap);
            memcpy(b->p, b->local, b->len);
        } else {
            b->p = tw_xrealloc(b->p, cap);
        }
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void hb_puts(head_buf *b, const char *s)
{
    hb_put(b, s, strlen(s));
}

/* Decimal, without printf: heads are written once per response. */
static void hb_number(head_buf *b, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do
        digits[sizeof digits - ++n] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    hb_put(b, digits + sizeof digits - n, n);
}

static void hb_free(head_buf *b)
{
    if (b->p != b->local)
        free(b->p);
}

enum framing { FRAME_NONE, FRAME_LENGTH, FRAME_CHUNKED };

/* Fields the server writes itself from what it decided. */
static bool is_framing_field(const char *name)
{
    return !strcasecmp(name, "Connection") || !strcasecmp(name, "Content-Length") ||
           !strcasecmp(name, "Transfer-Encoding");
}

static void build_head(head_buf *b, int status, const char *reason, const tw_http_headers *h,
                       enum framing framing, uint64_t length, bool close, bool http10)
{
    hb_puts(b, "HTTP/1.1 ");
    hb_number(b, (uint64_t)status);
    hb_put(b, " ", 1);
    hb_puts(b, reason);
    hb_put(b, "\r\n", 2);
    if (!tw_http_headers_get(h, "Server"))
        hb_puts(b, "Server: " SERVER_NAME "\r\n");
    if (!tw_http_headers_get(h, "Date")) {
        hb_puts(b, "Date: ");
        hb_put(b, tw_http_date_now(), TW_HTTP_DATE_LEN);
        hb_put(b, "\r\n", 2);
    }
    for (size_t i = 0; i < tw_http_headers_count(h); i++) {
        const char *name, *value;
        tw_http_headers_at(h, i, &name, &value);
        if (is_framing_field(name))
            continue;
        hb_puts(b, name);
        hb_put(b, ": ", 2);
        hb_puts(b, value);
        hb_put(b, "\r\n", 2);
    }
    if (framing == FRAME_LENGTH) {
        hb_puts(b, "Content-Length: ");
        hb_number(b, length);
        hb_put(b, "\r\n", 2);
    } else if (framing == FRAME_CHUNKED)
        hb_puts(b, "Transfer-Encoding: chunked\r\n");
    if (close)
        hb_puts(b, "Connection: close\r\n");
    else if (http10)
        hb_puts(b, "Connection: keep-alive\r\n");
    hb_put(b, "\r\n", 2);
}

/* Whether a comma-separated field value lists `token` (any case). */
static bool has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    while (value && *value) {
        value += strspn(value, " \t,");
        size_t len = strcspn(value, ",");
        while (len && (value[len - 1] == ' ' || value[len - 1] == '\t'))
            len--;
        if (len == n && !strncasecmp(value, token, n))
            return true;
        value += strcspn(value, ",");
    }
    return false;
}

static bool wants_close(const tw_http_request *req, const tw_http_headers *h)
{
    return !req->keep_alive || has_token(tw_http_headers_get(h, "Connection"), "close");
}

static bool bodiless_status(int status)
{
    return status == 204 || status == 304;
}

static tw_transport *transport_of(const tw_http_request *req)
{
    return tw_http_server_conn_transport(req->conn);
}

/* Answering ---------------------------------------------------------------------------- */

/* The response is handed over: the connection goes on, notify_finish fires,
 * and the answer owed is paid. */
static void end_request(tw_http_request *req, bool close)
{
    tw_http_server_conn *c = req->conn;
    req->state = TW_HTTP_REQ_DONE;
    req->conn = NULL;
    req->producer = NULL;
    if (c) {
        if (req->finish_d)
            tw_deferred_callback(req->finish_d, NULL, NULL);
        tw_http_server_conn_response_done(c, !close);
    }
    release(req);
}

static int respond_with(tw_http_request *req, int status, const char *reason,
                        const tw_http_headers *h, const void *body, size_t len)
{
    if (status < 200 || status > 599)
        return -EINVAL;
    if (req->state != TW_HTTP_REQ_HANDLING)
        return -EALREADY;
    bool close = wants_close(req, h);
    int rc = -ENOTCONN;
    if (req->conn) {
        bool bodiless = bodiless_status(status);
        head_buf b;
        hb_init(&b);
        build_head(&b, status, reason ? reason : tw_http_reason_phrase(status), h,
                   bodiless ? FRAME_NONE : FRAME_LENGTH, len, close, req->version_minor == 0);
        struct iovec iov[2] = { { b.p, b.len }, { (void *)body, len } };
        int n = bodiless || req->is_head || len == 0 ? 1 : 2;
        rc = tw_transport_writev(transport_of(req), iov, n);
        hb_free(&b);
    }
    end_request(req, close);
    return rc;
}

int tw_http_request_respond(tw_http_request *req, int status, const tw_http_headers *h,
                            const void *body, size_t len)
{
    return respond_with(req, status, NULL, h, body, len);
}

static tw_http_headers *plain_text_headers(void)
{
    tw_http_headers *h = tw_http_headers_new();
    tw_http_headers_add(h, "Content-Type", "text/plain; charset=utf-8");
    return h;
}

/* A short plain-text answer the server makes itself: "404 Not Found\n". */
static void respond_status(tw_http_request *req, int status, const char *allow)
{
    char body[80];
    int n = snprintf(body, sizeof body, "%d %s\n", status, tw_http_reason_phrase(status));
    tw_http_headers *h = plain_text_headers();
    if (allow)
        tw_http_headers_add(h, "Allow", allow);
    respond_with(req, status, NULL, h, body, (size_t)n);
    tw_http_headers_free(h);
}

void tw_http_send_error(tw_transport *t, int status)
{
    char body[80];
    int n = snprintf(body, sizeof body, "%d %s\n", status, tw_http_reason_phrase(status));
    tw_http_headers *h = plain_text_headers();
    head_buf b;
    hb_init(&b);
    build_head(&b, status, tw_http_reason_phrase(status), h, FRAME_LENGTH, (uint64_t)n, true,
               false);
    struct iovec iov[2] = { { b.p, b.len }, { body, (size_t)n } };
    tw_transport_writev(t, iov, 2);
    hb_free(&b);
    tw_http_headers_free(h);
}

/* A Content-Length value: digits only. */
static int parse_length(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

int tw_http_request_start(tw_http_request *req, int status, const tw_http_headers *h)
{
    if (status < 200 || status > 599)
        return -EINVAL;
    if (req->state != TW_HTTP_REQ_HANDLING)
        return -EALREADY;
    uint64_t length = 0;
    const char *cl = tw_http_headers_get(h, "Content-Length");
    if (cl && parse_length(cl, &length) < 0)
        return -EINVAL;

    bool bodiless = bodiless_status(status);
    enum framing framing = bodiless ? FRAME_NONE
                           : cl     ? FRAME_LENGTH
                           : req->version_minor >= 1 ? FRAME_CHUNKED : FRAME_NONE;
    req->state = TW_HTTP_REQ_STREAMING;
    req->no_body = bodiless || req->is_head;
    req->chunked = framing == FRAME_CHUNKED && !req->no_body;
    req->length = framing == FRAME_LENGTH ? length : UINT64_MAX;
    /* Without a length, an HTTP/1.0 body ends where the connection does. */
    req->close_after = wants_close(req, h) || (!bodiless && framing == FRAME_NONE);
    if (!req->conn)
        return -ENOTCONN;

    head_buf b;
    hb_init(&b);
    build_head(&b, status, tw_http_reason_phrase(status), h, framing, length, req->close_after,
               req->version_minor == 0);
    int rc = tw_transport_write(transport_of(req), b.p, b.len);
    hb_free(&b);
    return rc;
}

int tw_http_request_write(tw_http_request *req, const void *data, size_t len)
{
    if (req->state != TW_HTTP_REQ_STREAMING)
        return -EINVAL;
    if (!req->conn)
        return -ENOTCONN;
    if (req->no_body || len == 0)
        return 0;
    int rc = 0;
    if (req->length != UINT64_MAX && len > req->length - req->sent) {
        len = (size_t)(req->length - req->sent);
        rc = -EINVAL;
        if (len == 0)
            return rc;
    }
    int wrc;
    if (req->chunked) {
        char size[24];
        struct iovec iov[3] = {
            { size, (size_t)snprintf(size, sizeof size, "%zx\r\n", len) },
            { (void *)data, len },
            { "\r\n", 2 },
        };
        wrc = tw_transport_writev(transport_of(req), iov, 3);
    } else {
        wrc = tw_transport_write(transport_of(req), data, len);
    }
    req->sent += len;
    return wrc < 0 ? wrc : rc;
}

int tw_http_request_finish(tw_http_request *req)
{
    if (req->state == TW_HTTP_REQ_HANDLING)
        tw_http_request_start(req, 200, NULL);
    int rc = -ENOTCONN;
    if (req->conn) {
        tw_transport *t = transport_of(req);
        if (!req->no_body && req->length != UINT64_MAX && req->sent < req->length) {
            tw_log(TW_LOG_WARN,
                   "%s %s: the response ended after %" PRIu64 " of its %" PRIu64
                   " bytes; aborting the connection",
                   req->method, req->target, req->sent, req->length);
            tw_transport_abort_connection(t);
            rc = -ECONNABORTED;
        } else {
            rc = req->chunked ? tw_transport_write(t, "0\r\n\r\n", 5) : 0;
        }
    }
    end_request(req, req->close_after);
    return rc;
}

/* Flow control ------------------------------------------------------------------------- */

int tw_http_request_register_producer(tw_http_request *req, const tw_producer_ops *ops, void *arg)
{
    if (req->producer)
        return -EBUSY;
    if (!req->conn)
        return -ENOTCONN;
    req->producer = ops;
    req->producer_arg = arg;
    if (tw_http_server_conn_write_blocked(req->conn))
        ops->pause(arg);
    return 0;
}

void tw_http_request_unregister_producer(tw_http_request *req)
{
    req->producer = NULL;
    req->producer_arg = NULL;
}

void tw_http_request_pause_producer(tw_http_request *req)
{
    if (req->producer)
        req->producer->pause(req->producer_arg);
}

void tw_http_request_resume_producer(tw_http_request *req)
{
    if (req->producer)
        req->producer->resume(req->producer_arg);
}

/* The client going away ---------------------------------------------------------------- */

static tw_failure *lost_failure(tw_failure *reason)
{
    return tw_failure_new(TW_ERR_CONNECTION_LOST, reason ? tw_failure_code(reason) : 0,
                          reason ? tw_failure_ref(reason) : NULL,
                          "The client went away before the response was finished");
}

tw_deferred *tw_http_request_notify_finish(tw_http_request *req)
{
    if (!req->finish_d) {
        req->finish_d = tw_deferred_new(NULL, NULL);
        if (!req->conn)
            tw_deferred_errback(req->finish_d, lost_failure(NULL));
    }
    return tw_deferred_ref(req->finish_d);
}

void tw_http_request_connection_lost(tw_http_request *req, tw_failure *reason)
{
    if (req->state == TW_HTTP_REQ_READING) {
        release(req);
        return;
    }
    req->conn = NULL;
    req->refs++;
    if (req->finish_d)
        tw_deferred_errback(req->finish_d, lost_failure(reason));
    const tw_producer_ops *producer = req->producer;
    if (producer) {
        req->producer = NULL;
        if (producer->stop)
            producer->stop(req->producer_arg);
    }
    if (req->handler_d && req->state == TW_HTTP_REQ_HANDLING)
        tw_deferred_cancel(req->handler_d);
    release(req);
}

/* Handlers ----------------------------------------------------------------------------- */

/* Both sides of the handler's Deferred: send what it fired with. */
static void on_handler_result(tw_result *r, void *arg)
{
    tw_http_request *req = arg;
    if (req->state != TW_HTTP_REQ_HANDLING) {
        tw_log(TW_LOG_ERROR, "%s %s: the handler answered its request and its Deferred fired too",
               req->method, req->target);
        return;
    }
    if (r->failure) {
        /* A cancellation after the client went away is the server's own. */
        if (req->conn || !tw_failure_check(r->failure, TW_ERR_CANCELLED, -1)) {
            char what[256];
            snprintf(what, sizeof what, "%s %s: the handler failed", req->method, req->target);
            tw_log_failure(TW_LOG_ERROR, r->failure, what);
        }
        tw_result_set_value(r, NULL, NULL);
        respond_status(req, 500, NULL);
        return;
    }
    const tw_http_response *resp = r->value;
    if (!resp) {
        tw_log(TW_LOG_ERROR, "%s %s: the handler's Deferred fired without a response",
               req->method, req->target);
        respond_status(req, 500, NULL);
        return;
    }
    /* The reason is the response's own, unless it could break the head. */
    const char *reason = resp->reason && *resp->reason && !strpbrk(resp->reason, "\r\n")
                             ? resp->reason
                             : NULL;
    if (respond_with(req, resp->status, reason, resp->headers, resp->body, resp->body_len) ==
        -EINVAL) {
        tw_log(TW_LOG_ERROR, "%s %s: the handler's response has the invalid status %d",
               req->method, req->target, resp->status);
        respond_status(req, 500, NULL);
    }
    tw_result_set_value(r, NULL, NULL);    /* the response is sent: free it now */
}

static void run_handler(tw_http_request *req, tw_http_handler handler, void *arg)
{
    req->refs++;
    tw_deferred *d = handler(req, arg);
    if (d && req->state != TW_HTTP_REQ_HANDLING) {
        tw_log(TW_LOG_ERROR, "%s %s: the handler answered its request and returned a Deferred; "
               "the Deferred is ignored", req->method, req->target);
        tw_deferred_unref(d);
    } else if (d) {
        req->handler_d = d;
        tw_deferred_add_callbacks(d, on_handler_result, on_handler_result, req);
    }
    release(req);
}

void tw_http_request_dispatch(tw_http_request *req, const tw_http_routes *routes)
{
    req->state = TW_HTTP_REQ_HANDLING;
    if (!req->decoded_path) {
        respond_status(req, 400, NULL);
        return;
    }
    tw_http_match m;
    int status = tw_http_routes_find(routes, req->method, req->decoded_path, &m);
    if (status != 200) {
        respond_status(req, status, m.allow);
        free(m.allow);
        return;
    }
    req->params = m.params;
    req->nparams = m.nparams;
    run_handler(req, m.handler, m.arg);
}
