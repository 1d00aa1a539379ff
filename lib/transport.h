/* twine: the transport base every concrete transport (TCP, UNIX, TLS, memory)
 * embeds first. The public tw_transport_* functions dispatch through the
 * vtable; producer flow control is shared here. */
#ifndef TWINE_TRANSPORT_H
#define TWINE_TRANSPORT_H

#include "internal.h"
#include <stdbool.h>
#include <twine/net.h>

struct tw_transport_vtable {
    int    (*writev)(tw_transport *t, const struct iovec *iov, int n);
    void   (*lose_connection)(tw_transport *t);
    void   (*abort_connection)(tw_transport *t);
    void   (*lose_write_connection)(tw_transport *t);
    void   (*pause_reading)(tw_transport *t);
    void   (*resume_reading)(tw_transport *t);
    int    (*get_peer)(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len);
    int    (*get_host)(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len);
    size_t (*write_buffer_size)(const tw_transport *t);
};

struct tw_transport {
    const struct tw_transport_vtable *vt;
    tw_protocol *protocol;                /* owned: freed after connection_lost */
    bool disconnecting;                   /* set by lose/abort and by protocol_lost */
    /* Producer flow control. */
    const tw_producer_ops *producer;
    void *producer_arg;
    bool producer_paused;
    size_t high_watermark, low_watermark;
};

/* Sets up the base (default watermarks, no producer, no protocol). */
void tw_transport_init(tw_transport *t, const struct tw_transport_vtable *vt);

/* A concrete transport calls this whenever its write buffer size changed: it
 * pauses or resumes the registered producer across the watermarks. */
void tw_transport_buffer_changed(tw_transport *t, size_t buffered);

/* Attaches p (taking it), sets p->transport and calls connection_made. */
void tw_transport_connect_protocol(tw_transport *t, tw_protocol *p);

/* Ends the protocol's life: stops the producer, calls connection_lost with
 * reason (borrowed), then free. Call once. */
void tw_transport_protocol_lost(tw_transport *t, tw_failure *reason);

#endif
