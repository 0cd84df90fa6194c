/*
 * IKEv2 message parsing. Each function validates lengths before reading;
 * see ike_msg.h for conventions.
 */
#include "ipsec/ike_msg.h"

#include <string.h>

#define SYNTAX (-IKE_N_INVALID_SYNTAX)

uint16_t ike_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t ike_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t ike_get64(const uint8_t *p)
{
    return (uint64_t)ike_get32(p) << 32 | ike_get32(p + 4);
}

int ike_header_parse(const uint8_t *msg, size_t len, struct ike_header *h)
{
    if (len < IKE_HDR_LEN)
        return SYNTAX;
    h->spi_i = ike_get64(msg);
    h->spi_r = ike_get64(msg + 8);
    h->next_payload = msg[16];
    h->version = msg[17];
    h->exchange = msg[18];
    h->flags = msg[19];
    h->msg_id = ike_get32(msg + 20);
    h->length = ike_get32(msg + 24);
    if ((h->version >> 4) != 2)
        return -IKE_N_INVALID_MAJOR_VERSION;
    if (h->length != len)
        return SYNTAX;
    return 0;
}

static bool ike_payload_type_known(uint8_t type)
{
    return (type >= IKE_PL_SA && type <= IKE_PL_EAP) || type == IKE_PL_SKF;
}

int ike_payloads_parse(uint8_t first, const uint8_t *buf, size_t len, struct ike_payload_list *out)
{
    uint8_t type = first;
    size_t off = 0;

    memset(out, 0, sizeof(*out));
    while (type != IKE_PL_NONE) {
        struct ike_payload *p;
        uint16_t plen;

        if (len - off < IKE_PAYLOAD_HDR_LEN || out->n >= IKE_MAX_PAYLOADS)
            return SYNTAX;
        plen = ike_get16(buf + off + 2);
        if (plen < IKE_PAYLOAD_HDR_LEN || plen > len - off)
            return SYNTAX;
        p = &out->pl[out->n++];
        p->type = type;
        p->next = buf[off];
        p->critical = (buf[off + 1] & IKE_PL_CRITICAL) != 0;
        p->body = buf + off + IKE_PAYLOAD_HDR_LEN;
        p->len = plen - IKE_PAYLOAD_HDR_LEN;
        p->offset = off;
        off += plen;
        if (!ike_payload_type_known(type) && p->critical && out->unsupported_critical == 0)
            out->unsupported_critical = type;
        if (type == IKE_PL_SK || type == IKE_PL_SKF) {
            /* encrypted payloads are last; their Next Payload names the
             * first inner payload */
            if (off != len)
                return SYNTAX;
            return 0;
        }
        type = p->next;
    }
    return off == len ? 0 : SYNTAX;
}

const struct ike_payload *ike_payload_find(const struct ike_payload_list *l, uint8_t type)
{
    for (int i = 0; i < l->n; i++)
        if (l->pl[i].type == type)
            return &l->pl[i];
    return NULL;
}

static int ike_transform_parse(const uint8_t *b, size_t len, struct ike_transform *t)
{
    size_t off = 8;

    /* last/more(1) reserved(1) length(2) type(1) reserved(1) id(2) attrs */
    memset(t, 0, sizeof(*t));
    t->type = b[4];
    t->id = ike_get16(b + 6);
    while (off < len) {
        uint16_t af;

        if (len - off < 4)
            return SYNTAX;
        af = ike_get16(b + off);
        if (af & IKE_ATTR_TV) {
            if ((af & 0x7fff) == IKE_ATTR_KEY_LENGTH)
                t->key_bits = ike_get16(b + off + 2);
            else
                t->unusable = true;
            off += 4;
        } else {
            uint16_t alen = ike_get16(b + off + 2);

            if (alen > len - off - 4)
                return SYNTAX;
            t->unusable = true;
            off += 4 + (size_t)alen;
        }
    }
    return 0;
}

static int ike_proposal_parse(const uint8_t *b, size_t len, struct ike_proposal *p)
{
    size_t off;
    int n_trans;
    uint8_t more = 3;

    /* last/more(1) reserved(1) length(2) num(1) proto(1) spi_size(1) n_trans(1) spi */
    if (len < 8)
        return SYNTAX;
    memset(p, 0, sizeof(*p));
    p->num = b[4];
    p->proto = b[5];
    p->spi_size = b[6];
    n_trans = b[7];
    if (p->spi_size > IKE_MAX_SPI || len - 8 < p->spi_size)
        return SYNTAX;
    memcpy(p->spi, b + 8, p->spi_size);
    off = 8 + p->spi_size;
    for (int i = 0; i < n_trans; i++) {
        uint16_t tlen;

        if (more != 3 || len - off < 8)
            return SYNTAX;
        more = b[off];
        tlen = ike_get16(b + off + 2);
        if (tlen < 8 || tlen > len - off || (more != 0 && more != 3))
            return SYNTAX;
        if (p->n < IKE_MAX_TRANSFORMS && ike_transform_parse(b + off, tlen, &p->t[p->n++]) != 0)
            return SYNTAX;
        off += tlen;
    }
    return (more == 0 && off == len) ? 0 : SYNTAX;
}

