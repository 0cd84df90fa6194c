/*
 * IMAP4 front-end: the back-end side. Once the client has given user and
 * password, the back-end's greeting is read (its LITERAL+ / LITERAL- decide
 * how the arguments are sent), LOGIN is sent (in pieces at synchronizing
 * literals, each after the back-end's "+"), an untagged CAPABILITY is kept
 * for the client, and the tagged reply ends in the splice or in a NO to the
 * client. A login whose tunnel is lost starts over once.
 */
#include "protocols/imap_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMAP_UP_LINE_MAX  65536     /* back-end response line before login */
#define IMAP_LITERAL_MINUS_MAX 4096 /* RFC 7888 LITERAL- non-sync limit */

/* A growable byte string; grows by copying so old copies can be scrubbed. */
struct imap_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

static void imap_buf_put(struct imap_buf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        uint8_t *p;

        while (cap < b->len + n)
            cap *= 2;
        p = malloc(cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        if (b->len > 0)
            memcpy(p, b->p, b->len);
        imap__scrub_free(b->p, b->cap);
        b->p = p;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void imap_buf_puts(struct imap_buf *b, const char *s)
{
    imap_buf_put(b, s, strlen(s));
}

/* Case-insensitive: does line[0..n) start with word followed by SP or end? */
static bool imap_word_at(const uint8_t *line, size_t n, const char *word)
{
    size_t w = strlen(word);

    return n >= w && strncasecmp((const char *)line, word, w) == 0 && (n == w || line[w] == ' ');
}

/* User names go to logs and routing: printable bytes only there. */
static void imap_log_login(const struct imap_session *s, struct proto_out *out, const char *result)
{
    char user[IMAP_USER_MAX];
    size_t i;

    for (i = 0; s->user[i] != '\0' && i + 1 < sizeof(user); i++)
        user[i] = s->user[i] > 0x20 && s->user[i] < 0x7f && s->user[i] != '"' ? s->user[i] : '?';
    user[i] = '\0';
    proto_out_printf(out, PA_LOG, "proto=imap event=login result=%s user=\"%s\" failures=%u", result, user,
                     s->failures);
}

/* ---- the login to the back-end ---- */

static bool imap_up_nonsync_ok(const struct imap_session *s, size_t n)
{
    return s->up_literal_plus || (s->up_literal_minus && n <= IMAP_LITERAL_MINUS_MAX);
}

static bool imap_quotable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == 0 || p[i] >= 0x80 || p[i] == '\r' || p[i] == '\n')
            return false;
    return true;
}

/* One LOGIN argument: a non-sync literal, a quoted string, or a sync literal
 * (which splits the command: the rest waits for the back-end's "+"). */
static void imap_up_astring(struct imap_session *s, struct imap_buf *b, const uint8_t *p, size_t n)
{
    char marker[32];

    if (imap_up_nonsync_ok(s, n)) {
        snprintf(marker, sizeof(marker), "{%zu+}\r\n", n);
        imap_buf_puts(b, marker);
    } else if (imap_quotable(p, n)) {
        imap_buf_put(b, "\"", 1);
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '"' || p[i] == '\\')
                imap_buf_put(b, "\\", 1);
            imap_buf_put(b, &p[i], 1);
        }
        imap_buf_put(b, "\"", 1);
        return;
    } else {
        snprintf(marker, sizeof(marker), "{%zu}\r\n", n);
        imap_buf_puts(b, marker);
        s->up_split[s->up_pieces++] = b->len;
    }
    imap_buf_put(b, p, n);
}

static void imap_up_send_piece(struct imap_session *s, struct proto_out *out)
{
    size_t from = s->up_split[s->up_next];
    size_t to = s->up_next + 1 < s->up_pieces ? s->up_split[s->up_next + 1] : s->up_cmd_len;

    proto_out_add(out, PA_UPSTREAM, s->up_cmd + from, to - from);
    if (++s->up_next == s->up_pieces) {
        /* the password itself stays until the tagged reply (imap__login_scrub):
         * a login that loses its tunnel starts over once; after that once
         * nothing needs it any more */
        imap__scrub_free(s->up_cmd, s->up_cmd_len);
        s->up_cmd = NULL;
        s->up_cmd_len = 0;
        if (s->login_retried) {
            imap__scrub_free(s->pass, s->pass_len);
            s->pass = NULL;
            s->pass_len = 0;
        }
    }
}

