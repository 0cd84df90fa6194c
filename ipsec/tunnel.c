/*
 * Tunnels: SA database + netstack (lwIP, the UDP socket) + IKE + liveness.
 * This file only wires events between them; the decisions live in
 * liveness.c (when to probe, declare dead, re-key) and ike_sa.c (how).
 */
#include "ipsec/tunnel.h"
#include "ipsec/ike_io.h"
#include "ipsec/ipsec_log.h"
#include "ipsec/keylog.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#define TUNNEL_MAX 16

struct tunnel {
    struct tunnel_mgr *m;
    int index;                      /* IKE peer config index */
    char name[64];
    bool initiator;
    uint32_t peer;                  /* VIP (initiator) */
    uint16_t peer_port;
    unsigned mtu;
    struct liveness live;
    uv_timer_t timer;
    struct netstack_tunnel *nt;
    struct ike_sa *cur, *spec;
    tunnel_event_fn *cb;
    void *arg;
};

struct tunnel_mgr {
    uv_loop_t *loop;
    struct tunnel_mgr_config cfg;
    struct esp_sadb db;
    struct keylog kl;
    bool have_kl;
    struct netstack *ns;
    struct ike_io io;
    struct tunnel *t[TUNNEL_MAX];
    int n;
    uv_timer_t shutdown_timer;
    uint64_t shutdown_deadline;
    void (*done)(void *arg);
    void *done_arg;
    bool shutting_down;
};

