/*
 * The backend role: IKE responder and ESP termination on a cluster node.
 * Inner TCP connections arriving on the protected ports are forwarded to
 * the local services of [forward] (dovecot, nginx), with backpressure both
 * ways (proxy/relay.c). A local service that refuses makes the inner
 * stream reset, which the front-end sees as a back-end error, not as a
 * tunnel failure.
 *
 * PROXY protocol: with `proxy_protocol = v2` the front-end starts each
 * inner stream with a PROXY v2 header carrying the real client; we check
 * it before the first byte reaches the service and pass it on. With `none`
 * the stream is relayed untouched from the moment the service answers
 * (mail servers speak first, so nothing may wait for client bytes); the
 * front-end's tunnel must then not send headers either.
 */
#include "proxy/backend.h"
#include "proxy/ike_config.h"
#include "proxy/log.h"
#include "proxy/pp2.h"
#include "proxy/relay.h"
#include "ipsec/ike_cert.h"
#include "ipsec/stream.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

struct backend {
    uv_loop_t *loop;
    const struct config *cfg;
    struct tunnel_mgr *tm;
    struct stream_listener *listeners[CFG_MAX_FORWARDS];
    int n_listeners;
    struct ike_cert_auth *certs[CFG_MAX_TUNNELS];
    void (*done)(void *arg);
    void *done_arg;
    uint64_t accepted, refused;
    struct bconn *conns;            /* every inner stream we hold, for backend_abort_all */
};

/* One inner stream on its way to a local service. */
struct bconn {
    struct backend *b;
    const struct cfg_forward *fwd;
    struct stream *s;
    uv_tcp_t *tcp;
    uv_connect_t req;
    uint8_t hdr[PP2_MAX_LEN];
    size_t hdr_len;
    bool tcp_up, hdr_done, dead;
    struct relay *relay;            /* once relaying */
    struct bconn *next, **prevp;
};

static void bconn_free(struct bconn *c)
{
    if (c->prevp != NULL) {
        *c->prevp = c->next;
        if (c->next != NULL)
            c->next->prevp = c->prevp;
    }
    free(c);
}

static void bconn_tcp_closed(uv_handle_t *h)
{
    free(h);
}

/* Before the relay takes over. A pending connect is cancelled by closing
 * the handle; its callback then frees c. */
static void bconn_stream_closed(struct stream *s, enum stream_close_reason reason)
{
    struct bconn *c = stream_get_data(s);

    (void)reason;
    c->s = NULL;
    if (c->tcp != NULL) {
        uv_close((uv_handle_t *)c->tcp, bconn_tcp_closed);
        c->tcp = NULL;
        if (!c->tcp_up) {
            c->dead = true;
            return;
        }
    }
    bconn_free(c);
}

static void bconn_relay_closed(void *arg, const char *why, const struct relay_stats *st)
{
    struct bconn *c = arg;

    log_event(LOG_DEBUG, "backend_conn_closed", "port=%u why=%s up=%llu down=%llu", c->fwd->port, why,
              (unsigned long long)st->tcp_to_stream, (unsigned long long)st->stream_to_tcp);
    bconn_free(c);
}

/* The service is connected and the PROXY header (if any) handled: relay. */
static void bconn_relay(struct bconn *c)
{
    struct relay *r;
    uv_tcp_t *tcp = c->tcp;
    struct stream *s = c->s;

    c->tcp = NULL;
    c->s = NULL;
    if (relay_start(&r, tcp, s, NULL, 0, bconn_relay_closed, c) != 0) {
        stream_abort(s);
        uv_close((uv_handle_t *)tcp, bconn_tcp_closed);
        bconn_free(c);
        return;
    }
    c->relay = r;
}

static void bconn_written(uv_write_t *req, int status)
{
    (void)status;   /* a failed write shows up as a read error in the relay */
    free(req);
}

/* proxy_protocol = v2: check the PROXY v2 header at the front of the
 * stream, then hand it and everything after it to the service and the
 * relay. All offered bytes are taken: returning less would pause the
 * stream under the relay. */
