#include "proxy/ike_config.h"
#include "ipsec/ike_cert.h"

#include <arpa/inet.h>
#include <string.h>

void ike_config_identity(const char *text, struct ike_identity *id)
{
    struct in_addr a;

    memset(id, 0, sizeof(*id));
    if (inet_pton(AF_INET, text, &a) == 1) {
        id->type = IKE_ID_IPV4_ADDR;
        memcpy(id->data, &a, 4);
        id->len = 4;
    } else if (strncmp(text, "keyid:", 6) == 0) {
        id->type = IKE_ID_KEY_ID;
        id->len = strnlen(text + 6, IKE_ID_MAX);
        memcpy(id->data, text + 6, id->len);
    } else {
        id->type = IKE_ID_FQDN;
        id->len = strnlen(text, IKE_ID_MAX);
        memcpy(id->data, text, id->len);
    }
}

static uint16_t ike_config_encr(enum cfg_encr e)
{
    switch (e) {
    case CFG_ENCR_AES_GCM16: return IKE_ENCR_AES_GCM_16;
    case CFG_ENCR_AES_CBC: return IKE_ENCR_AES_CBC;
    case CFG_ENCR_CHACHA20_POLY1305: return IKE_ENCR_CHACHA20_POLY1305;
    default: return 0;
    }
}

static uint16_t ike_config_dh(enum cfg_dh d)
{
    switch (d) {
    case CFG_DH_MODP2048: return IKE_DH_MODP2048;
    case CFG_DH_ECP256: return IKE_DH_ECP256;
    case CFG_DH_X25519: return IKE_DH_CURVE25519;
    default: return 0;
    }
}

static void ike_config_add(struct ike_proposal *p, uint8_t type, uint16_t id, uint16_t bits)
{
    if (p->n < IKE_MAX_TRANSFORMS)
        p->t[p->n++] = (struct ike_transform){ type, id, bits, false };
}

void ike_config_proposals(const struct cfg_proposal *in, int n, bool ike, struct ike_sa_payload *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < n && out->n < IKE_MAX_PROPOSALS; i++) {
        const struct cfg_proposal *c = &in[i];
        struct ike_proposal *p = &out->p[out->n++];

        p->num = (uint8_t)out->n;
        p->proto = ike ? IKE_PROTO_IKE : IKE_PROTO_ESP;
        /* ChaCha20-Poly1305 has a fixed key size: no Key Length attribute */
        ike_config_add(p, IKE_TRANS_ENCR, ike_config_encr(c->encr),
                       c->encr == CFG_ENCR_CHACHA20_POLY1305 ? 0 : (uint16_t)c->key_bits);
        if (c->integ == CFG_INTEG_SHA256_128)
            ike_config_add(p, IKE_TRANS_INTEG, IKE_INTEG_HMAC_SHA2_256_128, 0);
        if (ike)
            ike_config_add(p, IKE_TRANS_PRF, c->prf == CFG_PRF_SHA384 ? IKE_PRF_HMAC_SHA2_384 : IKE_PRF_HMAC_SHA2_256, 0);
        for (int d = 0; d < c->n_dh; d++)
            ike_config_add(p, IKE_TRANS_DH, ike_config_dh(c->dh[d]), 0);
        if (!ike)
            ike_config_add(p, IKE_TRANS_ESN, c->esn == CFG_ESN_YES ? IKE_ESN_YES : IKE_ESN_NO, 0);
    }
}

int ike_config_from_tunnel(const struct cfg_tunnel *t, struct ike_peer_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", t->name);
    out->local_addr = t->local.s_addr;
    out->peer_addr = t->peer_any ? 0 : t->peer.s_addr;
    out->port = t->udp_port;
    ike_config_identity(t->local_id, &out->local_id);
    ike_config_identity(t->peer_id, &out->peer_id);
    ike_config_proposals(t->ike, t->n_ike, true, &out->ike_proposals);
    ike_config_proposals(t->esp, t->n_esp, false, &out->esp_proposals);
    for (int i = 0; i < t->n_ports && i < IKE_MAX_PORTS; i++)
        out->ports[out->n_ports++] = t->ports[i];
    out->retransmit_ms = t->retransmit_ms;
    out->retransmit_tries = t->retransmit_tries;
    out->ike_lifetime_s = t->ike_lifetime_s;
    out->child_lifetime_s = t->child_lifetime_s;
    if (t->auth == CFG_AUTH_CERT) {
        out->auth = IKE_PEER_AUTH_CERT;
        return ike_cert_load(&out->cert, t->cert, t->key, t->ca, err, errlen);
    }
    out->auth = IKE_PEER_AUTH_PSK;
    memcpy(out->psk, t->psk.bytes, t->psk.len);
    out->psk_len = t->psk.len;
    return 0;
}
