/*
 * IKEv2 state machine (RFC 7296), both roles, transport-mode CHILD SAs.
 *
 * The machine does no I/O and knows no event loop: datagrams come in
 * through ike_ctx_input(), go out through the send callback (the caller
 * adds the non-ESP marker and picks the socket), time comes from the
 * now_ms callback, and ike_ctx_tick() must be called at
 * ike_ctx_next_deadline(). CHILD SAs are handed to the install/remove
 * callbacks; the ESP layer owns them from there. So the whole machine can
 * be tested in one process with two contexts passing buffers.
 *
 * Ownership: an ike_ctx owns its SAs and copies of the peer configs.
 * Pointers to an ike_sa passed to callbacks are valid until the
 * IKE_EV_SA_GONE event for that SA returns.
 */
#ifndef ESPROXY_IKE_SA_H
#define ESPROXY_IKE_SA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipsec/ike_crypto.h"
#include "ipsec/ike_msg.h"

#define IKE_ID_MAX          255
#define IKE_PSK_MAX         256
#define IKE_MAX_PORTS       32
#define IKE_MAX_PEERS       16
#define IKE_PROBE_STEPS_MAX 16

struct ike_identity {
    uint8_t type;                   /* IKE_ID_FQDN, IKE_ID_IPV4_ADDR, IKE_ID_KEY_ID */
    uint8_t data[IKE_ID_MAX];
    size_t len;
};

struct ike_cert_auth;

enum ike_peer_auth { IKE_PEER_AUTH_PSK, IKE_PEER_AUTH_CERT };

/* One tunnel's IKE settings. Addresses in network byte order. */
struct ike_peer_config {
    char name[64];
    uint32_t local_addr;
    uint32_t peer_addr;             /* 0: any (responder only) */
    uint16_t port;                  /* UDP port of the peer, 4500 */
    struct ike_identity local_id, peer_id;
    enum ike_peer_auth auth;
    uint8_t psk[IKE_PSK_MAX];       /* auth = PSK */
    size_t psk_len;
    struct ike_cert_auth *cert;     /* auth = CERT; owned by the caller */
    struct ike_sa_payload ike_proposals;   /* spi_size 0, proto IKE */
    struct ike_sa_payload esp_proposals;   /* proto ESP; SPIs filled per exchange */
    uint16_t ports[IKE_MAX_PORTS];  /* protected TCP ports on the responder; none = all */
    int n_ports;
    unsigned retransmit_ms;         /* first timeout; doubles each try */
    unsigned retransmit_tries;
    unsigned ike_lifetime_s, child_lifetime_s;  /* 0 = never rekey */
};

enum ike_sa_state {
    IKE_S_INIT_SENT,        /* initiator: IKE_SA_INIT request out */
    IKE_S_INIT_DONE,        /* responder: answered IKE_SA_INIT, awaits IKE_AUTH */
    IKE_S_AUTH_SENT,        /* initiator: IKE_AUTH request out */
    IKE_S_ESTABLISHED,
    IKE_S_DELETING,         /* our DELETE of the IKE SA is out */
    IKE_S_DEAD,             /* about to be freed */
};

enum ike_event {
    IKE_EV_ESTABLISHED,     /* IKE SA and first CHILD SA up */
    IKE_EV_AUTH_FAILED,     /* peer refused us, or we refused the peer */
    IKE_EV_FAILED,          /* exchange failed: no proposal, TS, timeouts */
    IKE_EV_PROBE_OK,        /* liveness probe answered (authenticated) */
    IKE_EV_PROBE_TIMEOUT,   /* liveness probe schedule ran out */
    IKE_EV_DELETE_RECEIVED, /* authenticated DELETE of the IKE SA */
    IKE_EV_INVALID_SPI,     /* unauthenticated INVALID_IKE_SPI: a hint only */
    IKE_EV_CHILD_REKEYED,   /* new CHILD SA installed, old one removed */
    IKE_EV_IKE_REKEYED,     /* this SA replaced by a rekeyed one */
    IKE_EV_SA_GONE,         /* the SA is being freed */
    IKE_EV_PEER_ALIVE,      /* an authenticated message from the peer arrived */
};

