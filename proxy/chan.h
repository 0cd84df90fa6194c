/*
 * A client connection ("channel"): a libuv TCP handle carrying either plain
 * bytes or server-side TLS (implicit, or upgraded with STARTTLS/STLS).
 *
 * Threading and callbacks: everything runs on one libuv loop thread. Every
 * callback is delivered from the loop (an I/O, timer, check/idle or close
 * callback), never from inside a chan_* call. closed() is the last callback
 * and is delivered exactly once per accepted channel; the channel is freed
 * when it returns. Callbacks other than data and closed may be NULL.
 *
 * Output: chan_write copies. Bytes are handed to the kernel at the end of
 * the current loop iteration (check phase), coalesced per channel; with TLS
 * they are encrypted at chan_write time (or after the handshake, for bytes
 * written while it runs). chan_write returns 1 once the buffered output
 * exceeds the high watermark; drained() follows when it falls to the low
 * watermark. Consumers should stop writing until then.
 *
 * Input: data() delivers plaintext. chan_read_stop stops the socket reads
 * at once (with TLS: ciphertext too); at most one libuv read (64 KiB) of
 * ciphertext plus mbedTLS's one-record buffer is held while stopped.
 *
 * STARTTLS: write the plaintext "begin TLS" reply, then call chan_start_tls
 * in the same callback (the reply is then still queued here). Everything
 * the client sent before that reply is handed to the kernel is discarded,
 * both what this channel held and what the kernel had queued; from then on
 * every byte is TLS (plaintext after the reply fails the handshake). If the
 * reply already left (chan_start_tls in a later callback), only what the
 * channel held is discarded: a ClientHello may already be queued. The
 * read_stop/read_start state carries over the upgrade.
 * Bytes the client sent after a STARTTLS command within the same data()
 * chunk were already delivered: the protocol layer must drop them.
 *
 * Close reasons (closed(why)): "local_close" (chan_close, chan_abort),
 * "peer_reset" (RST / EPIPE), "error", "tls_handshake_failed", "timeout"
 * (TLS handshake over 10 s, or a chan_close flush that did not finish).
 */
#ifndef ESPROXY_CHAN_H
#define ESPROXY_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netinet/in.h>
#include <uv.h>

#include "proxy/tls.h"

struct chan;

struct chan_callbacks {
    /* plaintext from the client (decrypted with TLS) */
    void (*data)(struct chan *c, const uint8_t *buf, size_t len);
    /* chan_write said 1 and buffered output fell to the low watermark */
    void (*drained)(struct chan *c);
    /* handshake finished: 0 ok, negative error (mbedTLS or UV_* code) */
    void (*tls_done)(struct chan *c, int status);
    /* the client finished sending (FIN or TLS close_notify) */
    void (*eof)(struct chan *c);
    /* last callback; c is freed when it returns */
    void (*closed)(struct chan *c, const char *why);
};

#define CHAN_DEFAULT_LOW_WATERMARK   (64 * 1024)
#define CHAN_DEFAULT_HIGH_WATERMARK  (256 * 1024)
#define CHAN_HANDSHAKE_TIMEOUT_MS    10000
#define CHAN_CLOSE_LINGER_MS         10000

/* Accept a connection from server (a listening uv_tcp_t). With implicit_tls
 * the handshake starts at once. 0, or a negative UV error (no callbacks
 * then, and *c_r is left NULL). */
int chan_accept(struct chan **c_r, uv_stream_t *server,
                struct tls_server *implicit_tls,
                const struct chan_callbacks *cb, void *data);

void *chan_data(const struct chan *c);
void chan_set_data(struct chan *c, void *data);
/* 0, or a negative UV error (UV_EAFNOSUPPORT for non-IPv4). */
int chan_peer(const struct chan *c, struct sockaddr_in *addr);
int chan_local(const struct chan *c, struct sockaddr_in *addr);
/* true once TLS is on or being negotiated (implicit or after STARTTLS) */
bool chan_is_tls(const struct chan *c);

/* Copies. 0 ok, 1 ok but above the high watermark (wait for drained),
 * negative UV error (closing, shut down, out of memory). */
int chan_write(struct chan *c, const void *buf, size_t len);
/* Output not yet acknowledged by the kernel (plaintext held for the
 * handshake + bytes queued + bytes in libuv write requests). */
size_t chan_write_buffered(const struct chan *c);
/* Output the client has not acknowledged yet: what this channel and libuv
 * hold plus the kernel's send queue (SIOCOUTQ). It falls only when the
 * client reads; a stall timer compares it over time. */
size_t chan_write_unacked(const struct chan *c);
void chan_set_watermarks(struct chan *c, size_t low, size_t high);

void chan_read_start(struct chan *c);
/* Backpressure: no data callbacks until chan_read_start. */
void chan_read_stop(struct chan *c);

/* STARTTLS; see the top of this file. 0, or UV_EINVAL when the channel is
 * already TLS, closing or shut down. */
int chan_start_tls(struct chan *c, struct tls_server *t);

/* Flush, then TLS close_notify (if TLS) and TCP FIN; reading continues. */
void chan_shutdown(struct chan *c);
/* Flush pending output (bounded by CHAN_CLOSE_LINGER_MS), then close;
 * closed() follows. */
void chan_close(struct chan *c);
/* Close now (RST); closed() follows. */
void chan_abort(struct chan *c);

/* Live channels, for tests and status. */
size_t chan_count(void);

/* --- additions --- */
/* Bytes of client input held by the channel (saved ciphertext, or
 * plaintext on a stopped plain channel); mbedTLS's record buffer excluded. */
size_t chan_read_buffered(const struct chan *c);
/* The TLS session was resumed (ticket or session cache). */
bool chan_tls_resumed(const struct chan *c);
/* Negotiated suite and version names, or NULL before the handshake. */
const char *chan_tls_ciphersuite(const struct chan *c);
const char *chan_tls_version(const struct chan *c);
/* Process-wide handshake timeout (tests use short ones); 0 restores. */
void chan_set_handshake_timeout(uint64_t ms);

#endif
