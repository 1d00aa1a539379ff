/* twine: protocols, transports and factories; TCP and UNIX-domain sockets.
 *
 * A user protocol embeds tw_protocol and recovers itself with
 * TW_CONTAINER_OF. A factory builds one protocol per connection. The
 * transport under a protocol moves its bytes: TCP, UNIX, TLS, or an in-memory
 * transport in tests (twine/testing.h). */
#ifndef TWINE_NET_H
#define TWINE_NET_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <twine/common.h>
#include <twine/deferred.h>
#include <twine/dns.h>
#include <twine/reactor.h>

TW_BEGIN_DECLS

typedef struct tw_protocol tw_protocol;
typedef struct tw_transport tw_transport;
typedef struct tw_factory tw_factory;
typedef struct tw_port tw_port;

/* Protocols ------------------------------------------------------------------- */

/* Every hook is optional (NULL: nothing to do). The transport calls them from
 * the reactor thread:
 *   connection_made once, then data_received any number of times with the
 *   bytes in arbitrary fragments, then connection_lost once, then free.
 * `data` and `reason` are borrowed for the call. reason is a
 * TW_ERR_CONNECTION_DONE failure for a clean close (either side) and a
 * TW_ERR_CONNECTION_LOST one otherwise (code: the errno, ECONNABORTED after
 * tw_transport_abort_connection; cause: the TW_ERR_SYS failure, if any).
 * A hook may call any tw_transport_* function; connection_lost and free
 * always run from the loop, never inside such a call. */
typedef struct tw_protocol_ops {
    void (*connection_made)(tw_protocol *p);
    void (*data_received)(tw_protocol *p, const char *data, size_t len);
    void (*connection_lost)(tw_protocol *p, tw_failure *reason);
    /* Releases the protocol; the transport owns it from build_protocol on. */
    void (*free)(tw_protocol *p);
    /* Half-close. With read_connection_lost set, the peer's end of stream
     * calls it and the connection stays open for writing (Twisted's
     * IHalfCloseableProtocol); without it, end of stream closes. */
    void (*read_connection_lost)(tw_protocol *p);
    void (*write_connection_lost)(tw_protocol *p);
} tw_protocol_ops;

struct tw_protocol {                      /* embed it first or anywhere; TW_CONTAINER_OF */
    const tw_protocol_ops *ops;
    tw_transport *transport;              /* set before connection_made; borrowed */
    tw_factory *factory;                  /* the factory that built it; borrowed */
};

/* Factories -------------------------------------------------------------------- */

/* A small struct the user fills (or embeds): one per listener or connector,
 * and it must outlive them. Hooks other than build_protocol are optional. */
struct tw_factory {
    /* Returns a new protocol (owned by the transport from now on) or NULL to
     * refuse the connection. `peer` is borrowed. */
    tw_protocol *(*build_protocol)(tw_factory *f, const struct sockaddr *peer);
    /* Clients: the connection attempt failed (reason borrowed). */
    void (*connection_failed)(tw_factory *f, tw_failure *reason);
    /* Clients: an established connection was lost (reason borrowed); called
     * after the protocol's connection_lost. */
    void (*connection_lost)(tw_factory *f, tw_failure *reason);
    void *data;
};

/* Transports ------------------------------------------------------------------- */

/* Queue bytes for sending; they are copied. What the socket cannot take at
 * once is buffered. Return 0, or -ENOTCONN once the connection is closing or
 * closed, or its sending side shut down (the bytes are dropped). A send that
 * fails loses the connection: connection_lost reports it from the loop. */
TW_API int  tw_transport_write(tw_transport *t, const void *data, size_t len);
TW_API int  tw_transport_writev(tw_transport *t, const struct iovec *iov, int n);
/* Flush what is buffered, then close; connection_lost follows with
 * TW_ERR_CONNECTION_DONE. */
TW_API void tw_transport_lose_connection(tw_transport *t);
/* Close now and drop the buffer; connection_lost follows (from the loop)
 * with TW_ERR_CONNECTION_LOST (code ECONNABORTED). */
