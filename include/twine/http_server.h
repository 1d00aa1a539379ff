/* twine: the HTTP/1.1 server: sites, routes, requests and static files.
 *
 * A site maps (method, path pattern) pairs to handlers and directories to
 * URL prefixes; tw_http_listen serves it on a TCP port. Each connection
 * reads one request at a time (pipelined requests wait, and are answered
 * in order), keeps the connection alive as HTTP/1.0 and 1.1 allow, and times
 * out idle connections and slow request heads.
 *
 * Handlers run on the reactor thread. A handler answers in one of two ways:
 *
 *   - through the request, at once or later, and returns NULL:
 *     tw_http_request_respond, or tw_http_request_start, _write ... _finish;
 *   - by returning a Deferred (given to the server) that fires with the
 *     tw_http_response * to send (its url is unused; the server takes the
 *     response and frees it with the result's destructor). A failure, or a
 *     NULL value, is logged and answered with a plain 500 that shows
 *     nothing of it.
 *
 * Request lifetime. A request is valid from the handler call until it has
 * been answered: until tw_http_request_respond or tw_http_request_finish
 * returns, or until the handler's Deferred has fired and its callbacks have
 * returned. It stays valid when the client goes away first, so every request
 * must be answered exactly once, also after tw_http_request_notify_finish
 * errbacked (the answer is then dropped). Strings and lists a request
 * returns are borrowed from it for that time. A handler may thus keep req
 * (in a timer, a Deferred's callback) until it answers, and nothing longer.
 *
 * The client is gone when its connection closes or resets, or when it shuts
 * down its sending side (a half-close counts as leaving, as in Twisted).
 *
 * Every status this server sends by itself, with a short plain-text body:
 * 400 (a malformed request, then the connection closes; a path with a bad
 * escape or an encoded NUL, and the connection goes on), 404 (no route), 405
 * with Allow (the path has routes, none for the method), 408 (a request head
 * or body too slow, then close), 413 (body over the limit, then close), 431
 * (head over the limit, then close), 500 (handler failure), 505 (not
 * HTTP/1.x). After the responses that close, the server stops sending but
 * reads and drops what the client still sends, for up to 2 s, so that the
 * client gets to read the response before the connection closes. */
#ifndef TWINE_HTTP_SERVER_H
#define TWINE_HTTP_SERVER_H

#include <sys/socket.h>
#include <twine/common.h>
#include <twine/deferred.h>
#include <twine/http.h>
#include <twine/net.h>

TW_BEGIN_DECLS

typedef struct tw_http_site tw_http_site;
typedef struct tw_http_request tw_http_request;

/* See above: answer through req and return NULL, or return a Deferred that
 * fires with a tw_http_response *. `arg` is the one given to the route. */
typedef tw_deferred *(*tw_http_handler)(tw_http_request *req, void *arg);

/* Sites ------------------------------------------------------------------------------- */

/* A new site without routes, owned by the caller. */
TW_API tw_http_site *tw_http_site_new(void);

/* Frees s (NULL allowed). Call it after its ports have stopped listening
 * (their factory is the site). Connections still open are aborted: their
 * requests' notify_finish Deferreds errback and their handlers' Deferreds
 * are cancelled before it returns; no handler is called after it. */
TW_API void tw_http_site_free(tw_http_site *s);

/* Routes `method` requests ("GET"; NULL or "*": any method) whose path
 * matches `pattern` to handler(req, arg). `pattern` and `method` are copied;
 * `arg` stays the caller's and must outlive the site.
 *
 * Patterns match the percent-decoded path (tw_http_request_decoded_path),
 * segment by segment:
 *   "/about"       exactly that path;
 *   "/users/:id"   ":name" matches one non-empty segment (no '/'), available
 *                  as tw_http_request_param(req, "id");
 *   "/files*"      a final '*' matches any rest, also an empty one (here
 *                  "/files", "/files/a/b" and "/filesystem"), available as
 *                  the parameter "*".
 * When several routes match, the most specific wins: exact patterns before
 * patterns with ":name" segments before '*' patterns; within each kind the
 * longer pattern, then the one added first. A HEAD request without a HEAD
 * route is answered by the GET route, and the server drops the body it sends.
 * Returns 0, or -EINVAL when pattern does not start with '/' or holds '*'
 * elsewhere than at its end, an empty ":" name, or method is not a token. */
