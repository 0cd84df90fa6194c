/*
 * RFC 3948 UDP encapsulation (ipsec/udp_encap.c): classification of UDP
 * payloads, and a live exchange between two sockets on 127.0.0.1 that
 * carries ESP (single and batched sends), IKE behind the non-ESP marker,
 * NAT-keepalives and junk, checking that each lands where it should and
 * that ESP arrives with headroom usable by esp_input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>

#include "ipsec/esp.h"
#include "ipsec/udp_encap.h"
#include "tests/unit/esp_test_util.h"

static void test_udp_encap_classifies_payloads(void **state)
{
    uint8_t b[32] = { 0 };

    (void)state;
    b[0] = 0xFF;
    assert_int_equal(udp_encap_classify(b, 1), UDP_ENCAP_KEEPALIVE);
    b[0] = 0x00;
    assert_int_equal(udp_encap_classify(b, 1), UDP_ENCAP_INVALID);
    assert_int_equal(udp_encap_classify(b, 0), UDP_ENCAP_INVALID);
    /* Non-ESP marker followed by an IKE header. */
    assert_int_equal(udp_encap_classify(b, 32), UDP_ENCAP_IKE);
    b[3] = 1;
    assert_int_equal(udp_encap_classify(b, 32), UDP_ENCAP_ESP);
    assert_int_equal(udp_encap_classify(b, 8), UDP_ENCAP_ESP);
    assert_int_equal(udp_encap_classify(b, 7), UDP_ENCAP_INVALID);
    b[0] = 0xFF;
    assert_int_equal(udp_encap_classify(b, 2), UDP_ENCAP_INVALID);
}

struct live {
    uv_loop_t loop;
    uv_timer_t timer;
    struct udp_encap a, b;
    struct sockaddr_in addr_a, addr_b;
    struct esp_sadb tx, rx;
    struct esp_sa *out, *in;
    int esp_ok, esp_bad, ike_ok, closed;
    size_t min_headroom;
    size_t expect_esp;
};

static void live_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static const char ike_msg[] = "IKE_SA_INIT-looking bytes, 28+ long";

static void live_on_esp(void *arg, uint8_t *pkt, size_t len, size_t headroom,
                        const struct sockaddr_in *from)
{
    struct live *lv = arg;
    uint8_t *ip;
    size_t ip_len;

    if (headroom < lv->min_headroom)
        lv->min_headroom = headroom;
    if (esp_input(&lv->rx, pkt, len, headroom, from->sin_addr.s_addr,
                  lv->addr_b.sin_addr.s_addr, &ip, &ip_len, NULL) == 0 &&
        ip == pkt - 4 && ip_len > 40 && memcmp(ip + 40, "payload", 7) == 0)
        lv->esp_ok++;
    else
        lv->esp_bad++;
    if ((size_t)(lv->esp_ok + lv->esp_bad) == lv->expect_esp)
        uv_timer_start(&lv->timer, live_stop, 50, 0);
}

static void live_on_ike(void *arg, const uint8_t *msg, size_t len,
                        const struct sockaddr_in *from)
{
    struct live *lv = arg;

    (void)from;
    if (len == sizeof(ike_msg) && memcmp(msg, ike_msg, len) == 0)
        lv->ike_ok++;
}

static void live_closed(struct udp_encap *ue)
{
    struct live *lv = ue->arg;

    lv->closed++;
}

static size_t live_seal(struct live *lv, uint8_t *buf, size_t cap, uint8_t **esp)
{
    size_t tot, len;

    tot = ett_ipv4_tcp(buf, lv->addr_a.sin_addr.s_addr, lv->addr_b.sin_addr.s_addr,
                       1234, 143, 1, (const uint8_t *)"payload", 7);
    assert_int_equal(esp_output(&lv->tx, lv->out, buf, tot, cap, esp, &len), 0);
    return len;
}

static void live_open(struct live *lv)
{
    struct sockaddr_in any;

    memset(lv, 0, sizeof(*lv));
    lv->min_headroom = SIZE_MAX;
    assert_int_equal(uv_loop_init(&lv->loop), 0);
    uv_timer_init(&lv->loop, &lv->timer);
    uv_ip4_addr("127.0.0.1", 0, &any);
    assert_int_equal(udp_encap_open(&lv->a, &lv->loop, &any, UDP_ENCAP_ZERO_CSUM, NULL,
                                    NULL, lv), 0);
    assert_int_equal(udp_encap_open(&lv->b, &lv->loop, &any, UDP_ENCAP_ZERO_CSUM,
                                    live_on_esp, live_on_ike, lv), 0);
    assert_int_equal(udp_encap_local_addr(&lv->a, &lv->addr_a), 0);
    assert_int_equal(udp_encap_local_addr(&lv->b, &lv->addr_b), 0);
    assert_int_equal(esp_sadb_init(&lv->tx, 16), 0);
    assert_int_equal(esp_sadb_init(&lv->rx, 16), 0);
    assert_int_equal(ett_sa_pair(&lv->tx, &lv->rx, 0x6000, IPSEC_AEAD_AES_GCM_128, true,
                                 &lv->out, &lv->in), 0);
}

