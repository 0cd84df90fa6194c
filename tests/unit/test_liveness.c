/* Liveness/failover decisions with a fake clock: each test drives events
 * and checks the callbacks the tunnel layer would act on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ipsec/liveness.h"

static uint64_t now = 10000;
static int starts, spec_starts, probes, abandons, promotes, drops;
static unsigned last_gaps[3];
static struct liveness L;

static uint64_t fake_now(void *a) { (void)a; return now; }
static void start_ike(void *a, bool spec) { (void)a; if (spec) spec_starts++; else starts++; }
static void probe(void *a, const unsigned *g, int n)
{
    (void)a;
    probes++;
    assert_int_equal(n, 3);
    memcpy(last_gaps, g, sizeof(last_gaps));
}
static void abandon(void *a) { (void)a; abandons++; }
static void promote_spec(void *a) { (void)a; promotes++; }
static void drop_spec(void *a) { (void)a; drops++; }

static const struct liveness_config cfg = { .probe_interval_ms = 1000, .dead_after_ms = 300, .stall_ms = 150,
                                            .retry_ms = 200, .retry_max_ms = 1600, .speculative = true };

static int setup(void **state)
{
    struct liveness_callbacks cb = { .now_ms = fake_now, .start_ike = start_ike, .probe = probe, .abandon = abandon,
                                     .promote_spec = promote_spec, .drop_spec = drop_spec };

    (void)state;
    now = 10000;
    starts = spec_starts = probes = abandons = promotes = drops = 0;
    liveness_init(&L, &cfg, &cb);
    return 0;
}

/* Runs timers as the loop would, up to now + ms. */
static void advance(uint64_t ms)
{
    uint64_t end = now + ms;

    for (;;) {
        uint64_t d = liveness_next_deadline(&L);

        if (d > end)
            break;
        now = d > now ? d : now;
        liveness_tick(&L);
    }
    now = end;
}

static void bring_up(void)
{
    liveness_start(&L);
    assert_int_equal(L.state, LIVE_CONNECTING);
    assert_int_equal(starts, 1);
    liveness_ike_established(&L, false);
    assert_int_equal(L.state, LIVE_UP);
}

static void test_start_connects_and_establishment_brings_the_tunnel_up(void **state)
{
    (void)state;
    bring_up();
    assert_int_equal(L.n_history, 2);
    assert_int_equal(L.history[1].why, LIVE_R_ESTABLISHED);
}

static void test_idle_tunnel_is_probed_on_the_dead_after_schedule(void **state)
{
    (void)state;
    bring_up();
    advance(999);
    assert_int_equal(probes, 0);
    advance(1);
    assert_int_equal(probes, 1);
    assert_int_equal(L.state, LIVE_UP);        /* an idle probe is not a suspicion */
    assert_int_equal(last_gaps[0] + last_gaps[1] + last_gaps[2], 300);
    liveness_probe_ok(&L);
    advance(999);
    assert_int_equal(probes, 1);
    advance(1);
    assert_int_equal(probes, 2);
}

/* A request whose data was acknowledged, waiting for its answer: stall_ms
 * of silence is enough for a (quiet) probe. One early probe per request:
 * a long wait is then probed at the idle interval; a new request arms the
 * early probe again; once nothing waits, the idle interval applies. */
static void test_an_awaited_answer_probes_after_stall_ms_of_silence(void **state)
{
    (void)state;
    bring_up();
    liveness_awaiting(&L, 1);
    advance(149);
    assert_int_equal(probes, 0);
    advance(1);
    assert_int_equal(probes, 1);
    assert_int_equal(L.state, LIVE_UP);        /* not a suspicion either */
    liveness_probe_ok(&L);
    advance(999);                              /* still waiting: idle interval now */
    assert_int_equal(probes, 1);
    advance(1);
    assert_int_equal(probes, 2);
    liveness_probe_ok(&L);
    liveness_awaiting(&L, 1);                  /* a second request */
    advance(150);
    assert_int_equal(probes, 3);
    liveness_probe_ok(&L);
    liveness_awaiting(&L, -1);
    liveness_awaiting(&L, -1);
    liveness_awaiting(&L, -1);                 /* never below zero */
    assert_int_equal(L.awaiting, 0);
    advance(999);
    assert_int_equal(probes, 3);
    advance(1);
    assert_int_equal(probes, 4);
}

