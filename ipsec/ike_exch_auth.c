/*
 * IKE_AUTH (RFC 7296 §1.2, §2.15): identities, PSK authentication,
 * INITIAL_CONTACT (§2.4) and the first CHILD SA in transport mode
 * (USE_TRANSPORT_MODE, §1.3.1) with traffic selector narrowing (§2.9).
 */
#include "ipsec/ike_sa_int.h"
#include "ipsec/ike_cert.h"
#include "ipsec/ike_proposal.h"
#include "ipsec/ike_ts.h"
#include "ipsec/ipsec_log.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#define ID_BODY_MAX (4 + IKE_ID_MAX)

/* The ID payload body as AUTH covers it: type, 3 reserved bytes, data. */
static size_t ike_id_body(const struct ike_identity *id, uint8_t *out)
{
    out[0] = id->type;
    out[1] = out[2] = out[3] = 0;
    memcpy(out + 4, id->data, id->len);
    return 4 + id->len;
}

/* An identity for a log line: dotted IPv4, or the bytes with anything
 * unprintable (or a space, '"', '=') as '?', so a peer's ID cannot forge
 * log fields or lines. */
static void ike_id_format(const struct ike_identity *id, char *out, size_t cap)
{
    size_t i;

    if (id->type == IKE_ID_IPV4_ADDR && id->len == 4 && inet_ntop(AF_INET, id->data, out, (socklen_t)cap) != NULL)
        return;
    for (i = 0; i < id->len && i + 1 < cap; i++)
        out[i] = id->data[i] > ' ' && id->data[i] < 0x7f && id->data[i] != '"' && id->data[i] != '=' ? (char)id->data[i]
                                                                                                      : '?';
    out[i] = '\0';
}

static bool ike_id_equal(const struct ike_identity *id, uint8_t type, const uint8_t *data, size_t len)
{
    return id->type == type && id->len == len && memcmp(id->data, data, len) == 0;
}

void ike_child_ts(const struct ike_sa *sa, struct ike_ts_list *tsi, struct ike_ts_list *tsr)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);
    uint32_t init_addr = ntohl(sa->initiator ? sa->local_addr : sa->peer_addr);
    uint32_t resp_addr = ntohl(sa->initiator ? sa->peer_addr : sa->local_addr);

    /* the ports belong to the server side (the peer of whoever ran IKE_AUTH as
     * initiator), whatever the IKE roles are after a rekey */
    bool ports_on_r = sa->initiator == sa->ts_initiator;

    ike_ts_for_host(tsi, init_addr, ports_on_r ? NULL : cfg->ports, ports_on_r ? 0 : cfg->n_ports);
    ike_ts_for_host(tsr, resp_addr, ports_on_r ? cfg->ports : NULL, ports_on_r ? cfg->n_ports : 0);
}

void ike_esp_proposals_with_spi(const struct ike_sa *sa, uint32_t spi, struct ike_sa_payload *out)
{
    *out = ike_sa_cfg(sa)->esp_proposals;
    for (int i = 0; i < out->n; i++) {
        out->p[i].proto = IKE_PROTO_ESP;
        out->p[i].spi_size = 4;
        ike_put32(out->p[i].spi, spi);
    }
}

int ike_child_keys_install(struct ike_sa *sa, const struct ike_proposal *chosen, uint32_t spi_in,
                           uint32_t spi_out, struct ike_buf gir, struct ike_buf ni, struct ike_buf nr,
                           enum ike_child_origin origin)
{
    bool exch_initiator = origin == IKE_CHILD_FROM_AUTH ? sa->initiator : origin == IKE_CHILD_WE_INITIATED;
    const struct ike_transform *enc = ike_proposal_get(chosen, IKE_TRANS_ENCR);
    const struct ike_transform *esn = ike_proposal_get(chosen, IKE_TRANS_ESN);
    struct ike_suite suite = { 0 };
    struct ike_child_keys ck;
    struct ike_child_install inst;
    int rc;

