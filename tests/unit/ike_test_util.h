/*
 * Helpers shared by the IKE state machine tests (test_ike_sa.c,
 * test_ike_guard.c): identities and proposals for peer configs.
 * Header-only (static inline) so every user compiles its own copy.
 */
#ifndef ESPROXY_TESTS_IKE_TEST_UTIL_H
#define ESPROXY_TESTS_IKE_TEST_UTIL_H

#include "ipsec/ike_sa.h"

#include <stdint.h>
#include <string.h>

static inline void itu_ident(struct ike_identity *id, const char *fqdn)
{
    id->type = IKE_ID_FQDN;
    id->len = strlen(fqdn);
    memcpy(id->data, fqdn, id->len);
}

/* One more proposal in sa; 0 leaves a transform out, esn -1 too. */
static inline void itu_proposal(struct ike_sa_payload *sa, uint8_t proto, uint16_t encr, uint16_t bits,
                                uint16_t integ, uint16_t prf, uint16_t dh, int esn)
{
    struct ike_proposal *p = &sa->p[sa->n++];

    memset(p, 0, sizeof(*p));
    p->num = (uint8_t)sa->n;
    p->proto = proto;
    p->t[p->n++] = (struct ike_transform){ IKE_TRANS_ENCR, encr, bits, false };
    if (integ)
        p->t[p->n++] = (struct ike_transform){ IKE_TRANS_INTEG, integ, 0, false };
    if (prf)
        p->t[p->n++] = (struct ike_transform){ IKE_TRANS_PRF, prf, 0, false };
    if (dh)
        p->t[p->n++] = (struct ike_transform){ IKE_TRANS_DH, dh, 0, false };
    if (esn >= 0)
        p->t[p->n++] = (struct ike_transform){ IKE_TRANS_ESN, (uint16_t)esn, 0, false };
}

#endif
