/* IKEv2 message codec: round trips, and rejection of every malformed shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ipsec/ike_msg.h"

static const uint8_t nonce[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static struct ike_sa_payload sample_sa(void)
{
    struct ike_sa_payload sa;

    memset(&sa, 0, sizeof(sa));
    sa.n = 2;
    sa.p[0] = (struct ike_proposal){ .num = 1, .proto = IKE_PROTO_IKE, .n = 3 };
    sa.p[0].t[0] = (struct ike_transform){ IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128, false };
    sa.p[0].t[1] = (struct ike_transform){ IKE_TRANS_PRF, IKE_PRF_HMAC_SHA2_256, 0, false };
    sa.p[0].t[2] = (struct ike_transform){ IKE_TRANS_DH, IKE_DH_CURVE25519, 0, false };
    sa.p[1] = (struct ike_proposal){ .num = 2, .proto = IKE_PROTO_ESP, .spi_size = 4,
                                     .spi = { 0xc0, 0xff, 0xee, 0x01 }, .n = 2 };
    sa.p[1].t[0] = (struct ike_transform){ IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 256, false };
    sa.p[1].t[1] = (struct ike_transform){ IKE_TRANS_ESN, IKE_ESN_NO, 0, false };
    return sa;
}

/* An IKE_SA_INIT request: SA, KE, Nonce, two notifies. */
static size_t build_init(uint8_t *buf, size_t cap)
{
    struct ike_header h = { .spi_i = 0x0102030405060708ull, .exchange = IKE_SA_INIT,
                            .flags = IKE_FLAG_INITIATOR, .msg_id = 0 };
    struct ike_sa_payload sa = sample_sa();
    struct ike_writer w;
    uint8_t ke[32], hash[20];
    long n;

    memset(ke, 0x42, sizeof(ke));
    memset(hash, 0x17, sizeof(hash));
    ike_writer_init(&w, buf, cap, &h);
    ike_write_sa(&w, &sa);
    ike_write_ke(&w, IKE_DH_CURVE25519, ke, sizeof(ke));
    ike_write_nonce(&w, nonce, sizeof(nonce));
    ike_write_notify(&w, 0, NULL, 0, IKE_N_NAT_DETECTION_SOURCE_IP, hash, sizeof(hash));
    ike_write_notify(&w, 0, NULL, 0, IKE_N_NAT_DETECTION_DESTINATION_IP, hash, sizeof(hash));
    n = ike_writer_finish(&w);
    assert_true(n > 0);
    return (size_t)n;
}

static void test_init_message_round_trips(void **state)
{
    uint8_t buf[1024];
    size_t len = build_init(buf, sizeof(buf));
    struct ike_header h;
    struct ike_payload_list l;
    struct ike_sa_payload sa;
    const struct ike_payload *p;
    uint16_t group;
    const uint8_t *data;
    size_t dlen;
    struct ike_notify n;

    (void)state;
    assert_int_equal(ike_header_parse(buf, len, &h), 0);
    assert_int_equal(h.spi_i, 0x0102030405060708ull);
    assert_int_equal(h.exchange, IKE_SA_INIT);
    assert_int_equal(h.length, len);
    assert_int_equal(ike_payloads_parse(h.next_payload, buf + IKE_HDR_LEN, len - IKE_HDR_LEN, &l), 0);
    assert_int_equal(l.n, 5);
    p = ike_payload_find(&l, IKE_PL_SA);
    assert_non_null(p);
    assert_int_equal(ike_sa_parse(p->body, p->len, &sa), 0);
    assert_int_equal(sa.n, 2);
    assert_int_equal(sa.p[0].t[0].key_bits, 128);
    assert_int_equal(sa.p[0].t[2].id, IKE_DH_CURVE25519);
    assert_int_equal(sa.p[1].spi_size, 4);
    assert_int_equal(sa.p[1].spi[3], 0x01);
    assert_int_equal(sa.p[1].t[0].key_bits, 256);
    p = ike_payload_find(&l, IKE_PL_KE);
    assert_int_equal(ike_ke_parse(p->body, p->len, &group, &data, &dlen), 0);
    assert_int_equal(group, IKE_DH_CURVE25519);
    assert_int_equal(dlen, 32);
    p = ike_payload_find(&l, IKE_PL_NONCE);
    assert_int_equal(ike_nonce_parse(p->body, p->len), 0);
    assert_memory_equal(p->body, nonce, 32);
    assert_int_equal(ike_notify_parse(l.pl[4].body, l.pl[4].len, &n), 0);
    assert_int_equal(n.type, IKE_N_NAT_DETECTION_DESTINATION_IP);
    assert_int_equal(n.data_len, 20);
}

