/*
 * IKEv2 core: the context and its SAs, one function owning state changes,
 * message dispatch, Message ID windows (size 1), retransmission of our
 * requests and replay of our last response, SK sealing and opening.
 * The exchanges themselves live in ike_exch_*.c.
 */
#include "ipsec/ike_sa_int.h"
#include "ipsec/ipsec_log.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

static const char *const state_names[] = { "init_sent", "init_done", "auth_sent", "established",
                                           "deleting", "dead" };

const char *ike_state_name(enum ike_sa_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

const char *ike_event_name(enum ike_event ev)
{
    static const char *const names[] = { "established", "auth_failed", "failed", "probe_ok",
                                         "probe_timeout", "delete_received", "invalid_spi",
                                         "child_rekeyed", "ike_rekeyed", "sa_gone", "peer_alive" };

    return (unsigned)ev < sizeof(names) / sizeof(names[0]) ? names[ev] : "?";
}

uint64_t ike_now(const struct ike_ctx *ctx)
{
    return ctx->cb.now_ms(ctx->cb.arg);
}

struct ike_ctx *ike_ctx_new(const struct ike_callbacks *cb)
{
    struct ike_ctx *ctx = calloc(1, sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    ctx->cb = *cb;
    if (ike_guard_init(&ctx->guard) != 0) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void ike_sa_free(struct ike_sa *sa)
{
    ike_request_clear(sa);
    free(sa->last_resp);
    free(sa->init_req);
    free(sa->init_resp);
    if (sa->dh_live)
        ike_dh_free(&sa->dh);
    if (sa->rekey.dh_live)
        ike_dh_free(&sa->rekey.dh);
    ike_sa_keys_free(&sa->keys);
    mbedtls_platform_zeroize(sa, sizeof(*sa));
    free(sa);
}

/* Unlink and free the SAs destroyed while entry points ran. */
static void ike_ctx_reap(struct ike_ctx *ctx)
{
    struct ike_sa **pp = &ctx->sas;

    while (*pp != NULL) {
        struct ike_sa *sa = *pp;

        if (sa->doomed) {
            *pp = sa->next;
            ike_sa_free(sa);
        } else {
            pp = &sa->next;
        }
    }
}

void ike_ctx_enter(struct ike_ctx *ctx)
{
    ctx->depth++;
}

void ike_ctx_leave(struct ike_ctx *ctx)
{
    if (--ctx->depth == 0)
        ike_ctx_reap(ctx);
}

void ike_ctx_free(struct ike_ctx **ctxp)
{
    struct ike_ctx *ctx = *ctxp;

    if (ctx == NULL)
        return;
    ctx->depth = 0;
    ike_ctx_enter(ctx);
    for (struct ike_sa *sa = ctx->sas; sa != NULL; sa = sa->next)
        ike_sa_destroy(sa);
    ike_ctx_leave(ctx);
    mbedtls_platform_zeroize(ctx, sizeof(*ctx));
    free(ctx);
    *ctxp = NULL;
}

int ike_ctx_add_peer(struct ike_ctx *ctx, const struct ike_peer_config *cfg)
{
    if (ctx->n_peers >= IKE_MAX_PEERS)
        return -1;
    ctx->peers[ctx->n_peers] = *cfg;
    return ctx->n_peers++;
}

void ike_ctx_set_accepting(struct ike_ctx *ctx, bool accepting)
{
    ctx->refuse_new = !accepting;
}

void ike_ctx_set_cookie_threshold(struct ike_ctx *ctx, unsigned n)
{
    ctx->guard.lim.cookie_threshold = n;
}

void ike_ctx_set_limits(struct ike_ctx *ctx, const struct ike_limits *l)
{
    ctx->guard.lim = *l;
}

const struct ike_stats *ike_ctx_stats(const struct ike_ctx *ctx)
{
    return &ctx->stats;
}

const struct ike_peer_config *ike_sa_cfg(const struct ike_sa *sa)
{
    return &sa->ctx->peers[sa->peer];
}

struct ike_sa *ike_sa_new(struct ike_ctx *ctx, int peer, bool initiator)
{
    struct ike_sa *sa = calloc(1, sizeof(*sa));

    if (sa == NULL)
        return NULL;
    sa->ctx = ctx;
    sa->peer = peer;
    sa->initiator = initiator;
    sa->ts_initiator = initiator;
    sa->created_ms = ike_now(ctx);
    sa->current_kid = -1;
    sa->next = ctx->sas;
    ctx->sas = sa;
    return sa;
}

/* The one place SA states change; refuses transitions out of DEAD and
 * keeps the half-open count (ike_guard.c). */
void ike_sa_set_state(struct ike_sa *sa, enum ike_sa_state st)
{
    if (sa->state == IKE_S_DEAD || sa->state == st)
        return;
    ipsec_log(IPSEC_LOG_DEBUG, "event=ike_state spi_i=%016llx from=%s to=%s",
              (unsigned long long)sa->spi_i, ike_state_name(sa->state), ike_state_name(st));
    if (sa->state == IKE_S_INIT_DONE || st == IKE_S_INIT_DONE)
        ike_guard_half_open(sa->ctx, sa->peer_addr, st == IKE_S_INIT_DONE ? 1 : -1);
    sa->state = st;
}

void ike_sa_emit(struct ike_sa *sa, enum ike_event ev)
{
    if (sa->ctx->cb.event != NULL)
        sa->ctx->cb.event(sa->ctx->cb.arg, sa, ev);
}

void ike_request_clear(struct ike_sa *sa)
{
    free(sa->req.buf);
    memset(&sa->req, 0, sizeof(sa->req));
}

/* Idempotent; the memory goes when the outermost entry point leaves. */
void ike_sa_destroy(struct ike_sa *sa)
{
    struct ike_ctx *ctx = sa->ctx;

    if (sa->doomed)
        return;
    ike_ctx_enter(ctx);
    sa->doomed = true;
    ike_kid_remove_all(sa);
    ike_sa_set_state(sa, IKE_S_DEAD);
    ike_request_clear(sa);
    sa->pending = 0;
    ike_sa_emit(sa, IKE_EV_SA_GONE);
    ike_ctx_leave(ctx);
}

void ike_sa_fail(struct ike_sa *sa, enum ike_event ev, const char *why)
{
    ipsec_log(IPSEC_LOG_WARN, "event=ike_failed spi_i=%016llx state=%s reason=%s",
              (unsigned long long)sa->spi_i, ike_state_name(sa->state), why);
    ike_sa_emit(sa, ev);
    ike_sa_destroy(sa);
}

void ike_send_raw(struct ike_ctx *ctx, uint32_t src, uint32_t dst, uint16_t port,
                  const uint8_t *msg, size_t len)
{
    ctx->stats.tx++;
    ctx->cb.send(ctx->cb.arg, src, dst, port, msg, len);
}

static void ike_sa_send(struct ike_sa *sa, const uint8_t *msg, size_t len)
{
    if (sa->doomed)
        return;
    ike_send_raw(sa->ctx, sa->local_addr, sa->peer_addr, sa->peer_port, msg, len);
}

void ike_header_for(const struct ike_sa *sa, struct ike_header *h, uint8_t exchange,
                    bool response, uint32_t msg_id)
{
    memset(h, 0, sizeof(*h));
    h->spi_i = sa->spi_i;
    h->spi_r = sa->spi_r;
    h->exchange = exchange;
    h->flags = (uint8_t)((sa->initiator ? IKE_FLAG_INITIATOR : 0) | (response ? IKE_FLAG_RESPONSE : 0));
    h->msg_id = msg_id;
}

void ike_request_start(struct ike_sa *sa, enum ike_req_kind kind, uint8_t *buf, size_t len,
                       const unsigned *gaps, int n_gaps)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);

    if (sa->doomed) {
        free(buf);
        return;
    }
    ike_request_clear(sa);
    sa->req.kind = kind;
    sa->req.buf = buf;
    sa->req.len = len;
    sa->req.msg_id = ike_get32(buf + 20);
    if (gaps != NULL) {
        sa->req.n_gaps = n_gaps < IKE_PROBE_STEPS_MAX ? n_gaps : IKE_PROBE_STEPS_MAX;
        memcpy(sa->req.gaps, gaps, sizeof(unsigned) * (size_t)sa->req.n_gaps);
    } else {
        unsigned t = cfg->retransmit_ms ? cfg->retransmit_ms : 500;
        unsigned tries = cfg->retransmit_tries ? cfg->retransmit_tries : 5;

        sa->req.n_gaps = (int)(tries + 1 < IKE_PROBE_STEPS_MAX ? tries + 1 : IKE_PROBE_STEPS_MAX);
        for (int i = 0; i < sa->req.n_gaps; i++, t = t < 30000 ? t * 2 : t)
            sa->req.gaps[i] = t;
    }
    sa->req.step = 0;
    sa->req.sent_ms = ike_now(sa->ctx);
    sa->req.next_ms = sa->req.sent_ms + sa->req.gaps[0];
    sa->req.give_up_ms = sa->req.sent_ms;
    for (int i = 0; i < sa->req.n_gaps; i++)
        sa->req.give_up_ms += sa->req.gaps[i];
    ike_sa_send(sa, buf, len);
}

void ike_response_send(struct ike_sa *sa, uint8_t *buf, size_t len, uint32_t msg_id)
{
    if (sa->doomed) {
        free(buf);
        return;
    }
    free(sa->last_resp);
    sa->last_resp = buf;
    sa->last_resp_len = len;
    sa->last_resp_id = msg_id;
    sa->have_last_resp = true;
    ike_sa_send(sa, buf, len);
}

/* ---- SK helpers ---- */

uint8_t *ike_sk_begin(struct ike_sa *sa, struct ike_writer *w, uint8_t exchange, bool response,
                      uint32_t msg_id)
{
    uint8_t *msg = malloc(IKE_BUF_MAX);
    size_t off = ike_sk_plain_offset(&sa->keys, IKE_HDR_LEN);

    if (msg == NULL)
        return NULL;
    {
        struct ike_header h;
        struct ike_writer hw;

        ike_header_for(sa, &h, exchange, response, msg_id);
        ike_writer_init(&hw, msg, IKE_HDR_LEN, &h);
        msg[16] = IKE_PL_SK;
    }
    ike_writer_init_chain(w, msg + off, IKE_BUF_MAX - off - IKE_SK_TAIL_MAX);
    return msg;
}

uint8_t *ike_sk_seal(struct ike_sa *sa, struct ike_writer *w, uint8_t *msg, size_t *len_r)
{
    if (msg == NULL)
        return NULL;
    if (w->overflow) {
        free(msg);
        return NULL;
    }
    msg[IKE_HDR_LEN] = w->len ? w->first_np : IKE_PL_NONE;
    msg[IKE_HDR_LEN + 1] = 0;
    if (ike_sk_encrypt(&sa->keys, sa->initiator, msg, IKE_HDR_LEN, w->len, IKE_BUF_MAX, len_r) != 0) {
        free(msg);
        return NULL;
    }
    return msg;
}

int ike_sk_open(struct ike_sa *sa, uint8_t *msg, size_t len, const struct ike_payload_list *outer,
                struct ike_payload_list *inner)
{
    const struct ike_payload *sk;
    size_t off, plen;

    if (!sa->keys_live || outer->n == 0 || outer->pl[outer->n - 1].type != IKE_PL_SK)
        return -1;
    sk = &outer->pl[outer->n - 1];
    if (ike_sk_decrypt(&sa->keys, !sa->initiator, msg, len, IKE_HDR_LEN + sk->offset, &off, &plen) != 0)
        return -1;
    return ike_payloads_parse(sk->next, msg + off, plen, inner) == 0 ? 0 : -1;
}

/* ---- dispatch ---- */

static struct ike_sa *ike_ctx_find(const struct ike_ctx *ctx, uint64_t spi_i, uint64_t spi_r)
{
    for (struct ike_sa *sa = ctx->sas; sa != NULL; sa = sa->next)
        if (sa->spi_i == spi_i && sa->spi_r == spi_r && sa->state != IKE_S_DEAD)
            return sa;
    return NULL;
}

static struct ike_sa *ike_ctx_find_initiated(const struct ike_ctx *ctx, uint64_t spi_i)
{
    for (struct ike_sa *sa = ctx->sas; sa != NULL; sa = sa->next)
        if (sa->initiator && sa->spi_i == spi_i && sa->state != IKE_S_DEAD)
            return sa;
    return NULL;
}

static bool ike_has_invalid_spi_notify(const struct ike_payload_list *pl)
{
    for (int i = 0; i < pl->n; i++) {
        struct ike_notify n;

        if (pl->pl[i].type == IKE_PL_NOTIFY && ike_notify_parse(pl->pl[i].body, pl->pl[i].len, &n) == 0 &&
            n.type == IKE_N_INVALID_IKE_SPI)
            return true;
    }
    return false;
}

/* An unprotected INVALID_IKE_SPI names one of our SAs (sa: the one both
 * SPIs name, if any): a hint, never proof, and only when it comes from that
 * SA's peer address (anyone can still forge that address: the hint may
 * only start a probe). */
static void ike_input_unprotected(struct ike_ctx *ctx, struct ike_sa *sa, uint32_t src,
                                  const struct ike_header *h, const struct ike_payload_list *pl)
{
    if (h->exchange != IKE_INFORMATIONAL || !ike_has_invalid_spi_notify(pl)) {
        ctx->stats.dropped++;
        return;
    }
    /* both SPIs copied from our request (an SA the peer rekeyed has the
     * peer's SPI first), or only our initiator SPI */
    if (sa == NULL)
        sa = ike_ctx_find_initiated(ctx, h->spi_i);
    if (sa != NULL && sa->peer_addr != src) {
        ctx->stats.dropped++;
        return;
    }
    if (sa != NULL) {
        /* debug only: anyone can send these, one per packet (liveness
         * logs what it does about them) */
        ipsec_log(IPSEC_LOG_DEBUG, "event=ike_invalid_spi_hint spi_i=%016llx", (unsigned long long)sa->spi_i);
        ike_sa_emit(sa, IKE_EV_INVALID_SPI);
    }
}

static void ike_message_hash(const uint8_t *msg, size_t len, uint8_t out[32])
{
    (void)mbedtls_sha256_ret(msg, len, out, 0);
}

/* A retransmitted request (RFC 7296 §2.1) gets our cached response again,
 * without authentication: only when it is the very request we answered
 * (same bytes), to the authenticated peer port, and at most
 * IKE_RESENDS_PER_SEC a second. */
static void ike_resend_last_response(struct ike_sa *sa, const uint8_t *raw, size_t len)
{
    uint8_t hash[32];
    uint64_t now = ike_now(sa->ctx);

    ike_message_hash(raw, len, hash);
    if (memcmp(hash, sa->last_req_hash, sizeof(hash)) != 0) {
        sa->ctx->stats.dropped++;
        return;
    }
    if (now - sa->resend_window_ms >= 1000) {
        sa->resend_window_ms = now;
        sa->resends_in_window = 0;
    }
    if (sa->resends_in_window >= IKE_RESENDS_PER_SEC) {
        sa->ctx->stats.dropped++;
        return;
    }
    sa->resends_in_window++;
    ike_sa_send(sa, sa->last_resp, sa->last_resp_len);
}

/* RFC 7296 §2.23: the peer's port follows only an authenticated message
 * that is not a retransmission. */
static void ike_peer_port_update(struct ike_sa *sa, uint16_t sport)
{
    if (sa->peer_port == sport)
        return;
    ipsec_log(IPSEC_LOG_INFO, "event=ike_peer_port_changed spi_i=%016llx from=%u to=%u",
              (unsigned long long)sa->spi_i, sa->peer_port, sport);
    sa->peer_port = sport;
}

/* Something authenticated arrived from the peer. */
static void ike_sa_peer_heard(struct ike_sa *sa)
{
    ike_sa_emit(sa, IKE_EV_PEER_ALIVE);
    if (sa->probe_give_up_ms != 0 && !sa->doomed) {
        sa->probe_give_up_ms = 0;
        ike_sa_emit(sa, IKE_EV_PROBE_OK);
    }
}

static void ike_input_request(struct ike_sa *sa, const struct ike_header *h, uint16_t sport,
                              const uint8_t *raw, uint8_t *msg, size_t len,
                              const struct ike_payload_list *outer)
{
    struct ike_payload_list inner;

    if (sa->have_last_resp && h->msg_id == sa->last_resp_id && h->msg_id + 1 == sa->peer_next_id) {
        ike_resend_last_response(sa, raw, len);
        return;
    }
    if (h->msg_id != sa->peer_next_id || ike_sk_open(sa, msg, len, outer, &inner) != 0) {
        sa->ctx->stats.dropped++;
        return;
    }
    sa->peer_next_id++;
    ike_message_hash(raw, len, sa->last_req_hash);
    ike_peer_port_update(sa, sport);
    ike_sa_peer_heard(sa);
    if (sa->doomed)
        return;
    if (inner.unsupported_critical != 0) {
        ike_info_send_error(sa, h->msg_id, IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD);
        return;
    }
    switch (h->exchange) {
    case IKE_AUTH:
        if (!sa->initiator && sa->state == IKE_S_INIT_DONE)
            ike_auth_handle_request(sa, h, &inner);
        break;
    case IKE_INFORMATIONAL:
        ike_info_handle_request(sa, h, &inner);
        break;
    case IKE_CREATE_CHILD_SA:
        ike_child_handle_request(sa, h, &inner);
        break;
    default:
        ike_info_send_error(sa, h->msg_id, IKE_N_INVALID_SYNTAX);
        break;
    }
}

static void ike_input_response(struct ike_sa *sa, const struct ike_header *h, uint16_t sport,
                               uint8_t *msg, size_t len, const struct ike_payload_list *outer)
{
    struct ike_payload_list inner;

    if (sa->req.kind == IKE_REQ_NONE || h->msg_id != sa->req.msg_id ||
        ike_sk_open(sa, msg, len, outer, &inner) != 0) {
        sa->ctx->stats.dropped++;
        return;
    }
    ike_peer_port_update(sa, sport);
    ike_sa_peer_heard(sa);
    if (sa->doomed)
        return;
    switch (sa->req.kind) {
    case IKE_REQ_AUTH:
        ike_auth_handle_response(sa, h, &inner);
        break;
    case IKE_REQ_REKEY_CHILD:
    case IKE_REQ_REKEY_IKE:
        ike_child_handle_response(sa, h, &inner);
        break;
    default:
        ike_info_handle_response(sa, h, &inner);
        break;
    }
}

static void ike_ctx_input_locked(struct ike_ctx *ctx, uint32_t src, uint16_t sport, uint32_t dst,
                                 const uint8_t *data, size_t len)
{
    uint8_t msg[IKE_BUF_MAX];
    struct ike_header h;
    struct ike_payload_list pl;
    struct ike_sa *sa;
    bool response;

    ctx->stats.rx++;
    if (len > sizeof(msg) || ike_header_parse(data, len, &h) != 0 ||
        ike_payloads_parse(h.next_payload, data + IKE_HDR_LEN, len - IKE_HDR_LEN, &pl) != 0) {
        ctx->stats.dropped++;
        return;
    }
    memcpy(msg, data, len);     /* SK is decrypted in place */
    response = (h.flags & IKE_FLAG_RESPONSE) != 0;
    if (h.exchange == IKE_SA_INIT) {
        if (!response && h.spi_r == 0 && (h.flags & IKE_FLAG_INITIATOR) && !ctx->refuse_new)
            ike_init_handle_request(ctx, src, sport, dst, &h, msg, len, &pl);
        else if (response && (sa = ike_ctx_find_initiated(ctx, h.spi_i)) != NULL &&
                 sa->state == IKE_S_INIT_SENT)
            ike_init_handle_response(sa, &h, msg, len, &pl);
        return;
    }
    sa = ike_ctx_find(ctx, h.spi_i, h.spi_r);
    if (sa == NULL || pl.n == 0 || pl.pl[pl.n - 1].type != IKE_PL_SK) {
        if (!response && sa == NULL)
            ike_info_send_invalid_spi(ctx, src, sport, dst, &h);
        else
            ike_input_unprotected(ctx, sa, src, &h, &pl);
        return;
    }
    /* The I flag tells who sent it; our own reflected messages are dropped. */
    if (((h.flags & IKE_FLAG_INITIATOR) != 0) == sa->initiator) {
        ctx->stats.dropped++;
        return;
    }
    if (response)
        ike_input_response(sa, &h, sport, msg, len, &pl);
    else
        ike_input_request(sa, &h, sport, data, msg, len, &pl);
}

void ike_ctx_input(struct ike_ctx *ctx, uint32_t src, uint16_t sport, uint32_t dst,
                   const uint8_t *data, size_t len)
{
    ike_ctx_enter(ctx);
    ike_ctx_input_locked(ctx, src, sport, dst, data, len);
    ike_ctx_leave(ctx);
}

/* ---- timers ---- */

/* A responder SA not authenticated by then is forgotten. */
static uint64_t ike_sa_half_open_end(const struct ike_sa *sa)
{
    return sa->created_ms + sa->ctx->guard.lim.half_open_timeout_ms;
}

static uint64_t ike_sa_deadline(const struct ike_sa *sa)
{
    uint64_t d = UINT64_MAX;

    if (sa->req.kind != IKE_REQ_NONE) {
        d = sa->req.next_ms;
        if (sa->probe_give_up_ms != 0 && sa->probe_give_up_ms < d)
            d = sa->probe_give_up_ms;
        if (sa->probe_give_up_ms != 0 && sa->ride_step < sa->ride_n && sa->ride_next_ms < d)
            d = sa->ride_next_ms;
    } else if (sa->pending != 0 && sa->state == IKE_S_ESTABLISHED) {
        d = 0;      /* run at once */
    }
    if (sa->state == IKE_S_INIT_DONE && ike_sa_half_open_end(sa) < d)
        d = ike_sa_half_open_end(sa);
    if (sa->state == IKE_S_ESTABLISHED && !sa->hold_out && ike_kid_out_deadline(sa) < d)
        d = ike_kid_out_deadline(sa);
    if (sa->state == IKE_S_ESTABLISHED && sa->req.kind == IKE_REQ_NONE) {
        if (sa->rekey_child_at && sa->rekey_child_at < d)
            d = sa->rekey_child_at;
        if (sa->rekey_ike_at && sa->rekey_ike_at < d)
            d = sa->rekey_ike_at;
    }
    return d;
}

uint64_t ike_ctx_next_deadline(const struct ike_ctx *ctx)
{
    uint64_t d = UINT64_MAX;

    for (const struct ike_sa *sa = ctx->sas; sa != NULL; sa = sa->next) {
        uint64_t s = ike_sa_deadline(sa);

        if (s < d)
            d = s;
    }
    return d;
}

/* Retransmit or give up. Returns true if sa was destroyed. */
static bool ike_request_timeout(struct ike_sa *sa)
{
    struct ike_request *r = &sa->req;
    enum ike_req_kind kind = r->kind;
    uint64_t now = ike_now(sa->ctx);
    /* after a refusal the request keeps the plain ladder's give-up time */
    bool expired = r->n_refused > 0 && now >= r->give_up_ms;

    if (!expired && (r->refused_resend || ++r->step < r->n_gaps)) {
        r->refused_resend = false;
        sa->ctx->stats.retransmits++;
        r->sent_ms = now;
        r->next_ms = now + r->gaps[r->step];
        if (r->n_refused > 0 && r->next_ms > r->give_up_ms)
            r->next_ms = r->give_up_ms;
        ike_sa_send(sa, r->buf, r->len);
        return false;
    }
    ike_request_clear(sa);
    switch (kind) {
    case IKE_REQ_PROBE:
        ike_sa_emit(sa, IKE_EV_PROBE_TIMEOUT);     /* may destroy sa (deferred) */
        return sa->doomed;
    case IKE_REQ_REKEY_CHILD:
    case IKE_REQ_REKEY_IKE:
    case IKE_REQ_DELETE_CHILD:
        ike_sa_fail(sa, IKE_EV_FAILED, "peer_not_answering");
        return true;
    case IKE_REQ_DELETE_IKE:
        ike_sa_destroy(sa);
        return true;
    default:
        ike_sa_fail(sa, IKE_EV_FAILED, sa->init_error != 0 ? "timeout_after_error_notify" : "timeout");
        return true;
    }
}

int ike_sa_request_refused(struct ike_sa *sa)
{
    struct ike_request *r = &sa->req;
    uint64_t soon, now = ike_now(sa->ctx);

    if ((r->kind != IKE_REQ_INIT && r->kind != IKE_REQ_AUTH) || r->refused_resend)
        return -1;
    soon = r->sent_ms + r->gaps[0];
    if (soon < now)
        soon = now;
    if (soon >= r->next_ms || soon >= r->give_up_ms)
        return -1;
    r->next_ms = soon;
    r->step = 0;                /* the ladder starts over: the VIP is moving, not congested */
    r->refused_resend = true;
    r->n_refused++;
    return 0;
}

/* One waiting request goes out; a DELETE goes before anything else. */
static void ike_sa_run_pending(struct ike_sa *sa)
{
    unsigned p = sa->pending;

    if (p & IKE_PEND_DELETE) {
        sa->pending = 0;
        (void)ike_sa_delete(sa);
    } else if (p & IKE_PEND_REKEY_IKE) {
        sa->pending &= ~IKE_PEND_REKEY_IKE;
        (void)ike_sa_rekey_ike(sa);
    } else if (p & IKE_PEND_REKEY_CHILD) {
        sa->pending &= ~IKE_PEND_REKEY_CHILD;
        (void)ike_sa_rekey_child(sa);
    }
}

void ike_ctx_tick(struct ike_ctx *ctx)
{
    uint64_t now = ike_now(ctx);
    struct ike_sa *sa, *next;

    ike_ctx_enter(ctx);
    for (sa = ctx->sas; sa != NULL; sa = next) {
        next = sa->next;    /* stays valid: freeing waits for ike_ctx_leave */
        if (sa->doomed)
            continue;
        if (sa->probe_give_up_ms != 0 && sa->probe_give_up_ms <= now) {
            sa->probe_give_up_ms = 0;
            ike_sa_emit(sa, IKE_EV_PROBE_TIMEOUT);
            if (sa->doomed)
                continue;
        }
        if (sa->probe_give_up_ms != 0 && sa->req.kind != IKE_REQ_NONE && sa->ride_step < sa->ride_n &&
            sa->ride_next_ms <= now) {
            /* the riding probe's schedule: resend the request, its own ladder untouched */
            sa->ctx->stats.retransmits++;
            ike_sa_send(sa, sa->req.buf, sa->req.len);
            sa->ride_next_ms = now + sa->ride_gaps[++sa->ride_step];
        }
        if (sa->req.kind != IKE_REQ_NONE && sa->req.next_ms <= now) {
            if (ike_request_timeout(sa))
                continue;
        }
        if (sa->state == IKE_S_INIT_DONE && ike_sa_half_open_end(sa) <= now) {
            ike_sa_destroy(sa);     /* half-open SA never authenticated */
            continue;
        }
        if (sa->state == IKE_S_ESTABLISHED && !sa->hold_out && ike_kid_out_deadline(sa) <= now)
            ike_kid_activate_out(sa, now - IKE_OUT_DEFER_MS);
        if (sa->state == IKE_S_ESTABLISHED && sa->req.kind == IKE_REQ_NONE && sa->pending != 0) {
            ike_sa_run_pending(sa);
            continue;
        }
        if (sa->state == IKE_S_ESTABLISHED && sa->req.kind == IKE_REQ_NONE) {
            if (sa->rekey_ike_at && sa->rekey_ike_at <= now)
                (void)ike_sa_rekey_ike(sa);
            else if (sa->rekey_child_at && sa->rekey_child_at <= now)
                (void)ike_sa_rekey_child(sa);
        }
    }
    ike_ctx_leave(ctx);
}

/* ---- API ---- */

int ike_ctx_initiate(struct ike_ctx *ctx, int peer, bool initial_contact, struct ike_sa **sa_r)
{
    const struct ike_peer_config *cfg;
    struct ike_sa *sa;

    if (peer < 0 || peer >= ctx->n_peers || ctx->peers[peer].peer_addr == 0)
        return -1;
    cfg = &ctx->peers[peer];
    sa = ike_sa_new(ctx, peer, true);
    if (sa == NULL)
        return -1;
    sa->local_addr = cfg->local_addr;
    sa->peer_addr = cfg->peer_addr;
    sa->peer_port = cfg->port;
    sa->initial_contact = initial_contact;
    ike_ctx_enter(ctx);
    if (ike_init_request_send(sa) != 0 || sa->doomed) {
        ike_sa_destroy(sa);
        ike_ctx_leave(ctx);
        return -1;
    }
    ike_ctx_leave(ctx);
    if (sa_r != NULL)
        *sa_r = sa;
    return 0;
}

static int ike_sa_send_info(struct ike_sa *sa, enum ike_req_kind kind, const unsigned *gaps, int n_gaps)
{
    struct ike_writer w;
    uint8_t *msg;
    size_t len;

    if (sa->state != IKE_S_ESTABLISHED || sa->req.kind != IKE_REQ_NONE)
        return -1;
    msg = ike_sk_begin(sa, &w, IKE_INFORMATIONAL, false, sa->next_req_id);
    if (kind == IKE_REQ_DELETE_IKE)
        ike_write_delete(&w, IKE_PROTO_IKE, 0, NULL, 0);
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg == NULL)
        return -1;
    sa->next_req_id++;
    ike_request_start(sa, kind, msg, len, gaps, n_gaps);
    return 0;
}

