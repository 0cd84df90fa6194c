/*
 * The seam between protocol modules (protocols/) and the proxy (proxy/).
 *
 * A protocol module is a pure state machine: the proxy feeds it bytes from
 * the client and from the upstream (the back-end, reached through the
 * tunnel) plus a few events, and the module answers with actions appended
 * to a struct proto_out. No sockets, no libuv, no TLS here: the proxy
 * executes the actions in order (writes, connects, TLS upgrades, closes).
 *
 * Byte consumption: *_client_input and *_upstream_input return how many
 * bytes they consumed (0..len) or -1 on an internal error. Bytes not
 * consumed are offered again with more data appended (a partial line, or
 * the module is waiting for an upstream reply before reading further
 * pipelined commands). Modules never keep pointers into caller buffers
 * after returning.
 *
 * Every action that carries bytes owns a copy of them (struct proto_out
 * manages the memory); proto_out_reset frees them. Secrets (passwords)
 * only ever appear inside PA_UPSTREAM/PA_CONNECT payloads, never in log
 * text the module produces.
 */
#ifndef ESPROXY_PROTO_H
#define ESPROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proto_action_kind {
    PA_REPLY,           /* bytes to the client */
    PA_UPSTREAM,        /* bytes to the upstream (back-end) */
    PA_CONNECT,         /* open the upstream for user `user` (routing key) */
    PA_UPSTREAM_CLOSE,  /* drop the upstream (e.g. after a failed login) */
    PA_SPLICE,          /* from now on relay bytes both ways untouched */
    PA_STARTTLS,        /* after the preceding replies are flushed, start TLS with the client */
    PA_CLOSE,           /* close the client after flushing the preceding replies */
    PA_LOG,             /* an event for the proxy's log (key=value text, no secrets) */
};

struct proto_action {
    enum proto_action_kind kind;
    uint8_t *data;      /* PA_REPLY, PA_UPSTREAM, PA_LOG: bytes (PA_LOG: NUL-terminated) */
    size_t len;
    char user[256];     /* PA_CONNECT: the authenticated-to-be user name, for routing */
};

struct proto_out {
    struct proto_action *a;
    size_t n, cap;
    int oom;            /* sticky: an append failed; the proxy closes the session */
};

void proto_out_init(struct proto_out *o);
/* Free every action's bytes and empty the list (capacity kept). */
void proto_out_reset(struct proto_out *o);
void proto_out_free(struct proto_out *o);
void proto_out_add(struct proto_out *o, enum proto_action_kind kind, const void *data, size_t len);
void proto_out_printf(struct proto_out *o, enum proto_action_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void proto_out_connect(struct proto_out *o, const char *user);

/* Why the upstream went away, for protocol-correct errors to the client. */
enum proto_upstream_error {
    PUE_CONNECT_FAILED,     /* back-end refused or unreachable */
    PUE_TIMEOUT,            /* connect or login took too long */
    PUE_TUNNEL_LOST,        /* failover: the SA died under us */
    PUE_CLOSED,             /* the back-end closed the connection */
};

/* Limits shared by the mail protocols; the proxy fills them from config. */
struct proto_limits {
    size_t max_line;            /* longest command line accepted, bytes */
    size_t max_literal;         /* IMAP: largest literal before login */
    unsigned max_auth_failures; /* failed logins before the session is closed */
    bool plaintext_without_tls; /* allow USER/PASS, LOGIN, AUTH PLAIN on a clear connection */
    bool starttls_offered;      /* a TLS context exists for STLS / STARTTLS */
};

#define PROTO_DEFAULT_MAX_LINE      8192
#define PROTO_DEFAULT_MAX_LITERAL   65536
#define PROTO_DEFAULT_AUTH_FAILURES 3

/* Memory that may hold credentials (client input before login, upstream
 * LOGIN/PASS commands, HTTP heads with Authorization). proto_secure_grow
 * moves used bytes of old (capacity old_cap) into a new block of new_cap
 * bytes, scrubs and frees the old one (realloc could leave a copy behind);
 * on failure it returns NULL and old is untouched. proto_secure_free scrubs
 * cap bytes, then frees; NULL is fine. */
void *proto_secure_grow(void *old, size_t old_cap, size_t used, size_t new_cap);
void proto_secure_free(void *p, size_t cap);
/* Tests: called with every block proto_secure_free is about to free (already
 * scrubbed); NULL turns it off. */
void proto_secure_set_free_observer(void (*fn)(const void *p, size_t cap));

/* Small shared helpers (protocols/proto_util.c). */
/* RFC 4648 base64; decode returns the length or -1 on invalid input. */
long proto_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
size_t proto_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* SASL PLAIN message (RFC 4616): authzid NUL authcid NUL passwd. 0 or -1. */
int proto_sasl_plain_parse(const uint8_t *msg, size_t len, char *user, size_t user_cap, char *pass,
                           size_t pass_cap);

#endif
