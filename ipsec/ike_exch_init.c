/*
 * IKE_SA_INIT (RFC 7296 §1.2): proposals, Diffie-Hellman, nonces, NAT
 * detection, COOKIE (§2.6) and INVALID_KE_PAYLOAD (§1.2) round trips.
 *
 * NAT-T (§2.23): we always want ESP in UDP, so like strongSwan's
 * encap=yes we send a NAT_DETECTION_SOURCE_IP that cannot match (a hash
 * of random bytes); the peer then believes we are behind a NAT and
 * encapsulates. Both ends talk on the configured UDP port (4500) from the
 * first message.
 */
#include "ipsec/ike_sa_int.h"
#include "ipsec/ike_cert.h"
#include "ipsec/ike_proposal.h"
#include "ipsec/ipsec_log.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>
#include <mbedtls/sha1.h>

#define NATD_LEN 20
#define IKE_COOKIE_RETRIES 3    /* different COOKIEs an initiator retries with */
#define IKE_KE_RETRIES     3    /* INVALID_KE_PAYLOADs an initiator retries after */

/* SHA-1(SPIi | SPIr | IP | port), §2.23. addr in network order. */
static void ike_natd_hash(uint64_t spi_i, uint64_t spi_r, uint32_t addr, uint16_t port, uint8_t out[NATD_LEN])
{
    uint8_t in[8 + 8 + 4 + 2];

    ike_put64(in, spi_i);
    ike_put64(in + 8, spi_r);
    memcpy(in + 16, &addr, 4);
    ike_put16(in + 20, port);
    mbedtls_sha1_ret(in, sizeof(in), out);
}

static void ike_write_natd(struct ike_writer *w, const struct ike_sa *sa, uint16_t local_port)
{
    uint8_t hash[NATD_LEN], junk[16];

    /* source: deliberately wrong, to force UDP encapsulation */
    (void)local_port;
    (void)ike_random(junk, sizeof(junk));
    mbedtls_sha1_ret(junk, sizeof(junk), hash);
    ike_write_notify(w, 0, NULL, 0, IKE_N_NAT_DETECTION_SOURCE_IP, hash, NATD_LEN);
    ike_natd_hash(sa->spi_i, sa->spi_r, sa->peer_addr, sa->peer_port, hash);
    ike_write_notify(w, 0, NULL, 0, IKE_N_NAT_DETECTION_DESTINATION_IP, hash, NATD_LEN);
}

/* RFC 7427 §4: announce the hashes we can sign and verify with. */
static void ike_write_sig_hash_algs(struct ike_writer *w, const struct ike_peer_config *cfg)
{
    static const uint8_t algs[] = { 0, IKE_HASH_SHA2_256, 0, IKE_HASH_SHA2_384, 0, IKE_HASH_SHA2_512 };

    if (cfg->auth == IKE_PEER_AUTH_CERT)
        ike_write_notify(w, 0, NULL, 0, IKE_N_SIGNATURE_HASH_ALGORITHMS, algs, sizeof(algs));
}

static uint8_t *ike_copy(const uint8_t *p, size_t len)
{
    uint8_t *c = malloc(len);

    if (c != NULL)
        memcpy(c, p, len);
    return c;
}

static int ike_spi_random(uint64_t *spi)
{
    do {
        if (ike_random(spi, sizeof(*spi)) != 0)
            return -1;
    } while (*spi == 0);
    return 0;
}

int ike_init_request_send(struct ike_sa *sa)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);
    struct ike_header h;
    struct ike_writer w;
    uint8_t *msg, pub[IKE_DH_PUBLIC_MAX];
    size_t pub_len;
    long len;

    if (sa->spi_i == 0 && ike_spi_random(&sa->spi_i) != 0)
        return -1;
    if (sa->dh_group == 0)
        sa->dh_group = ike_proposal_first_dh(&cfg->ike_proposals);
    if (sa->dh_live)
        ike_dh_free(&sa->dh);
    sa->dh_live = true;
    if (ike_dh_init(&sa->dh, sa->dh_group) != 0 || ike_dh_public(&sa->dh, pub, sizeof(pub), &pub_len) != 0)
        return -1;
    if (sa->ni_len == 0) {
        sa->ni_len = IKE_NONCE_LEN;
        if (ike_random(sa->ni, sa->ni_len) != 0)
            return -1;
    }
    msg = malloc(IKE_BUF_MAX);
    if (msg == NULL)
        return -1;
    ike_header_for(sa, &h, IKE_SA_INIT, false, 0);
    ike_writer_init(&w, msg, IKE_BUF_MAX, &h);
    if (sa->cookie_len > 0)
        ike_write_notify(&w, 0, NULL, 0, IKE_N_COOKIE, sa->cookie, sa->cookie_len);
    ike_write_sa(&w, &cfg->ike_proposals);
    ike_write_ke(&w, sa->dh_group, pub, pub_len);
    ike_write_nonce(&w, sa->ni, sa->ni_len);
    ike_write_natd(&w, sa, cfg->port);
    ike_write_sig_hash_algs(&w, cfg);
    len = ike_writer_finish(&w);
    free(sa->init_req);
    sa->init_req = len > 0 ? ike_copy(msg, (size_t)len) : NULL;
    if (sa->init_req == NULL) {
        free(msg);
        return -1;
    }
    sa->init_req_len = (size_t)len;
    ike_sa_set_state(sa, IKE_S_INIT_SENT);
    ike_request_start(sa, IKE_REQ_INIT, msg, (size_t)len, NULL, 0);
    return 0;
}

