/*
 * esp_traffic: real ESP-in-UDP traffic from esproxy's own ESP and UDP
 * encapsulation code, for independent checks (tests/net/esp_tshark.sh).
 *
 * Two endpoints A and B, each a udp_encap socket on port 4500 of its own
 * address, each with its SA database. A sends --count synthetic IPv4/TCP
 * segments to B and B answers each; payloads are known text. Every
 * received packet is decrypted by the receiver's esp_input and compared
 * with what was sent. A also sends one NAT-keepalive and one IKE message
 * (non-ESP marker) to exercise the demux. Keys are random; A's database
 * writes the Wireshark key log (both directions). --expect gets one line
 * per ESP packet: "<spi hex> <seq> <payload hex>".
 *
 * usage: esp_traffic --a IP --b IP --alg aes128gcm16|aes256gcm16|chacha20poly1305
 *                    [--esn] [--count N] [--port P] --keylog FILE --expect FILE
 * Exit 0 when every packet arrived and verified, 1 otherwise.
 */
#include "ipsec/esp.h"
#include "ipsec/keylog.h"
#include "ipsec/udp_encap.h"
#include "tests/unit/esp_test_util.h"

#include <getopt.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_COUNT 1000
#define PKT_CAP 2048

struct endpoint {
    const char *name;
    struct udp_encap ue;
    struct sockaddr_in addr;
    struct esp_sadb db;
    struct esp_sa *out;
    uint32_t tcp_seq;   /* consecutive segments, so analysers see a stream */
    int received, bad;
};

struct traffic {
    uv_loop_t loop;
    uv_timer_t timer;
    struct endpoint a, b;
    enum ipsec_aead_alg alg;
    bool esn;
    int count;
    FILE *expect;
    struct keylog kl;
    int ike_seen;
    char payloads[2][MAX_COUNT][1500];
};

static struct traffic T;

static size_t payload_make(char *out, size_t cap, const char *dir, int i)
{
    size_t n, fill = ((size_t)i * 97u) % 1360u;

    /* Varying sizes up to a full 1400-byte packet, so every pad length
     * and large segments appear on the wire. */
    n = (size_t)snprintf(out, cap, "esproxy esp check %s #%04d %08x ", dir, i, arc4random());
    if (n + fill >= cap)
        fill = cap - n - 1;
    memset(out + n, 'a' + i % 26, fill);
    out[n + fill] = '\0';
    return n + fill;
}

static int endpoint_send(struct endpoint *from, struct endpoint *to, int i, int dir)
{
    uint8_t buf[PKT_CAP], *esp;
    char *p = T.payloads[dir][i];
    size_t plen = payload_make(p, sizeof(T.payloads[0][0]), dir ? "b>a" : "a>b", i);
    size_t tot, esp_len, k;
    uint64_t seq;
    int rc;

    tot = ett_ipv4_tcp(buf + 64, from->addr.sin_addr.s_addr, to->addr.sin_addr.s_addr,
                       dir ? 143 : 40000, dir ? 40000 : 143, from->tcp_seq,
                       (const uint8_t *)p, plen);
    from->tcp_seq += (uint32_t)plen;
    rc = esp_output(&from->db, from->out, buf + 64, tot, PKT_CAP - 64, &esp, &esp_len);
    if (rc < 0)
        return rc;
    seq = from->out->seq_out;
    fprintf(T.expect, "0x%08x %llu ", from->out->spi, (unsigned long long)seq);
    for (k = 0; k < plen; k++)
        fprintf(T.expect, "%02x", (uint8_t)p[k]);
    fputc('\n', T.expect);
    return udp_encap_send_esp(&from->ue, esp, esp_len, &to->addr);
}

static void traffic_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void traffic_check_done(void)
{
    if (T.a.received + T.a.bad == T.count && T.b.received + T.b.bad == T.count)
        uv_timer_start(&T.timer, traffic_stop, 100, 0);
}