static void test_every_truncation_is_rejected(void **state)
{
    uint8_t buf[1024];
    size_t len = build_init(buf, sizeof(buf));
    struct ike_header h;
    struct ike_payload_list l;

    (void)state;
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_not_equal(ike_header_parse(buf, cut, &h), 0);
        if (cut >= IKE_HDR_LEN)
            assert_int_not_equal(ike_payloads_parse(buf[16], buf + IKE_HDR_LEN, cut - IKE_HDR_LEN, &l), 0);
    }
}

static void test_lying_payload_lengths_are_rejected(void **state)
{
    uint8_t buf[1024];
    size_t len = build_init(buf, sizeof(buf));
    struct ike_payload_list l;

    (void)state;
    assert_int_equal(ike_payloads_parse(buf[16], buf + IKE_HDR_LEN, len - IKE_HDR_LEN, &l), 0);
    for (int i = 0; i < l.n; i++) {
        uint8_t copy[1024];
        uint8_t *lenp;
        uint16_t real;
        const uint16_t lies[] = { 0, 1, 3, 0xffff };

        memcpy(copy, buf, len);
        lenp = copy + IKE_HDR_LEN + l.pl[i].offset + 2;
        real = ike_get16(lenp);
        for (size_t k = 0; k < 4; k++) {
            struct ike_payload_list l2;

            ike_put16(lenp, lies[k]);
            assert_int_not_equal(ike_payloads_parse(copy[16], copy + IKE_HDR_LEN, len - IKE_HDR_LEN, &l2), 0);
        }
        ike_put16(lenp, (uint16_t)(real + 1));
        {
            struct ike_payload_list l2;

            assert_int_not_equal(ike_payloads_parse(copy[16], copy + IKE_HDR_LEN, len - IKE_HDR_LEN, &l2), 0);
        }
    }
}

static void test_bad_sa_payload_shapes_are_rejected(void **state)
{
    uint8_t buf[512];
    struct ike_writer w;
    struct ike_sa_payload sa = sample_sa(), out;
    size_t body_len;
    uint8_t *body;

    (void)state;
    ike_writer_init_chain(&w, buf, sizeof(buf));
    ike_write_sa(&w, &sa);
    assert_false(w.overflow);
    body = buf + 4;
    body_len = w.len - 4;
    assert_int_equal(ike_sa_parse(body, body_len, &out), 0);
    for (size_t cut = 0; cut < body_len; cut++)
        assert_int_not_equal(ike_sa_parse(body, cut, &out), 0);
    body[4] = 2;            /* first proposal numbered 2 */
    assert_int_not_equal(ike_sa_parse(body, body_len, &out), 0);
    body[4] = 1;
    body[7] = 4;            /* claims 4 transforms, has 3 */
    assert_int_not_equal(ike_sa_parse(body, body_len, &out), 0);
    body[7] = 3;
    body[0] = 1;            /* "more" value that is neither 0 nor 2 */
    assert_int_not_equal(ike_sa_parse(body, body_len, &out), 0);
}

static void test_unknown_transform_attribute_makes_transform_unusable(void **state)
{
    /* one proposal, one ENCR transform with a TV attribute of type 99 */
    const uint8_t body[] = { 0, 0, 0, 20, 1, IKE_PROTO_IKE, 0, 1,
                             0, 0, 0, 12, IKE_TRANS_ENCR, 0, 0, IKE_ENCR_AES_GCM_16,
                             0x80, 99, 0, 1 };
    struct ike_sa_payload out;

    (void)state;
    assert_int_equal(ike_sa_parse(body, sizeof(body), &out), 0);
    assert_true(out.p[0].t[0].unusable);
}

static void test_traffic_selectors_round_trip(void **state)
{
    uint8_t buf[256];
    struct ike_writer w;
    struct ike_ts_list ts = { .n = 2 }, out;

    (void)state;
    ts.ts[0] = (struct ike_ts){ 6, 143, 143, 0x0a630264, 0x0a630264 };
    ts.ts[1] = (struct ike_ts){ 6, 110, 110, 0x0a630264, 0x0a630264 };
    ike_writer_init_chain(&w, buf, sizeof(buf));
    ike_write_ts(&w, IKE_PL_TSR, &ts);
    assert_int_equal(w.first_np, IKE_PL_TSR);
    assert_int_equal(ike_ts_parse(buf + 4, w.len - 4, &out), 0);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.ts[1].start_port, 110);
    assert_int_equal(out.ts[0].end_addr, 0x0a630264);
    buf[4] = 3;             /* count says 3 */
    assert_int_not_equal(ike_ts_parse(buf + 4, w.len - 4, &out), 0);
    buf[4] = 0;
    assert_int_not_equal(ike_ts_parse(buf + 4, w.len - 4, &out), 0);
}

