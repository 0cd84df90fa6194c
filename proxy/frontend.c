/* The frontend role; see frontend.h. */
#include "proxy/frontend.h"
#include "proxy/ike_config.h"
#include "proxy/log.h"
#include "proxy/session.h"
#include "ipsec/ike_cert.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLIENT_BUCKETS 4096

struct client_count {
    uint32_t addr;
    unsigned n;
    struct client_count *next;
};

struct hold {
    struct session *s;
    struct hold *next;
};

struct frontend {
    uv_loop_t *loop;
    const struct config *cfg;
    struct tunnel_mgr *tm;
    struct fe_listener listeners[CFG_MAX_LISTENERS];
    int n_listeners;
    struct ike_cert_auth *certs[CFG_MAX_TUNNELS];
    struct hold *held[CFG_MAX_TUNNELS], **held_tail[CFG_MAX_TUNNELS];
    unsigned n_held;
    unsigned n_clients;
    struct client_count *clients[CLIENT_BUCKETS];
    bool stopping;
};

uv_loop_t *frontend_loop(const struct frontend *fe) { return fe->loop; }
const struct config *frontend_config(const struct frontend *fe) { return fe->cfg; }
struct netstack *frontend_netstack(const struct frontend *fe) { return tunnel_mgr_netstack(fe->tm); }
struct tunnel *frontend_tunnel(const struct frontend *fe, int idx) { return tunnel_mgr_get(fe->tm, idx); }
unsigned frontend_held_count(const struct frontend *fe) { return fe->n_held; }

void frontend_awaiting(struct frontend *fe, int idx, int delta)
{
    struct tunnel *t = fe->stopping ? NULL : tunnel_mgr_get(fe->tm, idx);

    if (t != NULL)
        tunnel_awaiting(t, delta);
}

/* ---- routing ---- */

static int frontend_tunnel_index(const struct config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_tunnels; i++)
        if (strcmp(cfg->tunnels[i].name, name) == 0)
            return i;
    return 0;
}

int frontend_route(const struct frontend *fe, const struct fe_listener *l, const char *user)
{
    const struct config *cfg = fe->cfg;
    const char *at = strrchr(user, '@');

    for (int i = 0; i < cfg->n_routes; i++)
        if (strcasecmp(cfg->routes[i].key, user) == 0)
            return cfg->routes[i].tunnel;
    if (at != NULL)
        for (int i = 0; i < cfg->n_routes; i++)
            if (strcasecmp(cfg->routes[i].key, at) == 0)
                return cfg->routes[i].tunnel;
    if (cfg->routing_default[0] != '\0')
        return frontend_tunnel_index(cfg, cfg->routing_default);
    return l->tunnel;
}

/* ---- holding sessions while a tunnel re-keys ---- */

int frontend_hold(struct frontend *fe, int idx, struct session *s)
{
    struct hold *h;

    if (fe->stopping || fe->n_held >= fe->cfg->hold_max || fe->cfg->hold_ms == 0 || (h = malloc(sizeof(*h))) == NULL)
        return -1;
    h->s = s;
    h->next = NULL;
    *fe->held_tail[idx] = h;
    fe->held_tail[idx] = &h->next;
    fe->n_held++;
    return 0;
}

void frontend_unhold(struct frontend *fe, struct session *s)
{
    for (int t = 0; t < fe->cfg->n_tunnels; t++) {
        for (struct hold **pp = &fe->held[t]; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->s == s) {
                struct hold *h = *pp;

                *pp = h->next;
                if (fe->held_tail[t] == &h->next)
                    fe->held_tail[t] = pp;
                free(h);
                fe->n_held--;
                return;
            }
        }
    }
}

