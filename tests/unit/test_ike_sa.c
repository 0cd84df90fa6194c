/*
 * The IKEv2 state machine end to end in one process: an initiator context
 * (front-end) and a responder context (back-end node) exchange real IKE
 * messages through an in-memory wire with a fake clock. Each test drives
 * one behaviour: handshakes for every transform set, wrong PSK, loss and
 * retransmission, duplicates, liveness probes, DELETE, rekeys, cookies,
 * INVALID_KE_PAYLOAD, INVALID_IKE_SPI, INITIAL_CONTACT, TS narrowing and
 * corrupted messages.
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
#include <unistd.h>

#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509_crt.h>

#include "ipsec/ike_sa.h"
#include "ipsec/ike_cert.h"
#include "ipsec/ike_crypto.h"
#include "ipsec/ike_sa_int.h"
#include "ipsec/ipsec_log.h"
#include "tests/unit/ike_test_util.h"

#define FE_ADDR "10.99.2.10"
#define VIP     "10.99.2.100"
#define FE2_ADDR "10.99.2.11"
#define MAX_Q   64
#define MAX_SAS 16

struct packet {
    uint32_t src, dst;
    uint16_t port;
    uint8_t data[8192];
    size_t len;
};

struct installed {
    bool live;
    bool out_pending;           /* installed with defer_out, not yet activated */
    uint32_t spi_in, spi_out;
    uint8_t key_in[64], key_out[64];
    size_t key_len;
    uint16_t encr;
    bool esn;
};

struct side {
    struct ike_ctx *ctx;
    uint32_t addr;
    struct installed kids[MAX_SAS];
    uint32_t out_spi;           /* the outbound slot: like the ESP SA database, one
                                 * outbound SA per peer, the last installed or activated */
    int events[16];
    uint32_t next_spi;
    struct ike_sa *last_sa;
};

static struct packet queue[MAX_Q];
static int q_len;
static uint64_t now_ms = 1000000;
static int drop_next;           /* drop this many packets as they are sent */
static struct side fe, be;
static struct side fe2;         /* a second front-end, for identity collisions */

static uint64_t clock_now(void *arg)
{
    (void)arg;
    return now_ms;
}

static void wire_send(void *arg, uint32_t src, uint32_t dst, uint16_t port, const uint8_t *msg, size_t len)
{
    (void)arg;
    if (drop_next > 0) {
        drop_next--;
        return;
    }
    assert_true(q_len < MAX_Q);
    assert_true(len <= sizeof(queue[0].data));
    queue[q_len] = (struct packet){ .src = src, .dst = dst, .port = port, .len = len };
    memcpy(queue[q_len].data, msg, len);
    q_len++;
}

static int kid_install(void *arg, struct ike_sa *sa, const struct ike_child_install *c)
{
    struct side *s = arg;

    (void)sa;
    for (int i = 0; i < MAX_SAS; i++) {
        if (!s->kids[i].live) {
            struct installed *k = &s->kids[i];

            k->live = true;
            k->spi_in = c->spi_in;
            k->spi_out = c->spi_out;
            k->key_len = c->key_len;
            memcpy(k->key_in, c->key_in, c->key_len);
            memcpy(k->key_out, c->key_out, c->key_len);
            k->encr = c->encr;
            k->esn = c->esn;
            k->out_pending = c->defer_out;
            if (!c->defer_out)
                s->out_spi = c->spi_out;
            return 0;
        }
    }
    return -1;
}

static void kid_remove(void *arg, struct ike_sa *sa, uint32_t spi_in, uint32_t spi_out)
{
    struct side *s = arg;

    (void)sa;
    for (int i = 0; i < MAX_SAS; i++)
        if (s->kids[i].live && s->kids[i].spi_in == spi_in)
            s->kids[i].live = false;
    if (s->out_spi == spi_out)      /* the slot may hold a newer SA: only ours goes */
        s->out_spi = 0;
}

static void kid_activate(void *arg, struct ike_sa *sa, uint32_t spi_in)
{
    struct side *s = arg;

    (void)sa;
    for (int i = 0; i < MAX_SAS; i++) {
        if (s->kids[i].live && s->kids[i].spi_in == spi_in && s->kids[i].out_pending) {
            s->kids[i].out_pending = false;
            s->out_spi = s->kids[i].spi_out;
        }
    }
}

/* Set by a test: runs inside every event callback, as the tunnel layer does. */
static void (*event_hook)(struct side *s, struct ike_sa *sa, enum ike_event ev);

static void on_event(void *arg, struct ike_sa *sa, enum ike_event ev)
{
    struct side *s = arg;

    s->events[ev]++;
    if (event_hook != NULL)
        event_hook(s, sa, ev);
    if (ev == IKE_EV_ESTABLISHED || ev == IKE_EV_IKE_REKEYED)
        s->last_sa = sa;
    if (ev == IKE_EV_SA_GONE && s->last_sa == sa)
        s->last_sa = NULL;
}

static uint32_t spi_alloc(void *arg)
{
    struct side *s = arg;

    return ++s->next_spi;
}

static int live_kids(const struct side *s)
{
    int n = 0;

    for (int i = 0; i < MAX_SAS; i++)
        n += s->kids[i].live;
    return n;
}

static const struct installed *kid_by_in(const struct side *s, uint32_t spi_in)
{
    for (int i = 0; i < MAX_SAS; i++)
        if (s->kids[i].live && s->kids[i].spi_in == spi_in)
            return &s->kids[i];
    return NULL;
}

static void deliver(const struct packet *p)
{
    if (p->dst == be.addr && be.ctx != NULL)
        ike_ctx_input(be.ctx, p->src, 4500, p->dst, p->data, p->len);
    else if (p->dst == fe.addr && fe.ctx != NULL)
        ike_ctx_input(fe.ctx, p->src, 4500, p->dst, p->data, p->len);
    else if (p->dst == fe2.addr && fe2.ctx != NULL)
        ike_ctx_input(fe2.ctx, p->src, 4500, p->dst, p->data, p->len);
}

/* Deliver queued packets until the wire is quiet (bounded). */
static void pump(void)
{
    for (int rounds = 0; rounds < 200 && q_len > 0; rounds++) {
        struct packet p = queue[0];

        memmove(queue, queue + 1, sizeof(queue[0]) * (size_t)--q_len);
        deliver(&p);
    }
}

/* INFORMATIONAL requests (DELETEs) kept off the wire by pump_holding_deletes. */
static struct packet held[8];
static int n_held;

/* Like pump, but INFORMATIONAL requests wait in held[] (a slow peer's DELETE). */
static void pump_holding_deletes(void)
{
    for (int rounds = 0; rounds < 200 && q_len > 0; rounds++) {
        struct packet p = queue[0];

        memmove(queue, queue + 1, sizeof(queue[0]) * (size_t)--q_len);
        if (p.len > 19 && p.data[18] == IKE_INFORMATIONAL && !(p.data[19] & IKE_FLAG_RESPONSE)) {
            assert_true(n_held < 8);
            held[n_held++] = p;
        } else {
            deliver(&p);
        }
    }
}

/* Put the held packets back on the wire, in their order. */
static void release_held(void)
{
    for (int i = 0; i < n_held; i++) {
        assert_true(q_len < MAX_Q);
        queue[q_len++] = held[i];
    }
    n_held = 0;
}

/* Advance the fake clock by ms, running timers as they fall due. */
static void advance(uint64_t ms)
{
    uint64_t end = now_ms + ms;

    while (now_ms < end) {
        uint64_t d = UINT64_MAX;

        if (fe.ctx && ike_ctx_next_deadline(fe.ctx) < d)
            d = ike_ctx_next_deadline(fe.ctx);
        if (be.ctx && ike_ctx_next_deadline(be.ctx) < d)
            d = ike_ctx_next_deadline(be.ctx);
        now_ms = d < end ? (d > now_ms ? d : now_ms + 1) : end;
        if (fe.ctx)
            ike_ctx_tick(fe.ctx);
        if (be.ctx)
            ike_ctx_tick(be.ctx);
        pump();
    }
}

static void side_reset(struct side *s, const char *addr)
{
    ike_ctx_free(&s->ctx);
    memset(s, 0, sizeof(*s));
    s->addr = inet_addr(addr);
    s->next_spi = s == &fe ? 0xc0000000u : 0xd0000000u;
}

static struct ike_ctx *side_ctx(struct side *s)
{
    struct ike_callbacks cb = { .arg = s, .send = wire_send, .child_install = kid_install,
                                .child_remove = kid_remove, .event = on_event, .spi_alloc = spi_alloc,
                                .child_activate_out = kid_activate,
                                .now_ms = clock_now };

    s->ctx = ike_ctx_new(&cb);
    assert_non_null(s->ctx);
    return s->ctx;
}

static struct ike_peer_config base_config(bool frontend)
{
    struct ike_peer_config c;

    memset(&c, 0, sizeof(c));
    c.local_addr = frontend ? inet_addr(FE_ADDR) : inet_addr(VIP);
    c.peer_addr = frontend ? inet_addr(VIP) : 0;
    c.port = 4500;
    itu_ident(&c.local_id, frontend ? "fe.example.test" : "mail.example.test");
    itu_ident(&c.peer_id, frontend ? "mail.example.test" : "fe.example.test");
    memcpy(c.psk, "correct horse battery staple", 28);
    c.psk_len = 28;
    itu_proposal(&c.ike_proposals, IKE_PROTO_IKE, IKE_ENCR_AES_GCM_16, 128, 0, IKE_PRF_HMAC_SHA2_256, IKE_DH_CURVE25519, -1);
    itu_proposal(&c.esp_proposals, IKE_PROTO_ESP, IKE_ENCR_AES_GCM_16, 128, 0, 0, 0, IKE_ESN_NO);
    c.ports[0] = 110;
    c.ports[1] = 143;
    c.ports[2] = 80;
    c.n_ports = 3;
    c.retransmit_ms = 100;
    c.retransmit_tries = 3;
    return c;
}

static char log_lines[64][256];
static int n_log;

static void log_sink(enum ipsec_log_level level, const char *msg)
{
    (void)level;
    if (getenv("IKE_TEST_LOG"))
        fprintf(stderr, "  log: %s\n", msg);
    if (n_log < 64)
        snprintf(log_lines[n_log++], sizeof(log_lines[0]), "%s", msg);
}

static bool logged(const char *needle)
{
    for (int i = 0; i < n_log; i++)
        if (strstr(log_lines[i], needle))
            return true;
    return false;
}

static int setup(void **state)
{
    (void)state;
    ipsec_log_set_sink(log_sink);
    n_log = 0;
    side_reset(&fe, FE_ADDR);
    side_reset(&be, VIP);
    side_reset(&fe2, FE2_ADDR);
    q_len = 0;
    drop_next = 0;
    return 0;
}

static struct ike_cert_auth *cert_fe, *cert_be;     /* outlive the contexts; freed in teardown */
static void certs_free(void);