static void ike_suite_from(const struct ike_proposal *p, struct ike_suite *s)
{
    const struct ike_transform *t;

    memset(s, 0, sizeof(*s));
    if ((t = ike_proposal_get(p, IKE_TRANS_ENCR)) != NULL) {
        s->encr = t->id;
        s->encr_key_bits = t->key_bits;
    }
    if ((t = ike_proposal_get(p, IKE_TRANS_INTEG)) != NULL)
        s->integ = t->id;
    if ((t = ike_proposal_get(p, IKE_TRANS_PRF)) != NULL)
        s->prf = t->id;
}

/* g^ir, SKEYSEED and the seven keys; the DH private key is dropped. */
static int ike_keys_make(struct ike_sa *sa, const struct ike_proposal *chosen, const uint8_t *peer_ke,
                         size_t peer_ke_len, const uint8_t *spis)
{
    uint8_t gir[IKE_DH_SECRET_MAX], seed[IKE_PRF_MAX];
    size_t gir_len, seed_len;
    struct ike_suite suite;
    int rc;

    ike_suite_from(chosen, &suite);
    if (ike_suite_check(&suite, false) != 0)
        return -1;
    rc = ike_dh_shared(&sa->dh, peer_ke, peer_ke_len, gir, sizeof(gir), &gir_len);
    if (rc == 0)
        rc = ike_skeyseed(suite.prf, ike_buf_of(sa->ni, sa->ni_len), ike_buf_of(sa->nr, sa->nr_len),
                          ike_buf_of(gir, gir_len), seed, sizeof(seed), &seed_len);
    if (rc == 0)
        rc = ike_sa_keys_derive(&sa->keys, &suite, ike_buf_of(seed, seed_len), ike_buf_of(sa->ni, sa->ni_len),
                                ike_buf_of(sa->nr, sa->nr_len), spis, spis + 8);
    mbedtls_platform_zeroize(gir, sizeof(gir));
    mbedtls_platform_zeroize(seed, sizeof(seed));
    ike_dh_free(&sa->dh);
    sa->dh_live = false;
    if (rc != 0)
        return -1;
    sa->keys_live = true;
    if (sa->ctx->cb.keylog != NULL)
        sa->ctx->cb.keylog(sa->ctx->cb.arg, sa, &sa->keys);
    return 0;
}

/* ---- initiator ---- */

