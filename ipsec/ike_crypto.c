/*
 * IKEv2 crypto: the random source, PRF / prf+, key derivation (RFC 7296
 * §2.13, §2.14, §2.17, §2.18) and PSK authentication (§2.15). Diffie-
 * Hellman is in ike_dh.c and SK payload protection in ike_sk.c.
 */
#include "ipsec/ike_crypto.h"

#include "ipsec/ike_defs.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

const char *ike_crypto_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case IKE_CRYPTO_E_INVAL: return "invalid argument or unsupported transform";
    case IKE_CRYPTO_E_NOSPACE: return "output buffer too small";
    case IKE_CRYPTO_E_PEER_KE: return "invalid peer key exchange value";
    case IKE_CRYPTO_E_TRUNCATED: return "message truncated";
    case IKE_CRYPTO_E_LENGTH: return "length fields disagree";
    case IKE_CRYPTO_E_ICV: return "integrity check failed";
    case IKE_CRYPTO_E_PADDING: return "bad padding";
    case IKE_CRYPTO_E_AUTH: return "AUTH mismatch";
    case IKE_CRYPTO_E_RNG: return "random source failed";
    case IKE_CRYPTO_E_CRYPTO: return "crypto library error";
    case IKE_CRYPTO_E_IV_EXHAUSTED: return "IV space exhausted";
    }
    return "unknown error";
}

bool ike_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;

    for (size_t i = 0; i < n; i++)
        diff |= (uint8_t)(x[i] ^ y[i]);
    return diff == 0;
}

/* ---- random source ---------------------------------------------------- */

/* One CTR-DRBG per thread: no locks, and a fork is detected by the pid
 * so parent and child never share a stream. */
static _Thread_local struct {
    bool seeded;
    pid_t pid;
    mbedtls_ctr_drbg_context drbg;
} rng;

