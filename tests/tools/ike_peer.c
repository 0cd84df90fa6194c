/*
 * ike_peer: runs esproxy's IKEv2 (ipsec/ike_io + ike_sa) over a real UDP
 * socket from an esproxy configuration file, without the proxy or the
 * netstack, for interop tests against strongSwan and for capture tests.
 * The configuration's role picks initiator (frontend) or responder
 * (backend); the first [tunnel] is used.
 *
 *   ike_peer -c FILE [--run-ms N] [--probe] [--delete] [--rekey-child] [--rekey-ike]
 *
 * Prints one line per IKE event on stdout ("event=established ...").
 * Exits 0 when the initiator reached ESTABLISHED (and every requested
 * action succeeded), 1 otherwise; a responder exits 0 at --run-ms.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "ipsec/esp.h"
#include "ipsec/ike_cert.h"
#include "ipsec/ike_io.h"
#include "ipsec/ipsec_log.h"
#include "proxy/ike_config.h"

static struct {
    uv_loop_t *loop;
    struct udp_encap ue;
    struct esp_sadb db;
    struct keylog kl;
    struct ike_io io;
    struct ike_peer_config pc;
    uv_timer_t stop_timer;
    uv_signal_t sigterm;
    uint32_t local;
    bool initiator, want_probe, want_delete, want_rekey_child, want_rekey_ike, want_cookies;
    bool established, failed, probe_ok;
    int step;
    unsigned long esp_ok, esp_bad;
} P;

static void log_sink(enum ipsec_log_level level, const char *msg)
{
    if (level <= IPSEC_LOG_INFO || getenv("IKE_PEER_DEBUG"))
        fprintf(stderr, "ike_peer: %s\n", msg);
}

static void peer_stop(void)
{
    ike_io_close(&P.io);
    udp_encap_close(&P.ue, NULL);
    uv_close((uv_handle_t *)&P.stop_timer, NULL);
    uv_close((uv_handle_t *)&P.sigterm, NULL);
}

/* The scripted actions, one after another, each after the previous event. */
static void peer_next_action(struct ike_sa *sa)
{
    static const unsigned sched[] = { 200, 200, 400 };

    if (P.want_probe && P.step < 1) {
        P.step = 1;
        if (ike_sa_probe(sa, sched, 3) != 0)
            P.failed = true;
    } else if (P.want_rekey_child && P.step < 2) {
        P.step = 2;
        if (ike_sa_rekey_child(sa) != 0)
            P.failed = true;
    } else if (P.want_rekey_ike && P.step < 3) {
        P.step = 3;
        if (ike_sa_rekey_ike(sa) != 0)
            P.failed = true;
    } else if (P.want_delete && P.step < 4) {
        P.step = 4;
        if (ike_sa_delete(sa) != 0)
            P.failed = true;
    } else {
        return;
    }
    ike_io_kick(&P.io);
}

static void on_event(void *arg, struct ike_sa *sa, enum ike_event ev)
{
    uint32_t in = 0, out = 0;

    (void)arg;
    ike_sa_child_spis(sa, &in, &out);
    printf("event=%s spi_i=%016llx spi_r=%016llx child_in=%08x child_out=%08x\n", ike_event_name(ev),
           (unsigned long long)ike_sa_spi_i(sa), (unsigned long long)ike_sa_spi_r(sa), in, out);
    fflush(stdout);
    switch (ev) {
    case IKE_EV_ESTABLISHED:
        P.established = true;
        if (P.initiator)
            peer_next_action(sa);
        break;
    case IKE_EV_PROBE_OK:
        P.probe_ok = true;
        peer_next_action(sa);
        break;
    case IKE_EV_CHILD_REKEYED:
    case IKE_EV_IKE_REKEYED:
        if (P.initiator)
            peer_next_action(sa);
        break;
    case IKE_EV_AUTH_FAILED:
    case IKE_EV_FAILED:
    case IKE_EV_PROBE_TIMEOUT:
        P.failed = true;
        break;
    default:
        break;
    }
}

static void on_ike(void *arg, const uint8_t *msg, size_t len, const struct sockaddr_in *from)
{
    (void)arg;
    ike_io_input(&P.io, msg, len, from, P.local);
}

static void on_esp(void *arg, uint8_t *pkt, size_t len, size_t headroom, const struct sockaddr_in *from)
{
    uint8_t *ip;
    size_t ip_len;

    (void)arg;
    if (esp_input(&P.db, pkt, len, headroom, from->sin_addr.s_addr, P.local, &ip, &ip_len, NULL) == 0)
        P.esp_ok++;
    else
        P.esp_bad++;
}

static void on_stop(uv_timer_t *t)
{
    (void)t;
    peer_stop();
}

