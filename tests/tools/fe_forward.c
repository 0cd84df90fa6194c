/*
 * fe_forward: a minimal front-end for lab tests of the backend role, until
 * the proxy's own sessions exist: it brings up the tunnels of an esproxy
 * frontend configuration (IKE initiator, liveness) and forwards plain TCP
 * connections from local ports into the tunnel, so curl, imaplib and
 * poplib can talk through real ESP to the back-end's services.
 *
 *   fe_forward -c FILE -f LISTEN_ADDR:PORT=VIPPORT [-f ...] [--proxy-v2] [--run-ms N]
 *
 * Connections arriving while the tunnel is not up are held until it is.
 * With --proxy-v2 each inner stream starts with a PROXY v2 header naming
 * the real client. Prints "tunnel up|suspect|down|rekeyed at_ms=<wall ms>"
 * on every tunnel event.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "config/config.h"
#include "ipsec/ike_cert.h"
#include "ipsec/ipsec_log.h"
#include "ipsec/stream.h"
#include "ipsec/tunnel.h"
#include "proxy/ike_config.h"
#include "proxy/pp2.h"
#include "proxy/relay.h"

#define MAX_FWD 8

struct fwd {
    uv_tcp_t server;
    struct sockaddr_in addr;
    uint16_t vip_port;
};

struct conn {
    uv_tcp_t *tcp;
    struct fwd *f;
    struct stream *s;
    uv_timer_t wait;
    int waited_ms;
};

static struct {
    uv_loop_t *loop;
    struct config *cfg;
    struct tunnel_mgr *tm;
    struct tunnel *t;
    struct fwd fwd[MAX_FWD];
    int n_fwd;
    bool proxy_v2;
    uv_timer_t stop;
    uv_signal_t sig;
    unsigned long relays_done, relays_failed;
} F;

static void log_sink(enum ipsec_log_level level, const char *msg)
{
    if (level <= IPSEC_LOG_INFO)
        fprintf(stderr, "fe_forward: %s\n", msg);
}

static void tcp_closed(uv_handle_t *h)
{
    free(h);
}

static void relay_done(void *arg, const char *why, const struct relay_stats *st)
{
    (void)arg;
    fprintf(stderr, "fe_forward: relay closed why=%s up=%llu down=%llu\n", why, (unsigned long long)st->tcp_to_stream,
            (unsigned long long)st->stream_to_tcp);
    if (strcmp(why, "done") == 0 || strcmp(why, "local_close") == 0)
        F.relays_done++;
    else
        F.relays_failed++;
}

static void conn_wait_closed(uv_handle_t *h)
{
    free(h->data);
}

static void conn_stream_connected(struct stream *s)
{
    struct conn *c = stream_get_data(s);
    uint8_t hdr[PP2_V4_LEN];
    size_t hlen = 0;
    struct relay *r;

    if (F.proxy_v2) {
        struct sockaddr_in src, dst;
        int n = sizeof(src);

        uv_tcp_getpeername(c->tcp, (struct sockaddr *)&src, &n);
        n = sizeof(dst);
        uv_tcp_getsockname(c->tcp, (struct sockaddr *)&dst, &n);
        hlen = pp2_build(hdr, &src, &dst);
    }
    relay_start(&r, c->tcp, s, hdr, hlen, relay_done, NULL);
    c->tcp = NULL;
    uv_close((uv_handle_t *)&c->wait, conn_wait_closed);
}

static void conn_stream_closed(struct stream *s, enum stream_close_reason reason)
{
    struct conn *c = stream_get_data(s);

    fprintf(stderr, "fe_forward: stream failed before connecting: %s\n", stream_reason_str(reason));
    F.relays_failed++;
    if (c->tcp != NULL)
        uv_close((uv_handle_t *)c->tcp, tcp_closed);
    uv_close((uv_handle_t *)&c->wait, conn_wait_closed);
}

static const struct stream_callbacks conn_cb = {
    .connected = conn_stream_connected,
    .closed = conn_stream_closed,
};

/* Hold the client until the tunnel is up (at most 10 s), then open. */
static void conn_try(uv_timer_t *h)
{
    struct conn *c = h->data;
    int rc;

    if (tunnel_state(F.t) != LIVE_UP) {
        c->waited_ms += 10;
        if (c->waited_ms < 10000)
            return;
        fprintf(stderr, "fe_forward: tunnel not up after 10 s, dropping a client\n");
        F.relays_failed++;
        uv_close((uv_handle_t *)c->tcp, tcp_closed);
        uv_close((uv_handle_t *)&c->wait, conn_wait_closed);
        return;
    }
    uv_timer_stop(h);
    rc = stream_open(tunnel_mgr_netstack(F.tm), tunnel_peer(F.t), c->f->vip_port, 5000, &conn_cb, c, &c->s);
    if (rc != 0) {
        fprintf(stderr, "fe_forward: stream_open: %s\n", uv_strerror(rc));
        F.relays_failed++;
        uv_close((uv_handle_t *)c->tcp, tcp_closed);
        uv_close((uv_handle_t *)&c->wait, conn_wait_closed);
    }
}

