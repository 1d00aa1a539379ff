/* twine: what the TLS sources share: contexts, errors, and the TLS layer that
 * runs over a TCP connection. */
#ifndef TWINE_TLS_INTERNAL_H
#define TWINE_TLS_INTERNAL_H

#include "net_internal.h"
#include <openssl/ssl.h>
#include <twine/tls.h>

/* Contexts (tls_context.c) ----------------------------------------------------- */

/* A client context for opt (NULL: the defaults), with one reference for the
 * caller, or NULL and *why (a TW_ERR_TLS failure for the caller) when a file
 * cannot be loaded. The default context is kept for reuse until the reactor
 * shuts down. */
SSL_CTX *tw_tls_client_context(const tw_tls_options *opt, tw_failure **why);

/* A server context with one reference for the caller, or NULL and *err (a
 * negative errno; OpenSSL's reason is logged). */
SSL_CTX *tw_tls_server_context(const tw_tls_options *opt, int *err);

/* Makes a client's ssl send `name` as SNI and verify it (an IP literal: verify
 * it, send nothing). */
void tw_tls_set_peer_name(SSL *ssl, const char *name);

/* Errors (tls_error.c) ----------------------------------------------------------- */

/* A TW_ERR_TLS failure, message "<what>: <reason>", for the SSL_get_error()
 * result `ssl_error` of a call on ssl; `name` is the name that was verified.
 * Empties OpenSSL's error queue. */
tw_failure *tw_tls_failure(const SSL *ssl, int ssl_error, const char *what, const char *name);

/* Writes OpenSSL's first queued error as text ("error:...:reason") into buf,
 * or `fallback` when none is queued, empties the queue, and returns that
 * error's reason code (ERR_GET_REASON; 0 for none). */
int tw_tls_take_error(char *buf, size_t size, const char *fallback);

/* The TLS layer (tls_transport.c) ---------------------------------------------- */

typedef struct tw_tls tw_tls;

/* What a client attempt hears from its TLS layer. */
typedef struct tw_tls_hooks {
    /* The handshake is over: p is the protocol, connected and after its
     * connection_made, or why (borrowed) says what failed. Called once,
     * unless abandoned first. */
    void (*settled)(void *arg, tw_protocol *p, tw_failure *why);
    /* The layer is freed (after the TCP connection ended). */
    void (*released)(void *arg);
} tw_tls_hooks;

/* A TLS layer over a TCP connection to come, with ctx (SSL_new takes a
 * reference). A client (`client`) verifies and sends `name`; `target` names
 * the peer in messages (NULL: its address). f builds the protocol once the
 * handshake succeeded. name, target, f, hooks and arg are borrowed until
 * released. Servers pass no hooks: their failed handshakes are logged. */
tw_tls *tw_tls_new(SSL_CTX *ctx, bool client, const char *name, const char *target,
                   tw_factory *f, const tw_tls_hooks *hooks, void *arg);

/* The protocol to give the TCP connection: it owns the layer from then on. */
tw_protocol *tw_tls_tcp_protocol(tw_tls *t);

/* 1 once the handshake and verification succeeded. */
bool tw_tls_established(const tw_tls *t);

/* Aborts the connection before the handshake settled; settled is not called. */
void tw_tls_abandon(tw_tls *t);

#endif
