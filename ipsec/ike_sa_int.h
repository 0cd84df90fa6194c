/* Internal to the IKE state machine files (ike_sa.c, ike_exch_*.c). */
#ifndef ESPROXY_IKE_SA_INT_H
#define ESPROXY_IKE_SA_INT_H

#include "ipsec/ike_sa.h"
#include "ipsec/ike_guard.h"

#define IKE_BUF_MAX         8192
#define IKE_NONCE_LEN       32
#define IKE_COOKIE_MAX      64
#define IKE_RESENDS_PER_SEC 10        /* cached responses re-sent per SA */

/* Requests asked for while another one was outstanding (window size 1). */
#define IKE_PEND_REKEY_CHILD    2u
#define IKE_PEND_REKEY_IKE      4u
#define IKE_PEND_DELETE         8u

enum ike_req_kind {
    IKE_REQ_NONE,
    IKE_REQ_INIT,
    IKE_REQ_AUTH,
    IKE_REQ_PROBE,
    IKE_REQ_DELETE_IKE,
    IKE_REQ_DELETE_CHILD,
    IKE_REQ_REKEY_CHILD,
    IKE_REQ_REKEY_IKE,
};

/* Our outstanding request (window size 1). */
struct ike_request {
    enum ike_req_kind kind;
    uint32_t msg_id;
    uint8_t *buf;
    size_t len;
    uint64_t next_ms;           /* next retransmission or give-up time */
    uint64_t sent_ms;           /* last (re)transmission */
    uint64_t give_up_ms;        /* when the plain ladder would give up */
    bool refused_resend;        /* next send answers an ICMP refusal: no backoff step */
    int n_refused;              /* such sends so far (none after give_up_ms) */
    unsigned gaps[IKE_PROBE_STEPS_MAX];
    int n_gaps, step;
};

#define IKE_MAX_KIDS 4
#define IKE_OUT_DEFER_MS 1000     /* fallback when the peer never deletes the old CHILD SA */

struct ike_child {
    bool installed;
    uint32_t spi_in, spi_out;
    uint16_t encr, key_bits;
    bool esn;
    uint64_t created_ms;
    bool out_pending;           /* installed inbound only, see defer_out */
};

/* State of a CREATE_CHILD_SA we initiated, and of a peer's rekey of the
 * same CHILD SA that crossed ours (RFC 7296 §2.8.1). */
struct ike_rekey {
    uint32_t new_spi_in;        /* child rekey: our new inbound SPI */
    uint64_t new_spi;           /* IKE rekey: our new IKE SPI */
    uint32_t old_spi_in;        /* the CHILD SA being replaced */
    uint8_t nonce[IKE_NONCE_LEN];
    struct ike_dh dh;
    bool dh_live;
    bool collided;              /* the peer rekeyed the same CHILD meanwhile */
    uint8_t peer_ni[IKE_NONCE_MAX], our_nr[IKE_NONCE_LEN];
    size_t peer_ni_len;
};

struct ike_sa {
    struct ike_ctx *ctx;
    int peer;                   /* index of the config */
    bool initiator;             /* original initiator of this IKE SA */
    bool ts_initiator;          /* we initiated the IKE_AUTH that made the CHILD SAs: the peer's
                                 * selector carries the protected ports; kept across IKE rekeys,
                                 * which may swap the IKE roles (the peer rekeyed) */
    enum ike_sa_state state;
    uint64_t spi_i, spi_r;
    uint32_t local_addr, peer_addr;
    uint16_t peer_port;

    uint8_t ni[IKE_NONCE_MAX], nr[IKE_NONCE_MAX];
    size_t ni_len, nr_len;
    struct ike_dh dh;
    bool dh_live;
    uint16_t dh_group;
    bool keys_live;
    struct ike_sa_keys keys;
    uint8_t *init_req, *init_resp;  /* RealMessage1 / RealMessage2 until AUTH */
    size_t init_req_len, init_resp_len;
    uint8_t cookie[IKE_COOKIE_MAX];
    size_t cookie_len;
    int cookies_taken;          /* COOKIEs we retried with (IKE_COOKIE_RETRIES at most) */
    int groups_taken;           /* INVALID_KE_PAYLOADs we retried after (IKE_KE_RETRIES at most) */
    bool initial_contact;
    bool superseded;            /* replaced by an IKE rekey: its DELETE is routine */

