/*
 * Client channels over a libuv TCP handle: accepting, reading, buffered
 * writing, deferred work, shutdown and close; see chan.h. Server-side TLS
 * and STARTTLS are in chan_tls.c, the shared definitions in chan_internal.h.
 *
 * Memory: an idle plain channel is one struct chan (the uv_tcp_t and a
 * uv_timer_t embedded) and nothing else. Input goes through one shared
 * 64 KiB read buffer; a channel allocates a buffer only while it holds
 * bytes: output not yet handed to libuv (freed when the write completes),
 * input while the consumer stopped reading mid-chunk. A TLS channel adds a
 * struct chan_tls (mbedTLS context; mbedTLS allocates its ~16.7 KiB input
 * and output record buffers in mbedtls_ssl_setup).
 *
 * Deferred work: chan_* calls never call back. What they start (flushing
 * output, delivering input held while stopped, a STARTTLS switch, a close)
 * runs from a shared uv_check handle at the end of the loop iteration, with
 * a uv_idle handle keeping the poll from blocking meanwhile.
 */
#include "proxy/chan_internal.h"
#include "proxy/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

struct chan_write_req {
    uv_write_t req;
    struct chan *c;
    uint8_t *p;
    size_t len;
};

struct chan_pump {
    uv_check_t check;
    uv_idle_t idle;
    int open;
};

static size_t chans_live;
static struct chan_pump *chan_pump;
static struct chan *work_head, *work_tail;
uint8_t chan__rxbuf[64 * 1024];

static void chan_work(struct chan *c);
static void chan_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void chan_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* ---- deferred work ---- */

static void chan_pump_run(void)
{
    struct chan *last = work_tail, *c;

    while ((c = work_head) != NULL) {
        work_head = c->work_next;
        if (work_head != NULL)
            work_head->work_prev = NULL;
        else
            work_tail = NULL;
        c->work_next = NULL;
        c->queued = false;
        chan_work(c);
        if (c == last)
            break;
    }
    if (work_head == NULL && chan_pump != NULL) {
        uv_check_stop(&chan_pump->check);
        uv_idle_stop(&chan_pump->idle);
    }
}

static void chan_pump_check_cb(uv_check_t *h)
{
    (void)h;
    chan_pump_run();
}

static void chan_pump_idle_cb(uv_idle_t *h)
{
    (void)h;
    chan_pump_run();
}

static void chan_pump_closed(uv_handle_t *h)
{
    struct chan_pump *p = h->data;

    if (--p->open == 0)
        free(p);
}

static int chan_pump_get(uv_loop_t *loop)
{
    struct chan_pump *p;

    if (chan_pump != NULL)
        return chan_pump->check.loop == loop ? 0 : UV_EINVAL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return UV_ENOMEM;
    uv_check_init(loop, &p->check);
    uv_idle_init(loop, &p->idle);
    p->check.data = p->idle.data = p;
    p->open = 2;
    uv_unref((uv_handle_t *)&p->check);
    uv_unref((uv_handle_t *)&p->idle);
    chan_pump = p;
    return 0;
}

static void chan_pump_release(void)
{
    if (chan_pump == NULL || chans_live > 0)
        return;
    uv_close((uv_handle_t *)&chan_pump->check, chan_pump_closed);
    uv_close((uv_handle_t *)&chan_pump->idle, chan_pump_closed);
    chan_pump = NULL;
}

void chan__schedule(struct chan *c)
{
    if (c->queued || c->dead)
        return;
    c->queued = true;
    c->work_prev = work_tail;
    c->work_next = NULL;
    if (work_tail != NULL)
        work_tail->work_next = c;
    else
        work_head = c;
    work_tail = c;
    uv_check_start(&chan_pump->check, chan_pump_check_cb);
    uv_idle_start(&chan_pump->idle, chan_pump_idle_cb);
}

static void chan_unschedule(struct chan *c)
{
    if (!c->queued)
        return;
    if (c->work_prev != NULL)
        c->work_prev->work_next = c->work_next;
    else
        work_head = c->work_next;
    if (c->work_next != NULL)
        c->work_next->work_prev = c->work_prev;
    else
        work_tail = c->work_prev;
    c->queued = false;
}

/* ---- closing ---- */