static void test_unanswered_probe_abandons_the_sa_and_rekeys_at_once(void **state)
{
    (void)state;
    bring_up();
    advance(1000);
    liveness_probe_timeout(&L);
    assert_int_equal(abandons, 1);
    assert_int_equal(starts, 2);
    assert_int_equal(L.state, LIVE_CONNECTING);
    liveness_ike_established(&L, false);
    assert_int_equal(L.state, LIVE_UP);
}

static void test_stalled_data_is_probed_and_a_late_probe_makes_the_tunnel_suspect(void **state)
{
    (void)state;
    bring_up();
    now += 100;
    liveness_data_sent(&L);
    advance(149);
    assert_int_equal(probes, 0);
    advance(1);
    assert_int_equal(probes, 1);                /* a stall probes ... */
    assert_int_equal(L.state, LIVE_UP);         /* ... but proves nothing yet */
    assert_int_equal(spec_starts, 0);           /* nor does it re-key */
    advance(cfg.dead_after_ms / 2 - 1);
    assert_int_equal(L.state, LIVE_UP);
    advance(1);                                 /* two sends unanswered */
    assert_int_equal(L.state, LIVE_SUSPECT);
    assert_int_equal(L.history[L.n_history - 1].why, LIVE_R_PROBE_LATE);
    liveness_authentic_rx(&L, false);
    assert_int_equal(L.state, LIVE_UP);
}

/* A delayed ACK (lwIP: 250 ms) and a request sent in the same millisecond
 * as the peer's last packet: stall and awaited-answer probe fall due
 * together. A probe answered in one round trip must leave no trace. */
static void test_a_stall_answered_by_the_probe_never_makes_the_tunnel_suspect(void **state)
{
    (void)state;
    bring_up();
    for (int i = 0; i < 100; i++) {
        liveness_authentic_rx(&L, false);       /* the peer's greeting */
        liveness_data_sent(&L);                 /* our LOGIN, same ms */
        liveness_awaiting(&L, +1);
        advance(cfg.stall_ms);
        assert_true(L.probing);
        now += 1;
        liveness_probe_ok(&L);                  /* answered in one round trip */
        advance(100);                           /* the peer is slow to answer the LOGIN */
        liveness_authentic_rx(&L, false);
        liveness_awaiting(&L, -1);
    }
    assert_int_equal(L.n_entered[LIVE_SUSPECT], 0);
    assert_int_equal(L.state, LIVE_UP);
}

static void test_invalid_ike_spi_starts_a_speculative_sa_that_takes_over_when_the_probe_fails(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_INVALID_IKE_SPI);
    assert_int_equal(L.state, LIVE_SUSPECT);
    assert_int_equal(probes, 1);
    assert_int_equal(spec_starts, 1);
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);  /* no second speculation */
    assert_int_equal(spec_starts, 1);
    liveness_ike_established(&L, true);
    assert_int_equal(abandons, 0);             /* up, but the current SA's probe decides */
    assert_int_equal(L.spec, LIVE_SPEC_READY);
    assert_int_equal(L.state, LIVE_SUSPECT);
    now += 300;
    liveness_probe_timeout(&L);
    assert_int_equal(abandons, 1);
    assert_int_equal(promotes, 1);             /* no new handshake */
    assert_int_equal(starts, 1);
    assert_int_equal(L.state, LIVE_UP);
    assert_int_equal(L.history[L.n_history - 1].why, LIVE_R_SPECULATIVE);
}

static void test_a_forged_hint_answered_by_the_peer_drops_the_speculative_sa(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_INVALID_IKE_SPI);
    liveness_probe_ok(&L);                      /* the current peer answered first */
    assert_int_equal(L.state, LIVE_UP);
    liveness_ike_established(&L, true);
    assert_int_equal(drops, 1);
    assert_int_equal(promotes + abandons, 0);
    assert_int_equal(L.spec, LIVE_SPEC_NONE);
    assert_int_equal(L.state, LIVE_UP);
}

static void test_a_speculative_sa_already_up_is_dropped_when_the_peer_answers(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);
    liveness_ike_established(&L, true);
    liveness_probe_ok(&L);
    assert_int_equal(drops, 1);
    assert_int_equal(promotes + abandons, 0);
    assert_int_equal(L.state, LIVE_UP);
}

static void test_esp_does_not_vouch_for_the_current_peer_while_a_speculative_sa_is_up(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);
    liveness_ike_established(&L, true);
    now += 100;
    liveness_authentic_rx(&L, false);           /* may be the new node's ESP */
    assert_int_equal(L.state, LIVE_SUSPECT);
    assert_int_equal(drops, 0);
    now += 200;
    liveness_probe_timeout(&L);
    assert_int_equal(promotes, 1);
    assert_int_equal(L.state, LIVE_UP);
}

