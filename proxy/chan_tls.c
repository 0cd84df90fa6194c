/*
 * Server-side TLS on client channels; see chan.h.
 *
 * mbedTLS reads and writes through chan_tls_recv / chan_tls_send: ciphertext
 * comes from the current libuv read (or what chan.c held in c->rx while
 * stopped) and goes to c->out for chan.c to flush. chan__tls_pump runs the
 * handshake and then delivers plaintext; plaintext written during the
 * handshake waits in t->held. A STARTTLS upgrade is switched from chan.c's
 * deferred work once the plaintext reply is flushed. The channel timer
 * bounds the handshake (chan_set_handshake_timeout).
 */
#include "proxy/chan_internal.h"
#include "proxy/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h>

#define CHAN_STARTTLS_DRAIN_MAX  (1024 * 1024)

static uint64_t chan_hs_timeout_ms = CHAN_HANDSHAKE_TIMEOUT_MS;
static uint8_t chan_plainbuf[MBEDTLS_SSL_IN_CONTENT_LEN];

static void chan_peer_text(const struct chan *c, char *buf, size_t len)
{
    struct sockaddr_in sa;
    char ip[INET_ADDRSTRLEN] = "?";

    if (chan_peer(c, &sa) == 0)
        uv_ip4_name(&sa, ip, sizeof(ip));
    snprintf(buf, len, "%s:%u", ip, chan_peer(c, &sa) == 0 ? ntohs(sa.sin_port) : 0);
}

/* ---- mbedTLS I/O ---- */

static int chan_tls_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct chan *c = ctx;

    if (chan_buf_append(&c->out, buf, len) != 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    return (int)len;
}

int chan__tls_encrypt(struct chan *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        int n = mbedtls_ssl_write(&c->tls->ssl, p, len);

        if (n < 0)
            return n;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int chan_tls_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct chan *c = ctx;
    struct chan_tls *t = c->tls;
    size_t n;

    if (c->rx.len > 0) {
        n = len < c->rx.len ? len : c->rx.len;
        memcpy(buf, c->rx.p + c->rx.off, n);
        chan_buf_consume(&c->rx, n);
        return (int)n;
    }
    if (t->feed_len > 0) {
        n = len < t->feed_len ? len : t->feed_len;
        memcpy(buf, t->feed, n);
        t->feed += n;
        t->feed_len -= n;
        return (int)n;
    }
    return c->tcp_eof ? 0 : MBEDTLS_ERR_SSL_WANT_READ;
}

/* ---- handshake ---- */

void chan__tls_fail(struct chan *c, int err, const char *why)
{
    char peer[64], msg[96];

    chan_peer_text(c, peer, sizeof(peer));
    log_event(LOG_INFO, "tls_handshake_failed", "peer=%s err=-0x%04x reason=\"%s\"",
              peer, (unsigned int)-err, err == UV_ETIMEDOUT ? "timeout" :
              err == UV_EOF ? "eof" : tls_strerror(err, msg, sizeof(msg)));
    c->tls->broken = true;
    chan_buf_free(&c->tls->held);
    if (c->cb->tls_done != NULL)
        c->cb->tls_done(c, err);
    if (c->dead)
        return;
    if (strcmp(why, "timeout") == 0) {
        chan__kill(c, why, false);
        return;
    }
    /* Let mbedTLS's alert reach the client, then close. */
    if (c->why == NULL)
        c->why = why;
    c->close_why = why;
    c->close_req = true;
    chan__schedule(c);
}

static void chan_tls_established(struct chan *c)
{
    struct chan_tls *t = c->tls;
    int rc = 0;

    uv_timer_stop(&c->timer);
    c->mode = CHAN_TLS;
    if (t->held.len > 0) {
        rc = chan__tls_encrypt(c, t->held.p + t->held.off, t->held.len);
        chan_buf_free(&t->held);
    }
    chan__schedule(c);
    if (rc != 0) {
        chan__kill(c, "error", false);
        return;
    }
    if (c->close_req)
        uv_timer_start(&c->timer, chan__timer_cb, CHAN_CLOSE_LINGER_MS, 0);
    if (c->cb->tls_done != NULL)
        c->cb->tls_done(c, 0);
}

static void chan_tls_handshake(struct chan *c)
{
    mbedtls_ssl_context *ssl = &c->tls->ssl;
    int rc = 0;

    while (ssl->state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        rc = mbedtls_ssl_handshake_step(ssl);
        if (ssl->handshake != NULL && ssl->handshake->resume)
            c->tls->resumed = true;
        if (rc != 0)
            break;
    }
    if (c->out.len > 0)
        chan__schedule(c);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ) {
        if (c->tcp_eof)
            chan__tls_fail(c, UV_EOF, "tls_handshake_failed");
        return;
    }
    if (rc != 0)
        chan__tls_fail(c, rc, "tls_handshake_failed");
    else
        chan_tls_established(c);
}

/* ---- pump ---- */

/* Run the TLS engine over held and fed ciphertext as far as the consumer
 * allows. Leftover fed bytes are saved in c->rx. */
