/*
 * POP3 front-end dialogue: pre-auth commands from the client, USER/PASS
 * login to the back-end, splice. The contract with the proxy (which actions
 * in which order, how bytes are consumed) is written in pop3.h.
 *
 * Client bytes go through one bounded buffer (s->in, max_line + 2 bytes):
 * complete lines are acted on while the session is in AUTHORIZATION (or
 * waiting for an AUTH continuation line); while a back-end login runs the
 * buffer just holds pipelined commands. Upstream replies are parsed in
 * place from the caller's buffer, one line at a time.
 */
#include "protocols/pop3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POP3_USER_MAX           256     /* PA_CONNECT's user[] */
#define POP3_PASS_MAX           1024
#define POP3_SASL_MAX           1536    /* decoded PLAIN message */
#define POP3_UPSTREAM_LINE_MAX  1024    /* RFC 2449 §4: responses up to 512 octets */
#define POP3_TEXT_MAX           200     /* back-end text relayed to the client */
#define POP3_MAX_BAD_COMMANDS   20

#define POP3_GREETING    "+OK esproxy POP3 ready\r\n"
#define POP3_ERR_BACKEND "-ERR [SYS/TEMP] back-end unavailable, try again\r\n"
#define POP3_ERR_LOST    "-ERR [SYS/TEMP] back-end connection lost, try again\r\n"

enum pop3_state {
    POP3_AUTHORIZATION, /* reading pre-auth commands */
    POP3_AUTH_CONT,     /* sent "+ " for AUTH PLAIN, waiting for the base64 line */
    POP3_STLS_WAIT,     /* sent "+OK Begin TLS"; input discarded until pop3_tls_started */
    POP3_LOGIN,         /* credentials known, logging in to the back-end */
    POP3_SPLICED,       /* pass-through */
    POP3_CLOSED,        /* CLOSE emitted; everything is ignored */
};

enum pop3_login_step {
    LOGIN_NONE,         /* no upstream in use */
    LOGIN_GREETING,     /* CONNECT emitted, waiting for the back-end's +OK greeting */
    LOGIN_USER,         /* USER sent */
    LOGIN_PASS,         /* PASS sent */
};

struct pop3_session {
    struct proto_limits lim;
    enum pop3_state state;
    enum pop3_login_step step;
    bool tls_active;
    bool greeted;
    bool login_retried;     /* this login already started over once */
    unsigned failures;
    unsigned bad_commands;
    char user[POP3_USER_MAX];
    char pass[POP3_PASS_MAX];
    size_t pass_len;
    uint8_t *in;        /* client bytes not yet acted on */
    size_t in_len, in_cap;
};

static void pop3_drain(struct pop3_session *s, struct proto_out *out);

/* ---- small helpers ---- */

static void pop3_reply(struct proto_out *out, const char *text)
{
    proto_out_add(out, PA_REPLY, text, strlen(text));
}

static void pop3_forget_credentials(struct pop3_session *s)
{
    explicit_bzero(s->user, sizeof(s->user));
    explicit_bzero(s->pass, sizeof(s->pass));
    s->pass_len = 0;
}

static void pop3_forget_input(struct pop3_session *s)
{
    explicit_bzero(s->in, s->in_len);
    s->in_len = 0;
}

static void pop3_close(struct pop3_session *s, struct proto_out *out, const char *reply)
{
    if (reply != NULL)
        pop3_reply(out, reply);
    proto_out_add(out, PA_CLOSE, NULL, 0);
    s->state = POP3_CLOSED;
    s->step = LOGIN_NONE;
    pop3_forget_credentials(s);
    pop3_forget_input(s);
}

/* The user name as log text: key=value safe, never more than the name. */
static void pop3_log_user(const struct pop3_session *s, char *buf, size_t cap)
{
    size_t i;

    for (i = 0; s->user[i] != '\0' && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)s->user[i];

        buf[i] = (c > 0x20 && c < 0x7f && c != '"' && c != '=') ? (char)c : '?';
    }
    buf[i] = '\0';
}

static void pop3_log(const struct pop3_session *s, struct proto_out *out, const char *event, const char *extra)
{
    char user[POP3_USER_MAX];

    pop3_log_user(s, user, sizeof(user));
    proto_out_printf(out, PA_LOG, "proto=pop3 event=%s user=%s%s%s", event, user[0] ? user : "-",
                     extra[0] ? " " : "", extra);
}

