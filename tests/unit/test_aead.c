/*
 * Known-answer tests of ipsec/aead.c against published vectors:
 *
 * - RFC 8439 §2.8.2 (ChaCha20-Poly1305 AEAD, "Ladies and Gentlemen..."),
 *   nonce 07000000 ‖ 4041424344454647 = salt ‖ explicit IV, which is the
 *   nonce construction RFC 7634 §2 uses for ESP.
 * - draft-mcgrew-gcm-test-01, "Test Cases for the use of GCM in IPsec
 *   ESP" (D. McGrew, 2005): AES-GCM-16 ESP vectors, nonce = salt ‖ IV and
 *   AAD = SPI ‖ seq (8 bytes) or SPI ‖ ESN (12 bytes) as RFC 4106 §5.
 *
 * Each vector is sealed (ciphertext and tag must match byte for byte) and
 * opened (plaintext must come back), and a flipped tag bit must fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ipsec/aead.h"
#include "ipsec/esp_defs.h"
#include "tests/unit/esp_test_util.h"

struct aead_kat {
    const char *name;
    enum ipsec_aead_alg alg;
    const char *keymat;   /* key ‖ salt */
    const char *iv;
    const char *aad;
    const char *pt;
    const char *ct_tag;
};

static const struct aead_kat kats[] = {
    { "rfc8439 2.8.2", IPSEC_AEAD_CHACHA20_POLY1305,
      "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f 07000000",
      "4041424344454647", "50515253c0c1c2c3c4c5c6c7",
      "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
      "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
      "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
      "637265656e20776f756c642062652069742e",
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
      "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
      "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
      "3ff4def08e4b7a9de576d26586cec64b6116"
      "1ae10b594f09e26a7e902ecbd0600691" },
    { "gcm-test-01 case 1 (AES-128, ESN)", IPSEC_AEAD_AES_GCM_128,
      "4c80cdefbb5d10da906ac73c3613a634 2e443b68", "4956ed7e3b244cfe",
      "000043218765432100000000",
      "45000048699a000080114db7c0a80102c0a801010a9bf15638d3010000010000"
      "00000000045f736970045f756470037369700963796265726369747902646b00"
      "0021000101020201",
      "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34"
      "cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce"
      "61bc17d768fd9732459018148f6cbe722fd04796562dfdb4" },
    { "gcm-test-01 case 2 (AES-128, 32-bit seq)", IPSEC_AEAD_AES_GCM_128,
      "feffe9928665731c6d6a8f9467308308 cafebabe", "facedbaddecaf888",
      "0000a5f80000000a",
      "4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d00100"
      "0001000000000000037369700963796265726369747902646b00000100010001",
      "deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c"
      "3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1"
      "83b70d3aa8bc6ee4c309e9d85a41ad4a" },
    { "gcm-test-01 case 3 (AES-256, 32-bit seq)", IPSEC_AEAD_AES_GCM_256,
      "abbccddef00112233445566778899aababbccddef00112233445566778899aab 11223344",
      "0102030405060708", "4a2cbfe300000002",
      "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000"
      "7002400020bf0000020405b40101040201020201",
      "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763"
      "748a637985771d347f0545659f14e99def842d8eb335f4eecfdbf831824b4c49"
      "15956c96" },
    { "gcm-test-01 case 4 (AES-128, zero key)", IPSEC_AEAD_AES_GCM_128,
      "00000000000000000000000000000000 00000000", "0000000000000000",
      "0000000000000001",
      "4500003c99c500008001cb7a40679318010101010800075c0200440061626364"
      "65666768696a6b6c6d6e6f7071727374757677616263646566676869 01020201",
      "4688daf2f973a392732909c331d56d60f694abaa414b5e7ff5fdcdfff5e9a284"
      "456476492719ffb64de7d9dca1e1d894bc3bd57873ed4d181d19d4d5c8c18af3"
      "f821d496eeb096e98ad2b69e4799c71d" },
    { "gcm-test-01 case 9 (AES-256, ESN)", IPSEC_AEAD_AES_GCM_256,
      "abbccddef00112233445566778899aababbccddef00112233445566778899aab 73616c74",
      "616e640169766563", "17405e67156f3126dd0db99b",
      "45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb712602"
      "50101f646d540001",
      "f2d69ecdbd5a0d5b8d5ef38bad4da58d1f278fde98ef67549d524a3018d9a57f"
      "f4d3a31ce673119e451626c2415771e3b7eebca614c89b35" },
    { "gcm-test-01 case 13 (AES-128, 4-byte body)", IPSEC_AEAD_AES_GCM_128,
      "7d773d00c144c525ac619d18c84a3f47 d9664267", "43457e9182443bc6",
      "335467aeffffffff", "01020201",
      "437f866bcb3f699fe9b0822bac961c4504bef270" },
};

struct kat_bufs {
    uint8_t km[64], iv[8], aad[16], pt[256], ct[272], buf[272];
    int km_len, iv_len, aad_len, pt_len, ct_len;
};

