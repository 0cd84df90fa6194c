/*
 * Tunnel stream API (ipsec/stream.c) over the mirrored netstack of
 * netstack_test_util.h: both TCP ends in this process, every segment
 * through real ESP (static test keys) and a UDP socket on 127.0.0.1.
 * Cross-process tests (200 MB, 10,000 streams) are in tests/net/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/netstack_test_util.h"

#define MAXC 128

struct conn {
    struct stream *s;
    int connected, eof, closed, drained, got;
    enum stream_close_reason reason;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    size_t take_max;      /* bytes taken per data callback */
    int echo, shut_on_eof, close_on_eof, abort_on_data;
    uint64_t closed_turn;
};

static struct ntu M;
static struct conn conns[MAXC];
static size_t nconns;
static uint64_t turns;
static uv_prepare_t turn_counter;
static struct conn *server_tpl;   /* settings copied into accepted conns */

static void count_turn(uv_prepare_t *h)
{
    (void)h;
    turns++;
}

static struct conn *conn_new(void)
{
    struct conn *c = &conns[nconns++];

    memset(c, 0, sizeof(*c));
    c->take_max = SIZE_MAX;
    return c;
}

static void on_connected(struct stream *s)
{
    ((struct conn *)stream_get_data(s))->connected = 1;
}

static size_t on_data(struct stream *s, const struct iovec *iov, size_t n)
{
    struct conn *c = stream_get_data(s);
    size_t i, took = 0;

    if (n == 0) {
        c->eof = 1;
        if (c->shut_on_eof)
            stream_shutdown(s);
        if (c->close_on_eof)
            stream_close(s);
        return 0;
    }
    if (c->abort_on_data) {
        stream_abort(s);
        return 0;
    }
    for (i = 0; i < n && took < c->take_max; i++) {
        size_t k = iov[i].iov_len;

        if (k > c->take_max - took)
            k = c->take_max - took;
        if (c->rx_len + k > c->rx_cap) {
            c->rx_cap = (c->rx_len + k) * 2;
            c->rx = realloc(c->rx, c->rx_cap);
        }
        memcpy(c->rx + c->rx_len, iov[i].iov_base, k);
        c->rx_len += k;
        if (c->echo)
            stream_write(s, iov[i].iov_base, k);
        took += k;
    }
    c->got = took > 0;
    return took;
}

static void on_drained(struct stream *s)
{
    ((struct conn *)stream_get_data(s))->drained++;
}

static void on_closed(struct stream *s, enum stream_close_reason r)
{
    struct conn *c = stream_get_data(s);

    c->closed = 1;
    c->reason = r;
    c->closed_turn = turns;
    c->s = NULL;
}

static const struct stream_callbacks cbs = {
    on_connected, on_data, on_drained, on_closed,
};

static void on_accept(struct stream_listener *l, struct stream *s)
{
    struct conn *c = conn_new();

    (void)l;
    if (server_tpl != NULL) {
        c->take_max = server_tpl->take_max;
        c->echo = server_tpl->echo;
        c->shut_on_eof = server_tpl->shut_on_eof;
        c->close_on_eof = server_tpl->close_on_eof;
        c->abort_on_data = server_tpl->abort_on_data;
    }
    c->s = s;
    c->connected = 1;
    stream_set_callbacks(s, &cbs, c);
    stream_read_start(s);
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(ntu_open(&M, 0), 0);
    nconns = 0;
    server_tpl = NULL;
    turns = 0;
    uv_prepare_init(&M.loop, &turn_counter);
    uv_prepare_start(&turn_counter, count_turn);
    uv_unref((uv_handle_t *)&turn_counter);
    return 0;
}

static int teardown(void **state)
{
    size_t i;

    (void)state;
    uv_close((uv_handle_t *)&turn_counter, NULL);
    ntu_close(&M);
    for (i = 0; i < nconns; i++)
        free(conns[i].rx);
    return 0;
}

static struct conn *client_open(uint16_t port, uint64_t timeout_ms)
{
    struct conn *c = conn_new();

    assert_int_equal(stream_open(M.ns, NTU_PEER, port, timeout_ms, &cbs, c, &c->s), 0);
    return c;
}