bool ike_sa_defer(struct ike_sa *sa, unsigned what)
{
    if (sa->state != IKE_S_ESTABLISHED || sa->req.kind == IKE_REQ_NONE)
        return false;
    sa->pending |= what;
    return true;
}

/* With a request already out (window size 1), that request is the probe:
 * it is sent again now, and unless the peer authenticates something within
 * the probe's schedule, PROBE_TIMEOUT follows (a rekey or DELETE waiting
 * on its own slower retransmissions must not hide a dead peer). */
int ike_sa_probe(struct ike_sa *sa, const unsigned *schedule_ms, int n)
{
    uint64_t total = 0;

    if (n <= 0 || sa->doomed || sa->state != IKE_S_ESTABLISHED)
        return -1;
    if (sa->req.kind == IKE_REQ_PROBE || sa->probe_give_up_ms != 0)
        return 0;       /* one is already out */
    if (sa->req.kind == IKE_REQ_NONE)
        return ike_sa_send_info(sa, IKE_REQ_PROBE, schedule_ms, n);
    for (int i = 0; i < n; i++)
        total += schedule_ms[i];
    sa->probe_give_up_ms = ike_now(sa->ctx) + total;
    /* resend at the probe's gaps but the last (which is the give-up) */
    sa->ride_n = n - 1 < IKE_PROBE_STEPS_MAX - 1 ? n - 1 : IKE_PROBE_STEPS_MAX - 1;
    memcpy(sa->ride_gaps, schedule_ms, sizeof(unsigned) * (size_t)(sa->ride_n + 1));
    sa->ride_step = 0;
    sa->ride_next_ms = ike_now(sa->ctx) + schedule_ms[0];
    sa->ctx->stats.retransmits++;
    ike_sa_send(sa, sa->req.buf, sa->req.len);
    return 0;
}


