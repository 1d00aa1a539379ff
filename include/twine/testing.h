/* twine: an in-memory transport for testing protocols without sockets
 * (Twisted's twisted.internet.testing.StringTransport).
 *
 * The test plays the peer: it attaches a protocol, feeds it bytes in whatever
 * fragments it likes, reads what the protocol wrote, and checks what the
 * protocol asked of its transport (closing, half-closing, pausing). Nothing
 * happens on its own: lose_connection only records the request, and the
 * connection ends when the test calls tw_memory_transport_close (or frees the
 * transport). No reactor is needed. */
#ifndef TWINE_TESTING_H
#define TWINE_TESTING_H

#include <twine/common.h>
#include <twine/net.h>

TW_BEGIN_DECLS

typedef struct tw_memory_transport tw_memory_transport;

/* A new transport with no protocol, owned by the caller (tw_memory_transport_free).
 * Its host is 127.0.0.1:12345 and its peer 127.0.0.1:54321. */
TW_API tw_memory_transport *tw_memory_transport_new(void);

/* Releases mt. A protocol still attached is lost first, as by
 * tw_memory_transport_close(mt, 1): connection_lost, then free. */
TW_API void tw_memory_transport_free(tw_memory_transport *mt);

/* The tw_transport * the protocol sees (borrowed from mt). */
TW_API tw_transport *tw_memory_transport_transport(tw_memory_transport *mt);

/* Attaches p, which mt owns from now on (its free hook runs when the
 * connection ends), and calls its connection_made. -EBUSY when a protocol was
 * already attached to mt, which serves one connection (p is then left to the
 * caller). */
TW_API int tw_memory_transport_attach(tw_memory_transport *mt, tw_protocol *p);

/* Delivers bytes from the peer to the protocol's data_received in one call
 * (data is borrowed for the call), whether or not reading is paused: check
 * tw_memory_transport_reading_paused first to play a transport that honours
 * it. An empty fragment is not delivered (transports never deliver one).
 * Returns 0, or -ENOTCONN when no protocol is attached. */
TW_API int tw_memory_transport_feed(tw_memory_transport *mt, const void *data, size_t len);
/* The same, in fragments of `step` bytes (the last may be shorter). */
TW_API int tw_memory_transport_feed_in_steps(tw_memory_transport *mt, const void *data,
                                             size_t len, size_t step);

/* The protocol's writes are kept in memory. Once it called lose_connection,
 * abort_connection or lose_write_connection, or the connection ended, writes
 * are refused with -ENOTCONN, as on a real transport. */

/* Everything the protocol wrote since the last clear, NUL-terminated for
 * convenience (it may hold NULs); its length goes to *len when len is not
 * NULL. Borrowed: valid until the next write, clear or free. */
TW_API const char *tw_memory_transport_value(const tw_memory_transport *mt, size_t *len);
/* Forgets what was written so far. */
TW_API void tw_memory_transport_clear(tw_memory_transport *mt);

/* What the protocol asked for, 1 or 0: lose_connection or abort_connection
 * (Twisted's `disconnecting`), abort_connection alone, lose_write_connection,
 * and whether reading is paused now (pause_reading more recent than
 * resume_reading). */
TW_API int tw_memory_transport_disconnecting(const tw_memory_transport *mt);
TW_API int tw_memory_transport_aborted(const tw_memory_transport *mt);
TW_API int tw_memory_transport_write_closed(const tw_memory_transport *mt);
TW_API int tw_memory_transport_reading_paused(const tw_memory_transport *mt);

/* 1 while a protocol is attached and not yet lost. */
TW_API int tw_memory_transport_connected(const tw_memory_transport *mt);

/* Ends the connection: the producer is stopped, then the protocol gets
 * connection_lost with a TW_ERR_CONNECTION_DONE failure when `clean` is
 * non-zero and a TW_ERR_CONNECTION_LOST one otherwise, then its free hook
 * runs. Nothing happens when no protocol is attached. Called from inside one
 * of the protocol's hooks, it plays a connection that dies meanwhile: the
 * protocol must then put off freeing itself until that hook returns (the
 * receivers of twine/protocols.h do). */
TW_API void tw_memory_transport_close(tw_memory_transport *mt, int clean);

/* The peer half-closed its sending side: a protocol with a
 * read_connection_lost hook gets it and the connection stays open; without
 * one the connection closes cleanly, as tw_memory_transport_close(mt, 1). */
TW_API void tw_memory_transport_peer_eof(tw_memory_transport *mt);

/* Sets what tw_transport_write_buffer_size reports (0 at first; writes do not
 * change it) and lets the registered producer react across the watermarks. */
TW_API void tw_memory_transport_set_buffer_size(tw_memory_transport *mt, size_t size);

TW_END_DECLS

#endif