static void listen_on(uint16_t port, struct conn *tpl)
{
    struct stream_listener *l;

    server_tpl = tpl;
    assert_int_equal(stream_listen(M.ns, port, on_accept, NULL, &l), 0);
}

static void fill(uint8_t *b, size_t n, uint32_t seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (uint8_t)(seed >> 16);
    }
}

static void test_echo_round_trip_preserves_bytes_and_closes_locally(void **state)
{
    struct conn tpl = { .echo = 1, .close_on_eof = 1, .take_max = SIZE_MAX };
    static uint8_t buf[300000];
    struct conn *c;

    (void)state;
    listen_on(7, &tpl);
    c = client_open(7, 2000);
    assert_true(ntu_run_until(&M, &c->connected, 2000));
    assert_int_equal(stream_mss(c->s), netstack_mss_for_mtu(1500));
    fill(buf, sizeof(buf), 1);
    assert_true(stream_write(c->s, buf, sizeof(buf)) >= 0);
    while (c->rx_len < sizeof(buf) && ntu_run_until(&M, &c->closed, 50) == 0)
        if (c->rx_len == sizeof(buf))
            break;
    assert_int_equal(c->rx_len, sizeof(buf));
    assert_memory_equal(c->rx, buf, sizeof(buf));
    stream_close(c->s);
    assert_true(ntu_run_until(&M, &c->closed, 2000));
    assert_int_equal(c->reason, STREAM_LOCAL_CLOSE);
    assert_true(ntu_run_until(&M, &conns[1].closed, 2000));
    assert_int_equal(conns[1].reason, STREAM_LOCAL_CLOSE);
}

static void test_connect_timeout_stops_once_connected(void **state)
{
    struct conn tpl = { .take_max = SIZE_MAX };
    struct conn *c;
    int never = 0;

    (void)state;
    listen_on(7, &tpl);
    c = client_open(7, 100);
    assert_true(ntu_run_until(&M, &c->connected, 2000));
    ntu_run_until(&M, &never, 300);
    assert_false(c->closed);
    assert_false(conns[1].closed);
}

static void test_half_close_lets_the_peer_answer_after_our_fin(void **state)
{
    struct conn tpl = { .echo = 1, .shut_on_eof = 1, .take_max = SIZE_MAX };
    struct conn *c, *srv;

    (void)state;
    listen_on(7, &tpl);
    c = client_open(7, 2000);
    assert_true(ntu_run_until(&M, &c->connected, 2000));
    assert_int_equal(stream_write(c->s, "question", 8), 0);
    assert_int_equal(stream_shutdown(c->s), 0);
    assert_int_equal(stream_write(c->s, "more", 4), UV_EPIPE);
    /* The server sees our data, then EOF, echoes and half-closes too. */
    assert_true(ntu_run_until(&M, &c->eof, 2000));
    srv = &conns[1];
    assert_true(srv->eof);
    assert_int_equal(c->rx_len, 8);
    assert_memory_equal(c->rx, "question", 8);
    assert_false(c->closed);
    assert_false(srv->closed);
    stream_close(c->s);
    stream_close(srv->s);
    assert_true(ntu_run_until(&M, &srv->closed, 2000));
    assert_int_equal(c->reason, STREAM_LOCAL_CLOSE);
    assert_int_equal(srv->reason, STREAM_LOCAL_CLOSE);
}

static void test_peer_half_close_still_accepts_our_writes(void **state)
{
    struct conn tpl = { .take_max = SIZE_MAX };
    struct conn *c, *srv;

    (void)state;
    listen_on(7, &tpl);
    c = client_open(7, 2000);
    assert_true(ntu_run_until(&M, &c->connected, 2000));
    assert_true(ntu_run_until(&M, &conns[1].connected, 2000));
    srv = &conns[1];
    stream_write(srv->s, "banner", 6);
    stream_shutdown(srv->s);
    assert_true(ntu_run_until(&M, &c->eof, 2000));
    assert_int_equal(stream_write(c->s, "after-eof", 9), 0);
    assert_true(ntu_run_until(&M, &srv->got, 2000));
    assert_int_equal(srv->rx_len, 9);
    assert_memory_equal(srv->rx, "after-eof", 9);
    stream_close(c->s);
    assert_true(ntu_run_until(&M, &srv->eof, 2000));
    stream_close(srv->s);
    assert_true(ntu_run_until(&M, &srv->closed, 2000));
    assert_int_equal(srv->reason, STREAM_LOCAL_CLOSE);
}

