/*
 * CREATE_CHILD_SA (RFC 7296 §1.3): rekeying a CHILD SA (§1.3.3, optional
 * PFS) and rekeying the IKE SA itself (§1.3.2, §2.18), in both roles.
 *
 * Simultaneous CHILD rekey (§2.8.1): when the peer's rekey of the CHILD SA
 * we are rekeying crosses ours, both new SAs come up; the one created with
 * the lowest of the four nonces is redundant and is deleted by the side
 * that created it, and the side that created the surviving SA deletes the
 * old one. A redundant SA of ours is never installed here: we only send
 * its DELETE. A crossing IKE SA rekey, or a CHILD rekey crossing an IKE
 * rekey, is answered with TEMPORARY_FAILURE (§2.25) and retried later.
 */
#include "ipsec/ike_sa_int.h"
#include "ipsec/ike_proposal.h"
#include "ipsec/ike_ts.h"
#include "ipsec/ipsec_log.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#define REKEY_RETRY_MS 1000

static void ike_rekey_reset(struct ike_sa *sa)
{
    if (sa->rekey.dh_live)
        ike_dh_free(&sa->rekey.dh);
    mbedtls_platform_zeroize(&sa->rekey, sizeof(sa->rekey));
}

static uint16_t ike_esp_pfs_group(const struct ike_sa *sa)
{
    return ike_proposal_first_dh(&ike_sa_cfg(sa)->esp_proposals);
}

/* Writes KE from a fresh key pair in sa->rekey.dh. */
static int ike_rekey_ke(struct ike_sa *sa, struct ike_writer *w, uint16_t group)
{
    uint8_t pub[IKE_DH_PUBLIC_MAX];
    size_t pub_len;

    sa->rekey.dh_live = true;
    if (ike_dh_init(&sa->rekey.dh, group) != 0 || ike_dh_public(&sa->rekey.dh, pub, sizeof(pub), &pub_len) != 0)
        return -1;
    ike_write_ke(w, group, pub, pub_len);
    return 0;
}

static int ike_rekey_gir(struct ike_sa *sa, const struct ike_payload_list *in, uint16_t group,
                         uint8_t *gir, size_t *gir_len)
{
    const struct ike_payload *p_ke = ike_payload_find(in, IKE_PL_KE);
    const uint8_t *ke;
    size_t ke_len;
    uint16_t g;

    *gir_len = 0;
    if (group == 0)
        return p_ke == NULL ? 0 : -1;
    if (p_ke == NULL || ike_ke_parse(p_ke->body, p_ke->len, &g, &ke, &ke_len) != 0 || g != group)
        return -1;
    return ike_dh_shared(&sa->rekey.dh, ke, ke_len, gir, IKE_DH_SECRET_MAX, gir_len) == 0 ? 0 : -1;
}

/* ---- initiating ---- */

