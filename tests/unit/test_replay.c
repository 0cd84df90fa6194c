/*
 * Anti-replay window (ipsec/replay.c): RFC 4303 §3.4.3 semantics on an
 * RFC 6479 block ring, and RFC 4303 Appendix A2.2 inference of the high
 * 32 bits of an extended sequence number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ipsec/esp_defs.h"
#include "ipsec/replay.h"

#define W IPSEC_REPLAY_WINDOW

/* What esp.c does with an authenticated packet. */
static int accept_seq(struct ipsec_replay *rp, uint64_t seq)
{
    int rc = ipsec_replay_check(rp, seq);

    if (rc == 0)
        ipsec_replay_update(rp, seq);
    return rc;
}

static void test_replay_window_is_at_least_1024(void **state)
{
    (void)state;
    assert_true(IPSEC_REPLAY_WINDOW >= 1024);
}

static void test_replay_rejects_duplicate(void **state)
{
    struct ipsec_replay rp;

    (void)state;
    ipsec_replay_init(&rp, false);
    assert_int_equal(accept_seq(&rp, 1), 0);
    assert_int_equal(accept_seq(&rp, 1), ESP_E_REPLAY);
    assert_int_equal(accept_seq(&rp, 2), 0);
    assert_int_equal(accept_seq(&rp, 1), ESP_E_REPLAY);
    assert_int_equal(accept_seq(&rp, 2), ESP_E_REPLAY);
}

static void test_replay_rejects_sequence_number_zero(void **state)
{
    struct ipsec_replay rp;

    (void)state;
    ipsec_replay_init(&rp, false);
    assert_int_equal(ipsec_replay_check(&rp, 0), ESP_E_TOO_OLD);
}

static void test_replay_accepts_out_of_order_within_window(void **state)
{
    struct ipsec_replay rp;
    uint64_t s;

    (void)state;
    ipsec_replay_init(&rp, false);
    assert_int_equal(accept_seq(&rp, 5000), 0);
    /* Every number in the window arrives late, in descending order. */
    for (s = 4999; s > 5000 - W; s--)
        assert_int_equal(accept_seq(&rp, s), 0);
    for (s = 5000; s > 5000 - W; s--)
        assert_int_equal(ipsec_replay_check(&rp, s), ESP_E_REPLAY);
    assert_int_equal(rp.top, 5000);
}

static void test_replay_window_edge_is_exact(void **state)
{
    struct ipsec_replay rp;
    uint64_t top = 10000;

    (void)state;
    ipsec_replay_init(&rp, false);
    assert_int_equal(accept_seq(&rp, top), 0);
    /* Oldest number still inside the window: top - W + 1. */
    assert_int_equal(ipsec_replay_check(&rp, top - W + 1), 0);
    /* One further left is too old. */
    assert_int_equal(ipsec_replay_check(&rp, top - W), ESP_E_TOO_OLD);
    assert_int_equal(accept_seq(&rp, top - W + 1), 0);
    assert_int_equal(accept_seq(&rp, top - W + 1), ESP_E_REPLAY);
    /* Moving the top by one pushes that edge number out. */
    assert_int_equal(accept_seq(&rp, top + 1), 0);
    assert_int_equal(ipsec_replay_check(&rp, top - W + 1), ESP_E_TOO_OLD);
    assert_int_equal(ipsec_replay_check(&rp, top - W + 2), 0);
}

static void test_replay_rejects_too_old(void **state)
{
    struct ipsec_replay rp;

    (void)state;
    ipsec_replay_init(&rp, false);
    assert_int_equal(accept_seq(&rp, 100000), 0);
    assert_int_equal(accept_seq(&rp, 1), ESP_E_TOO_OLD);
    assert_int_equal(accept_seq(&rp, 100000 - 5 * W), ESP_E_TOO_OLD);
}

static void test_replay_slide_clears_stale_bits(void **state)
{
    struct ipsec_replay rp;
    uint64_t s;

    (void)state;
    ipsec_replay_init(&rp, false);
    for (s = 1; s <= 3 * W; s++)
        assert_int_equal(accept_seq(&rp, s), 0);
    /* A jump of exactly one ring: numbers that share ring slots with old
     * ones must be fresh, not reported as replays. */
    for (s = 3 * W + 64 * IPSEC_REPLAY_BLOCKS; s > 3 * W + 64; s -= 61)
        assert_int_equal(accept_seq(&rp, s), 0);
    /* A huge jump clears everything. */
    assert_int_equal(accept_seq(&rp, 1000000), 0);
    for (s = 1000000 - 1; s > 1000000 - W; s -= 7)
        assert_int_equal(ipsec_replay_check(&rp, s), 0);
}

