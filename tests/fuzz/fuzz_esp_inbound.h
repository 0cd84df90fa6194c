/*
 * Shared by the inbound ESP fuzz harness and its seed generator
 * (tests/tools/esp_fuzz_corpus.c): the fixed SAs and the input format.
 *
 * An input is a sequence of records, all fed to one fresh SA database so
 * the replay window sees sequences of packets:
 *
 *   op (1 byte) | len (2 bytes, big endian) | data (len bytes)
 *
 *   op bit 0 clear: data is a raw UDP payload for esp_input (exercises
 *                   parsing, SPI lookup, replay pre-check, ICV).
 *   op bit 0 set:   data = sa index (1) | seq (8, big endian) | body; the
 *                   harness seals body with that SA's real key, so the
 *                   packet authenticates and the fuzzer reaches padding,
 *                   next-header, header rebuild and window update.
 *   op bit 1 set:   no headroom before the packet (memmove path).
 */
#ifndef ESPROXY_TESTS_FUZZ_ESP_INBOUND_H
#define ESPROXY_TESTS_FUZZ_ESP_INBOUND_H

#include "tests/unit/esp_test_util.h"

#define FUZZ_ESP_NSA 3

static const struct {
    uint32_t spi;
    enum ipsec_aead_alg alg;
    bool esn;
} fuzz_esp_sas[FUZZ_ESP_NSA] = {
    { 0x00001001u, IPSEC_AEAD_AES_GCM_128, false },
    { 0x00001002u, IPSEC_AEAD_AES_GCM_256, true },
    { 0x00001003u, IPSEC_AEAD_CHACHA20_POLY1305, true },
};

/* Inbound SAs in rx; outbound twins with the same keys in tx (distinct
 * peers, since one peer has one outbound SA). Keys as ett_sa_pair's. */
static inline int fuzz_esp_setup(struct esp_sadb *tx, struct esp_sadb *rx,
                                 struct esp_sa *out[FUZZ_ESP_NSA])
{
    uint8_t km[IPSEC_AEAD_KEYMAT_MAX];
    struct esp_sa_params p;
    int i;

    if (esp_sadb_init(tx, 16) < 0 || esp_sadb_init(rx, 16) < 0)
        return -1;
    for (i = 0; i < FUZZ_ESP_NSA; i++) {
        memset(&p, 0, sizeof(p));
        ett_keymat(km, sizeof(km), (uint8_t)fuzz_esp_sas[i].spi);
        p.spi = fuzz_esp_sas[i].spi;
        p.alg = fuzz_esp_sas[i].alg;
        p.keymat = km;
        p.keymat_len = ipsec_aead_keymat_len(p.alg);
        p.esn = fuzz_esp_sas[i].esn;
        p.dst = (uint32_t)i + 1u;
        p.dir = ESP_SA_IN;
        if (esp_sadb_add(rx, &p, NULL) < 0)
            return -1;
        p.dir = ESP_SA_OUT;
        if (esp_sadb_add(tx, &p, &out[i]) < 0)
            return -1;
    }
    return 0;
}

/* Append one record; returns the new length or 0 if it does not fit. */
static inline size_t fuzz_esp_record(uint8_t *buf, size_t used, size_t cap, uint8_t op,
                                     const uint8_t *data, size_t len)
{
    if (len > 0xFFFFu || used + 3 + len > cap)
        return 0;
    buf[used] = op;
    buf[used + 1] = (uint8_t)(len >> 8);
    buf[used + 2] = (uint8_t)len;
    memcpy(buf + used + 3, data, len);
    return used + 3 + len;
}

#endif
