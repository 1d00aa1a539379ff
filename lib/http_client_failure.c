/* twine: the HTTP client's failures, and the responses they carry. */
#include "http_client_internal.h"

const char TW_ERR_HTTP_BODY[] = "http-body";

void tw_http_response_dtor(void *r)
{
    tw_http_response_free(r);
}

tw_failure *tw_http_failure_with_response(const tw_failure *like, tw_http_response *r)
{
    /* Failures are immutable: the cause is shared, not changed. */
    tw_failure *cause = (tw_failure *)tw_failure_cause(like);
    return tw_failure_new_with_data(tw_failure_domain(like), tw_failure_code(like),
                                    cause ? tw_failure_ref(cause) : NULL, r, tw_http_response_dtor,
                                    "%s", tw_failure_message(like));
}

const tw_http_response *tw_http_failure_response(const tw_failure *f)
{
    for (; f; f = tw_failure_cause(f)) {
        const tw_http_response *r = tw_failure_data(f, tw_http_response_dtor);
        if (r)
            return r;
    }
    return NULL;
}