static void on_signal(uv_signal_t *s, int sig)
{
    (void)s;
    (void)sig;
    peer_stop();
}

static int usage(void)
{
    fprintf(stderr, "usage: ike_peer -c FILE [--run-ms N] [--probe] [--delete] [--rekey-child] [--rekey-ike] "
                    "[--cookies]\n");
    return 2;
}

static int peer_setup(const struct config *cfg)
{
    const struct cfg_tunnel *t = &cfg->tunnels[0];
    struct sockaddr_in bind_addr;
    char err[512];
    int rc;

    P.initiator = cfg->role == CFG_ROLE_FRONTEND;
    P.local = t->local.s_addr;
    if (ike_config_from_tunnel(t, &P.pc, err, sizeof(err)) != 0) {
        fprintf(stderr, "ike_peer: %s\n", err);
        return -1;
    }
    if (esp_sadb_init(&P.db, 64) != 0)
        return -1;
    if (cfg->keylog[0] != '\0') {
        if (keylog_open(&P.kl, cfg->keylog) != 0) {
            fprintf(stderr, "ike_peer: cannot open key log %s\n", cfg->keylog);
            return -1;
        }
        esp_sadb_set_keylog(&P.db, &P.kl);
    }
    memset(&bind_addr, 0, sizeof(bind_addr));
    bind_addr.sin_family = AF_INET;
    bind_addr.sin_addr = t->local;
    bind_addr.sin_port = htons(t->udp_port);
    rc = udp_encap_open(&P.ue, P.loop, &bind_addr, UDP_ENCAP_ZERO_CSUM, on_esp, on_ike, NULL);
    if (rc != 0) {
        fprintf(stderr, "ike_peer: bind %s:%u: %s\n", inet_ntoa(t->local), t->udp_port, uv_strerror(rc));
        return -1;
    }
    if (ike_io_init(&P.io, P.loop, &P.ue, &P.db, cfg->keylog[0] ? &P.kl : NULL, on_event, NULL) != 0 ||
        ike_ctx_add_peer(P.io.ctx, &P.pc) != 0)
        return -1;
    if (P.want_cookies)
        ike_ctx_set_cookie_threshold(P.io.ctx, 0);
    if (!P.initiator) {
        bind_addr.sin_port = htons(500);
        rc = ike_io_listen_500(&P.io, &bind_addr);
        if (rc != 0)
            fprintf(stderr, "ike_peer: not listening on port 500: %s\n", uv_strerror(rc));
    }
    if (P.initiator && ike_ctx_initiate(P.io.ctx, 0, true, NULL) != 0)
        return -1;
    ike_io_kick(&P.io);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    unsigned long run_ms = 10000;
    struct config *cfg;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--run-ms") == 0 && i + 1 < argc)
            run_ms = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--probe") == 0)
            P.want_probe = true;
        else if (strcmp(argv[i], "--delete") == 0)
            P.want_delete = true;
        else if (strcmp(argv[i], "--rekey-child") == 0)
            P.want_rekey_child = true;
        else if (strcmp(argv[i], "--rekey-ike") == 0)
            P.want_rekey_ike = true;
        else if (strcmp(argv[i], "--cookies") == 0)
            P.want_cookies = true;      /* responder: every IKE_SA_INIT must return a COOKIE */
        else
            return usage();
    }
    if (path == NULL)
        return usage();
    cfg = config_load(path, true);
    if (cfg == NULL || cfg->n_errors > 0) {
        for (int i = 0; cfg != NULL && i < cfg->n_errors; i++)
            fprintf(stderr, "%s\n", cfg->errors[i].text);
        return 2;
    }
    ipsec_log_set_sink(log_sink);
    signal(SIGPIPE, SIG_IGN);
    P.loop = uv_default_loop();
    uv_timer_init(P.loop, &P.stop_timer);
    uv_timer_start(&P.stop_timer, on_stop, run_ms, 0);
    uv_signal_init(P.loop, &P.sigterm);
    uv_signal_start(&P.sigterm, on_signal, SIGTERM);
    if (peer_setup(cfg) != 0) {
        config_free(&cfg);
        return 1;
    }
    uv_run(P.loop, UV_RUN_DEFAULT);
    printf("summary established=%d failed=%d probe_ok=%d esp_ok=%lu esp_bad=%lu\n", P.established, P.failed,
           P.probe_ok, P.esp_ok, P.esp_bad);
    esp_sadb_free(&P.db);
    if (P.kl.fd > 0)
        keylog_close(&P.kl);
    if (P.pc.cert != NULL)
        ike_cert_free(&P.pc.cert);
    rc = P.initiator ? (P.established && !P.failed && (!P.want_probe || P.probe_ok) ? 0 : 1) : 0;
    config_free(&cfg);
    uv_loop_close(P.loop);
    return rc;
}
