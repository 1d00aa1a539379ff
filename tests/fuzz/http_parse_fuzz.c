/* twine fuzzing: the HTTP/1.1 parsing layer (lib/http_parse.h) and the
 * header lists it fills (lib/http_headers.c), as a libFuzzer target.
 *
 * An input is four control bytes and then the stream:
 *   byte 0   bit 0: response parser (else request); bits 1-3: max_head_bytes;
 *            bits 4-5: max_fields; bits 6-7: how run (b) splits the stream
 *   byte 1   what on_headers_complete returns, two bits per message (cycling)
 *   byte 2   run (b) pauses in callback i when bit i % 8 is set
 *   byte 3   bits 0-6: the seed of the split points; bit 7: new limits
 *            after every message
 * The stream is parsed twice: (a) in one piece without pausing, (b) in
 * pieces, pausing and resuming. Every callback is written to a transcript,
 * and the two transcripts must be identical. Each callback also checks what
 * http_parse.h promises about it; a broken promise aborts.
 * HTTP_PARSE_FUZZ_PRINT=1 in the environment prints each transcript,
 * HTTP_PARSE_FUZZ_TRACE=1 each callback as it comes. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond))                                                                     \
            check_failed(__LINE__, #cond);                                               \
    } while (0)

static void check_failed(int line, const char *what)
{
    fprintf(stderr, "http_parse_fuzz.c:%d: check failed: %s\n", line, what);
    abort();
}

/* Transcripts ------------------------------------------------------------------- */

typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void text_add(text *t, const char *s, size_t n)
{
    if (!n)
        return;
    if (t->len + n + 1 > t->cap) {
        t->cap = 2 * (t->len + n + 1);
        t->s = realloc(t->s, t->cap);
        CHECK(t->s);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_printf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(text *t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < sizeof buf);
    text_add(t, buf, (size_t)n);
}

/* Bytes with the transcript's own punctuation and anything unprintable
 * escaped, so that different events can never read the same. */
static void text_bytes(text *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '\\' || c == '|' || c == '[' || c == ']')
            text_printf(t, "\\x%02x", c);
        else
            text_add(t, (const char *)&c, 1);
    }
}

static void text_str(text *t, const char *s)
{
    text_bytes(t, s, strlen(s));
}

/* The configuration an input chooses ------------------------------------------- */

static const size_t head_limits[8] = {
    0, 24, 40, 64, 100, 256, 1024, TW_HTTP_PARSE_MAX_HEAD_BYTES_CAP + 1,
};
static const size_t field_limits[4] = { 0, 1, 2, 4 };

typedef struct config {
    tw_http_parser_type type;
    size_t head_limit, field_limit;
    int split;                /* 0: byte by byte; 1-3: pieces of up to 8, 64, 512 */
    uint8_t actions, pauses, seed;
    int relimit;
} config;

static config config_of(const uint8_t *d)
{
    config c = {
        .type = d[0] & 1 ? TW_HTTP_RESPONSE_PARSER : TW_HTTP_REQUEST_PARSER,
        .head_limit = head_limits[(d[0] >> 1) & 7],
        .field_limit = field_limits[(d[0] >> 4) & 3],
        .split = d[0] >> 6,
        .actions = d[1],
        .pauses = d[2],
        .seed = d[3] & 0x7f,
        .relimit = d[3] >> 7,
    };
    return c;
}

/* One run over the stream -------------------------------------------------------- */

enum rstate { R_IDLE, R_HEAD, R_BODY };

typedef struct run {
    const config *cfg;
    tw_http_parser *p;
    text log;                 /* the transcript up to the end */
    text end;                 /* how it ended: the failure, or what else */
    int error;                /* the failure's code */
    int pausing;              /* this run pauses in callbacks */
    int exact;                /* fed byte by byte: positions are known */

    size_t max_head, max_fields;   /* the limits in force */
    uint64_t consumed;        /* bytes the parser took so far */
    unsigned callbacks;
    int paused;               /* paused in a callback, not resumed yet */
    const char *current, *paused_in;   /* callbacks, by name */
    int in_eof;
    int over;                 /* failed or left HTTP: feed no more */

    enum rstate state;
    int messages;
    int closed;               /* the last message ended the connection */
    int left;                 /* the last message left HTTP */
    int in_body_text;         /* the transcript has an open "B[" */
    uint64_t begin_pos;       /* exact: where the message's first byte is */

    /* The message being read. */
    int start_seen, trailers_seen;
    char *method, *target, *reason;
    int status, major, minor;
    tw_http_head head;        /* its strings not kept */
    int action;               /* what on_headers_complete returned */
    uint64_t body_bytes;
} run;

