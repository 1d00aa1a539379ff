/* twine: framing protocols (Twisted's twisted.protocols.basic): lines,
 * netstrings and length-prefixed strings.
 *
 * A receiver is a tw_protocol that turns a byte stream into messages. Embed
 * one in your own protocol struct, give it an ops table, and hand its `proto`
 * to the transport:
 *
 *     typedef struct chat { tw_line_receiver lr; int lines; } chat;
 *
 *     static void chat_line(tw_line_receiver *lr, const char *line, size_t len)
 *     {
 *         chat *c = TW_CONTAINER_OF(lr, chat, lr);
 *         c->lines++;
 *         tw_line_receiver_send_line(lr, line, len);
 *     }
 *     static void chat_free(tw_line_receiver *lr) { free(TW_CONTAINER_OF(lr, chat, lr)); }
 *     static const tw_line_receiver_ops chat_ops = { .line_received = chat_line,
 *                                                    .free = chat_free };
 *
 *     static tw_protocol *build(tw_factory *f, const struct sockaddr *peer)
 *     {
 *         chat *c = calloc(1, sizeof *c);
 *         tw_line_receiver_init(&c->lr, &chat_ops);
 *         return &c->lr.proto;
 *     }
 *
 * Common rules for every receiver below:
 *   - Its `proto.ops` belongs to the receiver; your hooks go in its own ops
 *     table. Every hook is optional. connection_made, connection_lost
 *     (`reason` borrowed) and free are passed through for your own state.
 *   - A message is handed over as (pointer, length), borrowed until the hook
 *     returns (also when the hook feeds the receiver more data), and
 *     NUL-terminated for convenience; it may itself contain NULs.
 *   - Messages arrive in order whatever the fragmentation of the stream.
 *     A hook may change modes, pause, close the connection or send more data
 *     into the receiver. Delivery stops as soon as the transport is
 *     disconnecting (lose_connection or abort_connection was called) or the
 *     connection is lost; what remains buffered is dropped with the receiver.
 *   - Ownership: the receiver owns its buffers. Once its proto was given to
 *     a transport, the transport frees it: the receiver releases its buffers,
 *     then calls your free hook, which releases your struct (if the
 *     connection is lost inside one of your hooks, both happen after that
 *     hook returns). A receiver never given to a transport is released with
 *     tw_X_receiver_destroy, after which you release your struct.
 *   - Only the reactor thread may touch a receiver. */
#ifndef TWINE_PROTOCOLS_H
#define TWINE_PROTOCOLS_H

#include <twine/common.h>
#include <twine/net.h>

TW_BEGIN_DECLS

/* Private: the buffer and state the receivers share. Use the functions. */
typedef struct tw_receiver_core {
    char *buf;                            /* buf[start..end) is unprocessed; buf[end] == '\0' */
    size_t start, end, cap;
    char *retired;                        /* the block a running hook's arguments point into */
    unsigned char busy, lost, doomed, paused;
} tw_receiver_core;

/* LineReceiver ------------------------------------------------------------- */

#define TW_LINE_MAX_LENGTH 16384
#define TW_LINE_DELIMITER_MAX 16

typedef struct tw_line_receiver tw_line_receiver;

typedef struct tw_line_receiver_ops {
    void (*connection_made)(tw_line_receiver *lr);
    /* A line, without its delimiter. NULL: lines are dropped. */
    void (*line_received)(tw_line_receiver *lr, const char *line, size_t len);
    /* In raw mode: whatever arrived, in arbitrary fragments. NULL: dropped. */
    void (*raw_data_received)(tw_line_receiver *lr, const char *data, size_t len);
    /* A line longer than max_length arrived, or max_length + delimiter
     * length bytes arrived without a delimiter. `data` is everything that was
     * buffered from the start of that line on (possibly more than one line);
     * the buffer is empty when the hook runs and delivery stops until more
     * data arrives. NULL: the default, which loses the connection. */
    void (*line_length_exceeded)(tw_line_receiver *lr, const char *data, size_t len);
    void (*connection_lost)(tw_line_receiver *lr, tw_failure *reason);
    void (*free)(tw_line_receiver *lr);
} tw_line_receiver_ops;

