/*
 * A netstack that talks to itself through real ESP-in-UDP, for unit tests
 * of the netstack and the stream API in one process (lwIP is one stack
 * per process, so a second peer cannot live here).
 *
 * The "mirror": our inner address L, a tunnel to peer P whose UDP peer is
 * our own socket, and one SA used both ways (outbound dst P; inbound
 * src P, dst L, same SPI and key). A packet L:a -> P:b is encrypted,
 * sent to ourselves, and decrypted with its header rebuilt as P:a -> L:b.
 * So a connection to P:7 reaches our own listener on port 7 as coming
 * from P, and its replies come back as from P:7: both ends of every TCP
 * connection live in this lwIP. Checksums stay valid (the pseudo-header
 * sum is symmetric in src/dst). Keys are static test keys.
 */
#ifndef ESPROXY_TESTS_NETSTACK_TEST_UTIL_H
#define ESPROXY_TESTS_NETSTACK_TEST_UTIL_H

#include "ipsec/netstack.h"
#include "ipsec/stream.h"
#include "tests/unit/esp_test_util.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define NTU_LOCAL  htonl(0x0A580001u)   /* 10.88.0.1 */
#define NTU_PEER   htonl(0x0A580002u)   /* 10.88.0.2 */
#define NTU_SPI    0x4D495252u

struct ntu {
    uv_loop_t loop;
    struct esp_sadb db;
    struct netstack *ns;
    struct netstack_tunnel *tun;
    struct sockaddr_in addr;
    int closed;
};

static inline int ntu_add_sa(struct esp_sadb *db, uint32_t spi, enum esp_sa_dir dir,
                             uint32_t src, uint32_t dst)
{
    uint8_t km[IPSEC_AEAD_KEYMAT_MAX];
    struct esp_sa_params p;
    struct esp_sa *sa;

    memset(&p, 0, sizeof(p));
    ett_keymat(km, sizeof(km), (uint8_t)spi);
    p.spi = spi;
    p.alg = IPSEC_AEAD_AES_GCM_128;
    p.keymat = km;
    p.keymat_len = ipsec_aead_keymat_len(p.alg);
    p.dir = dir;
    p.src = src;
    p.dst = dst;
    return esp_sadb_add(db, &p, &sa);
}

static inline int ntu_open(struct ntu *m, unsigned path_mtu)
{
    struct netstack_config cfg;
    struct netstack_tunnel_config tc;
    int len = sizeof(m->addr), rc;

    memset(m, 0, sizeof(*m));
    uv_loop_init(&m->loop);
    if ((rc = esp_sadb_init(&m->db, 64)) < 0)
        return rc;
    memset(&cfg, 0, sizeof(cfg));
    cfg.local_addr = NTU_LOCAL;
    cfg.udp_bind.sin_family = AF_INET;
    cfg.udp_bind.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((rc = netstack_open(&m->ns, &m->loop, &m->db, &cfg)) < 0)
        return rc;
    uv_udp_getsockname(&netstack_udp(m->ns)->udp, (struct sockaddr *)&m->addr, &len);
    memset(&tc, 0, sizeof(tc));
    tc.peer_addr = NTU_PEER;
    tc.udp_peer = m->addr;
    tc.path_mtu = path_mtu;
    if ((rc = netstack_tunnel_add(m->ns, &tc, &m->tun)) < 0)
        return rc;
    if ((rc = ntu_add_sa(&m->db, NTU_SPI, ESP_SA_OUT, NTU_LOCAL, NTU_PEER)) < 0)
        return rc;
    return ntu_add_sa(&m->db, NTU_SPI, ESP_SA_IN, NTU_PEER, NTU_LOCAL);
}

static inline void ntu_on_closed(struct netstack *ns, void *arg)
{
    (void)ns;
    ((struct ntu *)arg)->closed = 1;
}

static inline void ntu_close(struct ntu *m)
{
    netstack_close(m->ns, ntu_on_closed, m);
    while (!m->closed)
        uv_run(&m->loop, UV_RUN_ONCE);
    uv_run(&m->loop, UV_RUN_NOWAIT);
    esp_sadb_free(&m->db);
    uv_loop_close(&m->loop);
}

static inline void ntu_on_deadline(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static inline void ntu_on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

/* Run the loop until *flag is set or ms elapse; returns *flag. */
static inline int ntu_run_until(struct ntu *m, const int *flag, uint64_t ms)
{
    uv_timer_t t;
    int expired = 0;

    uv_timer_init(&m->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, ntu_on_deadline, ms, 0);
    while (!*flag && !expired)
        uv_run(&m->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, ntu_on_timer_closed);
    uv_run(&m->loop, UV_RUN_NOWAIT);
    return *flag;
}

#endif
