/*
 * IMAP4 front-end (RFC 3501, RFC 9051 not-authenticated state): the proxy
 * talks IMAP to the client until it knows user and password, then logs in
 * to the back-end through the tunnel and splices the two streams.
 *
 * Action sequences (struct proto_out, executed in order by the proxy):
 *
 *   imap_start            PA_REPLY "* OK [CAPABILITY ...] esproxy ready"
 *   LOGIN / AUTHENTICATE  PA_CONNECT(user); the client's further input is
 *                         not consumed (returns 0) until the login is over,
 *                         so after every upstream event the proxy offers its
 *                         held client bytes again (no new client data may come)
 *   back-end greeting     PA_UPSTREAM "<tag> LOGIN ..." (one or more pieces:
 *                         with synchronizing literals the next piece is sent
 *                         after the back-end's "+" continuation)
 *   tagged OK upstream    PA_REPLY ["* CAPABILITY ..."] PA_REPLY "<ctag> OK
 *                         [CAPABILITY ...] Logged in", PA_LOG, PA_SPLICE
 *   tagged NO upstream    PA_REPLY "<ctag> NO [AUTHENTICATIONFAILED] ...",
 *                         PA_UPSTREAM_CLOSE, PA_LOG, and after
 *                         max_auth_failures: PA_REPLY "* BYE ...", PA_CLOSE
 *   STARTTLS              PA_REPLY "<tag> OK ...", PA_STARTTLS; every byte
 *                         until imap_tls_started is consumed and dropped
 *   LOGOUT                PA_REPLY "* BYE ...", PA_REPLY "<tag> OK ...", PA_CLOSE
 *
 * Splice hand-over: the call that emits PA_SPLICE consumes the upstream
 * bytes up to and including the tagged OK line; bytes after it, and client
 * bytes not consumed (commands pipelined after LOGIN), are the proxy's to
 * relay untouched, in order. Calling imap_client_input/imap_upstream_input
 * after the splice is allowed too: all bytes come back as PA_UPSTREAM/
 * PA_REPLY and are consumed.
 *
 * AUTH=PLAIN is advertised only when usable: without TLS and with
 * plaintext_without_tls off, CAPABILITY says LOGINDISABLED instead, and
 * LOGIN / AUTHENTICATE PLAIN get "NO [PRIVACYREQUIRED]" (a LOGIN with a
 * synchronizing literal gets "BAD [PRIVACYREQUIRED]" before the password is sent).
 *
 * Zero fields of struct proto_limits mean the PROTO_DEFAULT_* values.
 */
#ifndef ESPROXY_IMAP_H
#define ESPROXY_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocols/proto.h"

struct imap_session;

struct imap_session *imap_session_new(const struct proto_limits *lim, bool tls_active);
/* Frees the session (scrubbing credentials) and NULLs *s; NULL is fine. */
void imap_session_free(struct imap_session **s);
/* The greeting; input offered before it is not consumed. */
void imap_start(struct imap_session *s, struct proto_out *out);
/* Both return the bytes consumed (0..len), per proto.h. */
long imap_client_input(struct imap_session *s, const uint8_t *buf, size_t len, struct proto_out *out);
long imap_upstream_input(struct imap_session *s, const uint8_t *buf, size_t len, struct proto_out *out);
/* No action needed: the module waits for the back-end's greeting. */
void imap_upstream_connected(struct imap_session *s, struct proto_out *out);
/* Before splice with a login pending: tagged NO [UNAVAILABLE], * BYE, PA_CLOSE.
 * After splice: * BYE [UNAVAILABLE], PA_CLOSE. With no upstream open: ignored. */
void imap_upstream_error(struct imap_session *s, enum proto_upstream_error e, struct proto_out *out);
/* The TLS handshake after PA_STARTTLS finished: read commands again.
 * Ignored in any other state. */
void imap_tls_started(struct imap_session *s);
bool imap_spliced(const struct imap_session *s);

#endif
