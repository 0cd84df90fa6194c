/*
 * The libuv side of the netstack: the ESP-in-UDP socket, tunnels (one per
 * peer), routing of lwIP's output to outbound SAs, batching, lwIP timers
 * and the deferred-work pass that delivers stream events.
 *
 * Deferred work runs in three places of every loop iteration: check
 * (right after I/O callbacks), prepare (before the loop blocks, catching
 * what timers and close callbacks produced) and idle (only while work is
 * left over, so poll does not block on it). Each pass first delivers
 * stream events, whose callbacks may write, then sends the batch of
 * encrypted packets with one sendmmsg and re-arms the lwIP timer.
 */
#include "netstack_priv.h"

#include "esp.h"
#include "ipsec_log.h"

#include <stdlib.h>
#include <string.h>

static struct netstack *netstack_instance;

uint16_t netstack_mss_for_mtu(unsigned path_mtu)
{
    /* outer IPv4 + UDP + ESP header/IV + ICV around the ESP payload, which
     * is the TCP segment, padding and the 2-byte trailer, 4-aligned. */
    unsigned fixed = 20u + 8u + ESP_PREFIX_LEN + ESP_ICV_LEN, body, mss;

    if (path_mtu == 0)
        path_mtu = NETSTACK_DEFAULT_PATH_MTU;
    if (path_mtu > 65535u)
        path_mtu = 65535u;
    body = path_mtu > fixed ? (path_mtu - fixed) & ~(ESP_PAD_ALIGN - 1u) : 0;
    mss = body > ESP_TRAILER_LEN + 20u ? body - ESP_TRAILER_LEN - 20u : 0;
    if (mss > 1460u)
        mss = 1460u;
    if (mss < 88u)
        mss = 88u;
    return (uint16_t)mss;
}

static void netstack_event(struct netstack *ns, struct netstack_tunnel *t,
                           enum netstack_event ev)
{
    if (ns->on_event != NULL)
        ns->on_event(ns->event_arg, t, ev);
}

struct netstack_tunnel *netstack_tunnel_find(struct netstack *ns, uint32_t peer_addr)
{
    struct netstack_tunnel *t;

    for (t = ns->tunnels; t != NULL; t = t->next)
        if (t->peer_addr == peer_addr)
            return t;
    return NULL;
}

/* ---- output: lwIP packet -> ESP -> batch -> sendmmsg ---- */

static void netstack_tx_flush(struct netstack *ns)
{
    struct netstack_tunnel *t = ns->tx_tun;
    size_t n = ns->tx_n, i;
    int sent;

    if (n == 0)
        return;
    ns->tx_n = 0;
    sent = udp_encap_send_batch(&ns->ue, ns->tx_pkts, n, &t->udp_peer);
    ns->st.tx_syscalls++;
    /* The rest would block: udp_encap_send_esp copies and queues it. */
    for (i = sent < 0 ? 0 : (size_t)sent; i < n; i++) {
        if (udp_encap_send_esp(&ns->ue, ns->tx_pkts[i].data, ns->tx_pkts[i].len,
                               &t->udp_peer) < 0)
            ns->st.tx_dropped++;
        ns->st.tx_syscalls++;
    }
}

static void netstack_tx_oversize(struct netstack *ns, struct netstack_tunnel *t,
                                 struct esp_sa *sa, const uint8_t *pkt, size_t len)
{
    uint8_t *buf = malloc(len + ESP_OUT_TAILROOM), *esp;
    size_t esp_len;

    if (buf == NULL) {
        ns->st.tx_dropped++;
        return;
    }
    memcpy(buf, pkt, len);
    if (esp_output(ns->db, sa, buf, len, len + ESP_OUT_TAILROOM, &esp, &esp_len) != 0 ||
        udp_encap_send_esp(&ns->ue, esp, esp_len, &t->udp_peer) < 0)
        ns->st.tx_dropped++;
    ns->st.tx_syscalls++;
    free(buf);
}

/* Does this IPv4 packet ask the peer for an answer? TCP data, SYN and FIN
 * do; a pure ACK (or RST) does not, so sending one is no reason to expect
 * traffic back (liveness counts only the former as "data sent"). */
static bool netstack_wants_answer(const uint8_t *pkt, size_t len)
{
    size_t ihl, thl, tot;

    if (len < 20 || (pkt[0] >> 4) != 4 || pkt[9] != 6)
        return true;        /* not TCP: count it */
    ihl = (size_t)(pkt[0] & 0x0f) * 4;
    tot = (size_t)pkt[2] << 8 | pkt[3];
    if (ihl < 20 || tot > len || ihl + 20 > tot)
        return true;
    thl = (size_t)(pkt[ihl + 12] >> 4) * 4;
    if (thl < 20 || ihl + thl > tot)
        return true;
    if (pkt[ihl + 13] & 0x03)           /* FIN or SYN */
        return true;
    if (pkt[ihl + 13] & 0x04)           /* RST: nothing comes back */
        return false;
    return tot > ihl + thl;             /* payload */
}

