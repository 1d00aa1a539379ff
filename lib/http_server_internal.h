/* twine: what the HTTP server's sources share: dates, paths, the route
 * table, the request object and the connection it reports to. */
#ifndef TWINE_HTTP_SERVER_INTERNAL_H
#define TWINE_HTTP_SERVER_INTERNAL_H

#include "internal.h"
#include "http_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <twine/http_server.h>

/* Dates (http_date.c) ------------------------------------------------------------------ */

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is this long. */
enum { TW_HTTP_DATE_LEN = 29 };

/* Writes t as an IMF-fixdate into out (NUL-terminated). */
void tw_http_date_format(time_t t, char out[TW_HTTP_DATE_LEN + 1]);
/* The reactor clock's time as an IMF-fixdate, formatted once per second.
 * Static storage, valid until the next call. */
const char *tw_http_date_now(void);
/* Parses an HTTP date in any of the three forms recipients must accept
 * (IMF-fixdate, RFC 850, asctime). 0, or -EINVAL. */
int tw_http_date_parse(const char *s, time_t *t);

/* Paths (http_path.c) ------------------------------------------------------------------ */

/* Splits a request target: the path (borrowed from target, *path_len bytes;
 * "/" for an absolute URL without one) and the query after the first '?'
 * (borrowed, NUL-terminated) or NULL. */
void tw_http_split_target(const char *target, const char **path, size_t *path_len,
                          const char **query);
/* Percent-decodes len bytes at in into out (room for len + 1; NUL-terminated).
 * Returns the decoded length, or -1 for a malformed escape or a NUL. */
ssize_t tw_http_percent_decode(const char *in, size_t len, char *out);

/* Routes (http_routes.c) --------------------------------------------------------------- */

typedef struct tw_http_route tw_http_route;

typedef struct tw_http_routes {
    tw_http_route **v;          /* most specific first */
    size_t n, cap;
} tw_http_routes;

typedef struct tw_http_param {
    char *name;                 /* name and value share one allocation */
    char *value;
} tw_http_param;

typedef struct tw_http_match {
    tw_http_handler handler;
    void *arg;
    tw_http_param *params;      /* owned (tw_http_params_free) */
    size_t nparams;
    char *allow;                /* 405: "GET, HEAD"; owned (free) */
} tw_http_match;

/* Adds a route (see tw_http_site_route); arg_dtor(arg) runs when the table is
 * cleared, if set. 0 or -EINVAL. */
int tw_http_routes_add(tw_http_routes *rt, const char *method, const char *pattern,
                       tw_http_handler handler, void *arg, void (*arg_dtor)(void *));
/* Finds the route for a request: 200 with m's handler and params set, 404, or
 * 405 with m->allow set. m is zeroed first. */
int tw_http_routes_find(const tw_http_routes *rt, const char *method, const char *path,
                        tw_http_match *m);
void tw_http_routes_clear(tw_http_routes *rt);
void tw_http_params_free(tw_http_param *params, size_t n);

/* The site (http_server.c) ------------------------------------------------------------- */

/* tw_http_site_route with an arg_dtor run when the site is freed. */
int tw_http_site_route_full(tw_http_site *s, const char *method, const char *pattern,
                            tw_http_handler handler, void *arg, void (*arg_dtor)(void *));

/* The connection a request reports to (http_server.c). */
typedef struct tw_http_server_conn tw_http_server_conn;

tw_transport *tw_http_server_conn_transport(const tw_http_server_conn *c);
/* 1 while the client reads slower than the response is written (the
 * transport's buffer went over its high watermark and not yet under its low). */
bool tw_http_server_conn_write_blocked(const tw_http_server_conn *c);
/* The current request's response has been handed to the transport; the
 * connection closes (keep_alive false) or goes on to the next request. */
void tw_http_server_conn_response_done(tw_http_server_conn *c, bool keep_alive);

/* Requests (http_request.c) ------------------------------------------------------------ */

enum tw_http_request_state {
    TW_HTTP_REQ_READING,        /* head and body arriving; the connection owns it */
    TW_HTTP_REQ_HANDLING,       /* given to a handler, not yet answered */
    TW_HTTP_REQ_STREAMING,      /* tw_http_request_start was called */
    TW_HTTP_REQ_DONE
};

struct tw_http_request {
    unsigned refs;              /* the answer owed (or the reading), plus holds */
    enum tw_http_request_state state;
    tw_http_server_conn *conn;  /* NULL once answered or the client is gone */

    /* What the client asked. */
    char method[24];
    char *target;               /* target, path and decoded path: one allocation */
    char *path, *decoded_path;  /* decoded_path NULL when it cannot be decoded */
    const char *query;          /* in target, or NULL */
    int version_major, version_minor;
    bool is_head;
    bool keep_alive;            /* the client allows another request after this one */
    tw_http_headers *headers;
    char *body;                 /* NUL-terminated */
    size_t body_len, body_cap;
    tw_http_param *params;
    size_t nparams;
    struct sockaddr_storage peer;
    socklen_t peer_len;

    /* The answer. */
    bool no_body;               /* HEAD, 204, 304: body bytes are dropped */
    bool chunked;
    bool close_after;           /* the connection closes after this response */
    uint64_t length;            /* announced Content-Length, or UINT64_MAX */
    uint64_t sent;
    tw_deferred *handler_d;     /* what the handler returned */
    tw_deferred *finish_d;      /* notify_finish */
    const tw_producer_ops *producer;
    void *producer_arg;
};

/* A new request read from c, owned by c until dispatched. */
tw_http_request *tw_http_request_new(tw_http_server_conn *c, const struct sockaddr_storage *peer,
                                     socklen_t peer_len);
/* Fills in the head; takes headers. */
void tw_http_request_set_head(tw_http_request *req, const tw_http_head *head,
                              tw_http_headers *headers);
/* Adds body bytes (the caller enforces the limit). */
void tw_http_request_append_body(tw_http_request *req, const char *data, size_t len);
/* Routes the complete request and answers it or calls its handler. */
void tw_http_request_dispatch(tw_http_request *req, const tw_http_routes *routes);
/* Frees a request that was never dispatched. */
void tw_http_request_discard(tw_http_request *req);
/* The client went away (reason borrowed): frees a request still being read;
 * for a dispatched one, errbacks notify_finish, stops its producer and
 * cancels the handler's Deferred. */
void tw_http_request_connection_lost(tw_http_request *req, tw_failure *reason);
/* The connection's flow control, for the request's producer. */
void tw_http_request_pause_producer(tw_http_request *req);
void tw_http_request_resume_producer(tw_http_request *req);

/* Writes a complete plain-text error response that closes the connection,
 * outside any request (400, 408, 413, 431, 505). */
void tw_http_send_error(tw_transport *t, int status);

#endif
