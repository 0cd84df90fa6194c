/*
 * Process lifetime. Start: control socket, tunnels (IKE, ESP, netstack),
 * then the role (backend: forwarding listeners; frontend: tunnels toward
 * the VIPs). SIGINT or SIGTERM: the role stops accepting, every IKE SA is
 * deleted with an authenticated DELETE (so peers re-key at once instead of
 * waiting for liveness), then every handle closes, the loop drains and run
 * returns 0.
 */
#include "proxy/runtime.h"
#include "proxy/backend.h"
#include "proxy/control.h"
#include "proxy/frontend.h"
#include "proxy/session.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/status.h"
#include "ipsec/tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define SHUTDOWN_DELETE_WAIT_MS 200

struct runtime {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct control *control;
    struct metrics *metrics;
    struct config *cfg;
    struct status_source status;
    struct tunnel_mgr *tm;
    struct backend *backend;
    struct frontend *frontend;
    int stopping;
    int exit_code;
};

static void runtime_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void runtime_finish(void *arg)
{
    struct runtime *rt = arg;

    rt->tm = NULL;
    rt->status.tm = NULL;
    uv_walk(&rt->loop, runtime_close_walk, NULL);
}

static void runtime_stop(struct runtime *rt, const char *why)
{
    if (rt->stopping)
        return;
    rt->stopping = 1;
    log_event(LOG_INFO, "stopping", "reason=%s", why);
    control_stop(&rt->control);
    metrics_stop(&rt->metrics);
    uv_signal_stop(&rt->sigint);
    uv_signal_stop(&rt->sigterm);
    if (rt->backend != NULL) {
        backend_close_listeners(rt->backend);
        backend_abort_all(rt->backend);
    }
    if (rt->frontend != NULL) {
        frontend_stop(rt->frontend);
        session_abort_all();
    }
    if (rt->tm != NULL)
        tunnel_mgr_shutdown(rt->tm, SHUTDOWN_DELETE_WAIT_MS, runtime_finish, rt);
    else
        runtime_finish(rt);
}

static void runtime_on_signal(uv_signal_t *h, int signum)
{
    runtime_stop(h->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

int runtime_core_dumps(bool allow)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_CORE, &rl) != 0)
        return -errno;
    rl.rlim_cur = allow ? rl.rlim_max : 0;     /* the hard limit stays: yes must be able to undo no */
    if (setrlimit(RLIMIT_CORE, &rl) != 0 || prctl(PR_SET_DUMPABLE, allow ? 1 : 0, 0, 0, 0) != 0)
        return -errno;
    return 0;
}

static const char *runtime_addr(const struct sockaddr_in *sa, char *buf, size_t len)
{
    char ip[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
    snprintf(buf, len, "%s:%u", ip, ntohs(sa->sin_port));
    return buf;
}

static int runtime_start_role(struct runtime *rt)
{
    const struct cfg_tunnel *t0 = &rt->cfg->tunnels[0];
    struct tunnel_mgr_config tc = {
        .local_addr = t0->local.s_addr,
        .udp_port = t0->udp_port,
        .listen_500 = rt->cfg->role == CFG_ROLE_BACKEND,
        .freebind = rt->cfg->role == CFG_ROLE_BACKEND,
        .keylog = rt->cfg->keylog[0] ? rt->cfg->keylog : NULL,
    };
    int rc = tunnel_mgr_open(&rt->tm, &rt->loop, &tc);

    if (rc != 0)
        return rc;
    rt->status.tm = rt->tm;
    if (rt->cfg->role == CFG_ROLE_BACKEND)
        return backend_start(&rt->backend, &rt->loop, rt->cfg, rt->tm);
    rc = frontend_start(&rt->frontend, &rt->loop, rt->cfg, rt->tm);
    rt->status.fe = rt->frontend;
    return rc;
}

int runtime_run(struct config *cfg)
{
    struct runtime rt;
    unsigned errors;
    int rc;

    memset(&rt, 0, sizeof(rt));
    rt.cfg = cfg;
    rt.status.cfg = cfg;
    signal(SIGPIPE, SIG_IGN);
    status_mark_start();
    rc = uv_loop_init(&rt.loop);
    if (rc != 0) {
        log_event(LOG_ERROR, "loop_init_failed", "error=%s", uv_strerror(rc));
        return 1;
    }
    uv_signal_init(&rt.loop, &rt.sigint);
    uv_signal_init(&rt.loop, &rt.sigterm);
    rt.sigint.data = rt.sigterm.data = &rt;
    uv_signal_start(&rt.sigint, runtime_on_signal, SIGINT);
    uv_signal_start(&rt.sigterm, runtime_on_signal, SIGTERM);

    rc = control_start(&rt.loop, &rt.status, &rt.control);
    if (rc != 0) {
        char q[CFG_PATH_MAX + 8];

        log_event(LOG_ERROR, "control_failed", "path=%s error=%s", log_quote(cfg->control, q, sizeof(q)),
                  uv_strerror(rc));
        rt.exit_code = 1;
        runtime_stop(&rt, "startup_failed");
    } else if (cfg->metrics.sin_family == AF_INET &&
               (rc = metrics_start(&rt.loop, &cfg->metrics, &rt.status, &rt.metrics)) != 0) {
        char a[INET_ADDRSTRLEN + 8];

        log_event(LOG_ERROR, "metrics_failed", "address=%s error=%s", runtime_addr(&cfg->metrics, a, sizeof(a)),
                  uv_strerror(rc));
        rt.exit_code = 1;
        runtime_stop(&rt, "startup_failed");
    } else if ((errors = log_error_count(), rc = runtime_start_role(&rt)) != 0) {
        if (log_error_count() == errors)     /* the part that failed did not say why */
            log_event(LOG_ERROR, "start_failed", "role=%s error=%s", config_role_name(cfg->role), uv_strerror(rc));
        rt.exit_code = 1;
        runtime_stop(&rt, "startup_failed");
    } else {
        char a[INET_ADDRSTRLEN + 8];

        log_event(LOG_INFO, "started", "role=%s pid=%ld version=%s tunnels=%d listeners=%d forwards=%d metrics=%s",
                  config_role_name(cfg->role), (long)getpid(), ESPROXY_VERSION, cfg->n_tunnels,
                  cfg->n_listeners, cfg->n_forwards, rt.metrics ? runtime_addr(&cfg->metrics, a, sizeof(a)) : "off");
    }
    uv_run(&rt.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&rt.loop);
    backend_free(&rt.backend);
    frontend_free(&rt.frontend);
    if (rt.exit_code == 0)
        log_event(LOG_INFO, "stopped", "clean=%s", rc == 0 ? "yes" : "no");
    return rt.exit_code;
}
