/*
 * chan_echo: an echo server over proxy/chan.c for interop tests.
 *   chan_echo CERT KEY
 * Listens on three ephemeral ports of 127.0.0.1 and prints
 *   plain=PORT tls=PORT starttls=PORT
 * plain echoes; tls echoes after an implicit handshake; starttls answers a
 * "STARTTLS" line with "OK begin TLS", drops the rest of that chunk,
 * upgrades and then echoes. Stops on SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/chan.h"
#include "proxy/log.h"

enum kind { PLAIN, IMPLICIT, STARTTLS, NKIND };

struct listener {
    uv_tcp_t tcp;
    enum kind kind;
};

struct conn {
    struct listener *l;
    struct chan *c;
    struct conn *prev, *next;
};

static struct listener lis[NKIND];
static struct conn *conns;
static struct tls_server *tls;
static uv_signal_t sigs[2];

static void on_data(struct chan *c, const uint8_t *buf, size_t len)
{
    struct listener *l = ((struct conn *)chan_data(c))->l;

    if (l->kind == STARTTLS && !chan_is_tls(c)) {
        if (len >= 8 && memcmp(buf, "STARTTLS", 8) == 0) {
            chan_write(c, "OK begin TLS\r\n", 14);
            if (chan_start_tls(c, tls) != 0)
                chan_close(c);
        } else {
            chan_write(c, "BAD need STARTTLS\r\n", 19);
        }
        return;
    }
    if (chan_write(c, buf, len) == 1)
        chan_read_stop(c);
}

static void on_drained(struct chan *c)
{
    chan_read_start(c);
}

static void on_tls_done(struct chan *c, int status)
{
    if (status == 0)
        log_event(LOG_INFO, "tls_up", "version=%s suite=%s resumed=%d",
                  chan_tls_version(c), chan_tls_ciphersuite(c), chan_tls_resumed(c));
}

static void on_eof(struct chan *c)
{
    chan_close(c);
}

static void on_closed(struct chan *c, const char *why)
{
    struct conn *k = chan_data(c);

    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        conns = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    free(k);
    log_event(LOG_DEBUG, "closed", "why=%s", why);
}

static const struct chan_callbacks cbs = {
    .data = on_data, .drained = on_drained, .tls_done = on_tls_done,
    .eof = on_eof, .closed = on_closed,
};

static void on_connection(uv_stream_t *s, int status)
{
    struct listener *l = (struct listener *)s;
    struct conn *k;

    if (status != 0 || (k = calloc(1, sizeof(*k))) == NULL)
        return;
    k->l = l;
    if (chan_accept(&k->c, s, l->kind == IMPLICIT ? tls : NULL, &cbs, k) != 0) {
        free(k);
        return;
    }
    k->next = conns;
    if (conns != NULL)
        conns->prev = k;
    conns = k;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct conn *k;
    int i;

    (void)signum;
    for (k = conns; k != NULL; k = k->next)
        chan_abort(k->c);
    for (i = 0; i < NKIND; i++)
        uv_close((uv_handle_t *)&lis[i].tcp, NULL);
    for (i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
    (void)h;
}

int main(int argc, char **argv)
{
    uv_loop_t *loop = uv_default_loop();
    struct sockaddr_in sa;
    char err[256];
    int i, len, port[NKIND];

    if (argc != 3) {
        fprintf(stderr, "usage: chan_echo CERT KEY\n");
        return 2;
    }
    log_init(LOG_INFO, stderr);
    signal(SIGPIPE, SIG_IGN);
    if (tls_server_new(&tls, argv[1], argv[2], err, sizeof(err)) != 0) {
        fprintf(stderr, "chan_echo: %s\n", err);
        return 1;
    }
    for (i = 0; i < NKIND; i++) {
        lis[i].kind = (enum kind)i;
        uv_tcp_init(loop, &lis[i].tcp);
        uv_ip4_addr("127.0.0.1", 0, &sa);
        if (uv_tcp_bind(&lis[i].tcp, (struct sockaddr *)&sa, 0) != 0 ||
            uv_listen((uv_stream_t *)&lis[i].tcp, 128, on_connection) != 0) {
            fprintf(stderr, "chan_echo: cannot listen\n");
            return 1;
        }
        len = sizeof(sa);
        uv_tcp_getsockname(&lis[i].tcp, (struct sockaddr *)&sa, &len);
        port[i] = ntohs(sa.sin_port);
    }
    uv_signal_init(loop, &sigs[0]);
    uv_signal_init(loop, &sigs[1]);
    uv_signal_start(&sigs[0], on_signal, SIGTERM);
    uv_signal_start(&sigs[1], on_signal, SIGINT);
    printf("plain=%d tls=%d starttls=%d\n", port[PLAIN], port[IMPLICIT], port[STARTTLS]);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    tls_server_free(&tls);
    uv_loop_close(loop);
    return chan_count() == 0 ? 0 : 1;
}