    if (enc == NULL)
        return -1;
    suite.encr = enc->id;
    suite.encr_key_bits = enc->key_bits;
    if (ike_suite_check(&suite, true) != 0 ||
        ike_child_keys_derive(&ck, &sa->keys, &suite, gir, ni, nr) != 0)
        return -1;
    memset(&inst, 0, sizeof(inst));
    inst.spi_in = spi_in;
    inst.spi_out = spi_out;
    inst.encr = enc->id;
    inst.key_bits = enc->key_bits ? enc->key_bits : 256;
    inst.esn = esn != NULL && esn->id == IKE_ESN_YES;
    /* "i" keys protect traffic from the exchange's initiator */
    inst.key_out = exch_initiator ? ck.encr_i : ck.encr_r;
    inst.key_in = exch_initiator ? ck.encr_r : ck.encr_i;
    inst.key_len = ck.encr_len;
    inst.local_addr = sa->local_addr;
    inst.peer_addr = sa->peer_addr;
    inst.lifetime_s = ike_sa_cfg(sa)->child_lifetime_s;
    inst.defer_out = (origin == IKE_CHILD_PEER_INITIATED || sa->hold_out) && sa->ctx->cb.child_activate_out != NULL;
    rc = sa->ctx->cb.child_install(sa->ctx->cb.arg, sa, &inst);
    ike_child_keys_free(&ck);
    if (rc != 0)
        return -1;
    {
        struct ike_child c = { true, spi_in, spi_out, inst.encr, inst.key_bits, inst.esn, ike_now(sa->ctx),
                               inst.defer_out };

        if (ike_kid_add(sa, &c) < 0) {
            sa->ctx->cb.child_remove(sa->ctx->cb.arg, sa, spi_in, spi_out);
            return -1;
        }
    }
    return 0;
}

void ike_sa_schedule_rekeys(struct ike_sa *sa)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);
    uint64_t now = ike_now(sa->ctx);
    uint32_t jitter;

    /* Only the original initiator rekeys on its own timer; a little
     * jitter keeps many front-ends from rekeying in the same instant. */
    if (!sa->initiator)
        return;
    (void)ike_random(&jitter, sizeof(jitter));
    if (cfg->child_lifetime_s) {
        uint64_t at = now + (uint64_t)cfg->child_lifetime_s * 900 + jitter % 100;

        /* an IKE rekey's new SA keeps an earlier CHILD rekey it inherited */
        if (sa->rekey_child_at == 0 || at < sa->rekey_child_at)
            sa->rekey_child_at = at;
    }
    if (cfg->ike_lifetime_s)
        sa->rekey_ike_at = now + (uint64_t)cfg->ike_lifetime_s * 900 + jitter % 100;
}

static void ike_sa_established(struct ike_sa *sa)
{
    free(sa->init_req);
    free(sa->init_resp);
    sa->init_req = sa->init_resp = NULL;
    ike_sa_set_state(sa, IKE_S_ESTABLISHED);
    ike_sa_schedule_rekeys(sa);
    ipsec_log(IPSEC_LOG_INFO, "event=ike_established spi_i=%016llx spi_r=%016llx role=%s child_in=%08x child_out=%08x",
              (unsigned long long)sa->spi_i, (unsigned long long)sa->spi_r,
              sa->initiator ? "initiator" : "responder", ike_kid_current(sa) ? ike_kid_current(sa)->spi_in : 0,
              ike_kid_current(sa) ? ike_kid_current(sa)->spi_out : 0);
    ike_sa_emit(sa, IKE_EV_ESTABLISHED);
}

/* Our AUTH payload data: PSK MAC or RFC 7427 signature over the signed
 * octets (§2.15); by_initiator says whose AUTH it is. */
