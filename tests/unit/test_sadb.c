/*
 * SA database (ipsec/sadb.c): O(1) lookup by SPI and by peer, rekey
 * replacement of outbound SAs, lifetimes (soft/hard in packets, bytes,
 * seconds), the sequence number space as a lifetime, sweeping, counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "ipsec/esp.h"
#include "ipsec/sadb.h"
#include "tests/unit/esp_test_util.h"

struct ev_log {
    int soft, hard;
    unsigned soft_limits, hard_limits;
    struct esp_sa *last;
};

static void ev_record(void *arg, struct esp_sa *sa, enum esp_sa_event ev, unsigned limits)
{
    struct ev_log *log = arg;

    log->last = sa;
    if (ev == ESP_SA_EV_SOFT) {
        log->soft++;
        log->soft_limits |= limits;
    } else {
        log->hard++;
        log->hard_limits |= limits;
    }
}

static uint64_t fake_now_ms;

static uint64_t fake_clock(void)
{
    return fake_now_ms;
}

static struct esp_sa_params params(uint32_t spi, enum esp_sa_dir dir, uint32_t peer,
                                   const uint8_t *km)
{
    struct esp_sa_params p;

    memset(&p, 0, sizeof(p));
    p.spi = spi;
    p.dir = dir;
    p.alg = IPSEC_AEAD_AES_GCM_128;
    p.keymat = km;
    p.keymat_len = 20;
    p.dst = peer;
    return p;
}

static void test_sadb_finds_thousands_of_inbound_sas_by_spi(void **state)
{
    struct esp_sadb db;
    uint8_t km[20] = { 1 };
    struct esp_sa_params p;
    struct esp_sa *sa;
    uint32_t i;

    (void)state;
    assert_int_equal(esp_sadb_init(&db, 4), 0);
    for (i = 0; i < 3000; i++) {
        p = params(0x10000u + i * 977u, ESP_SA_IN, 0, km);
        assert_int_equal(esp_sadb_add(&db, &p, &sa), 0);
    }
    assert_true(db.nbuckets >= 2048); /* grew to keep chains short */
    for (i = 0; i < 3000; i++) {
        sa = esp_sadb_lookup_in(&db, 0x10000u + i * 977u);
        assert_non_null(sa);
        assert_int_equal(sa->spi, 0x10000u + i * 977u);
    }
    assert_null(esp_sadb_lookup_in(&db, 0x10001u));
    p = params(0x10000u, ESP_SA_IN, 0, km);
    assert_int_equal(esp_sadb_add(&db, &p, NULL), ESP_E_EXISTS);
    sa = esp_sadb_lookup_in(&db, 0x10000u + 5 * 977u);
    esp_sadb_remove(&db, &sa);
    assert_null(sa);
    assert_null(esp_sadb_lookup_in(&db, 0x10000u + 5 * 977u));
    assert_int_equal(db.n_in, 2999);
    esp_sadb_free(&db);
}

static void test_sadb_rejects_reserved_spi_and_bad_keys(void **state)
{
    struct esp_sadb db;
    uint8_t km[20] = { 1 };
    struct esp_sa_params p = params(255, ESP_SA_IN, 0, km);

    (void)state;
    assert_int_equal(esp_sadb_init(&db, 16), 0);
    assert_int_equal(esp_sadb_add(&db, &p, NULL), ESP_E_INVAL);
    p.spi = 256;
    p.keymat_len = 36;
    assert_int_equal(esp_sadb_add(&db, &p, NULL), ESP_E_INVAL);
    p.keymat_len = 20;
    assert_int_equal(esp_sadb_add(&db, &p, NULL), 0);
    esp_sadb_free(&db);
}

