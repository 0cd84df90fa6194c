#include "proxy/metrics.h"
#include "ipsec/tunnel.h"
#include "proxy/log.h"
#include "proxy/sbuf.h"
#include "proxy/session.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_LINGER_MS 1000

/* ---- rendering ---- */

/* A label value: backslash, double quote and newline escaped. */
static const char *label(const char *in, char *buf, size_t len)
{
    size_t o = 0;

    for (; *in != '\0' && o + 3 < len; in++) {
        if (*in == '\\' || *in == '"') {
            buf[o++] = '\\';
            buf[o++] = *in;
        } else if (*in == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *in;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_tunnels(struct sbuf *b, const struct status_source *src)
{
    static const char *const states[] = { "down", "connecting", "up", "suspect" };
    struct tunnel_info ti[CFG_MAX_TUNNELS];
    char names[CFG_MAX_TUNNELS][2 * CFG_NAME_MAX + 1];
    int n = src->tm != NULL ? tunnel_mgr_count(src->tm) : 0;

    for (int i = 0; i < n && i < CFG_MAX_TUNNELS; i++) {
        tunnel_get_info(tunnel_mgr_get(src->tm, i), &ti[i]);
        label(ti[i].name, names[i], sizeof(names[i]));
    }
    if (n > CFG_MAX_TUNNELS)
        n = CFG_MAX_TUNNELS;
    family(b, "esproxy_tunnel_up", "gauge", "1 while the tunnel has an IKE SA and ESP to its peer (state up or suspect).");
    for (int i = 0; i < n; i++)
        sbuf_printf(b, "esproxy_tunnel_up{tunnel=\"%s\"} %d\n", names[i],
                    ti[i].state == LIVE_UP || ti[i].state == LIVE_SUSPECT);
    family(b, "esproxy_tunnel_state", "gauge", "The tunnel's liveness state (1 for the current one).");
    for (int i = 0; i < n; i++)
        for (int s = 0; s < 4; s++)
            sbuf_printf(b, "esproxy_tunnel_state{tunnel=\"%s\",state=\"%s\"} %d\n", names[i], states[s],
                        (int)ti[i].state == s);
    family(b, "esproxy_tunnel_state_entered_total", "counter",
           "Times the tunnel entered each liveness state (down after up: a failover or a graceful move).");
    for (int i = 0; i < n; i++)
        for (int s = 0; s < 4 && ti[i].live != NULL; s++)
            sbuf_printf(b, "esproxy_tunnel_state_entered_total{tunnel=\"%s\",state=\"%s\"} %llu\n", names[i],
                        states[s], (unsigned long long)ti[i].live->n_entered[s]);
    family(b, "esproxy_tunnel_hints_ignored_total", "counter",
           "Unauthenticated hints (unknown SPI, INVALID_IKE_SPI, ICMP) ignored after a false alarm.");
    for (int i = 0; i < n; i++)
        if (ti[i].live != NULL)
            sbuf_printf(b, "esproxy_tunnel_hints_ignored_total{tunnel=\"%s\"} %llu\n", names[i],
                        (unsigned long long)ti[i].live->n_hints_ignored);
    family(b, "esproxy_tunnel_ike_sas", "gauge", "Established IKE SAs of the tunnel.");
    for (int i = 0; i < n; i++)
        sbuf_printf(b, "esproxy_tunnel_ike_sas{tunnel=\"%s\"} %d\n", names[i], ti[i].n_sas);
    family(b, "esproxy_tunnel_sa_age_seconds", "gauge", "Age of the tunnel's current IKE SA.");
    for (int i = 0; i < n; i++)
        if (ti[i].have_sa)
            sbuf_printf(b, "esproxy_tunnel_sa_age_seconds{tunnel=\"%s\"} %.3f\n", names[i],
                        (double)ti[i].sa_age_ms / 1000.0);
}

static void metrics_ipsec(struct sbuf *b, const struct status_source *src)
{
    const struct esp_sadb *db;
    const struct ike_stats *ike;

    if (src->tm == NULL)
        return;
    db = tunnel_mgr_sadb(src->tm);
    ike = tunnel_mgr_ike_stats(src->tm);
    family(b, "esproxy_esp_packets_total", "counter", "ESP packets that passed (in: authenticated; out: sealed).");
    sbuf_printf(b, "esproxy_esp_packets_total{direction=\"in\"} %llu\nesproxy_esp_packets_total{direction=\"out\"} %llu\n",
                (unsigned long long)db->ctr.pkts_in, (unsigned long long)db->ctr.pkts_out);
    family(b, "esproxy_esp_bytes_total", "counter", "Inner IP bytes of those packets.");
    sbuf_printf(b, "esproxy_esp_bytes_total{direction=\"in\"} %llu\nesproxy_esp_bytes_total{direction=\"out\"} %llu\n",
                (unsigned long long)db->ctr.bytes_in, (unsigned long long)db->ctr.bytes_out);
    family(b, "esproxy_esp_dropped_total", "counter", "Inbound ESP packets dropped, by reason.");
    sbuf_printf(b,
                "esproxy_esp_dropped_total{reason=\"icv\"} %llu\n"
                "esproxy_esp_dropped_total{reason=\"replay\"} %llu\n"
                "esproxy_esp_dropped_total{reason=\"unknown_spi\"} %llu\n"
                "esproxy_esp_dropped_total{reason=\"padding\"} %llu\n"
                "esproxy_esp_dropped_total{reason=\"malformed\"} %llu\n",
                (unsigned long long)db->ctr.icv_fail, (unsigned long long)db->ctr.replay,
                (unsigned long long)db->ctr.unknown_spi, (unsigned long long)db->ctr.pad_err,
                (unsigned long long)db->ctr.invalid);
    family(b, "esproxy_esp_sas", "gauge", "Installed ESP SAs.");
    sbuf_printf(b, "esproxy_esp_sas{direction=\"in\"} %zu\nesproxy_esp_sas{direction=\"out\"} %zu\n", db->n_in,
                db->n_out);
    family(b, "esproxy_ike_messages_total", "counter", "IKE messages received and sent.");
    sbuf_printf(b, "esproxy_ike_messages_total{direction=\"in\"} %llu\nesproxy_ike_messages_total{direction=\"out\"} %llu\n",
                (unsigned long long)ike->rx, (unsigned long long)ike->tx);
    family(b, "esproxy_ike_retransmits_total", "counter", "IKE requests sent again for want of an answer.");
    sbuf_printf(b, "esproxy_ike_retransmits_total %llu\n", (unsigned long long)ike->retransmits);
    family(b, "esproxy_ike_dropped_total", "counter", "IKE messages dropped (malformed, unexpected or not authentic).");
    sbuf_printf(b, "esproxy_ike_dropped_total %llu\n", (unsigned long long)ike->dropped);
    family(b, "esproxy_ike_auth_failures_total", "counter", "IKE_AUTH exchanges that failed authentication.");
    sbuf_printf(b, "esproxy_ike_auth_failures_total %llu\n", (unsigned long long)ike->auth_failures);
    family(b, "esproxy_ike_identity_collisions_total", "counter",
           "INITIAL_CONTACTs that deleted an IKE SA of the same identity from another address (front-ends sharing an identity).");
    sbuf_printf(b, "esproxy_ike_identity_collisions_total %llu\n", (unsigned long long)ike->identity_collisions);
    family(b, "esproxy_ike_invalid_spi_sent_total", "counter", "INVALID_IKE_SPI notifications sent for unknown SAs.");
    sbuf_printf(b, "esproxy_ike_invalid_spi_sent_total %llu\n", (unsigned long long)ike->invalid_spi_sent);
    family(b, "esproxy_ike_cookies_sent_total", "counter", "COOKIE challenges sent (RFC 7296 2.6).");
    sbuf_printf(b, "esproxy_ike_cookies_sent_total %llu\n", (unsigned long long)ike->cookies_sent);
    family(b, "esproxy_ike_half_open", "gauge", "Responder IKE SAs answered but not yet authenticated.");
    sbuf_printf(b, "esproxy_ike_half_open %llu\n", (unsigned long long)ike->half_open);
    family(b, "esproxy_ike_half_open_refused_total", "counter",
           "IKE_SA_INIT requests dropped at a half-open bound: the source address's or the total.");
    sbuf_printf(b, "esproxy_ike_half_open_refused_total{limit=\"source\"} %llu\n"
                   "esproxy_ike_half_open_refused_total{limit=\"total\"} %llu\n",
                (unsigned long long)ike->half_open_refused_src, (unsigned long long)ike->half_open_refused_total);
    family(b, "esproxy_ike_replies_limited_total", "counter",
           "Unauthenticated IKE replies not sent: the source address's budget or the total one was spent.");
    sbuf_printf(b, "esproxy_ike_replies_limited_total{limit=\"source\"} %llu\n"
                   "esproxy_ike_replies_limited_total{limit=\"total\"} %llu\n",
                (unsigned long long)ike->replies_limited_src, (unsigned long long)ike->replies_limited_total);
}

static void metrics_sessions(struct sbuf *b, const struct status_source *src)
{
    static const char *const protos[] = { "pop3", "imap", "http" };
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } fams[] = {
        { "esproxy_sessions_active", "gauge", "Client sessions open now.",
          offsetof(struct session_counts, active) },
        { "esproxy_sessions_accepted_total", "counter", "Client connections accepted.",
          offsetof(struct session_counts, accepted) },
        { "esproxy_sessions_spliced_total", "counter",
          "Sessions handed to plain relaying: POP3/IMAP logins the back-end accepted, HTTP upgrades.",
          offsetof(struct session_counts, spliced) },
        { "esproxy_sessions_waiting", "gauge", "Sessions held now, waiting for their tunnel.",
          offsetof(struct session_counts, held) },
        { "esproxy_sessions_held_total", "counter",
          "Times a session was held for a re-keying tunnel (new sessions and logins starting over).",
          offsetof(struct session_counts, held_total) },
        { "esproxy_sessions_held_failed_total", "counter",
          "Held sessions that failed (hold_ms passed or hold_max reached).",
          offsetof(struct session_counts, failed_held) },
        { "esproxy_sessions_tunnel_lost_total", "counter", "Sessions whose tunnel was lost under them.",
          offsetof(struct session_counts, tunnel_lost) },
    };
    struct session_counts c[3];

    if (src->fe == NULL)
        return;
    for (int p = 0; p < 3; p++)
        session_counts_get(p, &c[p]);
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        family(b, fams[f].name, fams[f].type, fams[f].help);
        for (int p = 0; p < 3; p++) {
            uint64_t v;

            memcpy(&v, (const char *)&c[p] + fams[f].off, sizeof(v));
            sbuf_printf(b, "%s{protocol=\"%s\"} %llu\n", fams[f].name, protos[p], (unsigned long long)v);
        }
    }
}

char *metrics_render(const struct status_source *src)
{
    struct sbuf b = { 0 };
    char v[128];

    family(&b, "esproxy_build_info", "gauge", "Version and role of this process (always 1).");
    sbuf_printf(&b, "esproxy_build_info{version=\"%s\",role=\"%s\"} 1\n", label(ESPROXY_VERSION, v, sizeof(v)),
                config_role_name(src->cfg->role));
    family(&b, "esproxy_uptime_seconds", "gauge", "Seconds since the process started.");
    sbuf_printf(&b, "esproxy_uptime_seconds %.3f\n", status_uptime());
    metrics_tunnels(&b, src);
    metrics_ipsec(&b, src);
    metrics_sessions(&b, src);
    return sbuf_take(&b);
}

/* ---- HTTP endpoint ---- */

struct metrics {
    uv_tcp_t server;
    const struct status_source *src;
    struct metrics_conn *conns;
    int n_conns;
    int stopping, server_closed;
};

struct metrics_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct metrics *m;
    struct metrics_conn *prev, *next;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    char *reply;
    char head[METRICS_HEAD_MAX];
    size_t used;
    int open_handles;
    int answered;
};

