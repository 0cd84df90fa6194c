/*
 * Tunnel streams over lwIP pcbs (see stream.h for the contract).
 *
 * lwIP reports into stream__on_* while it processes a packet or a timer;
 * those handlers only record what happened (queue pbufs, set flags) and
 * put the stream on the netstack's pending list. User callbacks run later
 * from stream__dispatch_pending, outside lwIP, so a callback may write,
 * close or abort without re-entering lwIP from one of its own callbacks.
 * The one exception is pushing queued bytes into lwIP's send buffer when
 * lwIP reports acknowledged bytes, which lwIP allows and which keeps the
 * pipe full within one receive batch.
 *
 * Life of a stream: open/accept -> (connected) -> ... -> finished (reason
 * recorded, pcb gone or handed to lwIP, unlinked from its tunnel) ->
 * dispatch closes the paired timer -> closed(reason) -> freed.
 */
#include "netstack_priv.h"

#include <stdlib.h>
#include <string.h>

enum {
    F_CONNECTED = 1u << 0,
    F_EV_CONNECTED = 1u << 1,
    F_READING = 1u << 2,
    F_EOF_RCVD = 1u << 3,
    F_EOF_DONE = 1u << 4,
    F_SHUT_WANTED = 1u << 5,
    F_SHUT_SENT = 1u << 6,
    F_CLOSE_WANTED = 1u << 7,
    F_DRAIN_WANTED = 1u << 8,
    F_EV_DRAINED = 1u << 9,
    F_QUEUED = 1u << 10,
    F_FINISHED = 1u << 11,
    F_CLOSING = 1u << 12,
};

struct stream_txchunk {
    struct stream_txchunk *next;
    size_t len, off;
    uint8_t data[];
};

struct stream {
    struct netstack *ns;
    struct netstack_tunnel *tun;
    struct stream *tprev, *tnext;   /* tun->streams */
    struct stream *pnext;           /* ns->pending */
    void *pcb;
    const struct stream_callbacks *cb;
    void *data;
    struct stream_listener *listener;
    uv_timer_t timer;               /* connect timeout, close linger */
    struct nsl_rxq rxq;
    struct stream_txchunk *txq, *txq_tail;
    size_t txq_bytes;
    size_t low, high;
    uint32_t flags;
    enum stream_close_reason reason;
};

static void stream_queue(struct stream *s)
{
    struct netstack *ns = s->ns;

    if (s->flags & (F_QUEUED | F_CLOSING))
        return;
    s->flags |= F_QUEUED;
    s->pnext = NULL;
    *ns->pending_tail = s;
    ns->pending_tail = &s->pnext;
}

static void stream_unlink(struct stream *s)
{
    struct netstack_tunnel *t = s->tun;

    if (t == NULL)
        return;
    if (s->tprev != NULL)
        s->tprev->tnext = s->tnext;
    else
        t->streams = s->tnext;
    if (s->tnext != NULL)
        s->tnext->tprev = s->tprev;
    t->nstreams--;
    s->ns->st.streams_open--;
    s->tun = NULL;
}

static struct stream *stream_new(struct netstack_tunnel *t)
{
    struct stream *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->ns = t->ns;
    s->tun = t;
    s->tnext = t->streams;
    if (t->streams != NULL)
        t->streams->tprev = s;
    t->streams = s;
    t->nstreams++;
    t->ns->st.streams_open++;
    s->low = STREAM_DEFAULT_LOW_WATER;
    s->high = STREAM_DEFAULT_HIGH_WATER;
    return s;
}

/* Record the end; the pcb must already be gone or handed to lwIP. */
static void stream_finish(struct stream *s, enum stream_close_reason reason)
{
    if (s->flags & F_FINISHED)
        return;
    s->flags |= F_FINISHED;
    s->reason = reason;
    s->pcb = NULL;
    uv_timer_stop(&s->timer);
    stream_unlink(s);
    stream_queue(s);
}

static void stream_on_timer_closed(uv_handle_t *h)
{
    struct stream *s = h->data;

    if (s->cb != NULL && s->cb->closed != NULL)
        s->cb->closed(s, s->reason);
    free(s);
}

static void stream_finish_now(struct stream *s)
{
    struct stream_txchunk *c;

    s->flags |= F_CLOSING;
    nsl_rxq_free(&s->rxq);
    while ((c = s->txq) != NULL) {
        s->txq = c->next;
        free(c);
    }
    if (s->listener != NULL) {
        stream__listener_unref(s->listener);
        s->listener = NULL;
    }
    uv_close((uv_handle_t *)&s->timer, stream_on_timer_closed);
}

/* ---- sending ---- */

size_t stream_write_buffered(const struct stream *s)
{
    return s->txq_bytes + (s->pcb != NULL ? nsl_tcp_sndbuf_used(s->pcb) : 0);
}