static int teardown(void **state)
{
    (void)state;
    ike_ctx_free(&fe.ctx);
    ike_ctx_free(&be.ctx);
    ike_ctx_free(&fe2.ctx);
    certs_free();
    return 0;
}

/* Both sides hold one CHILD pair whose keys and SPIs mirror each other. */
static void assert_children_mirror(void)
{
    uint32_t fe_in, fe_out, be_in, be_out;
    const struct installed *f, *b;

    assert_non_null(fe.last_sa);
    assert_non_null(be.last_sa);
    assert_true(ike_sa_child_spis(fe.last_sa, &fe_in, &fe_out));
    assert_true(ike_sa_child_spis(be.last_sa, &be_in, &be_out));
    assert_int_equal(fe_out, be_in);
    assert_int_equal(be_out, fe_in);
    f = kid_by_in(&fe, fe_in);
    b = kid_by_in(&be, be_in);
    assert_non_null(f);
    assert_non_null(b);
    assert_int_equal(f->key_len, b->key_len);
    assert_memory_equal(f->key_out, b->key_in, f->key_len);
    assert_memory_equal(f->key_in, b->key_out, f->key_len);
    assert_memory_not_equal(f->key_in, f->key_out, f->key_len);
}

/* Each side's outbound slot holds its newest CHILD SA, the one the peer has
 * the inbound half of: traffic flows both ways. */
static void assert_outbound_is_the_newest(void)
{
    uint32_t fe_in, fe_out, be_in, be_out;

    assert_true(ike_sa_child_spis(fe.last_sa, &fe_in, &fe_out));
    assert_true(ike_sa_child_spis(be.last_sa, &be_in, &be_out));
    assert_int_equal(fe.out_spi, fe_out);
    assert_int_equal(be.out_spi, be_out);
    assert_non_null(kid_by_in(&be, fe.out_spi));
    assert_non_null(kid_by_in(&fe, be.out_spi));
}

static void establish(const struct ike_peer_config *fc, const struct ike_peer_config *bc)
{
    side_ctx(&fe);
    side_ctx(&be);
    assert_int_equal(ike_ctx_add_peer(fe.ctx, fc), 0);
    assert_int_equal(ike_ctx_add_peer(be.ctx, bc), 0);
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, true, NULL), 0);
    pump();
}

static void test_psk_handshake_installs_mirrored_child_sas(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(be.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(ike_sa_state(fe.last_sa), IKE_S_ESTABLISHED);
    assert_int_equal(live_kids(&fe), 1);
    assert_int_equal(live_kids(&be), 1);
    assert_children_mirror();
    assert_int_equal(fe.kids[0].key_len, 20);   /* AES-128 key + salt */
    assert_int_equal(ike_sa_peer_identity(be.last_sa)->len, strlen("fe.example.test"));
}

struct suite_case {
    uint16_t encr, bits, integ, prf, dh;
    uint16_t esp_encr, esp_bits;
    int esn;
    size_t keymat;
};

static void test_every_transform_set_and_group_establishes(void **state)
{
    static const struct suite_case cases[] = {
        { IKE_ENCR_AES_GCM_16, 128, 0, IKE_PRF_HMAC_SHA2_256, IKE_DH_CURVE25519, IKE_ENCR_AES_GCM_16, 128, 0, 20 },
        { IKE_ENCR_AES_GCM_16, 256, 0, IKE_PRF_HMAC_SHA2_384, IKE_DH_ECP256, IKE_ENCR_AES_GCM_16, 256, 1, 36 },
        { IKE_ENCR_AES_CBC, 128, IKE_INTEG_HMAC_SHA2_256_128, IKE_PRF_HMAC_SHA2_256, IKE_DH_MODP2048,
          IKE_ENCR_CHACHA20_POLY1305, 0, 0, 36 },
        { IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128, IKE_PRF_HMAC_SHA2_384, IKE_DH_CURVE25519,
          IKE_ENCR_AES_GCM_16, 128, 1, 20 },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct suite_case *c = &cases[i];
        struct ike_peer_config fc = base_config(true), bc;

        setup(NULL);
        fc.ike_proposals.n = fc.esp_proposals.n = 0;
        itu_proposal(&fc.ike_proposals, IKE_PROTO_IKE, c->encr, c->bits, c->integ, c->prf, c->dh, -1);
        itu_proposal(&fc.esp_proposals, IKE_PROTO_ESP, c->esp_encr, c->esp_bits, 0, 0, 0, c->esn);
        bc = fc;
        bc.local_addr = inet_addr(VIP);
        bc.peer_addr = 0;
        bc.local_id = fc.peer_id;
        bc.peer_id = fc.local_id;
        establish(&fc, &bc);
        print_message("suite %zu: fe=%d be=%d\n", i, fe.events[IKE_EV_ESTABLISHED], be.events[IKE_EV_ESTABLISHED]);
        assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
        assert_int_equal(be.events[IKE_EV_ESTABLISHED], 1);
        assert_children_mirror();
        assert_int_equal(fe.kids[0].key_len, c->keymat);
        assert_int_equal(fe.kids[0].esn, c->esn == 1);
        teardown(NULL);
    }
}

static void test_ipv4_address_and_key_id_identities_authenticate(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    uint32_t a = inet_addr(FE_ADDR);

    (void)state;
    fc.local_id.type = IKE_ID_IPV4_ADDR;
    memcpy(fc.local_id.data, &a, 4);
    fc.local_id.len = 4;
    bc.peer_id = fc.local_id;
    fc.peer_id = (struct ike_identity){ IKE_ID_KEY_ID, "cluster-key-7", 13 };
    bc.local_id = fc.peer_id;
    establish(&fc, &bc);
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(be.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(ike_sa_peer_identity(be.last_sa)->type, IKE_ID_IPV4_ADDR);
    assert_int_equal(ike_sa_peer_identity(fe.last_sa)->type, IKE_ID_KEY_ID);
}

static void test_unknown_critical_payload_is_refused(void **state)
{
    struct ike_peer_config bc = base_config(false);
    struct ike_header h = { .spi_i = 0x1111222233334444ull, .exchange = IKE_SA_INIT, .flags = IKE_FLAG_INITIATOR };
    struct ike_writer w;
    uint8_t msg[512], nonce[32] = { 1 }, ke[32] = { 9 };
    size_t start;
    long n;
    struct ike_payload_list pl;
    struct ike_notify nt;

    (void)state;
    side_ctx(&be);
    ike_ctx_add_peer(be.ctx, &bc);
    ike_writer_init(&w, msg, sizeof(msg), &h);
    ike_write_sa(&w, &bc.ike_proposals);
    ike_write_ke(&w, IKE_DH_CURVE25519, ke, sizeof(ke));
    ike_write_nonce(&w, nonce, sizeof(nonce));
    start = ike_writer_begin(&w, 200, true);    /* unknown type, critical bit set */
    ike_writer_put32(&w, 0);
    ike_writer_end(&w, start);
    n = ike_writer_finish(&w);
    ike_ctx_input(be.ctx, inet_addr(FE_ADDR), 4500, inet_addr(VIP), msg, (size_t)n);
    assert_int_equal(q_len, 1);
    assert_int_equal(ike_payloads_parse(queue[0].data[16], queue[0].data + 28, queue[0].len - 28, &pl), 0);
    assert_int_equal(ike_notify_parse(pl.pl[0].body, pl.pl[0].len, &nt), 0);
    assert_int_equal(nt.type, IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD);
    assert_int_equal(nt.data_len, 1);
    assert_int_equal(nt.data[0], 200);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 0);
}

static void test_wrong_psk_fails_and_installs_nothing(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    bc.psk[0] ^= 1;
    establish(&fc, &bc);
    assert_int_equal(be.events[IKE_EV_AUTH_FAILED], 1);
    assert_int_equal(fe.events[IKE_EV_AUTH_FAILED], 1);
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 0);
    assert_int_equal(live_kids(&fe), 0);
    assert_int_equal(live_kids(&be), 0);
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 0);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 0);
}

static void test_wrong_peer_identity_fails(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    itu_ident(&fc.peer_id, "other.example.test");     /* responder proves mail.example.test */
    establish(&fc, &bc);
    assert_int_equal(fe.events[IKE_EV_AUTH_FAILED], 1);
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 0);
    assert_int_equal(live_kids(&fe), 0);
}

static void test_lost_messages_are_retransmitted(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    side_ctx(&fe);
    side_ctx(&be);
    ike_ctx_add_peer(fe.ctx, &fc);
    ike_ctx_add_peer(be.ctx, &bc);
    drop_next = 1;      /* IKE_SA_INIT request lost */
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, false, NULL), 0);
    pump();
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 0);
    advance(100);       /* first retransmission */
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(ike_ctx_stats(fe.ctx)->retransmits, 1);
    assert_children_mirror();
}

/* A refused IKE_SA_INIT (ICMP unreachable: nobody serves the VIP yet) is
 * sent again the first gap after the last send and the backoff ladder
 * starts over, for as long as refusals come; the request still gives up
 * when the plain ladder would have (100+200+400+800 ms here). */
static void test_refused_request_is_retransmitted_without_backoff(void **state)
{
    struct ike_peer_config fc = base_config(true);     /* gaps 100, 200, 400, 800 */
    struct ike_sa *sa;
    uint64_t t0;
    int i;

    (void)state;
    side_ctx(&fe);
    ike_ctx_add_peer(fe.ctx, &fc);
    t0 = now_ms;
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, false, &sa), 0);
    assert_int_equal(ike_sa_request_refused(sa), -1);  /* first gap already */
    advance(110);                                       /* resent at +100; next at +300 */
    assert_int_equal(ike_ctx_stats(fe.ctx)->retransmits, 1);
    assert_int_equal(ike_ctx_next_deadline(fe.ctx), t0 + 300);
    assert_int_equal(ike_sa_request_refused(sa), 0);
    assert_int_equal(ike_ctx_next_deadline(fe.ctx), t0 + 200);
    assert_int_equal(ike_sa_request_refused(sa), -1);  /* once per send */
    advance(90);                                        /* resent at +200 ... */
    assert_int_equal(ike_ctx_stats(fe.ctx)->retransmits, 2);
    assert_int_equal(ike_ctx_next_deadline(fe.ctx), t0 + 300);  /* ... and the ladder starts over */
    advance(100);                                       /* +300, lost silently: next 200 later */
    assert_int_equal(ike_ctx_stats(fe.ctx)->retransmits, 3);
    assert_int_equal(ike_ctx_next_deadline(fe.ctx), t0 + 500);
    /* a late refusal (its first gap has passed): resent at once */
    advance(150);                                       /* +450 */
    assert_int_equal(ike_sa_request_refused(sa), 0);
    assert_int_equal(ike_ctx_next_deadline(fe.ctx), t0 + 450);
    advance(1);                                         /* resent at +451, next +551 */
    assert_int_equal(ike_ctx_stats(fe.ctx)->retransmits, 4);
    assert_int_equal(ike_ctx_next_deadline(fe.ctx), t0 + 551);
    /* refusals keep coming (the VIP has not moved yet): one send per first
     * gap, however many, until the plain ladder's give-up time (+1500) */
    for (i = 0; i < 9; i++) {
        advance(100);                                   /* +551 ... +1351 */
        assert_int_equal(ike_ctx_stats(fe.ctx)->retransmits, 5 + i);
        (void)ike_sa_request_refused(sa);               /* the answer to each send */
    }
    advance(100);                                       /* +1451; +1551 would be past the give-up */
    assert_int_equal(ike_ctx_stats(fe.ctx)->retransmits, 14);
    assert_int_equal(ike_ctx_next_deadline(fe.ctx), t0 + 1500);
    assert_int_equal(ike_sa_request_refused(sa), -1);
    advance(48);                                        /* +1499 */
    assert_int_equal(fe.events[IKE_EV_FAILED], 0);
    advance(1);
    assert_int_equal(fe.events[IKE_EV_FAILED], 1);
    assert_int_equal(ike_ctx_stats(fe.ctx)->retransmits, 14);
}