static void kat_load(const struct aead_kat *k, struct kat_bufs *b)
{
    b->km_len = ett_hex(k->keymat, b->km, sizeof(b->km));
    b->iv_len = ett_hex(k->iv, b->iv, sizeof(b->iv));
    b->aad_len = ett_hex(k->aad, b->aad, sizeof(b->aad));
    b->pt_len = ett_hex(k->pt, b->pt, sizeof(b->pt));
    b->ct_len = ett_hex(k->ct_tag, b->ct, sizeof(b->ct));
    assert_int_equal(b->iv_len, 8);
    assert_true(b->pt_len > 0);
    assert_int_equal(b->ct_len, b->pt_len + 16);
}

static void test_aead_seal_matches_published_vectors(void **state)
{
    struct ipsec_aead aead;
    struct kat_bufs b;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
        kat_load(&kats[i], &b);
        assert_int_equal(ipsec_aead_init(&aead, kats[i].alg, b.km, (size_t)b.km_len), 0);
        memcpy(b.buf, b.pt, (size_t)b.pt_len);
        assert_int_equal(ipsec_aead_seal(&aead, b.iv, b.aad, (size_t)b.aad_len, b.buf,
                                         (size_t)b.pt_len, b.buf + b.pt_len), 0);
        if (memcmp(b.buf, b.ct, (size_t)b.ct_len) != 0)
            fail_msg("seal mismatch: %s", kats[i].name);
        ipsec_aead_free(&aead);
    }
}

static void test_aead_open_recovers_published_plaintexts(void **state)
{
    struct ipsec_aead aead;
    struct kat_bufs b;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
        kat_load(&kats[i], &b);
        assert_int_equal(ipsec_aead_init(&aead, kats[i].alg, b.km, (size_t)b.km_len), 0);
        memcpy(b.buf, b.ct, (size_t)b.ct_len);
        assert_int_equal(ipsec_aead_open(&aead, b.iv, b.aad, (size_t)b.aad_len, b.buf,
                                         (size_t)b.pt_len, b.buf + b.pt_len), 0);
        if (memcmp(b.buf, b.pt, (size_t)b.pt_len) != 0)
            fail_msg("open mismatch: %s", kats[i].name);
        ipsec_aead_free(&aead);
    }
}

static void test_aead_open_rejects_flipped_tag_aad_and_iv(void **state)
{
    struct ipsec_aead aead;
    struct kat_bufs b;
    size_t i;
    int which;

    (void)state;
    for (i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
        kat_load(&kats[i], &b);
        assert_int_equal(ipsec_aead_init(&aead, kats[i].alg, b.km, (size_t)b.km_len), 0);
        for (which = 0; which < 3; which++) {
            uint8_t iv[8], aad[16];

            memcpy(iv, b.iv, 8);
            memcpy(aad, b.aad, sizeof(aad));
            memcpy(b.buf, b.ct, (size_t)b.ct_len);
            if (which == 0)
                b.buf[b.ct_len - 1] ^= 0x01;
            else if (which == 1)
                aad[b.aad_len - 1] ^= 0x80;
            else
                iv[0] ^= 0x01;
            assert_int_equal(ipsec_aead_open(&aead, iv, aad, (size_t)b.aad_len, b.buf,
                                             (size_t)b.pt_len, b.buf + b.pt_len),
                             ESP_E_ICV);
        }
        ipsec_aead_free(&aead);
    }
}

static void test_aead_init_rejects_wrong_keymat_length(void **state)
{
    struct ipsec_aead aead;
    uint8_t km[40] = { 0 };

    (void)state;
    assert_int_equal(ipsec_aead_init(&aead, IPSEC_AEAD_AES_GCM_128, km, 16), ESP_E_INVAL);
    assert_int_equal(ipsec_aead_init(&aead, IPSEC_AEAD_AES_GCM_256, km, 20), ESP_E_INVAL);
    assert_int_equal(ipsec_aead_init(&aead, IPSEC_AEAD_CHACHA20_POLY1305, km, 32),
                     ESP_E_INVAL);
    assert_int_equal(ipsec_aead_init(&aead, IPSEC_AEAD_NONE, km, 20), ESP_E_INVAL);
    assert_int_equal(ipsec_aead_init(&aead, IPSEC_AEAD_AES_GCM_128, km, 20), 0);
    ipsec_aead_free(&aead);
}

static void test_aead_free_zeroizes_context_and_salt(void **state)
{
    struct ipsec_aead aead;
    uint8_t km[36], zero[sizeof(aead)];
    enum ipsec_aead_alg algs[] = { IPSEC_AEAD_AES_GCM_256, IPSEC_AEAD_CHACHA20_POLY1305 };
    size_t i;

    (void)state;
    memset(km, 0xA5, sizeof(km));
    memset(zero, 0, sizeof(zero));
    for (i = 0; i < 2; i++) {
        assert_int_equal(ipsec_aead_init(&aead, algs[i], km, 36), 0);
        assert_memory_equal(aead.salt, km + 32, 4);
        ipsec_aead_free(&aead);
        assert_memory_equal(&aead, zero, sizeof(aead));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aead_seal_matches_published_vectors),
        cmocka_unit_test(test_aead_open_recovers_published_plaintexts),
        cmocka_unit_test(test_aead_open_rejects_flipped_tag_aad_and_iv),
        cmocka_unit_test(test_aead_init_rejects_wrong_keymat_length),
        cmocka_unit_test(test_aead_free_zeroizes_context_and_salt),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