void netstack__ip_output(void *nsv, uint32_t dst, const uint8_t *pkt, size_t len)
{
    struct netstack *ns = nsv;
    struct netstack_tunnel *t = netstack_tunnel_find(ns, dst);
    struct esp_sa *sa = t != NULL ? esp_sadb_lookup_out(ns->db, t->peer_addr) : NULL;
    uint8_t *slot, *esp;
    size_t esp_len;

    if (sa == NULL) {
        ns->st.tx_dropped++;
        if (t != NULL)
            netstack_event(ns, t, NETSTACK_EV_NO_SA);
        return;
    }
    ns->st.tx_pkts++;
    if (netstack_wants_answer(pkt, len))
        netstack_event(ns, t, NETSTACK_EV_DATA_SENT);
    if (len + ESP_OUT_TAILROOM > NETSTACK_TX_SLOT) {
        netstack_tx_oversize(ns, t, sa, pkt, len);
        return;
    }
    if (ns->tx_n > 0 && ns->tx_tun != t)
        netstack_tx_flush(ns);
    slot = ns->tx_buf + ns->tx_n * NETSTACK_TX_SLOT;
    memcpy(slot, pkt, len);
    if (esp_output(ns->db, sa, slot, len, NETSTACK_TX_SLOT, &esp, &esp_len) != 0) {
        ns->st.tx_dropped++;
        return;
    }
    ns->tx_tun = t;
    ns->tx_pkts[ns->tx_n].data = esp;
    ns->tx_pkts[ns->tx_n].len = esp_len;
    ns->tx_n++;
    if (ns->tx_n == UDP_ENCAP_BATCH_MAX || !ns->batching)
        netstack_tx_flush(ns);
}

/* ---- input: UDP -> ESP -> own-source guard -> lwIP ---- */

void netstack_esp_input(void *nsv, uint8_t *pkt, size_t len, size_t headroom,
                        const struct sockaddr_in *from)
{
    struct netstack *ns = nsv;
    struct esp_sa *sa = esp_sadb_lookup_in(ns->db, (uint32_t)pkt[0] << 24 |
                                           (uint32_t)pkt[1] << 16 |
                                           (uint32_t)pkt[2] << 8 | pkt[3]);
    struct netstack_tunnel *t;
    uint32_t src = sa != NULL ? sa->src : from->sin_addr.s_addr;
    uint32_t dst = sa != NULL ? sa->dst : ns->local_addr;
    uint8_t *ip;
    size_t ip_len;
    int rc;

    /* The inbound SA's peer address becomes the inner source: only an
     * authentic packet can claim a tunnel's address. */
    rc = esp_input(ns->db, pkt, len, headroom, src, dst, &ip, &ip_len, &sa);
    if (rc < 0) {
        ns->st.rx_esp_errors++;
        /* a hint only when it comes from a tunnel's peer address */
        if (rc == ESP_E_UNKNOWN_SPI && (t = netstack_tunnel_find(ns, from->sin_addr.s_addr)) != NULL)
            netstack_event(ns, t, NETSTACK_EV_UNKNOWN_SPI);
        return;
    }
    if (src == ns->local_addr) {
        /* lwIP must never see its own address as a source (the Debian
         * build aborts on it); such a packet is spoofed anyway. */
        ns->st.rx_own_src++;
        return;
    }
    t = netstack_tunnel_find(ns, src);
    if (t == NULL) {
        ns->st.rx_no_tunnel++;
        return;
    }
    netstack_event(ns, t, NETSTACK_EV_AUTH_RX);
    if (rc == ESP_DUMMY || t->ns->closing)
        return;
    ns->st.rx_pkts++;
    netstack__enter(t);
    nsl_input(ip, ip_len);
    netstack__leave(ns);
}

static void netstack_on_ike(void *arg, const uint8_t *msg, size_t len,
                            const struct sockaddr_in *from)
{
    struct netstack *ns = arg;

    if (ns->on_ike != NULL)
        ns->on_ike(ns->ike_arg, msg, len, from);
}

/* ---- deferred work and timers ---- */

void netstack__enter(struct netstack_tunnel *t)
{
    /* lwIP derives the MSS it advertises and accepts from the netif MTU:
     * make it this peer's while lwIP works on this peer's packets. */
    nsl_netif_set_mtu((uint16_t)(t->mss + 40u));
}

