/*
 * Client channels (proxy/chan.c) and server TLS (proxy/tls.c) over real
 * sockets on 127.0.0.1: the server side runs on a libuv loop in the test
 * thread, each client in its own thread with blocking (or poll-driven)
 * sockets and, for TLS, an mbedTLS client. The test CA, certificate and
 * key are made with mbedTLS x509write into a temporary directory.
 * The Python ssl interop check is tests/cli/chan_tls.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h>
#include <mbedtls/x509_crt.h>

#include "proxy/chan.h"
#include "proxy/log.h"

/* ---- test PKI ---- */

static char tmpdir[64], ca_file[128], cert_file[128], key_file[128], other_key_file[128];
static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_x509_crt ca_crt;

static int write_file(const char *path, const unsigned char *buf, size_t len, const char *mode)
{
    FILE *f = fopen(path, mode);

    if (f == NULL)
        return -1;
    fwrite(buf, 1, len, f);
    return fclose(f);
}

static int gen_key(mbedtls_pk_context *pk)
{
    mbedtls_pk_init(pk);
    if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        return -1;
    return mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk),
                               mbedtls_ctr_drbg_random, &drbg);
}

static int write_cert(const char *path, const char *mode, mbedtls_pk_context *subj,
                      mbedtls_pk_context *issuer, const char *sname,
                      const char *iname, int is_ca, int serial_no)
{
    mbedtls_x509write_cert w;
    mbedtls_mpi serial;
    unsigned char pem[4096];
    int rc;

    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    mbedtls_mpi_lset(&serial, serial_no);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, subj);
    mbedtls_x509write_crt_set_issuer_key(&w, issuer);
    rc = mbedtls_x509write_crt_set_subject_name(&w, sname);
    rc |= mbedtls_x509write_crt_set_issuer_name(&w, iname);
    rc |= mbedtls_x509write_crt_set_serial(&w, &serial);
    rc |= mbedtls_x509write_crt_set_validity(&w, "20200101000000", "20991231235959");
    rc |= mbedtls_x509write_crt_set_basic_constraints(&w, is_ca, -1);
    if (is_ca)
        rc |= mbedtls_x509write_crt_set_key_usage(&w, MBEDTLS_X509_KU_KEY_CERT_SIGN);
    if (rc == 0)
        rc = mbedtls_x509write_crt_pem(&w, pem, sizeof(pem), mbedtls_ctr_drbg_random, &drbg);
    if (rc == 0)
        rc = write_file(path, pem, strlen((char *)pem), mode);
    mbedtls_x509write_crt_free(&w);
    mbedtls_mpi_free(&serial);
    return rc;
}

static int write_key(const char *path, mbedtls_pk_context *pk)
{
    unsigned char pem[2048];

    if (mbedtls_pk_write_key_pem(pk, pem, sizeof(pem)) != 0)
        return -1;
    return write_file(path, pem, strlen((char *)pem), "w");
}