/* A credential may not carry line breaks or NULs into the upstream
 * dialogue; a user name (also used for routing and logs) no controls at all. */
static bool pop3_user_valid(const uint8_t *p, size_t len)
{
    if (len == 0 || len >= POP3_USER_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return true;
}

static bool pop3_pass_valid(const uint8_t *p, size_t len)
{
    if (len == 0 || len >= POP3_PASS_MAX)
        return false;
    return memchr(p, '\r', len) == NULL && memchr(p, '\n', len) == NULL && memchr(p, '\0', len) == NULL;
}

static bool pop3_plaintext_ok(const struct pop3_session *s)
{
    return s->lim.plaintext_without_tls || s->tls_active;
}

/* An invalid command: answered, counted, and the session ends after too many. */
static void pop3_bad_command(struct pop3_session *s, struct proto_out *out, const char *reply)
{
    if (++s->bad_commands >= POP3_MAX_BAD_COMMANDS) {
        pop3_log(s, out, "too_many_bad_commands", "");
        pop3_close(s, out, "-ERR too many invalid commands\r\n");
        return;
    }
    pop3_reply(out, reply);
}

static void pop3_refuse_plaintext(struct pop3_session *s, struct proto_out *out)
{
    if (s->lim.starttls_offered)
        pop3_bad_command(s, out, "-ERR [AUTH] plaintext authentication disallowed without TLS, use STLS first\r\n");
    else
        pop3_bad_command(s, out, "-ERR [AUTH] plaintext authentication disallowed without TLS\r\n");
}

/* ---- client commands (AUTHORIZATION state) ---- */

static void pop3_login_begin(struct pop3_session *s, struct proto_out *out, const char *mech)
{
    char extra[64];

    snprintf(extra, sizeof(extra), "mech=%s tls=%d", mech, s->tls_active ? 1 : 0);
    pop3_log(s, out, "login_start", extra);
    proto_out_connect(out, s->user);
    s->state = POP3_LOGIN;
    s->step = LOGIN_GREETING;
    s->login_retried = false;
}

static void pop3_capa(const struct pop3_session *s, struct proto_out *out)
{
    char buf[256];
    size_t n = 0;

    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "+OK capability list follows\r\n");
    if (pop3_plaintext_ok(s))
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "USER\r\nSASL PLAIN\r\n");
    if (s->lim.starttls_offered && !s->tls_active)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "STLS\r\n");
    n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                          "PIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nIMPLEMENTATION esproxy\r\n.\r\n");
    proto_out_add(out, PA_REPLY, buf, n);
}

static void pop3_cmd_user(struct pop3_session *s, const uint8_t *arg, size_t len, struct proto_out *out)
{
    if (!pop3_plaintext_ok(s)) {
        pop3_refuse_plaintext(s, out);
        return;
    }
    pop3_forget_credentials(s);
    if (!pop3_user_valid(arg, len)) {
        pop3_bad_command(s, out, "-ERR [AUTH] invalid user name\r\n");
        return;
    }
    memcpy(s->user, arg, len);
    pop3_reply(out, "+OK\r\n");
}

static void pop3_cmd_pass(struct pop3_session *s, const uint8_t *arg, size_t len, struct proto_out *out)
{
    if (!pop3_plaintext_ok(s)) {
        pop3_refuse_plaintext(s, out);
        return;
    }
    if (s->user[0] == '\0') {
        pop3_reply(out, "-ERR USER first\r\n");
        return;
    }
    if (!pop3_pass_valid(arg, len)) {
        pop3_forget_credentials(s);
        pop3_bad_command(s, out, "-ERR [AUTH] invalid password\r\n");
        return;
    }
    memcpy(s->pass, arg, len);
    s->pass_len = len;
    pop3_login_begin(s, out, "USER");
}

/* A base64 SASL PLAIN response (initial or continuation). */
static void pop3_auth_plain_response(struct pop3_session *s, const uint8_t *b64, size_t len,
                                     struct proto_out *out)
{
    uint8_t msg[POP3_SASL_MAX];
    long n;

