/* Server-side TLS configuration; see tls.h. */
#include "proxy/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#define TLS_TICKET_LIFETIME_S   (12 * 3600)
#define TLS_CACHE_ENTRIES       4096
#define TLS_CACHE_TIMEOUT_S     3600

struct tls_server {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    mbedtls_ssl_cache_context cache;
    mbedtls_ssl_ticket_context ticket;
    mbedtls_ssl_config conf;
};

/* ECDHE only (forward secrecy), AEAD only. mbedTLS picks among these the
 * suites that match the certificate's key type. */
static const int tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    0
};

static const mbedtls_ecp_group_id tls_curves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE
};

static const int tls_sig_hashes[] = {
    MBEDTLS_MD_SHA512, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA256, MBEDTLS_MD_NONE
};

const char *tls_strerror(int err, char *buf, size_t len)
{
    mbedtls_strerror(err, buf, len);
    return buf;
}

const mbedtls_ssl_config *tls_server_config(const struct tls_server *t)
{
    return &t->conf;
}

static int tls_server_load(struct tls_server *t, const char *cert_file,
                           const char *key_file, char *err, size_t errlen)
{
    char msg[128];
    int rc;

    rc = mbedtls_x509_crt_parse_file(&t->chain, cert_file);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot load certificate chain: %s",
                 cert_file, tls_strerror(rc, msg, sizeof(msg)));
        return -1;
    }
    /* The key file is secret: name it, never echo its contents. */
    rc = mbedtls_pk_parse_keyfile(&t->key, key_file, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot load private key: %s",
                 key_file, tls_strerror(rc, msg, sizeof(msg)));
        return -1;
    }
    if (!mbedtls_pk_can_do(&t->key, MBEDTLS_PK_ECDSA) &&
        !mbedtls_pk_can_do(&t->key, MBEDTLS_PK_RSA)) {
        snprintf(err, errlen, "%s: key is neither RSA nor ECDSA", key_file);
        return -1;
    }
    if (mbedtls_pk_check_pair(&t->chain.pk, &t->key) != 0) {
        snprintf(err, errlen, "%s: key does not match the certificate in %s",
                 key_file, cert_file);
        return -1;
    }
    return 0;
}

static int tls_server_configure(struct tls_server *t, char *err, size_t errlen)
{
    static const char pers[] = "esproxy tls server";
    mbedtls_ssl_config *conf = &t->conf;
    char msg[128];
    int rc;

    rc = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                               (const unsigned char *)pers, sizeof(pers) - 1);
    if (rc == 0)
        rc = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER,
                                         MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc == 0)
        rc = mbedtls_ssl_ticket_setup(&t->ticket, mbedtls_ctr_drbg_random,
                                      &t->drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                      TLS_TICKET_LIFETIME_S);
    if (rc == 0)
        rc = mbedtls_ssl_conf_own_cert(conf, &t->chain, &t->key);
    if (rc != 0) {
        snprintf(err, errlen, "tls setup: %s", tls_strerror(rc, msg, sizeof(msg)));
        return -1;
    }
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(conf, tls_suites);
    mbedtls_ssl_conf_curves(conf, tls_curves);
    mbedtls_ssl_conf_sig_hashes(conf, tls_sig_hashes);
    mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    mbedtls_ssl_conf_extended_master_secret(conf, MBEDTLS_SSL_EXTENDED_MS_ENABLED);
    mbedtls_ssl_conf_session_tickets_cb(conf, mbedtls_ssl_ticket_write,
                                        mbedtls_ssl_ticket_parse, &t->ticket);
    mbedtls_ssl_cache_set_max_entries(&t->cache, TLS_CACHE_ENTRIES);
    mbedtls_ssl_cache_set_timeout(&t->cache, TLS_CACHE_TIMEOUT_S);
    mbedtls_ssl_conf_session_cache(conf, &t->cache, mbedtls_ssl_cache_get,
                                   mbedtls_ssl_cache_set);
    return 0;
}

int tls_server_new(struct tls_server **t_r, const char *cert_file,
                   const char *key_file, char *err, size_t errlen)
{
    struct tls_server *t;

    *t_r = NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, errlen, "%s: out of memory", cert_file);
        return -1;
    }
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_x509_crt_init(&t->chain);
    mbedtls_pk_init(&t->key);
    mbedtls_ssl_cache_init(&t->cache);
    mbedtls_ssl_ticket_init(&t->ticket);
    mbedtls_ssl_config_init(&t->conf);
    if (tls_server_load(t, cert_file, key_file, err, errlen) != 0 ||
        tls_server_configure(t, err, errlen) != 0) {
        tls_server_free(&t);
        return -1;
    }
    *t_r = t;
    return 0;
}

void tls_server_free(struct tls_server **tp)
{
    struct tls_server *t = *tp;

    if (t == NULL)
        return;
    *tp = NULL;
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_ssl_ticket_free(&t->ticket);
    mbedtls_ssl_cache_free(&t->cache);
    mbedtls_pk_free(&t->key);
    mbedtls_x509_crt_free(&t->chain);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t);
}
