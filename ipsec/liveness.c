/*
 * Liveness and failover for one tunnel, in the style of WireGuard's
 * timers.c: the data path and IKE only report events; this file alone
 * decides when to probe, when the peer is dead and when to re-key.
 *
 * States: DOWN -> CONNECTING -> UP -> SUSPECT -> (UP | DOWN).
 *
 * The timers, all relative to the events that arm them:
 *
 * - Idle probe. While UP, if nothing authentic (ESP that verified, or an
 *   IKE answer) has arrived for probe_interval_ms, an empty INFORMATIONAL
 *   is sent. An idle tunnel is thus checked before the next client needs
 *   it, and a dead node is found without any traffic. While a stream
 *   waits for the peer's answer to a request (a login, an HTTP request),
 *   stall_ms of silence is enough: its data may all be acknowledged, so
 *   the stall timer below would not see the peer die.
 *
 * - Stall. When something that wants an answer has been sent and nothing
 *   authentic has come back for stall_ms since the oldest such send, a
 *   probe goes out (TCP inside ESP would otherwise wait for its own
 *   retransmission timers). The state stays UP: a delayed ACK explains
 *   most stalls.
 *
 * - Probe schedule. Every probe (idle, stall or after a hint) retransmits
 *   at dead_after/4 and dead_after/2; still unanswered at dead_after/2, it
 *   makes an UP tunnel SUSPECT (new sessions wait); it gives up at
 *   dead_after. Nothing
 *   authenticated from the peer by then (no answer, no ESP that verified,
 *   no other IKE message): the peer is dead. The SA is abandoned at
 *   once (its streams fail with "tunnel lost") and a new IKE SA with
 *   INITIAL_CONTACT goes to the VIP, which by now belongs to another node.
 *
 * - Retry. A failed IKE SA attempt is retried after retry_ms, doubling up
 *   to retry_max_ms; a hint or a new stream while DOWN retries at once.
 *
 * Other hints never prove anything either (RFC 7296 §2.21.4): they move UP
 * to SUSPECT and start a probe; the rules are in liveness.h. The hints that say the
 * VIP has lost our state (INVALID_IKE_SPI, ESP on an unknown SPI) also
 * start a speculative IKE SA in parallel (make-before-break): a node that
 * just took over the VIP answers IKE_SA_INIT at once. Once up, it waits
 * for the current SA's probe: an answer drops it, a timeout promotes it
 * without another handshake. INVALID_IKE_SPI for a half-open SA (the VIP
 * moved between IKE_SA_INIT and IKE_AUTH) likewise starts a fresh attempt
 * beside it, which takes over when it is up. An authenticated DELETE of
 * the IKE SA (graceful move) re-keys at once. Anything authentic from the
 * peer while SUSPECT means it is alive: back to UP.
 *
 * - Quiet after a false alarm. A suspicion raised by unauthenticated input
 *   and disproved by the peer mutes such input for probe_interval_ms.
 */
#include "ipsec/liveness.h"
#include "ipsec/ipsec_log.h"

#include <string.h>

const char *liveness_state_name(enum liveness_state s)
{
    static const char *const n[] = { "down", "connecting", "up", "suspect" };

    return (unsigned)s < 4 ? n[s] : "?";
}

const char *liveness_reason_name(enum liveness_reason r)
{
    static const char *const n[] = { "start", "established", "ike_failed", "hint", "probe_ok",
                                     "probe_timeout", "delete", "retry", "speculative", "stop",
                                     "probe_late" };

    return (unsigned)r < sizeof(n) / sizeof(n[0]) ? n[r] : "?";
}

const char *liveness_hint_name(enum liveness_hint h)
{
    static const char *const n[] = { "stall", "syn_unanswered", "invalid_ike_spi", "unknown_spi", "icmp_unreach" };

    return (unsigned)h < sizeof(n) / sizeof(n[0]) ? n[h] : "?";
}

