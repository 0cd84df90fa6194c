/*
 * Front-end sessions; see session.h. The protocol modules decide, this
 * file only carries bytes and executes their actions in order.
 *
 * Buffers: unconsumed client bytes (cin) and upstream bytes (uin) are
 * kept only while a module has not taken them; upstream writes issued
 * before the stream is connected wait in uq. All three are allocated on
 * demand and bounded, so an idle session holds none of them.
 *
 * Output backpressure, in every state: once the client's output is over
 * the listener's output_buffer (chan_write says 1) the session stops
 * reading the client, stops offering held client bytes to the module and
 * stops taking bytes from the back-end stream (lwIP's window then closes
 * toward the back-end). When the client has read its output down to the
 * low watermark (drained), held upstream bytes, then held client bytes,
 * go to the module again and reading resumes. POP3 and IMAP commands are
 * offered SESSION_PUMP_SLICE bytes at a time, so one offer's replies stay
 * small whatever the amplification (a 6-byte CAPA asks for ~150 bytes);
 * HTTP answers client bytes only with an error and a close.
 */
#include "proxy/session.h"
#include "proxy/frontend.h"
#include "proxy/log.h"
#include "proxy/pp2.h"
#include "ipsec/stream.h"
#include "protocols/http.h"
#include "protocols/imap.h"
#include "protocols/pop3.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_BUF_MAX (256u * 1024u)  /* cap on cin / uin / uq */
#define SESSION_PUMP_SLICE 4096u        /* POP3/IMAP bytes offered to the module at once */

/* ---- the three protocols behind one table ---- */

struct sproto {
    const char *name;
    void *(*create)(const struct fe_listener *l, bool tls, const char *client_ip);
    void (*destroy)(void *p);
    void (*start)(void *p, struct proto_out *o);
    long (*client_input)(void *p, const uint8_t *b, size_t n, struct proto_out *o);
    long (*upstream_input)(void *p, const uint8_t *b, size_t n, struct proto_out *o);
    void (*upstream_error)(void *p, enum proto_upstream_error e, struct proto_out *o);
    void (*tls_started)(void *p);
    void (*client_eof)(void *p, struct proto_out *o);
    const char *idle_bye;       /* written before closing an idle session */
    size_t pump_slice;          /* client bytes offered at once; 0: all (no replies to amplify) */
};

static void *pop3_create(const struct fe_listener *l, bool tls, const char *ip)
{
    (void)ip;
    return pop3_session_new(&l->limits, tls);
}
static void pop3_destroy(void *p) { struct pop3_session *s = p; pop3_session_free(&s); }
static void imap_destroy(void *p) { struct imap_session *s = p; imap_session_free(&s); }
static void http_destroy(void *p) { struct http_session *s = p; http_session_free(&s); }

static void *imap_create(const struct fe_listener *l, bool tls, const char *ip)
{
    (void)ip;
    return imap_session_new(&l->limits, tls);
}

static void *http_create(const struct fe_listener *l, bool tls, const char *ip)
{
    return http_session_new(&l->http, ip, tls);
}

static const struct sproto sprotos[] = {
    [CFG_PROTO_POP3] = { "pop3", pop3_create, pop3_destroy, (void (*)(void *, struct proto_out *))pop3_start,
                         (long (*)(void *, const uint8_t *, size_t, struct proto_out *))pop3_client_input,
                         (long (*)(void *, const uint8_t *, size_t, struct proto_out *))pop3_upstream_input,
                         (void (*)(void *, enum proto_upstream_error, struct proto_out *))pop3_upstream_error,
                         (void (*)(void *))pop3_tls_started, NULL,
                         "-ERR [SYS/TEMP] Disconnected for inactivity.\r\n", SESSION_PUMP_SLICE },
    [CFG_PROTO_IMAP] = { "imap", imap_create, imap_destroy, (void (*)(void *, struct proto_out *))imap_start,
                         (long (*)(void *, const uint8_t *, size_t, struct proto_out *))imap_client_input,
                         (long (*)(void *, const uint8_t *, size_t, struct proto_out *))imap_upstream_input,
                         (void (*)(void *, enum proto_upstream_error, struct proto_out *))imap_upstream_error,
                         (void (*)(void *))imap_tls_started, NULL,
                         "* BYE Disconnected for inactivity.\r\n", SESSION_PUMP_SLICE },
    [CFG_PROTO_HTTP] = { "http", http_create, http_destroy, NULL,
                         (long (*)(void *, const uint8_t *, size_t, struct proto_out *))http_client_input,
                         (long (*)(void *, const uint8_t *, size_t, struct proto_out *))http_upstream_input,
                         (void (*)(void *, enum proto_upstream_error, struct proto_out *))http_upstream_error,
                         NULL, (void (*)(void *, struct proto_out *))http_client_eof, NULL, 0 },
};

