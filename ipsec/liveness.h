/*
 * Liveness and failover decisions for one tunnel (one back-end VIP).
 * This module decides; the tunnel layer acts through the callbacks (start
 * an IKE SA, probe, abandon the SA and its streams, promote or drop a
 * speculative SA). No I/O, no event loop: time comes from now_ms, and
 * liveness_tick() runs at liveness_next_deadline(). The timers are stated
 * in prose at the top of liveness.c. The rules (RFC 7296 §2.4, §2.21,
 * §2.23):
 *
 * 1. A peer is alive only when it sends authenticated traffic: ESP that
 *    verified on one of its CHILD SAs, or an IKE message that decrypted
 *    under its IKE SA (an answered probe, a request of its own). What we
 *    send proves nothing, however much of it there is.
 *
 * 2. A stall is silence while we wait: something that needs an answer
 *    (TCP data, SYN, FIN; not a pure ACK) went out and nothing
 *    authenticated came back for stall_ms, or a stream waits for the
 *    peer's answer to a request. A stall sends a probe; so does silence of
 *    probe_interval_ms. A probe still unanswered after dead_after_ms / 2
 *    (two sends) makes the tunnel SUSPECT. A stall alone does not: a
 *    peer's delayed ACK (200 ms on Linux, 250 ms in lwIP) or a busy machine
 *    makes silence of stall_ms common on a healthy tunnel, and a probe
 *    answered in one round trip settles it. Outbound-only traffic (SYNs of
 *    new streams to a dead node) is found within stall_ms + dead_after_ms.
 *
 * 3. Unauthenticated input (ESP on an unknown SPI, an unprotected
 *    INVALID_IKE_SPI, ICMP unreachable) is a hint and only ever triggers a
 *    probe (and, for the first two, a speculative IKE SA). It counts only
 *    when it comes from the VIP's address; after such a suspicion was
 *    disproved, more of it is ignored for probe_interval_ms (counted in
 *    n_hints_ignored). A forger can spoof the VIP's address: the worst he
 *    gets is one probe and one extra IKE SA per interval.
 *
 * 4. Speculative SAs (make-before-break): started by the hints that say
 *    the VIP lost our state, without INITIAL_CONTACT (that would make a
 *    still-alive node delete the SA our sessions use), and with their
 *    outbound ESP held. When one is up beside the current SA it waits for
 *    the current SA's probe: the peer proving itself alive drops the
 *    speculative SA (DELETE); the probe failing promotes it at once (no
 *    new handshake). While it waits, ESP cannot tell the two peers apart:
 *    only the current SA's own IKE messages prove that peer alive.
 *
 * 5. Dead: a probe unanswered for dead_after_ms, or an authenticated
 *    DELETE of the IKE SA. The SA is abandoned (its streams fail with
 *    "tunnel lost": the proxy answers with the protocol's own error, or
 *    resumes what can be resumed) and a new SA is made at once.
 *
 * 6. Holding: while the tunnel is SUSPECT, CONNECTING or DOWN, the proxy
 *    holds new sessions (bounded in time and count) and releases them on
 *    UP (tunnel events).
 *
 * 7. The peer's address and port change only after a message from it
 *    authenticated (ike_sa.c); an unauthenticated retransmission is
 *    answered from cache only when it is byte-identical to the request we
 *    answered, and at most IKE_RESENDS_PER_SEC a second.
 */
#ifndef ESPROXY_IPSEC_LIVENESS_H
#define ESPROXY_IPSEC_LIVENESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum liveness_state {
    LIVE_DOWN,          /* no SA, not trying (backing off after a failure) */
    LIVE_CONNECTING,    /* an IKE SA is being negotiated */
    LIVE_UP,            /* SA up, peer heard from recently */
    LIVE_SUSPECT,       /* a hint arrived: probing fast */
};

/* A speculative IKE SA beside the current one (rule 4). */
enum liveness_spec {
    LIVE_SPEC_NONE,
    LIVE_SPEC_STARTING,     /* being negotiated */
    LIVE_SPEC_READY,        /* up, outbound held, waiting for the current SA's verdict */
};

/* What made us suspicious. Unauthenticated hints never prove anything
 * (RFC 7296 §2.21.4): they only start a probe. */
enum liveness_hint {
    LIVE_HINT_STALL,            /* data sent, nothing authentic back for a while */
    LIVE_HINT_SYN_UNANSWERED,   /* a new stream's SYN got no answer */
    LIVE_HINT_INVALID_IKE_SPI,  /* the VIP answered "no such IKE SA" */
    LIVE_HINT_UNKNOWN_SPI,      /* ESP from the VIP on an SPI we do not know */
    LIVE_HINT_ICMP_UNREACH,
};

