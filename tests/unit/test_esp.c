/*
 * ESP transport mode (ipsec/esp.c) end to end through the SA database.
 *
 * Known-answer packets: complete ESP packets published in
 *  - draft-mcgrew-gcm-test-01 "Test Cases for the use of GCM in IPsec ESP"
 *    (cases 1, 3, 8, 9: AES-GCM-128/256, 32-bit and extended sequence
 *    numbers), and
 *  - RFC 7634 Appendix A (ChaCha20-Poly1305 ESP example),
 * are fed to esp_input exactly as they appear on the wire; the SA keys,
 * salts and SPIs are the published ones. These packets are tunnel-mode
 * examples, so the "payload" we hand up is their inner bytes; what matters
 * here is header parsing, nonce and AAD construction (including ESN high
 * bits inferred from the window), ICV, and trailer handling.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>

#include "ipsec/esp.h"
#include "tests/unit/esp_test_util.h"

#define HEADROOM 64
#define BUFSZ 2048

struct esp_kat {
    const char *name;
    enum ipsec_aead_alg alg;
    const char *keymat;   /* key ‖ salt */
    uint32_t spi;
    bool esn;
    uint64_t window_top;  /* replay state before the packet (ESN tests) */
    uint64_t seq;         /* full sequence number the packet carries */
    const char *packet;
    const char *payload;  /* decrypted body without padding and trailer */
    uint8_t next_header;
};

static const struct esp_kat esp_kats[] = {
    { "gcm-test-01 case 3: AES-256, 32-bit", IPSEC_AEAD_AES_GCM_256,
      "abbccddef00112233445566778899aababbccddef00112233445566778899aab 11223344",
      0x4a2cbfe3, false, 0, 2,
      "4a2cbfe3000000020102030405060708ff425c9b724599df7a3bcd510194e00d"
      "6a78107f1b0b1cbf06efae9d65a5d763748a637985771d347f0545659f14e99d"
      "ef842d8eb335f4eecfdbf831824b4c4915956c96",
      "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000"
      "7002400020bf0000020405b401010402", 1 },
    { "gcm-test-01 case 8: AES-128, ESN 1", IPSEC_AEAD_AES_GCM_128,
      "abbccddef00112233445566778899aab decaf888", 0x00000100, true, 0, 1,
      "0000010000000001cafedebaceface7418a6fd42f72cbf4ab2a2ea901f73d814"
      "e3e7f243d95412e1c349c1d2fbec168f9190feebaf2cb01984e65863965d7472"
      "b79da345e0e780191f0d2f0e0f496c226f2127b27db35724e7845d68651f57e6"
      "5f354f75ff17015769623436",
      "4500004933ba00007f119106c3fb1d10c2b1d326c02831ce0035dd7b800302d5"
      "00004e20001e8c18d75b81dc91baa0476b91b924b280389d92c963bac046ec95"
      "9b6266c04722b14923", 1 },
    /* Low 32 bits 0 on the wire; the window top sits just below 2^32 in
     * subspace 0x87654320, so RFC 4303 A2.2 must infer 0x87654321. */
    { "gcm-test-01 case 1: AES-128, ESN across a low-32 wrap",
      IPSEC_AEAD_AES_GCM_128, "4c80cdefbb5d10da906ac73c3613a634 2e443b68",
      0x00004321, true, UINT64_C(0x87654320FFFFFF00), UINT64_C(0x8765432100000000),
      "00004321000000004956ed7e3b244cfefecf537e729d5b07dc30df528dd22b76"
      "8d1b98736696a6fd348509fa13ceac34cfa2436f14a3f3cf65925bf1f4a13c5d"
      "15b21e1884f5ff6247aeabb786b93bce61bc17d768fd9732459018148f6cbe72"
      "2fd04796562dfdb4",
      "45000048699a000080114db7c0a80102c0a801010a9bf15638d3010000010000"
      "00000000045f736970045f756470037369700963796265726369747902646b00"
      "00210001", 1 },
    { "gcm-test-01 case 9: AES-256, ESN high bits from window",
      IPSEC_AEAD_AES_GCM_256,
      "abbccddef00112233445566778899aababbccddef00112233445566778899aab 73616c74",
      0x17405e67, true, UINT64_C(0x156f3126dd0db000), UINT64_C(0x156f3126dd0db99b),
      "17405e67dd0db99b616e640169766563f2d69ecdbd5a0d5b8d5ef38bad4da58d"
      "1f278fde98ef67549d524a3018d9a57ff4d3a31ce673119e451626c2415771e3"
      "b7eebca614c89b35",
      "45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb712602"
      "50101f646d54", 1 },
    { "rfc7634 appendix A: ChaCha20-Poly1305", IPSEC_AEAD_CHACHA20_POLY1305,
      "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3",
      0x01020304, false, 0, 5,
      "0102030400000005101112131415161724039428b97f417e3c13753a4f05087b"
      "67c352e6a7fab1b982d466ef407ae5c614ee8099d52844eb61aa95dfab4c02f7"
      "2aa71e7c4c4f64c9befe2facc638e8f3cbec163fac469b502773f6fb94e664da"
      "9165b82829f641e076aaa8266b7fb0f7b11b369907e1ad43",
      "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10"
      "00073627080 90a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
      "2425262728292a2b2c2d2e2f3031323334353637", 4 },
};

