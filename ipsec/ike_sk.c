/*
 * SK payload protection (RFC 7296 §3.14) for the IKE SA's own messages:
 * AES-GCM-16 (RFC 5282), ChaCha20-Poly1305 (RFC 7634) and AES-CBC with
 * AUTH_HMAC_SHA2_256_128 (RFC 3602, RFC 4868). The buffer layout, who
 * writes which field, and the receive checks are in ike_crypto.h.
 *
 * Receive order: lengths first, then the ICV over the bytes as received
 * (constant-time compare), and only then decryption and the pad length.
 * Nothing decrypted is looked at before the ICV has matched.
 */
#include "ipsec/ike_crypto.h"

#include "ipsec/ike_defs.h"

#include <string.h>

#include <mbedtls/aes.h>
#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#define AEAD_IV_LEN     8u
#define AEAD_SALT_LEN   4u
#define AEAD_ICV_LEN    16u
#define CBC_BLOCK       16u
#define CBC_ICV_LEN     16u     /* HMAC-SHA-256 truncated to 128 bits */
#define IKE_LEN_OFF     24u     /* IKE header Length field */

static bool ike__sk_is_aead(const struct ike_sa_keys *k)
{
    return k->suite.encr == IKE_ENCR_AES_GCM_16 ||
           k->suite.encr == IKE_ENCR_CHACHA20_POLY1305;
}

static bool ike__sk_usable(const struct ike_sa_keys *k)
{
    return k != NULL && k->e_len > 0 && ike_suite_check(&k->suite, false) == 0 &&
           k->e_len == ike_encr_keymat_len(k->suite.encr, k->suite.encr_key_bits);
}

size_t ike_sk_iv_len(const struct ike_sa_keys *k)
{
    if (!ike__sk_usable(k))
        return 0;
    return ike__sk_is_aead(k) ? AEAD_IV_LEN : CBC_BLOCK;
}

size_t ike_sk_icv_len(const struct ike_sa_keys *k)
{
    if (!ike__sk_usable(k))
        return 0;
    return ike__sk_is_aead(k) ? AEAD_ICV_LEN : CBC_ICV_LEN;
}

size_t ike_sk_plain_offset(const struct ike_sa_keys *k, size_t sk_off)
{
    return sk_off + IKE_SK_HDR_LEN + ike_sk_iv_len(k);
}

static void ike__put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void ike__put32(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t ike__get16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

static size_t ike__get32(const uint8_t *p)
{
    return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

/* ---- AEAD (AES-GCM-16, ChaCha20-Poly1305) ------------------------------ */

/* One call for both directions: seal writes the tag, open checks it
 * (mbedTLS compares in constant time and wipes the output on mismatch). */
static int ike__aead(const uint8_t *keymat, size_t keymat_len, uint16_t encr, bool seal,
                     const uint8_t iv[AEAD_IV_LEN], const uint8_t *aad, size_t aad_len,
                     uint8_t *buf, size_t len, uint8_t tag[AEAD_ICV_LEN])
{
    size_t key_len = keymat_len - AEAD_SALT_LEN;
    uint8_t nonce[AEAD_SALT_LEN + AEAD_IV_LEN];
    int rc;

    memcpy(nonce, keymat + key_len, AEAD_SALT_LEN);     /* RFC 5282 §4 */
    memcpy(nonce + AEAD_SALT_LEN, iv, AEAD_IV_LEN);
    if (encr == IKE_ENCR_CHACHA20_POLY1305) {
        mbedtls_chachapoly_context cp;
        mbedtls_chachapoly_init(&cp);
        rc = mbedtls_chachapoly_setkey(&cp, keymat);
        if (rc == 0 && seal)
            rc = mbedtls_chachapoly_encrypt_and_tag(&cp, len, nonce, aad, aad_len,
                                                    buf, buf, tag);
        else if (rc == 0)
            rc = mbedtls_chachapoly_auth_decrypt(&cp, len, nonce, aad, aad_len,
                                                 tag, buf, buf);
        mbedtls_chachapoly_free(&cp);
        if (rc == MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED)
            rc = IKE_CRYPTO_E_ICV;
    } else {
        mbedtls_gcm_context gcm;
        mbedtls_gcm_init(&gcm);
        rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, keymat,
                                (unsigned int)(key_len * 8u));
        if (rc == 0 && seal)
            rc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce,
                                           sizeof(nonce), aad, aad_len, buf, buf,
                                           AEAD_ICV_LEN, tag);
        else if (rc == 0)
            rc = mbedtls_gcm_auth_decrypt(&gcm, len, nonce, sizeof(nonce), aad, aad_len,
                                          tag, AEAD_ICV_LEN, buf, buf);
        mbedtls_gcm_free(&gcm);
        if (rc == MBEDTLS_ERR_GCM_AUTH_FAILED)
            rc = IKE_CRYPTO_E_ICV;
    }
    mbedtls_platform_zeroize(nonce, sizeof(nonce));
    if (rc == IKE_CRYPTO_E_ICV || rc == 0)
        return rc;
    return IKE_CRYPTO_E_CRYPTO;
}