static bool ike_init_notify_errors(struct ike_sa *sa, const struct ike_payload_list *pl)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);

    for (int i = 0; i < pl->n; i++) {
        struct ike_notify n;

        if (pl->pl[i].type != IKE_PL_NOTIFY || ike_notify_parse(pl->pl[i].body, pl->pl[i].len, &n) != 0)
            continue;
        if (n.type == IKE_N_COOKIE && n.data_len >= 1 && n.data_len <= IKE_COOKIE_MAX) {
            /* the same one again answers a retransmission (cookies are
             * deterministic); a different one comes from a responder that
             * did not know ours (another node took the VIP, or its secret
             * changed, RFC 7296 2.6): retry with it, a few times at most
             * (each retry starts the ladder again, and anyone who sees our
             * request can send a COOKIE) */
            if ((sa->cookie_len == n.data_len && memcmp(sa->cookie, n.data, n.data_len) == 0) ||
                sa->cookies_taken >= IKE_COOKIE_RETRIES)
                return true;
            memcpy(sa->cookie, n.data, n.data_len);
            sa->cookie_len = n.data_len;
            sa->cookies_taken++;
            if (ike_init_request_send(sa) != 0)
                ike_sa_fail(sa, IKE_EV_FAILED, "cookie_retry");
            return true;
        }
        if (n.type == IKE_N_INVALID_KE_PAYLOAD && n.data_len == 2) {
            uint16_t g = ike_get16(n.data);

            /* anyone who sees our request can send one: a few retries
             * (each starts the ladder again), then it is one more hint */
            if (g != sa->dh_group && ike_proposal_has_dh(&cfg->ike_proposals, g) && ike_dh_supported(g) &&
                sa->groups_taken < IKE_KE_RETRIES) {
                ipsec_log(IPSEC_LOG_INFO, "event=ike_invalid_ke requested_group=%u", g);
                sa->groups_taken++;
                sa->dh_group = g;
                if (ike_init_request_send(sa) != 0)
                    ike_sa_fail(sa, IKE_EV_FAILED, "ke_retry");
                return true;
            }
            /* a group we cannot use: like any other error below */
        }
        if (n.type <= IKE_N_ERROR_MAX) {
            /* RFC 7296 §2.21.1: an error in an unprotected IKE_SA_INIT
             * response may be forged by anyone who sees the request; treat
             * it as a hint and keep waiting for a valid response until the
             * retransmissions run out (the give-up then says why) */
            sa->ctx->stats.dropped++;
            if (sa->init_error == 0)
                ipsec_log(IPSEC_LOG_WARN, "event=ike_init_error_ignored spi_i=%016llx notify=%u",
                          (unsigned long long)sa->spi_i, n.type);
            sa->init_error = n.type;
            return true;
        }
    }
    return false;
}

void ike_init_handle_response(struct ike_sa *sa, const struct ike_header *h, const uint8_t *msg,
                              size_t len, const struct ike_payload_list *pl)
{
    const struct ike_peer_config *cfg = ike_sa_cfg(sa);
    const struct ike_payload *p_sa = ike_payload_find(pl, IKE_PL_SA), *p_ke = ike_payload_find(pl, IKE_PL_KE),
                             *p_n = ike_payload_find(pl, IKE_PL_NONCE);
    struct ike_sa_payload sap;
    struct ike_proposal chosen;
    const uint8_t *ke;
    size_t ke_len;
    uint16_t group;

    if (ike_init_notify_errors(sa, pl))
        return;
    if (p_sa == NULL || p_ke == NULL || p_n == NULL || h->spi_r == 0 ||
        ike_sa_parse(p_sa->body, p_sa->len, &sap) != 0 ||
        ike_ke_parse(p_ke->body, p_ke->len, &group, &ke, &ke_len) != 0 ||
        ike_nonce_parse(p_n->body, p_n->len) != 0) {
        sa->ctx->stats.dropped++;
        return;     /* malformed: keep waiting; a valid answer may follow */
    }
    if (ike_proposal_check_reply(&cfg->ike_proposals, &sap, IKE_PROTO_IKE, &chosen) != 0 ||
        group != sa->dh_group) {
        ike_sa_fail(sa, IKE_EV_FAILED, "bad_proposal_reply");
        return;
    }
    sa->spi_r = h->spi_r;
    memcpy(sa->nr, p_n->body, p_n->len);
    sa->nr_len = p_n->len;
    if (ike_keys_make(sa, &chosen, ke, ke_len, msg) != 0) {
        ike_sa_fail(sa, IKE_EV_FAILED, "key_derivation");
        return;
    }
    sa->init_resp = ike_copy(msg, len);
    sa->init_resp_len = len;
    ike_request_clear(sa);
    sa->next_req_id = 1;
    if (sa->init_resp == NULL || ike_auth_request_send(sa) != 0)
        ike_sa_fail(sa, IKE_EV_FAILED, "auth_send");
}

/* ---- responder ---- */

static int ike_ctx_peer_for(const struct ike_ctx *ctx, uint32_t src, uint32_t dst)
{
    for (int i = 0; i < ctx->n_peers; i++) {
        const struct ike_peer_config *c = &ctx->peers[i];

        if ((c->local_addr == 0 || c->local_addr == dst) && (c->peer_addr == 0 || c->peer_addr == src))
            return i;
    }
    return -1;
}

/* A response outside any SA: our SPI 0 (§2.6, §1.2), within the
 * source's reply budget (ike_guard.c). True if it went out. */
