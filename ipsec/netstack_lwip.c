/*
 * The lwIP side of the netstack: the single netif, packet input, timers,
 * TCP pcb callbacks and the receive queue of held pbufs. Includes lwIP
 * headers only (never uv.h, see netstack_lwip.h) and knows nothing about
 * ESP or libuv: packets leave through netstack__ip_output and TCP events
 * through the stream__* upcalls.
 *
 * Ownership rule for pcbs: while a stream holds a pcb its callback arg is
 * the stream. Every path that gives a pcb back to lwIP (close, abort,
 * detach) clears the arg and callbacks first, so lwIP never reports on a
 * pcb the stream has let go of, and the stream never touches a pcb lwIP
 * may free (TIME_WAIT pcbs are freed silently).
 */
#include "lwip/opt.h"
#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/timeouts.h"

#include "netstack_lwip.h"

#include <stdlib.h>
#include <string.h>

static struct netif nsl_nif;
static int nsl_inited;
static int nsl_up;

static err_t nsl_netif_output(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst)
{
    uint8_t tmp[2048];

    (void)dst;
    if (p->next == NULL) {
        netstack__ip_output(nif->state, ip4_addr_get_u32(dst), p->payload, p->len);
        return ERR_OK;
    }
    /* Chains are rare (TX_SINGLE_PBUF); flatten small ones, drop the rest. */
    if (p->tot_len > sizeof(tmp))
        return ERR_MEM;
    pbuf_copy_partial(p, tmp, p->tot_len, 0);
    netstack__ip_output(nif->state, ip4_addr_get_u32(dst), tmp, p->tot_len);
    return ERR_OK;
}

static err_t nsl_netif_init(struct netif *nif)
{
    nif->name[0] = 'e';
    nif->name[1] = 's';
    nif->output = nsl_netif_output;
    nif->mtu = 1500;
    nif->flags = NETIF_FLAG_LINK_UP;
    return ERR_OK;
}

int nsl_netif_up(void *ns, uint32_t local_addr)
{
    ip4_addr_t ip, mask, gw;

    if (nsl_up)
        return NSL_E_STATE;
    if (!nsl_inited) {
        lwip_init();
        nsl_inited = 1;
    }
    ip4_addr_set_u32(&ip, local_addr);
    ip4_addr_set_u32(&mask, 0);   /* every peer is on-link: routing is ours */
    ip4_addr_set_zero(&gw);
    if (netif_add(&nsl_nif, &ip, &mask, &gw, ns, nsl_netif_init, ip4_input) == NULL)
        return NSL_E_MEM;
    netif_set_default(&nsl_nif);
    netif_set_up(&nsl_nif);
    nsl_up = 1;
    return 0;
}

static void nsl_abandon_list(struct tcp_pcb **list)
{
    while (*list != NULL) {
        struct tcp_pcb *pcb = *list;

        tcp_arg(pcb, NULL);
        tcp_err(pcb, NULL);
        tcp_abandon(pcb, 0);   /* unlinks pcb from *list and frees it */
    }
}

void nsl_netif_down(void)
{
    if (!nsl_up)
        return;
    nsl_abandon_list(&tcp_active_pcbs);
    nsl_abandon_list(&tcp_tw_pcbs);
    while (tcp_listen_pcbs.listen_pcbs != NULL)
        tcp_close((struct tcp_pcb *)tcp_listen_pcbs.listen_pcbs);
    while (tcp_bound_pcbs != NULL)
        tcp_close(tcp_bound_pcbs);
    netif_set_down(&nsl_nif);
    netif_remove(&nsl_nif);
    nsl_up = 0;
}

void nsl_netif_set_mtu(uint16_t mtu)
{
    nsl_nif.mtu = mtu;
}

int nsl_input(const uint8_t *pkt, size_t len)
{
    struct pbuf *p;

    if (!nsl_up || len > 0xFFFFu)
        return NSL_E_STATE;
    p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
    if (p == NULL)
        return NSL_E_MEM;
    memcpy(p->payload, pkt, len);
    if (nsl_nif.input(p, &nsl_nif) != ERR_OK)
        pbuf_free(p);
    return 0;
}

void nsl_timers_run(void)
{
    sys_check_timeouts();
}

uint32_t nsl_timers_sleeptime(void)
{
    u32_t ms = sys_timeouts_sleeptime();

    return ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE ? NSL_SLEEP_INFINITE : ms;
}

/* ---- pcb callbacks ---- */

static err_t nsl_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    (void)err;
    if (arg == NULL) {            /* detached: behave like tcp_recv_null */
        if (p != NULL) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    /* Refused data stays with lwIP, which offers it again later. */
    return stream__on_recv(arg, p, p != NULL ? p->tot_len : 0) < 0 ? ERR_MEM : ERR_OK;
}