static void metrics_maybe_free(struct metrics *m);
static void metrics_conn_timeout(uv_timer_t *t);

static void metrics_conn_handle_closed(uv_handle_t *h)
{
    struct metrics_conn *c = h->data;
    struct metrics *m = c->m;

    if (--c->open_handles > 0)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    m->n_conns--;
    free(c->reply);
    free(c);
    metrics_maybe_free(m);
}

static void metrics_conn_close(struct metrics_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, metrics_conn_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, metrics_conn_handle_closed);
}

/* Lingering close: after the reply, shut our side down and read (and
 * discard) what the client still sends, until its FIN or a second has
 * passed. Closing with unread bytes would reset the connection, and a
 * reset can destroy the reply before the client has read it. */
static void metrics_conn_discard(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct metrics_conn *c = h->data;

    (void)suggested;
    *buf = uv_buf_init(c->head, sizeof(c->head));
}

static void metrics_conn_drain(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0)
        metrics_conn_close(s->data);
}

static void metrics_conn_linger_timeout(uv_timer_t *t)
{
    metrics_conn_close(t->data);
}

static void metrics_conn_shut(uv_shutdown_t *req, int status)
{
    struct metrics_conn *c = req->data;

    if (status != 0 || uv_is_closing((uv_handle_t *)&c->tcp) ||
        uv_read_start((uv_stream_t *)&c->tcp, metrics_conn_discard, metrics_conn_drain) != 0) {
        metrics_conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, metrics_conn_linger_timeout, METRICS_LINGER_MS, 0);
}