static void close_body_text(run *r)
{
    if (r->in_body_text) {
        text_add(&r->log, "]", 1);
        r->in_body_text = 0;
    }
}

/* Whether callback `next` may come right after `first`, in one step. */
static int chained(const char *first, const char *next)
{
    if (!strcmp(next, "headers_complete"))
        return !strcmp(first, "request_line") || !strcmp(first, "status_line");
    return !strcmp(next, "message_complete") && !strcmp(first, "trailers");
}

/* What every callback does first: it may run now, and it may pause after. */
static void enter(run *r, const char *name)
{
    static int trace = -1;
    if (trace < 0)
        trace = getenv("HTTP_PARSE_FUZZ_TRACE") != NULL;
    if (trace)
        fprintf(stderr, "%s %s at %llu%s\n", r->pausing ? "split" : "whole", name,
                (unsigned long long)r->consumed, r->paused ? " (paused)" : "");
    CHECK(!r->over);
    /* Pause stops the parser right after the callback, but for the two
     * pairs that come from one step (lib/http_parse.h): a start line and a
     * head without fields, trailers and the end of their message. */
    if (r->paused)
        CHECK(chained(r->paused_in, name));
    r->current = name;
    CHECK(tw_http_parser_failure(r->p) == NULL);
    r->callbacks++;
}

static void leave(run *r)
{
    if (r->pausing && (r->cfg->pauses >> (r->callbacks % 8)) & 1) {
        tw_http_parser_pause(r->p);
        r->paused = 1;
        r->paused_in = r->current;
    }
}

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int same_name(const char *a, const char *b)
{
    return !strcasecmp(a, b);
}

/* Whether a field `name` lists `token` among its comma-separated elements. */
static int list_has(const tw_http_headers *h, const char *name, const char *token)
{
    size_t pos = 0, tlen = strlen(token);
    for (const char *v; (v = tw_http_headers_next(h, name, &pos));) {
        for (const char *s = v;; s++) {
            size_t n = strcspn(s, ",");
            const char *e = s + n;
            while (s < e && is_ows(*s))
                s++;
            while (e > s && is_ows(e[-1]))
                e--;
            if ((size_t)(e - s) == tlen && tlen && !strncasecmp(s, token, tlen))
                return 1;
            s += strcspn(s, ",");
            if (!*s)
                break;
        }
    }
    return 0;
}

/* Checks a header or trailer list against its contract, exercises the list
 * functions on it, and writes its fields to the transcript. */