static void live_close(struct live *lv)
{
    udp_encap_close(&lv->a, live_closed);
    udp_encap_close(&lv->b, live_closed);
    uv_close((uv_handle_t *)&lv->timer, NULL);
    uv_run(&lv->loop, UV_RUN_DEFAULT);
    assert_int_equal(lv->closed, 2);
    assert_int_equal(uv_loop_close(&lv->loop), 0);
    esp_sadb_free(&lv->tx);
    esp_sadb_free(&lv->rx);
}

static void test_udp_encap_demuxes_esp_ike_keepalive_on_one_socket(void **state)
{
    static uint8_t bufs[40][256];
    struct udp_encap_pkt batch[32];
    struct live *lv = calloc(1, sizeof(*lv));
    uint8_t *esp, junk[3] = { 1, 2, 3 }, zero_spi[16] = { 0 };
    size_t i;

    (void)state;
    live_open(lv);
    lv->expect_esp = 8 + 32;
    for (i = 0; i < 8; i++) {
        size_t len = live_seal(lv, bufs[i], sizeof(bufs[i]), &esp);

        assert_int_equal(udp_encap_send_esp(&lv->a, esp, len, &lv->addr_b), 0);
    }
    for (i = 0; i < 32; i++) {
        batch[i].len = live_seal(lv, bufs[8 + (i % 32)], sizeof(bufs[0]), &esp);
        batch[i].data = esp;
    }
    assert_int_equal(udp_encap_send_ike(&lv->a, (const uint8_t *)ike_msg, sizeof(ike_msg),
                                        &lv->addr_b), 0);
    assert_int_equal(udp_encap_send_keepalive(&lv->a, &lv->addr_b), 0);
    assert_int_equal(udp_encap_send_keepalive(&lv->a, &lv->addr_b), 0);
    assert_int_equal(uv_udp_try_send(&lv->a.udp, &(uv_buf_t){ .base = (char *)junk,
                                     .len = 3 }, 1, (const struct sockaddr *)&lv->addr_b), 3);
    /* An "ESP" packet with SPI 0 would be read as IKE: refused. */
    assert_int_equal(udp_encap_send_esp(&lv->a, zero_spi, sizeof(zero_spi), &lv->addr_b),
                     UV_EINVAL);
    assert_int_equal(udp_encap_send_batch(&lv->a, batch, 32, &lv->addr_b), 32);
    uv_timer_start(&lv->timer, live_stop, 3000, 0);
    uv_run(&lv->loop, UV_RUN_DEFAULT);
    assert_int_equal(lv->esp_ok, 40);
    assert_int_equal(lv->esp_bad, 0);
    assert_int_equal(lv->ike_ok, 1);
    assert_int_equal(lv->b.ctr.esp_rx, 40);
    assert_int_equal(lv->b.ctr.ike_rx, 1);
    assert_int_equal(lv->b.ctr.keepalive_rx, 2);
    assert_int_equal(lv->b.ctr.invalid_rx, 1);
    assert_int_equal(lv->a.ctr.esp_tx, 40);
    assert_int_equal(lv->a.ctr.keepalive_tx, 2);
    assert_true(lv->min_headroom >= ESP_IN_HEADROOM);
    live_close(lv);
    free(lv);
}

static void test_udp_encap_keepalive_timer_sends_periodically(void **state)
{
    struct live *lv = calloc(1, sizeof(*lv));

    (void)state;
    live_open(lv);
    assert_int_equal(udp_encap_keepalive_start(&lv->a, &lv->addr_b, 10), 0);
    uv_timer_start(&lv->timer, live_stop, 75, 0);
    uv_run(&lv->loop, UV_RUN_DEFAULT);
    udp_encap_keepalive_stop(&lv->a);
    uv_run(&lv->loop, UV_RUN_NOWAIT);
    assert_true(lv->a.ctr.keepalive_tx >= 3);
    assert_true(lv->b.ctr.keepalive_rx >= 3);
    assert_int_equal(lv->b.ctr.esp_rx + lv->b.ctr.ike_rx + lv->b.ctr.invalid_rx, 0);
    live_close(lv);
    free(lv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp_encap_classifies_payloads),
        cmocka_unit_test(test_udp_encap_demuxes_esp_ike_keepalive_on_one_socket),
        cmocka_unit_test(test_udp_encap_keepalive_timer_sends_periodically),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
