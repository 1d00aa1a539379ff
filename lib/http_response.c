/* twine: responses, as the client delivers them and server handlers return them. */
#include "internal.h"

#include <string.h>

tw_http_response *tw_http_response_new(int status, const char *reason, tw_http_headers *headers)
{
    tw_http_response *r = tw_xcalloc(1, sizeof *r);
    r->status = status;
    r->reason = tw_xstrdup(reason ? reason : "");
    r->headers = headers ? headers : tw_http_headers_new();
    r->body = tw_xcalloc(1, 1);
    return r;
}

void tw_http_response_set_body(tw_http_response *r, const void *body, size_t len)
{
    char *copy = tw_xmalloc(len + 1);
    if (len)
        memcpy(copy, body, len);
    copy[len] = '\0';
    free((char *)r->body);
    r->body = copy;
    r->body_len = len;
}

void tw_http_response_free(tw_http_response *r)
{
    if (!r)
        return;
    /* The const fields say "read-only" to readers; the response owns them. */
    free((char *)r->reason);
    tw_http_headers_free((tw_http_headers *)r->headers);
    free((char *)r->body);
    free((char *)r->url);
    free(r);
}