static void check_fields(run *r, const tw_http_headers *h)
{
    size_t n = tw_http_headers_count(h);
    CHECK(n <= r->max_fields);
    text_printf(&r->log, "%zu", n);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        tw_http_headers_at(h, i, &name, &value);
        CHECK(name && value);
        CHECK(*name);
        for (const char *c = name; *c; c++)
            CHECK(is_tchar((unsigned char)*c));
        CHECK(!strpbrk(value, "\r\n"));
        size_t vlen = strlen(value);
        CHECK(!vlen || (!is_ows(value[0]) && !is_ows(value[vlen - 1])));

        /* get finds the first field of that name, in any case. */
        size_t first = i;
        for (size_t j = 0; j < i; j++) {
            const char *other;
            tw_http_headers_at(h, j, &other, NULL);
            if (same_name(other, name)) {
                first = j;
                break;
            }
        }
        const char *want;
        tw_http_headers_at(h, first, NULL, &want);
        CHECK(tw_http_headers_get(h, name) == want);

        text_add(&r->log, "|", 1);
        text_str(&r->log, name);
        text_add(&r->log, ": ", 2);
        text_str(&r->log, value);
    }
    const char *none_name = "x", *none_value = "x";
    tw_http_headers_at(h, n, &none_name, &none_value);
    CHECK(!none_name && !none_value);
    text_add(&r->log, "|", 1);

    if (!n)
        return;
    tw_http_headers *copy = tw_http_headers_copy(h);
    CHECK(tw_http_headers_count(copy) == n);
    for (size_t i = 0; i < n; i++) {
        const char *a, *av, *b, *bv;
        tw_http_headers_at(h, i, &a, &av);
        tw_http_headers_at(copy, i, &b, &bv);
        CHECK(!strcmp(a, b) && !strcmp(av, bv) && a != b);
    }
    const char *name0;
    tw_http_headers_at(h, 0, &name0, NULL);
    size_t same = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name;
        tw_http_headers_at(h, i, &name, NULL);
        same += same_name(name, name0);
    }
    const char *last_value;
    tw_http_headers_at(h, n - 1, NULL, &last_value);
    CHECK(tw_http_headers_set(copy, name0, last_value) == 0);
    CHECK(tw_http_headers_count(copy) == n - same + 1);
    CHECK(!strcmp(tw_http_headers_get(copy, name0), last_value));
    CHECK(tw_http_headers_remove(copy, name0) == 1);
    CHECK(tw_http_headers_count(copy) == n - same);
    CHECK(tw_http_headers_add(copy, "bad name", "v") == -EINVAL);
    CHECK(tw_http_headers_add(copy, name0, "a\r\nb") == -EINVAL);
    CHECK(tw_http_headers_set(copy, "", "v") == -EINVAL);
    CHECK(tw_http_headers_count(copy) == n - same);
    CHECK(tw_http_headers_set(copy, name0, "") == 0);
    CHECK(tw_http_headers_count(copy) == n - same + 1);
    tw_http_headers_free(copy);

    /* has_token against a plain reading of the lists: each field's first
     * element, and the tokens that matter to framing. */
    static const char *const tokens[] = { "close", "chunked", "keep-alive", "upgrade" };
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        tw_http_headers_at(h, i, &name, &value);
        char first[64];
        size_t flen = strcspn(value, ",");
        while (flen && is_ows(value[flen - 1]))
            flen--;
        if (flen && flen < sizeof first) {
            memcpy(first, value, flen);
            first[flen] = '\0';
            CHECK(tw_http_headers_has_token(h, name, first) == list_has(h, name, first));
        }
    }
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
        CHECK(tw_http_headers_has_token(h, name0, tokens[i]) == list_has(h, name0, tokens[i]));
}

/* Whether the last element of the comma-separated lists of the fields
 * `name` is `token` (empty elements do not count). */
static int last_token_is(const tw_http_headers *h, const char *name, const char *token)
{
    int is = 0;
    size_t pos = 0;
    for (const char *v; (v = tw_http_headers_next(h, name, &pos));) {
        for (const char *e = v + strlen(v);; e--) {      /* elements, from the end */
            const char *a = e;
            while (a > v && a[-1] != ',')
                a--;
            const char *start = a, *b = e;
            while (a < b && is_ows(*a))
                a++;
            while (b > a && is_ows(b[-1]))
                b--;
            if (b > a) {
                is = (size_t)(b - a) == strlen(token) && !strncasecmp(a, token, b - a);
                break;
            }
            if (start == v)
                break;
            e = start;            /* then past its comma */
        }
    }
    return is;
}

static size_t count_named(const tw_http_headers *h, const char *name)
{
    size_t n = 0, pos = 0;
    while (tw_http_headers_next(h, name, &pos))
        n++;
    return n;
}

