/*
 * One load session's connection: libuv TCP, an optional mbedTLS client
 * (implicit TLS or STARTTLS), the operation timer and the bookkeeping of
 * operation latencies. Every operation has an absolute deadline of
 * --timeout from its start; libuv has no connect timeout, so the same
 * timer guards the connect.
 */
#include "proxy/load_int.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/x509_crt.h>

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static struct {
    bool on;
    mbedtls_ssl_config conf;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    bool verify;
} tls;

struct wreq {
    uv_write_t req;
    char data[];
};

/* ---- buffers ---- */

int lbuf_append(struct lbuf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        char *p;

        while (cap < b->len + len + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

void lbuf_consume(struct lbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
    }
    if (b->p != NULL)
        b->p[b->len] = '\0';
}

void lbuf_free(struct lbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

size_t lbuf_line_at(struct lbuf *b, size_t off, char **line_r, size_t *len_r)
{
    char *start = b->p + off;
    char *nl = off < b->len ? memchr(start, '\n', b->len - off) : NULL;
    size_t n;

    if (nl == NULL)
        return 0;
    n = (size_t)(nl - start);
    *nl = '\0';
    if (n > 0 && start[n - 1] == '\r')
        start[--n] = '\0';
    *line_r = start;
    *len_r = n;
    return (size_t)(nl - start) + 1;
}

/* ---- TLS client configuration, shared by all sessions ---- */

int load_tls_init(const struct load_opts *o, char *err, size_t errlen)
{
    int rc;

    if (o->tls == LOAD_TLS_NONE || tls.on)
        return 0;
    mbedtls_ssl_config_init(&tls.conf);
    mbedtls_entropy_init(&tls.entropy);
    mbedtls_ctr_drbg_init(&tls.drbg);
    mbedtls_x509_crt_init(&tls.ca);
    tls.on = true;
    rc = mbedtls_ctr_drbg_seed(&tls.drbg, mbedtls_entropy_func, &tls.entropy,
                               (const unsigned char *)"esproxy-load", 12);
    if (rc == 0)
        rc = mbedtls_ssl_config_defaults(&tls.conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                         MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0) {
        snprintf(err, errlen, "TLS setup failed (-0x%04x)", (unsigned)-rc);
        return -1;
    }
    mbedtls_ssl_conf_rng(&tls.conf, mbedtls_ctr_drbg_random, &tls.drbg);
    if (o->ca_file != NULL) {
        rc = mbedtls_x509_crt_parse_file(&tls.ca, o->ca_file);
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot load CA certificates (-0x%04x)", o->ca_file, (unsigned)-rc);
            return -1;
        }
        mbedtls_ssl_conf_ca_chain(&tls.conf, &tls.ca, NULL);
        mbedtls_ssl_conf_authmode(&tls.conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        tls.verify = true;
    } else {
        mbedtls_ssl_conf_authmode(&tls.conf, MBEDTLS_SSL_VERIFY_NONE);
    }
    return 0;
}

void load_tls_free(void)
{
    if (!tls.on)
        return;
    mbedtls_ssl_config_free(&tls.conf);
    mbedtls_ctr_drbg_free(&tls.drbg);
    mbedtls_entropy_free(&tls.entropy);
    mbedtls_x509_crt_free(&tls.ca);
    tls.on = false;
    tls.verify = false;
}

/* ---- session ---- */

const struct load_opts *lsess_opts(const struct lsess *s)
{
    return load_run_opts(s->run);
}

static const struct lproto *lsess_proto(const struct lsess *s)
{
    return s->proto == LOAD_POP3 ? &load_pop3 : s->proto == LOAD_IMAP ? &load_imap : &load_http;
}

static void lsess_on_close(uv_handle_t *h)
{
    struct lsess *s = h->data;

    if (--s->open_handles > 0)
        return;
    if (s->ssl != NULL) {
        mbedtls_ssl_free(s->ssl);
        free(s->ssl);
        s->ssl = NULL;
    }
    lbuf_free(&s->raw);
    lbuf_free(&s->in);
    lbuf_free(&s->line);
    load_run_session_end(s->run, s);
}

static void lsess_close(struct lsess *s)
{
    s->finished = true;
    uv_close((uv_handle_t *)&s->tcp, lsess_on_close);
    uv_close((uv_handle_t *)&s->timer, lsess_on_close);
}

static void lsess_arm(struct lsess *s, int ms);

void lsess_op_begin(struct lsess *s, enum load_op op)
{
    s->op = op;
    s->t_op = load_now_us();
    lsess_arm(s, lsess_opts(s)->timeout_ms);
}

void lsess_op_end(struct lsess *s)
{
    lhist_add(&load_run_stats(s->run)->op[s->op], load_now_us() - s->t_op);
}

int lsess_fail(struct lsess *s, enum load_err kind)
{
    struct load_stats *st = load_run_stats(s->run);

    if (s->finished)
        return -1;
    s->err = kind;
    st->op_failed[s->op]++;
    st->op_failed[LOP_POP3_SESSION + s->proto]++;
    lsess_close(s);
    return -1;
}

static void lsess_succeed(struct lsess *s)
{
    if (s->finished)
        return;
    s->err = LERR_NONE;
    lhist_add(&load_run_stats(s->run)->op[LOP_POP3_SESSION + s->proto], load_now_us() - s->t_start);
    lsess_close(s);
}

static void lsess_on_timer(uv_timer_t *t)
{
    struct lsess *s = t->data;

    if (s->sleeping) {
        s->sleeping = false;
        lsess_arm(s, lsess_opts(s)->timeout_ms);
        lsess_proto(s)->wake(s);
        return;
    }
    lsess_fail(s, s->connected ? LERR_TIMEOUT : LERR_CONNECT);
}

static void lsess_arm(struct lsess *s, int ms)
{
    uv_timer_start(&s->timer, lsess_on_timer, (uint64_t)ms, 0);
}

void lsess_sleep(struct lsess *s, int ms)
{
    s->sleeping = true;
    lsess_arm(s, ms);
}

static void lsess_on_written(uv_write_t *req, int status)
{
    (void)status;   /* a failed write shows up as a read error or timeout */
    free(req);
}

static void lsess_raw_write(struct lsess *s, const char *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    struct wreq *w;

    if (n < 0 && n != UV_EAGAIN) {
        lsess_fail(s, LERR_CLOSED);
        return;
    }
    if (n < 0)
        n = 0;
    if ((size_t)n == len)
        return;
    w = malloc(sizeof(*w) + len - (size_t)n);
    if (w == NULL) {
        lsess_fail(s, LERR_PROTOCOL);
        return;
    }
    memcpy(w->data, p + n, len - (size_t)n);
    b = uv_buf_init(w->data, (unsigned)(len - (size_t)n));
    if (uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, lsess_on_written) != 0) {
        free(w);
        lsess_fail(s, LERR_CLOSED);
    }
}

void lsess_send(struct lsess *s, const void *p, size_t len)
{
    const unsigned char *q = p;

    if (s->finished)
        return;
    if (s->ssl == NULL) {
        lsess_raw_write(s, p, len);
        return;
    }
    while (len > 0) {
        int n = mbedtls_ssl_write(s->ssl, q, len);

        if (n < 0) {
            lsess_fail(s, LERR_TLS);
            return;
        }
        q += n;
        len -= (size_t)n;
    }
}

void lsess_sendf(struct lsess *s, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        lsess_fail(s, LERR_PROTOCOL);
        return;
    }
    lsess_send(s, buf, (size_t)n);
}