static void metrics_conn_written(uv_write_t *req, int status)
{
    struct metrics_conn *c = req->data;

    c->sreq.data = c;
    if (status != 0 || uv_is_closing((uv_handle_t *)&c->tcp) ||
        uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, metrics_conn_shut) != 0)
        metrics_conn_close(c);
}

static void metrics_conn_reply(struct metrics_conn *c, int code, const char *reason, const char *extra,
                               const char *body, int head_only)
{
    struct sbuf b = { 0 };
    size_t blen = body != NULL ? strlen(body) : 0;
    uv_buf_t buf;

    c->answered = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* a client that never reads must not keep its slot: the reply gets as
     * long as the request had (the linger re-arms the timer afterwards) */
    uv_timer_start(&c->timer, metrics_conn_timeout, METRICS_TIMEOUT_MS, 0);
    sbuf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n%s",
                code, reason, code == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
                blen, extra, head_only || body == NULL ? "" : body);
    c->reply = sbuf_take(&b);
    if (c->reply == NULL) {
        metrics_conn_close(c);
        return;
    }
    c->wreq.data = c;
    buf = uv_buf_init(c->reply, (unsigned)strlen(c->reply));
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, metrics_conn_written) != 0)
        metrics_conn_close(c);
}

/* The request line of a complete head: "METHOD SP TARGET SP HTTP/1.x". */
static void metrics_conn_request(struct metrics_conn *c)
{
    char *line = c->head, *eol = strchr(line, '\n'), *sp1, *sp2, *path_end, *body;
    int head_only;

    if (eol > line && eol[-1] == '\r')
        eol--;
    *eol = '\0';
    sp1 = strchr(line, ' ');
    sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 || sp1[1] != '/' ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1') || sp2[9] != '\0') {
        metrics_conn_reply(c, 400, "Bad Request", "", "bad request\n", 0);
        return;
    }
    *sp1 = *sp2 = '\0';
    head_only = strcmp(line, "HEAD") == 0;
    if (strcmp(line, "GET") != 0 && !head_only) {
        metrics_conn_reply(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "only GET and HEAD\n", 0);
        return;
    }
    path_end = sp1 + 1 + strcspn(sp1 + 1, "?");
    if ((size_t)(path_end - (sp1 + 1)) != strlen("/metrics") || strncmp(sp1 + 1, "/metrics", 8) != 0) {
        metrics_conn_reply(c, 404, "Not Found", "", "not found: try /metrics\n", head_only);
        return;
    }
    body = metrics_render(c->m->src);
    if (body == NULL) {
        metrics_conn_reply(c, 500, "Internal Server Error", "", "out of memory\n", head_only);
        return;
    }
    metrics_conn_reply(c, 200, "OK", "", body, head_only);
    free(body);
}