/* ---- AES-CBC + HMAC-SHA-256-128 ----------------------------------------- */

static int ike__cbc(const uint8_t *key, size_t key_len, bool encrypt,
                    const uint8_t iv_in[CBC_BLOCK], uint8_t *buf, size_t len)
{
    mbedtls_aes_context aes;
    uint8_t iv[CBC_BLOCK];
    int rc;

    memcpy(iv, iv_in, sizeof(iv));  /* mbedTLS advances the IV it is given */
    mbedtls_aes_init(&aes);
    rc = encrypt ? mbedtls_aes_setkey_enc(&aes, key, (unsigned int)(key_len * 8u))
                 : mbedtls_aes_setkey_dec(&aes, key, (unsigned int)(key_len * 8u));
    if (rc == 0)
        rc = mbedtls_aes_crypt_cbc(&aes, encrypt ? MBEDTLS_AES_ENCRYPT : MBEDTLS_AES_DECRYPT,
                                   len, iv, buf, buf);
    mbedtls_aes_free(&aes);
    return rc == 0 ? 0 : IKE_CRYPTO_E_CRYPTO;
}

static int ike__hmac128(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len,
                        uint8_t icv[CBC_ICV_LEN])
{
    uint8_t full[32];
    int rc = mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, key_len,
                             data, len, full);

    memcpy(icv, full, CBC_ICV_LEN);
    mbedtls_platform_zeroize(full, sizeof(full));
    return rc == 0 ? 0 : IKE_CRYPTO_E_CRYPTO;
}

/* ---- sending -------------------------------------------------------------- */

static int ike__next_iv(struct ike_sa_keys *k, bool initiator, uint8_t iv[AEAD_IV_LEN])
{
    uint64_t *ctr = initiator ? &k->iv_next_i : &k->iv_next_r;

    if (*ctr == UINT64_MAX)
        return IKE_CRYPTO_E_IV_EXHAUSTED;
    for (unsigned i = 0; i < AEAD_IV_LEN; i++)
        iv[i] = (uint8_t)(*ctr >> (56 - 8 * i));
    (*ctr)++;
    return 0;
}

int ike_sk_encrypt(struct ike_sa_keys *k, bool sender_is_initiator,
                   uint8_t *msg, size_t sk_off, size_t plain_len,
                   size_t cap, size_t *msg_len_r)
{
    const uint8_t *ek, *ak;
    size_t iv_len, icv_len, pad, ct_off, ct_len, msg_len, sk_len;
    int rc;

    if (!ike__sk_usable(k) || msg == NULL || sk_off < IKE_HDR_LEN || sk_off > IKE_MSG_MAX)
        return IKE_CRYPTO_E_INVAL;
    ek = sender_is_initiator ? k->sk_ei : k->sk_er;
    ak = sender_is_initiator ? k->sk_ai : k->sk_ar;
    iv_len = ike_sk_iv_len(k);
    icv_len = ike_sk_icv_len(k);
    ct_off = sk_off + IKE_SK_HDR_LEN + iv_len;
    /* AEADs need no alignment; CBC pads plain | padding | padlen to 16 */
    pad = ike__sk_is_aead(k) ? 0 : (CBC_BLOCK - (plain_len + 1) % CBC_BLOCK) % CBC_BLOCK;
    if (plain_len > IKE_MSG_MAX)
        return IKE_CRYPTO_E_NOSPACE;
    ct_len = plain_len + pad + 1;
    msg_len = ct_off + ct_len + icv_len;
    sk_len = msg_len - sk_off;
    if (msg_len > cap)
        return IKE_CRYPTO_E_NOSPACE;
    if (msg_len > IKE_MSG_MAX)
        return IKE_CRYPTO_E_NOSPACE;

    uint8_t *ct = msg + ct_off;
    if (ike__sk_is_aead(k))
        rc = ike__next_iv(k, sender_is_initiator, msg + ct_off - iv_len);
    else
        rc = ike_random(msg + ct_off - iv_len, iv_len);
    if (rc != 0)
        return rc;
    memset(ct + plain_len, 0, pad);     /* RFC 7296 §3.14: any value; zeros */
    ct[plain_len + pad] = (uint8_t)pad;
    ike__put16(msg + sk_off + 2, sk_len);
    ike__put32(msg + IKE_LEN_OFF, msg_len);

    if (ike__sk_is_aead(k)) {
        /* AAD = IKE header .. SK payload header, i.e. everything before the IV */
        rc = ike__aead(ek, k->e_len, k->suite.encr, true, msg + ct_off - iv_len,
                       msg, sk_off + IKE_SK_HDR_LEN, ct, ct_len, ct + ct_len);
    } else {
        rc = ike__cbc(ek, k->e_len, true, msg + ct_off - iv_len, ct, ct_len);
        if (rc == 0)
            rc = ike__hmac128(ak, k->a_len, msg, msg_len - icv_len, ct + ct_len);
    }
    if (rc != 0)
        return rc;
    if (msg_len_r != NULL)
        *msg_len_r = msg_len;
    return 0;
}