TW_API void tw_transport_abort_connection(tw_transport *t);
/* Half-close: flush, then shut down the sending side; reading goes on. */
TW_API void tw_transport_lose_write_connection(tw_transport *t);
/* Flow control of the receiving side. */
TW_API void tw_transport_pause_reading(tw_transport *t);
TW_API void tw_transport_resume_reading(tw_transport *t);
/* The addresses of the two ends. 0, or a negative errno. A stream reads its
 * own address from the socket when first asked, so ask before it closes. */
TW_API int  tw_transport_get_peer(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len);
TW_API int  tw_transport_get_host(const tw_transport *t, struct sockaddr_storage *addr, socklen_t *len);
/* 1 once lose_connection or abort_connection was called or the connection
 * is gone, 0 before (Twisted's transport.disconnecting). */
TW_API int  tw_transport_disconnecting(const tw_transport *t);
/* Bytes written but not yet taken by the kernel. */
TW_API size_t tw_transport_write_buffer_size(const tw_transport *t);
/* The protocol on this transport (borrowed). */
TW_API tw_protocol *tw_transport_protocol(const tw_transport *t);

/* Producer/consumer flow control (Twisted's IConsumer.registerProducer with a
 * streaming producer). While the write buffer is above the high watermark the
 * producer is paused; once it drains below the low one it is resumed; when
 * the connection goes, stop is called. */
typedef struct tw_producer_ops {
    void (*pause)(void *arg);
    void (*resume)(void *arg);
    void (*stop)(void *arg);              /* may be NULL */
} tw_producer_ops;

/* `ops` and `arg` are borrowed until unregistered or the connection is lost.
 * Returns -EBUSY when a producer is already registered. */
TW_API int  tw_transport_register_producer(tw_transport *t, const tw_producer_ops *ops, void *arg);
TW_API void tw_transport_unregister_producer(tw_transport *t);
/* Defaults: high 64 KiB, low 16 KiB. -EINVAL unless low <= high. */
TW_API int  tw_transport_set_write_watermarks(tw_transport *t, size_t high, size_t low);

/* Ready-made producer ops whose arg is a tw_transport *: pausing and resuming
 * its reading. Registering the reading side of a proxy as the producer of its
 * writing side keeps the proxy's memory bounded. */
TW_API extern const tw_producer_ops tw_transport_reading_producer;

/* Listening ---------------------------------------------------------------------- */

typedef struct tw_listen_options {        /* zero-initialised means the defaults */
    int backlog;                          /* 0: 511 */
    int ipv6_only;                        /* for "::": 1 refuses IPv4-mapped peers */
} tw_listen_options;

/* Binding completes at once, so listening is synchronous. `interface` is an
 * IP literal ("127.0.0.1", "::1", "::"; anything else is -EINVAL) or NULL/""
 * for every IPv4 and IPv6 address; port 0 picks a free port. SO_REUSEADDR
 * is set. When accepting runs out of descriptors the port logs it and stops
 * accepting for 0.1 s rather than spin. Returns the port
 * (owned by the reactor until tw_port_stop_listening), or NULL with *err a
 * negative errno. `f` is borrowed and must outlive the port. */
TW_API tw_port *tw_listen_tcp(const char *interface, int port, tw_factory *f, int *err);
TW_API tw_port *tw_listen_tcp_opts(const char *interface, int port, tw_factory *f,
                                   const tw_listen_options *opt, int *err);
/* A UNIX-domain stream socket at `path` (an existing socket file there is
 * replaced). */
TW_API tw_port *tw_listen_unix(const char *path, tw_factory *f, int *err);

/* The port number really bound, also after port 0; -1 for UNIX ports. */
TW_API int  tw_port_number(const tw_port *p);
/* The bound address. 0, or a negative errno. */
TW_API int  tw_port_get_host(const tw_port *p, struct sockaddr_storage *addr, socklen_t *len);
/* Stops accepting and closes the socket (a UNIX port removes its file); the
 * connections already made go on. The Deferred (the caller's reference)
 * fires with NULL from the loop; the port is freed then. Calling it again
 * before then returns the same Deferred. */