static void test_sadb_newest_outbound_sa_carries_traffic_and_the_previous_takes_over_when_it_goes(void **state)
{
    struct esp_sadb db;
    uint8_t km[20] = { 1 };
    struct esp_sa_params p;
    struct esp_sa *a, *b, *c;

    (void)state;
    assert_int_equal(esp_sadb_init(&db, 16), 0);
    p = params(0x1111, ESP_SA_OUT, htonl(0x0A000001u), km);
    assert_int_equal(esp_sadb_add(&db, &p, &a), 0);
    p = params(0x2222, ESP_SA_OUT, htonl(0x0A000002u), km);
    assert_int_equal(esp_sadb_add(&db, &p, &b), 0);
    assert_ptr_equal(esp_sadb_lookup_out(&db, htonl(0x0A000001u)), a);
    assert_ptr_equal(esp_sadb_lookup_out(&db, htonl(0x0A000002u)), b);
    p = params(0x3333, ESP_SA_OUT, htonl(0x0A000001u), km);
    assert_int_equal(esp_sadb_add(&db, &p, &c), 0);
    assert_ptr_equal(esp_sadb_lookup_out(&db, htonl(0x0A000001u)), c);
    assert_int_equal(c->spi, 0x3333);
    assert_int_equal(db.n_out, 3);
    assert_ptr_equal(esp_sadb_lookup_out_spi(&db, htonl(0x0A000001u), 0x1111), a);
    assert_null(esp_sadb_lookup_out_spi(&db, htonl(0x0A000002u), 0x1111));
    /* Outbound SAs are not found by SPI on the inbound path. */
    assert_null(esp_sadb_lookup_in(&db, 0x3333));
    /* The newest goes (a dropped speculative SA): the older one is back,
     * with its sequence numbers. */
    a->seq_out = 41;
    esp_sadb_remove(&db, &c);
    assert_ptr_equal(esp_sadb_lookup_out(&db, htonl(0x0A000001u)), a);
    assert_int_equal(a->seq_out, 41);
    assert_int_equal(db.n_out, 2);
    esp_sadb_free(&db);
}

struct life_fixture {
    struct esp_sadb tx, rx;
    struct esp_sa *out, *in;
    struct ev_log log;
    uint8_t buf[256];
};

static void life_setup(struct life_fixture *f, const struct esp_lifetime *soft,
                       const struct esp_lifetime *hard, bool esn)
{
    memset(f, 0, sizeof(*f));
    fake_now_ms = 1000000;
    assert_int_equal(esp_sadb_init(&f->tx, 16), 0);
    assert_int_equal(esp_sadb_init(&f->rx, 16), 0);
    esp_sadb_set_clock(&f->tx, fake_clock);
    esp_sadb_set_event_cb(&f->tx, ev_record, &f->log);
    assert_int_equal(ett_sa_pair(&f->tx, &f->rx, 0x5000, IPSEC_AEAD_AES_GCM_128, esn,
                                 &f->out, &f->in), 0);
    f->out->soft = *soft;
    f->out->hard = *hard;
}

static int life_send(struct life_fixture *f, size_t plen)
{
    uint8_t payload[100] = { 0 }, *esp;
    size_t tot = ett_ipv4_tcp(f->buf, 1, 2, 3, 4, 5, payload, plen), esp_len;

    return esp_output(&f->tx, f->out, f->buf, tot, sizeof(f->buf), &esp, &esp_len);
}

static void test_sadb_packet_lifetime_soft_then_hard(void **state)
{
    struct life_fixture f;
    struct esp_lifetime soft = { 0, 3, 0 }, hard = { 0, 5, 0 };
    int i;

    (void)state;
    life_setup(&f, &soft, &hard, false);
    for (i = 0; i < 2; i++)
        assert_int_equal(life_send(&f, 10), 0);
    assert_int_equal(f.log.soft, 0);
    assert_int_equal(life_send(&f, 10), 0);
    assert_int_equal(f.log.soft, 1);
    assert_int_equal(f.log.soft_limits, ESP_LIMIT_PACKETS);
    assert_int_equal(life_send(&f, 10), 0);
    assert_int_equal(f.log.soft, 1); /* once only */
    assert_int_equal(life_send(&f, 10), 0);
    assert_int_equal(f.log.hard, 1);
    assert_int_equal(f.log.hard_limits, ESP_LIMIT_PACKETS);
    assert_int_equal(life_send(&f, 10), ESP_E_EXPIRED);
    assert_int_equal(f.out->ctr.pkts_out, 5);
    /* The sweep removes the dead SA (and only it). */
    assert_int_equal(esp_sadb_sweep(&f.tx), 1);
    assert_null(esp_sadb_lookup_out(&f.tx, htonl(0x0A630002u)));
    esp_sadb_free(&f.tx);
    esp_sadb_free(&f.rx);
}

