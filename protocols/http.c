/*
 * HTTP/1.1 module: the session and the client side.
 *
 * A request head is first gathered by a strict line scanner (CRLF only, no
 * obs-fold, no NUL, at most max_header_bytes) and only then handed whole to
 * llhttp, so every header span points into one buffer and nothing of a bad
 * head ever reaches the back-end. Bodies are streamed through the same
 * llhttp instance, which validates Content-Length and chunked framing; the
 * raw bytes it accepts are forwarded as they are (chunked stays chunked).
 * llhttp is paused at every message end so that the next head goes through
 * the scanner again.
 *
 * Upstream bytes produced by one http_client_input call are gathered in
 * up_batch and emitted as one PA_UPSTREAM at the end: a request found bad
 * within the same call is then dropped before anything of it leaves.
 */
#include "protocols/http_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers shared by the module ---- */

int http__buf_append(struct http__buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        uint8_t *np;

        while (cap < b->len + n)
            cap *= 2;
        np = proto_secure_grow(b->p, b->cap, b->len, cap);  /* heads carry Authorization */
        if (np == NULL)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void http__buf_free(struct http__buf *b)
{
    proto_secure_free(b->p, b->cap);
    memset(b, 0, sizeof(*b));
}

struct http__req *http__oldest(struct http_session *s)
{
    return s->q_count > 0 ? &s->q[s->q_head] : NULL;
}

void http__req_release(struct http__req *r)
{
    http__buf_free(&r->copy);
    r->copy_ok = false;
}

void http__pop(struct http_session *s)
{
    if (s->q_count == 0)
        return;
    if (s->rx_in_queue && s->rx_idx == s->q_head)
        s->rx_in_queue = false;
    http__req_release(&s->q[s->q_head]);
    memset(&s->q[s->q_head], 0, sizeof(s->q[0]));
    s->q_head = (s->q_head + 1) % HTTP_MAX_PIPELINE;
    s->q_count--;
}

void http__flush_up(struct http_session *s)
{
    if (s->up_batch.len > 0) {
        proto_out_add(s->out, PA_UPSTREAM, s->up_batch.p, s->up_batch.len);
        explicit_bzero(s->up_batch.p, s->up_batch.len);     /* forwarded heads: Authorization */
    }
    s->up_batch.len = 0;
    s->up_req_start = HTTP__NOT_IN_BATCH;
    if (s->up_batch.cap > HTTP__BATCH_KEEP)
        http__buf_free(&s->up_batch);   /* an idle session keeps little */
}

void http__flush_reply(struct http_session *s)
{
    if (s->reply_batch.len > 0)
        proto_out_add(s->out, PA_REPLY, s->reply_batch.p, s->reply_batch.len);
    s->reply_batch.len = 0;
    s->resp_batch_start = HTTP__NOT_IN_BATCH;
    if (s->reply_batch.cap > HTTP__BATCH_KEEP)
        http__buf_free(&s->reply_batch);
}

void http__log(struct http_session *s, const char *fmt, ...)
{
    char line[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    proto_out_printf(s->out, PA_LOG, "proto=http client=%s %s", s->client_ip, line);
}

void http__close(struct http_session *s, bool drop_upstream)
{
    http__flush_up(s);
    http__flush_reply(s);
    if (drop_upstream && s->upstream_open)
        proto_out_add(s->out, PA_UPSTREAM_CLOSE, NULL, 0);
    s->upstream_open = false;
    proto_out_add(s->out, PA_CLOSE, NULL, 0);
    s->closed = true;
    s->rx_state = HTTP_RX_DONE;
}

static const char *status_text(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

void http__error_close(struct http_session *s, int status, const char *why)
{
    const char *text = status_text(status);

    http__flush_up(s);
    http__flush_reply(s);
    proto_out_printf(s->out, PA_REPLY,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n%s\n",
                     status, text, strlen(text) + 1, status == 503 ? "Retry-After: 1\r\n" : "", text);
    http__close(s, true);
    http__log(s, "event=http_error status=%d reason=%s", status, why);
}

/* ---- llhttp callbacks for requests ---- */

static int req_on_url(llhttp_t *p, const char *at, size_t n)
{
    struct http_session *s = p->data;

    if (s->rx_state != HTTP_RX_HEAD || s->url_len > 0)
        return -1;
    s->url_off = (size_t)((const uint8_t *)at - s->head.p);
    s->url_len = n;
    return 0;
}

static int req_on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct http_session *s = p->data;
    struct http__header *h;

    s->val_open = false;
    if (s->rx_state != HTTP_RX_HEAD)
        return 0;   /* a trailer: forwarded raw, llhttp checked its syntax */
    if (s->nhdr == s->hdr_cap) {
        size_t cap = s->hdr_cap ? s->hdr_cap * 2 : 16;
        struct http__header *nh = realloc(s->hdr, cap * sizeof(*nh));

        if (nh == NULL)
            return -1;
        s->hdr = nh;
        s->hdr_cap = cap;
    }
    h = &s->hdr[s->nhdr++];
    memset(h, 0, sizeof(*h));
    h->name_off = (size_t)((const uint8_t *)at - s->head.p);
    h->name_len = n;
    return 0;
}

/*
 * A value arriving in two spans is either split by the end of an execute
 * buffer (fine) or continued on a folded line (obs-fold, refused). Heads
 * are scanned before llhttp sees them; this catches folded trailers.
 */
static int req_on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct http_session *s = p->data;

    if (s->val_open && !s->val_at_end)
        return -1;
    s->val_open = true;
    s->val_at_end = at + n == s->exec_end;
    if (s->rx_state == HTTP_RX_HEAD && s->nhdr > 0) {
        struct http__header *h = &s->hdr[s->nhdr - 1];

        h->val_off = (size_t)((const uint8_t *)at - s->head.p);
        while (n > 0 && (at[n - 1] == ' ' || at[n - 1] == '\t'))
            n--;
        h->val_len = n;
    }
    return 0;
}

static int req_on_header_value_complete(llhttp_t *p)
{
    struct http_session *s = p->data;

    s->val_open = false;
    return 0;
}

static int req_on_message_complete(llhttp_t *p)
{
    struct http_session *s = p->data;

    s->req_msg_done = true;
    return HPE_PAUSED;      /* the next head goes through the scanner */
}

static const llhttp_settings_t http_req_settings = {
    .on_url = req_on_url,
    .on_header_field = req_on_header_field,
    .on_header_value = req_on_header_value,
    .on_header_value_complete = req_on_header_value_complete,
    .on_message_complete = req_on_message_complete,
};

/* ---- session ---- */

static void client_ip_set(struct http_session *s, const char *ip)
{
    size_t n = ip != NULL ? strlen(ip) : 0;

    if (n == 0 || n >= sizeof(s->client_ip) || strspn(ip, "0123456789abcdefABCDEF.:") != n) {
        snprintf(s->client_ip, sizeof(s->client_ip), "unknown");
        return;
    }
    memcpy(s->client_ip, ip, n + 1);
}

struct http_session *http_session_new(const struct http_limits *lim, const char *client_ip, bool client_tls)
{
    static const struct http_limits defaults = HTTP_LIMITS_DEFAULT;
    struct http_session *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->lim = lim != NULL ? *lim : defaults;
    if (s->lim.max_header_bytes < 64)
        s->lim.max_header_bytes = 64;
    client_ip_set(s, client_ip);
    s->client_tls = client_tls;
    llhttp_init(&s->req, HTTP_REQUEST, &http_req_settings);
    s->req.data = s;
    http__resp_init(s);
    s->up_req_start = HTTP__NOT_IN_BATCH;
    s->resp_batch_start = HTTP__NOT_IN_BATCH;
    s->scan_first_line = true;
    return s;
}

void http_session_free(struct http_session **sp)
{
    struct http_session *s = sp != NULL ? *sp : NULL;

    if (s == NULL)
        return;
    for (unsigned i = 0; i < HTTP_MAX_PIPELINE; i++)
        http__req_release(&s->q[i]);
    http__buf_free(&s->head);
    http__buf_free(&s->up_batch);
    http__buf_free(&s->reply_batch);
    free(s->hdr);
    free(s);
    *sp = NULL;
}

bool http_idle(const struct http_session *s)
{
    return s->closed || (!s->spliced && s->q_count == 0 && s->rx_state != HTTP_RX_BODY && s->head.len == 0);
}

/* ---- the client side ---- */

static void head_reset(struct http_session *s)
{
    if (s->head.p != NULL)
        explicit_bzero(s->head.p, s->head.len);     /* Authorization of the last head */
    s->head.len = 0;
    s->scan_cr = s->scan_lead_cr = false;
    s->scan_line_len = 0;
    s->scan_first_line = true;
    s->nhdr = 0;
    s->url_off = s->url_len = 0;
}

/*
 * The request being received turned out bad. If nothing of it left yet,
 * drop it and answer now, or once the responses before it are out. If part
 * of it already went upstream, that connection cannot be reused: the
 * request is marked broken and answered when it becomes the oldest.
 */
static void client_reject(struct http_session *s, int status, const char *why)
{
    bool in_body = s->rx_state == HTTP_RX_BODY;

    s->rx_state = HTTP_RX_DONE;
    if (s->up_req_start != HTTP__NOT_IN_BATCH) {
        /* the whole request is still in this call's batch: nothing of it leaves */
        s->up_batch.len = s->up_req_start;
        s->up_req_start = HTTP__NOT_IN_BATCH;
        if (s->rx_in_queue) {
            http__req_release(&s->q[s->rx_idx]);
            memset(&s->q[s->rx_idx], 0, sizeof(s->q[0]));
            s->q_count--;
            s->rx_in_queue = false;
        }
    } else if (s->rx_in_queue) {
        s->q[s->rx_idx].broken = true;
        http__req_release(&s->q[s->rx_idx]);
        s->rx_in_queue = false;
    } else if (in_body) {
        /* its response is out already and its body broke: the connection is unusable */
        http__close(s, true);
        return;
    }
    if (s->q_count == 0) {
        http__error_close(s, status, why);
        return;
    }
    s->deferred_status = status;
    http__log(s, "event=http_reject status=%d reason=%s deferred=1", status, why);
    http__deferred_check(s);
}

/* Forward the head just parsed and queue its request. */
static int head_forward(struct http_session *s, struct http__req *r)
{
    unsigned idx = (s->q_head + s->q_count) % HTTP_MAX_PIPELINE;

    if (!s->upstream_open) {
        http__flush_up(s);
        proto_out_connect(s->out, "");
        s->upstream_open = true;
    }
    s->up_req_start = s->up_batch.len;
    if (http__head_serialize(s, r, &s->up_batch) != 0)
        return -1;
    r->copy_ok = true;
    if (http__buf_append(&r->copy, s->up_batch.p + s->up_req_start, s->up_batch.len - s->up_req_start) != 0)
        return -1;
    s->q[idx] = *r;
    s->q_count++;
    s->rx_in_queue = true;
    s->rx_idx = idx;
    s->rx_discard = false;
    return 0;
}

static void request_complete(struct http_session *s)
{
    struct http__req *r = s->rx_in_queue ? &s->q[s->rx_idx] : NULL;
    bool close = r != NULL && r->close, upgrade = r != NULL && r->upgrade;

    s->req_msg_done = false;
    llhttp_resume(&s->req);
    if (r != NULL)
        r->received = true;
    s->rx_in_queue = false;
    s->rx_discard = false;
    s->up_req_start = HTTP__NOT_IN_BATCH;
    head_reset(s);
    s->rx_state = close ? HTTP_RX_DONE : upgrade ? HTTP_RX_WAIT_UPGRADE : HTTP_RX_HEAD;
}

static int client_errno_status(llhttp_errno_t e)
{
    return e == HPE_INVALID_VERSION ? 505 : 400;
}

/* The head is complete in s->head: parse, check, forward. */
static int head_complete(struct http_session *s)
{
    struct http__req r;
    const char *why = "syntax";
    llhttp_errno_t e;
    int status;

    memset(&r, 0, sizeof(r));
    s->req_msg_done = false;
    s->val_open = false;
    s->exec_end = (const char *)s->head.p + s->head.len;
    e = llhttp_execute(&s->req, (const char *)s->head.p, s->head.len);
    if (e != HPE_OK && e != HPE_PAUSED) {
        if (e == HPE_PAUSED_H2_UPGRADE)
            why = "h2_preface";
        else if (e == HPE_UNEXPECTED_CONTENT_LENGTH)
            why = "content_length";
        else if (e == HPE_INVALID_TRANSFER_ENCODING)
            why = "transfer_encoding";
        client_reject(s, client_errno_status(e), why);
        return 0;
    }
    status = http__head_check(s, &r, &why);
    if (status != 0) {
        client_reject(s, status, why);
        return 0;
    }
    if (head_forward(s, &r) != 0)
        return -1;
    s->rx_state = HTTP_RX_BODY;
    if (s->req_msg_done)
        request_complete(s);
    return 0;
}

/*
 * Scan head bytes; returns how many were taken. Sets rx_state on a
 * complete head (via head_complete) or rejects the request.
 */
static long head_scan(struct http_session *s, const uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        uint8_t c = buf[i];

        if (s->head.len == 0 && s->scan_first_line && s->scan_line_len == 0) {
            /* empty lines before a request line are ignored (RFC 9112 §2.2) */
            if (s->scan_lead_cr) {
                s->scan_lead_cr = false;
                if (c != '\n')
                    return client_reject(s, 400, "bare_cr"), (long)(i + 1);
                continue;
            }
            if (c == '\r') {
                s->scan_lead_cr = true;
                continue;
            }
        }
        if (s->head.len + 1 > s->lim.max_header_bytes)
            return client_reject(s, 431, "header_too_large"), (long)(i + 1);
        if (http__buf_append(&s->head, &c, 1) != 0)
            return -1;
        if (c == '\0')
            return client_reject(s, 400, "nul"), (long)(i + 1);
        if (s->scan_cr) {
            s->scan_cr = false;
            if (c != '\n')
                return client_reject(s, 400, "bare_cr"), (long)(i + 1);
            if (s->scan_line_len == 0 && !s->scan_first_line)
                return head_complete(s) < 0 ? -1 : (long)(i + 1);
            s->scan_line_len = 0;
            s->scan_first_line = false;
            continue;
        }
        if (c == '\r') {
            s->scan_cr = true;
            continue;
        }
        if (c == '\n')
            return client_reject(s, 400, "bare_lf"), (long)(i + 1);
        if (s->scan_line_len == 0 && !s->scan_first_line && (c == ' ' || c == '\t'))
            return client_reject(s, 400, "obs_fold"), (long)(i + 1);
        s->scan_line_len++;
    }
    return (long)i;
}

