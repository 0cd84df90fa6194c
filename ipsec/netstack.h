/*
 * The netstack: lwIP TCP inside ESP transport mode, carried in UDP 4500.
 *
 * lwIP is one global stack per process (NO_SYS, LWIP_SINGLE_NETIF), so
 * there is one netstack per process: one netif with our inner address, and
 * any number of tunnels, one per peer. The netif's output routes each IPv4
 * packet by destination to its tunnel, encrypts it with the tunnel's
 * current outbound SA (looked up in the SA database on every packet, so a
 * rekey takes effect at once) and sends it from the shared UDP socket.
 * Decrypted packets are matched to a tunnel by source address (the
 * inbound SA's peer address rebuilds the header, so the source is
 * authenticated); packets claiming our own address are dropped.
 *
 * Inner addresses: in production they are the outer ones (transport
 * mode). Tests on 127.0.0.1 give both ends distinct inner addresses and
 * put those in the SAs' src/dst, which is all the netstack looks at.
 *
 * MSS: each tunnel has an outer path MTU; full-sized segments plus
 * IPv4 + UDP + ESP overhead fit it exactly (netstack_mss_for_mtu).
 *
 * Batching: outgoing packets are encrypted into a batch buffer and sent
 * with one sendmmsg per batch at the end of every loop phase that made
 * them (or when the batch fills); receives are batched by udp_encap
 * (recvmmsg).
 *
 * Everything runs on the loop's thread. Return convention: 0 or a
 * negative libuv error code.
 */
#ifndef ESPROXY_IPSEC_NETSTACK_H
#define ESPROXY_IPSEC_NETSTACK_H

#include "sadb.h"
#include "udp_encap.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct netstack;
struct netstack_tunnel;

#define NETSTACK_DEFAULT_PATH_MTU 1500u

struct netstack_config {
    uint32_t local_addr;            /* our inner IPv4 address, network order */
    struct sockaddr_in udp_bind;    /* the ESP-in-UDP socket (port 4500) */
    unsigned udp_flags;             /* enum udp_encap_flags */
};

struct netstack_tunnel_config {
    uint32_t peer_addr;             /* peer inner IPv4 (VIP), network order;
                                       the outbound SA's dst */
    struct sockaddr_in udp_peer;    /* where this peer's ESP goes */
    unsigned path_mtu;              /* outer path MTU, 0 = 1500 */
};

/* Data-path events for the liveness module (it alone decides what they
 * mean). */
enum netstack_event {
    NETSTACK_EV_DATA_SENT = 1,      /* a packet that wants an answer (TCP data, SYN, FIN;
                                     * not a pure ACK) left on t's SA */
    NETSTACK_EV_AUTH_RX = 2,        /* an authentic packet arrived on t */
    NETSTACK_EV_UNKNOWN_SPI = 3,    /* ESP for an SPI we do not know, from t's peer address
                                     * (from anywhere else it is only counted) */
    NETSTACK_EV_NO_SA = 4,          /* a packet for t found no outbound SA */
};
typedef void netstack_event_fn(void *arg, struct netstack_tunnel *t,
                               enum netstack_event ev);
typedef void netstack_close_fn(struct netstack *ns, void *arg);

struct netstack_stats {
    uint64_t tx_pkts, tx_syscalls, tx_dropped;   /* dropped: no SA, ESP error */
    uint64_t rx_pkts, rx_esp_errors, rx_own_src, rx_no_tunnel;
    uint64_t streams_open;
};

/* Returns UV_EBUSY if the process already has a netstack. db stays the
 * caller's and must outlive the netstack. */
int netstack_open(struct netstack **ns_r, uv_loop_t *loop, struct esp_sadb *db,
                  const struct netstack_config *cfg);
/* Abort every stream (reason: local close), close listeners and the
 * socket; cb runs once everything is closed and ns is freed. */
void netstack_close(struct netstack *ns, netstack_close_fn *cb, void *arg);

struct udp_encap *netstack_udp(struct netstack *ns);
void netstack_set_ike_handler(struct netstack *ns, udp_encap_ike_fn *fn, void *arg);
void netstack_set_event_cb(struct netstack *ns, netstack_event_fn *fn, void *arg);
void netstack_get_stats(const struct netstack *ns, struct netstack_stats *st_r);
/* Batching on by default; off sends each packet with its own syscall
 * (kept for the before/after measurement). */
void netstack_set_batching(struct netstack *ns, bool on);

int netstack_tunnel_add(struct netstack *ns, const struct netstack_tunnel_config *cfg,
                        struct netstack_tunnel **t_r);
/* Close every stream on t (reason: tunnel lost) and forget t. */
void netstack_tunnel_remove(struct netstack_tunnel **t);
struct netstack_tunnel *netstack_tunnel_find(struct netstack *ns, uint32_t peer_addr);
/* The failover module declared t's SA dead: every stream on t closes with
 * reason "tunnel lost"; their closed callbacks run within this loop turn
 * (before the loop next blocks for I/O). No packet is sent for them. The
 * tunnel stays usable for new streams once a new SA is installed.
 * Returns the number of streams closed. */
size_t netstack_tunnel_lost(struct netstack_tunnel *t);
uint16_t netstack_tunnel_mss(const struct netstack_tunnel *t);
uint32_t netstack_tunnel_peer(const struct netstack_tunnel *t);

/* Largest TCP payload whose segment, ESP-in-UDP encapsulated, fits
 * path_mtu (data segments carry no TCP options). Clamped to [88, 1460]. */
uint16_t netstack_mss_for_mtu(unsigned path_mtu);

/* The ESP receive path (udp_encap_esp_fn, arg = ns); exposed for tests. */
void netstack_esp_input(void *ns, uint8_t *pkt, size_t len, size_t headroom,
                        const struct sockaddr_in *from);

#endif