/* Recover the TCP payload and compare with what the peer sent. */
static void endpoint_on_esp(void *arg, uint8_t *pkt, size_t len, size_t headroom,
                            const struct sockaddr_in *from)
{
    struct endpoint *ep = arg;
    int dir = ep == &T.a ? 1 : 0;   /* A receives B's answers */
    uint8_t *ip;
    size_t ip_len, hl;
    int rc, i;

    rc = esp_input(&ep->db, pkt, len, headroom, from->sin_addr.s_addr,
                   ep->addr.sin_addr.s_addr, &ip, &ip_len, NULL);
    i = ep->received + ep->bad;
    if (rc != 0 || ip[9] != 6 || ip_len < 40 || i >= T.count) {
        fprintf(stderr, "%s: packet %d refused: %s\n", ep->name, i, esp_err_str(rc));
        ep->bad++;
    } else {
        hl = (size_t)(ip[20 + 12] >> 4) * 4u;
        if (ip_len - 20 - hl == strlen(T.payloads[dir][i]) &&
            memcmp(ip + 20 + hl, T.payloads[dir][i], ip_len - 20 - hl) == 0) {
            ep->received++;
        } else {
            fprintf(stderr, "%s: packet %d payload differs\n", ep->name, i);
            ep->bad++;
        }
    }
    if (ep == &T.b && rc == 0 && endpoint_send(&T.b, &T.a, i, 1) < 0)
        fprintf(stderr, "b: answer %d not sent\n", i);
    traffic_check_done();
}

static void endpoint_on_ike(void *arg, const uint8_t *msg, size_t len,
                            const struct sockaddr_in *from)
{
    (void)arg;
    (void)from;
    if (len == 8 && memcmp(msg, "IKEPROBE", 8) == 0)
        T.ike_seen++;
}

static int endpoint_open(struct endpoint *ep, const char *name, const char *ip, int port)
{
    ep->name = name;
    if (uv_ip4_addr(ip, port, &ep->addr) != 0 || esp_sadb_init(&ep->db, 16) < 0)
        return -1;
    return udp_encap_open(&ep->ue, &T.loop, &ep->addr, UDP_ENCAP_ZERO_CSUM,
                          endpoint_on_esp, endpoint_on_ike, ep);
}

/* One direction: outbound SA in `from`, inbound SA in `to`. */
static int sa_install(struct endpoint *from, struct endpoint *to, uint32_t spi)
{
    uint8_t km[IPSEC_AEAD_KEYMAT_MAX];
    struct esp_sa_params p;
    int rc;

    memset(&p, 0, sizeof(p));
    arc4random_buf(km, sizeof(km));
    p.spi = spi;
    p.alg = T.alg;
    p.keymat = km;
    p.keymat_len = ipsec_aead_keymat_len(T.alg);
    p.esn = T.esn;
    p.src = from->addr.sin_addr.s_addr;
    p.dst = to->addr.sin_addr.s_addr;
    p.dir = ESP_SA_OUT;
    rc = esp_sadb_add(&from->db, &p, &from->out);
    if (rc == 0) {
        p.dir = ESP_SA_IN;
        rc = esp_sadb_add(&to->db, &p, NULL);
    }
    mbedtls_platform_zeroize(km, sizeof(km));
    return rc;
}

static void traffic_start(uv_timer_t *t)
{
    int i;

    (void)t;
    udp_encap_send_keepalive(&T.a.ue, &T.b.addr);
    udp_encap_send_ike(&T.a.ue, (const uint8_t *)"IKEPROBE", 8, &T.b.addr);
    for (i = 0; i < T.count; i++) {
        if (endpoint_send(&T.a, &T.b, i, 0) < 0)
            fprintf(stderr, "a: packet %d not sent\n", i);
    }
    uv_timer_start(&T.timer, traffic_stop, 5000, 0);
}

