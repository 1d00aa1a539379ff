/* twine: the HTTP/1.1 message parser, over http-parser (the only file that
 * includes it, so that its successor can replace it here alone).
 *
 * http-parser does the byte-level work. On top of it this file gathers the
 * start line and the header fields, which arrive in fragments, derives what
 * the head says about the body and the connection, and enforces twine's own
 * limits. To count the bytes of each head exactly, the parser is paused
 * internally wherever a head or trailer block starts or ends, so that one
 * http_parser_execute call never spans two blocks.
 *
 * The result must not depend on where the input was cut. http-parser hands
 * over a partial field name at the end of each fragment, so what a field
 * name ends (the start line, the field before it) is acted on only once the
 * name is whole: when its ':' lies inside the bytes being executed. */
#include "internal.h"
#include "http_parse.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

/* A growable NUL-terminated string, for what arrives in fragments. */
typedef struct tw_http_text {
    char *s;
    size_t len, cap;
} tw_http_text;

/* Where in a message the parser is. */
enum phase {
    PHASE_IDLE,       /* between messages */
    PHASE_HEAD,       /* start line and header fields */
    PHASE_BODY,
    PHASE_TRAILERS
};

/* The last fragment seen of a header field. */
enum last_fragment { LAST_NONE, LAST_NAME, LAST_VALUE };

struct tw_http_parser {
    http_parser hp;
    tw_http_parser_type type;
    const tw_http_parser_callbacks *cb;
    void *arg;
    size_t max_head_bytes, max_fields;

    enum phase phase;
    uint64_t offset;             /* bytes consumed since the first */
    size_t head_bytes;           /* of the head or trailer block being read */
    int block_done;              /* the execute call under way ended a block */
    int began;                   /* the execute call under way began a message */
    int executing;               /* inside http_parser_execute */
    const char *exec_end;        /* the end of the bytes being executed */

    int start_line_done;
    tw_http_text line;           /* the target or the reason */
    tw_http_text name, value;    /* the field being read */
    enum last_fragment last;
    /* A whole field whose successor's name is not whole yet. */
    tw_http_text pend_name, pend_value;
    int pending;
    tw_http_headers *fields;     /* the head's or the trailers' fields so far */

    tw_http_body body;
    uint64_t content_length, body_seen;

    int paused;                  /* by the caller */
    int closed;                  /* the last message ended the connection */
    int stopped;                 /* left HTTP, or reached the end of stream */
    tw_failure *failure;
};

/* Text -------------------------------------------------------------------------- */

static void text_append(tw_http_text *t, const char *at, size_t len)
{
    size_t need = t->len + len + 1;
    if (need > t->cap) {
        t->cap = need > 2 * t->cap ? need : 2 * t->cap;
        t->s = tw_xrealloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, at, len);
    t->len += len;
    t->s[t->len] = '\0';
}

static const char *text_str(const tw_http_text *t)
{
    return t->len ? t->s : "";
}

static void text_clear(tw_http_text *t)
{
    t->len = 0;
}

static void text_swap(tw_http_text *a, tw_http_text *b)
{
    tw_http_text t = *a;
    *a = *b;
    *b = t;
}

static int is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Control characters other than HTAB, which no field value or reason
 * phrase may hold (RFC 9110 5.5, RFC 9112 4). http-parser lets some
 * through, NUL among them, which would cut the C string short. Every
 * received field passes here, so eight bytes are tested at a time: the
 * expressions flag a word holding a byte below 0x20 or equal to 0x7f (and
 * never one without), whose bytes are then looked at one by one, since
 * HTAB is allowed. */
static int word_may_hold_ctl(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t del = w ^ (0x7f * ones);
    return ((((w - 0x20 * ones) & ~w) | ((del - ones) & ~del)) & highs) != 0;
}

static int bytes_hold_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_ctl((unsigned char)s[i]))
            return 1;
    return 0;
}

static int has_ctl(const tw_http_text *t)
{
    uint64_t w;
    if (t->len < 8) {                 /* padded with a letter */
        w = 0x4141414141414141u;
        memcpy(&w, t->s, t->len);
        return word_may_hold_ctl(w) && bytes_hold_ctl(t->s, t->len);
    }
    for (size_t i = 0;; i += 8) {
        if (i + 8 > t->len)
            i = t->len - 8;           /* the last word overlaps the one before */
        memcpy(&w, t->s + i, 8);
        if (word_may_hold_ctl(w) && bytes_hold_ctl(t->s + i, 8))
            return 1;
        if (i + 8 == t->len)
            return 0;
    }
}