void chan__tls_pump(struct chan *c)
{
    struct chan_tls *t = c->tls;

    if (c->mode == CHAN_TLS_HANDSHAKE && !t->broken)
        chan_tls_handshake(c);
    while (c->mode == CHAN_TLS && !c->dead && !c->paused && !c->eof_delivered &&
           !c->close_req) {
        int n = mbedtls_ssl_read(&t->ssl, chan_plainbuf, sizeof(chan_plainbuf));

        if (n > 0) {
            c->cb->data(c, chan_plainbuf, (size_t)n);
            explicit_bzero(chan_plainbuf, (size_t)n);   /* may be a password */
        } else if (n == MBEDTLS_ERR_SSL_WANT_READ) {
            break;
        } else if (n == 0 || n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
                   n == MBEDTLS_ERR_SSL_CONN_EOF) {
            chan__deliver_eof(c);
        } else {
            char peer[64], msg[96];

            chan_peer_text(c, peer, sizeof(peer));
            log_event(LOG_INFO, "tls_read_failed", "peer=%s err=-0x%04x reason=\"%s\"",
                      peer, (unsigned int)-n, tls_strerror(n, msg, sizeof(msg)));
            t->broken = true;
            chan__kill(c, "error", false);
        }
    }
    if (t->feed_len > 0 && !c->dead && !c->eof_delivered && !c->close_req &&
        chan_buf_append(&c->rx, t->feed, t->feed_len) != 0)
        chan__kill(c, "error", false);
    t->feed = NULL;
    t->feed_len = 0;
    if (c->out.len > 0)
        chan__schedule(c);
    chan__update_reading(c);
}

/* Queue close_notify once, before a shutdown or close of a TLS channel. */
void chan__tls_close_notify(struct chan *c)
{
    struct chan_tls *t = c->tls;

    if (t != NULL && c->mode == CHAN_TLS && !t->broken && !t->close_notify_sent) {
        t->close_notify_sent = true;
        mbedtls_ssl_close_notify(&t->ssl);
    }
}

/* ---- lifecycle ---- */

int chan__tls_begin(struct chan *c, struct tls_server *srv, enum chan_mode mode)
{
    struct chan_tls *t = calloc(1, sizeof(*t));
    int rc;

    if (t == NULL)
        return UV_ENOMEM;
    mbedtls_ssl_init(&t->ssl);
    rc = mbedtls_ssl_setup(&t->ssl, tls_server_config(srv));
    if (rc != 0) {
        mbedtls_ssl_free(&t->ssl);
        free(t);
        return UV_ENOMEM;
    }
    mbedtls_ssl_set_bio(&t->ssl, c, chan_tls_send, chan_tls_recv, NULL);
    c->tls = t;
    c->mode = mode;
    uv_timer_start(&c->timer, chan__timer_cb, chan_hs_timeout_ms, 0);
    return 0;
}

void chan__tls_free(struct chan *c)
{
    if (c->tls != NULL) {
        mbedtls_ssl_free(&c->tls->ssl);
        chan_buf_free(&c->tls->held);
        free(c->tls);
    }
}

/* STARTTLS: drop what the client sent before our reply leaves, send the
 * reply, then read TLS. A client obeying RFC 2595 / 3501 sends nothing
 * until it has the reply, so nothing it sends for TLS can be dropped here. */
void chan__starttls_switch(struct chan *c)
{
    uv_os_fd_t fd;
    size_t total = 0;
    ssize_t n;

    if (c->drain_on_starttls && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        while (total < CHAN_STARTTLS_DRAIN_MAX) {
            n = recv(fd, chan__rxbuf, sizeof(chan__rxbuf), MSG_DONTWAIT);
            if (n <= 0)
                break;
            total += (size_t)n;
        }
        if (total > 0)
            log_event(LOG_DEBUG, "starttls_discarded", "bytes=%zu", total);
    }
    chan__flush(c);
    if (c->dead)
        return;
    c->mode = CHAN_TLS_HANDSHAKE;
    chan__update_reading(c);
    if (c->tcp_eof)
        chan__tls_pump(c);
}

/* ---- public API ---- */

bool chan_is_tls(const struct chan *c)
{
    return c->tls != NULL;
}

int chan_start_tls(struct chan *c, struct tls_server *t)
{
    int rc;

    if (t == NULL || c->dead || c->tls != NULL || c->close_req || c->shut_req)
        return UV_EINVAL;
    chan_buf_free(&c->rx);
    /* Drain the kernel only while our reply has not left: afterwards the
     * client's ClientHello may already be there. */
    c->drain_on_starttls = c->out.len > 0;
    rc = chan__tls_begin(c, t, CHAN_STARTTLS_PENDING);
    if (rc != 0)
        return rc;
    chan__update_reading(c);
    chan__schedule(c);
    return 0;
}

bool chan_tls_resumed(const struct chan *c)
{
    return c->tls != NULL && c->tls->resumed;
}

const char *chan_tls_ciphersuite(const struct chan *c)
{
    return c->mode == CHAN_TLS ? mbedtls_ssl_get_ciphersuite(&c->tls->ssl) : NULL;
}

const char *chan_tls_version(const struct chan *c)
{
    return c->mode == CHAN_TLS ? mbedtls_ssl_get_version(&c->tls->ssl) : NULL;
}

void chan_set_handshake_timeout(uint64_t ms)
{
    chan_hs_timeout_ms = ms != 0 ? ms : CHAN_HANDSHAKE_TIMEOUT_MS;
}
