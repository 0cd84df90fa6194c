/*
 * IKEv2 cryptographic core on mbedTLS 2.28: Diffie-Hellman (ike_dh.c),
 * SK payload protection (ike_sk.c), and the random source, PRF, prf+,
 * key derivation and PSK authentication (ike_crypto.c). No I/O, no
 * logging, no allocation beyond mbedTLS's own.
 *
 * Transform identifiers are the IANA numbers of ipsec/ike_defs.h
 * (IKE_ENCR_*, IKE_PRF_*, IKE_INTEG_*, IKE_DH_*). Byte strings are in wire
 * order. Every function returns 0 on success or a negative
 * enum ike_crypto_err; none leaves errno for the caller to read.
 *
 * Secrets: every struct here that holds key material has a _free function
 * that zeroizes it (mbedtls_platform_zeroize); intermediate values
 * (SKEYSEED, prf+ output, g^ir inside the DH code) are wiped before
 * return. Nothing here logs or prints keys; the key log belongs to the
 * state machine, which reads the fields of struct ike_sa_keys.
 *
 * Thread safety: all functions are reentrant. The random source is one
 * CTR-DRBG per thread (seeded from getrandom(2), reseeded after fork).
 */
#ifndef ESPROXY_IKE_CRYPTO_H
#define ESPROXY_IKE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>

enum ike_crypto_err {
    IKE_CRYPTO_E_INVAL = -1,       /* bad argument or unsupported transform */
    IKE_CRYPTO_E_NOSPACE = -2,     /* output buffer too small */
    IKE_CRYPTO_E_PEER_KE = -3,     /* peer's public value: wrong length or invalid */
    IKE_CRYPTO_E_TRUNCATED = -4,   /* message shorter than any protected one */
    IKE_CRYPTO_E_LENGTH = -5,      /* length fields disagree with the buffer */
    IKE_CRYPTO_E_ICV = -6,         /* integrity check failed */
    IKE_CRYPTO_E_PADDING = -7,     /* authentic, but the pad length is impossible */
    IKE_CRYPTO_E_AUTH = -8,        /* AUTH payload value does not match */
    IKE_CRYPTO_E_RNG = -9,         /* no randomness */
    IKE_CRYPTO_E_CRYPTO = -10,     /* mbedTLS failed for another reason */
    IKE_CRYPTO_E_IV_EXHAUSTED = -11, /* 2^64 messages sent under one key */
};

const char *ike_crypto_strerror(int err);

/* A read-only byte range, for inputs that are concatenated (Ni | Nr ...). */
struct ike_buf {
    const uint8_t *p;
    size_t len;
};

static inline struct ike_buf ike_buf_of(const void *p, size_t len)
{
    struct ike_buf b = { (const uint8_t *)p, len };
    return b;
}

/* Constant-time equality of a[0..n) and b[0..n): true when equal. */
bool ike_ct_equal(const void *a, const void *b, size_t n);

/* ---- random source (ike_crypto.c) ------------------------------------ */

/* Fill buf with len bytes from this thread's CTR-DRBG (nonces, SPIs,
 * IVs, private keys). 0 or IKE_CRYPTO_E_RNG. */
int ike_random(void *buf, size_t len);
/* The same as an mbedTLS f_rng callback (ctx is ignored). */
int ike_random_mbedtls(void *ctx, unsigned char *buf, size_t len);
/* Zeroize this thread's DRBG state (call before a thread exits; the
 * next ike_random seeds a fresh one). */
void ike_random_thread_cleanup(void);

/* ---- Diffie-Hellman (ike_dh.c) ---------------------------------------
 *
 * Group 31, Curve25519 (RFC 8031): KE data is the 32-byte little-endian
 *   u-coordinate; g^ir is the 32-byte X25519 output; an all-zero g^ir
 *   (a low-order peer point) is rejected.
 * Group 19, ECP-256 (RFC 5903): KE data is x | y, 64 bytes big-endian;
 *   the peer point must be on the curve; g^ir is the x coordinate, 32 bytes.
 * Group 14, MODP-2048 (RFC 3526): KE data is g^x mod p left-padded to 256
 *   bytes; the peer value must satisfy 1 < y < p-1; g^ir is 256 bytes.
 *   Private exponents are 256 bits (twice the group's 112-bit strength,
 *   RFC 3526 §8).
 */
#define IKE_DH_PUBLIC_MAX   256u
#define IKE_DH_SECRET_MAX   256u

struct ike_dh {
    uint16_t group;
    size_t pub_len;
    uint8_t pub[IKE_DH_PUBLIC_MAX];
    mbedtls_mpi priv;           /* ECP scalar or MODP exponent */
    mbedtls_ecp_group grp;      /* groups 19 and 31 */
    mbedtls_mpi p, rr;          /* group 14: prime and its Montgomery R^2 */
};