static void test_abort_resets_the_peer(void **state)
{
    struct conn tpl = { .take_max = SIZE_MAX };
    struct conn *c;

    (void)state;
    listen_on(7, &tpl);
    c = client_open(7, 2000);
    assert_true(ntu_run_until(&M, &c->connected, 2000));
    assert_true(ntu_run_until(&M, &conns[1].connected, 2000));
    stream_abort(c->s);
    assert_true(ntu_run_until(&M, &conns[1].closed, 2000));
    assert_int_equal(conns[1].reason, STREAM_PEER_RESET);
    assert_int_equal(c->reason, STREAM_LOCAL_CLOSE);
}

static void test_peer_abort_is_reported_as_reset(void **state)
{
    struct conn tpl = { .abort_on_data = 1, .take_max = SIZE_MAX };
    struct conn *c;

    (void)state;
    listen_on(7, &tpl);
    c = client_open(7, 2000);
    assert_true(ntu_run_until(&M, &c->connected, 2000));
    stream_write(c->s, "x", 1);
    assert_true(ntu_run_until(&M, &c->closed, 2000));
    assert_int_equal(c->reason, STREAM_PEER_RESET);
}

static void test_refused_connection_is_a_peer_reset(void **state)
{
    struct conn *c;

    (void)state;
    c = client_open(4444, 2000);
    assert_true(ntu_run_until(&M, &c->closed, 2000));
    assert_false(c->connected);
    assert_int_equal(c->reason, STREAM_PEER_RESET);
}

static void test_connect_timeout_fires_when_nothing_answers(void **state)
{
    struct conn *c;
    uint64_t t0;

    (void)state;
    /* Without an outbound SA the SYN goes nowhere: silence. */
    esp_sadb_free(&M.db);
    esp_sadb_init(&M.db, 64);
    t0 = uv_now(&M.loop);
    c = client_open(7, 300);
    assert_true(ntu_run_until(&M, &c->closed, 3000));
    assert_int_equal(c->reason, STREAM_TIMEOUT);
    assert_true(uv_now(&M.loop) - t0 >= 300);
    assert_true(uv_now(&M.loop) - t0 < 1000);
    assert_false(c->connected);
}

static void test_tunnel_lost_closes_every_stream_within_one_turn(void **state)
{
    struct conn tpl = { .take_max = SIZE_MAX };
    size_t i, n = 40, lost;
    uint64_t turn0;
    int all = 0;

    (void)state;
    listen_on(7, &tpl);
    for (i = 0; i < n; i++)
        client_open(7, 2000);
    while (!all && ntu_run_until(&M, &all, 20) == 0) {
        all = nconns == 2 * n;
        for (i = 0; all && i < nconns; i++)
            all = conns[i].connected;
    }
    assert_int_equal(nconns, 2 * n);
    turn0 = turns;
    /* Mirrored: both ends of all 40 connections ride this tunnel. */
    lost = netstack_tunnel_lost(M.tun);
    assert_int_equal(lost, 2 * n);
    uv_run(&M.loop, UV_RUN_ONCE);
    for (i = 0; i < nconns; i++) {
        assert_true(conns[i].closed);
        assert_int_equal(conns[i].reason, STREAM_TUNNEL_LOST);
        assert_true(conns[i].closed_turn <= turn0 + 1);
    }
    /* The tunnel still works for new streams. */
    assert_non_null(client_open(7, 2000));
    assert_true(ntu_run_until(&M, &conns[nconns - 1].connected, 2000));
}

/* Write chunks until stream_write asks us to wait, then wait for drained
 * up to ms; returns 0 if the writer is stalled. */
static int write_until_wait(struct conn *c, const uint8_t *src, size_t total,
                            size_t *off, size_t chunk, uint64_t ms)
{
    int d = c->drained, never = 0, i;

    while (*off < total) {
        int rc = stream_write(c->s, src + *off, chunk);

        assert_true(rc >= 0);
        *off += chunk;
        if (rc == 1)
            break;
    }
    for (i = 0; c->drained == d && *off < total && i < (int)(ms / 10); i++)
        ntu_run_until(&M, &never, 10);
    return c->drained != d || *off >= total;
}