struct fixture {
    struct esp_sadb tx, rx;
    struct esp_sa *out, *in;
    uint8_t mem[BUFSZ];
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(esp_sadb_init(&f->tx, 16), 0);
    assert_int_equal(esp_sadb_init(&f->rx, 16), 0);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;

    esp_sadb_free(&f->tx);
    esp_sadb_free(&f->rx);
    free(f);
    return 0;
}

static void kat_install(struct esp_sadb *db, const struct esp_kat *k, struct esp_sa **sa_r)
{
    uint8_t km[IPSEC_AEAD_KEYMAT_MAX];
    struct esp_sa_params p;
    int n = ett_hex(k->keymat, km, sizeof(km));

    memset(&p, 0, sizeof(p));
    p.spi = k->spi;
    p.dir = ESP_SA_IN;
    p.alg = k->alg;
    p.keymat = km;
    p.keymat_len = (size_t)n;
    p.esn = k->esn;
    assert_int_equal(esp_sadb_add(db, &p, sa_r), 0);
    if (k->window_top != 0)
        ipsec_replay_update(&(*sa_r)->replay, k->window_top);
}

static void test_esp_input_decrypts_published_esp_packets(void **state)
{
    struct fixture *f = *state;
    uint8_t payload[256], *ip;
    size_t ip_len, i;
    struct esp_sa *sa, *got;

    for (i = 0; i < sizeof(esp_kats) / sizeof(esp_kats[0]); i++) {
        const struct esp_kat *k = &esp_kats[i];
        uint8_t *pkt = f->mem + HEADROOM;
        int len = ett_hex(k->packet, pkt, BUFSZ - HEADROOM);
        int plen = ett_hex(k->payload, payload, sizeof(payload));

        assert_true(len > 0 && plen > 0);
        kat_install(&f->rx, k, &sa);
        if (esp_input(&f->rx, pkt, (size_t)len, HEADROOM, htonl(0x0A000001u),
                      htonl(0x0A000002u), &ip, &ip_len, &got) != 0)
            fail_msg("esp_input refused: %s", k->name);
        assert_ptr_equal(got, sa);
        assert_int_equal(ip_len, 20 + (size_t)plen);
        assert_int_equal(ip[9], k->next_header);
        assert_int_equal(esp_ipv4_checksum(ip, 20), 0);
        if (memcmp(ip + 20, payload, (size_t)plen) != 0)
            fail_msg("payload mismatch: %s", k->name);
        assert_int_equal(sa->replay.top, k->seq);
        /* The same packet again is a replay. */
        len = ett_hex(k->packet, pkt, BUFSZ - HEADROOM);
        assert_int_equal(esp_input(&f->rx, pkt, (size_t)len, HEADROOM, 0, 0, &ip,
                                   &ip_len, NULL), ESP_E_REPLAY);
        esp_sadb_remove(&f->rx, &sa);
    }
}