int ike_sa_delete(struct ike_sa *sa)
{
    static const unsigned gaps[] = { 200, 400 };

    if (sa->doomed)
        return -1;
    if (sa->req.kind == IKE_REQ_PROBE)
        ike_request_clear(sa);
    else if (ike_sa_defer(sa, IKE_PEND_DELETE))
        return 0;
    if (ike_sa_send_info(sa, IKE_REQ_DELETE_IKE, gaps, 2) != 0) {
        ike_sa_destroy(sa);
        return -1;
    }
    ike_kid_remove_all(sa);
    ike_sa_set_state(sa, IKE_S_DELETING);
    return 0;
}

void ike_sa_abandon(struct ike_sa *sa)
{
    ike_sa_destroy(sa);
}

struct ike_sa *ike_sa_rekeyed_from(const struct ike_sa *sa)
{
    return sa->rekeyed_from;
}

void ike_sa_hold_outbound(struct ike_sa *sa)
{
    sa->hold_out = true;
}

void ike_sa_release_outbound(struct ike_sa *sa)
{
    sa->hold_out = false;
    if (sa->doomed)
        return;
    ike_ctx_enter(sa->ctx);
    ike_kid_activate_out(sa, UINT64_MAX);
    ike_ctx_leave(sa->ctx);
}

