/* twine: tw_get_page, the one-call client, and the engine it shares with
 * tw_download_page: one request after another through the agent while the
 * answers redirect (Twisted's RedirectAgent), then the body, decoded when
 * asked (ContentDecoderAgent), into memory or a sink; a 4xx or 5xx body
 * goes into the failure. */
#include "http_client_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#define DEFAULT_MAX_BODY ((size_t)64 << 20)
#define DEFAULT_MAX_REDIRECTS 20
/* A redirect's body is read (so its connection can be reused) up to this. */
#define REDIRECT_BODY_LIMIT (64 * 1024)

typedef enum read_mode {
    READ_PAGE,                        /* the answer: into memory or the sink */
    READ_ERROR,                       /* an error status: into memory, for the failure */
    READ_REDIRECT                     /* dropped; then the next request */
} read_mode;

typedef struct fetch {
    tw_deferred *d;
    tw_http_agent *agent;             /* a reference */
    /* The request, as the next redirect will send it. */
    char *method, *url, *body;
    size_t body_len;
    tw_http_headers *headers;
    char *user_agent, *ca_file;
    tw_http_request_options ropt;
    int max_redirects, redirects;
    size_t max_body;
    bool decode;
    char **visited;                   /* "METHOD URL" of each request, once one redirects */
    size_t nvisited;

    tw_deferred *step;                /* the request under way */
    tw_http_client_response *resp;    /* the response whose body is read */
    read_mode mode;
    char *error;                      /* READ_ERROR: the failure's message */
    char *next_method, *next_url;     /* READ_REDIRECT */
    tw_http_decoder *decoder;
    tw_http_buf buf;
    size_t taken;                     /* body bytes taken, after decoding */
    tw_failure *stop;                 /* why the body is abandoned */

    const tw_http_sink *sink;
    void *sink_arg;
} fetch;

static char *format(const char *fmt, ...) TW_PRINTF(1, 2);

static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = tw_xmalloc((size_t)(n > 0 ? n : 0) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)(n > 0 ? n : 0) + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void fetch_free(fetch *f)
{
    tw_http_client_response_free(f->resp);
    tw_http_decoder_free(f->decoder);
    if (f->sink)
        f->sink->free(f->sink_arg);
    for (size_t i = 0; i < f->nvisited; i++)
        free(f->visited[i]);
    free(f->visited);
    free(f->method);
    free(f->url);
    free(f->body);
    tw_http_headers_free(f->headers);
    free(f->user_agent);
    free(f->ca_file);
    free(f->error);
    free(f->next_method);
    free(f->next_url);
    free(f->buf.data);
    tw_failure_unref(f->stop);
    tw_http_agent_unref(f->agent);
    free(f);
}

static void finish_ok(fetch *f, tw_http_response *resp)
{
    tw_deferred *d = f->d;
    fetch_free(f);
    tw_deferred_callback(d, resp, tw_http_response_dtor);
    tw_deferred_unref(d);
}

static void finish_fail(fetch *f, tw_failure *why)
{
    tw_deferred *d = f->d;
    fetch_free(f);
    tw_deferred_errback(d, why);
    tw_deferred_unref(d);
}

/* The response read so far, with the body taken and the URL; f->resp goes
 * (abandoning what is left of its body). */
static tw_http_response *take_response(fetch *f)
{
    tw_http_response *resp = tw_http_exchange_take_response(f->resp);
    tw_http_client_response_free(f->resp);
    f->resp = NULL;
    resp->body_len = f->buf.len;
    resp->body = tw_http_buf_take(&f->buf);
    resp->url = f->url;
    f->url = NULL;
    return resp;
}

static void fail_with_response(fetch *f, const tw_failure *why)
{
    finish_fail(f, tw_http_failure_with_response(why, take_response(f)));
}

/* The answer was an error status (or a redirect not followed). */
static void http_error(fetch *f)
{
    int status = f->resp->status;
    char *message = f->error;
    f->error = NULL;
    tw_http_response *resp = take_response(f);
    finish_fail(f, tw_failure_new_with_data(TW_ERR_HTTP, status, NULL, resp, tw_http_response_dtor,
                                            "%s", message));
    free(message);
}

static void start_request(fetch *f);

/* Redirects ------------------------------------------------------------------------------- */

static bool get_or_head(const char *method)
{
    return !strcmp(method, "GET") || !strcmp(method, "HEAD");
}

/* The method a redirect asks for, or NULL when it is not followed. */
static const char *redirect_method(int status, const char *method)
{
    switch (status) {
    case 301:
    case 302:
        return get_or_head(method) ? method : NULL;
    case 303:
        return !strcmp(method, "HEAD") ? "HEAD" : "GET";
    case 307:
    case 308:
        return method;
    default:
        return NULL;
    }
}

static bool visited(const fetch *f, const char *request)
{
    for (size_t i = 0; i < f->nvisited; i++)
        if (!strcmp(f->visited[i], request))
            return true;
    return false;
}

