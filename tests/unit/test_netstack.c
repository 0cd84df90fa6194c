/*
 * Netstack glue (ipsec/netstack.c, netstack_lwip.c): MSS from path MTU,
 * per-destination routing to the right SA and UDP peer, the advertised
 * MSS in SYNs, the own-source guard, data-path events and sendmmsg
 * batching. Static test keys; lwIP is per process, so one netstack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/netstack_test_util.h"
#include "ipsec/netstack_lwip.h"

static void test_mss_fills_the_path_mtu_exactly(void **state)
{
    struct esp_sadb tx, rx;
    struct esp_sa *out, *in;
    static uint8_t buf[4096];
    unsigned mtu;

    (void)state;
    esp_sadb_init(&tx, 8);
    esp_sadb_init(&rx, 8);
    assert_int_equal(ett_sa_pair(&tx, &rx, 0x100, IPSEC_AEAD_AES_GCM_128, false, &out, &in), 0);
    assert_int_equal(netstack_mss_for_mtu(1500), 1418);
    for (mtu = 576; mtu <= 1500; mtu++) {
        uint16_t mss = netstack_mss_for_mtu(mtu);
        uint8_t payload[1460] = { 0 }, *esp;
        size_t ip_len, esp_len, next_len;

        /* A full segment, encapsulated, fits the MTU... */
        ip_len = ett_ipv4_tcp(buf, htonl(0x0A630001u), htonl(0x0A630002u), 1, 2, 1,
                              payload, mss);
        assert_int_equal(esp_output(&tx, out, buf, ip_len, sizeof(buf), &esp, &esp_len), 0);
        assert_true(20 + 8 + esp_len <= mtu);
        /* ... and one more byte would not (unless clamped at 1460). */
        if (mss < 1460) {
            ip_len = ett_ipv4_tcp(buf, htonl(0x0A630001u), htonl(0x0A630002u), 1, 2, 1,
                                  payload, (size_t)mss + 1);
            assert_int_equal(esp_output(&tx, out, buf, ip_len, sizeof(buf), &esp, &next_len), 0);
            assert_true(20 + 8 + next_len > mtu);
        }
    }
    assert_int_equal(netstack_mss_for_mtu(9000), 1460);
    esp_sadb_free(&tx);
    esp_sadb_free(&rx);
}

/* A capture socket standing in for a peer: decrypts what arrives with
 * its own SA only, so a SYN counted here went to the right peer and SA. */
struct capture {
    uv_udp_t udp;
    struct sockaddr_in addr;
    struct esp_sadb db;
    int pkts, syns, second_syn;
    uint64_t first_syn_ms, second_syn_ms;
    uint32_t last_spi;
    uint16_t syn_mss;
};

static void cap_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    static char buf[70000];

    (void)h;
    (void)sz;
    *b = uv_buf_init(buf + 64, sizeof(buf) - 64);
}

static void cap_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *a,
                     unsigned flags)
{
    struct capture *c = h->data;
    uint8_t *p = (uint8_t *)b->base, *ip;
    size_t ip_len;

    (void)flags;
    if (n <= 0 || a == NULL)
        return;
    c->pkts++;
    c->last_spi = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (esp_input(&c->db, p, (size_t)n, 64, NTU_LOCAL, 0, &ip, &ip_len, NULL) != 0)
        return;
    /* TCP SYN with an MSS option (kind 2, len 4) first. */
    if (ip_len >= 44 && (ip[33] & 0x02) && ip[40] == 2 && ip[41] == 4) {
        if (++c->syns == 1)
            c->first_syn_ms = uv_now(h->loop);
        if (c->syns == 2) {
            c->second_syn_ms = uv_now(h->loop);
            c->second_syn = 1;
        }
        c->syn_mss = (uint16_t)(ip[42] << 8 | ip[43]);
    }
}