/* The framing of the head, checked against its fields. */
static void check_framing(run *r, const tw_http_head *head, const tw_http_headers *h)
{
    int response = r->cfg->type == TW_HTTP_RESPONSE_PARSER;
    /* No body follows a CONNECT request: what comes next is the tunnel's. */
    int no_body = response ? (head->status >= 100 && head->status < 200) ||
                                 head->status == 204 || head->status == 304
                           : !strcmp(head->method, "CONNECT");
    size_t ncl = count_named(h, "Content-Length");
    int te = count_named(h, "Transfer-Encoding") > 0;

    CHECK(head->body >= TW_HTTP_BODY_NONE && head->body <= TW_HTTP_BODY_UNTIL_CLOSE);
    if (no_body)
        CHECK(head->body == TW_HTTP_BODY_NONE);
    if (!response)
        CHECK(head->body != TW_HTTP_BODY_UNTIL_CLOSE);
    if (head->body == TW_HTTP_BODY_LENGTH)
        CHECK(head->content_length > 0 && ncl > 0 && !te);
    if (head->body == TW_HTTP_BODY_CHUNKED)
        CHECK(last_token_is(h, "Transfer-Encoding", "chunked"));
    if (te && !response && !no_body)
        CHECK(head->body == TW_HTTP_BODY_CHUNKED);
    if (te && !no_body)
        CHECK(head->body == TW_HTTP_BODY_CHUNKED || head->body == TW_HTTP_BODY_UNTIL_CLOSE);
    if (!ncl)
        CHECK(head->content_length == 0);
    if (ncl == 1) {
        const char *v = tw_http_headers_get(h, "Content-Length");
        size_t digits = strspn(v, "0123456789");
        if (digits && !v[digits] && digits < 19)
            CHECK(head->content_length == strtoull(v, NULL, 10));
    }
    if (!response && no_body)
        CHECK(head->upgrade);
    CHECK(head->keep_alive == 0 || head->keep_alive == 1);
    CHECK(head->upgrade == 0 || head->upgrade == 1);
    CHECK(head->expect_continue == 0 || head->expect_continue == 1);
}

static void on_begin(void *arg)
{
    run *r = arg;
    enter(r, "begin");
    CHECK(r->state == R_IDLE && !r->closed && !r->left);
    r->state = R_HEAD;
    r->messages++;
    r->start_seen = r->trailers_seen = 0;
    r->body_bytes = 0;
    r->begin_pos = r->consumed;
    text_add(&r->log, "<", 1);
    leave(r);
}

static void start_line(run *r, const char *s1, const char *s2, int status, int major, int minor)
{
    CHECK(r->state == R_HEAD && !r->start_seen);
    CHECK(s2 && major >= 0 && minor >= 0);
    r->start_seen = 1;
    free(r->method);
    free(r->target);
    free(r->reason);
    r->method = s1 ? strdup(s1) : NULL;
    r->target = s1 ? strdup(s2) : NULL;
    r->reason = s1 ? NULL : strdup(s2);
    r->status = status;
    r->major = major;
    r->minor = minor;
}

static void on_request_line(void *arg, const char *method, const char *target, int major,
                            int minor)
{
    run *r = arg;
    enter(r, "request_line");
    CHECK(r->cfg->type == TW_HTTP_REQUEST_PARSER);
    CHECK(method && *method);
    start_line(r, method, target, 0, major, minor);
    text *t = &r->log;
    text_add(t, "REQ ", 4);
    text_str(t, method);
    text_add(t, " ", 1);
    text_str(t, target);
    text_printf(t, " %d.%d|", major, minor);
    leave(r);
}

static void on_status_line(void *arg, int status, const char *reason, int major, int minor)
{
    run *r = arg;
    enter(r, "status_line");
    CHECK(r->cfg->type == TW_HTTP_RESPONSE_PARSER);
    CHECK(status >= 0 && status <= 999);
    start_line(r, NULL, reason, status, major, minor);
    text *t = &r->log;
    text_printf(t, "ST %d [", status);
    text_str(t, reason);
    text_printf(t, "] %d.%d|", major, minor);
    leave(r);
}

static const char *const body_names[] = { "NONE", "LENGTH", "CHUNKED", "UNTIL_CLOSE" };

