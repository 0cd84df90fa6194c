#include "esp.h"

#include "ipsec_log.h"

#include <string.h>

static void esp_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t esp_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t esp_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

uint16_t esp_ipv4_checksum(const uint8_t *hdr, size_t hlen)
{
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i + 1 < hlen; i += 2)
        sum += esp_get16(hdr + i);
    while (sum >> 16)
        sum = (sum & 0xFFFFu) + (sum >> 16);
    return (uint16_t)~sum;
}

/* AAD per RFC 4106 §5: SPI ‖ seq, or SPI ‖ seq_hi ‖ seq_lo with ESN. */
static size_t esp_aad_build(uint8_t aad[12], uint32_t spi, uint64_t seq, bool esn)
{
    esp_put32(aad, spi);
    if (!esn) {
        esp_put32(aad + 4, (uint32_t)seq);
        return 8;
    }
    esp_put32(aad + 4, (uint32_t)(seq >> 32));
    esp_put32(aad + 8, (uint32_t)seq);
    return 12;
}

static void esp_iv_build(uint8_t iv[ESP_IV_LEN], uint64_t seq)
{
    esp_put32(iv, (uint32_t)(seq >> 32));
    esp_put32(iv + 4, (uint32_t)seq);
}

/* Validate the IPv4 header handed down by the netstack. Returns the header
 * length or ESP_E_INVAL; *tot_r is the total length from the header. */
static int esp_ipv4_parse(const uint8_t *buf, size_t ip_len, size_t *tot_r)
{
    size_t hlen, tot;

    if (ip_len < ESP_IPV4_HDR_LEN || (buf[0] >> 4) != 4)
        return ESP_E_INVAL;
    hlen = (size_t)(buf[0] & 0x0Fu) * 4u;
    tot = esp_get16(buf + 2);
    if (hlen < ESP_IPV4_HDR_LEN || tot < hlen || tot > ip_len)
        return ESP_E_INVAL;
    /* Transport mode cannot carry fragments: the ESP payload must be a
     * whole upper-layer segment (RFC 4303 §3.1.1). */
    if ((esp_get16(buf + 6) & 0x3FFFu) != 0)
        return ESP_E_INVAL;
    *tot_r = tot;
    return (int)hlen;
}

/* Reserve the next sequence number, refusing to wrap (RFC 4303 §3.3.3). */
static int esp_seq_next(struct esp_sa *sa, uint64_t *seq_r)
{
    uint64_t max = sa->esn ? UINT64_MAX : UINT32_MAX;

    if (sa->seq_out >= max)
        return ESP_E_SEQ_EXHAUSTED;
    *seq_r = ++sa->seq_out;
    return 0;
}

static size_t esp_trailer_write(uint8_t *end, size_t plen, uint8_t next_header)
{
    size_t pad = (ESP_PAD_ALIGN - ((plen + ESP_TRAILER_LEN) % ESP_PAD_ALIGN)) % ESP_PAD_ALIGN;
    size_t i;

    /* RFC 4303 §2.4: default padding is 1, 2, 3, ... so the receiver can
     * check it. */
    for (i = 0; i < pad; i++)
        end[i] = (uint8_t)(i + 1u);
    end[pad] = (uint8_t)pad;
    end[pad + 1] = next_header;
    return pad + ESP_TRAILER_LEN;
}

int esp_output(struct esp_sadb *db, struct esp_sa *sa, uint8_t *buf, size_t ip_len,
               size_t cap, uint8_t **esp_r, size_t *esp_len_r)
{
    uint8_t aad[12], *esp, *body;
    size_t tot, plen, blen, aad_len;
    uint64_t seq;
    int hlen, rc;

    if (sa == NULL || sa->dir != ESP_SA_OUT || buf == NULL || cap < ip_len)
        return ESP_E_INVAL;
    hlen = esp_ipv4_parse(buf, ip_len, &tot);
    if (hlen < 0)
        return hlen;
    plen = tot - (size_t)hlen;
    if (cap - (size_t)hlen < plen + ESP_OUT_TAILROOM)
        return ESP_E_NOSPACE;
    if (!esp_sa_usable(db, sa))
        return ESP_E_EXPIRED;
    rc = esp_seq_next(sa, &seq);
    if (rc < 0)
        return rc;
    body = buf + hlen;
    blen = plen + esp_trailer_write(body + plen, plen, buf[9]);
    esp = body - ESP_PREFIX_LEN;
    esp_put32(esp, sa->spi);
    esp_put32(esp + 4, (uint32_t)seq);
    esp_iv_build(esp + ESP_HDR_LEN, seq);
    aad_len = esp_aad_build(aad, sa->spi, seq, sa->esn);
    rc = ipsec_aead_seal(&sa->aead, esp + ESP_HDR_LEN, aad, aad_len, body, blen,
                         body + blen);
    if (rc < 0)
        return rc;
    esp_sa_account(db, sa, tot);
    *esp_r = esp;
    *esp_len_r = ESP_PREFIX_LEN + blen + ESP_ICV_LEN;
    return 0;
}