int ike_sa_parse(const uint8_t *body, size_t len, struct ike_sa_payload *out)
{
    size_t off = 0;
    uint8_t more = 2;

    memset(out, 0, sizeof(*out));
    while (more == 2) {
        uint16_t plen;

        if (len - off < 8)
            return SYNTAX;
        more = body[off];
        plen = ike_get16(body + off + 2);
        if (plen < 8 || plen > len - off || (more != 0 && more != 2))
            return SYNTAX;
        if (out->n < IKE_MAX_PROPOSALS) {
            if (ike_proposal_parse(body + off, plen, &out->p[out->n]) != 0)
                return SYNTAX;
            /* proposal numbers start at 1 and go up by one (§3.3.1) */
            if (out->p[out->n].num != (out->n ? out->p[out->n - 1].num + 1 : 1))
                return SYNTAX;
            out->n++;
        }
        off += plen;
    }
    return (off == len && out->n > 0) ? 0 : SYNTAX;
}

int ike_ke_parse(const uint8_t *body, size_t len, uint16_t *group, const uint8_t **data, size_t *data_len)
{
    if (len < 4 + 1)
        return SYNTAX;
    *group = ike_get16(body);
    *data = body + 4;
    *data_len = len - 4;
    return 0;
}

int ike_nonce_parse(const uint8_t *body, size_t len)
{
    (void)body;
    return (len >= IKE_NONCE_MIN && len <= IKE_NONCE_MAX) ? 0 : SYNTAX;
}

int ike_notify_parse(const uint8_t *body, size_t len, struct ike_notify *n)
{
    if (len < 4)
        return SYNTAX;
    n->proto = body[0];
    n->spi_size = body[1];
    n->type = ike_get16(body + 2);
    if (len - 4 < n->spi_size)
        return SYNTAX;
    n->spi = body + 4;
    n->data = body + 4 + n->spi_size;
    n->data_len = len - 4 - n->spi_size;
    return 0;
}

int ike_id_parse(const uint8_t *body, size_t len, uint8_t *type, const uint8_t **data, size_t *data_len)
{
    if (len < 4 + 1)
        return SYNTAX;
    *type = body[0];
    *data = body + 4;
    *data_len = len - 4;
    if (*type == IKE_ID_IPV4_ADDR && *data_len != 4)
        return SYNTAX;
    return 0;
}

int ike_auth_parse(const uint8_t *body, size_t len, uint8_t *method, const uint8_t **data, size_t *data_len)
{
    if (len < 4 + 1)
        return SYNTAX;
    *method = body[0];
    *data = body + 4;
    *data_len = len - 4;
    return 0;
}

int ike_ts_parse(const uint8_t *body, size_t len, struct ike_ts_list *out)
{
    size_t off = 4;
    int count;

    memset(out, 0, sizeof(*out));
    if (len < 4)
        return SYNTAX;
    count = body[0];
    if (count == 0)
        return SYNTAX;
    for (int i = 0; i < count; i++) {
        uint16_t tslen;

        if (len - off < 4)
            return SYNTAX;
        tslen = ike_get16(body + off + 2);
        if (tslen < 8 || tslen > len - off)
            return SYNTAX;
        if (body[off] == IKE_TS_IPV4_ADDR_RANGE) {
            struct ike_ts *ts;

            if (tslen != IKE_TS_IPV4_LEN)
                return SYNTAX;
            if (out->n < IKE_MAX_TS) {
                ts = &out->ts[out->n++];
                ts->ip_proto = body[off + 1];
                ts->start_port = ike_get16(body + off + 4);
                ts->end_port = ike_get16(body + off + 6);
                ts->start_addr = ike_get32(body + off + 8);
                ts->end_addr = ike_get32(body + off + 12);
            }
        }
        /* other TS types (IPv6, FC) are skipped: they never match ours */
        off += tslen;
    }
    return off == len ? 0 : SYNTAX;
}

int ike_delete_parse(const uint8_t *body, size_t len, struct ike_delete *out)
{
    if (len < 4)
        return SYNTAX;
    out->proto = body[0];
    out->spi_size = body[1];
    out->n_spi = ike_get16(body + 2);
    out->spis = body + 4;
    if (out->proto == IKE_PROTO_IKE)
        return (out->spi_size == 0 && out->n_spi == 0 && len == 4) ? 0 : SYNTAX;
    if (out->spi_size != 4 || (size_t)out->n_spi * 4 != len - 4)
        return SYNTAX;
    return 0;
}

int ike_cert_parse(const uint8_t *body, size_t len, uint8_t *encoding, const uint8_t **data, size_t *data_len)
{
    if (len < 2)
        return SYNTAX;
    *encoding = body[0];
    *data = body + 1;
    *data_len = len - 1;
    return 0;
}