int ike_sa_rekey_child(struct ike_sa *sa)
{
    const struct ike_child *cur = ike_kid_current(sa);
    struct ike_sa_payload esp;
    struct ike_ts_list tsi, tsr;
    struct ike_writer w;
    uint8_t spi[4], *msg;
    uint16_t pfs = ike_esp_pfs_group(sa);
    size_t len;

    sa->rekey_child_at = 0;
    if (cur == NULL || sa->state != IKE_S_ESTABLISHED)
        return -1;
    if (ike_sa_defer(sa, IKE_PEND_REKEY_CHILD))
        return 0;
    ike_rekey_reset(sa);
    sa->rekey.old_spi_in = cur->spi_in;
    sa->rekey.new_spi_in = sa->ctx->cb.spi_alloc(sa->ctx->cb.arg);
    if (ike_random(sa->rekey.nonce, IKE_NONCE_LEN) != 0)
        return -1;
    msg = ike_sk_begin(sa, &w, IKE_CREATE_CHILD_SA, false, sa->next_req_id);
    ike_put32(spi, cur->spi_in);
    ike_write_notify(&w, IKE_PROTO_ESP, spi, 4, IKE_N_REKEY_SA, NULL, 0);
    ike_write_notify(&w, 0, NULL, 0, IKE_N_USE_TRANSPORT_MODE, NULL, 0);
    ike_esp_proposals_with_spi(sa, sa->rekey.new_spi_in, &esp);
    ike_write_sa(&w, &esp);
    ike_write_nonce(&w, sa->rekey.nonce, IKE_NONCE_LEN);
    if (pfs != 0 && ike_rekey_ke(sa, &w, pfs) != 0) {
        free(msg);
        return -1;
    }
    /* TSi names the exchange initiator's side: us */
    ike_child_ts(sa, &tsi, &tsr);
    ike_write_ts(&w, IKE_PL_TSI, sa->initiator ? &tsi : &tsr);
    ike_write_ts(&w, IKE_PL_TSR, sa->initiator ? &tsr : &tsi);
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg == NULL)
        return -1;
    sa->next_req_id++;
    ike_request_start(sa, IKE_REQ_REKEY_CHILD, msg, len, NULL, 0);
    return 0;
}

int ike_sa_rekey_ike(struct ike_sa *sa)
{
    struct ike_sa_payload props = ike_sa_cfg(sa)->ike_proposals;
    struct ike_writer w;
    uint8_t *msg;
    size_t len;

    sa->rekey_ike_at = 0;
    if (sa->state != IKE_S_ESTABLISHED)
        return -1;
    if (ike_sa_defer(sa, IKE_PEND_REKEY_IKE))
        return 0;
    ike_rekey_reset(sa);
    do {
        if (ike_random(&sa->rekey.new_spi, 8) != 0 || ike_random(sa->rekey.nonce, IKE_NONCE_LEN) != 0)
            return -1;
    } while (sa->rekey.new_spi == 0);
    for (int i = 0; i < props.n; i++) {
        props.p[i].spi_size = 8;
        ike_put64(props.p[i].spi, sa->rekey.new_spi);
    }
    msg = ike_sk_begin(sa, &w, IKE_CREATE_CHILD_SA, false, sa->next_req_id);
    ike_write_sa(&w, &props);
    ike_write_nonce(&w, sa->rekey.nonce, IKE_NONCE_LEN);
    if (ike_rekey_ke(sa, &w, sa->dh_group) != 0) {
        free(msg);
        return -1;
    }
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg == NULL)
        return -1;
    sa->next_req_id++;
    ike_request_start(sa, IKE_REQ_REKEY_IKE, msg, len, NULL, 0);
    return 0;
}

/* ---- the new IKE SA of an IKE rekey ---- */

/* Creates the rekeyed IKE SA; CHILD SAs move to it. ni/nr are the nonces
 * of the CREATE_CHILD_SA exchange; we_initiated: we sent the request. */
static struct ike_sa *ike_rekey_ike_finish(struct ike_sa *old, const struct ike_proposal *chosen, bool we_initiated,
                                           uint64_t peer_spi, const uint8_t *gir, size_t gir_len,
                                           struct ike_buf ni, struct ike_buf nr)
{
    struct ike_sa *sa = ike_sa_new(old->ctx, old->peer, we_initiated);
    struct ike_suite suite = { 0 };
    const struct ike_transform *t;
    uint8_t seed[IKE_PRF_MAX], spis[16];
    size_t seed_len;
    int rc;

