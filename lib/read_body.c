/* twine: tw_read_body, a streamed response's whole body in memory
 * (Twisted's readBody). */
#include "http_client_internal.h"

#include <errno.h>

typedef struct reader {
    tw_deferred *d;
    tw_http_client_response *r;       /* owned until the body ends */
    tw_http_buf body;
    size_t max;
} reader;

void tw_http_content_free(tw_http_content *c)
{
    if (!c)
        return;
    free(c->data);
    free(c);
}

static void content_dtor(void *c)
{
    tw_http_content_free(c);
}

/* Frees the response (abandoning what is left of the body), and fails with
 * a failure like `like` carrying the response and the body so far. */
static void reader_fail(reader *rd, const tw_failure *like)
{
    tw_http_response *resp = tw_http_exchange_take_response(rd->r);
    resp->url = tw_xstrdup(rd->r->url);
    tw_http_client_response_free(rd->r);
    resp->body_len = rd->body.len;
    resp->body = tw_http_buf_take(&rd->body);
    tw_deferred *d = rd->d;
    free(rd);
    tw_deferred_errback(d, tw_http_failure_with_response(like, resp));
    tw_deferred_unref(d);
}

static void reader_data(void *arg, const char *data, size_t len)
{
    reader *rd = arg;
    if (rd->max && rd->body.len + len > rd->max) {
        tw_failure *f = tw_failure_new(TW_ERR_HTTP_BODY, EFBIG, NULL,
                                       "body of %s larger than %zu bytes", rd->r->url, rd->max);
        reader_fail(rd, f);
        tw_failure_unref(f);
        return;
    }
    tw_http_buf_append(&rd->body, data, len);
}

static void reader_end(void *arg, tw_failure *reason)
{
    reader *rd = arg;
    if (reason) {
        reader_fail(rd, reason);
        return;
    }
    tw_http_content *c = tw_xmalloc(sizeof *c);
    c->len = rd->body.len;
    c->data = tw_http_buf_take(&rd->body);
    tw_http_client_response_free(rd->r);
    tw_deferred *d = rd->d;
    free(rd);
    tw_deferred_callback(d, c, content_dtor);
    tw_deferred_unref(d);
}

static void reader_cancel(tw_deferred *d, void *arg)
{
    reader *rd = arg;
    tw_failure *f = tw_failure_new(TW_ERR_CANCELLED, ECANCELED, NULL,
                                   "reading the body of %s cancelled", rd->r->url);
    reader_fail(rd, f);
    tw_failure_unref(f);
}

static void set_usage_failure(tw_result *res, void *arg)
{
    tw_result_set_failure(res, tw_failure_new(TW_ERR_USAGE, EALREADY, NULL,
                                              "tw_read_body: the body is already being delivered"));
}

tw_deferred *tw_read_body_max(tw_http_client_response *r, size_t max)
{
    reader *rd = tw_xcalloc(1, sizeof *rd);
    rd->r = r;
    rd->max = max;
    rd->d = tw_deferred_new(reader_cancel, rd);
    tw_deferred *d = tw_deferred_ref(rd->d);
    if (tw_http_client_response_deliver_body(r, reader_data, reader_end, rd) < 0) {
        /* r stays with whoever delivers its body. */
        tw_deferred_unref(rd->d);
        tw_deferred_unref(d);
        free(rd);
        return tw_defer_later(0, set_usage_failure, NULL);
    }
    return d;
}

tw_deferred *tw_read_body(tw_http_client_response *r)
{
    return tw_read_body_max(r, 0);
}
