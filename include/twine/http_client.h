/* twine: the HTTP/1.1 client.
 *
 * Three levels, each built on the one below (Twisted's getPage, Agent with
 * RedirectAgent and ContentDecoderAgent, and readBody):
 *
 *   tw_get_page          one call: follows redirects, reads and decodes the
 *                        body, fires with a tw_http_response for a 2xx answer
 *   tw_http_agent        requests over a pool of kept-alive connections; fires
 *                        when the response head arrives and streams the body
 *   tw_http_client_response_deliver_body / tw_read_body    the body itself
 *
 * Only "http" and "https" URLs are fetched; a URL with user information
 * ("http://user:pw@host/") is refused: send an Authorization header instead.
 * Every Deferred here is the caller's reference and fires from the loop. */
#ifndef TWINE_HTTP_CLIENT_H
#define TWINE_HTTP_CLIENT_H

#include <twine/common.h>
#include <twine/deferred.h>
#include <twine/http.h>

TW_BEGIN_DECLS

/* Failures ------------------------------------------------------------------------- */

/* The client's failures, by domain:
 *   TW_ERR_HTTP          the server answered with an error: a 4xx or 5xx, or a
 *                        3xx that was not followed (see tw_page_options);
 *                        code: the status, message "404 Not Found"
 *   TW_ERR_HTTP_PARSE    the response is malformed or truncated
 *   TW_ERR_HTTP_BODY     code EFBIG: the body is larger than max_body;
 *                        code EBADMSG: its content coding does not decode
 *   TW_ERR_CONNECTION_LOST  the connection went before the response ended
 *   TW_ERR_SYS, TW_ERR_DNS, TW_ERR_TLS, TW_ERR_TIMEOUT  connecting, and the
 *                        total timeout; TW_ERR_CANCELLED: cancelled
 *   TW_ERR_USAGE         a bad URL, method or argument
 * A failure of tw_get_page, tw_download_page or tw_read_body that happens
 * once a response head has arrived carries that response, with the body
 * received so far: see tw_http_failure_response. */
TW_API extern const char TW_ERR_HTTP_BODY[];

/* The response a client failure carries (status, reason, headers, the body
 * received so far, the URL), looked up in f and its causes; NULL when it has
 * none (it failed before a response head arrived). Borrowed from f. */
TW_API const tw_http_response *tw_http_failure_response(const tw_failure *f);

/* The agent and its connection pool -------------------------------------------------- */

typedef struct tw_http_agent tw_http_agent;

typedef struct tw_http_agent_options {     /* zero-initialised means the defaults */
    /* Idle connections kept per scheme, host and port (0: 2, as Twisted's
     * HTTPConnectionPool.maxPersistentPerHost; -1: none). Returning one more
     * closes the one idle the longest. */
    int max_idle_per_host;
    double idle_timeout;         /* seconds an idle connection is kept; 0: 240 */
    int no_keep_alive;           /* 1: one request per connection ("Connection: close") */
    double connect_timeout;      /* seconds, the name lookup included; 0: 30 */
    const char *user_agent;      /* NULL: "twine/VERSION"; "": no User-Agent field */
    const char *ca_file;         /* https: trusted CAs (NULL: the system's) */
    int insecure;                /* https: 1 skips certificate verification */
} tw_http_agent_options;

/* A new agent owned by the caller; opt (NULL: the defaults) and its strings
 * are copied. */
TW_API tw_http_agent *tw_http_agent_new(const tw_http_agent_options *opt);

/* Closes the agent and frees it: idle connections are closed; requests in
 * flight are aborted, their Deferreds errback TW_ERR_CANCELLED, and bodies
 * being delivered end with TW_ERR_CANCELLED. Responses the caller holds stay
 * valid until freed. The Deferred fires with NULL once every connection of
 * the agent has closed. `a` must not be used afterwards. */
TW_API tw_deferred *tw_http_agent_close(tw_http_agent *a);
/* tw_http_agent_close without the Deferred; NULL is allowed. */
TW_API void tw_http_agent_free(tw_http_agent *a);

/* The process-wide agent that tw_get_page uses when options->agent is NULL,
 * with the default options. Created on first use (borrowed). A shutdown
 * trigger (TW_SHUTDOWN_BEFORE, which waits until its connections have
 * closed) closes it when the reactor stops, as tw_http_agent_close may; the
 * next use makes a new one. */