/* Release in arrival order: the first held client connects first. */
static void frontend_release(struct frontend *fe, int idx)
{
    struct hold *h = fe->held[idx];
    unsigned n = 0;

    fe->held[idx] = NULL;
    fe->held_tail[idx] = &fe->held[idx];
    while (h != NULL) {
        struct hold *next = h->next;

        fe->n_held--;
        session_release_held(h->s);
        free(h);
        h = next;
        n++;
    }
    if (n > 0)
        log_event(LOG_INFO, "held_sessions_released", "tunnel=%s count=%u", fe->cfg->tunnels[idx].name, n);
}

static void frontend_tunnel_event(void *arg, struct tunnel *t, enum tunnel_event ev)
{
    static const char *const names[] = { "up", "suspect", "down", "rekeyed" };
    struct frontend *fe = arg;

    log_event(ev == TUNNEL_EV_DOWN ? LOG_WARN : LOG_INFO, "tunnel", "name=%s event=%s held=%u", tunnel_name(t),
              names[ev], fe->n_held);
    if (ev != TUNNEL_EV_UP)
        return;
    for (int i = 0; i < fe->cfg->n_tunnels; i++)
        if (tunnel_mgr_get(fe->tm, i) == t)
            frontend_release(fe, i);
}

/* ---- connection limits ---- */

int frontend_client_add(struct frontend *fe, uint32_t addr)
{
    struct client_count **b = &fe->clients[(addr ^ (addr >> 12)) % CLIENT_BUCKETS], *c;

    if (fe->n_clients >= fe->cfg->max_connections)
        return -1;
    for (c = *b; c != NULL && c->addr != addr; c = c->next)
        ;
    if (c == NULL) {
        if ((c = calloc(1, sizeof(*c))) == NULL)
            return -1;
        c->addr = addr;
        c->next = *b;
        *b = c;
    }
    if (c->n >= fe->cfg->max_per_client)
        return -1;
    c->n++;
    fe->n_clients++;
    return 0;
}

void frontend_client_remove(struct frontend *fe, uint32_t addr)
{
    struct client_count **pp = &fe->clients[(addr ^ (addr >> 12)) % CLIENT_BUCKETS];

    for (; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->addr == addr) {
            struct client_count *c = *pp;

            fe->n_clients--;
            if (--c->n == 0) {
                *pp = c->next;
                free(c);
            }
            return;
        }
    }
}

/* ---- listeners ---- */

static void frontend_on_client(uv_stream_t *server, int status)
{
    struct fe_listener *l = server->data;
    int rc;

    if (status < 0 || l->fe->stopping)
        return;
    rc = session_accept(l->fe, l, server);
    if (rc != 0)
        log_event(LOG_WARN, "accept_failed", "listener=%s error=%s", l->cfg->name, uv_strerror(rc));
}

static void frontend_limits(struct fe_listener *l)
{
    const struct cfg_listener *c = l->cfg;

    l->plaintext_ok = c->plaintext_auth == CFG_PLAINTEXT_YES ||
                      (c->plaintext_auth == CFG_PLAINTEXT_AUTO && c->tls == CFG_TLS_NONE);
    l->limits = (struct proto_limits){
        .max_line = c->max_line,
        .max_literal = c->max_literal,
        .max_auth_failures = c->max_auth_failures,
        .plaintext_without_tls = l->plaintext_ok,
        .starttls_offered = c->tls == CFG_TLS_STARTTLS,
    };
    l->http = (struct http_limits)HTTP_LIMITS_DEFAULT;
    l->http.max_header_bytes = c->max_header_bytes;
}

static int frontend_listen(struct frontend *fe, struct fe_listener *l)
{
    char err[512], qerr[600], q[64];
    int rc;

    frontend_limits(l);
    if (l->cfg->tls != CFG_TLS_NONE && tls_server_new(&l->tls, l->cfg->cert, l->cfg->key, err, sizeof(err)) != 0) {
        log_event(LOG_ERROR, "tls_setup_failed", "listener=%s error=%s", l->cfg->name,
                  log_quote(err, qerr, sizeof(qerr)));
        return UV_EINVAL;
    }
    uv_tcp_init(fe->loop, &l->server);
    l->server.data = l;
    rc = uv_tcp_bind(&l->server, (const struct sockaddr *)&l->cfg->addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->server, 511, frontend_on_client);
    if (rc != 0) {
        snprintf(q, sizeof(q), "%s:%u", inet_ntoa(l->cfg->addr.sin_addr), ntohs(l->cfg->addr.sin_port));
        log_event(LOG_ERROR, "listen_failed", "listener=%s address=%s error=%s", l->cfg->name, q, uv_strerror(rc));
    }
    return rc;
}

