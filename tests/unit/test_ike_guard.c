/*
 * A responder under an unauthenticated IKE_SA_INIT flood (ipsec/ike_guard.c):
 * per-source and total reply budgets, stateless cookies with a rotating
 * secret, half-open SAs bounded per source and in total, a source table of
 * fixed size. A front-end (initiator context), a back-end node (responder
 * context) and flooding hosts share an in-memory wire with a fake clock;
 * floods are the front-end's own IKE_SA_INIT request sent again under new
 * SPIs (and, spoofed, from new addresses), at one request per millisecond.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipsec/ike_sa.h"
#include "ipsec/ike_sa_int.h"
#include "ipsec/ipsec_log.h"
#include "tests/unit/ike_test_util.h"

#define FE_ADDR     "10.99.41.10"
#define FLOOD_ADDR  "10.99.41.66"
#define FLOOD2_ADDR "10.99.41.67"
#define VIP         "10.99.41.100"
#define MAX_Q       256
#define MAX_HOSTS   5             /* the last: init_template's */

struct packet {
    uint32_t src, dst;
    uint8_t data[IKE_BUF_MAX];
    size_t len;
};

/* A host on the wire: an IKE context, or (ctx NULL) a flooder that only
 * counts what it receives. */
struct host {
    struct ike_ctx *ctx;
    uint32_t addr;
    int established, failed, gone;
    uint64_t received;
    bool drop_auth;             /* its IKE_AUTH requests never arrive: its SAs stay half-open */
};

static struct host hosts[MAX_HOSTS];
static struct host *fe, *be, *fl, *fl2;
static struct packet queue[MAX_Q];
static int q_len;
static uint64_t now_ms = 5000000;
static int n_flood_logs;
static uint8_t last_cookie[IKE_COOKIE_LEN];

static uint64_t clock_now(void *arg)
{
    (void)arg;
    return now_ms;
}

static struct host *host_of(uint32_t addr)
{
    for (int i = 0; i < MAX_HOSTS; i++)
        if (hosts[i].addr == addr)
            return &hosts[i];
    return NULL;
}

static void wire_send(void *arg, uint32_t src, uint32_t dst, uint16_t port, const uint8_t *msg, size_t len)
{
    struct host *to = host_of(dst), *from = arg;

    (void)port;
    if (to == NULL || to->ctx == NULL) {    /* a flooder or a spoofed address: counted, gone */
        if (to != NULL)
            to->received++;
        return;
    }
    if (from->drop_auth && len > 18 && msg[18] == IKE_AUTH)
        return;
    assert_true(q_len < MAX_Q);
    queue[q_len] = (struct packet){ .src = src, .dst = dst, .len = len };
    memcpy(queue[q_len].data, msg, len);
    q_len++;
}

static int kid_install(void *arg, struct ike_sa *sa, const struct ike_child_install *c)
{
    (void)arg, (void)sa, (void)c;
    return 0;
}

static void kid_remove(void *arg, struct ike_sa *sa, uint32_t spi_in, uint32_t spi_out)
{
    (void)arg, (void)sa, (void)spi_in, (void)spi_out;
}

static void on_event(void *arg, struct ike_sa *sa, enum ike_event ev)
{
    struct host *h = arg;

    (void)sa;
    h->established += ev == IKE_EV_ESTABLISHED;
    h->failed += ev == IKE_EV_FAILED;
    h->gone += ev == IKE_EV_SA_GONE;
}

static uint32_t spi_alloc(void *arg)
{
    static uint32_t next = 0x1000;

    (void)arg;
    return next++;
}

static void log_sink(enum ipsec_log_level level, const char *msg)
{
    (void)level;
    if (getenv("IKE_TEST_LOG"))
        fprintf(stderr, "  log: %s\n", msg);
    n_flood_logs += strstr(msg, "event=ike_unauth_limited") != NULL;
}

static struct ike_peer_config config(bool initiator, const char *local)
{
    struct ike_peer_config c;

