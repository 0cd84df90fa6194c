/*
 * AEAD transforms for ESP, on mbedTLS: AES-GCM with a 16-octet ICV and
 * 128- or 256-bit keys (RFC 4106) and ChaCha20-Poly1305 (RFC 7634).
 *
 * Keying material is key ‖ 4-byte salt for all three. The 12-byte nonce
 * is salt ‖ 8-byte explicit IV, so the caller must never reuse an IV under
 * one key (esp.c uses the 64-bit sequence number). The mbedTLS context is
 * keyed once in ipsec_aead_init and reused for every packet; both seal
 * and open work in place. ipsec_aead_free zeroizes the context and salt.
 */
#ifndef ESPROXY_IPSEC_AEAD_H
#define ESPROXY_IPSEC_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>

enum ipsec_aead_alg {
    IPSEC_AEAD_NONE = 0,
    IPSEC_AEAD_AES_GCM_128 = 1,   /* IKEv2 ENCR_AES_GCM_16, 128-bit key */
    IPSEC_AEAD_AES_GCM_256 = 2,   /* IKEv2 ENCR_AES_GCM_16, 256-bit key */
    IPSEC_AEAD_CHACHA20_POLY1305 = 3, /* IKEv2 ENCR_CHACHA20_POLY1305 */
};

#define IPSEC_AEAD_SALT_LEN   4u
#define IPSEC_AEAD_IV_LEN     8u
#define IPSEC_AEAD_NONCE_LEN  12u
#define IPSEC_AEAD_TAG_LEN    16u
#define IPSEC_AEAD_KEYMAT_MAX (32u + IPSEC_AEAD_SALT_LEN)

struct ipsec_aead {
    enum ipsec_aead_alg alg;
    uint8_t salt[IPSEC_AEAD_SALT_LEN];
    union {
        mbedtls_gcm_context gcm;
        mbedtls_chachapoly_context chachapoly;
    } u;
};

/* Length of key ‖ salt for alg, or 0 for an unknown alg. */
size_t ipsec_aead_keymat_len(enum ipsec_aead_alg alg);
const char *ipsec_aead_name(enum ipsec_aead_alg alg);

/* 0 or ESP_E_INVAL (wrong length / alg) or ESP_E_CRYPTO. */
int ipsec_aead_init(struct ipsec_aead *aead, enum ipsec_aead_alg alg,
                    const uint8_t *keymat, size_t keymat_len);
void ipsec_aead_free(struct ipsec_aead *aead);

/* Encrypt buf[0..len) in place and write the 16-byte tag. */
int ipsec_aead_seal(struct ipsec_aead *aead, const uint8_t iv[IPSEC_AEAD_IV_LEN],
                    const uint8_t *aad, size_t aad_len,
                    uint8_t *buf, size_t len, uint8_t tag[IPSEC_AEAD_TAG_LEN]);

/* Verify the tag and decrypt buf[0..len) in place. On ESP_E_ICV mbedTLS
 * has wiped buf; callers must treat its contents as garbage. */
int ipsec_aead_open(struct ipsec_aead *aead, const uint8_t iv[IPSEC_AEAD_IV_LEN],
                    const uint8_t *aad, size_t aad_len,
                    uint8_t *buf, size_t len, const uint8_t tag[IPSEC_AEAD_TAG_LEN]);

#endif