static int frontend_tunnels(struct frontend *fe)
{
    for (int i = 0; i < fe->cfg->n_tunnels; i++) {
        const struct cfg_tunnel *ct = &fe->cfg->tunnels[i];
        struct liveness_config lc = {
            .probe_interval_ms = ct->probe_interval_ms,
            .dead_after_ms = ct->dead_after_ms,
            .stall_ms = ct->dead_after_ms / 2 > 100 ? ct->dead_after_ms / 2 : 100,
            .retry_ms = 200,
            .retry_max_ms = 5000,
            .speculative = ct->speculative_rekey != 0,
        };
        struct ike_peer_config pc;
        char err[512];
        int rc;

        if (ike_config_from_tunnel(ct, &pc, err, sizeof(err)) != 0) {
            log_event(LOG_ERROR, "tunnel_config_failed", "tunnel=%s error=\"%s\"", ct->name, err);
            return UV_EINVAL;
        }
        fe->certs[i] = pc.cert;
        rc = tunnel_add(fe->tm, &pc, &lc, frontend_tunnel_event, fe, NULL);
        explicit_bzero(&pc, sizeof(pc));
        if (rc != 0)
            return rc;
        fe->held_tail[i] = &fe->held[i];
    }
    tunnel_mgr_start(fe->tm);
    return 0;
}

int frontend_start(struct frontend **fe_r, uv_loop_t *loop, const struct config *cfg, struct tunnel_mgr *tm)
{
    struct frontend *fe = calloc(1, sizeof(*fe));
    int rc;

    if (fe == NULL)
        return UV_ENOMEM;
    fe->loop = loop;
    fe->cfg = cfg;
    fe->tm = tm;
    *fe_r = fe;
    rc = frontend_tunnels(fe);
    for (int i = 0; rc == 0 && i < cfg->n_listeners; i++) {
        struct fe_listener *l = &fe->listeners[i];

        l->fe = fe;
        l->cfg = &cfg->listeners[i];
        l->tunnel = frontend_tunnel_index(cfg, l->cfg->tunnel);
        rc = frontend_listen(fe, l);
        if (l->cfg->tls == CFG_TLS_NONE || l->tls != NULL)
            fe->n_listeners++;      /* its handle needs closing */
    }
    return rc;
}

void frontend_stop(struct frontend *fe)
{
    if (fe->stopping)
        return;
    fe->stopping = true;
    for (int i = 0; i < fe->n_listeners; i++)
        if (!uv_is_closing((uv_handle_t *)&fe->listeners[i].server))
            uv_close((uv_handle_t *)&fe->listeners[i].server, NULL);
    for (int t = 0; t < fe->cfg->n_tunnels; t++)
        while (fe->held[t] != NULL)
            session_fail_held(fe->held[t]->s);
}

void frontend_free(struct frontend **fep)
{
    struct frontend *fe = *fep;

    if (fe == NULL)
        return;
    for (int i = 0; i < CFG_MAX_LISTENERS; i++)
        tls_server_free(&fe->listeners[i].tls);
    for (int i = 0; i < CFG_MAX_TUNNELS; i++)
        ike_cert_free(&fe->certs[i]);
    for (int b = 0; b < CLIENT_BUCKETS; b++)
        while (fe->clients[b] != NULL) {
            struct client_count *c = fe->clients[b];

            fe->clients[b] = c->next;
            free(c);
        }
    free(fe);
    *fep = NULL;
}
