/*
 * Netstack internals shared by the libuv-side files (netstack.c,
 * stream.c, stream_listen.c). Never included by netstack_lwip.c.
 */
#ifndef ESPROXY_IPSEC_NETSTACK_PRIV_H
#define ESPROXY_IPSEC_NETSTACK_PRIV_H

#include "netstack.h"
#include "netstack_lwip.h"
#include "stream.h"

#include <stdbool.h>

/* One batch slot holds the largest inner packet lwIP sends (MSS 1460 plus
 * headers and SYN options) plus ESP tailroom. */
#define NETSTACK_TX_SLOT 1664u

struct netstack_tunnel {
    struct netstack *ns;
    struct netstack_tunnel *next;
    uint32_t peer_addr;
    struct sockaddr_in udp_peer;
    uint16_t mss;
    struct stream *streams;     /* doubly linked through tprev/tnext */
    size_t nstreams;
};

struct netstack {
    uv_loop_t *loop;
    struct esp_sadb *db;
    struct udp_encap ue;
    uint32_t local_addr;
    struct netstack_tunnel *tunnels;
    uint16_t min_mss;           /* smallest tunnel MSS: used for timers */

    uv_timer_t lwip_timer;      /* lwIP timeouts, re-armed from sleeptime */
    uv_prepare_t prepare;       /* deferred work before the loop blocks */
    uv_check_t check;           /* deferred work right after I/O */
    uv_idle_t idle;             /* keeps poll from blocking while work waits */
    int open_handles;
    bool closing;
    netstack_close_fn *close_cb;
    void *close_arg;

    struct stream_listener *listeners;
    struct stream *pending;     /* streams with events to deliver */
    struct stream **pending_tail;

    uint8_t *tx_buf;            /* UDP_ENCAP_BATCH_MAX slots */
    struct udp_encap_pkt tx_pkts[UDP_ENCAP_BATCH_MAX];
    size_t tx_n;
    struct netstack_tunnel *tx_tun;
    bool batching;

    netstack_event_fn *on_event;
    void *event_arg;
    udp_encap_ike_fn *on_ike;
    void *ike_arg;
    struct netstack_stats st;
};

struct stream_listener {
    struct netstack *ns;
    struct stream_listener *next;
    void *lpcb;
    stream_accept_fn *on_accept;
    void *data;
    unsigned refs;              /* own reference + accepted, unreported */
    bool closed;
};

/* netstack.c */
void netstack__kick(struct netstack *ns);
void netstack__enter(struct netstack_tunnel *t);
void netstack__leave(struct netstack *ns);

/* stream.c */
void stream__dispatch_pending(struct netstack *ns);
/* Drop every stream on t at once (no FIN; RST only for local close). */
size_t stream__lose_tunnel(struct netstack_tunnel *t, enum stream_close_reason r);

/* stream_listen.c */
void stream__close_listeners(struct netstack *ns);
void stream__listener_unref(struct stream_listener *l);

#endif