static void test_stalled_reader_bounds_buffers_and_resumes_intact(void **state)
{
    struct conn tpl = { .take_max = 0 };
    const size_t total = 8u << 20, chunk = 65536;
    uint8_t *src = malloc(total);
    size_t off = 0;
    struct conn *c, *srv;
    int rounds, never = 0;

    (void)state;
    fill(src, total, 7);
    listen_on(9, &tpl);
    c = client_open(9, 2000);
    assert_true(ntu_run_until(&M, &c->connected, 2000));
    srv = &conns[1];
    /* Write until the writer waits and nothing moves any more: on a busy
     * machine the window may still be filling when no drain came in
     * 300 ms, which takes the writer below its high watermark again. */
    for (rounds = 0;; rounds++) {
        size_t r0;

        assert_true(rounds < 50);
        while (write_until_wait(c, src, total, &off, chunk, 300))
            assert_true(off < total);
        r0 = stream_read_buffered(srv->s);
        ntu_run_until(&M, &never, 200);
        if (stream_read_buffered(srv->s) == r0 && stream_write_buffered(c->s) > STREAM_DEFAULT_HIGH_WATER)
            break;
    }
    /* The reader took nothing: it holds one window, and the writer
     * stopped within a chunk of its high watermark. */
    assert_int_equal(srv->rx_len, 0);
    assert_true(stream_read_buffered(srv->s) > 0);
    assert_true(stream_read_buffered(srv->s) <= 1024 * 1024);
    assert_true(stream_write_buffered(c->s) > STREAM_DEFAULT_HIGH_WATER);
    assert_true(stream_write_buffered(c->s) <= STREAM_DEFAULT_HIGH_WATER + chunk);
    /* Resume reading: everything arrives, in order. */
    srv->take_max = SIZE_MAX;
    stream_read_start(srv->s);
    while (off < total)
        assert_true(write_until_wait(c, src, total, &off, chunk, 2000));
    while (srv->rx_len < total)
        assert_false(ntu_run_until(&M, &c->closed, 20));
    assert_memory_equal(srv->rx, src, total);
    assert_true(c->drained > 0);
    free(src);
}

static void test_partial_take_pauses_until_read_start(void **state)
{
    struct conn tpl = { .take_max = 3 };
    struct conn *c, *srv;

    (void)state;
    listen_on(7, &tpl);
    c = client_open(7, 2000);
    assert_true(ntu_run_until(&M, &c->connected, 2000));
    stream_write(c->s, "abcdefgh", 8);
    assert_true(ntu_run_until(&M, &conns[1].got, 2000));
    srv = &conns[1];
    ntu_run_until(&M, &c->closed, 100);
    assert_int_equal(srv->rx_len, 3);
    assert_int_equal(stream_read_buffered(srv->s), 5);
    srv->take_max = SIZE_MAX;
    stream_read_start(srv->s);
    ntu_run_until(&M, &c->closed, 100);
    assert_int_equal(srv->rx_len, 8);
    assert_memory_equal(srv->rx, "abcdefgh", 8);
    assert_int_equal(stream_read_buffered(srv->s), 0);
}

static void test_open_without_tunnel_is_unreachable(void **state)
{
    struct stream *s;

    (void)state;
    assert_int_equal(stream_open(M.ns, htonl(0x0A580063u), 7, 0, &cbs, NULL, &s),
                     UV_ENETUNREACH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_echo_round_trip_preserves_bytes_and_closes_locally),
        T(test_connect_timeout_stops_once_connected),
        T(test_half_close_lets_the_peer_answer_after_our_fin),
        T(test_peer_half_close_still_accepts_our_writes),
        T(test_abort_resets_the_peer),
        T(test_peer_abort_is_reported_as_reset),
        T(test_refused_connection_is_a_peer_reset),
        T(test_connect_timeout_fires_when_nothing_answers),
        T(test_tunnel_lost_closes_every_stream_within_one_turn),
        T(test_stalled_reader_bounds_buffers_and_resumes_intact),
        T(test_partial_take_pauses_until_read_start),
        T(test_open_without_tunnel_is_unreachable),
    };

    return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
