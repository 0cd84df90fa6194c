/*
 * Server-side TLS configuration for client connections (mbedTLS 2.28).
 *
 * One struct tls_server per listener: the certificate chain and key are
 * loaded once and shared by every connection accepted on it. Policy:
 * TLS 1.2 only (mbedTLS 2.28 has no TLS 1.3 stack), ECDHE with AES-GCM or
 * ChaCha20-Poly1305 only, X25519/P-256/P-384, SHA-2 signatures, no
 * renegotiation. Resumption: RFC 5077 session tickets (keys rotated by
 * mbedtls_ssl_ticket) and a server-side session-ID cache.
 *
 * Everything runs on the loop thread. A tls_server must outlive every
 * channel that uses it (free it after chan_count() reached 0 or after the
 * listener's channels are closed).
 */
#ifndef ESPROXY_TLS_H
#define ESPROXY_TLS_H

#include <stddef.h>

#include <mbedtls/ssl.h>

struct tls_server;

/* 0, or -1 with a message naming the file in err. */
int tls_server_new(struct tls_server **t_r, const char *cert_file,
                   const char *key_file, char *err, size_t errlen);
void tls_server_free(struct tls_server **t);

/* The shared configuration, for mbedtls_ssl_setup. */
const mbedtls_ssl_config *tls_server_config(const struct tls_server *t);

/* Short text for an mbedTLS error code (never secret material). */
const char *tls_strerror(int err, char *buf, size_t len);

#endif
