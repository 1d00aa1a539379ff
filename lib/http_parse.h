/* twine: the HTTP/1.1 message parser that the client and the server share.
 *
 * A parser reads one direction of one connection: requests (a server) or
 * responses (a client), any number of messages in sequence (keep-alive and
 * pipelining). The caller feeds the bytes in fragments of any size, down to
 * one byte; the parser calls back as it recognises each part of a message:
 *
 *   on_message_begin
 *   on_request_line or on_status_line
 *   on_headers_complete            the head: the header list and what it says
 *   on_body ...                    the body, de-chunked, in pieces
 *   on_trailers                    a chunked body's trailer fields, if any
 *   on_message_complete
 *
 * Every 1xx response is a message of its own, without a body (a client skips
 * it and waits for the final answer). Responses to HEAD requests are told
 * apart by the on_headers_complete return value; 1xx, 204 and 304 responses
 * never have a body, whatever their headers say.
 *
 * Errors are TW_ERR_HTTP_PARSE failures with the codes below. Nothing in this
 * interface shows the library underneath (only http_parse.c includes it). */
#ifndef TWINE_HTTP_PARSE_H
#define TWINE_HTTP_PARSE_H

#include <stdint.h>
#include <sys/types.h>
#include <twine/failure.h>
#include <twine/http.h>

typedef struct tw_http_parser tw_http_parser;

typedef enum tw_http_parser_type {
    TW_HTTP_REQUEST_PARSER,
    TW_HTTP_RESPONSE_PARSER
} tw_http_parser_type;

/* The codes of the parser's TW_ERR_HTTP_PARSE failures. The message says
 * what and where, e.g. "invalid HTTP status code (HPE_INVALID_STATUS) in the
 * status line at offset 9" (offsets count from the connection's first byte). */
enum {
    TW_HTTP_PARSE_BAD_START_LINE = 1, /* request or status line */
    TW_HTTP_PARSE_BAD_HEADER,         /* a header or trailer field */
    TW_HTTP_PARSE_BAD_LENGTH,         /* Content-Length / Transfer-Encoding cannot frame the body */
    TW_HTTP_PARSE_BAD_CHUNK,          /* a chunk-size line */
    TW_HTTP_PARSE_HEAD_TOO_LARGE,     /* header block (or trailers) over max_head_bytes */
    TW_HTTP_PARSE_TOO_MANY_FIELDS,    /* more than max_fields header (or trailer) fields */
    TW_HTTP_PARSE_AFTER_CLOSE,        /* bytes after a message that ends the connection */
    /* tw_http_parser_eof: the stream ended... */
    TW_HTTP_PARSE_EOF_IN_HEAD,        /* ...inside a start line or header block */
    TW_HTTP_PARSE_EOF_IN_BODY,        /* ...before Content-Length bytes of body */
    TW_HTTP_PARSE_EOF_IN_CHUNKED,     /* ...inside a chunked body or its trailers */
};

/* Defaults of the limits (tw_http_parser_set_limits). */
#define TW_HTTP_PARSE_MAX_HEAD_BYTES (64 * 1024)
#define TW_HTTP_PARSE_MAX_FIELDS 100
/* The largest limit: the underlying parser stops at 80 KiB, counting two
 * bytes more than twine does. */
#define TW_HTTP_PARSE_MAX_HEAD_BYTES_CAP (80 * 1024 - 2)

/* How a message's body is delimited, as its head says. */
typedef enum tw_http_body {
    TW_HTTP_BODY_NONE,        /* requests without length; 1xx, 204, 304 */
    TW_HTTP_BODY_LENGTH,      /* content_length bytes (> 0) */
    TW_HTTP_BODY_CHUNKED,
    TW_HTTP_BODY_UNTIL_CLOSE  /* responses: every byte up to the end of stream */
} tw_http_body;

/* The head of a message, as on_headers_complete sees it. Strings are borrowed
 * until on_message_complete returns. */
typedef struct tw_http_head {
    int version_major, version_minor;
    const char *method;       /* requests: "GET"; responses: NULL */
    const char *target;       /* requests: "/a?b" exactly as sent; responses: NULL */
    int status;               /* responses: 200; requests: 0 */
    const char *reason;       /* responses: exactly as sent, maybe ""; requests: NULL */
    tw_http_body body;
    uint64_t content_length;  /* the Content-Length value when there is one, else 0 */
    /* The version and Connection header allow another message after this one
     * (a body delimited by the close still ends the connection: see
     * on_message_complete for the final word). */
    int keep_alive;
    /* The connection leaves HTTP after this message: a CONNECT request, or
     * Upgrade with "Connection: upgrade" on a request or a 101 response. */
    int upgrade;
    int expect_continue;      /* requests: "Expect: 100-continue" */
} tw_http_head;