void netstack__leave(struct netstack *ns)
{
    nsl_netif_set_mtu((uint16_t)(ns->min_mss + 40u));
}

static void netstack_on_lwip_timer(uv_timer_t *h);

static void netstack_timer_arm(struct netstack *ns)
{
    uint32_t ms = nsl_timers_sleeptime();

    if (ms == NSL_SLEEP_INFINITE) {
        uv_timer_stop(&ns->lwip_timer);
        return;
    }
    if (uv_is_active((uv_handle_t *)&ns->lwip_timer) &&
        uv_timer_get_due_in(&ns->lwip_timer) <= ms)
        return;
    uv_timer_start(&ns->lwip_timer, netstack_on_lwip_timer, ms, 0);
}

static void netstack_on_idle(uv_idle_t *h);

static void netstack_run_deferred(struct netstack *ns)
{
    if (ns->closing)
        return;
    stream__dispatch_pending(ns);
    netstack_tx_flush(ns);
    netstack_timer_arm(ns);
    if (ns->pending != NULL)
        uv_idle_start(&ns->idle, netstack_on_idle);
    else
        uv_idle_stop(&ns->idle);
}

static void netstack_on_idle(uv_idle_t *h)
{
    netstack_run_deferred(h->data);
}

static void netstack_on_check(uv_check_t *h)
{
    netstack_run_deferred(h->data);
}

static void netstack_on_prepare(uv_prepare_t *h)
{
    netstack_run_deferred(h->data);
}

static void netstack_on_lwip_timer(uv_timer_t *h)
{
    struct netstack *ns = h->data;

    nsl_timers_run();
    netstack_run_deferred(ns);
}

void netstack__kick(struct netstack *ns)
{
    if (!ns->closing)
        uv_idle_start(&ns->idle, netstack_on_idle);
}

/* ---- open and close ---- */

static int netstack_handles_init(struct netstack *ns)
{
    uv_timer_init(ns->loop, &ns->lwip_timer);
    uv_prepare_init(ns->loop, &ns->prepare);
    uv_check_init(ns->loop, &ns->check);
    uv_idle_init(ns->loop, &ns->idle);
    ns->lwip_timer.data = ns->prepare.data = ns->check.data = ns->idle.data = ns;
    uv_prepare_start(&ns->prepare, netstack_on_prepare);
    uv_check_start(&ns->check, netstack_on_check);
    /* Deferred work must not keep the loop alive on its own. */
    uv_unref((uv_handle_t *)&ns->prepare);
    uv_unref((uv_handle_t *)&ns->check);
    return 0;
}

static void netstack_free(struct netstack *ns)
{
    free(ns->tx_buf);
    free(ns);
}

static void netstack_on_failed_ue_closed(struct udp_encap *ue)
{
    netstack_free((struct netstack *)(void *)((char *)ue - offsetof(struct netstack, ue)));
}

int netstack_open(struct netstack **ns_r, uv_loop_t *loop, struct esp_sadb *db,
                  const struct netstack_config *cfg)
{
    struct netstack *ns;
    int rc;

    if (netstack_instance != NULL)
        return UV_EBUSY;
    ns = calloc(1, sizeof(*ns));
    if (ns == NULL || (ns->tx_buf = malloc(UDP_ENCAP_BATCH_MAX * NETSTACK_TX_SLOT)) == NULL) {
        free(ns);
        return UV_ENOMEM;
    }
    ns->loop = loop;
    ns->db = db;
    ns->local_addr = cfg->local_addr;
    ns->min_mss = netstack_mss_for_mtu(0);
    ns->pending_tail = &ns->pending;
    ns->batching = true;
    rc = udp_encap_open(&ns->ue, loop, &cfg->udp_bind, cfg->udp_flags,
                        netstack_esp_input, netstack_on_ike, ns);
    if (rc < 0) {
        /* A failed open may still be closing its handles inside ns. */
        if (ns->ue.open_handles > 0)
            ns->ue.on_close = netstack_on_failed_ue_closed;
        else
            netstack_free(ns);
        return rc;
    }
    if (nsl_netif_up(ns, cfg->local_addr) < 0) {
        udp_encap_close(&ns->ue, netstack_on_failed_ue_closed);
        return UV_EBUSY;
    }
    netstack_handles_init(ns);
    netstack__leave(ns);
    netstack_instance = ns;
    *ns_r = ns;
    return 0;
}

