/*
 * CPU cost of the IKEv2 crypto building blocks (ipsec/ike_crypto.h), in
 * microseconds of process CPU time per operation, averaged over a fixed
 * number of rounds:
 *   - one side's DH work in a handshake: key pair generation plus the
 *     shared secret (X25519, ECP-256, MODP-2048);
 *   - SKEYSEED plus the seven-key prf+ expansion (AES-GCM-128, SHA-256);
 *   - SK protection of a 300-byte inner payload chain, seal plus open;
 *   - one X25519 scalar multiplication, our ipsec/x25519.c against
 *     mbedTLS's generic ECP code (mbedtls_ecp_mul on Curve25519, what
 *     group 31 used before) in the same run, and their ratio.
 * The full-handshake benchmark (target <= 1 ms CPU per pair) builds on
 * these; see issue 4.
 */
#include "ipsec/ike_crypto.h"
#include "ipsec/ike_defs.h"
#include "ipsec/x25519.h"

#include <mbedtls/ecp.h>
#include <mbedtls/platform_util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_ike_crypto: %s: %s\n", what, ike_crypto_strerror(rc));
    exit(1);
}

static void bench_dh(const char *name, uint16_t group, int rounds)
{
    struct ike_dh peer, me;
    uint8_t peer_pub[IKE_DH_PUBLIC_MAX], secret[IKE_DH_SECRET_MAX];
    size_t peer_len = 0, slen = 0;
    double t0;
    int rc;

    if ((rc = ike_dh_init(&peer, group)) != 0 ||
        (rc = ike_dh_public(&peer, peer_pub, sizeof(peer_pub), &peer_len)) != 0)
        die(name, rc);
    t0 = cpu_us();
    for (int i = 0; i < rounds; i++) {
        if ((rc = ike_dh_init(&me, group)) != 0 ||
            (rc = ike_dh_shared(&me, peer_pub, peer_len, secret, sizeof(secret), &slen)) != 0)
            die(name, rc);
        ike_dh_free(&me);
    }
    printf("%-40s %10.1f us\n", name, (cpu_us() - t0) / rounds);
    ike_dh_free(&peer);
}

static void bench_kdf(int rounds)
{
    const struct ike_suite suite = { IKE_ENCR_AES_GCM_16, 128, IKE_INTEG_NONE,
                                     IKE_PRF_HMAC_SHA2_256 };
    uint8_t ni[32], nr[32], gir[32], spi_i[8], spi_r[8], seed[IKE_PRF_MAX];
    struct ike_sa_keys k;
    size_t slen = 0;
    double t0;
    int rc;

    memset(ni, 1, sizeof(ni));
    memset(nr, 2, sizeof(nr));
    memset(gir, 3, sizeof(gir));
    memset(spi_i, 4, sizeof(spi_i));
    memset(spi_r, 5, sizeof(spi_r));
    t0 = cpu_us();
    for (int i = 0; i < rounds; i++) {
        if ((rc = ike_skeyseed(suite.prf, ike_buf_of(ni, 32), ike_buf_of(nr, 32),
                               ike_buf_of(gir, 32), seed, sizeof(seed), &slen)) != 0 ||
            (rc = ike_sa_keys_derive(&k, &suite, ike_buf_of(seed, slen), ike_buf_of(ni, 32),
                                     ike_buf_of(nr, 32), spi_i, spi_r)) != 0)
            die("kdf", rc);
        ike_sa_keys_free(&k);
    }
    printf("%-40s %10.1f us\n", "SKEYSEED + prf+ (aes128gcm16, sha256)", (cpu_us() - t0) / rounds);
}