static int make_pki(void)
{
    mbedtls_pk_context ca, leaf, other;
    int rc;

    strcpy(tmpdir, "/tmp/test_chan.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(ca_file, sizeof(ca_file), "%s/ca.pem", tmpdir);
    snprintf(cert_file, sizeof(cert_file), "%s/cert.pem", tmpdir);
    snprintf(key_file, sizeof(key_file), "%s/key.pem", tmpdir);
    snprintf(other_key_file, sizeof(other_key_file), "%s/other.pem", tmpdir);
    rc = gen_key(&ca) | gen_key(&leaf) | gen_key(&other);
    rc |= write_cert(ca_file, "w", &ca, &ca, "CN=esproxy test CA", "CN=esproxy test CA", 1, 1);
    rc |= write_cert(cert_file, "w", &leaf, &ca, "CN=localhost", "CN=esproxy test CA", 0, 2);
    rc |= write_cert(cert_file, "a", &ca, &ca, "CN=esproxy test CA", "CN=esproxy test CA", 1, 1);
    rc |= write_key(key_file, &leaf);
    rc |= write_key(other_key_file, &other);
    mbedtls_pk_free(&ca);
    mbedtls_pk_free(&leaf);
    mbedtls_pk_free(&other);
    mbedtls_x509_crt_init(&ca_crt);
    return rc | mbedtls_x509_crt_parse_file(&ca_crt, ca_file);
}

/* ---- server side: a test consumer of the chan API ---- */

struct srv;

struct conn {
    struct srv *s;
    struct chan *c;
    char line[64];
    size_t line_len;
};

struct srv {
    uv_loop_t loop;
    uv_tcp_t lis;
    int port;
    struct tls_server *implicit, *starttls;
    bool starttls_delay, echo, shutdown_on_accept, reply_on_eof;
    size_t low, high;
    uv_timer_t delay;
    struct conn *delayed;
    /* observations */
    int accepted, closed, eofs, drained, read_stops, tls_ok, tls_fail, resumed;
    int why_local, why_reset, why_error, why_hs, why_timeout, violations, write_errors;
    int last_tls_status;
    size_t max_buffered, max_rx;
    char plain_seen[4096], tls_seen[4096];
    size_t plain_len, tls_len;
    char suite[80], version[16];
};

static struct srv S;
static int in_call;     /* >0 while test code is inside a chan_* call */
#define CALL(x) (in_call++, (x), in_call--)

static void note_callback(void)
{
    if (in_call > 0)
        S.violations++;
}

static void seen(char *buf, size_t *len, size_t cap, const uint8_t *p, size_t n)
{
    if (n > cap - *len)
        n = cap - *len;
    memcpy(buf + *len, p, n);
    *len += n;
}

static void track(struct chan *c)
{
    size_t b = chan_write_buffered(c), r = chan_read_buffered(c);

    if (b > S.max_buffered)
        S.max_buffered = b;
    if (r > S.max_rx)
        S.max_rx = r;
}

static void upgrade(struct conn *k)
{
    int rc;

    CALL(chan_write(k->c, "OK begin TLS\r\n", 14));
    CALL(rc = chan_start_tls(k->c, S.starttls));
    assert_int_equal(rc, 0);
    CALL(chan_read_start(k->c));
}

static void delay_cb(uv_timer_t *t)
{
    (void)t;
    if (S.delayed != NULL)
        upgrade(S.delayed);
    S.delayed = NULL;
}

static void on_data(struct chan *c, const uint8_t *buf, size_t len)
{
    struct conn *k = chan_data(c);
    int rc;

    note_callback();
    if (!chan_is_tls(c))
        seen(S.plain_seen, &S.plain_len, sizeof(S.plain_seen), buf, len);
    else
        seen(S.tls_seen, &S.tls_len, sizeof(S.tls_seen), buf, len);
    if (S.starttls != NULL && !chan_is_tls(c)) {
        /* A protocol layer: after the STARTTLS line the rest is dropped. */
        size_t n = len < sizeof(k->line) - k->line_len ? len : sizeof(k->line) - k->line_len;

        memcpy(k->line + k->line_len, buf, n);
        k->line_len += n;
        if (memmem(k->line, k->line_len, "STARTTLS\r\n", 10) == NULL)
            return;
        if (S.starttls_delay) {
            CALL(chan_read_stop(c));
            S.delayed = k;
            uv_timer_start(&S.delay, delay_cb, 150, 0);
        } else {
            upgrade(k);
        }
        return;
    }
    if (len >= 5 && memcmp(buf, "ABORT", 5) == 0) {
        CALL(chan_abort(c));
        return;
    }
    if (!S.echo)
        return;
    CALL(rc = chan_write(c, buf, len));
    if (rc < 0)
        S.write_errors++;
    track(c);
    if (rc == 1) {
        S.read_stops++;
        CALL(chan_read_stop(c));
        track(c);
    }
}

static void on_drained(struct chan *c)
{
    note_callback();
    S.drained++;
    CALL(chan_read_start(c));
}

static void on_tls_done(struct chan *c, int status)
{
    note_callback();
    S.last_tls_status = status;
    if (status != 0) {
        S.tls_fail++;
        return;
    }
    S.tls_ok++;
    S.resumed += chan_tls_resumed(c);
    snprintf(S.suite, sizeof(S.suite), "%s", chan_tls_ciphersuite(c));
    snprintf(S.version, sizeof(S.version), "%s", chan_tls_version(c));
}

static void on_eof(struct chan *c)
{
    note_callback();
    S.eofs++;
    if (S.reply_on_eof)
        CALL(chan_write(c, "BYE\r\n", 5));
    CALL(chan_close(c));
}

static void on_closed(struct chan *c, const char *why)
{
    struct conn *k = chan_data(c);

    note_callback();
    S.closed++;
    if (strcmp(why, "local_close") == 0)
        S.why_local++;
    else if (strcmp(why, "peer_reset") == 0)
        S.why_reset++;
    else if (strcmp(why, "tls_handshake_failed") == 0)
        S.why_hs++;
    else if (strcmp(why, "timeout") == 0)
        S.why_timeout++;
    else
        S.why_error++;
    if (S.delayed == k)
        S.delayed = NULL;
    free(k);
}

static const struct chan_callbacks cbs = {
    .data = on_data, .drained = on_drained, .tls_done = on_tls_done,
    .eof = on_eof, .closed = on_closed,
};

static void on_connection(uv_stream_t *lis, int status)
{
    struct conn *k = calloc(1, sizeof(*k));
    int rc;

    assert_int_equal(status, 0);
    k->s = &S;
    CALL(rc = chan_accept(&k->c, lis, S.implicit, &cbs, k));
    assert_int_equal(rc, 0);
    S.accepted++;
    if (S.high != 0)
        CALL(chan_set_watermarks(k->c, S.low, S.high));
    if (S.shutdown_on_accept) {
        CALL(chan_write(k->c, "HELLO\r\n", 7));
        CALL(chan_shutdown(k->c));
    }
}

static struct tls_server *tls_a;   /* shared by the tests: built once */

static int setup(void **state)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);

    (void)state;
    memset(&S, 0, sizeof(S));
    S.echo = true;
    uv_loop_init(&S.loop);
    uv_timer_init(&S.loop, &S.delay);
    uv_tcp_init(&S.loop, &S.lis);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    if (uv_tcp_bind(&S.lis, (struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&S.lis, 512, on_connection) != 0)
        return -1;
    uv_tcp_getsockname(&S.lis, (struct sockaddr *)&sa, &len);
    S.port = ntohs(sa.sin_port);
    chan_set_handshake_timeout(0);
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int teardown(void **state)
{
    (void)state;
    uv_walk(&S.loop, close_walk, NULL);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    return uv_loop_close(&S.loop) == 0 ? 0 : -1;
}

/* ---- the loop runner ---- */

typedef bool (*pred_fn)(void *arg);
struct waiter { pred_fn pred; void *arg; uint64_t deadline; bool timed_out; };

static void wait_tick(uv_timer_t *t)
{
    struct waiter *w = t->data;

    if (w->pred(w->arg)) {
        uv_stop(t->loop);
    } else if (uv_now(t->loop) > w->deadline) {
        w->timed_out = true;
        uv_stop(t->loop);
    }
}

static bool loop_until(pred_fn pred, void *arg, uint64_t timeout_ms)
{
    struct waiter w = { pred, arg, 0, false };
    uv_timer_t t;

    uv_update_time(&S.loop);
    w.deadline = uv_now(&S.loop) + timeout_ms;
    uv_timer_init(&S.loop, &t);
    t.data = &w;
    uv_timer_start(&t, wait_tick, 2, 2);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&S.loop, UV_RUN_NOWAIT);
    return !w.timed_out;
}