enum ike_sa_state ike_sa_state(const struct ike_sa *sa) { return sa->state; }
bool ike_sa_is_initiator(const struct ike_sa *sa) { return sa->initiator; }
uint64_t ike_sa_spi_i(const struct ike_sa *sa) { return sa->spi_i; }
uint64_t ike_sa_spi_r(const struct ike_sa *sa) { return sa->spi_r; }
uint32_t ike_sa_peer_addr(const struct ike_sa *sa) { return sa->peer_addr; }
uint16_t ike_sa_peer_port(const struct ike_sa *sa) { return sa->peer_port; }
uint64_t ike_sa_created_ms(const struct ike_sa *sa) { return sa->created_ms; }
int ike_sa_peer_index(const struct ike_sa *sa) { return sa->peer; }
const struct ike_identity *ike_sa_peer_identity(const struct ike_sa *sa) { return &sa->peer_id; }

bool ike_sa_child_spis(const struct ike_sa *sa, uint32_t *spi_in, uint32_t *spi_out)
{
    const struct ike_child *c = ike_kid_current(sa);

    if (c == NULL)
        return false;
    *spi_in = c->spi_in;
    *spi_out = c->spi_out;
    return true;
}

int ike_ctx_count_sas(const struct ike_ctx *ctx)
{
    int n = 0;

    for (const struct ike_sa *sa = ctx->sas; sa != NULL; sa = sa->next)
        n += !sa->doomed;
    return n;
}