TW_API tw_deferred *tw_port_stop_listening(tw_port *p);

/* Connecting ----------------------------------------------------------------------- */

/* Connects to host:port (a name is resolved without blocking; an IP literal at
 * once). The Deferred (the caller's reference) fires with the connected
 * tw_protocol * (borrowed: valid until its connection_lost returns), right
 * after connection_made. It errbacks with TW_ERR_SYS (code ECONNREFUSED...;
 * each resolved address is tried in turn, and the last one's error is
 * reported), TW_ERR_TIMEOUT (code ETIMEDOUT) after `timeout` seconds (0:
 * 30 s; the lookup included), TW_ERR_DNS, or TW_ERR_CONNECTION_DONE when
 * build_protocol refused the connection, and calls f->connection_failed
 * with the same failure first. Cancelling it aborts the attempt
 * (TW_ERR_CANCELLED); once connected, cancelling does nothing. `f` is
 * borrowed and must outlive the connection. */
TW_API tw_deferred *tw_connect_tcp(const char *host, int port, tw_factory *f, double timeout);
TW_API tw_deferred *tw_connect_unix(const char *path, tw_factory *f, double timeout);

/* Reconnecting client (Twisted's ReconnectingClientFactory) ------------------------ */

typedef struct tw_reconnecting_client tw_reconnecting_client;

/* Keeps a connection to host:port up: connects now, and after a failed attempt
 * or a lost connection waits, then tries again. Each retry multiplies the
 * delay (initial_delay, 1 s) by `factor` (e), caps it at max_delay (3600 s),
 * then draws it from a normal distribution around itself with standard
 * deviation delay * jitter (0.119626565582); the first retry thus waits
 * about e seconds. A connection made resets the delay and the retry count.
 * After max_retries retries in a row it gives up (0: never). `f` is borrowed
 * and must outlive the client; its connection_failed and connection_lost
 * hooks are called as usual, before the client decides on a retry. Owned
 * by the caller (tw_reconnecting_client_free). */
TW_API tw_reconnecting_client *tw_reconnecting_client_new(const char *host, int port,
                                                          tw_factory *f, double timeout);
/* Replaces the defaults above; the delay restarts at initial_delay. Jitter
 * 0 makes the delays exact. */
TW_API void   tw_reconnecting_client_set_backoff(tw_reconnecting_client *rc, double initial_delay,
                                                 double factor, double jitter, double max_delay,
                                                 unsigned max_retries);
/* The clock the retries wait on (NULL: the reactor's, the default); a test
 * clock makes the backoff testable without waiting. A retry already waiting
 * moves to the new clock with the same delay. `clock` is borrowed and must
 * outlive the client. */
TW_API void   tw_reconnecting_client_set_clock(tw_reconnecting_client *rc, tw_clock *clock);
/* Seeds the jitter's random source, for repeatable delays. */
TW_API void   tw_reconnecting_client_set_seed(tw_reconnecting_client *rc, uint64_t seed);
/* The delay before the next attempt, and the retries since the last
 * connection was made. */
TW_API double   tw_reconnecting_client_delay(const tw_reconnecting_client *rc);
TW_API unsigned tw_reconnecting_client_retries(const tw_reconnecting_client *rc);
/* The protocol of the connection up now, or NULL (borrowed). */
TW_API tw_protocol *tw_reconnecting_client_protocol(const tw_reconnecting_client *rc);
/* Stops retrying (Twisted's stopTrying): cancels the waiting retry and an
 * attempt in progress (connection_failed hears TW_ERR_CANCELLED); an
 * established connection stays up. */
TW_API void   tw_reconnecting_client_stop_trying(tw_reconnecting_client *rc);
/* Stops trying, aborts the connection and frees the client (NULL allowed).
 * The factory's hooks may call it. */
TW_API void   tw_reconnecting_client_free(tw_reconnecting_client *rc);

TW_END_DECLS

#endif