/* ---- client threads ---- */

struct client;
typedef void (*client_fn)(struct client *cl);

struct client {
    pthread_t th;
    client_fn fn;
    atomic_int done;
    atomic_int go;          /* main thread's signal for staged clients */
    int port, line;
    char err[160];
    /* options and results */
    int max_minor, suites_cbc, no_tickets, resumed, got_ticket;
    mbedtls_ssl_session session;
    size_t total;
    char text[512];
    int int_result;
};

#define CK(cond) do { if (!(cond)) { client_fail(cl, __LINE__, #cond); return; } } while (0)

static void client_fail(struct client *cl, int line, const char *what)
{
    if (cl->err[0] == '\0') {
        cl->line = line;
        snprintf(cl->err, sizeof(cl->err), "line %d: %s (errno %d)", line, what, errno);
    }
}

static void *client_main(void *arg)
{
    struct client *cl = arg;

    cl->fn(cl);
    atomic_store(&cl->done, 1);
    return NULL;
}

static void client_start(struct client *cl, client_fn fn)
{
    cl->fn = fn;
    cl->port = S.port;
    pthread_create(&cl->th, NULL, client_main, cl);
}

static bool client_done(void *arg)
{
    return atomic_load(&((struct client *)arg)->done) != 0 && chan_count() == 0;
}

static void client_join(struct client *cl)
{
    pthread_join(cl->th, NULL);
    if (cl->err[0] != '\0')
        fail_msg("client: %s", cl->err);
}

static int tcp_connect(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { 5, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const void *p, size_t len)
{
    return send(fd, p, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* Read exactly len bytes (or fail). */
static bool recv_all(int fd, void *p, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = recv(fd, (char *)p + got, len - got, 0);

        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* A TLS client over a plain fd. */
struct tc {
    int fd;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    bool resumed;
};

static const int cbc_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, 0
};

static int tc_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct tc *t = ctx;
    ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);

    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int tc_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct tc *t = ctx;
    ssize_t n = recv(t->fd, buf, len, 0);

    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN)
        return MBEDTLS_ERR_SSL_WANT_READ;
    return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
}

/* 0 after a completed handshake, else the mbedTLS error. */
static int tc_open(struct tc *t, struct client *cl, int fd)
{
    int rc = 0;

    memset(t, 0, sizeof(*t));
    t->fd = fd;
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_ssl_init(&t->ssl);
    mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT,
                                MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &ca_crt, NULL);
    mbedtls_ssl_conf_min_version(&t->conf, 3, 1);
    if (cl->max_minor != 0)
        mbedtls_ssl_conf_max_version(&t->conf, 3, cl->max_minor);
    if (cl->suites_cbc)
        mbedtls_ssl_conf_ciphersuites(&t->conf, cbc_suites);
    mbedtls_ssl_conf_session_tickets(&t->conf, cl->no_tickets ?
        MBEDTLS_SSL_SESSION_TICKETS_DISABLED : MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    if (mbedtls_ssl_setup(&t->ssl, &t->conf) != 0)
        return -1;
    mbedtls_ssl_set_hostname(&t->ssl, "localhost");
    mbedtls_ssl_set_bio(&t->ssl, t, tc_send, tc_recv, NULL);
    if (cl->session.ciphersuite != 0)
        mbedtls_ssl_set_session(&t->ssl, &cl->session);
    while (t->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        rc = mbedtls_ssl_handshake_step(&t->ssl);
        if (t->ssl.handshake != NULL && t->ssl.handshake->resume)
            t->resumed = true;
        if (rc != 0)
            break;
    }
    return rc;
}

static void tc_close(struct tc *t)
{
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

static bool tc_write(struct tc *t, const void *p, size_t len)
{
    while (len > 0) {
        int n = mbedtls_ssl_write(&t->ssl, p, len);

        if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ)
            continue;
        if (n <= 0)
            return false;
        p = (const char *)p + n;
        len -= (size_t)n;
    }
    return true;
}

