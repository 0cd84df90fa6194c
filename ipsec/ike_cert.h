/*
 * X.509 certificate authentication for IKEv2 (RFC 7296 §3.6-3.8) with
 * RFC 7427 digital signatures (AUTH method 14): RSA PKCS#1 v1.5 and ECDSA,
 * SHA-256. Certificates and keys are loaded once (PEM or DER files) into
 * struct ike_cert_auth, which the IKE peer config points to.
 *
 * Identity binding: a peer's FQDN identity must appear as a dNSName in its
 * certificate's subjectAltName (or, without SANs, as its subject CN); the
 * certificate must chain to the configured CA.
 */
#ifndef ESPROXY_IKE_CERT_H
#define ESPROXY_IKE_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#define IKE_CERT_ENCODING_X509_SIG  4       /* CERT / CERTREQ encoding */
#define IKE_HASH_SHA2_256           2       /* RFC 7427 hash algorithm ids */
#define IKE_HASH_SHA2_384           3
#define IKE_HASH_SHA2_512           4
#define IKE_SIG_MAX                 (1 + 32 + MBEDTLS_PK_SIGNATURE_MAX_SIZE)

struct ike_cert_auth {
    mbedtls_x509_crt own;       /* our certificate (first) and chain */
    mbedtls_pk_context key;
    mbedtls_x509_crt ca;
    uint8_t ca_keyid[20];       /* SHA-1 of the CA's SubjectPublicKeyInfo (CERTREQ) */
};

/* Loads files; on error returns -1 with a message naming the file in err. */
int ike_cert_load(struct ike_cert_auth **auth_r, const char *cert, const char *key, const char *ca,
                  char *err, size_t errlen);
void ike_cert_free(struct ike_cert_auth **auth);

/* Our end-entity certificate, DER. */
void ike_cert_own_der(const struct ike_cert_auth *a, const uint8_t **der, size_t *len);

/* AUTH payload data for method 14: ASN.1 length, AlgorithmIdentifier,
 * signature over signed octets. 0 or -1. */
int ike_cert_sign(const struct ike_cert_auth *a, const uint8_t *octets, size_t octets_len,
                  uint8_t *out, size_t cap, size_t *len_r);

/* Verifies the peer: certificate DER chains to our CA, carries the FQDN
 * identity id, and auth (method 14 data) is its signature over octets.
 * 0, or -1 with a short reason in why. */
int ike_cert_verify_peer(const struct ike_cert_auth *a, const uint8_t *cert_der, size_t cert_len,
                         const uint8_t *id, size_t id_len, const uint8_t *auth, size_t auth_len,
                         const uint8_t *octets, size_t octets_len, const char **why);

#endif
