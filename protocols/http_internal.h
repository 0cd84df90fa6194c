/*
 * Internals of the HTTP module shared by http.c (session, client side),
 * http_head.c (request head checks and re-serialization) and
 * http_upstream.c (responses, failover). Not for the proxy.
 */
#ifndef ESPROXY_HTTP_INTERNAL_H
#define ESPROXY_HTTP_INTERNAL_H

#include "llhttp.h"
#include "protocols/http.h"

#define HTTP__NOT_IN_BATCH ((size_t)-1)
#define HTTP__BATCH_KEEP   16384   /* batch capacity kept between calls */

struct http__buf {
    uint8_t *p;
    size_t len, cap;
};

/* A request forwarded upstream and not yet answered (final response). */
struct http__req {
    uint8_t method;
    bool idempotent;
    bool head;              /* HEAD: the response has no body */
    bool upgrade;           /* Upgrade / CONNECT let through (allow_upgrade) */
    bool close;             /* the client asked for close (or HTTP/1.0 without keep-alive) */
    bool received;          /* the whole request came from the client */
    bool copy_ok;           /* copy holds everything forwarded so far */
    bool retried;           /* already sent on a second connection */
    bool interim_sent;      /* a 1xx went to the client */
    bool broken;            /* partly forwarded, then found bad: answer with 400, drop upstream */
    size_t body_len;        /* body bytes forwarded so far */
    struct http__buf copy;  /* head + body for a failover retry */
};

struct http__header {
    size_t name_off, name_len, val_off, val_len;
};

enum http__rx_state {
    HTTP_RX_HEAD,           /* scanning a request head */
    HTTP_RX_BODY,           /* streaming a request body through llhttp */
    HTTP_RX_WAIT_UPGRADE,   /* an upgrade request awaits its response */
    HTTP_RX_DONE,           /* no more requests on this connection: input swallowed */
};

struct http_session {
    struct http_limits lim;
    char client_ip[64];     /* as it goes into X-Forwarded-For */
    bool client_tls;
    struct proto_out *out;  /* the action list of the current call */

    /* client side */
    llhttp_t req;
    enum http__rx_state rx_state;
    struct http__buf head;          /* the request head being scanned */
    bool scan_cr, scan_lead_cr;     /* head scanner: after CR; after a CR of a leading empty line */
    size_t scan_line_len;           /* bytes in the current head line */
    bool scan_first_line;
    struct http__header *hdr;       /* headers of the head just parsed (offsets into head) */
    size_t nhdr, hdr_cap;
    size_t url_off, url_len;
    bool req_msg_done;              /* on_message_complete fired */
    bool val_open, val_at_end;      /* obs-fold detection in trailers */
    const char *exec_end;
    bool rx_in_queue, rx_discard;   /* the request being received is queued; its body goes nowhere */
    unsigned rx_idx;
    int deferred_status;            /* a client error to answer once earlier responses are out */

    /* in-flight requests, oldest first */
    struct http__req q[HTTP_MAX_PIPELINE];
    unsigned q_head, q_count;

    /* upstream side */
    bool upstream_open;
    struct http__buf up_batch;      /* PA_UPSTREAM bytes of this call */
    size_t up_req_start;            /* where the received request starts in up_batch */
    llhttp_t resp;
    struct http__buf reply_batch;   /* PA_REPLY bytes of this call */
    size_t resp_batch_start;        /* where the current response message starts in reply_batch */
    uint64_t resp_cur_bytes;        /* bytes of the response message in progress relayed */
    bool resp_headers_done, resp_msg_done;
    int resp_status;
    bool resp_keep_alive;

    bool client_eof, spliced, closed;
};

/* buffers */
int http__buf_append(struct http__buf *b, const void *p, size_t n);
void http__buf_free(struct http__buf *b);

/* queue */
struct http__req *http__oldest(struct http_session *s);
void http__req_release(struct http__req *r);
void http__pop(struct http_session *s);

/* flushing batches into the action list */
void http__flush_up(struct http_session *s);
void http__flush_reply(struct http_session *s);
/* an error response ("400 Bad Request", ...) with Connection: close, then PA_CLOSE */
void http__error_close(struct http_session *s, int status, const char *why);
void http__close(struct http_session *s, bool drop_upstream);
void http__log(struct http_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* http_head.c: check the parsed head, then append its forwarded form to dst.
 * Returns 0 or an HTTP status to refuse the request with. */
int http__head_check(struct http_session *s, struct http__req *r, const char **why_r);
int http__head_serialize(struct http_session *s, const struct http__req *r, struct http__buf *dst);
bool http__method_idempotent(uint8_t method);

/* http_upstream.c */
void http__resp_init(struct http_session *s);
/* after a response completes, the pending client error may be due */
void http__deferred_check(struct http_session *s);

#endif