static void test_esp_input_esn_packet_fails_without_right_high_bits(void **state)
{
    struct fixture *f = *state;
    struct esp_kat k = esp_kats[2];
    uint8_t *pkt = f->mem + HEADROOM, *ip;
    size_t ip_len;
    struct esp_sa *sa;
    int len = ett_hex(k.packet, pkt, BUFSZ - HEADROOM);

    /* Window in subspace 0x87654321 already: low 0 now means high bits
     * 0x87654321 (case A, bottom below 0 wraps) ... put the window in the
     * subspace two above, so the inferred high bits are wrong. */
    k.window_top = UINT64_C(0x8765432300000900);
    kat_install(&f->rx, &k, &sa);
    assert_int_equal(esp_input(&f->rx, pkt, (size_t)len, HEADROOM, 0, 0, &ip, &ip_len,
                               NULL), ESP_E_ICV);
    assert_int_equal(f->rx.ctr.icv_fail, 1);
    esp_sadb_remove(&f->rx, &sa);
}

/* Encrypt a synthetic IPv4/TCP packet with payload, then decrypt it. */
static void roundtrip_one(struct fixture *f, size_t plen, uint64_t expect_seq)
{
    uint8_t payload[1600], *esp, *ip, *buf = f->mem + HEADROOM;
    uint32_t src = htonl(0x0A630001u), dst = htonl(0x0A630002u);
    size_t i, ip_len, esp_len, tot;
    uint8_t orig[1700];

    for (i = 0; i < plen; i++)
        payload[i] = (uint8_t)(i * 31u + plen);
    tot = ett_ipv4_tcp(buf, src, dst, 40000, 143, 1000, payload, plen);
    memcpy(orig, buf, tot);
    assert_int_equal(esp_output(&f->tx, f->out, buf, tot, BUFSZ - HEADROOM, &esp,
                                &esp_len), 0);
    assert_ptr_equal(esp, buf + 4);
    assert_int_equal(esp_len % 4, 0);
    assert_true(esp_len >= tot - 20 + 16 + 2 + 16 && esp_len <= tot - 20 + 16 + 5 + 16);
    /* Header: SPI, low 32 bits of seq, IV = 64-bit seq. */
    assert_int_equal(ntohl(*(uint32_t *)(void *)esp), f->out->spi);
    assert_int_equal(ntohl(*(uint32_t *)(void *)(esp + 4)), (uint32_t)expect_seq);
    assert_int_equal(ntohl(*(uint32_t *)(void *)(esp + 8)), (uint32_t)(expect_seq >> 32));
    assert_int_equal(ntohl(*(uint32_t *)(void *)(esp + 12)), (uint32_t)expect_seq);
    /* The TCP segment is not visible in clear. */
    if (plen >= 16)
        assert_memory_not_equal(esp + 16 + 20, payload, 16);
    assert_int_equal(esp_input(&f->rx, esp, esp_len, (size_t)(esp - f->mem), src, dst,
                               &ip, &ip_len, NULL), 0);
    assert_int_equal(ip_len, tot);
    assert_ptr_equal(ip, buf);
    assert_int_equal(ip[9], 6);
    assert_int_equal(esp_ipv4_checksum(ip, 20), 0);
    assert_memory_equal(ip + 12, orig + 12, 8);
    assert_memory_equal(ip + 20, orig + 20, tot - 20);
}

static void test_esp_roundtrip_every_aead_and_seq_mode(void **state)
{
    struct fixture *f = *state;
    enum ipsec_aead_alg algs[] = { IPSEC_AEAD_AES_GCM_128, IPSEC_AEAD_AES_GCM_256,
                                   IPSEC_AEAD_CHACHA20_POLY1305 };
    size_t a, plen;
    int esn;
    uint64_t seq;

    for (a = 0; a < 3; a++) {
        for (esn = 0; esn < 2; esn++) {
            uint32_t spi = 0x1000u + (uint32_t)(a * 2 + (size_t)esn);

            assert_int_equal(ett_sa_pair(&f->tx, &f->rx, spi, algs[a], esn, &f->out,
                                         &f->in), 0);
            seq = 0;
            /* Every padding length (0..3) and sizes up to a full MTU. */
            for (plen = 0; plen < 8; plen++)
                roundtrip_one(f, plen, ++seq);
            roundtrip_one(f, 1360, ++seq);
            roundtrip_one(f, 1460, ++seq);
            /* Just below and across the low-32 boundary with ESN: the
             * receiver's window must follow. */
            if (esn) {
                /* As if 2^32 - 256 packets had been exchanged. */
                ipsec_replay_update(&f->in->replay, UINT64_C(0xFFFFFF00));
                esp_sa_set_seq_out(f->out, UINT64_C(0xFFFFFFFE));
                roundtrip_one(f, 100, UINT64_C(0xFFFFFFFF));
                roundtrip_one(f, 100, UINT64_C(0x100000000));
                roundtrip_one(f, 100, UINT64_C(0x100000001));
                assert_int_equal(f->in->replay.top, UINT64_C(0x100000001));
            }
            assert_int_equal(f->in->ctr.pkts_in, f->out->ctr.pkts_out);
            assert_int_equal(f->in->ctr.bytes_in, f->out->ctr.bytes_out);
        }
    }
    assert_int_equal(f->rx.ctr.icv_fail + f->rx.ctr.replay + f->rx.ctr.invalid, 0);
}