    memset(&c, 0, sizeof(c));
    c.local_addr = inet_addr(local);
    c.peer_addr = initiator ? inet_addr(VIP) : 0;
    c.port = 4500;
    itu_ident(&c.local_id, initiator ? "fe.example.test" : "mail.example.test");
    itu_ident(&c.peer_id, initiator ? "mail.example.test" : "fe.example.test");
    memcpy(c.psk, "correct horse battery staple", 28);
    c.psk_len = 28;
    itu_proposal(&c.ike_proposals, IKE_PROTO_IKE, IKE_ENCR_AES_GCM_16, 128, 0, IKE_PRF_HMAC_SHA2_256,
                 IKE_DH_CURVE25519, -1);
    itu_proposal(&c.esp_proposals, IKE_PROTO_ESP, IKE_ENCR_AES_GCM_16, 128, 0, 0, 0, IKE_ESN_NO);
    c.retransmit_ms = 100;
    c.retransmit_tries = 3;
    return c;
}

/* A host with an IKE context (initiator unless addr is the VIP). */
static struct host *host_ctx(struct host *h, const char *addr)
{
    struct ike_callbacks cb = { .arg = h, .send = wire_send, .child_install = kid_install,
                                .child_remove = kid_remove, .event = on_event, .spi_alloc = spi_alloc,
                                .now_ms = clock_now };
    struct ike_peer_config c = config(strcmp(addr, VIP) != 0, addr);

    h->addr = inet_addr(addr);
    h->ctx = ike_ctx_new(&cb);
    assert_non_null(h->ctx);
    assert_int_equal(ike_ctx_add_peer(h->ctx, &c), 0);
    return h;
}

static void pump(void)
{
    for (int rounds = 0; rounds < 1000 && q_len > 0; rounds++) {
        struct packet p = queue[0];
        struct host *to = host_of(p.dst);

        memmove(queue, queue + 1, sizeof(queue[0]) * (size_t)--q_len);
        if (to != NULL && to->ctx != NULL)
            ike_ctx_input(to->ctx, p.src, 4500, p.dst, p.data, p.len);
    }
}

static void tick_all(void)
{
    for (int i = 0; i < MAX_HOSTS; i++)
        if (hosts[i].ctx != NULL && ike_ctx_next_deadline(hosts[i].ctx) <= now_ms)
            ike_ctx_tick(hosts[i].ctx);
    pump();
}

/* One IKE_SA_INIT request as the front-end would send it: the flood's template. */
static struct packet init_template(void)
{
    struct host tmp = { 0 };
    struct packet p;

    host_ctx(&tmp, FE_ADDR);
    hosts[MAX_HOSTS - 1] = tmp;                 /* on the wire for the one send */
    assert_int_equal(ike_ctx_initiate(hosts[MAX_HOSTS - 1].ctx, 0, false, NULL), 0);
    assert_int_equal(q_len, 1);
    p = queue[0];
    q_len = 0;
    ike_ctx_free(&hosts[MAX_HOSTS - 1].ctx);
    memset(&hosts[MAX_HOSTS - 1], 0, sizeof(hosts[0]));
    return p;
}

static uint64_t flood_spi = 0x0f10000000000000ULL;

/* The template under a new SPI_i, from src, into the back-end. */
static void flood_one(const struct packet *tpl, uint32_t src)
{
    struct packet p = *tpl;

    ike_put64(p.data, ++flood_spi);
    ike_ctx_input(be->ctx, src, 4500, be->addr, p.data, p.len);
}

static int setup(void **state)
{
    (void)state;
    ipsec_log_set_sink(log_sink);
    memset(hosts, 0, sizeof(hosts));
    q_len = 0;
    n_flood_logs = 0;
    be = host_ctx(&hosts[0], VIP);
    fe = &hosts[1];
    fl = &hosts[2];
    fl->addr = inet_addr(FLOOD_ADDR);
    fl2 = &hosts[3];
    fl2->addr = inet_addr(FLOOD2_ADDR);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_HOSTS; i++)
        ike_ctx_free(&hosts[i].ctx);
    return 0;
}

