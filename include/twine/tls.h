/* twine: TLS over TCP, with OpenSSL.
 *
 * A TLS connection is a transport like any other: the protocol on it sees
 * plaintext, and every tw_transport_* function works on it. Under it, a TCP
 * connection carries the ciphertext; the reactor never blocks on either.
 *
 * Clients verify the server's certificate chain and host name by default,
 * against the system's trusted CAs, and send the name as SNI. The protocol
 * is built, and gets connection_made, only once the handshake and that
 * verification have succeeded: a protocol never talks to an unverified peer,
 * and never writes before the handshake is done. Servers work the same way:
 * build_protocol runs once the handshake is done.
 *
 * Closing follows Twisted's TLSMemoryBIOProtocol. lose_connection sends a
 * close_notify after what was written, then closes the TCP connection;
 * connection_lost then reports TW_ERR_CONNECTION_DONE. The peer's
 * close_notify is a clean close too (TW_ERR_CONNECTION_DONE): it is answered
 * with ours, and the connection closes, unless the protocol has
 * read_connection_lost, which is then called and the connection stays open
 * for writing. A TCP connection that ends without a close_notify may have
 * lost data to an attacker (truncation): connection_lost reports
 * TW_ERR_CONNECTION_LOST, code 0, with the TW_ERR_TLS failure as its cause.
 * So does a TLS error after the handshake (a corrupted record, say).
 * lose_write_connection sends a close_notify and shuts down the TCP sending
 * side; reading goes on.
 *
 * Flow control: the write buffer of a TLS transport is the ciphertext that
 * the TCP connection under it has not handed to the kernel (plaintext is
 * encrypted at once), so its producer is paused above the high watermark and
 * resumed once the TCP connection has flushed. Pausing reading pauses the
 * TCP connection and holds back the records already received.
 *
 * Every connection speaks TLS 1.2 or later and refuses renegotiation. */
#ifndef TWINE_TLS_H
#define TWINE_TLS_H

#include <twine/common.h>
#include <twine/deferred.h>
#include <twine/net.h>

TW_BEGIN_DECLS

typedef struct tw_tls_options {      /* zero-initialised means the defaults */
    /* PEM CA bundle to trust; NULL: the system store. On a server, setting it
     * requires every client to present a certificate signed by one of them
     * (with TLS 1.3 a client without one has finished its side of the
     * handshake when the server refuses it: it loses the connection,
     * TW_ERR_CONNECTION_LOST caused by a TW_ERR_TLS failure). */
    const char *ca_file;
    /* 1: clients verify neither the certificate nor the host name (the name
     * is still sent as SNI). Servers ignore it. */
    int insecure;
    /* SNI and the name verified; NULL: the host argument. An IP literal is
     * verified against the certificate's IP addresses and sent as no SNI. */
    const char *server_name;
    /* PEM certificate chain and its key (key_file NULL: the key is in
     * cert_file): required for servers; for clients, what they show a server
     * that asks for a certificate. */
    const char *cert_file, *key_file;
} tw_tls_options;

/* Like tw_connect_tcp, then a TLS handshake. The strings of `opt` (NULL: the
 * defaults) are read during the call only. The Deferred (the caller's
 * reference) fires with the connected tw_protocol * (borrowed: valid until
 * its connection_lost returns), right after connection_made, once the
 * handshake and the verification succeeded. It errbacks with:
 *   TW_ERR_TLS: the handshake failed. The code is the X509_V_ERR_* verify
 *     result when the certificate was refused, with a message such as
 *     "...: certificate verify failed: unable to get local issuer
 *     certificate" or "...: host name mismatch: ..."; otherwise OpenSSL's
 *     reason code (ERR_GET_REASON), with its error string in the message
 *     (a CA or certificate file that cannot be loaded, a peer that is no
 *     TLS server and closes or answers garbage). A TCP connection lost during
 *     the handshake is a TW_ERR_TLS failure too, code 0, with the TCP
 *     failure as its cause.
 *   TW_ERR_TIMEOUT (code ETIMEDOUT) after `timeout` seconds (0: 30 s), which
 *     cover the lookup, the connection and the handshake.
 *   TW_ERR_CANCELLED when cancelled before the handshake succeeded (the
 *     attempt is aborted); once it has, cancelling does nothing.
 *   TW_ERR_CONNECTION_DONE when build_protocol refused the connection (it is
 *     then closed cleanly).
 *   whatever tw_connect_tcp fails with (TW_ERR_SYS, TW_ERR_DNS, TW_ERR_USAGE).
 * f->connection_failed hears the same failure first; f->connection_lost is
 * called after the protocol's connection_lost. `f` is borrowed and must
 * outlive the connection. */
TW_API tw_deferred *tw_connect_tls(const char *host, int port, tw_factory *f,
                                   const tw_tls_options *opt, double timeout);

/* Like tw_listen_tcp, each accepted connection doing a server handshake
 * first; build_protocol runs once it succeeded. A failed handshake is logged
 * at TW_LOG_DEBUG and closes the connection. The certificate, key and CA
 * files are loaded now (the strings are read during the call only). Returns
 * the port (owned by the reactor until tw_port_stop_listening), or NULL with
 * *err: -EINVAL without opt, cert_file or build_protocol, or when a file is
 * no valid PEM or the key does not match the certificate (OpenSSL's reason
 * is logged at TW_LOG_ERROR); the negative errno when a file cannot be read
 * (-ENOENT...); or tw_listen_tcp's errors. `f` is borrowed and must
 * outlive the port and its connections. */
TW_API tw_port *tw_listen_tls(const char *interface, int port, tw_factory *f,
                              const tw_tls_options *opt, int *err);

/* The server name (SNI) of a TLS transport: on a server, the one the client
 * sent; on a client, the one it sent. NULL when there was none, or when t is
 * no TLS transport. Borrowed from t. */
TW_API const char *tw_tls_server_name(const tw_transport *t);

TW_END_DECLS

#endif