static void test_after_a_disproved_forged_hint_more_are_ignored_for_the_probe_interval(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_INVALID_IKE_SPI);
    liveness_probe_ok(&L);
    liveness_ike_established(&L, true);
    for (int i = 0; i < 300; i++) {
        liveness_hint(&L, i % 2 ? LIVE_HINT_UNKNOWN_SPI : LIVE_HINT_INVALID_IKE_SPI);
        liveness_hint(&L, LIVE_HINT_ICMP_UNREACH);
        now += 1;
    }
    assert_int_equal(probes, 1);
    assert_int_equal(spec_starts, 1);
    assert_int_equal(L.n_hints_ignored, 600);
    assert_int_equal(L.state, LIVE_UP);
    liveness_hint(&L, LIVE_HINT_STALL);         /* our own observation is never muted */
    assert_int_equal(probes, 2);
    liveness_probe_ok(&L);
    now += 1000;
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);   /* the interval is over */
    assert_int_equal(L.state, LIVE_SUSPECT);
    assert_int_equal(spec_starts, 2);
}

static void test_outbound_only_traffic_to_a_dead_peer_is_found_within_stall_and_dead_after(void **state)
{
    uint64_t t0;

    (void)state;
    bring_up();
    now += 500;
    t0 = now;
    for (int i = 0; i < 20 && L.state == LIVE_UP; i++) {
        liveness_data_sent(&L);                 /* a new stream's SYN every 50 ms */
        advance(50);
    }
    assert_int_equal(L.state, LIVE_SUSPECT);
    assert_true(now - t0 <= cfg.stall_ms + cfg.dead_after_ms / 2 + 50);
    assert_int_equal(probes, 1);
    liveness_data_sent(&L);                     /* more SYNs prove nothing */
    now = t0 + cfg.stall_ms + cfg.dead_after_ms;
    liveness_probe_timeout(&L);
    assert_int_equal(abandons, 1);
    assert_int_equal(L.state, LIVE_CONNECTING);
}

static void test_a_speculative_attempt_that_replaced_a_dead_sa_and_fails_is_retried(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);
    liveness_probe_timeout(&L);
    assert_int_equal(L.state, LIVE_CONNECTING);
    liveness_ike_failed(&L, true);
    assert_int_equal(L.state, LIVE_DOWN);
    advance(cfg.retry_ms);
    assert_int_equal(L.state, LIVE_CONNECTING);
    assert_int_equal(starts, 2);
}

static void test_probe_timeout_during_speculation_waits_for_the_speculative_sa(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);
    liveness_probe_timeout(&L);
    assert_int_equal(abandons, 1);
    assert_int_equal(starts, 1);               /* no second IKE SA: one is on its way */
    assert_int_equal(L.state, LIVE_CONNECTING);
    liveness_ike_established(&L, true);
    assert_int_equal(abandons, 1);
    assert_int_equal(promotes, 1);
    assert_int_equal(L.state, LIVE_UP);
}

static void test_a_late_probe_answer_is_excused_by_other_authentic_traffic(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_STALL);
    now += 100;
    liveness_authentic_rx(&L, false);      /* ESP verified: the peer is there */
    now += 200;
    liveness_probe_timeout(&L);     /* its IKE answer was slow (busy with a rekey) */
    assert_int_equal(abandons, 0);
    assert_int_equal(L.state, LIVE_UP);
}

static void test_authenticated_delete_rekeys_at_once(void **state)
{
    (void)state;
    bring_up();
    liveness_delete_received(&L);
    assert_int_equal(abandons, 1);
    assert_int_equal(starts, 2);
    assert_int_equal(L.state, LIVE_CONNECTING);
}

static void test_failed_attempts_back_off_up_to_the_ceiling(void **state)
{
    uint64_t waits[6];

    (void)state;
    liveness_start(&L);
    for (int i = 0; i < 6; i++) {
        uint64_t t0;

        liveness_ike_failed(&L, false);
        assert_int_equal(L.state, LIVE_DOWN);
        t0 = now;
        advance(10000);
        waits[i] = L.history[L.n_history - 1].at_ms - t0;
        assert_int_equal(L.state, LIVE_CONNECTING);
    }
    assert_int_equal(waits[0], 200);
    assert_int_equal(waits[1], 400);
    assert_int_equal(waits[2], 800);
    assert_int_equal(waits[3], 1600);
    assert_int_equal(waits[5], 1600);
    liveness_ike_established(&L, false);
    liveness_ike_failed(&L, false);
    advance(200);
    assert_int_equal(L.state, LIVE_CONNECTING);  /* success reset the backoff */
}

