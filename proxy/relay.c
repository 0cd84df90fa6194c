/* TCP <-> tunnel stream relay; see relay.h. */
#include "proxy/relay.h"
#include "proxy/log.h"

#include <stdlib.h>
#include <string.h>

struct relay {
    uv_tcp_t *tcp;
    struct stream *s;
    relay_closed_fn *closed;
    void *arg;
    const char *why;
    struct relay_stats st;
    size_t tcp_pending;         /* bytes in uv_write requests not yet done */
    bool tcp_reading, tcp_eof, tcp_shut, tcp_open;
    bool stream_eof, stream_paused, stream_open, stream_shut;
    bool finishing;
};

struct relay_write {
    uv_write_t req;
    struct relay *r;
    size_t len;
    char data[];
};

/* iovecs handed to uv_try_write at once; more go through a copy */
#define RELAY_TRY_IOV 16

static size_t relays_live;
/* One read buffer for every relay: stream_write copies what it is given
 * before returning, and libuv delivers one read at a time on this thread,
 * so idle relays hold no read memory. */
static char relay_rxbuf[64 * 1024];

size_t relay_count(void)
{
    return relays_live;
}

static void relay_maybe_free(struct relay *r)
{
    if (r->tcp_open || r->stream_open)
        return;
    relays_live--;
    if (r->closed != NULL)
        r->closed(r->arg, r->why ? r->why : "done", &r->st);
    free(r);
}

static void relay_tcp_closed(uv_handle_t *h)
{
    struct relay *r = h->data;

    free(h);
    r->tcp = NULL;
    r->tcp_open = false;
    relay_maybe_free(r);
}

static void relay_close_tcp(struct relay *r, bool reset)
{
    if (r->tcp == NULL || uv_is_closing((uv_handle_t *)r->tcp))
        return;
    if (reset && uv_tcp_close_reset(r->tcp, relay_tcp_closed) == 0)
        return;
    uv_close((uv_handle_t *)r->tcp, relay_tcp_closed);
}

/* Close everything now: used on errors. */
static void relay_fail(struct relay *r, const char *why, bool reset_tcp)
{
    if (r->why == NULL)
        r->why = why;
    if (r->s != NULL && !r->finishing) {
        r->finishing = true;
        stream_abort(r->s);
    }
    relay_close_tcp(r, reset_tcp);
}

/* Both directions have ended and everything was written: close cleanly. */
static void relay_check_done(struct relay *r)
{
    if (!r->tcp_eof || !r->stream_eof || r->tcp_pending > 0 || r->finishing)
        return;
    r->finishing = true;
    if (r->s != NULL)
        stream_close(r->s);
    relay_close_tcp(r, false);
}

/* ---- TCP -> stream ---- */

static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(relay_rxbuf, sizeof(relay_rxbuf));
}

static void relay_tcp_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    struct relay *r = h->data;
    int rc;

    if (n == 0)
        return;
    if (n == UV_EOF) {
        r->tcp_eof = true;
        r->tcp_reading = false;
        uv_read_stop(h);
        if (r->s != NULL && !r->stream_shut) {
            r->stream_shut = true;
            (void)stream_shutdown(r->s);
        }
        relay_check_done(r);
        return;
    }
    if (n < 0) {
        relay_fail(r, "tcp_error", true);
        return;
    }
    if (r->s == NULL)
        return;
    rc = stream_write(r->s, buf->base, (size_t)n);
    r->st.tcp_to_stream += (uint64_t)n;
    if (rc < 0) {
        relay_fail(r, "stream_error", true);
    } else if (rc == 1) {
        r->tcp_reading = false;
        uv_read_stop(h);    /* resume at drained */
    }
}

static void relay_stream_drained(struct stream *s)
{
    struct relay *r = stream_get_data(s);

    if (r->tcp != NULL && !r->tcp_eof && !r->tcp_reading && !r->finishing) {
        r->tcp_reading = true;
        uv_read_start((uv_stream_t *)r->tcp, relay_alloc, relay_tcp_read);
    }
}

/* ---- stream -> TCP ---- */

static void relay_tcp_written(uv_write_t *req, int status)
{
    struct relay_write *w = (struct relay_write *)req;
    struct relay *r = w->r;

    r->tcp_pending -= w->len;
    free(w);
    if (status < 0) {
        relay_fail(r, "tcp_error", true);
        return;
    }
    if (r->stream_paused && r->tcp_pending <= RELAY_LOW_WATER && r->s != NULL) {
        r->stream_paused = false;
        stream_read_start(r->s);
    }
    relay_check_done(r);
}

static void relay_tcp_shut(uv_shutdown_t *req, int status)
{
    struct relay *r = req->data;

    free(req);
    if (status < 0 && status != UV_ECANCELED)
        relay_fail(r, "tcp_error", true);
    else
        relay_check_done(r);
}