/* What the ESP layer needs to install one CHILD SA pair. */
struct ike_child_install {
    uint32_t spi_in, spi_out;       /* host byte order */
    uint16_t encr, key_bits;        /* IKE_ENCR_AES_GCM_16 / CHACHA20_POLY1305 */
    bool esn;
    const uint8_t *key_in, *key_out;    /* key | salt */
    size_t key_len;
    uint32_t local_addr, peer_addr; /* network byte order */
    unsigned lifetime_s;
    /* Responder of a CHILD rekey: install the inbound SA now and the
     * outbound one only at child_activate_out (after the peer's DELETE of
     * the old SA, or a second later), so we never send on an SA the peer
     * has not installed yet. */
    bool defer_out;
};

struct ike_sa;

struct ike_callbacks {
    void *arg;
    /* Send one IKE message (without non-ESP marker). */
    void (*send)(void *arg, uint32_t src, uint32_t dst, uint16_t dport,
                 const uint8_t *msg, size_t len);
    /* Install an inbound+outbound CHILD SA pair; 0 or negative. */
    int (*child_install)(void *arg, struct ike_sa *sa, const struct ike_child_install *c);
    void (*child_remove)(void *arg, struct ike_sa *sa, uint32_t spi_in, uint32_t spi_out);
    /* Start sending on a CHILD SA installed with defer_out. */
    void (*child_activate_out)(void *arg, struct ike_sa *sa, uint32_t spi_in);
    void (*event)(void *arg, struct ike_sa *sa, enum ike_event ev);
    /* Pick an unused inbound ESP SPI (host order, nonzero). */
    uint32_t (*spi_alloc)(void *arg);
    uint64_t (*now_ms)(void *arg);
    /* Optional: key log of IKE SA keys (Wireshark ikev2_decryption_table). */
    void (*keylog)(void *arg, const struct ike_sa *sa, const struct ike_sa_keys *k);
};

struct ike_stats {
    uint64_t rx, tx, retransmits, dropped, invalid_spi_sent, cookies_sent, auth_failures;
    /* unauthenticated replies not sent: the source's budget, or everyone's, was spent */
    uint64_t replies_limited_src, replies_limited_total;
    /* IKE_SA_INIT requests dropped at a half-open bound: the source's, or the total */
    uint64_t half_open_refused_src, half_open_refused_total;
    uint64_t half_open;             /* gauge: responder SAs answered but not authenticated */
    /* responder: an INITIAL_CONTACT deleted an SA of the same identity
     * from another address (two front-ends sharing one identity) */
    uint64_t identity_collisions;
};

/* What unauthenticated senders may cost a responder (ike_guard.c). */
struct ike_limits {
    unsigned replies_per_src;       /* replies outside any SA, a second, to one address (10) */
    unsigned replies_total;         /* ... to all addresses together (500) */
    unsigned cookie_per_src;        /* an address with this many half-open SAs must return a COOKIE (2) */
    unsigned cookie_threshold;      /* everyone must, with this many half-open in total (32) */
    unsigned half_open_per_src;     /* half-open SAs of one address at most; more are dropped (5) */
    unsigned half_open_max;         /* half-open SAs in total at most (256) */
    unsigned half_open_timeout_ms;  /* a half-open SA is forgotten after this (30000) */
};

struct ike_ctx;

/* Returns NULL when out of memory. */
struct ike_ctx *ike_ctx_new(const struct ike_callbacks *cb);
void ike_ctx_free(struct ike_ctx **ctx);
/* Copies cfg; returns its index or -1 (too many). */
int ike_ctx_add_peer(struct ike_ctx *ctx, const struct ike_peer_config *cfg);
/* The defaults above, in *l. */
void ike_limits_default(struct ike_limits *l);
void ike_ctx_set_limits(struct ike_ctx *ctx, const struct ike_limits *l);
/* Half-open SAs in total from which a responder demands a COOKIE (default
 * 32; 0: always). */
void ike_ctx_set_cookie_threshold(struct ike_ctx *ctx, unsigned n);
/* A responder that is shutting down stops answering new IKE_SA_INITs. */
void ike_ctx_set_accepting(struct ike_ctx *ctx, bool accepting);
const struct ike_stats *ike_ctx_stats(const struct ike_ctx *ctx);

/* A datagram for IKE (the non-ESP marker already stripped). */
void ike_ctx_input(struct ike_ctx *ctx, uint32_t src, uint16_t sport, uint32_t dst,
                   const uint8_t *msg, size_t len);
