#include "aead.h"

#include "esp_defs.h"

#include <string.h>

#include <mbedtls/platform_util.h>

size_t ipsec_aead_keymat_len(enum ipsec_aead_alg alg)
{
    switch (alg) {
    case IPSEC_AEAD_AES_GCM_128:
        return 16u + IPSEC_AEAD_SALT_LEN;
    case IPSEC_AEAD_AES_GCM_256:
    case IPSEC_AEAD_CHACHA20_POLY1305:
        return 32u + IPSEC_AEAD_SALT_LEN;
    case IPSEC_AEAD_NONE:
        break;
    }
    return 0;
}

const char *ipsec_aead_name(enum ipsec_aead_alg alg)
{
    switch (alg) {
    case IPSEC_AEAD_AES_GCM_128:
        return "aes128gcm16";
    case IPSEC_AEAD_AES_GCM_256:
        return "aes256gcm16";
    case IPSEC_AEAD_CHACHA20_POLY1305:
        return "chacha20poly1305";
    case IPSEC_AEAD_NONE:
        break;
    }
    return "none";
}

int ipsec_aead_init(struct ipsec_aead *aead, enum ipsec_aead_alg alg,
                    const uint8_t *keymat, size_t keymat_len)
{
    size_t want = ipsec_aead_keymat_len(alg);
    size_t key_len = want - IPSEC_AEAD_SALT_LEN;
    int rc;

    memset(aead, 0, sizeof(*aead));
    if (want == 0 || keymat == NULL || keymat_len != want)
        return ESP_E_INVAL;
    aead->alg = alg;
    memcpy(aead->salt, keymat + key_len, IPSEC_AEAD_SALT_LEN);
    if (alg == IPSEC_AEAD_CHACHA20_POLY1305) {
        mbedtls_chachapoly_init(&aead->u.chachapoly);
        rc = mbedtls_chachapoly_setkey(&aead->u.chachapoly, keymat);
    } else {
        mbedtls_gcm_init(&aead->u.gcm);
        rc = mbedtls_gcm_setkey(&aead->u.gcm, MBEDTLS_CIPHER_ID_AES, keymat,
                                (unsigned int)(key_len * 8u));
    }
    if (rc != 0) {
        ipsec_aead_free(aead);
        return ESP_E_CRYPTO;
    }
    return 0;
}

void ipsec_aead_free(struct ipsec_aead *aead)
{
    if (aead->alg == IPSEC_AEAD_CHACHA20_POLY1305)
        mbedtls_chachapoly_free(&aead->u.chachapoly);
    else if (aead->alg != IPSEC_AEAD_NONE)
        mbedtls_gcm_free(&aead->u.gcm);
    /* The mbedTLS frees zeroize their contexts; this also covers the salt
     * and an aead that failed half-way through init. */
    mbedtls_platform_zeroize(aead, sizeof(*aead));
}

static void aead_nonce_build(const struct ipsec_aead *aead, const uint8_t *iv,
                             uint8_t nonce[IPSEC_AEAD_NONCE_LEN])
{
    memcpy(nonce, aead->salt, IPSEC_AEAD_SALT_LEN);
    memcpy(nonce + IPSEC_AEAD_SALT_LEN, iv, IPSEC_AEAD_IV_LEN);
}

int ipsec_aead_seal(struct ipsec_aead *aead, const uint8_t iv[IPSEC_AEAD_IV_LEN],
                    const uint8_t *aad, size_t aad_len,
                    uint8_t *buf, size_t len, uint8_t tag[IPSEC_AEAD_TAG_LEN])
{
    uint8_t nonce[IPSEC_AEAD_NONCE_LEN];
    int rc;

    aead_nonce_build(aead, iv, nonce);
    if (aead->alg == IPSEC_AEAD_CHACHA20_POLY1305)
        rc = mbedtls_chachapoly_encrypt_and_tag(&aead->u.chachapoly, len, nonce,
                                                aad, aad_len, buf, buf, tag);
    else if (aead->alg != IPSEC_AEAD_NONE)
        rc = mbedtls_gcm_crypt_and_tag(&aead->u.gcm, MBEDTLS_GCM_ENCRYPT, len,
                                       nonce, sizeof(nonce), aad, aad_len,
                                       buf, buf, IPSEC_AEAD_TAG_LEN, tag);
    else
        return ESP_E_INVAL;
    return rc == 0 ? 0 : ESP_E_CRYPTO;
}

int ipsec_aead_open(struct ipsec_aead *aead, const uint8_t iv[IPSEC_AEAD_IV_LEN],
                    const uint8_t *aad, size_t aad_len,
                    uint8_t *buf, size_t len, const uint8_t tag[IPSEC_AEAD_TAG_LEN])
{
    uint8_t nonce[IPSEC_AEAD_NONCE_LEN];
    int rc;

    aead_nonce_build(aead, iv, nonce);
    if (aead->alg == IPSEC_AEAD_CHACHA20_POLY1305) {
        rc = mbedtls_chachapoly_auth_decrypt(&aead->u.chachapoly, len, nonce,
                                             aad, aad_len, tag, buf, buf);
        if (rc == MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED)
            return ESP_E_ICV;
    } else if (aead->alg != IPSEC_AEAD_NONE) {
        rc = mbedtls_gcm_auth_decrypt(&aead->u.gcm, len, nonce, sizeof(nonce),
                                      aad, aad_len, tag, IPSEC_AEAD_TAG_LEN,
                                      buf, buf);
        if (rc == MBEDTLS_ERR_GCM_AUTH_FAILED)
            return ESP_E_ICV;
    } else {
        return ESP_E_INVAL;
    }
    return rc == 0 ? 0 : ESP_E_CRYPTO;
}
