#include "proxy/status.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct timespec status_started;

void status_mark_start(void)
{
    clock_gettime(CLOCK_MONOTONIC, &status_started);
}

static double status_uptime(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - status_started.tv_sec) +
           (double)(now.tv_nsec - status_started.tv_nsec) / 1e9;
}

/* A growing string buffer. */
struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
};

static void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->s != NULL && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = (b->cap + (size_t)n + 1) * 2;
            char *s = realloc(b->s, cap);

            if (s == NULL) {
                b->oom = 1;
                return;
            }
            b->s = s;
            b->cap = cap;
        }
    }
}

/* JSON string escaping for names and identities from the config file. */
static const char *json_str(const char *in, char *buf, size_t len)
{
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < len; p++) {
        if (*p == '"' || *p == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)*p;
        } else if (*p < 0x20) {
            o += (size_t)snprintf(buf + o, len - o, "\\u%04x", *p);
        } else {
            buf[o++] = (char)*p;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void status_tunnels(struct sbuf *b, const struct config *cfg, bool json)
{
    char local[INET_ADDRSTRLEN], peer[INET_ADDRSTRLEN], e1[300], e2[300];

    for (int i = 0; i < cfg->n_tunnels; i++) {
        const struct cfg_tunnel *t = &cfg->tunnels[i];

        inet_ntop(AF_INET, &t->local, local, sizeof(local));
        if (t->peer_any)
            strcpy(peer, "any");
        else
            inet_ntop(AF_INET, &t->peer, peer, sizeof(peer));
        if (json)
            sbuf_printf(b, "%s{\"name\":\"%s\",\"local\":\"%s\",\"peer\":\"%s\",\"peer_id\":\"%s\"}",
                        i ? "," : "", json_str(t->name, e1, sizeof(e1)), local, peer,
                        json_str(t->peer_id, e2, sizeof(e2)));
        else
            sbuf_printf(b, "tunnel %s: local %s peer %s peer_id %s\n", t->name, local, peer, t->peer_id);
    }
}

static void status_listeners(struct sbuf *b, const struct config *cfg, bool json)
{
    static const char *const tls[] = { "none", "starttls", "implicit" };
    char addr[INET_ADDRSTRLEN], e1[300];

    for (int i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];

        inet_ntop(AF_INET, &l->addr.sin_addr, addr, sizeof(addr));
        if (json)
            sbuf_printf(b, "%s{\"name\":\"%s\",\"address\":\"%s:%u\",\"protocol\":\"%s\",\"tls\":\"%s\"}",
                        i ? "," : "", json_str(l->name, e1, sizeof(e1)), addr, ntohs(l->addr.sin_port),
                        config_protocol_name(l->protocol), tls[l->tls]);
        else
            sbuf_printf(b, "listener %s: %s:%u %s tls=%s\n", l->name, addr, ntohs(l->addr.sin_port),
                        config_protocol_name(l->protocol), tls[l->tls]);
    }
}

char *status_render(const struct config *cfg, bool json)
{
    struct sbuf b = { 0 };
    char e1[CFG_PATH_MAX * 2];

    if (json) {
        sbuf_printf(&b, "{\"version\":\"%s\",\"role\":\"%s\",\"pid\":%ld,\"uptime_s\":%.3f,\"config\":\"%s\","
                        "\"tunnels\":[", ESPROXY_VERSION, config_role_name(cfg->role), (long)getpid(),
                    status_uptime(), json_str(cfg->path, e1, sizeof(e1)));
        status_tunnels(&b, cfg, true);
        sbuf_printf(&b, "],\"listeners\":[");
        status_listeners(&b, cfg, true);
        sbuf_printf(&b, "]}\n");
    } else {
        sbuf_printf(&b, "esproxy %s role=%s pid=%ld uptime=%.1fs config=%s\n", ESPROXY_VERSION,
                    config_role_name(cfg->role), (long)getpid(), status_uptime(), cfg->path);
        status_tunnels(&b, cfg, false);
        status_listeners(&b, cfg, false);
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