/* Earliest time ike_ctx_tick wants to run (UINT64_MAX: nothing pending). */
uint64_t ike_ctx_next_deadline(const struct ike_ctx *ctx);
void ike_ctx_tick(struct ike_ctx *ctx);

/* Initiator: start an IKE SA (and CHILD SA) for peer index. initial_contact
 * asks the responder to drop older SAs of our identity. */
int ike_ctx_initiate(struct ike_ctx *ctx, int peer, bool initial_contact, struct ike_sa **sa_r);

/* An ICMP error says our last IKE_SA_INIT or IKE_AUTH was refused where it
 * went (nothing listening at the VIP's holder, which is about to change):
 * not a loss to congestion, so it is sent again the first gap after the
 * last send and the backoff ladder starts over, for as long as the
 * refusals come: a VIP that moves a moment later is reached within one
 * first gap (two, if one send is lost silently while the address moves).
 * The request still gives up when the plain ladder would have.
 * ICMP is not authenticated; the worst a forged one does is one send of our
 * own request per first gap until then. 0 if a send was brought forward,
 * -1 if nothing changed. */
int ike_sa_request_refused(struct ike_sa *sa);

/* Liveness probe: an empty INFORMATIONAL request retransmitted after each
 * of schedule_ms[0..n) (relative gaps); IKE_EV_PROBE_OK or _TIMEOUT. */
int ike_sa_probe(struct ike_sa *sa, const unsigned *schedule_ms, int n);
/* Graceful: DELETE of the IKE SA (and its CHILD SAs) to the peer. */
int ike_sa_delete(struct ike_sa *sa);
/* Forget an SA without telling the peer (peer dead). */
void ike_sa_abandon(struct ike_sa *sa);
/* A speculative SA's CHILD SAs are installed inbound only (the current
 * SA keeps carrying our traffic) until ike_sa_release_outbound. */
void ike_sa_hold_outbound(struct ike_sa *sa);
/* During IKE_EV_IKE_REKEYED (sa is the new IKE SA): the one it replaces. */
struct ike_sa *ike_sa_rekeyed_from(const struct ike_sa *sa);
void ike_sa_release_outbound(struct ike_sa *sa);
int ike_sa_rekey_child(struct ike_sa *sa);
/* The ESP layer says a CHILD SA of ours reached a lifetime limit (the
 * SADB's soft or hard event: half the sequence space used, or its end).
 * The IKE SA that owns it (peer_addr, and spi as our outbound SPI or, with
 * outbound false, our inbound one) schedules a CHILD rekey at its next
 * tick: the event comes from the packet path, where no IKE message may be
 * sent. Only the current CHILD SA is rekeyed (an older one is already
 * replaced). 0 if a rekey was scheduled or is already under way, -1 if no
 * established IKE SA owns that CHILD SA. The caller kicks the timer. */
int ike_ctx_child_expiring(struct ike_ctx *ctx, uint32_t peer_addr, uint32_t spi, bool outbound);
int ike_sa_rekey_ike(struct ike_sa *sa);

enum ike_sa_state ike_sa_state(const struct ike_sa *sa);
bool ike_sa_is_initiator(const struct ike_sa *sa);
uint64_t ike_sa_spi_i(const struct ike_sa *sa);
uint64_t ike_sa_spi_r(const struct ike_sa *sa);
uint32_t ike_sa_peer_addr(const struct ike_sa *sa);
uint16_t ike_sa_peer_port(const struct ike_sa *sa);
uint64_t ike_sa_created_ms(const struct ike_sa *sa);
int ike_sa_peer_index(const struct ike_sa *sa);
const struct ike_identity *ike_sa_peer_identity(const struct ike_sa *sa);
/* Current CHILD SA SPIs (host order); false when none is installed. */
bool ike_sa_child_spis(const struct ike_sa *sa, uint32_t *spi_in, uint32_t *spi_out);
int ike_ctx_count_sas(const struct ike_ctx *ctx);
/* DELETE every established IKE SA (graceful shutdown); returns how many. */
int ike_ctx_delete_all(struct ike_ctx *ctx);
/* Established IKE SAs of peer config index peer (responder tunnels). */
int ike_ctx_count_established(const struct ike_ctx *ctx, int peer);
struct ike_sa *ike_ctx_find_by_peer(const struct ike_ctx *ctx, uint32_t peer_addr);

const char *ike_state_name(enum ike_sa_state s);
const char *ike_event_name(enum ike_event ev);

#endif