static void cap_open(struct ntu *m, struct capture *c, uint32_t peer, uint32_t spi,
                     unsigned mtu, struct netstack_tunnel **t_r)
{
    struct netstack_tunnel_config tc;
    int len = sizeof(c->addr);

    memset(c, 0, sizeof(*c));
    esp_sadb_init(&c->db, 8);
    uv_udp_init(&m->loop, &c->udp);
    c->udp.data = c;
    uv_ip4_addr("127.0.0.1", 0, &c->addr);
    assert_int_equal(uv_udp_bind(&c->udp, (struct sockaddr *)&c->addr, 0), 0);
    uv_udp_getsockname(&c->udp, (struct sockaddr *)&c->addr, &len);
    uv_udp_recv_start(&c->udp, cap_alloc, cap_recv);
    assert_int_equal(ntu_add_sa(&m->db, spi, ESP_SA_OUT, NTU_LOCAL, peer), 0);
    assert_int_equal(ntu_add_sa(&c->db, spi, ESP_SA_IN, NTU_LOCAL, peer), 0);
    memset(&tc, 0, sizeof(tc));
    tc.peer_addr = peer;
    tc.udp_peer = c->addr;
    tc.path_mtu = mtu;
    assert_int_equal(netstack_tunnel_add(m->ns, &tc, t_r), 0);
}

static void cap_close(struct capture *c)
{
    uv_close((uv_handle_t *)&c->udp, NULL);
    esp_sadb_free(&c->db);
}

static const struct stream_callbacks no_cbs;

static void test_output_routes_each_destination_to_its_sa_and_peer(void **state)
{
    struct ntu m;
    struct capture c1, c2;
    struct netstack_tunnel *t1, *t2;
    struct stream *s1, *s2;
    uint32_t p1 = htonl(0x0A590001u), p2 = htonl(0x0A590002u);

    (void)state;
    assert_int_equal(ntu_open(&m, 0), 0);
    cap_open(&m, &c1, p1, 0x1111, 1400, &t1);
    cap_open(&m, &c2, p2, 0x2222, 1500, &t2);
    assert_int_equal(stream_open(m.ns, p1, 80, 0, &no_cbs, NULL, &s1), 0);
    assert_int_equal(stream_open(m.ns, p2, 80, 0, &no_cbs, NULL, &s2), 0);
    assert_true(ntu_run_until(&m, &c2.syns, 2000));
    ntu_run_until(&m, &c1.syns, 2000);
    assert_int_equal(c1.syns, 1);
    assert_int_equal(c1.last_spi, 0x1111);
    assert_int_equal(c2.syns, 1);
    assert_int_equal(c2.last_spi, 0x2222);
    /* Each SYN advertises the MSS of its own tunnel's path MTU. */
    assert_int_equal(c1.syn_mss, netstack_mss_for_mtu(1400));
    assert_int_equal(c2.syn_mss, netstack_mss_for_mtu(1500));
    assert_int_equal(netstack_tunnel_mss(t1), netstack_mss_for_mtu(1400));
    stream_abort(s1);
    stream_abort(s2);
    cap_close(&c1);
    cap_close(&c2);
    ntu_close(&m);
}

/* A SYN nobody answers is sent again after RFC 6298's 1 s initial RTO
 * (lwIP's own default is 3 s, which the 2.4 s deadline would miss);
 * lwIP's coarse timer adds up to 500 ms. */
static void test_unanswered_syn_is_retransmitted_after_one_second(void **state)
{
    struct ntu m;
    struct capture c;
    struct netstack_tunnel *t;
    struct stream *s;
    uint32_t p = htonl(0x0A590003u);

    (void)state;
    assert_int_equal(ntu_open(&m, 0), 0);
    cap_open(&m, &c, p, 0x3333, 1500, &t);
    assert_int_equal(stream_open(m.ns, p, 143, 0, &no_cbs, NULL, &s), 0);
    assert_true(ntu_run_until(&m, &c.second_syn, 2400));
    assert_true(c.second_syn_ms - c.first_syn_ms >= 900);
    assert_true(c.second_syn_ms - c.first_syn_ms <= 2000);
    stream_abort(s);
    cap_close(&c);
    ntu_close(&m);
}

struct events {
    int unknown_spi, auth_rx, data_sent;
};

static void on_event(void *arg, struct netstack_tunnel *t, enum netstack_event ev)
{
    struct events *e = arg;

    (void)t;
    e->unknown_spi += ev == NETSTACK_EV_UNKNOWN_SPI;
    e->auth_rx += ev == NETSTACK_EV_AUTH_RX;
    e->data_sent += ev == NETSTACK_EV_DATA_SENT;
}

