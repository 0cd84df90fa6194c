/*
 * One client session of the front-end: a client channel (plain or TLS), a
 * protocol module (POP3, IMAP, HTTP) that talks to the client until it
 * knows the user, and an upstream stream through the tunnel to the
 * back-end. The session executes the module's actions: replies, upstream
 * writes, connects (held while the tunnel re-keys), STARTTLS, splice and
 * close; after splice it relays bytes both ways with backpressure. An
 * upstream lost in a failover goes back to the module, which answers with
 * the protocol's own error (-ERR [SYS/TEMP], * BYE [UNAVAILABLE], 502/503)
 * or a retry (idempotent HTTP requests).
 */
#ifndef ESPROXY_PROXY_SESSION_H
#define ESPROXY_PROXY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "proxy/chan.h"

struct frontend;
struct fe_listener;
struct session;
struct tunnel;

/* Accept one client on listener l. 0 or a negative libuv error. */
int session_accept(struct frontend *fe, struct fe_listener *l, uv_stream_t *server);
/* The tunnel is up again: sessions held for it connect now. */
void session_release_held(struct session *s);
/* Holding timed out or the frontend is stopping: fail with the protocol's error. */
void session_fail_held(struct session *s);
void session_abort(struct session *s);
/* Stopping: close every client connection now. */
void session_abort_all(void);
bool session_is_held(const struct session *s);

/* Per-protocol counters for status. active and held are current numbers,
 * the rest only grow; held_total counts every hold (a login may be held
 * twice), spliced POP3/IMAP logins the back-end accepted and HTTP upgrades. */
struct session_counts {
    uint64_t accepted, active, held, held_total, spliced, failed_held, tunnel_lost;
};
void session_counts_get(int proto, struct session_counts *c);

#endif