static int on_headers_complete(void *arg, const tw_http_head *head, tw_http_headers *headers)
{
    run *r = arg;
    enter(r, "headers_complete");
    CHECK(r->state == R_HEAD && r->start_seen && head && headers);
    CHECK(head->version_major == r->major && head->version_minor == r->minor);
    if (r->cfg->type == TW_HTTP_REQUEST_PARSER) {
        CHECK(head->method && !strcmp(head->method, r->method));
        CHECK(head->target && !strcmp(head->target, r->target));
        const char *expect = tw_http_headers_get(headers, "Expect");
        CHECK(head->status == 0 && !head->reason);
        CHECK(head->expect_continue == (expect && !strcasecmp(expect, "100-continue")));
    } else {
        CHECK(!head->method && !head->target && !head->expect_continue);
        CHECK(head->status == r->status && head->reason && !strcmp(head->reason, r->reason));
    }
    check_framing(r, head, headers);
    if (r->exact)             /* up to the CR of the blank line: the LF is being fed */
        CHECK(r->consumed - r->begin_pos <= r->max_head);

    r->head = *head;
    r->head.method = r->head.target = r->head.reason = NULL;
    r->state = R_BODY;
    text_printf(&r->log, "H %s %llu ka=%d up=%d ec=%d n=", body_names[head->body],
                (unsigned long long)head->content_length, head->keep_alive, head->upgrade,
                head->expect_continue);
    check_fields(r, headers);
    tw_http_headers_free(headers);

    /* HEAD responses and tunnels only where a client would have them. */
    int action = (r->cfg->actions >> (2 * ((r->messages - 1) % 4))) & 3;
    r->action = TW_HTTP_READ_BODY;
    if (r->cfg->type == TW_HTTP_RESPONSE_PARSER) {
        if (action == 2)
            r->action = TW_HTTP_NO_BODY;
        else if (action == 3 && head->status >= 200 && head->status < 300)
            r->action = TW_HTTP_TUNNEL;
    }
    text_printf(&r->log, "R%d|", r->action);
    leave(r);
    return r->action;
}

static void on_body(void *arg, const char *data, size_t len)
{
    run *r = arg;
    enter(r, "body");
    CHECK(r->state == R_BODY && !r->trailers_seen);
    CHECK(r->action == TW_HTTP_READ_BODY && r->head.body != TW_HTTP_BODY_NONE);
    r->body_bytes += len;
    if (r->head.body == TW_HTTP_BODY_LENGTH)
        CHECK(r->body_bytes <= r->head.content_length);
    if (!r->in_body_text)
        text_add(&r->log, "B[", 2);
    r->in_body_text = 1;
    text_bytes(&r->log, data, len);
    leave(r);
}

static void on_trailers(void *arg, tw_http_headers *trailers)
{
    run *r = arg;
    enter(r, "trailers");
    CHECK(r->state == R_BODY && !r->trailers_seen && trailers);
    CHECK(r->action == TW_HTTP_READ_BODY && r->head.body == TW_HTTP_BODY_CHUNKED);
    CHECK(tw_http_headers_count(trailers) > 0);
    r->trailers_seen = 1;
    close_body_text(r);
    text_add(&r->log, "T", 1);
    check_fields(r, trailers);
    tw_http_headers_free(trailers);
    leave(r);
}

static void set_limits(run *r, size_t head, size_t fields)
{
    int rc = tw_http_parser_set_limits(r->p, head, fields);
    if (head > TW_HTTP_PARSE_MAX_HEAD_BYTES_CAP) {
        CHECK(rc == -EINVAL);
        return;
    }
    CHECK(rc == 0);
    if (head)
        r->max_head = head;
    if (fields)
        r->max_fields = fields;
}

static void on_complete(void *arg, int keep_alive)
{
    run *r = arg;
    enter(r, "message_complete");
    CHECK(r->state == R_BODY);
    CHECK(keep_alive == 0 || keep_alive == 1);
    CHECK(keep_alive <= r->head.keep_alive);
    if (r->action != TW_HTTP_READ_BODY || r->head.body == TW_HTTP_BODY_NONE)
        CHECK(r->body_bytes == 0);
    else if (r->head.body == TW_HTTP_BODY_LENGTH)
        CHECK(r->body_bytes == r->head.content_length);
    else if (r->head.body == TW_HTTP_BODY_UNTIL_CLOSE)
        CHECK(r->in_eof && !keep_alive);
    if (r->in_eof)
        CHECK(r->head.body == TW_HTTP_BODY_UNTIL_CLOSE && r->action == TW_HTTP_READ_BODY);
    close_body_text(r);
    text_printf(&r->log, ">%s", keep_alive ? "ka" : "close");
    r->state = R_IDLE;
    if (r->head.upgrade || r->action == TW_HTTP_TUNNEL)
        r->left = 1;
    else if (!keep_alive)
        r->closed = 1;
    if (r->cfg->relimit)
        set_limits(r, head_limits[(r->messages + r->cfg->seed) % 8],
                   field_limits[(r->messages + r->cfg->seed / 8) % 4]);
    leave(r);
}

static const tw_http_parser_callbacks callbacks = {
    .on_message_begin = on_begin,
    .on_request_line = on_request_line,
    .on_status_line = on_status_line,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_trailers = on_trailers,
    .on_message_complete = on_complete,
};

