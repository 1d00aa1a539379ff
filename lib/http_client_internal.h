/* twine: what the HTTP client's sources share: URLs, the request head, the
 * exchange (one request and its response), connections, the agent's pool,
 * and the engine under tw_get_page and tw_download_page. */
#ifndef TWINE_HTTP_CLIENT_INTERNAL_H
#define TWINE_HTTP_CLIENT_INTERNAL_H

#include "internal.h"
#include "http_parse.h"

#include <stdbool.h>
#include <string.h>

/* URLs (url.c) ------------------------------------------------------------------- */

typedef struct tw_url {
    char *buf;                  /* owns host and target */
    const char *host;           /* lower case; an IPv6 literal without brackets */
    const char *target;         /* path and query as the request line carries them */
    int port;
    bool https;
    bool ipv6;                  /* the host is an IPv6 literal */
} tw_url;

/* Parses an absolute http or https URL into u (tw_url_clear frees it). Bytes
 * the request line cannot carry (space, non-ASCII) are percent-encoded; the
 * fragment is dropped. Returns 0, -EPROTONOSUPPORT for another scheme, or
 * -EINVAL for a malformed URL, a control character, or user information. */
int  tw_url_parse(tw_url *u, const char *s);
void tw_url_clear(tw_url *u);
bool tw_url_same_origin(const tw_url *a, const tw_url *b);
bool tw_url_default_port(const tw_url *u);

/* The request head (http_request_head.c) ---------------------------------------- */

typedef struct tw_http_request_spec {
    const char *method;
    const tw_url *url;
    const tw_http_headers *headers;   /* the caller's fields, may be NULL */
    const char *user_agent;           /* NULL or "": none */
    bool accept_encoding;             /* "Accept-Encoding: gzip, deflate" */
    bool close;                       /* "Connection: close" */
    const void *body;
    size_t body_len;
} tw_http_request_spec;

/* The whole request, head then body, in one new buffer (free) of *len bytes. */
char *tw_http_request_build(const tw_http_request_spec *spec, size_t *len);

/* Growable bodies ------------------------------------------------------------------ */

/* Bytes with a NUL after them, as tw_http_response and tw_http_content hold. */
typedef struct tw_http_buf {
    char *data;
    size_t len, cap;
} tw_http_buf;

/* Room for `more` bytes; the first reservation is exact, later ones double. */
static inline void tw_http_buf_reserve(tw_http_buf *b, size_t more)
{
    size_t need = b->len + more + 1;
    if (need > b->cap) {
        size_t cap = b->cap && 2 * b->cap > need ? 2 * b->cap : need;
        b->data = tw_xrealloc(b->data, cap);
        b->cap = cap;
        b->data[b->len] = '\0';
    }
}

