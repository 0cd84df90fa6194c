/*
 * The tunnel manager's wiring, end to end in one process on the loopback:
 * a frontend tunnel_mgr (netstack, IKE, liveness) against a peer made of
 * the same parts the back-end uses minus lwIP (one per process): an
 * ike_io responder on its own ESP-in-UDP socket that decrypts every ESP
 * packet it gets into its own SA database.
 *
 * Frontend 127.0.0.2, peer ("VIP") 127.0.0.3, both on ephemeral ports.
 * lwIP does not route loopback addresses: the tests build inner packets
 * themselves and encrypt them as the netstack does (send_segment).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipsec/esp.h"
#include "ipsec/ike_io.h"
#include "ipsec/ipsec_log.h"
#include "ipsec/tunnel.h"
#include "tests/unit/esp_test_util.h"

#define FE_ADDR  "127.0.0.2"
#define VIP_ADDR "127.0.0.3"
#define SPI_SEEN 8

struct peer {
    struct udp_encap ue;
    struct esp_sadb db;
    struct ike_io io;
    struct sockaddr_in addr;
    int established, child_rekeyed;
    uint32_t spis[SPI_SEEN];        /* inbound SPIs that decrypted, in order */
    unsigned pkts[SPI_SEEN];
    int n_spis;
};

struct fixture {
    uv_loop_t loop;
    struct tunnel_mgr *m;
    struct tunnel *t;
    struct peer p;
    int up;
    bool mgr_done;
};

static void log_sink(enum ipsec_log_level level, const char *msg)
{
    if (level <= IPSEC_LOG_WARN || getenv("TUNNEL_TEST_LOG"))
        fprintf(stderr, "  log: %s\n", msg);
}

static void peer_on_esp(void *arg, uint8_t *pkt, size_t len, size_t headroom, const struct sockaddr_in *from)
{
    struct peer *p = arg;
    struct esp_sa *sa = NULL;
    uint8_t *ip;
    size_t ip_len;
    int i;

    if (esp_input(&p->db, pkt, len, headroom, from->sin_addr.s_addr, p->addr.sin_addr.s_addr, &ip, &ip_len,
                  &sa) != 0 || sa == NULL)
        return;
    for (i = 0; i < p->n_spis && p->spis[i] != sa->spi; i++)
        ;
    if (i == p->n_spis && i < SPI_SEEN)
        p->spis[p->n_spis++] = sa->spi;
    if (i < SPI_SEEN)
        p->pkts[i]++;
}

static void peer_on_ike(void *arg, const uint8_t *msg, size_t len, const struct sockaddr_in *from)
{
    struct peer *p = arg;

    ike_io_input(&p->io, msg, len, from, p->addr.sin_addr.s_addr);
}

static void peer_on_event(void *arg, struct ike_sa *sa, enum ike_event ev)
{
    struct peer *p = arg;

    (void)sa;
    p->established += ev == IKE_EV_ESTABLISHED;
    p->child_rekeyed += ev == IKE_EV_CHILD_REKEYED;
}

static void ident(struct ike_identity *id, const char *fqdn)
{
    id->type = IKE_ID_FQDN;
    id->len = strlen(fqdn);
    memcpy(id->data, fqdn, id->len);
}

static struct ike_peer_config peer_config(bool frontend, uint16_t peer_port)
{
    struct ike_peer_config c;
    struct ike_proposal *ike, *esp;

    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "%s", frontend ? "main" : "fronts");
    c.local_addr = inet_addr(frontend ? FE_ADDR : VIP_ADDR);
    c.peer_addr = frontend ? inet_addr(VIP_ADDR) : 0;
    c.port = peer_port;
    ident(&c.local_id, frontend ? "fe1.example.test" : "mail.example.test");
    ident(&c.peer_id, frontend ? "mail.example.test" : "fe1.example.test");
    memcpy(c.psk, "tunnel test psk, not a secret", 29);
    c.psk_len = 29;
    ike = &c.ike_proposals.p[c.ike_proposals.n++];
    *ike = (struct ike_proposal){ .num = 1, .proto = IKE_PROTO_IKE, .n = 3 };
    ike->t[0] = (struct ike_transform){ IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128, false };
    ike->t[1] = (struct ike_transform){ IKE_TRANS_PRF, IKE_PRF_HMAC_SHA2_256, 0, false };
    ike->t[2] = (struct ike_transform){ IKE_TRANS_DH, IKE_DH_CURVE25519, 0, false };
    esp = &c.esp_proposals.p[c.esp_proposals.n++];
    *esp = (struct ike_proposal){ .num = 1, .proto = IKE_PROTO_ESP, .n = 2 };
    esp->t[0] = (struct ike_transform){ IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128, false };
    esp->t[1] = (struct ike_transform){ IKE_TRANS_ESN, IKE_ESN_NO, 0, false };   /* 32-bit sequence numbers */
    c.retransmit_ms = 200;
    c.retransmit_tries = 3;
    return c;
}