static void test_esp_input_without_headroom_moves_payload(void **state)
{
    struct fixture *f = *state;
    uint8_t payload[300], pkt[400], *ip, *esp;
    uint8_t *buf = f->mem + HEADROOM;
    size_t tot, esp_len, ip_len;

    memset(payload, 0x5A, sizeof(payload));
    assert_int_equal(ett_sa_pair(&f->tx, &f->rx, 0x2000, IPSEC_AEAD_AES_GCM_128, false,
                                 &f->out, &f->in), 0);
    tot = ett_ipv4_tcp(buf, 1, 2, 1, 2, 3, payload, sizeof(payload));
    assert_int_equal(esp_output(&f->tx, f->out, buf, tot, BUFSZ - HEADROOM, &esp,
                                &esp_len), 0);
    memcpy(pkt, esp, esp_len);
    assert_int_equal(esp_input(&f->rx, pkt, esp_len, 0, 1, 2, &ip, &ip_len, NULL), 0);
    assert_ptr_equal(ip, pkt);
    assert_int_equal(ip_len, tot);
    assert_memory_equal(ip + 40, payload, sizeof(payload));
}

/* A valid ESP packet for tamper and truncation tests. */
static size_t make_valid(struct fixture *f, enum ipsec_aead_alg alg, bool esn,
                         uint8_t *out)
{
    uint8_t payload[45], *esp, *buf = f->mem + HEADROOM;
    size_t tot, esp_len;

    memset(payload, 'p', sizeof(payload));
    assert_int_equal(ett_sa_pair(&f->tx, &f->rx, 0x3000u + (uint32_t)alg * 2 + esn,
                                 alg, esn, &f->out, &f->in), 0);
    tot = ett_ipv4_tcp(buf, 1, 2, 1, 2, 3, payload, sizeof(payload));
    assert_int_equal(esp_output(&f->tx, f->out, buf, tot, BUFSZ - HEADROOM, &esp,
                                &esp_len), 0);
    memcpy(out, esp, esp_len);
    return esp_len;
}

static void test_esp_input_rejects_every_single_byte_modification(void **state)
{
    struct fixture *f = *state;
    uint8_t valid[256], pkt[256 + HEADROOM], *ip;
    size_t len, pos, ip_len, icv_fails;
    unsigned x;
    int esn, rc;

    for (esn = 0; esn < 2; esn++) {
        len = make_valid(f, esn ? IPSEC_AEAD_CHACHA20_POLY1305 : IPSEC_AEAD_AES_GCM_256,
                         esn, valid);
        icv_fails = 0;
        for (pos = 0; pos < len; pos++) {
            for (x = 1; x < 256; x++) {
                memcpy(pkt + HEADROOM, valid, len);
                pkt[HEADROOM + pos] ^= (uint8_t)x;
                rc = esp_input(&f->rx, pkt + HEADROOM, len, HEADROOM, 1, 2, &ip,
                               &ip_len, NULL);
                if (rc >= 0)
                    fail_msg("accepted byte %zu ^ 0x%02x (esn %d)", pos, x, esn);
                /* SPI bytes change the SA; a sequence number may become
                 * 0 / before the start (too old); all else fails the ICV. */
                if (pos < 4)
                    assert_int_equal(rc, ESP_E_UNKNOWN_SPI);
                else if (pos < 8 && rc == ESP_E_TOO_OLD)
                    continue;
                else
                    assert_int_equal(rc, ESP_E_ICV);
                icv_fails += rc == ESP_E_ICV;
            }
        }
        assert_true(icv_fails >= (len - 8) * 255);
        assert_int_equal(f->in->ctr.icv_fail, icv_fails);
        assert_int_equal(f->in->ctr.icv_fail + f->in->ctr.replay, (len - 4) * 255);
        assert_int_equal(f->in->replay.top, 0);
        /* Nothing moved the window: the genuine packet still passes. */
        memcpy(pkt + HEADROOM, valid, len);
        assert_int_equal(esp_input(&f->rx, pkt + HEADROOM, len, HEADROOM, 1, 2, &ip,
                                   &ip_len, NULL), 0);
        /* Keep SPI flips of the next round from landing on this SA. */
        esp_sadb_remove(&f->rx, &f->in);
    }
    assert_int_equal(f->rx.ctr.unknown_spi, 2 * 4 * 255);
}