bool ike_dh_supported(uint16_t group);
/* Length of the KE payload's key exchange data, or 0 if unsupported. */
size_t ike_dh_public_len(uint16_t group);
/* Length of g^ir, or 0 if unsupported. */
size_t ike_dh_secret_len(uint16_t group);

/* Generate a key pair. Always initializes *dh, so ike_dh_free is safe
 * after a failure. IKE_CRYPTO_E_INVAL for an unsupported group. */
int ike_dh_init(struct ike_dh *dh, uint16_t group);
/* Load a known private key instead (known-answer tests, benchmarks).
 * Curve25519: 32 bytes, clamped here as RFC 7748 §5 decodeScalar25519;
 * ECP-256: 32 bytes big-endian, 1 <= d < n; MODP-2048: 1..256 bytes
 * big-endian, d >= 2. */
int ike_dh_init_private(struct ike_dh *dh, uint16_t group,
                        const uint8_t *priv, size_t priv_len);
/* Copy our public value (ike_dh_public_len bytes) to out. */
int ike_dh_public(const struct ike_dh *dh, uint8_t *out, size_t cap, size_t *len_r);
/* Validate the peer's KE data and compute g^ir into secret. The caller
 * owns the secret: zeroize it (mbedtls_platform_zeroize) after deriving
 * SKEYSEED. IKE_CRYPTO_E_PEER_KE for a wrong length or an invalid value
 * (the state machine answers INVALID_SYNTAX / drops the exchange). */
int ike_dh_shared(struct ike_dh *dh, const uint8_t *peer, size_t peer_len,
                  uint8_t *secret, size_t cap, size_t *secret_len_r);
/* The checks ike_dh_shared makes on the peer's KE data, without a key
 * pair (cheap: no scalar multiplication or exponentiation): the length, and
 * the value -- Curve25519: not one of the low-order u, whose output would
 * be all zero; ECP-256: on the curve; MODP-2048: 1 < y < p-1. 0 or
 * IKE_CRYPTO_E_PEER_KE. A responder runs it before making its key pair. */
int ike_dh_peer_check(uint16_t group, const uint8_t *peer, size_t peer_len);
/* Zeroize and free. Idempotent. */
void ike_dh_free(struct ike_dh *dh);

/* ---- PRF, prf+ and key derivation (ike_crypto.c) -------------------------
 *
 * PRF_HMAC_SHA2_256 (5) and PRF_HMAC_SHA2_384 (6), RFC 4868: the key is
 * used whole (HMAC hashes keys longer than a block), output 32 / 48 bytes.
 */
#define IKE_PRF_MAX         48u     /* largest PRF output (SHA-384) */
#define IKE_ENCR_KEYMAT_MAX 36u     /* AES-256 / ChaCha20 key + 4-byte salt */
#define IKE_INTEG_KEY_MAX   32u     /* AUTH_HMAC_SHA2_256_128 */

size_t ike_prf_len(uint16_t prf);   /* 0 if unsupported */

/* out (ike_prf_len bytes) = prf(key, parts[0] | parts[1] | ...). */
int ike_prf(uint16_t prf, const uint8_t *key, size_t key_len,
            const struct ike_buf *parts, size_t n_parts,
            uint8_t *out, size_t cap);
/* out[0..out_len) = prf+(key, seed parts), RFC 7296 §2.13:
 * T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), at most 255 blocks. */
int ike_prf_plus(uint16_t prf, const uint8_t *key, size_t key_len,
                 const struct ike_buf *seed, size_t n_seed,
                 uint8_t *out, size_t out_len);

/* The negotiated transforms of an IKE SA (encr, key bits, integ, prf) or
 * of a CHILD SA (prf unused). encr_key_bits is the Key Length attribute:
 * 128 or 256 for AES; 0 or 256 for ChaCha20-Poly1305. integ is
 * IKE_INTEG_NONE with an AEAD, IKE_INTEG_HMAC_SHA2_256_128 with AES-CBC. */
struct ike_suite {
    uint16_t encr;
    uint16_t encr_key_bits;
    uint16_t integ;
    uint16_t prf;
};

/* Encryption keying material length: the key, plus the 4-byte salt for
 * the AEADs (RFC 5282 §7.1, RFC 4106 §8.1, RFC 7634 §4): AES-GCM-16
 * 20 / 36, ChaCha20-Poly1305 36, AES-CBC 16 / 32. 0 if unsupported. */