    if (sa == NULL)
        return NULL;
    if ((t = ike_proposal_get(chosen, IKE_TRANS_ENCR)) != NULL) {
        suite.encr = t->id;
        suite.encr_key_bits = t->key_bits;
    }
    if ((t = ike_proposal_get(chosen, IKE_TRANS_INTEG)) != NULL)
        suite.integ = t->id;
    if ((t = ike_proposal_get(chosen, IKE_TRANS_PRF)) != NULL)
        suite.prf = t->id;
    sa->spi_i = we_initiated ? old->rekey.new_spi : peer_spi;
    sa->spi_r = we_initiated ? peer_spi : old->rekey.new_spi;
    ike_put64(spis, sa->spi_i);
    ike_put64(spis + 8, sa->spi_r);
    rc = ike_skeyseed_rekey(old->keys.suite.prf, ike_buf_of(old->keys.sk_d, old->keys.d_len),
                            ike_buf_of(gir, gir_len), ni, nr, seed, sizeof(seed), &seed_len);
    if (rc == 0)
        rc = ike_sa_keys_derive(&sa->keys, &suite, ike_buf_of(seed, seed_len), ni, nr, spis, spis + 8);
    mbedtls_platform_zeroize(seed, sizeof(seed));
    if (rc != 0) {
        ike_sa_destroy(sa);
        return NULL;
    }
    sa->keys_live = true;
    sa->local_addr = old->local_addr;
    sa->peer_addr = old->peer_addr;
    sa->peer_port = old->peer_port;
    sa->ts_initiator = old->ts_initiator;
    sa->hold_out = old->hold_out;
    sa->dh_group = old->dh_group;
    sa->peer_id = old->peer_id;
    memcpy(sa->kids, old->kids, sizeof(sa->kids));
    sa->current_kid = old->current_kid;
    /* a CHILD rekey the old SA still owed (its lifetime, a retry, or an
     * ESP SA's "half the sequence space used" event) goes with the CHILD
     * SAs: the old SA only waits for its DELETE now */
    sa->rekey_child_at = old->rekey_child_at;
    if (old->pending & IKE_PEND_REKEY_CHILD)
        sa->rekey_child_at = ike_now(old->ctx) > 0 ? ike_now(old->ctx) : 1;
    memset(old->kids, 0, sizeof(old->kids));
    old->current_kid = -1;
    old->superseded = true;
    sa->state = IKE_S_ESTABLISHED;
    if (sa->ctx->cb.keylog != NULL)
        sa->ctx->cb.keylog(sa->ctx->cb.arg, sa, &sa->keys);
    ipsec_log(IPSEC_LOG_INFO, "event=ike_rekeyed old_spi_i=%016llx new_spi_i=%016llx new_spi_r=%016llx",
              (unsigned long long)old->spi_i, (unsigned long long)sa->spi_i, (unsigned long long)sa->spi_r);
    return sa;
}

static void ike_rekey_retry_later(struct ike_sa *sa, enum ike_req_kind kind)
{
    uint32_t r = 0;
    uint64_t at;

    (void)ike_random(&r, sizeof(r));
    at = ike_now(sa->ctx) + REKEY_RETRY_MS + r % REKEY_RETRY_MS;
    if (kind == IKE_REQ_REKEY_IKE)
        sa->rekey_ike_at = at;
    else
        sa->rekey_child_at = at;
}

/* ---- responses to our requests ---- */

/* Compare two nonces as unsigned big numbers of their bytes. */
static int ike_nonce_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);

    return c != 0 ? c : (al > bl) - (al < bl);
}

/* True if our rekey (nonces ni_a/nr_a) holds the lowest of the four. */
static bool ike_rekey_ours_is_redundant(const struct ike_sa *sa, const uint8_t *nr_a, size_t nr_a_len)
{
    const uint8_t *lo = sa->rekey.nonce;
    size_t lo_len = IKE_NONCE_LEN;
    bool ours = true;

    if (ike_nonce_cmp(nr_a, nr_a_len, lo, lo_len) < 0) {
        lo = nr_a;
        lo_len = nr_a_len;
    }
    if (ike_nonce_cmp(sa->rekey.peer_ni, sa->rekey.peer_ni_len, lo, lo_len) < 0) {
        lo = sa->rekey.peer_ni;
        lo_len = sa->rekey.peer_ni_len;
        ours = false;
    }
    if (ike_nonce_cmp(sa->rekey.our_nr, IKE_NONCE_LEN, lo, lo_len) < 0)
        ours = false;
    return ours;
}