static void test_packets_claiming_our_address_are_dropped(void **state)
{
    struct ntu m;
    struct esp_sadb tx;
    struct esp_sa *sa;
    struct netstack_stats st;
    struct events ev = { 0 };
    static uint8_t buf[2048];
    uint8_t *esp;
    size_t ip_len, esp_len;
    uint8_t junk[64];

    (void)state;
    assert_int_equal(ntu_open(&m, 0), 0);
    netstack_set_event_cb(m.ns, on_event, &ev);
    /* An authentic packet whose SA claims our own address as source. */
    esp_sadb_init(&tx, 8);
    assert_int_equal(ntu_add_sa(&tx, 0x3333, ESP_SA_OUT, NTU_LOCAL, NTU_LOCAL), 0);
    assert_int_equal(ntu_add_sa(&m.db, 0x3333, ESP_SA_IN, NTU_LOCAL, NTU_LOCAL), 0);
    sa = esp_sadb_lookup_out(&tx, NTU_LOCAL);
    ip_len = ett_ipv4_tcp(buf + 64, NTU_LOCAL, NTU_LOCAL, 7, 7, 1, (const uint8_t *)"x", 1);
    assert_int_equal(esp_output(&tx, sa, buf + 64, ip_len, sizeof(buf) - 64, &esp, &esp_len), 0);
    netstack_esp_input(m.ns, esp, esp_len, (size_t)(esp - buf), &m.addr);
    netstack_get_stats(m.ns, &st);
    assert_int_equal(st.rx_own_src, 1);
    assert_int_equal(st.rx_pkts, 0);
    /* ESP on an SPI nobody installed: counted; a hint only when it comes
     * from a tunnel's peer address (anyone else is only counted). */
    memset(junk, 0x5A, sizeof(junk));
    netstack_esp_input(m.ns, junk + 16, sizeof(junk) - 16, 16, &m.addr);
    netstack_get_stats(m.ns, &st);
    assert_int_equal(st.rx_esp_errors, 1);
    assert_int_equal(ev.unknown_spi, 0);
    {
        struct sockaddr_in from = m.addr;

        from.sin_addr.s_addr = NTU_PEER;
        memset(junk, 0x5A, sizeof(junk));
        netstack_esp_input(m.ns, junk + 16, sizeof(junk) - 16, 16, &from);
    }
    netstack_get_stats(m.ns, &st);
    assert_int_equal(st.rx_esp_errors, 2);
    assert_int_equal(ev.unknown_spi, 1);
    assert_int_equal(ev.auth_rx, 0);
    esp_sadb_free(&tx);
    ntu_close(&m);
}

/* Liveness counts only what asks the peer for an answer: data, SYN, FIN.
 * A pure ACK (what we send after every response) must not, or a healthy
 * tunnel turns SUSPECT after each request/response. */
static void test_only_segments_that_want_an_answer_count_as_data_sent(void **state)
{
    struct ntu m;
    struct events ev = { 0 };
    static uint8_t pkt[128];
    size_t len;

    (void)state;
    assert_int_equal(ntu_open(&m, 0), 0);
    netstack_set_event_cb(m.ns, on_event, &ev);
    len = ett_ipv4_tcp(pkt, NTU_LOCAL, NTU_PEER, 1000, 110, 1, (const uint8_t *)"", 0);
    pkt[33] = 0x10;                             /* pure ACK */
    netstack__ip_output(m.ns, NTU_PEER, pkt, len);
    assert_int_equal(ev.data_sent, 0);
    pkt[33] = 0x14;                             /* RST+ACK */
    netstack__ip_output(m.ns, NTU_PEER, pkt, len);
    assert_int_equal(ev.data_sent, 0);
    pkt[33] = 0x02;                             /* SYN */
    netstack__ip_output(m.ns, NTU_PEER, pkt, len);
    assert_int_equal(ev.data_sent, 1);
    pkt[33] = 0x11;                             /* FIN+ACK */
    netstack__ip_output(m.ns, NTU_PEER, pkt, len);
    assert_int_equal(ev.data_sent, 2);
    len = ett_ipv4_tcp(pkt, NTU_LOCAL, NTU_PEER, 1000, 110, 1, (const uint8_t *)"QUIT\r\n", 6);
    pkt[33] = 0x10;                             /* ACK with data */
    netstack__ip_output(m.ns, NTU_PEER, pkt, len);
    assert_int_equal(ev.data_sent, 3);
    ntu_close(&m);
}

/* Through a NAT the peer computed the TCP checksum over addresses we never
 * see (RFC 3948 3.1.2); ESP's ICV has already authenticated the segment,
 * so, like Linux's esp4 for UDP-encapsulated transport mode, the netstack
 * must not drop it: a segment to a closed port is answered with a RST
 * whether its checksum matches our view of the addresses or not. */