static void imap_up_send_login(struct imap_session *s, struct proto_out *out)
{
    struct imap_buf b = { 0 };

    snprintf(s->up_tag, sizeof(s->up_tag), "esp%u", ++s->up_seq);
    s->up_pieces = 1;
    s->up_split[0] = 0;
    s->up_next = 0;
    imap_buf_puts(&b, s->up_tag);
    imap_buf_puts(&b, " LOGIN ");
    imap_up_astring(s, &b, (const uint8_t *)s->user, strlen(s->user));
    imap_buf_put(&b, " ", 1);
    imap_up_astring(s, &b, s->pass, s->pass_len);
    imap_buf_put(&b, "\r\n", 2);
    if (b.oom) {
        imap__scrub_free(b.p, b.cap);
        out->oom = 1;
        return;
    }
    s->up_cmd = b.p;
    s->up_cmd_len = b.len;
    s->state = IS_UP_LOGIN;
    imap_up_send_piece(s, out);
}

/* Back-end gone or talking nonsense before the login finished. */
static void imap_backend_fail(struct imap_session *s, struct proto_out *out, bool close_upstream,
                              const char *why)
{
    if (close_upstream)
        proto_out_add(out, PA_UPSTREAM_CLOSE, NULL, 0);
    imap__reply(out, "%s NO [UNAVAILABLE] Back-end unavailable\r\n", s->login_tag);
    imap__reply(out, "* BYE [UNAVAILABLE] back-end unavailable\r\n");
    proto_out_printf(out, PA_LOG, "proto=imap event=upstream_error reason=%s", why);
    imap__close(s, out);
}

/* "[CAPABILITY ...]" at the start of resp-text: its inside, or NULL. */
static const uint8_t *imap_caps_code(const uint8_t *text, size_t n, size_t *len_r)
{
    const uint8_t *end;

    if (n < 12 || text[0] != '[' || strncasecmp((const char *)text + 1, "CAPABILITY ", 11) != 0)
        return NULL;
    end = memchr(text, ']', n);
    if (end == NULL)
        return NULL;
    *len_r = (size_t)(end - text - 1);
    return text + 1;
}

static bool imap_caps_has(const uint8_t *caps, size_t n, const char *word)
{
    size_t w = strlen(word);

    for (size_t i = 0; i + w <= n; i++)
        if ((i == 0 || caps[i - 1] == ' ') && strncasecmp((const char *)caps + i, word, w) == 0 &&
            (i + w == n || caps[i + w] == ' '))
            return true;
    return false;
}

static void imap_up_greeting(struct imap_session *s, const uint8_t *line, size_t n, struct proto_out *out)
{
    const uint8_t *caps;
    size_t clen = 0;

    if (!imap_word_at(line, n, "* OK")) {
        imap_backend_fail(s, out, true, "bad_greeting");
        return;
    }
    caps = n > 5 ? imap_caps_code(line + 5, n - 5, &clen) : NULL;
    s->up_literal_plus = caps != NULL && imap_caps_has(caps, clen, "LITERAL+");
    s->up_literal_minus = caps != NULL && imap_caps_has(caps, clen, "LITERAL-");
    imap_up_send_login(s, out);
}

static void imap_up_login_ok(struct imap_session *s, const uint8_t *text, size_t n, struct proto_out *out)
{
    struct imap_buf b = { 0 };
    const uint8_t *caps;
    size_t clen = 0;

    caps = imap_caps_code(text, n, &clen);
    if (caps == NULL && s->up_caps != NULL) {
        imap_buf_puts(&b, "* CAPABILITY ");
        imap_buf_puts(&b, s->up_caps);
        imap_buf_puts(&b, "\r\n");
        if (!b.oom)
            proto_out_add(out, PA_REPLY, b.p, b.len);
        b.len = 0;
    }
    imap_buf_puts(&b, s->login_tag);
    imap_buf_puts(&b, " OK ");
    if (caps != NULL) {
        imap_buf_put(&b, "[", 1);
        imap_buf_put(&b, caps, clen);
        imap_buf_put(&b, "] ", 2);
    }
    imap_buf_puts(&b, "Logged in\r\n");
    if (b.oom)
        out->oom = 1;
    else
        proto_out_add(out, PA_REPLY, b.p, b.len);
    free(b.p);
    imap_log_login(s, out, "ok");
    proto_out_add(out, PA_SPLICE, NULL, 0);
    s->state = IS_SPLICED;
    imap__cmd_reset(&s->cmd);
    imap__login_scrub(s);
}

static void imap_up_login_failed(struct imap_session *s, const uint8_t *text, size_t n, struct proto_out *out)
{
    char code[40] = "AUTHENTICATIONFAILED";
    const uint8_t *end = n > 1 && text[0] == '[' ? memchr(text, ']', n) : NULL;

    /* pass on the back-end's response code when it is a plain atom */
    if (end != NULL && end - text - 1 > 0 && (size_t)(end - text - 1) < sizeof(code)) {
        size_t len = (size_t)(end - text - 1), i;

        for (i = 0; i < len && ((text[1 + i] >= 'A' && text[1 + i] <= 'Z') || text[1 + i] == '-'); i++)
            ;
        if (i == len) {
            memcpy(code, text + 1, len);
            code[len] = '\0';
        }
    }
    s->failures++;
    imap__reply(out, "%s NO [%s] Authentication failed.\r\n", s->login_tag, code);
    proto_out_add(out, PA_UPSTREAM_CLOSE, NULL, 0);
    imap_log_login(s, out, "fail");
    imap__login_scrub(s);
    if (s->failures >= s->lim.max_auth_failures) {
        imap__reply(out, "* BYE Too many authentication failures\r\n");
        imap__close(s, out);
        return;
    }
    s->state = IS_COMMAND;
}