    if (len == 1 && b64[0] == '*') {
        pop3_reply(out, "-ERR [AUTH] authentication cancelled\r\n");
        return;
    }
    if (len / 4 * 3 > sizeof(msg)) {
        pop3_bad_command(s, out, "-ERR [AUTH] credentials too long\r\n");
        return;
    }
    n = proto_base64_decode((const char *)b64, len, msg, sizeof(msg));
    if (n < 0) {
        pop3_bad_command(s, out, "-ERR [AUTH] invalid base64\r\n");
        return;
    }
    pop3_forget_credentials(s);
    if (proto_sasl_plain_parse(msg, (size_t)n, s->user, sizeof(s->user), s->pass, sizeof(s->pass)) < 0 ||
        !pop3_user_valid((const uint8_t *)s->user, strlen(s->user)) ||
        !pop3_pass_valid((const uint8_t *)s->pass, strlen(s->pass))) {
        explicit_bzero(msg, sizeof(msg));
        pop3_forget_credentials(s);
        pop3_bad_command(s, out, "-ERR [AUTH] invalid PLAIN credentials\r\n");
        return;
    }
    explicit_bzero(msg, sizeof(msg));
    s->pass_len = strlen(s->pass);
    pop3_login_begin(s, out, "PLAIN");
}

static void pop3_cmd_auth(struct pop3_session *s, const uint8_t *arg, size_t len, struct proto_out *out)
{
    const uint8_t *sp = memchr(arg, ' ', len);
    size_t mech_len = sp != NULL ? (size_t)(sp - arg) : len;

    if (len == 0) {     /* mechanism list, as RFC 1734 servers answer */
        pop3_reply(out, pop3_plaintext_ok(s) ? "+OK\r\nPLAIN\r\n.\r\n" : "+OK\r\n.\r\n");
        return;
    }
    if (mech_len != 5 || strncasecmp((const char *)arg, "PLAIN", 5) != 0) {
        pop3_bad_command(s, out, "-ERR unsupported SASL mechanism\r\n");
        return;
    }
    if (!pop3_plaintext_ok(s)) {
        pop3_refuse_plaintext(s, out);
        return;
    }
    if (sp != NULL) {
        pop3_auth_plain_response(s, sp + 1, len - mech_len - 1, out);
        return;
    }
    pop3_reply(out, "+ \r\n");
    s->state = POP3_AUTH_CONT;
}

static void pop3_cmd_stls(struct pop3_session *s, struct proto_out *out)
{
    if (s->tls_active) {
        pop3_bad_command(s, out, "-ERR TLS already active\r\n");
        return;
    }
    if (!s->lim.starttls_offered) {
        pop3_bad_command(s, out, "-ERR STLS not available\r\n");
        return;
    }
    pop3_log(s, out, "starttls", "");
    pop3_reply(out, "+OK Begin TLS negotiation\r\n");
    proto_out_add(out, PA_STARTTLS, NULL, 0);
    s->state = POP3_STLS_WAIT;
    pop3_forget_credentials(s);
}

static bool pop3_keyword_is(const uint8_t *kw, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp((const char *)kw, name, len) == 0;
}

static void pop3_command(struct pop3_session *s, const uint8_t *line, size_t len, struct proto_out *out)
{
    static const char *const after_login[] = { "NOOP", "STAT", "LIST", "RETR", "DELE", "RSET",
                                                "TOP",  "UIDL", "LAST", "XTND" };
    const uint8_t *sp = memchr(line, ' ', len);
    size_t kw_len = sp != NULL ? (size_t)(sp - line) : len;
    const uint8_t *arg = sp != NULL ? sp + 1 : line + len;
    size_t arg_len = sp != NULL ? len - kw_len - 1 : 0;

    if (memchr(line, '\0', len) != NULL) {
        pop3_bad_command(s, out, "-ERR NUL byte in command\r\n");
        return;
    }
    if (pop3_keyword_is(line, kw_len, "CAPA"))
        pop3_capa(s, out);
    else if (pop3_keyword_is(line, kw_len, "USER"))
        pop3_cmd_user(s, arg, arg_len, out);
    else if (pop3_keyword_is(line, kw_len, "PASS"))
        pop3_cmd_pass(s, arg, arg_len, out);
    else if (pop3_keyword_is(line, kw_len, "AUTH"))
        pop3_cmd_auth(s, arg, arg_len, out);
    else if (pop3_keyword_is(line, kw_len, "STLS"))
        pop3_cmd_stls(s, out);
    else if (pop3_keyword_is(line, kw_len, "QUIT"))
        pop3_close(s, out, "+OK esproxy POP3 signing off\r\n");
    else if (pop3_keyword_is(line, kw_len, "APOP"))
        pop3_bad_command(s, out, "-ERR APOP not supported\r\n");
    else {
        for (size_t i = 0; i < sizeof(after_login) / sizeof(after_login[0]); i++) {
            if (pop3_keyword_is(line, kw_len, after_login[i])) {
                pop3_bad_command(s, out, "-ERR command not valid before login\r\n");
                return;
            }
        }
        pop3_bad_command(s, out, "-ERR unknown command\r\n");
    }
}