/* ---- tests ---- */

/* Two senders at one address, 500 requests a second each, for 3 s; the
 * front-end starts at 1.5 s, in the middle of a one-second window (the old
 * global budget of 50 replies a second was spent by then). Its tunnel comes
 * up at once, with no retransmission, and the flood gets the per-source
 * budget and no more. */
static void test_a_flood_from_one_address_does_not_delay_an_initiator_at_another(void **state)
{
    struct packet tpl = init_template();
    struct ike_limits lim;
    uint64_t start = now_ms, t_init = 0, t_up = 0;
    const struct ike_stats *st;

    (void)state;
    ike_limits_default(&lim);
    for (int ms = 0; ms < 3000; ms++) {
        now_ms = start + (uint64_t)ms;
        flood_one(&tpl, fl->addr);      /* sender one */
        flood_one(&tpl, fl->addr);      /* sender two, same address */
        if (ms == 1500) {
            host_ctx(fe, FE_ADDR);
            t_init = now_ms;
            assert_int_equal(ike_ctx_initiate(fe->ctx, 0, true, NULL), 0);
        }
        tick_all();
        if (fe->established && t_up == 0)
            t_up = now_ms;
    }
    st = ike_ctx_stats(be->ctx);
    printf("  tunnel up after %llu ms of fake time; the flood (6000 requests in 3 s) got %llu replies; "
           "half-open %llu; refused at the source bound %llu, replies limited %llu\n",
           (unsigned long long)(t_up - t_init), (unsigned long long)fl->received, (unsigned long long)st->half_open,
           (unsigned long long)st->half_open_refused_src, (unsigned long long)st->replies_limited_src);
    assert_int_equal(fe->established, 1);
    assert_true(t_up - t_init < config(true, FE_ADDR).retransmit_ms);
    assert_int_equal(ike_ctx_stats(fe->ctx)->retransmits, 0);
    /* the flood: cookie_per_src IKE_SA_INIT responses, then COOKIEs within its budget (burst + 3 s) */
    assert_true(fl->received <= lim.cookie_per_src + lim.replies_per_src * 4u);
    assert_true(fl->received >= lim.replies_per_src * 3u);
    assert_int_equal(st->half_open, lim.cookie_per_src);
    assert_true(st->replies_limited_src > 5000);
    assert_int_equal(st->replies_limited_total, 0);
    /* one log line per IKE_GUARD_LOG_MS at most, not one per packet */
    assert_true(n_flood_logs >= 1 && n_flood_logs <= 1 + 3000 / IKE_GUARD_LOG_MS);
}

/* A source that answers cookies (a real address) holds at most
 * half_open_per_src SAs; more are dropped and counted; the others are
 * unaffected, and half-open SAs die after half_open_timeout_ms. */
static void test_half_open_sas_are_bounded_per_source(void **state)
{
    struct ike_limits lim;

    (void)state;
    ike_limits_default(&lim);
    host_ctx(fl, FLOOD_ADDR)->drop_auth = true;
    for (int i = 0; i < 12; i++) {
        now_ms++;
        assert_int_equal(ike_ctx_initiate(fl->ctx, 0, false, NULL), 0);
        pump();
    }
    assert_int_equal(ike_ctx_stats(be->ctx)->half_open, lim.half_open_per_src);
    assert_int_equal(ike_ctx_count_sas(be->ctx), (int)lim.half_open_per_src);
    assert_int_equal(ike_ctx_stats(be->ctx)->half_open_refused_src, 12 - lim.half_open_per_src);
    assert_int_equal(ike_ctx_stats(be->ctx)->cookies_sent, lim.half_open_per_src - lim.cookie_per_src);

    host_ctx(fe, FE_ADDR);
    assert_int_equal(ike_ctx_initiate(fe->ctx, 0, true, NULL), 0);
    pump();
    assert_int_equal(fe->established, 1);
    assert_int_equal(ike_ctx_stats(fe->ctx)->retransmits, 0);

    ike_ctx_free(&fl->ctx);     /* the flooder stops retransmitting */
    now_ms += lim.half_open_timeout_ms;
    tick_all();
    assert_int_equal(ike_ctx_stats(be->ctx)->half_open, 0);
    assert_int_equal(ike_ctx_count_sas(be->ctx), 1);   /* the front-end's */
}