static bool tc_read_exact(struct tc *t, void *p, size_t len)
{
    size_t got = 0;

    while (got < len) {
        int n = mbedtls_ssl_read(&t->ssl, (unsigned char *)p + got, len - got);

        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    return true;
}

/* ---- tests: plain ---- */

static void cl_plain_echo(struct client *cl)
{
    char buf[16];
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(send_all(fd, "hello\r\n", 7));
    CK(recv_all(fd, buf, 7));
    CK(memcmp(buf, "hello\r\n", 7) == 0);
    close(fd);
}

static void plain_echo_round_trips(void **state)
{
    struct client cl = { 0 };

    (void)state;
    client_start(&cl, cl_plain_echo);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.accepted, 1);
    assert_int_equal(S.eofs, 1);
    assert_int_equal(S.why_local, 1);
    assert_int_equal(chan_count(), 0);
    assert_int_equal(S.violations, 0);
}

#define BIG (16u * 1024 * 1024)

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 7 + (i >> 12)) & 0xff);
}

/* Send BIG bytes and read the echo concurrently, but read nothing for the
 * first 300 ms so the server has to stop reading. tls: through struct tc. */
static void big_transfer(struct client *cl, int fd, struct tc *t)
{
    uint8_t out[16384], in[16384];
    size_t sent = 0, rcvd = 0, chunk = 0;
    struct timespec t0, now;
    int idle = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    CK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
    while (rcvd < BIG) {
        struct pollfd p = { fd, POLLIN, 0 };
        bool reading;
        int n;

        clock_gettime(CLOCK_MONOTONIC, &now);
        reading = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > 300;
        if (sent < BIG)
            p.events |= POLLOUT;
        if (!reading)
            p.events &= (short)~POLLIN;
        n = poll(&p, 1, 50);
        CK(n >= 0);
        if (n == 0 && ++idle > 200)
            CK(!"stalled");
        if (n > 0)
            idle = 0;
        if (sent < BIG) {
            size_t want, i;

            if (chunk == 0) {
                chunk = BIG - sent < sizeof(out) ? BIG - sent : sizeof(out);
                for (i = 0; i < chunk; i++)
                    out[i] = pattern(sent + i);
            }
            want = chunk;
            n = t ? mbedtls_ssl_write(&t->ssl, out, want) : (int)send(fd, out, want, MSG_NOSIGNAL);
            if (n > 0) {
                /* Partial writes: shift the rest (TLS returns whole or WANT). */
                memmove(out, out + n, want - (size_t)n);
                sent += (size_t)n;
                chunk -= (size_t)n;
            } else {
                CK(t ? (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ)
                     : errno == EAGAIN);
            }
        }
        if (!reading)
            continue;
        for (;;) {
            size_t i;

            n = t ? mbedtls_ssl_read(&t->ssl, in, sizeof(in)) : (int)recv(fd, in, sizeof(in), 0);
            if (n <= 0) {
                CK(t ? n == MBEDTLS_ERR_SSL_WANT_READ : (n < 0 && errno == EAGAIN));
                break;
            }
            for (i = 0; i < (size_t)n; i++)
                if (in[i] != pattern(rcvd + i))
                    CK(!"echo differs");
            rcvd += (size_t)n;
        }
    }
    cl->total = rcvd;
}

static void cl_plain_big(struct client *cl)
{
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    big_transfer(cl, fd, NULL);
    close(fd);
}

static void plain_large_transfer_keeps_server_buffering_bounded(void **state)
{
    struct client cl = { 0 };

    (void)state;
    client_start(&cl, cl_plain_big);
    assert_true(loop_until(client_done, &cl, 60000));
    client_join(&cl);
    assert_int_equal(cl.total, BIG);
    assert_true(S.read_stops > 0);
    assert_true(S.drained > 0);
    /* high watermark + one 64 KiB read; nothing held on input */
    assert_true(S.max_buffered <= CHAN_DEFAULT_HIGH_WATERMARK + 64 * 1024);
    assert_int_equal(S.max_rx, 0);
    assert_int_equal(S.violations, 0);
    assert_int_equal(chan_count(), 0);
}

static void cl_half_close(struct client *cl)
{
    char buf[32];
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(send_all(fd, "ping\r\n", 6));
    CK(shutdown(fd, SHUT_WR) == 0);
    CK(recv_all(fd, buf, 11));
    CK(memcmp(buf, "ping\r\nBYE\r\n", 11) == 0);
    CK(recv(fd, buf, sizeof(buf), 0) == 0);
    close(fd);
}

static void eof_arrives_and_server_still_writes_after_it(void **state)
{
    struct client cl = { 0 };

    (void)state;
    S.reply_on_eof = true;
    client_start(&cl, cl_half_close);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.eofs, 1);
    assert_int_equal(S.why_local, 1);
}

static void cl_after_server_shutdown(struct client *cl)
{
    char buf[32];
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(recv_all(fd, buf, 7));
    CK(memcmp(buf, "HELLO\r\n", 7) == 0);
    CK(recv(fd, buf, sizeof(buf), 0) == 0);         /* server FIN */
    CK(send_all(fd, "late\r\n", 6));                 /* still read by the server */
    usleep(50 * 1000);
    CK(shutdown(fd, SHUT_WR) == 0);
    close(fd);
}

static void shutdown_sends_fin_and_reading_continues(void **state)
{
    struct client cl = { 0 };

    (void)state;
    S.shutdown_on_accept = true;
    S.echo = false;
    client_start(&cl, cl_after_server_shutdown);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.plain_len, 6);
    assert_memory_equal(S.plain_seen, "late\r\n", 6);
    assert_int_equal(S.eofs, 1);
}