static size_t relay_stream_data(struct stream *s, const struct iovec *iov, size_t n)
{
    struct relay *r = stream_get_data(s);
    struct relay_write *w;
    size_t total = 0, off = 0, skip = 0;
    uv_buf_t buf;

    if (n == 0) {   /* FIN from the tunnel side */
        r->stream_eof = true;
        if (r->tcp != NULL && !r->tcp_shut) {
            uv_shutdown_t *req = malloc(sizeof(*req));

            r->tcp_shut = true;
            if (req != NULL) {
                req->data = r;
                if (uv_shutdown(req, (uv_stream_t *)r->tcp, relay_tcp_shut) != 0)
                    free(req);
            }
        }
        relay_check_done(r);
        return 0;
    }
    if (r->tcp == NULL || r->tcp_pending > RELAY_HIGH_WATER) {
        r->stream_paused = true;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    /* Nothing queued: write now without a request (see chan_flush); only
     * what the kernel did not take is copied and queued. */
    if (r->tcp_pending == 0 && n <= RELAY_TRY_IOV) {
        uv_buf_t bufs[RELAY_TRY_IOV];
        int rc;

        for (size_t i = 0; i < n; i++)
            bufs[i] = uv_buf_init(iov[i].iov_base, (unsigned)iov[i].iov_len);
        rc = uv_try_write((uv_stream_t *)r->tcp, bufs, (unsigned)n);
        if (rc < 0 && rc != UV_EAGAIN) {
            relay_fail(r, "tcp_error", true);
            return total;
        }
        if (rc > 0) {
            r->st.stream_to_tcp += (size_t)rc;
            skip = (size_t)rc;
        }
        if (skip == total)
            return total;
    }
    w = malloc(sizeof(*w) + total - skip);
    if (w == NULL) {
        /* part may be written already and nothing would resume a pause
         * with no write pending: give up on this connection */
        relay_fail(r, "no_memory", true);
        return total;
    }
    for (size_t i = 0; i < n; i++) {
        size_t from = skip > iov[i].iov_len ? iov[i].iov_len : skip;

        memcpy(w->data + off, (const uint8_t *)iov[i].iov_base + from, iov[i].iov_len - from);
        off += iov[i].iov_len - from;
        skip -= from;
    }
    w->r = r;
    w->len = off;
    buf = uv_buf_init(w->data, (unsigned)off);
    if (uv_write(&w->req, (uv_stream_t *)r->tcp, &buf, 1, relay_tcp_written) != 0) {
        free(w);
        relay_fail(r, "tcp_error", true);
        return total;
    }
    r->tcp_pending += off;
    r->st.stream_to_tcp += off;
    return total;
}

static void relay_stream_closed(struct stream *s, enum stream_close_reason reason)
{
    struct relay *r = stream_get_data(s);

    r->s = NULL;
    r->stream_open = false;
    if (r->why == NULL && reason != STREAM_LOCAL_CLOSE)
        r->why = reason == STREAM_PEER_RESET ? "stream_reset"
                 : reason == STREAM_TUNNEL_LOST ? "tunnel_lost" : "timeout";
    if (reason == STREAM_LOCAL_CLOSE && r->finishing)
        relay_close_tcp(r, false);
    else
        relay_close_tcp(r, reason == STREAM_PEER_RESET);
    relay_maybe_free(r);
}

static const struct stream_callbacks relay_stream_cb = {
    .connected = NULL,
    .data = relay_stream_data,
    .drained = relay_stream_drained,
    .closed = relay_stream_closed,
};

int relay_start(struct relay **r_r, uv_tcp_t *tcp, struct stream *s, const void *prefix, size_t prefix_len,
                relay_closed_fn *closed, void *arg)
{
    struct relay *r = calloc(1, sizeof(*r));
    int rc;

    if (r == NULL)
        return UV_ENOMEM;
    r->tcp = tcp;
    r->s = s;
    r->closed = closed;
    r->arg = arg;
    r->tcp_open = r->stream_open = true;
    tcp->data = r;
    relays_live++;
    stream_set_callbacks(s, &relay_stream_cb, r);
    if (prefix_len > 0 && stream_write(s, prefix, prefix_len) < 0) {
        relay_fail(r, "stream_error", true);
        *r_r = NULL;
        return 0;
    }
    stream_read_start(s);
    rc = uv_read_start((uv_stream_t *)tcp, relay_alloc, relay_tcp_read);
    r->tcp_reading = rc == 0;
    if (rc != 0)
        relay_fail(r, "tcp_error", true);
    *r_r = r;
    return 0;
}

void relay_abort(struct relay *r)
{
    relay_fail(r, "local_close", true);
}
