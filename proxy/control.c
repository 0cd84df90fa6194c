/*
 * Control socket server. The socket is created with mode 0660 (umask set
 * around bind, so it is never reachable with a wider mode). A connection
 * sends one command line of at most CONTROL_CMD_MAX - 1 bytes and gets one
 * reply; at most CONTROL_MAX_CONNS connections are served at once (more are
 * closed at accept), and each lives at most CONTROL_CONN_TIMEOUT_MS from
 * accept, whether it is silent or does not read its reply.
 */
#include "proxy/control.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_CMD_MAX 128

struct control {
    uv_pipe_t server;
    const struct status_source *src;
    char path[CFG_PATH_MAX];
    unsigned conns;
};

struct control_conn {
    uv_pipe_t pipe;
    uv_timer_t timer;
    struct control *ctl;
    char cmd[CONTROL_CMD_MAX];
    size_t used;
    int replied;
    int handles;            /* open handles; freed when both closed */
};

struct control_write {
    uv_write_t req;
    char *text;
};

static void control_conn_closed(uv_handle_t *h)
{
    struct control_conn *c = h->data;

    if (--c->handles > 0)
        return;
    c->ctl->conns--;
    free(c);
}

static void control_conn_close(struct control_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, control_conn_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, control_conn_closed);
}

static void control_conn_timeout(uv_timer_t *t)
{
    log_event(LOG_INFO, "control_timeout", "after_ms=%u", CONTROL_CONN_TIMEOUT_MS);
    control_conn_close(t->data);
}

static void control_conn_written(uv_write_t *req, int status)
{
    struct control_write *w = (struct control_write *)req;
    struct control_conn *c = req->handle->data;

    (void)status;
    free(w->text);
    free(w);
    control_conn_close(c);
}

static void control_conn_reply(struct control_conn *c, char *text)
{
    struct control_write *w = calloc(1, sizeof(*w));
    uv_buf_t buf;

    c->replied = 1;
    uv_read_stop((uv_stream_t *)&c->pipe);
    if (w == NULL || text == NULL) {
        free(w);
        free(text);
        control_conn_close(c);
        return;
    }
    w->text = text;
    buf = uv_buf_init(text, (unsigned)strlen(text));
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, control_conn_written) != 0) {
        free(w->text);
        free(w);
        control_conn_close(c);
    }
}

static void control_conn_command(struct control_conn *c)
{
    char *reply;

    c->cmd[strcspn(c->cmd, "\r\n")] = '\0';
    if (strcmp(c->cmd, "status") == 0)
        reply = status_render(c->ctl->src, false);
    else if (strcmp(c->cmd, "status json") == 0)
        reply = status_render(c->ctl->src, true);
    else if (strcmp(c->cmd, "metrics") == 0)
        reply = metrics_render(c->ctl->src);
    else
        reply = strdup("error: unknown command (try: status, status json, metrics)\n");
    control_conn_reply(c, reply);
}

static void control_server_closed(uv_handle_t *h)
{
    free(h->data);
}

static void control_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct control_conn *c = h->data;

    (void)suggested;
    *buf = uv_buf_init(c->cmd + c->used, (unsigned)(sizeof(c->cmd) - 1 - c->used));
}

static void control_conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct control_conn *c = s->data;

    (void)buf;
    if (n < 0) {
        if (c->used > 0 && !c->replied) {
            c->cmd[c->used] = '\0';
            control_conn_command(c);
            return;
        }
        control_conn_close(c);
        return;
    }
    c->used += (size_t)n;
    c->cmd[c->used] = '\0';
    if (memchr(c->cmd, '\n', c->used) != NULL)
        control_conn_command(c);
    else if (c->used >= sizeof(c->cmd) - 1)
        control_conn_reply(c, strdup("error: command too long\n"));
}

static void control_on_connection(uv_stream_t *server, int status)
{
    struct control *ctl = server->data;
    struct control_conn *c;

    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->ctl = ctl;
    ctl->conns++;
    c->handles = 2;
    uv_pipe_init(server->loop, &c->pipe, 0);
    uv_timer_init(server->loop, &c->timer);
    c->pipe.data = c->timer.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        control_conn_close(c);
        return;
    }
    if (ctl->conns > CONTROL_MAX_CONNS) {
        log_event(LOG_WARN, "control_refused", "reason=connection_limit limit=%u", CONTROL_MAX_CONNS);
        control_conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, control_conn_timeout, CONTROL_CONN_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->pipe, control_alloc, control_conn_read) != 0)
        control_conn_close(c);
}

static int control_mkdir_parent(const char *path)
{
    char dir[CFG_PATH_MAX];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int control_start(uv_loop_t *loop, const struct status_source *src, struct control **ctl_r)
{
    const struct config *cfg = src->cfg;
    struct control *ctl = calloc(1, sizeof(*ctl));
    mode_t old_mask;
    int rc;

    if (ctl == NULL)
        return UV_ENOMEM;
    ctl->src = src;
    snprintf(ctl->path, sizeof(ctl->path), "%s", cfg->control);
    rc = control_mkdir_parent(ctl->path);
    if (rc == 0) {
        /* A stale socket from a crashed run would make bind fail. Only
         * remove it when nothing answers on it. */
        if (control_request(ctl->path, NULL, NULL) == 0) {
            free(ctl);
            return UV_EADDRINUSE;
        }
        unlink(ctl->path);
        uv_pipe_init(loop, &ctl->server, 0);
        ctl->server.data = ctl;
        old_mask = umask(0117);     /* created 0660, never wider for a moment */
        rc = uv_pipe_bind(&ctl->server, ctl->path);
        umask(old_mask);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&ctl->server, 16, control_on_connection);
        if (rc != 0) {
            uv_close((uv_handle_t *)&ctl->server, control_server_closed);
            return rc;
        }
    }
    if (rc != 0) {
        free(ctl);
        return rc;
    }
    *ctl_r = ctl;
    return 0;
}

void control_stop(struct control **ctlp)
{
    struct control *ctl = *ctlp;

    if (ctl == NULL)
        return;
    unlink(ctl->path);
    uv_close((uv_handle_t *)&ctl->server, control_server_closed);
    *ctlp = NULL;
}

/* Blocking client used by `esproxy status` (and to detect a live server).
 * cmd NULL: only test whether something accepts connections. */
int control_request(const char *path, const char *cmd, FILE *out)
{
    struct sockaddr_un sa;
    char buf[4096];
    ssize_t n;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        if (out != NULL)
            fprintf(stderr, "esproxy: control socket path too long: %s\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (out != NULL)
            fprintf(stderr, "esproxy: cannot reach %s: %s (is esproxy running?)\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (cmd == NULL) {
        close(fd);
        return 0;
    }
    if (write(fd, cmd, strlen(cmd)) < 0 || write(fd, "\n", 1) < 0) {
        fprintf(stderr, "esproxy: write to %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, out);
    close(fd);
    return n < 0 ? -1 : 0;
}