/* After -EPROTO: the failure, which stays, and where it may come from. */
static void record_failure(run *r, int from_eof)
{
    tw_failure *f = tw_http_parser_failure(r->p);
    CHECK(f);
    CHECK(tw_failure_domain(f) == TW_ERR_HTTP_PARSE);
    int code = tw_failure_code(f);
    if (from_eof)
        CHECK(code >= TW_HTTP_PARSE_EOF_IN_HEAD && code <= TW_HTTP_PARSE_EOF_IN_CHUNKED);
    else
        CHECK(code >= TW_HTTP_PARSE_BAD_START_LINE && code <= TW_HTTP_PARSE_AFTER_CLOSE);
    const char *msg = tw_failure_message(f);
    CHECK(msg && *msg);

    switch (code) {
    case TW_HTTP_PARSE_BAD_START_LINE:
        CHECK(r->state == R_IDLE || (r->state == R_HEAD && !r->start_seen));
        CHECK(!r->closed);
        break;
    case TW_HTTP_PARSE_BAD_HEADER:
    case TW_HTTP_PARSE_TOO_MANY_FIELDS:
        CHECK(r->state == R_HEAD ||
              (r->state == R_BODY && r->head.body == TW_HTTP_BODY_CHUNKED));
        break;
    case TW_HTTP_PARSE_HEAD_TOO_LARGE:
        CHECK(r->state == R_HEAD ||
              (r->state == R_BODY && r->head.body == TW_HTTP_BODY_CHUNKED));
        /* The byte being fed is one too many for the head that it is in. */
        if (r->exact && r->state == R_HEAD)
            CHECK(r->consumed - r->begin_pos >= r->max_head);
        break;
    case TW_HTTP_PARSE_BAD_LENGTH:
        CHECK(r->state == R_HEAD);
        break;
    case TW_HTTP_PARSE_BAD_CHUNK:
        CHECK(r->state == R_BODY && r->head.body == TW_HTTP_BODY_CHUNKED);
        break;
    case TW_HTTP_PARSE_AFTER_CLOSE:
        CHECK(r->closed && r->state == R_IDLE);
        break;
    case TW_HTTP_PARSE_EOF_IN_HEAD:
        CHECK(r->state == R_HEAD);
        break;
    case TW_HTTP_PARSE_EOF_IN_BODY:
        CHECK(r->state == R_BODY && r->head.body == TW_HTTP_BODY_LENGTH);
        break;
    case TW_HTTP_PARSE_EOF_IN_CHUNKED:
        CHECK(r->state == R_BODY && r->head.body == TW_HTTP_BODY_CHUNKED);
        break;
    }
    close_body_text(r);
    r->error = code;
    text_printf(&r->end, "!%s %d ", from_eof ? "EOF" : "FEED", code);
    text_str(&r->end, msg);

    /* It stays, and nothing more is taken. */
    unsigned before = r->callbacks;
    r->over = 1;
    CHECK(tw_http_parser_feed(r->p, "GET / HTTP/1.1\r\n\r\n", 18) == -EPROTO);
    CHECK(tw_http_parser_eof(r->p) == -EPROTO);
    CHECK(tw_http_parser_failure(r->p) == f);
    CHECK(r->callbacks == before);
}

/* Feeds one piece, resuming after pauses, until it is all taken or the
 * parser will take no more. */
static void feed_piece(run *r, const char *data, size_t len)
{
    size_t done = 0;
    unsigned spins = 0;
    while (!r->over) {
        unsigned before = r->callbacks;
        ssize_t n = tw_http_parser_feed(r->p, data + done, len - done);
        if (n == -EPROTO) {
            record_failure(r, 0);
            return;
        }
        CHECK(n >= 0 && (size_t)n <= len - done);
        CHECK(tw_http_parser_failure(r->p) == NULL);
        done += (size_t)n;
        r->consumed += (size_t)n;
        if (done == len)
            return;
        if (r->paused) {
            tw_http_parser_resume(r->p);
            r->paused = 0;
            /* Every resume must make progress soon: no callback loops. */
            CHECK(n > 0 || r->callbacks > before || ++spins < 3);
            continue;
        }
        /* Fewer bytes without a pause: only when a message left HTTP. */
        CHECK(r->left);
        unsigned seen = r->callbacks;
        CHECK(tw_http_parser_feed(r->p, data + done, len - done) == 0);
        CHECK(tw_http_parser_eof(r->p) == 0);
        CHECK(r->callbacks == seen);
        close_body_text(r);
        text_printf(&r->end, "!LEFT@%llu", (unsigned long long)r->consumed);
        r->over = 1;
    }
}