static void test_replay_32bit_mode_uses_wire_value(void **state)
{
    struct ipsec_replay rp;

    (void)state;
    ipsec_replay_init(&rp, false);
    assert_int_equal(accept_seq(&rp, 0xFFFFFFF0u), 0);
    assert_int_equal(ipsec_replay_infer(&rp, 5), 5);
    assert_int_equal(ipsec_replay_check(&rp, ipsec_replay_infer(&rp, 5)), ESP_E_TOO_OLD);
}

static void test_replay_esn_infers_high_bits_across_low32_wrap(void **state)
{
    struct ipsec_replay rp;
    uint64_t seq;

    (void)state;
    ipsec_replay_init(&rp, true);
    /* Case A (window inside one subspace): top just below 2^32. */
    assert_int_equal(accept_seq(&rp, 0xFFFFFF00u), 0);
    /* Low value below the window bottom: the sender wrapped. */
    seq = ipsec_replay_infer(&rp, 0x00000003u);
    assert_int_equal(seq, UINT64_C(0x100000003));
    assert_int_equal(accept_seq(&rp, seq), 0);
    /* Now top = 2^32 + 3, case B (window straddles the boundary): a low
     * value near 2^32 belongs to the previous subspace and is in window. */
    seq = ipsec_replay_infer(&rp, 0xFFFFFF80u);
    assert_int_equal(seq, UINT64_C(0xFFFFFF80));
    assert_int_equal(accept_seq(&rp, seq), 0);
    /* ...and the one we already had is a replay, not a new packet. */
    seq = ipsec_replay_infer(&rp, 0xFFFFFF00u);
    assert_int_equal(seq, UINT64_C(0xFFFFFF00));
    assert_int_equal(accept_seq(&rp, seq), ESP_E_REPLAY);
    /* Small values after the wrap are in the current subspace. */
    seq = ipsec_replay_infer(&rp, 2);
    assert_int_equal(seq, UINT64_C(0x100000002));
    assert_int_equal(accept_seq(&rp, seq), 0);
    assert_int_equal(accept_seq(&rp, ipsec_replay_infer(&rp, 3)), ESP_E_REPLAY);
}

static void test_replay_esn_case_a_in_subspace(void **state)
{
    struct ipsec_replay rp;

    (void)state;
    ipsec_replay_init(&rp, true);
    assert_int_equal(accept_seq(&rp, UINT64_C(0x500001000)), 0);
    /* Inside the window and above the top: same high bits. */
    assert_int_equal(ipsec_replay_infer(&rp, 0x00000900u), UINT64_C(0x500000900));
    assert_int_equal(ipsec_replay_infer(&rp, 0x00002000u), UINT64_C(0x500002000));
    /* Below the window bottom: taken as the next subspace, where the ICV
     * (high bits are in the AAD) will decide. */
    assert_int_equal(ipsec_replay_infer(&rp, 0x00000010u), UINT64_C(0x600000010));
}

static void test_replay_esn_before_first_packet_is_invalid(void **state)
{
    struct ipsec_replay rp;

    (void)state;
    ipsec_replay_init(&rp, true);
    assert_int_equal(ipsec_replay_infer(&rp, 1), 1);
    /* Would be sequence number -16: no such packet. */
    assert_int_equal(ipsec_replay_infer(&rp, 0xFFFFFFF0u), 0);
    assert_int_equal(ipsec_replay_check(&rp, 0), ESP_E_TOO_OLD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_window_is_at_least_1024),
        cmocka_unit_test(test_replay_rejects_duplicate),
        cmocka_unit_test(test_replay_rejects_sequence_number_zero),
        cmocka_unit_test(test_replay_accepts_out_of_order_within_window),
        cmocka_unit_test(test_replay_window_edge_is_exact),
        cmocka_unit_test(test_replay_rejects_too_old),
        cmocka_unit_test(test_replay_slide_clears_stale_bits),
        cmocka_unit_test(test_replay_32bit_mode_uses_wire_value),
        cmocka_unit_test(test_replay_esn_infers_high_bits_across_low32_wrap),
        cmocka_unit_test(test_replay_esn_case_a_in_subspace),
        cmocka_unit_test(test_replay_esn_before_first_packet_is_invalid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
