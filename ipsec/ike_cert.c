/* X.509 and RFC 7427 signature authentication; see ike_cert.h. */
#include "ipsec/ike_cert.h"
#include "ipsec/ike_crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/asn1.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha1.h>

/* RFC 7427 Appendix A: AlgorithmIdentifier encodings. */
struct sig_alg {
    const uint8_t *der;
    size_t len;
    mbedtls_pk_type_t pk;
    mbedtls_md_type_t md;
};

static const uint8_t alg_rsa_sha256[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                          0x01, 0x01, 0x0b, 0x05, 0x00 };
static const uint8_t alg_rsa_sha384[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                          0x01, 0x01, 0x0c, 0x05, 0x00 };
static const uint8_t alg_rsa_sha512[] = { 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                          0x01, 0x01, 0x0d, 0x05, 0x00 };
static const uint8_t alg_ecdsa_sha256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
static const uint8_t alg_ecdsa_sha384[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03 };
static const uint8_t alg_ecdsa_sha512[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04 };

static const struct sig_alg sig_algs[] = {
    { alg_rsa_sha256, sizeof(alg_rsa_sha256), MBEDTLS_PK_RSA, MBEDTLS_MD_SHA256 },
    { alg_rsa_sha384, sizeof(alg_rsa_sha384), MBEDTLS_PK_RSA, MBEDTLS_MD_SHA384 },
    { alg_rsa_sha512, sizeof(alg_rsa_sha512), MBEDTLS_PK_RSA, MBEDTLS_MD_SHA512 },
    { alg_ecdsa_sha256, sizeof(alg_ecdsa_sha256), MBEDTLS_PK_ECDSA, MBEDTLS_MD_SHA256 },
    { alg_ecdsa_sha384, sizeof(alg_ecdsa_sha384), MBEDTLS_PK_ECDSA, MBEDTLS_MD_SHA384 },
    { alg_ecdsa_sha512, sizeof(alg_ecdsa_sha512), MBEDTLS_PK_ECDSA, MBEDTLS_MD_SHA512 },
};

static void ike_cert_errmsg(char *err, size_t errlen, const char *what, const char *path, int rc)
{
    char buf[128];

    mbedtls_strerror(rc, buf, sizeof(buf));
    snprintf(err, errlen, "%s '%s': %s", what, path, buf);
}

int ike_cert_load(struct ike_cert_auth **auth_r, const char *cert, const char *key, const char *ca,
                  char *err, size_t errlen)
{
    struct ike_cert_auth *a = calloc(1, sizeof(*a));
    int rc;

    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    mbedtls_x509_crt_init(&a->own);
    mbedtls_x509_crt_init(&a->ca);
    mbedtls_pk_init(&a->key);
    if ((rc = mbedtls_x509_crt_parse_file(&a->own, cert)) != 0) {
        ike_cert_errmsg(err, errlen, "certificate", cert, rc);
    } else if ((rc = mbedtls_pk_parse_keyfile(&a->key, key, NULL)) != 0) {
        ike_cert_errmsg(err, errlen, "private key", key, rc);
    } else if ((rc = mbedtls_pk_check_pair(&a->own.pk, &a->key)) != 0) {
        snprintf(err, errlen, "private key '%s' does not match certificate '%s'", key, cert);
    } else if ((rc = mbedtls_x509_crt_parse_file(&a->ca, ca)) != 0) {
        ike_cert_errmsg(err, errlen, "CA certificate", ca, rc);
    } else if (!mbedtls_pk_can_do(&a->key, MBEDTLS_PK_RSA) && !mbedtls_pk_can_do(&a->key, MBEDTLS_PK_ECDSA)) {
        snprintf(err, errlen, "private key '%s': only RSA and ECDSA keys are supported", key);
        rc = -1;
    }
    if (rc != 0) {
        ike_cert_free(&a);
        return -1;
    }
    mbedtls_sha1_ret(a->ca.pk_raw.p, a->ca.pk_raw.len, a->ca_keyid);
    *auth_r = a;
    return 0;
}

void ike_cert_free(struct ike_cert_auth **ap)
{
    struct ike_cert_auth *a = *ap;

    if (a == NULL)
        return;
    mbedtls_x509_crt_free(&a->own);
    mbedtls_x509_crt_free(&a->ca);
    mbedtls_pk_free(&a->key);
    free(a);
    *ap = NULL;
}

void ike_cert_own_der(const struct ike_cert_auth *a, const uint8_t **der, size_t *len)
{
    *der = a->own.raw.p;
    *len = a->own.raw.len;
}