static uint64_t tunnel_now(void *arg)
{
    struct timespec ts;

    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct tunnel *tunnel_of_sa(struct tunnel_mgr *m, const struct ike_sa *sa)
{
    int idx = ike_sa_peer_index(sa);

    for (int i = 0; i < m->n; i++)
        if (m->t[i]->index == idx)
            return m->t[i];
    return NULL;
}

static void tunnel_on_timer(uv_timer_t *h);

static void tunnel_timer_closed(uv_handle_t *h)
{
    free(h->data);      /* the tunnel owns its timer */
}

/* Re-arm the liveness timer after anything that may have moved it. */
static void tunnel_kick(struct tunnel *t)
{
    uint64_t d, now;

    if (!t->initiator || t->m->shutting_down)
        return;
    d = liveness_next_deadline(&t->live);
    if (d == UINT64_MAX) {
        uv_timer_stop(&t->timer);
        return;
    }
    now = tunnel_now(NULL);
    uv_timer_start(&t->timer, tunnel_on_timer, d > now ? d - now : 0, 0);
}

static void tunnel_on_timer(uv_timer_t *h)
{
    struct tunnel *t = h->data;

    liveness_tick(&t->live);
    tunnel_kick(t);
    ike_io_kick(&t->m->io);
}

/* ---- liveness actions ---- */

static void tunnel_start_ike(void *arg, bool speculative)
{
    struct tunnel *t = arg;
    struct ike_sa *sa = NULL;

    /* a speculative SA carries no INITIAL_CONTACT: the current SA's
     * node may be alive, and it would delete the SA our sessions use */
    if (ike_ctx_initiate(t->m->io.ctx, t->index, !speculative, &sa) != 0) {
        ipsec_log(IPSEC_LOG_ERROR, "event=tunnel_initiate_failed tunnel=%s", t->name);
        liveness_ike_failed(&t->live, speculative);
        return;
    }
    if (speculative) {
        ike_sa_hold_outbound(sa);
        t->spec = sa;
    } else {
        t->cur = sa;
    }
    ike_io_kick(&t->m->io);
}

static void tunnel_promote_spec(void *arg)
{
    struct tunnel *t = arg;

    t->cur = t->spec;
    t->spec = NULL;
    if (t->cur != NULL)
        ike_sa_release_outbound(t->cur);
    ipsec_log(IPSEC_LOG_INFO, "event=tunnel_speculative_sa tunnel=%s action=promote", t->name);
}

static void tunnel_drop_spec(void *arg)
{
    struct tunnel *t = arg;
    struct ike_sa *sa = t->spec;

    t->spec = NULL;
    ipsec_log(IPSEC_LOG_INFO, "event=tunnel_speculative_sa tunnel=%s action=drop reason=peer_alive", t->name);
    if (sa != NULL)
        (void)ike_sa_delete(sa);
}

static void tunnel_probe(void *arg, const unsigned *gaps, int n)
{
    struct tunnel *t = arg;

    if (t->cur != NULL && ike_sa_probe(t->cur, gaps, n) == 0)
        ike_io_kick(&t->m->io);
}

static void tunnel_abandon(void *arg)
{
    struct tunnel *t = arg;
    struct ike_sa *sa = t->cur;
    size_t lost = 0;

    t->cur = NULL;
    if (sa != NULL)
        ike_sa_abandon(sa);
    if (t->nt != NULL)
        lost = netstack_tunnel_lost(t->nt);
    ipsec_log(IPSEC_LOG_WARN, "event=tunnel_sa_abandoned tunnel=%s streams_lost=%zu", t->name, lost);
}

static void tunnel_state_changed(void *arg, enum liveness_state from, enum liveness_state to,
                                 enum liveness_reason why)
{
    struct tunnel *t = arg;

    ipsec_log(IPSEC_LOG_INFO, "event=tunnel_state tunnel=%s from=%s to=%s reason=%s", t->name,
              liveness_state_name(from), liveness_state_name(to), liveness_reason_name(why));
    if (t->cb == NULL)
        return;
    if (to == LIVE_UP)
        t->cb(t->arg, t, TUNNEL_EV_UP);
    else if (to == LIVE_SUSPECT)
        t->cb(t->arg, t, TUNNEL_EV_SUSPECT);
    else if (from == LIVE_UP || from == LIVE_SUSPECT)
        t->cb(t->arg, t, TUNNEL_EV_DOWN);
}

/* ---- IKE events ---- */

static void tunnel_initiator_event(struct tunnel *t, struct ike_sa *sa, enum ike_event ev)
{
    bool spec = sa == t->spec && sa != NULL;

    if (ev == IKE_EV_IKE_REKEYED) {
        /* the new IKE SA takes the place of the one it replaces, if that
         * one is ours (the current or the speculative SA) */
        struct ike_sa *old = ike_sa_rekeyed_from(sa);

        if (old == NULL || (old != t->cur && old != t->spec))
            return;
        if (old == t->spec)
            t->spec = sa;
        else
            t->cur = sa;
        if (t->cb)
            t->cb(t->arg, t, TUNNEL_EV_REKEYED);
        tunnel_kick(t);
        return;
    }
    if (sa != t->cur && sa != t->spec)
        return;     /* an SA we already let go of */
    switch (ev) {
    case IKE_EV_ESTABLISHED:
        liveness_ike_established(&t->live, spec);   /* a speculative SA may be promoted or dropped */
        break;
    case IKE_EV_AUTH_FAILED:
    case IKE_EV_FAILED:
        if (spec)
            t->spec = NULL;
        else
            t->cur = NULL;
        liveness_ike_failed(&t->live, spec);
        break;
    case IKE_EV_PROBE_OK:
        liveness_probe_ok(&t->live);
        break;
    case IKE_EV_PROBE_TIMEOUT:
        liveness_probe_timeout(&t->live);
        break;
    case IKE_EV_DELETE_RECEIVED:
        if (!spec) {
            t->cur = NULL;      /* ike_sa destroys it right after this event */
            liveness_delete_received(&t->live);
        }
        break;
    case IKE_EV_INVALID_SPI:
        liveness_hint(&t->live, LIVE_HINT_INVALID_IKE_SPI);
        break;
    case IKE_EV_IKE_REKEYED:
        break;      /* handled above */
    case IKE_EV_CHILD_REKEYED:
        if (t->cb)
            t->cb(t->arg, t, TUNNEL_EV_REKEYED);
        break;
    case IKE_EV_PEER_ALIVE:
        if (!spec)
            liveness_authentic_rx(&t->live, true);
        break;
    case IKE_EV_SA_GONE:
        if (spec) {
            t->spec = NULL;
            liveness_ike_failed(&t->live, true);
        } else if (sa == t->cur) {
            t->cur = NULL;      /* lost without an event we acted on: treat as dead */
            liveness_probe_timeout(&t->live);
        }
        break;
    }
    tunnel_kick(t);
}

/* The netstack's view of a peer: inner address, where its ESP goes, MTU. */
static int tunnel_netstack_add(struct tunnel_mgr *m, uint32_t peer, uint16_t port, unsigned mtu,
                               struct netstack_tunnel **nt_r)
{
    struct netstack_tunnel_config tc;

    memset(&tc, 0, sizeof(tc));
    tc.peer_addr = peer;
    tc.udp_peer.sin_family = AF_INET;
    tc.udp_peer.sin_addr.s_addr = peer;
    tc.udp_peer.sin_port = htons(port);
    tc.path_mtu = mtu;
    return netstack_tunnel_add(m->ns, &tc, nt_r);
}

/* Responder: a netstack tunnel per front-end address while it has an SA. */
static void tunnel_responder_event(struct tunnel *t, struct ike_sa *sa, enum ike_event ev)
{
    struct tunnel_mgr *m = t->m;
    uint32_t peer = ike_sa_peer_addr(sa);
    struct netstack_tunnel *nt = netstack_tunnel_find(m->ns, peer);

    if (ev == IKE_EV_ESTABLISHED && nt == NULL) {
        if (tunnel_netstack_add(m, peer, ike_sa_peer_port(sa), t->mtu, &nt) != 0)
            ipsec_log(IPSEC_LOG_ERROR, "event=tunnel_add_failed tunnel=%s", t->name);
    } else if (ev == IKE_EV_SA_GONE && nt != NULL && !m->shutting_down &&
               ike_ctx_find_by_peer(m->io.ctx, peer) == NULL) {
        /* the front-end's last SA went (a rekeyed one keeps the tunnel) */
        netstack_tunnel_lost(nt);
        netstack_tunnel_remove(&nt);
    }
    if (t->cb != NULL && ev == IKE_EV_ESTABLISHED)
        t->cb(t->arg, t, TUNNEL_EV_UP);
}

static void tunnel_on_ike_event(void *arg, struct ike_sa *sa, enum ike_event ev)
{
    struct tunnel_mgr *m = arg;
    struct tunnel *t = tunnel_of_sa(m, sa);

    if (t == NULL)
        return;
    if (t->initiator)
        tunnel_initiator_event(t, sa, ev);
    else
        tunnel_responder_event(t, sa, ev);
}

/* ---- data-path events ---- */

static struct tunnel *tunnel_of_nt(struct tunnel_mgr *m, const struct netstack_tunnel *nt)
{
    for (int i = 0; i < m->n; i++)
        if (m->t[i]->nt == nt && nt != NULL)
            return m->t[i];
    return NULL;
}

static void tunnel_on_netstack_event(void *arg, struct netstack_tunnel *nt, enum netstack_event ev)
{
    struct tunnel_mgr *m = arg;
    struct tunnel *t = tunnel_of_nt(m, nt);

    if (t == NULL || !t->initiator)
        return;
    switch (ev) {
    case NETSTACK_EV_UNKNOWN_SPI:       /* from the VIP's address (netstack checked) */
        liveness_hint(&t->live, LIVE_HINT_UNKNOWN_SPI);
        break;
    case NETSTACK_EV_DATA_SENT:
        liveness_data_sent(&t->live);
        break;
    case NETSTACK_EV_AUTH_RX:
        liveness_authentic_rx(&t->live, false);
        break;
    case NETSTACK_EV_NO_SA:
        liveness_hint(&t->live, LIVE_HINT_SYN_UNANSWERED);  /* traffic waits for an SA */
        break;
    default:
        break;
    }
    tunnel_kick(t);
}

/* An ESP SA reached a lifetime limit (the SADB raises it on the packet
 * path, in both roles): half its sequence space used (a non-ESN SA must
 * not wrap, RFC 4303 3.3.3, so it stops at 2^32 packets) or a soft or hard
 * byte, packet or time limit. Its IKE SA rekeys the CHILD SA at its next
 * tick; the new SA takes over the traffic before the old one runs out. */
static void tunnel_on_esp_sa_event(void *arg, struct esp_sa *sa, enum esp_sa_event ev, unsigned limits)
{
    struct tunnel_mgr *m = arg;
    bool out = sa->dir == ESP_SA_OUT;

    if (m->shutting_down || m->io.ctx == NULL)
        return;
    if (ike_ctx_child_expiring(m->io.ctx, out ? sa->dst : sa->src, sa->spi, out) == 0)
        ike_io_kick(&m->io);    /* a timer: nothing is sent from inside the packet path */
    else if (ev == ESP_SA_EV_HARD)
        ipsec_log(IPSEC_LOG_WARN, "event=esp_sa_hard_limit spi=0x%08x dir=%s limits=%u rekey=none",
                  sa->spi, out ? "out" : "in", limits);
}

/* ICMP unreachable for our UDP toward a VIP: a hint, never proof. */
static void tunnel_on_icmp(void *arg, const struct sockaddr_in *dst)
{
    struct tunnel_mgr *m = arg;

    for (int i = 0; i < m->n; i++) {
        struct tunnel *t = m->t[i];
        int sooner = 0;

        if (!t->initiator || t->peer != dst->sin_addr.s_addr)
            continue;
        /* an IKE SA being opened toward a VIP nobody serves right now
         * (graceful move): try again soon rather than after the backoff */
        if (t->cur != NULL && ike_sa_request_refused(t->cur) == 0)
            sooner++;
        if (t->spec != NULL && ike_sa_request_refused(t->spec) == 0)
            sooner++;
        if (sooner > 0) {
            ipsec_log(IPSEC_LOG_INFO, "event=ike_request_refused tunnel=%s retransmit=sooner", t->name);
            ike_io_kick(&m->io);
        }
        liveness_hint(&t->live, LIVE_HINT_ICMP_UNREACH);
        tunnel_kick(t);
    }
}

static void tunnel_on_ike_datagram(void *arg, const uint8_t *msg, size_t len, const struct sockaddr_in *from)
{
    struct tunnel_mgr *m = arg;

    ike_io_input(&m->io, msg, len, from, m->cfg.local_addr);
}

/* ---- manager ---- */

static void tunnel_mgr_closed(struct netstack *ns, void *arg);

int tunnel_mgr_open(struct tunnel_mgr **m_r, uv_loop_t *loop, const struct tunnel_mgr_config *cfg)
{
    struct tunnel_mgr *m = calloc(1, sizeof(*m));
    struct netstack_config nc;
    int rc;

    *m_r = NULL;
    if (m == NULL)
        return UV_ENOMEM;
    m->loop = loop;
    m->cfg = *cfg;
    if (esp_sadb_init(&m->db, 256) != 0) {
        free(m);
        return UV_ENOMEM;
    }
    if (cfg->keylog != NULL && cfg->keylog[0] != '\0') {
        if (keylog_open(&m->kl, cfg->keylog) != 0) {
            ipsec_log(IPSEC_LOG_ERROR, "event=keylog_open_failed path=\"%s\" error=\"%s\"", cfg->keylog,
                      strerror(errno));
            esp_sadb_free(&m->db);
            free(m);
            return UV_EACCES;
        }
        m->have_kl = true;
        esp_sadb_set_keylog(&m->db, &m->kl);
    }
    memset(&nc, 0, sizeof(nc));
    nc.local_addr = cfg->local_addr;
    nc.udp_bind.sin_family = AF_INET;
    nc.udp_bind.sin_addr.s_addr = cfg->local_addr;
    nc.udp_bind.sin_port = htons(cfg->udp_port);
    nc.udp_flags = UDP_ENCAP_ZERO_CSUM | (cfg->freebind ? UDP_ENCAP_FREEBIND : 0);
    rc = netstack_open(&m->ns, loop, &m->db, &nc);
    if (rc != 0) {
        char ip[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &nc.udp_bind.sin_addr, ip, sizeof(ip));
        ipsec_log(IPSEC_LOG_ERROR, "event=tunnel_mgr_open_failed what=udp_socket address=%s:%u error=\"%s\"",
                  ip, cfg->udp_port, uv_strerror(rc));
        tunnel_mgr_closed(NULL, m);     /* netstack_open cleaned up after itself */
        return rc;
    }
    if (ike_io_init(&m->io, loop, netstack_udp(m->ns), &m->db, m->have_kl ? &m->kl : NULL,
                    tunnel_on_ike_event, m) != 0) {
        ipsec_log(IPSEC_LOG_ERROR, "event=tunnel_mgr_open_failed what=ike error=\"%s\"", uv_strerror(UV_ENOMEM));
        netstack_close(m->ns, tunnel_mgr_closed, m);
        return UV_ENOMEM;
    }
    if (cfg->listen_500) {
        struct sockaddr_in a = nc.udp_bind;

        a.sin_port = htons(500);
        if (ike_io_listen_500(&m->io, &a) != 0)
            ipsec_log(IPSEC_LOG_WARN, "event=ike_port_500_unavailable");
    }
    netstack_set_ike_handler(m->ns, tunnel_on_ike_datagram, m);
    udp_encap_set_icmp_cb(netstack_udp(m->ns), tunnel_on_icmp, m);
    netstack_set_event_cb(m->ns, tunnel_on_netstack_event, m);
    esp_sadb_set_event_cb(&m->db, tunnel_on_esp_sa_event, m);
    uv_timer_init(loop, &m->shutdown_timer);
    m->shutdown_timer.data = m;
    *m_r = m;
    return 0;
}

int tunnel_add(struct tunnel_mgr *m, const struct ike_peer_config *pc, const struct liveness_config *lc,
               tunnel_event_fn *cb, void *arg, struct tunnel **t_r)
{
    struct tunnel *t;
    struct liveness_callbacks lcb;

    if (m->n >= TUNNEL_MAX || (t = calloc(1, sizeof(*t))) == NULL)
        return UV_ENOMEM;
    t->m = m;
    t->index = ike_ctx_add_peer(m->io.ctx, pc);
    if (t->index < 0) {
        free(t);
        return UV_ENOMEM;
    }
    snprintf(t->name, sizeof(t->name), "%s", pc->name);
    t->initiator = pc->peer_addr != 0;
    t->peer = pc->peer_addr;
    t->peer_port = pc->port;
    t->mtu = NETSTACK_DEFAULT_PATH_MTU;
    t->cb = cb;
    t->arg = arg;
    uv_timer_init(m->loop, &t->timer);
    t->timer.data = t;
    lcb = (struct liveness_callbacks){ .arg = t, .now_ms = tunnel_now, .start_ike = tunnel_start_ike,
                                       .probe = tunnel_probe, .abandon = tunnel_abandon,
                                       .promote_spec = tunnel_promote_spec, .drop_spec = tunnel_drop_spec,
                                       .state_changed = tunnel_state_changed };
    liveness_init(&t->live, lc, &lcb);
    if (t->initiator) {
        if (tunnel_netstack_add(m, t->peer, t->peer_port, t->mtu, &t->nt) != 0) {
            uv_close((uv_handle_t *)&t->timer, tunnel_timer_closed);
            return UV_ENOMEM;
        }
    }
    m->t[m->n++] = t;
    if (t_r != NULL)
        *t_r = t;
    return 0;
}

void tunnel_mgr_start(struct tunnel_mgr *m)
{
    for (int i = 0; i < m->n; i++) {
        if (m->t[i]->initiator) {
            liveness_start(&m->t[i]->live);
            tunnel_kick(m->t[i]);
        }
    }
    ike_io_kick(&m->io);
}

static void tunnel_mgr_closed(struct netstack *ns, void *arg)
{
    struct tunnel_mgr *m = arg;
    void (*done)(void *) = m->done;
    void *done_arg = m->done_arg;

    (void)ns;
    esp_sadb_free(&m->db);
    if (m->have_kl)
        keylog_close(&m->kl);
    for (int i = 0; i < m->n; i++)
        m->t[i] = NULL;     /* freed by their timers' close callbacks */
    free(m);
    if (done != NULL)
        done(done_arg);
}

static void tunnel_mgr_finish(struct tunnel_mgr *m)
{
    uv_timer_stop(&m->shutdown_timer);
    uv_close((uv_handle_t *)&m->shutdown_timer, NULL);
    for (int i = 0; i < m->n; i++) {
        liveness_stop(&m->t[i]->live);
        uv_timer_stop(&m->t[i]->timer);
        uv_close((uv_handle_t *)&m->t[i]->timer, tunnel_timer_closed);
    }
    ike_io_close(&m->io);
    netstack_close(m->ns, tunnel_mgr_closed, m);
}

static void tunnel_mgr_shutdown_poll(uv_timer_t *h)
{
    struct tunnel_mgr *m = h->data;

    if (ike_ctx_count_sas(m->io.ctx) == 0 || tunnel_now(NULL) >= m->shutdown_deadline)
        tunnel_mgr_finish(m);
}

void tunnel_mgr_shutdown(struct tunnel_mgr *m, unsigned wait_ms, void (*done)(void *arg), void *arg)
{
    int n;

    if (m->shutting_down)
        return;
    m->shutting_down = true;
    m->done = done;
    m->done_arg = arg;
    for (int i = 0; i < m->n; i++)
        liveness_stop(&m->t[i]->live);
    ike_ctx_set_accepting(m->io.ctx, false);
    n = ike_ctx_delete_all(m->io.ctx);
    ike_io_kick(&m->io);
    ipsec_log(IPSEC_LOG_INFO, "event=tunnel_shutdown deletes_sent=%d", n);
    if (n == 0) {
        tunnel_mgr_finish(m);
        return;
    }
    m->shutdown_deadline = tunnel_now(NULL) + wait_ms;
    uv_timer_start(&m->shutdown_timer, tunnel_mgr_shutdown_poll, 5, 5);
}

struct netstack *tunnel_mgr_netstack(struct tunnel_mgr *m) { return m->ns; }
struct esp_sadb *tunnel_mgr_sadb(struct tunnel_mgr *m) { return &m->db; }
void tunnel_awaiting(struct tunnel *t, int delta)
{
    liveness_awaiting(&t->live, delta);
    tunnel_kick(t);
}

const struct ike_stats *tunnel_mgr_ike_stats(const struct tunnel_mgr *m)
{
    return ike_ctx_stats(m->io.ctx);
}

int tunnel_mgr_count(const struct tunnel_mgr *m) { return m->n; }
struct tunnel *tunnel_mgr_get(struct tunnel_mgr *m, int i) { return i >= 0 && i < m->n ? m->t[i] : NULL; }
uint32_t tunnel_peer(const struct tunnel *t) { return t->peer; }
enum liveness_state tunnel_state(const struct tunnel *t) { return t->live.state; }
const char *tunnel_name(const struct tunnel *t) { return t->name; }

void tunnel_get_info(const struct tunnel *t, struct tunnel_info *info)
{
    const struct ike_sa *sa = t->cur;

    memset(info, 0, sizeof(*info));
    info->name = t->name;
    info->initiator = t->initiator;
    info->state = t->initiator ? t->live.state : LIVE_UP;
    info->peer_addr = t->peer;
    info->n_sas = ike_ctx_count_established(t->m->io.ctx, t->index);
    info->live = t->initiator ? &t->live : NULL;
    if (sa != NULL && ike_sa_state(sa) == IKE_S_ESTABLISHED) {
        const struct ike_identity *id = ike_sa_peer_identity(sa);
        struct esp_sa *in, *out;

        info->have_sa = true;
        info->spi_i = ike_sa_spi_i(sa);
        info->spi_r = ike_sa_spi_r(sa);
        ike_sa_child_spis(sa, &info->child_in, &info->child_out);
        if (id->type == IKE_ID_IPV4_ADDR && id->len == 4)
            inet_ntop(AF_INET, id->data, info->peer_id, sizeof(info->peer_id));
        else
            snprintf(info->peer_id, sizeof(info->peer_id), "%.*s", (int)id->len, (const char *)id->data);
        info->sa_age_ms = tunnel_now(NULL) - ike_sa_created_ms(sa);
        in = esp_sadb_lookup_in(&t->m->db, info->child_in);
        out = esp_sadb_lookup_out(&t->m->db, t->peer);
        if (in != NULL)
            info->esp_in = in->ctr;
        if (out != NULL)
            info->esp_out = out->ctr;
    }
}