/* With the total bound reached by two sources, a third is refused (and
 * counted) until the half-open SAs time out; then it gets through. */
static void test_half_open_sas_are_bounded_in_total(void **state)
{
    struct ike_limits lim;

    (void)state;
    ike_limits_default(&lim);
    lim.half_open_max = 8;
    ike_ctx_set_limits(be->ctx, &lim);
    host_ctx(fl, FLOOD_ADDR)->drop_auth = true;
    host_ctx(fl2, FLOOD2_ADDR)->drop_auth = true;
    for (int i = 0; i < 5; i++) {
        now_ms++;
        assert_int_equal(ike_ctx_initiate(fl->ctx, 0, false, NULL), 0);
        assert_int_equal(ike_ctx_initiate(fl2->ctx, 0, false, NULL), 0);
        pump();
    }
    assert_int_equal(ike_ctx_stats(be->ctx)->half_open, 8);
    assert_int_equal(ike_ctx_stats(be->ctx)->half_open_refused_total, 2);

    host_ctx(fe, FE_ADDR);
    assert_int_equal(ike_ctx_initiate(fe->ctx, 0, true, NULL), 0);
    pump();
    assert_int_equal(fe->established, 0);
    assert_int_equal(ike_ctx_stats(be->ctx)->half_open_refused_total, 3);
    /* the flooders' SAs give up; ours keeps retransmitting until they are gone */
    ike_ctx_free(&fl->ctx);
    ike_ctx_free(&fl2->ctx);
    lim.half_open_timeout_ms = 300;
    ike_ctx_set_limits(be->ctx, &lim);
    for (int ms = 0; ms < 1000 && !fe->established; ms++) {
        now_ms++;
        tick_all();
    }
    assert_int_equal(fe->established, 1);
    assert_int_equal(ike_ctx_stats(be->ctx)->half_open, 0);
}

/* 100,000 spoofed addresses, 100 requests a millisecond: state stays
 * within the cookie threshold (none of them returns a cookie), replies
 * within the total budget, the source table keeps its fixed size and still
 * knows the address that held half-open SAs before (its entry is not
 * evicted for addresses without any), and the front-end still gets through
 * with one cookie round trip. */