static void test_esp_input_rejects_every_truncation(void **state)
{
    struct fixture *f = *state;
    uint8_t valid[256], pkt[256 + HEADROOM], *ip;
    size_t len, n, ip_len;
    int rc;

    len = make_valid(f, IPSEC_AEAD_AES_GCM_128, false, valid);
    for (n = 0; n < len; n++) {
        memcpy(pkt + HEADROOM, valid, n);
        rc = esp_input(&f->rx, pkt + HEADROOM, n, HEADROOM, 1, 2, &ip, &ip_len, NULL);
        if (rc >= 0)
            fail_msg("accepted truncation to %zu of %zu bytes", n, len);
        assert_true(rc == ESP_E_TRUNCATED || rc == ESP_E_ICV);
    }
    assert_int_equal(f->rx.ctr.invalid + f->rx.ctr.icv_fail, len);
    assert_int_equal(f->rx.ctr.pkts_in, 0);
    /* Truncated and padded back to the original length: still refused. */
    memcpy(pkt + HEADROOM, valid, len);
    pkt[HEADROOM + len - 1] = 0;
    assert_int_equal(esp_input(&f->rx, pkt + HEADROOM, len, HEADROOM, 1, 2, &ip,
                               &ip_len, NULL), ESP_E_ICV);
}

static void test_esp_input_counts_unknown_spi(void **state)
{
    struct fixture *f = *state;
    uint8_t valid[256], *ip;
    size_t len, ip_len;
    struct esp_sa *sa = (struct esp_sa *)1;

    len = make_valid(f, IPSEC_AEAD_AES_GCM_128, false, valid);
    esp_sadb_remove(&f->rx, &f->in);
    assert_int_equal(esp_input(&f->rx, valid, len, 0, 1, 2, &ip, &ip_len, &sa),
                     ESP_E_UNKNOWN_SPI);
    assert_null(sa);
    assert_int_equal(f->rx.ctr.unknown_spi, 1);
    assert_int_equal(f->rx.ctr.icv_fail, 0);
}

/* Authentic packets whose trailer is wrong: only the padding check can
 * catch them. */
static void test_esp_input_rejects_bad_padding_contents(void **state)
{
    struct fixture *f = *state;
    uint8_t body[64], pkt[128], *ip;
    size_t len, ip_len;

    assert_int_equal(ett_sa_pair(&f->tx, &f->rx, 0x4000, IPSEC_AEAD_AES_GCM_128, false,
                                 &f->out, &f->in), 0);
    memset(body, 0xAB, sizeof(body));
    /* pad 1,2,4 instead of 1,2,3 */
    body[28] = 1; body[29] = 2; body[30] = 4; body[31] = 3; body[32] = 6;
    len = ett_esp_seal_raw(&f->out->aead, 0x4000, 1, false, body, 33, pkt);
    assert_int_equal(esp_input(&f->rx, pkt, len, 0, 1, 2, &ip, &ip_len, NULL),
                     ESP_E_PADDING);
    /* pad length larger than the body */
    body[31] = 200;
    body[32] = 6;
    len = ett_esp_seal_raw(&f->out->aead, 0x4000, 2, false, body + 29, 4, pkt);
    assert_int_equal(esp_input(&f->rx, pkt, len, 0, 1, 2, &ip, &ip_len, NULL),
                     ESP_E_PADDING);
    assert_int_equal(f->in->ctr.pad_err, 2);
    assert_int_equal(f->rx.ctr.pad_err, 2);
    assert_int_equal(f->in->ctr.pkts_in, 0);
    /* A correct trailer under the same SA passes. */
    body[0] = 1; body[1] = 2; body[2] = 2; body[3] = 6;
    len = ett_esp_seal_raw(&f->out->aead, 0x4000, 3, false, body, 4, pkt);
    assert_int_equal(esp_input(&f->rx, pkt, len, 0, 1, 2, &ip, &ip_len, NULL), 0);
    assert_int_equal(ip_len, 20);
}