static size_t stream_txq_push(struct stream *s)
{
    size_t total = 0;

    while (s->txq != NULL && s->pcb != NULL) {
        struct stream_txchunk *c = s->txq;
        size_t n = nsl_tcp_write(s->pcb, c->data + c->off, c->len - c->off);

        c->off += n;
        s->txq_bytes -= n;
        total += n;
        if (c->off < c->len)
            break;
        s->txq = c->next;
        if (s->txq == NULL)
            s->txq_tail = NULL;
        free(c);
    }
    return total;
}

static int stream_txq_append(struct stream *s, const uint8_t *buf, size_t len)
{
    struct stream_txchunk *c = malloc(sizeof(*c) + len);

    if (c == NULL)
        return UV_ENOMEM;
    memcpy(c->data, buf, len);
    c->len = len;
    c->off = 0;
    c->next = NULL;
    if (s->txq_tail != NULL)
        s->txq_tail->next = c;
    else
        s->txq = c;
    s->txq_tail = c;
    s->txq_bytes += len;
    return 0;
}

static void stream_check_drained(struct stream *s)
{
    if ((s->flags & F_DRAIN_WANTED) && stream_write_buffered(s) <= s->low) {
        s->flags &= ~F_DRAIN_WANTED;
        s->flags |= F_EV_DRAINED;
        stream_queue(s);
    }
}

/* Move the stream forward outside lwIP callbacks: flush queued bytes,
 * then the FIN or the close the user asked for. */
static void stream_progress(struct stream *s)
{
    if (s->pcb == NULL || !(s->flags & F_CONNECTED))
        return;
    if (s->txq != NULL && stream_txq_push(s) > 0)
        nsl_tcp_output(s->pcb);
    if (s->txq == NULL && (s->flags & F_CLOSE_WANTED)) {
        nsl_tcp_close(s->pcb);
        stream_finish(s, STREAM_LOCAL_CLOSE);
        return;
    }
    if (s->txq == NULL && (s->flags & (F_SHUT_WANTED | F_SHUT_SENT)) == F_SHUT_WANTED &&
        nsl_tcp_shutdown_tx(s->pcb) == 0) {
        s->flags |= F_SHUT_SENT;
        nsl_tcp_output(s->pcb);
        if (s->flags & F_EOF_RCVD) {
            /* Both FINs: only LAST_ACK/TIME_WAIT remain, lwIP's business. */
            nsl_tcp_detach(s->pcb);
            s->pcb = NULL;
            return;
        }
    }
    stream_check_drained(s);
}

int stream_write(struct stream *s, const void *buf, size_t len)
{
    size_t n = 0;

    if (s->flags & (F_FINISHED | F_CLOSE_WANTED | F_SHUT_WANTED))
        return UV_EPIPE;
    if ((s->flags & F_CONNECTED) && s->pcb != NULL && s->txq == NULL && len > 0) {
        /* Straight into lwIP's send buffer: one copy. */
        n = nsl_tcp_write(s->pcb, buf, len);
        if (n > 0)
            nsl_tcp_output(s->pcb);
    }
    if (n < len && stream_txq_append(s, (const uint8_t *)buf + n, len - n) < 0)
        return UV_ENOMEM;
    if (stream_write_buffered(s) > s->high) {
        s->flags |= F_DRAIN_WANTED;
        return 1;
    }
    return 0;
}

void stream_set_watermarks(struct stream *s, size_t low, size_t high)
{
    s->low = low < high ? low : high;
    s->high = high;
}

/* ---- receiving ---- */

size_t stream_read_buffered(const struct stream *s)
{
    return s->rxq.bytes;
}

static bool stream_gone(const struct stream *s)
{
    return (s->flags & (F_FINISHED | F_CLOSE_WANTED)) != 0;
}

static void stream_deliver(struct stream *s)
{
    struct iovec iov[STREAM_MAX_IOV];

    while ((s->flags & F_READING) && s->rxq.bytes > 0 && !stream_gone(s)) {
        size_t n = nsl_rxq_peek(&s->rxq, iov, STREAM_MAX_IOV), total = 0, taken, i;

        for (i = 0; i < n; i++)
            total += iov[i].iov_len;
        taken = s->cb != NULL && s->cb->data != NULL ? s->cb->data(s, iov, n) : 0;
        if (stream_gone(s))
            return;
        if (taken > total)
            taken = total;
        nsl_rxq_consume(&s->rxq, taken);
        /* The window reopens only for what the consumer took. */
        if (s->pcb != NULL && taken > 0)
            nsl_tcp_recved(s->pcb, taken);
        if (taken < total)
            s->flags &= ~F_READING;
    }
    if ((s->flags & (F_READING | F_EOF_RCVD | F_EOF_DONE)) == (F_READING | F_EOF_RCVD) &&
        s->rxq.bytes == 0 && !stream_gone(s)) {
        s->flags |= F_EOF_DONE;
        if (s->cb != NULL && s->cb->data != NULL)
            s->cb->data(s, NULL, 0);
    }
}

