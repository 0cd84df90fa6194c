/*
 * IMAP4 front-end: the session and the client side (pre-auth dialogue,
 * command reading, limits). The login to the back-end, up to the splice, is in
 * imap_upstream.c. See imap.h for the action sequences.
 *
 * A client command is read as fragments: a line, and when it ends in a
 * literal marker {n} / {n+}, n literal bytes and the next line. Tokens of
 * every fragment go into one per-command buffer (which may hold a password
 * and is scrubbed before it is freed). A command with a syntax error is
 * still read to its end (its non-synchronizing literals skipped) so the
 * stream stays in step, then answered with the error.
 */
#include "protocols/imap_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- small helpers shared by the module ---- */

void imap__reply(struct proto_out *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        o->oom = 1;
        return;
    }
    proto_out_add(o, PA_REPLY, buf, (size_t)n);
}

void imap__scrub_free(void *p, size_t len)
{
    if (p != NULL) {
        explicit_bzero(p, len);
        free(p);
    }
}

static bool imap_is_tag_char(uint8_t c)
{
    /* RFC 3501 §9: ASTRING-CHAR except "+" */
    return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

static bool imap_is_atom_char(uint8_t c)
{
    /* lenient: 8-bit bytes (UTF-8 user names) are accepted in atoms */
    return c > 0x20 && c != 0x7f && strchr("(){\"\\", c) == NULL;
}

static const char *imap_tag_or_star(const struct imap_cmd *c)
{
    return c->tag[0] != '\0' ? c->tag : "*";
}

static void imap_capabilities(const struct imap_session *s, char *buf, size_t cap)
{
    bool login_disabled = !s->lim.plaintext_without_tls && !s->tls_active;

    snprintf(buf, cap, "IMAP4rev1 SASL-IR LITERAL+ ID%s%s",
             s->lim.starttls_offered && !s->tls_active ? " STARTTLS" : "",
             login_disabled ? " LOGINDISABLED" : " AUTH=PLAIN");
}

static bool imap_login_disabled(const struct imap_session *s)
{
    return !s->lim.plaintext_without_tls && !s->tls_active;
}

/* ---- session ---- */

struct imap_session *imap_session_new(const struct proto_limits *lim, bool tls_active)
{
    struct imap_session *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    if (lim != NULL)
        s->lim = *lim;
    if (s->lim.max_line == 0)
        s->lim.max_line = PROTO_DEFAULT_MAX_LINE;
    if (s->lim.max_literal == 0)
        s->lim.max_literal = PROTO_DEFAULT_MAX_LITERAL;
    if (s->lim.max_auth_failures == 0)
        s->lim.max_auth_failures = PROTO_DEFAULT_AUTH_FAILURES;
    s->tls_active = tls_active;
    s->state = IS_NEW;
    return s;
}

void imap__cmd_reset(struct imap_cmd *c)
{
    imap__scrub_free(c->buf, c->cap);
    memset(c, 0, sizeof(*c));
}

void imap__up_forget(struct imap_session *s)
{
    imap__scrub_free(s->up_cmd, s->up_cmd_len);
    s->up_cmd = NULL;
    s->up_cmd_len = 0;
    s->up_pieces = s->up_next = 0;
    free(s->up_caps);
    s->up_caps = NULL;
}

void imap__login_scrub(struct imap_session *s)
{
    imap__scrub_free(s->pass, s->pass_len);
    s->pass = NULL;
    s->pass_len = 0;
    imap__up_forget(s);
}

void imap_session_free(struct imap_session **sp)
{
    struct imap_session *s;

    if (sp == NULL || *sp == NULL)
        return;
    s = *sp;
    imap__cmd_reset(&s->cmd);
    imap__login_scrub(s);
    explicit_bzero(s, sizeof(*s));
    free(s);
    *sp = NULL;
}

void imap_start(struct imap_session *s, struct proto_out *out)
{
    char caps[128];

    if (s->state != IS_NEW)
        return;
    imap_capabilities(s, caps, sizeof(caps));
    imap__reply(out, "* OK [CAPABILITY %s] esproxy ready\r\n", caps);
    s->state = IS_COMMAND;
}

bool imap_spliced(const struct imap_session *s)
{
    return s->state == IS_SPLICED;
}

void imap_tls_started(struct imap_session *s)
{
    if (s->state != IS_TLS_WAIT)
        return;     /* only meaningful after our PA_STARTTLS */
    s->tls_active = true;
    s->state = IS_COMMAND;
    imap__cmd_reset(&s->cmd);
}

void imap__close(struct imap_session *s, struct proto_out *out)
{
    proto_out_add(out, PA_CLOSE, NULL, 0);
    s->state = IS_CLOSED;
    imap__cmd_reset(&s->cmd);
    imap__login_scrub(s);
}

/* ---- starting a login (the back-end side is in imap_upstream.c) ---- */

static void imap_login_begin(struct imap_session *s, const char *tag, const uint8_t *user, size_t ulen,
                             const uint8_t *pass, size_t plen, struct proto_out *out)
{
    if (ulen == 0 || ulen >= IMAP_USER_MAX) {
        imap__reply(out, "%s NO [AUTHENTICATIONFAILED] Invalid user name\r\n", tag);
        return;
    }
    for (size_t i = 0; i < ulen; i++) {
        if (user[i] < 0x20 || user[i] == 0x7f) {
            imap__reply(out, "%s NO [AUTHENTICATIONFAILED] Invalid user name\r\n", tag);
            return;
        }
    }
    if (memchr(pass, '\0', plen) != NULL) {
        imap__reply(out, "%s BAD NUL byte in password\r\n", tag);
        return;
    }
    imap__login_scrub(s);
    s->pass = malloc(plen + 1);
    if (s->pass == NULL) {
        out->oom = 1;
        return;
    }
    memcpy(s->pass, pass, plen);
    s->pass_len = plen;
    memcpy(s->user, user, ulen);
    s->user[ulen] = '\0';
    snprintf(s->login_tag, sizeof(s->login_tag), "%s", tag);
    s->state = IS_UP_GREETING;
    s->login_retried = false;
    proto_out_connect(out, s->user);
}

/* ---- client commands ---- */

static void imap_cmd_fail(struct imap_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Remember the first error; the command is read to its end, then answered. */
static void imap_cmd_fail(struct imap_cmd *c, const char *fmt, ...)
{
    va_list ap;

    if (c->discard)
        return;
    c->discard = true;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

/* Room for n more token bytes (grows by copying so old copies are scrubbed). */
static bool imap_cmd_grow(struct imap_cmd *c, size_t n)
{
    size_t cap = c->cap ? c->cap : 64;
    uint8_t *p;

    if (c->len + n <= c->cap)
        return true;
    while (cap < c->len + n)
        cap *= 2;
    p = malloc(cap);
    if (p == NULL)
        return false;
    if (c->len > 0)
        memcpy(p, c->buf, c->len);
    imap__scrub_free(c->buf, c->cap);
    c->buf = p;
    c->cap = cap;
    return true;
}

static void imap_tok_add(struct imap_cmd *c, enum imap_tok_type type, const uint8_t *p, size_t n)
{
    if (c->ntok == IMAP_MAX_TOKENS) {
        imap_cmd_fail(c, "%s BAD Too many arguments", imap_tag_or_star(c));
        return;
    }
    if (!imap_cmd_grow(c, n)) {
        imap_cmd_fail(c, "%s BAD Out of memory", imap_tag_or_star(c));
        return;
    }
    c->tok[c->ntok++] = (struct imap_tok){ type, (uint32_t)c->len, (uint32_t)n };
    if (n > 0)
        memcpy(c->buf + c->len, p, n);
    c->len += n;
}

static size_t imap_parse_quoted(struct imap_cmd *c, const uint8_t *p, size_t n)
{
    size_t i = 1, o;
    uint8_t *tmp = malloc(n);

    if (tmp == NULL) {
        imap_cmd_fail(c, "%s BAD Out of memory", imap_tag_or_star(c));
        return n;
    }
    for (o = 0; i < n && p[i] != '"'; i++) {
        if (p[i] == '\\') {
            if (i + 1 >= n || (p[i + 1] != '"' && p[i + 1] != '\\'))
                break;
            i++;
        } else if (p[i] == '\0' || p[i] == '\r' || p[i] == '\n') {
            break;
        }
        tmp[o++] = p[i];
    }
    if (i < n && p[i] == '"')
        imap_tok_add(c, TK_QUOTED, tmp, o);
    else
        imap_cmd_fail(c, "%s BAD Invalid quoted string", imap_tag_or_star(c));
    imap__scrub_free(tmp, n);
    return i + 1;
}

/* Arguments of one fragment (literal marker already cut off). */
static void imap_parse_args(struct imap_cmd *c, const uint8_t *p, size_t n, bool after_literal)
{
    size_t i = 0;

    if (after_literal && n > 0 && p[0] != ' ' && p[0] != ')') {
        imap_cmd_fail(c, "%s BAD Missing space after literal", imap_tag_or_star(c));
        return;
    }
    while (i < n && !c->discard) {
        size_t start = i;

        if (p[i] == ' ') {
            i++;
        } else if (p[i] == '(' || p[i] == ')') {
            imap_tok_add(c, p[i] == '(' ? TK_LPAREN : TK_RPAREN, NULL, 0);
            i++;
        } else if (p[i] == '"') {
            i += imap_parse_quoted(c, p + i, n - i);
        } else {
            while (i < n && imap_is_atom_char(p[i]))
                i++;
            if (i == start)
                imap_cmd_fail(c, "%s BAD Invalid characters in command", imap_tag_or_star(c));
            else
                imap_tok_add(c, TK_ATOM, p + start, i - start);
        }
    }
}

/* First fragment: tag SP command [SP arguments]. */
static void imap_parse_head(struct imap_cmd *c, const uint8_t *p, size_t n)
{
    size_t i = 0, j;

    while (i < n && imap_is_tag_char(p[i]))
        i++;
    if (i == 0 || (i < n && p[i] != ' ')) {
        imap_cmd_fail(c, "* BAD Invalid tag");
        return;
    }
    if (i > IMAP_TAG_MAX) {
        imap_cmd_fail(c, "* BAD Tag too long");
        return;
    }
    memcpy(c->tag, p, i);
    c->tag[i] = '\0';
    if (i == n || i + 1 == n || p[i + 1] == ' ') {
        imap_cmd_fail(c, "%s BAD Missing command", c->tag);
        return;
    }
    for (j = ++i; j < n && p[j] != ' '; j++) {
        if (!imap_is_atom_char(p[j])) {
            imap_cmd_fail(c, "%s BAD Invalid characters in command", c->tag);
            return;
        }
    }
    if (j - i < sizeof(c->name)) {
        for (size_t k = 0; k < j - i; k++)
            c->name[k] = (char)(p[i + k] >= 'a' && p[i + k] <= 'z' ? p[i + k] - 32 : p[i + k]);
        c->name[j - i] = '\0';
    }
    imap_parse_args(c, p + j, n - j, false);
}

/* A literal marker "{n}" or "{n+}" ending the fragment: its length, or 0. */
static size_t imap_literal_marker(const uint8_t *p, size_t n, uint64_t *size_r, bool *nonsync_r)
{
    size_t i, digits_end;
    uint64_t v = 0;

    if (n < 3 || p[n - 1] != '}')
        return 0;
    digits_end = n - 1;
    *nonsync_r = p[n - 2] == '+';
    if (*nonsync_r)
        digits_end--;
    for (i = digits_end; i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9'; i--)
        ;
    if (i == digits_end || i == 0 || p[i - 1] != '{')
        return 0;
    for (size_t k = i; k < digits_end; k++)     /* saturates: too large anyway */
        v = v > UINT32_MAX ? v : v * 10 + (uint64_t)(p[k] - '0');
    *size_r = v;
    return n - (i - 1);
}

static const char *const imap_postauth_cmds[] = {
    "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB",
    "STATUS", "APPEND", "CHECK", "CLOSE", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "UID",
    "IDLE", "ENABLE", "NAMESPACE", "UNSELECT", "GETQUOTA", "GETQUOTAROOT", "SETQUOTA", "GETACL",
    "SETACL", "MYRIGHTS", "LISTRIGHTS", "DELETEACL", "GETMETADATA", "SETMETADATA", "SORT", "THREAD",
    "COMPRESS", "NOTIFY",
};

/* The refusal for a command the proxy does not run before login. */
static void imap_refusal(const struct imap_cmd *c, bool sync_literal, char *buf, size_t cap)
{
    for (size_t i = 0; i < sizeof(imap_postauth_cmds) / sizeof(imap_postauth_cmds[0]); i++) {
        if (strcmp(c->name, imap_postauth_cmds[i]) == 0) {
            /* BAD stops a client from sending a synchronizing literal */
            snprintf(buf, cap, "%s %s Log in first", c->tag, sync_literal ? "BAD" : "NO");
            return;
        }
    }
    snprintf(buf, cap, "%s BAD Unknown command", c->tag);
}

static bool imap_tok_is_string(const struct imap_tok *t)
{
    return t->type == TK_ATOM || t->type == TK_QUOTED || t->type == TK_LITERAL;
}

static bool imap_tok_is_nil(const struct imap_cmd *c, const struct imap_tok *t)
{
    return t->type == TK_ATOM && t->len == 3 && strncasecmp((char *)c->buf + t->off, "NIL", 3) == 0;
}

/* RFC 2971: ID NIL, or ID (field value ...) with its size bounds. The
 * client's ID is answered here, not forwarded: the back-end gets its own
 * login from us. */
static void imap_cmd_id(struct imap_session *s, struct proto_out *out)
{
    struct imap_cmd *c = &s->cmd;
    unsigned pairs = c->ntok >= 2 ? (c->ntok - 2) / 2 : 0;
    bool ok = false, bounded = true;

    if (c->ntok == 1)
        ok = imap_tok_is_nil(c, &c->tok[0]);
    else if (c->ntok >= 2 && c->ntok % 2 == 0 && c->tok[0].type == TK_LPAREN &&
             c->tok[c->ntok - 1].type == TK_RPAREN) {
        ok = true;
        for (unsigned i = 1; i + 1 < c->ntok; i += 2) {
            const struct imap_tok *f = &c->tok[i], *v = &c->tok[i + 1];

            ok = ok && imap_tok_is_string(f) && !imap_tok_is_nil(c, f) && imap_tok_is_string(v);
            bounded = bounded && f->len <= IMAP_ID_FIELD_MAX &&
                      (v->len <= IMAP_ID_VALUE_MAX || imap_tok_is_nil(c, v));
        }
    }
    if (!ok) {
        imap__reply(out, "%s BAD Invalid ID arguments\r\n", c->tag);
        return;
    }
    if (!bounded || pairs > IMAP_ID_PAIRS_MAX) {
        imap__reply(out, "%s BAD ID beyond RFC 2971 limits (%u pairs, fields %u and values %u octets)\r\n",
                    c->tag, IMAP_ID_PAIRS_MAX, IMAP_ID_FIELD_MAX, IMAP_ID_VALUE_MAX);
        return;
    }
    imap__reply(out, "* ID (\"name\" \"esproxy\")\r\n");
    imap__reply(out, "%s OK ID completed\r\n", c->tag);
}

/* SASL PLAIN from base64 text ("=" is an empty initial response). */
static void imap_auth_plain(struct imap_session *s, const char *tag, const uint8_t *b64, size_t n,
                            struct proto_out *out)
{
    size_t cap = n / 4 * 3 + 1;
    uint8_t *msg = malloc(cap);
    char *user = malloc(cap), *pass = malloc(cap);
    long mlen = 0;

    if (msg == NULL || user == NULL || pass == NULL) {
        out->oom = 1;
        goto done;
    }
    if (!(n == 1 && b64[0] == '='))
        mlen = proto_base64_decode((const char *)b64, n, msg, cap);
    if (mlen < 0) {
        imap__reply(out, "%s BAD Invalid base64 data\r\n", tag);
        goto done;
    }
    if (proto_sasl_plain_parse(msg, (size_t)mlen, user, cap, pass, cap) != 0) {
        imap__reply(out, "%s NO [AUTHENTICATIONFAILED] Invalid PLAIN message\r\n", tag);
        goto done;
    }
    imap_login_begin(s, tag, (const uint8_t *)user, strlen(user), (const uint8_t *)pass, strlen(pass), out);
done:
    imap__scrub_free(msg, cap);
    imap__scrub_free(user, cap);
    imap__scrub_free(pass, cap);
}

static void imap_cmd_authenticate(struct imap_session *s, struct proto_out *out)
{
    struct imap_cmd *c = &s->cmd;
    const struct imap_tok *ir = &c->tok[1];

    if (c->ntok < 1 || c->ntok > 2 || c->tok[0].type != TK_ATOM || (c->ntok == 2 && ir->type != TK_ATOM)) {
        imap__reply(out, "%s BAD Invalid AUTHENTICATE arguments\r\n", c->tag);
    } else if (c->tok[0].len != 5 || strncasecmp((char *)c->buf + c->tok[0].off, "PLAIN", 5) != 0) {
        imap__reply(out, "%s NO Unsupported authentication mechanism\r\n", c->tag);
    } else if (imap_login_disabled(s)) {
        imap__reply(out, "%s NO [PRIVACYREQUIRED] Plaintext authentication needs TLS\r\n", c->tag);
    } else if (c->ntok == 2) {
        imap_auth_plain(s, c->tag, c->buf + ir->off, ir->len, out);
    } else {
        snprintf(s->auth_tag, sizeof(s->auth_tag), "%s", c->tag);
        imap__reply(out, "+ \r\n");
        s->state = IS_AUTH_CONT;
    }
}

static void imap_cmd_login(struct imap_session *s, struct proto_out *out)
{
    struct imap_cmd *c = &s->cmd;

    if (imap_login_disabled(s))
        imap__reply(out, "%s NO [PRIVACYREQUIRED] Plaintext login needs TLS\r\n", c->tag);
    else if (c->ntok != 2 || !imap_tok_is_string(&c->tok[0]) || !imap_tok_is_string(&c->tok[1]))
        imap__reply(out, "%s BAD Invalid LOGIN arguments\r\n", c->tag);
    else
        imap_login_begin(s, c->tag, c->buf + c->tok[0].off, c->tok[0].len, c->buf + c->tok[1].off,
                         c->tok[1].len, out);
}

static void imap_cmd_run(struct imap_session *s, struct proto_out *out)
{
    struct imap_cmd *c = &s->cmd;
    char line[IMAP_ERR_MAX];
    bool noargs = c->ntok == 0;

    if (strcmp(c->name, "CAPABILITY") == 0 && noargs) {
        imap_capabilities(s, line, sizeof(line));
        imap__reply(out, "* CAPABILITY %s\r\n", line);
        imap__reply(out, "%s OK CAPABILITY completed\r\n", c->tag);
    } else if (strcmp(c->name, "NOOP") == 0 && noargs) {
        imap__reply(out, "%s OK NOOP completed\r\n", c->tag);
    } else if (strcmp(c->name, "LOGOUT") == 0 && noargs) {
        imap__reply(out, "* BYE esproxy logging out\r\n");
        imap__reply(out, "%s OK LOGOUT completed\r\n", c->tag);
        imap__close(s, out);
    } else if (strcmp(c->name, "STARTTLS") == 0 && noargs) {
        if (s->tls_active || !s->lim.starttls_offered) {
            imap__reply(out, "%s BAD STARTTLS not available\r\n", c->tag);
            return;
        }
        imap__reply(out, "%s OK Begin TLS negotiation now\r\n", c->tag);
        proto_out_add(out, PA_STARTTLS, NULL, 0);
        s->state = IS_TLS_WAIT;
    } else if (strcmp(c->name, "ID") == 0) {
        imap_cmd_id(s, out);
    } else if (strcmp(c->name, "LOGIN") == 0) {
        imap_cmd_login(s, out);
    } else if (strcmp(c->name, "AUTHENTICATE") == 0) {
        imap_cmd_authenticate(s, out);
    } else if (strcmp(c->name, "CAPABILITY") == 0 || strcmp(c->name, "NOOP") == 0 ||
               strcmp(c->name, "LOGOUT") == 0 || strcmp(c->name, "STARTTLS") == 0) {
        imap__reply(out, "%s BAD Unexpected arguments\r\n", c->tag);
    } else {
        imap_refusal(c, false, line, sizeof(line));
        imap__reply(out, "%s\r\n", line);
    }
}

static void imap_cmd_finish(struct imap_session *s, struct proto_out *out)
{
    if (s->cmd.discard)
        imap__reply(out, "%s\r\n", s->cmd.err);
    else
        imap_cmd_run(s, out);
    imap__cmd_reset(&s->cmd);
}

static bool imap_cmd_takes_literals(const struct imap_session *s)
{
    const struct imap_cmd *c = &s->cmd;

    return strcmp(c->name, "ID") == 0 || (strcmp(c->name, "LOGIN") == 0 && !imap_login_disabled(s));
}

static void imap_literal_begin(struct imap_session *s, uint64_t size, bool nonsync, struct proto_out *out)
{
    struct imap_cmd *c = &s->cmd;

    if (size > s->lim.max_literal - c->lit_total) {
        imap__reply(out, "%s BAD Literal too large\r\n", imap_tag_or_star(c));
        if (nonsync) {
            /* its bytes are on the way and would read as commands */
            imap__reply(out, "* BYE Literal too large\r\n");
            imap__close(s, out);
        } else {
            imap__cmd_reset(c);
        }
        return;
    }
    if (!nonsync && !c->discard && !imap_cmd_takes_literals(s)) {
        if (strcmp(c->name, "LOGIN") == 0)
            imap_cmd_fail(c, "%s BAD [PRIVACYREQUIRED] Plaintext login needs TLS", c->tag);
        else
            imap_refusal(c, true, c->err, sizeof(c->err));
        c->discard = true;
    }
    if (!c->discard) {
        imap_tok_add(c, TK_LITERAL, NULL, 0);
        if (!c->discard && !imap_cmd_grow(c, (size_t)size))
            imap_cmd_fail(c, "%s BAD Out of memory", c->tag);
    }
    if (!nonsync && c->discard) {
        imap_cmd_finish(s, out);    /* the BAD tells the client not to send it */
        return;
    }
    if (!nonsync)
        imap__reply(out, "+ Ready for literal\r\n");
    c->lit_total += (size_t)size;
    c->lit_need = (size_t)size;
    c->continuation = true;
    s->state = size > 0 ? IS_LITERAL : IS_COMMAND;
}

static size_t imap_literal_read(struct imap_session *s, const uint8_t *p, size_t n)
{
    struct imap_cmd *c = &s->cmd;
    size_t k = n < c->lit_need ? n : c->lit_need;

    if (!c->discard) {
        memcpy(c->buf + c->len, p, k);      /* room reserved in imap_literal_begin */
        c->len += k;
        c->tok[c->ntok - 1].len += k;
    }
    c->lit_need -= k;
    if (c->lit_need == 0)
        s->state = IS_COMMAND;
    return k;
}

static void imap_fragment(struct imap_session *s, const uint8_t *p, size_t n, struct proto_out *out)
{
    struct imap_cmd *c = &s->cmd;
    bool cont = c->continuation;
    uint64_t size = 0;
    bool nonsync = false;
    size_t mlen;

    if (!cont && n == 0)
        return;     /* empty lines are ignored */
    c->line_total += n;
    mlen = imap_literal_marker(p, n, &size, &nonsync);
    if (!c->discard) {
        if (cont)
            imap_parse_args(c, p, n - mlen, true);
        else
            imap_parse_head(c, p, n - mlen);
    }
    if (mlen == 0)
        imap_cmd_finish(s, out);
    else
        imap_literal_begin(s, size, nonsync, out);
}

static void imap_auth_line(struct imap_session *s, const uint8_t *p, size_t n, struct proto_out *out)
{
    char tag[IMAP_TAG_MAX + 1];

    memcpy(tag, s->auth_tag, sizeof(tag));
    s->state = IS_COMMAND;
    if (n == 1 && p[0] == '*')
        imap__reply(out, "%s BAD AUTHENTICATE cancelled\r\n", tag);
    else
        imap_auth_plain(s, tag, p, n, out);
}

/* Is the command being read an ID? p/n: the start of its first line. */
static bool imap_reading_id(const struct imap_session *s, const uint8_t *p, size_t n)
{
    size_t i = 0;

    if (s->state != IS_COMMAND)
        return false;
    if (s->cmd.continuation)
        return strcmp(s->cmd.name, "ID") == 0;
    while (i < n && i <= IMAP_TAG_MAX && imap_is_tag_char(p[i]))
        i++;
    return i > 0 && i + 3 < n && p[i] == ' ' && strncasecmp((const char *)p + i + 1, "ID", 2) == 0 &&
           (p[i + 3] == ' ' || p[i + 3] == '\r' || p[i + 3] == '\n');
}

/* The longest line allowed for the command being read: max_line, or for an
 * ID the most RFC 2971 allows (imaptest sends a 31,807-byte one). */
static size_t imap_line_limit(const struct imap_session *s, const uint8_t *p, size_t n)
{
    if (s->lim.max_line < IMAP_ID_LINE_MAX && imap_reading_id(s, p, n))
        return IMAP_ID_LINE_MAX;
    return s->lim.max_line;
}

/* One line (command fragment or AUTHENTICATE response): bytes used, 0 = wait. */
static size_t imap_line_read(struct imap_session *s, const uint8_t *p, size_t n, struct proto_out *out)
{
    const uint8_t *lf = memchr(p, '\n', n);
    size_t linelen = lf != NULL ? (size_t)(lf - p) : n;
    size_t content = linelen > 0 && p[linelen - 1] == '\r' ? linelen - 1 : linelen;
    size_t before = s->state == IS_AUTH_CONT ? 0 : s->cmd.line_total;

    if (before + content > s->lim.max_line && before + content > imap_line_limit(s, p, n)) {
        imap__reply(out, "* BAD Line too long\r\n");
        imap__close(s, out);
        return n;
    }
    if (lf == NULL)
        return 0;
    if (s->state == IS_AUTH_CONT)
        imap_auth_line(s, p, content, out);
    else
        imap_fragment(s, p, content, out);
    return linelen + 1;
}

long imap_client_input(struct imap_session *s, const uint8_t *buf, size_t len, struct proto_out *out)
{
    size_t pos = 0;

    switch (s->state) {
    case IS_NEW:
    case IS_UP_GREETING:
    case IS_UP_LOGIN:
        return 0;
    case IS_TLS_WAIT:
    case IS_CLOSED:
        return (long)len;
    case IS_SPLICED:
        if (len > 0)
            proto_out_add(out, PA_UPSTREAM, buf, len);
        return (long)len;
    default:
        break;
    }
    while (pos < len && !out->oom) {
        size_t used;

        if (s->state == IS_LITERAL)
            used = imap_literal_read(s, buf + pos, len - pos);
        else if (s->state == IS_COMMAND || s->state == IS_AUTH_CONT)
            used = imap_line_read(s, buf + pos, len - pos, out);
        else
            break;
        if (used == 0)
            break;
        pos += used;
        if (s->state == IS_TLS_WAIT || s->state == IS_CLOSED)
            return (long)len;   /* RFC 3501 §6.2.1: plaintext after STARTTLS is dropped */
    }
    return (long)pos;
}
