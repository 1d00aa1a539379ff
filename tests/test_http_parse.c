/* twine tests: the internal HTTP/1.1 parser (lib/http_parse.h). */
#include "testutil.h"

#include <errno.h>

#include "http_parse.h"

/* A recorder: every callback appends to a transcript, so that a test states
 * the whole sequence in one string, and bodies are coalesced, so that any
 * fragmentation of the input gives the same transcript:
 *   <                      message begin
 *   REQ GET /x 1.1|        request line
 *   ST 200 [OK] 1.1|       status line
 *   H2 LENGTH 5 ka|        head: field count, framing, length, keep-alive
 *   B[...]                 body bytes ("B[...]|": more may come)
 *   T1|                    trailers: field count
 *   >ka  or  >close        message complete */
typedef struct rec {
    tw_http_parser *parser;
    char log[16384];
    int in_body;
    tw_http_head head;               /* the last head; strings not kept */
    tw_http_headers *headers[8];     /* each message's, owned */
    tw_http_headers *trailers[8];
    int nheaders, ntrailers, completes;
    int head_return;                 /* what on_headers_complete answers */
    int pause_on_body;               /* pause in the first body callback */
    int pause_on_complete;
} rec;

static void say(rec *r, const char *fmt, ...) TW_PRINTF(2, 3);

static void say(rec *r, const char *fmt, ...)
{
    size_t used = strlen(r->log);
    va_list ap;
    if (r->in_body && fmt[0] != 'B') {
        snprintf(r->log + used, sizeof r->log - used, "]");
        used++;
        r->in_body = 0;
    }
    va_start(ap, fmt);
    vsnprintf(r->log + used, sizeof r->log - used, fmt, ap);
    va_end(ap);
}

static void rec_begin(void *arg)
{
    say(arg, "<");
}

static void rec_request_line(void *arg, const char *method, const char *target, int major, int minor)
{
    say(arg, "REQ %s %s %d.%d|", method, target, major, minor);
}

static void rec_status_line(void *arg, int status, const char *reason, int major, int minor)
{
    say(arg, "ST %d [%s] %d.%d|", status, reason, major, minor);
}

static const char *const body_names[] = { "NONE", "LENGTH", "CHUNKED", "UNTIL_CLOSE" };

static int rec_headers(void *arg, const tw_http_head *head, tw_http_headers *headers)
{
    rec *r = arg;
    r->head = *head;
    say(r, "H%zu %s %llu %s|", tw_http_headers_count(headers), body_names[head->body],
        (unsigned long long)head->content_length, head->keep_alive ? "ka" : "close");
    assert_true(r->nheaders < 8);
    r->headers[r->nheaders++] = headers;
    return r->head_return;
}

static void rec_body(void *arg, const char *data, size_t len)
{
    rec *r = arg;
    if (!r->in_body)
        say(r, "B[");
    r->in_body = 1;
    size_t used = strlen(r->log);
    snprintf(r->log + used, sizeof r->log - used, "%.*s", (int)len, data);
    if (r->pause_on_body) {
        r->pause_on_body = 0;
        tw_http_parser_pause(r->parser);
    }
}

static void rec_trailers(void *arg, tw_http_headers *trailers)
{
    rec *r = arg;
    say(r, "T%zu|", tw_http_headers_count(trailers));
    assert_true(r->ntrailers < 8);
    r->trailers[r->ntrailers++] = trailers;
}

static void rec_complete(void *arg, int keep_alive)
{
    rec *r = arg;
    r->completes++;
    say(r, ">%s", keep_alive ? "ka" : "close");
    if (r->pause_on_complete)
        tw_http_parser_pause(r->parser);
}

static const tw_http_parser_callbacks rec_callbacks = {
    .on_message_begin = rec_begin,
    .on_request_line = rec_request_line,
    .on_status_line = rec_status_line,
    .on_headers_complete = rec_headers,
    .on_body = rec_body,
    .on_trailers = rec_trailers,
    .on_message_complete = rec_complete,
};

static rec *rec_new(tw_http_parser_type type)
{
    rec *r = calloc(1, sizeof *r);
    r->parser = tw_http_parser_new(type, &rec_callbacks, r);
    return r;
}

static void rec_free(rec *r)
{
    for (int i = 0; i < r->nheaders; i++)
        tw_http_headers_free(r->headers[i]);
    for (int i = 0; i < r->ntrailers; i++)
        tw_http_headers_free(r->trailers[i]);
    tw_http_parser_free(r->parser);
    free(r);
}

/* The transcript, with an open body closed. */
static const char *transcript(rec *r)
{
    if (r->in_body)
        say(r, "|");
    return r->log;
}

/* Feeds s in pieces of `step` bytes; returns the total consumed, or the
 * first negative result. */
static ssize_t feed_steps(tw_http_parser *p, const char *s, size_t len, size_t step)
{
    size_t done = 0;
    while (done < len) {
        size_t n = len - done < step ? len - done : step;
        ssize_t got = tw_http_parser_feed(p, s + done, n);
        if (got < 0)
            return got;
        done += (size_t)got;
        if ((size_t)got < n)
            break;
    }
    return (ssize_t)done;
}

static ssize_t feed(tw_http_parser *p, const char *s)
{
    return tw_http_parser_feed(p, s, strlen(s));
}

static void assert_failure(tw_http_parser *p, int code, const char *text)
{
    tw_failure *f = tw_http_parser_failure(p);
    assert_non_null(f);
    assert_ptr_equal(tw_failure_domain(f), TW_ERR_HTTP_PARSE);
    if (tw_failure_code(f) != code || !strstr(tw_failure_message(f), text))
        fail_msg("got code %d \"%s\"; expected code %d with \"%s\"", tw_failure_code(f),
                 tw_failure_message(f), code, text);
}

/* Responses: bodies ------------------------------------------------------------- */

static void test_content_length_body(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    const char *msg = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(feed(r->parser, msg), strlen(msg));
    assert_string_equal(transcript(r), "<ST 200 [OK] 1.1|H2 LENGTH 5 ka|B[hello]>ka");
    assert_string_equal(tw_http_headers_get(r->headers[0], "content-type"), "text/plain");
    assert_int_equal(r->head.status, 200);
    assert_string_equal(tw_http_headers_get(r->headers[0], "Content-Length"), "5");
    assert_null(r->head.method);
    assert_int_equal(tw_http_parser_eof(r->parser), 0);
    assert_null(tw_http_parser_failure(r->parser));
    rec_free(r);
}

