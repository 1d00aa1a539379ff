/* twine: the buffer and delivery state shared by the framing receivers.
 *
 * Bytes are appended at the end and consumed from the start. While a hook
 * runs (busy), the bytes handed to it stay where they are: appending never
 * moves them in place, and a block that must grow is replaced, the old one
 * kept until the hook returns. */
#ifndef TWINE_RECEIVER_CORE_H
#define TWINE_RECEIVER_CORE_H

#include "internal.h"
#include <stdbool.h>
#include <twine/protocols.h>

void tw_receiver_core_init(tw_receiver_core *c);
/* Frees the buffers; c is empty afterwards. */
void tw_receiver_core_release(tw_receiver_core *c);

/* Copies len bytes to the end; data may point into c's own buffer. */
void tw_receiver_core_append(tw_receiver_core *c, const char *data, size_t len);

/* Consumes everything buffered: *data points at it, NUL-terminated. */
size_t tw_receiver_core_take_all(tw_receiver_core *c, const char **data);

/* Whether a hook may be called now: not paused, not lost, and the
 * transport (if any) not disconnecting. */
bool tw_receiver_core_can_deliver(const tw_receiver_core *c, const tw_protocol *p);

/* Brackets a delivery loop. begin returns false when one is already running
 * (re-entry: the outer loop will see the new data). end returns true when
 * the transport freed the receiver meanwhile: the caller releases it now
 * and touches it no more. */
bool tw_receiver_core_begin(tw_receiver_core *c);
bool tw_receiver_core_end(tw_receiver_core *c);

/* For the protocol's free hook: true when a delivery loop is running, in
 * which case the free is left to tw_receiver_core_end's caller. */
bool tw_receiver_core_defer_free(tw_receiver_core *c);

#endif