void stream_read_start(struct stream *s)
{
    if (stream_gone(s) || (s->flags & F_READING))
        return;
    s->flags |= F_READING;
    if (s->rxq.bytes > 0 || (s->flags & F_EOF_RCVD))
        stream_queue(s);
}

void stream_read_stop(struct stream *s)
{
    s->flags &= ~F_READING;
}

/* ---- dispatch ---- */

static void stream_report_connected(struct stream *s)
{
    struct stream_listener *l = s->listener;

    s->flags &= ~F_EV_CONNECTED;
    if (l == NULL) {
        if (s->cb != NULL && s->cb->connected != NULL)
            s->cb->connected(s);
        return;
    }
    s->listener = NULL;
    if (l->closed)
        stream_abort(s);
    else
        l->on_accept(l, s);
    stream__listener_unref(l);
}

static void stream_dispatch(struct stream *s)
{
    if (!(s->flags & F_FINISHED)) {
        if (s->flags & F_EV_CONNECTED)
            stream_report_connected(s);
        if (!stream_gone(s))
            stream_progress(s);
        if (!stream_gone(s))
            stream_deliver(s);
        if ((s->flags & F_EV_DRAINED) && !stream_gone(s)) {
            s->flags &= ~F_EV_DRAINED;
            if (s->cb != NULL && s->cb->drained != NULL)
                s->cb->drained(s);
        }
        if ((s->flags & F_CLOSE_WANTED) && !(s->flags & F_FINISHED))
            stream_progress(s);
    }
    /* Re-queued by its own callbacks: close on that later pass, so the
     * pending list never holds a freed stream. */
    if ((s->flags & (F_FINISHED | F_CLOSING | F_QUEUED)) == F_FINISHED)
        stream_finish_now(s);
}

void stream__dispatch_pending(struct netstack *ns)
{
    /* Only the streams queued so far: work a callback queues waits for
     * the next pass, so a busy stream cannot starve the loop. */
    struct stream *s = ns->pending;

    ns->pending = NULL;
    ns->pending_tail = &ns->pending;
    while (s != NULL) {
        struct stream *next = s->pnext;

        s->flags &= ~F_QUEUED;
        stream_dispatch(s);
        s = next;
    }
}

size_t stream__lose_tunnel(struct netstack_tunnel *t, enum stream_close_reason r)
{
    size_t n = 0;

    while (t->streams != NULL) {
        struct stream *s = t->streams;

        if (s->pcb != NULL)
            nsl_tcp_abort(s->pcb, r == STREAM_LOCAL_CLOSE);
        s->pcb = NULL;
        stream_finish(s, r);   /* unlinks s from t->streams */
        n++;
    }
    return n;
}

/* ---- lwIP upcalls (see netstack_lwip.h) ---- */

void stream__on_connected(void *arg)
{
    struct stream *s = arg;

    s->flags |= F_CONNECTED | F_EV_CONNECTED | F_READING;
    uv_timer_stop(&s->timer);   /* the connect timeout is over */
    nsl_tcp_clamp_mss(s->pcb, s->tun->mss);
    stream_txq_push(s);   /* bytes written while connecting */
    stream_queue(s);
}

int stream__on_recv(void *arg, void *pbuf, size_t len)
{
    struct stream *s = arg;

    if (pbuf == NULL) {
        s->flags |= F_EOF_RCVD;
        if (s->flags & F_SHUT_SENT) {
            nsl_tcp_detach(s->pcb);
            s->pcb = NULL;
        }
        stream_queue(s);
        return 0;
    }
    if (nsl_rxq_push(&s->rxq, pbuf) < 0)
        return NSL_E_MEM;     /* lwIP keeps the pbuf and offers it again */
    if (s->flags & F_CLOSE_WANTED) {
        /* Closing: nobody will read; keep the peer moving until our FIN. */
        nsl_rxq_consume(&s->rxq, len);
        nsl_tcp_recved(s->pcb, len);
        return 0;
    }
    if (s->flags & F_READING)
        stream_queue(s);
    return 0;
}

void stream__on_sent(void *arg, size_t len)
{
    struct stream *s = arg;

    (void)len;
    stream_txq_push(s);
    if (s->flags & (F_DRAIN_WANTED | F_CLOSE_WANTED | F_SHUT_WANTED))
        stream_queue(s);
}

