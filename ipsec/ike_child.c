/*
 * CHILD SA bookkeeping of an IKE SA. After a rekey the replaced CHILD SA
 * stays installed for inbound packets still in flight until its DELETE
 * exchange completes; the newest CHILD SA carries outbound traffic.
 */
#include "ipsec/ike_sa_int.h"
#include "ipsec/ipsec_log.h"

#include <stdlib.h>
#include <string.h>

int ike_kid_add(struct ike_sa *sa, const struct ike_child *c)
{
    for (int i = 0; i < IKE_MAX_KIDS; i++) {
        if (!sa->kids[i].installed) {
            sa->kids[i] = *c;
            sa->kids[i].installed = true;
            sa->current_kid = i;
            return i;
        }
    }
    return -1;
}

int ike_kid_find_in(const struct ike_sa *sa, uint32_t spi_in)
{
    for (int i = 0; i < IKE_MAX_KIDS; i++)
        if (sa->kids[i].installed && sa->kids[i].spi_in == spi_in)
            return i;
    return -1;
}

int ike_kid_find_out(const struct ike_sa *sa, uint32_t spi_out)
{
    for (int i = 0; i < IKE_MAX_KIDS; i++)
        if (sa->kids[i].installed && sa->kids[i].spi_out == spi_out)
            return i;
    return -1;
}

void ike_kid_remove(struct ike_sa *sa, int idx)
{
    struct ike_child *k;

    if (idx < 0 || idx >= IKE_MAX_KIDS || !sa->kids[idx].installed)
        return;
    k = &sa->kids[idx];
    if (sa->ctx->cb.child_remove != NULL)
        sa->ctx->cb.child_remove(sa->ctx->cb.arg, sa, k->spi_in, k->spi_out);
    memset(k, 0, sizeof(*k));
    if (sa->current_kid == idx) {
        sa->current_kid = -1;
        for (int i = 0; i < IKE_MAX_KIDS; i++)
            if (sa->kids[i].installed && (sa->current_kid < 0 ||
                                          sa->kids[i].created_ms >= sa->kids[sa->current_kid].created_ms))
                sa->current_kid = i;
    }
}

void ike_kid_remove_all(struct ike_sa *sa)
{
    for (int i = 0; i < IKE_MAX_KIDS; i++)
        ike_kid_remove(sa, i);
}

const struct ike_child *ike_kid_current(const struct ike_sa *sa)
{
    if (sa->current_kid < 0 || !sa->kids[sa->current_kid].installed)
        return NULL;
    return &sa->kids[sa->current_kid];
}

int ike_kid_delete_send(struct ike_sa *sa, uint32_t spi_in)
{
    struct ike_writer w;
    uint8_t spi[4], *msg;
    size_t len;

    if (sa->req.kind != IKE_REQ_NONE)
        return -1;
    ike_put32(spi, spi_in);
    msg = ike_sk_begin(sa, &w, IKE_INFORMATIONAL, false, sa->next_req_id);
    ike_write_delete(&w, IKE_PROTO_ESP, 4, spi, 1);
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg == NULL)
        return -1;
    sa->next_req_id++;
    sa->deleting_spi_in = spi_in;
    ike_request_start(sa, IKE_REQ_DELETE_CHILD, msg, len, NULL, 0);
    return 0;
}


/* Only the newest CHILD SA may take the outbound slot (one outbound SA per
 * peer): an older one still waiting for the peer was overtaken (our own
 * rekey of it, or a simultaneous rekey it lost whose DELETE is late) and
 * stays inbound-only until it goes. Switching to it would replace the
 * newer outbound SA, and its DELETE would then leave none at all. */
void ike_kid_activate_out(struct ike_sa *sa, uint64_t before_ms)
{
    for (int i = 0; i < IKE_MAX_KIDS; i++) {
        struct ike_child *k = &sa->kids[i];

        if (!k->installed || !k->out_pending || k->created_ms > before_ms)
            continue;
        k->out_pending = false;
        if (i != sa->current_kid)
            ipsec_log(IPSEC_LOG_INFO, "event=child_out_superseded spi_in=%08x spi_out=%08x", k->spi_in, k->spi_out);
        else if (sa->ctx->cb.child_activate_out != NULL)
            sa->ctx->cb.child_activate_out(sa->ctx->cb.arg, sa, k->spi_in);
    }
}

uint64_t ike_kid_out_deadline(const struct ike_sa *sa)
{
    uint64_t d = UINT64_MAX;

    for (int i = 0; i < IKE_MAX_KIDS; i++)
        if (sa->kids[i].installed && sa->kids[i].out_pending && sa->kids[i].created_ms + IKE_OUT_DEFER_MS < d)
            d = sa->kids[i].created_ms + IKE_OUT_DEFER_MS;
    return d;
}

int ike_ctx_child_expiring(struct ike_ctx *ctx, uint32_t peer_addr, uint32_t spi, bool outbound)
{
    for (struct ike_sa *sa = ctx->sas; sa != NULL; sa = sa->next) {
        const struct ike_child *cur = ike_kid_current(sa);
        int idx = outbound ? ike_kid_find_out(sa, spi) : ike_kid_find_in(sa, spi);

        if (sa->doomed || sa->peer_addr != peer_addr || idx < 0)
            continue;
        if (sa->state != IKE_S_ESTABLISHED || cur != &sa->kids[idx])
            return -1;
        if (sa->req.kind == IKE_REQ_REKEY_CHILD || (sa->pending & IKE_PEND_REKEY_CHILD) != 0)
            return 0;       /* already under way */
        /* at the next tick (0 means "none", a clock may start there) */
        sa->rekey_child_at = ike_now(ctx) > 0 ? ike_now(ctx) : 1;
        ipsec_log(IPSEC_LOG_INFO, "event=child_sa_expiring spi_i=%016llx spi_in=%08x spi_out=%08x action=rekey",
                  (unsigned long long)sa->spi_i, cur->spi_in, cur->spi_out);
        return 0;
    }
    return -1;
}