size_t ike_encr_keymat_len(uint16_t encr, uint16_t key_bits);
/* Integrity key length: 32 for AUTH_HMAC_SHA2_256_128, 0 for NONE or an
 * unsupported transform. */
size_t ike_integ_key_len(uint16_t integ);
/* 0 if the combination is usable for an IKE SA (needs a prf) or, with
 * for_child, for ESP; IKE_CRYPTO_E_INVAL otherwise. */
int ike_suite_check(const struct ike_suite *s, bool for_child);

/* SKEYSEED = prf(Ni | Nr, g^ir)   (RFC 7296 §2.14). */
int ike_skeyseed(uint16_t prf, struct ike_buf ni, struct ike_buf nr,
                 struct ike_buf gir, uint8_t *out, size_t cap, size_t *len_r);
/* SKEYSEED = prf(SK_d(old), g^ir(new) | Ni | Nr)   (§2.18). prf is the
 * OLD IKE SA's PRF ("it is the old IKE SA's PRF that is used to
 * generate SKEYSEED"); the new keys then come from ike_sa_keys_derive
 * with the new SA's suite. Ni and Nr are those of the rekey exchange. */
int ike_skeyseed_rekey(uint16_t prf, struct ike_buf sk_d_old, struct ike_buf gir_new,
                       struct ike_buf ni, struct ike_buf nr,
                       uint8_t *out, size_t cap, size_t *len_r);

/* The seven IKE SA keys, §2.14. For AEADs sk_ai/sk_ar are empty
 * (a_len 0) and sk_ei/sk_er hold key | salt. */
struct ike_sa_keys {
    struct ike_suite suite;
    size_t d_len, a_len, e_len, p_len;
    uint8_t sk_d[IKE_PRF_MAX];
    uint8_t sk_ai[IKE_INTEG_KEY_MAX], sk_ar[IKE_INTEG_KEY_MAX];
    uint8_t sk_ei[IKE_ENCR_KEYMAT_MAX], sk_er[IKE_ENCR_KEYMAT_MAX];
    uint8_t sk_pi[IKE_PRF_MAX], sk_pr[IKE_PRF_MAX];
    /* AEAD IV counters for messages we send, one per direction key
     * (SK_ei / SK_er). IVs are counter values, so they never repeat
     * under one key as long as this struct is not copied and reused. */
    uint64_t iv_next_i, iv_next_r;
};

/* {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
 *   = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr), lengths from suite.
 * spi_i and spi_r are the 8 wire bytes of the IKE header (msg and msg+8).
 * On failure *k is zeroized. */
int ike_sa_keys_derive(struct ike_sa_keys *k, const struct ike_suite *suite,
                       struct ike_buf skeyseed, struct ike_buf ni, struct ike_buf nr,
                       const uint8_t spi_i[8], const uint8_t spi_r[8]);
void ike_sa_keys_free(struct ike_sa_keys *k);

/* CHILD SA keys, §2.17: KEYMAT = prf+(SK_d, [g^ir(new) |] Ni | Nr), taken
 * as encr_i, integ_i, encr_r, integ_r ("i" = initiator-to-responder,
 * the initiator's outbound SA). Pass gir_new.len = 0 without PFS. */
struct ike_child_keys {
    size_t encr_len, integ_len;
    uint8_t encr_i[IKE_ENCR_KEYMAT_MAX], integ_i[IKE_INTEG_KEY_MAX];
    uint8_t encr_r[IKE_ENCR_KEYMAT_MAX], integ_r[IKE_INTEG_KEY_MAX];
};

int ike_child_keys_derive(struct ike_child_keys *ck, const struct ike_sa_keys *k,
                          const struct ike_suite *esp, struct ike_buf gir_new,
                          struct ike_buf ni, struct ike_buf nr);
void ike_child_keys_free(struct ike_child_keys *ck);

