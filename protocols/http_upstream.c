/*
 * HTTP/1.1 module: responses from the back-end, and what happens when the
 * back-end goes away (issue 8).
 *
 * Responses are parsed by a second llhttp instance only to find where each
 * one ends; the bytes themselves are relayed untouched, in order. The
 * parser is told what it cannot see: a response to HEAD, a 1xx and a 2xx to
 * CONNECT carry no body. llhttp pauses at every message end so that each
 * response is matched with its request (the oldest in flight).
 *
 * Failover: each in-flight request keeps a copy of what was forwarded (head
 * + body up to max_retry_body) until its response starts. When the
 * upstream is lost before any byte of the oldest response reached the
 * client, and every in-flight request is idempotent, fully kept and not yet
 * retried, they are all sent again, in order, on a new connection. Else
 * the client gets 502 / 503 (Retry-After: 1) if nothing of the current
 * response went out, or just the close if something did (truncation is the
 * only honest signal). Every path ends in a response, a retry or a close.
 */
#include "protocols/http_internal.h"

#include <string.h>

static int resp_on_headers_complete(llhttp_t *p)
{
    struct http_session *s = p->data;
    struct http__req *r = http__oldest(s);

    s->resp_headers_done = true;
    s->resp_status = llhttp_get_status_code(p);
    if (r == NULL)
        return -1;
    if (s->resp_status < 200 || s->resp_status == 204 || s->resp_status == 304 || r->head)
        return 1;   /* no body, whatever Content-Length says (RFC 9112 §6.3) */
    if (r->method == HTTP_CONNECT && s->resp_status / 100 == 2)
        return 1;   /* a tunnel follows */
    return 0;
}