static void test_a_hint_while_down_retries_without_waiting(void **state)
{
    (void)state;
    liveness_start(&L);
    liveness_ike_failed(&L, false);
    liveness_hint(&L, LIVE_HINT_SYN_UNANSWERED);
    assert_int_equal(L.state, LIVE_CONNECTING);
    assert_int_equal(starts, 2);
}

/* The VIP moved between IKE_SA_INIT and IKE_AUTH: the new holder answers
 * INVALID_IKE_SPI; a fresh IKE SA starts at once beside the half-open one. */
static void test_invalid_ike_spi_while_connecting_starts_afresh(void **state)
{
    (void)state;
    liveness_start(&L);
    liveness_hint(&L, LIVE_HINT_SYN_UNANSWERED);        /* not about IKE state: ignored */
    assert_int_equal(spec_starts, 0);
    liveness_hint(&L, LIVE_HINT_INVALID_IKE_SPI);
    assert_int_equal(spec_starts, 1);
    assert_int_equal(L.state, LIVE_CONNECTING);
    liveness_hint(&L, LIVE_HINT_INVALID_IKE_SPI);       /* retransmissions: one attempt only */
    assert_int_equal(spec_starts, 1);
    liveness_ike_established(&L, true);
    assert_int_equal(abandons, 1);                      /* the half-open SA is let go */
    assert_int_equal(L.state, LIVE_UP);
    assert_int_equal(promotes, 1);
    assert_int_equal(L.spec, LIVE_SPEC_NONE);
}

static void test_failed_speculation_keeps_the_current_sa(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_INVALID_IKE_SPI);
    liveness_ike_failed(&L, true);
    assert_int_equal(L.state, LIVE_SUSPECT);
    liveness_probe_ok(&L);
    assert_int_equal(L.state, LIVE_UP);
    assert_int_equal(abandons, 0);
}

static void test_stopped_tunnel_takes_no_action(void **state)
{
    (void)state;
    bring_up();
    liveness_stop(&L);
    advance(10000);
    liveness_hint(&L, LIVE_HINT_INVALID_IKE_SPI);
    assert_int_equal(probes, 0);
    assert_int_equal(spec_starts, 0);
    assert_int_equal(L.state, LIVE_DOWN);
}

/* ---- adversarial review (passing): make-before-break edges ---- */

/* An authenticated DELETE of the current SA while the speculative SA is up:
 * it takes over at once, no new handshake. */
static void test_a_delete_of_the_current_sa_promotes_a_ready_speculative_sa_at_once(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);
    liveness_ike_established(&L, true);
    liveness_delete_received(&L);
    assert_int_equal(abandons, 1);
    assert_int_equal(promotes, 1);
    assert_int_equal(starts, 1);
    assert_int_equal(L.spec, LIVE_SPEC_NONE);
    assert_int_equal(L.state, LIVE_UP);
}

/* The peer answered (the speculative SA on its way is unwanted), then died
 * before that SA was up: it is the attempt now, promoted when up, not
 * dropped, and no second handshake starts. */
static void test_a_speculative_sa_made_unwanted_becomes_the_attempt_when_the_peer_dies_after_all(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_INVALID_IKE_SPI);
    liveness_probe_ok(&L);
    assert_true(L.spec_unwanted);
    advance(cfg.probe_interval_ms);             /* idle probe */
    assert_int_equal(probes, 2);
    now += cfg.dead_after_ms;
    liveness_probe_timeout(&L);
    assert_int_equal(L.state, LIVE_CONNECTING);
    assert_int_equal(starts, 1);
    liveness_ike_established(&L, true);
    assert_int_equal(promotes, 1);
    assert_int_equal(drops, 0);
    assert_int_equal(L.state, LIVE_UP);
}

/* However many hints of every kind arrive before the suspicion is settled:
 * one probe, one speculative SA. */
static void test_a_flood_of_hints_while_suspect_costs_one_probe_and_one_speculative_sa(void **state)
{
    (void)state;
    bring_up();
    for (int i = 0; i < 1000; i++) {
        liveness_hint(&L, (enum liveness_hint)(LIVE_HINT_INVALID_IKE_SPI + i % 3));
        if (i == 500)
            liveness_ike_established(&L, true);     /* the speculative SA comes up meanwhile */
        now += (i % 10) == 0;
    }
    assert_int_equal(probes, 1);
    assert_int_equal(spec_starts, 1);
    assert_int_equal(L.state, LIVE_SUSPECT);
    liveness_probe_ok(&L);
    assert_int_equal(drops, 1);
    assert_int_equal(promotes + abandons, 0);
}

