/*
 * Tunnel streams: TCP connections inside ESP, for the proxy.
 *
 * A stream is opened to VIP:port through a tunnel (frontend) or accepted
 * by a listener (backend role). Events, all delivered from the loop and
 * never from inside a stream_* call:
 *
 *   connected(s)        the handshake completed (opened streams only)
 *   data(s, iov, n)     bytes arrived; return how many you took. Bytes not
 *                       taken stay held and reading pauses until
 *                       stream_read_start. n == 0 means the peer sent FIN.
 *   drained(s)          after stream_write returned 1, buffered bytes fell
 *                       to the low watermark
 *   closed(s, reason)   last event; s is freed when it returns
 *
 * Flow control is consumer driven: lwIP's receive window reopens only for
 * bytes the data callback took, so a consumer that stops reading stops
 * the peer and holds at most one TCP window (1 MiB) per stream. Writes are
 * copied (straight into lwIP's send buffer when it has room, else into
 * the stream's queue); stream_write returns 1 once more than the high
 * watermark is buffered, and drained follows at the low watermark.
 *
 * Closing: stream_shutdown sends FIN after queued bytes (half-close; the
 * stream still reads). stream_close flushes queued bytes, sends FIN and
 * ends with closed(STREAM_LOCAL_CLOSE); stream_abort sends RST and ends
 * the same way. Errors end a stream without any call: peer reset,
 * timeout (connect timeout, lwIP retransmission/keepalive give-up, close
 * linger), tunnel lost (netstack_tunnel_lost). After stream_close/abort
 * the only callback still to come is closed.
 *
 * Return convention: 0 or a negative libuv error; stream_write also 1.
 */
#ifndef ESPROXY_IPSEC_STREAM_H
#define ESPROXY_IPSEC_STREAM_H

#include "netstack.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct stream;
struct stream_listener;

enum stream_close_reason {
    STREAM_LOCAL_CLOSE = 1,
    STREAM_PEER_RESET = 2,
    STREAM_TIMEOUT = 3,
    STREAM_TUNNEL_LOST = 4,
};

struct stream_callbacks {
    void (*connected)(struct stream *s);
    size_t (*data)(struct stream *s, const struct iovec *iov, size_t n);
    void (*drained)(struct stream *s);
    void (*closed)(struct stream *s, enum stream_close_reason reason);
};

/* accept(l, s): set s's callbacks (stream_set_callbacks) and start
 * reading; or stream_abort(s) to refuse it. */
typedef void stream_accept_fn(struct stream_listener *l, struct stream *s);

#define STREAM_DEFAULT_HIGH_WATER (1024u * 1024u)
#define STREAM_DEFAULT_LOW_WATER  (256u * 1024u)
#define STREAM_CLOSE_LINGER_MS    30000u
#define STREAM_MAX_IOV            64u

/* Open a stream to peer_addr:port (network order address, host order
 * port) through the tunnel for peer_addr. connect_timeout_ms 0 = none.
 * Reading starts at connected. UV_ENETUNREACH without such a tunnel. */
int stream_open(struct netstack *ns, uint32_t peer_addr, uint16_t port,
                uint64_t connect_timeout_ms, const struct stream_callbacks *cb,
                void *data, struct stream **s_r);
void stream_set_callbacks(struct stream *s, const struct stream_callbacks *cb, void *data);
void *stream_get_data(const struct stream *s);
void stream_set_data(struct stream *s, void *data);

/* 0: accepted, below the high watermark; 1: accepted, wait for drained;
 * UV_EPIPE after shutdown/close; UV_ENOMEM. */
int stream_write(struct stream *s, const void *buf, size_t len);
void stream_set_watermarks(struct stream *s, size_t low, size_t high);
/* Bytes written but not yet acknowledged by the peer. */
size_t stream_write_buffered(const struct stream *s);
/* Bytes received and not yet taken by the data callback. */
size_t stream_read_buffered(const struct stream *s);

void stream_read_start(struct stream *s);
void stream_read_stop(struct stream *s);

int stream_shutdown(struct stream *s);
void stream_close(struct stream *s);
void stream_abort(struct stream *s);

struct netstack_tunnel *stream_tunnel(const struct stream *s);
uint16_t stream_local_port(const struct stream *s);
uint16_t stream_mss(const struct stream *s);
const char *stream_reason_str(enum stream_close_reason r);

/* Listen for inner TCP on port (backend role). */
int stream_listen(struct netstack *ns, uint16_t port, stream_accept_fn *on_accept,
                  void *data, struct stream_listener **l_r);
void *stream_listener_data(const struct stream_listener *l);
/* Stop accepting and free l (it holds no libuv handle, so this is
 * immediate); established streams are not affected. */
void stream_listener_close(struct stream_listener *l);

#endif