static int resp_on_message_complete(llhttp_t *p)
{
    struct http_session *s = p->data;

    s->resp_keep_alive = llhttp_should_keep_alive(p);
    s->resp_msg_done = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t http_resp_settings = {
    .on_headers_complete = resp_on_headers_complete,
    .on_message_complete = resp_on_message_complete,
};

void http__resp_init(struct http_session *s)
{
    llhttp_init(&s->resp, HTTP_RESPONSE, &http_resp_settings);
    s->resp.data = s;
    s->resp_headers_done = false;
    s->resp_msg_done = false;
    s->resp_status = 0;
    s->resp_cur_bytes = 0;
    s->resp_batch_start = HTTP__NOT_IN_BATCH;
}

void http__deferred_check(struct http_session *s)
{
    struct http__req *r = http__oldest(s);

    if (s->closed || s->deferred_status == 0)
        return;
    if (r == NULL || (r->broken && s->resp_cur_bytes == 0))
        http__error_close(s, s->deferred_status, "deferred");
}

static int reply_take(struct http_session *s, const uint8_t *buf, size_t n)
{
    struct http__req *r = http__oldest(s);

    if (n == 0)
        return 0;
    if (s->resp_cur_bytes == 0) {
        s->resp_batch_start = s->reply_batch.len;
        if (r != NULL)
            http__req_release(r);   /* its response started: no retry from here on */
    }
    s->resp_cur_bytes += n;
    return http__buf_append(&s->reply_batch, buf, n);
}

/* The back-end broke the protocol: 502 if the client saw nothing of this response. */
static void upstream_broken(struct http_session *s, const char *why)
{
    if (s->resp_batch_start != HTTP__NOT_IN_BATCH) {
        s->reply_batch.len = s->resp_batch_start;   /* the message started in this call: withhold it */
        s->resp_cur_bytes = 0;
    }
    if (s->resp_cur_bytes == 0) {
        http__error_close(s, 502, why);
        return;
    }
    http__close(s, true);
    http__log(s, "event=http_upstream_error reason=%s truncated=1", why);
}

/* A 101, or a 2xx to CONNECT: hand the connection over to the proxy's splice. */
static void upgrade_complete(struct http_session *s, const uint8_t *rest, size_t restlen)
{
    struct http__req *r = http__oldest(s);

    if (r == NULL || !r->upgrade) {
        upstream_broken(s, "unexpected_upgrade");
        return;
    }
    if (http__buf_append(&s->reply_batch, rest, restlen) != 0) {
        s->out->oom = 1;
        return;
    }
    http__pop(s);
    http__flush_reply(s);
    proto_out_add(s->out, PA_SPLICE, NULL, 0);
    s->spliced = true;
    http__log(s, "event=http_upgrade");
}

/* A response message ended; returns true when the rest of buf was taken too. */
static bool response_complete(struct http_session *s, const uint8_t *rest, size_t restlen)
{
    struct http__req *r = http__oldest(s);
    int status = s->resp_status;
    bool close;

    s->resp_msg_done = false;
    s->resp_headers_done = false;
    llhttp_resume(&s->resp);
    if (status == 101 || (r != NULL && r->method == HTTP_CONNECT && status / 100 == 2)) {
        upgrade_complete(s, rest, restlen);
        return true;
    }
    s->resp_cur_bytes = 0;
    s->resp_batch_start = HTTP__NOT_IN_BATCH;
    if (status < 200) {
        r->interim_sent = true;     /* 100 Continue and friends: the final response follows */
        return false;
    }
    close = !s->resp_keep_alive || r->close || r->broken;
    http__pop(s);
    if (close || (s->client_eof && s->q_count == 0)) {
        http__close(s, true);
        return true;
    }
    if (s->rx_state == HTTP_RX_WAIT_UPGRADE && s->q_count == 0) {
        /* the upgrade was declined: plain HTTP goes on */
        llhttp_init(&s->req, HTTP_REQUEST, s->req.settings);
        s->req.data = s;
        s->rx_state = HTTP_RX_HEAD;
    }
    http__deferred_check(s);
    return s->closed;
}

long http_upstream_input(struct http_session *s, const uint8_t *buf, size_t len, struct proto_out *out)
{
    size_t off = 0;

    s->out = out;
    if (s->closed)
        return (long)len;
    if (s->spliced) {
        proto_out_add(out, PA_REPLY, buf, len);
        return (long)len;
    }
    while (off < len && !s->closed && !s->spliced) {
        const char *at = (const char *)buf + off;
        llhttp_errno_t e;
        size_t used = len - off;

        if (http__oldest(s) == NULL) {
            /* nothing was asked: a server that speaks out of turn is not kept */
            http__flush_reply(s);
            if (s->upstream_open)
                proto_out_add(out, PA_UPSTREAM_CLOSE, NULL, 0);
            s->upstream_open = false;
            if (s->rx_state == HTTP_RX_BODY)
                s->rx_discard = true;   /* the rest of an answered body has nowhere to go */
            http__resp_init(s);
            http__log(s, "event=http_unsolicited_response bytes=%zu", len - off);
            off = len;
            break;
        }
        e = llhttp_execute(&s->resp, at, used);
        if (e == HPE_PAUSED)
            used = (size_t)(llhttp_get_error_pos(&s->resp) - at);
        else if (e != HPE_OK) {
            upstream_broken(s, llhttp_errno_name(e));
            off = len;
            break;
        }
        if (reply_take(s, buf + off, used) != 0) {
            out->oom = 1;
            return -1;
        }
        off += used;
        if (s->resp_msg_done && response_complete(s, buf + off, len - off))
            off = len;
    }
    http__flush_reply(s);
    return out->oom ? -1 : (long)off;
}

static bool retry_possible(struct http_session *s, enum proto_upstream_error e)
{
    if (e != PUE_TUNNEL_LOST && e != PUE_CLOSED && e != PUE_CONNECT_FAILED)
        return false;
    if (s->resp_cur_bytes > 0 || s->q_count == 0)
        return false;
    for (unsigned i = 0; i < s->q_count; i++) {
        const struct http__req *r = &s->q[(s->q_head + i) % HTTP_MAX_PIPELINE];

        if (!r->idempotent || !r->copy_ok || r->retried || r->broken || r->interim_sent || r->upgrade)
            return false;
    }
    return true;
}

static const char *error_name(enum proto_upstream_error e)
{
    switch (e) {
    case PUE_CONNECT_FAILED: return "connect_failed";
    case PUE_TIMEOUT: return "timeout";
    case PUE_TUNNEL_LOST: return "tunnel_lost";
    case PUE_CLOSED: return "closed";
    }
    return "unknown";
}

static void retry(struct http_session *s, enum proto_upstream_error e)
{
    http__resp_init(s);
    proto_out_connect(s->out, "");
    s->upstream_open = true;
    for (unsigned i = 0; i < s->q_count; i++) {
        struct http__req *r = &s->q[(s->q_head + i) % HTTP_MAX_PIPELINE];

        r->retried = true;
        if (http__buf_append(&s->up_batch, r->copy.p, r->copy.len) != 0)
            s->out->oom = 1;
    }
    /* the rest of a body whose response is already out has nowhere to go now */
    if (s->rx_state == HTTP_RX_BODY && !s->rx_in_queue)
        s->rx_discard = true;
    http__flush_up(s);
    http__log(s, "event=http_retry requests=%u reason=%s", s->q_count, error_name(e));
}

void http_upstream_error(struct http_session *s, enum proto_upstream_error e, struct proto_out *out)
{
    struct http__req *r;

    s->out = out;
    if (s->closed)
        return;
    s->upstream_open = false;
    if (s->spliced) {
        http__close(s, false);
        return;
    }
    r = http__oldest(s);
    if (r == NULL) {
        /* idle keep-alive connection went away: the next request reconnects */
        http__resp_init(s);
        if (s->rx_state == HTTP_RX_BODY)
            s->rx_discard = true;
        if (s->client_eof)
            http__close(s, false);
        return;
    }
    if (s->resp_headers_done && llhttp_message_needs_eof(&s->resp)) {
        /* a close-delimited body: its end is the close, passed on to the client */
        http__pop(s);
        http__close(s, false);
        return;
    }
    if (retry_possible(s, e)) {
        retry(s, e);
        return;
    }
    if (s->resp_cur_bytes > 0) {
        http__close(s, false);
        http__log(s, "event=http_upstream_error reason=%s truncated=1", error_name(e));
    } else if (r->broken) {
        http__error_close(s, s->deferred_status, "bad_request");
    } else {
        http__error_close(s, e == PUE_TUNNEL_LOST || e == PUE_TIMEOUT ? 503 : 502, error_name(e));
    }
}