static err_t nsl_on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    (void)pcb;
    if (arg != NULL)
        stream__on_sent(arg, len);
    return ERR_OK;
}

static void nsl_on_err(void *arg, err_t err)
{
    if (arg == NULL)
        return;
    stream__on_error(arg, err == ERR_RST ? NSL_CONN_RESET :
                          err == ERR_CLSD ? NSL_CONN_CLOSED : NSL_CONN_ABORTED);
}

/* lwIP 2.1 starts every pcb with a 3 s RTO (RFC 1122). RFC 6298 2.1 says
 * 1 s, and a SYN lost in the tunnel (a packet dropped while the VIP moves)
 * should cost one second, not three. lwIP does not back off in SYN_SENT, so
 * an unanswered connect retries every 1-1.5 s, TCP_SYNMAXRTX (12) times:
 * 13-19.5 s in all, unless the proxy's connect timeout ends it first. */
#define NSL_SYN_RTO_MS  1000
#define NSL_DATA_RTO_MS 3000

static err_t nsl_on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)err;
    /* RFC 6298 5.7: if the SYN was retransmitted, data starts with 3 s.
     * lwIP leaves nrtx as it was when the SYN-ACK acknowledged our SYN. */
    if (pcb->nrtx > 0)
        pcb->rto = NSL_DATA_RTO_MS / TCP_SLOW_INTERVAL;
    if (arg != NULL)
        stream__on_connected(arg);
    return ERR_OK;
}

static void nsl_attach(struct tcp_pcb *pcb, void *arg)
{
    tcp_arg(pcb, arg);
    tcp_recv(pcb, nsl_on_recv);
    tcp_sent(pcb, nsl_on_sent);
    tcp_err(pcb, nsl_on_err);
    /* A proxy forwards what it gets at once; Nagle plus delayed ACKs would
     * stall request/response protocols. */
    tcp_nagle_disable(pcb);
}

static err_t nsl_on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    void *sarg;

    if (err != ERR_OK || pcb == NULL || arg == NULL)
        return ERR_VAL;
    sarg = stream__on_accept(arg, pcb);
    if (sarg == NULL) {
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    nsl_attach(pcb, sarg);
    return ERR_OK;
}

static int nsl_err_map(err_t e)
{
    switch (e) {
    case ERR_OK: return 0;
    case ERR_MEM: return NSL_E_MEM;
    case ERR_BUF: case ERR_USE: return NSL_E_NOPORT;
    case ERR_RTE: return NSL_E_ROUTE;
    default: return NSL_E_STATE;
    }
}

int nsl_tcp_connect(uint32_t dst, uint16_t port, void *arg, void **pcb_r)
{
    struct tcp_pcb *pcb;
    ip_addr_t ip;
    err_t e;

    if (!nsl_up)
        return NSL_E_ROUTE;
    pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
    if (pcb == NULL)
        return NSL_E_MEM;
    nsl_attach(pcb, arg);
    /* rto counts slow ticks from the send, and the first tick comes at a
     * random phase: one tick more keeps the wait at or above 1 s. */
    pcb->rto = NSL_SYN_RTO_MS / TCP_SLOW_INTERVAL + 1;
    ip_addr_set_ip4_u32(&ip, dst);
    e = tcp_connect(pcb, &ip, port, nsl_on_connected);
    if (e != ERR_OK) {
        tcp_arg(pcb, NULL);
        tcp_err(pcb, NULL);
        tcp_abort(pcb);
        return nsl_err_map(e);
    }
    *pcb_r = pcb;
    return 0;
}

int nsl_tcp_listen(uint16_t port, void *arg, void **pcb_r)
{
    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_V4), *lpcb;
    err_t e;

    if (pcb == NULL)
        return NSL_E_MEM;
    e = tcp_bind(pcb, IP4_ADDR_ANY, port);
    if (e != ERR_OK) {
        tcp_close(pcb);
        return nsl_err_map(e);
    }
    lpcb = tcp_listen_with_backlog_and_err(pcb, TCP_DEFAULT_LISTEN_BACKLOG, &e);
    if (lpcb == NULL) {
        tcp_close(pcb);
        return nsl_err_map(e);
    }
    tcp_arg(lpcb, arg);
    tcp_accept(lpcb, nsl_on_accept);
    *pcb_r = lpcb;
    return 0;
}

void nsl_tcp_listen_close(void *lpcb)
{
    tcp_arg(lpcb, NULL);
    tcp_close(lpcb);   /* never fails for a listening pcb */
}