static int ike_auth_make(struct ike_sa *sa, bool by_initiator, const uint8_t *id_body, size_t id_len,
                         uint8_t *method, uint8_t *out, size_t cap, size_t *len_r)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);
    struct ike_buf real = by_initiator ? ike_buf_of(sa->init_req, sa->init_req_len)
                                       : ike_buf_of(sa->init_resp, sa->init_resp_len);
    struct ike_buf nonce = by_initiator ? ike_buf_of(sa->nr, sa->nr_len) : ike_buf_of(sa->ni, sa->ni_len);
    uint8_t *octets;
    size_t olen;
    int rc;

    if (cfg->auth == IKE_PEER_AUTH_PSK) {
        *method = IKE_AUTH_PSK;
        return ike_auth_psk_compute(&sa->keys, by_initiator, cfg->psk, cfg->psk_len, real, nonce,
                                    ike_buf_of(id_body, id_len), out, cap, len_r);
    }
    *method = IKE_AUTH_DIGITAL_SIG;
    olen = real.len + nonce.len + IKE_PRF_MAX;
    octets = malloc(olen);
    if (octets == NULL)
        return -1;
    rc = ike_auth_signed_octets(&sa->keys, by_initiator, real, nonce, ike_buf_of(id_body, id_len), octets, olen,
                                &olen);
    if (rc == 0)
        rc = ike_cert_sign(cfg->cert, octets, olen, out, cap, len_r);
    free(octets);
    return rc;
}

/* ID, then with certificates CERT (and CERTREQ in a request). */
static void ike_auth_write_id(struct ike_sa *sa, struct ike_writer *w, uint8_t id_payload)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);

    ike_write_id(w, id_payload, cfg->local_id.type, cfg->local_id.data, cfg->local_id.len);
    if (cfg->auth == IKE_PEER_AUTH_CERT) {
        const uint8_t *der;
        size_t der_len;

        ike_cert_own_der(cfg->cert, &der, &der_len);
        ike_write_cert(w, IKE_PL_CERT, IKE_CERT_ENCODING_X509_SIG, der, der_len);
    }
}

/* ---- initiator ---- */

int ike_auth_request_send(struct ike_sa *sa)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);
    uint8_t id_body[ID_BODY_MAX], auth[IKE_SIG_MAX], *msg, method;
    struct ike_sa_payload esp;
    struct ike_ts_list tsi, tsr;
    struct ike_writer w;
    size_t id_len, auth_len, len;

    sa->child_spi_pending = sa->ctx->cb.spi_alloc(sa->ctx->cb.arg);
    id_len = ike_id_body(&cfg->local_id, id_body);
    if (ike_auth_make(sa, true, id_body, id_len, &method, auth, sizeof(auth), &auth_len) != 0)
        return -1;
    msg = ike_sk_begin(sa, &w, IKE_AUTH, false, sa->next_req_id);
    ike_auth_write_id(sa, &w, IKE_PL_IDI);
    if (sa->initial_contact)
        ike_write_notify(&w, 0, NULL, 0, IKE_N_INITIAL_CONTACT, NULL, 0);
    if (cfg->auth == IKE_PEER_AUTH_CERT)
        ike_write_cert(&w, IKE_PL_CERTREQ, IKE_CERT_ENCODING_X509_SIG, cfg->cert->ca_keyid, sizeof(cfg->cert->ca_keyid));
    ike_write_id(&w, IKE_PL_IDR, cfg->peer_id.type, cfg->peer_id.data, cfg->peer_id.len);
    ike_write_auth(&w, method, auth, auth_len);
    ike_write_notify(&w, 0, NULL, 0, IKE_N_USE_TRANSPORT_MODE, NULL, 0);
    ike_esp_proposals_with_spi(sa, sa->child_spi_pending, &esp);
    ike_write_sa(&w, &esp);
    ike_child_ts(sa, &tsi, &tsr);
    ike_write_ts(&w, IKE_PL_TSI, &tsi);
    ike_write_ts(&w, IKE_PL_TSR, &tsr);
    mbedtls_platform_zeroize(auth, sizeof(auth));
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg == NULL)
        return -1;
    sa->next_req_id++;
    ike_sa_set_state(sa, IKE_S_AUTH_SENT);
    ike_request_start(sa, IKE_REQ_AUTH, msg, len, NULL, 0);
    return 0;
}