/* The responder's selectors must lie inside what we proposed (TSi = us). */
static bool ike_child_rekey_ts_ok(const struct ike_sa *sa, const struct ike_payload_list *in)
{
    const struct ike_payload *p_tsi = ike_payload_find(in, IKE_PL_TSI), *p_tsr = ike_payload_find(in, IKE_PL_TSR);
    struct ike_ts_list tsi, tsr, my_i, my_r;

    if (p_tsi == NULL || p_tsr == NULL || ike_ts_parse(p_tsi->body, p_tsi->len, &tsi) != 0 ||
        ike_ts_parse(p_tsr->body, p_tsr->len, &tsr) != 0)
        return false;
    ike_child_ts(sa, &my_i, &my_r);
    return ike_ts_within(&tsi, sa->initiator ? &my_i : &my_r) && ike_ts_within(&tsr, sa->initiator ? &my_r : &my_i);
}

static void ike_child_rekey_response(struct ike_sa *sa, const struct ike_payload_list *in)
{
    const struct ike_payload *p_sa = ike_payload_find(in, IKE_PL_SA), *p_n = ike_payload_find(in, IKE_PL_NONCE);
    struct ike_sa_payload reply, ours;
    struct ike_proposal chosen;
    uint8_t gir[IKE_DH_SECRET_MAX];
    size_t gir_len;
    uint32_t old_spi_in = sa->rekey.old_spi_in;
    int rc = -1;

    ike_esp_proposals_with_spi(sa, sa->rekey.new_spi_in, &ours);
    if (p_sa != NULL && p_n != NULL && ike_sa_parse(p_sa->body, p_sa->len, &reply) == 0 &&
        ike_nonce_parse(p_n->body, p_n->len) == 0 &&
        ike_proposal_check_reply(&ours, &reply, IKE_PROTO_ESP, &chosen) == 0 && ike_child_rekey_ts_ok(sa, in) &&
        ike_notify_has(in, IKE_N_USE_TRANSPORT_MODE) &&
        ike_rekey_gir(sa, in, ike_esp_pfs_group(sa), gir, &gir_len) == 0) {
        if (sa->rekey.collided && ike_rekey_ours_is_redundant(sa, p_n->body, p_n->len)) {
            /* the peer's new SA survives; it deletes the old one */
            ipsec_log(IPSEC_LOG_INFO, "event=ike_rekey_collision redundant=ours spi=%08x", sa->rekey.new_spi_in);
            rc = ike_kid_delete_send(sa, sa->rekey.new_spi_in);
            old_spi_in = 0;
        } else {
            rc = ike_child_keys_install(sa, &chosen, sa->rekey.new_spi_in, ike_get32(chosen.spi),
                                        ike_buf_of(gir, gir_len), ike_buf_of(sa->rekey.nonce, IKE_NONCE_LEN),
                                        ike_buf_of(p_n->body, p_n->len), IKE_CHILD_WE_INITIATED);
        }
    }
    mbedtls_platform_zeroize(gir, sizeof(gir));
    ike_rekey_reset(sa);
    if (rc != 0) {
        ipsec_log(IPSEC_LOG_WARN, "event=ike_child_rekey_failed spi_i=%016llx", (unsigned long long)sa->spi_i);
        ike_rekey_retry_later(sa, IKE_REQ_REKEY_CHILD);
        return;
    }
    if (old_spi_in != 0 && ike_kid_find_in(sa, old_spi_in) >= 0)
        (void)ike_kid_delete_send(sa, old_spi_in);
    ike_sa_emit(sa, IKE_EV_CHILD_REKEYED);
    if (ike_sa_cfg(sa)->child_lifetime_s)
        sa->rekey_child_at = ike_now(sa->ctx) + (uint64_t)ike_sa_cfg(sa)->child_lifetime_s * 900;
}