/* Count a failure on the SA (if any) and globally; returns err. */
static int esp_in_fail(struct esp_sadb *db, struct esp_sa *sa, int err)
{
    uint64_t *g = NULL, *s = NULL;

    switch (err) {
    case ESP_E_ICV:
        g = &db->ctr.icv_fail;
        s = sa != NULL ? &sa->ctr.icv_fail : NULL;
        break;
    case ESP_E_REPLAY:
    case ESP_E_TOO_OLD:
        g = &db->ctr.replay;
        s = sa != NULL ? &sa->ctr.replay : NULL;
        break;
    case ESP_E_UNKNOWN_SPI:
        g = &db->ctr.unknown_spi;
        break;
    case ESP_E_PADDING:
        g = &db->ctr.pad_err;
        s = sa != NULL ? &sa->ctr.pad_err : NULL;
        break;
    case ESP_E_EXPIRED:
        break;
    default:
        g = &db->ctr.invalid;
        s = sa != NULL ? &sa->ctr.invalid : NULL;
        break;
    }
    if (g != NULL)
        (*g)++;
    if (s != NULL)
        (*s)++;
    return err;
}

/* RFC 4303 §2.4: the receiver checks the default 1, 2, 3, ... padding.
 * Returns the payload length or ESP_E_PADDING. */
static int esp_trailer_check(const uint8_t *body, size_t blen)
{
    size_t pad = body[blen - 2], i;
    const uint8_t *p;

    if (pad + ESP_TRAILER_LEN > blen)
        return ESP_E_PADDING;
    p = body + blen - ESP_TRAILER_LEN - pad;
    for (i = 0; i < pad; i++) {
        if (p[i] != (uint8_t)(i + 1u))
            return ESP_E_PADDING;
    }
    return (int)(blen - ESP_TRAILER_LEN - pad);
}

/* Write a 20-byte IPv4 header in front of the payload (moving the payload
 * if there is no headroom) and return the packet start. */
static uint8_t *esp_ipv4_rebuild(struct esp_sa *sa, uint8_t *pkt, size_t headroom,
                                 size_t plen, uint8_t proto, uint32_t src, uint32_t dst)
{
    uint8_t *payload = pkt + ESP_PREFIX_LEN, *ip;
    uint16_t csum;

    if (headroom >= ESP_IN_HEADROOM) {
        ip = payload - ESP_IPV4_HDR_LEN;
    } else {
        ip = pkt;
        memmove(pkt + ESP_IPV4_HDR_LEN, payload, plen);
    }
    ip[0] = 0x45;
    ip[1] = 0;
    ip[2] = (uint8_t)((plen + ESP_IPV4_HDR_LEN) >> 8);
    ip[3] = (uint8_t)(plen + ESP_IPV4_HDR_LEN);
    ip[4] = (uint8_t)(sa->ip_id >> 8);
    ip[5] = (uint8_t)sa->ip_id;
    sa->ip_id++;
    ip[6] = 0x40; /* DF: the segment arrived whole */
    ip[7] = 0;
    ip[8] = 64;
    ip[9] = proto;
    ip[10] = 0;
    ip[11] = 0;
    memcpy(ip + 12, &src, 4);
    memcpy(ip + 16, &dst, 4);
    csum = esp_ipv4_checksum(ip, ESP_IPV4_HDR_LEN);
    ip[10] = (uint8_t)(csum >> 8);
    ip[11] = (uint8_t)csum;
    return ip;
}