struct tw_line_receiver {
    tw_protocol proto;                    /* hand &lr->proto to the transport */
    const tw_line_receiver_ops *ops;      /* borrowed: must outlive lr */
    /* The longest line accepted (TW_LINE_MAX_LENGTH): a line of exactly
     * max_length bytes is delivered, one byte more is too long. May be
     * changed at any time. */
    size_t max_length;
    /* Private. */
    char delimiter_[TW_LINE_DELIMITER_MAX];
    size_t delimiter_len_;
    size_t scanned_;                      /* bytes from start known to hold no delimiter */
    unsigned char raw_mode_;
    tw_receiver_core core_;
};

/* Sets up lr in line mode with delimiter "\r\n" and max_length
 * TW_LINE_MAX_LENGTH; proto.transport and proto.factory are NULL until the
 * transport sets them. `ops` is borrowed. */
TW_API void tw_line_receiver_init(tw_line_receiver *lr, const tw_line_receiver_ops *ops);
/* Releases the buffers of a receiver that was never given to a transport
 * (never from inside its own hooks). lr itself belongs to the caller. */
TW_API void tw_line_receiver_destroy(tw_line_receiver *lr);

/* The delimiter (copied), 1 to TW_LINE_DELIMITER_MAX bytes. 0, or -EINVAL. */
TW_API int  tw_line_receiver_set_delimiter(tw_line_receiver *lr, const char *delimiter, size_t len);

/* From now on the stream goes to raw_data_received, including what is
 * buffered after the current line when called from line_received. */
TW_API void tw_line_receiver_set_raw_mode(tw_line_receiver *lr);
/* Back to lines. `extra` (copied; may be NULL when len is 0) is data the
 * caller took out of the stream and did not use, typically the tail of a
 * raw_data_received chunk: it is parsed for lines before anything that
 * arrives later. From line_received, pass no extra data. */
TW_API void tw_line_receiver_set_line_mode(tw_line_receiver *lr, const char *extra, size_t len);

/* Writes line and the delimiter. 0, or the negative code of
 * tw_transport_writev (-ENOTCONN also when there is no transport). */
TW_API int  tw_line_receiver_send_line(tw_line_receiver *lr, const char *line, size_t len);

/* Empties the buffer of what arrived but was not delivered yet and returns
 * its length; *data (when data is not NULL) points at those bytes,
 * NUL-terminated: from inside a hook, valid until the hook returns; outside,
 * until the receiver gets more data. */
TW_API size_t tw_line_receiver_clear_line_buffer(tw_line_receiver *lr, const char **data);

/* Twisted's pauseProducing / resumeProducing / stopProducing: pausing stops
 * delivering (data keeps being buffered) and pauses the transport's reading;
 * resuming delivers what is buffered and resumes reading; stopping pauses
 * for good and loses the connection. */
TW_API void tw_line_receiver_pause_producing(tw_line_receiver *lr);
TW_API void tw_line_receiver_resume_producing(tw_line_receiver *lr);
TW_API void tw_line_receiver_stop_producing(tw_line_receiver *lr);

/* Producer ops whose arg is a tw_line_receiver *, for
 * tw_transport_register_producer: pause and resume as above; stop only stops
 * delivering (it runs when the connection goes). */
TW_API extern const tw_producer_ops tw_line_receiver_producer;

/* NetstringReceiver -------------------------------------------------------- */

/* "<length>:<data>," with a decimal length without leading zeros. */
#define TW_NETSTRING_MAX_LENGTH 99999

typedef struct tw_netstring_receiver tw_netstring_receiver;

typedef struct tw_netstring_receiver_ops {
    void (*connection_made)(tw_netstring_receiver *nr);
    /* A netstring's payload. NULL: dropped. */
    void (*string_received)(tw_netstring_receiver *nr, const char *data, size_t len);
    void (*connection_lost)(tw_netstring_receiver *nr, tw_failure *reason);
    void (*free)(tw_netstring_receiver *nr);
} tw_netstring_receiver_ops;