/* First error notify in a message, or 0. */
uint16_t ike_notify_first_error(const struct ike_payload_list *pl)
{
    for (int i = 0; i < pl->n; i++) {
        struct ike_notify n;

        if (pl->pl[i].type == IKE_PL_NOTIFY && ike_notify_parse(pl->pl[i].body, pl->pl[i].len, &n) == 0 &&
            n.type <= IKE_N_ERROR_MAX)
            return n.type;
    }
    return 0;
}

bool ike_notify_has(const struct ike_payload_list *pl, uint16_t type)
{
    for (int i = 0; i < pl->n; i++) {
        struct ike_notify n;

        if (pl->pl[i].type == IKE_PL_NOTIFY && ike_notify_parse(pl->pl[i].body, pl->pl[i].len, &n) == 0 &&
            n.type == type)
            return true;
    }
    return false;
}

/* The peer's CERT and RFC 7427 signature over its signed octets. */
static int ike_auth_verify_cert(struct ike_sa *sa, const struct ike_payload_list *in, bool sender_initiator,
                                const struct ike_payload *p_id, const uint8_t *id, size_t id_len,
                                const uint8_t *auth, size_t auth_len)
{
    const struct ike_payload *p_cert = ike_payload_find(in, IKE_PL_CERT);
    struct ike_buf real = sender_initiator ? ike_buf_of(sa->init_req, sa->init_req_len)
                                           : ike_buf_of(sa->init_resp, sa->init_resp_len);
    struct ike_buf nonce = sender_initiator ? ike_buf_of(sa->nr, sa->nr_len) : ike_buf_of(sa->ni, sa->ni_len);
    const uint8_t *der;
    const char *why = "no_certificate";
    uint8_t enc, *octets;
    size_t der_len, olen = real.len + nonce.len + IKE_PRF_MAX;
    int rc = -1;

    octets = malloc(olen);
    if (octets != NULL && p_cert != NULL && ike_cert_parse(p_cert->body, p_cert->len, &enc, &der, &der_len) == 0 &&
        enc == IKE_CERT_ENCODING_X509_SIG &&
        ike_auth_signed_octets(&sa->keys, sender_initiator, real, nonce, ike_buf_of(p_id->body, p_id->len), octets,
                               olen, &olen) == 0)
        rc = ike_cert_verify_peer(ike_sa_cfg(sa)->cert, der, der_len, id, id_len, auth, auth_len, octets, olen, &why);
    if (rc != 0)
        ipsec_log(IPSEC_LOG_WARN, "event=ike_cert_auth_failed spi_i=%016llx reason=%s", (unsigned long long)sa->spi_i,
                  why);
    free(octets);
    return rc;
}

/* Verify the peer's ID and AUTH payloads. sender_initiator: whose AUTH. */
static int ike_auth_verify_peer(struct ike_sa *sa, const struct ike_payload_list *in, bool sender_initiator)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);
    const struct ike_payload *p_id = ike_payload_find(in, sender_initiator ? IKE_PL_IDI : IKE_PL_IDR);
    const struct ike_payload *p_auth = ike_payload_find(in, IKE_PL_AUTH);
    const uint8_t *id, *auth;
    size_t id_len, auth_len;
    uint8_t id_type, method;

    if (p_id == NULL || p_auth == NULL || ike_id_parse(p_id->body, p_id->len, &id_type, &id, &id_len) != 0 ||
        ike_auth_parse(p_auth->body, p_auth->len, &method, &auth, &auth_len) != 0)
        return -1;
    if (!ike_id_equal(&cfg->peer_id, id_type, id, id_len))
        return -1;
    if (cfg->auth == IKE_PEER_AUTH_CERT) {
        if (method != IKE_AUTH_DIGITAL_SIG || ike_auth_verify_cert(sa, in, sender_initiator, p_id, id, id_len, auth,
                                                                   auth_len) != 0)
            return -1;
    } else if (method != IKE_AUTH_PSK ||
               ike_auth_psk_verify(&sa->keys, sender_initiator, cfg->psk, cfg->psk_len,
                                   sender_initiator ? ike_buf_of(sa->init_req, sa->init_req_len)
                                                    : ike_buf_of(sa->init_resp, sa->init_resp_len),
                                   sender_initiator ? ike_buf_of(sa->nr, sa->nr_len) : ike_buf_of(sa->ni, sa->ni_len),
                                   ike_buf_of(p_id->body, p_id->len), auth, auth_len) != 0) {
        return -1;
    }
    sa->peer_id.type = id_type;
    memcpy(sa->peer_id.data, id, id_len);
    sa->peer_id.len = id_len;
    {
        char shown[IKE_ID_MAX + 1];

        ike_id_format(&sa->peer_id, shown, sizeof(shown));
        ipsec_log(IPSEC_LOG_INFO, "event=ike_peer_authenticated spi_i=%016llx peer_id=%s method=%s",
                  (unsigned long long)sa->spi_i, shown, cfg->auth == IKE_PEER_AUTH_CERT ? "cert" : "psk");
    }
    return 0;
}

