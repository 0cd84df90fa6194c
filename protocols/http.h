/*
 * HTTP/1.1 front-end protocol module (llhttp based), a pure byte-in /
 * actions-out state machine like the other modules (see proto.h).
 *
 * One client connection maps to one session and to at most one upstream
 * connection at a time; requests are forwarded to it in order (keep-alive
 * and pipelining preserved) and responses relayed back in the same order.
 *
 * What the proxy must know to drive it:
 *
 * - PA_CONNECT (user "": no routing by Host) is emitted before the first
 *   request is forwarded, again when a request arrives after the upstream
 *   went away while idle, and for a failover retry. A PA_CONNECT while an
 *   upstream exists means "replace it". PA_UPSTREAM actions that follow a
 *   PA_CONNECT are written once the new connection is up (queue them).
 * - http_client_input consumes what it can and may stop early: while
 *   HTTP_MAX_PIPELINE requests await responses, or while an Upgrade /
 *   CONNECT request (only with allow_upgrade) awaits its answer. The proxy
 *   keeps the rest and offers it again after every http_upstream_input /
 *   http_upstream_error call, even when no new client bytes arrived.
 * - PA_SPLICE (only with allow_upgrade, after a 101 or a 2xx to CONNECT):
 *   relay both ways untouched from then on, starting with any client bytes
 *   still held unconsumed.
 * - PA_CLOSE ends the client connection after flushing the replies before
 *   it; the upstream goes with it. After PA_CLOSE the session emits nothing
 *   more and swallows any input.
 * - PA_UPSTREAM_CLOSE: drop the upstream now (server asked for close, or a
 *   request could not be completed on it).
 * - http_upstream_error with an upstream that closed while no request was
 *   in flight is normal (keep-alive timeout): nothing is emitted; the next
 *   request reconnects.
 * - Body bytes are streamed, never buffered beyond one call, except the
 *   failover copy: head + up to max_retry_body body bytes per in-flight
 *   request, freed when its response starts.
 *
 * Replies the module makes itself (always with Connection: close, then
 * PA_CLOSE; nothing of the refused request goes upstream): 400 for
 * smuggling shapes (Content-Length with Transfer-Encoding, several
 * Content-Length, Transfer-Encoding not ending in one chunked, obs-fold,
 * bare CR/LF, NUL, bad chunk framing, missing or repeated Host), 431 for a
 * head over max_header_bytes, 501 for Upgrade / CONNECT when not allowed,
 * 505 for HTTP/2+ versions; 502 / 503 (Retry-After: 1, for tunnel lost and
 * timeout) when the back-end fails before the current response started
 * (after a relayed 1xx too). A refused request behind pipelined ones is
 * answered after their responses.
 *
 * Returns of the input functions: bytes consumed (0..len), or -1 on an
 * internal error (out of memory; the proxy closes the session).
 */
#ifndef ESPROXY_HTTP_H
#define ESPROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocols/proto.h"

struct http_limits {
    size_t max_header_bytes;    /* request line + headers + blank line; more → 431 */
    size_t max_retry_body;      /* body bytes kept per request for a failover retry */
    bool allow_upgrade;         /* forward Upgrade / CONNECT and splice after 101 / 2xx */
};

#define HTTP_DEFAULT_MAX_HEADER_BYTES 16384
#define HTTP_DEFAULT_MAX_RETRY_BODY   65536
#define HTTP_DEFAULT_ALLOW_UPGRADE    false
#define HTTP_LIMITS_DEFAULT \
    { HTTP_DEFAULT_MAX_HEADER_BYTES, HTTP_DEFAULT_MAX_RETRY_BODY, HTTP_DEFAULT_ALLOW_UPGRADE }

/* Requests forwarded and not yet answered, per connection; beyond this the
 * module stops consuming client bytes until a response completes. */
#define HTTP_MAX_PIPELINE 16

struct http_session;

/* lim NULL: defaults. client_ip is copied (used in X-Forwarded-For,
 * X-Real-IP and Forwarded, which replace the client's own; anything but an
 * IPv4/IPv6 literal becomes "unknown"). */
struct http_session *http_session_new(const struct http_limits *lim, const char *client_ip, bool client_tls);
void http_session_free(struct http_session **s);

long http_client_input(struct http_session *s, const uint8_t *buf, size_t len, struct proto_out *out);
long http_upstream_input(struct http_session *s, const uint8_t *buf, size_t len, struct proto_out *out);
/* The upstream is gone (connect failed, closed, timed out, tunnel lost). */
void http_upstream_error(struct http_session *s, enum proto_upstream_error e, struct proto_out *out);
/* The client closed its side: pending responses are still delivered, then close. */
void http_client_eof(struct http_session *s, struct proto_out *out);
/* No request in flight and none partly received (for keep-alive idle timers). */
bool http_idle(const struct http_session *s);
/* A request head has started and is not complete yet (the proxy's
 * per-head deadline runs while this is true). */
bool http_head_partial(const struct http_session *s);
/* The head's deadline passed: 408 Request Timeout and close, after the
 * responses still due on the connection (a partial head is dropped). */
void http_request_timeout(struct http_session *s, struct proto_out *out);

#endif