    uint32_t next_req_id;       /* our next request's Message ID */
    uint32_t peer_next_id;      /* Message ID we expect in the peer's next request */
    struct ike_request req;
    uint8_t *last_resp;         /* our last response, for retransmitted requests */
    size_t last_resp_len;
    uint32_t last_resp_id;
    bool have_last_resp;

    struct ike_identity peer_id;    /* authenticated identity */
    struct ike_child kids[IKE_MAX_KIDS];   /* CHILD SAs; the newest carries outbound */
    int current_kid;                /* index of the newest, -1 when none */
    uint32_t deleting_spi_in;       /* CHILD our outstanding DELETE names */
    struct ike_rekey rekey;
    uint32_t child_spi_pending; /* responder: SPI allocated for the CHILD in AUTH */
    unsigned pending;           /* IKE_PEND_*: requests waiting for the window */
    unsigned ride_gaps[IKE_PROBE_STEPS_MAX];   /* the riding probe's own resends */
    int ride_n, ride_step;
    uint64_t ride_next_ms;
    uint64_t probe_give_up_ms;  /* a probe rides on the outstanding request: PROBE_TIMEOUT
                                 * then unless the peer authenticates first (0 = none) */
    uint64_t created_ms, rekey_child_at, rekey_ike_at;
    bool doomed;                /* destroyed: freed when no entry point runs */
    bool hold_out;              /* speculative: CHILD SAs inbound only until released */
    struct ike_sa *rekeyed_from;    /* set only while IKE_EV_IKE_REKEYED is emitted */
    uint16_t init_error;        /* the last error notify an IKE_SA_INIT response carried (ignored) */
    uint8_t last_req_hash[32];  /* the request last_resp answers (SHA-256) */
    uint64_t resend_window_ms;  /* cached-response resends: one-second budget */
    unsigned resends_in_window;
    struct ike_sa *next;
};

struct ike_ctx {
    struct ike_callbacks cb;
    struct ike_peer_config peers[IKE_MAX_PEERS];
    int n_peers;
    struct ike_sa *sas;
    bool refuse_new;                /* shutting down: no new responder SAs */
    struct ike_guard guard;         /* budgets, half-open bounds, cookie secrets */
    unsigned depth;                 /* entry points running (see ike_ctx_enter) */
    struct ike_stats stats;
};

/* ike_sa.c */
uint64_t ike_now(const struct ike_ctx *ctx);
/* Object lifetime: callbacks run inside walks of ctx->sas and may destroy
 * any SA (the one being handled, the one the walk visits next). Every entry
 * point brackets its work with enter/leave; an SA destroyed meanwhile is
 * marked dead (doomed, state DEAD, its CHILD SAs removed, SA_GONE emitted)
 * and freed only when the outermost entry point leaves. So no walk and no
 * caller ever touches freed memory; code after a callback checks
 * sa->doomed (or the state) before acting on the SA. */
void ike_ctx_enter(struct ike_ctx *ctx);
void ike_ctx_leave(struct ike_ctx *ctx);
struct ike_sa *ike_sa_new(struct ike_ctx *ctx, int peer, bool initiator);
void ike_sa_set_state(struct ike_sa *sa, enum ike_sa_state st);
void ike_sa_destroy(struct ike_sa *sa);
void ike_sa_fail(struct ike_sa *sa, enum ike_event ev, const char *why);
void ike_sa_emit(struct ike_sa *sa, enum ike_event ev);
const struct ike_peer_config *ike_sa_cfg(const struct ike_sa *sa);
void ike_header_for(const struct ike_sa *sa, struct ike_header *h, uint8_t exchange,
                    bool response, uint32_t msg_id);
/* Store buf (ownership taken) as the outstanding request and send it. */
void ike_request_start(struct ike_sa *sa, enum ike_req_kind kind, uint8_t *buf, size_t len,
                       const unsigned *gaps, int n_gaps);
void ike_request_clear(struct ike_sa *sa);
/* Queue what (IKE_PEND_*) when a request is outstanding: true if queued. */
bool ike_sa_defer(struct ike_sa *sa, unsigned what);
/* Send a response and keep it for retransmitted requests (takes buf). */
void ike_response_send(struct ike_sa *sa, uint8_t *buf, size_t len, uint32_t msg_id);
void ike_send_raw(struct ike_ctx *ctx, uint32_t src, uint32_t dst, uint16_t port,
                  const uint8_t *msg, size_t len);

/* Encrypted messages: build the inner chain in w (init_chain on
 * ike_sk_plain_offset), then ike_sk_seal. Returns a malloc'd message. */
uint8_t *ike_sk_begin(struct ike_sa *sa, struct ike_writer *w, uint8_t exchange, bool response,
                      uint32_t msg_id);