static void test_delete_payload_shapes(void **state)
{
    const uint8_t ike_del[] = { IKE_PROTO_IKE, 0, 0, 0 };
    const uint8_t esp_del[] = { IKE_PROTO_ESP, 4, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8 };
    const uint8_t esp_short[] = { IKE_PROTO_ESP, 4, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8 };
    const uint8_t ike_spi[] = { IKE_PROTO_IKE, 8, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8 };
    struct ike_delete d;

    (void)state;
    assert_int_equal(ike_delete_parse(ike_del, sizeof(ike_del), &d), 0);
    assert_int_equal(ike_delete_parse(esp_del, sizeof(esp_del), &d), 0);
    assert_int_equal(d.n_spi, 2);
    assert_int_not_equal(ike_delete_parse(esp_short, sizeof(esp_short), &d), 0);
    assert_int_not_equal(ike_delete_parse(ike_spi, sizeof(ike_spi), &d), 0);
}

static void test_unknown_critical_payload_is_flagged(void **state)
{
    /* a non-critical unknown payload (type 200) then a critical one (201) */
    const uint8_t chain[] = { 201, 0x00, 0, 5, 0xaa, IKE_PL_NONE, 0x80, 0, 4 };
    struct ike_payload_list l;

    (void)state;
    assert_int_equal(ike_payloads_parse(200, chain, sizeof(chain), &l), 0);
    assert_int_equal(l.unsupported_critical, 201);
}

static void test_encrypted_payload_must_be_last(void **state)
{
    /* SK (next = IDi) followed by trailing bytes that are not part of it */
    uint8_t chain[] = { IKE_PL_IDI, 0, 0, 8, 1, 2, 3, 4, 0xde, 0xad };
    struct ike_payload_list l;

    (void)state;
    assert_int_not_equal(ike_payloads_parse(IKE_PL_SK, chain, sizeof(chain), &l), 0);
    assert_int_equal(ike_payloads_parse(IKE_PL_SK, chain, 8, &l), 0);
    assert_int_equal(l.pl[0].next, IKE_PL_IDI);
}

static void test_version_and_id_checks(void **state)
{
    uint8_t buf[1024];
    size_t len = build_init(buf, sizeof(buf));
    struct ike_header h;
    const uint8_t bad_ipv4_id[] = { IKE_ID_IPV4_ADDR, 0, 0, 0, 10, 99, 2 };
    uint8_t type;
    const uint8_t *d;
    size_t dl;

    (void)state;
    buf[17] = 0x30;
    assert_int_equal(ike_header_parse(buf, len, &h), -IKE_N_INVALID_MAJOR_VERSION);
    assert_int_not_equal(ike_id_parse(bad_ipv4_id, sizeof(bad_ipv4_id), &type, &d, &dl), 0);
    assert_int_not_equal(ike_nonce_parse(nonce, 15), 0);
    assert_int_not_equal(ike_nonce_parse(buf, 257), 0);
}

static void test_writer_overflow_is_reported(void **state)
{
    uint8_t buf[40];
    struct ike_header h = { .exchange = IKE_INFORMATIONAL };
    struct ike_writer w;

    (void)state;
    ike_writer_init(&w, buf, sizeof(buf), &h);
    ike_write_nonce(&w, nonce, sizeof(nonce));
    assert_int_equal(ike_writer_finish(&w), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_message_round_trips),
        cmocka_unit_test(test_every_truncation_is_rejected),
        cmocka_unit_test(test_lying_payload_lengths_are_rejected),
        cmocka_unit_test(test_bad_sa_payload_shapes_are_rejected),
        cmocka_unit_test(test_unknown_transform_attribute_makes_transform_unusable),
        cmocka_unit_test(test_traffic_selectors_round_trip),
        cmocka_unit_test(test_delete_payload_shapes),
        cmocka_unit_test(test_unknown_critical_payload_is_flagged),
        cmocka_unit_test(test_encrypted_payload_must_be_last),
        cmocka_unit_test(test_version_and_id_checks),
        cmocka_unit_test(test_writer_overflow_is_reported),
    };

    return cmocka_run_group_tests_name("ike_msg", tests, NULL, NULL);
}