/* Everything up to and including the ICV; returns the body length. */
static int esp_in_open(struct esp_sadb *db, struct esp_sa *sa, uint8_t *pkt, size_t len,
                       uint64_t *seq_r)
{
    uint8_t aad[12];
    size_t blen = len - ESP_PREFIX_LEN - ESP_ICV_LEN, aad_len;
    uint64_t seq;
    int rc;

    if (!esp_sa_usable(db, sa))
        return ESP_E_EXPIRED;
    seq = ipsec_replay_infer(&sa->replay, esp_get32(pkt + 4));
    rc = ipsec_replay_check(&sa->replay, seq);
    if (rc < 0)
        return rc;
    aad_len = esp_aad_build(aad, sa->spi, seq, sa->esn);
    rc = ipsec_aead_open(&sa->aead, pkt + ESP_HDR_LEN, aad, aad_len,
                         pkt + ESP_PREFIX_LEN, blen, pkt + ESP_PREFIX_LEN + blen);
    if (rc < 0)
        return rc;
    *seq_r = seq;
    return (int)blen;
}

int esp_input(struct esp_sadb *db, uint8_t *pkt, size_t len, size_t headroom,
              uint32_t outer_src, uint32_t outer_dst,
              uint8_t **ip_r, size_t *ip_len_r, struct esp_sa **sa_r)
{
    struct esp_sa *sa;
    uint64_t seq;
    int blen, plen;
    uint8_t *body;

    if (sa_r != NULL)
        *sa_r = NULL;
    if (pkt == NULL || len < ESP_HDR_LEN)
        return esp_in_fail(db, NULL, ESP_E_TRUNCATED);
    sa = esp_sadb_lookup_in(db, esp_get32(pkt));
    if (sa == NULL)
        return esp_in_fail(db, NULL, ESP_E_UNKNOWN_SPI);
    if (sa_r != NULL)
        *sa_r = sa;
    if (len < ESP_MIN_LEN || len - ESP_PREFIX_LEN - ESP_ICV_LEN > ESP_IPV4_MAX_LEN)
        return esp_in_fail(db, sa, ESP_E_TRUNCATED);
    blen = esp_in_open(db, sa, pkt, len, &seq);
    if (blen < 0)
        return esp_in_fail(db, sa, blen);
    body = pkt + ESP_PREFIX_LEN;
    plen = esp_trailer_check(body, (size_t)blen);
    if (plen < 0)
        return esp_in_fail(db, sa, plen);
    if ((size_t)plen + ESP_IPV4_HDR_LEN > ESP_IPV4_MAX_LEN)
        return esp_in_fail(db, sa, ESP_E_INVAL);
    /* Authentic: only now may the window move (RFC 4303 §3.4.3). */
    ipsec_replay_update(&sa->replay, seq);
    if (body[blen - 1] == ESP_NH_NONE) {
        sa->ctr.dummy++;
        db->ctr.dummy++;
        return ESP_DUMMY;
    }
    *ip_r = esp_ipv4_rebuild(sa, pkt, headroom, (size_t)plen, body[blen - 1],
                             outer_src, outer_dst);
    *ip_len_r = (size_t)plen + ESP_IPV4_HDR_LEN;
    esp_sa_account(db, sa, *ip_len_r);
    return 0;
}

const char *esp_err_str(int err)
{
    switch (err) {
    case 0: return "ok";
    case ESP_DUMMY: return "dummy";
    case ESP_E_INVAL: return "invalid";
    case ESP_E_TRUNCATED: return "truncated";
    case ESP_E_UNKNOWN_SPI: return "unknown_spi";
    case ESP_E_REPLAY: return "replay";
    case ESP_E_TOO_OLD: return "too_old";
    case ESP_E_ICV: return "icv";
    case ESP_E_PADDING: return "padding";
    case ESP_E_SEQ_EXHAUSTED: return "seq_exhausted";
    case ESP_E_NOSPACE: return "nospace";
    case ESP_E_EXPIRED: return "expired";
    case ESP_E_CRYPTO: return "crypto";
    case ESP_E_NOMEM: return "nomem";
    case ESP_E_EXISTS: return "exists";
    case ESP_E_IO: return "io";
    }
    return "unknown";
}