static inline void tw_http_buf_append(tw_http_buf *b, const char *data, size_t len)
{
    tw_http_buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

/* Hands the bytes over (never NULL: "" at least) and empties b. */
static inline char *tw_http_buf_take(tw_http_buf *b)
{
    char *data = b->data ? b->data : tw_xcalloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return data;
}

/* Failures that carry a response (http_client_failure.c) -------------------------- */

/* Frees a tw_http_response; the type tag of a failure's response payload. */
void tw_http_response_dtor(void *r);
/* A failure like `like` (domain, code, message, cause) carrying r (taken). */
tw_failure *tw_http_failure_with_response(const tw_failure *like, tw_http_response *r);

/* The exchange: one request and its response ------------------------------------------ */

typedef struct tw_http_conn tw_http_conn;
typedef struct tw_http_host tw_http_host;

/* Settings of one request that default to the agent's. */
typedef struct tw_http_request_options {
    double connect_timeout;           /* 0: the agent's */
    const char *user_agent;           /* NULL: the agent's */
    const char *ca_file;              /* with insecure, NULL/0: the agent's */
    int insecure;
    bool accept_encoding;
} tw_http_request_options;

enum tw_http_phase {
    TW_HTTP_WAITING,                  /* not sent yet: connecting, or about to fail */
    TW_HTTP_SENT,                     /* sent; waiting for the response head */
    TW_HTTP_BODY,                     /* the head has arrived: the body flows */
    TW_HTTP_ENDED                     /* the body has ended (end holds how) */
};

typedef struct tw_http_exchange tw_http_exchange;
struct tw_http_exchange {
    tw_http_client_response pub;      /* first: the handle the caller gets */
    /* References: the request's until its Deferred fires (then the caller's,
     * dropped by tw_http_client_response_free), the connection's while
     * attached, the connect attempt's callbacks. */
    unsigned refs;
    tw_http_agent *agent;             /* a reference */
    tw_deferred *d;                   /* until it fires */
    enum tw_http_phase phase;

    /* The request. */
    char *strings;                    /* method and URL, for pub */
    tw_url url;
    bool https_options_set;           /* ca_file/insecure given for this request */
    char *ca_file;
    int insecure;
    double connect_timeout;
    char *wire;                       /* head and body, until the head arrives */
    size_t wire_len;
    bool head_method, idempotent, retried;
    bool closes;                      /* the request says "Connection: close" */
    tw_deferred *connecting;          /* the connection attempt */
    tw_delayed_call *later;           /* a failure known at once, delivered from the loop */
    tw_failure *later_failure;
    tw_http_exchange *prev, *next;    /* the agent's list of connecting exchanges */
    tw_http_conn *conn;               /* a reference while attached */

    /* The response. */
    char *reason;
    tw_http_headers *headers, *trailers;
    tw_http_data_fn on_data;
    tw_http_end_fn on_end;
    void *arg;
    bool delivering, paused;
    tw_failure *end;                  /* how the body ended (NULL: completely) */
    tw_delayed_call *end_call;        /* delivers an end reached before deliver_body */
};

static inline tw_http_exchange *tw_http_exchange_of(tw_http_client_response *r)
{
    return TW_CONTAINER_OF(r, tw_http_exchange, pub);
}

void tw_http_exchange_unref(void *x);
/* Fires the request's Deferred with the response (the head has arrived). */
void tw_http_exchange_fire(tw_http_exchange *x);
/* The request failed before a response head: errbacks with f (taken), or
 * with retry set sends it once more on a new connection. */
void tw_http_exchange_failed(tw_http_exchange *x, tw_failure *f, bool retry);
/* The body has ended with f (borrowed; NULL: completely). */
void tw_http_exchange_end(tw_http_exchange *x, tw_failure *f);
/* Moves status, reason and headers out of r into a new response whose body
 * is empty and url NULL; r keeps an empty header list. */
tw_http_response *tw_http_exchange_take_response(tw_http_client_response *r);

/* Connections (http_client_conn.c) -------------------------------------------------------- */

struct tw_http_conn {
    tw_protocol proto;
    unsigned refs;                    /* the transport's, and the exchange's while attached */
    tw_http_parser *parser;
    tw_http_agent *agent;             /* a reference until the connection is lost */
    tw_http_host *host;               /* its pool entry (a reference) */
    tw_http_exchange *x;              /* the exchange in progress (a reference) */
    tw_http_conn *prev, *next;        /* the agent's list of its connections */
    tw_http_conn *idle_prev, *idle_next;  /* the host's idle list */
    tw_delayed_call *idle_timer;
    unsigned served;                  /* responses completed */
    bool idle, lost, cancelled, reading_paused, no_reuse;
    /* What the parser found, acted on once it has returned. */
    bool got_bytes, informational, head_ready, message_done, keep_alive, no_body;
    /* Bytes read that the consumer could not take yet. */
    char *held;
    size_t held_len;
    tw_failure *lost_reason;
    tw_delayed_call *drain_call;
};

/* Builds the connections that tw_connect_tcp/tls make for the agent. */
extern tw_factory tw_http_conn_factory;

static inline tw_http_conn *tw_http_conn_of(tw_protocol *p)
{
    return TW_CONTAINER_OF(p, tw_http_conn, proto);
}

/* Attaches x (a reference) and writes its request. */
void tw_http_conn_send(tw_http_conn *c, tw_http_exchange *x);
/* Detaches the exchange waiting for its head and aborts the connection. */
void tw_http_conn_cancel(tw_http_conn *c);
/* Aborts the connection; a body in progress ends with TW_ERR_CANCELLED. */
void tw_http_conn_abort(tw_http_conn *c);
void tw_http_conn_close(tw_http_conn *c);

/* The agent (http_agent.c) ---------------------------------------------------------------- */

tw_http_agent *tw_http_agent_ref(tw_http_agent *a);
void tw_http_agent_unref(tw_http_agent *a);
tw_deferred *tw_http_agent_request_opts(tw_http_agent *a, const char *method, const char *url,
                                        const tw_http_headers *h, const void *body, size_t len,
                                        const tw_http_request_options *o);
/* c's response has ended and c may serve another: into the pool. */
void tw_http_agent_conn_reusable(tw_http_conn *c);
/* c is gone: out of the pool and the agent's lists. */
void tw_http_agent_conn_lost(tw_http_conn *c);

/* Content decoding (http_decode.c) ----------------------------------------------------------- */

typedef struct tw_http_decoder tw_http_decoder;

/* A decoder for a Content-Encoding value (owned by the caller), or NULL when
 * it names no coding decoded here (gzip, x-gzip and deflate are). */
tw_http_decoder *tw_http_decoder_new(const char *content_encoding);
void tw_http_decoder_free(tw_http_decoder *d);
/* Decodes len bytes, handing the output to out in pieces; out returns 0, or
 * non-zero to stop. Returns 0, what out returned, or -EBADMSG for data that
 * does not decode. */
int tw_http_decoder_feed(tw_http_decoder *d, const char *data, size_t len,
                         int (*out)(void *arg, const char *data, size_t len), void *arg);
/* 0 once a whole stream was decoded, -EBADMSG for a truncated one. */
int tw_http_decoder_finish(const tw_http_decoder *d);

/* The engine under tw_get_page and tw_download_page (get_page.c) -------------------------- */

/* Where a 2xx body goes instead of memory. Each function returns NULL or a
 * failure (taken) that stops the fetch. */
typedef struct tw_http_sink {
    tw_failure *(*open)(void *arg);
    tw_failure *(*write)(void *arg, const char *data, size_t len);
    tw_failure *(*close)(void *arg);
    /* Frees arg; output not closed successfully goes. */
    void (*free)(void *arg);
} tw_http_sink;

/* tw_get_page with the 2xx body streamed to sink (NULL: kept in the
 * response); sink_arg is taken (sink->free). */
tw_deferred *tw_http_fetch(const char *url, const tw_page_options *opt, const tw_http_sink *sink,
                           void *sink_arg);

#endif