/* [off, off + len) of p holds the bytes; consuming only moves off */
struct buf {
    uint8_t *p;
    size_t off, len, cap;
};

struct session {
    struct frontend *fe;
    struct fe_listener *l;
    const struct sproto *sp;
    int proto;
    void *mod;
    struct proto_out out;
    struct chan *c;
    struct stream *s;
    bool s_connected, s_expected_close;
    int tunnel;
    int await_tunnel;           /* the tunnel told about our wait (awaiting) */
    struct buf cin, uin, uq;
    uv_timer_t timer;
    uint64_t idle_deadline, login_deadline, hold_deadline;
    uint64_t out_full_since;    /* when client_out_full was set, or the client last read */
    size_t out_unacked;         /* chan_write_unacked then */
    uint64_t preauth_deadline;  /* preauth_timeout_s; 0 = none (see session_preauth_armed) */
    bool spliced, closing, held, in_actions, counted, logged_in, upstream_eof, client_eof;
    bool awaiting;              /* sent the back-end a request, no answer yet */
    bool client_paused_up;      /* client reading stopped: the stream is full */
    bool client_paused_buf;     /* client reading stopped: the module holds enough */
    bool upstream_paused;       /* stream reading stopped: the client is slow */
    bool client_out_full;       /* client output over the high watermark, until drained */
    struct sockaddr_in peer;
    char peer_ip[INET_ADDRSTRLEN];
    struct session *next, **pprev;
};

static struct session_counts counts[3];
static struct session *sessions_all;    /* every live session, for stop and status */

void session_counts_get(int proto, struct session_counts *c)
{
    *c = counts[proto];
}

static uint8_t *buf_data(const struct buf *b)
{
    return b->p + b->off;
}

static void buf_free(struct buf *b);

static bool buf_append(struct buf *b, const void *data, size_t len)
{
    if (b->len + len > SESSION_BUF_MAX)
        return false;
    if (b->off + b->len + len > b->cap && b->off > 0) {
        size_t stale = b->off > b->len ? b->off : b->len;   /* the moved bytes' old place */

        memmove(b->p, b->p + b->off, b->len);
        explicit_bzero(b->p + stale, b->off + b->len - stale);
        b->off = 0;
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        uint8_t *p;

        while (cap < b->len + len)
            cap *= 2;
        p = proto_secure_grow(b->p, b->cap, b->len, cap);   /* cin and uq may hold credentials */
        if (p == NULL)
            return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->off + b->len, data, len);
    b->len += len;
    return true;
}

static void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_free(b);    /* idle sessions keep no buffers */
        return;
    }
    explicit_bzero(b->p + b->off, n);    /* may hold credentials */
    b->off += n;
    b->len -= n;
}

static void buf_free(struct buf *b)
{
    proto_secure_free(b->p, b->cap);    /* may hold credentials */
    memset(b, 0, sizeof(*b));
}

static uint64_t session_now(const struct session *ss)
{
    return uv_now(frontend_loop(ss->fe));
}

/* How long the client may stay silent, or leave its output unread. */
static uint64_t session_idle_ms(const struct session *ss)
{
    return (uint64_t)(ss->logged_in ? ss->l->cfg->idle_s : ss->l->cfg->preauth_idle_s) * 1000;
}

static void session_run(struct session *ss);
static void session_pump(struct session *ss);
static void session_eof_check(struct session *ss);
static void session_arm_timer(struct session *ss);
static void session_finish(struct session *ss);
static void session_http_head_deadline(struct session *ss, bool was_partial);

/* ---- upstream stream ---- */

/* Whether the session waits for the back-end's answer to what it sent, so
 * that the tunnel notices a dead peer within stall_ms + dead_after_ms even
 * when everything sent was acknowledged. Spliced sessions are not tracked:
 * an IMAP IDLE may rightly wait half an hour. */
