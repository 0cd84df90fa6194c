/*
 * POP3 front-end dialogue (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS,
 * RFC 5034 SASL AUTH PLAIN, RFC 3206 response codes).
 *
 * The module talks POP3 to the client until it knows user and password,
 * asks the proxy to connect upstream for that user, logs in to the back-end
 * with USER/PASS, relays the result and then asks for a splice. It is a pure
 * state machine: see protocols/proto.h for the action lists.
 *
 * Action sequences the proxy will see (PA_LOG events may be interleaved
 * anywhere; they carry key=value text and never the password):
 *
 *   pop3_start            REPLY "+OK ..." (the greeting; emitted once, also
 *                         lazily by the first pop3_client_input).
 *   credentials complete  CONNECT(user). Nothing goes to the client yet.
 *   back-end greeting     UPSTREAM "USER u\r\n"; its +OK: UPSTREAM "PASS p\r\n".
 *   login +OK             REPLY "+OK <back-end text>", SPLICE, then
 *                         UPSTREAM <client bytes pipelined after the
 *                         credentials, in order> and REPLY <back-end bytes
 *                         that followed the +OK> when there are any.
 *   login -ERR            REPLY "-ERR [AUTH] ...", UPSTREAM_CLOSE; pipelined
 *                         client commands are then processed pre-auth in the
 *                         same call (so CONNECT may follow UPSTREAM_CLOSE in
 *                         the same list: drop the old upstream, open a new
 *                         one). On the last allowed failure: REPLY
 *                         "-ERR [AUTH] too many failures", UPSTREAM_CLOSE,
 *                         CLOSE.
 *   STLS                  REPLY "+OK Begin TLS negotiation", STARTTLS. Every
 *                         client byte offered after the STLS line until
 *                         pop3_tls_started is consumed and discarded.
 *   QUIT (pre-auth)       REPLY "+OK ...", CLOSE.
 *   fatal client input    REPLY "-ERR ...", CLOSE (overlong line, too many
 *                         bad commands).
 *   back-end trouble      REPLY "-ERR [SYS/TEMP] ...", [UPSTREAM_CLOSE], CLOSE.
 *
 * Consumption: pop3_client_input copies client bytes into a bounded buffer
 * (lim->max_line + 2) and returns how many it took; while a back-end login
 * is in progress it keeps pipelined commands there (they are forwarded
 * after the splice or processed after a failure). When it returns less than
 * offered, offer the rest again after the next pop3_upstream_input,
 * pop3_upstream_error or pop3_tls_started call, or when more bytes arrive.
 * pop3_upstream_input consumes complete reply lines and, once it has emitted
 * SPLICE or UPSTREAM_CLOSE, everything offered in that call.
 *
 * After SPLICE the proxy relays raw bytes. It may also keep calling the
 * input functions: in the spliced state they consume everything and return
 * it as UPSTREAM (client bytes) or REPLY (upstream bytes), so any bytes the
 * proxy still holds unconsumed at splice time can go through either path.
 * After UPSTREAM_CLOSE the proxy must drop bytes still arriving from that
 * upstream connection; upstream bytes offered while no login is in progress
 * are treated as a protocol violation (-ERR [SYS/TEMP], CLOSE).
 * Once CLOSE is emitted every input is consumed and ignored.
 *
 * Choices: a line longer than max_line closes the session ("-ERR line too
 * long"): skipping to the next CRLF would resynchronise on attacker-chosen
 * bytes. A bare LF ends a line like CRLF (tolerant, as dovecot is). A NUL
 * byte makes a command invalid ("-ERR", session continues). USER and SASL
 * PLAIN are advertised in CAPA only when plaintext login is allowed on this
 * connection. After STLS the protocol state (user, buffered input) is
 * forgotten; failure counters are kept.
 */
#ifndef ESPROXY_POP3_H
#define ESPROXY_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocols/proto.h"

struct pop3_session;

/* NULL when out of memory. The limits are copied. */
struct pop3_session *pop3_session_new(const struct proto_limits *lim, bool tls_active);
/* Frees and NULLs *s; wipes any credentials. */
void pop3_session_free(struct pop3_session **s);
/* The greeting (once). */
void pop3_start(struct pop3_session *s, struct proto_out *out);
/* Consumed byte count (0..len) or -1 on a NULL session. */
long pop3_client_input(struct pop3_session *s, const uint8_t *buf, size_t len, struct proto_out *out);
long pop3_upstream_input(struct pop3_session *s, const uint8_t *buf, size_t len, struct proto_out *out);
/* The upstream TCP stream is open; the module waits for the back-end greeting (no actions). */
void pop3_upstream_connected(struct pop3_session *s, struct proto_out *out);
/* The upstream failed or closed. Ignored when no upstream is in use. */
void pop3_upstream_error(struct pop3_session *s, enum proto_upstream_error e, struct proto_out *out);
/* The client TLS handshake requested by PA_STARTTLS finished. */
void pop3_tls_started(struct pop3_session *s);
bool pop3_spliced(const struct pop3_session *s);

#endif