static void cl_abort(struct client *cl)
{
    char buf[32];
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(send_all(fd, "ABORT\r\n", 7));
    cl->int_result = (int)recv(fd, buf, sizeof(buf), 0);
    CK(cl->int_result < 0 && errno == ECONNRESET);
    close(fd);
}

static void abort_makes_the_peer_see_a_reset(void **state)
{
    struct client cl = { 0 };

    (void)state;
    client_start(&cl, cl_abort);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.why_local, 1);
}

static void cl_reset(struct client *cl)
{
    struct linger lg = { 1, 0 };
    char buf[8];
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(send_all(fd, "x", 1));
    CK(recv_all(fd, buf, 1));
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void peer_reset_is_reported_as_peer_reset(void **state)
{
    struct client cl = { 0 };

    (void)state;
    client_start(&cl, cl_reset);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.why_reset, 1);
    assert_int_equal(S.eofs, 0);
}

#define MANY 200

static void cl_many(struct client *cl)
{
    static int fds[MANY];
    char b;
    int i;

    for (i = 0; i < MANY; i++) {
        fds[i] = tcp_connect(cl->port);
        CK(fds[i] >= 0);
    }
    for (i = 0; i < MANY; i++)
        CK(send_all(fds[i], "y", 1) && recv_all(fds[i], &b, 1) && b == 'y');
    for (i = 0; i < MANY; i++) {
        if (i % 3 == 0) {
            CK(send_all(fds[i], "ABORT", 5));
            CK(recv(fds[i], &b, 1, 0) <= 0);
        }
        close(fds[i]);
    }
}

static void many_channels_open_and_close_back_to_zero(void **state)
{
    struct client cl = { 0 };

    (void)state;
    client_start(&cl, cl_many);
    assert_true(loop_until(client_done, &cl, 20000));
    client_join(&cl);
    assert_int_equal(S.accepted, MANY);
    assert_int_equal(S.closed, MANY);
    assert_int_equal(chan_count(), 0);
    assert_int_equal(S.violations, 0);
}

/* ---- tests: TLS ---- */

static void cl_tls_echo(struct client *cl)
{
    struct tc t;
    char buf[16];
    int fd = tcp_connect(cl->port), rc;

    CK(fd >= 0);
    rc = tc_open(&t, cl, fd);
    cl->int_result = rc;
    if (rc != 0) {
        tc_close(&t);
        return;
    }
    snprintf(cl->text, sizeof(cl->text), "%s %s", mbedtls_ssl_get_version(&t.ssl),
             mbedtls_ssl_get_ciphersuite(&t.ssl));
    cl->resumed = t.resumed;
    CK(tc_write(&t, "hello tls\r\n", 11));
    CK(tc_read_exact(&t, buf, 11));
    CK(memcmp(buf, "hello tls\r\n", 11) == 0);
    mbedtls_ssl_session_free(&cl->session);     /* the one resumed, if any */
    mbedtls_ssl_session_init(&cl->session);
    CK(mbedtls_ssl_get_session(&t.ssl, &cl->session) == 0);
    cl->got_ticket = cl->session.ticket_len > 0;
    mbedtls_ssl_close_notify(&t.ssl);
    tc_close(&t);
}

static void use_implicit_tls(void)
{
    S.implicit = tls_a;
}

static void implicit_tls_handshakes_and_echoes(void **state)
{
    struct client cl = { 0 };

    (void)state;
    use_implicit_tls();
    client_start(&cl, cl_tls_echo);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(cl.int_result, 0);
    assert_int_equal(S.tls_ok, 1);
    assert_string_equal(S.version, "TLSv1.2");
    assert_non_null(strstr(S.suite, "ECDHE-ECDSA"));
    assert_true(strstr(S.suite, "GCM") != NULL || strstr(S.suite, "CHACHA20") != NULL);
    assert_memory_equal(S.tls_seen, "hello tls\r\n", 11);
    assert_int_equal(S.eofs, 1);        /* close_notify */
    assert_int_equal(S.why_local, 1);
    assert_int_equal(S.violations, 0);
    mbedtls_ssl_session_free(&cl.session);
}

static void tls11_client_is_refused(void **state)
{
    struct client cl = { 0 };

    (void)state;
    use_implicit_tls();
    cl.max_minor = MBEDTLS_SSL_MINOR_VERSION_2;
    client_start(&cl, cl_tls_echo);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_not_equal(cl.int_result, 0);
    assert_int_equal(S.tls_fail, 1);
    assert_true(S.last_tls_status < 0);
    assert_int_equal(S.why_hs, 1);
}

static void cbc_only_client_is_refused(void **state)
{
    struct client cl = { 0 };

    (void)state;
    use_implicit_tls();
    cl.suites_cbc = 1;
    client_start(&cl, cl_tls_echo);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_not_equal(cl.int_result, 0);
    assert_int_equal(S.tls_fail, 1);
    assert_int_equal(S.why_hs, 1);
}