TW_API tw_http_agent *tw_http_default_agent(void);

/* How many idle connections the pool holds, over every host. */
TW_API size_t tw_http_agent_idle_count(const tw_http_agent *a);

/* Sends `method` (a token: "GET", "POST"...) for `url` through agent `a`
 * (NULL: tw_http_default_agent()), with the caller's header fields after
 * twine's own (Host, User-Agent, Content-Length when there is a body or the
 * method is POST, PUT or PATCH, "Connection: close" without keep-alive; the
 * caller's Host, Content-Length and Transfer-Encoding are left out, and its
 * User-Agent replaces the agent's). h (may be NULL) and the len bytes at
 * body are copied. HTTP/1.1, on an idle connection of the pool when there
 * is one, the request head and body in one write.
 *
 * Fires with a tw_http_client_response * as soon as the response head has
 * arrived (1xx heads are skipped), owned by the result: steal it with
 * tw_result_steal to keep it past the callback. A request that fails on a
 * reused connection before any byte of the response came (the server had
 * closed it) is sent once more on a new connection when the method is
 * idempotent (GET, HEAD, OPTIONS, PUT, DELETE, TRACE). Cancelling it before
 * the head arrived aborts the request (its connection is closed) and
 * errbacks TW_ERR_CANCELLED. No timeout applies but the connect timeout:
 * tw_deferred_timeout adds one. */
TW_API tw_deferred *tw_http_agent_request(tw_http_agent *a, const char *method, const char *url,
                                          const tw_http_headers *h, const void *body,
                                          size_t len);

/* Streamed responses ------------------------------------------------------------------ */

/* A response whose head has arrived and whose body is still to come. Every
 * pointer in it is borrowed from the response. */
typedef struct tw_http_client_response {
    int status;                          /* 200 */
    const char *reason;                  /* "OK", exactly as received */
    int version_major, version_minor;    /* 1, 1 */
    const tw_http_headers *headers;
    /* A chunked body's trailer fields, once the body has ended; NULL if none. */
    const tw_http_headers *trailers;
    const char *method;                  /* of the request */
    const char *url;                     /* of the request */
} tw_http_client_response;

/* on_data gets each piece of the body (borrowed for the call) in order;
 * on_end gets NULL once the body is complete, or the failure (borrowed for
 * the call) that ended it: TW_ERR_HTTP_PARSE (a truncated or malformed
 * body), TW_ERR_CONNECTION_LOST, TW_ERR_CANCELLED (the agent was closed). */
typedef void (*tw_http_data_fn)(void *arg, const char *data, size_t len);
typedef void (*tw_http_end_fn)(void *arg, tw_failure *reason);

/* Starts delivering the body to on_data (may be NULL: the body is dropped)
 * and on_end (may be NULL), with arg. Until it is called the connection is
 * not read, so a body that waits holds at most one read's worth of bytes.
 * Called from the callback of the request's Deferred, delivery goes straight
 * on; later, what was already received (or the end already reached) is
 * delivered from the loop. Returns 0, or -EALREADY when the body was already
 * being delivered. Both callbacks may pause, resume or free r. */
TW_API int tw_http_client_response_deliver_body(tw_http_client_response *r, tw_http_data_fn on_data,
                                                tw_http_end_fn on_end, void *arg);

/* Flow control: while paused, on_data is not called and the connection is
 * not read (the server's writes stop once the kernel buffers are full), so
 * a slow consumer holds at most one read's worth of the body. Resuming
 * delivers what was held from the loop. */
TW_API void tw_http_client_response_pause(tw_http_client_response *r);
TW_API void tw_http_client_response_resume(tw_http_client_response *r);

/* Frees r (NULL allowed). A body not yet ended is abandoned: its connection
 * is closed and no callback follows. This is the destructor the request's
 * result holds. */
TW_API void tw_http_client_response_free(tw_http_client_response *r);

/* A whole body: `data` holds len bytes and a NUL after them (the body may
 * hold NULs too). */
typedef struct tw_http_content {
    char *data;
    size_t len;
} tw_http_content;

/* Frees c and its data; NULL is allowed. */
TW_API void tw_http_content_free(tw_http_content *c);