static void session_await(struct session *ss, bool on)
{
    if (ss->awaiting == on || (on && ss->spliced))
        return;
    ss->awaiting = on;
    if (on)
        ss->await_tunnel = ss->tunnel;
    frontend_awaiting(ss->fe, ss->await_tunnel, on ? 1 : -1);
}

static void session_upstream_drop(struct session *ss)
{
    if (ss->s != NULL) {
        ss->s_expected_close = true;
        stream_set_data(ss->s, NULL);
        stream_abort(ss->s);
        ss->s = NULL;
    }
    ss->s_connected = false;
    ss->upstream_paused = false;
    session_await(ss, false);
    buf_free(&ss->uin);
    buf_free(&ss->uq);
}

static void session_upstream_error(struct session *ss, enum proto_upstream_error e)
{
    if (ss->closing)
        return;
    if (e == PUE_TUNNEL_LOST)
        counts[ss->proto].tunnel_lost++;
    ss->sp->upstream_error(ss->mod, e, &ss->out);
    session_run(ss);
    session_pump(ss);
}

/* Client reading follows the three reasons to stop it: the stream is full,
 * the module holds enough, the client does not read its output. */
static void session_client_reading(struct session *ss)
{
    if (ss->c == NULL || ss->closing)
        return;
    if (ss->client_paused_up || ss->client_paused_buf || ss->client_out_full)
        chan_read_stop(ss->c);
    else
        chan_read_start(ss->c);
}

static void session_client_write(struct session *ss, const void *p, size_t n)
{
    int rc;

    if (ss->c == NULL)
        return;
    rc = chan_write(ss->c, p, n);
    if (rc < 0) {
        chan_abort(ss->c);
    } else if (rc == 1 && !ss->client_out_full) {
        ss->client_out_full = true;     /* until drained */
        ss->out_full_since = session_now(ss);
        ss->out_unacked = chan_write_unacked(ss->c);
        session_client_reading(ss);
        session_arm_timer(ss);
    }
}

/* Bytes for the upstream: now, or when the stream connects. */
static void session_upstream_write(struct session *ss, const void *p, size_t n)
{
    int rc;

    if (ss->s == NULL || !ss->s_connected) {
        if (!buf_append(&ss->uq, p, n))
            session_upstream_error(ss, PUE_CLOSED);
        return;
    }
    rc = stream_write(ss->s, p, n);
    if (rc >= 0)
        session_await(ss, true);
    if (rc == 1 && !ss->client_paused_up) {
        ss->client_paused_up = true;    /* until the stream drains */
        session_client_reading(ss);
    } else if (rc < 0) {
        session_upstream_drop(ss);
        session_upstream_error(ss, PUE_CLOSED);
    }
}

static void sess_stream_connected(struct stream *s)
{
    struct session *ss = stream_get_data(s);
    struct buf q;

    if (ss == NULL)
        return;
    ss->s_connected = true;
    q = ss->uq;
    memset(&ss->uq, 0, sizeof(ss->uq));
    if (q.len > 0)
        session_upstream_write(ss, buf_data(&q), q.len);
    buf_free(&q);
}

/* Offer held upstream bytes to the module (not spliced: the module
 * answers the client from them), unless the client's output is full. */
static void session_upstream_feed(struct session *ss)
{
    long used;

    if (ss->spliced || ss->uin.len == 0 || ss->in_actions || ss->closing || ss->client_out_full)
        return;
    used = ss->sp->upstream_input(ss->mod, buf_data(&ss->uin), ss->uin.len, &ss->out);
    if (used > 0)
        buf_consume(&ss->uin, (size_t)used);
    session_run(ss);
}