/* Act on complete lines in s->in while the state reads client commands. */
static void pop3_drain(struct pop3_session *s, struct proto_out *out)
{
    while (s->state == POP3_AUTHORIZATION || s->state == POP3_AUTH_CONT) {
        const uint8_t *lf = memchr(s->in, '\n', s->in_len);
        size_t line_len, used;

        if (lf == NULL) {
            if (s->in_len == s->in_cap) {
                pop3_log(s, out, "line_too_long", "");
                pop3_close(s, out, "-ERR line too long\r\n");
            }
            return;
        }
        used = (size_t)(lf - s->in) + 1;
        line_len = used - 1;
        if (line_len > 0 && s->in[line_len - 1] == '\r')
            line_len--;
        if (line_len > s->lim.max_line) {
            pop3_log(s, out, "line_too_long", "");
            pop3_close(s, out, "-ERR line too long\r\n");
            return;
        }
        if (s->state == POP3_AUTH_CONT) {
            s->state = POP3_AUTHORIZATION;
            pop3_auth_plain_response(s, s->in, line_len, out);
        } else {
            pop3_command(s, s->in, line_len, out);
        }
        if (s->state == POP3_STLS_WAIT || s->state == POP3_CLOSED) {
            pop3_forget_input(s);   /* RFC 2595 §4: nothing pipelined after STLS is honoured */
            return;
        }
        explicit_bzero(s->in, used);
        memmove(s->in, s->in + used, s->in_len - used);
        s->in_len -= used;
        explicit_bzero(s->in + s->in_len, used);
    }
}

/* ---- back-end login ---- */

/* Back-end text after the status indicator, fit to relay: printable, short,
 * and never containing the password. */
static void pop3_backend_text(const struct pop3_session *s, const uint8_t *p, size_t len, char *buf, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < cap && n < POP3_TEXT_MAX; i++)
        buf[n++] = (p[i] >= 0x20 && p[i] != 0x7f) ? (char)p[i] : '?';
    buf[n] = '\0';
    if (s->pass_len > 0 && memmem(buf, n, s->pass, s->pass_len) != NULL)
        buf[0] = '\0';
}

static void pop3_upstream_fail(struct pop3_session *s, struct proto_out *out, const char *why)
{
    char extra[64];

    snprintf(extra, sizeof(extra), "reason=%s", why);
    pop3_log(s, out, "upstream_protocol_error", extra);
    pop3_reply(out, POP3_ERR_BACKEND);
    if (s->step != LOGIN_NONE)
        proto_out_add(out, PA_UPSTREAM_CLOSE, NULL, 0);
    pop3_close(s, out, NULL);
}

static void pop3_login_ok(struct pop3_session *s, const uint8_t *text, size_t len, struct proto_out *out)
{
    char t[POP3_TEXT_MAX + 1];

    pop3_backend_text(s, text, len, t, sizeof(t));
    pop3_log(s, out, "login_ok", "");
    proto_out_printf(out, PA_REPLY, "+OK %s\r\n", t[0] ? t : "logged in");
    proto_out_add(out, PA_SPLICE, NULL, 0);
    s->state = POP3_SPLICED;
    s->step = LOGIN_NONE;
    pop3_forget_credentials(s);
    if (s->in_len > 0)
        proto_out_add(out, PA_UPSTREAM, s->in, s->in_len);
    pop3_forget_input(s);
}

static void pop3_login_failed(struct pop3_session *s, const uint8_t *text, size_t len, struct proto_out *out)
{
    unsigned limit = s->lim.max_auth_failures > 0 ? s->lim.max_auth_failures : 1;
    char t[POP3_TEXT_MAX + 1], extra[32];

    pop3_backend_text(s, text, len, t, sizeof(t));
    s->failures++;
    snprintf(extra, sizeof(extra), "failures=%u", s->failures);
    pop3_log(s, out, "login_failed", extra);
    s->step = LOGIN_NONE;
    if (s->failures >= limit) {
        pop3_reply(out, "-ERR [AUTH] too many failures\r\n");
        proto_out_add(out, PA_UPSTREAM_CLOSE, NULL, 0);
        pop3_close(s, out, NULL);
        return;
    }
    if (t[0] == '[')    /* the back-end gave its own response code */
        proto_out_printf(out, PA_REPLY, "-ERR %s\r\n", t);
    else
        proto_out_printf(out, PA_REPLY, "-ERR [AUTH] %s\r\n", t[0] ? t : "authentication failed");
    proto_out_add(out, PA_UPSTREAM_CLOSE, NULL, 0);
    pop3_forget_credentials(s);
    s->state = POP3_AUTHORIZATION;
    pop3_drain(s, out);     /* commands pipelined behind the failed login */
}