static enum ipsec_aead_alg alg_parse(const char *s)
{
    if (strcmp(s, "aes128gcm16") == 0)
        return IPSEC_AEAD_AES_GCM_128;
    if (strcmp(s, "aes256gcm16") == 0)
        return IPSEC_AEAD_AES_GCM_256;
    if (strcmp(s, "chacha20poly1305") == 0)
        return IPSEC_AEAD_CHACHA20_POLY1305;
    return IPSEC_AEAD_NONE;
}

static int traffic_report(void)
{
    int ok = T.a.received == T.count && T.b.received == T.count && T.ike_seen == 1 &&
             T.b.ue.ctr.keepalive_rx == 1;

    printf("esp_traffic alg=%s esn=%d a>b=%d/%d b>a=%d/%d bad=%d ike=%d keepalive=%llu "
           "icv_fail=%llu replay=%llu %s\n", ipsec_aead_name(T.alg), T.esn, T.b.received,
           T.count, T.a.received, T.count, T.a.bad + T.b.bad, T.ike_seen,
           (unsigned long long)T.b.ue.ctr.keepalive_rx,
           (unsigned long long)(T.a.db.ctr.icv_fail + T.b.db.ctr.icv_fail),
           (unsigned long long)(T.a.db.ctr.replay + T.b.db.ctr.replay), ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "a", 1, NULL, 'a' }, { "b", 1, NULL, 'b' }, { "alg", 1, NULL, 'g' },
        { "esn", 0, NULL, 'e' }, { "count", 1, NULL, 'n' }, { "port", 1, NULL, 'p' },
        { "keylog", 1, NULL, 'k' }, { "expect", 1, NULL, 'x' }, { NULL, 0, NULL, 0 },
    };
    const char *ip_a = "127.0.0.1", *ip_b = "127.0.0.2", *keylog = NULL, *expect = NULL;
    int c, port = ESP_UDP_PORT, rc;

    T.alg = IPSEC_AEAD_AES_GCM_128;
    T.count = 20;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': ip_a = optarg; break;
        case 'b': ip_b = optarg; break;
        case 'g': T.alg = alg_parse(optarg); break;
        case 'e': T.esn = true; break;
        case 'n': T.count = atoi(optarg); break;
        case 'p': port = atoi(optarg); break;
        case 'k': keylog = optarg; break;
        case 'x': expect = optarg; break;
        default: return 2;
        }
    }
    if (T.alg == IPSEC_AEAD_NONE || T.count < 1 || T.count > MAX_COUNT || keylog == NULL ||
        expect == NULL || (T.expect = fopen(expect, "w")) == NULL ||
        keylog_open(&T.kl, keylog) < 0) {
        fprintf(stderr, "esp_traffic: bad arguments or files (see source header)\n");
        return 2;
    }
    uv_loop_init(&T.loop);
    uv_timer_init(&T.loop, &T.timer);
    if (endpoint_open(&T.a, "a", ip_a, port) < 0 || endpoint_open(&T.b, "b", ip_b, port) < 0) {
        fprintf(stderr, "esp_traffic: cannot bind %s/%s port %d\n", ip_a, ip_b, port);
        return 2;
    }
    esp_sadb_set_keylog(&T.a.db, &T.kl);
    if (sa_install(&T.a, &T.b, 0x10000000u | (arc4random() & 0x0FFFFFFFu)) < 0 ||
        sa_install(&T.b, &T.a, 0x20000000u | (arc4random() & 0x0FFFFFFFu)) < 0)
        return 2;
    /* B's outbound SA is logged too: A's database holds its inbound twin. */
    uv_timer_start(&T.timer, traffic_start, 0, 0);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    rc = traffic_report();
    fclose(T.expect);
    keylog_close(&T.kl);
    udp_encap_close(&T.a.ue, NULL);
    udp_encap_close(&T.b.ue, NULL);
    uv_close((uv_handle_t *)&T.timer, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    uv_loop_close(&T.loop);
    esp_sadb_free(&T.a.db);
    esp_sadb_free(&T.b.db);
    return rc;
}