static void test_esp_input_accepts_dummy_packet_without_delivery(void **state)
{
    struct fixture *f = *state;
    uint8_t body[8] = { 9, 9, 1, 2, 3, 4, 2, 59 }, pkt[64], *ip = NULL;
    size_t len, ip_len = 0;

    body[4] = 1; body[5] = 2; body[6] = 2;
    assert_int_equal(ett_sa_pair(&f->tx, &f->rx, 0x4100, IPSEC_AEAD_CHACHA20_POLY1305,
                                 true, &f->out, &f->in), 0);
    len = ett_esp_seal_raw(&f->out->aead, 0x4100, 7, true, body, sizeof(body), pkt);
    assert_int_equal(esp_input(&f->rx, pkt, len, 0, 1, 2, &ip, &ip_len, NULL), ESP_DUMMY);
    assert_null(ip);
    assert_int_equal(f->in->ctr.dummy, 1);
    assert_int_equal(f->in->replay.top, 7);
}

static void test_esp_output_rejects_non_ipv4_and_short_buffers(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[200], *esp;
    size_t esp_len, tot;

    assert_int_equal(ett_sa_pair(&f->tx, &f->rx, 0x4200, IPSEC_AEAD_AES_GCM_128, false,
                                 &f->out, &f->in), 0);
    tot = ett_ipv4_tcp(buf, 1, 2, 3, 4, 5, (const uint8_t *)"hello", 5);
    assert_int_equal(esp_output(&f->tx, f->out, buf, tot, tot + 20, &esp, &esp_len),
                     ESP_E_NOSPACE);
    buf[0] = 0x65;
    assert_int_equal(esp_output(&f->tx, f->out, buf, tot, sizeof(buf), &esp, &esp_len),
                     ESP_E_INVAL);
    buf[0] = 0x44;
    assert_int_equal(esp_output(&f->tx, f->out, buf, tot, sizeof(buf), &esp, &esp_len),
                     ESP_E_INVAL);
    buf[0] = 0x45;
    assert_int_equal(esp_output(&f->tx, f->out, buf, 19, sizeof(buf), &esp, &esp_len),
                     ESP_E_INVAL);
    buf[6] = 0x20; /* more fragments */
    assert_int_equal(esp_output(&f->tx, f->out, buf, tot, sizeof(buf), &esp, &esp_len),
                     ESP_E_INVAL);
    buf[6] = 0x40;
    assert_int_equal(esp_output(&f->tx, f->in, buf, tot, sizeof(buf), &esp, &esp_len),
                     ESP_E_INVAL);
    assert_int_equal(f->out->seq_out, 0);
    assert_int_equal(esp_output(&f->tx, f->out, buf, tot, sizeof(buf), &esp, &esp_len), 0);
    assert_int_equal(f->out->seq_out, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_esp_input_decrypts_published_esp_packets,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_esp_input_esn_packet_fails_without_right_high_bits,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_esp_roundtrip_every_aead_and_seq_mode,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_esp_input_without_headroom_moves_payload,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_esp_input_rejects_every_single_byte_modification,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_esp_input_rejects_every_truncation,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_esp_input_counts_unknown_spi,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_esp_input_rejects_bad_padding_contents,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_esp_input_accepts_dummy_packet_without_delivery,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_esp_output_rejects_non_ipv4_and_short_buffers,
                                        fixture_setup, fixture_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
