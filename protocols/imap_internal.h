/*
 * Internals of the IMAP module shared by imap.c (session, client side) and
 * imap_upstream.c (the login to the back-end, splice). Not for the proxy.
 */
#ifndef ESPROXY_IMAP_INTERNAL_H
#define ESPROXY_IMAP_INTERNAL_H

#include "protocols/imap.h"

#define IMAP_TAG_MAX      64
#define IMAP_MAX_TOKENS   64        /* an RFC 2971 ID: 30 pairs in parentheses */
#define IMAP_ERR_MAX      (IMAP_TAG_MAX + 128)
#define IMAP_USER_MAX     256       /* struct proto_action.user */

/* RFC 2971 §3.3: field strings up to 30 octets, values up to 1024, at most
 * 30 pairs. An ID line may be this long whatever max_line says: every
 * string quoted with each octet escaped, tag and parentheses around. */
#define IMAP_ID_FIELD_MAX 30
#define IMAP_ID_VALUE_MAX 1024
#define IMAP_ID_PAIRS_MAX 30
#define IMAP_ID_LINE_MAX  (IMAP_TAG_MAX + sizeof(" ID ()") + \
                           IMAP_ID_PAIRS_MAX * (2 * (2 + 1) + 2 * IMAP_ID_FIELD_MAX + 2 * IMAP_ID_VALUE_MAX))

enum imap_state {
    IS_NEW,         /* imap_start not called yet */
    IS_COMMAND,     /* reading a command line or its continuation */
    IS_LITERAL,     /* reading literal bytes of the current command */
    IS_AUTH_CONT,   /* AUTHENTICATE PLAIN: waiting for the base64 line */
    IS_TLS_WAIT,    /* STARTTLS accepted: drop input until imap_tls_started */
    IS_UP_GREETING, /* PA_CONNECT emitted: waiting for the back-end greeting */
    IS_UP_LOGIN,    /* LOGIN (partly) sent upstream: waiting for + or the reply */
    IS_SPLICED,
    IS_CLOSED,
};

enum imap_tok_type { TK_ATOM, TK_QUOTED, TK_LITERAL, TK_LPAREN, TK_RPAREN };

struct imap_tok {                  /* 12 bytes: lines and literals are far below 4 GiB */
    enum imap_tok_type type;
    uint32_t off, len;
};

struct imap_cmd {
    char tag[IMAP_TAG_MAX + 1];
    char name[16];              /* upper case; "" when unknown or too long */
    struct imap_tok tok[IMAP_MAX_TOKENS];
    unsigned ntok;
    uint8_t *buf;               /* token bytes */
    size_t len, cap;
    size_t line_total;          /* fragment bytes so far, literals excluded */
    size_t lit_total;           /* literal bytes so far */
    size_t lit_need;            /* IS_LITERAL: bytes still to come */
    bool continuation;          /* next line continues this command */
    bool discard;               /* error seen: read to the end, then send err */
    char err[IMAP_ERR_MAX];     /* the reply line for a discarded command */
};

struct imap_session {
    struct proto_limits lim;
    bool tls_active;
    enum imap_state state;
    struct imap_cmd cmd;
    char auth_tag[IMAP_TAG_MAX + 1];    /* AUTHENTICATE waiting for its line */
    /* the login in progress */
    char login_tag[IMAP_TAG_MAX + 1];
    char user[IMAP_USER_MAX];
    uint8_t *pass;
    size_t pass_len;
    unsigned failures;
    bool login_retried;                 /* this login already started over once */
    unsigned up_seq;
    char up_tag[16];
    bool up_literal_plus, up_literal_minus;
    uint8_t *up_cmd;                    /* the LOGIN command (holds the password) */
    size_t up_cmd_len;
    size_t up_split[3];                 /* piece boundaries at sync literals */
    unsigned up_pieces, up_next;
    char *up_caps;                      /* untagged "* CAPABILITY" during login */
};

/* imap.c */
void imap__reply(struct proto_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void imap__scrub_free(void *p, size_t len);
void imap__cmd_reset(struct imap_cmd *c);
/* Drop the upstream LOGIN command and captured capabilities (not the password). */
void imap__up_forget(struct imap_session *s);
/* scrubs the password and the LOGIN command, forgets captured capabilities */
void imap__login_scrub(struct imap_session *s);
/* PA_CLOSE; the session reads nothing more */
void imap__close(struct imap_session *s, struct proto_out *out);

#endif