static int lsess_bio_send(void *ctx, const unsigned char *p, size_t len)
{
    struct lsess *s = ctx;

    if (s->finished)
        return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
    lsess_raw_write(s, (const char *)p, len);
    return (int)len;
}

static int lsess_bio_recv(void *ctx, unsigned char *p, size_t len)
{
    struct lsess *s = ctx;

    if (s->raw.len == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (len > s->raw.len)
        len = s->raw.len;
    memcpy(p, s->raw.p, len);
    lbuf_consume(&s->raw, len);
    return (int)len;
}

/* The server's address as binary when the target is an IP literal (its length, else 0). */
static size_t lsess_ip_literal(const struct lsess *s, unsigned char ip[16])
{
    if (inet_pton(AF_INET, s->host, ip) == 1)
        return 4;
    if (inet_pton(AF_INET6, s->host, ip) == 1)
        return 16;
    return 0;
}

/* mbedTLS 2.x matches the name only against dNSName and CN entries: an IP
 * literal is checked here against the certificate's iPAddress entries. */
static bool lsess_cert_has_ip(const struct lsess *s)
{
    const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(s->ssl);
    unsigned char ip[16];
    size_t n = lsess_ip_literal(s, ip);

    for (const mbedtls_x509_sequence *san = crt ? &crt->subject_alt_names : NULL; san != NULL; san = san->next)
        if (san->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && san->buf.len == n && !memcmp(san->buf.p, ip, n))
            return true;
    return false;
}

/* Handshake progress: 1 still running, 0 done, -1 failed. */
static int lsess_handshake(struct lsess *s)
{
    unsigned char ip[16];
    int rc = mbedtls_ssl_handshake(s->ssl);

    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 1;
    if (rc != 0 || (tls.verify && lsess_ip_literal(s, ip) != 0 && !lsess_cert_has_ip(s)))
        return lsess_fail(s, LERR_TLS);
    s->handshaking = false;
    lsess_op_end(s);
    return 0;
}

static int lsess_tls_begin(struct lsess *s)
{
    unsigned char ip[16];

    s->ssl = calloc(1, sizeof(*s->ssl));
    if (s->ssl == NULL)
        return lsess_fail(s, LERR_TLS);
    mbedtls_ssl_init(s->ssl);
    /* no SNI for an IP literal (RFC 6066 3); its name is checked after the handshake */
    if (mbedtls_ssl_setup(s->ssl, &tls.conf) != 0 ||
        mbedtls_ssl_set_hostname(s->ssl, lsess_ip_literal(s, ip) != 0 ? NULL : s->host) != 0)
        return lsess_fail(s, LERR_TLS);
    mbedtls_ssl_set_bio(s->ssl, s, lsess_bio_send, lsess_bio_recv, NULL);
    s->handshaking = true;
    lsess_op_begin(s, LOP_TLS);
    return lsess_handshake(s) < 0 ? -1 : 0;
}

int lsess_starttls(struct lsess *s)
{
    lbuf_consume(&s->in, s->in.len);   /* nothing may precede the handshake */
    return lsess_tls_begin(s);
}

static void lsess_dialogue(struct lsess *s)
{
    int rc = lsess_proto(s)->input(s);

    if (rc == 0)
        lsess_succeed(s);
}

static void lsess_tls_input(struct lsess *s)
{
    unsigned char buf[16384];
    int n;

    if (s->handshaking) {
        bool implicit = s->state == 0;

        if (lsess_handshake(s) != 0)
            return;
        if (implicit)
            lsess_proto(s)->start(s);
        else
            lsess_proto(s)->wake(s);
        if (s->finished)
            return;
    }
    while ((n = mbedtls_ssl_read(s->ssl, buf, sizeof(buf))) > 0)
        lbuf_append(&s->in, buf, (size_t)n);
    if (n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || n == 0) {
        if (s->in.len > 0)
            lsess_dialogue(s);
        lsess_fail(s, LERR_CLOSED);
        return;
    }
    if (n != MBEDTLS_ERR_SSL_WANT_READ && n != MBEDTLS_ERR_SSL_WANT_WRITE) {
        lsess_fail(s, LERR_TLS);
        return;
    }
    if (s->in.len > 0)
        lsess_dialogue(s);
}

static void lsess_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char buf[65536];

    (void)h;
    (void)hint;
    *b = uv_buf_init(buf, sizeof(buf));
}