static void metrics_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct metrics_conn *c = h->data;

    (void)suggested;
    *buf = uv_buf_init(c->head + c->used, (unsigned)(sizeof(c->head) - 1 - c->used));
}

static void metrics_conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct metrics_conn *c = s->data;

    (void)buf;
    if (n == 0 || c->answered)
        return;
    if (n < 0) {
        metrics_conn_close(c);
        return;
    }
    c->used += (size_t)n;
    c->head[c->used] = '\0';
    if (memchr(c->head, '\0', c->used) != NULL) {
        metrics_conn_reply(c, 400, "Bad Request", "", "bad request\n", 0);
        return;
    }
    if (strstr(c->head, "\r\n\r\n") != NULL || strstr(c->head, "\n\n") != NULL)
        metrics_conn_request(c);
    else if (c->used >= sizeof(c->head) - 1)
        metrics_conn_reply(c, 431, "Request Header Fields Too Large", "", "request head too large\n", 0);
}

static void metrics_conn_timeout(uv_timer_t *t)
{
    struct metrics_conn *c = t->data;

    if (c->answered)
        metrics_conn_close(c);      /* the reply was never taken */
    else
        metrics_conn_reply(c, 408, "Request Timeout", "", "request timeout\n", 0);
}

/* Out of memory at accept: take the connection off the listen queue and
 * close it (libuv stops polling the listener while one waits unaccepted). */