static void test_spoofed_sources_neither_grow_state_nor_exceed_the_total_budget(void **state)
{
    struct packet tpl = init_template();
    struct ike_limits lim;
    uint64_t start = now_ms, tx0;
    const struct ike_stats *st;

    (void)state;
    ike_limits_default(&lim);
    host_ctx(fl, FLOOD_ADDR)->drop_auth = true;
    for (unsigned i = 0; i < lim.half_open_per_src; i++) {
        assert_int_equal(ike_ctx_initiate(fl->ctx, 0, false, NULL), 0);
        pump();
    }
    assert_int_equal(ike_ctx_stats(be->ctx)->half_open, lim.half_open_per_src);
    tx0 = ike_ctx_stats(be->ctx)->tx;
    for (uint32_t i = 0; i < 100000; i++) {
        if (i % 100 == 0)
            now_ms = start + i / 100;   /* 100 a millisecond: 100,000 a second */
        flood_one(&tpl, htonl(0x0a640000u + i));    /* 10.100.0.0 and up: none of the hosts */
    }
    st = ike_ctx_stats(be->ctx);
    printf("  1 s of 100,000 spoofed sources: %llu replies, half-open %llu, %d SAs, replies limited %llu\n",
           (unsigned long long)(st->tx - tx0), (unsigned long long)st->half_open, ike_ctx_count_sas(be->ctx),
           (unsigned long long)st->replies_limited_total);
    assert_int_equal(st->half_open, lim.cookie_threshold);
    assert_int_equal(ike_ctx_count_sas(be->ctx), (int)lim.cookie_threshold);
    assert_true(st->tx - tx0 <= lim.cookie_threshold + 2u * lim.replies_total);
    assert_true(st->replies_limited_total > 90000);
    assert_int_equal(sizeof(((struct ike_guard *)0)->src), IKE_GUARD_SETS * IKE_GUARD_WAYS * sizeof(struct ike_guard_src));
    assert_int_equal(st->half_open_refused_src, 0);
    assert_int_equal(ike_ctx_initiate(fl->ctx, 0, false, NULL), 0);
    pump();
    assert_int_equal(st->half_open_refused_src, 1);    /* still at its bound */

    now_ms += 1000;         /* the flood stopped: the total budget refills */
    host_ctx(fe, FE_ADDR);
    assert_int_equal(ike_ctx_initiate(fe->ctx, 0, true, NULL), 0);
    pump();
    assert_int_equal(fe->established, 1);
    assert_int_equal(ike_ctx_stats(fe->ctx)->retransmits, 0);
}

/* admit: the request's payload list holds only the COOKIE notify (or nothing). */
static enum ike_admission admit(const char *src, const uint8_t *cookie)
{
    static const uint8_t ni[32] = { 1, 2, 3 };
    uint8_t body[4 + IKE_COOKIE_LEN] = { 0, 0, IKE_N_COOKIE >> 8, IKE_N_COOKIE & 0xff }, out[IKE_COOKIE_LEN];
    struct ike_payload_list pl = { .n = cookie != NULL };
    enum ike_admission a;

    if (cookie != NULL)
        memcpy(body + 4, cookie, IKE_COOKIE_LEN);
    pl.pl[0] = (struct ike_payload){ .type = IKE_PL_NOTIFY, .body = body, .len = sizeof(body) };
    a = ike_guard_admit_init(be->ctx, inet_addr(src), 0x1122334455667788ULL, ni, sizeof(ni), &pl, out);
    if (a == IKE_ADMIT_COOKIE && cookie == NULL)
        memcpy(last_cookie, out, IKE_COOKIE_LEN);
    return a;
}

/* The cookie an initiator was given still works after the secret changed
 * once (it is at most one secret old), not after it changed twice; it is
 * bound to the address. */
static void test_a_cookie_outlives_one_secret_change_but_not_two(void **state)
{
    (void)state;
    ike_ctx_set_cookie_threshold(be->ctx, 0);
    assert_int_equal(admit(FE_ADDR, NULL), IKE_ADMIT_COOKIE);
    assert_int_equal(admit(FE_ADDR, last_cookie), IKE_ADMIT);
    assert_int_equal(admit(FLOOD_ADDR, last_cookie), IKE_ADMIT_COOKIE);
    now_ms += IKE_COOKIE_SECRET_MS;             /* changes at the next use */
    assert_int_equal(admit(FE_ADDR, last_cookie), IKE_ADMIT);
    now_ms += IKE_COOKIE_SECRET_MS;
    assert_int_equal(admit(FE_ADDR, last_cookie), IKE_ADMIT_COOKIE);
    assert_int_equal(admit(FE_ADDR, NULL), IKE_ADMIT_COOKIE);     /* a fresh one */
    last_cookie[IKE_COOKIE_LEN - 1] ^= 1;
    assert_int_equal(admit(FE_ADDR, last_cookie), IKE_ADMIT_COOKIE);  /* one bit off */
    last_cookie[IKE_COOKIE_LEN - 1] ^= 1;
    assert_int_equal(admit(FE_ADDR, last_cookie), IKE_ADMIT);
}

