/*
 * Helpers shared by the ESP unit tests, the fuzz harness and the ESP test
 * tools: hex decoding, synthetic IPv4/TCP packets, SA pairs, and a raw
 * ESP sealer that can build authentic packets with arbitrary bodies (bad
 * padding, dummy next header) which esp_output would never produce.
 * Header-only (static inline) so every user compiles its own copy.
 */
#ifndef ESPROXY_TESTS_ESP_TEST_UTIL_H
#define ESPROXY_TESTS_ESP_TEST_UTIL_H

#include "ipsec/aead.h"
#include "ipsec/esp.h"
#include "ipsec/sadb.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Decode hex, skipping whitespace; returns bytes written or -1. */
static inline int ett_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    for (; *hex != '\0'; hex++) {
        int v;
        char c = *hex;

        if (c == ' ' || c == '\n' || c == '\t' || c == ':')
            continue;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return -1;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    return hi < 0 ? (int)n : -1;
}

static inline uint16_t ett_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFFu) + (sum >> 16);
    return (uint16_t)~sum;
}

static inline uint32_t ett_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1u)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

/* Build IPv4 (20 bytes) + TCP (20 bytes, PSH|ACK) + payload at buf with
 * correct checksums. src/dst in network order. Returns total length. */
static inline size_t ett_ipv4_tcp(uint8_t *buf, uint32_t src, uint32_t dst,
                                  uint16_t sport, uint16_t dport, uint32_t tseq,
                                  const uint8_t *payload, size_t plen)
{
    size_t tot = 40 + plen;
    uint8_t *tcp = buf + 20, pseudo[12];
    uint16_t c;

    memset(buf, 0, 40);
    buf[0] = 0x45;
    buf[2] = (uint8_t)(tot >> 8);
    buf[3] = (uint8_t)tot;
    buf[6] = 0x40;
    buf[8] = 64;
    buf[9] = 6;
    memcpy(buf + 12, &src, 4);
    memcpy(buf + 16, &dst, 4);
    c = ett_csum_fold(ett_csum_add(0, buf, 20));
    buf[10] = (uint8_t)(c >> 8);
    buf[11] = (uint8_t)c;
    tcp[0] = (uint8_t)(sport >> 8);
    tcp[1] = (uint8_t)sport;
    tcp[2] = (uint8_t)(dport >> 8);
    tcp[3] = (uint8_t)dport;
    tcp[4] = (uint8_t)(tseq >> 24);
    tcp[5] = (uint8_t)(tseq >> 16);
    tcp[6] = (uint8_t)(tseq >> 8);
    tcp[7] = (uint8_t)tseq;
    tcp[8] = 0;
    tcp[11] = 1; /* ack number 1 */
    tcp[12] = 0x50;
    tcp[13] = 0x18;
    tcp[14] = 0xFF;
    tcp[15] = 0xFF;
    memcpy(tcp + 20, payload, plen);
    memcpy(pseudo, buf + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 6;
    pseudo[10] = (uint8_t)((20 + plen) >> 8);
    pseudo[11] = (uint8_t)(20 + plen);
    c = ett_csum_fold(ett_csum_add(ett_csum_add(0, pseudo, 12), tcp, 20 + plen));
    tcp[16] = (uint8_t)(c >> 8);
    tcp[17] = (uint8_t)c;
    return tot;
}

static inline void ett_keymat(uint8_t *km, size_t len, uint8_t seed)
{
    size_t i;

    for (i = 0; i < len; i++)
        km[i] = (uint8_t)(seed + i * 7u);
}

/* Install the same key as an outbound SA in out_db and an inbound SA in
 * in_db (a sender and its receiver). */
static inline int ett_sa_pair(struct esp_sadb *out_db, struct esp_sadb *in_db,
                              uint32_t spi, enum ipsec_aead_alg alg, bool esn,
                              struct esp_sa **out_r, struct esp_sa **in_r)
{
    uint8_t km[IPSEC_AEAD_KEYMAT_MAX];
    struct esp_sa_params p;
    int rc;

    memset(&p, 0, sizeof(p));
    ett_keymat(km, sizeof(km), (uint8_t)spi);
    p.spi = spi;
    p.alg = alg;
    p.keymat = km;
    p.keymat_len = ipsec_aead_keymat_len(alg);
    p.esn = esn;
    p.src = htonl(0x0A630001u);
    p.dst = htonl(0x0A630002u);
    p.dir = ESP_SA_OUT;
    rc = esp_sadb_add(out_db, &p, out_r);
    if (rc < 0)
        return rc;
    p.dir = ESP_SA_IN;
    return esp_sadb_add(in_db, &p, in_r);
}

/* Seal an arbitrary ESP body (payload ‖ trailer as the caller wants it)
 * with aead under (spi, seq, esn). Writes header, IV, body, ICV to out;
 * returns the packet length. The IV is the sequence number, as esp.c. */
static inline size_t ett_esp_seal_raw(struct ipsec_aead *aead, uint32_t spi,
                                      uint64_t seq, bool esn, const uint8_t *body,
                                      size_t blen, uint8_t *out)
{
    uint8_t aad[12];
    size_t aad_len = esn ? 12 : 8;
    uint32_t v[3] = { htonl(spi), htonl((uint32_t)(seq >> 32)), htonl((uint32_t)seq) };

    memcpy(aad, &v[0], 4);
    if (esn) {
        memcpy(aad + 4, &v[1], 4);
        memcpy(aad + 8, &v[2], 4);
    } else {
        memcpy(aad + 4, &v[2], 4);
    }
    memcpy(out, &v[0], 4);
    memcpy(out + 4, &v[2], 4);
    memcpy(out + 8, &v[1], 4);
    memcpy(out + 12, &v[2], 4);
    memcpy(out + 16, body, blen);
    if (ipsec_aead_seal(aead, out + 8, aad, aad_len, out + 16, blen, out + 16 + blen) < 0)
        return 0;
    return 16 + blen + 16;
}

#endif