/* Stream body bytes through llhttp; returns how many were taken. */
static long body_feed(struct http_session *s, const uint8_t *buf, size_t len)
{
    const char *at = (const char *)buf;
    llhttp_errno_t e;
    size_t used = len;

    s->exec_end = at + len;
    e = llhttp_execute(&s->req, at, len);
    if (e == HPE_PAUSED)
        used = (size_t)(llhttp_get_error_pos(&s->req) - at);
    else if (e != HPE_OK) {
        client_reject(s, 400, e == HPE_INVALID_CHUNK_SIZE ? "chunk_size" : "body");
        return (long)len;
    }
    if (!s->rx_discard && s->upstream_open) {
        struct http__req *r = s->rx_in_queue ? &s->q[s->rx_idx] : NULL;

        if (http__buf_append(&s->up_batch, buf, used) != 0)
            return -1;
        if (r != NULL && r->copy_ok) {
            r->body_len += used;
            if (r->body_len > s->lim.max_retry_body)
                http__req_release(r);   /* too big to retry: forwarded, not kept */
            else if (http__buf_append(&r->copy, buf, used) != 0)
                return -1;
        }
    }
    if (s->req_msg_done)
        request_complete(s);
    return (long)used;
}

long http_client_input(struct http_session *s, const uint8_t *buf, size_t len, struct proto_out *out)
{
    size_t off = 0;

    s->out = out;
    if (s->closed)
        return (long)len;
    if (s->spliced) {
        proto_out_add(out, PA_UPSTREAM, buf, len);
        return (long)len;
    }
    while (off < len && !s->closed) {
        long n;

        if (s->rx_state == HTTP_RX_DONE) {
            off = len;      /* after close or an error: swallowed */
            break;
        }
        if (s->rx_state == HTTP_RX_WAIT_UPGRADE)
            break;
        if (s->rx_state == HTTP_RX_HEAD) {
            if (s->q_count == HTTP_MAX_PIPELINE)
                break;
            n = head_scan(s, buf + off, len - off);
        } else {
            n = body_feed(s, buf + off, len - off);
        }
        if (n < 0) {
            out->oom = 1;
            return -1;
        }
        off += (size_t)n;
    }
    http__flush_up(s);
    if (s->closed)
        off = len;      /* the rest is swallowed */
    return out->oom ? -1 : (long)off;
}

bool http_head_partial(const struct http_session *s)
{
    return !s->closed && s->rx_state == HTTP_RX_HEAD && (s->head.len > 0 || s->scan_lead_cr);
}

void http_request_timeout(struct http_session *s, struct proto_out *out)
{
    s->out = out;
    if (!http_head_partial(s))
        return;
    client_reject(s, 408, "request_timeout");
    http__flush_up(s);
}

void http_client_eof(struct http_session *s, struct proto_out *out)
{
    s->out = out;
    if (s->closed)
        return;
    s->client_eof = true;
    if (s->spliced || s->q_count == 0 || s->rx_state == HTTP_RX_BODY) {
        /* nothing to wait for, or a request the back-end would wait on forever */
        if (s->rx_state == HTTP_RX_BODY)
            http__log(s, "event=http_client_eof_mid_request");
        http__close(s, true);
        return;
    }
    s->rx_state = HTTP_RX_DONE;     /* the responses still due are delivered, then close */
}