static bool ike_init_reply_notify(struct ike_ctx *ctx, uint32_t src, uint16_t sport, uint32_t dst,
                                  const struct ike_header *req, uint16_t type, const uint8_t *data, size_t len)
{
    struct ike_header h = { .spi_i = req->spi_i, .exchange = IKE_SA_INIT, .flags = IKE_FLAG_RESPONSE };
    uint8_t msg[256];
    struct ike_writer w;
    long n;

    if (!ike_guard_reply_allowed(ctx, src))
        return false;
    ike_writer_init(&w, msg, sizeof(msg), &h);
    ike_write_notify(&w, 0, NULL, 0, type, data, len);
    n = ike_writer_finish(&w);
    if (n <= 0)
        return false;
    ike_send_raw(ctx, dst, src, sport, msg, (size_t)n);
    return true;
}

/* True when the request may make a half-open SA; otherwise it was
 * dropped or answered with a COOKIE (§2.6). Before any DH. */
static bool ike_init_admit(struct ike_ctx *ctx, uint32_t src, uint16_t sport, uint32_t dst,
                           const struct ike_header *h, const struct ike_payload_list *pl,
                           const struct ike_payload *p_n)
{
    uint8_t cookie[IKE_COOKIE_LEN];

    switch (ike_guard_admit_init(ctx, src, h->spi_i, p_n->body, p_n->len, pl, cookie)) {
    case IKE_ADMIT:
        return true;
    case IKE_ADMIT_COOKIE:
        if (ike_init_reply_notify(ctx, src, sport, dst, h, IKE_N_COOKIE, cookie, IKE_COOKIE_LEN))
            ctx->stats.cookies_sent++;
        return false;
    default:
        return false;
    }
}

static struct ike_sa *ike_init_duplicate(struct ike_ctx *ctx, uint32_t src, const struct ike_header *h)
{
    for (struct ike_sa *sa = ctx->sas; sa != NULL; sa = sa->next)
        if (!sa->initiator && sa->spi_i == h->spi_i && sa->peer_addr == src && sa->state != IKE_S_DEAD)
            return sa;
    return NULL;
}

/* Builds and sends our IKE_SA_INIT response for a new responder SA. */
static int ike_init_respond(struct ike_sa *sa, const struct ike_proposal *chosen, const uint8_t *ke, size_t ke_len,
                            const uint8_t *req, size_t req_len)
{
    struct ike_sa_payload one = { .n = 1 };
    uint8_t *msg, pub[IKE_DH_PUBLIC_MAX];
    size_t pub_len;
    struct ike_header h;
    struct ike_writer w;
    long len;

    one.p[0] = *chosen;
    sa->dh_live = true;
    sa->nr_len = IKE_NONCE_LEN;
    if (ike_spi_random(&sa->spi_r) != 0 || ike_random(sa->nr, sa->nr_len) != 0 ||
        ike_dh_init(&sa->dh, sa->dh_group) != 0 || ike_dh_public(&sa->dh, pub, sizeof(pub), &pub_len) != 0)
        return -1;
    msg = malloc(IKE_BUF_MAX);
    if (msg == NULL)
        return -1;
    ike_header_for(sa, &h, IKE_SA_INIT, true, 0);
    ike_writer_init(&w, msg, IKE_BUF_MAX, &h);
    ike_write_sa(&w, &one);
    ike_write_ke(&w, sa->dh_group, pub, pub_len);
    ike_write_nonce(&w, sa->nr, sa->nr_len);
    ike_write_natd(&w, sa, ike_sa_cfg(sa)->port);
    if (ike_sa_cfg(sa)->auth == IKE_PEER_AUTH_CERT)   /* peers like strongSwan send CERT only when asked */
        ike_write_cert(&w, IKE_PL_CERTREQ, IKE_CERT_ENCODING_X509_SIG, ike_sa_cfg(sa)->cert->ca_keyid,
                       sizeof(ike_sa_cfg(sa)->cert->ca_keyid));
    ike_write_sig_hash_algs(&w, ike_sa_cfg(sa));
    len = ike_writer_finish(&w);
    if (len < 0 || ike_keys_make(sa, chosen, ke, ke_len, msg) != 0) {
        free(msg);
        return -1;
    }
    sa->init_req = ike_copy(req, req_len);
    sa->init_req_len = req_len;
    sa->init_resp = ike_copy(msg, (size_t)len);
    sa->init_resp_len = (size_t)len;
    if (sa->init_req == NULL || sa->init_resp == NULL) {
        free(msg);
        return -1;
    }
    sa->peer_next_id = 1;
    ike_sa_set_state(sa, IKE_S_INIT_DONE);
    ike_response_send(sa, msg, (size_t)len, 0);
    return 0;
}

