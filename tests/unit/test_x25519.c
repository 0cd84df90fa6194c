/*
 * Tests of our X25519 (ipsec/x25519.h, RFC 7748 §5). Sources of the
 * known answers:
 *
 * - RFC 7748 §5.2: the two single-scalar-multiplication vectors (the
 *   second has the top bit of u set, which must be masked), and the
 *   iterated test after 1 and 1,000 iterations. The 1,000,000-iteration
 *   value is NOT checked here: at tens of microseconds per call it would
 *   take most of a minute, too slow for the unit suite.
 * - RFC 7748 §6.1: Alice's and Bob's key pairs and their shared secret.
 *
 * The rest are properties:
 * - non-canonical u (§5: "implementations of X25519 MUST mask the most
 *   significant bit ... accept non-canonical values and process them as
 *   if they had been reduced modulo the field prime"): bit 255 ignored,
 *   p + d gives the same result as d, the output is always canonical;
 * - every low-order u under that decoding (0, 1, p - 1, the two points
 *   of order 8, and the encodings p, p + 1 and bit-255 variants of all
 *   of them) gives an all-zero output, and ike_dh_shared rejects it;
 * - bit-identical results to mbedTLS's own Curve25519 (mbedtls_ecp_mul on
 *   MBEDTLS_ECP_DP_CURVE25519) for 500 random scalar/point pairs and
 *   100 random scalars times the base point, from a fixed-seed generator
 *   (the seed is in the failure message);
 * - output may alias the inputs; group 31 of ike_dh is this function.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <mbedtls/ecp.h>

#include "ipsec/ike_crypto.h"
#include "ipsec/ike_defs.h"
#include "ipsec/x25519.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(s), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void assert_hex_equal(const uint8_t *got, const char *want_hex)
{
    uint8_t want[32];

    hex(want_hex, want, sizeof(want));
    assert_memory_equal(got, want, sizeof(want));
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* splitmix64: a fixed-seed generator, so a failure can be replayed. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rng_next();
        for (size_t j = 0; j < 8 && i + j < n; j++)
            p[i + j] = (uint8_t)(v >> (8 * j));
    }
}

/* p = 2^255 - 19, little-endian */
static void set_p_plus(uint8_t u[32], unsigned d)
{
    memset(u, 0xff, 32);
    u[31] = 0x7f;
    u[0] = (uint8_t)(0xed + d);     /* d <= 18: no carry */
}

/* ---- RFC 7748 known answers -------------------------------------------- */

static void rfc7748_5_2_vectors(void **state)
{
    static const char *v[][3] = {
        { "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
          "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
          "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" },
        { "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
          "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
          "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957" },
    };
    (void)state;

    for (size_t i = 0; i < 2; i++) {
        uint8_t k[32], u[32], out[32];

        hex(v[i][0], k, 32);
        hex(v[i][1], u, 32);
        x25519(out, k, u);
        assert_hex_equal(out, v[i][2]);
    }
}

