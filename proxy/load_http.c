/*
 * HTTP/1.1 client for the load generator: the configured requests (GET or
 * POST of --post-bytes) in order on one keep-alive connection, responses
 * parsed by llhttp. 2xx is success, 401/403 an auth error, anything else a
 * protocol error. A server that ends keep-alive early ends the session
 * after the responses it gave.
 */
#include "proxy/load_int.h"

#include <string.h>

static int http_on_complete(llhttp_t *p)
{
    struct lsess *s = p->data;

    s->http_done = true;
    s->http_status = p->status_code;
    return HPE_PAUSED;
}

static const llhttp_settings_t *http_settings(void)
{
    static llhttp_settings_t st;
    static bool init;

    if (!init) {
        llhttp_settings_init(&st);
        st.on_message_complete = http_on_complete;
        init = true;
    }
    return &st;
}

static void http_request(struct lsess *s)
{
    const struct load_opts *o = lsess_opts(s);
    const struct load_http_req *rq = &o->reqs[s->step];
    static char zeros[65536];

    llhttp_init(&s->http, HTTP_RESPONSE, http_settings());
    s->http.data = s;
    s->http_done = false;
    lsess_op_begin(s, rq->post ? LOP_HTTP_POST : LOP_HTTP_GET);
    if (!rq->post) {
        lsess_sendf(s, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: esproxy-load\r\n\r\n", rq->path, s->host);
        return;
    }
    lsess_sendf(s, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: esproxy-load\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n",
                rq->path, s->host, o->post_bytes);
    for (int left = o->post_bytes; left > 0 && !s->finished; left -= (int)sizeof(zeros))
        lsess_send(s, zeros, left < (int)sizeof(zeros) ? (size_t)left : sizeof(zeros));
}

static void http_start(struct lsess *s)
{
    s->state = 1;
    s->step = 0;
    http_request(s);
}

static int http_input(struct lsess *s)
{
    llhttp_errno_t e = llhttp_execute(&s->http, s->in.p, s->in.len);
    int st;

    lbuf_consume(&s->in, s->in.len);
    if (e != HPE_OK && e != HPE_PAUSED)
        return lsess_fail(s, LERR_PROTOCOL);
    if (!s->http_done)
        return 1;
    st = s->http_status;
    if (st == 401 || st == 403)
        return lsess_fail(s, LERR_AUTH);
    if (st < 200 || st > 299)
        return lsess_fail(s, LERR_PROTOCOL);
    lsess_op_end(s);
    if (++s->step >= lsess_opts(s)->n_reqs || !llhttp_should_keep_alive(&s->http))
        return 0;
    http_request(s);
    return 1;
}

static void http_wake(struct lsess *s)
{
    if (s->state == 0)
        http_start(s);
}

const struct lproto load_http = { http_start, http_input, http_wake };