int ike_ctx_delete_all(struct ike_ctx *ctx)
{
    struct ike_sa *sa, *next;
    int n = 0;

    ike_ctx_enter(ctx);
    for (sa = ctx->sas; sa != NULL; sa = next) {
        next = sa->next;
        if (sa->doomed)
            continue;
        if (sa->state == IKE_S_ESTABLISHED) {
            n++;
            (void)ike_sa_delete(sa);
        } else if (sa->state != IKE_S_DELETING) {
            ike_sa_destroy(sa);     /* half-open: nothing to tell the peer */
        }
    }
    ike_ctx_leave(ctx);
    return n;
}

int ike_ctx_count_established(const struct ike_ctx *ctx, int peer)
{
    int n = 0;

    for (const struct ike_sa *sa = ctx->sas; sa != NULL; sa = sa->next)
        n += sa->peer == peer && sa->state == IKE_S_ESTABLISHED;
    return n;
}

struct ike_sa *ike_ctx_find_by_peer(const struct ike_ctx *ctx, uint32_t peer_addr)
{
    for (struct ike_sa *sa = ctx->sas; sa != NULL; sa = sa->next)
        if (sa->peer_addr == peer_addr && sa->state == IKE_S_ESTABLISHED)
            return sa;
    return NULL;
}