/* The DH group to use: the KE's, if the chosen proposal allows it. */
static int ike_init_pick_group(const struct ike_sa_payload *theirs, struct ike_proposal *chosen,
                               const struct ike_peer_config *cfg, uint16_t ke_group)
{
    const struct ike_proposal *orig = NULL;

    for (int i = 0; i < theirs->n; i++)
        if (theirs->p[i].num == chosen->num)
            orig = &theirs->p[i];
    if (orig != NULL && ike_proposal_has_dh(&cfg->ike_proposals, ke_group) && ike_dh_supported(ke_group)) {
        for (int i = 0; i < orig->n; i++) {
            if (orig->t[i].type == IKE_TRANS_DH && orig->t[i].id == ke_group) {
                for (int j = 0; j < chosen->n; j++)
                    if (chosen->t[j].type == IKE_TRANS_DH)
                        chosen->t[j].id = ke_group;
                return 0;
            }
        }
    }
    return -1;
}

void ike_init_handle_request(struct ike_ctx *ctx, uint32_t src, uint16_t sport, uint32_t dst,
                             const struct ike_header *h, const uint8_t *msg, size_t len,
                             const struct ike_payload_list *pl)
{
    const struct ike_payload *p_sa = ike_payload_find(pl, IKE_PL_SA), *p_ke = ike_payload_find(pl, IKE_PL_KE),
                             *p_n = ike_payload_find(pl, IKE_PL_NONCE);
    struct ike_sa_payload theirs;
    struct ike_proposal chosen;
    struct ike_sa *sa = ike_init_duplicate(ctx, src, h);
    const uint8_t *ke;
    size_t ke_len;
    uint16_t group;
    int peer;

    if (sa != NULL) {
        if (sa->state == IKE_S_INIT_DONE && sa->init_req_len == len && memcmp(sa->init_req, msg, len) == 0 &&
            ike_guard_reply_allowed(ctx, src))
            ike_send_raw(ctx, sa->local_addr, sa->peer_addr, sa->peer_port, sa->init_resp, sa->init_resp_len);
        return;
    }
    peer = ike_ctx_peer_for(ctx, src, dst);
    if (peer < 0 || p_sa == NULL || p_ke == NULL || p_n == NULL || ike_sa_parse(p_sa->body, p_sa->len, &theirs) != 0 ||
        ike_ke_parse(p_ke->body, p_ke->len, &group, &ke, &ke_len) != 0 || ike_nonce_parse(p_n->body, p_n->len) != 0) {
        ctx->stats.dropped++;
        return;
    }
    if (!ike_init_admit(ctx, src, sport, dst, h, pl, p_n))
        return;
    if (pl->unsupported_critical != 0) {
        uint8_t t = pl->unsupported_critical;

        ike_init_reply_notify(ctx, src, sport, dst, h, IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD, &t, 1);
        return;
    }
    if (ike_proposal_select(&ctx->peers[peer].ike_proposals, &theirs, IKE_PROTO_IKE, &chosen) != 0) {
        ike_init_reply_notify(ctx, src, sport, dst, h, IKE_N_NO_PROPOSAL_CHOSEN, NULL, 0);
        return;
    }
    if (ike_init_pick_group(&theirs, &chosen, &ctx->peers[peer], group) != 0) {
        uint8_t want[2];
        const struct ike_transform *t = ike_proposal_get(&chosen, IKE_TRANS_DH);

        ike_put16(want, t ? t->id : ike_proposal_first_dh(&ctx->peers[peer].ike_proposals));
        ike_init_reply_notify(ctx, src, sport, dst, h, IKE_N_INVALID_KE_PAYLOAD, want, 2);
        return;
    }
    /* a KE no key pair could use is refused before we make one: such a
     * request never becomes a half-open SA, so the cookie bounds would
     * never ask its sender for anything (ike_guard.c) */
    if (ike_dh_peer_check(group, ke, ke_len) != 0) {
        ctx->stats.dropped++;
        return;
    }
    sa = ike_sa_new(ctx, peer, false);
    if (sa == NULL)
        return;
    sa->spi_i = h->spi_i;
    sa->local_addr = dst;
    sa->peer_addr = src;
    sa->peer_port = sport;
    sa->dh_group = group;
    memcpy(sa->ni, p_n->body, p_n->len);
    sa->ni_len = p_n->len;
    if (ike_init_respond(sa, &chosen, ke, ke_len, msg, len) != 0)
        ike_sa_destroy(sa);
}
