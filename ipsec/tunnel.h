/*
 * Tunnels: the composition the proxy uses. One tunnel manager per process
 * owns the SA database, the netstack (lwIP + the ESP-in-UDP socket) and
 * IKE (ike_io). Each configured tunnel is one back-end VIP (frontend role,
 * IKE initiator, with liveness/failover) or one set of front-ends (backend
 * role, IKE responder).
 *
 * Events to the proxy (tunnel_event_fn): UP, SUSPECT, DOWN, REKEYED, with
 * the liveness history kept for `esproxy status`. Streams go through
 * stream_open(tunnel_mgr_netstack(m), tunnel_peer(t), port, ...) and
 * stream_listen on the same netstack.
 */
#ifndef ESPROXY_IPSEC_TUNNEL_H
#define ESPROXY_IPSEC_TUNNEL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ipsec/ike_sa.h"
#include "ipsec/liveness.h"
#include "ipsec/netstack.h"
#include "ipsec/sadb.h"

struct tunnel_mgr;
struct tunnel;

enum tunnel_event { TUNNEL_EV_UP, TUNNEL_EV_SUSPECT, TUNNEL_EV_DOWN, TUNNEL_EV_REKEYED };

typedef void tunnel_event_fn(void *arg, struct tunnel *t, enum tunnel_event ev);

struct tunnel_mgr_config {
    uint32_t local_addr;        /* our address (network order): inner and outer */
    uint16_t udp_port;          /* ESP-in-UDP and IKE, 4500 */
    bool listen_500;            /* responder: also IKE on UDP 500 */
    bool freebind;              /* bind local_addr even before it is ours (a VIP) */
    const char *keylog;         /* NULL or a path */
};

struct tunnel_info {
    const char *name;
    bool initiator;
    enum liveness_state state;
    uint32_t peer_addr;
    int n_sas;                  /* established IKE SAs */
    /* the current IKE SA, when there is one */
    bool have_sa;
    uint64_t spi_i, spi_r;
    uint32_t child_in, child_out;
    char peer_id[IKE_ID_MAX + 1];
    uint64_t sa_age_ms;
    struct esp_counters esp_in, esp_out;
    const struct liveness *live;    /* history; NULL for responder tunnels */
};

int tunnel_mgr_open(struct tunnel_mgr **m_r, uv_loop_t *loop, const struct tunnel_mgr_config *cfg);
/* Adds a tunnel. With pc->peer_addr set, we initiate and watch liveness
 * (lc used); with 0 we respond to any front-end that authenticates. */
int tunnel_add(struct tunnel_mgr *m, const struct ike_peer_config *pc, const struct liveness_config *lc,
               tunnel_event_fn *cb, void *arg, struct tunnel **t_r);
/* Start initiating tunnels. */
void tunnel_mgr_start(struct tunnel_mgr *m);
/* Graceful stop: DELETE every IKE SA (backend: front-ends re-key at once),
 * wait for the answers (at most wait_ms), close everything, then done(arg). */
void tunnel_mgr_shutdown(struct tunnel_mgr *m, unsigned wait_ms, void (*done)(void *arg), void *arg);

struct netstack *tunnel_mgr_netstack(struct tunnel_mgr *m);
struct esp_sadb *tunnel_mgr_sadb(struct tunnel_mgr *m);
int tunnel_mgr_count(const struct tunnel_mgr *m);
struct tunnel *tunnel_mgr_get(struct tunnel_mgr *m, int i);

uint32_t tunnel_peer(const struct tunnel *t);
enum liveness_state tunnel_state(const struct tunnel *t);
const char *tunnel_name(const struct tunnel *t);
void tunnel_get_info(const struct tunnel *t, struct tunnel_info *info);
/* A session through t sent a request and waits for the answer (+1), or got
 * it or stopped waiting (-1): see liveness_awaiting. */
void tunnel_awaiting(struct tunnel *t, int delta);
/* IKE message counters of the whole process (every tunnel). */
const struct ike_stats *tunnel_mgr_ike_stats(const struct tunnel_mgr *m);

#endif