/* Why the state changed, for the history and the log. */
enum liveness_reason {
    LIVE_R_START, LIVE_R_ESTABLISHED, LIVE_R_IKE_FAILED, LIVE_R_HINT, LIVE_R_PROBE_OK,
    LIVE_R_PROBE_TIMEOUT, LIVE_R_DELETE, LIVE_R_RETRY, LIVE_R_SPECULATIVE, LIVE_R_STOP,
    LIVE_R_PROBE_LATE,
};

struct liveness_config {
    unsigned probe_interval_ms;     /* idle probe when nothing authentic was heard */
    unsigned dead_after_ms;         /* a probe unanswered this long: peer dead */
    unsigned stall_ms;              /* sent data unanswered this long: hint */
    unsigned retry_ms;              /* first wait before re-trying a failed IKE SA */
    unsigned retry_max_ms;          /* backoff ceiling */
    bool speculative;               /* SUSPECT also starts a parallel IKE SA */
};

struct liveness_callbacks {
    void *arg;
    uint64_t (*now_ms)(void *arg);
    /* Start a new IKE SA. Not speculative: with INITIAL_CONTACT, it is to
     * become the current SA. Speculative: no INITIAL_CONTACT, outbound
     * ESP held, the current SA kept (see rule 4). */
    void (*start_ike)(void *arg, bool speculative);
    /* The speculative SA (up) becomes the current SA: release its outbound. */
    void (*promote_spec)(void *arg);
    /* The speculative SA is not needed: DELETE it. */
    void (*drop_spec)(void *arg);
    /* Probe the current SA: retransmit after each gap. */
    void (*probe)(void *arg, const unsigned *gaps_ms, int n);
    /* Forget the current SA without telling the peer; fail its streams
     * with "tunnel lost". */
    void (*abandon)(void *arg);
    void (*state_changed)(void *arg, enum liveness_state from, enum liveness_state to,
                          enum liveness_reason why);
};

#define LIVENESS_HISTORY 64

struct liveness_event {
    uint64_t at_ms;
    enum liveness_state from, to;
    enum liveness_reason why;
};

struct liveness {
    struct liveness_config cfg;
    struct liveness_callbacks cb;
    enum liveness_state state;
    uint64_t last_rx_ms;            /* last authentic packet from the peer */
    uint64_t first_unanswered_tx_ms;/* oldest data sent since last_rx, 0 = none */
    uint64_t probe_due_ms;          /* idle probe (UP) */
    uint64_t probe_sent_ms;         /* when the current probe started */
    uint64_t retry_due_ms;          /* DOWN: next IKE attempt */
    unsigned retry_wait_ms;
    bool probing, stopped;
    enum liveness_spec spec;
    bool spec_beside_attempt;   /* the speculative SA races a half-open first attempt */
    bool spec_unwanted;         /* the peer proved alive before the speculative SA was up */
    bool suspicion_unauth;      /* the current SUSPECT came from unauthenticated input */
    uint64_t hints_quiet_until_ms;  /* unauthenticated hints ignored until then */
    uint64_t n_hints_ignored;
    struct liveness_event history[LIVENESS_HISTORY];
    unsigned n_history;             /* total recorded; the ring keeps the last 64 */
    uint64_t n_entered[4];          /* times each state was entered (by enum liveness_state) */
    unsigned awaiting;              /* streams waiting for the peer's answer to a request */
    bool await_probed;              /* the early probe for the current wait went out */
};

void liveness_init(struct liveness *l, const struct liveness_config *cfg, const struct liveness_callbacks *cb);
/* DOWN -> CONNECTING: start the first IKE SA. */
void liveness_start(struct liveness *l);
void liveness_stop(struct liveness *l);

/* Inputs from IKE. */
void liveness_ike_established(struct liveness *l, bool speculative);
void liveness_ike_failed(struct liveness *l, bool speculative);
void liveness_probe_ok(struct liveness *l);
void liveness_probe_timeout(struct liveness *l);
void liveness_delete_received(struct liveness *l);
/* Inputs from the data path (netstack). */
void liveness_data_sent(struct liveness *l);
/* A stream is waiting for the peer's answer to a request (+1) or got it, or
 * gave up (-1). While any is waiting, silence of stall_ms (nothing
 * authentic received) sends a probe, as probe_interval_ms does for an idle
 * tunnel: a request sent just before the peer died, whose data was already
 * acknowledged, would otherwise wait for the idle probe. One such early
 * probe per new request: a long wait (a slow back-end) is then probed at
 * the idle interval, not every stall_ms. */
void liveness_awaiting(struct liveness *l, int delta);
/* Authenticated input: ESP that verified (from_current_sa false: any SA of
 * the tunnel) or an IKE message of the current SA (true). */
void liveness_authentic_rx(struct liveness *l, bool from_current_sa);
void liveness_hint(struct liveness *l, enum liveness_hint h);

uint64_t liveness_next_deadline(const struct liveness *l);
void liveness_tick(struct liveness *l);

const char *liveness_state_name(enum liveness_state s);
const char *liveness_reason_name(enum liveness_reason r);
const char *liveness_hint_name(enum liveness_hint h);

#endif