struct tw_netstring_receiver {
    tw_protocol proto;                    /* hand &nr->proto to the transport */
    const tw_netstring_receiver_ops *ops; /* borrowed: must outlive nr */
    /* The longest payload accepted (TW_NETSTRING_MAX_LENGTH); may be
     * changed at any time. */
    size_t max_length;
    /* Set (read-only) once the peer sent something that is not a netstring
     * (no length, a leading zero, a length over max_length, no colon, no
     * trailing comma): the connection is then lost and further input is
     * ignored (Twisted's brokenPeer). */
    int broken_peer;
    /* Private. */
    size_t length_;                       /* the length read so far */
    unsigned char digits_, in_payload_;
    tw_receiver_core core_;
};

/* Sets up nr with max_length TW_NETSTRING_MAX_LENGTH. `ops` is borrowed. */
TW_API void tw_netstring_receiver_init(tw_netstring_receiver *nr, const tw_netstring_receiver_ops *ops);
/* As tw_line_receiver_destroy. */
TW_API void tw_netstring_receiver_destroy(tw_netstring_receiver *nr);
/* Writes data as a netstring. 0, or the negative code of tw_transport_writev
 * (-ENOTCONN also when there is no transport). */
TW_API int  tw_netstring_receiver_send_string(tw_netstring_receiver *nr, const char *data, size_t len);

/* Int8/16/32StringReceiver ------------------------------------------------- */

/* Strings prefixed by their length as an unsigned 1, 2 or 4-byte integer in
 * network byte order. */
#define TW_INT_MAX_LENGTH 99999

typedef struct tw_int_receiver tw_int_receiver;

typedef struct tw_int_receiver_ops {
    void (*connection_made)(tw_int_receiver *ir);
    /* A string, without its prefix. NULL: dropped. */
    void (*string_received)(tw_int_receiver *ir, const char *data, size_t len);
    /* A prefix announced more than max_length bytes. The prefix and what
     * follows stay buffered and delivery stops until more data arrives
     * (which calls the hook again). NULL: the default, which loses the
     * connection. */
    void (*length_limit_exceeded)(tw_int_receiver *ir, size_t length);
    void (*connection_lost)(tw_int_receiver *ir, tw_failure *reason);
    void (*free)(tw_int_receiver *ir);
} tw_int_receiver_ops;

struct tw_int_receiver {
    tw_protocol proto;                    /* hand &ir->proto to the transport */
    const tw_int_receiver_ops *ops;       /* borrowed: must outlive ir */
    /* The longest string accepted (TW_INT_MAX_LENGTH); may be changed at any
     * time. */
    size_t max_length;
    /* Private. */
    unsigned char prefix_len_;
    tw_receiver_core core_;
};

/* Set up ir for 4, 2 or 1-byte prefixes, with max_length TW_INT_MAX_LENGTH.
 * `ops` is borrowed. */
TW_API void tw_int32_receiver_init(tw_int_receiver *ir, const tw_int_receiver_ops *ops);
TW_API void tw_int16_receiver_init(tw_int_receiver *ir, const tw_int_receiver_ops *ops);
TW_API void tw_int8_receiver_init(tw_int_receiver *ir, const tw_int_receiver_ops *ops);
/* As tw_line_receiver_destroy. */
TW_API void tw_int_receiver_destroy(tw_int_receiver *ir);
/* Writes the prefix and data. 0; -EMSGSIZE when len does not fit the prefix
 * (nothing is written); or the negative code of tw_transport_writev
 * (-ENOTCONN also when there is no transport). */
TW_API int  tw_int_receiver_send_string(tw_int_receiver *ir, const char *data, size_t len);

/* As the line receiver's. */
TW_API void tw_int_receiver_pause_producing(tw_int_receiver *ir);
TW_API void tw_int_receiver_resume_producing(tw_int_receiver *ir);
TW_API void tw_int_receiver_stop_producing(tw_int_receiver *ir);
TW_API extern const tw_producer_ops tw_int_receiver_producer;

TW_END_DECLS

#endif