static size_t bconn_stream_data(struct stream *s, const struct iovec *iov, size_t n)
{
    struct bconn *c = stream_get_data(s);
    size_t total = 0, keep = 0, off, skip, before = c->hdr_len;
    uv_write_t *w;
    uint8_t *p;
    uv_buf_t buf;

    if (!c->tcp_up || c->hdr_done)
        return 0;       /* hold everything until the service is connected */
    for (size_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    /* look for a complete header in what we have so far */
    for (size_t i = 0; i < n && !c->hdr_done; i++) {
        for (size_t k = 0; k < iov[i].iov_len && !c->hdr_done; k++) {
            long need;

            if (c->hdr_len == sizeof(c->hdr)) {
                stream_abort(s);
                return total;
            }
            c->hdr[c->hdr_len++] = ((const uint8_t *)iov[i].iov_base)[k];
            need = pp2_header_len(c->hdr, c->hdr_len);
            if (need < 0) {
                log_event(LOG_WARN, "backend_bad_proxy_header", "port=%u", c->fwd->port);
                stream_abort(s);
                return total;
            }
            if (need > 0) {
                c->hdr_done = true;
                keep = c->hdr_len;
            }
        }
    }
    if (!c->hdr_done)
        return total;   /* all taken into hdr; wait for the rest */
    skip = c->hdr_len - before;     /* bytes of these iovs already copied into hdr */
    w = malloc(sizeof(*w) + keep + (total - skip));
    if (w == NULL) {
        stream_abort(s);
        return total;
    }
    p = (uint8_t *)(w + 1);
    memcpy(p, c->hdr, keep);
    off = keep;
    for (size_t i = 0, pos = 0; i < n; pos += iov[i].iov_len, i++) {
        size_t from = skip > pos ? skip - pos : 0;

        if (from < iov[i].iov_len) {
            memcpy(p + off, (const uint8_t *)iov[i].iov_base + from, iov[i].iov_len - from);
            off += iov[i].iov_len - from;
        }
    }
    buf = uv_buf_init((char *)p, (unsigned)off);
    if (off == 0 || uv_write(w, (uv_stream_t *)c->tcp, &buf, 1, bconn_written) != 0)
        free(w);
    bconn_relay(c);
    return total;
}

static const struct stream_callbacks bconn_stream_cb = {
    .data = bconn_stream_data,
    .closed = bconn_stream_closed,
};

static void bconn_connected(uv_connect_t *req, int status)
{
    struct bconn *c = req->data;

    if (c->dead) {      /* the stream went away meanwhile */
        bconn_free(c);
        return;
    }
    if (status < 0) {
        char q[64];

        c->b->refused++;
        log_event(LOG_WARN, "backend_service_unreachable", "port=%u target=%s error=%s", c->fwd->port,
                  log_quote(inet_ntoa(c->fwd->target.sin_addr), q, sizeof(q)), uv_strerror(status));
        uv_close((uv_handle_t *)c->tcp, bconn_tcp_closed);
        c->tcp = NULL;
        stream_abort(c->s);     /* RST: the front-end sees a back-end error */
        return;
    }
    c->tcp_up = true;
    if (c->b->cfg->proxy_protocol == CFG_PROXY_PROTOCOL_V2)
        stream_read_start(c->s);    /* the header first, in bconn_stream_data */
    else
        bconn_relay(c);
}

static void backend_on_accept(struct stream_listener *l, struct stream *s)
{
    struct backend *b = stream_listener_data(l);
    const struct cfg_forward *fwd = NULL;
    struct bconn *c;

    for (int i = 0; i < b->n_listeners; i++)
        if (b->listeners[i] == l)
            fwd = &b->cfg->forwards[i];
    c = fwd ? calloc(1, sizeof(*c)) : NULL;
    if (c != NULL)
        c->tcp = malloc(sizeof(*c->tcp));
    if (c == NULL || c->tcp == NULL) {
        if (c != NULL)
            free(c);
        stream_abort(s);
        return;
    }
    c->b = b;
    c->fwd = fwd;
    c->s = s;
    c->next = b->conns;
    c->prevp = &b->conns;
    if (b->conns != NULL)
        b->conns->prevp = &c->next;
    b->conns = c;
    c->req.data = c;
    b->accepted++;
    stream_set_callbacks(s, &bconn_stream_cb, c);
    uv_tcp_init(b->loop, c->tcp);
    c->tcp->data = c;
    uv_tcp_nodelay(c->tcp, 1);
    if (uv_tcp_connect(&c->req, c->tcp, (const struct sockaddr *)&fwd->target, bconn_connected) != 0) {
        uv_close((uv_handle_t *)c->tcp, bconn_tcp_closed);
        c->tcp = NULL;
        stream_abort(s);
    }
}

int backend_start(struct backend **b_r, uv_loop_t *loop, const struct config *cfg, struct tunnel_mgr *tm)
{
    struct backend *b = calloc(1, sizeof(*b));
    static const struct liveness_config no_liveness = { 0 };
    char err[512];
    int rc;

    if (b == NULL)
        return UV_ENOMEM;
    b->loop = loop;
    b->cfg = cfg;
    b->tm = tm;
    for (int i = 0; i < cfg->n_tunnels; i++) {
        struct ike_peer_config pc;

        if (ike_config_from_tunnel(&cfg->tunnels[i], &pc, err, sizeof(err)) != 0) {
            log_event(LOG_ERROR, "tunnel_config_failed", "tunnel=%s error=\"%s\"", cfg->tunnels[i].name, err);
            backend_free(&b);
            return UV_EINVAL;
        }
        b->certs[i] = pc.cert;
        rc = tunnel_add(tm, &pc, &no_liveness, NULL, NULL, NULL);
        explicit_bzero(&pc, sizeof(pc));
        if (rc != 0) {
            backend_free(&b);
            return rc;
        }
    }
    for (int i = 0; i < cfg->n_forwards; i++) {
        rc = stream_listen(tunnel_mgr_netstack(tm), cfg->forwards[i].port, backend_on_accept, b, &b->listeners[i]);
        if (rc != 0) {
            log_event(LOG_ERROR, "backend_listen_failed", "port=%u error=%s", cfg->forwards[i].port, uv_strerror(rc));
            backend_free(&b);
            return rc;
        }
        b->n_listeners++;
    }
    *b_r = b;
    return 0;
}

void backend_close_listeners(struct backend *b)
{
    for (int i = 0; i < b->n_listeners; i++)
        stream_listener_close(b->listeners[i]);
    b->n_listeners = 0;
}

/* Shutdown: end every inner stream and its service connection now, so the
 * loop can finish and nothing is left allocated. Closes complete through
 * the usual callbacks, which free each connection. */
void backend_abort_all(struct backend *b)
{
    struct bconn *c, *next;

    for (c = b->conns; c != NULL; c = next) {
        next = c->next;
        if (c->relay != NULL)
            relay_abort(c->relay);
        else if (c->s != NULL)
            stream_abort(c->s);
    }
}

void backend_free(struct backend **bp)
{
    struct backend *b = *bp;

    if (b == NULL)
        return;
    backend_close_listeners(b);
    for (int i = 0; i < CFG_MAX_TUNNELS; i++)
        ike_cert_free(&b->certs[i]);
    free(b);
    *bp = NULL;
}

void backend_counts(const struct backend *b, uint64_t *accepted, uint64_t *refused)
{
    *accepted = b->accepted;
    *refused = b->refused;
}