static struct {
    uv_tcp_t tcp;
    int busy;
} metrics_rejecter;

static void metrics_rejected(uv_handle_t *h)
{
    (void)h;
    metrics_rejecter.busy = 0;
}

static void metrics_reject(uv_stream_t *server)
{
    if (metrics_rejecter.busy)
        return;
    metrics_rejecter.busy = 1;
    uv_tcp_init(server->loop, &metrics_rejecter.tcp);
    (void)uv_accept(server, (uv_stream_t *)&metrics_rejecter.tcp);
    uv_close((uv_handle_t *)&metrics_rejecter.tcp, metrics_rejected);
}

static void metrics_on_connection(uv_stream_t *server, int status)
{
    struct metrics *m = server->data;
    struct metrics_conn *c;

    if (status < 0 || m->stopping)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        metrics_reject(server);
        return;
    }
    c->m = m;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->next = m->conns;
    if (m->conns != NULL)
        m->conns->prev = c;
    m->conns = c;
    m->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || m->n_conns > METRICS_MAX_CONNS ||
        uv_read_start((uv_stream_t *)&c->tcp, metrics_conn_alloc, metrics_conn_read) != 0) {
        metrics_conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, metrics_conn_timeout, METRICS_TIMEOUT_MS, 0);
}

static void metrics_maybe_free(struct metrics *m)
{
    if (m->server_closed && m->n_conns == 0)
        free(m);
}

static void metrics_server_closed(uv_handle_t *h)
{
    struct metrics *m = h->data;

    m->server_closed = 1;
    metrics_maybe_free(m);
}

int metrics_start(uv_loop_t *loop, const struct sockaddr_in *addr, const struct status_source *src,
                  struct metrics **m_r)
{
    struct metrics *m = calloc(1, sizeof(*m));
    int rc;

    if (m == NULL)
        return UV_ENOMEM;
    m->src = src;
    uv_tcp_init(loop, &m->server);
    m->server.data = m;
    rc = uv_tcp_bind(&m->server, (const struct sockaddr *)addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->server, 64, metrics_on_connection);
    if (rc != 0) {
        m->stopping = 1;
        uv_close((uv_handle_t *)&m->server, metrics_server_closed);
        return rc;
    }
    *m_r = m;
    return 0;
}

void metrics_stop(struct metrics **mp)
{
    struct metrics *m = *mp;

    if (m == NULL)
        return;
    *mp = NULL;
    m->stopping = 1;
    for (struct metrics_conn *c = m->conns; c != NULL; c = c->next)
        metrics_conn_close(c);
    uv_close((uv_handle_t *)&m->server, metrics_server_closed);
}