/* The CHILD SA part of an IKE_AUTH response we received. */
static int ike_auth_child_from_response(struct ike_sa *sa, const struct ike_payload_list *in)
{
    const struct ike_payload *p_sa = ike_payload_find(in, IKE_PL_SA), *p_tsi = ike_payload_find(in, IKE_PL_TSI),
                             *p_tsr = ike_payload_find(in, IKE_PL_TSR);
    struct ike_sa_payload reply, ours;
    struct ike_proposal chosen;
    struct ike_ts_list tsi, tsr, my_tsi, my_tsr;

    if (ike_notify_first_error(in) != 0 || !ike_notify_has(in, IKE_N_USE_TRANSPORT_MODE) || p_sa == NULL ||
        p_tsi == NULL || p_tsr == NULL || ike_sa_parse(p_sa->body, p_sa->len, &reply) != 0 ||
        ike_ts_parse(p_tsi->body, p_tsi->len, &tsi) != 0 || ike_ts_parse(p_tsr->body, p_tsr->len, &tsr) != 0)
        return -1;
    ike_esp_proposals_with_spi(sa, sa->child_spi_pending, &ours);
    ike_child_ts(sa, &my_tsi, &my_tsr);
    if (ike_proposal_check_reply(&ours, &reply, IKE_PROTO_ESP, &chosen) != 0 ||
        !ike_ts_within(&tsi, &my_tsi) || !ike_ts_within(&tsr, &my_tsr))
        return -1;
    return ike_child_keys_install(sa, &chosen, sa->child_spi_pending, ike_get32(chosen.spi), ike_buf_of(NULL, 0),
                                  ike_buf_of(sa->ni, sa->ni_len), ike_buf_of(sa->nr, sa->nr_len), IKE_CHILD_FROM_AUTH);
}

void ike_auth_handle_response(struct ike_sa *sa, const struct ike_header *h, const struct ike_payload_list *in)
{
    (void)h;
    ike_request_clear(sa);
    if (ike_notify_has(in, IKE_N_AUTHENTICATION_FAILED)) {
        sa->ctx->stats.auth_failures++;
        ike_sa_fail(sa, IKE_EV_AUTH_FAILED, "peer_refused_our_auth");
        return;
    }
    if (ike_auth_verify_peer(sa, in, false) != 0) {
        sa->ctx->stats.auth_failures++;
        ike_sa_fail(sa, IKE_EV_AUTH_FAILED, "peer_auth_invalid");
        return;
    }
    ike_sa_set_state(sa, IKE_S_ESTABLISHED);
    if (ike_auth_child_from_response(sa, in) != 0) {
        ipsec_log(IPSEC_LOG_WARN, "event=ike_child_refused spi_i=%016llx notify=%u",
                  (unsigned long long)sa->spi_i, ike_notify_first_error(in));
        ike_sa_emit(sa, IKE_EV_FAILED);
        (void)ike_sa_delete(sa);
        return;
    }
    ike_sa_established(sa);
}

/* ---- responder ---- */

/* Pick the peer config whose peer_id matches IDi (several front-end
 * identities may share one address). */
