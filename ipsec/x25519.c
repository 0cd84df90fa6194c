/*
 * X25519 (RFC 7748 §5), written from the RFC's description. See x25519.h.
 *
 * Field elements mod p = 2^255 - 19 are five unsigned 64-bit limbs in
 * radix 2^51: h = h[0] + h[1]*2^51 + h[2]*2^102 + h[3]*2^153 + h[4]*2^204.
 * Limbs are not kept fully reduced between operations; the bounds are:
 *
 *   - fe_frombytes, fe_mul, fe_sq, fe_mul_a24 produce "tight" limbs:
 *     h[1] < 2^51 + 2^19 and the others < 2^51 (one carry pass, then the
 *     wrap-around carry of h[4] times 19, < 2^70, folded into h[0] and
 *     its carry, < 2^19, into h[1]);
 *   - fe_add of two tight values: limbs < 2^52 + 2^20;
 *   - fe_sub(f, g) computes f + 2p - g limb by limb; 2p's limbs are
 *     2^52 - 38 and 2^52 - 2, both larger than any tight limb, so no limb
 *     goes negative; result limbs < 2^53;
 *   - fe_mul / fe_sq accept limbs up to 2^54: each 128-bit column is a
 *     sum of five products of at most 2^54 * 19 * 2^54 < 2^113, so a
 *     column is < 2^116, and all carries are taken in 128 bits (the final
 *     wrap-around carry times 19 too, which can exceed 64 bits).
 *
 * In the ladder every subtraction's right-hand side is the output of a
 * multiplication or squaring (or the initial 0/1/u), so it is tight.
 *
 * Constant time: the ladder runs its 255 steps for every scalar, the
 * conditional swap is a mask computed from the bit (no branch), and no
 * memory index depends on secret data; the only data-dependent value
 * used for addressing is the public loop counter.
 */
#include "ipsec/x25519.h"

#include <string.h>

#include <mbedtls/platform_util.h>

#if !defined(__SIZEOF_INT128__)
#error "x25519.c needs unsigned __int128 (gcc or clang on a 64-bit target)"
#endif

typedef unsigned __int128 u128;
typedef uint64_t fe[5];

#define MASK51 ((uint64_t)0x7ffffffffffff)  /* 2^51 - 1 */

/* ---- field arithmetic ---------------------------------------------------- */

static uint64_t load64_le(const uint8_t *s)
{
    uint64_t r = 0;

    for (int i = 7; i >= 0; i--)
        r = (r << 8) | s[i];
    return r;
}