static void imap_up_login_line(struct imap_session *s, const uint8_t *line, size_t n, struct proto_out *out)
{
    size_t tl = strlen(s->up_tag);

    if (n >= 1 && line[0] == '+') {
        if (s->up_next < s->up_pieces)
            imap_up_send_piece(s, out);
        return;
    }
    if (imap_word_at(line, n, "* CAPABILITY") && n > 13) {
        char *caps = malloc(n - 13 + 1);

        if (caps == NULL) {
            out->oom = 1;
            return;
        }
        memcpy(caps, line + 13, n - 13);
        caps[n - 13] = '\0';
        for (char *c = caps; *c != '\0'; c++)
            if ((unsigned char)*c < 0x20)
                *c = ' ';
        free(s->up_caps);
        s->up_caps = caps;
        return;
    }
    if (n <= tl || memcmp(line, s->up_tag, tl) != 0 || line[tl] != ' ')
        return;     /* other untagged data: not the client's business yet */
    line += tl + 1;
    n -= tl + 1;
    if (imap_word_at(line, n, "OK"))
        imap_up_login_ok(s, line + (n > 2 ? 3 : 2), n > 2 ? n - 3 : 0, out);
    else if (imap_word_at(line, n, "NO"))
        imap_up_login_failed(s, line + (n > 2 ? 3 : 2), n > 2 ? n - 3 : 0, out);
    else if (imap_word_at(line, n, "BAD"))
        imap_up_login_failed(s, line + (n > 3 ? 4 : 3), n > 3 ? n - 4 : 0, out);
    else
        imap_backend_fail(s, out, true, "bad_response");
}

long imap_upstream_input(struct imap_session *s, const uint8_t *buf, size_t len, struct proto_out *out)
{
    size_t pos = 0;

    if (s->state == IS_SPLICED) {
        if (len > 0)
            proto_out_add(out, PA_REPLY, buf, len);
        return (long)len;
    }
    while (pos < len && (s->state == IS_UP_GREETING || s->state == IS_UP_LOGIN)) {
        const uint8_t *lf = memchr(buf + pos, '\n', len - pos);
        size_t n = lf != NULL ? (size_t)(lf - (buf + pos)) : len - pos;

        if (n > IMAP_UP_LINE_MAX) {
            imap_backend_fail(s, out, true, "line_too_long");
            return (long)len;
        }
        if (lf == NULL)
            return (long)pos;
        if (n > 0 && buf[pos + n - 1] == '\r')
            n--;
        if (s->state == IS_UP_GREETING)
            imap_up_greeting(s, buf + pos, n, out);
        else
            imap_up_login_line(s, buf + pos, n, out);
        pos = (size_t)(lf - buf) + 1;
    }
    /* after the splice the rest is the proxy's to relay; otherwise there is
     * no upstream conversation left and stray bytes are dropped */
    return s->state == IS_SPLICED ? (long)pos : (long)len;
}

void imap_upstream_connected(struct imap_session *s, struct proto_out *out)
{
    (void)s;
    (void)out;
}

void imap_upstream_error(struct imap_session *s, enum proto_upstream_error e, struct proto_out *out)
{
    static const char *const why[] = { "connect_failed", "timeout", "tunnel_lost", "closed" };
    const char *w = (unsigned)e < 4 ? why[e] : "unknown";

    if (s->state == IS_SPLICED) {
        imap__reply(out, "* BYE [UNAVAILABLE] back-end connection lost\r\n");
        proto_out_printf(out, PA_LOG, "proto=imap event=upstream_error reason=%s spliced=1", w);
        imap__close(s, out);
    } else if ((s->state == IS_UP_GREETING || s->state == IS_UP_LOGIN) && e == PUE_TUNNEL_LOST &&
               !s->login_retried && s->pass != NULL) {
        /* Failover under a login: the client has seen nothing yet, so log
         * in again once through whatever tunnel comes up (the proxy holds
         * the connect); the new back-end's greeting decides the literals. */
        s->login_retried = true;
        imap__up_forget(s);
        s->state = IS_UP_GREETING;
        proto_out_printf(out, PA_LOG, "proto=imap event=login_retry reason=%s", w);
        proto_out_connect(out, s->user);
    } else if (s->state == IS_UP_GREETING || s->state == IS_UP_LOGIN) {
        imap_backend_fail(s, out, false, w);
    }
}