static void peer_open(struct fixture *f)
{
    struct peer *p = &f->p;
    struct ike_peer_config pc;

    memset(p, 0, sizeof(*p));
    uv_ip4_addr(VIP_ADDR, 0, &p->addr);
    assert_int_equal(esp_sadb_init(&p->db, 16), 0);
    assert_int_equal(udp_encap_open(&p->ue, &f->loop, &p->addr, 0, peer_on_esp, peer_on_ike, p), 0);
    assert_int_equal(udp_encap_local_addr(&p->ue, &p->addr), 0);
    assert_int_equal(ike_io_init(&p->io, &f->loop, &p->ue, &p->db, NULL, peer_on_event, p), 0);
    pc = peer_config(false, 0);
    assert_true(ike_ctx_add_peer(p->io.ctx, &pc) >= 0);
}

static void on_tunnel_event(void *arg, struct tunnel *t, enum tunnel_event ev)
{
    struct fixture *f = arg;

    (void)t;
    f->up += ev == TUNNEL_EV_UP;
}

static void fixture_open(struct fixture *f)
{
    struct tunnel_mgr_config mc;
    struct liveness_config lc = { .probe_interval_ms = 1000, .dead_after_ms = 1000, .stall_ms = 1000,
                                  .retry_ms = 200, .retry_max_ms = 1000 };
    struct ike_peer_config pc;

    memset(f, 0, sizeof(*f));
    ipsec_log_set_sink(log_sink);
    uv_loop_init(&f->loop);
    peer_open(f);
    memset(&mc, 0, sizeof(mc));
    mc.local_addr = inet_addr(FE_ADDR);
    assert_int_equal(tunnel_mgr_open(&f->m, &f->loop, &mc), 0);
    pc = peer_config(true, ntohs(f->p.addr.sin_port));
    assert_int_equal(tunnel_add(f->m, &pc, &lc, on_tunnel_event, f, &f->t), 0);
    tunnel_mgr_start(f->m);
}

static void mgr_done(void *arg)
{
    struct fixture *f = arg;

    f->mgr_done = true;
}