static void chan_handle_closed(uv_handle_t *h)
{
    struct chan *c = h->data;

    if (--c->handles_open > 0)
        return;
    chan_unschedule(c);
    chan_buf_free(&c->out);
    chan_buf_free(&c->rx);
    chan__tls_free(c);
    chans_live--;
    if (c->cb != NULL && c->cb->closed != NULL)
        c->cb->closed(c, c->why != NULL ? c->why : "error");
    free(c);
    chan_pump_release();
}

/* Close both handles now; pending writes are cancelled. */
void chan__kill(struct chan *c, const char *why, bool reset)
{
    struct linger lg = { 1, 0 };
    uv_os_fd_t fd;

    if (c->dead)
        return;
    c->dead = true;
    if (c->why == NULL)
        c->why = why;
    chan_unschedule(c);
    if (reset && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    uv_close((uv_handle_t *)&c->tcp, chan_handle_closed);
    uv_close((uv_handle_t *)&c->timer, chan_handle_closed);
}

void chan__timer_cb(uv_timer_t *h)
{
    struct chan *c = h->data;

    if (chan_handshaking(c)) {
        chan__tls_fail(c, UV_ETIMEDOUT, "timeout");
        return;
    }
    chan__kill(c, "timeout", true);
}

static const char *chan_uv_why(ssize_t err)
{
    log_event(LOG_DEBUG, "chan_io_error", "err=%s", uv_err_name((int)err));
    return err == UV_ECONNRESET || err == UV_EPIPE || err == UV_ENOTCONN ?
           "peer_reset" : "error";
}

/* ---- output ---- */

static size_t chan_buffered(const struct chan *c)
{
    return c->out.len + c->inflight + (c->tls != NULL ? c->tls->held.len : 0);
}

static void chan_maybe_drained(struct chan *c)
{
    if (!c->want_drain || c->dead || c->close_req || chan_buffered(c) > c->low)
        return;
    c->want_drain = false;
    if (c->cb->drained != NULL)
        c->cb->drained(c);
}

static void chan_write_cb(uv_write_t *req, int status)
{
    struct chan_write_req *w = (struct chan_write_req *)req;
    struct chan *c = w->c;

    c->inflight -= w->len;
    free(w->p);
    free(w);
    if (status == UV_ECANCELED || c->dead)
        return;
    if (status < 0) {
        chan__kill(c, chan_uv_why(status), false);
        return;
    }
    chan_maybe_drained(c);
}

/* Hand the queued bytes to libuv as one write request. */
void chan__flush(struct chan *c)
{
    struct chan_write_req *w;
    uv_buf_t b;
    int rc;

    if (c->out.len == 0 || c->dead)
        return;
    /* Nothing queued: write now and skip the request (libuv would feed it
     * back through the loop and re-arm the fd for every write). With a
     * pending drained() the callback path stays the only one. */
    if (c->inflight == 0 && !c->want_drain) {
        b = uv_buf_init((char *)c->out.p + c->out.off, (unsigned int)c->out.len);
        rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (rc < 0 && rc != UV_EAGAIN) {
            chan__kill(c, chan_uv_why(rc), false);
            return;
        }
        if (rc > 0)
            chan_buf_consume(&c->out, (size_t)rc);
        if (c->out.len == 0)
            return;
    }
    w = malloc(sizeof(*w));
    if (w == NULL) {
        chan__kill(c, "error", false);
        return;
    }
    w->c = c;
    w->p = c->out.p;
    w->len = c->out.len;
    b = uv_buf_init((char *)c->out.p + c->out.off, (unsigned int)c->out.len);
    memset(&c->out, 0, sizeof(c->out));
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, chan_write_cb);
    if (rc < 0) {
        free(w->p);
        free(w);
        chan__kill(c, chan_uv_why(rc), false);
        return;
    }
    c->inflight += w->len;
}

static void chan_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct chan *c = req->data;

    free(req);
    if (status == UV_ECANCELED || c->dead)
        return;
    c->shut_done = true;
    /* Closing anyway: a peer already gone (ENOTCONN) changes nothing. */
    if (c->close_req)
        chan__kill(c, c->close_why, false);
    else if (status < 0)
        chan__kill(c, chan_uv_why(status), false);
}

/* ---- input ---- */

void chan__update_reading(struct chan *c)
{
    bool want = !c->dead && !c->tcp_eof && c->rx.len == 0 &&
                c->mode != CHAN_STARTTLS_PENDING &&
                !(c->tls != NULL && c->tls->broken) &&
                (c->mode == CHAN_TLS_HANDSHAKE ||
                 (!c->paused && !c->eof_delivered && !c->close_req));

    if (want == c->reading)
        return;
    c->reading = want;
    if (!want) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, chan_alloc_cb, chan_read_cb) != 0) {
        c->reading = false;
        chan__kill(c, "error", false);
    }
}