static void resumption(bool tickets)
{
    struct client a = { 0 }, b = { 0 };

    use_implicit_tls();
    a.no_tickets = b.no_tickets = !tickets;
    client_start(&a, cl_tls_echo);
    assert_true(loop_until(client_done, &a, 5000));
    client_join(&a);
    assert_int_equal(a.int_result, 0);
    assert_int_equal(a.resumed, 0);
    assert_int_equal(a.got_ticket, tickets);
    b.session = a.session;      /* hand over the saved session */
    client_start(&b, cl_tls_echo);
    assert_true(loop_until(client_done, &b, 5000));
    client_join(&b);
    assert_int_equal(b.int_result, 0);
    assert_int_equal(b.resumed, 1);
    assert_int_equal(S.tls_ok, 2);
    assert_int_equal(S.resumed, 1);
    mbedtls_ssl_session_free(&b.session);
}

static void second_connection_resumes_with_a_ticket(void **state)
{
    (void)state;
    resumption(true);
}

static void second_connection_resumes_from_the_session_cache(void **state)
{
    (void)state;
    resumption(false);
}

static void cl_garbage_then_good(struct client *cl)
{
    struct client good = { 0 };
    struct tc t;
    char buf[64];
    int bad = tcp_connect(cl->port), fd = tcp_connect(cl->port);

    CK(bad >= 0 && fd >= 0);
    CK(tc_open(&t, &good, fd) == 0);
    CK(send_all(bad, "GET / HTTP/1.0\r\n\r\n", 18));
    CK(recv(bad, buf, sizeof(buf), 0) >= 0);    /* alert or FIN */
    close(bad);
    usleep(20 * 1000);
    CK(tc_write(&t, "still here\r\n", 12));
    CK(tc_read_exact(&t, buf, 12));
    CK(memcmp(buf, "still here\r\n", 12) == 0);
    mbedtls_ssl_close_notify(&t.ssl);
    tc_close(&t);
}

static void handshake_garbage_closes_only_that_client(void **state)
{
    struct client cl = { 0 };

    (void)state;
    use_implicit_tls();
    client_start(&cl, cl_garbage_then_good);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.tls_ok, 1);
    assert_int_equal(S.tls_fail, 1);
    assert_int_equal(S.why_hs, 1);
    assert_int_equal(S.why_local + S.why_reset, 1);   /* the client closes at once */
}

static void cl_silent(struct client *cl)
{
    char b;
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(recv(fd, &b, 1, 0) == 0);        /* the server gives up */
    close(fd);
}

static void silent_client_times_out_in_handshake(void **state)
{
    struct client cl = { 0 };

    (void)state;
    use_implicit_tls();
    chan_set_handshake_timeout(200);
    client_start(&cl, cl_silent);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.tls_fail, 1);
    assert_int_equal(S.last_tls_status, UV_ETIMEDOUT);
    assert_int_equal(S.why_timeout, 1);
}

static void cl_tls_big(struct client *cl)
{
    struct tc t;
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(tc_open(&t, cl, fd) == 0);
    big_transfer(cl, fd, &t);
    tc_close(&t);
}

static void tls_large_transfer_keeps_server_buffering_bounded(void **state)
{
    struct client cl = { 0 };

    (void)state;
    use_implicit_tls();
    client_start(&cl, cl_tls_big);
    assert_true(loop_until(client_done, &cl, 60000));
    client_join(&cl);
    assert_int_equal(cl.total, BIG);
    assert_true(S.read_stops > 0);
    /* high watermark + one 16 KiB record with its overhead */
    assert_true(S.max_buffered <= CHAN_DEFAULT_HIGH_WATERMARK + 17 * 1024);
    /* saved ciphertext: at most one 64 KiB read */
    assert_true(S.max_rx <= 64 * 1024);
    assert_int_equal(S.violations, 0);
}

static void cl_tls_shutdown(struct client *cl)
{
    struct tc t;
    char buf[16];
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(tc_open(&t, cl, fd) == 0);
    CK(tc_read_exact(&t, buf, 7));
    CK(memcmp(buf, "HELLO\r\n", 7) == 0);
    CK(mbedtls_ssl_read(&t.ssl, (unsigned char *)buf, sizeof(buf)) ==
       MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
    CK(tc_write(&t, "late\r\n", 6));
    usleep(50 * 1000);
    mbedtls_ssl_close_notify(&t.ssl);
    tc_close(&t);
}

static void tls_shutdown_sends_close_notify_and_reading_continues(void **state)
{
    struct client cl = { 0 };

    (void)state;
    use_implicit_tls();
    S.shutdown_on_accept = true;
    S.echo = false;
    client_start(&cl, cl_tls_shutdown);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.tls_len, 6);
    assert_memory_equal(S.tls_seen, "late\r\n", 6);
    assert_int_equal(S.eofs, 1);
}

/* ---- STARTTLS ---- */

static void cl_starttls(struct client *cl)
{
    struct tc t;
    char buf[32];
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    /* The command, then bytes a client must not send before the handshake
     * (the injection of CVE-2011-0411), in a later segment. */
    CK(send_all(fd, "STARTTLS\r\n", 10));
    usleep(20 * 1000);
    CK(send_all(fd, "EVIL\r\n", 6));
    CK(recv_all(fd, buf, 14));
    CK(memcmp(buf, "OK begin TLS\r\n", 14) == 0);
    CK(tc_open(&t, cl, fd) == 0);
    CK(tc_write(&t, "HELLO\r\n", 7));
    CK(tc_read_exact(&t, buf, 7));
    CK(memcmp(buf, "HELLO\r\n", 7) == 0);
    mbedtls_ssl_close_notify(&t.ssl);
    tc_close(&t);
}

