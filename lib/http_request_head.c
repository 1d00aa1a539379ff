/* twine: the bytes of a client request: request line, twine's header
 * fields, the caller's, and the body, measured first and then written into
 * one buffer, so that a request costs one allocation and one write. */
#include "http_client_internal.h"

#include <stdio.h>
#include <strings.h>

/* Fields twine writes itself, left out of the caller's list. */
static bool own_field(const char *name)
{
    return !strcasecmp(name, "Host") || !strcasecmp(name, "Content-Length") ||
           !strcasecmp(name, "Transfer-Encoding");
}

static bool sends_length(const tw_http_request_spec *s)
{
    return s->body_len > 0 || !strcmp(s->method, "POST") || !strcmp(s->method, "PUT") ||
           !strcmp(s->method, "PATCH");
}

/* Writes strings at p, or with p NULL only measures them. */
typedef struct writer {
    char *p;
    size_t len;
} writer;

static void emit(writer *w, const char *s)
{
    size_t n = strlen(s);
    if (w->p) {
        memcpy(w->p, s, n);
        w->p += n;
    }
    w->len += n;
}

/* Writes the head into out, or with out NULL measures it; returns its length. */
static size_t write_head(const tw_http_request_spec *s, const char *port, const char *length,
                         bool user_agent, bool accept_encoding, char *out)
{
    writer w = { out, 0 };
    const tw_url *u = s->url;

    emit(&w, s->method);
    emit(&w, " ");
    emit(&w, u->target);
    emit(&w, " HTTP/1.1\r\nHost: ");
    if (u->ipv6)
        emit(&w, "[");
    emit(&w, u->host);
    if (u->ipv6)
        emit(&w, "]");
    emit(&w, port);
    if (user_agent) {
        emit(&w, "\r\nUser-Agent: ");
        emit(&w, s->user_agent);
    }
    if (length[0]) {
        emit(&w, "\r\nContent-Length: ");
        emit(&w, length);
    }
    if (accept_encoding)
        emit(&w, "\r\nAccept-Encoding: gzip, deflate");
    if (s->close)
        emit(&w, "\r\nConnection: close");
    for (size_t i = 0; i < tw_http_headers_count(s->headers); i++) {
        const char *name, *value;
        tw_http_headers_at(s->headers, i, &name, &value);
        if (own_field(name) || (s->close && !strcasecmp(name, "Connection")))
            continue;
        emit(&w, "\r\n");
        emit(&w, name);
        emit(&w, ": ");
        emit(&w, value);
    }
    emit(&w, "\r\n\r\n");
    return w.len;
}

char *tw_http_request_build(const tw_http_request_spec *s, size_t *len)
{
    char port[8] = "", length[24] = "";
    if (!tw_url_default_port(s->url))
        snprintf(port, sizeof port, ":%d", s->url->port);
    if (sends_length(s))
        snprintf(length, sizeof length, "%zu", s->body_len);
    bool user_agent = s->user_agent && s->user_agent[0] &&
                      !tw_http_headers_get(s->headers, "User-Agent");
    bool accept_encoding = s->accept_encoding && !tw_http_headers_get(s->headers, "Accept-Encoding");

    size_t head = write_head(s, port, length, user_agent, accept_encoding, NULL);
    char *buf = tw_xmalloc(head + s->body_len);
    write_head(s, port, length, user_agent, accept_encoding, buf);
    if (s->body_len)
        memcpy(buf + head, s->body, s->body_len);
    *len = head + s->body_len;
    return buf;
}