TW_API int tw_http_site_route(tw_http_site *s, const char *method, const char *pattern,
                              tw_http_handler handler, void *arg);

/* Serves the files under `directory` at URL `prefix` ("/static/"; a missing
 * final '/' is added) for GET and HEAD, as the route prefix + "*":
 *   - the rest of the decoded path names a file under the directory; a
 *     segment "." or ".." is refused (400), and so is a file whose real path
 *     (symbolic links resolved) lies outside the directory (403), so that
 *     nothing outside it is ever served;
 *   - a directory serves its index.html; a directory path without a final '/'
 *     is redirected there (301); a directory without index.html is 403;
 *   - Content-Type follows the extension (html, css, js, json, txt, png, jpg,
 *     jpeg, gif, svg, ico, wasm, pdf; others application/octet-stream);
 *   - Last-Modified is sent, and If-Modified-Since answered with 304;
 *   - bodies are read in 64 KiB blocks on the reactor thread as the
 *     connection drains, so a file of any size takes bounded memory.
 * Range requests are not supported (the whole file is sent, 200).
 * `directory` is resolved now (realpath). Returns 0, -EINVAL for a prefix not
 * starting with '/', or the negative errno of resolving the directory
 * (-ENOTDIR when it is not one). */
TW_API int tw_http_site_static(tw_http_site *s, const char *prefix, const char *directory);

/* Limits and timeouts; they apply to what starts after the call.
 * idle: how long a kept-alive connection waits for its next request, how
 *   long a request body may pause, and how long a response may wait without
 *   the client reading any of it (default 60 s); head: how long a request
 *   head may take from its first byte (default 30 s). Both -EINVAL unless
 *   finite and > 0. */
TW_API int  tw_http_site_set_idle_timeout(tw_http_site *s, double seconds);
TW_API int  tw_http_site_set_head_timeout(tw_http_site *s, double seconds);
/* The largest request body collected (default 1 MiB); larger ones get 413. */
TW_API void tw_http_site_set_max_body(tw_http_site *s, size_t bytes);
/* The largest request head (default 64 KiB; at most 80 KiB - 2); larger
 * ones get 431. -EINVAL for 0 or over the maximum. */
TW_API int  tw_http_site_set_max_head(tw_http_site *s, size_t bytes);

/* Serves s on a TCP port, as tw_listen_tcp (interface, port 0, err). The
 * port is owned by the reactor until tw_port_stop_listening; s must outlive
 * it. */
TW_API tw_port *tw_http_listen(tw_http_site *s, const char *interface, int port, int *err);

/* Requests: what the client asked ------------------------------------------------------ */

/* "GET", "POST"... */
TW_API const char *tw_http_request_method(const tw_http_request *req);
/* The request target exactly as sent: "/a%20b?x=1" (or an absolute URL). */
TW_API const char *tw_http_request_target(const tw_http_request *req);
/* The path of the target, still percent-encoded, without the query: "/a%20b"
 * (for an absolute URL, the part after the authority; "/" when empty). */
TW_API const char *tw_http_request_path(const tw_http_request *req);
/* The path percent-decoded ("/a b"; '+' stays '+'). Requests whose path has
 * a malformed escape or encodes a NUL are refused with 400 before routing,
 * so a handler always sees one. Note that "%2F" decodes to '/'. */
TW_API const char *tw_http_request_decoded_path(const tw_http_request *req);
/* What follows the first '?', not decoded ("x=1"), or NULL without '?'. */
TW_API const char *tw_http_request_query(const tw_http_request *req);
/* The HTTP version of the request: 1 and 0 or 1. Either pointer may be NULL. */
TW_API void tw_http_request_version(const tw_http_request *req, int *major, int *minor);
/* The header fields as received. */
TW_API const tw_http_headers *tw_http_request_headers(const tw_http_request *req);
/* The body (NUL-terminated for convenience; it may hold NULs), collected
 * whole before the handler runs; its length goes to *len when len is not
 * NULL. Never NULL ("" when there is none). */