/* ---- receiving ------------------------------------------------------------ */

int ike_sk_decrypt(const struct ike_sa_keys *k, bool sender_is_initiator,
                   uint8_t *msg, size_t msg_len, size_t sk_off,
                   size_t *plain_off_r, size_t *plain_len_r)
{
    const uint8_t *ek, *ak;
    size_t iv_len, icv_len, ct_off, ct_len, pad;
    int rc;

    if (!ike__sk_usable(k) || msg == NULL || sk_off < IKE_HDR_LEN)
        return IKE_CRYPTO_E_INVAL;
    if (msg_len > IKE_MSG_MAX)
        return IKE_CRYPTO_E_LENGTH;
    if (sk_off > msg_len)
        return IKE_CRYPTO_E_TRUNCATED;
    ek = sender_is_initiator ? k->sk_ei : k->sk_er;
    ak = sender_is_initiator ? k->sk_ai : k->sk_ar;
    iv_len = ike_sk_iv_len(k);
    icv_len = ike_sk_icv_len(k);
    ct_off = sk_off + IKE_SK_HDR_LEN + iv_len;
    /* at least the Pad Length byte (AEAD) or one block (CBC) */
    if (msg_len < ct_off + (ike__sk_is_aead(k) ? 1u : CBC_BLOCK) + icv_len)
        return IKE_CRYPTO_E_TRUNCATED;
    if (ike__get32(msg + IKE_LEN_OFF) != msg_len || ike__get16(msg + sk_off + 2) != msg_len - sk_off)
        return IKE_CRYPTO_E_LENGTH;
    ct_len = msg_len - ct_off - icv_len;
    uint8_t *ct = msg + ct_off;

    if (ike__sk_is_aead(k)) {
        rc = ike__aead(ek, k->e_len, k->suite.encr, false, msg + ct_off - iv_len,
                       msg, sk_off + IKE_SK_HDR_LEN, ct, ct_len, ct + ct_len);
    } else {
        uint8_t icv[CBC_ICV_LEN];
        if (ct_len % CBC_BLOCK != 0)
            return IKE_CRYPTO_E_LENGTH;
        rc = ike__hmac128(ak, k->a_len, msg, msg_len - icv_len, icv);
        if (rc == 0 && !ike_ct_equal(icv, ct + ct_len, CBC_ICV_LEN))
            rc = IKE_CRYPTO_E_ICV;
        if (rc == 0)
            rc = ike__cbc(ek, k->e_len, false, msg + ct_off - iv_len, ct, ct_len);
    }
    if (rc != 0)
        return rc;
    /* authentic from here on */
    pad = ct[ct_len - 1];
    if (pad + 1 > ct_len)
        return IKE_CRYPTO_E_PADDING;
    if (plain_off_r != NULL)
        *plain_off_r = ct_off;
    if (plain_len_r != NULL)
        *plain_len_r = ct_len - pad - 1;
    return 0;
}