static void test_chunked_with_extensions_and_trailers(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    const char *msg = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                      "5;name=value;q=\"a b\"\r\nhello\r\n"
                      "6\r\n world\r\n"
                      "0;last\r\nX-Sum: abc\r\nx-sum:  def  \r\n\r\n";
    assert_int_equal(feed(r->parser, msg), strlen(msg));
    assert_string_equal(transcript(r), "<ST 200 [OK] 1.1|H2 CHUNKED 0 ka|B[hello world]T2|>ka");
    size_t pos = 0;
    assert_string_equal(tw_http_headers_next(r->trailers[0], "X-SUM", &pos), "abc");
    assert_string_equal(tw_http_headers_next(r->trailers[0], "X-SUM", &pos), "def");
    assert_null(tw_http_headers_next(r->trailers[0], "X-SUM", &pos));
    rec_free(r);
}

static void test_chunked_without_trailers_calls_no_trailers(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_true(feed(r->parser, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "3\r\nabc\r\n0\r\n\r\n") > 0);
    assert_string_equal(transcript(r), "<ST 200 [OK] 1.1|H1 CHUNKED 0 ka|B[abc]>ka");
    assert_int_equal(r->ntrailers, 0);
    rec_free(r);
}

static void test_close_delimited_body_ends_at_eof(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    const char *msg = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of this, ";
    assert_int_equal(feed(r->parser, msg), strlen(msg));
    assert_int_equal(feed(r->parser, "until the close"), 15);
    assert_int_equal(r->completes, 0);
    assert_int_equal(r->head.body, TW_HTTP_BODY_UNTIL_CLOSE);
    assert_int_equal(tw_http_parser_eof(r->parser), 0);
    assert_string_equal(transcript(r),
                        "<ST 200 [OK] 1.1|H1 UNTIL_CLOSE 0 ka|B[all of this, until the close]>close");
    /* Nothing is taken after the end. */
    assert_int_equal(feed(r->parser, "more"), 0);
    rec_free(r);
}