static void test_duplicate_requests_are_answered_from_cache(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    struct packet auth_req, resp1, resp2;

    (void)state;
    side_ctx(&fe);
    side_ctx(&be);
    ike_ctx_add_peer(fe.ctx, &fc);
    ike_ctx_add_peer(be.ctx, &bc);
    ike_ctx_initiate(fe.ctx, 0, false, NULL);
    /* INIT request -> be, INIT response -> fe, which sends AUTH */
    ike_ctx_input(be.ctx, queue[0].src, 4500, queue[0].dst, queue[0].data, queue[0].len);
    ike_ctx_input(fe.ctx, queue[1].src, 4500, queue[1].dst, queue[1].data, queue[1].len);
    assert_int_equal(q_len, 3);
    auth_req = queue[2];
    q_len = 0;
    ike_ctx_input(be.ctx, auth_req.src, 4500, auth_req.dst, auth_req.data, auth_req.len);
    assert_int_equal(q_len, 1);
    resp1 = queue[0];
    ike_ctx_input(be.ctx, auth_req.src, 4500, auth_req.dst, auth_req.data, auth_req.len);
    assert_int_equal(q_len, 2);
    resp2 = queue[1];
    assert_int_equal(resp1.len, resp2.len);
    assert_memory_equal(resp1.data, resp2.data, resp1.len);
    assert_int_equal(be.events[IKE_EV_ESTABLISHED], 1);     /* not twice */
    assert_int_equal(live_kids(&be), 1);
    pump();
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
}

static void test_liveness_probe_is_answered(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 50, 50, 100 };

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_probe(fe.last_sa, sched, 3), 0);
    pump();
    assert_int_equal(fe.events[IKE_EV_PROBE_OK], 1);
    assert_int_equal(fe.events[IKE_EV_PROBE_TIMEOUT], 0);
}

static void test_probe_to_a_silent_peer_times_out_on_schedule(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 50, 50, 100 };
    uint64_t t0;

    (void)state;
    establish(&fc, &bc);
    ike_ctx_free(&be.ctx);      /* node gone, silently */
    t0 = now_ms;
    ike_sa_probe(fe.last_sa, sched, 3);
    advance(199);
    assert_int_equal(fe.events[IKE_EV_PROBE_TIMEOUT], 0);
    advance(1);
    assert_int_equal(fe.events[IKE_EV_PROBE_TIMEOUT], 1);
    assert_int_equal(now_ms - t0, 200);
    assert_int_equal(ike_ctx_stats(fe.ctx)->retransmits, 2);
}

static void test_delete_removes_both_sides(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_delete(be.last_sa), 0);     /* graceful node shutdown */
    pump();
    assert_int_equal(fe.events[IKE_EV_DELETE_RECEIVED], 1);
    assert_int_equal(live_kids(&fe), 0);
    assert_int_equal(live_kids(&be), 0);
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 0);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 0);
}

static void test_child_rekey_replaces_the_child_sa(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    uint32_t old_in, old_out;

    (void)state;
    establish(&fc, &bc);
    ike_sa_child_spis(fe.last_sa, &old_in, &old_out);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    pump();
    assert_int_equal(fe.events[IKE_EV_CHILD_REKEYED], 1);
    assert_int_equal(be.events[IKE_EV_CHILD_REKEYED], 1);
    assert_children_mirror();
    assert_int_equal(live_kids(&fe), 1);    /* old one deleted */
    assert_int_equal(live_kids(&be), 1);
    assert_null(kid_by_in(&fe, old_in));
}

/* The SADB's "half the sequence space used" event of an outbound CHILD SA
 * (ike_ctx_child_expiring, wired by tunnel.c) rekeys that CHILD SA at the
 * next tick, whichever side holds the IKE initiator role; an event for an
 * SA no IKE SA owns, or for one already replaced, changes nothing. */
static void test_an_expiring_outbound_child_sa_is_rekeyed_at_the_next_tick(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    struct side *sides[2] = { &fe, &be };
    uint32_t in, out, old_out;

    (void)state;
    establish(&fc, &bc);
    for (int i = 0; i < 2; i++) {
        struct side *s = sides[i];
        int before = s->events[IKE_EV_CHILD_REKEYED];

        assert_true(ike_sa_child_spis(s->last_sa, &in, &old_out));
        assert_int_equal(ike_ctx_child_expiring(s->ctx, ike_sa_peer_addr(s->last_sa), old_out ^ 1u, true), -1);
        assert_int_equal(ike_ctx_child_expiring(s->ctx, ike_sa_peer_addr(s->last_sa) ^ 1u, old_out, true), -1);
        assert_int_equal(ike_ctx_child_expiring(s->ctx, ike_sa_peer_addr(s->last_sa), old_out, true), 0);
        assert_int_equal(q_len, 0);         /* nothing sent from the packet path */
        assert_true(ike_ctx_next_deadline(s->ctx) <= now_ms);
        advance(1);
        advance(2000);                      /* the peer's deferred outbound switch */
        assert_int_equal(s->events[IKE_EV_CHILD_REKEYED], before + 1);
        assert_children_mirror();
        assert_outbound_is_the_newest();
        assert_true(ike_sa_child_spis(s->last_sa, &in, &out));
        assert_int_not_equal(out, old_out);
        assert_int_equal(live_kids(&fe), 1);
        assert_int_equal(live_kids(&be), 1);
        /* the replaced SA's late events are ignored */
        assert_int_equal(ike_ctx_child_expiring(s->ctx, ike_sa_peer_addr(s->last_sa), old_out, true), -1);
    }
    assert_true(logged("event=child_sa_expiring"));
}

/* The same event while an IKE rekey is under way (ours or the peer's): the
 * CHILD SA moves to the new IKE SA, and so must the rekey it asked for. A
 * lost one leaves the CHILD SA to run into its hard limit (the end of the
 * sequence space: traffic stops until a rekey completes). */
static void test_an_expiring_child_sa_is_rekeyed_after_an_ike_rekey_in_flight(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    struct side *sides[2] = { &fe, &be };
    uint32_t in, out, old_out;

    (void)state;
    establish(&fc, &bc);
    for (int i = 0; i < 2; i++) {
        struct side *s = sides[i];
        int before = s->events[IKE_EV_CHILD_REKEYED], ike_before = s->events[IKE_EV_IKE_REKEYED];

        assert_true(ike_sa_child_spis(s->last_sa, &in, &old_out));
        assert_int_equal(ike_sa_rekey_ike(fe.last_sa), 0);     /* in flight: not pumped yet */
        assert_int_equal(ike_ctx_child_expiring(s->ctx, ike_sa_peer_addr(s->last_sa), old_out, true), 0);
        pump();                             /* the IKE rekey completes before the next tick */
        assert_int_equal(s->events[IKE_EV_IKE_REKEYED], ike_before + 1);
        advance(5000);
        assert_int_equal(s->events[IKE_EV_CHILD_REKEYED], before + 1);
        assert_true(ike_sa_child_spis(s->last_sa, &in, &out));
        assert_int_not_equal(out, old_out);
        assert_children_mirror();
        assert_int_equal(live_kids(&fe), 1);
        assert_int_equal(live_kids(&be), 1);
    }
}

static int pending_outs(const struct side *s)
{
    int n = 0;

    for (int i = 0; i < MAX_SAS; i++)
        n += s->kids[i].live && s->kids[i].out_pending;
    return n;
}

static void test_rekey_responder_sends_on_the_new_sa_only_after_the_old_is_deleted(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    /* request -> be (installs inbound, defers outbound), response -> fe */
    ike_ctx_input(be.ctx, queue[0].src, 4500, queue[0].dst, queue[0].data, queue[0].len);
    memmove(queue, queue + 1, sizeof(queue[0]) * (size_t)--q_len);
    assert_int_equal(pending_outs(&be), 1);
    pump();     /* fe installs, then DELETEs the old SA: be switches now */
    assert_int_equal(pending_outs(&be), 0);
    assert_int_equal(pending_outs(&fe), 0);     /* the rekey initiator never waits */
    assert_children_mirror();
}

static void test_deferred_outbound_is_activated_after_a_second_without_delete(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    ike_ctx_input(be.ctx, queue[0].src, 4500, queue[0].dst, queue[0].data, queue[0].len);
    q_len = 0;              /* the response and everything after it is lost */
    drop_next = 1000;
    advance(999);
    assert_int_equal(pending_outs(&be), 1);
    advance(2);
    assert_int_equal(pending_outs(&be), 0);
}

/* The nonce of a CREATE_CHILD_SA message, decrypted with the receiver's SA. */
static void child_nonce(struct ike_sa *receiver, const struct packet *p, uint8_t *out, size_t *len)
{
    struct packet copy = *p;
    struct ike_payload_list outer, inner;
    const struct ike_payload *n;

    assert_int_equal(ike_payloads_parse(copy.data[16], copy.data + 28, copy.len - 28, &outer), 0);
    assert_int_equal(ike_sk_open(receiver, copy.data, copy.len, &outer, &inner), 0);
    n = ike_payload_find(&inner, IKE_PL_NONCE);
    assert_non_null(n);
    memcpy(out, n->body, n->len);
    *len = n->len;
}

/* RFC 7296 2.17: the "i" half of KEYMAT protects traffic from the initiator of
 * the CREATE_CHILD_SA exchange, whichever side initiated the IKE SA.  Here the
 * IKE responder rekeys (strongSwan rekeying an SA esproxy initiated); the keys
 * are checked against KEYMAT derived independently from the exchange's nonces. */