static void pop3_send_pass(struct pop3_session *s, struct proto_out *out)
{
    char line[POP3_PASS_MAX + 8];
    size_t n = 0;

    memcpy(line, "PASS ", 5);
    n = 5;
    memcpy(line + n, s->pass, s->pass_len);
    n += s->pass_len;
    memcpy(line + n, "\r\n", 2);
    n += 2;
    proto_out_add(out, PA_UPSTREAM, line, n);
    explicit_bzero(line, sizeof(line));
}

/* One back-end reply line during login. `more`: bytes followed it in the
 * same read, i.e. they were sent before our next command could be. */
static void pop3_login_line(struct pop3_session *s, const uint8_t *line, size_t len, bool more,
                            struct proto_out *out)
{
    bool ok = len >= 3 && memcmp(line, "+OK", 3) == 0 && (len == 3 || line[3] == ' ');
    bool err = len >= 4 && memcmp(line, "-ERR", 4) == 0 && (len == 4 || line[4] == ' ');
    const uint8_t *text = line + (ok ? 3 : 4);
    size_t text_len = ok ? len - 3 : err ? len - 4 : 0;

    if (text_len > 0) {
        text++;
        text_len--;
    }
    if (!ok && !err) {
        pop3_upstream_fail(s, out, "unexpected_reply");
        return;
    }
    switch (s->step) {
    case LOGIN_GREETING:
        if (err || more) {
            pop3_upstream_fail(s, out, err ? "greeting_err" : "unsolicited_data");
            return;
        }
        proto_out_printf(out, PA_UPSTREAM, "USER %s\r\n", s->user);
        s->step = LOGIN_USER;
        break;
    case LOGIN_USER:
        if (err) {
            pop3_login_failed(s, text, text_len, out);
            return;
        }
        if (more) {
            pop3_upstream_fail(s, out, "unsolicited_data");
            return;
        }
        pop3_send_pass(s, out);
        s->step = LOGIN_PASS;
        break;
    case LOGIN_PASS:
        if (err)
            pop3_login_failed(s, text, text_len, out);
        else
            pop3_login_ok(s, text, text_len, out);
        break;
    case LOGIN_NONE:
        pop3_upstream_fail(s, out, "unsolicited_data");
        break;
    }
}

/* ---- the API ---- */

struct pop3_session *pop3_session_new(const struct proto_limits *lim, bool tls_active)
{
    struct pop3_session *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->lim = *lim;
    if (s->lim.max_line == 0)
        s->lim.max_line = PROTO_DEFAULT_MAX_LINE;
    s->in_cap = s->lim.max_line + 2;
    s->in = malloc(s->in_cap);
    if (s->in == NULL) {
        free(s);
        return NULL;
    }
    s->tls_active = tls_active;
    s->state = POP3_AUTHORIZATION;
    return s;
}

void pop3_session_free(struct pop3_session **s)
{
    if (s == NULL || *s == NULL)
        return;
    explicit_bzero((*s)->in, (*s)->in_cap);
    free((*s)->in);
    explicit_bzero(*s, sizeof(**s));
    free(*s);
    *s = NULL;
}

void pop3_start(struct pop3_session *s, struct proto_out *out)
{
    if (s == NULL || s->greeted)
        return;
    s->greeted = true;
    pop3_reply(out, POP3_GREETING);
}

long pop3_client_input(struct pop3_session *s, const uint8_t *buf, size_t len, struct proto_out *out)
{
    size_t used = 0;

    if (s == NULL)
        return -1;
    pop3_start(s, out);
    switch (s->state) {
    case POP3_CLOSED:
    case POP3_STLS_WAIT:
        return (long)len;
    case POP3_SPLICED:
        if (len > 0)
            proto_out_add(out, PA_UPSTREAM, buf, len);
        return (long)len;
    default:
        break;
    }
    while (used < len) {
        size_t room = s->in_cap - s->in_len, n = len - used < room ? len - used : room;

        if (n == 0)
            break;      /* full of pipelined commands while a login runs */
        memcpy(s->in + s->in_len, buf + used, n);
        s->in_len += n;
        used += n;
        pop3_drain(s, out);
        if (s->state == POP3_CLOSED || s->state == POP3_STLS_WAIT)
            return (long)len;
        if (s->state == POP3_SPLICED) {     /* not reachable from client bytes; be safe */
            if (used < len)
                proto_out_add(out, PA_UPSTREAM, buf + used, len - used);
            return (long)len;
        }
    }
    return (long)used;
}