static void on_client(uv_stream_t *server, int status)
{
    struct fwd *f = server->data;
    struct conn *c;

    if (status < 0 || (c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->tcp = malloc(sizeof(*c->tcp));
    c->f = f;
    uv_tcp_init(F.loop, c->tcp);
    if (uv_accept(server, (uv_stream_t *)c->tcp) != 0) {
        uv_close((uv_handle_t *)c->tcp, tcp_closed);
        free(c);
        return;
    }
    uv_timer_init(F.loop, &c->wait);
    c->wait.data = c;
    uv_timer_start(&c->wait, conn_try, 0, 10);
}

static void on_tunnel(void *arg, struct tunnel *t, enum tunnel_event ev)
{
    static const char *const names[] = { "up", "suspect", "down", "rekeyed" };
    struct timespec ts;

    (void)arg;
    (void)t;
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("tunnel %s at_ms=%lld\n", names[ev], (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    fflush(stdout);
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finished(void *arg)
{
    (void)arg;
    uv_walk(F.loop, walk_close, NULL);
}

static void stop_all(void)
{
    static bool stopping;

    if (stopping)
        return;
    stopping = true;
    for (int i = 0; i < F.n_fwd; i++)
        uv_close((uv_handle_t *)&F.fwd[i].server, NULL);
    uv_signal_stop(&F.sig);
    tunnel_mgr_shutdown(F.tm, 200, finished, NULL);
}

static void on_stop(uv_timer_t *h)
{
    (void)h;
    stop_all();
}

static void on_signal(uv_signal_t *h, int sig)
{
    (void)h;
    (void)sig;
    stop_all();
}

static int parse_fwd(const char *arg)
{
    char host[64];
    unsigned lport, vport;
    struct fwd *f = &F.fwd[F.n_fwd];

    if (F.n_fwd >= MAX_FWD || sscanf(arg, "%63[0-9.]:%u=%u", host, &lport, &vport) != 3 || lport == 0 ||
        lport > 65535 || vport == 0 || vport > 65535)
        return -1;
    if (uv_ip4_addr(host, (int)lport, &f->addr) != 0)
        return -1;
    f->vip_port = (uint16_t)vport;
    F.n_fwd++;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    unsigned long run_ms = 0;
    struct tunnel_mgr_config tc;
    struct ike_peer_config pc;
    struct liveness_config lc;
    const struct cfg_tunnel *ct;
    char err[256];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
            if (parse_fwd(argv[++i]) != 0)
                goto usage;
        } else if (strcmp(argv[i], "--proxy-v2") == 0)
            F.proxy_v2 = true;
        else if (strcmp(argv[i], "--run-ms") == 0 && i + 1 < argc)
            run_ms = strtoul(argv[++i], NULL, 10);
        else
            goto usage;
    }
    if (path == NULL || F.n_fwd == 0)
        goto usage;
    F.cfg = config_load(path, true);
    if (F.cfg == NULL || F.cfg->n_errors > 0 || F.cfg->role != CFG_ROLE_FRONTEND) {
        for (int i = 0; F.cfg != NULL && i < F.cfg->n_errors; i++)
            fprintf(stderr, "%s\n", F.cfg->errors[i].text);
        fprintf(stderr, "fe_forward: needs a valid frontend configuration\n");
        return 2;
    }
    ipsec_log_set_sink(log_sink);
    signal(SIGPIPE, SIG_IGN);
    F.loop = uv_default_loop();
    ct = &F.cfg->tunnels[0];
    memset(&tc, 0, sizeof(tc));
    tc.local_addr = ct->local.s_addr;
    tc.udp_port = ct->udp_port;
    tc.keylog = F.cfg->keylog[0] ? F.cfg->keylog : NULL;
    if (tunnel_mgr_open(&F.tm, F.loop, &tc) != 0 || ike_config_from_tunnel(ct, &pc, err, sizeof(err)) != 0) {
        fprintf(stderr, "fe_forward: cannot start the tunnel\n");
        return 1;
    }
    lc = (struct liveness_config){ ct->probe_interval_ms, ct->dead_after_ms, ct->dead_after_ms / 2 + 50, 200, 2000, true };
    if (tunnel_add(F.tm, &pc, &lc, on_tunnel, NULL, &F.t) != 0)
        return 1;
    tunnel_mgr_start(F.tm);
    for (int i = 0; i < F.n_fwd; i++) {
        uv_tcp_init(F.loop, &F.fwd[i].server);
        F.fwd[i].server.data = &F.fwd[i];
        if (uv_tcp_bind(&F.fwd[i].server, (const struct sockaddr *)&F.fwd[i].addr, 0) != 0 ||
            uv_listen((uv_stream_t *)&F.fwd[i].server, 128, on_client) != 0) {
            fprintf(stderr, "fe_forward: cannot listen on %s:%u\n", inet_ntoa(F.fwd[i].addr.sin_addr),
                    ntohs(F.fwd[i].addr.sin_port));
            return 1;
        }
    }
    uv_signal_init(F.loop, &F.sig);
    uv_signal_start(&F.sig, on_signal, SIGTERM);
    uv_timer_init(F.loop, &F.stop);
    if (run_ms > 0)
        uv_timer_start(&F.stop, on_stop, run_ms, 0);
    uv_run(F.loop, UV_RUN_DEFAULT);
    printf("summary relays_done=%lu relays_failed=%lu\n", F.relays_done, F.relays_failed);
    ike_cert_free(&pc.cert);
    config_free(&F.cfg);
    return 0;
usage:
    fprintf(stderr, "usage: fe_forward -c FILE -f ADDR:PORT=VIPPORT [-f ...] [--proxy-v2] [--run-ms N]\n");
    return 2;
}
