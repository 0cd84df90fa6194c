/*
 * ESP anti-replay window (RFC 4303 §3.4.3), kept as an RFC 6479 ring of
 * 64-bit blocks so sliding the window costs one block clear per 64
 * sequence numbers instead of a bitmap shift.
 *
 * The ring holds IPSEC_REPLAY_BLOCKS blocks; one block is the slack RFC
 * 6479 needs, so the window accepts the IPSEC_REPLAY_WINDOW sequence
 * numbers [top - WINDOW + 1, top] plus anything above top.
 *
 * With extended sequence numbers (RFC 4304) only the low 32 bits travel
 * on the wire; ipsec_replay_infer reconstructs the high 32 bits from the
 * window per RFC 4303 Appendix A2.2 before the ICV is checked (the high
 * bits are part of the AAD). Callers check, verify the ICV, and only then
 * update: an unauthenticated packet must never move the window.
 */
#ifndef ESPROXY_IPSEC_REPLAY_H
#define ESPROXY_IPSEC_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define IPSEC_REPLAY_BLOCKS 32u
#define IPSEC_REPLAY_WINDOW ((IPSEC_REPLAY_BLOCKS - 1u) * 64u) /* 1984 */

struct ipsec_replay {
    uint64_t top;   /* highest authenticated sequence number, 0 = none */
    uint64_t blocks[IPSEC_REPLAY_BLOCKS];
    bool esn;
};

void ipsec_replay_init(struct ipsec_replay *rp, bool esn);

/* Full sequence number for the 32 bits on the wire. In 32-bit mode that
 * is the wire value. 0 means "cannot be a valid sequence number" (it would
 * lie before the start of the sequence space). */
uint64_t ipsec_replay_infer(const struct ipsec_replay *rp, uint32_t seq_low);

/* 0 if seq may be accepted, ESP_E_REPLAY if already seen, ESP_E_TOO_OLD
 * if left of the window (or 0). Does not change the window. */
int ipsec_replay_check(const struct ipsec_replay *rp, uint64_t seq);

/* Record an authenticated seq (after ipsec_replay_check returned 0). */
void ipsec_replay_update(struct ipsec_replay *rp, uint64_t seq);

#endif