static int ike__getrandom(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int ike__rng_ready(void)
{
    static const unsigned char pers[] = "esproxy ike";
    pid_t pid = getpid();

    if (rng.seeded && rng.pid == pid)
        return 0;
    if (rng.seeded) {
        /* forked: fresh entropy before the child draws anything */
        if (mbedtls_ctr_drbg_reseed(&rng.drbg, NULL, 0) != 0)
            return IKE_CRYPTO_E_RNG;
        rng.pid = pid;
        return 0;
    }
    mbedtls_ctr_drbg_init(&rng.drbg);
    if (mbedtls_ctr_drbg_seed(&rng.drbg, ike__getrandom, NULL, pers, sizeof(pers) - 1) != 0) {
        mbedtls_ctr_drbg_free(&rng.drbg);
        return IKE_CRYPTO_E_RNG;
    }
    rng.seeded = true;
    rng.pid = pid;
    return 0;
}

int ike_random(void *buf, size_t len)
{
    uint8_t *p = buf;

    if (ike__rng_ready() != 0)
        return IKE_CRYPTO_E_RNG;
    while (len > 0) {
        size_t n = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        if (mbedtls_ctr_drbg_random(&rng.drbg, p, n) != 0)
            return IKE_CRYPTO_E_RNG;
        p += n;
        len -= n;
    }
    return 0;
}

int ike_random_mbedtls(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    return ike_random(buf, len) == 0 ? 0 : MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
}

void ike_random_thread_cleanup(void)
{
    if (rng.seeded)
        mbedtls_ctr_drbg_free(&rng.drbg);   /* zeroizes */
    mbedtls_platform_zeroize(&rng, sizeof(rng));
}

/* ---- PRF and prf+ ----------------------------------------------------- */

static const mbedtls_md_info_t *ike__prf_md(uint16_t prf)
{
    switch (prf) {
    case IKE_PRF_HMAC_SHA2_256:
        return mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    case IKE_PRF_HMAC_SHA2_384:
        return mbedtls_md_info_from_type(MBEDTLS_MD_SHA384);
    }
    return NULL;
}

size_t ike_prf_len(uint16_t prf)
{
    const mbedtls_md_info_t *md = ike__prf_md(prf);
    return md != NULL ? mbedtls_md_get_size(md) : 0;
}

static int ike__hmac_parts(mbedtls_md_context_t *ctx, const struct ike_buf *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (parts[i].len > 0 && mbedtls_md_hmac_update(ctx, parts[i].p, parts[i].len) != 0)
            return IKE_CRYPTO_E_CRYPTO;
    return 0;
}

static bool ike__parts_valid(const struct ike_buf *parts, size_t n)
{
    if (n > 0 && parts == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (parts[i].len > 0 && parts[i].p == NULL)
            return false;
    return true;
}

int ike_prf(uint16_t prf, const uint8_t *key, size_t key_len,
            const struct ike_buf *parts, size_t n_parts, uint8_t *out, size_t cap)
{
    const mbedtls_md_info_t *md = ike__prf_md(prf);
    mbedtls_md_context_t ctx;
    int rc = IKE_CRYPTO_E_CRYPTO;

    if (md == NULL || (key == NULL && key_len > 0) || out == NULL ||
        !ike__parts_valid(parts, n_parts))
        return IKE_CRYPTO_E_INVAL;
    if (cap < mbedtls_md_get_size(md))
        return IKE_CRYPTO_E_NOSPACE;
    mbedtls_md_init(&ctx);
    if (mbedtls_md_setup(&ctx, md, 1) != 0 ||
        mbedtls_md_hmac_starts(&ctx, key, key_len) != 0)
        goto done;
    if ((rc = ike__hmac_parts(&ctx, parts, n_parts)) != 0)
        goto done;
    rc = mbedtls_md_hmac_finish(&ctx, out) == 0 ? 0 : IKE_CRYPTO_E_CRYPTO;
done:
    mbedtls_md_free(&ctx);  /* zeroizes the keyed HMAC state */
    return rc;
}

int ike_prf_plus(uint16_t prf, const uint8_t *key, size_t key_len,
                 const struct ike_buf *seed, size_t n_seed, uint8_t *out, size_t out_len)
{
    const mbedtls_md_info_t *md = ike__prf_md(prf);
    mbedtls_md_context_t ctx;
    uint8_t t[IKE_PRF_MAX];
    size_t hlen, done_len = 0;
    int rc = IKE_CRYPTO_E_CRYPTO;

    if (md == NULL || (key == NULL && key_len > 0) || (out == NULL && out_len > 0) ||
        !ike__parts_valid(seed, n_seed))
        return IKE_CRYPTO_E_INVAL;
    hlen = mbedtls_md_get_size(md);
    if (out_len > 255u * hlen)
        return IKE_CRYPTO_E_INVAL;
    mbedtls_md_init(&ctx);
    if (mbedtls_md_setup(&ctx, md, 1) != 0 ||
        mbedtls_md_hmac_starts(&ctx, key, key_len) != 0)
        goto done;
    for (unsigned n = 1; done_len < out_len; n++) {
        uint8_t counter = (uint8_t)n;
        size_t take = out_len - done_len < hlen ? out_len - done_len : hlen;

        if (n > 1 && (mbedtls_md_hmac_reset(&ctx) != 0 ||
                      mbedtls_md_hmac_update(&ctx, t, hlen) != 0))
            goto done;
        if (ike__hmac_parts(&ctx, seed, n_seed) != 0 ||
            mbedtls_md_hmac_update(&ctx, &counter, 1) != 0 ||
            mbedtls_md_hmac_finish(&ctx, t) != 0)
            goto done;
        memcpy(out + done_len, t, take);
        done_len += take;
    }
    rc = 0;
done:
    mbedtls_md_free(&ctx);
    mbedtls_platform_zeroize(t, sizeof(t));
    if (rc != 0 && out_len > 0)
        mbedtls_platform_zeroize(out, out_len);
    return rc;
}

/* ---- transform lengths -------------------------------------------------- */

size_t ike_encr_keymat_len(uint16_t encr, uint16_t key_bits)
{
    switch (encr) {
    case IKE_ENCR_AES_GCM_16:
        if (key_bits == 128 || key_bits == 256)
            return key_bits / 8u + 4u;
        return 0;
    case IKE_ENCR_AES_CBC:
        if (key_bits == 128 || key_bits == 256)
            return key_bits / 8u;
        return 0;
    case IKE_ENCR_CHACHA20_POLY1305:
        /* RFC 7634 §2: no Key Length attribute; tolerate 256 */
        return key_bits == 0 || key_bits == 256 ? 32u + 4u : 0;
    }
    return 0;
}

size_t ike_integ_key_len(uint16_t integ)
{
    return integ == IKE_INTEG_HMAC_SHA2_256_128 ? 32u : 0;
}

static bool ike__encr_is_aead(uint16_t encr)
{
    return encr == IKE_ENCR_AES_GCM_16 || encr == IKE_ENCR_CHACHA20_POLY1305;
}

int ike_suite_check(const struct ike_suite *s, bool for_child)
{
    if (s == NULL || ike_encr_keymat_len(s->encr, s->encr_key_bits) == 0)
        return IKE_CRYPTO_E_INVAL;
    if (!for_child && ike_prf_len(s->prf) == 0)
        return IKE_CRYPTO_E_INVAL;
    if (ike__encr_is_aead(s->encr))
        return s->integ == IKE_INTEG_NONE ? 0 : IKE_CRYPTO_E_INVAL;
    return ike_integ_key_len(s->integ) > 0 ? 0 : IKE_CRYPTO_E_INVAL;
}

/* ---- SKEYSEED and the key schedule -------------------------------------- */

/* Copy the next len bytes of the prf+ stream to dst. */
static void ike__take(uint8_t *dst, const uint8_t *keymat, size_t *off, size_t len)
{
    memcpy(dst, keymat + *off, len);
    *off += len;
}

static int ike__prf_out(uint16_t prf, const uint8_t *key, size_t key_len,
                        const struct ike_buf *parts, size_t n,
                        uint8_t *out, size_t cap, size_t *len_r)
{
    int rc = ike_prf(prf, key, key_len, parts, n, out, cap);

    if (rc == 0 && len_r != NULL)
        *len_r = ike_prf_len(prf);
    return rc;
}

int ike_skeyseed(uint16_t prf, struct ike_buf ni, struct ike_buf nr,
                 struct ike_buf gir, uint8_t *out, size_t cap, size_t *len_r)
{
    /* HMAC takes the key in one piece: Ni | Nr, at most 2 x 256 bytes */
    uint8_t key[2 * 256];
    int rc;

    if (ni.len > 256 || nr.len > 256 || !ike__parts_valid(&ni, 1) ||
        !ike__parts_valid(&nr, 1))
        return IKE_CRYPTO_E_INVAL;
    if (ni.len > 0)
        memcpy(key, ni.p, ni.len);
    if (nr.len > 0)
        memcpy(key + ni.len, nr.p, nr.len);
    rc = ike__prf_out(prf, key, ni.len + nr.len, &gir, 1, out, cap, len_r);
    mbedtls_platform_zeroize(key, sizeof(key));
    return rc;
}

int ike_skeyseed_rekey(uint16_t prf, struct ike_buf sk_d_old, struct ike_buf gir_new,
                       struct ike_buf ni, struct ike_buf nr,
                       uint8_t *out, size_t cap, size_t *len_r)
{
    const struct ike_buf parts[] = { gir_new, ni, nr };

    if (sk_d_old.len == 0 || sk_d_old.p == NULL || gir_new.len == 0)
        return IKE_CRYPTO_E_INVAL;
    return ike__prf_out(prf, sk_d_old.p, sk_d_old.len, parts, 3, out, cap, len_r);
}

int ike_sa_keys_derive(struct ike_sa_keys *k, const struct ike_suite *suite,
                       struct ike_buf skeyseed, struct ike_buf ni, struct ike_buf nr,
                       const uint8_t spi_i[8], const uint8_t spi_r[8])
{
    const struct ike_buf seed[] = {
        ni, nr, ike_buf_of(spi_i, 8), ike_buf_of(spi_r, 8),
    };
    uint8_t keymat[2 * IKE_PRF_MAX + 2 * IKE_INTEG_KEY_MAX + 2 * IKE_ENCR_KEYMAT_MAX +
                   IKE_PRF_MAX];
    size_t total, off = 0;
    int rc;

    if (k == NULL)
        return IKE_CRYPTO_E_INVAL;
    memset(k, 0, sizeof(*k));
    if (ike_suite_check(suite, false) != 0 || spi_i == NULL || spi_r == NULL ||
        skeyseed.p == NULL || skeyseed.len == 0)
        return IKE_CRYPTO_E_INVAL;
    k->suite = *suite;
    k->d_len = k->p_len = ike_prf_len(suite->prf);
    k->a_len = ike_integ_key_len(suite->integ);
    k->e_len = ike_encr_keymat_len(suite->encr, suite->encr_key_bits);
    total = 3 * k->d_len + 2 * k->a_len + 2 * k->e_len;
    rc = ike_prf_plus(suite->prf, skeyseed.p, skeyseed.len, seed, 4, keymat, total);
    if (rc != 0) {
        ike_sa_keys_free(k);
        return rc;
    }
    ike__take(k->sk_d, keymat, &off, k->d_len);
    ike__take(k->sk_ai, keymat, &off, k->a_len);
    ike__take(k->sk_ar, keymat, &off, k->a_len);
    ike__take(k->sk_ei, keymat, &off, k->e_len);
    ike__take(k->sk_er, keymat, &off, k->e_len);
    ike__take(k->sk_pi, keymat, &off, k->p_len);
    ike__take(k->sk_pr, keymat, &off, k->p_len);
    mbedtls_platform_zeroize(keymat, sizeof(keymat));
    return 0;
}

void ike_sa_keys_free(struct ike_sa_keys *k)
{
    if (k != NULL)
        mbedtls_platform_zeroize(k, sizeof(*k));
}

int ike_child_keys_derive(struct ike_child_keys *ck, const struct ike_sa_keys *k,
                          const struct ike_suite *esp, struct ike_buf gir_new,
                          struct ike_buf ni, struct ike_buf nr)
{
    const struct ike_buf seed[] = { gir_new, ni, nr };
    uint8_t keymat[2 * IKE_ENCR_KEYMAT_MAX + 2 * IKE_INTEG_KEY_MAX];
    size_t off = 0;
    int rc;

    if (ck == NULL)
        return IKE_CRYPTO_E_INVAL;
    memset(ck, 0, sizeof(*ck));
    if (k == NULL || k->d_len == 0 || ike_suite_check(esp, true) != 0)
        return IKE_CRYPTO_E_INVAL;
    ck->encr_len = ike_encr_keymat_len(esp->encr, esp->encr_key_bits);
    ck->integ_len = ike_integ_key_len(esp->integ);
    rc = ike_prf_plus(k->suite.prf, k->sk_d, k->d_len, seed, 3, keymat,
                      2 * (ck->encr_len + ck->integ_len));
    if (rc != 0) {
        ike_child_keys_free(ck);
        return rc;
    }
    ike__take(ck->encr_i, keymat, &off, ck->encr_len);
    ike__take(ck->integ_i, keymat, &off, ck->integ_len);
    ike__take(ck->encr_r, keymat, &off, ck->encr_len);
    ike__take(ck->integ_r, keymat, &off, ck->integ_len);
    mbedtls_platform_zeroize(keymat, sizeof(keymat));
    return 0;
}

void ike_child_keys_free(struct ike_child_keys *ck)
{
    if (ck != NULL)
        mbedtls_platform_zeroize(ck, sizeof(*ck));
}

/* ---- authentication (§2.15) --------------------------------------------- */

/* MACedIDFor[IR] = prf(SK_p[ir], RestOf[Init|Resp]IDPayload) */
static int ike__maced_id(const struct ike_sa_keys *k, bool initiator, struct ike_buf id_body,
                         uint8_t out[IKE_PRF_MAX])
{
    const uint8_t *sk_p = initiator ? k->sk_pi : k->sk_pr;

    return ike_prf(k->suite.prf, sk_p, k->p_len, &id_body, 1, out, IKE_PRF_MAX);
}

static bool ike__auth_args_ok(const struct ike_sa_keys *k, struct ike_buf real_msg,
                              struct ike_buf peer_nonce, struct ike_buf id_body)
{
    return k != NULL && k->p_len > 0 && real_msg.p != NULL && real_msg.len > 0 &&
           ike__parts_valid(&peer_nonce, 1) && ike__parts_valid(&id_body, 1);
}

int ike_auth_signed_octets(const struct ike_sa_keys *k, bool initiator,
                           struct ike_buf real_msg, struct ike_buf peer_nonce,
                           struct ike_buf id_body, uint8_t *out, size_t cap, size_t *len_r)
{
    size_t need;
    int rc;

    if (!ike__auth_args_ok(k, real_msg, peer_nonce, id_body) || out == NULL)
        return IKE_CRYPTO_E_INVAL;
    need = real_msg.len + peer_nonce.len + k->p_len;
    if (cap < need)
        return IKE_CRYPTO_E_NOSPACE;
    if ((rc = ike__maced_id(k, initiator, id_body, out + real_msg.len + peer_nonce.len)) != 0)
        return rc;
    memcpy(out, real_msg.p, real_msg.len);
    if (peer_nonce.len > 0)
        memcpy(out + real_msg.len, peer_nonce.p, peer_nonce.len);
    if (len_r != NULL)
        *len_r = need;
    return 0;
}

int ike_auth_psk_compute(const struct ike_sa_keys *k, bool initiator,
                         const uint8_t *psk, size_t psk_len,
                         struct ike_buf real_msg, struct ike_buf peer_nonce,
                         struct ike_buf id_body, uint8_t *auth, size_t cap, size_t *len_r)
{
    const struct ike_buf keypad = ike_buf_of(IKE_PSK_KEYPAD, IKE_PSK_KEYPAD_LEN);
    uint8_t padded[IKE_PRF_MAX], maced_id[IKE_PRF_MAX];
    int rc;

    if (!ike__auth_args_ok(k, real_msg, peer_nonce, id_body) || psk == NULL ||
        psk_len == 0 || auth == NULL)
        return IKE_CRYPTO_E_INVAL;
    if (cap < k->p_len)
        return IKE_CRYPTO_E_NOSPACE;
    /* the signed octets are streamed into the PRF, never concatenated */
    rc = ike__maced_id(k, initiator, id_body, maced_id);
    if (rc == 0)
        rc = ike_prf(k->suite.prf, psk, psk_len, &keypad, 1, padded, sizeof(padded));
    if (rc == 0) {
        const struct ike_buf octets[] = {
            real_msg, peer_nonce, ike_buf_of(maced_id, k->p_len),
        };
        rc = ike_prf(k->suite.prf, padded, k->p_len, octets, 3, auth, cap);
    }
    mbedtls_platform_zeroize(padded, sizeof(padded));
    mbedtls_platform_zeroize(maced_id, sizeof(maced_id));
    if (rc == 0 && len_r != NULL)
        *len_r = k->p_len;
    return rc;
}

int ike_auth_psk_verify(const struct ike_sa_keys *k, bool initiator,
                        const uint8_t *psk, size_t psk_len,
                        struct ike_buf real_msg, struct ike_buf peer_nonce,
                        struct ike_buf id_body, const uint8_t *received, size_t received_len)
{
    uint8_t expect[IKE_PRF_MAX];
    size_t len = 0;
    int rc;

    if (received == NULL && received_len > 0)
        return IKE_CRYPTO_E_INVAL;
    rc = ike_auth_psk_compute(k, initiator, psk, psk_len, real_msg, peer_nonce, id_body,
                              expect, sizeof(expect), &len);
    if (rc == 0 && (received_len != len || !ike_ct_equal(expect, received, len)))
        rc = IKE_CRYPTO_E_AUTH;
    mbedtls_platform_zeroize(expect, sizeof(expect));
    return rc;
}
