/*
 * IKEv2 Diffie-Hellman groups: 31 Curve25519 (RFC 8031) on our own
 * X25519 (ipsec/x25519.c, RFC 7748), 19 ECP-256 (RFC 5903) and 14
 * MODP-2048 (RFC 3526) on mbedTLS. The wire formats and the checks on
 * the peer's value are described in ike_crypto.h.
 *
 * The public value is computed once, at init, and kept as wire bytes.
 * The private key is kept in dh->priv for every group (for Curve25519:
 * the clamped scalar, read little-endian), so ike_dh_free wipes it
 * through mbedTLS's zeroizing frees and then the rest.
 * Every path that fails leaves the struct freeable.
 */
#include "ipsec/ike_crypto.h"

#include "ipsec/ike_defs.h"
#include "ipsec/x25519.h"

#include <string.h>

#include <mbedtls/dhm.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/platform_util.h>

#define X25519_LEN      32u
#define P256_COORD_LEN  32u
#define MODP2048_LEN    256u
#define MODP_EXP_LEN    32u     /* 256-bit exponents, RFC 3526 §8 */

static const uint8_t modp2048_p[] = MBEDTLS_DHM_RFC3526_MODP_2048_P_BIN;

bool ike_dh_supported(uint16_t group)
{
    return ike_dh_public_len(group) != 0;
}

size_t ike_dh_public_len(uint16_t group)
{
    switch (group) {
    case IKE_DH_CURVE25519: return X25519_LEN;
    case IKE_DH_ECP256: return 2 * P256_COORD_LEN;
    case IKE_DH_MODP2048: return MODP2048_LEN;
    }
    return 0;
}

size_t ike_dh_secret_len(uint16_t group)
{
    switch (group) {
    case IKE_DH_CURVE25519: return X25519_LEN;
    case IKE_DH_ECP256: return P256_COORD_LEN;
    case IKE_DH_MODP2048: return MODP2048_LEN;
    }
    return 0;
}

static void ike__dh_zero_init(struct ike_dh *dh, uint16_t group)
{
    memset(dh, 0, sizeof(*dh));
    dh->group = group;
    mbedtls_mpi_init(&dh->priv);
    mbedtls_ecp_group_init(&dh->grp);
    mbedtls_mpi_init(&dh->p);
    mbedtls_mpi_init(&dh->rr);
}

void ike_dh_free(struct ike_dh *dh)
{
    if (dh == NULL)
        return;
    mbedtls_mpi_free(&dh->priv);    /* zeroizes the limbs */
    mbedtls_ecp_group_free(&dh->grp);
    mbedtls_mpi_free(&dh->p);
    mbedtls_mpi_free(&dh->rr);
    mbedtls_platform_zeroize(dh, sizeof(*dh));
}

/* ---- Curve25519 (ipsec/x25519.c) --------------------------------------- */

/* Keep the clamped scalar (RFC 7748 §5 decodeScalar25519) in dh->priv. */
static int ike__x25519_private(struct ike_dh *dh, const uint8_t *priv, size_t len)
{
    uint8_t k[X25519_LEN];
    int rc;

    if (len != X25519_LEN)
        return IKE_CRYPTO_E_INVAL;
    memcpy(k, priv, sizeof(k));
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    rc = mbedtls_mpi_read_binary_le(&dh->priv, k, sizeof(k));
    mbedtls_platform_zeroize(k, sizeof(k));
    return rc == 0 ? 0 : IKE_CRYPTO_E_CRYPTO;
}

/* out = X25519(priv, u) */
static int ike__x25519_mul(const struct ike_dh *dh, const uint8_t *u, uint8_t *out)
{
    uint8_t k[X25519_LEN];
    int rc;

    rc = mbedtls_mpi_write_binary_le(&dh->priv, k, sizeof(k));
    if (rc == 0)
        x25519(out, k, u);
    mbedtls_platform_zeroize(k, sizeof(k));
    return rc == 0 ? 0 : IKE_CRYPTO_E_CRYPTO;
}

static int ike__x25519_public(struct ike_dh *dh)
{
    static const uint8_t base_u[X25519_LEN] = { 9 };
    int rc = ike__x25519_mul(dh, base_u, dh->pub);

    if (rc == 0)
        dh->pub_len = X25519_LEN;
    return rc;
}

/* The peer's u is taken as RFC 7748 §5 says (top bit masked, values >= p
 * reduced). Every low-order u -- 0, 1, p - 1, the two points of order 8
 * and their non-canonical encodings -- gives an all-zero output, since
 * the clamped scalar is a multiple of the cofactor; ike_dh_shared
 * rejects that output (RFC 8031 §2). */
static int ike__x25519_shared(const struct ike_dh *dh, const uint8_t *peer, uint8_t *secret)
{
    return ike__x25519_mul(dh, peer, secret);
}