static void chan_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init((char *)chan__rxbuf, sizeof(chan__rxbuf));
}

void chan__deliver_eof(struct chan *c)
{
    if (c->eof_delivered)
        return;
    c->eof_delivered = true;
    chan__update_reading(c);
    if (c->cb->eof != NULL)
        c->cb->eof(c);
}

static void chan_read_eof(struct chan *c)
{
    c->tcp_eof = true;
    chan__update_reading(c);
    switch (c->mode) {
    case CHAN_PLAIN:
        chan__deliver_eof(c);
        break;
    case CHAN_STARTTLS_PENDING:
        break;          /* the switch sees tcp_eof and fails the handshake */
    case CHAN_TLS_HANDSHAKE:
    case CHAN_TLS:
        chan__tls_pump(c);
        break;
    }
}

static void chan_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct chan *c = s->data;

    if (c->dead || n == 0)
        return;
    if (n < 0) {
        if (n == UV_EOF)
            chan_read_eof(c);
        else
            chan__kill(c, chan_uv_why(n), false);
        return;
    }
    switch (c->mode) {
    case CHAN_PLAIN:
        if (c->paused || c->close_req) {
            if (!c->close_req && chan_buf_append(&c->rx, buf->base, (size_t)n) != 0)
                chan__kill(c, "error", false);
            chan__update_reading(c);
        } else {
            c->cb->data(c, (const uint8_t *)buf->base, (size_t)n);
        }
        break;
    case CHAN_STARTTLS_PENDING:
        break;          /* sent before our reply left: discarded */
    case CHAN_TLS_HANDSHAKE:
    case CHAN_TLS:
        c->tls->feed = (const uint8_t *)buf->base;
        c->tls->feed_len = (size_t)n;
        chan__tls_pump(c);
        break;
    }
    explicit_bzero(buf->base, (size_t)n);   /* the shared read buffer: a password stays no longer */
}


/* ---- deferred work ---- */

static void chan_issue_shutdown(struct chan *c)
{
    uv_shutdown_t *req = malloc(sizeof(*req));
    int rc;

    c->shut_issued = true;
    if (req == NULL) {
        chan__kill(c, "error", false);
        return;
    }
    req->data = c;
    rc = uv_shutdown(req, (uv_stream_t *)&c->tcp, chan_shutdown_cb);
    if (rc < 0) {
        free(req);
        chan__kill(c, chan_uv_why(rc), false);
    }
}

/* Flush output; carry out a requested shutdown or close once the
 * handshake (if any) has let the held plaintext out. */
static void chan_work_output(struct chan *c)
{
    if ((c->shut_req || c->close_req) && !chan_handshaking(c) && !c->shut_issued) {
        chan__tls_close_notify(c);
        chan__flush(c);
        if (!c->dead)
            chan_issue_shutdown(c);
        return;
    }
    chan__flush(c);
    if (!c->dead && c->close_req && c->shut_done)
        chan__kill(c, c->close_why, false);
}

static void chan_work(struct chan *c)
{
    if (c->dead)
        return;
    if (c->mode == CHAN_STARTTLS_PENDING) {
        chan__starttls_switch(c);
        if (c->dead)
            return;
    }
    if (c->pump_pending && !c->paused && !c->close_req) {
        c->pump_pending = false;
        if (c->mode == CHAN_PLAIN && c->rx.len > 0) {
            struct chan_buf b = c->rx;

            memset(&c->rx, 0, sizeof(c->rx));
            c->cb->data(c, b.p + b.off, b.len);
            proto_secure_free(b.p, b.cap);     /* held client input: may hold credentials */
        } else if (c->mode == CHAN_TLS) {
            chan__tls_pump(c);
        }
        if (c->dead)
            return;
    }
    chan_work_output(c);
    if (c->dead)
        return;
    chan_maybe_drained(c);
    if (!c->dead)
        chan__update_reading(c);
}

/* ---- public API ---- */