long pop3_upstream_input(struct pop3_session *s, const uint8_t *buf, size_t len, struct proto_out *out)
{
    size_t done = 0;

    if (s == NULL)
        return -1;
    if (len == 0)
        return 0;
    switch (s->state) {
    case POP3_CLOSED:
        return (long)len;
    case POP3_SPLICED:
        proto_out_add(out, PA_REPLY, buf, len);
        return (long)len;
    case POP3_LOGIN:
        break;
    default:
        pop3_upstream_fail(s, out, "unsolicited_data");
        return (long)len;
    }
    while (s->state == POP3_LOGIN && done < len) {
        size_t avail = len - done, scan = avail < POP3_UPSTREAM_LINE_MAX ? avail : POP3_UPSTREAM_LINE_MAX;
        const uint8_t *line = buf + done, *lf = memchr(line, '\n', scan);
        size_t line_len;

        if (lf == NULL) {
            if (avail >= POP3_UPSTREAM_LINE_MAX) {
                pop3_upstream_fail(s, out, "reply_too_long");
                return (long)len;
            }
            return (long)done;      /* a partial reply line: offered again */
        }
        line_len = (size_t)(lf - line);
        done += line_len + 1;
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        pop3_login_line(s, line, line_len, done < len, out);
    }
    if (s->state == POP3_SPLICED && done < len)
        proto_out_add(out, PA_REPLY, buf + done, len - done);
    return (long)len;   /* spliced, failed (old upstream's bytes dropped) or closed */
}

void pop3_upstream_connected(struct pop3_session *s, struct proto_out *out)
{
    (void)s;
    (void)out;          /* the back-end speaks first: wait for its greeting */
}

void pop3_upstream_error(struct pop3_session *s, enum proto_upstream_error e, struct proto_out *out)
{
    static const char *const reason[] = {
        [PUE_CONNECT_FAILED] = "connect_failed",
        [PUE_TIMEOUT] = "timeout",
        [PUE_TUNNEL_LOST] = "tunnel_lost",
        [PUE_CLOSED] = "closed",
    };
    char extra[64];

    if (s == NULL || (s->state != POP3_LOGIN && s->state != POP3_SPLICED))
        return;     /* no upstream in use: a stale report about a dropped one */
    snprintf(extra, sizeof(extra), "reason=%s spliced=%d",
             (unsigned)e < sizeof(reason) / sizeof(reason[0]) && reason[e] ? reason[e] : "unknown",
             s->state == POP3_SPLICED ? 1 : 0);
    pop3_log(s, out, "upstream_error", extra);
    if (s->state == POP3_LOGIN && e == PUE_TUNNEL_LOST && !s->login_retried) {
        /* Failover under a login: the credentials are still here and the
         * client has seen nothing yet, so log in again once, through
         * whatever tunnel comes up (the proxy holds the connect). */
        s->login_retried = true;
        pop3_log(s, out, "login_retry", "reason=tunnel_lost");
        proto_out_connect(out, s->user);
        s->step = LOGIN_GREETING;
        return;
    }
    if (s->state == POP3_LOGIN)
        pop3_close(s, out, POP3_ERR_BACKEND);
    else if (e == PUE_CLOSED)
        pop3_close(s, out, NULL);   /* the back-end ended the session and said why itself */
    else
        pop3_close(s, out, POP3_ERR_LOST);
}

void pop3_tls_started(struct pop3_session *s)
{
    if (s == NULL || s->state != POP3_STLS_WAIT)
        return;     /* only the upgrade we asked for counts */
    s->tls_active = true;
    /* RFC 2595 §4: forget what was learnt before TLS; counters stay. */
    pop3_forget_credentials(s);
    pop3_forget_input(s);
    s->state = POP3_AUTHORIZATION;
}

bool pop3_spliced(const struct pop3_session *s)
{
    return s != NULL && s->state == POP3_SPLICED;
}