static void ike_ike_rekey_response(struct ike_sa *sa, const struct ike_payload_list *in)
{
    const struct ike_payload *p_sa = ike_payload_find(in, IKE_PL_SA), *p_n = ike_payload_find(in, IKE_PL_NONCE);
    struct ike_sa_payload reply, ours = ike_sa_cfg(sa)->ike_proposals;
    struct ike_proposal chosen;
    uint8_t gir[IKE_DH_SECRET_MAX];
    size_t gir_len;
    struct ike_sa *fresh = NULL;

    for (int i = 0; i < ours.n; i++)
        ours.p[i].spi_size = 8;
    if (p_sa != NULL && p_n != NULL && ike_sa_parse(p_sa->body, p_sa->len, &reply) == 0 &&
        ike_nonce_parse(p_n->body, p_n->len) == 0 && reply.n == 1 && reply.p[0].spi_size == 8 &&
        ike_proposal_check_reply(&ours, &reply, IKE_PROTO_IKE, &chosen) == 0 &&
        ike_rekey_gir(sa, in, sa->dh_group, gir, &gir_len) == 0 && gir_len > 0)
        fresh = ike_rekey_ike_finish(sa, &chosen, true, ike_get64(reply.p[0].spi), gir, gir_len,
                                     ike_buf_of(sa->rekey.nonce, IKE_NONCE_LEN), ike_buf_of(p_n->body, p_n->len));
    mbedtls_platform_zeroize(gir, sizeof(gir));
    ike_rekey_reset(sa);
    if (fresh == NULL) {
        ipsec_log(IPSEC_LOG_WARN, "event=ike_rekey_failed spi_i=%016llx", (unsigned long long)sa->spi_i);
        ike_rekey_retry_later(sa, IKE_REQ_REKEY_IKE);
        return;
    }
    ike_sa_schedule_rekeys(fresh);
    fresh->rekeyed_from = sa;       /* for the event's handler only */
    ike_sa_emit(fresh, IKE_EV_IKE_REKEYED);
    fresh->rekeyed_from = NULL;
    (void)ike_sa_delete(sa);    /* the initiator of the rekey deletes the old SA */
}

void ike_child_handle_response(struct ike_sa *sa, const struct ike_header *h, const struct ike_payload_list *in)
{
    enum ike_req_kind kind = sa->req.kind;
    uint16_t err = ike_notify_first_error(in);

    (void)h;
    ike_request_clear(sa);
    if (err != 0) {
        ipsec_log(IPSEC_LOG_INFO, "event=ike_rekey_refused notify=%u kind=%s", err,
                  kind == IKE_REQ_REKEY_IKE ? "ike" : "child");
        ike_rekey_reset(sa);
        ike_rekey_retry_later(sa, kind);
        return;
    }
    if (kind == IKE_REQ_REKEY_IKE)
        ike_ike_rekey_response(sa, in);
    else
        ike_child_rekey_response(sa, in);
}

/* ---- requests from the peer ---- */

static void ike_child_respond_error(struct ike_sa *sa, uint32_t msg_id, uint16_t err, const uint8_t *data,
                                    size_t len)
{
    struct ike_writer w;
    uint8_t *msg = ike_sk_begin(sa, &w, IKE_CREATE_CHILD_SA, true, msg_id);
    size_t mlen;

    ike_write_notify(&w, 0, NULL, 0, err, data, len);
    msg = ike_sk_seal(sa, &w, msg, &mlen);
    if (msg != NULL)
        ike_response_send(sa, msg, mlen, msg_id);
}