static void test_child_rekey_by_ike_responder_uses_exchange_roles_for_keys(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    uint8_t ni[256], nr[256];
    size_t ni_len, nr_len;
    uint32_t old_in, old_out;
    struct ike_child_keys ck;
    const struct installed *b = NULL, *f = NULL;
    struct ike_suite suite = { 0 };

    (void)state;
    establish(&fc, &bc);
    ike_sa_child_spis(be.last_sa, &old_in, &old_out);
    assert_int_equal(ike_sa_rekey_child(be.last_sa), 0);
    assert_int_equal(q_len, 1);
    child_nonce(fe.last_sa, &queue[0], ni, &ni_len);
    ike_ctx_input(fe.ctx, queue[0].src, 4500, queue[0].dst, queue[0].data, queue[0].len);
    memmove(queue, queue + 1, sizeof(queue[0]) * (size_t)--q_len);
    assert_true(q_len >= 1);
    child_nonce(be.last_sa, &queue[0], nr, &nr_len);
    pump();
    assert_int_equal(be.events[IKE_EV_CHILD_REKEYED], 1);
    for (int i = 0; i < MAX_SAS; i++) {
        if (be.kids[i].live && be.kids[i].spi_in != old_in)
            b = &be.kids[i];
        if (fe.kids[i].live && fe.kids[i].spi_out != old_in && fe.kids[i].spi_in != old_out)
            f = &fe.kids[i];
    }
    assert_non_null(b);
    assert_non_null(f);
    suite.encr = b->encr;
    suite.encr_key_bits = (uint16_t)(b->key_len == 20 ? 128 : 256);
    assert_int_equal(ike_child_keys_derive(&ck, &be.last_sa->keys, &suite, ike_buf_of(NULL, 0),
                                           ike_buf_of(ni, ni_len), ike_buf_of(nr, nr_len)), 0);
    assert_int_equal(ck.encr_len, b->key_len);
    assert_memory_equal(b->key_out, ck.encr_i, ck.encr_len);    /* be initiated the exchange */
    assert_memory_equal(b->key_in, ck.encr_r, ck.encr_len);
    assert_memory_equal(f->key_in, ck.encr_i, ck.encr_len);
    assert_memory_equal(f->key_out, ck.encr_r, ck.encr_len);
    ike_child_keys_free(&ck);
}

static void test_child_rekey_with_pfs(void **state)
{
    struct ike_peer_config fc = base_config(true), bc;

    (void)state;
    fc.esp_proposals.n = 0;
    itu_proposal(&fc.esp_proposals, IKE_PROTO_ESP, IKE_ENCR_AES_GCM_16, 256, 0, 0, IKE_DH_CURVE25519, IKE_ESN_YES);
    bc = fc;
    bc.local_addr = inet_addr(VIP);
    bc.peer_addr = 0;
    bc.local_id = fc.peer_id;
    bc.peer_id = fc.local_id;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    pump();
    assert_int_equal(fe.events[IKE_EV_CHILD_REKEYED], 1);
    assert_children_mirror();
}

static void test_simultaneous_child_rekey_leaves_one_pair(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    assert_int_equal(ike_sa_rekey_child(be.last_sa), 0);    /* crosses on the wire */
    pump();
    advance(2000);
    assert_true(logged("event=ike_rekey_collision redundant=ours"));   /* one side dropped its own */
    assert_int_equal(live_kids(&fe), 1);
    assert_int_equal(live_kids(&be), 1);
    assert_children_mirror();
}

/* The held DELETEs arrive after the outbound fallback (IKE_OUT_DEFER_MS);
 * then one CHILD pair is left and each side sends on its newest SA. */
static void deliver_the_late_deletes(void)
{
    advance(IKE_OUT_DEFER_MS + 500);
    release_held();
    pump();
    advance(100);
    assert_int_equal(live_kids(&fe), 1);
    assert_int_equal(live_kids(&be), 1);
    assert_children_mirror();
    assert_outbound_is_the_newest();
}

/* Only the newest CHILD SA may carry outbound traffic. A simultaneous rekey
 * leaves the winner holding the loser's redundant SA inbound-only (as
 * responder it waits for the peer before sending on it). When the loser's
 * DELETE of that SA is slower than the outbound fallback, the redundant SA
 * must not take over the outbound slot from the surviving one: its DELETE
 * would then leave no outbound SA at all. */
static void test_a_late_delete_never_moves_outbound_to_an_older_child_sa(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    fc.retransmit_ms = bc.retransmit_ms = 5000;     /* the held DELETEs are not resent meanwhile */
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    assert_int_equal(ike_sa_rekey_child(be.last_sa), 0);    /* crosses on the wire */
    n_held = 0;
    pump_holding_deletes();     /* both rekeys answered; the DELETEs are slow */
    assert_int_equal(n_held, 2);    /* the loser's of its redundant SA, the winner's of the old */
    assert_true(logged("event=ike_rekey_collision redundant=ours"));
    deliver_the_late_deletes();
}

/* The same without a collision: the peer rekeys (our new SA waits for its
 * DELETE of the old one), then our own rekey replaces that new SA before the
 * peer's DELETE arrives. The SA our rekey retires must not take the
 * outbound slot when the fallback fires, or our DELETE of it leaves none. */
static void test_our_rekey_overtaking_a_waiting_child_sa_keeps_the_outbound(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    fc.retransmit_ms = bc.retransmit_ms = 5000;
    establish(&fc, &bc);
    n_held = 0;
    assert_int_equal(ike_sa_rekey_child(be.last_sa), 0);    /* strongSwan's timer */
    pump_holding_deletes();     /* fe holds the new SA inbound-only; be's DELETE of the old is slow */
    assert_int_equal(pending_outs(&fe), 1);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);    /* ours, of the SA just made */
    pump_holding_deletes();
    assert_int_equal(n_held, 2);
    deliver_the_late_deletes();
}

static void test_ike_rekey_moves_children_and_keeps_working(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 50 };
    uint64_t old_spi;
    uint32_t in1, out1, in2, out2;

    (void)state;
    establish(&fc, &bc);
    old_spi = ike_sa_spi_i(fe.last_sa);
    ike_sa_child_spis(fe.last_sa, &in1, &out1);
    assert_int_equal(ike_sa_rekey_ike(fe.last_sa), 0);
    pump();
    assert_int_equal(fe.events[IKE_EV_IKE_REKEYED], 1);
    assert_int_equal(be.events[IKE_EV_IKE_REKEYED], 1);
    assert_int_equal(be.events[IKE_EV_DELETE_RECEIVED], 0);    /* the old SA's DELETE is routine */
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 1);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 1);
    assert_int_not_equal(ike_sa_spi_i(fe.last_sa), old_spi);
    ike_sa_child_spis(fe.last_sa, &in2, &out2);
    assert_int_equal(in1, in2);         /* CHILD SAs survive an IKE rekey */
    assert_int_equal(live_kids(&fe), 1);
    assert_int_equal(ike_sa_probe(fe.last_sa, sched, 1), 0);
    pump();
    assert_int_equal(fe.events[IKE_EV_PROBE_OK], 1);
}

static void test_lifetimes_trigger_rekeys(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    fc.child_lifetime_s = 20;
    fc.ike_lifetime_s = 40;
    establish(&fc, &bc);
    advance(60 * 1000);
    assert_true(fe.events[IKE_EV_CHILD_REKEYED] >= 2);
    assert_true(fe.events[IKE_EV_IKE_REKEYED] >= 1);
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 1);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 1);
    assert_children_mirror();
}

static void test_cookie_is_demanded_under_load_and_honoured(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    side_ctx(&fe);
    side_ctx(&be);
    ike_ctx_set_cookie_threshold(be.ctx, 0);
    ike_ctx_add_peer(fe.ctx, &fc);
    ike_ctx_add_peer(be.ctx, &bc);
    ike_ctx_initiate(fe.ctx, 0, false, NULL);
    pump();
    assert_int_equal(ike_ctx_stats(be.ctx)->cookies_sent, 1);
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    assert_children_mirror();
}

/* The node behind the VIP changes between its COOKIE and our retry (a
 * failover, or a restart): the new node does not know the cookie and, as
 * RFC 7296 2.6 says, answers with a new one. The initiator must retry with
 * the new cookie, not wait until its retransmissions run out (more than a
 * one-shot; a bounded number of times, so a forger on the path cannot keep
 * the exchange alive for ever). */
static void test_a_new_cookie_from_another_node_is_returned(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    struct packet init;
    uint64_t t0;

    (void)state;
    side_ctx(&fe);
    side_ctx(&be);
    ike_ctx_set_cookie_threshold(be.ctx, 0);
    ike_ctx_add_peer(fe.ctx, &fc);
    ike_ctx_add_peer(be.ctx, &bc);
    t0 = now_ms;
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, true, NULL), 0);
    assert_int_equal(q_len, 1);
    init = queue[0];
    q_len = 0;
    deliver(&init);                     /* node A: COOKIE */
    assert_int_equal(ike_ctx_stats(be.ctx)->cookies_sent, 1);
    assert_int_equal(q_len, 1);
    ike_ctx_free(&be.ctx);              /* node B takes the VIP: other secrets */
    side_ctx(&be);
    ike_ctx_set_cookie_threshold(be.ctx, 0);
    ike_ctx_add_peer(be.ctx, &bc);
    pump();                             /* A's cookie reaches fe; fe's retry reaches B */
    advance(1000);                      /* well within the first gaps (100, 200, 400 ms) */
    printf("  established %d, failed %d after %llu ms; node B sent %llu cookies\n", fe.events[IKE_EV_ESTABLISHED],
           fe.events[IKE_EV_FAILED], (unsigned long long)(now_ms - t0),
           (unsigned long long)ike_ctx_stats(be.ctx)->cookies_sent);
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
}

/* COOKIEs from someone who sees our IKE_SA_INIT (no responder answers):
 * each different one is retried with, a few times only; the same one
 * again changes nothing; and the exchange still gives up. */
static void test_forged_cookies_are_retried_a_few_times_only(void **state)
{
    struct ike_peer_config fc = base_config(true);
    struct ike_sa *sa;
    uint64_t sent;

    (void)state;
    side_ctx(&fe);
    ike_ctx_add_peer(fe.ctx, &fc);
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, false, &sa), 0);
    q_len = 0;
    sent = ike_ctx_stats(fe.ctx)->tx;
    for (int i = 0; i < 20; i++) {
        struct ike_header h = { .spi_i = ike_sa_spi_i(sa), .exchange = IKE_SA_INIT, .flags = IKE_FLAG_RESPONSE };
        uint8_t msg[128], cookie[8] = { (uint8_t)(i / 2) };     /* each one twice */
        struct ike_writer w;
        long n;

        ike_writer_init(&w, msg, sizeof(msg), &h);
        ike_write_notify(&w, 0, NULL, 0, IKE_N_COOKIE, cookie, sizeof(cookie));
        n = ike_writer_finish(&w);
        assert_true(n > 0);
        ike_ctx_input(fe.ctx, inet_addr(VIP), 4500, inet_addr(FE_ADDR), msg, (size_t)n);
    }
    assert_int_equal(ike_ctx_stats(fe.ctx)->tx - sent, 3);
    q_len = 0;
    advance(10000);
    assert_int_equal(fe.events[IKE_EV_FAILED], 1);
}