static void starttls_upgrades_and_discards_bytes_sent_before_the_handshake(void **state)
{
    struct client cl = { 0 };

    (void)state;
    S.starttls = tls_a;
    S.starttls_delay = true;    /* "EVIL" reaches the kernel before the reply */
    client_start(&cl, cl_starttls);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.tls_ok, 1);
    assert_int_equal(S.plain_len, 10);
    assert_memory_equal(S.plain_seen, "STARTTLS\r\n", 10);
    assert_int_equal(S.tls_len, 7);
    assert_memory_equal(S.tls_seen, "HELLO\r\n", 7);
    assert_null(memmem(S.tls_seen, S.tls_len, "EVIL", 4));
    assert_int_equal(S.violations, 0);
}

static void cl_starttls_prompt(struct client *cl)
{
    struct tc t;
    char buf[32];
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(send_all(fd, "STARTTLS\r\n", 10));
    CK(recv_all(fd, buf, 14));
    CK(memcmp(buf, "OK begin TLS\r\n", 14) == 0);
    CK(tc_open(&t, cl, fd) == 0);
    CK(tc_write(&t, "HELLO\r\n", 7));
    CK(tc_read_exact(&t, buf, 7));
    CK(memcmp(buf, "HELLO\r\n", 7) == 0);
    mbedtls_ssl_close_notify(&t.ssl);
    tc_close(&t);
}

static void starttls_in_the_data_callback_upgrades_at_once(void **state)
{
    struct client cl = { 0 };
    int i;

    (void)state;
    S.starttls = tls_a;
    for (i = 0; i < 20; i++) {      /* the reply and the ClientHello race */
        memset(&cl, 0, sizeof(cl));
        client_start(&cl, cl_starttls_prompt);
        assert_true(loop_until(client_done, &cl, 5000));
        client_join(&cl);
    }
    assert_int_equal(S.tls_ok, 20);
    assert_int_equal(S.why_local, 20);
}

static void cl_starttls_pipelined(struct client *cl)
{
    char buf[64];
    ssize_t n;
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    CK(send_all(fd, "STARTTLS\r\n", 10));
    CK(recv_all(fd, buf, 14));
    /* Not TLS after the reply: the handshake fails, nothing delivered. */
    CK(send_all(fd, "EVIL\r\nMORE\r\n", 12));
    n = recv(fd, buf, sizeof(buf), 0);
    CK(n >= 0);
    close(fd);
}

static void plaintext_after_the_starttls_reply_fails_the_handshake(void **state)
{
    struct client cl = { 0 };

    (void)state;
    S.starttls = tls_a;
    client_start(&cl, cl_starttls_pipelined);
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_int_equal(S.tls_fail, 1);
    assert_int_equal(S.why_hs, 1);
    assert_int_equal(S.tls_len, 0);
    assert_int_equal(S.plain_len, 10);
}

/* ---- API details ---- */

static void cl_hold(struct client *cl)
{
    char b;
    int fd = tcp_connect(cl->port);

    CK(fd >= 0);
    while (!atomic_load(&cl->go))
        usleep(1000);
    CK(send_all(fd, "abc", 3));
    CK(recv_all(fd, &b, 1));
    close(fd);
}

static struct chan *last_chan;

static void last_chan_cb(uv_stream_t *lis, int status)
{
    struct conn *k = calloc(1, sizeof(*k));

    (void)status;
    k->s = &S;
    assert_int_equal(chan_accept(&k->c, lis, NULL, &cbs, k), 0);
    S.accepted++;
    last_chan = k->c;
}

static bool accepted_one(void *arg)
{
    (void)arg;
    return S.accepted == 1;
}

static bool plain_seen_3(void *arg)
{
    (void)arg;
    return S.plain_len >= 3;
}

