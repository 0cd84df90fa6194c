/*
 * Process lifetime. SIGINT or SIGTERM closes every handle; the loop then
 * drains (pending close callbacks run) and run returns 0.
 */
#include "proxy/runtime.h"
#include "proxy/control.h"
#include "proxy/log.h"
#include "proxy/status.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

struct runtime {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct control *control;
    struct config *cfg;
    int stopping;
};

static void runtime_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void runtime_stop(struct runtime *rt, const char *why)
{
    if (rt->stopping)
        return;
    rt->stopping = 1;
    log_event(LOG_INFO, "stopping", "reason=%s", why);
    control_stop(&rt->control);
    uv_signal_stop(&rt->sigint);
    uv_signal_stop(&rt->sigterm);
    uv_walk(&rt->loop, runtime_close_walk, NULL);
}

static void runtime_on_signal(uv_signal_t *h, int signum)
{
    runtime_stop(h->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

int runtime_run(struct config *cfg)
{
    struct runtime rt;
    int rc;

    memset(&rt, 0, sizeof(rt));
    rt.cfg = cfg;
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

    rc = control_start(&rt.loop, cfg, &rt.control);
    if (rc != 0) {
        char q[CFG_PATH_MAX + 8];

        log_event(LOG_ERROR, "control_failed", "path=%s error=%s",
                  log_quote(cfg->control, q, sizeof(q)), uv_strerror(rc));
        runtime_stop(&rt, "startup_failed");
        uv_run(&rt.loop, UV_RUN_DEFAULT);
        uv_loop_close(&rt.loop);
        return 1;
    }
    log_event(LOG_INFO, "started", "role=%s pid=%ld version=%s tunnels=%d listeners=%d forwards=%d",
              config_role_name(cfg->role), (long)getpid(), ESPROXY_VERSION, cfg->n_tunnels,
              cfg->n_listeners, cfg->n_forwards);
    uv_run(&rt.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&rt.loop);
    log_event(LOG_INFO, "stopped", "clean=%s", rc == 0 ? "yes" : "no");
    return 0;
}
