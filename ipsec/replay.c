#include "replay.h"

#include "esp_defs.h"

#include <string.h>

#define REPLAY_BLOCK_MASK (IPSEC_REPLAY_BLOCKS - 1u)

_Static_assert((IPSEC_REPLAY_BLOCKS & (IPSEC_REPLAY_BLOCKS - 1u)) == 0,
               "RFC 6479 ring indexing needs a power-of-two block count");
_Static_assert(IPSEC_REPLAY_WINDOW >= 1024u, "window must cover 1024 packets");

void ipsec_replay_init(struct ipsec_replay *rp, bool esn)
{
    memset(rp, 0, sizeof(*rp));
    rp->esn = esn;
}

/*
 * RFC 4303 Appendix A2.2. Th/Tl are the low 32 bits of the window's top
 * and bottom. If the window sits inside one 2^32 subspace (case A), a low
 * value below Tl must have wrapped into the next subspace. If the window
 * straddles a subspace boundary (case B), a low value at or above Tl
 * belongs to the previous subspace.
 */
uint64_t ipsec_replay_infer(const struct ipsec_replay *rp, uint32_t seq_low)
{
    uint32_t th = (uint32_t)rp->top;
    uint32_t top_hi = (uint32_t)(rp->top >> 32);
    uint32_t tl = th - IPSEC_REPLAY_WINDOW + 1u; /* mod 2^32 on purpose */
    uint32_t hi = top_hi;

    if (!rp->esn)
        return seq_low;
    if (th >= IPSEC_REPLAY_WINDOW - 1u) {
        if (seq_low < tl) {
            if (top_hi == UINT32_MAX)
                return 0; /* would need a 65th bit: not a valid number */
            hi = top_hi + 1u;
        }
    } else if (seq_low >= tl) {
        if (top_hi == 0)
            return 0; /* before the first sequence number */
        hi = top_hi - 1u;
    }
    return ((uint64_t)hi << 32) | seq_low;
}

int ipsec_replay_check(const struct ipsec_replay *rp, uint64_t seq)
{
    uint64_t bit;

    if (seq == 0)
        return ESP_E_TOO_OLD;
    if (seq > rp->top)
        return 0;
    if (rp->top - seq >= IPSEC_REPLAY_WINDOW)
        return ESP_E_TOO_OLD;
    bit = UINT64_C(1) << (seq & 63u);
    if (rp->blocks[(seq >> 6) & REPLAY_BLOCK_MASK] & bit)
        return ESP_E_REPLAY;
    return 0;
}

void ipsec_replay_update(struct ipsec_replay *rp, uint64_t seq)
{
    uint64_t cur, next, diff, i;

    if (seq > rp->top) {
        cur = rp->top >> 6;
        next = seq >> 6;
        diff = next - cur;
        if (diff > IPSEC_REPLAY_BLOCKS)
            diff = IPSEC_REPLAY_BLOCKS;
        /* Blocks the top moves into held numbers a whole ring ago. */
        for (i = 1; i <= diff; i++)
            rp->blocks[(cur + i) & REPLAY_BLOCK_MASK] = 0;
        rp->top = seq;
    }
    rp->blocks[(seq >> 6) & REPLAY_BLOCK_MASK] |= UINT64_C(1) << (seq & 63u);
}