/* ---- ECP-256 ----------------------------------------------------------- */

static int ike__ecp_load(struct ike_dh *dh)
{
    return mbedtls_ecp_group_load(&dh->grp, MBEDTLS_ECP_DP_SECP256R1) == 0
               ? 0 : IKE_CRYPTO_E_CRYPTO;
}

/* Q = priv * G, stored as wire bytes. */
static int ike__ecp_public(struct ike_dh *dh)
{
    mbedtls_ecp_point q;
    int rc = IKE_CRYPTO_E_CRYPTO;

    mbedtls_ecp_point_init(&q);
    if (mbedtls_ecp_mul(&dh->grp, &q, &dh->priv, &dh->grp.G, ike_random_mbedtls, NULL) != 0)
        goto done;
    if (mbedtls_mpi_write_binary(&q.X, dh->pub, P256_COORD_LEN) != 0 ||
        mbedtls_mpi_write_binary(&q.Y, dh->pub + P256_COORD_LEN, P256_COORD_LEN) != 0)
        goto done;
    dh->pub_len = 2 * P256_COORD_LEN;
    rc = 0;
done:
    mbedtls_ecp_point_free(&q);
    return rc;
}

static int ike__ecp_private(struct ike_dh *dh, const uint8_t *priv, size_t len)
{
    if (len != P256_COORD_LEN)
        return IKE_CRYPTO_E_INVAL;
    if (mbedtls_mpi_read_binary(&dh->priv, priv, len) != 0)
        return IKE_CRYPTO_E_CRYPTO;
    return mbedtls_ecp_check_privkey(&dh->grp, &dh->priv) == 0 ? 0 : IKE_CRYPTO_E_INVAL;
}

/* Parse and validate the peer's point (mbedtls_ecp_check_pubkey: on the
 * curve). */
static int ike__ecp_peer(const struct ike_dh *dh, const uint8_t *peer, mbedtls_ecp_point *q)
{
    int rc;

    rc = mbedtls_mpi_read_binary(&q->X, peer, P256_COORD_LEN);
    if (rc == 0)
        rc = mbedtls_mpi_read_binary(&q->Y, peer + P256_COORD_LEN, P256_COORD_LEN);
    if (rc == 0)
        rc = mbedtls_mpi_lset(&q->Z, 1);
    if (rc != 0)
        return IKE_CRYPTO_E_CRYPTO;
    return mbedtls_ecp_check_pubkey(&dh->grp, q) == 0 ? 0 : IKE_CRYPTO_E_PEER_KE;
}

static int ike__ecp_shared(struct ike_dh *dh, const uint8_t *peer, uint8_t *secret)
{
    mbedtls_ecp_point q;
    mbedtls_mpi z;
    int rc;

    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&z);
    rc = ike__ecp_peer(dh, peer, &q);
    if (rc != 0)
        goto done;
    rc = mbedtls_ecdh_compute_shared(&dh->grp, &z, &q, &dh->priv, ike_random_mbedtls, NULL);
    if (rc == MBEDTLS_ERR_ECP_INVALID_KEY || rc == MBEDTLS_ERR_ECP_BAD_INPUT_DATA) {
        rc = IKE_CRYPTO_E_PEER_KE;
        goto done;
    }
    if (rc != 0) {
        rc = IKE_CRYPTO_E_CRYPTO;
        goto done;
    }
    rc = mbedtls_mpi_write_binary(&z, secret, P256_COORD_LEN) == 0 ? 0 : IKE_CRYPTO_E_CRYPTO;
done:
    mbedtls_ecp_point_free(&q);
    mbedtls_mpi_free(&z);
    return rc;
}

/* ---- MODP-2048 ------------------------------------------------------- */

static int ike__modp_load(struct ike_dh *dh)
{
    return mbedtls_mpi_read_binary(&dh->p, modp2048_p, sizeof(modp2048_p)) == 0
               ? 0 : IKE_CRYPTO_E_CRYPTO;
}

/* out (256 bytes) = base ^ priv mod p */
static int ike__modp_pow(struct ike_dh *dh, const mbedtls_mpi *base, uint8_t *out)
{
    mbedtls_mpi r;
    int rc;

    mbedtls_mpi_init(&r);
    rc = mbedtls_mpi_exp_mod(&r, base, &dh->priv, &dh->p, &dh->rr);
    if (rc == 0)
        rc = mbedtls_mpi_write_binary(&r, out, MODP2048_LEN);   /* left-pads */
    mbedtls_mpi_free(&r);
    return rc == 0 ? 0 : IKE_CRYPTO_E_CRYPTO;
}