void stream__on_error(void *arg, enum nsl_conn_err err)
{
    struct stream *s = arg;

    s->pcb = NULL;    /* lwIP has freed it */
    if (err == NSL_CONN_CLOSED && !(s->flags & F_CLOSE_WANTED)) {
        s->flags |= F_EOF_RCVD;
        stream_queue(s);
        return;
    }
    stream_finish(s, err == NSL_CONN_RESET ? STREAM_PEER_RESET :
                     err == NSL_CONN_CLOSED ? STREAM_LOCAL_CLOSE : STREAM_TIMEOUT);
}

static void stream_on_timer(uv_timer_t *h)
{
    struct stream *s = h->data;

    /* Connect timeout, or a close that could not flush in time. */
    if (s->pcb != NULL)
        nsl_tcp_abort(s->pcb, (s->flags & F_CONNECTED) != 0);
    stream_finish(s, STREAM_TIMEOUT);
}

void *stream__on_accept(void *larg, void *pcb)
{
    struct stream_listener *l = larg;
    struct netstack_tunnel *t = netstack_tunnel_find(l->ns, nsl_tcp_remote_addr(pcb));
    struct stream *s;

    if (t == NULL || l->closed || (s = stream_new(t)) == NULL)
        return NULL;
    uv_timer_init(s->ns->loop, &s->timer);
    s->timer.data = s;
    s->pcb = pcb;
    nsl_tcp_clamp_mss(pcb, t->mss);
    s->flags |= F_CONNECTED | F_EV_CONNECTED;
    s->listener = l;
    l->refs++;
    stream_queue(s);
    return s;
}

/* ---- API ---- */

int stream_open(struct netstack *ns, uint32_t peer_addr, uint16_t port,
                uint64_t connect_timeout_ms, const struct stream_callbacks *cb,
                void *data, struct stream **s_r)
{
    struct netstack_tunnel *t = netstack_tunnel_find(ns, peer_addr);
    struct stream *s;
    int rc;

    if (t == NULL || ns->closing)
        return UV_ENETUNREACH;
    s = stream_new(t);
    if (s == NULL)
        return UV_ENOMEM;
    netstack__enter(t);
    rc = nsl_tcp_connect(peer_addr, port, s, &s->pcb);
    netstack__leave(ns);
    if (rc < 0) {
        stream_unlink(s);
        free(s);
        return rc == NSL_E_MEM ? UV_ENOMEM : rc == NSL_E_NOPORT ? UV_EADDRNOTAVAIL :
               UV_ENETUNREACH;
    }
    uv_timer_init(ns->loop, &s->timer);
    s->timer.data = s;
    s->cb = cb;
    s->data = data;
    if (connect_timeout_ms > 0)
        uv_timer_start(&s->timer, stream_on_timer, connect_timeout_ms, 0);
    *s_r = s;
    return 0;
}

void stream_set_callbacks(struct stream *s, const struct stream_callbacks *cb, void *data)
{
    s->cb = cb;
    s->data = data;
}

void *stream_get_data(const struct stream *s)
{
    return s->data;
}

void stream_set_data(struct stream *s, void *data)
{
    s->data = data;
}

int stream_shutdown(struct stream *s)
{
    if (stream_gone(s))
        return UV_ENOTCONN;
    s->flags |= F_SHUT_WANTED;
    stream_progress(s);
    return 0;
}

void stream_close(struct stream *s)
{
    if (stream_gone(s))
        return;
    s->flags |= F_CLOSE_WANTED;
    s->flags &= ~F_READING;
    if (s->pcb == NULL || !(s->flags & F_CONNECTED)) {
        if (s->pcb != NULL)
            nsl_tcp_abort(s->pcb, 0);
        stream_finish(s, STREAM_LOCAL_CLOSE);
        return;
    }
    if (s->txq != NULL)
        uv_timer_start(&s->timer, stream_on_timer, STREAM_CLOSE_LINGER_MS, 0);
    stream_progress(s);
}

void stream_abort(struct stream *s)
{
    if (s->flags & F_FINISHED)
        return;
    s->flags |= F_CLOSE_WANTED;
    if (s->pcb != NULL)
        nsl_tcp_abort(s->pcb, 1);
    stream_finish(s, STREAM_LOCAL_CLOSE);
}

struct netstack_tunnel *stream_tunnel(const struct stream *s)
{
    return s->tun;
}

uint16_t stream_local_port(const struct stream *s)
{
    return s->pcb != NULL ? nsl_tcp_local_port(s->pcb) : 0;
}

uint16_t stream_mss(const struct stream *s)
{
    return s->pcb != NULL ? nsl_tcp_mss(s->pcb) : 0;
}

const char *stream_reason_str(enum stream_close_reason r)
{
    switch (r) {
    case STREAM_LOCAL_CLOSE: return "local_close";
    case STREAM_PEER_RESET: return "peer_reset";
    case STREAM_TIMEOUT: return "timeout";
    case STREAM_TUNNEL_LOST: return "tunnel_lost";
    }
    return "unknown";
}