/* The CHILD SA the peer's REKEY_SA names (by its inbound or ours). */
static int ike_child_rekey_target(const struct ike_sa *sa, const struct ike_payload_list *in)
{
    for (int i = 0; i < in->n; i++) {
        struct ike_notify n;

        if (in->pl[i].type == IKE_PL_NOTIFY && ike_notify_parse(in->pl[i].body, in->pl[i].len, &n) == 0 &&
            n.type == IKE_N_REKEY_SA && n.proto == IKE_PROTO_ESP && n.spi_size == 4) {
            uint32_t spi = ike_get32(n.spi);
            int idx = ike_kid_find_out(sa, spi);

            return idx >= 0 ? idx : ike_kid_find_in(sa, spi);
        }
    }
    return -2;  /* no REKEY_SA: a new additional CHILD SA */
}

/* Answers the peer's CHILD rekey; errors are returned as a notify type. */
static uint16_t ike_child_rekey_answer(struct ike_sa *sa, const struct ike_header *h,
                                       const struct ike_payload_list *in, const struct ike_sa_payload *theirs)
{
    const struct ike_payload *p_n = ike_payload_find(in, IKE_PL_NONCE), *p_tsi = ike_payload_find(in, IKE_PL_TSI),
                             *p_tsr = ike_payload_find(in, IKE_PL_TSR), *p_ke = ike_payload_find(in, IKE_PL_KE);
    struct ike_ts_list their_i, their_r, allow_i, allow_r, tsi, tsr;
    struct ike_proposal chosen;
    const struct ike_transform *dh;
    struct ike_dh mine;
    uint8_t nr[IKE_NONCE_LEN], gir[IKE_DH_SECRET_MAX], pub[IKE_DH_PUBLIC_MAX], *msg;
    size_t gir_len = 0, pub_len = 0, len;
    uint32_t spi_in;
    struct ike_writer w;
    int target = ike_child_rekey_target(sa, in), rc;

    if (target == -2)
        return IKE_N_NO_ADDITIONAL_SAS;
    if (target < 0)
        return IKE_N_CHILD_SA_NOT_FOUND;
    if (p_n == NULL || p_tsi == NULL || p_tsr == NULL || ike_nonce_parse(p_n->body, p_n->len) != 0 ||
        ike_ts_parse(p_tsi->body, p_tsi->len, &their_i) != 0 || ike_ts_parse(p_tsr->body, p_tsr->len, &their_r) != 0)
        return IKE_N_INVALID_SYNTAX;
    if (!ike_notify_has(in, IKE_N_USE_TRANSPORT_MODE) ||
        ike_proposal_select(&ike_sa_cfg(sa)->esp_proposals, theirs, IKE_PROTO_ESP, &chosen) != 0)
        return IKE_N_NO_PROPOSAL_CHOSEN;
    /* transport-mode selectors are the IKE endpoints, seen from the rekey's initiator (the peer) */
    ike_child_ts(sa, &allow_i, &allow_r);
    if (ike_ts_narrow(&their_i, sa->initiator ? &allow_r : &allow_i, &tsi) != 0 ||
        ike_ts_narrow(&their_r, sa->initiator ? &allow_i : &allow_r, &tsr) != 0)
        return IKE_N_TS_UNACCEPTABLE;
    dh = ike_proposal_get(&chosen, IKE_TRANS_DH);
    if (dh != NULL && dh->id != 0) {
        const uint8_t *ke;
        size_t ke_len;
        uint16_t g;

        if (p_ke == NULL || ike_ke_parse(p_ke->body, p_ke->len, &g, &ke, &ke_len) != 0 || g != dh->id)
            return IKE_N_INVALID_KE_PAYLOAD;
        rc = ike_dh_init(&mine, g);
        if (rc == 0)
            rc = ike_dh_public(&mine, pub, sizeof(pub), &pub_len);
        if (rc == 0)
            rc = ike_dh_shared(&mine, ke, ke_len, gir, sizeof(gir), &gir_len);
        ike_dh_free(&mine);
        if (rc != 0)
            return IKE_N_INVALID_SYNTAX;
    }
    if (ike_random(nr, sizeof(nr)) != 0)
        return IKE_N_TEMPORARY_FAILURE;
    spi_in = sa->ctx->cb.spi_alloc(sa->ctx->cb.arg);
    rc = ike_child_keys_install(sa, &chosen, spi_in, ike_get32(chosen.spi), ike_buf_of(gir, gir_len),
                                ike_buf_of(p_n->body, p_n->len), ike_buf_of(nr, sizeof(nr)), IKE_CHILD_PEER_INITIATED);
    mbedtls_platform_zeroize(gir, sizeof(gir));
    if (rc != 0)
        return IKE_N_NO_PROPOSAL_CHOSEN;
    if (sa->req.kind == IKE_REQ_REKEY_CHILD && sa->rekey.old_spi_in == sa->kids[target].spi_in) {
        sa->rekey.collided = true;
        memcpy(sa->rekey.peer_ni, p_n->body, p_n->len);
        sa->rekey.peer_ni_len = p_n->len;
        memcpy(sa->rekey.our_nr, nr, sizeof(nr));
    }
    msg = ike_sk_begin(sa, &w, IKE_CREATE_CHILD_SA, true, h->msg_id);
    {
        struct ike_sa_payload one = { .n = 1 };

        one.p[0] = chosen;
        ike_put32(one.p[0].spi, spi_in);
        ike_write_notify(&w, 0, NULL, 0, IKE_N_USE_TRANSPORT_MODE, NULL, 0);
        ike_write_sa(&w, &one);
    }
    ike_write_nonce(&w, nr, sizeof(nr));
    if (pub_len > 0)
        ike_write_ke(&w, dh->id, pub, pub_len);
    ike_write_ts(&w, IKE_PL_TSI, &tsi);
    ike_write_ts(&w, IKE_PL_TSR, &tsr);
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg == NULL)
        return IKE_N_TEMPORARY_FAILURE;
    ike_response_send(sa, msg, len, h->msg_id);
    ike_sa_emit(sa, IKE_EV_CHILD_REKEYED);
    return 0;
}

