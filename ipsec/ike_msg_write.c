/* IKEv2 message writing; see ike_msg.h. */
#include "ipsec/ike_msg.h"

#include <string.h>

void ike_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void ike_put32(uint8_t *p, uint32_t v)
{
    ike_put16(p, (uint16_t)(v >> 16));
    ike_put16(p + 2, (uint16_t)v);
}

void ike_put64(uint8_t *p, uint64_t v)
{
    ike_put32(p, (uint32_t)(v >> 32));
    ike_put32(p + 4, (uint32_t)v);
}

void ike_writer_put(struct ike_writer *w, const void *data, size_t len)
{
    if (w->overflow || len > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (len > 0)
        memcpy(w->buf + w->len, data, len);
    w->len += len;
}

void ike_writer_put8(struct ike_writer *w, uint8_t v)
{
    ike_writer_put(w, &v, 1);
}

void ike_writer_put16(struct ike_writer *w, uint16_t v)
{
    uint8_t b[2];

    ike_put16(b, v);
    ike_writer_put(w, b, 2);
}

void ike_writer_put32(struct ike_writer *w, uint32_t v)
{
    uint8_t b[4];

    ike_put32(b, v);
    ike_writer_put(w, b, 4);
}

void ike_writer_init(struct ike_writer *w, uint8_t *buf, size_t cap, const struct ike_header *h)
{
    uint8_t hdr[IKE_HDR_LEN];

    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = cap;
    ike_put64(hdr, h->spi_i);
    ike_put64(hdr + 8, h->spi_r);
    hdr[16] = IKE_PL_NONE;
    hdr[17] = IKE_VERSION;
    hdr[18] = h->exchange;
    hdr[19] = h->flags;
    ike_put32(hdr + 20, h->msg_id);
    ike_put32(hdr + 24, 0);
    ike_writer_put(w, hdr, sizeof(hdr));
    w->np_at = 16;
    w->has_header = true;
}

void ike_writer_init_chain(struct ike_writer *w, uint8_t *buf, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = cap;
    w->np_at = -1;
}

size_t ike_writer_begin(struct ike_writer *w, uint8_t type, bool critical)
{
    size_t start = w->len;

    if (w->np_at < 0)
        w->first_np = type;
    else if (!w->overflow)
        w->buf[w->np_at] = type;
    ike_writer_put8(w, IKE_PL_NONE);
    ike_writer_put8(w, critical ? IKE_PL_CRITICAL : 0);
    ike_writer_put16(w, 0);
    w->np_at = (long)start;
    return start;
}

void ike_writer_end(struct ike_writer *w, size_t start)
{
    size_t len = w->len - start;

    if (w->overflow || len > 0xffff) {
        w->overflow = true;
        return;
    }
    ike_put16(w->buf + start + 2, (uint16_t)len);
}

long ike_writer_finish(struct ike_writer *w)
{
    if (w->overflow)
        return -1;
    if (w->has_header)
        ike_put32(w->buf + 24, (uint32_t)w->len);
    return (long)w->len;
}

void ike_write_sa(struct ike_writer *w, const struct ike_sa_payload *sa)
{
    size_t start = ike_writer_begin(w, IKE_PL_SA, false);

    for (int i = 0; i < sa->n; i++) {
        const struct ike_proposal *p = &sa->p[i];
        size_t pstart = w->len;

        ike_writer_put8(w, i + 1 < sa->n ? 2 : 0);
        ike_writer_put8(w, 0);
        ike_writer_put16(w, 0);
        ike_writer_put8(w, p->num);
        ike_writer_put8(w, p->proto);
        ike_writer_put8(w, p->spi_size);
        ike_writer_put8(w, (uint8_t)p->n);
        ike_writer_put(w, p->spi, p->spi_size);
        for (int t = 0; t < p->n; t++) {
            const struct ike_transform *tr = &p->t[t];

            ike_writer_put8(w, t + 1 < p->n ? 3 : 0);
            ike_writer_put8(w, 0);
            ike_writer_put16(w, tr->key_bits ? 12 : 8);
            ike_writer_put8(w, tr->type);
            ike_writer_put8(w, 0);
            ike_writer_put16(w, tr->id);
            if (tr->key_bits) {
                ike_writer_put16(w, IKE_ATTR_TV | IKE_ATTR_KEY_LENGTH);
                ike_writer_put16(w, tr->key_bits);
            }
        }
        if (!w->overflow)
            ike_put16(w->buf + pstart + 2, (uint16_t)(w->len - pstart));
    }
    ike_writer_end(w, start);
}

void ike_write_ke(struct ike_writer *w, uint16_t group, const uint8_t *data, size_t len)
{
    size_t start = ike_writer_begin(w, IKE_PL_KE, false);

    ike_writer_put16(w, group);
    ike_writer_put16(w, 0);
    ike_writer_put(w, data, len);
    ike_writer_end(w, start);
}

void ike_write_nonce(struct ike_writer *w, const uint8_t *nonce, size_t len)
{
    size_t start = ike_writer_begin(w, IKE_PL_NONCE, false);

    ike_writer_put(w, nonce, len);
    ike_writer_end(w, start);
}

void ike_write_notify(struct ike_writer *w, uint8_t proto, const uint8_t *spi, uint8_t spi_size,
                      uint16_t type, const uint8_t *data, size_t len)
{
    size_t start = ike_writer_begin(w, IKE_PL_NOTIFY, false);

    ike_writer_put8(w, proto);
    ike_writer_put8(w, spi_size);
    ike_writer_put16(w, type);
    ike_writer_put(w, spi, spi_size);
    ike_writer_put(w, data, len);
    ike_writer_end(w, start);
}

void ike_write_id(struct ike_writer *w, uint8_t payload, uint8_t id_type, const uint8_t *data, size_t len)
{
    size_t start = ike_writer_begin(w, payload, false);

    ike_writer_put8(w, id_type);
    ike_writer_put8(w, 0);
    ike_writer_put16(w, 0);
    ike_writer_put(w, data, len);
    ike_writer_end(w, start);
}

void ike_write_auth(struct ike_writer *w, uint8_t method, const uint8_t *data, size_t len)
{
    size_t start = ike_writer_begin(w, IKE_PL_AUTH, false);

    ike_writer_put8(w, method);
    ike_writer_put8(w, 0);
    ike_writer_put16(w, 0);
    ike_writer_put(w, data, len);
    ike_writer_end(w, start);
}

void ike_write_ts(struct ike_writer *w, uint8_t payload, const struct ike_ts_list *ts)
{
    size_t start = ike_writer_begin(w, payload, false);

    ike_writer_put8(w, (uint8_t)ts->n);
    ike_writer_put8(w, 0);
    ike_writer_put16(w, 0);
    for (int i = 0; i < ts->n; i++) {
        ike_writer_put8(w, IKE_TS_IPV4_ADDR_RANGE);
        ike_writer_put8(w, ts->ts[i].ip_proto);
        ike_writer_put16(w, IKE_TS_IPV4_LEN);
        ike_writer_put16(w, ts->ts[i].start_port);
        ike_writer_put16(w, ts->ts[i].end_port);
        ike_writer_put32(w, ts->ts[i].start_addr);
        ike_writer_put32(w, ts->ts[i].end_addr);
    }
    ike_writer_end(w, start);
}

void ike_write_delete(struct ike_writer *w, uint8_t proto, uint8_t spi_size, const uint8_t *spis, uint16_t n)
{
    size_t start = ike_writer_begin(w, IKE_PL_DELETE, false);

    ike_writer_put8(w, proto);
    ike_writer_put8(w, spi_size);
    ike_writer_put16(w, n);
    ike_writer_put(w, spis, (size_t)spi_size * n);
    ike_writer_end(w, start);
}

void ike_write_cert(struct ike_writer *w, uint8_t payload, uint8_t encoding, const uint8_t *data, size_t len)
{
    size_t start = ike_writer_begin(w, payload, false);

    ike_writer_put8(w, encoding);
    ike_writer_put(w, data, len);
    ike_writer_end(w, start);
}
