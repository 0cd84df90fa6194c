#include "proxy/status.h"
#include "ipsec/tunnel.h"
#include "proxy/frontend.h"
#include "proxy/sbuf.h"
#include "proxy/session.h"

#include <arpa/inet.h>
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

double status_uptime(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - status_started.tv_sec) +
           (double)(now.tv_nsec - status_started.tv_nsec) / 1e9;
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

/* Liveness records monotonic milliseconds; users want wall-clock times. */
static uint64_t status_wall_ms(uint64_t mono_ms)
{
    struct timespec mono, wall;
    uint64_t mono_now, wall_now;

    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &wall);
    mono_now = (uint64_t)mono.tv_sec * 1000u + (uint64_t)mono.tv_nsec / 1000000u;
    wall_now = (uint64_t)wall.tv_sec * 1000u + (uint64_t)wall.tv_nsec / 1000000u;
    return wall_now - (mono_now - mono_ms);
}

static void status_history_json(struct sbuf *b, const struct liveness *l)
{
    unsigned n = l->n_history < LIVENESS_HISTORY ? l->n_history : LIVENESS_HISTORY;

    sbuf_printf(b, ",\"history\":[");
    for (unsigned i = 0; i < n; i++) {
        const struct liveness_event *e = &l->history[(l->n_history - n + i) % LIVENESS_HISTORY];

        sbuf_printf(b, "%s{\"at_ms\":%llu,\"from\":\"%s\",\"to\":\"%s\",\"reason\":\"%s\"}", i ? "," : "",
                    (unsigned long long)status_wall_ms(e->at_ms), liveness_state_name(e->from), liveness_state_name(e->to),
                    liveness_reason_name(e->why));
    }
    sbuf_printf(b, "]");
}