/* A stopped tunnel acts on nothing IKE still reports about its SAs. */
static void test_a_stopped_tunnel_ignores_late_ike_outcomes(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);
    liveness_ike_established(&L, true);
    liveness_stop(&L);
    liveness_probe_timeout(&L);
    liveness_delete_received(&L);
    liveness_ike_failed(&L, true);
    liveness_ike_failed(&L, false);
    advance(10000);
    assert_int_equal(promotes + abandons + drops, 0);
    assert_int_equal(starts, 1);
    assert_int_equal(L.state, LIVE_DOWN);
}

/* ---- adversarial review of the failover changes (each failed before its fix) ---- */

/* Rule 1: the peer spoke (ESP that verified) after the probe went out.
 * liveness_probe_timeout excuses such a probe; the dead_after/2 "late"
 * check does not, so a slow IKE answer on a busy, healthy tunnel makes it
 * SUSPECT (new sessions held), and every later packet flips it UP and at
 * once SUSPECT again until the probe resolves. */
static void test_authentic_traffic_after_a_probe_keeps_a_late_probe_from_making_the_tunnel_suspect(void **state)
{
    (void)state;
    bring_up();
    advance(1000);                              /* idle probe */
    assert_true(L.probing);
    now += 10;
    liveness_authentic_rx(&L, false);           /* ESP verified after the probe was sent */
    advance(cfg.dead_after_ms / 2);
    assert_int_equal(L.n_entered[LIVE_SUSPECT], 0);
}

static void test_a_late_probe_does_not_flap_up_and_suspect_on_every_packet(void **state)
{
    (void)state;
    bring_up();
    advance(1000);
    advance(cfg.dead_after_ms / 2);
    assert_int_equal(L.state, LIVE_SUSPECT);    /* late: fine */
    for (int i = 0; i < 10; i++) {
        now += 5;
        liveness_authentic_rx(&L, false);       /* ESP keeps arriving */
        advance(0);
    }
    print_message("SUSPECT entered %llu times, state %s\n", (unsigned long long)L.n_entered[LIVE_SUSPECT],
                  liveness_state_name(L.state));
    assert_int_equal(L.n_entered[LIVE_SUSPECT], 1);
    assert_int_equal(L.state, LIVE_UP);
}

/* A probe whose outcome IKE never reports (the probe went out on an IKE
 * SA that a peer-initiated IKE rekey replaced, see test_ike_sa) leaves
 * probing=true forever: no probe is ever sent again, SUSPECT has no
 * deadline, a later death of the peer is never found. */
static void test_a_lost_probe_outcome_is_given_up_by_liveness_itself(void **state)
{
    (void)state;
    bring_up();
    advance(1000);
    assert_int_equal(probes, 1);
    /* no liveness_probe_ok / _timeout: the outcome went to the old SA */
    now += 5;
    liveness_authentic_rx(&L, true);            /* the peer's rekey request itself */
    advance(60000);                             /* a minute; the peer then dies */
    assert_true(probes > 1);
}

/* The current SA failed (its rekey timed out: IKE_EV_FAILED) while a
 * speculative SA is up and waiting for exactly this verdict: it should
 * take over at once. It is left READY; the tunnel goes DOWN, waits
 * retry_ms and makes a second handshake, and the READY one lingers. */
static void test_the_current_sa_failing_promotes_a_ready_speculative_sa(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);
    liveness_ike_established(&L, true);
    assert_int_equal(L.spec, LIVE_SPEC_READY);
    liveness_ike_failed(&L, false);             /* tunnel.c: IKE_EV_FAILED of t->cur */
    assert_int_equal(promotes, 1);
    assert_int_equal(L.state, LIVE_UP);
}

/* DOWN with a speculative SA on its way (the current SA failed): a new
 * client (NETSTACK_EV_NO_SA -> SYN_UNANSWERED) or the retry timer starts
 * a second, non-speculative attempt; when the speculative SA is up first
 * it is promoted without abandoning that attempt. tunnel.c then overwrites
 * t->cur (tunnel_promote_spec): the attempt, with INITIAL_CONTACT and
 * outbound not held, lives on untracked (never probed, never deleted,
 * its CHILD SA becomes the newest outbound when it is up). */