/* ---- SK payload protection (ike_sk.c) ---------------------------------
 *
 * A protected message in one buffer (RFC 7296 §3.14):
 *
 *   msg:  IKE header (28) | payloads before SK, if any |
 *   sk_off: SK generic header (4) | IV | ciphertext | ICV
 *   ciphertext = E(inner payload chain | padding | Pad Length (1 byte))
 *
 * AES-GCM-16 / ChaCha20-Poly1305 (RFC 5282, RFC 7634): 8-byte IV (a
 * per-key counter), 16-byte ICV, no padding, AAD = msg[0 .. IV) - the IKE
 * header through the SK payload header (RFC 5282 §5.1).
 * AES-CBC + AUTH_HMAC_SHA2_256_128: random 16-byte IV, padding to 16
 * bytes, ICV = first 16 bytes of HMAC-SHA-256(SK_a, msg[0 .. ICV)).
 *
 * Sending (ike_sk_encrypt). The caller writes, in msg:
 *   - the IKE header complete except its Length field,
 *   - any payloads before SK, the last one's Next Payload = SK (46),
 *   - SK generic header bytes 0 (Next Payload = first inner payload)
 *     and 1 (critical bit / reserved = 0),
 *   - the inner payload chain, plain_len bytes, at
 *     ike_sk_plain_offset(k, sk_off),
 *   and leaves at least IKE_SK_TAIL_MAX bytes of cap after it.
 * ike_sk_encrypt writes the IV, the padding and Pad Length, the ICV, the
 * SK payload Length and the IKE header Length, encrypts in place and
 * returns the message length in *msg_len_r.
 *
 * Receiving (ike_sk_decrypt): msg[0..msg_len) is one whole message whose
 * last payload is SK at sk_off (as found by the payload parser). The SK
 * Length must reach exactly to msg_len and the header Length must equal
 * msg_len. The ICV is checked (constant time) before any byte is
 * decrypted or interpreted; then the plaintext inner chain is left in
 * place at *plain_off_r, *plain_len_r bytes. On any error the contents of
 * the SK payload are unspecified (AES-GCM wipes them) and the message
 * must be dropped.
 *
 * sender_is_initiator selects the key: true for messages sent by the
 * original initiator of the IKE SA (SK_ei / SK_ai), whatever their
 * request/response role, false for the original responder's.
 */
#define IKE_SK_HDR_LEN      4u
#define IKE_SK_IV_MAX       16u
#define IKE_SK_TAIL_MAX     32u     /* padding + Pad Length + ICV, worst case */
#define IKE_SK_OVERHEAD_MAX (IKE_SK_HDR_LEN + IKE_SK_IV_MAX + IKE_SK_TAIL_MAX)

size_t ike_sk_iv_len(const struct ike_sa_keys *k);
size_t ike_sk_icv_len(const struct ike_sa_keys *k);
/* Offset at which the caller puts the inner payload chain. */
size_t ike_sk_plain_offset(const struct ike_sa_keys *k, size_t sk_off);

int ike_sk_encrypt(struct ike_sa_keys *k, bool sender_is_initiator,
                   uint8_t *msg, size_t sk_off, size_t plain_len,
                   size_t cap, size_t *msg_len_r);
int ike_sk_decrypt(const struct ike_sa_keys *k, bool sender_is_initiator,
                   uint8_t *msg, size_t msg_len, size_t sk_off,
                   size_t *plain_off_r, size_t *plain_len_r);

/* ---- authentication (ike_crypto.c) ---------------------------------------
 *
 * RFC 7296 §2.15. For the AUTH sent by the initiator (initiator = true):
 *   InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI,
 *   MACedIDForI = prf(SK_pi, RestOfInitIDPayload);
 * for the responder's (initiator = false):
 *   ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR,
 *   MACedIDForR = prf(SK_pr, RestOfRespIDPayload).
 * real_msg is the whole IKE_SA_INIT message that party sent (header
 * included, as on the wire, without the non-ESP marker); peer_nonce is
 * the other party's Nonce Data; id_body is the ID payload body after the
 * 4-byte generic header (ID Type, 3 reserved bytes, identification data).
 * The PRF is the IKE SA's.
 */
#define IKE_PSK_KEYPAD      "Key Pad for IKEv2"
#define IKE_PSK_KEYPAD_LEN  17u

/* The signed octets, for signature authentication (RFC 7427). */
int ike_auth_signed_octets(const struct ike_sa_keys *k, bool initiator,
                           struct ike_buf real_msg, struct ike_buf peer_nonce,
                           struct ike_buf id_body,
                           uint8_t *out, size_t cap, size_t *len_r);
/* AUTH = prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>); ike_prf_len
 * bytes. */
int ike_auth_psk_compute(const struct ike_sa_keys *k, bool initiator,
                         const uint8_t *psk, size_t psk_len,
                         struct ike_buf real_msg, struct ike_buf peer_nonce,
                         struct ike_buf id_body,
                         uint8_t *auth, size_t cap, size_t *len_r);
/* Recompute and compare in constant time: 0 or IKE_CRYPTO_E_AUTH (the
 * responder answers AUTHENTICATION_FAILED). */
int ike_auth_psk_verify(const struct ike_sa_keys *k, bool initiator,
                        const uint8_t *psk, size_t psk_len,
                        struct ike_buf real_msg, struct ike_buf peer_nonce,
                        struct ike_buf id_body,
                        const uint8_t *received, size_t received_len);

#endif
