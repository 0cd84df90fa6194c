/*
 * Relay between a kernel TCP connection (a client, or a local service on a
 * back-end node) and a tunnel stream, both ways, with backpressure: each
 * side reads only while the other side's write buffer is under its high
 * watermark. EOF is passed on as a half-close; a reset or a lost tunnel
 * closes both sides (the TCP side with RST when the stream was reset).
 *
 * The relay owns both ends once started and frees itself after both are
 * closed, then calls closed(). Bytes already read from the TCP side before
 * the relay started can be handed over with relay_start's prefix.
 */
#ifndef ESPROXY_PROXY_RELAY_H
#define ESPROXY_PROXY_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ipsec/stream.h"

struct relay;

struct relay_stats {
    uint64_t tcp_to_stream, stream_to_tcp;
};

/* why: "done" (both sides finished), "tcp_error", "stream_reset",
 * "tunnel_lost", "timeout", "local_close". */
typedef void relay_closed_fn(void *arg, const char *why, const struct relay_stats *st);

#define RELAY_HIGH_WATER (512u * 1024u)
#define RELAY_LOW_WATER  (128u * 1024u)

/* tcp: an initialized, connected TCP handle allocated with malloc; the
 * relay frees it. s: a connected stream. prefix goes to the stream first. */
int relay_start(struct relay **r_r, uv_tcp_t *tcp, struct stream *s, const void *prefix, size_t prefix_len,
                relay_closed_fn *closed, void *arg);
/* Close both sides at once (RST on TCP, abort on the stream). */
void relay_abort(struct relay *r);
size_t relay_count(void);

#endif