uint8_t *ike_sk_seal(struct ike_sa *sa, struct ike_writer *w, uint8_t *msg, size_t *len_r);
/* Decrypt an SK message in place: the inner payloads in *inner. */
int ike_sk_open(struct ike_sa *sa, uint8_t *msg, size_t len, const struct ike_payload_list *outer,
                struct ike_payload_list *inner);

/* ike_exch_init.c */
int ike_init_request_send(struct ike_sa *sa);
void ike_init_handle_request(struct ike_ctx *ctx, uint32_t src, uint16_t sport, uint32_t dst,
                             const struct ike_header *h, const uint8_t *msg, size_t len,
                             const struct ike_payload_list *pl);
void ike_init_handle_response(struct ike_sa *sa, const struct ike_header *h, const uint8_t *msg,
                              size_t len, const struct ike_payload_list *pl);

/* ike_exch_auth.c */
int ike_auth_request_send(struct ike_sa *sa);
void ike_auth_handle_request(struct ike_sa *sa, const struct ike_header *h,
                             const struct ike_payload_list *inner);
void ike_auth_handle_response(struct ike_sa *sa, const struct ike_header *h,
                              const struct ike_payload_list *inner);
/* Shared by AUTH and CREATE_CHILD_SA.  The exchange that made the child
 * decides which key half protects which direction (RFC 7296 2.17: "i" keys
 * protect traffic from the initiator of *that* exchange); as responder of a
 * CREATE_CHILD_SA the new outbound SA also waits for the peer (defer). */
enum ike_child_origin {
    IKE_CHILD_FROM_AUTH,            /* IKE_AUTH: the IKE SA's roles */
    IKE_CHILD_WE_INITIATED,         /* CREATE_CHILD_SA we sent */
    IKE_CHILD_PEER_INITIATED,       /* CREATE_CHILD_SA we answered */
};
int ike_child_keys_install(struct ike_sa *sa, const struct ike_proposal *chosen, uint32_t spi_in,
                           uint32_t spi_out, struct ike_buf gir, struct ike_buf ni, struct ike_buf nr,
                           enum ike_child_origin origin);
void ike_child_ts(const struct ike_sa *sa, struct ike_ts_list *tsi, struct ike_ts_list *tsr);
void ike_esp_proposals_with_spi(const struct ike_sa *sa, uint32_t spi, struct ike_sa_payload *out);
void ike_sa_schedule_rekeys(struct ike_sa *sa);
uint16_t ike_notify_first_error(const struct ike_payload_list *pl);
bool ike_notify_has(const struct ike_payload_list *pl, uint16_t type);

/* ike_exch_info.c */
void ike_info_handle_request(struct ike_sa *sa, const struct ike_header *h,
                             const struct ike_payload_list *inner);
void ike_info_handle_response(struct ike_sa *sa, const struct ike_header *h,
                              const struct ike_payload_list *inner);
void ike_info_send_invalid_spi(struct ike_ctx *ctx, uint32_t src, uint16_t sport, uint32_t dst,
                               const struct ike_header *h);
void ike_info_send_error(struct ike_sa *sa, uint32_t msg_id, uint16_t notify);

/* ike_child.c: CHILD SA bookkeeping */
int ike_kid_add(struct ike_sa *sa, const struct ike_child *c);
int ike_kid_find_in(const struct ike_sa *sa, uint32_t spi_in);
int ike_kid_find_out(const struct ike_sa *sa, uint32_t spi_out);
void ike_kid_remove(struct ike_sa *sa, int idx);
void ike_kid_remove_all(struct ike_sa *sa);
const struct ike_child *ike_kid_current(const struct ike_sa *sa);
/* Start sending on CHILD SAs installed inbound-only (all, or those older than before_ms). */
void ike_kid_activate_out(struct ike_sa *sa, uint64_t before_ms);
/* Earliest deferred outbound activation, UINT64_MAX if none. */
uint64_t ike_kid_out_deadline(const struct ike_sa *sa);
/* Send an INFORMATIONAL DELETE for our inbound CHILD SPI. */
int ike_kid_delete_send(struct ike_sa *sa, uint32_t spi_in);

/* ike_exch_child.c */
void ike_child_handle_request(struct ike_sa *sa, const struct ike_header *h,
                              const struct ike_payload_list *inner);
void ike_child_handle_response(struct ike_sa *sa, const struct ike_header *h,
                               const struct ike_payload_list *inner);

#endif