TW_API const void *tw_http_request_body(const tw_http_request *req, size_t *len);
/* The client's address. 0, or a negative errno. */
TW_API int tw_http_request_peer(const tw_http_request *req, struct sockaddr_storage *addr,
                                socklen_t *len);
/* The value of route parameter `name` (":name" in the pattern, or "*"),
 * percent-decoded, or NULL. */
TW_API const char *tw_http_request_param(const tw_http_request *req, const char *name);

/* Requests: answering ------------------------------------------------------------------ */

/* Sends a whole response: status (200-599) with the standard reason phrase,
 * the fields of h (copied; NULL: none), and len bytes of body (copied). The
 * server adds Date and Server unless h has them, Content-Length (any in h is
 * replaced) and Connection as needed; Transfer-Encoding in h is dropped. A
 * "Connection: close" in h closes the connection after the response. 204 and
 * 304 never carry a body, and a HEAD request gets the headers only.
 * Ends the request: req is invalid once it returns, except after -EINVAL (a
 * bad status) or -EALREADY (a streamed response was started: finish it).
 * Returns 0, or -ENOTCONN when the client is gone (nothing is sent). */
TW_API int tw_http_request_respond(tw_http_request *req, int status, const tw_http_headers *h,
                                   const void *body, size_t len);

/* Streaming. start sends the head: a Content-Length in h announces the
 * length (write must then send exactly that many bytes); without one the
 * body is chunked for an HTTP/1.1 client and runs until the connection closes
 * for an HTTP/1.0 one. Returns 0, -EINVAL (bad status, or a Content-Length
 * that is not a number), -EALREADY (already started), or -ENOTCONN when the
 * client is gone. The request must then be finished with
 * tw_http_request_finish in every case but -EINVAL. */
TW_API int tw_http_request_start(tw_http_request *req, int status, const tw_http_headers *h);
/* Sends len bytes of body (copied; nothing for HEAD, 204 or 304). Returns 0,
 * -EINVAL before start or past the announced Content-Length (the excess is
 * dropped), or -ENOTCONN once the client is gone. The bytes are buffered
 * when the client reads slowly: use a producer to keep that bounded. */
TW_API int tw_http_request_write(tw_http_request *req, const void *data, size_t len);
/* Ends the body and the request (req is invalid once it returns); starts
 * the response with status 200 if start was not called. Returns 0,
 * -ENOTCONN when the client is gone, or -ECONNABORTED when the body was
 * shorter than its announced Content-Length: the connection is then aborted,
 * as the client could not tell where the response ends. */
TW_API int tw_http_request_finish(tw_http_request *req);

/* Flow control for streamed bodies (Twisted's registerProducer with a
 * streaming producer): while the connection's buffer is above its high
 * watermark (64 KiB) ops->pause(arg) is called, and ops->resume(arg) once it
 * drained below the low one (16 KiB); pause may come at once when the buffer
 * is already full. If the client goes away first, ops->stop(arg) is called
 * (when set); the request must still be finished. `ops` and `arg` are
 * borrowed until unregistered or the request ends (it unregisters itself).
 * Returns 0, -EBUSY when one is registered, or -ENOTCONN when the client is
 * gone already. */
TW_API int  tw_http_request_register_producer(tw_http_request *req, const tw_producer_ops *ops,
                                              void *arg);
TW_API void tw_http_request_unregister_producer(tw_http_request *req);

/* A Deferred (the caller's reference) that fires with NULL once the response
 * has been handed to the connection (finished), or errbacks with
 * TW_ERR_CONNECTION_LOST when the client goes away first (already failed
 * when it has), in which case the handler's Deferred, if any, is cancelled
 * next. Each call returns a reference to the same Deferred. */
TW_API tw_deferred *tw_http_request_notify_finish(tw_http_request *req);

/* Status codes ------------------------------------------------------------------------- */

/* The standard reason phrase of `status` ("Not Found"), "" for an unknown
 * one. Static storage. */
TW_API const char *tw_http_reason_phrase(int status);

TW_END_DECLS

#endif