static void status_history_text(struct sbuf *b, const struct liveness *l)
{
    unsigned n = l->n_history < LIVENESS_HISTORY ? l->n_history : LIVENESS_HISTORY;

    for (unsigned i = 0; i < n; i++) {
        const struct liveness_event *e = &l->history[(l->n_history - n + i) % LIVENESS_HISTORY];
        uint64_t at = status_wall_ms(e->at_ms);
        time_t secs = (time_t)(at / 1000);
        struct tm tm;
        char ts[32];

        gmtime_r(&secs, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        sbuf_printf(b, "  %s.%03lluZ %s -> %s (%s)\n", ts, (unsigned long long)(at % 1000),
                    liveness_state_name(e->from), liveness_state_name(e->to), liveness_reason_name(e->why));
    }
}

/* Live SA data for configured tunnel i, when the tunnels are running. */
static void status_tunnel_live(struct sbuf *b, struct tunnel_mgr *tm, int i, bool json)
{
    struct tunnel_info ti;
    char e1[300];

    if (tm == NULL || i >= tunnel_mgr_count(tm))
        return;
    tunnel_get_info(tunnel_mgr_get(tm, i), &ti);
    if (json) {
        sbuf_printf(b, ",\"state\":\"%s\",\"ike_sas\":%d", liveness_state_name(ti.state), ti.n_sas);
        if (ti.have_sa)
            sbuf_printf(b, ",\"sa\":{\"spi_i\":\"%016llx\",\"spi_r\":\"%016llx\",\"esp_in\":\"%08x\","
                           "\"esp_out\":\"%08x\",\"peer_id\":\"%s\",\"age_ms\":%llu,\"bytes_in\":%llu,"
                           "\"bytes_out\":%llu,\"packets_in\":%llu,\"packets_out\":%llu}",
                        (unsigned long long)ti.spi_i, (unsigned long long)ti.spi_r, ti.child_in, ti.child_out,
                        json_str(ti.peer_id, e1, sizeof(e1)), (unsigned long long)ti.sa_age_ms,
                        (unsigned long long)ti.esp_in.bytes_in, (unsigned long long)ti.esp_out.bytes_out,
                        (unsigned long long)ti.esp_in.pkts_in, (unsigned long long)ti.esp_out.pkts_out);
        if (ti.live != NULL)
            status_history_json(b, ti.live);
        return;
    }
    sbuf_printf(b, "  state %s, %d IKE SA%s\n", liveness_state_name(ti.state), ti.n_sas, ti.n_sas == 1 ? "" : "s");
    if (ti.have_sa)
        sbuf_printf(b, "  IKE SA %016llx/%016llx peer %s age %llu ms; ESP in %08x (%llu pkts, %llu B) out %08x (%llu pkts, %llu B)\n",
                    (unsigned long long)ti.spi_i, (unsigned long long)ti.spi_r, ti.peer_id,
                    (unsigned long long)ti.sa_age_ms, ti.child_in, (unsigned long long)ti.esp_in.pkts_in,
                    (unsigned long long)ti.esp_in.bytes_in, ti.child_out, (unsigned long long)ti.esp_out.pkts_out,
                    (unsigned long long)ti.esp_out.bytes_out);
    if (ti.live != NULL)
        status_history_text(b, ti.live);
}

static void status_tunnels(struct sbuf *b, const struct status_source *src, bool json)
{
    const struct config *cfg = src->cfg;
    char local[INET_ADDRSTRLEN], peer[INET_ADDRSTRLEN], e1[300], e2[300];

    for (int i = 0; i < cfg->n_tunnels; i++) {
        const struct cfg_tunnel *t = &cfg->tunnels[i];

        inet_ntop(AF_INET, &t->local, local, sizeof(local));
        if (t->peer_any)
            strcpy(peer, "any");
        else
            inet_ntop(AF_INET, &t->peer, peer, sizeof(peer));
        if (json) {
            sbuf_printf(b, "%s{\"name\":\"%s\",\"local\":\"%s\",\"peer\":\"%s\",\"peer_id\":\"%s\"",
                        i ? "," : "", json_str(t->name, e1, sizeof(e1)), local, peer,
                        json_str(t->peer_id, e2, sizeof(e2)));
            status_tunnel_live(b, src->tm, i, true);
            sbuf_printf(b, "}");
        } else {
            sbuf_printf(b, "tunnel %s: local %s peer %s peer_id %s\n", t->name, local, peer, t->peer_id);
            status_tunnel_live(b, src->tm, i, false);
        }
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

static void status_sessions(struct sbuf *b, const struct status_source *src, bool json)
{
    static const char *const names[] = { "pop3", "imap", "http" };

    if (src->tm != NULL) {
        const struct esp_sadb *db = tunnel_mgr_sadb(src->tm);

        if (json)
            sbuf_printf(b, ",\"esp_sas\":{\"in\":%zu,\"out\":%zu,\"unknown_spi\":%llu}", db->n_in, db->n_out,
                        (unsigned long long)db->ctr.unknown_spi);
        else
            sbuf_printf(b, "ESP SAs: %zu in, %zu out; packets on unknown SPIs: %llu\n", db->n_in, db->n_out,
                        (unsigned long long)db->ctr.unknown_spi);
    }
    if (src->fe == NULL)
        return;
    if (json)
        sbuf_printf(b, ",\"held\":%u,\"sessions\":{", frontend_held_count(src->fe));
    else
        sbuf_printf(b, "sessions held: %u\n", frontend_held_count(src->fe));
    for (int p = 0; p < 3; p++) {
        struct session_counts c;

        session_counts_get(p, &c);
        if (json)
            sbuf_printf(b, "%s\"%s\":{\"active\":%llu,\"accepted\":%llu,\"logged_in\":%llu,\"held\":%llu,"
                           "\"failed_held\":%llu,\"tunnel_lost\":%llu}", p ? "," : "", names[p],
                        (unsigned long long)c.active, (unsigned long long)c.accepted, (unsigned long long)c.spliced,
                        (unsigned long long)c.held, (unsigned long long)c.failed_held,
                        (unsigned long long)c.tunnel_lost);
        else
            sbuf_printf(b, "sessions %s: active %llu accepted %llu logged-in %llu held %llu failed-held %llu tunnel-lost %llu\n",
                        names[p], (unsigned long long)c.active, (unsigned long long)c.accepted,
                        (unsigned long long)c.spliced, (unsigned long long)c.held, (unsigned long long)c.failed_held,
                        (unsigned long long)c.tunnel_lost);
    }
    if (json)
        sbuf_printf(b, "}");
}

char *status_render(const struct status_source *src, bool json)
{
    const struct config *cfg = src->cfg;
    struct sbuf b = { 0 };
    char e1[CFG_PATH_MAX * 2];

    if (json) {
        sbuf_printf(&b, "{\"version\":\"%s\",\"role\":\"%s\",\"pid\":%ld,\"uptime_s\":%.3f,\"config\":\"%s\","
                        "\"tunnels\":[", ESPROXY_VERSION, config_role_name(cfg->role), (long)getpid(),
                    status_uptime(), json_str(cfg->path, e1, sizeof(e1)));
        status_tunnels(&b, src, true);
        sbuf_printf(&b, "],\"listeners\":[");
        status_listeners(&b, cfg, true);
        sbuf_printf(&b, "]");
        status_sessions(&b, src, true);
        sbuf_printf(&b, "}\n");
    } else {
        sbuf_printf(&b, "esproxy %s role=%s pid=%ld uptime=%.1fs config=%s\n", ESPROXY_VERSION,
                    config_role_name(cfg->role), (long)getpid(), status_uptime(), cfg->path);
        status_tunnels(&b, src, false);
        status_listeners(&b, cfg, false);
        status_sessions(&b, src, false);
    }
    return sbuf_take(&b);
}
