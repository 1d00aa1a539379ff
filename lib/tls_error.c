/* twine: TW_ERR_TLS failures from OpenSSL's error queue and verify result. */
#include "tls_internal.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>

int tw_tls_take_error(char *buf, size_t size, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, size);
    else
        snprintf(buf, size, "%s", fallback);
    ERR_clear_error();
    return e ? ERR_GET_REASON(e) : 0;
}

tw_failure *tw_tls_failure(const SSL *ssl, int ssl_error, const char *what, const char *name)
{
    long verified = SSL_get_verify_result(ssl);
    /* Peer verification on, and it refused the certificate: that is what
     * ended the handshake, whatever else OpenSSL queued. */
    if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) && verified != X509_V_OK) {
        ERR_clear_error();
        if (verified == X509_V_ERR_HOSTNAME_MISMATCH || verified == X509_V_ERR_IP_ADDRESS_MISMATCH)
            return tw_failure_new(TW_ERR_TLS, (int)verified, NULL,
                                  "%s: host name mismatch: the certificate is not valid for %s",
                                  what, name ? name : "the peer");
        return tw_failure_new(TW_ERR_TLS, (int)verified, NULL, "%s: certificate verify failed: %s",
                              what, X509_verify_cert_error_string(verified));
    }
    char reason[256];
    int code = tw_tls_take_error(reason, sizeof reason, ssl_error == SSL_ERROR_SYSCALL
                                                        ? "unexpected end of the connection"
                                                        : "unknown error");
    return tw_failure_new(TW_ERR_TLS, code, NULL, "%s: %s", what, reason);
}
