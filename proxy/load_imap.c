/*
 * IMAP client dialogue for the load generator: greeting, [STARTTLS],
 * LOGIN, SELECT INBOX, FETCH of headers, FETCH of whole bodies, IDLE for a
 * while, LOGOUT. Literals ({N} at the end of a line) are skipped by count,
 * so message bodies never get mistaken for responses.
 */
#include "proxy/load_int.h"

#include <stdlib.h>
#include <string.h>

enum { I_GREET = 1, I_STLS, I_TLS, I_LOGIN, I_SELECT, I_FETCH_H, I_FETCH_B, I_IDLE, I_IDLING, I_DONE, I_LOGOUT };

static void imap_cmd(struct lsess *s, int state, const char *fmt, const char *arg)
{
    char cmd[320];

    s->tag++;
    snprintf(cmd, sizeof(cmd), fmt, arg ? arg : "");
    lsess_sendf(s, "a%d %s\r\n", s->tag, cmd);
    s->state = state;
}

static void imap_quote(char *out, size_t outlen, const char *in)
{
    size_t o = 0;

    out[o++] = '"';
    for (; *in != '\0' && o + 3 < outlen; in++) {
        if (*in == '"' || *in == '\\')
            out[o++] = '\\';
        out[o++] = *in;
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void imap_login(struct lsess *s)
{
    char u[128], p[128], both[300];

    imap_quote(u, sizeof(u), s->cred->user);
    imap_quote(p, sizeof(p), s->cred->pass);
    snprintf(both, sizeof(both), "%s %s", u, p);
    imap_cmd(s, I_LOGIN, "LOGIN %s", both);
}

/* The next step after SELECT or a FETCH: more FETCH, IDLE or LOGOUT. */
static void imap_next(struct lsess *s, int after)
{
    const struct load_opts *o = lsess_opts(s);
    char range[32];

    if (after < I_FETCH_H && o->fetch_headers > 0 && s->messages > 0) {
        snprintf(range, sizeof(range), "1:%d", o->fetch_headers < s->messages ? o->fetch_headers : s->messages);
        lsess_op_begin(s, LOP_IMAP_FETCH_HEADERS);
        imap_cmd(s, I_FETCH_H, "FETCH %s (BODY.PEEK[HEADER])", range);
    } else if (after < I_FETCH_B && o->fetch_bodies > 0 && s->messages > 0) {
        snprintf(range, sizeof(range), "1:%d", o->fetch_bodies < s->messages ? o->fetch_bodies : s->messages);
        lsess_op_begin(s, LOP_IMAP_FETCH_BODIES);
        imap_cmd(s, I_FETCH_B, "FETCH %s BODY.PEEK[]", range);
    } else if (after < I_IDLE && o->idle_ms > 0) {
        lsess_op_begin(s, LOP_IMAP_IDLE);
        imap_cmd(s, I_IDLE, "IDLE", NULL);
    } else {
        lsess_op_begin(s, LOP_IMAP_LOGOUT);
        imap_cmd(s, I_LOGOUT, "LOGOUT", NULL);
    }
}

static void imap_start(struct lsess *s)
{
    s->state = I_GREET;
    lsess_op_begin(s, LOP_IMAP_LOGIN);
}

/* "aN OK|NO|BAD": 'O', 'N', 'B'; 0 when the line is not our tagged reply. */
static char imap_tagged(const struct lsess *s, const char *line)
{
    char tag[16];
    size_t n = (size_t)snprintf(tag, sizeof(tag), "a%d ", s->tag);

    if (strncmp(line, tag, n) != 0)
        return 0;
    line += n;
    if (strncmp(line, "OK", 2) == 0)
        return 'O';
    return strncmp(line, "NO", 2) == 0 ? 'N' : 'B';
}

static int imap_tagged_done(struct lsess *s, char st, const char *line)
{
    switch (s->state) {
    case I_STLS:
        if (st != 'O')
            return lsess_fail(s, LERR_PROTOCOL);
        s->state = I_TLS;
        return lsess_starttls(s) < 0 ? -1 : 1;
    case I_LOGIN:
        if (st != 'O')
            return lsess_fail(s, st != 'N' ? LERR_PROTOCOL :    /* RFC 5530: the server cannot serve now */
                              strstr(line, "[UNAVAILABLE]") || strstr(line, "[INUSE]") ? LERR_CLOSED : LERR_AUTH);
        lsess_op_end(s);
        lsess_op_begin(s, LOP_IMAP_SELECT);
        imap_cmd(s, I_SELECT, "SELECT INBOX", NULL);
        return 1;
    case I_LOGOUT:
        if (st != 'O')
            return lsess_fail(s, LERR_PROTOCOL);
        lsess_op_end(s);
        return 0;
    default:
        if (st != 'O')
            return lsess_fail(s, LERR_PROTOCOL);
        lsess_op_end(s);
        imap_next(s, s->state == I_DONE ? I_IDLE : s->state);
        return 1;
    }
}

static int imap_line(struct lsess *s, const char *line, size_t len)
{
    char st;

    if (s->state == I_GREET) {
        if (strncmp(line, "* OK", 4) != 0)
            return lsess_fail(s, strncmp(line, "* BYE", 5) == 0 ? LERR_CLOSED : LERR_PROTOCOL);
        if (lsess_opts(s)->tls == LOAD_TLS_STARTTLS)
            imap_cmd(s, I_STLS, "STARTTLS", NULL);
        else
            imap_login(s);
        return 1;
    }
    if (line[0] == '*') {
        if (strncmp(line, "* BYE", 5) == 0 && s->state != I_LOGOUT)
            return lsess_fail(s, LERR_CLOSED);
        if (s->state == I_SELECT && len > 8 && strcmp(line + len - 7, " EXISTS") == 0)
            s->messages = atoi(line + 2);
        return 1;
    }
    if (line[0] == '+') {
        if (s->state != I_IDLE)
            return lsess_fail(s, LERR_PROTOCOL);
        s->state = I_IDLING;
        lsess_sleep(s, lsess_opts(s)->idle_ms);
        return 1;
    }
    st = imap_tagged(s, line);
    if (st == 0)
        return lsess_fail(s, LERR_PROTOCOL);
    return imap_tagged_done(s, st, line);
}

/* A literal announced at the end of a line: its byte count, else 0. */
static size_t imap_literal(const char *line, size_t len)
{
    const char *open;

    if (len < 3 || line[len - 1] != '}')
        return 0;
    open = memrchr(line, '{', len);
    return open ? strtoul(open + 1, NULL, 10) : 0;
}

static int imap_input(struct lsess *s)
{
    size_t off = 0, n, len;
    char *line;
    int rc = 1;

    while (rc == 1 && !s->finished) {
        if (s->literal_left > 0) {
            size_t take = s->in.len - off < s->literal_left ? s->in.len - off : s->literal_left;

            off += take;
            s->literal_left -= take;
            if (s->literal_left > 0)
                break;
            s->step = 1;    /* the next line continues the response */
            continue;
        }
        n = lbuf_line_at(&s->in, off, &line, &len);
        if (n == 0)
            break;
        off += n;
        s->literal_left = imap_literal(line, len);
        if (s->step == 1) {     /* continuation of a response with literals */
            s->step = s->literal_left > 0;
            continue;
        }
        rc = imap_line(s, line, len);
    }
    if (s->state != I_TLS)
        lbuf_consume(&s->in, off);
    return rc;
}

static void imap_wake(struct lsess *s)
{
    if (s->state == I_TLS) {    /* STARTTLS handshake done: the handshake was timed as LOP_TLS */
        lsess_op_begin(s, LOP_IMAP_LOGIN);
        imap_login(s);
    } else if (s->state == I_IDLING) {
        lsess_send(s, "DONE\r\n", 6);
        s->state = I_DONE;
    }
}

const struct lproto load_imap = { imap_start, imap_input, imap_wake };