static void test_sadb_byte_lifetime_counts_inner_bytes(void **state)
{
    struct life_fixture f;
    struct esp_lifetime soft = { 200, 0, 0 }, hard = { 400, 0, 0 };

    (void)state;
    life_setup(&f, &soft, &hard, false);
    assert_int_equal(life_send(&f, 60), 0); /* 100 bytes */
    assert_int_equal(f.out->ctr.bytes_out, 100);
    assert_int_equal(life_send(&f, 60), 0);
    assert_int_equal(f.log.soft, 1);
    assert_int_equal(f.log.soft_limits, ESP_LIMIT_BYTES);
    assert_int_equal(life_send(&f, 60), 0);
    assert_int_equal(f.log.hard, 0);
    assert_int_equal(life_send(&f, 60), 0);
    assert_int_equal(f.log.hard, 1);
    assert_int_equal(life_send(&f, 1), ESP_E_EXPIRED);
    assert_int_equal(f.tx.ctr.bytes_out, 400);
    esp_sadb_free(&f.tx);
    esp_sadb_free(&f.rx);
}

static void test_sadb_seconds_lifetime_fires_on_sweep_and_on_use(void **state)
{
    struct life_fixture f;
    struct esp_lifetime soft = { 0, 0, 60 }, hard = { 0, 0, 90 };

    (void)state;
    life_setup(&f, &soft, &hard, false);
    assert_int_equal(life_send(&f, 1), 0);
    fake_now_ms += 59999;
    assert_int_equal(esp_sadb_sweep(&f.tx), 0);
    assert_int_equal(f.log.soft, 0);
    fake_now_ms += 1;
    assert_int_equal(esp_sadb_sweep(&f.tx), 0);
    assert_int_equal(f.log.soft, 1);
    assert_int_equal(f.log.soft_limits, ESP_LIMIT_SECONDS);
    assert_int_equal(life_send(&f, 1), 0);
    /* Idle past the hard limit, then traffic: refused even before any
     * sweep ran. */
    fake_now_ms += 30000;
    assert_int_equal(life_send(&f, 1), ESP_E_EXPIRED);
    assert_int_equal(f.log.hard, 1);
    assert_int_equal(esp_sadb_sweep(&f.tx), 1);
    esp_sadb_free(&f.tx);
    esp_sadb_free(&f.rx);
}

static void test_sadb_32bit_sequence_never_wraps(void **state)
{
    struct life_fixture f;
    struct esp_lifetime none = { 0, 0, 0 };

    (void)state;
    life_setup(&f, &none, &none, false);
    /* Rekey event at half the space, well before exhaustion. */
    esp_sa_set_seq_out(f.out, 0x7FFFFFFEu);
    assert_int_equal(life_send(&f, 1), 0);
    assert_int_equal(f.log.soft, 1);
    assert_int_equal(f.log.soft_limits, ESP_LIMIT_SEQ);
    esp_sa_set_seq_out(f.out, 0xFFFFFFFEu);
    assert_int_equal(life_send(&f, 1), 0); /* seq 2^32 - 1, the last one */
    assert_int_equal(f.log.hard, 1);
    assert_int_equal(f.log.hard_limits, ESP_LIMIT_SEQ);
    assert_int_equal(life_send(&f, 1), ESP_E_EXPIRED);
    assert_int_equal(f.out->seq_out, 0xFFFFFFFFu);
    esp_sadb_free(&f.tx);
    esp_sadb_free(&f.rx);
}

