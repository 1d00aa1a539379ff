/* twine: HTTP/1.1 messages: header lists and responses. The client
 * (tw_get_page, the agent) and the server (sites and routes) build on them. */
#ifndef TWINE_HTTP_H
#define TWINE_HTTP_H

#include <twine/common.h>

TW_BEGIN_DECLS

/* Header lists ------------------------------------------------------------------ */

/* An ordered list of (name, value) fields. Repeats are kept in the order they
 * were added; names compare case-insensitively (ASCII) and keep the spelling
 * they were added with. One owner. Functions that read accept h NULL as an
 * empty list. */
typedef struct tw_http_headers tw_http_headers;

/* A new empty list, owned by the caller. */
TW_API tw_http_headers *tw_http_headers_new(void);
/* Frees h and every string in it; NULL is allowed. */
TW_API void tw_http_headers_free(tw_http_headers *h);
/* A new list with copies of h's fields, owned by the caller. */
TW_API tw_http_headers *tw_http_headers_copy(const tw_http_headers *h);

TW_API size_t tw_http_headers_count(const tw_http_headers *h);
/* Field i (0 <= i < count): name and value borrowed from h until it changes.
 * Out of range, both are set to NULL. Either out pointer may be NULL. */
TW_API void tw_http_headers_at(const tw_http_headers *h, size_t i,
                               const char **name, const char **value);
/* The value of the first field named `name` (any case), or NULL. Borrowed
 * from h until it changes. */
TW_API const char *tw_http_headers_get(const tw_http_headers *h, const char *name);
/* Walks the fields named `name` in order. *pos starts at 0; each call returns
 * the next value (borrowed) and moves *pos past it, or NULL at the end:
 *     size_t pos = 0;
 *     while ((v = tw_http_headers_next(h, "Set-Cookie", &pos))) ... */
TW_API const char *tw_http_headers_next(const tw_http_headers *h, const char *name,
                                        size_t *pos);
/* 1 if a field named `name` lists `token` among its comma-separated
 * elements (any case, white space around an element ignored), as in
 * "Connection: keep-alive, Close"; 0 otherwise. */
TW_API int tw_http_headers_has_token(const tw_http_headers *h, const char *name,
                                     const char *token);

/* The functions that change h copy name and value. They return 0, or -EINVAL
 * (h unchanged) when name is not a token (RFC 9110: letters, digits and
 * !#$%&'*+-.^_`|~) or value holds CR or LF, so that a list never holds a
 * field that would break the message it is written into. */

/* Appends a field, after any others of the same name. */
TW_API int tw_http_headers_add(tw_http_headers *h, const char *name, const char *value);
/* Replaces every field named `name` by one: in the place of the first, or
 * appended when there was none. */
TW_API int tw_http_headers_set(tw_http_headers *h, const char *name, const char *value);
/* Removes every field named `name` (any case); returns how many. */
TW_API size_t tw_http_headers_remove(tw_http_headers *h, const char *name);

/* Responses ----------------------------------------------------------------------- */

/* What the client fires with and what a server handler answers with. A
 * response owns everything it points to: reason, body and url are heap
 * strings (malloc), headers a list from tw_http_headers_new. */
typedef struct tw_http_response {
    int status;                      /* 200 */
    const char *reason;              /* "OK", exactly as received; never NULL */
    const tw_http_headers *headers;  /* never NULL */
    const char *body;                /* NUL-terminated for convenience; may hold NULs */
    size_t body_len;
    const char *url;                 /* the final URL, after redirects; NULL when none */
} tw_http_response;

/* A new response owned by the caller, with a copy of reason (NULL: "") and an
 * empty body. Takes headers (NULL: a new empty list). */
TW_API tw_http_response *tw_http_response_new(int status, const char *reason,
                                              tw_http_headers *headers);
/* Replaces the body with a copy of the len bytes at body (NUL-terminated). */
TW_API void tw_http_response_set_body(tw_http_response *r, const void *body, size_t len);
/* Frees r and everything it owns; NULL is allowed. */
TW_API void tw_http_response_free(tw_http_response *r);

TW_END_DECLS

#endif
