/*
 * libFuzzer harness for the inbound ESP path: decapsulation (parsing, SPI
 * lookup, ESN inference, ICV, padding, header rebuild) and the replay
 * window, over sequences of packets. Input format: fuzz_esp_inbound.h.
 * Invariants checked beyond "no crash": an accepted packet yields a
 * well-formed IPv4 header inside the input buffer, and the window top
 * never moves on a rejected packet.
 */
#include "tests/fuzz/fuzz_esp_inbound.h"

#include <stdlib.h>

#define FUZZ_HEADROOM 16u

static void fuzz_check_ip(const uint8_t *ip, size_t ip_len, const uint8_t *lo,
                          const uint8_t *hi)
{
    if (ip < lo || ip + ip_len > hi || ip_len < 20 || ip[0] != 0x45 ||
        (size_t)(ip[2] << 8 | ip[3]) != ip_len || esp_ipv4_checksum(ip, 20) != 0)
        abort();
}

static void fuzz_one(struct esp_sadb *rx, struct esp_sa **out, uint8_t op,
                     const uint8_t *data, size_t len)
{
    uint8_t *mem = malloc(FUZZ_HEADROOM + len + 64), *pkt, *ip = NULL;
    size_t headroom = (op & 2u) ? 0 : FUZZ_HEADROOM, plen = len, ip_len = 0;
    uint64_t top_before[FUZZ_ESP_NSA];
    struct esp_sa *sa = NULL;
    int rc, i;

    if (mem == NULL)
        return;
    pkt = mem + headroom;
    if ((op & 1u) && len >= 9) {
        uint64_t seq = 0;
        size_t k;

        for (k = 1; k < 9; k++)
            seq = seq << 8 | data[k];
        i = data[0] % FUZZ_ESP_NSA;
        plen = ett_esp_seal_raw(&out[i]->aead, fuzz_esp_sas[i].spi, seq,
                                fuzz_esp_sas[i].esn, data + 9, len - 9, pkt);
    } else {
        memcpy(pkt, data, len);
    }
    for (i = 0; i < FUZZ_ESP_NSA; i++)
        top_before[i] = esp_sadb_lookup_in(rx, fuzz_esp_sas[i].spi)->replay.top;
    rc = esp_input(rx, pkt, plen, headroom, 0x0100000a, 0x0200000a, &ip, &ip_len, &sa);
    if (rc == 0)
        fuzz_check_ip(ip, ip_len, mem, mem + FUZZ_HEADROOM + len + 64);
    for (i = 0; i < FUZZ_ESP_NSA && rc < 0; i++) {
        if (esp_sadb_lookup_in(rx, fuzz_esp_sas[i].spi)->replay.top != top_before[i])
            abort();
    }
    free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct esp_sadb tx, rx;
    struct esp_sa *out[FUZZ_ESP_NSA];
    size_t off = 0, len;

    if (fuzz_esp_setup(&tx, &rx, out) < 0)
        abort();
    while (off + 3 <= size) {
        len = (size_t)data[off + 1] << 8 | data[off + 2];
        if (len > size - off - 3)
            len = size - off - 3;
        fuzz_one(&rx, out, data[off], data + off + 3, len);
        off += 3 + len;
    }
    esp_sadb_free(&tx);
    esp_sadb_free(&rx);
    return 0;
}
