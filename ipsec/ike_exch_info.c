/*
 * INFORMATIONAL exchanges (RFC 7296 §1.4): DELETE of the IKE SA or of
 * CHILD SAs, empty requests (liveness), and the unprotected
 * INVALID_IKE_SPI answer to requests for SAs we do not have (§2.21.4),
 * rate-limited because anyone can trigger it.
 */
#include "ipsec/ike_sa_int.h"
#include "ipsec/ipsec_log.h"

#include <stdlib.h>
#include <string.h>

static void ike_info_respond(struct ike_sa *sa, uint32_t msg_id, const uint8_t *del_spis, uint16_t n_del)
{
    struct ike_writer w;
    uint8_t *msg = ike_sk_begin(sa, &w, IKE_INFORMATIONAL, true, msg_id);
    size_t len;

    if (n_del > 0)
        ike_write_delete(&w, IKE_PROTO_ESP, 4, del_spis, n_del);
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg != NULL)
        ike_response_send(sa, msg, len, msg_id);
}

void ike_info_send_error(struct ike_sa *sa, uint32_t msg_id, uint16_t notify)
{
    struct ike_writer w;
    uint8_t *msg = ike_sk_begin(sa, &w, IKE_INFORMATIONAL, true, msg_id);
    size_t len;

    ike_write_notify(&w, 0, NULL, 0, notify, NULL, 0);
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg != NULL)
        ike_response_send(sa, msg, len, msg_id);
}

void ike_info_handle_request(struct ike_sa *sa, const struct ike_header *h, const struct ike_payload_list *in)
{
    uint8_t our_spis[4 * IKE_MAX_KIDS];
    uint16_t n_ours = 0;
    bool delete_ike = false;

    for (int i = 0; i < in->n; i++) {
        struct ike_delete d;

        if (in->pl[i].type != IKE_PL_DELETE || ike_delete_parse(in->pl[i].body, in->pl[i].len, &d) != 0)
            continue;
        if (d.proto == IKE_PROTO_IKE) {
            delete_ike = true;
            continue;
        }
        /* the peer names its inbound SPIs (our outbound); we answer with ours */
        for (uint16_t k = 0; k < d.n_spi && d.proto == IKE_PROTO_ESP; k++) {
            int idx = ike_kid_find_out(sa, ike_get32(d.spis + 4 * k));

            if (idx >= 0 && n_ours < IKE_MAX_KIDS) {
                ike_put32(our_spis + 4 * n_ours++, sa->kids[idx].spi_in);
                ike_kid_remove(sa, idx);
            }
        }
    }
    if (delete_ike) {
        ike_info_respond(sa, h->msg_id, NULL, 0);
        ipsec_log(IPSEC_LOG_INFO, "event=ike_delete_received spi_i=%016llx rekeyed=%s", (unsigned long long)sa->spi_i,
                  sa->superseded ? "yes" : "no");
        if (!sa->superseded)
            ike_sa_emit(sa, IKE_EV_DELETE_RECEIVED);
        ike_sa_destroy(sa);
        return;
    }
    if (n_ours > 0 && !sa->hold_out)
        ike_kid_activate_out(sa, UINT64_MAX);  /* the peer retired the old SA: the new one carries traffic */
    ike_info_respond(sa, h->msg_id, our_spis, n_ours);
}

void ike_info_handle_response(struct ike_sa *sa, const struct ike_header *h, const struct ike_payload_list *in)
{
    enum ike_req_kind kind = sa->req.kind;

    (void)h;
    (void)in;
    ike_request_clear(sa);
    switch (kind) {
    case IKE_REQ_PROBE:
        ike_sa_emit(sa, IKE_EV_PROBE_OK);
        break;
    case IKE_REQ_DELETE_IKE:
        ike_sa_destroy(sa);
        break;
    case IKE_REQ_DELETE_CHILD:
        ike_kid_remove(sa, ike_kid_find_in(sa, sa->deleting_spi_in));
        sa->deleting_spi_in = 0;
        break;
    default:
        break;
    }
}

void ike_info_send_invalid_spi(struct ike_ctx *ctx, uint32_t src, uint16_t sport, uint32_t dst,
                               const struct ike_header *req)
{
    struct ike_header h = { .spi_i = req->spi_i, .spi_r = req->spi_r, .exchange = IKE_INFORMATIONAL,
                            .msg_id = req->msg_id };
    uint8_t msg[64];
    struct ike_writer w;
    long n;

    if (!ike_guard_reply_allowed(ctx, src))
        return;
    /* we answer as the other party of the unknown SA */
    h.flags = (uint8_t)(IKE_FLAG_RESPONSE | ((req->flags & IKE_FLAG_INITIATOR) ? 0 : IKE_FLAG_INITIATOR));
    ike_writer_init(&w, msg, sizeof(msg), &h);
    ike_write_notify(&w, IKE_PROTO_IKE, NULL, 0, IKE_N_INVALID_IKE_SPI, NULL, 0);
    n = ike_writer_finish(&w);
    if (n > 0) {
        ctx->stats.invalid_spi_sent++;
        ike_send_raw(ctx, dst, src, sport, msg, (size_t)n);
    }
}