/* The secret changes lazily, at the first use after IKE_COOKIE_SECRET_MS;
 * after a quiet hour one change is made, and the secret before it -- an
 * hour old -- would still be accepted: a cookie (one seen on the path, say)
 * would work long after "at most one secret old". Whatever the gaps, a
 * cookie is refused once two secret periods have passed since it was made. */
static void test_a_cookie_is_refused_after_a_long_quiet_time(void **state)
{
    (void)state;
    ike_ctx_set_cookie_threshold(be->ctx, 0);
    assert_int_equal(admit(FE_ADDR, NULL), IKE_ADMIT_COOKIE);
    assert_int_equal(admit(FE_ADDR, last_cookie), IKE_ADMIT);
    now_ms += 3600 * 1000;                      /* nobody needed a cookie for an hour */
    assert_int_equal(admit(FE_ADDR, last_cookie), IKE_ADMIT_COOKIE);
}

/* The template with its KE data replaced: zeros (for Curve25519, u = 0, a
 * low-order point) or, with trunc, one byte shorter (all lengths fixed up). */
static struct packet with_bad_ke(const struct packet *tpl, bool trunc)
{
    struct packet p = *tpl;
    struct ike_payload_list pl;
    struct ike_header h;

    assert_int_equal(ike_header_parse(p.data, p.len, &h), 0);
    assert_int_equal(ike_payloads_parse(h.next_payload, p.data + IKE_HDR_LEN, p.len - IKE_HDR_LEN, &pl), 0);
    for (int i = 0; i < pl.n; i++) {
        size_t at = (size_t)(pl.pl[i].body - p.data);

        if (pl.pl[i].type != IKE_PL_KE)
            continue;
        memset(p.data + at + 4, 0, pl.pl[i].len - 4);
        if (trunc) {
            memmove(p.data + at + pl.pl[i].len - 1, p.data + at + pl.pl[i].len, p.len - at - pl.pl[i].len);
            p.len--;
            ike_put16(p.data + at - 2, (uint16_t)(pl.pl[i].len + 4 - 1));
            ike_put32(p.data + 24, (uint32_t)p.len);
        }
        return p;
    }
    fail_msg("no KE payload");
    return p;
}

/* A request whose KE data no group accepts (a low-order Curve25519 point,
 * or the wrong length) must not cost a Diffie-Hellman key pair each,
 * without a cookie and without any budget: the README's "must return a
 * stateless COOKIE before we run Diffie-Hellman". Such a request never
 * becomes a half-open SA, so it never counts toward the cookie bounds; one
 * address sending them must at most cost what cookie_per_src half-open
 * SAs cost, and every SA the responder made (an SA_GONE each) is a DH. */
static void test_a_request_with_an_unusable_ke_costs_no_dh_without_a_cookie(void **state)
{
    struct packet tpl = init_template(), zero = with_bad_ke(&tpl, false), shorter = with_bad_ke(&tpl, true);
    struct ike_limits lim;

    (void)state;
    ike_limits_default(&lim);
    for (int i = 0; i < 1000; i++) {
        now_ms++;
        flood_one(i % 2 ? &zero : &shorter, fl->addr);
    }
    printf("  1000 requests with an unusable KE from one address: %d responder SAs made (a DH key pair each), "
           "half-open %llu, cookies sent %llu\n", be->gone, (unsigned long long)ike_ctx_stats(be->ctx)->half_open,
           (unsigned long long)ike_ctx_stats(be->ctx)->cookies_sent);
    assert_int_equal(ike_ctx_stats(be->ctx)->half_open, 0);
    assert_true(be->gone <= (int)lim.cookie_per_src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_flood_from_one_address_does_not_delay_an_initiator_at_another, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_half_open_sas_are_bounded_per_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_open_sas_are_bounded_in_total, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spoofed_sources_neither_grow_state_nor_exceed_the_total_budget, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_cookie_outlives_one_secret_change_but_not_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_request_with_an_unusable_ke_costs_no_dh_without_a_cookie, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_cookie_is_refused_after_a_long_quiet_time, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