/* What on_headers_complete returns. */
enum {
    TW_HTTP_READ_BODY = 0,    /* read the body the head announces */
    TW_HTTP_NO_BODY = 1,      /* none follows, whatever the head says: a HEAD response */
    TW_HTTP_TUNNEL = 2        /* none follows, and the connection leaves HTTP:
                               * a 2xx response to CONNECT */
};

/* Every callback is optional and gets the arg given to tw_http_parser_new.
 * Pointers to bytes are borrowed for the call unless said otherwise. A
 * callback may pause the parser (which also stops it after a message the
 * caller wants to act on before reading more), but must not free it. */
typedef struct tw_http_parser_callbacks {
    void (*on_message_begin)(void *arg);
    /* Strings borrowed until on_message_complete returns. */
    void (*on_request_line)(void *arg, const char *method, const char *target,
                            int version_major, int version_minor);
    void (*on_status_line)(void *arg, int status, const char *reason,
                           int version_major, int version_minor);
    /* Hands over `headers`: the callback owns them (without the callback the
     * parser frees them). Returns TW_HTTP_READ_BODY, TW_HTTP_NO_BODY or
     * TW_HTTP_TUNNEL. */
    int  (*on_headers_complete)(void *arg, const tw_http_head *head, tw_http_headers *headers);
    void (*on_body)(void *arg, const char *data, size_t len);
    /* Called only when there are trailer fields; hands them over like
     * on_headers_complete. */
    void (*on_trailers)(void *arg, tw_http_headers *trailers);
    /* keep_alive: another message may follow on this connection. */
    void (*on_message_complete)(void *arg, int keep_alive);
} tw_http_parser_callbacks;

/* A new parser owned by the caller. cb is borrowed and must outlive it. */
tw_http_parser *tw_http_parser_new(tw_http_parser_type type, const tw_http_parser_callbacks *cb,
                                   void *arg);
/* Frees p and anything it holds; NULL is allowed. Not from its own callbacks. */
void tw_http_parser_free(tw_http_parser *p);

/* Limits for every head (and trailer block) from now on; 0 leaves one as it
 * is. max_head_bytes counts the start line and header lines up to the CR of
 * the blank line. Returns -EINVAL above TW_HTTP_PARSE_MAX_HEAD_BYTES_CAP. */
int tw_http_parser_set_limits(tw_http_parser *p, size_t max_head_bytes, size_t max_fields);

/* Parses len bytes at data (borrowed for the call). Returns how many were
 * consumed: all of them, or fewer when a callback paused the parser or a
 * message left HTTP (head.upgrade, TW_HTTP_TUNNEL): the caller keeps the
 * rest, to feed again after tw_http_parser_resume, or to hand to the new
 * protocol. Once a message has left HTTP, feed consumes nothing more.
 * Returns -EPROTO on a parse error (then and from then on: see
 * tw_http_parser_failure); what came before the error was delivered. */
ssize_t tw_http_parser_feed(tw_http_parser *p, const char *data, size_t len);

/* The end of the stream: completes a body delimited by the close. Returns 0,
 * -EPROTO when the stream ended inside a message (the TW_HTTP_PARSE_EOF_IN_*
 * failure; what was received had been delivered), or -EBUSY while paused
 * (resume, feed what was kept, then call it again). The parser takes no more
 * bytes after it. */
int tw_http_parser_eof(tw_http_parser *p);

/* Flow control. From a callback, pause stops the parser right after it; feed
 * then returns what it consumed so far. Two pairs of callbacks come from one
 * step of the parser underneath, so the second follows even after a pause in
 * the first: on_headers_complete after the start line of a head without
 * fields, and on_message_complete after on_trailers. Between feeds pause
 * makes the next feed consume nothing. Resume lets the next feed go on. */
void tw_http_parser_pause(tw_http_parser *p);
void tw_http_parser_resume(tw_http_parser *p);

/* The failure behind -EPROTO (borrowed from p; tw_failure_ref to keep it),
 * or NULL. */
tw_failure *tw_http_parser_failure(const tw_http_parser *p);

#endif