static void test_invalid_ke_payload_retries_with_requested_group(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    fc.ike_proposals.n = 0;
    itu_proposal(&fc.ike_proposals, IKE_PROTO_IKE, IKE_ENCR_AES_GCM_16, 128, 0, IKE_PRF_HMAC_SHA2_256, IKE_DH_CURVE25519, -1);
    fc.ike_proposals.p[0].t[fc.ike_proposals.p[0].n++] = (struct ike_transform){ IKE_TRANS_DH, IKE_DH_ECP256, 0, false };
    bc.ike_proposals.n = 0;
    itu_proposal(&bc.ike_proposals, IKE_PROTO_IKE, IKE_ENCR_AES_GCM_16, 128, 0, IKE_PRF_HMAC_SHA2_256, IKE_DH_ECP256, -1);
    establish(&fc, &bc);
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    assert_children_mirror();
}

/* NO_PROPOSAL_CHOSEN comes unprotected: anyone who saw our IKE_SA_INIT
 * could send it (RFC 7296 §2.21.1). The attempt waits for a valid answer
 * and fails only when its retransmissions run out. */
/* INVALID_KE_PAYLOADs from someone who sees our IKE_SA_INIT (no responder
 * answers), asking for our two groups in turn: each is taken (a new key
 * pair, a new request, the retransmission ladder from the start), so
 * without a bound the exchange would never give up, a forged ICMP-like
 * effect without the ICMP rule's give-up time. A few retries, then the
 * exchange gives up on its schedule. */
static void test_forged_invalid_ke_requests_are_taken_a_few_times_only(void **state)
{
    struct ike_peer_config fc = base_config(true);
    struct ike_sa *sa;
    uint64_t sent, t0;

    (void)state;
    fc.ike_proposals.n = 0;
    itu_proposal(&fc.ike_proposals, IKE_PROTO_IKE, IKE_ENCR_AES_GCM_16, 128, 0, IKE_PRF_HMAC_SHA2_256, IKE_DH_CURVE25519, -1);
    fc.ike_proposals.p[0].t[fc.ike_proposals.p[0].n++] = (struct ike_transform){ IKE_TRANS_DH, IKE_DH_ECP256, 0, false };
    side_ctx(&fe);
    ike_ctx_add_peer(fe.ctx, &fc);
    t0 = now_ms;
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, false, &sa), 0);
    q_len = 0;
    sent = ike_ctx_stats(fe.ctx)->tx;
    for (int i = 0; i < 40 && fe.events[IKE_EV_FAILED] == 0; i++) {
        struct ike_header h = { .spi_i = ike_sa_spi_i(sa), .exchange = IKE_SA_INIT, .flags = IKE_FLAG_RESPONSE };
        uint8_t msg[128], want[2];
        struct ike_writer w;
        long n;

        ike_put16(want, i % 2 ? IKE_DH_CURVE25519 : IKE_DH_ECP256);
        ike_writer_init(&w, msg, sizeof(msg), &h);
        ike_write_notify(&w, 0, NULL, 0, IKE_N_INVALID_KE_PAYLOAD, want, sizeof(want));
        n = ike_writer_finish(&w);
        ike_ctx_input(fe.ctx, inet_addr(VIP), 4500, inet_addr(FE_ADDR), msg, (size_t)n);
        q_len = 0;
        advance(1000);      /* a forged answer every second; the plain ladder gives up at +1500 */
    }
    printf("  %llu sends, failed %d after %llu ms\n", (unsigned long long)(ike_ctx_stats(fe.ctx)->tx - sent),
           fe.events[IKE_EV_FAILED], (unsigned long long)(now_ms - t0));
    assert_int_equal(fe.events[IKE_EV_FAILED], 1);
    assert_true(now_ms - t0 <= 10000);
}

static void test_no_common_proposal_fails_when_the_retransmissions_run_out(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    bc.ike_proposals.n = 0;
    itu_proposal(&bc.ike_proposals, IKE_PROTO_IKE, IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128,
             IKE_PRF_HMAC_SHA2_256, IKE_DH_MODP2048, -1);
    establish(&fc, &bc);
    assert_int_equal(fe.events[IKE_EV_FAILED], 0);
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 1);
    advance(60000);
    assert_int_equal(fe.events[IKE_EV_FAILED], 1);
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 0);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 0);
}

/* A forged error notify answering our IKE_SA_INIT (here a real responder's
 * NO_PROPOSAL_CHOSEN, delivered first) must not end the attempt: the
 * legitimate answer that follows still establishes the SA. */
static void test_a_forged_error_in_the_init_response_is_ignored(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false), other = base_config(false);
    struct ike_ctx *refuser;
    struct packet init;

    (void)state;
    side_ctx(&fe);
    side_ctx(&be);
    ike_ctx_add_peer(fe.ctx, &fc);
    ike_ctx_add_peer(be.ctx, &bc);
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, true, NULL), 0);
    assert_int_equal(q_len, 1);
    init = queue[0];
    q_len = 0;
    other.ike_proposals.n = 0;
    itu_proposal(&other.ike_proposals, IKE_PROTO_IKE, IKE_ENCR_AES_CBC, 256, IKE_INTEG_HMAC_SHA2_256_128,
             IKE_PRF_HMAC_SHA2_256, IKE_DH_MODP2048, -1);
    refuser = be.ctx;
    be.ctx = NULL;
    side_ctx(&be);                      /* a second context: the forger's */
    ike_ctx_add_peer(be.ctx, &other);
    ike_ctx_input(be.ctx, init.src, 4500, init.dst, init.data, init.len);
    assert_int_equal(q_len, 1);         /* NO_PROPOSAL_CHOSEN */
    ike_ctx_free(&be.ctx);
    be.ctx = refuser;
    pump();                             /* the refusal reaches the front-end first */
    assert_int_equal(fe.events[IKE_EV_FAILED], 0);
    ike_ctx_input(be.ctx, init.src, 4500, init.dst, init.data, init.len);
    pump();
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
}

static void test_unknown_spi_gets_invalid_ike_spi_hint(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 50 };

    (void)state;
    establish(&fc, &bc);
    ike_ctx_free(&be.ctx);      /* node restarted: no state */
    side_ctx(&be);
    ike_ctx_add_peer(be.ctx, &bc);
    ike_sa_probe(fe.last_sa, sched, 1);
    pump();
    assert_int_equal(ike_ctx_stats(be.ctx)->invalid_spi_sent, 1);
    assert_int_equal(fe.events[IKE_EV_INVALID_SPI], 1);
    assert_int_equal(fe.events[IKE_EV_PROBE_OK], 0);    /* a hint, not an answer */
}

/* Per source address: the default budget is 10 a second (ike_guard.c;
 * test_ike_guard.c floods it from several addresses). */
static void test_unauthenticated_replies_are_rate_limited(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 1000 };
    struct packet probe;

    (void)state;
    establish(&fc, &bc);
    ike_sa_probe(fe.last_sa, sched, 1);
    assert_int_equal(q_len, 1);
    probe = queue[0];
    q_len = 0;
    ike_ctx_free(&be.ctx);      /* restarted node: the probe names an unknown SA */
    side_ctx(&be);
    ike_ctx_add_peer(be.ctx, &bc);
    for (int i = 0; i < 200; i++) {
        ike_ctx_input(be.ctx, probe.src, 4500, probe.dst, probe.data, probe.len);
        q_len = 0;
    }
    assert_int_equal(ike_ctx_stats(be.ctx)->invalid_spi_sent, 10);  /* per second */
    assert_int_equal(ike_ctx_stats(be.ctx)->replies_limited_src, 190);
    now_ms += 100;                                                   /* one more a tenth of a second */
    ike_ctx_input(be.ctx, probe.src, 4500, probe.dst, probe.data, probe.len);
    ike_ctx_input(be.ctx, probe.src, 4500, probe.dst, probe.data, probe.len);
    assert_int_equal(ike_ctx_stats(be.ctx)->invalid_spi_sent, 11);
}

static void test_initial_contact_replaces_older_sas(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 1);
    ike_ctx_free(&fe.ctx);      /* front-end restarted */
    memset(fe.kids, 0, sizeof(fe.kids));
    side_ctx(&fe);
    ike_ctx_add_peer(fe.ctx, &fc);
    ike_ctx_initiate(fe.ctx, 0, true, NULL);
    pump();
    assert_int_equal(ike_ctx_count_sas(be.ctx), 1);
    assert_int_equal(live_kids(&be), 1);
    assert_children_mirror();
    /* the same front-end again: no collision */
    assert_int_equal(ike_ctx_stats(be.ctx)->identity_collisions, 0);
    assert_false(logged("ike_identity_collision"));
}

/* Two front-ends configured with one identity: each INITIAL_CONTACT
 * deletes the other's IKE SA (RFC 7296 2.4, as asked). The responder says
 * so in one warning line naming both addresses, and counts it. */
static void test_two_frontends_sharing_an_identity_are_reported(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false), fc2 = base_config(true);

    (void)state;
    establish(&fc, &bc);
    fc2.local_addr = inet_addr(FE2_ADDR);
    side_ctx(&fe2);
    assert_int_equal(ike_ctx_add_peer(fe2.ctx, &fc2), 0);
    n_log = 0;
    assert_int_equal(ike_ctx_initiate(fe2.ctx, 0, true, NULL), 0);
    pump();
    assert_int_equal(fe2.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 1);     /* the first front-end's SA went */
    assert_int_equal(ike_ctx_stats(be.ctx)->identity_collisions, 1);
    assert_true(logged("event=ike_identity_collision id=fe.example.test old_peer=10.99.2.10 new_peer=10.99.2.11"));
    /* the second front-end restarting is not a collision */
    assert_int_equal(ike_ctx_initiate(fe2.ctx, 0, true, NULL), 0);
    pump();
    assert_int_equal(fe2.events[IKE_EV_ESTABLISHED], 2);
    assert_int_equal(ike_ctx_stats(be.ctx)->identity_collisions, 1);
    /* nor is a speculative SA (no INITIAL_CONTACT) of the first */
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, false, NULL), 0);
    pump();
    assert_int_equal(ike_ctx_stats(be.ctx)->identity_collisions, 1);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 2);
}

static void test_traffic_selectors_are_narrowed(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    bc.ports[0] = 143;
    bc.n_ports = 1;         /* the node protects IMAP only */
    establish(&fc, &bc);
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    assert_children_mirror();
    teardown(NULL);
    setup(NULL);
    fc.ports[0] = 25;
    fc.n_ports = 1;         /* nothing in common */
    establish(&fc, &bc);
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 0);
    assert_int_equal(fe.events[IKE_EV_FAILED], 1);
    assert_int_equal(live_kids(&fe), 0);
    assert_int_equal(live_kids(&be), 0);
}

