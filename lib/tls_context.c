/* twine: OpenSSL contexts for TLS clients and servers, and a client's peer
 * name. Every context speaks TLS 1.2 or later and refuses renegotiation. */
#include "tls_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <unistd.h>

/* The context of tw_connect_tls without options: loading the system store
 * costs more than a handshake, so it is kept until the reactor shuts down. */
static SSL_CTX *default_client;
static bool drop_registered;

static void drop_default_client(void *arg)
{
    SSL_CTX_free(default_client);
    default_client = NULL;
}

static SSL_CTX *new_context(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx)
        abort();                          /* out of memory, as tw_xmalloc */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

/* Loading files ----------------------------------------------------------------------- */

/* What went wrong: a message, and OpenSSL's reason code. */
typedef struct problem {
    char msg[1024];
    int code;
} problem;

static bool blame(problem *p, const char *what, const char *file)
{
    char reason[256];
    p->code = tw_tls_take_error(reason, sizeof reason, "unknown error");
    snprintf(p->msg, sizeof p->msg, "%s %s: %s", what, file, reason);
    return false;
}

/* A certificate chain and its key (key NULL: in the same file). */
static bool load_identity(SSL_CTX *ctx, const char *cert, const char *key, problem *p)
{
    if (!key)
        key = cert;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return blame(p, "cannot load the certificate", cert);
    /* This also checks that the key is the certificate's. */
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        return blame(p, "cannot load the private key", key);
    return true;
}

static bool load_cas(SSL_CTX *ctx, const char *ca_file, problem *p)
{
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
        return blame(p, "cannot load the CA file", ca_file);
    return true;
}

/* Clients --------------------------------------------------------------------------------- */

static bool setup_client(SSL_CTX *ctx, const tw_tls_options *opt, problem *p)
{
    if (opt->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (opt->ca_file && !load_cas(ctx, opt->ca_file, p))
            return false;
        if (!opt->ca_file && SSL_CTX_set_default_verify_paths(ctx) != 1)
            return blame(p, "cannot load the system's trusted CAs from",
                         X509_get_default_cert_file());
    }
    if (opt->key_file && !opt->cert_file) {
        snprintf(p->msg, sizeof p->msg, "a key_file (%s) needs a cert_file", opt->key_file);
        p->code = 0;
        return false;
    }
    return !opt->cert_file || load_identity(ctx, opt->cert_file, opt->key_file, p);
}

SSL_CTX *tw_tls_client_context(const tw_tls_options *opt, tw_failure **why)
{
    static const tw_tls_options defaults;
    if (!opt)
        opt = &defaults;
    bool is_default = !opt->ca_file && !opt->insecure && !opt->cert_file && !opt->key_file;
    if (is_default && default_client) {
        SSL_CTX_up_ref(default_client);
        return default_client;
    }

    SSL_CTX *ctx = new_context(TLS_client_method());
    problem p;
    if (!setup_client(ctx, opt, &p)) {
        *why = tw_failure_new(TW_ERR_TLS, p.code, NULL, "%s", p.msg);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (is_default) {
        if (!drop_registered) {
            tw_reactor_add_shutdown_trigger(drop_default_client, NULL);
            drop_registered = true;
        }
        SSL_CTX_up_ref(ctx);
        default_client = ctx;
    }
    return ctx;
}

/* Servers ---------------------------------------------------------------------------------- */

/* 0, or the negative errno that keeps `path` from being read (NULL: 0). */
static int readable(const char *path)
{
    return !path || access(path, R_OK) == 0 ? 0 : -errno;
}

static bool setup_server(SSL_CTX *ctx, const tw_tls_options *opt, problem *p)
{
    if (!load_identity(ctx, opt->cert_file, opt->key_file, p))
        return false;
    if (opt->ca_file) {
        if (!load_cas(ctx, opt->ca_file, p))
            return false;
        /* Tell clients which CAs their certificate must come from. */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(opt->ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    /* Resuming a session whose client was verified needs a context id. */
    static const unsigned char id[] = "twine";
    SSL_CTX_set_session_id_context(ctx, id, sizeof id - 1);
    return true;
}

SSL_CTX *tw_tls_server_context(const tw_tls_options *opt, int *err)
{
    if (!opt || !opt->cert_file) {
        *err = -EINVAL;
        return NULL;
    }
    int e = readable(opt->cert_file);
    if (e == 0)
        e = readable(opt->key_file);
    if (e == 0)
        e = readable(opt->ca_file);
    if (e < 0) {
        *err = e;
        return NULL;
    }

    SSL_CTX *ctx = new_context(TLS_server_method());
    problem p;
    if (!setup_server(ctx, opt, &p)) {
        tw_log(TW_LOG_ERROR, "TLS server: %s", p.msg);
        SSL_CTX_free(ctx);
        *err = -EINVAL;
        return NULL;
    }
    return ctx;
}

/* A client's peer name ------------------------------------------------------------------------ */

static bool is_ip_literal(const char *name)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

void tw_tls_set_peer_name(SSL *ssl, const char *name)
{
    if (!name || !*name)
        return;
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    if (is_ip_literal(name)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, name);
        return;
    }
    /* "example.com." is a fully qualified spelling of "example.com": SNI
     * and certificates name it without the final dot. */
    char *bare = tw_xstrdup(name);
    size_t len = strlen(bare);
    if (len > 1 && bare[len - 1] == '.')
        bare[len - 1] = '\0';
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl, bare);
    SSL_set_tlsext_host_name(ssl, bare);
    free(bare);
}