static uint64_t liveness_now(const struct liveness *l)
{
    return l->cb.now_ms(l->cb.arg);
}

/* The one place the state changes; every change is recorded. */
static void liveness_set(struct liveness *l, enum liveness_state to, enum liveness_reason why)
{
    struct liveness_event *e;
    enum liveness_state from = l->state;

    if (from == to)
        return;
    if ((unsigned)to < sizeof(l->n_entered) / sizeof(l->n_entered[0]))
        l->n_entered[to]++;
    e = &l->history[l->n_history++ % LIVENESS_HISTORY];
    e->at_ms = liveness_now(l);
    e->from = from;
    e->to = to;
    e->why = why;
    l->state = to;
    if (l->cb.state_changed != NULL)
        l->cb.state_changed(l->cb.arg, from, to, why);
}

void liveness_init(struct liveness *l, const struct liveness_config *cfg, const struct liveness_callbacks *cb)
{
    memset(l, 0, sizeof(*l));
    l->cfg = *cfg;
    l->cb = *cb;
    l->state = LIVE_DOWN;
    l->retry_wait_ms = cfg->retry_ms;
}

static void liveness_promote(struct liveness *l);

static void liveness_connect(struct liveness *l, enum liveness_reason why)
{
    l->retry_due_ms = 0;
    l->probing = false;
    if (l->spec == LIVE_SPEC_READY) {
        liveness_promote(l);
        return;
    }
    liveness_set(l, LIVE_CONNECTING, why);
    if (l->spec == LIVE_SPEC_STARTING) {
        l->spec_unwanted = l->spec_beside_attempt = false;   /* it is the attempt */
        return;
    }
    l->cb.start_ike(l->cb.arg, false);
}

void liveness_start(struct liveness *l)
{
    l->stopped = false;
    if (l->state == LIVE_DOWN)
        liveness_connect(l, LIVE_R_START);
}

void liveness_stop(struct liveness *l)
{
    l->stopped = true;
    l->probing = false;
    l->spec = LIVE_SPEC_NONE;
    l->retry_due_ms = 0;
    liveness_set(l, LIVE_DOWN, LIVE_R_STOP);
}

/* A probe unanswered this long (two sends) makes an UP tunnel SUSPECT. */
static uint64_t liveness_probe_late_at(const struct liveness *l)
{
    return l->probe_sent_ms + l->cfg.dead_after_ms / 2;
}

static bool liveness_heard_since_probe(const struct liveness *l)
{
    return l->last_rx_ms > l->probe_sent_ms;
}

/* IKE reports every probe's outcome; should one be lost, liveness gives
 * the probe up itself a little after dead_after. */
static uint64_t liveness_probe_backstop_at(const struct liveness *l)
{
    return l->probe_sent_ms + l->cfg.dead_after_ms + l->cfg.dead_after_ms / 2;
}

static void liveness_probe_send(struct liveness *l)
{
    unsigned d = l->cfg.dead_after_ms;
    unsigned gaps[3] = { d / 4, d / 4, d - d / 2 };

    l->probing = true;
    l->probe_sent_ms = liveness_now(l);
    l->cb.probe(l->cb.arg, gaps, 3);
}

/* The speculative SA becomes the tunnel's SA. */
static void liveness_promote(struct liveness *l)
{
    l->spec = LIVE_SPEC_NONE;
    l->spec_beside_attempt = l->spec_unwanted = false;
    l->last_rx_ms = liveness_now(l);
    l->first_unanswered_tx_ms = 0;
    l->probing = false;
    l->cb.promote_spec(l->cb.arg);
    liveness_set(l, LIVE_UP, LIVE_R_SPECULATIVE);
}

