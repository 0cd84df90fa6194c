/*
 * POP3 client dialogue for the load generator: greeting, [STLS], USER,
 * PASS, STAT, RETR n (cycling over the mailbox), QUIT. The login operation
 * runs from the connection to the +OK after PASS (greeting included).
 */
#include "proxy/load_int.h"

#include <stdlib.h>
#include <string.h>

enum { P_GREET = 1, P_STLS, P_TLS, P_USER, P_PASS, P_STAT, P_RETR, P_RETR_BODY, P_QUIT };

static bool pop3_ok(const char *line)
{
    return strncmp(line, "+OK", 3) == 0;
}

/* A refused login: auth, unless the server says it cannot serve now
 * (RFC 3206 [SYS/...], [IN-USE]) and gives the session up. */
static enum load_err pop3_login_err(const char *line)
{
    return strstr(line, "[SYS/") || strstr(line, "[IN-USE]") ? LERR_CLOSED : LERR_AUTH;
}

static void pop3_send_user(struct lsess *s)
{
    lsess_sendf(s, "USER %s\r\n", s->cred->user);
    s->state = P_USER;
}

static void pop3_quit(struct lsess *s)
{
    lsess_op_begin(s, LOP_POP3_QUIT);
    lsess_send(s, "QUIT\r\n", 6);
    s->state = P_QUIT;
}

static void pop3_next_retr(struct lsess *s)
{
    if (s->step >= lsess_opts(s)->retr || s->messages <= 0) {
        pop3_quit(s);
        return;
    }
    lsess_op_begin(s, LOP_POP3_RETR);
    lsess_sendf(s, "RETR %d\r\n", s->step % s->messages + 1);
    s->state = P_RETR;
}

static void pop3_start(struct lsess *s)
{
    s->state = P_GREET;
    lsess_op_begin(s, LOP_POP3_LOGIN);
}

/* One line of server input: 1 go on, 0 done, -1 failed. */
static int pop3_line(struct lsess *s, const char *line)
{
    switch (s->state) {
    case P_GREET:
        if (!pop3_ok(line))
            return lsess_fail(s, LERR_CLOSED);
        if (lsess_opts(s)->tls == LOAD_TLS_STARTTLS) {
            lsess_send(s, "STLS\r\n", 6);
            s->state = P_STLS;
        } else {
            pop3_send_user(s);
        }
        return 1;
    case P_STLS:
        if (!pop3_ok(line))
            return lsess_fail(s, LERR_PROTOCOL);
        s->state = P_TLS;
        return lsess_starttls(s) < 0 ? -1 : 1;
    case P_USER:
        if (!pop3_ok(line))
            return lsess_fail(s, pop3_login_err(line));
        lsess_sendf(s, "PASS %s\r\n", s->cred->pass);
        s->state = P_PASS;
        return 1;
    case P_PASS:
        if (!pop3_ok(line))
            return lsess_fail(s, pop3_login_err(line));
        lsess_op_end(s);
        lsess_op_begin(s, LOP_POP3_STAT);
        lsess_send(s, "STAT\r\n", 6);
        s->state = P_STAT;
        return 1;
    case P_STAT:
        if (!pop3_ok(line))
            return lsess_fail(s, LERR_PROTOCOL);
        s->messages = atoi(line + 3);
        lsess_op_end(s);
        pop3_next_retr(s);
        return 1;
    case P_RETR:
        if (!pop3_ok(line))
            return lsess_fail(s, LERR_PROTOCOL);
        s->state = P_RETR_BODY;
        return 1;
    case P_RETR_BODY:
        if (strcmp(line, ".") != 0)
            return 1;
        lsess_op_end(s);
        s->step++;
        pop3_next_retr(s);
        return 1;
    case P_QUIT:
        if (!pop3_ok(line))
            return lsess_fail(s, LERR_PROTOCOL);
        lsess_op_end(s);
        return 0;
    default:
        return lsess_fail(s, LERR_PROTOCOL);    /* bytes while the TLS handshake runs */
    }
}

static int pop3_input(struct lsess *s)
{
    size_t off = 0, n, len;
    char *line;
    int rc = 1;

    while (rc == 1 && !s->finished && (n = lbuf_line_at(&s->in, off, &line, &len)) > 0) {
        off += n;
        rc = pop3_line(s, line);
    }
    if (s->state != P_TLS)
        lbuf_consume(&s->in, off);
    return rc;
}

static void pop3_wake(struct lsess *s)
{
    if (s->state == P_TLS) {    /* STLS handshake done: the handshake was timed as LOP_TLS */
        lsess_op_begin(s, LOP_POP3_LOGIN);
        pop3_send_user(s);
    }
}

const struct lproto load_pop3 = { pop3_start, pop3_input, pop3_wake };
