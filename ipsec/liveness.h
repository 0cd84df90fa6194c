/*
 * Liveness and failover decisions for one tunnel (one back-end VIP).
 * The prose at the top of liveness.c states every timer. This module
 * decides; the tunnel layer acts through the callbacks (start an IKE SA,
 * probe, abandon the SA and its streams). No I/O, no event loop: time
 * comes from now_ms, and liveness_tick() runs at liveness_next_deadline().
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
    /* Start a new IKE SA with INITIAL_CONTACT. speculative: keep the
     * current SA until the new one is authenticated. */
    void (*start_ike)(void *arg, bool speculative);
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
    bool probing, speculating, stopped;
    bool spec_beside_attempt;   /* the speculative SA races a half-open first attempt */
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
void liveness_authentic_rx(struct liveness *l);
void liveness_hint(struct liveness *l, enum liveness_hint h);

uint64_t liveness_next_deadline(const struct liveness *l);
void liveness_tick(struct liveness *l);

const char *liveness_state_name(enum liveness_state s);
const char *liveness_reason_name(enum liveness_reason r);
const char *liveness_hint_name(enum liveness_hint h);

#endif