size_t nsl_tcp_write(void *pcbv, const uint8_t *data, size_t len)
{
    struct tcp_pcb *pcb = pcbv;
    size_t done = 0;

    while (done < len) {
        size_t n = len - done;
        u8_t flags = TCP_WRITE_FLAG_COPY;

        if (n > tcp_sndbuf(pcb))
            n = tcp_sndbuf(pcb);
        if (n > 0xFFFFu)          /* tcp_write takes a u16_t length */
            n = 0xFFFFu;
        if (n == 0 || tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 4)
            break;
        if (done + n < len)
            flags |= TCP_WRITE_FLAG_MORE;
        if (tcp_write(pcb, data + done, (u16_t)n, flags) != ERR_OK)
            break;
        done += n;
    }
    return done;
}

void nsl_tcp_output(void *pcb)
{
    tcp_output(pcb);
}

size_t nsl_tcp_sndbuf_used(void *pcb)
{
    /* Not tcp_sndbuf(): it caps at 0xFFFF for 16-bit callers. */
    return (size_t)TCP_SND_BUF - ((struct tcp_pcb *)pcb)->snd_buf;
}

size_t nsl_tcp_sndbuf_max(void)
{
    return TCP_SND_BUF;
}

size_t nsl_tcp_wnd_max(void)
{
    return TCP_WND;
}

void nsl_tcp_recved(void *pcb, size_t len)
{
    while (len > 0) {
        u16_t n = len > 0xFFFFu ? 0xFFFFu : (u16_t)len;

        tcp_recved(pcb, n);
        len -= n;
    }
}

void nsl_tcp_clamp_mss(void *pcbv, uint16_t mss)
{
    struct tcp_pcb *pcb = pcbv;

    if (mss != 0 && pcb->mss > mss)
        pcb->mss = mss;
}

uint16_t nsl_tcp_mss(void *pcb)
{
    return ((struct tcp_pcb *)pcb)->mss;
}

uint32_t nsl_tcp_remote_addr(void *pcb)
{
    return ip4_addr_get_u32(ip_2_ip4(&((struct tcp_pcb *)pcb)->remote_ip));
}

uint16_t nsl_tcp_local_port(void *pcb)
{
    return ((struct tcp_pcb *)pcb)->local_port;
}

int nsl_tcp_shutdown_tx(void *pcb)
{
    return tcp_shutdown(pcb, 0, 1) == ERR_OK ? 0 : NSL_E_MEM;
}

void nsl_tcp_detach(void *pcbv)
{
    struct tcp_pcb *pcb = pcbv;

    tcp_arg(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
}

void nsl_tcp_close(void *pcb)
{
    nsl_tcp_detach(pcb);
    if (tcp_close(pcb) != ERR_OK)
        tcp_abort(pcb);
}

void nsl_tcp_abort(void *pcb, int rst)
{
    nsl_tcp_detach(pcb);
    tcp_abandon(pcb, rst);
}

/* ---- receive queue ---- */

int nsl_rxq_push(struct nsl_rxq *q, void *pbuf)
{
    if (q->count == q->cap) {
        uint32_t ncap = q->cap ? q->cap * 2 : 16, i;
        void **r = malloc(sizeof(*r) * ncap);

        if (r == NULL)
            return NSL_E_MEM;
        for (i = 0; i < q->count; i++)
            r[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = r;
        q->cap = ncap;
        q->head = 0;
    }
    q->ring[(q->head + q->count) % q->cap] = pbuf;
    q->count++;
    q->bytes += ((struct pbuf *)pbuf)->tot_len;
    return 0;
}

size_t nsl_rxq_peek(const struct nsl_rxq *q, struct iovec *iov, size_t max)
{
    size_t n = 0, skip = q->off;
    uint32_t i;

    for (i = 0; i < q->count && n < max; i++) {
        const struct pbuf *p = q->ring[(q->head + i) % q->cap];

        for (; p != NULL && n < max; p = p->next) {
            if (skip >= p->len) {
                skip -= p->len;
                continue;
            }
            iov[n].iov_base = (uint8_t *)p->payload + skip;
            iov[n].iov_len = p->len - skip;
            skip = 0;
            n++;
        }
    }
    return n;
}

void nsl_rxq_consume(struct nsl_rxq *q, size_t n)
{
    q->bytes -= n;
    n += q->off;
    while (q->count > 0) {
        struct pbuf *p = q->ring[q->head];

        if (n < p->tot_len)
            break;
        n -= p->tot_len;
        pbuf_free(p);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    q->off = n;
    if (q->count == 0) {
        /* Idle streams keep no ring: memory per idle stream stays small. */
        free(q->ring);
        memset(q, 0, sizeof(*q));
    }
}

void nsl_rxq_free(struct nsl_rxq *q)
{
    while (q->count > 0) {
        pbuf_free(q->ring[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    free(q->ring);
    memset(q, 0, sizeof(*q));
}