/* The peer is gone: drop its SA and re-key toward the VIP at once. */
static void liveness_dead(struct liveness *l, enum liveness_reason why)
{
    l->probing = false;
    l->first_unanswered_tx_ms = 0;
    liveness_set(l, LIVE_DOWN, why);
    l->cb.abandon(l->cb.arg);
    if (l->stopped)
        return;
    if (l->spec == LIVE_SPEC_READY) {
        liveness_promote(l);    /* make-before-break: it is up already */
        return;
    }
    if (l->spec == LIVE_SPEC_STARTING) {
        /* a speculative IKE SA is already on its way: it becomes the attempt */
        l->spec_unwanted = false;
        l->spec_beside_attempt = false;
        liveness_set(l, LIVE_CONNECTING, LIVE_R_SPECULATIVE);
        return;
    }
    liveness_connect(l, LIVE_R_RETRY);
}

/* Authenticated proof that the current SA's peer is alive: a suspicion
 * ends, and a speculative SA started for it is not wanted. After a
 * suspicion raised by unauthenticated input, such input is ignored for
 * probe_interval_ms: a forger gets at most one probe and one extra SA per
 * interval, never a failover. */
static void liveness_proved_alive(struct liveness *l)
{
    if (l->spec == LIVE_SPEC_READY) {
        l->spec = LIVE_SPEC_NONE;
        l->cb.drop_spec(l->cb.arg);
    } else if (l->spec == LIVE_SPEC_STARTING && !l->spec_beside_attempt) {
        l->spec_unwanted = true;    /* dropped once it is up */
    }
    if (l->state != LIVE_SUSPECT)
        return;
    if (l->suspicion_unauth)
        l->hints_quiet_until_ms = liveness_now(l) + l->cfg.probe_interval_ms;
    l->suspicion_unauth = false;
    liveness_set(l, LIVE_UP, LIVE_R_PROBE_OK);
}

/* A speculative SA is up. With no current SA (it died meanwhile, or only
 * a half-open attempt raced it) it takes over; beside a current SA it
 * waits for that SA's probe: the peer proving itself alive drops it, the
 * probe failing promotes it. */
static void liveness_spec_established(struct liveness *l)
{
    l->retry_wait_ms = l->cfg.retry_ms;
    if (l->state == LIVE_DOWN || l->state == LIVE_CONNECTING) {
        if (l->spec_beside_attempt)
            l->cb.abandon(l->cb.arg);   /* the half-open first attempt */
        liveness_promote(l);
    } else if (l->spec_unwanted) {
        l->spec = LIVE_SPEC_NONE;
        l->spec_unwanted = false;
        l->cb.drop_spec(l->cb.arg);
    } else {
        l->spec = LIVE_SPEC_READY;
    }
}

void liveness_ike_established(struct liveness *l, bool speculative)
{
    if (speculative) {
        liveness_spec_established(l);
        return;
    }
    l->last_rx_ms = liveness_now(l);
    l->first_unanswered_tx_ms = 0;
    l->retry_wait_ms = l->cfg.retry_ms;
    l->probe_due_ms = 0;
    l->probing = false;
    liveness_set(l, LIVE_UP, LIVE_R_ESTABLISHED);
}

static void liveness_dead(struct liveness *l, enum liveness_reason why);

void liveness_ike_failed(struct liveness *l, bool speculative)
{
    if (!speculative && (l->state == LIVE_UP || l->state == LIVE_SUSPECT)) {
        liveness_dead(l, LIVE_R_IKE_FAILED);    /* the current SA failed: as dead */
        return;
    }
    if (speculative) {
        bool was_the_attempt = l->state == LIVE_CONNECTING && !l->spec_beside_attempt;

        l->spec = LIVE_SPEC_NONE;
        l->spec_beside_attempt = l->spec_unwanted = false;
        if (!was_the_attempt)
            return;     /* the current SA, if any, carries on */
    }
    if (l->stopped)
        return;
    l->retry_due_ms = liveness_now(l) + l->retry_wait_ms;
    l->retry_wait_ms = l->retry_wait_ms * 2 > l->cfg.retry_max_ms ? l->cfg.retry_max_ms : l->retry_wait_ms * 2;
    liveness_set(l, LIVE_DOWN, LIVE_R_IKE_FAILED);
}

