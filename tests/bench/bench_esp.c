/*
 * bench_esp: ESP encrypt+decrypt of 1400-byte IPv4 packets through
 * esp_output/esp_input versus the raw mbedTLS AEAD calls on the same
 * buffer, in the same run, for AES-GCM-128, AES-GCM-256 and
 * ChaCha20-Poly1305.
 *
 * Fairness: the raw calls process exactly as many bytes as ESP puts
 * through the cipher (the 1380-byte TCP segment plus padding and trailer,
 * 1384 bytes) with the same 8- or 12-byte AAD, in place, on the same
 * buffer, so the ratio measures what the ESP layer adds: headers, trailer,
 * replay window, SA lookup, accounting and the rebuilt IPv4 header.
 * Rounds interleave ESP and raw (alternating which goes first); the
 * median over rounds is reported. Target: ESP >= 0.9 of raw throughput.
 * Exit status 1 if a ratio is below BENCH_ESP_MIN_RATIO (default 0.9).
 */
#include "ipsec/esp.h"
#include "tests/unit/esp_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PKT_LEN 1400u
#define ROUNDS 15
#define BUF_CAP 2048u
#define HEADROOM 64u

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

struct bench {
    struct esp_sadb tx, rx;
    struct esp_sa *out, *in;
    struct ipsec_aead raw;
    uint8_t mem[BUF_CAP];
    size_t body_len;
};

/* One packet out and back in; the round trip lands the IPv4 packet at the
 * same place, so the loop needs no copies. */
static int bench_esp_once(struct bench *b)
{
    uint8_t *ip = b->mem + HEADROOM, *esp, *back;
    size_t esp_len, back_len;

    if (esp_output(&b->tx, b->out, ip, PKT_LEN, BUF_CAP - HEADROOM, &esp, &esp_len) != 0)
        return -1;
    if (esp_input(&b->rx, esp, esp_len, (size_t)(esp - b->mem), 1, 2, &back, &back_len,
                  NULL) != 0 || back != ip || back_len != PKT_LEN)
        return -1;
    return 0;
}

static int bench_raw_once(struct bench *b, uint64_t n)
{
    uint8_t *body = b->mem + HEADROOM + 20, iv[8], aad[8], tag[16];

    memcpy(iv, &n, 8);
    memcpy(aad, &n, 8);
    if (ipsec_aead_seal(&b->raw, iv, aad, sizeof(aad), body, b->body_len, tag) != 0)
        return -1;
    return ipsec_aead_open(&b->raw, iv, aad, sizeof(aad), body, b->body_len, tag);
}

static double bench_round(struct bench *b, int esp, uint64_t iters, uint64_t *n)
{
    double t0 = now_s();
    uint64_t i;

    for (i = 0; i < iters; i++, (*n)++) {
        if ((esp ? bench_esp_once(b) : bench_raw_once(b, *n)) != 0) {
            fprintf(stderr, "bench_esp: %s round trip failed\n", esp ? "ESP" : "raw");
            exit(2);
        }
    }
    /* bytes of IPv4 packets per second, each encrypted and decrypted */
    return (double)iters * PKT_LEN / (now_s() - t0);
}

static double bench_alg(enum ipsec_aead_alg alg, uint64_t iters)
{
    static struct bench b;
    uint8_t km[IPSEC_AEAD_KEYMAT_MAX], payload[PKT_LEN - 40];
    double esp_rate[ROUNDS], raw_rate[ROUNDS], ratios[ROUNDS], ratio;
    uint64_t n = 1;
    int r;

    memset(payload, 0x42, sizeof(payload));
    if (esp_sadb_init(&b.tx, 16) < 0 || esp_sadb_init(&b.rx, 16) < 0 ||
        ett_sa_pair(&b.tx, &b.rx, 0x7000, alg, false, &b.out, &b.in) < 0)
        exit(2);
    ett_keymat(km, sizeof(km), 0x33);
    if (ipsec_aead_init(&b.raw, alg, km, ipsec_aead_keymat_len(alg)) < 0)
        exit(2);
    ett_ipv4_tcp(b.mem + HEADROOM, 1, 2, 3, 4, 5, payload, sizeof(payload));
    /* segment + pad to 4 + 2-byte trailer, what ESP actually encrypts */
    b.body_len = ((PKT_LEN - 20 + 2 + 3) / 4) * 4;
    bench_round(&b, 1, iters / 10, &n);     /* warm up both paths */
    bench_round(&b, 0, iters / 10, &n);
    for (r = 0; r < ROUNDS; r++) {
        /* Alternate which side goes first so neither always runs on a
         * warmer (or more contended) CPU. */
        if (r % 2 == 0) {
            esp_rate[r] = bench_round(&b, 1, iters, &n);
            raw_rate[r] = bench_round(&b, 0, iters, &n);
        } else {
            raw_rate[r] = bench_round(&b, 0, iters, &n);
            esp_rate[r] = bench_round(&b, 1, iters, &n);
        }
    }
    /* Ratio per round (ESP and raw ran back to back), then the median:
     * robust against load that changes between rounds. */
    for (r = 0; r < ROUNDS; r++)
        ratios[r] = esp_rate[r] / raw_rate[r];
    qsort(ratios, ROUNDS, sizeof(double), cmp_double);
    qsort(esp_rate, ROUNDS, sizeof(double), cmp_double);
    qsort(raw_rate, ROUNDS, sizeof(double), cmp_double);
    ratio = ratios[ROUNDS / 2];
    printf("%-18s esp %8.1f MB/s  raw aead %8.1f MB/s  (median of %d, %zu-byte packets,"
           " %zu bytes through the cipher)  median ratio %.3f\n",
           ipsec_aead_name(alg), esp_rate[ROUNDS / 2] / 1e6, raw_rate[ROUNDS / 2] / 1e6,
           ROUNDS, (size_t)PKT_LEN, b.body_len, ratio);
    ipsec_aead_free(&b.raw);
    esp_sadb_free(&b.tx);
    esp_sadb_free(&b.rx);
    return ratio;
}

int main(int argc, char **argv)
{
    enum ipsec_aead_alg algs[] = { IPSEC_AEAD_AES_GCM_128, IPSEC_AEAD_AES_GCM_256,
                                   IPSEC_AEAD_CHACHA20_POLY1305 };
    const char *env = getenv("BENCH_ESP_MIN_RATIO");
    double min_ratio = env != NULL ? atof(env) : 0.9, worst = 1e9, ratio;
    uint64_t iters = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000;
    size_t i;

    for (i = 0; i < 3; i++) {
        ratio = bench_alg(algs[i], iters);
        if (ratio < worst)
            worst = ratio;
    }
    printf("bench_esp: worst ratio %.3f, target >= %.2f: %s\n", worst, min_ratio,
           worst >= min_ratio ? "met" : "NOT MET");
    return worst >= min_ratio ? 0 : 1;
}