int chan_accept(struct chan **c_r, uv_stream_t *server,
                struct tls_server *implicit_tls,
                const struct chan_callbacks *cb, void *data)
{
    struct chan *c;
    int rc;

    *c_r = NULL;
    if (cb == NULL || cb->data == NULL || cb->closed == NULL)
        return UV_EINVAL;
    rc = chan_pump_get(server->loop);
    if (rc != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL || (rc = uv_tcp_init(server->loop, &c->tcp)) != 0) {
        free(c);
        chan_pump_release();
        return c == NULL ? UV_ENOMEM : rc;
    }
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    chans_live++;
    c->data = data;
    c->low = CHAN_DEFAULT_LOW_WATERMARK;
    c->high = CHAN_DEFAULT_HIGH_WATERMARK;
    rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc == 0)
        uv_tcp_nodelay(&c->tcp, 1);
    if (rc == 0 && implicit_tls != NULL)
        rc = chan__tls_begin(c, implicit_tls, CHAN_TLS_HANDSHAKE);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&c->tcp, chan_alloc_cb, chan_read_cb);
    if (rc != 0) {
        chan__kill(c, "error", false);   /* no callbacks: c->cb is NULL */
        return rc;
    }
    c->reading = true;
    c->cb = cb;
    *c_r = c;
    return 0;
}

void *chan_data(const struct chan *c)
{
    return c->data;
}

void chan_set_data(struct chan *c, void *data)
{
    c->data = data;
}

int chan_peer(const struct chan *c, struct sockaddr_in *addr)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);

    if (rc != 0)
        return rc;
    if (ss.ss_family != AF_INET)
        return UV_EAFNOSUPPORT;
    memcpy(addr, &ss, sizeof(*addr));
    return 0;
}

int chan_local(const struct chan *c, struct sockaddr_in *addr)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rc = uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len);

    if (rc != 0)
        return rc;
    if (ss.ss_family != AF_INET)
        return UV_EAFNOSUPPORT;
    memcpy(addr, &ss, sizeof(*addr));
    return 0;
}

int chan_write(struct chan *c, const void *buf, size_t len)
{
    int rc = 0;

    if (c->dead || c->close_req || c->shut_req || (c->tls != NULL && c->tls->broken))
        return UV_EPIPE;
    if (len > 0) {
        if (c->mode == CHAN_PLAIN) {
            rc = chan_buf_append(&c->out, buf, len);
        } else if (c->mode != CHAN_TLS) {
            rc = chan_buf_append(&c->tls->held, buf, len);
        } else if (chan__tls_encrypt(c, buf, len) != 0) {
            c->tls->broken = true;
            chan__kill(c, "error", false);
            return UV_EIO;
        }
        if (rc != 0)
            return rc;
        chan__schedule(c);
    }
    if (chan_buffered(c) > c->high) {
        c->want_drain = true;
        return 1;
    }
    return 0;
}

size_t chan_write_buffered(const struct chan *c)
{
    return chan_buffered(c);
}

size_t chan_write_unacked(const struct chan *c)
{
    size_t n = c->out.len + uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) +
               (c->tls != NULL ? c->tls->held.len : 0);
    uv_os_fd_t fd;
    int q = 0;

    if (!c->dead && uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &q) == 0 && q > 0)
        n += (size_t)q;
    return n;
}

void chan_set_watermarks(struct chan *c, size_t low, size_t high)
{
    c->high = high;
    c->low = low < high ? low : high;
    if (c->want_drain)
        chan__schedule(c);
}

void chan_read_start(struct chan *c)
{
    if (c->dead || !c->paused)
        return;
    c->paused = false;
    c->pump_pending = true;
    if (c->rx.len > 0 || c->mode == CHAN_TLS)
        chan__schedule(c);
    chan__update_reading(c);
}

void chan_read_stop(struct chan *c)
{
    if (c->dead)
        return;
    c->paused = true;
    chan__update_reading(c);
}

void chan_shutdown(struct chan *c)
{
    if (c->dead || c->shut_req || c->close_req)
        return;
    c->shut_req = true;
    chan__schedule(c);
}

void chan_close(struct chan *c)
{
    if (c->dead || c->close_req)
        return;
    c->close_req = true;
    c->close_why = "local_close";
    chan_buf_free(&c->rx);
    if (!chan_handshaking(c))
        uv_timer_start(&c->timer, chan__timer_cb, CHAN_CLOSE_LINGER_MS, 0);
    chan__update_reading(c);
    chan__schedule(c);
}

void chan_abort(struct chan *c)
{
    chan__kill(c, "local_close", true);
}

size_t chan_count(void)
{
    return chans_live;
}

size_t chan_read_buffered(const struct chan *c)
{
    return c->rx.len;
}