void liveness_probe_ok(struct liveness *l)
{
    l->probing = false;
    l->last_rx_ms = liveness_now(l);
    l->first_unanswered_tx_ms = 0;
    liveness_proved_alive(l);
}

void liveness_probe_timeout(struct liveness *l)
{
    if (l->state != LIVE_UP && l->state != LIVE_SUSPECT)
        return;
    if (l->last_rx_ms > l->probe_sent_ms) {
        /* the probe's answer is late, but the peer spoke meanwhile
         * (ESP that verified, or an IKE message): it is alive */
        l->probing = false;
        liveness_proved_alive(l);
        return;
    }
    liveness_dead(l, LIVE_R_PROBE_TIMEOUT);
}

void liveness_delete_received(struct liveness *l)
{
    if (l->state == LIVE_UP || l->state == LIVE_SUSPECT)
        liveness_dead(l, LIVE_R_DELETE);
}

void liveness_data_sent(struct liveness *l)
{
    if (l->first_unanswered_tx_ms == 0)
        l->first_unanswered_tx_ms = liveness_now(l);
}

void liveness_awaiting(struct liveness *l, int delta)
{
    if (delta > 0) {
        l->awaiting++;
        l->await_probed = false;
    }
    else if (delta < 0 && l->awaiting > 0)
        l->awaiting--;
}

/* When silence makes an UP tunnel send its probe: probe_interval_ms, or
 * stall_ms while a request awaits its answer. */
static uint64_t liveness_probe_due(const struct liveness *l)
{
    unsigned quiet = l->cfg.probe_interval_ms;

    if (l->awaiting > 0 && !l->await_probed && l->cfg.stall_ms < quiet)
        quiet = l->cfg.stall_ms;
    return l->last_rx_ms + quiet;
}

void liveness_authentic_rx(struct liveness *l, bool from_current_sa)
{
    /* with a speculative SA up beside the current one, ESP cannot tell
     * which peer sent it: only the current SA's own IKE messages count */
    if (!from_current_sa && l->spec == LIVE_SPEC_READY)
        return;
    l->last_rx_ms = liveness_now(l);
    l->first_unanswered_tx_ms = 0;
    if (l->state == LIVE_SUSPECT || l->spec != LIVE_SPEC_NONE)
        liveness_proved_alive(l);
}

static bool liveness_hint_means_state_lost(enum liveness_hint h)
{
    return h == LIVE_HINT_INVALID_IKE_SPI || h == LIVE_HINT_UNKNOWN_SPI;
}

/* Hints anyone on the path (or off it, spoofing the VIP) can send. */
static bool liveness_hint_unauthenticated(enum liveness_hint h)
{
    return h == LIVE_HINT_INVALID_IKE_SPI || h == LIVE_HINT_UNKNOWN_SPI || h == LIVE_HINT_ICMP_UNREACH;
}