static void calls_never_call_back_and_report_state(void **state)
{
    struct client cl = { 0 };
    struct sockaddr_in peer, local;
    int rc;

    (void)state;
    S.lis.connection_cb = last_chan_cb;
    client_start(&cl, cl_hold);
    assert_true(loop_until(accepted_one, NULL, 5000));
    assert_int_equal(chan_peer(last_chan, &peer), 0);
    assert_int_equal(chan_local(last_chan, &local), 0);
    assert_int_equal(ntohs(local.sin_port), S.port);
    assert_int_equal(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_false(chan_is_tls(last_chan));
    assert_ptr_equal(((struct conn *)chan_data(last_chan))->c, last_chan);
    /* Stop reading: the client's bytes wait in the kernel. */
    CALL(chan_read_stop(last_chan));
    CALL(chan_set_watermarks(last_chan, 1, 2));
    CALL(rc = chan_write(last_chan, "zzz", 3));
    assert_int_equal(rc, 1);            /* above the tiny high watermark */
    atomic_store(&cl.go, 1);
    usleep(50 * 1000);
    uv_run(&S.loop, UV_RUN_NOWAIT);
    assert_int_equal(S.plain_len, 0);   /* stopped: nothing delivered */
    CALL(chan_read_start(last_chan));
    assert_int_equal(S.plain_len, 0);   /* not from inside the call */
    assert_true(loop_until(plain_seen_3, NULL, 5000));
    assert_true(loop_until(client_done, &cl, 5000));
    client_join(&cl);
    assert_true(S.drained >= 1);
    assert_int_equal(S.violations, 0);
}

static void tls_server_new_names_the_bad_file(void **state)
{
    struct tls_server *t = NULL;
    char err[256];

    (void)state;
    assert_int_equal(tls_server_new(&t, "/nonexistent/cert.pem", key_file, err, sizeof(err)), -1);
    assert_null(t);
    assert_non_null(strstr(err, "/nonexistent/cert.pem"));
    assert_int_equal(tls_server_new(&t, cert_file, "/nonexistent/key.pem", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/key.pem"));
    assert_int_equal(tls_server_new(&t, cert_file, other_key_file, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "does not match"));
    assert_int_equal(tls_server_new(&t, cert_file, key_file, err, sizeof(err)), 0);
    tls_server_free(&t);
    assert_null(t);
}

/* ---- memory per idle channel (client in a child process) ---- */

static bool accepted_n(void *arg)
{
    return S.accepted >= *(int *)arg && S.tls_ok + (S.implicit ? 0 : S.accepted) >= *(int *)arg;
}

static bool all_closed(void *arg)
{
    (void)arg;
    return chan_count() == 0;
}

static void child_clients(int port, int n, bool tls, int release_fd)
{
    struct client cl = { 0 };
    struct tc *t = calloc((size_t)n, sizeof(*t));
    char b;
    int i;

    for (i = 0; i < n; i++) {
        int fd = tcp_connect(port);

        if (fd < 0 || (tls && tc_open(&t[i], &cl, fd) != 0))
            _exit(1);
        t[i].fd = fd;
    }
    (void)!read(release_fd, &b, 1);
    _exit(0);
}

static long measure(int n, bool tls)
{
    struct mallinfo2 before, after;
    int p[2];
    pid_t pid;
    long per;

    if (tls)
        use_implicit_tls();
    assert_int_equal(pipe(p), 0);
    /* Warm up once so lazily built state is not counted. */
    before = mallinfo2();
    pid = fork();
    if (pid == 0) {
        close(p[1]);
        child_clients(S.port, n, tls, p[0]);
    }
    close(p[0]);
    assert_true(loop_until(accepted_n, &n, 20000));
    after = mallinfo2();
    close(p[1]);
    waitpid(pid, NULL, 0);
    assert_true(loop_until(all_closed, NULL, 10000));
    /* The test's own struct conn per connection is not the channel's. */
    per = ((long)after.uordblks - (long)before.uordblks) / n - (long)sizeof(struct conn);
    return per;
}

static void idle_channel_memory_is_small(void **state)
{
    long plain, tls;

    (void)state;
    plain = measure(200, false);
    memset(&S.accepted, 0, sizeof(S) - offsetof(struct srv, accepted));
    tls = measure(50, true);
    if (plain <= 0 || tls <= 0) {
        print_message("memory per idle channel: not measurable with this allocator\n");
        return;     /* sanitizers replace glibc's malloc statistics */
    }
    print_message("memory per idle channel (heap, beyond the embedded uv_tcp_t "
                  "of %zu bytes): plain %ld bytes, TLS %ld bytes\n",
                  sizeof(uv_tcp_t), plain - (long)sizeof(uv_tcp_t),
                  tls - (long)sizeof(uv_tcp_t));
    assert_true(plain - (long)sizeof(uv_tcp_t) < 2048);
}

static int group_setup(void **state)
{
    char err[256];
    static const char pers[] = "test_chan";

    (void)state;
    log_init(getenv("CHAN_TEST_LOG") ? LOG_DEBUG : LOG_WARN, stderr);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                              (const unsigned char *)pers, sizeof(pers)) != 0)
        return -1;
    if (make_pki() != 0)
        return -1;
    if (tls_server_new(&tls_a, cert_file, key_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    tls_server_free(&tls_a);
    mbedtls_x509_crt_free(&ca_crt);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(plain_echo_round_trips),
        T(plain_large_transfer_keeps_server_buffering_bounded),
        T(eof_arrives_and_server_still_writes_after_it),
        T(shutdown_sends_fin_and_reading_continues),
        T(abort_makes_the_peer_see_a_reset),
        T(peer_reset_is_reported_as_peer_reset),
        T(many_channels_open_and_close_back_to_zero),
        T(implicit_tls_handshakes_and_echoes),
        T(tls11_client_is_refused),
        T(cbc_only_client_is_refused),
        T(second_connection_resumes_with_a_ticket),
        T(second_connection_resumes_from_the_session_cache),
        T(handshake_garbage_closes_only_that_client),
        T(silent_client_times_out_in_handshake),
        T(tls_large_transfer_keeps_server_buffering_bounded),
        T(tls_shutdown_sends_close_notify_and_reading_continues),
        T(starttls_upgrades_and_discards_bytes_sent_before_the_handshake),
        T(starttls_in_the_data_callback_upgrades_at_once),
        T(plaintext_after_the_starttls_reply_fails_the_handshake),
        T(calls_never_call_back_and_report_state),
        T(tls_server_new_names_the_bad_file),
        T(idle_channel_memory_is_small),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