/* Failures ----------------------------------------------------------------------- */

static int fail(tw_http_parser *p, int code, const char *fmt, ...) TW_PRINTF(3, 4);

/* Records the first failure; returns -1, which stops http-parser when
 * returned from a callback. */
static int fail(tw_http_parser *p, int code, const char *fmt, ...)
{
    if (!p->failure) {
        va_list ap;
        va_start(ap, fmt);
        p->failure = tw_failure_newv(TW_ERR_HTTP_PARSE, code, NULL, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int error_code(const tw_http_parser *p, enum http_errno e)
{
    if (p->phase == PHASE_BODY)      /* only chunked framing can go wrong there */
        return TW_HTTP_PARSE_BAD_CHUNK;
    if (e == HPE_HEADER_OVERFLOW)
        return TW_HTTP_PARSE_HEAD_TOO_LARGE;
    if (p->phase == PHASE_TRAILERS)  /* a trailer's Content-Length frames nothing */
        return TW_HTTP_PARSE_BAD_HEADER;
    if (e == HPE_INVALID_CONTENT_LENGTH || e == HPE_UNEXPECTED_CONTENT_LENGTH ||
        e == HPE_INVALID_TRANSFER_ENCODING)
        return TW_HTTP_PARSE_BAD_LENGTH;
    /* No callback marks the end of the start line: a bad first field name is
     * only known by its error. */
    if (e == HPE_INVALID_HEADER_TOKEN || p->start_line_done)
        return TW_HTTP_PARSE_BAD_HEADER;
    return TW_HTTP_PARSE_BAD_START_LINE;
}

static const char *error_place(const tw_http_parser *p, int code)
{
    if (code == TW_HTTP_PARSE_BAD_CHUNK)
        return "chunked body";
    if (code == TW_HTTP_PARSE_BAD_START_LINE)
        return p->type == TW_HTTP_REQUEST_PARSER ? "request line" : "status line";
    return p->phase == PHASE_TRAILERS ? "trailers" : "header block";
}

/* Header fields ----------------------------------------------------------------- */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Adds a whole field to p->fields (and empties name and value): the value
 * without the whitespace around it (http-parser keeps the trailing one, and
 * an obs-fold's). */
static int commit_field(tw_http_parser *p, tw_http_text *name, tw_http_text *value)
{
    const char *kind = p->phase == PHASE_TRAILERS ? "trailer" : "header";
    while (value->len && is_ows(value->s[value->len - 1]))
        value->s[--value->len] = '\0';
    const char *v = text_str(value);
    while (is_ows(*v))
        v++;

    if (tw_http_headers_count(p->fields) >= p->max_fields)
        return fail(p, TW_HTTP_PARSE_TOO_MANY_FIELDS, "more than %zu %s fields",
                    p->max_fields, kind);
    if (has_ctl(value))
        return fail(p, TW_HTTP_PARSE_BAD_HEADER,
                    "control character in the value of %s field \"%.64s\"", kind,
                    text_str(name));
    if (tw_http_headers_add(p->fields, text_str(name), v) < 0)
        return fail(p, TW_HTTP_PARSE_BAD_HEADER, "invalid %s field name \"%.64s\"",
                    kind, text_str(name));
    text_clear(name);
    text_clear(value);
    return 0;
}

static int commit_pending(tw_http_parser *p)
{
    if (!p->pending)
        return 0;
    p->pending = 0;
    return commit_field(p, &p->pend_name, &p->pend_value);
}

/* Commits what the end of a block leaves: the pending field, then the
 * last one. */
static int commit_remaining(tw_http_parser *p)
{
    if (commit_pending(p) < 0)
        return -1;
    if (p->last != LAST_NONE && commit_field(p, &p->name, &p->value) < 0)
        return -1;
    p->last = LAST_NONE;
    return 0;
}

/* The start line ends where the first whole field name or the end of the
 * head begins. */
static int finish_start_line(tw_http_parser *p)
{
    if (p->start_line_done)
        return 0;
    p->start_line_done = 1;
    if (p->type == TW_HTTP_REQUEST_PARSER) {
        /* http-parser lets HTAB and form feed into a target. */
        if (has_ctl(&p->line) || (p->line.len && memchr(p->line.s, '\t', p->line.len)))
            return fail(p, TW_HTTP_PARSE_BAD_START_LINE,
                        "control character in the request target");
        if (p->cb->on_request_line)
            p->cb->on_request_line(p->arg, http_method_str((enum http_method)p->hp.method),
                                   text_str(&p->line), p->hp.http_major, p->hp.http_minor);
        return 0;
    }
    if (has_ctl(&p->line))
        return fail(p, TW_HTTP_PARSE_BAD_START_LINE, "control character in the reason phrase");
    if (p->cb->on_status_line)
        p->cb->on_status_line(p->arg, (int)p->hp.status_code, text_str(&p->line),
                              p->hp.http_major, p->hp.http_minor);
    return 0;
}

/* Internal pause: makes http_parser_execute return right after this
 * callback; the feed loop resumes it. */
static void end_block(tw_http_parser *p)
{
    p->block_done = 1;
    http_parser_pause(&p->hp, 1);
}

/* http-parser callbacks ------------------------------------------------------- */

static tw_http_parser *parser_of(http_parser *hp)
{
    return hp->data;
}

static int on_message_begin(http_parser *hp)
{
    tw_http_parser *p = parser_of(hp);
    p->phase = PHASE_HEAD;
    p->start_line_done = 0;
    text_clear(&p->line);
    text_clear(&p->name);
    text_clear(&p->value);
    text_clear(&p->pend_name);
    text_clear(&p->pend_value);
    p->pending = 0;
    p->last = LAST_NONE;
    /* Stops here, so that the line ends before it do not count as head. */
    p->began = 1;
    http_parser_pause(hp, 1);
    tw_http_headers_free(p->fields);
    p->fields = tw_http_headers_new();
    p->body = TW_HTTP_BODY_NONE;
    p->content_length = p->body_seen = 0;
    if (p->cb->on_message_begin)
        p->cb->on_message_begin(p->arg);
    return 0;
}

/* The request target or the reason phrase, in fragments. */
static int on_start_line_text(http_parser *hp, const char *at, size_t len)
{
    text_append(&parser_of(hp)->line, at, len);
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    tw_http_parser *p = parser_of(hp);
    if (p->last == LAST_VALUE) {      /* a new field: the one before is whole */
        text_swap(&p->name, &p->pend_name);
        text_swap(&p->value, &p->pend_value);
        p->pending = 1;
    }
    text_append(&p->name, at, len);
    p->last = LAST_NAME;
    if (at + len == p->exec_end)      /* maybe only part of the name */
        return 0;
    if (finish_start_line(p) < 0)
        return -1;
    return commit_pending(p);
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    tw_http_parser *p = parser_of(hp);
    text_append(&p->value, at, len);
    p->last = LAST_VALUE;
    return 0;
}

static int no_body_status(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* What the head says about the body (RFC 9112, section 6.3). */
static int frame_body(tw_http_parser *p, tw_http_head *head)
{
    const char *te = tw_http_headers_get(p->fields, "Transfer-Encoding");
    int response = p->type == TW_HTTP_RESPONSE_PARSER;

    if (p->hp.flags & F_CONTENTLENGTH)
        head->content_length = p->hp.content_length;
    if (response ? no_body_status(head->status) : p->hp.method == HTTP_CONNECT)
        head->body = TW_HTTP_BODY_NONE;   /* after CONNECT, the tunnel's bytes */
    else if (p->hp.flags & F_CHUNKED)
        head->body = TW_HTTP_BODY_CHUNKED;
    else if (te && !response)
        return fail(p, TW_HTTP_PARSE_BAD_LENGTH,
                    "request with Transfer-Encoding \"%.64s\" not ending in chunked", te);
    else if (te)
        head->body = TW_HTTP_BODY_UNTIL_CLOSE;
    else if (p->hp.flags & F_CONTENTLENGTH)
        head->body = head->content_length ? TW_HTTP_BODY_LENGTH : TW_HTTP_BODY_NONE;
    else
        head->body = response ? TW_HTTP_BODY_UNTIL_CLOSE : TW_HTTP_BODY_NONE;
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    tw_http_parser *p = parser_of(hp);
    if (finish_start_line(p) < 0 || commit_remaining(p) < 0)
        return -1;

    tw_http_head head = {
        .version_major = hp->http_major,
        .version_minor = hp->http_minor,
        .upgrade = hp->upgrade,
    };
    if (p->type == TW_HTTP_REQUEST_PARSER) {
        const char *expect = tw_http_headers_get(p->fields, "Expect");
        head.method = http_method_str((enum http_method)hp->method);
        head.target = text_str(&p->line);
        head.expect_continue = expect && !strcasecmp(expect, "100-continue");
    } else {
        head.status = (int)hp->status_code;
        head.reason = text_str(&p->line);
    }
    /* As http_should_keep_alive decides, before it knows whether the body
     * runs to the close. */
    if (hp->http_major > 0 && hp->http_minor > 0)
        head.keep_alive = !(hp->flags & F_CONNECTION_CLOSE);
    else
        head.keep_alive = !!(hp->flags & F_CONNECTION_KEEP_ALIVE);
    if (frame_body(p, &head) < 0)
        return -1;

    tw_http_headers *fields = p->fields;
    p->fields = NULL;
    p->phase = PHASE_BODY;
    p->body = head.body;
    p->content_length = head.content_length;
    end_block(p);

    int ret = TW_HTTP_READ_BODY;
    if (p->cb->on_headers_complete)
        ret = p->cb->on_headers_complete(p->arg, &head, fields);
    else
        tw_http_headers_free(fields);
    if (ret == TW_HTTP_TUNNEL)
        return 2;
    if (ret == TW_HTTP_NO_BODY || p->body == TW_HTTP_BODY_NONE) {
        p->body = TW_HTTP_BODY_NONE;
        return 1;
    }
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    tw_http_parser *p = parser_of(hp);
    p->body_seen += len;
    if (p->cb->on_body)
        p->cb->on_body(p->arg, at, len);
    return 0;
}

static int on_chunk_header(http_parser *hp)
{
    tw_http_parser *p = parser_of(hp);
    if (hp->content_length == 0) {     /* the last chunk: trailers follow */
        p->phase = PHASE_TRAILERS;
        p->fields = tw_http_headers_new();
        end_block(p);
    }
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    tw_http_parser *p = parser_of(hp);
    if (p->phase == PHASE_TRAILERS) {
        if (commit_remaining(p) < 0)
            return -1;
        tw_http_headers *trailers = p->fields;
        p->fields = NULL;
        if (tw_http_headers_count(trailers) && p->cb->on_trailers)
            p->cb->on_trailers(p->arg, trailers);
        else
            tw_http_headers_free(trailers);
    }

    int keep_alive = http_should_keep_alive(hp);
    p->phase = PHASE_IDLE;
    p->start_line_done = 0;
    if (hp->upgrade)
        p->stopped = 1;
    else if (!keep_alive)
        p->closed = 1;
    end_block(p);
    if (p->cb->on_message_complete)
        p->cb->on_message_complete(p->arg, keep_alive);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_start_line_text,
    .on_status = on_start_line_text,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

/* The interface ------------------------------------------------------------------- */

tw_http_parser *tw_http_parser_new(tw_http_parser_type type, const tw_http_parser_callbacks *cb,
                                   void *arg)
{
    tw_http_parser *p = tw_xcalloc(1, sizeof *p);
    http_parser_init(&p->hp, type == TW_HTTP_REQUEST_PARSER ? HTTP_REQUEST : HTTP_RESPONSE);
    p->hp.data = p;
    p->type = type;
    p->cb = cb;
    p->arg = arg;
    p->max_head_bytes = TW_HTTP_PARSE_MAX_HEAD_BYTES;
    p->max_fields = TW_HTTP_PARSE_MAX_FIELDS;
    return p;
}

void tw_http_parser_free(tw_http_parser *p)
{
    if (!p)
        return;
    free(p->line.s);
    free(p->name.s);
    free(p->value.s);
    free(p->pend_name.s);
    free(p->pend_value.s);
    tw_http_headers_free(p->fields);
    tw_failure_unref(p->failure);
    free(p);
}

int tw_http_parser_set_limits(tw_http_parser *p, size_t max_head_bytes, size_t max_fields)
{
    if (max_head_bytes > TW_HTTP_PARSE_MAX_HEAD_BYTES_CAP)
        return -EINVAL;
    if (max_head_bytes)
        p->max_head_bytes = max_head_bytes;
    if (max_fields)
        p->max_fields = max_fields;
    return 0;
}

/* Runs http-parser on at most the bytes the current block may still use. */
static ssize_t execute(tw_http_parser *p, const char *data, size_t len)
{
    /* Between messages http-parser skips line ends; a head counts from its
     * first byte, where on_message_begin stops the call. */
    int limited = p->phase == PHASE_HEAD || p->phase == PHASE_TRAILERS;
    /* One byte past the limit: the LF that may end a head of exactly the
     * limit (which set_limits may have lowered under what was read). */
    size_t room = p->head_bytes < p->max_head_bytes ? p->max_head_bytes - p->head_bytes + 1 : 1;
    if (limited && len > room)
        len = room;

    p->exec_end = data + len;
    p->executing = 1;
    size_t n = http_parser_execute(&p->hp, &settings, data, len);
    p->executing = 0;
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (e == HPE_PAUSED) {
        http_parser_pause(&p->hp, 0);
    } else if (e != HPE_OK) {
        int code = error_code(p, e);
        fail(p, code, "%s (%s) in the %s at offset %" PRIu64, http_errno_description(e),
             http_errno_name(e), error_place(p, code), p->offset + n);
        return -EPROTO;
    }
    p->offset += n;

    if (p->began) {
        p->head_bytes = 1;            /* the byte that began it */
    } else if (limited) {
        if (p->block_done) {          /* ended within room: within the limit */
            p->head_bytes = 0;
        } else if ((p->head_bytes += n) > p->max_head_bytes) {
            fail(p, TW_HTTP_PARSE_HEAD_TOO_LARGE, "%s larger than %zu bytes",
                 p->phase == PHASE_TRAILERS ? "trailer block" : "header block",
                 p->max_head_bytes);
            return -EPROTO;
        }
    }
    p->block_done = p->began = 0;
    return (ssize_t)n;
}

ssize_t tw_http_parser_feed(tw_http_parser *p, const char *data, size_t len)
{
    size_t done = 0;
    if (p->failure)
        return -EPROTO;
    while (done < len && !p->paused && !p->stopped) {
        if (p->closed) {
            /* As http-parser does, stray line ends are let through. */
            if (data[done] != '\r' && data[done] != '\n') {
                fail(p, TW_HTTP_PARSE_AFTER_CLOSE,
                     "data after the last message of the connection at offset %" PRIu64,
                     p->offset);
                return -EPROTO;
            }
            done++;
            p->offset++;
            continue;
        }
        ssize_t n = execute(p, data + done, len - done);
        if (n < 0)
            return n;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

int tw_http_parser_eof(tw_http_parser *p)
{
    if (p->failure)
        return -EPROTO;
    if (p->paused)
        return -EBUSY;
    if (p->stopped)
        return 0;
    p->stopped = 1;

    switch (p->phase) {
    case PHASE_IDLE:
        return 0;
    case PHASE_HEAD:
        fail(p, TW_HTTP_PARSE_EOF_IN_HEAD, "stream ended inside a message head at offset %" PRIu64,
             p->offset);
        return -EPROTO;
    case PHASE_TRAILERS:
        fail(p, TW_HTTP_PARSE_EOF_IN_CHUNKED, "stream ended inside the trailers at offset %" PRIu64,
             p->offset);
        return -EPROTO;
    case PHASE_BODY:
        break;
    }
    switch (p->body) {
    case TW_HTTP_BODY_UNTIL_CLOSE:
        /* http-parser completes the message on a zero-length execute. */
        http_parser_execute(&p->hp, &settings, NULL, 0);
        http_parser_pause(&p->hp, 0);
        return 0;
    case TW_HTTP_BODY_LENGTH:
        fail(p, TW_HTTP_PARSE_EOF_IN_BODY,
             "stream ended after %" PRIu64 " of %" PRIu64 " body bytes", p->body_seen,
             p->content_length);
        return -EPROTO;
    case TW_HTTP_BODY_CHUNKED:
        fail(p, TW_HTTP_PARSE_EOF_IN_CHUNKED,
             "stream ended inside a chunked body after %" PRIu64 " bytes of data at offset %" PRIu64,
             p->body_seen, p->offset);
        return -EPROTO;
    case TW_HTTP_BODY_NONE:
        break;
    }
    return 0;
}

void tw_http_parser_pause(tw_http_parser *p)
{
    p->paused = 1;
    if (!p->failure)             /* http-parser may not be paused once in error */
        http_parser_pause(&p->hp, 1);
}

void tw_http_parser_resume(tw_http_parser *p)
{
    p->paused = 0;
    /* From a callback, http-parser's own pause may be the internal one that
     * bounds a head: execute lifts it once the call has returned. */
    if (!p->failure && !p->executing)
        http_parser_pause(&p->hp, 0);
}

tw_failure *tw_http_parser_failure(const tw_http_parser *p)
{
    return p->failure;
}