static int ike_cert_hash(mbedtls_md_type_t md, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len)
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_type(md);

    if (info == NULL || mbedtls_md(info, in, len, out) != 0)
        return -1;
    *out_len = mbedtls_md_get_size(info);
    return 0;
}

int ike_cert_sign(const struct ike_cert_auth *a, const uint8_t *octets, size_t octets_len,
                  uint8_t *out, size_t cap, size_t *len_r)
{
    const struct sig_alg *alg = mbedtls_pk_can_do(&a->key, MBEDTLS_PK_RSA) ? &sig_algs[0] : &sig_algs[3];
    uint8_t hash[MBEDTLS_MD_MAX_SIZE];
    size_t hash_len, sig_len = 0;

    if (cap < 1 + alg->len + MBEDTLS_PK_SIGNATURE_MAX_SIZE ||
        ike_cert_hash(alg->md, octets, octets_len, hash, &hash_len) != 0)
        return -1;
    out[0] = (uint8_t)alg->len;
    memcpy(out + 1, alg->der, alg->len);
    if (mbedtls_pk_sign((mbedtls_pk_context *)&a->key, alg->md, hash, hash_len, out + 1 + alg->len, &sig_len,
                        ike_random_mbedtls, NULL) != 0)
        return -1;
    *len_r = 1 + alg->len + sig_len;
    return 0;
}

/* FQDN identity against subjectAltName dNSNames, else the subject CN. */
static bool ike_cert_has_identity(const mbedtls_x509_crt *crt, const uint8_t *id, size_t id_len)
{
    const mbedtls_x509_sequence *san;
    const mbedtls_x509_name *n;
    bool have_san = false;

    for (san = &crt->subject_alt_names; san != NULL && san->buf.p != NULL; san = san->next) {
        if (san->buf.tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME))
            continue;
        have_san = true;
        if (san->buf.len == id_len && strncasecmp((const char *)san->buf.p, (const char *)id, id_len) == 0)
            return true;
    }
    if (have_san)
        return false;
    for (n = &crt->subject; n != NULL; n = n->next)
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 && n->val.len == id_len &&
            strncasecmp((const char *)n->val.p, (const char *)id, id_len) == 0)
            return true;
    return false;
}

static const struct sig_alg *ike_cert_alg_find(const uint8_t *auth, size_t auth_len)
{
    size_t alen;

    if (auth_len < 1)
        return NULL;
    alen = auth[0];
    if (alen == 0 || alen >= auth_len)
        return NULL;
    for (size_t i = 0; i < sizeof(sig_algs) / sizeof(sig_algs[0]); i++)
        if (sig_algs[i].len == alen && memcmp(sig_algs[i].der, auth + 1, alen) == 0)
            return &sig_algs[i];
    return NULL;
}

int ike_cert_verify_peer(const struct ike_cert_auth *a, const uint8_t *cert_der, size_t cert_len,
                         const uint8_t *id, size_t id_len, const uint8_t *auth, size_t auth_len,
                         const uint8_t *octets, size_t octets_len, const char **why)
{
    const struct sig_alg *alg = ike_cert_alg_find(auth, auth_len);
    mbedtls_x509_crt peer;
    uint8_t hash[MBEDTLS_MD_MAX_SIZE];
    size_t hash_len;
    uint32_t flags = 0;
    int rc = -1;

    mbedtls_x509_crt_init(&peer);
    if (alg == NULL)
        *why = "unsupported_signature_algorithm";
    else if (mbedtls_x509_crt_parse_der(&peer, cert_der, cert_len) != 0)
        *why = "bad_certificate";
    else if (mbedtls_x509_crt_verify(&peer, (mbedtls_x509_crt *)&a->ca, NULL, NULL, &flags, NULL, NULL) != 0)
        *why = "certificate_not_trusted";
    else if (!ike_cert_has_identity(&peer, id, id_len))
        *why = "identity_not_in_certificate";
    else if (!mbedtls_pk_can_do(&peer.pk, alg->pk))
        *why = "key_type_mismatch";
    else if (ike_cert_hash(alg->md, octets, octets_len, hash, &hash_len) != 0 ||
             mbedtls_pk_verify(&peer.pk, alg->md, hash, hash_len, auth + 1 + auth[0],
                               auth_len - 1 - auth[0]) != 0)
        *why = "bad_signature";
    else
        rc = 0;
    mbedtls_x509_crt_free(&peer);
    return rc;
}