static void test_corrupted_messages_never_crash_or_establish_wrongly(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    /* flip one byte at a time in every message of a handshake */
    for (size_t pos = 0; pos < 400; pos += 7) {
        setup(NULL);
        side_ctx(&fe);
        side_ctx(&be);
        ike_ctx_add_peer(fe.ctx, &fc);
        ike_ctx_add_peer(be.ctx, &bc);
        ike_ctx_initiate(fe.ctx, 0, false, NULL);
        for (int rounds = 0; rounds < 20 && q_len > 0; rounds++) {
            struct packet p = queue[0];

            memmove(queue, queue + 1, sizeof(queue[0]) * (size_t)--q_len);
            if (pos < p.len)
                p.data[pos] ^= 0x5a;
            ike_ctx_input(p.dst == be.addr ? be.ctx : fe.ctx, p.src, 4500, p.dst, p.data, p.len);
        }
        advance(3000);
        /* either both sides agree on keys, or nothing is installed */
        if (live_kids(&fe) > 0 && fe.last_sa && be.last_sa)
            assert_children_mirror();
        teardown(NULL);
    }
}


/* ---- certificates, made here with mbedTLS so the test needs no files ---- */

static char cert_dir[] = "/tmp/esproxy-test-ike-cert-XXXXXX";

static void write_text(const char *name, const unsigned char *text)
{
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", cert_dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs((const char *)text, fp);
    fclose(fp);
}

static const char *cert_path(const char *name)
{
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];

    snprintf(p, 256, "%s/%s", cert_dir, name);
    return p;
}

static void make_key(mbedtls_pk_context *k, bool rsa)
{
    mbedtls_pk_init(k);
    if (rsa) {
        assert_int_equal(mbedtls_pk_setup(k, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
        assert_int_equal(mbedtls_rsa_gen_key(mbedtls_pk_rsa(*k), ike_random_mbedtls, NULL, 2048, 65537), 0);
    } else {
        assert_int_equal(mbedtls_pk_setup(k, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
        assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*k), ike_random_mbedtls, NULL), 0);
    }
}

/* Issue a certificate for subject_key signed by issuer_key; san may be NULL. */
static void make_cert(const char *file, mbedtls_pk_context *subject_key, const char *subject, mbedtls_pk_context *issuer_key,
                      const char *issuer, const char *san, bool ca, int serial)
{
    mbedtls_x509write_cert crt;
    mbedtls_mpi sn;
    unsigned char pem[8192], ext[300];

    mbedtls_x509write_crt_init(&crt);
    mbedtls_mpi_init(&sn);
    mbedtls_mpi_lset(&sn, serial);
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_serial(&crt, &sn);
    assert_int_equal(mbedtls_x509write_crt_set_validity(&crt, "20250101000000", "20450101000000"), 0);
    assert_int_equal(mbedtls_x509write_crt_set_subject_name(&crt, subject), 0);
    assert_int_equal(mbedtls_x509write_crt_set_issuer_name(&crt, issuer), 0);
    mbedtls_x509write_crt_set_subject_key(&crt, subject_key);
    mbedtls_x509write_crt_set_issuer_key(&crt, issuer_key);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    assert_int_equal(mbedtls_x509write_crt_set_basic_constraints(&crt, ca, -1), 0);
    if (ca)
        assert_int_equal(mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_KEY_CERT_SIGN), 0);
    if (san != NULL) {
        size_t n = strlen(san);

        ext[0] = 0x30;
        ext[1] = (unsigned char)(n + 2);
        ext[2] = 0x82;      /* [2] dNSName */
        ext[3] = (unsigned char)n;
        memcpy(ext + 4, san, n);
        assert_int_equal(mbedtls_x509write_crt_set_extension(&crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                             MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                                             ext, n + 4), 0);
    }
    assert_int_equal(mbedtls_x509write_crt_pem(&crt, pem, sizeof(pem), ike_random_mbedtls, NULL), 0);
    write_text(file, pem);
    mbedtls_x509write_crt_free(&crt);
    mbedtls_mpi_free(&sn);
}

static void write_key(const char *file, mbedtls_pk_context *k)
{
    unsigned char pem[8192];

    assert_int_equal(mbedtls_pk_write_key_pem(k, pem, sizeof(pem)), 0);
    write_text(file, pem);
}

static int certs_setup(void **state)
{
    mbedtls_pk_context ca, rogue, fe_rsa, be_ec, fe_ec;

    (void)state;
    if (mkdtemp(cert_dir) == NULL)
        return -1;
    make_key(&ca, false);
    make_key(&rogue, false);
    make_key(&fe_rsa, true);
    make_key(&be_ec, false);
    make_key(&fe_ec, false);
    make_cert("ca.pem", &ca, "CN=esproxy test CA", &ca, "CN=esproxy test CA", NULL, true, 1);
    make_cert("rogue-ca.pem", &rogue, "CN=rogue CA", &rogue, "CN=rogue CA", NULL, true, 1);
    make_cert("fe-rsa.pem", &fe_rsa, "CN=fe", &ca, "CN=esproxy test CA", "fe.example.test", false, 2);
    make_cert("be-ec.pem", &be_ec, "CN=mail", &ca, "CN=esproxy test CA", "mail.example.test", false, 3);
    make_cert("fe-ec.pem", &fe_ec, "CN=fe.example.test", &ca, "CN=esproxy test CA", NULL, false, 4);
    make_cert("fe-rogue.pem", &fe_rsa, "CN=fe", &rogue, "CN=rogue CA", "fe.example.test", false, 5);
    write_key("fe-rsa.key", &fe_rsa);
    write_key("be-ec.key", &be_ec);
    write_key("fe-ec.key", &fe_ec);
    mbedtls_pk_free(&ca);
    mbedtls_pk_free(&rogue);
    mbedtls_pk_free(&fe_rsa);
    mbedtls_pk_free(&be_ec);
    mbedtls_pk_free(&fe_ec);
    return 0;
}

static void certs_free(void)
{
    ike_cert_free(&cert_fe);
    ike_cert_free(&cert_be);
}

static int certs_teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", cert_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct ike_cert_auth *load_auth(const char *cert, const char *key, const char *ca)
{
    struct ike_cert_auth *a = NULL;
    char err[256];

    if (ike_cert_load(&a, cert_path(cert), cert_path(key), cert_path(ca), err, sizeof(err)) != 0)
        fail_msg("ike_cert_load: %s", err);
    return a;
}

static void cert_handshake(const char *fe_cert, const char *fe_key, const char *fe_ca, const char *be_ca,
                           const char *fe_id)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    cert_fe = load_auth(fe_cert, fe_key, fe_ca);
    cert_be = load_auth("be-ec.pem", "be-ec.key", be_ca);
    fc.auth = bc.auth = IKE_PEER_AUTH_CERT;
    fc.psk_len = bc.psk_len = 0;
    fc.cert = cert_fe;
    bc.cert = cert_be;
    itu_ident(&fc.local_id, fe_id);
    itu_ident(&bc.peer_id, fe_id);
    establish(&fc, &bc);
}

static void test_rsa_and_ecdsa_certificates_authenticate(void **state)
{
    (void)state;
    cert_handshake("fe-rsa.pem", "fe-rsa.key", "ca.pem", "ca.pem", "fe.example.test");
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(be.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(live_kids(&fe), 1);
    assert_int_equal(live_kids(&be), 1);
}

static void test_ecdsa_certificate_with_identity_in_subject_cn(void **state)
{
    (void)state;
    cert_handshake("fe-ec.pem", "fe-ec.key", "ca.pem", "ca.pem", "fe.example.test");
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(be.events[IKE_EV_ESTABLISHED], 1);
}

static void test_certificate_from_an_untrusted_ca_is_refused(void **state)
{
    (void)state;
    cert_handshake("fe-rogue.pem", "fe-rsa.key", "ca.pem", "ca.pem", "fe.example.test");
    assert_int_equal(be.events[IKE_EV_AUTH_FAILED], 1);
    assert_int_equal(fe.events[IKE_EV_AUTH_FAILED], 1);
    assert_int_equal(live_kids(&fe), 0);
    assert_int_equal(live_kids(&be), 0);
    assert_true(logged("reason=certificate_not_trusted"));
}

static void test_identity_missing_from_certificate_is_refused(void **state)
{
    (void)state;
    /* fe claims an identity its certificate does not carry (the responder
     * is configured to expect that identity) */
    cert_handshake("fe-rsa.pem", "fe-rsa.key", "ca.pem", "ca.pem", "intruder.example.test");
    assert_int_equal(be.events[IKE_EV_AUTH_FAILED], 1);
    assert_int_equal(live_kids(&be), 0);
    assert_true(logged("reason=identity_not_in_certificate"));
}

static void test_certificate_loading_errors_name_the_file(void **state)
{
    struct ike_cert_auth *a = NULL;
    char err[256];

    (void)state;
    assert_int_equal(ike_cert_load(&a, "/nonexistent/c.pem", cert_path("fe-rsa.key"), cert_path("ca.pem"), err,
                                   sizeof(err)), -1);
    assert_non_null(strstr(err, "certificate '/nonexistent/c.pem'"));
    assert_int_equal(ike_cert_load(&a, cert_path("fe-rsa.pem"), cert_path("be-ec.key"), cert_path("ca.pem"), err,
                                   sizeof(err)), -1);
    assert_non_null(strstr(err, "does not match certificate"));
    assert_null(a);
}

/* Establish an SA and return its first probe, taken off the wire. */
static struct packet establish_and_take_probe(void)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 1000 };
    struct packet probe;

    establish(&fc, &bc);
    assert_int_equal(ike_sa_probe(fe.last_sa, sched, 1), 0);
    assert_int_equal(q_len, 1);
    probe = queue[0];
    q_len = 0;
    return probe;
}

/* The node restarted: it knows no SA; returns its INVALID_IKE_SPI answer. */
static struct packet restart_node_and_take_answer(const struct packet *probe)
{
    struct ike_peer_config bc = base_config(false);
    struct packet answer;

    ike_ctx_free(&be.ctx);
    side_ctx(&be);
    ike_ctx_add_peer(be.ctx, &bc);
    ike_ctx_input(be.ctx, probe->src, 4500, probe->dst, probe->data, probe->len);
    assert_int_equal(q_len, 1);
    answer = queue[0];
    q_len = 0;
    return answer;
}

/* ---- object lifetime and unauthenticated input (issue 15) ---- */

static struct ike_sa *doomed_sas[2];

/* What tunnel_abandon does on a dead peer: drop every SA, the one whose
 * event this is and the one the caller's walk visits next. */
static void abandon_all_on_timeout(struct side *s, struct ike_sa *sa, enum ike_event ev)
{
    (void)s;
    (void)sa;
    if (ev != IKE_EV_PROBE_TIMEOUT)
        return;
    for (int i = 0; i < 2; i++) {
        if (doomed_sas[i] != NULL)
            ike_sa_abandon(doomed_sas[i]);
        doomed_sas[i] = NULL;
    }
}