static size_t sess_stream_data(struct stream *s, const struct iovec *iov, size_t n)
{
    struct session *ss = stream_get_data(s);
    size_t taken = 0;

    if (ss == NULL)
        return 0;
    session_await(ss, false);
    if (n == 0) {   /* the back-end finished sending */
        if (ss->spliced) {
            ss->upstream_eof = true;
            if (ss->client_eof)
                session_finish(ss);
            else if (ss->c != NULL)
                chan_shutdown(ss->c);
        } else {
            session_upstream_drop(ss);
            session_upstream_error(ss, PUE_CLOSED);
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        /* a client that does not read its output stops the back-end too:
         * what is not taken stays in the stream, whose window closes */
        if (ss->c == NULL || ss->client_out_full) {
            ss->upstream_paused = true;     /* resumed at chan drained */
            break;
        }
        if (ss->spliced) {
            session_client_write(ss, iov[i].iov_base, iov[i].iov_len);
        } else if (!buf_append(&ss->uin, iov[i].iov_base, iov[i].iov_len)) {
            ss->upstream_paused = true;
            break;
        }
        taken += iov[i].iov_len;
    }
    session_upstream_feed(ss);
    session_pump(ss);
    return taken;
}

static void sess_stream_drained(struct stream *s)
{
    struct session *ss = stream_get_data(s);

    if (ss != NULL && ss->client_paused_up) {
        ss->client_paused_up = false;
        session_client_reading(ss);
    }
}

static void sess_stream_closed(struct stream *s, enum stream_close_reason reason)
{
    struct session *ss = stream_get_data(s);
    bool was_connected;

    if (ss == NULL || ss->s != s)
        return;     /* a stream we already dropped */
    was_connected = ss->s_connected;
    ss->s = NULL;
    ss->s_connected = false;
    session_await(ss, false);
    if (ss->s_expected_close)
        return;
    if (ss->spliced && ss->upstream_eof && reason != STREAM_TUNNEL_LOST) {
        /* the back-end ended the session itself (LOGOUT, QUIT): done */
        if (ss->c != NULL)
            chan_close(ss->c);
        return;
    }
    session_upstream_error(ss, reason == STREAM_TUNNEL_LOST ? PUE_TUNNEL_LOST
                               : reason == STREAM_TIMEOUT ? (was_connected ? PUE_TIMEOUT : PUE_CONNECT_FAILED)
                               : was_connected ? PUE_CLOSED : PUE_CONNECT_FAILED);
}

static const struct stream_callbacks sess_stream_cb = {
    .connected = sess_stream_connected,
    .data = sess_stream_data,
    .drained = sess_stream_drained,
    .closed = sess_stream_closed,
};

static void session_open_upstream(struct session *ss)
{
    const struct config *cfg = frontend_config(ss->fe);
    struct tunnel *t = frontend_tunnel(ss->fe, ss->tunnel);
    int rc;

    ss->s_expected_close = false;
    rc = stream_open(frontend_netstack(ss->fe), tunnel_peer(t), ss->l->cfg->backend_port, cfg->connect_timeout_ms,
                     &sess_stream_cb, ss, &ss->s);
    if (rc != 0) {
        ss->s = NULL;
        session_upstream_error(ss, PUE_CONNECT_FAILED);
        return;
    }
    if (cfg->tunnels[ss->tunnel].proxy_protocol == CFG_PROXY_PROTOCOL_V2 && ss->c != NULL) {
        uint8_t hdr[PP2_V4_LEN];
        struct sockaddr_in local;

        chan_local(ss->c, &local);
        pp2_build(hdr, &ss->peer, &local);
        /* first bytes of the stream, ahead of anything the module queued */
        {
            struct buf q = ss->uq;

            memset(&ss->uq, 0, sizeof(ss->uq));
            buf_append(&ss->uq, hdr, sizeof(hdr));
            if (q.len > 0)
                buf_append(&ss->uq, buf_data(&q), q.len);
            buf_free(&q);
        }
    }
    ss->login_deadline = session_now(ss) + (uint64_t)cfg->login_timeout_s * 1000;
    session_arm_timer(ss);
}

/* PA_CONNECT: route, then connect now or hold while the tunnel re-keys. */
static void session_connect(struct session *ss, const char *user)
{
    session_upstream_drop(ss);
    ss->tunnel = frontend_route(ss->fe, ss->l, user);
    if (tunnel_state(frontend_tunnel(ss->fe, ss->tunnel)) == LIVE_UP) {
        session_open_upstream(ss);
        return;
    }
    if (frontend_hold(ss->fe, ss->tunnel, ss) != 0) {
        counts[ss->proto].failed_held++;
        session_upstream_error(ss, PUE_CONNECT_FAILED);
        return;
    }
    ss->held = true;
    counts[ss->proto].held++;
    counts[ss->proto].held_total++;
    /* hold_ms bounds the wait now; session_open_upstream sets the login
     * deadline again (a login starting over must not inherit the old one) */
    ss->login_deadline = 0;
    ss->hold_deadline = session_now(ss) + frontend_config(ss->fe)->hold_ms;
    session_arm_timer(ss);
}

bool session_is_held(const struct session *ss)
{
    return ss->held;
}

void session_release_held(struct session *ss)
{
    ss->held = false;
    ss->hold_deadline = 0;
    counts[ss->proto].held--;
    session_open_upstream(ss);
}

void session_fail_held(struct session *ss)
{
    if (!ss->held)
        return;
    frontend_unhold(ss->fe, ss);
    ss->held = false;
    ss->hold_deadline = 0;
    counts[ss->proto].held--;
    counts[ss->proto].failed_held++;
    session_upstream_error(ss, PUE_TIMEOUT);
}

/* ---- actions ---- */

static void session_splice(struct session *ss)
{
    ss->spliced = true;
    session_await(ss, false);
    ss->logged_in = true;
    ss->login_deadline = 0;
    counts[ss->proto].spliced++;
    /* bytes still held go straight through from now on */
    if (ss->cin.len > 0) {
        struct buf b = ss->cin;

        memset(&ss->cin, 0, sizeof(ss->cin));
        session_upstream_write(ss, buf_data(&b), b.len);
        buf_free(&b);
    }
    if (ss->uin.len > 0) {
        session_client_write(ss, buf_data(&ss->uin), ss->uin.len);
        buf_free(&ss->uin);
    }
    /* A client that finished sending before its login was answered: its
     * commands go on, but the back-end is not sent the FIN (right behind
     * the login it reached dovecot while handing the connection to its
     * mail process, which then dropped the commands unanswered); the
     * session ends when the back-end closes (QUIT) or at idle_s. */
}

static void session_close(struct session *ss)
{
    ss->closing = true;
    if (ss->held) {
        frontend_unhold(ss->fe, ss);
        counts[ss->proto].held--;
    }
    ss->held = false;
    session_upstream_drop(ss);
    if (ss->c != NULL)
        chan_close(ss->c);
}

/* Both sides of a spliced session finished sending: close both cleanly. */
static void session_finish(struct session *ss)
{
    ss->closing = true;
    if (ss->s != NULL) {
        ss->s_expected_close = true;
        stream_close(ss->s);    /* FIN after queued bytes, no RST */
    }
    if (ss->c != NULL)
        chan_close(ss->c);
}

static void session_action(struct session *ss, const struct proto_action *a)
{
    switch (a->kind) {
    case PA_REPLY:
        session_client_write(ss, a->data, a->len);
        break;
    case PA_UPSTREAM:
        session_upstream_write(ss, a->data, a->len);
        break;
    case PA_CONNECT:
        session_connect(ss, a->user);
        break;
    case PA_UPSTREAM_CLOSE:
        session_upstream_drop(ss);
        session_arm_timer(ss);  /* a failed login: the pre-login deadline counts again */
        break;
    case PA_SPLICE:
        session_splice(ss);
        break;
    case PA_STARTTLS:
        if (ss->l->tls == NULL || chan_start_tls(ss->c, ss->l->tls) != 0)
            session_close(ss);
        break;
    case PA_CLOSE:
        session_close(ss);
        break;
    case PA_LOG:
        log_event(LOG_INFO, "session", "listener=%s client=%s %s", ss->l->cfg->name, ss->peer_ip,
                  (const char *)a->data);
        break;
    }
}

static void session_run(struct session *ss)
{
    if (ss->in_actions)
        return;     /* the outer run picks up what was appended */
    ss->in_actions = true;
    for (size_t i = 0; i < ss->out.n && !ss->closing; i++)
        session_action(ss, &ss->out.a[i]);
    if (ss->out.oom)
        session_close(ss);
    proto_out_reset(&ss->out);
    ss->in_actions = false;
}

/* Offer held client bytes to the module, a slice at a time, until it
 * stops taking them or the client's output is full. */
static void session_pump(struct session *ss)
{
    while (!ss->closing && !ss->spliced && ss->cin.len > 0 && !ss->in_actions && !ss->client_out_full) {
        size_t n = ss->sp->pump_slice != 0 && ss->sp->pump_slice < ss->cin.len ? ss->sp->pump_slice : ss->cin.len;
        long used = ss->sp->client_input(ss->mod, buf_data(&ss->cin), n, &ss->out);

        if (used == 0 && ss->out.n == 0 && n < ss->cin.len) {
            /* a line longer than a slice: offer it up to its end, not the
             * commands behind it (their replies would come all at once) */
            const uint8_t *lf = memchr(buf_data(&ss->cin) + n, '\n', ss->cin.len - n);

            n = lf != NULL ? (size_t)(lf - buf_data(&ss->cin)) + 1 : ss->cin.len;
            used = ss->sp->client_input(ss->mod, buf_data(&ss->cin), n, &ss->out);
        }
        if (used > 0)
            buf_consume(&ss->cin, (size_t)used);
        session_run(ss);
        if (used <= 0)
            break;
    }
    /* a module that holds much waits for upstream events: stop reading */
    if (!ss->spliced && ss->cin.len >= SESSION_BUF_MAX / 2)
        ss->client_paused_buf = true;
    else if (ss->spliced || ss->cin.len < SESSION_BUF_MAX / 4)
        ss->client_paused_buf = false;
    session_client_reading(ss);
    session_eof_check(ss);
}

/* The login is on its way to the back-end (or held for the tunnel). */
static bool session_login_in_flight(const struct session *ss)
{
    return ss->held || ss->awaiting || (ss->s != NULL && !ss->s_connected);
}

/* A POP3/IMAP client that finished sending before login is closed once
 * nothing it sent is left to answer: no login in flight, and no command
 * held (one held only because the client's output is full waits for the
 * drain). HTTP decides for itself (http_client_eof). */
static void session_eof_check(struct session *ss)
{
    if (ss->client_eof && ss->sp->client_eof == NULL && !ss->spliced && !ss->closing && !session_login_in_flight(ss) &&
        (ss->cin.len == 0 || !ss->client_out_full))
        session_close(ss);
}

/* ---- client channel ---- */

static void sess_chan_data(struct chan *c, const uint8_t *buf, size_t len)
{
    struct session *ss = chan_data(c);

    ss->idle_deadline = session_now(ss) + session_idle_ms(ss);
    if (ss->closing)
        return;
    if (ss->spliced) {
        session_upstream_write(ss, buf, len);
        return;
    }
    if (!buf_append(&ss->cin, buf, len)) {
        session_close(ss);
        return;
    }
    if (ss->proto == CFG_PROTO_HTTP) {
        bool was_partial = http_head_partial(ss->mod);

        session_pump(ss);
        session_http_head_deadline(ss, was_partial);
        return;
    }
    session_pump(ss);
}

/* The client read its output down to the low watermark: what waited for
 * that goes on, upstream bytes first (they are older than the client's
 * next commands), then reading resumes. */
static void sess_chan_drained(struct chan *c)
{
    struct session *ss = chan_data(c);

    ss->client_out_full = false;
    if (ss->closing)
        return;
    if (ss->upstream_paused && ss->s != NULL) {
        ss->upstream_paused = false;
        stream_read_start(ss->s);
    }
    session_upstream_feed(ss);
    session_pump(ss);
}

static void sess_chan_tls_done(struct chan *c, int status)
{
    struct session *ss = chan_data(c);

    if (status != 0 || ss->closing || ss->mod == NULL)
        return;     /* a failed handshake closes the channel itself */
    if (ss->l->cfg->tls == CFG_TLS_IMPLICIT) {
        /* implicit TLS: the dialogue starts once the handshake is done */
        if (ss->sp->start != NULL)
            ss->sp->start(ss->mod, &ss->out);
        session_run(ss);
        return;
    }
    if (ss->sp->tls_started != NULL) {
        ss->sp->tls_started(ss->mod);
        buf_free(&ss->cin);     /* RFC 2595: nothing sent before the handshake counts */
        session_pump(ss);
    }
}

static void sess_chan_eof(struct chan *c)
{
    struct session *ss = chan_data(c);

    if (ss->closing)
        return;
    ss->client_eof = true;
    if (ss->spliced) {
        if (ss->s != NULL && !ss->upstream_eof)
            stream_shutdown(ss->s);
        else
            session_finish(ss);
        return;
    }
    if (ss->sp->client_eof != NULL) {
        ss->sp->client_eof(ss->mod, &ss->out);
        session_run(ss);
        return;
    }
    /* POP3/IMAP: what was sent before the end is still answered (a login
     * in flight, commands pipelined behind it), as a server would */
    session_pump(ss);
}

static void sess_timer_closed(uv_handle_t *h)
{
    struct session *ss = h->data;

    proto_out_free(&ss->out);
    free(ss);
}

static void sess_chan_closed(struct chan *c, const char *why)
{
    struct session *ss = chan_data(c);

    (void)why;
    ss->c = NULL;
    ss->closing = true;
    if (ss->pprev != NULL) {
        *ss->pprev = ss->next;
        if (ss->next != NULL)
            ss->next->pprev = ss->pprev;
        ss->pprev = NULL;
    }
    if (ss->held)
        frontend_unhold(ss->fe, ss);
    if (ss->held)
        counts[ss->proto].held--;
    ss->held = false;
    session_upstream_drop(ss);
    buf_free(&ss->cin);
    if (ss->mod != NULL)
        ss->sp->destroy(ss->mod);
    ss->mod = NULL;
    if (ss->counted) {
        counts[ss->proto].active--;
        frontend_client_remove(ss->fe, ss->peer.sin_addr.s_addr);
    }
    uv_close((uv_handle_t *)&ss->timer, sess_timer_closed);
}

static const struct chan_callbacks sess_chan_cb = {
    .data = sess_chan_data,
    .drained = sess_chan_drained,
    .tls_done = sess_chan_tls_done,
    .eof = sess_chan_eof,
    .closed = sess_chan_closed,
};

/* ---- timers ---- */

/*
 * The pre-login deadline (preauth_timeout_s) is absolute: bytes dripped by
 * the client do not move it. POP3/IMAP: from accept until the login
 * succeeds; while a login awaits the back-end, login_timeout_s governs
 * instead. HTTP: from the first byte of a request head until the head is
 * complete.
 */
static bool session_preauth_armed(const struct session *ss)
{
    if (ss->preauth_deadline == 0 || ss->spliced || ss->logged_in)
        return false;
    return ss->proto == CFG_PROTO_HTTP || (ss->s == NULL && !ss->held);
}

static void session_http_head_deadline(struct session *ss, bool was_partial)
{
    if (ss->closing || ss->mod == NULL)
        return;
    if (!http_head_partial(ss->mod)) {
        ss->preauth_deadline = 0;
    } else if (!was_partial || ss->preauth_deadline == 0) {
        ss->preauth_deadline = session_now(ss) + (uint64_t)ss->l->cfg->preauth_timeout_s * 1000;
        session_arm_timer(ss);
    }
}

static void session_preauth_expired(struct session *ss)
{
    static const char *const bye[] = {
        [CFG_PROTO_POP3] = "-ERR [SYS/TEMP] Login took too long.\r\n",
        [CFG_PROTO_IMAP] = "* BYE Login took too long.\r\n",
    };

    ss->preauth_deadline = 0;
    if (ss->proto == CFG_PROTO_HTTP && !http_head_partial(ss->mod))
        return;     /* the head completed meanwhile */
    log_event(LOG_INFO, "session_preauth_timeout", "listener=%s client=%s timeout_s=%u", ss->l->cfg->name,
              ss->peer_ip, ss->l->cfg->preauth_timeout_s);
    if (ss->proto == CFG_PROTO_HTTP) {
        http_request_timeout(ss->mod, &ss->out);
        session_run(ss);
        return;
    }
    session_client_write(ss, bye[ss->proto], strlen(bye[ss->proto]));
    session_close(ss);
}

static void sess_on_timer(uv_timer_t *h)
{
    struct session *ss = h->data;
    uint64_t now = session_now(ss);

    if (ss->closing)
        return;
    if (session_preauth_armed(ss) && now >= ss->preauth_deadline) {
        session_preauth_expired(ss);
        if (ss->closing)
            return;
    } else if (ss->held && ss->hold_deadline && now >= ss->hold_deadline) {
        log_event(LOG_WARN, "session_hold_timeout", "listener=%s client=%s", ss->l->cfg->name, ss->peer_ip);
        session_fail_held(ss);
    } else if (ss->login_deadline && now >= ss->login_deadline && !ss->spliced) {
        ss->login_deadline = 0;
        session_upstream_drop(ss);
        session_upstream_error(ss, PUE_TIMEOUT);
    } else if (ss->client_out_full && now >= ss->out_full_since + session_idle_ms(ss)) {
        size_t left = ss->c != NULL ? chan_write_unacked(ss->c) : 0;

        if (left < ss->out_unacked) {
            /* it reads, if slowly: another idle period */
            ss->out_unacked = left;
            ss->out_full_since = now;
        } else {
            /* none of its output read for an idle period: it holds memory, not a dialogue */
            log_event(LOG_INFO, "session_output_stalled", "listener=%s client=%s buffered=%zu", ss->l->cfg->name,
                      ss->peer_ip, ss->c != NULL ? chan_write_buffered(ss->c) : 0);
            session_close(ss);
            return;
        }
    } else if (now >= ss->idle_deadline && (ss->client_out_full ||
                                            (ss->proto == CFG_PROTO_HTTP && !http_idle(ss->mod)))) {
        /* output waiting for the client (the stall check above judges it),
         * or a request in progress, is not idleness: look again one idle
         * period later (re-arming at the passed deadline spun the loop) */
        ss->idle_deadline = now + session_idle_ms(ss);
    } else if (now >= ss->idle_deadline) {
        log_event(LOG_INFO, "session_idle_timeout", "listener=%s client=%s", ss->l->cfg->name, ss->peer_ip);
        if (ss->sp->idle_bye != NULL)
            session_client_write(ss, ss->sp->idle_bye, strlen(ss->sp->idle_bye));
        session_close(ss);
        return;
    }
    session_arm_timer(ss);
}

static void session_arm_timer(struct session *ss)
{
    uint64_t now = session_now(ss), d = ss->idle_deadline;

    if (ss->closing)
        return;
    if (ss->held && ss->hold_deadline && ss->hold_deadline < d)
        d = ss->hold_deadline;
    if (ss->login_deadline && !ss->spliced && ss->login_deadline < d)
        d = ss->login_deadline;
    if (ss->client_out_full && ss->out_full_since + session_idle_ms(ss) < d)
        d = ss->out_full_since + session_idle_ms(ss);
    if (session_preauth_armed(ss) && ss->preauth_deadline < d)
        d = ss->preauth_deadline;
    uv_timer_start(&ss->timer, sess_on_timer, d > now ? d - now : 0, 0);
}

/* ---- accept ---- */

int session_accept(struct frontend *fe, struct fe_listener *l, uv_stream_t *server)
{
    struct session *ss = calloc(1, sizeof(*ss));
    int rc;

    if (ss == NULL)
        return UV_ENOMEM;
    ss->fe = fe;
    ss->l = l;
    ss->proto = l->cfg->protocol;
    ss->sp = &sprotos[ss->proto];
    proto_out_init(&ss->out);
    rc = chan_accept(&ss->c, server, l->cfg->tls == CFG_TLS_IMPLICIT ? l->tls : NULL, &sess_chan_cb, ss);
    if (rc != 0) {
        free(ss);
        return rc;
    }
    chan_set_watermarks(ss->c, l->cfg->output_buffer / 4, l->cfg->output_buffer);
    uv_timer_init(frontend_loop(fe), &ss->timer);
    ss->timer.data = ss;
    ss->next = sessions_all;
    if (ss->next != NULL)
        ss->next->pprev = &ss->next;
    ss->pprev = &sessions_all;
    sessions_all = ss;
    chan_peer(ss->c, &ss->peer);
    inet_ntop(AF_INET, &ss->peer.sin_addr, ss->peer_ip, sizeof(ss->peer_ip));
    counts[ss->proto].accepted++;
    if (frontend_client_add(fe, ss->peer.sin_addr.s_addr) != 0) {
        log_event(LOG_WARN, "client_refused", "listener=%s client=%s reason=connection_limit", l->cfg->name,
                  ss->peer_ip);
        chan_abort(ss->c);
        return 0;
    }
    ss->counted = true;
    counts[ss->proto].active++;
    ss->mod = ss->sp->create(l, l->cfg->tls == CFG_TLS_IMPLICIT, ss->peer_ip);
    if (ss->mod == NULL) {
        chan_abort(ss->c);
        return 0;
    }
    ss->idle_deadline = session_now(ss) + (uint64_t)l->cfg->preauth_idle_s * 1000;
    if (ss->proto != CFG_PROTO_HTTP)
        ss->preauth_deadline = session_now(ss) + (uint64_t)l->cfg->preauth_timeout_s * 1000;
    if (ss->sp->start != NULL && l->cfg->tls != CFG_TLS_IMPLICIT)
        ss->sp->start(ss->mod, &ss->out);
    session_run(ss);
    session_arm_timer(ss);
    return 0;
}

void session_abort(struct session *ss)
{
    if (ss->c != NULL)
        chan_abort(ss->c);
}

void session_abort_all(void)
{
    for (struct session *ss = sessions_all; ss != NULL; ss = ss->next)
        if (ss->c != NULL)
            chan_abort(ss->c);
}