static void bench_sk(int rounds)
{
    const struct ike_suite suite = { IKE_ENCR_AES_GCM_16, 128, IKE_INTEG_NONE,
                                     IKE_PRF_HMAC_SHA2_256 };
    uint8_t seed[32] = { 7 }, spi[8] = { 9 }, msg[512];
    struct ike_sa_keys k;
    size_t len = 0, off = 0, plen = 0;
    double t0;
    int rc;

    if ((rc = ike_sa_keys_derive(&k, &suite, ike_buf_of(seed, 32), ike_buf_of(seed, 16),
                                 ike_buf_of(seed + 16, 16), spi, spi)) != 0)
        die("sk keys", rc);
    memset(msg, 0, sizeof(msg));
    msg[16] = IKE_PL_SK;
    t0 = cpu_us();
    for (int i = 0; i < rounds; i++) {
        msg[IKE_HDR_LEN] = IKE_PL_IDI;
        if ((rc = ike_sk_encrypt(&k, true, msg, IKE_HDR_LEN, 300, sizeof(msg), &len)) != 0 ||
            (rc = ike_sk_decrypt(&k, true, msg, len, IKE_HDR_LEN, &off, &plen)) != 0)
            die("sk", rc);
    }
    printf("%-40s %10.1f us\n", "SK seal+open 300 B (aes128gcm16)", (cpu_us() - t0) / rounds);
    ike_sa_keys_free(&k);
}

/* Microseconds per X25519 scalar multiplication: ours and mbedTLS's on
 * the same random scalars and points (each result fed back as the next
 * u, so neither loop can be optimized away), then the speedup. */
static void bench_x25519(int rounds)
{
    uint8_t k[32], u0[32], u[32], out[32];
    mbedtls_ecp_group grp;
    mbedtls_ecp_point p, r;
    mbedtls_mpi m;
    double t0, ours, theirs;
    int rc;

    if ((rc = ike_random(k, sizeof(k))) != 0 || (rc = ike_random(u0, sizeof(u0))) != 0)
        die("x25519 inputs", rc);
    u0[31] &= 127;

    memcpy(u, u0, sizeof(u));
    t0 = cpu_us();
    for (int i = 0; i < rounds; i++) {
        x25519(out, k, u);
        memcpy(u, out, sizeof(u));
    }
    ours = (cpu_us() - t0) / rounds;

    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&p);
    mbedtls_ecp_point_init(&r);
    mbedtls_mpi_init(&m);
    k[0] &= 248;    /* decodeScalar25519, as mbedtls_ecp_check_privkey wants */
    k[31] &= 127;
    k[31] |= 64;
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_CURVE25519) != 0 ||
        mbedtls_mpi_read_binary_le(&m, k, sizeof(k)) != 0 ||
        mbedtls_mpi_read_binary_le(&p.X, u0, sizeof(u0)) != 0 ||
        mbedtls_mpi_lset(&p.Z, 1) != 0)
        die("mbedtls x25519 setup", IKE_CRYPTO_E_CRYPTO);
    t0 = cpu_us();
    for (int i = 0; i < rounds; i++) {
        if (mbedtls_ecp_mul(&grp, &r, &m, &p, ike_random_mbedtls, NULL) != 0 ||
            mbedtls_ecp_copy(&p, &r) != 0)
            die("mbedtls x25519", IKE_CRYPTO_E_CRYPTO);
    }
    theirs = (cpu_us() - t0) / rounds;
    /* both chains started from the same u with the same scalar */
    if (mbedtls_mpi_write_binary_le(&p.X, out, sizeof(out)) != 0 || memcmp(out, u, sizeof(u)) != 0)
        die("x25519 differs from mbedtls", IKE_CRYPTO_E_CRYPTO);

    printf("%-40s %10.1f us\n", "X25519 scalar mult (ipsec/x25519.c)", ours);
    printf("%-40s %10.1f us\n", "X25519 scalar mult (mbedTLS ECP)", theirs);
    printf("%-40s %10.1f x\n", "X25519 speedup (mbedTLS / ours)", theirs / ours);
    mbedtls_platform_zeroize(k, sizeof(k));
    mbedtls_mpi_free(&m);
    mbedtls_ecp_point_free(&p);
    mbedtls_ecp_point_free(&r);
    mbedtls_ecp_group_free(&grp);
}

int main(void)
{
    bench_dh("X25519 keygen + shared", IKE_DH_CURVE25519, 200);
    bench_dh("ECP-256 keygen + shared", IKE_DH_ECP256, 100);
    bench_dh("MODP-2048 keygen + shared", IKE_DH_MODP2048, 10);
    bench_kdf(2000);
    bench_sk(5000);
    bench_x25519(500);
    ike_random_thread_cleanup();
    return 0;
}