static void lsess_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct lsess *s = st->data;

    if (s->finished)
        return;
    if (n < 0) {
        lsess_fail(s, LERR_CLOSED);
        return;
    }
    if (n == 0)
        return;
    if (s->ssl != NULL) {
        lbuf_append(&s->raw, b->base, (size_t)n);
        lsess_tls_input(s);
        return;
    }
    lbuf_append(&s->in, b->base, (size_t)n);
    lsess_dialogue(s);
}

static void lsess_on_connect(uv_connect_t *req, int status)
{
    struct lsess *s = req->data;

    if (s->finished)
        return;
    if (status != 0) {
        lsess_fail(s, LERR_CONNECT);
        return;
    }
    s->connected = true;
    lsess_op_end(s);
    uv_tcp_nodelay(&s->tcp, 1);
    if (uv_read_start((uv_stream_t *)&s->tcp, lsess_alloc, lsess_on_read) != 0) {
        lsess_fail(s, LERR_CLOSED);
        return;
    }
    if (lsess_opts(s)->tls == LOAD_TLS_IMPLICIT ||
        (lsess_opts(s)->tls == LOAD_TLS_STARTTLS && s->proto == LOAD_HTTP)) {
        lsess_tls_begin(s);
        return;
    }
    lsess_proto(s)->start(s);
}

int lsess_start(struct lsess *s, const struct sockaddr *sa)
{
    uv_loop_t *loop = load_run_loop(s->run);

    s->t_start = load_now_us();
    uv_tcp_init(loop, &s->tcp);
    uv_timer_init(loop, &s->timer);
    s->tcp.data = s->timer.data = s->creq.data = s;
    s->open_handles = 2;
    lsess_op_begin(s, LOP_CONNECT);
    if (uv_tcp_connect(&s->creq, &s->tcp, sa, lsess_on_connect) != 0)
        return lsess_fail(s, LERR_CONNECT);
    return 0;
}