static void fixture_close(struct fixture *f)
{
    tunnel_mgr_shutdown(f->m, 500, mgr_done, f);
    for (int i = 0; i < 2000 && !f->mgr_done; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(f->mgr_done);
    ike_io_close(&f->p.io);
    udp_encap_close(&f->p.ue, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    esp_sadb_free(&f->p.db);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Run the loop until done(f) or ms pass (real time). */
static bool run_until(struct fixture *f, bool (*done)(const struct fixture *f), uint64_t ms)
{
    uint64_t end;

    uv_update_time(&f->loop);
    end = uv_now(&f->loop) + ms;
    while (!done(f) && uv_now(&f->loop) < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        uv_update_time(&f->loop);
    }
    return done(f);
}

static bool tunnel_is_up(const struct fixture *f)
{
    return f->up > 0;
}

static uint32_t spi_before;     /* the outbound SPI the rekey replaces */

static bool outbound_sa_replaced(const struct fixture *f)
{
    const struct esp_sa *sa = esp_sadb_lookup_out(tunnel_mgr_sadb(f->m), f->p.addr.sin_addr.s_addr);

    return sa != NULL && sa->spi != spi_before && f->p.child_rekeyed > 0;
}

static bool peer_got_two_on_the_new_sa(const struct fixture *f)
{
    return f->p.n_spis == 2 && f->p.pkts[1] == 2;
}

/* One TCP segment from the frontend to the VIP, the way the netstack
 * sends it: encrypted with the peer's current outbound SA (looked up per
 * packet) and sent from the tunnel's socket. lwIP refuses loopback
 * destinations, so the test builds the inner packet itself. */
static int send_segment(struct fixture *f, uint16_t dport)
{
    struct esp_sadb *db = tunnel_mgr_sadb(f->m);
    struct esp_sa *sa = esp_sadb_lookup_out(db, f->p.addr.sin_addr.s_addr);
    uint8_t buf[128 + ESP_OUT_TAILROOM], *esp;
    size_t len = ett_ipv4_tcp(buf, inet_addr(FE_ADDR), inet_addr(VIP_ADDR), 40000, dport, 1,
                              (const uint8_t *)"USER", 4), esp_len;
    int rc;

    if (sa == NULL)
        return -1;
    rc = esp_output(db, sa, buf, len, sizeof(buf), &esp, &esp_len);
    if (rc != 0)
        return rc;
    return udp_encap_send_esp(netstack_udp(tunnel_mgr_netstack(f->m)), esp, esp_len, &f->p.addr);
}

/* Handshake budget from the configuration: every retransmission of both
 * exchanges, twice over for a busy machine. */
static uint64_t ike_budget_ms(void)
{
    struct ike_peer_config pc = peer_config(true, 0);
    uint64_t sum = 0, gap = pc.retransmit_ms;

    for (unsigned i = 0; i <= pc.retransmit_tries; i++, gap *= 2)
        sum += gap;
    return 2 * 2 * sum;
}

/* A 32-bit-sequence CHILD SA that has used half its sequence space is
 * rekeyed (CREATE_CHILD_SA) long before it runs out, and the packets that
 * follow go out on the new SA, which the peer decrypts. */
static void test_half_the_sequence_space_used_rekeys_the_child_sa(void **state)
{
    struct fixture f;
    struct esp_sa *out;
    uint32_t old_spi, peer = inet_addr(VIP_ADDR);

    (void)state;
    fixture_open(&f);
    assert_true(run_until(&f, tunnel_is_up, ike_budget_ms()));
    out = esp_sadb_lookup_out(tunnel_mgr_sadb(f.m), peer);
    assert_non_null(out);
    assert_false(out->esn);
    old_spi = spi_before = out->spi;
    /* the next packet is the one that reaches half the space */
    esp_sa_set_seq_out(out, UINT32_MAX / 2u - 1u);
    assert_int_equal(send_segment(&f, 110), 0);
    assert_true(run_until(&f, outbound_sa_replaced, ike_budget_ms()));
    assert_int_equal(f.p.n_spis, 1);
    assert_int_equal(f.p.spis[0], old_spi);  /* the packet that crossed half, delivered */
    out = esp_sadb_lookup_out(tunnel_mgr_sadb(f.m), peer);
    assert_non_null(out);
    assert_int_not_equal(out->spi, old_spi);
    assert_int_equal(out->seq_out, 0);       /* a fresh sequence space */
    assert_int_equal(send_segment(&f, 143), 0);
    assert_int_equal(send_segment(&f, 143), 0);
    assert_true(run_until(&f, peer_got_two_on_the_new_sa, ike_budget_ms()));
    assert_int_equal(f.p.spis[1], out->spi); /* traffic continues on the new SA */
    assert_int_equal(f.p.established, 1);    /* a CHILD rekey, not a new IKE SA */
    fixture_close(&f);
}

/* The end of the sequence space is the end of the SA: it never wraps
 * (RFC 4303 3.3.3), even when no rekey replaced it. */
static void test_an_exhausted_sequence_space_never_wraps(void **state)
{
    struct fixture f;
    struct esp_sa *out;

    (void)state;
    fixture_open(&f);
    assert_true(run_until(&f, tunnel_is_up, ike_budget_ms()));
    out = esp_sadb_lookup_out(tunnel_mgr_sadb(f.m), inet_addr(VIP_ADDR));
    assert_non_null(out);
    esp_sa_set_seq_out(out, UINT32_MAX - 1u);
    assert_int_equal(send_segment(&f, 110), 0);         /* the last number, 2^32 - 1 */
    assert_int_equal(out->seq_out, UINT32_MAX);
    assert_int_equal(send_segment(&f, 110), ESP_E_EXPIRED);       /* hard limit reached */
    assert_int_equal(out->seq_out, UINT32_MAX);
    fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_half_the_sequence_space_used_rekeys_the_child_sa),
        cmocka_unit_test(test_an_exhausted_sequence_space_never_wraps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