static void ike_auth_pick_peer(struct ike_sa *sa, const struct ike_payload_list *in)
{
    const struct ike_payload *p_id = ike_payload_find(in, IKE_PL_IDI);
    const uint8_t *id;
    size_t id_len;
    uint8_t type;

    if (p_id == NULL || ike_id_parse(p_id->body, p_id->len, &type, &id, &id_len) != 0)
        return;
    for (int i = 0; i < sa->ctx->n_peers; i++) {
        const struct ike_peer_config *c = &sa->ctx->peers[i];

        if (ike_id_equal(&c->peer_id, type, id, id_len) && (c->local_addr == 0 || c->local_addr == sa->local_addr) &&
            (c->peer_addr == 0 || c->peer_addr == sa->peer_addr)) {
            sa->peer = i;
            return;
        }
    }
}

/* Two IKE SAs of one identity from different addresses: two front-ends
 * configured with the same identity, each evicting the other's SA with
 * its INITIAL_CONTACT (RFC 7296 2.4) at every start or failover. */
static void ike_auth_identity_collision(struct ike_sa *sa, const struct ike_sa *old)
{
    char id[IKE_ID_MAX + 1], was[INET_ADDRSTRLEN], now[INET_ADDRSTRLEN];

    sa->ctx->stats.identity_collisions++;
    ike_id_format(&sa->peer_id, id, sizeof(id));
    inet_ntop(AF_INET, &old->peer_addr, was, sizeof(was));
    inet_ntop(AF_INET, &sa->peer_addr, now, sizeof(now));
    ipsec_log(IPSEC_LOG_WARN, "event=ike_identity_collision id=%s old_peer=%s new_peer=%s action=old_sa_deleted "
              "hint=\"each frontend needs its own local_id\"", id, was, now);
}

static void ike_auth_initial_contact(struct ike_sa *sa)
{
    struct ike_sa *o, *next;

    for (o = sa->ctx->sas; o != NULL; o = next) {
        next = o->next;
        if (o != sa && !o->initiator && o->state == IKE_S_ESTABLISHED && o->peer_id.len == sa->peer_id.len &&
            o->peer_id.type == sa->peer_id.type && memcmp(o->peer_id.data, sa->peer_id.data, o->peer_id.len) == 0) {
            if (o->peer_addr != sa->peer_addr)
                ike_auth_identity_collision(sa, o);
            ipsec_log(IPSEC_LOG_INFO, "event=ike_initial_contact_delete spi_i=%016llx", (unsigned long long)o->spi_i);
            ike_sa_destroy(o);
        }
    }
}

/* Negotiate the CHILD SA of an IKE_AUTH request: 0 or an error notify. */
static uint16_t ike_auth_child_negotiate(struct ike_sa *sa, const struct ike_payload_list *in,
                                         struct ike_proposal *chosen, struct ike_ts_list *tsi,
                                         struct ike_ts_list *tsr)
{
    const struct ike_payload *p_sa = ike_payload_find(in, IKE_PL_SA), *p_tsi = ike_payload_find(in, IKE_PL_TSI),
                             *p_tsr = ike_payload_find(in, IKE_PL_TSR);
    struct ike_sa_payload theirs;
    struct ike_ts_list their_tsi, their_tsr, allow_i, allow_r;

    if (p_sa == NULL || p_tsi == NULL || p_tsr == NULL || ike_sa_parse(p_sa->body, p_sa->len, &theirs) != 0 ||
        ike_ts_parse(p_tsi->body, p_tsi->len, &their_tsi) != 0 || ike_ts_parse(p_tsr->body, p_tsr->len, &their_tsr) != 0)
        return IKE_N_INVALID_SYNTAX;
    if (!ike_notify_has(in, IKE_N_USE_TRANSPORT_MODE))
        return IKE_N_NO_PROPOSAL_CHOSEN;    /* we only do transport mode */
    if (ike_proposal_select(&ike_sa_cfg(sa)->esp_proposals, &theirs, IKE_PROTO_ESP, chosen) != 0)
        return IKE_N_NO_PROPOSAL_CHOSEN;
    ike_child_ts(sa, &allow_i, &allow_r);
    if (ike_ts_narrow(&their_tsi, &allow_i, tsi) != 0 || ike_ts_narrow(&their_tsr, &allow_r, tsr) != 0)
        return IKE_N_TS_UNACCEPTABLE;
    return 0;
}

