/*
 * Proposal strings in strongSwan's style: proposals separated by commas,
 * algorithms within one proposal by dashes, e.g.
 *   ike_proposals = aes128gcm16-prfsha256-x25519,aes256-sha256-modp2048
 *   esp_proposals = aes128gcm16,chacha20poly1305-esn
 * IKE proposals need an encryption algorithm, a PRF (implied by the
 * integrity algorithm for non-AEAD ciphers) and at least one DH group.
 * ESP proposals take an AEAD, optional DH groups (PFS on rekey) and
 * esn / noesn.
 */
#include "config/config.h"

#include <stdio.h>
#include <string.h>

struct token {
    const char *name;
    enum { T_ENCR, T_INTEG, T_PRF, T_DH, T_ESN } kind;
    int value;
    unsigned key_bits;
};

static const struct token tokens[] = {
    { "aes128gcm16", T_ENCR, CFG_ENCR_AES_GCM16, 128 },
    { "aes128gcm", T_ENCR, CFG_ENCR_AES_GCM16, 128 },
    { "aes256gcm16", T_ENCR, CFG_ENCR_AES_GCM16, 256 },
    { "aes256gcm", T_ENCR, CFG_ENCR_AES_GCM16, 256 },
    { "chacha20poly1305", T_ENCR, CFG_ENCR_CHACHA20_POLY1305, 256 },
    { "aes128", T_ENCR, CFG_ENCR_AES_CBC, 128 },
    { "aes256", T_ENCR, CFG_ENCR_AES_CBC, 256 },
    { "sha256", T_INTEG, CFG_INTEG_SHA256_128, 0 },
    { "prfsha256", T_PRF, CFG_PRF_SHA256, 0 },
    { "prfsha384", T_PRF, CFG_PRF_SHA384, 0 },
    { "x25519", T_DH, CFG_DH_X25519, 0 },
    { "curve25519", T_DH, CFG_DH_X25519, 0 },
    { "ecp256", T_DH, CFG_DH_ECP256, 0 },
    { "modp2048", T_DH, CFG_DH_MODP2048, 0 },
    { "esn", T_ESN, CFG_ESN_YES, 0 },
    { "noesn", T_ESN, CFG_ESN_NO, 0 },
};

static const struct token *proposal_token_find(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
        if (strlen(tokens[i].name) == n && strncmp(tokens[i].name, s, n) == 0)
            return &tokens[i];
    return NULL;
}

static int proposal_apply(struct cfg_proposal *p, const struct token *t, bool ike,
                          char *err, size_t errlen)
{
    switch (t->kind) {
    case T_ENCR:
        if (p->encr != CFG_ENCR_NONE)
            goto twice;
        if (!ike && t->value == CFG_ENCR_AES_CBC) {
            snprintf(err, errlen, "'%s': ESP proposals take an AEAD (aes128gcm16, aes256gcm16, chacha20poly1305)", t->name);
            return -1;
        }
        p->encr = (enum cfg_encr)t->value;
        p->key_bits = t->key_bits;
        return 0;
    case T_INTEG:
        if (p->integ != CFG_INTEG_NONE)
            goto twice;
        p->integ = (enum cfg_integ)t->value;
        return 0;
    case T_PRF:
        if (!ike) {
            snprintf(err, errlen, "'%s': a PRF belongs in ike_proposals", t->name);
            return -1;
        }
        if (p->prf != CFG_PRF_NONE)
            goto twice;
        p->prf = (enum cfg_prf)t->value;
        return 0;
    case T_DH:
        if (p->n_dh >= CFG_MAX_DH) {
            snprintf(err, errlen, "more than %d DH groups in one proposal", CFG_MAX_DH);
            return -1;
        }
        p->dh[p->n_dh++] = (enum cfg_dh)t->value;
        return 0;
    case T_ESN:
        if (ike) {
            snprintf(err, errlen, "'%s': ESN belongs in esp_proposals", t->name);
            return -1;
        }
        p->esn = (enum cfg_esn)t->value;
        return 0;
    }
twice:
    snprintf(err, errlen, "'%s': algorithm of that kind given twice", t->name);
    return -1;
}

static int proposal_finish(struct cfg_proposal *p, bool ike, char *err, size_t errlen)
{
    bool aead = p->encr == CFG_ENCR_AES_GCM16 || p->encr == CFG_ENCR_CHACHA20_POLY1305;

    if (p->encr == CFG_ENCR_NONE) {
        snprintf(err, errlen, "proposal has no encryption algorithm");
        return -1;
    }
    if (aead && p->integ != CFG_INTEG_NONE) {
        snprintf(err, errlen, "an AEAD cipher takes no integrity algorithm");
        return -1;
    }
    if (!ike)
        return 0;
    if (!aead && p->integ == CFG_INTEG_NONE) {
        snprintf(err, errlen, "AES-CBC needs an integrity algorithm (sha256)");
        return -1;
    }
    if (p->prf == CFG_PRF_NONE) {
        if (aead) {
            snprintf(err, errlen, "an AEAD IKE proposal needs a PRF (prfsha256 or prfsha384)");
            return -1;
        }
        p->prf = CFG_PRF_SHA256;    /* implied by sha256, as strongSwan does */
    }
    if (p->n_dh == 0) {
        snprintf(err, errlen, "IKE proposal needs a DH group (x25519, ecp256 or modp2048)");
        return -1;
    }
    return 0;
}

int config_proposals_parse(const char *text, bool ike, struct cfg_proposal *out,
                           int max, int *n_out, char *err, size_t errlen)
{
    const char *p = text;
    int n = 0;

    *n_out = 0;
    while (*p != '\0') {
        struct cfg_proposal prop;
        const char *end = p + strcspn(p, ",");

        memset(&prop, 0, sizeof(prop));
        if (n >= max) {
            snprintf(err, errlen, "more than %d proposals", max);
            return -1;
        }
        while (p < end) {
            const char *tend = p;
            const struct token *t;

            while (tend < end && *tend != '-')
                tend++;
            while (p < tend && (*p == ' ' || *p == '\t'))
                p++;
            t = proposal_token_find(p, (size_t)(tend - p));
            if (t == NULL) {
                snprintf(err, errlen, "unknown algorithm '%.*s'", (int)(tend - p), p);
                return -1;
            }
            if (proposal_apply(&prop, t, ike, err, errlen) != 0)
                return -1;
            p = tend < end ? tend + 1 : tend;
        }
        if (proposal_finish(&prop, ike, err, errlen) != 0)
            return -1;
        out[n++] = prop;
        p = *end == ',' ? end + 1 : end;
    }
    if (n == 0) {
        snprintf(err, errlen, "empty proposal list");
        return -1;
    }
    *n_out = n;
    return 0;
}
