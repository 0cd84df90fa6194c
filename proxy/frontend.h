/*
 * The frontend role: client listeners, routing users to tunnels, holding
 * new sessions while a tunnel re-keys, connection limits, counters.
 * Sessions themselves are proxy/session.c.
 */
#ifndef ESPROXY_PROXY_FRONTEND_H
#define ESPROXY_PROXY_FRONTEND_H

#include <uv.h>

#include "config/config.h"
#include "ipsec/tunnel.h"
#include "protocols/http.h"
#include "protocols/proto.h"
#include "proxy/tls.h"

struct frontend;
struct session;

struct fe_listener {
    struct frontend *fe;
    const struct cfg_listener *cfg;
    uv_tcp_t server;
    struct tls_server *tls;         /* starttls or implicit */
    int tunnel;                     /* default tunnel index */
    struct proto_limits limits;
    struct http_limits http;
    bool plaintext_ok;              /* plaintext login before TLS */
};

int frontend_start(struct frontend **fe_r, uv_loop_t *loop, const struct config *cfg, struct tunnel_mgr *tm);
/* Stop accepting; held sessions fail; running sessions are left to finish
 * or are aborted with the tunnels. */
void frontend_stop(struct frontend *fe);
void frontend_free(struct frontend **fe);

/* For sessions. */
uv_loop_t *frontend_loop(const struct frontend *fe);
const struct config *frontend_config(const struct frontend *fe);
struct netstack *frontend_netstack(const struct frontend *fe);
/* The tunnel for user (routing map, then default, then the listener's). */
int frontend_route(const struct frontend *fe, const struct fe_listener *l, const char *user);
struct tunnel *frontend_tunnel(const struct frontend *fe, int idx);
/* Hold s until tunnel idx is up; -1 when the hold queue is full. */
int frontend_hold(struct frontend *fe, int idx, struct session *s);
void frontend_unhold(struct frontend *fe, struct session *s);
/* Connection accounting: 0, or -1 when a limit refuses the client. */
int frontend_client_add(struct frontend *fe, uint32_t addr);
void frontend_client_remove(struct frontend *fe, uint32_t addr);
/* Counters for status. */
unsigned frontend_held_count(const struct frontend *fe);
/* A session sent the back-end a request and waits for its answer (+1), or
 * not any more (-1): the tunnel probes sooner while any session waits.
 * Ignored once the frontend is stopping (the tunnels are going away). */
void frontend_awaiting(struct frontend *fe, int idx, int delta);

#endif