static void test_unknown_transfer_encoding_reads_until_close(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_true(feed(r->parser, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz") > 0);
    assert_int_equal(tw_http_parser_eof(r->parser), 0);
    assert_string_equal(transcript(r), "<ST 200 [OK] 1.1|H1 UNTIL_CLOSE 0 ka|B[zzz]>close");
    rec_free(r);
}

static void test_head_response_has_no_body_when_told(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    r->head_return = TW_HTTP_NO_BODY;
    const char *msgs = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "HTTP/1.1 200 OK\r\n\r\n";
    assert_int_equal(feed(r->parser, msgs), strlen(msgs));
    assert_string_equal(transcript(r), "<ST 200 [OK] 1.1|H1 LENGTH 1000 ka|>ka"
                                       "<ST 200 [OK] 1.1|H1 CHUNKED 0 ka|>ka"
                                       "<ST 200 [OK] 1.1|H0 UNTIL_CLOSE 0 ka|>ka");
    /* The head announced 1000 bytes; the caller knew none would come. */
    assert_int_equal(r->head.body, TW_HTTP_BODY_UNTIL_CLOSE);
    assert_int_equal(tw_http_parser_eof(r->parser), 0);
    rec_free(r);
}

static void test_continue_then_final_response(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    const char *msgs = "HTTP/1.1 100 Continue\r\n\r\n"
                       "HTTP/1.1 102 Processing\r\nX: 1\r\n\r\n"
                       "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    assert_int_equal(feed(r->parser, msgs), strlen(msgs));
    assert_string_equal(transcript(r), "<ST 100 [Continue] 1.1|H0 NONE 0 ka|>ka"
                                       "<ST 102 [Processing] 1.1|H1 NONE 0 ka|>ka"
                                       "<ST 201 [Created] 1.1|H1 LENGTH 2 ka|B[ok]>ka");
    rec_free(r);
}

static void test_204_and_304_ignore_content_length(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    const char *msgs = "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
                       "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n"
                       "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend";
    assert_int_equal(feed(r->parser, msgs), strlen(msgs));
    assert_string_equal(transcript(r), "<ST 204 [No Content] 1.1|H1 NONE 7 ka|>ka"
                                       "<ST 304 [Not Modified] 1.1|H2 NONE 10 ka|>ka"
                                       "<ST 304 [Not Modified] 1.1|H1 NONE 0 ka|>ka"
                                       "<ST 200 [OK] 1.1|H1 LENGTH 3 ka|B[end]>ka");
    rec_free(r);
}

/* Responses: heads ---------------------------------------------------------------- */

static void test_repeated_headers_kept_in_order(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_true(feed(r->parser, "HTTP/1.1 200 OK\r\n"
                                "Set-Cookie: a=1\r\n"
                                "Content-Length: 0\r\n"
                                "set-cookie: b=2\r\n"
                                "SET-COOKIE: c=3\r\n\r\n") > 0);
    tw_http_headers *h = r->headers[0];
    assert_int_equal(tw_http_headers_count(h), 4);
    const char *name, *value;
    tw_http_headers_at(h, 2, &name, &value);
    assert_string_equal(name, "set-cookie");      /* spelling kept */
    assert_string_equal(value, "b=2");
    assert_string_equal(tw_http_headers_get(h, "Set-Cookie"), "a=1");
    size_t pos = 0;
    assert_string_equal(tw_http_headers_next(h, "set-COOKIE", &pos), "a=1");
    assert_string_equal(tw_http_headers_next(h, "set-COOKIE", &pos), "b=2");
    assert_string_equal(tw_http_headers_next(h, "set-COOKIE", &pos), "c=3");
    assert_null(tw_http_headers_next(h, "set-COOKIE", &pos));
    rec_free(r);
}

static void test_values_trimmed_and_reason_kept_exactly(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_true(feed(r->parser, "HTTP/1.1 404 Not  Found \r\n"
                                "X-A:   a  b \t \r\n"
                                "X-Empty:\r\n"
                                "X-Spaces:    \r\n"
                                "Content-Length: 0\r\n\r\n") > 0);
    assert_string_equal(transcript(r), "<ST 404 [Not  Found ] 1.1|H4 NONE 0 ka|>ka");
    tw_http_headers *h = r->headers[0];
    assert_string_equal(tw_http_headers_get(h, "x-a"), "a  b");
    assert_string_equal(tw_http_headers_get(h, "x-empty"), "");
    assert_string_equal(tw_http_headers_get(h, "x-spaces"), "");
    rec_free(r);
}

static void test_status_line_without_reason(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_true(feed(r->parser, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_string_equal(transcript(r), "<ST 200 [] 1.1|H1 NONE 0 ka|>ka");
    assert_string_equal(r->head.reason, "");
    rec_free(r);
}

static void test_obs_fold_joined(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_true(feed(r->parser, "HTTP/1.1 200 OK\r\nX-Long: one\r\n two\r\n\tthree\r\n"
                                "Content-Length: 0\r\n\r\n") > 0);
    assert_string_equal(tw_http_headers_get(r->headers[0], "X-Long"), "one two\tthree");
    rec_free(r);
}

static void test_keep_alive_per_version_and_connection(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        const char *expect;
    } cases[] = {
        { "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "H1 NONE 0 ka|>ka" },
        { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "H2 NONE 0 close|>close" },
        { "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "H1 NONE 0 close|>close" },
        { "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
          "H2 NONE 0 ka|>ka" },
        /* A body delimited by the close ends the connection whatever the head said. */
        { "HTTP/1.1 200 OK\r\n\r\n", "H0 UNTIL_CLOSE 0 ka|>close" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
        assert_true(feed(r->parser, cases[i].msg) > 0);
        assert_int_equal(tw_http_parser_eof(r->parser), 0);
        const char *t = strchr(transcript(r), 'H');
        if (strcmp(t, cases[i].expect))
            fail_msg("case %zu: %s", i, t);
        rec_free(r);
    }
}

static void test_upgrade_stops_at_end_of_head(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    const char *head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\n\r\n";
    char buf[256];
    snprintf(buf, sizeof buf, "%s\x81\x05hello", head);
    assert_int_equal(feed(r->parser, buf), strlen(head));
    assert_true(r->head.upgrade);
    assert_int_equal(r->completes, 1);
    assert_int_equal(feed(r->parser, buf + strlen(head)), 0);
    assert_int_equal(tw_http_parser_eof(r->parser), 0);
    rec_free(r);
}

static void test_tunnel_after_connect_response(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    r->head_return = TW_HTTP_TUNNEL;
    const char *head = "HTTP/1.1 200 Connection established\r\n\r\n";
    char buf[256];
    snprintf(buf, sizeof buf, "%s\x16\x03\x01 tls bytes", head);
    assert_int_equal(feed(r->parser, buf), strlen(head));
    assert_string_equal(transcript(r), "<ST 200 [Connection established] 1.1|H0 UNTIL_CLOSE 0 ka|>ka");
    assert_int_equal(feed(r->parser, buf + strlen(head)), 0);
    rec_free(r);
}

static void test_data_after_closing_message(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    const char *first = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi\r\n";
    char buf[256];
    snprintf(buf, sizeof buf, "%sHTTP/1.1 200 OK\r\n\r\n", first);
    assert_int_equal(feed(r->parser, buf), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_AFTER_CLOSE, "after the last message");
    assert_int_equal(r->completes, 1);
    rec_free(r);
}

/* Fragmentation and pipelining ------------------------------------------------------ */

static const char pipeline[] =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Multi: a\r\nX-Multi: b\r\n\r\nhello"
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    "4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-T: done\r\n\r\n"
    "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    "HTTP/1.0 200 OK\r\nX-Fold: a\r\n b\r\n\r\nuntil close";

static const char pipeline_transcript[] =
    "<ST 100 [Continue] 1.1|H0 NONE 0 ka|>ka"
    "<ST 200 [OK] 1.1|H3 LENGTH 5 ka|B[hello]>ka"
    "<ST 200 [OK] 1.1|H1 CHUNKED 0 ka|B[wikipedia]T1|>ka"
    "<ST 204 [No Content] 1.1|H1 NONE 3 ka|>ka"
    "<ST 404 [Not Found] 1.1|H1 NONE 0 ka|>ka"
    "<ST 200 [OK] 1.0|H1 UNTIL_CLOSE 0 close|B[until close]>close";

static void test_pipelined_responses_in_one_buffer(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_int_equal(feed(r->parser, pipeline), strlen(pipeline));
    assert_int_equal(tw_http_parser_eof(r->parser), 0);
    assert_string_equal(transcript(r), pipeline_transcript);
    assert_string_equal(tw_http_headers_get(r->headers[5], "x-fold"), "a b");
    rec_free(r);
}

static void test_every_fragmentation_gives_the_same_messages(void **state)
{
    (void)state;
    size_t steps[] = { 1, 2, 3, 7, 13, 64 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
        assert_int_equal(feed_steps(r->parser, pipeline, strlen(pipeline), steps[i]),
                         strlen(pipeline));
        assert_int_equal(tw_http_parser_eof(r->parser), 0);
        if (strcmp(transcript(r), pipeline_transcript))
            fail_msg("step %zu: %s", steps[i], r->log);
        size_t pos = 0;
        assert_string_equal(tw_http_headers_next(r->headers[1], "x-multi", &pos), "a");
        assert_string_equal(tw_http_headers_next(r->headers[1], "x-multi", &pos), "b");
        assert_string_equal(tw_http_headers_get(r->trailers[0], "X-T"), "done");
        assert_string_equal(tw_http_headers_get(r->headers[5], "x-fold"), "a b");
        rec_free(r);
    }
}

static const char request_pipeline[] =
    "\r\nGET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"
    "POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\n\r\nhello=world"
    "PUT /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    "3\r\nabc\r\n0\r\n\r\n"
    "DELETE /x HTTP/1.0\r\n\r\n";

static const char request_transcript[] =
    "<REQ GET /index.html?q=1 1.1|H1 NONE 0 ka|>ka"
    "<REQ POST /submit 1.1|H2 LENGTH 11 ka|B[hello=world]>ka"
    "<REQ PUT /up 1.1|H2 CHUNKED 0 ka|B[abc]>ka"
    "<REQ DELETE /x 1.0|H0 NONE 0 close|>close";

static void test_requests_with_bodies_byte_by_byte(void **state)
{
    (void)state;
    size_t steps[] = { 1, 5, sizeof request_pipeline };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
        assert_int_equal(feed_steps(r->parser, request_pipeline, strlen(request_pipeline), steps[i]),
                         strlen(request_pipeline));
        assert_int_equal(tw_http_parser_eof(r->parser), 0);
        if (strcmp(transcript(r), request_transcript))
            fail_msg("step %zu: %s", steps[i], r->log);
        rec_free(r);
    }
}

/* Requests ------------------------------------------------------------------------- */

static void test_request_head(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_true(feed(r->parser, "POST /a/b?c=d HTTP/1.1\r\nHost: h\r\n"
                                "Expect: 100-Continue\r\nContent-Length: 4\r\n\r\n") > 0);
    assert_string_equal(r->head.method, "POST");
    assert_int_equal(r->head.status, 0);
    assert_null(r->head.reason);
    assert_int_equal(r->head.version_major, 1);
    assert_int_equal(r->head.version_minor, 1);
    assert_true(r->head.expect_continue);
    assert_int_equal(r->head.body, TW_HTTP_BODY_LENGTH);
    assert_int_equal(r->head.content_length, 4);
    assert_false(r->head.upgrade);
    /* The body is still to come: the server may answer 100 Continue first. */
    assert_int_equal(r->completes, 0);
    assert_true(feed(r->parser, "data") == 4);
    assert_string_equal(transcript(r), "<REQ POST /a/b?c=d 1.1|H3 LENGTH 4 ka|B[data]>ka");
    rec_free(r);
}

static void test_request_without_expect(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_true(feed(r->parser, "GET / HTTP/1.1\r\nExpect: something-else\r\n\r\n") > 0);
    assert_false(r->head.expect_continue);
    rec_free(r);
}

static void test_request_with_huge_content_length(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    const char *msg = "PUT /big HTTP/1.1\r\nContent-Length: 1000000000000000\r\n\r\nfirst bytes";
    assert_int_equal(feed(r->parser, msg), strlen(msg));
    assert_int_equal(r->head.content_length, 1000000000000000ULL);
    assert_string_equal(transcript(r), "<REQ PUT /big 1.1|H1 LENGTH 1000000000000000 ka|B[first bytes]|");
    assert_int_equal(tw_http_parser_eof(r->parser), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_EOF_IN_BODY, "after 11 of 1000000000000000 body bytes");
    rec_free(r);
}

static void test_connect_request_leaves_http(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    const char *head = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    char buf[256];
    snprintf(buf, sizeof buf, "%s\x16\x03\x01", head);
    assert_int_equal(feed(r->parser, buf), strlen(head));
    assert_true(r->head.upgrade);
    assert_string_equal(transcript(r), "<REQ CONNECT example.com:443 1.1|H1 NONE 0 ka|>ka");
    rec_free(r);
}

static void test_request_transfer_encoding_must_end_in_chunked(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_int_equal(feed(r->parser, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxx"), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_BAD_LENGTH, "\"gzip\" not ending in chunked");
    assert_int_equal(r->nheaders, 0);
    rec_free(r);
}

static void test_conflicting_lengths_rejected(void **state)
{
    (void)state;
    const char *msgs[] = {
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 3x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
        assert_int_equal(feed(r->parser, msgs[i]), -EPROTO);
        assert_failure(r->parser, TW_HTTP_PARSE_BAD_LENGTH, "in the header block");
        rec_free(r);
    }
}

/* Errors ------------------------------------------------------------------------- */

static void test_invalid_status_line(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_int_equal(feed(r->parser, "HTTP/1.1 2x0 OK\r\n\r\n"), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_BAD_START_LINE,
                   "invalid HTTP status code (HPE_INVALID_STATUS) in the status line at offset 10");
    /* The parser stays failed. */
    assert_int_equal(feed(r->parser, "HTTP/1.1 200 OK\r\n\r\n"), -EPROTO);
    assert_int_equal(tw_http_parser_eof(r->parser), -EPROTO);
    assert_int_equal(r->nheaders, 0);
    rec_free(r);
}

static void test_invalid_version(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_int_equal(feed(r->parser, "HTTP/x.1 200 OK\r\n\r\n"), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_BAD_START_LINE, "invalid HTTP version");
    rec_free(r);
}

static void test_invalid_request_line(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_int_equal(feed(r->parser, "GET /a b HTTP/1.1\r\n\r\n"), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_BAD_START_LINE, "in the request line");
    rec_free(r);
}

static void test_invalid_header(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        const char *text;
    } cases[] = {
        { "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "invalid header field name \"Bad Name\"" },
        { "HTTP/1.1 200 OK\r\nX: a\x01z\r\n\r\n", "invalid character in header (HPE_INVALID_HEADER_TOKEN) in the header block at offset 21" },
        { "HTTP/1.1 200 OK\r\n(x): y\r\n\r\n", "in the header block" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
        assert_int_equal(feed(r->parser, cases[i].msg), -EPROTO);
        assert_failure(r->parser, TW_HTTP_PARSE_BAD_HEADER, cases[i].text);
        assert_int_equal(r->nheaders, 0);
        rec_free(r);
    }
}

static void test_invalid_trailer(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_int_equal(feed(r->parser, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "1\r\na\r\n0\r\nBad Trailer: x\r\n\r\n"), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_BAD_HEADER, "invalid trailer field name");
    assert_string_equal(transcript(r), "<ST 200 [OK] 1.1|H1 CHUNKED 0 ka|B[a]|");
    rec_free(r);
}

static void test_invalid_chunk_size(void **state)
{
    (void)state;
    const char *bodies[] = { "zz\r\n", "3\r\nabc\r\n-1\r\n", "fffffffffffffffffff\r\n" };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
        assert_true(feed(r->parser, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
        assert_int_equal(feed(r->parser, bodies[i]), -EPROTO);
        assert_failure(r->parser, TW_HTTP_PARSE_BAD_CHUNK, "in the chunked body");
        rec_free(r);
    }
}

/* Head size and field count --------------------------------------------------------- */

/* A response head of exactly `size` bytes up to the CR of its blank line. */
static char *head_of_size(size_t size)
{
    const char *start = "HTTP/1.1 200 OK\r\nX-Pad: ";
    size_t fixed = strlen(start) + strlen("\r\n\r");
    char *s = malloc(size + 2);
    assert_true(size > fixed);
    memcpy(s, start, strlen(start));
    memset(s + strlen(start), 'p', size - fixed);
    memcpy(s + size - 3, "\r\n\r\n", 5);
    assert_int_equal(strlen(s), size + 1);
    return s;
}

static void test_head_over_the_limit(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_int_equal(tw_http_parser_set_limits(r->parser, 1024, 0), 0);
    char *head = head_of_size(2000);
    assert_int_equal(feed(r->parser, head), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_HEAD_TOO_LARGE, "header block larger than 1024 bytes");
    assert_int_equal(r->nheaders, 0);
    free(head);
    rec_free(r);
}

static void test_head_limit_is_exact(void **state)
{
    (void)state;
    size_t steps[] = { 1, 100, 5000 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        for (size_t size = 1023; size <= 1025; size++) {
            rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
            tw_http_parser_set_limits(r->parser, 1024, 0);
            char *head = head_of_size(size);
            ssize_t n = feed_steps(r->parser, head, strlen(head), steps[i]);
            if (size <= 1024) {
                assert_int_equal(n, strlen(head));
                assert_int_equal(r->nheaders, 1);
            } else {
                assert_int_equal(n, -EPROTO);
                assert_failure(r->parser, TW_HTTP_PARSE_HEAD_TOO_LARGE, "larger than 1024");
            }
            free(head);
            rec_free(r);
        }
    }
}

static void test_default_and_largest_head_limits(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    char *head = head_of_size(TW_HTTP_PARSE_MAX_HEAD_BYTES + 1);
    assert_int_equal(feed(r->parser, head), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_HEAD_TOO_LARGE, "larger than 65536 bytes");
    free(head);
    rec_free(r);

    r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_int_equal(tw_http_parser_set_limits(r->parser, TW_HTTP_PARSE_MAX_HEAD_BYTES_CAP + 1, 0),
                     -EINVAL);
    assert_int_equal(tw_http_parser_set_limits(r->parser, TW_HTTP_PARSE_MAX_HEAD_BYTES_CAP, 0), 0);
    head = head_of_size(TW_HTTP_PARSE_MAX_HEAD_BYTES_CAP);
    assert_int_equal(feed(r->parser, head), strlen(head));
    assert_int_equal(r->nheaders, 1);
    free(head);
    rec_free(r);
}

static void test_trailer_block_limit(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    tw_http_parser_set_limits(r->parser, 64, 0);
    assert_true(feed(r->parser, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n") > 0);
    char trailer[200];
    snprintf(trailer, sizeof trailer, "X-Big: %0100d\r\n\r\n", 0);
    assert_int_equal(feed(r->parser, trailer), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_HEAD_TOO_LARGE, "trailer block larger than 64 bytes");
    rec_free(r);
}

static void test_too_many_fields(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    tw_http_parser_set_limits(r->parser, 0, 3);
    assert_true(feed(r->parser, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n") > 0);
    assert_int_equal(r->nheaders, 1);
    assert_int_equal(feed(r->parser, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_TOO_MANY_FIELDS, "more than 3 header fields");
    rec_free(r);
}

/* End of stream -------------------------------------------------------------------- */

static void test_short_body_at_eof(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_true(feed(r->parser, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd") > 0);
    assert_int_equal(tw_http_parser_eof(r->parser), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_EOF_IN_BODY, "stream ended after 4 of 10 body bytes");
    assert_string_equal(transcript(r), "<ST 200 [OK] 1.1|H1 LENGTH 10 ka|B[abcd]|");
    assert_int_equal(r->completes, 0);
    rec_free(r);
}

static void test_eof_mid_chunk(void **state)
{
    (void)state;
    const char *tails[] = { "5\r\nab", "5\r\nabcde", "5\r\nabcde\r\n", "5\r\nabcde\r\n0\r\n" };
    const char *texts[] = { "after 2 bytes of data", "after 5 bytes", "after 5 bytes",
                            "inside the trailers" };
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
        assert_true(feed(r->parser, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
        assert_int_equal(feed(r->parser, tails[i]), strlen(tails[i]));
        assert_int_equal(tw_http_parser_eof(r->parser), -EPROTO);
        assert_failure(r->parser, TW_HTTP_PARSE_EOF_IN_CHUNKED, texts[i]);
        assert_int_equal(r->completes, 0);
        rec_free(r);
    }
}

static void test_eof_mid_headers(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_int_equal(feed(r->parser, "HTTP/1.1 200 OK\r\nContent-Le"), 27);
    assert_int_equal(tw_http_parser_eof(r->parser), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_EOF_IN_HEAD, "stream ended inside a message head at offset 27");
    assert_int_equal(r->nheaders, 0);
    rec_free(r);

    r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_int_equal(feed(r->parser, "GET /pa"), 7);
    assert_int_equal(tw_http_parser_eof(r->parser), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_EOF_IN_HEAD, "inside a message head at offset 7");
    rec_free(r);
}

static void test_eof_between_messages_is_clean(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_int_equal(tw_http_parser_eof(r->parser), 0);
    rec_free(r);

    r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_true(feed(r->parser, "GET / HTTP/1.1\r\n\r\n\r\n") > 0);
    assert_int_equal(tw_http_parser_eof(r->parser), 0);
    assert_int_equal(r->completes, 1);
    rec_free(r);
}

/* Flow control ---------------------------------------------------------------------- */

/* Feeds what a paused parser left, after resuming, until all is consumed. */
static void feed_rest(rec *r, const char *s, size_t len, ssize_t first)
{
    size_t done = (size_t)first;
    while (done < len) {
        tw_http_parser_resume(r->parser);
        ssize_t n = tw_http_parser_feed(r->parser, s + done, len - done);
        assert_true(n >= 0);
        done += (size_t)n;
    }
}

static void test_pause_and_resume_mid_body(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    assert_int_equal(feed(r->parser, head), strlen(head));
    r->pause_on_body = 1;
    ssize_t n = feed(r->parser, "01234");
    assert_int_equal(n, 5);                   /* the piece went out whole, then it stopped */
    assert_int_equal(feed(r->parser, "56789"), 0);   /* paused: nothing taken */
    assert_string_equal(transcript(r), "<ST 200 [OK] 1.1|H1 LENGTH 10 ka|B[01234]|");
    assert_int_equal(tw_http_parser_eof(r->parser), -EBUSY);
    tw_http_parser_resume(r->parser);
    assert_int_equal(feed(r->parser, "56789"), 5);
    assert_int_equal(r->completes, 1);
    rec_free(r);
}

static void test_pause_in_body_keeps_the_rest_for_later(void **state)
{
    (void)state;
    /* Pausing in the body of each message of a pipeline in turn, wherever
     * the pieces fall, loses and repeats nothing. */
    for (size_t step = 1; step <= 8; step++) {
        rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
        size_t len = strlen(pipeline), done = 0;
        while (done < len) {
            size_t piece = len - done < step ? len - done : step;
            r->pause_on_body = 1;
            ssize_t n = tw_http_parser_feed(r->parser, pipeline + done, piece);
            assert_true(n >= 0);
            feed_rest(r, pipeline + done, piece, n);
            done += piece;
        }
        tw_http_parser_resume(r->parser);
        assert_int_equal(tw_http_parser_eof(r->parser), 0);
        if (strcmp(transcript(r), pipeline_transcript))
            fail_msg("step %zu: %s", step, r->log);
        rec_free(r);
    }
}

static void test_pause_at_message_complete_stops_the_pipeline(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    r->pause_on_complete = 1;
    size_t len = strlen(request_pipeline);
    ssize_t n = feed(r->parser, request_pipeline);
    const char *second = strstr(request_pipeline, "POST");
    assert_int_equal(n, second - request_pipeline);
    assert_int_equal(r->completes, 1);
    size_t done = (size_t)n;
    while (done < len) {
        tw_http_parser_resume(r->parser);
        n = tw_http_parser_feed(r->parser, request_pipeline + done, len - done);
        assert_true(n > 0);
        done += (size_t)n;
    }
    assert_int_equal(r->completes, 4);
    assert_string_equal(transcript(r), request_transcript);
    rec_free(r);
}

static void test_pause_between_feeds(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    tw_http_parser_pause(r->parser);
    assert_int_equal(feed(r->parser, "GET / HTTP/1.1\r\n\r\n"), 0);
    assert_string_equal(transcript(r), "");
    tw_http_parser_resume(r->parser);
    assert_int_equal(feed(r->parser, "GET / HTTP/1.1\r\n\r\n"), 18);
    assert_int_equal(r->completes, 1);
    rec_free(r);
}

/* Ownership ---------------------------------------------------------------------- */

static void test_parser_without_callbacks_frees_what_it_made(void **state)
{
    (void)state;
    static const tw_http_parser_callbacks none;
    tw_http_parser *p = tw_http_parser_new(TW_HTTP_RESPONSE_PARSER, &none, NULL);
    assert_int_equal(feed(p, pipeline), strlen(pipeline));
    assert_int_equal(tw_http_parser_eof(p), 0);
    tw_http_parser_free(p);

    /* Freed midway through a head and a trailer block. */
    p = tw_http_parser_new(TW_HTTP_RESPONSE_PARSER, &none, NULL);
    assert_true(feed(p, "HTTP/1.1 200 OK\r\nA: b\r\nC: d") > 0);
    tw_http_parser_free(p);
    p = tw_http_parser_new(TW_HTTP_RESPONSE_PARSER, &none, NULL);
    assert_true(feed(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n") > 0);
    tw_http_parser_free(p);
    tw_http_parser_free(NULL);
}

/* What the input cannot change: where it was cut --------------------------------- */

static void test_fragments_do_not_change_a_bad_first_field_name(void **state)
{
    (void)state;
    /* The start line is announced before the fault, or not, whatever the fragments. */
    const char *msg = "HTTP/1.1 200 OK\r\nContent-Length@ 3\r\n\r\n";
    for (size_t step = 1; step < strlen(msg); step++) {
        rec *whole = rec_new(TW_HTTP_RESPONSE_PARSER);
        rec *split = rec_new(TW_HTTP_RESPONSE_PARSER);
        assert_int_equal(feed(whole->parser, msg), -EPROTO);
        assert_int_equal(feed_steps(split->parser, msg, strlen(msg), step), -EPROTO);
        assert_string_equal(transcript(split), transcript(whole));
        assert_string_equal(tw_failure_message(tw_http_parser_failure(split->parser)),
                            tw_failure_message(tw_http_parser_failure(whole->parser)));
        rec_free(whole);
        rec_free(split);
    }
}

static void test_fragments_do_not_change_which_field_fault_is_reported(void **state)
{
    (void)state;
    /* With max_fields 1, B is one field too many, and C's name is bad. */
    const char *msgs[] = { "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC\x01: 3\r\n\r\n",
                           "GET / HTTP/1.1\r\nA b: 1\r\nC\x01: 2\r\n\r\n",
                           "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: x\x01\r\n\r\n" };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        rec *whole = rec_new(TW_HTTP_REQUEST_PARSER);
        tw_http_parser_set_limits(whole->parser, 0, 1);
        assert_int_equal(feed(whole->parser, msgs[i]), -EPROTO);
        tw_failure *fw = tw_http_parser_failure(whole->parser);
        for (size_t step = 1; step <= 7; step++) {
            rec *split = rec_new(TW_HTTP_REQUEST_PARSER);
            tw_http_parser_set_limits(split->parser, 0, 1);
            assert_int_equal(feed_steps(split->parser, msgs[i], strlen(msgs[i]), step), -EPROTO);
            tw_failure *fs = tw_http_parser_failure(split->parser);
            if (tw_failure_code(fw) != tw_failure_code(fs) ||
                strcmp(tw_failure_message(fw), tw_failure_message(fs)))
                fail_msg("case %zu: whole: %d \"%s\"; in %zu-byte steps: %d \"%s\"", i,
                         tw_failure_code(fw), tw_failure_message(fw), step,
                         tw_failure_code(fs), tw_failure_message(fs));
            rec_free(split);
        }
        rec_free(whole);
    }
}

/* A bad start line after a message ------------------------------------------------- */

static void test_bad_start_line_after_a_message(void **state)
{
    (void)state;
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_int_equal(feed(r->parser, "GET / HTTP/1.1\r\n\r\n/ HTTP/1.1\r\n\r\n"), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_BAD_START_LINE, "in the request line at offset 18");
    assert_int_equal(r->completes, 1);
    rec_free(r);

    r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_int_equal(feed(r->parser, "HTTP/1.1 204 No Content\r\n\r\nXTTP/1.1 200 OK\r\n\r\n"),
                     -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_BAD_START_LINE, "in the status line at offset 27");
    assert_int_equal(r->completes, 1);
    rec_free(r);
}

/* Empty lines before a head -------------------------------------------------------- */

static void test_empty_lines_before_a_head_do_not_count(void **state)
{
    (void)state;
    /* Each head is exactly the limit: 24 bytes up to the CR of its blank line. */
    const char *msgs = "\r\nGET / HTTP/1.1\r\nA: bc\r\n\r\n"
                       "\r\n\r\n\r\nGET / HTTP/1.1\r\nA: bc\r\n\r\n";
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_int_equal(tw_http_parser_set_limits(r->parser, 24, 0), 0);
    assert_int_equal(feed(r->parser, msgs), strlen(msgs));
    assert_int_equal(r->completes, 2);
    rec_free(r);

    /* One byte more in the head is over the limit. */
    r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_int_equal(tw_http_parser_set_limits(r->parser, 24, 0), 0);
    assert_int_equal(feed(r->parser, "\r\nGET / HTTP/1.1\r\nA: bcd\r\n\r\n"), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_HEAD_TOO_LARGE, "larger than 24 bytes");
    rec_free(r);
}

/* CONNECT and trailers --------------------------------------------------------------- */

static void test_connect_request_head_says_no_body(void **state)
{
    (void)state;
    /* No body follows a CONNECT request: what comes next is the tunnel's. */
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    const char *head = "CONNECT example.com:443 HTTP/1.1\r\nContent-Length: 4\r\n\r\n";
    char buf[256];
    snprintf(buf, sizeof buf, "%sabcd", head);
    assert_int_equal(feed(r->parser, buf), strlen(head));
    assert_true(r->head.upgrade);
    assert_int_equal(r->completes, 1);
    assert_string_equal(transcript(r), "<REQ CONNECT example.com:443 1.1|H1 NONE 4 ka|>ka");
    rec_free(r);
}

static void test_bad_content_length_trailer_is_a_bad_trailer(void **state)
{
    (void)state;
    const char *trailers[] = { "Content-Length: x\r\n\r\n",
                               "Content-Length: 1\r\nContent-Length: 1\r\n\r\n" };
    for (size_t i = 0; i < sizeof trailers / sizeof trailers[0]; i++) {
        rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
        assert_true(feed(r->parser, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "1\r\na\r\n0\r\n") > 0);
        assert_int_equal(feed(r->parser, trailers[i]), -EPROTO);
        assert_failure(r->parser, TW_HTTP_PARSE_BAD_HEADER, "in the trailers");
        rec_free(r);
    }
}

/* Control characters in values and reasons ------------------------------------------ */

static void test_field_value_with_a_control_character_is_refused(void **state)
{
    (void)state;
    /* http-parser checks every byte of a value but its first; the list holds C
     * strings, so a NUL there would cut the value to "" while the parser
     * still framed the body by it. */
    static const char chunked[] = "POST / HTTP/1.1\r\nTransfer-Encoding: \0, chunked\r\n\r\n"
                                  "3\r\nabc\r\n0\r\n\r\n";
    static const char host[] = "GET / HTTP/1.1\r\nHost: \0evil.example\r\n\r\n";
    static const char bell[] = "GET / HTTP/1.1\r\nA: 1\r\nX: \a\r\n\r\n";
    const struct { const char *msg; size_t len; } cases[] = {
        { chunked, sizeof chunked - 1 }, { host, sizeof host - 1 }, { bell, sizeof bell - 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
        assert_int_equal(tw_http_parser_feed(r->parser, cases[i].msg, cases[i].len), -EPROTO);
        assert_failure(r->parser, TW_HTTP_PARSE_BAD_HEADER, "control character in the value");
        assert_int_equal(r->nheaders, 0);
        rec_free(r);
    }
    /* HTAB is white space, not a control character. */
    rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
    assert_true(feed(r->parser, "GET / HTTP/1.1\r\nX: a\tb\r\n\r\n") > 0);
    assert_string_equal(tw_http_headers_get(r->headers[0], "X"), "a\tb");
    rec_free(r);
}

static void test_reason_with_a_control_character_is_refused(void **state)
{
    (void)state;
    static const char msg[] = "HTTP/1.1 200 O\0K\r\nContent-Length: 0\r\n\r\n";
    rec *r = rec_new(TW_HTTP_RESPONSE_PARSER);
    assert_int_equal(tw_http_parser_feed(r->parser, msg, sizeof msg - 1), -EPROTO);
    assert_failure(r->parser, TW_HTTP_PARSE_BAD_START_LINE, "control character in the reason");
    assert_string_equal(transcript(r), "<");
    rec_free(r);
}

/* Every byte value at every place of reasons of every length up to 17 (the
 * check goes eight bytes at a time): http-parser takes any byte there but CR
 * and LF, so the verdict is twine's alone. */
static void test_control_characters_anywhere_in_a_reason(void **state)
{
    (void)state;
    char msg[64];
    for (size_t len = 1; len <= 17; len++) {
        for (size_t at = 0; at < len; at++) {
            for (int c = 0; c < 256; c++) {
                if (c == '\r' || c == '\n' || (at == 0 && (c == ' ' || c == '\t')))
                    continue;
                int n = snprintf(msg, sizeof msg, "HTTP/1.1 200 ");
                memset(msg + n, 'a', len);
                msg[n + at] = (char)c;
                memcpy(msg + n + len, "\r\n\r\n", 4);
                static const tw_http_parser_callbacks none = { 0 };
                tw_http_parser *p = tw_http_parser_new(TW_HTTP_RESPONSE_PARSER, &none, NULL);
                int ctl = (c < 0x20 && c != '\t') || c == 0x7f;
                ssize_t r = tw_http_parser_feed(p, msg, (size_t)n + len + 4);
                if ((r < 0) != ctl)
                    fail_msg("reason of %zu bytes, byte %d at %zu: %s", len, c, at,
                             r < 0 ? tw_failure_message(tw_http_parser_failure(p)) : "taken");
                tw_http_parser_free(p);
            }
        }
    }
}

static void test_request_target_with_a_control_character_is_refused(void **state)
{
    (void)state;
    const char *msgs[] = { "GET /a\fb HTTP/1.1\r\n\r\n", "GET /a\tb HTTP/1.1\r\n\r\n" };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        rec *r = rec_new(TW_HTTP_REQUEST_PARSER);
        assert_int_equal(feed(r->parser, msgs[i]), -EPROTO);
        assert_failure(r->parser, TW_HTTP_PARSE_BAD_START_LINE, "control character in the request target");
        assert_string_equal(transcript(r), "<");
        rec_free(r);
    }
}

/* A callback that pauses and resumes at once leaves the head limit alone. */
static void resume_at_begin(void *arg)
{
    tw_http_parser *p = *(tw_http_parser **)arg;
    tw_http_parser_pause(p);
    tw_http_parser_resume(p);
}

static void test_resume_from_a_callback_keeps_the_head_limit(void **state)
{
    (void)state;
    static const tw_http_parser_callbacks cbs = { .on_message_begin = resume_at_begin };
    tw_http_parser *p = NULL;
    p = tw_http_parser_new(TW_HTTP_REQUEST_PARSER, &cbs, &p);
    assert_int_equal(tw_http_parser_set_limits(p, 100, 0), 0);
    char msg[700];
    int n = snprintf(msg, sizeof msg, "GET / HTTP/1.1\r\nX: ");
    memset(msg + n, 'a', 500);
    memcpy(msg + n + 500, "\r\n\r\n", 4);
    assert_int_equal(tw_http_parser_feed(p, msg, (size_t)n + 504), -EPROTO);
    assert_int_equal(tw_failure_code(tw_http_parser_failure(p)), TW_HTTP_PARSE_HEAD_TOO_LARGE);
    tw_http_parser_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_body),
        cmocka_unit_test(test_chunked_with_extensions_and_trailers),
        cmocka_unit_test(test_chunked_without_trailers_calls_no_trailers),
        cmocka_unit_test(test_close_delimited_body_ends_at_eof),
        cmocka_unit_test(test_unknown_transfer_encoding_reads_until_close),
        cmocka_unit_test(test_head_response_has_no_body_when_told),
        cmocka_unit_test(test_continue_then_final_response),
        cmocka_unit_test(test_204_and_304_ignore_content_length),
        cmocka_unit_test(test_repeated_headers_kept_in_order),
        cmocka_unit_test(test_values_trimmed_and_reason_kept_exactly),
        cmocka_unit_test(test_status_line_without_reason),
        cmocka_unit_test(test_obs_fold_joined),
        cmocka_unit_test(test_keep_alive_per_version_and_connection),
        cmocka_unit_test(test_upgrade_stops_at_end_of_head),
        cmocka_unit_test(test_tunnel_after_connect_response),
        cmocka_unit_test(test_data_after_closing_message),
        cmocka_unit_test(test_pipelined_responses_in_one_buffer),
        cmocka_unit_test(test_every_fragmentation_gives_the_same_messages),
        cmocka_unit_test(test_requests_with_bodies_byte_by_byte),
        cmocka_unit_test(test_request_head),
        cmocka_unit_test(test_request_without_expect),
        cmocka_unit_test(test_request_with_huge_content_length),
        cmocka_unit_test(test_connect_request_leaves_http),
        cmocka_unit_test(test_request_transfer_encoding_must_end_in_chunked),
        cmocka_unit_test(test_conflicting_lengths_rejected),
        cmocka_unit_test(test_invalid_status_line),
        cmocka_unit_test(test_invalid_version),
        cmocka_unit_test(test_invalid_request_line),
        cmocka_unit_test(test_invalid_header),
        cmocka_unit_test(test_invalid_trailer),
        cmocka_unit_test(test_invalid_chunk_size),
        cmocka_unit_test(test_head_over_the_limit),
        cmocka_unit_test(test_head_limit_is_exact),
        cmocka_unit_test(test_default_and_largest_head_limits),
        cmocka_unit_test(test_trailer_block_limit),
        cmocka_unit_test(test_too_many_fields),
        cmocka_unit_test(test_short_body_at_eof),
        cmocka_unit_test(test_eof_mid_chunk),
        cmocka_unit_test(test_eof_mid_headers),
        cmocka_unit_test(test_eof_between_messages_is_clean),
        cmocka_unit_test(test_pause_and_resume_mid_body),
        cmocka_unit_test(test_pause_in_body_keeps_the_rest_for_later),
        cmocka_unit_test(test_pause_at_message_complete_stops_the_pipeline),
        cmocka_unit_test(test_pause_between_feeds),
        cmocka_unit_test(test_parser_without_callbacks_frees_what_it_made),
        cmocka_unit_test(test_fragments_do_not_change_a_bad_first_field_name),
        cmocka_unit_test(test_fragments_do_not_change_which_field_fault_is_reported),
        cmocka_unit_test(test_bad_start_line_after_a_message),
        cmocka_unit_test(test_empty_lines_before_a_head_do_not_count),
        cmocka_unit_test(test_connect_request_head_says_no_body),
        cmocka_unit_test(test_bad_content_length_trailer_is_a_bad_trailer),
        cmocka_unit_test(test_field_value_with_a_control_character_is_refused),
        cmocka_unit_test(test_reason_with_a_control_character_is_refused),
        cmocka_unit_test(test_control_characters_anywhere_in_a_reason),
        cmocka_unit_test(test_request_target_with_a_control_character_is_refused),
        cmocka_unit_test(test_resume_from_a_callback_keeps_the_head_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