void liveness_hint(struct liveness *l, enum liveness_hint h)
{
    if (l->stopped)
        return;
    if (liveness_hint_unauthenticated(h) && liveness_now(l) < l->hints_quiet_until_ms) {
        l->n_hints_ignored++;
        return;
    }
    if (l->state == LIVE_DOWN) {
        liveness_connect(l, LIVE_R_RETRY);     /* a client is waiting: do not back off */
        return;
    }
    if (l->state == LIVE_CONNECTING) {
        /* the VIP moved while our IKE SA was half open (its holder does
         * not know the SA): start afresh beside it instead of waiting for
         * the old attempt's retransmissions to run out */
        if (l->cfg.speculative && h == LIVE_HINT_INVALID_IKE_SPI && l->spec == LIVE_SPEC_NONE) {
            ipsec_log(IPSEC_LOG_INFO, "event=liveness_hint hint=%s state=connecting", liveness_hint_name(h));
            l->spec = LIVE_SPEC_STARTING;
            l->spec_beside_attempt = true;
            l->cb.start_ike(l->cb.arg, true);
        }
        return;
    }
    if (l->state != LIVE_UP && l->state != LIVE_SUSPECT)
        return;
    if (l->state == LIVE_UP && h == LIVE_HINT_STALL) {
        /* our own inference, often a delayed ACK: probe, stay UP */
        ipsec_log(IPSEC_LOG_DEBUG, "event=liveness_hint hint=stall state=up action=probe");
        if (!l->probing)
            liveness_probe_send(l);
        return;
    }
    if (l->state == LIVE_UP) {
        /* logged once per suspicion: more hints meanwhile change nothing */
        ipsec_log(IPSEC_LOG_INFO, "event=liveness_hint hint=%s state=up", liveness_hint_name(h));
        l->suspicion_unauth = liveness_hint_unauthenticated(h);
        l->spec_unwanted = false;   /* a new suspicion: a speculative SA on its way may be needed */
        liveness_set(l, LIVE_SUSPECT, LIVE_R_HINT);
        if (!l->probing)
            liveness_probe_send(l);
    }
    if (l->cfg.speculative && liveness_hint_means_state_lost(h) && l->spec == LIVE_SPEC_NONE) {
        l->spec = LIVE_SPEC_STARTING;
        l->spec_unwanted = false;
        l->cb.start_ike(l->cb.arg, true);
    }
}

uint64_t liveness_next_deadline(const struct liveness *l)
{
    uint64_t d = UINT64_MAX;

    if (l->stopped)
        return d;
    if (l->state == LIVE_DOWN && l->retry_due_ms != 0)
        d = l->retry_due_ms;
    if ((l->state == LIVE_UP || l->state == LIVE_SUSPECT) && l->probing)
        d = l->state == LIVE_UP && !liveness_heard_since_probe(l) ? liveness_probe_late_at(l)
                                                                  : liveness_probe_backstop_at(l);
    if (l->state == LIVE_UP && !l->probing) {
        d = liveness_probe_due(l);
        if (l->first_unanswered_tx_ms != 0 && l->first_unanswered_tx_ms + l->cfg.stall_ms < d)
            d = l->first_unanswered_tx_ms + l->cfg.stall_ms;
    }
    return d;
}

void liveness_tick(struct liveness *l)
{
    uint64_t now = liveness_now(l);

    if (l->stopped)
        return;
    if (l->state == LIVE_DOWN && l->retry_due_ms != 0 && l->retry_due_ms <= now) {
        liveness_connect(l, LIVE_R_RETRY);
        return;
    }
    if ((l->state == LIVE_UP || l->state == LIVE_SUSPECT) && l->probing &&
        liveness_probe_backstop_at(l) <= now) {
        ipsec_log(IPSEC_LOG_WARN, "event=liveness_probe_outcome_lost");
        liveness_probe_timeout(l);
        return;
    }
    if (l->state != LIVE_UP)
        return;
    if (l->probing) {
        if (!liveness_heard_since_probe(l) && liveness_probe_late_at(l) <= now) {
            ipsec_log(IPSEC_LOG_INFO, "event=liveness_probe_late after_ms=%llu",
                      (unsigned long long)(now - l->probe_sent_ms));
            l->suspicion_unauth = false;
            liveness_set(l, LIVE_SUSPECT, LIVE_R_PROBE_LATE);
        }
        return;
    }
    if (l->first_unanswered_tx_ms != 0 && l->first_unanswered_tx_ms + l->cfg.stall_ms <= now) {
        l->first_unanswered_tx_ms = 0;
        liveness_hint(l, LIVE_HINT_STALL);
        return;
    }
    if (liveness_probe_due(l) <= now) {
        l->await_probed = l->awaiting > 0;
        liveness_probe_send(l);     /* idle (or awaited-answer) probe: the state stays UP */
    }
}