static void visit(fetch *f, char *request)
{
    f->visited = tw_xrealloc(f->visited, (f->nvisited + 1) * sizeof *f->visited);
    f->visited[f->nvisited++] = request;
}

/* Decides whether to follow; sets the mode, and the message of an error. */
static void consider_redirect(fetch *f, const char *location, const char *method)
{
    const tw_http_client_response *r = f->resp;
    char *next = tw_http_url_join(f->url, location);
    tw_url u;
    if (!next || tw_url_parse(&u, next) < 0) {
        f->error = format("%d %s: cannot follow Location \"%.200s\"", r->status, r->reason,
                          location);
        free(next);
        return;
    }
    tw_url_clear(&u);
    if (f->nvisited == 0)             /* the first request, known only now */
        visit(f, format("%s %s", f->method, f->url));
    char *request = format("%s %s", method, next);
    if (f->redirects >= f->max_redirects) {
        f->error = format("%d %s: more than %d redirects", r->status, r->reason, f->max_redirects);
    } else if (visited(f, request)) {
        f->error = format("%d %s: redirect loop at %s", r->status, r->reason, next);
    } else {
        f->mode = READ_REDIRECT;
        f->next_method = tw_xstrdup(method);
        f->next_url = next;
        visit(f, request);
        return;
    }
    free(request);
    free(next);
}

static void follow_redirect(fetch *f)
{
    tw_http_client_response_free(f->resp);
    f->resp = NULL;
    tw_url from, to;
    int from_err = tw_url_parse(&from, f->url), to_err = tw_url_parse(&to, f->next_url);
    if (!from_err && !to_err && !tw_url_same_origin(&from, &to) && f->headers) {
        /* Credentials stay with the origin they were meant for. */
        tw_http_headers_remove(f->headers, "Authorization");
        tw_http_headers_remove(f->headers, "Cookie");
    }
    tw_url_clear(&from);
    tw_url_clear(&to);
    if (strcmp(f->method, f->next_method)) {
        /* 303: a GET without the body. */
        free(f->body);
        f->body = NULL;
        f->body_len = 0;
        if (f->headers)
            tw_http_headers_remove(f->headers, "Content-Type");
    }
    free(f->method);
    free(f->url);
    f->method = f->next_method;
    f->url = f->next_url;
    f->next_method = f->next_url = NULL;
    f->redirects++;
    f->taken = 0;
    f->buf.len = 0;
    start_request(f);
}

/* The body ------------------------------------------------------------------------------ */

/* Takes decoded body bytes; 0, or -1 with f->stop set. */
static int take(void *arg, const char *data, size_t len)
{
    fetch *f = arg;
    if (f->max_body && len > f->max_body - f->taken) {
        f->stop = tw_failure_new(TW_ERR_HTTP_BODY, EFBIG, NULL, "body of %s larger than %zu bytes",
                                 f->url, f->max_body);
        return -1;
    }
    f->taken += len;
    if (f->mode == READ_PAGE && f->sink) {
        f->stop = f->sink->write(f->sink_arg, data, len);
        return f->stop ? -1 : 0;
    }
    tw_http_buf_append(&f->buf, data, len);
    return 0;
}

static tw_failure *decode_failure(const fetch *f)
{
    return tw_failure_new(TW_ERR_HTTP_BODY, EBADMSG, NULL, "%s body of %s does not decode",
                          tw_http_headers_get(f->resp->headers, "Content-Encoding"), f->url);
}

/* The body cannot go on: abandon it, and fail. */
static void stop_body(fetch *f)
{
    if (f->mode == READ_ERROR) {
        http_error(f);                /* the status says more than why the body stopped */
        return;
    }
    tw_failure *why = f->stop;
    f->stop = NULL;
    fail_with_response(f, why);
    tw_failure_unref(why);
}

static void on_body_data(void *arg, const char *data, size_t len)
{
    fetch *f = arg;
    if (f->mode == READ_REDIRECT) {
        f->taken += len;
        if (f->taken > REDIRECT_BODY_LIMIT)
            follow_redirect(f);       /* the rest is dropped with the connection */
        return;
    }
    int err = f->decoder ? tw_http_decoder_feed(f->decoder, data, len, take, f) : take(f, data, len);
    if (err == -EBADMSG)
        f->stop = decode_failure(f);
    if (f->stop)
        stop_body(f);
}

static void on_body_end(void *arg, tw_failure *reason)
{
    fetch *f = arg;
    if (f->mode == READ_REDIRECT) {
        follow_redirect(f);
        return;
    }
    if (!reason && f->decoder && tw_http_decoder_finish(f->decoder) < 0)
        f->stop = decode_failure(f);
    if (f->mode == READ_ERROR) {
        http_error(f);
    } else if (reason) {
        fail_with_response(f, reason);
    } else if (f->stop || (f->sink && (f->stop = f->sink->close(f->sink_arg)))) {
        stop_body(f);
    } else {
        tw_http_response *resp = take_response(f);
        if (f->decoder) {
            tw_http_headers *h = (tw_http_headers *)resp->headers;
            tw_http_headers_remove(h, "Content-Encoding");
            tw_http_headers_remove(h, "Content-Length");
        }
        finish_ok(f, resp);
    }
}