static void finish(run *r)
{
    if (r->over)
        return;
    if (r->paused) {
        CHECK(tw_http_parser_eof(r->p) == -EBUSY);
        tw_http_parser_resume(r->p);
        r->paused = 0;
    }
    enum rstate state = r->state;
    int body = r->head.body;
    r->in_eof = 1;
    int rc = tw_http_parser_eof(r->p);
    r->in_eof = 0;
    if (rc == -EPROTO) {
        record_failure(r, 1);
        return;
    }
    CHECK(rc == 0);
    CHECK(tw_http_parser_failure(r->p) == NULL);
    CHECK(state == R_IDLE || (state == R_BODY && body == TW_HTTP_BODY_UNTIL_CLOSE));
    CHECK(r->state == R_IDLE);
    close_body_text(r);
    text_add(&r->end, "!EOF", 4);

    /* The parser takes no more bytes after it. */
    unsigned before = r->callbacks;
    r->over = 1;
    if (r->paused) {
        tw_http_parser_resume(r->p);
        r->paused = 0;
    }
    CHECK(tw_http_parser_feed(r->p, "GET / HTTP/1.1\r\n\r\n", 18) == 0);
    CHECK(tw_http_parser_eof(r->p) == 0);
    CHECK(r->callbacks == before);
}

static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void run_stream(run *r, const config *cfg, const char *data, size_t len, int split)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->p = tw_http_parser_new(cfg->type, &callbacks, r);
    CHECK(r->p);
    r->max_head = TW_HTTP_PARSE_MAX_HEAD_BYTES;
    r->max_fields = TW_HTTP_PARSE_MAX_FIELDS;
    set_limits(r, cfg->head_limit, cfg->field_limit);
    CHECK(tw_http_parser_failure(r->p) == NULL);

    if (!split) {
        feed_piece(r, data, len);
    } else {
        static const size_t max_piece[4] = { 1, 8, 64, 512 };
        uint32_t state = 0x9e3779b9u * (cfg->seed + 1);
        r->pausing = 1;
        r->exact = cfg->split == 0;
        for (size_t done = 0; done < len && !r->over;) {
            size_t n = 1;
            if (cfg->split) {
                uint32_t x = next_random(&state);
                n = x % max_piece[cfg->split] + 1;
                if ((x >> 24) % 16 == 0)   /* now and then an empty feed */
                    feed_piece(r, data + done, 0);
            }
            if (n > len - done)
                n = len - done;
            feed_piece(r, data + done, n);
            done += n;
        }
    }
    finish(r);
}

static void run_free(run *r)
{
    tw_http_parser_free(r->p);
    free(r->method);
    free(r->target);
    free(r->reason);
    free(r->log.s);
    free(r->end.s);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
    if (size < 4)
        return 0;
    config cfg = config_of(input);
    const char *data = (const char *)input + 4;
    size_t len = size - 4;

    run a, b;
    run_stream(&a, &cfg, data, len, 0);
    run_stream(&b, &cfg, data, len, 1);
    const char *ta = a.log.s ? a.log.s : "", *tb = b.log.s ? b.log.s : "";
    const char *ea = a.end.s ? a.end.s : "", *eb = b.end.s ? b.end.s : "";
    if (strcmp(ta, tb) || strcmp(ea, eb)) {
        size_t i = 0;
        while (ta[i] && ta[i] == tb[i])
            i++;
        fprintf(stderr, "transcripts differ at %zu (split mode %d)\n"
                        "one piece: %s%s\nsplit:     %s%s\n", i, cfg.split, ta, ea, tb, eb);
        abort();
    }
    if (getenv("HTTP_PARSE_FUZZ_PRINT"))   /* to read what an input does */
        fprintf(stderr, "%s%s\n", ta, ea);
    run_free(&a);
    run_free(&b);
    return 0;
}
