/*
 * X25519 (RFC 7748 §5): the Diffie-Hellman function on Curve25519, for
 * IKEv2 DH group 31 (RFC 8031, ipsec/ike_dh.c).
 *
 * Written from the RFC's description: arithmetic modulo p = 2^255 - 19
 * in five 51-bit limbs with 128-bit products (gcc/clang
 * unsigned __int128), the Montgomery ladder of §5 with a constant-time
 * conditional swap, inversion as z^(p-2).
 *
 * Inputs and outputs are the RFC's 32-byte little-endian strings:
 *   - the scalar is decoded with decodeScalar25519 (clamped: bits 0-2
 *     and 255 cleared, bit 254 set) -- the caller's bytes are not changed;
 *   - u is decoded with decodeUCoordinate: bit 255 is ignored, and a
 *     non-canonical value (2^255 - 19 <= u < 2^255) is accepted and
 *     taken modulo p, as §5 requires;
 *   - the output is always the canonical encoding (< p, bit 255 clear).
 *
 * Timing: no branch or memory index depends on the scalar or on u; the
 * running time is the same for every input. Stack temporaries derived
 * from the scalar are zeroized before return.
 *
 * The functions do NOT check the result: a low-order u gives an
 * all-zero output, which callers that need contributory behaviour (RFC
 * 7748 §6.1, RFC 8031 §2) must reject themselves. out may alias scalar
 * or u.
 */
#ifndef ESPROXY_X25519_H
#define ESPROXY_X25519_H

#include <stdint.h>

#define X25519_BYTES 32u

/* out = X25519(scalar, u) */
void x25519(uint8_t out[32], const uint8_t scalar[32], const uint8_t u[32]);

/* out = X25519(scalar, 9): the public key for a private scalar. */
void x25519_base(uint8_t out[32], const uint8_t scalar[32]);

#endif