static void ike_auth_respond_failed(struct ike_sa *sa, uint32_t msg_id)
{
    struct ike_writer w;
    uint8_t *msg = ike_sk_begin(sa, &w, IKE_AUTH, true, msg_id);
    size_t len;

    ike_write_notify(&w, 0, NULL, 0, IKE_N_AUTHENTICATION_FAILED, NULL, 0);
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg != NULL)
        ike_response_send(sa, msg, len, msg_id);
    sa->ctx->stats.auth_failures++;
    ike_sa_fail(sa, IKE_EV_AUTH_FAILED, "initiator_auth_invalid");
}

void ike_auth_handle_request(struct ike_sa *sa, const struct ike_header *h, const struct ike_payload_list *in)
{
    const struct ike_peer_config *cfg;
    uint8_t id_body[ID_BODY_MAX], auth[IKE_SIG_MAX], *msg, method;
    struct ike_proposal chosen;
    struct ike_ts_list tsi, tsr;
    struct ike_writer w;
    size_t id_len, auth_len, len;
    uint16_t child_err;
    uint32_t spi_in = 0;

    ike_auth_pick_peer(sa, in);
    cfg = ike_sa_cfg(sa);
    if (ike_auth_verify_peer(sa, in, true) != 0) {
        ike_auth_respond_failed(sa, h->msg_id);
        return;
    }
    if (ike_notify_has(in, IKE_N_INITIAL_CONTACT))
        ike_auth_initial_contact(sa);
    child_err = ike_auth_child_negotiate(sa, in, &chosen, &tsi, &tsr);
    if (child_err == 0) {
        spi_in = sa->ctx->cb.spi_alloc(sa->ctx->cb.arg);
        if (ike_child_keys_install(sa, &chosen, spi_in, ike_get32(chosen.spi), ike_buf_of(NULL, 0),
                                   ike_buf_of(sa->ni, sa->ni_len), ike_buf_of(sa->nr, sa->nr_len), IKE_CHILD_FROM_AUTH) != 0)
            child_err = IKE_N_NO_PROPOSAL_CHOSEN;
    }
    id_len = ike_id_body(&cfg->local_id, id_body);
    if (ike_auth_make(sa, false, id_body, id_len, &method, auth, sizeof(auth), &auth_len) != 0) {
        ike_sa_fail(sa, IKE_EV_FAILED, "auth_compute");
        return;
    }
    msg = ike_sk_begin(sa, &w, IKE_AUTH, true, h->msg_id);
    ike_auth_write_id(sa, &w, IKE_PL_IDR);
    ike_write_auth(&w, method, auth, auth_len);
    mbedtls_platform_zeroize(auth, sizeof(auth));
    if (child_err == 0) {
        struct ike_sa_payload one = { .n = 1 };

        one.p[0] = chosen;
        ike_put32(one.p[0].spi, spi_in);
        ike_write_notify(&w, 0, NULL, 0, IKE_N_USE_TRANSPORT_MODE, NULL, 0);
        ike_write_sa(&w, &one);
        ike_write_ts(&w, IKE_PL_TSI, &tsi);
        ike_write_ts(&w, IKE_PL_TSR, &tsr);
    } else {
        ike_write_notify(&w, 0, NULL, 0, child_err, NULL, 0);
    }
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg == NULL) {
        ike_sa_fail(sa, IKE_EV_FAILED, "auth_encode");
        return;
    }
    ike_response_send(sa, msg, len, h->msg_id);
    if (child_err != 0)
        ipsec_log(IPSEC_LOG_WARN, "event=ike_child_refused spi_i=%016llx notify=%u", (unsigned long long)sa->spi_i,
                  child_err);
    ike_sa_established(sa);
}
