/*
 * esp_fuzz_corpus DIR: write the seed corpus of fuzz_esp_inbound
 * (tests/fuzz/corpus/fuzz_esp_inbound/) from esproxy's own ESP code:
 * valid packets from esp_output for each fuzz SA, replays, reordering
 * inside the window, an ESN low-32 wrap, bad padding, a dummy packet,
 * truncations and an unknown SPI. Deterministic: same files every run.
 */
#include "tests/fuzz/fuzz_esp_inbound.h"

#include <stdio.h>
#include <stdlib.h>

#define SEED_CAP 8192

static uint8_t seed[SEED_CAP];
static size_t seed_len;
static struct esp_sadb tx, rx;
static struct esp_sa *out[FUZZ_ESP_NSA];

static void seed_write(const char *dir, const char *name)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(seed, 1, seed_len, f) != seed_len) {
        perror(path);
        exit(1);
    }
    fclose(f);
    seed_len = 0;
}

static void seed_add(uint8_t op, const uint8_t *data, size_t len)
{
    size_t n = fuzz_esp_record(seed, seed_len, sizeof(seed), op, data, len);

    if (n == 0) {
        fprintf(stderr, "seed too large\n");
        exit(1);
    }
    seed_len = n;
}

/* A real packet from esp_output on SA i with a plen-byte TCP payload. */
static size_t seed_packet(int i, size_t plen, uint8_t *pkt)
{
    uint8_t buf[2048], payload[1500], *esp;
    size_t tot, len;

    memset(payload, 'A' + i, plen);
    tot = ett_ipv4_tcp(buf, 0x0100000a, 0x0200000a, 40000, 143, 1, payload, plen);
    if (esp_output(&tx, out[i], buf, tot, sizeof(buf), &esp, &len) != 0)
        exit(1);
    memcpy(pkt, esp, len);
    return len;
}

/* A sealed record: sa index, seq, then the body as given. */
static void seed_sealed(int i, uint64_t seq, const uint8_t *body, size_t blen, uint8_t op)
{
    uint8_t rec[600];
    int k;

    rec[0] = (uint8_t)i;
    for (k = 0; k < 8; k++)
        rec[1 + k] = (uint8_t)(seq >> (56 - 8 * k));
    memcpy(rec + 9, body, blen);
    seed_add((uint8_t)(op | 1u), rec, 9 + blen);
}

int main(int argc, char **argv)
{
    uint8_t p1[2048], p2[2048], p3[2048];
    uint8_t good[8] = { 'd', 'a', 't', 'a', 1, 2, 2, 6 }, badpad[8] = { 'x', 1, 3, 3, 1, 2, 3, 6 };
    uint8_t dummy[4] = { 1, 2, 2, 59 };
    size_t n1, n2, n3;
    int i;

    if (argc != 2 || fuzz_esp_setup(&tx, &rx, out) < 0)
        return 2;
    for (i = 0; i < FUZZ_ESP_NSA; i++) {
        char name[64];

        n1 = seed_packet(i, 0, p1);
        n2 = seed_packet(i, 37, p2);
        n3 = seed_packet(i, 1360, p3);
        /* in order, then a duplicate; out of order */
        seed_add(0, p1, n1);
        seed_add(0, p2, n2);
        seed_add(0, p3, n3);
        seed_add(2, p2, n2);
        snprintf(name, sizeof(name), "sa%d-valid-and-replay", i);
        seed_write(argv[1], name);
        seed_add(0, p3, n3);
        seed_add(0, p1, n1);
        seed_add(0, p2, n2);
        seed_add(0, p2, n2 - 1);
        snprintf(name, sizeof(name), "sa%d-reorder-truncated", i);
        seed_write(argv[1], name);
        seed_sealed(i, 1, good, sizeof(good), 0);
        seed_sealed(i, 3, badpad, sizeof(badpad), 0);
        seed_sealed(i, 2, dummy, sizeof(dummy), 2);
        seed_sealed(i, 2, good, sizeof(good), 0);
        snprintf(name, sizeof(name), "sa%d-sealed-padding-dummy", i);
        seed_write(argv[1], name);
    }
    /* ESN: top just below 2^32, then low values after the wrap, then an
     * old one from before the wrap, then one too old. */
    seed_sealed(1, UINT64_C(0xFFFFFF00), good, sizeof(good), 0);
    seed_sealed(1, UINT64_C(0x100000003), good, sizeof(good), 0);
    seed_sealed(1, UINT64_C(0xFFFFFF80), good, sizeof(good), 0);
    seed_sealed(1, UINT64_C(0xFFFFF000), good, sizeof(good), 0);
    seed_write(argv[1], "esn-low32-wrap");
    memcpy(p1, "\x00\x00\x99\x99\x00\x00\x00\x01", 8);
    seed_add(0, p1, 8);
    seed_add(0, p1, 40);
    seed_write(argv[1], "unknown-spi");
    esp_sadb_free(&tx);
    esp_sadb_free(&rx);
    return 0;
}
