/*
 * Internals of client channels shared by chan.c (TCP, buffering, deferred
 * work, closing) and chan_tls.c (server-side TLS and STARTTLS): the channel
 * object, its small buffers, and the calls that cross between the two.
 */
#ifndef ESPROXY_CHAN_INTERNAL_H
#define ESPROXY_CHAN_INTERNAL_H

#include "proxy/chan.h"
#include "protocols/proto.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ssl.h>

enum chan_mode {
    CHAN_PLAIN,
    CHAN_STARTTLS_PENDING,      /* chan_start_tls called, reply not flushed yet */
    CHAN_TLS_HANDSHAKE,
    CHAN_TLS,
};

/* A heap buffer that exists only while it holds bytes: [off, off+len). */
struct chan_buf {
    uint8_t *p;
    size_t off, len, cap;
};

struct chan_tls {
    mbedtls_ssl_context ssl;
    const uint8_t *feed;        /* the current libuv read, during a pump */
    size_t feed_len;
    struct chan_buf held;       /* plaintext written before the handshake ended */
    bool resumed, broken, close_notify_sent;
};

struct chan {
    uv_tcp_t tcp;
    uv_timer_t timer;           /* handshake timeout, close linger */
    const struct chan_callbacks *cb;
    void *data;
    struct tls_server *tls_srv;
    struct chan_tls *tls;
    struct chan_buf out;        /* bytes for the wire not yet given to libuv */
    struct chan_buf rx;         /* input held while stopped (ciphertext with TLS) */
    struct chan *work_prev, *work_next;
    const char *why;            /* closed() reason, first one wins */
    const char *close_why;      /* reason once a graceful close completes */
    size_t inflight;            /* bytes in libuv write requests */
    size_t low, high;
    uint8_t handles_open;
    enum chan_mode mode;
    bool queued, pump_pending, reading, paused, tcp_eof, eof_delivered, want_drain;
    bool drain_on_starttls, shut_req, shut_issued, shut_done, close_req, dead;
};

/* Shared by every channel: libuv delivers one read at a time on this
 * thread and a read is consumed (or copied) before the callback returns. */
extern uint8_t chan__rxbuf[64 * 1024];

/* ---- small buffers ---- */

static inline int chan_buf_append(struct chan_buf *b, const void *p, size_t len)
{
    if (b->off + b->len + len > b->cap) {
        size_t need = b->len + len, cap = b->cap ? b->cap : 256;
        uint8_t *n;

        if (b->off > 0) {
            size_t stale = b->off > b->len ? b->off : b->len;   /* the moved bytes' old place */

            memmove(b->p, b->p + b->off, b->len);
            explicit_bzero(b->p + stale, b->off + b->len - stale);
            b->off = 0;
        }
        while (cap < need)
            cap *= 2;
        if (cap != b->cap) {
            n = proto_secure_grow(b->p, b->cap, b->len, cap);  /* client input may hold credentials */
            if (n == NULL)
                return UV_ENOMEM;
            b->p = n;
            b->cap = cap;
        }
    }
    memcpy(b->p + b->off + b->len, p, len);
    b->len += len;
    return 0;
}

static inline void chan_buf_consume(struct chan_buf *b, size_t n)
{
    explicit_bzero(b->p + b->off, n);   /* client input may hold credentials */
    b->off += n;
    b->len -= n;
    if (b->len == 0) {
        proto_secure_free(b->p, b->cap);
        memset(b, 0, sizeof(*b));
    }
}

static inline void chan_buf_free(struct chan_buf *b)
{
    proto_secure_free(b->p, b->cap);
    memset(b, 0, sizeof(*b));
}

static inline bool chan_handshaking(const struct chan *c)
{
    return (c->mode == CHAN_STARTTLS_PENDING || c->mode == CHAN_TLS_HANDSHAKE) &&
           !c->tls->broken;
}

/* chan.c */
void chan__schedule(struct chan *c);
void chan__kill(struct chan *c, const char *why, bool reset);
void chan__flush(struct chan *c);
void chan__update_reading(struct chan *c);
void chan__deliver_eof(struct chan *c);
void chan__timer_cb(uv_timer_t *h);

/* chan_tls.c */
int chan__tls_begin(struct chan *c, struct tls_server *srv, enum chan_mode mode);
void chan__tls_free(struct chan *c);
int chan__tls_encrypt(struct chan *c, const uint8_t *p, size_t len);
void chan__tls_fail(struct chan *c, int err, const char *why);
void chan__tls_pump(struct chan *c);
void chan__tls_close_notify(struct chan *c);
void chan__starttls_switch(struct chan *c);

#endif