static void test_a_starting_speculative_sa_becomes_the_attempt_instead_of_a_second_one(void **state)
{
    (void)state;
    bring_up();
    liveness_hint(&L, LIVE_HINT_UNKNOWN_SPI);
    assert_int_equal(spec_starts, 1);
    liveness_ike_failed(&L, false);             /* the current SA failed: DOWN */
    liveness_hint(&L, LIVE_HINT_SYN_UNANSWERED);    /* a new client, no SA */
    liveness_ike_established(&L, true);         /* the speculative SA wins the race */
    assert_int_equal(promotes, 1);
    /* either no second attempt, or it is let go before the promotion */
    assert_true(starts == 1 || abandons == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_start_connects_and_establishment_brings_the_tunnel_up, setup),
        cmocka_unit_test_setup(test_idle_tunnel_is_probed_on_the_dead_after_schedule, setup),
        cmocka_unit_test_setup(test_an_awaited_answer_probes_after_stall_ms_of_silence, setup),
        cmocka_unit_test_setup(test_unanswered_probe_abandons_the_sa_and_rekeys_at_once, setup),
        cmocka_unit_test_setup(test_invalid_ike_spi_while_connecting_starts_afresh, setup),
        cmocka_unit_test_setup(test_stalled_data_is_probed_and_a_late_probe_makes_the_tunnel_suspect, setup),
        cmocka_unit_test_setup(test_a_stall_answered_by_the_probe_never_makes_the_tunnel_suspect, setup),
        cmocka_unit_test_setup(test_invalid_ike_spi_starts_a_speculative_sa_that_takes_over_when_the_probe_fails, setup),
        cmocka_unit_test_setup(test_a_forged_hint_answered_by_the_peer_drops_the_speculative_sa, setup),
        cmocka_unit_test_setup(test_a_speculative_sa_already_up_is_dropped_when_the_peer_answers, setup),
        cmocka_unit_test_setup(test_esp_does_not_vouch_for_the_current_peer_while_a_speculative_sa_is_up, setup),
        cmocka_unit_test_setup(test_after_a_disproved_forged_hint_more_are_ignored_for_the_probe_interval, setup),
        cmocka_unit_test_setup(test_outbound_only_traffic_to_a_dead_peer_is_found_within_stall_and_dead_after, setup),
        cmocka_unit_test_setup(test_a_speculative_attempt_that_replaced_a_dead_sa_and_fails_is_retried, setup),
        cmocka_unit_test_setup(test_probe_timeout_during_speculation_waits_for_the_speculative_sa, setup),
        cmocka_unit_test_setup(test_a_late_probe_answer_is_excused_by_other_authentic_traffic, setup),
        cmocka_unit_test_setup(test_authenticated_delete_rekeys_at_once, setup),
        cmocka_unit_test_setup(test_failed_attempts_back_off_up_to_the_ceiling, setup),
        cmocka_unit_test_setup(test_a_hint_while_down_retries_without_waiting, setup),
        cmocka_unit_test_setup(test_failed_speculation_keeps_the_current_sa, setup),
        cmocka_unit_test_setup(test_stopped_tunnel_takes_no_action, setup),
        cmocka_unit_test_setup(test_a_delete_of_the_current_sa_promotes_a_ready_speculative_sa_at_once, setup),
        cmocka_unit_test_setup(test_a_speculative_sa_made_unwanted_becomes_the_attempt_when_the_peer_dies_after_all, setup),
        cmocka_unit_test_setup(test_a_flood_of_hints_while_suspect_costs_one_probe_and_one_speculative_sa, setup),
        cmocka_unit_test_setup(test_a_stopped_tunnel_ignores_late_ike_outcomes, setup),
        cmocka_unit_test_setup(test_authentic_traffic_after_a_probe_keeps_a_late_probe_from_making_the_tunnel_suspect, setup),
        cmocka_unit_test_setup(test_a_late_probe_does_not_flap_up_and_suspect_on_every_packet, setup),
        cmocka_unit_test_setup(test_a_lost_probe_outcome_is_given_up_by_liveness_itself, setup),
        cmocka_unit_test_setup(test_the_current_sa_failing_promotes_a_ready_speculative_sa, setup),
        cmocka_unit_test_setup(test_a_starting_speculative_sa_becomes_the_attempt_instead_of_a_second_one, setup),
    };

    return cmocka_run_group_tests_name("liveness", tests, NULL, NULL);
}