static void store64_le(uint8_t *d, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        d[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* decodeUCoordinate: 255 bits little-endian, bit 255 ignored. Limb i
 * holds bits 51i .. 51i+50; each is read from the 8 bytes that contain
 * its lowest bit. A value >= p is left as is; the arithmetic below is
 * correct for any limbs within the bounds above, and fe_tobytes reduces. */
static void fe_frombytes(fe h, const uint8_t s[32])
{
    h[0] = load64_le(s) & MASK51;               /* bits   0..50  */
    h[1] = (load64_le(s + 6) >> 3) & MASK51;    /* bits  51..101 */
    h[2] = (load64_le(s + 12) >> 6) & MASK51;   /* bits 102..152 */
    h[3] = (load64_le(s + 19) >> 1) & MASK51;   /* bits 153..203 */
    h[4] = (load64_le(s + 24) >> 12) & MASK51;  /* bits 204..254 */
}

/* Carry five 128-bit columns into tight limbs (see the bounds above). */
static void fe_carry_wide(fe h, u128 r0, u128 r1, u128 r2, u128 r3, u128 r4)
{
    u128 c;

    c = r0 >> 51; r1 += c; h[0] = (uint64_t)r0 & MASK51;
    c = r1 >> 51; r2 += c; h[1] = (uint64_t)r1 & MASK51;
    c = r2 >> 51; r3 += c; h[2] = (uint64_t)r2 & MASK51;
    c = r3 >> 51; r4 += c; h[3] = (uint64_t)r3 & MASK51;
    c = r4 >> 51;          h[4] = (uint64_t)r4 & MASK51;
    /* 2^255 = 19 (mod p): the carry out of the top wraps around times 19 */
    c = (u128)h[0] + c * 19;
    h[0] = (uint64_t)c & MASK51;
    h[1] += (uint64_t)(c >> 51);
}

static void fe_0(fe h)
{
    h[0] = h[1] = h[2] = h[3] = h[4] = 0;
}

static void fe_1(fe h)
{
    h[0] = 1;
    h[1] = h[2] = h[3] = h[4] = 0;
}

static void fe_copy(fe h, const fe f)
{
    for (int i = 0; i < 5; i++)
        h[i] = f[i];
}

static void fe_add(fe h, const fe f, const fe g)
{
    for (int i = 0; i < 5; i++)
        h[i] = f[i] + g[i];
}

/* h = f - g, as f + 2p - g (g tight). */
static void fe_sub(fe h, const fe f, const fe g)
{
    h[0] = (f[0] + 0xfffffffffffdaULL) - g[0];  /* 2 * (2^51 - 19) */
    h[1] = (f[1] + 0xffffffffffffeULL) - g[1];  /* 2 * (2^51 - 1)  */
    h[2] = (f[2] + 0xffffffffffffeULL) - g[2];
    h[3] = (f[3] + 0xffffffffffffeULL) - g[3];
    h[4] = (f[4] + 0xffffffffffffeULL) - g[4];
}

/* Schoolbook product; terms of weight 2^(51k), k >= 5, are folded back
 * with 2^255 = 19. */
static void fe_mul(fe h, const fe f, const fe g)
{
    const uint64_t f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4];
    const uint64_t g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3], g4 = g[4];
    const uint64_t g1_19 = 19 * g1, g2_19 = 19 * g2, g3_19 = 19 * g3, g4_19 = 19 * g4;
    u128 r0, r1, r2, r3, r4;

    r0 = (u128)f0 * g0 + (u128)f1 * g4_19 + (u128)f2 * g3_19 + (u128)f3 * g2_19 +
         (u128)f4 * g1_19;
    r1 = (u128)f0 * g1 + (u128)f1 * g0 + (u128)f2 * g4_19 + (u128)f3 * g3_19 +
         (u128)f4 * g2_19;
    r2 = (u128)f0 * g2 + (u128)f1 * g1 + (u128)f2 * g0 + (u128)f3 * g4_19 +
         (u128)f4 * g3_19;
    r3 = (u128)f0 * g3 + (u128)f1 * g2 + (u128)f2 * g1 + (u128)f3 * g0 +
         (u128)f4 * g4_19;
    r4 = (u128)f0 * g4 + (u128)f1 * g3 + (u128)f2 * g2 + (u128)f3 * g1 +
         (u128)f4 * g0;
    fe_carry_wide(h, r0, r1, r2, r3, r4);
}

/* h = f^2: fe_mul with the symmetric products merged. */
static void fe_sq(fe h, const fe f)
{
    const uint64_t f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3], f4 = f[4];
    const uint64_t f0_2 = 2 * f0, f1_2 = 2 * f1;
    const uint64_t f1_38 = 38 * f1, f2_38 = 38 * f2, f3_38 = 38 * f3;
    const uint64_t f3_19 = 19 * f3, f4_19 = 19 * f4;
    u128 r0, r1, r2, r3, r4;

    r0 = (u128)f0 * f0 + (u128)f1_38 * f4 + (u128)f2_38 * f3;
    r1 = (u128)f0_2 * f1 + (u128)f2_38 * f4 + (u128)f3_19 * f3;
    r2 = (u128)f0_2 * f2 + (u128)f1 * f1 + (u128)f3_38 * f4;
    r3 = (u128)f0_2 * f3 + (u128)f1_2 * f2 + (u128)f4_19 * f4;
    r4 = (u128)f0_2 * f4 + (u128)f1_2 * f3 + (u128)f2 * f2;
    fe_carry_wide(h, r0, r1, r2, r3, r4);
}