static void test_a_callback_may_destroy_any_sa_while_the_tick_walks_them(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 50, 50, 100 };

    (void)state;
    establish(&fc, &bc);
    doomed_sas[1] = fe.last_sa;
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, false, NULL), 0);
    pump();
    doomed_sas[0] = fe.last_sa;                 /* the newer SA: first in the walk */
    assert_ptr_not_equal(doomed_sas[0], doomed_sas[1]);
    ike_ctx_free(&be.ctx);                      /* the node died */
    assert_int_equal(ike_sa_probe(doomed_sas[0], sched, 3), 0);
    assert_int_equal(ike_sa_probe(doomed_sas[1], sched, 3), 0);
    event_hook = abandon_all_on_timeout;
    advance(300);                               /* ASan: no use after free */
    event_hook = NULL;
    assert_int_equal(fe.events[IKE_EV_PROBE_TIMEOUT], 1);
    assert_int_equal(fe.events[IKE_EV_SA_GONE], 2);
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 0);
    assert_int_equal(live_kids(&fe), 0);
}

/* RFC 7296 §2.23: a forged message under the live SPIs from another port
 * must not redirect the SA; an authentic one (a NAT rebinding) does. */
static void test_the_peer_port_follows_only_authenticated_messages(void **state)
{
    struct packet probe, forged;

    (void)state;
    probe = establish_and_take_probe();
    forged = probe;
    forged.data[forged.len - 1] ^= 1;          /* the ICV no longer verifies */
    ike_ctx_input(be.ctx, forged.src, 4999, forged.dst, forged.data, forged.len);
    assert_int_equal(ike_sa_peer_port(be.last_sa), 4500);
    assert_int_equal(q_len, 0);
    ike_ctx_input(be.ctx, probe.src, 4501, probe.dst, probe.data, probe.len);
    assert_int_equal(ike_sa_peer_port(be.last_sa), 4501);
    assert_int_equal(q_len, 1);
    assert_int_equal(queue[0].port, 4501);
}

static void test_cached_responses_are_resent_only_for_the_same_request_and_rate_limited(void **state)
{
    struct packet probe, other;
    uint64_t dropped;

    (void)state;
    probe = establish_and_take_probe();
    ike_ctx_input(be.ctx, probe.src, 4500, probe.dst, probe.data, probe.len);
    assert_int_equal(q_len, 1);                 /* the answer */
    q_len = 0;
    other = probe;                              /* same Message ID, other bytes */
    other.data[other.len - 1] ^= 1;
    dropped = ike_ctx_stats(be.ctx)->dropped;
    ike_ctx_input(be.ctx, other.src, 4999, other.dst, other.data, other.len);
    assert_int_equal(q_len, 0);
    assert_int_equal(ike_ctx_stats(be.ctx)->dropped, dropped + 1);
    for (int i = 0; i < 50; i++) {
        ike_ctx_input(be.ctx, probe.src, 4999, probe.dst, probe.data, probe.len);
        assert_true(q_len <= IKE_RESENDS_PER_SEC);
        if (q_len > 0)
            assert_int_equal(queue[q_len - 1].port, 4500);  /* to the authenticated port */
    }
    assert_int_equal(q_len, IKE_RESENDS_PER_SEC);
    q_len = 0;
    now_ms += 1000;
    ike_ctx_input(be.ctx, probe.src, 4500, probe.dst, probe.data, probe.len);
    assert_int_equal(q_len, 1);
}

/* After the peer rekeyed the IKE SA it is the new SA's original initiator
 * (RFC 7296 2.18): a restarted node's INVALID_IKE_SPI, which copies both
 * SPIs of our probe, must still find that SA (a lookup by our initiator
 * SPI alone missed it, so the hint went unheard). */
static void test_invalid_ike_spi_hint_reaches_an_sa_the_peer_rekeyed(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 1000 };
    struct packet probe, answer;

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_ike(be.last_sa), 0);
    pump();
    assert_int_equal(fe.events[IKE_EV_IKE_REKEYED], 1);
    assert_int_equal(ike_sa_probe(fe.last_sa, sched, 1), 0);
    assert_int_equal(q_len, 1);
    probe = queue[0];
    q_len = 0;
    answer = restart_node_and_take_answer(&probe);
    ike_ctx_input(fe.ctx, answer.src, 4500, answer.dst, answer.data, answer.len);
    assert_int_equal(fe.events[IKE_EV_INVALID_SPI], 1);
}

static void test_invalid_ike_spi_counts_only_from_the_peer_address(void **state)
{
    struct packet probe, notify;

    (void)state;
    probe = establish_and_take_probe();
    notify = restart_node_and_take_answer(&probe);
    ike_ctx_input(fe.ctx, inet_addr("10.99.2.66"), 4500, notify.dst, notify.data, notify.len);
    assert_int_equal(fe.events[IKE_EV_INVALID_SPI], 0);
    ike_ctx_input(fe.ctx, notify.src, 4500, notify.dst, notify.data, notify.len);
    assert_int_equal(fe.events[IKE_EV_INVALID_SPI], 1);
}

/* A probe asked for while a rekey waits for its answer rides on that
 * request: a dead peer is found on the probe's schedule, not after the
 * rekey's own (much slower) retransmissions. */
static void test_a_probe_behind_an_outstanding_request_keeps_its_schedule(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 50, 50, 100 };

    (void)state;
    establish(&fc, &bc);
    ike_ctx_free(&be.ctx);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    q_len = 0;
    assert_int_equal(ike_sa_probe(fe.last_sa, sched, 3), 0);
    assert_int_equal(q_len, 1);                 /* the outstanding request, sent again */
    advance(199);
    assert_int_equal(fe.events[IKE_EV_PROBE_TIMEOUT], 0);
    advance(1);
    assert_int_equal(fe.events[IKE_EV_PROBE_TIMEOUT], 1);
}

static void test_a_probe_behind_an_outstanding_request_is_answered_by_its_answer(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 50, 50, 100 };

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    assert_int_equal(ike_sa_probe(fe.last_sa, sched, 3), 0);
    pump();
    assert_int_equal(fe.events[IKE_EV_PROBE_OK], 1);
    advance(1000);
    assert_int_equal(fe.events[IKE_EV_PROBE_TIMEOUT], 0);
}

/* A speculative SA (no INITIAL_CONTACT, outbound held), established. */
static struct ike_sa *establish_held(void)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    struct ike_sa *sa = NULL;

    side_ctx(&fe);
    side_ctx(&be);
    ike_ctx_add_peer(fe.ctx, &fc);
    ike_ctx_add_peer(be.ctx, &bc);
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, false, &sa), 0);
    ike_sa_hold_outbound(sa);
    pump();
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    return sa;
}

/* A speculative SA's CHILD SAs carry nothing of ours until released. */
static void test_a_held_sa_installs_its_child_inbound_only_until_released(void **state)
{
    struct ike_sa *sa;

    (void)state;
    sa = establish_held();
    assert_int_equal(live_kids(&fe), 1);
    advance(5000);                              /* no fallback activation while held */
    for (int i = 0; i < MAX_SAS; i++)
        if (fe.kids[i].live)
            assert_true(fe.kids[i].out_pending);
    ike_sa_release_outbound(sa);
    for (int i = 0; i < MAX_SAS; i++)
        if (fe.kids[i].live)
            assert_false(fe.kids[i].out_pending);
}

/* ---- adversarial review (passing): deferred destruction, held SAs ---- */

static void abandon_on_peer_alive(struct side *s, struct ike_sa *sa, enum ike_event ev)
{
    if (s == &fe && ev == IKE_EV_PEER_ALIVE)
        ike_sa_abandon(sa);
}

/* The SA is let go inside the event for an authenticated answer, before
 * the answer is handled: nothing more happens to it (no new IKE SA from
 * the rekey answer, no DELETE) and it is freed when input returns. */
static void test_an_sa_abandoned_inside_peer_alive_handles_nothing_more(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    struct packet answer;

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_ike(fe.last_sa), 0);
    answer = queue[0];
    q_len = 0;
    deliver(&answer);                           /* the node answers */
    assert_int_equal(q_len, 1);
    answer = queue[0];
    q_len = 0;
    event_hook = abandon_on_peer_alive;
    deliver(&answer);                           /* ASan: no use after free */
    event_hook = NULL;
    assert_int_equal(fe.events[IKE_EV_SA_GONE], 1);
    assert_int_equal(fe.events[IKE_EV_IKE_REKEYED], 0);
    assert_int_equal(q_len, 0);
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 0);
    assert_int_equal(live_kids(&fe), 0);
}

static void delete_on_established(struct side *s, struct ike_sa *sa, enum ike_event ev)
{
    if (s == &fe && ev == IKE_EV_ESTABLISHED)
        assert_int_equal(ike_sa_delete(sa), 0);
}

/* tunnel_drop_spec inside the ESTABLISHED event (the peer proved alive
 * while the speculative SA was on its way): its CHILD SA goes at once, the
 * DELETE reaches the node, both sides end with nothing of it. */
static void test_a_speculative_sa_deleted_inside_its_established_event_leaves_nothing(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    struct ike_sa *sa = NULL;

    (void)state;
    side_ctx(&fe);
    side_ctx(&be);
    ike_ctx_add_peer(fe.ctx, &fc);
    ike_ctx_add_peer(be.ctx, &bc);
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, false, &sa), 0);
    ike_sa_hold_outbound(sa);
    event_hook = delete_on_established;
    pump();
    event_hook = NULL;
    assert_int_equal(fe.events[IKE_EV_ESTABLISHED], 1);
    assert_int_equal(be.events[IKE_EV_DELETE_RECEIVED], 1);
    assert_int_equal(fe.out_spi, 0);
    assert_int_equal(live_kids(&fe), 0);
    assert_int_equal(live_kids(&be), 0);
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 0);
    assert_int_equal(ike_ctx_count_sas(be.ctx), 0);
}

static int doomed_calls;

static void poke_on_gone(struct side *s, struct ike_sa *sa, enum ike_event ev)
{
    static const unsigned sched[] = { 50 };

    if (s != &fe || ev != IKE_EV_SA_GONE)
        return;
    doomed_calls++;
    assert_int_equal(ike_sa_delete(sa), -1);
    assert_int_equal(ike_sa_probe(sa, sched, 1), -1);
    assert_int_equal(ike_sa_rekey_child(sa), -1);
    assert_int_equal(ike_sa_rekey_ike(sa), -1);
    assert_int_equal(ike_sa_request_refused(sa), -1);
    ike_sa_release_outbound(sa);
    ike_sa_abandon(sa);                         /* idempotent */
}

/* Everything the tunnel may still call on an SA whose SA_GONE it is
 * handling is refused and sends nothing. */
static void test_calls_on_a_doomed_sa_are_refused_and_send_nothing(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    establish(&fc, &bc);
    q_len = 0;
    doomed_calls = 0;
    event_hook = poke_on_gone;
    ike_sa_abandon(fe.last_sa);
    event_hook = NULL;
    assert_int_equal(doomed_calls, 1);
    assert_int_equal(q_len, 0);
    assert_int_equal(fe.events[IKE_EV_SA_GONE], 1);
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 0);
}

/* A speculative SA's CHILD SA rekeyed by the node, and the old one deleted
 * by it: still nothing of ours goes out on it; once released, only the
 * newest CHILD SA carries our traffic. */