static size_t rsts_for_segment(uint32_t checksum_src)
{
    struct ntu m;
    struct esp_sadb tx;
    struct netstack_stats st;
    static uint8_t buf[2048];
    uint8_t *esp;
    size_t ip_len, esp_len;
    int never = 0;

    assert_int_equal(ntu_open(&m, 0), 0);
    esp_sadb_init(&tx, 8);
    assert_int_equal(ntu_add_sa(&tx, NTU_SPI, ESP_SA_OUT, NTU_PEER, NTU_LOCAL), 0);
    ip_len = ett_ipv4_tcp(buf + 64, checksum_src, NTU_LOCAL, 40000, 7, 1, (const uint8_t *)"x", 1);
    assert_int_equal(esp_output(&tx, esp_sadb_lookup_out(&tx, NTU_LOCAL), buf + 64, ip_len,
                                sizeof(buf) - 64, &esp, &esp_len), 0);
    netstack_esp_input(m.ns, esp, esp_len, (size_t)(esp - buf), &m.addr);
    ntu_run_until(&m, &never, 30);
    netstack_get_stats(m.ns, &st);
    assert_int_equal(st.rx_pkts, 1);
    esp_sadb_free(&tx);
    ntu_close(&m);
    return (size_t)st.tx_pkts;
}

static void test_tcp_checksum_from_behind_a_nat_is_not_checked(void **state)
{
    (void)state;
    assert_int_equal(rsts_for_segment(NTU_PEER), 1);
    assert_int_equal(rsts_for_segment(htonl(0xC0A80105u)), 1);    /* 192.168.1.5 behind the NAT */
}

static size_t sink_data(struct stream *s, const struct iovec *iov, size_t n)
{
    size_t i, t = 0;

    (void)s;
    for (i = 0; i < n; i++)
        t += iov[i].iov_len;
    *(size_t *)stream_get_data(s) += t;
    return t;
}

static const struct stream_callbacks sink_cbs = { NULL, sink_data, NULL, NULL };
static size_t sunk;

static void sink_accept(struct stream_listener *l, struct stream *s)
{
    (void)l;
    stream_set_callbacks(s, &sink_cbs, &sunk);
    stream_read_start(s);
}

static size_t bulk(int batching, struct netstack_stats *st_r)
{
    static uint8_t buf[4u << 20];
    struct ntu m;
    struct stream_listener *l;
    struct stream *s;
    size_t got = 0;
    int never = 0;

    assert_int_equal(ntu_open(&m, 0), 0);
    netstack_set_batching(m.ns, batching != 0);
    sunk = 0;
    assert_int_equal(stream_listen(m.ns, 9, sink_accept, NULL, &l), 0);
    assert_int_equal(stream_open(m.ns, NTU_PEER, 9, 0, &no_cbs, &got, &s), 0);
    memset(buf, 'b', sizeof(buf));
    stream_write(s, buf, sizeof(buf));
    while (sunk < sizeof(buf))
        assert_false(ntu_run_until(&m, &never, 20));
    netstack_get_stats(m.ns, st_r);
    stream_abort(s);
    ntu_close(&m);
    return sunk;
}

static void test_batching_sends_many_datagrams_per_syscall(void **state)
{
    struct netstack_stats on, off;

    (void)state;
    assert_int_equal(bulk(1, &on), 4u << 20);
    assert_int_equal(bulk(0, &off), 4u << 20);
    /* Without batching every packet costs a syscall; with it, far fewer. */
    assert_true(off.tx_syscalls >= off.tx_pkts);
    assert_true(on.tx_syscalls * 4 < on.tx_pkts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mss_fills_the_path_mtu_exactly),
        cmocka_unit_test(test_output_routes_each_destination_to_its_sa_and_peer),
        cmocka_unit_test(test_unanswered_syn_is_retransmitted_after_one_second),
        cmocka_unit_test(test_packets_claiming_our_address_are_dropped),
        cmocka_unit_test(test_only_segments_that_want_an_answer_count_as_data_sent),
        cmocka_unit_test(test_tcp_checksum_from_behind_a_nat_is_not_checked),
        cmocka_unit_test(test_batching_sends_many_datagrams_per_syscall),
    };

    return cmocka_run_group_tests_name("netstack", tests, NULL, NULL);
}