/* h = f^(2^n), n >= 1 */
static void fe_sqn(fe h, const fe f, int n)
{
    fe_sq(h, f);
    while (--n > 0)
        fe_sq(h, h);
}

/* h = a24 * f with a24 = (486662 - 2) / 4 = 121665. f's limbs may be up
 * to 2^54, so each product needs more than 64 bits. */
static void fe_mul_a24(fe h, const fe f)
{
    const uint64_t a24 = 121665;

    fe_carry_wide(h, (u128)f[0] * a24, (u128)f[1] * a24, (u128)f[2] * a24,
                  (u128)f[3] * a24, (u128)f[4] * a24);
}

/* RFC 7748 §5 cswap: swap f and g when swap is 1, leave them when 0,
 * without a branch. */
static void fe_cswap(fe f, fe g, uint64_t swap)
{
    const uint64_t mask = (uint64_t)0 - swap;

    for (int i = 0; i < 5; i++) {
        uint64_t t = mask & (f[i] ^ g[i]);
        f[i] ^= t;
        g[i] ^= t;
    }
}

/* h = z^(p-2) = z^-1 (z != 0; 0 maps to 0, as the RFC's formula does).
 * p - 2 = 2^255 - 21 by the usual chain: z^(2^k - 1) for
 * k = 5, 10, 20, 40, 50, 100, 200, 250, then 2^5 more squarings and a
 * multiplication by z^11 (2^255 - 32 + 11 = 2^255 - 21). */
static void fe_invert(fe h, const fe z)
{
    struct {
        fe z2, z9, z11, z_5, z_10, z_20, z_50, z_100, t;
    } v;

    fe_sq(v.z2, z);                     /* z^2 */
    fe_sqn(v.t, v.z2, 2);               /* z^8 */
    fe_mul(v.z9, v.t, z);               /* z^9 */
    fe_mul(v.z11, v.z9, v.z2);          /* z^11 */
    fe_sq(v.t, v.z11);                  /* z^22 */
    fe_mul(v.z_5, v.t, v.z9);           /* z^(2^5 - 1) = z^31 */
    fe_sqn(v.t, v.z_5, 5);
    fe_mul(v.z_10, v.t, v.z_5);         /* z^(2^10 - 1) */
    fe_sqn(v.t, v.z_10, 10);
    fe_mul(v.z_20, v.t, v.z_10);        /* z^(2^20 - 1) */
    fe_sqn(v.t, v.z_20, 20);
    fe_mul(v.t, v.t, v.z_20);           /* z^(2^40 - 1) */
    fe_sqn(v.t, v.t, 10);
    fe_mul(v.z_50, v.t, v.z_10);        /* z^(2^50 - 1) */
    fe_sqn(v.t, v.z_50, 50);
    fe_mul(v.z_100, v.t, v.z_50);       /* z^(2^100 - 1) */
    fe_sqn(v.t, v.z_100, 100);
    fe_mul(v.t, v.t, v.z_100);          /* z^(2^200 - 1) */
    fe_sqn(v.t, v.t, 50);
    fe_mul(v.t, v.t, v.z_50);           /* z^(2^250 - 1) */
    fe_sqn(v.t, v.t, 5);                /* z^(2^255 - 32) */
    fe_mul(h, v.t, v.z11);              /* z^(2^255 - 21) */
    mbedtls_platform_zeroize(&v, sizeof(v));
}

