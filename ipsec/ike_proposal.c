#include "ipsec/ike_proposal.h"

#include <string.h>

static bool ike_transform_equal(const struct ike_transform *a, const struct ike_transform *b)
{
    return a->type == b->type && a->id == b->id && a->key_bits == b->key_bits;
}

static bool ike_proposal_offers(const struct ike_proposal *p, const struct ike_transform *t)
{
    for (int i = 0; i < p->n; i++)
        if (!p->t[i].unusable && ike_transform_equal(&p->t[i], t))
            return true;
    return false;
}

static bool ike_proposal_has_type(const struct ike_proposal *p, uint8_t type)
{
    for (int i = 0; i < p->n; i++)
        if (p->t[i].type == type)
            return true;
    return false;
}

/* Types where an absent transform means "none" (id 0): INTEG with an
 * AEAD, DH for a CHILD_SA without PFS, ESN. ENCR and PRF must be present. */
static bool ike_type_may_be_absent(uint8_t type)
{
    return type == IKE_TRANS_INTEG || type == IKE_TRANS_DH || type == IKE_TRANS_ESN;
}

static bool ike_proposal_accepts(const struct ike_proposal *p, const struct ike_transform *t)
{
    if (!ike_proposal_has_type(p, t->type))
        return ike_type_may_be_absent(t->type) && t->id == 0;
    return ike_proposal_offers(p, t);
}

/* Match their proposal against one of ours: for every transform type, take
 * their first transform (their preference) that we accept too. */
static bool ike_proposal_match(const struct ike_proposal *ours, const struct ike_proposal *theirs,
                               struct ike_proposal *out)
{
    memset(out, 0, sizeof(*out));
    out->num = theirs->num;
    out->proto = theirs->proto;
    out->spi_size = theirs->spi_size;
    memcpy(out->spi, theirs->spi, theirs->spi_size);
    for (uint8_t type = IKE_TRANS_ENCR; type <= IKE_TRANS_ESN; type++) {
        bool found = false;

        if (!ike_proposal_has_type(theirs, type)) {
            struct ike_transform none = { .type = type };

            /* absent on their side: fine if "none" is acceptable to us */
            if (!ike_proposal_has_type(ours, type))
                continue;
            if (ike_type_may_be_absent(type) && ike_proposal_offers(ours, &none))
                continue;
            return false;
        }
        for (int i = 0; i < theirs->n && !found; i++) {
            const struct ike_transform *t = &theirs->t[i];

            if (t->type == type && !t->unusable && ike_proposal_accepts(ours, t)) {
                out->t[out->n++] = *t;
                found = true;
            }
        }
        if (!found)
            return false;
    }
    return ike_proposal_has_type(out, IKE_TRANS_ENCR);
}

int ike_proposal_select(const struct ike_sa_payload *ours, const struct ike_sa_payload *theirs,
                        uint8_t proto, struct ike_proposal *chosen)
{
    for (int i = 0; i < theirs->n; i++) {
        if (theirs->p[i].proto != proto)
            continue;
        if (proto == IKE_PROTO_ESP && theirs->p[i].spi_size != 4)
            continue;
        for (int j = 0; j < ours->n; j++)
            if (ike_proposal_match(&ours->p[j], &theirs->p[i], chosen))
                return 0;
    }
    return -IKE_N_NO_PROPOSAL_CHOSEN;
}

int ike_proposal_check_reply(const struct ike_sa_payload *ours, const struct ike_sa_payload *reply,
                             uint8_t proto, struct ike_proposal *chosen)
{
    const struct ike_proposal *r;

    if (reply->n != 1)
        return -IKE_N_NO_PROPOSAL_CHOSEN;
    r = &reply->p[0];
    if (r->proto != proto || (proto == IKE_PROTO_ESP && r->spi_size != 4))
        return -IKE_N_NO_PROPOSAL_CHOSEN;
    /* exactly one transform per type */
    for (int i = 0; i < r->n; i++)
        for (int j = i + 1; j < r->n; j++)
            if (r->t[i].type == r->t[j].type)
                return -IKE_N_NO_PROPOSAL_CHOSEN;
    for (int j = 0; j < ours->n; j++)
        if (ike_proposal_match(&ours->p[j], r, chosen))
            return 0;
    return -IKE_N_NO_PROPOSAL_CHOSEN;
}

const struct ike_transform *ike_proposal_get(const struct ike_proposal *p, uint8_t type)
{
    for (int i = 0; i < p->n; i++)
        if (p->t[i].type == type)
            return &p->t[i];
    return NULL;
}

uint16_t ike_proposal_first_dh(const struct ike_sa_payload *ours)
{
    for (int i = 0; i < ours->n; i++) {
        const struct ike_transform *t = ike_proposal_get(&ours->p[i], IKE_TRANS_DH);

        if (t != NULL && t->id != 0)
            return t->id;
    }
    return 0;
}

bool ike_proposal_has_dh(const struct ike_sa_payload *ours, uint16_t group)
{
    for (int i = 0; i < ours->n; i++)
        for (int t = 0; t < ours->p[i].n; t++)
            if (ours->p[i].t[t].type == IKE_TRANS_DH && ours->p[i].t[t].id == group)
                return true;
    return false;
}