static void test_sadb_esn_sequence_goes_past_32_bits_and_stops_at_64(void **state)
{
    struct life_fixture f;
    struct esp_lifetime none = { 0, 0, 0 };

    (void)state;
    life_setup(&f, &none, &none, true);
    esp_sa_set_seq_out(f.out, 0xFFFFFFFFu);
    assert_int_equal(life_send(&f, 1), 0);
    assert_int_equal(f.out->seq_out, UINT64_C(0x100000000));
    assert_int_equal(f.log.soft + f.log.hard, 0);
    esp_sa_set_seq_out(f.out, UINT64_MAX - 1);
    assert_int_equal(life_send(&f, 1), 0);
    assert_int_equal(f.log.soft, 1);
    assert_int_equal(f.log.hard, 1);
    assert_int_equal(life_send(&f, 1), ESP_E_EXPIRED);
    /* Even if the SA were somehow revived, the counter refuses to wrap. */
    f.out->hard_fired = false;
    assert_int_equal(life_send(&f, 1), ESP_E_SEQ_EXHAUSTED);
    esp_sadb_free(&f.tx);
    esp_sadb_free(&f.rx);
}

static void test_sadb_inbound_hard_limit_refuses_packets(void **state)
{
    struct life_fixture f;
    struct esp_lifetime none = { 0, 0, 0 }, hard_in = { 0, 2, 0 };
    uint8_t *esp, *ip, copy[256];
    size_t esp_len, ip_len, tot;
    int i;

    (void)state;
    life_setup(&f, &none, &none, false);
    f.in->hard = hard_in;
    for (i = 0; i < 3; i++) {
        tot = ett_ipv4_tcp(f.buf, 1, 2, 3, 4, 5, (const uint8_t *)"x", 1);
        assert_int_equal(esp_output(&f.tx, f.out, f.buf, tot, sizeof(f.buf), &esp,
                                    &esp_len), 0);
        memcpy(copy, esp, esp_len);
        assert_int_equal(esp_input(&f.rx, copy, esp_len, 0, 1, 2, &ip, &ip_len, NULL),
                         i < 2 ? 0 : ESP_E_EXPIRED);
    }
    assert_int_equal(f.in->ctr.pkts_in, 2);
    assert_int_equal(esp_sadb_sweep(&f.rx), 1);
    assert_null(esp_sadb_lookup_in(&f.rx, 0x5000));
    esp_sadb_free(&f.tx);
    esp_sadb_free(&f.rx);
}

static void test_the_newest_outbound_sa_still_wins_after_the_table_grows(void **state)
{
    struct esp_sadb db;
    uint8_t km[20] = { 1 };
    uint32_t peer = inet_addr("10.99.2.100");
    struct esp_sa_params p;

    (void)state;
    assert_int_equal(esp_sadb_init(&db, 4), 0);
    p = params(0x1000, ESP_SA_OUT, peer, km);
    assert_int_equal(esp_sadb_add(&db, &p, NULL), 0);          /* the old CHILD SA */
    p = params(0x2000, ESP_SA_OUT, peer, km);
    assert_int_equal(esp_sadb_add(&db, &p, NULL), 0);          /* its rekeyed successor */
    assert_int_equal(esp_sadb_lookup_out(&db, peer)->spi, 0x2000);
    size_t nb0 = db.nbuckets;

    for (uint32_t i = 0; db.nbuckets == nb0; i++) {               /* other SAs come up: the table grows once */
        p = params(0x9000 + i, ESP_SA_IN, peer, km);
        assert_int_equal(esp_sadb_add(&db, &p, NULL), 0);
    }
    assert_int_equal(db.nbuckets, 2 * nb0);
    assert_int_equal(esp_sadb_lookup_out(&db, peer)->spi, 0x2000);
    esp_sadb_free(&db);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sadb_finds_thousands_of_inbound_sas_by_spi),
        cmocka_unit_test(test_sadb_rejects_reserved_spi_and_bad_keys),
        cmocka_unit_test(test_sadb_newest_outbound_sa_carries_traffic_and_the_previous_takes_over_when_it_goes),
        cmocka_unit_test(test_sadb_packet_lifetime_soft_then_hard),
        cmocka_unit_test(test_sadb_byte_lifetime_counts_inner_bytes),
        cmocka_unit_test(test_sadb_seconds_lifetime_fires_on_sweep_and_on_use),
        cmocka_unit_test(test_sadb_32bit_sequence_never_wraps),
        cmocka_unit_test(test_sadb_esn_sequence_goes_past_32_bits_and_stops_at_64),
        cmocka_unit_test(test_sadb_inbound_hard_limit_refuses_packets),
        cmocka_unit_test(test_the_newest_outbound_sa_still_wins_after_the_table_grows),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