/* Answers the peer's IKE SA rekey (§1.3.2). */
static uint16_t ike_ike_rekey_answer(struct ike_sa *sa, const struct ike_header *h,
                                     const struct ike_payload_list *in, const struct ike_sa_payload *theirs)
{
    const struct ike_payload *p_n = ike_payload_find(in, IKE_PL_NONCE), *p_ke = ike_payload_find(in, IKE_PL_KE);
    struct ike_sa_payload ours = ike_sa_cfg(sa)->ike_proposals, one = { .n = 1 };
    struct ike_proposal chosen;
    const struct ike_transform *dh;
    uint8_t pub[IKE_DH_PUBLIC_MAX], gir[IKE_DH_SECRET_MAX], nr[IKE_NONCE_LEN], *msg;
    size_t pub_len, gir_len, len, ke_len;
    const uint8_t *ke;
    struct ike_sa *fresh;
    struct ike_writer w;
    uint16_t g;
    int rc;

    /* any request of ours still out (a probe, a CHILD DELETE) would have
     * its answer arrive on the old SA after the CHILD SAs moved */
    if (sa->req.kind != IKE_REQ_NONE)
        return IKE_N_TEMPORARY_FAILURE;
    for (int i = 0; i < ours.n; i++)
        ours.p[i].spi_size = 8;
    if (p_n == NULL || p_ke == NULL || ike_nonce_parse(p_n->body, p_n->len) != 0 ||
        ike_ke_parse(p_ke->body, p_ke->len, &g, &ke, &ke_len) != 0)
        return IKE_N_INVALID_SYNTAX;
    if (ike_proposal_select(&ours, theirs, IKE_PROTO_IKE, &chosen) != 0 || chosen.spi_size != 8)
        return IKE_N_NO_PROPOSAL_CHOSEN;
    dh = ike_proposal_get(&chosen, IKE_TRANS_DH);
    if (dh == NULL || dh->id != g)
        return IKE_N_INVALID_KE_PAYLOAD;
    ike_rekey_reset(sa);
    do {
        if (ike_random(&sa->rekey.new_spi, 8) != 0 || ike_random(nr, sizeof(nr)) != 0)
            return IKE_N_TEMPORARY_FAILURE;
    } while (sa->rekey.new_spi == 0);
    sa->rekey.dh_live = true;
    rc = ike_dh_init(&sa->rekey.dh, g);
    if (rc == 0)
        rc = ike_dh_public(&sa->rekey.dh, pub, sizeof(pub), &pub_len);
    if (rc == 0)
        rc = ike_dh_shared(&sa->rekey.dh, ke, ke_len, gir, sizeof(gir), &gir_len);
    fresh = rc == 0 ? ike_rekey_ike_finish(sa, &chosen, false, ike_get64(chosen.spi), gir, gir_len,
                                           ike_buf_of(p_n->body, p_n->len), ike_buf_of(nr, sizeof(nr)))
                    : NULL;
    mbedtls_platform_zeroize(gir, sizeof(gir));
    if (fresh == NULL) {
        ike_rekey_reset(sa);
        return IKE_N_INVALID_SYNTAX;
    }
    fresh->dh_group = g;
    one.p[0] = chosen;
    ike_put64(one.p[0].spi, sa->rekey.new_spi);
    msg = ike_sk_begin(sa, &w, IKE_CREATE_CHILD_SA, true, h->msg_id);
    ike_write_sa(&w, &one);
    ike_write_nonce(&w, nr, sizeof(nr));
    ike_write_ke(&w, g, pub, pub_len);
    ike_rekey_reset(sa);
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg != NULL)
        ike_response_send(sa, msg, len, h->msg_id);
    fresh->rekeyed_from = sa;       /* for the event's handler only */
    ike_sa_emit(fresh, IKE_EV_IKE_REKEYED);
    fresh->rekeyed_from = NULL;
    return 0;       /* the peer deletes the old IKE SA */
}