static void test_a_held_sa_stays_held_across_a_child_rekey_by_the_peer(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    struct ike_sa *sa = NULL;
    uint32_t in, out;

    (void)state;
    side_ctx(&fe);
    side_ctx(&be);
    ike_ctx_add_peer(fe.ctx, &fc);
    ike_ctx_add_peer(be.ctx, &bc);
    assert_int_equal(ike_ctx_initiate(fe.ctx, 0, false, &sa), 0);
    ike_sa_hold_outbound(sa);
    pump();
    assert_int_equal(ike_sa_rekey_child(be.last_sa), 0);
    pump();
    advance(5000);
    assert_int_equal(fe.events[IKE_EV_CHILD_REKEYED], 1);
    assert_int_equal(live_kids(&fe), 1);        /* the node deleted the old one */
    assert_int_equal(fe.out_spi, 0);
    ike_sa_release_outbound(sa);
    assert_true(ike_sa_child_spis(sa, &in, &out));
    assert_int_equal(fe.out_spi, out);
    assert_non_null(kid_by_in(&be, out));
}

/* ---- adversarial review of the failover changes (each failed before its fix) ---- */

/* ike_sa_deadline: the new "probe_give_up_ms" if took the old "else" of
 * "req.kind != NONE": with a request out and something deferred (a DELETE
 * asked for meanwhile: tunnel_drop_spec, ike_ctx_delete_all) the deadline
 * is 0 although nothing can run until the request ends; ike_io's timer
 * then fires back to back (a busy loop) for the request's whole life. */
static void test_a_delete_deferred_behind_a_request_does_not_spin_the_timer(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    uint64_t d;

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    q_len = 0;                                  /* the peer is slow to answer */
    assert_int_equal(ike_sa_delete(fe.last_sa), 0);     /* deferred: the window is busy */
    ike_ctx_tick(fe.ctx);                       /* nothing it can do yet */
    d = ike_ctx_next_deadline(fe.ctx);
    print_message("next deadline in %lld ms\n", (long long)(d - now_ms));
    assert_true(d > now_ms);
}

/* A probe riding on an outstanding request is sent once; the request's own
 * retransmissions (500 ms, 1 s, ...) fall outside dead_after, so the probe
 * has no retransmission at all where a plain probe has two. Two lost
 * datagrams (the request and the one resend) and an alive peer is declared
 * dead, with every stream of the tunnel. */
static void test_a_probe_riding_on_a_request_is_retransmitted_on_its_schedule(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 75, 75, 150 };    /* dead_after 300, the default */
    uint64_t tx0;

    (void)state;
    fc.retransmit_ms = bc.retransmit_ms = 500;  /* the default */
    establish(&fc, &bc);
    tx0 = ike_ctx_stats(fe.ctx)->tx;
    drop_next = 2;                              /* the rekey request and the first resend */
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    now_ms += 10;
    assert_int_equal(ike_sa_probe(fe.last_sa, sched, 3), 0);
    advance(300);
    print_message("sends during the probe: %llu\n", (unsigned long long)(ike_ctx_stats(fe.ctx)->tx - tx0 - 1));
    assert_int_equal(fe.events[IKE_EV_PROBE_TIMEOUT], 0);
    assert_int_equal(fe.events[IKE_EV_PROBE_OK], 1);
}

/* A speculative SA's outbound is held (ike_sa_hold_outbound). The peer
 * rekeys its IKE SA: the successor must keep hold_out, or its tick would
 * activate the CHILD SA's outbound after 1 s (IKE_OUT_DEFER_MS) and our
 * sessions' traffic would go to the speculative peer. */
static void test_a_held_sa_stays_held_across_an_ike_rekey_by_the_peer(void **state)
{
    (void)state;
    (void)establish_held();
    assert_int_equal(ike_sa_rekey_ike(be.last_sa), 0);
    pump();
    assert_int_equal(fe.events[IKE_EV_IKE_REKEYED], 1);
    advance(5000);
    assert_int_equal(fe.out_spi, 0);
    for (int i = 0; i < MAX_SAS; i++)
        if (fe.kids[i].live)
            assert_true(fe.kids[i].out_pending);
}

/* What tunnel_initiator_event does: the current SA follows IKE_IKE_REKEYED
 * (t->cur = the new SA); events of any other SA are ignored. */
static struct ike_sa *tun_cur;
static int tun_probe_outcomes;

static void tunnel_like(struct side *s, struct ike_sa *sa, enum ike_event ev)
{
    if (s != &fe)
        return;
    if (ev == IKE_EV_IKE_REKEYED) {
        if (tun_cur != NULL)
            tun_cur = sa;
        return;
    }
    if (sa != tun_cur)
        return;
    if (ev == IKE_EV_PROBE_OK || ev == IKE_EV_PROBE_TIMEOUT)
        tun_probe_outcomes++;
    if (ev == IKE_EV_SA_GONE)
        tun_cur = NULL;
}

/* Our probe is out when the peer rekeys the IKE SA (its request crosses
 * the probe). The probe's answer (PROBE_OK) comes on the old SA, which the
 * tunnel no longer follows: liveness never hears the outcome and keeps
 * probing=true for good (see test_liveness: no probe is ever sent again,
 * and a SUSPECT tunnel has no deadline). */
static void test_a_probe_crossing_a_peer_ike_rekey_reports_its_outcome(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);
    static const unsigned sched[] = { 50, 50, 100 };

    (void)state;
    establish(&fc, &bc);
    tun_cur = fe.last_sa;
    tun_probe_outcomes = 0;
    event_hook = tunnel_like;
    assert_int_equal(ike_sa_probe(fe.last_sa, sched, 3), 0);
    assert_int_equal(ike_sa_rekey_ike(be.last_sa), 0);     /* crosses the probe */
    pump();
    advance(3000);                              /* a refused rekey is retried within 2 s */
    event_hook = NULL;
    assert_int_equal(fe.events[IKE_EV_IKE_REKEYED], 1);
    assert_non_null(tun_cur);
    print_message("probe outcomes for the tracked SA: %d (PROBE_OK on any SA: %d)\n", tun_probe_outcomes,
                  fe.events[IKE_EV_PROBE_OK]);
    assert_int_equal(tun_probe_outcomes, 1);
}

/* Our DELETE of the CHILD SA we just rekeyed crosses the peer's IKE rekey:
 * the CHILD SAs move to the new IKE SA, the DELETE's answer arrives on the
 * old one and removes nothing. The old CHILD SA (inbound, and an outbound
 * stacked under the newest) stays installed for good, and one of the four
 * CHILD slots is gone; after four such crossings no CHILD rekey succeeds. */
static void test_a_child_delete_crossing_a_peer_ike_rekey_removes_the_child(void **state)
{
    struct ike_peer_config fc = base_config(true), bc = base_config(false);

    (void)state;
    establish(&fc, &bc);
    assert_int_equal(ike_sa_rekey_child(fe.last_sa), 0);
    assert_int_equal(q_len, 1);
    {   /* the rekey and its answer; our DELETE of the old CHILD SA goes out */
        struct packet p = queue[0];

        q_len = 0;
        deliver(&p);
        p = queue[0];
        q_len = 0;
        deliver(&p);
    }
    assert_int_equal(q_len, 1);                 /* DELETE (old CHILD SA) on the wire */
    assert_int_equal(live_kids(&fe), 2);
    assert_int_equal(ike_sa_rekey_ike(be.last_sa), 0);     /* the peer's IKE rekey crosses it */
    pump();
    advance(3000);
    print_message("fe CHILD SAs: %d, be CHILD SAs: %d\n", live_kids(&fe), live_kids(&be));
    assert_int_equal(ike_ctx_count_sas(fe.ctx), 1);
    assert_int_equal(live_kids(&be), 1);
    assert_int_equal(live_kids(&fe), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_psk_handshake_installs_mirrored_child_sas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_transform_set_and_group_establishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv4_address_and_key_id_identities_authenticate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_critical_payload_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_psk_fails_and_installs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_peer_identity_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_messages_are_retransmitted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_request_is_retransmitted_without_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_requests_are_answered_from_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_callback_may_destroy_any_sa_while_the_tick_walks_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_peer_port_follows_only_authenticated_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_responses_are_resent_only_for_the_same_request_and_rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_ike_spi_counts_only_from_the_peer_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_probe_behind_an_outstanding_request_keeps_its_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_probe_behind_an_outstanding_request_is_answered_by_its_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_held_sa_installs_its_child_inbound_only_until_released, setup, teardown),
        cmocka_unit_test_setup_teardown(test_liveness_probe_is_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_to_a_silent_peer_times_out_on_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_removes_both_sides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_rekey_replaces_the_child_sa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rekey_responder_sends_on_the_new_sa_only_after_the_old_is_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_outbound_is_activated_after_a_second_without_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_rekey_by_ike_responder_uses_exchange_roles_for_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_rekey_with_pfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simultaneous_child_rekey_leaves_one_pair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_late_delete_never_moves_outbound_to_an_older_child_sa, setup, teardown),
        cmocka_unit_test_setup_teardown(test_our_rekey_overtaking_a_waiting_child_sa_keeps_the_outbound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ike_rekey_moves_children_and_keeps_working, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifetimes_trigger_rekeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cookie_is_demanded_under_load_and_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_cookie_from_another_node_is_returned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_cookies_are_retried_a_few_times_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_ke_payload_retries_with_requested_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_invalid_ke_requests_are_taken_a_few_times_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_common_proposal_fails_when_the_retransmissions_run_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_forged_error_in_the_init_response_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_spi_gets_invalid_ike_spi_hint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_ike_spi_hint_reaches_an_sa_the_peer_rekeyed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthenticated_replies_are_rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initial_contact_replaces_older_sas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_frontends_sharing_an_identity_are_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traffic_selectors_are_narrowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupted_messages_never_crash_or_establish_wrongly, setup, teardown),

        cmocka_unit_test_setup_teardown(test_rsa_and_ecdsa_certificates_authenticate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecdsa_certificate_with_identity_in_subject_cn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_from_an_untrusted_ca_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_missing_from_certificate_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_loading_errors_name_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_sa_abandoned_inside_peer_alive_handles_nothing_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_speculative_sa_deleted_inside_its_established_event_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_calls_on_a_doomed_sa_are_refused_and_send_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_held_sa_stays_held_across_a_child_rekey_by_the_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_delete_deferred_behind_a_request_does_not_spin_the_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_probe_riding_on_a_request_is_retransmitted_on_its_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_held_sa_stays_held_across_an_ike_rekey_by_the_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_probe_crossing_a_peer_ike_rekey_reports_its_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_child_delete_crossing_a_peer_ike_rekey_removes_the_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_expiring_outbound_child_sa_is_rekeyed_at_the_next_tick, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_expiring_child_sa_is_rekeyed_after_an_ike_rekey_in_flight, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("ike_sa", tests, certs_setup, certs_teardown);
}