static void netstack_maybe_done(struct netstack *ns)
{
    struct netstack_tunnel *t;

    if (--ns->open_handles > 0)
        return;
    while ((t = ns->tunnels) != NULL) {
        ns->tunnels = t->next;
        free(t);
    }
    if (ns->close_cb != NULL)
        ns->close_cb(ns, ns->close_arg);
    netstack_free(ns);
}

static void netstack_on_handle_closed(uv_handle_t *h)
{
    netstack_maybe_done(h->data);
}

static void netstack_on_ue_closed(struct udp_encap *ue)
{
    netstack_maybe_done((struct netstack *)(void *)((char *)ue - offsetof(struct netstack, ue)));
}

void netstack_close(struct netstack *ns, netstack_close_fn *cb, void *arg)
{
    struct netstack_tunnel *t;

    if (ns->closing)
        return;
    for (t = ns->tunnels; t != NULL; t = t->next)
        stream__lose_tunnel(t, STREAM_LOCAL_CLOSE);
    stream__close_listeners(ns);
    /* Start the streams' closes now: their close callbacks then run
     * before ours, while tunnels are still there to unlink from. */
    stream__dispatch_pending(ns);
    netstack_tx_flush(ns);
    ns->closing = true;
    ns->close_cb = cb;
    ns->close_arg = arg;
    nsl_netif_down();
    netstack_instance = NULL;
    ns->open_handles = 5;
    udp_encap_close(&ns->ue, netstack_on_ue_closed);
    uv_close((uv_handle_t *)&ns->lwip_timer, netstack_on_handle_closed);
    uv_close((uv_handle_t *)&ns->prepare, netstack_on_handle_closed);
    uv_close((uv_handle_t *)&ns->check, netstack_on_handle_closed);
    uv_close((uv_handle_t *)&ns->idle, netstack_on_handle_closed);
}

struct udp_encap *netstack_udp(struct netstack *ns)
{
    return &ns->ue;
}

void netstack_set_ike_handler(struct netstack *ns, udp_encap_ike_fn *fn, void *arg)
{
    ns->on_ike = fn;
    ns->ike_arg = arg;
}

void netstack_set_event_cb(struct netstack *ns, netstack_event_fn *fn, void *arg)
{
    ns->on_event = fn;
    ns->event_arg = arg;
}

void netstack_get_stats(const struct netstack *ns, struct netstack_stats *st_r)
{
    *st_r = ns->st;
}

void netstack_set_batching(struct netstack *ns, bool on)
{
    netstack_tx_flush(ns);
    ns->batching = on;
}

/* ---- tunnels ---- */

static void netstack_min_mss_update(struct netstack *ns)
{
    struct netstack_tunnel *t;

    ns->min_mss = netstack_mss_for_mtu(0);
    for (t = ns->tunnels; t != NULL; t = t->next)
        if (t->mss < ns->min_mss)
            ns->min_mss = t->mss;
    netstack__leave(ns);
}

int netstack_tunnel_add(struct netstack *ns, const struct netstack_tunnel_config *cfg,
                        struct netstack_tunnel **t_r)
{
    struct netstack_tunnel *t;

    if (cfg->peer_addr == ns->local_addr || cfg->peer_addr == 0)
        return UV_EINVAL;
    if (netstack_tunnel_find(ns, cfg->peer_addr) != NULL)
        return UV_EEXIST;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return UV_ENOMEM;
    t->ns = ns;
    t->peer_addr = cfg->peer_addr;
    t->udp_peer = cfg->udp_peer;
    t->mss = netstack_mss_for_mtu(cfg->path_mtu);
    t->next = ns->tunnels;
    ns->tunnels = t;
    netstack_min_mss_update(ns);
    *t_r = t;
    return 0;
}

void netstack_tunnel_remove(struct netstack_tunnel **tp)
{
    struct netstack_tunnel *t = *tp, **pp;
    struct netstack *ns;

    if (t == NULL)
        return;
    ns = t->ns;
    *tp = NULL;
    stream__lose_tunnel(t, STREAM_TUNNEL_LOST);   /* unlinks them all */
    if (ns->tx_tun == t)
        netstack_tx_flush(ns);
    for (pp = &ns->tunnels; *pp != NULL; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    free(t);
    netstack_min_mss_update(ns);
}

size_t netstack_tunnel_lost(struct netstack_tunnel *t)
{
    size_t n = stream__lose_tunnel(t, STREAM_TUNNEL_LOST);

    netstack__kick(t->ns);
    return n;
}

uint16_t netstack_tunnel_mss(const struct netstack_tunnel *t)
{
    return t->mss;
}

uint32_t netstack_tunnel_peer(const struct netstack_tunnel *t)
{
    return t->peer_addr;
}