static int ike__modp_public(struct ike_dh *dh)
{
    mbedtls_mpi g;
    int rc;

    mbedtls_mpi_init(&g);
    rc = mbedtls_mpi_lset(&g, 2) == 0 ? ike__modp_pow(dh, &g, dh->pub) : IKE_CRYPTO_E_CRYPTO;
    mbedtls_mpi_free(&g);
    if (rc == 0)
        dh->pub_len = MODP2048_LEN;
    return rc;
}

static int ike__modp_private(struct ike_dh *dh, const uint8_t *priv, size_t len)
{
    if (len == 0 || len > MODP2048_LEN)
        return IKE_CRYPTO_E_INVAL;
    if (mbedtls_mpi_read_binary(&dh->priv, priv, len) != 0)
        return IKE_CRYPTO_E_CRYPTO;
    if (mbedtls_mpi_cmp_int(&dh->priv, 2) < 0 || mbedtls_mpi_cmp_mpi(&dh->priv, &dh->p) >= 0)
        return IKE_CRYPTO_E_INVAL;
    return 0;
}

static int ike__modp_shared(struct ike_dh *dh, const uint8_t *peer, uint8_t *secret)
{
    mbedtls_mpi y, pm1;
    int rc = IKE_CRYPTO_E_CRYPTO;

    mbedtls_mpi_init(&y);
    mbedtls_mpi_init(&pm1);
    if (mbedtls_mpi_read_binary(&y, peer, MODP2048_LEN) != 0 ||
        mbedtls_mpi_sub_int(&pm1, &dh->p, 1) != 0)
        goto done;
    /* 1 < y < p-1: rejects 0, 1 and p-1 (orders 1 and 2) and y >= p */
    if (mbedtls_mpi_cmp_int(&y, 1) <= 0 || mbedtls_mpi_cmp_mpi(&y, &pm1) >= 0) {
        rc = IKE_CRYPTO_E_PEER_KE;
        goto done;
    }
    rc = ike__modp_pow(dh, &y, secret);
done:
    mbedtls_mpi_free(&y);
    mbedtls_mpi_free(&pm1);
    return rc;
}

/* ---- public entry points ---------------------------------------------- */

static int ike__dh_prepare(struct ike_dh *dh, uint16_t group)
{
    if (dh == NULL)
        return IKE_CRYPTO_E_INVAL;
    ike__dh_zero_init(dh, group);
    if (!ike_dh_supported(group))
        return IKE_CRYPTO_E_INVAL;
    switch (group) {
    case IKE_DH_MODP2048: return ike__modp_load(dh);
    case IKE_DH_ECP256: return ike__ecp_load(dh);
    }
    return 0;   /* Curve25519: nothing to load */
}

static int ike__dh_finish(struct ike_dh *dh, int rc)
{
    if (rc == 0) {
        switch (dh->group) {
        case IKE_DH_MODP2048: rc = ike__modp_public(dh); break;
        case IKE_DH_ECP256: rc = ike__ecp_public(dh); break;
        default: rc = ike__x25519_public(dh); break;
        }
    }
    if (rc != 0) {
        uint16_t group = dh->group;
        ike_dh_free(dh);
        ike__dh_zero_init(dh, group);
    }
    return rc;
}

int ike_dh_init(struct ike_dh *dh, uint16_t group)
{
    int rc = ike__dh_prepare(dh, group);

    if (rc == 0 && group == IKE_DH_MODP2048) {
        uint8_t x[MODP_EXP_LEN];
        do {
            rc = ike_random(x, sizeof(x));
            if (rc == 0)
                rc = ike__modp_private(dh, x, sizeof(x));
        } while (rc == IKE_CRYPTO_E_INVAL);     /* x < 2: draw again */
        mbedtls_platform_zeroize(x, sizeof(x));
    } else if (rc == 0 && group == IKE_DH_CURVE25519) {
        uint8_t k[X25519_LEN];
        rc = ike_random(k, sizeof(k));
        if (rc == 0)
            rc = ike__x25519_private(dh, k, sizeof(k));
        mbedtls_platform_zeroize(k, sizeof(k));
    } else if (rc == 0) {
        rc = mbedtls_ecp_gen_privkey(&dh->grp, &dh->priv, ike_random_mbedtls, NULL) == 0
                 ? 0 : IKE_CRYPTO_E_RNG;
    }
    if (dh == NULL)
        return rc;
    return ike__dh_finish(dh, rc);
}

int ike_dh_init_private(struct ike_dh *dh, uint16_t group, const uint8_t *priv, size_t priv_len)
{
    int rc = ike__dh_prepare(dh, group);

    if (dh == NULL)
        return rc;
    if (rc == 0 && priv == NULL)
        rc = IKE_CRYPTO_E_INVAL;
    if (rc == 0) {
        switch (group) {
        case IKE_DH_MODP2048: rc = ike__modp_private(dh, priv, priv_len); break;
        case IKE_DH_ECP256: rc = ike__ecp_private(dh, priv, priv_len); break;
        default: rc = ike__x25519_private(dh, priv, priv_len); break;
        }
    }
    return ike__dh_finish(dh, rc);
}