void ike_child_handle_request(struct ike_sa *sa, const struct ike_header *h, const struct ike_payload_list *in)
{
    const struct ike_payload *p_sa = ike_payload_find(in, IKE_PL_SA);
    struct ike_sa_payload theirs;
    uint8_t ke_group[2];
    uint16_t err;

    if (sa->state != IKE_S_ESTABLISHED) {
        ike_child_respond_error(sa, h->msg_id, IKE_N_TEMPORARY_FAILURE, NULL, 0);
        return;
    }
    if (p_sa == NULL || ike_sa_parse(p_sa->body, p_sa->len, &theirs) != 0) {
        ike_child_respond_error(sa, h->msg_id, IKE_N_INVALID_SYNTAX, NULL, 0);
        return;
    }
    if (theirs.p[0].proto == IKE_PROTO_IKE) {
        err = ike_ike_rekey_answer(sa, h, in, &theirs);
        ike_put16(ke_group, sa->dh_group);
    } else {
        if (sa->req.kind == IKE_REQ_REKEY_IKE)
            err = IKE_N_TEMPORARY_FAILURE;
        else
            err = ike_child_rekey_answer(sa, h, in, &theirs);
        ike_put16(ke_group, ike_esp_pfs_group(sa));
    }
    if (err != 0) {
        ipsec_log(IPSEC_LOG_INFO, "event=ike_create_child_refused notify=%u spi_i=%016llx", err,
                  (unsigned long long)sa->spi_i);
        ike_child_respond_error(sa, h->msg_id, err, err == IKE_N_INVALID_KE_PAYLOAD ? ke_group : NULL,
                                err == IKE_N_INVALID_KE_PAYLOAD ? 2 : 0);
    }
}