/* k = u = 9; each round: r = X25519(k, u); u = k; k = r. */
static void rfc7748_5_2_iterated_1_and_1000(void **state)
{
    uint8_t k[32] = { 9 }, u[32] = { 9 }, r[32];
    (void)state;

    for (int i = 1; i <= 1000; i++) {
        x25519(r, k, u);
        memcpy(u, k, 32);
        memcpy(k, r, 32);
        if (i == 1)
            assert_hex_equal(k, "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    }
    assert_hex_equal(k, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
    /* 1,000,000 iterations (7c3911e0ab2586fd864497297e575e6f3bc601c0883c30df5f4dd2d24f665424)
     * skipped: too slow for the unit suite. */
}

static void rfc7748_6_1_alice_and_bob(void **state)
{
    uint8_t a_priv[32], b_priv[32], a_pub[32], b_pub[32], s1[32], s2[32];
    (void)state;

    hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_priv, 32);
    hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b_priv, 32);
    x25519_base(a_pub, a_priv);
    assert_hex_equal(a_pub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    x25519_base(b_pub, b_priv);
    assert_hex_equal(b_pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    x25519(s1, a_priv, b_pub);
    assert_hex_equal(s1, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    x25519(s2, b_priv, a_pub);
    assert_memory_equal(s1, s2, 32);
}

/* ---- decoding of u ------------------------------------------------------ */

static void top_bit_of_u_is_ignored(void **state)
{
    (void)state;

    rng_state = 0x5eed0001;
    for (int i = 0; i < 20; i++) {
        uint8_t k[32], u[32], out1[32], out2[32];

        rng_fill(k, 32);
        rng_fill(u, 32);
        u[31] &= 0x7f;
        x25519(out1, k, u);
        u[31] |= 0x80;
        x25519(out2, k, u);
        assert_memory_equal(out1, out2, 32);
        assert_int_equal(out1[31] & 0x80, 0);
    }
}

/* u = p + d (2^255 - 19 <= u < 2^255) is processed as d; so is u with
 * bit 255 set on top of that. d = 0 and 1 are low-order (tested below). */
static void non_canonical_u_is_reduced_mod_p(void **state)
{
    (void)state;

    rng_state = 0x5eed0002;
    for (unsigned d = 2; d <= 18; d++) {
        uint8_t k[32], u[32], small[32] = { 0 }, want[32], got[32];

        rng_fill(k, 32);
        small[0] = (uint8_t)d;
        x25519(want, k, small);
        assert_false(all_zero(want, 32));
        assert_int_equal(want[31] & 0x80, 0);
        set_p_plus(u, d);
        x25519(got, k, u);
        assert_memory_equal(got, want, 32);
        u[31] |= 0x80;
        x25519(got, k, u);
        assert_memory_equal(got, want, 32);
    }
}

/* All u of small order under RFC 7748 decoding. Canonical: 0, 1, p - 1
 * and the two u of the points of order 8 (cr.yp.to/ecdh.html#validate);
 * non-canonical: p and p + 1; and each with bit 255 set. The clamped
 * scalar is a multiple of 8, so every one of them maps to 0. */
static void low_order_u_give_zero_and_ike_dh_rejects_them(void **state)
{
    static const char *canon[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    };
    uint8_t enc[14][32];
    size_t n = 0;
    struct ike_dh dh;
    (void)state;

    for (size_t i = 0; i < 5; i++)
        hex(canon[i], enc[n++], 32);
    set_p_plus(enc[n++], 0);
    set_p_plus(enc[n++], 1);
    for (size_t i = 0; i < 7; i++) {
        memcpy(enc[n], enc[i], 32);
        enc[n++][31] |= 0x80;
    }
    assert_int_equal(n, 14);

    rng_state = 0x5eed0003;
    for (size_t i = 0; i < n; i++) {
        for (int r = 0; r < 4; r++) {
            uint8_t k[32], out[32];

            rng_fill(k, 32);
            memset(out, 0xa5, sizeof(out));
            x25519(out, k, enc[i]);
            assert_true(all_zero(out, 32));
        }
    }

    /* the check a responder makes before its key pair refuses each one,
     * and nothing else (p + 2 .. p + 18 are 2 .. 18; 2 has full order) */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ike_dh_peer_check(IKE_DH_CURVE25519, enc[i], 32), IKE_CRYPTO_E_PEER_KE);
    for (unsigned d = 2; d <= 18; d++) {
        uint8_t u[32], k[32], out[32];

        set_p_plus(u, d);
        assert_int_equal(ike_dh_peer_check(IKE_DH_CURVE25519, u, 32), 0);
        rng_fill(k, 32);
        x25519(out, k, u);
        assert_false(all_zero(out, 32));
        u[31] |= 0x80;
        assert_int_equal(ike_dh_peer_check(IKE_DH_CURVE25519, u, 32), 0);
    }
    for (int r = 0; r < 64; r++) {
        uint8_t u[32];

        rng_fill(u, 32);
        assert_int_equal(ike_dh_peer_check(IKE_DH_CURVE25519, u, 32), 0);
    }
    assert_int_equal(ike_dh_peer_check(IKE_DH_CURVE25519, enc[5], 31), IKE_CRYPTO_E_PEER_KE);

    assert_int_equal(ike_dh_init(&dh, IKE_DH_CURVE25519), 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t s[32];
        size_t len = 0;

        memset(s, 0xa5, sizeof(s));
        assert_int_equal(ike_dh_shared(&dh, enc[i], 32, s, sizeof(s), &len),
                         IKE_CRYPTO_E_PEER_KE);
        assert_true(all_zero(s, 32));   /* wiped on failure */
    }
    ike_dh_free(&dh);
}

/* ---- against mbedTLS's Curve25519 ---------------------------------------- */

/* want = X25519(k, u) computed by mbedtls_ecp_mul: the scalar clamped as
 * decodeScalar25519, u's bit 255 masked, both read little-endian. */
static void mbedtls_x25519(mbedtls_ecp_group *grp, uint8_t want[32],
                           const uint8_t k_in[32], const uint8_t u_in[32])
{
    uint8_t k[32], u[32];
    mbedtls_mpi m;
    mbedtls_ecp_point p, r;

    memcpy(k, k_in, 32);
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    memcpy(u, u_in, 32);
    u[31] &= 127;
    mbedtls_mpi_init(&m);
    mbedtls_ecp_point_init(&p);
    mbedtls_ecp_point_init(&r);
    assert_int_equal(mbedtls_mpi_read_binary_le(&m, k, 32), 0);
    assert_int_equal(mbedtls_mpi_read_binary_le(&p.X, u, 32), 0);
    assert_int_equal(mbedtls_mpi_lset(&p.Z, 1), 0);
    assert_int_equal(mbedtls_ecp_mul(grp, &r, &m, &p, ike_random_mbedtls, NULL), 0);
    assert_int_equal(mbedtls_mpi_write_binary_le(&r.X, want, 32), 0);
    mbedtls_mpi_free(&m);
    mbedtls_ecp_point_free(&p);
    mbedtls_ecp_point_free(&r);
}

static void matches_mbedtls_for_random_inputs(void **state)
{
    const uint64_t seed = 0x7825519c0ffee001ULL;
    mbedtls_ecp_group grp;
    static const uint8_t nine[32] = { 9 };
    int pairs = 0, bases = 0;
    (void)state;

    mbedtls_ecp_group_init(&grp);
    assert_int_equal(mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_CURVE25519), 0);
    rng_state = seed;
    for (int i = 0; i < 500; i++) {
        uint8_t k[32], u[32], want[32], got[32];

        rng_fill(k, 32);
        rng_fill(u, 32);    /* bit 255 random too: masked by both */
        mbedtls_x25519(&grp, want, k, u);
        x25519(got, k, u);
        if (memcmp(got, want, 32) != 0)
            fail_msg("X25519 differs from mbedTLS at pair %d (seed %#llx)", i,
                     (unsigned long long)seed);
        pairs++;
    }
    for (int i = 0; i < 100; i++) {
        uint8_t k[32], want[32], got[32];

        rng_fill(k, 32);
        mbedtls_x25519(&grp, want, k, nine);
        x25519_base(got, k);
        if (memcmp(got, want, 32) != 0)
            fail_msg("X25519 base differs from mbedTLS at %d (seed %#llx)", i,
                     (unsigned long long)seed);
        bases++;
    }
    assert_int_equal(pairs, 500);
    assert_int_equal(bases, 100);
    mbedtls_ecp_group_free(&grp);
}

/* ---- API details ----------------------------------------------------------- */

static void output_may_alias_inputs(void **state)
{
    uint8_t k[32], u[32], want[32], buf[32];
    (void)state;

    hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", k, 32);
    hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", u, 32);
    hex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552", want, 32);
    memcpy(buf, k, 32);
    x25519(buf, buf, u);
    assert_memory_equal(buf, want, 32);
    memcpy(buf, u, 32);
    x25519(buf, k, buf);
    assert_memory_equal(buf, want, 32);
}

/* ike_dh group 31 is x25519: public = X25519(k, 9), g^ir = X25519(k, peer). */
static void ike_dh_group_31_uses_x25519(void **state)
{
    (void)state;

    rng_state = 0x5eed0004;
    for (int i = 0; i < 20; i++) {
        uint8_t k[32], peer[32], pub[32], want[32], s[32];
        size_t len = 0;
        struct ike_dh dh;

        rng_fill(k, 32);
        rng_fill(peer, 32);
        assert_int_equal(ike_dh_init_private(&dh, IKE_DH_CURVE25519, k, 32), 0);
        assert_int_equal(ike_dh_public(&dh, pub, sizeof(pub), &len), 0);
        assert_int_equal(len, 32);
        x25519_base(want, k);
        assert_memory_equal(pub, want, 32);
        assert_int_equal(ike_dh_shared(&dh, peer, 32, s, sizeof(s), &len), 0);
        assert_int_equal(len, 32);
        x25519(want, k, peer);
        assert_memory_equal(s, want, 32);
        ike_dh_free(&dh);
        ike_dh_free(&dh);   /* idempotent */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc7748_5_2_vectors),
        cmocka_unit_test(rfc7748_5_2_iterated_1_and_1000),
        cmocka_unit_test(rfc7748_6_1_alice_and_bob),
        cmocka_unit_test(top_bit_of_u_is_ignored),
        cmocka_unit_test(non_canonical_u_is_reduced_mod_p),
        cmocka_unit_test(low_order_u_give_zero_and_ike_dh_rejects_them),
        cmocka_unit_test(matches_mbedtls_for_random_inputs),
        cmocka_unit_test(output_may_alias_inputs),
        cmocka_unit_test(ike_dh_group_31_uses_x25519),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    ike_random_thread_cleanup();
    return rc;
}