/* The response head ------------------------------------------------------------------------ */

static void on_response(tw_result *r, void *arg)
{
    fetch *f = arg;
    tw_deferred_unref(f->step);
    f->step = NULL;
    f->resp = tw_result_steal(r);
    const tw_http_client_response *resp = f->resp;
    int status = resp->status;
    const char *location = tw_http_headers_get(resp->headers, "Location");
    const char *next = f->max_redirects >= 0 && location ? redirect_method(status, f->method) : NULL;

    f->mode = READ_ERROR;
    if (next)
        consider_redirect(f, location, next);
    else if (status >= 200 && status < 300)
        f->mode = READ_PAGE;
    else
        f->error = format("%d %s", status, resp->reason);

    if (f->decode && f->mode != READ_REDIRECT)
        f->decoder = tw_http_decoder_new(tw_http_headers_get(resp->headers, "Content-Encoding"));
    if (f->mode == READ_PAGE && f->sink && (f->stop = f->sink->open(f->sink_arg))) {
        stop_body(f);
        return;
    }
    const char *length = tw_http_headers_get(resp->headers, "Content-Length");
    bool to_memory = f->mode == READ_ERROR || (f->mode == READ_PAGE && !f->sink);
    if (length && to_memory && !f->decoder && strcmp(f->method, "HEAD")) {
        /* Room for the whole body at once, if it is within bounds. */
        unsigned long long n = strtoull(length, NULL, 10);
        if (n && n <= (f->max_body ? f->max_body : DEFAULT_MAX_BODY))
            tw_http_buf_reserve(&f->buf, (size_t)n);
    }
    tw_http_client_response_deliver_body(f->resp, on_body_data, on_body_end, f);
}

static void on_request_failed(tw_result *r, void *arg)
{
    fetch *f = arg;
    tw_deferred_unref(f->step);
    f->step = NULL;
    tw_failure *why = tw_failure_ref(r->failure);
    tw_result_set_value(r, NULL, NULL);
    finish_fail(f, why);
}

static void start_request(fetch *f)
{
    f->step = tw_http_agent_request_opts(f->agent, f->method, f->url, f->headers, f->body,
                                         f->body_len, &f->ropt);
    tw_deferred_add_callbacks(f->step, on_response, on_request_failed, f);
}

static void cancel_fetch(tw_deferred *d, void *arg)
{
    fetch *f = arg;
    if (f->step) {
        tw_deferred_cancel(f->step);  /* fails the fetch with its cancellation */
        return;
    }
    tw_failure *why = tw_failure_new(TW_ERR_CANCELLED, ECANCELED, NULL, "fetching %s cancelled",
                                     f->url);
    fail_with_response(f, why);
    tw_failure_unref(why);
}

/* Starting -------------------------------------------------------------------------------- */

tw_deferred *tw_http_fetch(const char *url, const tw_page_options *opt, const tw_http_sink *sink,
                           void *sink_arg)
{
    static const tw_page_options defaults;
    if (!opt)
        opt = &defaults;
    fetch *f = tw_xcalloc(1, sizeof *f);
    f->agent = tw_http_agent_ref(opt->agent ? opt->agent : tw_http_default_agent());
    f->method = tw_xstrdup(opt->method ? opt->method : "GET");
    f->url = tw_xstrdup(url ? url : "");
    if (opt->body && opt->body_len) {
        f->body = tw_xmalloc(opt->body_len);
        memcpy(f->body, opt->body, opt->body_len);
        f->body_len = opt->body_len;
    }
    if (opt->headers)
        f->headers = tw_http_headers_copy(opt->headers);
    f->user_agent = opt->user_agent ? tw_xstrdup(opt->user_agent) : NULL;
    f->ca_file = opt->ca_file ? tw_xstrdup(opt->ca_file) : NULL;
    f->ropt = (tw_http_request_options){
        .connect_timeout = opt->connect_timeout,
        .user_agent = f->user_agent,
        .ca_file = f->ca_file,
        .insecure = opt->insecure,
        .accept_encoding = opt->decode_content,
    };
    f->max_redirects = opt->max_redirects ? opt->max_redirects : DEFAULT_MAX_REDIRECTS;
    f->max_body = opt->max_body ? opt->max_body : sink ? 0 : DEFAULT_MAX_BODY;
    f->decode = opt->decode_content;
    f->sink = sink;
    f->sink_arg = sink_arg;

    f->d = tw_deferred_new(cancel_fetch, f);
    tw_deferred *d = tw_deferred_ref(f->d);
    if (opt->timeout > 0)
        d = tw_deferred_timeout(d, opt->timeout);
    start_request(f);
    return d;
}

tw_deferred *tw_get_page(const char *url, const tw_page_options *opt)
{
    return tw_http_fetch(url, opt, NULL, NULL);
}