int ike_dh_public(const struct ike_dh *dh, uint8_t *out, size_t cap, size_t *len_r)
{
    if (dh == NULL || dh->pub_len == 0 || out == NULL)
        return IKE_CRYPTO_E_INVAL;
    if (cap < dh->pub_len)
        return IKE_CRYPTO_E_NOSPACE;
    memcpy(out, dh->pub, dh->pub_len);
    if (len_r != NULL)
        *len_r = dh->pub_len;
    return 0;
}

static bool ike__all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* Curve25519's u of small order, canonical (RFC 7748 decoding: bit 255
 * masked, p and p + 1 read as 0 and 1): 0, 1, p - 1 and the two u of the
 * points of order 8 (cr.yp.to/ecdh.html#validate). */
static const uint8_t x25519_low_order[][X25519_LEN] = {
    { 0 },
    { 1 },
    { 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
    { 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
      0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 },
    { 0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
      0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57 },
};

static int ike__x25519_check(const uint8_t *peer)
{
    uint8_t u[X25519_LEN];
    bool ge_p = peer[0] >= 0xed && (peer[31] & 0x7f) == 0x7f;

    memcpy(u, peer, sizeof(u));
    u[31] &= 0x7f;
    for (size_t i = 1; i < 31 && ge_p; i++)
        ge_p = u[i] == 0xff;
    if (ge_p) {             /* p <= u < 2^255: u - p is 0 .. 18 */
        memset(u, 0, sizeof(u));
        u[0] = (uint8_t)(peer[0] - 0xed);
    }
    for (size_t i = 0; i < sizeof(x25519_low_order) / sizeof(x25519_low_order[0]); i++)
        if (memcmp(u, x25519_low_order[i], sizeof(u)) == 0)
            return IKE_CRYPTO_E_PEER_KE;
    return 0;
}

int ike_dh_peer_check(uint16_t group, const uint8_t *peer, size_t peer_len)
{
    struct ike_dh dh;
    mbedtls_ecp_point q;
    mbedtls_mpi y, pm1;
    int rc;

    if (!ike_dh_supported(group) || peer == NULL || peer_len != ike_dh_public_len(group))
        return IKE_CRYPTO_E_PEER_KE;
    if (group == IKE_DH_CURVE25519)
        return ike__x25519_check(peer);
    rc = ike__dh_prepare(&dh, group);
    if (rc == 0 && group == IKE_DH_ECP256) {
        mbedtls_ecp_point_init(&q);
        rc = ike__ecp_peer(&dh, peer, &q);
        mbedtls_ecp_point_free(&q);
    } else if (rc == 0) {
        mbedtls_mpi_init(&y);
        mbedtls_mpi_init(&pm1);
        if (mbedtls_mpi_read_binary(&y, peer, MODP2048_LEN) != 0 || mbedtls_mpi_sub_int(&pm1, &dh.p, 1) != 0)
            rc = IKE_CRYPTO_E_CRYPTO;
        else if (mbedtls_mpi_cmp_int(&y, 1) <= 0 || mbedtls_mpi_cmp_mpi(&y, &pm1) >= 0)
            rc = IKE_CRYPTO_E_PEER_KE;
        mbedtls_mpi_free(&y);
        mbedtls_mpi_free(&pm1);
    }
    ike_dh_free(&dh);
    return rc;
}

int ike_dh_shared(struct ike_dh *dh, const uint8_t *peer, size_t peer_len,
                  uint8_t *secret, size_t cap, size_t *secret_len_r)
{
    size_t slen;
    int rc;

    if (dh == NULL || dh->pub_len == 0 || secret == NULL)
        return IKE_CRYPTO_E_INVAL;
    slen = ike_dh_secret_len(dh->group);
    if (cap < slen)
        return IKE_CRYPTO_E_NOSPACE;
    if (peer == NULL || peer_len != ike_dh_public_len(dh->group))
        return IKE_CRYPTO_E_PEER_KE;
    switch (dh->group) {
    case IKE_DH_MODP2048: rc = ike__modp_shared(dh, peer, secret); break;
    case IKE_DH_ECP256: rc = ike__ecp_shared(dh, peer, secret); break;
    default: rc = ike__x25519_shared(dh, peer, secret); break;
    }
    /* RFC 8031 §2: an all-zero X25519 output MUST abort the exchange */
    if (rc == 0 && ike__all_zero(secret, slen))
        rc = IKE_CRYPTO_E_PEER_KE;
    if (rc != 0) {
        mbedtls_platform_zeroize(secret, slen);
        return rc;
    }
    if (secret_len_r != NULL)
        *secret_len_r = slen;
    return 0;
}
