/*
 * The seam between lwIP and the libuv side of the netstack.
 *
 * glibc's <netinet/tcp.h>, pulled in by uv.h, defines TCP_MSS 512, which
 * clashes with lwIP's own TCP_MSS. So no translation unit includes both:
 * netstack_lwip.c includes lwIP and never uv.h; netstack.c and stream.c
 * include uv.h and never lwIP. This header includes neither: lwIP objects
 * cross it as opaque pointers, and each side calls the other only through
 * the functions declared here.
 *
 *   nsl_*       implemented in netstack_lwip.c (the lwIP side)
 *   netstack__* implemented in netstack.c      (packets out of lwIP)
 *   stream__*   implemented in stream.c        (TCP events out of lwIP)
 *
 * Return conventions: nsl_* functions return 0 or a negative NSL_E_* code.
 */
#ifndef ESPROXY_IPSEC_NETSTACK_LWIP_H
#define ESPROXY_IPSEC_NETSTACK_LWIP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum nsl_err {
    NSL_E_MEM = -1,       /* out of memory */
    NSL_E_NOPORT = -2,    /* no free local port / port in use */
    NSL_E_ROUTE = -3,     /* netif down */
    NSL_E_STATE = -4,     /* operation not valid in this TCP state */
};

/* Why lwIP dropped a connection (the pcb is gone when this is reported). */
enum nsl_conn_err {
    NSL_CONN_RESET = 1,   /* RST received (includes "connection refused") */
    NSL_CONN_ABORTED = 2, /* lwIP gave up: retransmissions or keepalive */
    NSL_CONN_CLOSED = 3,  /* both FINs done before we let go of the pcb */
};

#define NSL_SLEEP_INFINITE 0xFFFFFFFFu

/* ---- stack and netif ---- */

/* Initialise lwIP (once per process) and bring up the single netif with
 * our inner address (network order). ns is handed back to
 * netstack__ip_output. */
int nsl_netif_up(void *ns, uint32_t local_addr);
/* Abort every pcb lwIP still holds (ours are detached by then), take the
 * netif down. lwIP itself stays initialised for a later nsl_netif_up. */
void nsl_netif_down(void);
/* The MTU lwIP derives MSS values from: set per peer before work that may
 * emit or accept a SYN for that peer (connect, input, timers). */
void nsl_netif_set_mtu(uint16_t mtu);
/* Hand one decrypted IPv4 packet to lwIP (copied into a pbuf). */
int nsl_input(const uint8_t *pkt, size_t len);
void nsl_timers_run(void);
uint32_t nsl_timers_sleeptime(void);

/* ---- TCP connections (pcb is an lwIP struct tcp_pcb *) ---- */

/* Connect from our address to dst:port; arg comes back in stream__* calls. */
int nsl_tcp_connect(uint32_t dst, uint16_t port, void *arg, void **pcb_r);
int nsl_tcp_listen(uint16_t port, void *arg, void **pcb_r);
void nsl_tcp_listen_close(void *lpcb);
/* Copy up to len bytes into lwIP's send buffer; returns bytes taken. */
size_t nsl_tcp_write(void *pcb, const uint8_t *data, size_t len);
void nsl_tcp_output(void *pcb);
/* Bytes lwIP holds for us: unsent plus unacknowledged. */
size_t nsl_tcp_sndbuf_used(void *pcb);
size_t nsl_tcp_sndbuf_max(void);
size_t nsl_tcp_wnd_max(void);
void nsl_tcp_recved(void *pcb, size_t len);
/* Clamp the send MSS (both directions already agreed on at most this). */
void nsl_tcp_clamp_mss(void *pcb, uint16_t mss);
uint16_t nsl_tcp_mss(void *pcb);
uint32_t nsl_tcp_remote_addr(void *pcb);
uint16_t nsl_tcp_local_port(void *pcb);
/* Send FIN after queued data. 0 or NSL_E_MEM (retry later). */
int nsl_tcp_shutdown_tx(void *pcb);
/* Graceful close; lwIP owns the pcb afterwards. Falls back to abort. */
void nsl_tcp_close(void *pcb);
/* Forget the pcb without closing it: lwIP owns it from now on (used once
 * both FINs are exchanged and only TIME_WAIT / LAST_ACK remain). */
void nsl_tcp_detach(void *pcb);
/* Drop the connection at once; rst = 0 sends nothing (tunnel is gone). */
void nsl_tcp_abort(void *pcb, int rst);

/* ---- receive queue: pbufs held until the consumer takes the bytes ---- */

struct nsl_rxq {
    void **ring;          /* struct pbuf * (each possibly a chain) */
    uint32_t cap, head, count;
    size_t off;           /* bytes already taken from the head pbuf chain */
    size_t bytes;         /* bytes held, not yet taken */
};

int nsl_rxq_push(struct nsl_rxq *q, void *pbuf);
/* Fill up to max iovecs with held bytes, in order; returns how many. */
size_t nsl_rxq_peek(const struct nsl_rxq *q, struct iovec *iov, size_t max);
/* Release n taken bytes (n <= q->bytes). */
void nsl_rxq_consume(struct nsl_rxq *q, size_t n);
void nsl_rxq_free(struct nsl_rxq *q);

/* ---- upcalls (implemented on the libuv side) ---- */

/* One IPv4 packet out of lwIP, contiguous, to inner destination dst. */
void netstack__ip_output(void *ns, uint32_t dst, const uint8_t *pkt, size_t len);

void stream__on_connected(void *arg);
/* pbuf NULL: the peer sent FIN. The stream owns pbuf from now on. */
int stream__on_recv(void *arg, void *pbuf, size_t len);
void stream__on_sent(void *arg, size_t len);
void stream__on_error(void *arg, enum nsl_conn_err err);
/* A listener accepted pcb; return the stream's arg, or NULL to refuse. */
void *stream__on_accept(void *listener_arg, void *pcb);

#endif
