/* twine: what the stream, listening and connecting sources share. */
#ifndef TWINE_NET_INTERNAL_H
#define TWINE_NET_INTERNAL_H

#include "transport.h"
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* The write buffer ------------------------------------------------------------ */

/* Bytes waiting for the kernel, in a list of chunks: appending copies into the
 * tail chunk or a new one, sending consumes from the head, so neither costs
 * more than the bytes it moves. */
typedef struct tw_write_chunk tw_write_chunk;
typedef struct tw_write_buffer {
    tw_write_chunk *head, *tail;
    size_t size;
} tw_write_buffer;

/* Appends the bytes of iov[0..n) after skipping the first `skip` of them. */
void tw_write_buffer_append(tw_write_buffer *b, const struct iovec *iov, int n, size_t skip);
/* Points up to `max` iovecs at the buffered bytes, in order; returns how many. */
int  tw_write_buffer_iov(const tw_write_buffer *b, struct iovec *iov, int max);
/* Drops the first n bytes (n <= size). */
void tw_write_buffer_consume(tw_write_buffer *b, size_t n);
void tw_write_buffer_clear(tw_write_buffer *b);

/* Sockets --------------------------------------------------------------------- */

/* A new non-blocking, close-on-exec socket (SIGPIPE off where the platform
 * needs a socket option for it), or a negative errno. */
int tw_socket(int family, int type);

/* sendmsg without SIGPIPE, retried on EINTR: bytes sent or a negative errno. */
ssize_t tw_send_iov(int fd, const struct iovec *iov, int n);

/* Parses an IP literal ("127.0.0.1", "::1") with `port` into addr. 0, or
 * -EINVAL when host is not one. */
int tw_parse_ip(const char *host, int port, struct sockaddr_storage *addr, socklen_t *len);

/* Writes "1.2.3.4:80", "[::1]:80" or the UNIX path into buf (always
 * NUL-terminated) and returns buf. */
char *tw_format_address(const struct sockaddr *addr, socklen_t len, char *buf, size_t size);

/* A sockaddr_un for path; -ENAMETOOLONG when it does not fit. */
int tw_unix_address(const char *path, struct sockaddr_storage *addr, socklen_t *len);

/* Stream connections ------------------------------------------------------------ */

/* Called once a connection has ended, after the protocol's connection_lost
 * (and the factory's, for clients). `reason` is borrowed. */
typedef void (*tw_stream_lost_fn)(void *arg, tw_failure *reason);

/* Wraps a connected non-blocking socket (taken) in a transport: asks f for a
 * protocol for `peer`, calls its connection_made and starts reading. Returns
 * the transport, which frees itself from the loop once the connection has
 * ended, or NULL when the factory refused the connection (the socket is then
 * closed). For a client connection the factory's connection_lost is called
 * after the protocol's. */
tw_transport *tw_stream_open(int fd, tw_factory *f, const struct sockaddr *peer,
                             socklen_t peer_len, bool client);

/* Sets (or with fn NULL removes) the hook run when the connection ends. */
void tw_stream_set_lost_hook(tw_transport *t, tw_stream_lost_fn fn, void *arg);

/* Listening ports --------------------------------------------------------------- */

/* Has fn(arg) run when p is freed, after tw_port_stop_listening: a port
 * built on tw_listen_tcp (TLS's) frees its own state with it. */
void tw_port_set_free_hook(tw_port *p, void (*fn)(void *arg), void *arg);

#endif