/* Reads the whole body of r (Twisted's readBody). Takes r: it is freed once
 * the body has ended. Fires with a tw_http_content * owned by the result, or
 * errbacks with the failure that ended the body, carrying the response and
 * the part of the body received (tw_http_failure_response). With max > 0, a
 * body longer than max bytes is abandoned and fails with TW_ERR_HTTP_BODY,
 * code EFBIG. Cancelling it abandons the body (TW_ERR_CANCELLED). When r's
 * body is already being delivered elsewhere, r is left alone and the
 * Deferred errbacks TW_ERR_USAGE (code EALREADY). */
TW_API tw_deferred *tw_read_body(tw_http_client_response *r);
TW_API tw_deferred *tw_read_body_max(tw_http_client_response *r, size_t max);

/* The one-call client ------------------------------------------------------------------- */

typedef struct tw_page_options {     /* zero-initialised means the defaults */
    const char *method;              /* NULL: "GET" */
    const tw_http_headers *headers;  /* sent after twine's own (see tw_http_agent_request) */
    const void *body;                /* sent with a Content-Length */
    size_t body_len;
    /* Seconds for the whole fetch, redirects and body included; on expiry
     * the connection is aborted and the Deferred errbacks TW_ERR_TIMEOUT.
     * 0: none. */
    double timeout;
    double connect_timeout;          /* seconds for each connection; 0: the agent's (30) */
    /* Redirects followed (0: 20; -1: none). 301, 302, 307 and 308 are
     * followed for GET and HEAD, 307 and 308 also for other methods (which
     * keep their body); 303 turns any method but HEAD into a GET without a
     * body. A redirect that leaves the origin (scheme, host and port) drops
     * the Authorization and Cookie fields for the rest of the chain.
     * Following more than max_redirects, or coming back to a URL already
     * requested with the same method, errbacks TW_ERR_HTTP with the 3xx
     * status. A 3xx not followed (-1, no Location, 300, 304, 305, or 301 and
     * 302 for a POST, as Twisted's RedirectAgent does) errbacks TW_ERR_HTTP
     * with the status, as Twisted's getPage did: the response, Location
     * included, comes with the failure. */
    int max_redirects;
    /* The largest body taken, after decoding; a longer one fails with
     * TW_ERR_HTTP_BODY, code EFBIG. 0: 64 MiB for tw_get_page, no limit for
     * tw_download_page. */
    size_t max_body;
    /* 1: sends "Accept-Encoding: gzip, deflate" and decodes a gzip or deflate
     * body; the decoded response loses its Content-Encoding and
     * Content-Length fields. */
    int decode_content;
    const char *ca_file;             /* https; NULL: the agent's */
    int insecure;                    /* https: 1 skips certificate verification */
    tw_http_agent *agent;            /* NULL: tw_http_default_agent() */
    const char *user_agent;          /* NULL: the agent's ("twine/VERSION") */
} tw_page_options;

/* Fetches url. opt (NULL: the defaults) and everything it points to are
 * borrowed for the call only. Fires with a tw_http_response * owned by the
 * result, for a 2xx answer: its url is the final URL, after redirects.
 * Errbacks otherwise (see Failures above): an answer with a 4xx or 5xx status
 * errbacks TW_ERR_HTTP with the status and the whole response, body
 * included, in tw_http_failure_response. Cancelling it aborts the connection
 * and errbacks TW_ERR_CANCELLED. */
TW_API tw_deferred *tw_get_page(const char *url, const tw_page_options *opt);

/* tw_get_page that streams a 2xx body into the file at `path` (created with
 * mode 0666 less the umask, or replaced). The body goes into a temporary file
 * beside it ("path.XXXXXX"), renamed to `path` once complete, which also
 * removes a "path.part" left by an earlier attempt. On failure `path` is left
 * as it was; the part of the body received, if any, is kept in "path.part"
 * (replacing an older one), and nothing is left otherwise. Fires with a
 * tw_http_response * (owned by the result) whose body is empty. */
TW_API tw_deferred *tw_download_page(const char *url, const char *path, const tw_page_options *opt);

/* URLs ------------------------------------------------------------------------------- */

/* Resolves ref (a Location value: absolute, or relative such as "../b?q") against
 * the absolute URL base, as RFC 3986 section 5.2 says. Returns a new string
 * owned by the caller (free), or NULL when base has no scheme. */
TW_API char *tw_http_url_join(const char *base, const char *ref);

TW_END_DECLS

#endif