/* encodeUCoordinate: the canonical value in [0, p), little-endian. */
static void fe_tobytes(uint8_t s[32], const fe f)
{
    uint64_t h0 = f[0], h1 = f[1], h2 = f[2], h3 = f[3], h4 = f[4], q;

    /* Two carry passes: every limb < 2^51 except that h0 may exceed it
     * by less than 19 * 2, so h < 2^255 + 38 < 2p. */
    for (int pass = 0; pass < 2; pass++) {
        h1 += h0 >> 51; h0 &= MASK51;
        h2 += h1 >> 51; h1 &= MASK51;
        h3 += h2 >> 51; h2 &= MASK51;
        h4 += h3 >> 51; h3 &= MASK51;
        h0 += 19 * (h4 >> 51); h4 &= MASK51;
    }
    /* q = 1 iff h >= p, i.e. iff h + 19 >= 2^255: the carry out of the
     * top limb when 19 is added at the bottom. */
    q = (h0 + 19) >> 51;
    q = (h1 + q) >> 51;
    q = (h2 + q) >> 51;
    q = (h3 + q) >> 51;
    q = (h4 + q) >> 51;
    /* h - q*p = h + 19q - q*2^255: add 19q, carry, drop bit 255. */
    h0 += 19 * q;
    h1 += h0 >> 51; h0 &= MASK51;
    h2 += h1 >> 51; h1 &= MASK51;
    h3 += h2 >> 51; h2 &= MASK51;
    h4 += h3 >> 51; h3 &= MASK51;
    h4 &= MASK51;

    store64_le(s, h0 | (h1 << 51));
    store64_le(s + 8, (h1 >> 13) | (h2 << 38));
    store64_le(s + 16, (h2 >> 26) | (h3 << 25));
    store64_le(s + 24, (h3 >> 39) | (h4 << 12));
}

/* ---- X25519 --------------------------------------------------------------- */

void x25519(uint8_t out[32], const uint8_t scalar[32], const uint8_t u[32])
{
    struct {
        uint8_t k[32];
        fe x1, x2, z2, x3, z3;
        fe a, aa, b, bb, e, c, d, da, cb;
        uint64_t swap;
    } v;

    /* decodeScalar25519 */
    memcpy(v.k, scalar, 32);
    v.k[0] &= 248;
    v.k[31] &= 127;
    v.k[31] |= 64;

    fe_frombytes(v.x1, u);
    fe_1(v.x2);
    fe_0(v.z2);
    fe_copy(v.x3, v.x1);
    fe_1(v.z3);
    v.swap = 0;

    for (int t = 254; t >= 0; t--) {
        uint64_t k_t = (uint64_t)(v.k[t >> 3] >> (t & 7)) & 1;

        v.swap ^= k_t;
        fe_cswap(v.x2, v.x3, v.swap);
        fe_cswap(v.z2, v.z3, v.swap);
        v.swap = k_t;

        fe_add(v.a, v.x2, v.z2);        /* A = x_2 + z_2 */
        fe_sq(v.aa, v.a);               /* AA = A^2 */
        fe_sub(v.b, v.x2, v.z2);        /* B = x_2 - z_2 */
        fe_sq(v.bb, v.b);               /* BB = B^2 */
        fe_sub(v.e, v.aa, v.bb);        /* E = AA - BB */
        fe_add(v.c, v.x3, v.z3);        /* C = x_3 + z_3 */
        fe_sub(v.d, v.x3, v.z3);        /* D = x_3 - z_3 */
        fe_mul(v.da, v.d, v.a);         /* DA = D * A */
        fe_mul(v.cb, v.c, v.b);         /* CB = C * B */
        fe_add(v.x3, v.da, v.cb);
        fe_sq(v.x3, v.x3);              /* x_3 = (DA + CB)^2 */
        fe_sub(v.z3, v.da, v.cb);
        fe_sq(v.z3, v.z3);
        fe_mul(v.z3, v.z3, v.x1);       /* z_3 = x_1 * (DA - CB)^2 */
        fe_mul(v.x2, v.aa, v.bb);       /* x_2 = AA * BB */
        fe_mul_a24(v.z2, v.e);
        fe_add(v.z2, v.z2, v.aa);
        fe_mul(v.z2, v.z2, v.e);        /* z_2 = E * (AA + a24 * E) */
    }
    fe_cswap(v.x2, v.x3, v.swap);
    fe_cswap(v.z2, v.z3, v.swap);

    fe_invert(v.z2, v.z2);
    fe_mul(v.x2, v.x2, v.z2);           /* x_2 * z_2^(p-2) */
    fe_tobytes(out, v.x2);
    mbedtls_platform_zeroize(&v, sizeof(v));
}

void x25519_base(uint8_t out[32], const uint8_t scalar[32])
{
    static const uint8_t nine[32] = { 9 };

    x25519(out, scalar, nine);
}
