/*
 * libFuzzer harness: SEQUENCES of IKEv2 messages between two real
 * contexts, a frontend (initiator) and a backend (responder), with a fake
 * clock. The fuzzer does not write packets so much as run the network and
 * the operator: the input is a list of records, each an operation:
 *
 *   pump                deliver everything in flight, in order
 *   deliver/dup/drop i  one message in flight: deliver it, deliver a copy
 *                       (a retransmission) and keep it, or lose it
 *   replay i            deliver again a message delivered earlier
 *   reorder i j         swap two messages in flight
 *   mutate i ...        deliver a copy with some bytes changed
 *   nat i               deliver with another source port
 *   raw ...             bytes from anywhere to either side; with length 0,
 *                       a flood: an IKE_SA_INIT request seen on the wire
 *                       sent again to the backend under new SPIs, from
 *                       its source, another host or spoofed ones, perhaps
 *                       with its KE data zeroed
 *   advance u n         move the clock, running timers as they fall due
 *   action side sa w    probe, rekey CHILD/IKE, delete, abandon, CHILD SA
 *                       expiring, hold/release outbound, ICMP refusal,
 *                       initiate another SA, delete all, accept on/off
 *   forge side sa ...   an authenticated message from one side's SA (its
 *                       real keys) with a chosen exchange, flags, Message
 *                       ID and inner payloads: past the crypto, into the
 *                       exchange handlers
 *
 * The first byte picks the configuration (PFS, cookies, a DH group the
 * responder refuses first, short lifetimes, handshake done before the
 * records). So IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL,
 * DELETE, rekeys, retransmissions and timeouts meet in odd orders, in
 * both roles.
 *
 * Beyond ASan/UBSan, it checks: timers never spin (a deadline that stays
 * due after ticks), CHILD SA bookkeeping stays consistent, the half-open
 * gauge equals the SAs in IKE_S_INIT_DONE (and no source's entry counts
 * more than it holds), and every CHILD SA handed to the ESP layer is
 * removed by the time the contexts go.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipsec/ike_sa_int.h"
#include "ipsec/ipsec_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_FE       0x0a02630au     /* 10.99.2.10 */
#define FZ_BE       0x6402630au     /* 10.99.2.100 */
#define FZ_OTHER    0x0b02630au     /* 10.99.2.11: someone else */
#define FZ_Q        32
#define FZ_HIST     8
#define FZ_KIDS     64
#define FZ_MSG      2048            /* longer messages are lost on this wire */

struct fz_msg {
    uint32_t src, dst;
    uint16_t len;
    uint8_t data[FZ_MSG];
};

struct fz_side {
    struct ike_ctx *ctx;
    uint32_t addr;
    uint32_t kids[FZ_KIDS];         /* inbound SPIs installed in "ESP" */
    uint32_t next_spi;
    unsigned installs;
};

static struct fz_msg q[FZ_Q], hist[FZ_HIST];
static int nq, nhist, hist_at;
static uint64_t fz_now_ms;
static struct fz_side side[2];      /* 0: frontend, 1: backend */

struct fz_in {
    const uint8_t *p;
    size_t n;
};

static uint8_t fz_byte(struct fz_in *in)
{
    uint8_t b;

    if (in->n == 0)
        return 0;
    b = *in->p++;
    in->n--;
    return b;
}

static uint32_t fz_u32(struct fz_in *in)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++)
        v = v << 8 | fz_byte(in);
    return v;
}

/* ---- the contexts' callbacks ---- */

static uint64_t fz_clock(void *arg)
{
    (void)arg;
    return fz_now_ms;
}

static void fz_send(void *arg, uint32_t src, uint32_t dst, uint16_t port, const uint8_t *m, size_t len)
{
    (void)arg;
    (void)port;
    if (nq >= FZ_Q || len > FZ_MSG)
        return;                     /* lost */
    q[nq].src = src;
    q[nq].dst = dst;
    q[nq].len = (uint16_t)len;
    memcpy(q[nq].data, m, len);
    nq++;
}

static int fz_install(void *arg, struct ike_sa *sa, const struct ike_child_install *c)
{
    struct fz_side *s = arg;

    (void)sa;
    if (c->key_len == 0 || c->key_in == NULL || c->key_out == NULL)
        __builtin_trap();
    /* every 16th install fails, as a full SA database would */
    if (++s->installs % 16 == 0)
        return -1;
    for (int i = 0; i < FZ_KIDS; i++) {
        if (s->kids[i] == 0) {
            s->kids[i] = c->spi_in;
            return 0;
        }
    }
    return -1;
}

static void fz_remove(void *arg, struct ike_sa *sa, uint32_t spi_in, uint32_t spi_out)
{
    struct fz_side *s = arg;

    (void)sa;
    (void)spi_out;
    for (int i = 0; i < FZ_KIDS; i++)
        if (s->kids[i] == spi_in && spi_in != 0)
            s->kids[i] = 0;
}

static void fz_event(void *arg, struct ike_sa *sa, enum ike_event ev)
{
    (void)arg;
    if (ev == IKE_EV_IKE_REKEYED && ike_sa_rekeyed_from(sa) == NULL)
        __builtin_trap();
}

static uint32_t fz_spi(void *arg)
{
    struct fz_side *s = arg;

    return ++s->next_spi;
}

/* FUZZ_IKE_LOG=1 shows what an input does (when reading a seed or a crash). */
static int fz_verbose = -1;

static void fz_log(enum ipsec_log_level level, const char *msg)
{
    (void)level;
    if (fz_verbose < 0)
        fz_verbose = getenv("FUZZ_IKE_LOG") != NULL;
    if (fz_verbose)
        fprintf(stderr, "  %s\n", msg);
}

/* ---- configuration ---- */

enum {
    FZ_CFG_HANDSHAKE = 1,       /* run the handshake before the records */
    FZ_CFG_PFS = 2,             /* CHILD rekeys with a KE */
    FZ_CFG_COOKIE = 4,          /* the responder always demands a cookie */
    FZ_CFG_WRONG_GROUP = 8,     /* initiator's first KE is refused (INVALID_KE) */
    FZ_CFG_LIFETIMES = 16,      /* timed CHILD and IKE rekeys */
    FZ_CFG_ESN = 32,
};

static void fz_proposals(struct ike_peer_config *c, unsigned cfg, bool frontend)
{
    struct ike_proposal *p = &c->ike_proposals.p[0];

    c->ike_proposals.n = 1;
    *p = (struct ike_proposal){ .num = 1, .proto = IKE_PROTO_IKE };
    p->t[p->n++] = (struct ike_transform){ IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128, false };
    p->t[p->n++] = (struct ike_transform){ IKE_TRANS_PRF, IKE_PRF_HMAC_SHA2_256, 0, false };
    if (frontend && (cfg & FZ_CFG_WRONG_GROUP))
        p->t[p->n++] = (struct ike_transform){ IKE_TRANS_DH, IKE_DH_ECP256, 0, false };
    p->t[p->n++] = (struct ike_transform){ IKE_TRANS_DH, IKE_DH_CURVE25519, 0, false };
    p = &c->esp_proposals.p[0];
    c->esp_proposals.n = 1;
    *p = (struct ike_proposal){ .num = 1, .proto = IKE_PROTO_ESP };
    p->t[p->n++] = (struct ike_transform){ IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128, false };
    if (cfg & FZ_CFG_PFS)
        p->t[p->n++] = (struct ike_transform){ IKE_TRANS_DH, IKE_DH_CURVE25519, 0, false };
    p->t[p->n++] = (struct ike_transform){ IKE_TRANS_ESN, (cfg & FZ_CFG_ESN) ? IKE_ESN_YES : IKE_ESN_NO, 0, false };
}

static void fz_open(struct fz_side *s, uint32_t addr, unsigned cfg)
{
    struct ike_callbacks cb = { .arg = s, .send = fz_send, .child_install = fz_install, .child_remove = fz_remove,
                                .event = fz_event, .spi_alloc = fz_spi, .now_ms = fz_clock };
    bool frontend = addr == FZ_FE;
    struct ike_peer_config c;

    memset(s, 0, sizeof(*s));
    s->addr = addr;
    s->next_spi = frontend ? 0xc0000000u : 0xd0000000u;
    s->ctx = ike_ctx_new(&cb);
    if (s->ctx == NULL)
        abort();
    memset(&c, 0, sizeof(c));
    c.local_addr = addr;
    c.peer_addr = frontend ? FZ_BE : 0;
    c.port = 4500;
    c.local_id = (struct ike_identity){ IKE_ID_FQDN, "x", 1 };
    c.local_id.len = frontend ? 15 : 17;
    memcpy(c.local_id.data, frontend ? "fe.example.test" : "mail.example.test", c.local_id.len);
    c.peer_id.type = IKE_ID_FQDN;
    c.peer_id.len = frontend ? 17 : 15;
    memcpy(c.peer_id.data, frontend ? "mail.example.test" : "fe.example.test", c.peer_id.len);
    memcpy(c.psk, "fuzz-psk-0123456789", 19);
    c.psk_len = 19;
    fz_proposals(&c, cfg, frontend);
    c.retransmit_ms = 100;
    c.retransmit_tries = 3;
    if (cfg & FZ_CFG_LIFETIMES) {
        c.child_lifetime_s = 20;
        c.ike_lifetime_s = 60;
    }
    ike_ctx_add_peer(s->ctx, &c);
    if (!frontend && (cfg & FZ_CFG_COOKIE))
        ike_ctx_set_cookie_threshold(s->ctx, 0);
}

/* ---- the wire ---- */

static void fz_deliver_msg(const struct fz_msg *m, uint16_t sport)
{
    struct fz_side *to = m->dst == FZ_BE ? &side[1] : m->dst == FZ_FE ? &side[0] : NULL;

    if (to == NULL)
        return;
    hist[hist_at] = *m;
    hist_at = (hist_at + 1) % FZ_HIST;
    if (nhist < FZ_HIST)
        nhist++;
    ike_ctx_input(to->ctx, m->src, sport, m->dst, m->data, m->len);
}

static void fz_take(int i, struct fz_msg *out)
{
    *out = q[i];
    memmove(&q[i], &q[i + 1], sizeof(q[0]) * (size_t)(nq - i - 1));
    nq--;
}

static void fz_pump(void)
{
    struct fz_msg m;

    for (int n = 0; n < 64 && nq > 0; n++) {
        fz_take(0, &m);
        fz_deliver_msg(&m, 4500);
    }
}

/* Run timers up to the clock; a deadline still due after many ticks at
 * the same instant would spin the event loop. */
static void fz_run_timers(void)
{
    for (int i = 0;; i++) {
        bool due = false;

        for (int s = 0; s < 2; s++)
            due |= ike_ctx_next_deadline(side[s].ctx) <= fz_now_ms;
        if (!due)
            return;
        if (i == 64)
            __builtin_trap();
        for (int s = 0; s < 2; s++)
            ike_ctx_tick(side[s].ctx);
    }
}

static void fz_advance(uint64_t ms)
{
    uint64_t end = fz_now_ms + ms;

    while (fz_now_ms < end) {
        uint64_t d = UINT64_MAX;

        for (int s = 0; s < 2; s++)
            if (ike_ctx_next_deadline(side[s].ctx) < d)
                d = ike_ctx_next_deadline(side[s].ctx);
        fz_now_ms = d < end && d > fz_now_ms ? d : end;
        fz_run_timers();
        fz_pump();
    }
}

/* The i-th live SA of a side (wrapping), or NULL. */
static struct ike_sa *fz_sa(struct fz_side *s, unsigned i)
{
    struct ike_sa *sa;
    unsigned n = 0;

    for (sa = s->ctx->sas; sa != NULL; sa = sa->next)
        n += !sa->doomed;
    if (n == 0)
        return NULL;
    i %= n;
    for (sa = s->ctx->sas; sa != NULL; sa = sa->next)
        if (!sa->doomed && i-- == 0)
            return sa;
    return NULL;
}

/* ---- operations ---- */

static void fz_action(struct fz_in *in)
{
    struct fz_side *s = &side[fz_byte(in) & 1];
    struct ike_sa *sa = fz_sa(s, fz_byte(in));
    uint8_t what = fz_byte(in) % 12;
    unsigned gaps[3];
    uint32_t spi_in, spi_out;

    for (int i = 0; i < 3; i++)
        gaps[i] = 10u * (fz_byte(in) + 1u);
    if (what == 9) {
        (void)ike_ctx_initiate(side[0].ctx, 0, gaps[0] & 16, NULL);
        return;
    }
    if (what == 10) {
        (void)ike_ctx_delete_all(s->ctx);
        return;
    }
    if (what == 11) {
        ike_ctx_set_accepting(s->ctx, gaps[0] & 16);
        return;
    }
    if (sa == NULL)
        return;
    switch (what) {
    case 0: (void)ike_sa_probe(sa, gaps, 1 + gaps[1] % 3); break;
    case 1: (void)ike_sa_rekey_child(sa); break;
    case 2: (void)ike_sa_rekey_ike(sa); break;
    case 3: (void)ike_sa_delete(sa); break;
    case 4: ike_sa_abandon(sa); break;
    case 5:
        if (ike_sa_child_spis(sa, &spi_in, &spi_out))
            (void)ike_ctx_child_expiring(s->ctx, ike_sa_peer_addr(sa), gaps[2] & 16 ? spi_in : spi_out,
                                         !(gaps[2] & 16));
        break;
    case 6: ike_sa_hold_outbound(sa); break;
    case 7: ike_sa_release_outbound(sa); break;
    case 8: (void)ike_sa_request_refused(sa); break;
    }
}

static const uint8_t fz_payload_types[] = {
    IKE_PL_SA, IKE_PL_KE, IKE_PL_IDI, IKE_PL_IDR, IKE_PL_CERT, IKE_PL_CERTREQ, IKE_PL_AUTH, IKE_PL_NONCE,
    IKE_PL_NOTIFY, IKE_PL_DELETE, IKE_PL_VENDOR, IKE_PL_TSI, IKE_PL_TSR, IKE_PL_CP, IKE_PL_EAP, 0x7f,
};

static const uint16_t fz_notify_types[] = {
    IKE_N_REKEY_SA, IKE_N_USE_TRANSPORT_MODE, IKE_N_INITIAL_CONTACT, IKE_N_TEMPORARY_FAILURE,
    IKE_N_NO_PROPOSAL_CHOSEN, IKE_N_INVALID_KE_PAYLOAD, IKE_N_AUTHENTICATION_FAILED,
    IKE_N_CHILD_SA_NOT_FOUND, IKE_N_INVALID_SYNTAX, IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD,
    IKE_N_NO_ADDITIONAL_SAS, IKE_N_TS_UNACCEPTABLE, IKE_N_COOKIE, IKE_N_INVALID_IKE_SPI, 16431, 40000,
};

/* One inner payload: raw bytes, or a notify / DELETE naming a real SPI
 * (which the fuzzer could hardly guess). */
static void fz_forge_payload(struct fz_in *in, struct ike_writer *w, struct ike_sa *sa)
{
    uint8_t kind = fz_byte(in), len = fz_byte(in), spi[4];
    uint32_t spi_in = 0, spi_out = 0;
    size_t at;

    (void)ike_sa_child_spis(sa, &spi_in, &spi_out);
    ike_put32(spi, (kind & 0x40) ? spi_out : spi_in);
    switch (kind >> 6) {
    case 0:
    case 1: {
        uint8_t body[255];

        for (unsigned i = 0; i < len; i++)
            body[i] = fz_byte(in);
        at = ike_writer_begin(w, fz_payload_types[kind & 15], (kind & 0x10) != 0);
        ike_writer_put(w, body, len);
        ike_writer_end(w, at);
        break;
    }
    case 2:
        ike_write_notify(w, (len & 1) ? IKE_PROTO_ESP : 0, (len & 1) ? spi : NULL, (len & 1) ? 4 : 0,
                         fz_notify_types[kind & 15], NULL, 0);
        break;
    default:
        if (len & 1)
            ike_write_delete(w, IKE_PROTO_ESP, 4, spi, 1);
        else
            ike_write_delete(w, IKE_PROTO_IKE, 0, NULL, 0);
        break;
    }
}

static void fz_forge(struct fz_in *in)
{
    int from = fz_byte(in) & 1;
    struct ike_sa *sa = fz_sa(&side[from], fz_byte(in)), *peer;
    uint8_t exch = (uint8_t)(IKE_SA_INIT + fz_byte(in) % 4), flags = fz_byte(in), n = fz_byte(in) % 5, *msg;
    bool response = flags & 1;
    uint32_t msg_id;
    struct ike_writer w;
    size_t len;

    if (sa == NULL || !sa->keys_live)
        return;
    switch ((flags >> 1) & 3) {
    case 0:
        msg_id = sa->next_req_id;           /* the request the peer expects */
        if (flags & 8)
            sa->next_req_id++;              /* and our own window moves with it */
        break;
    case 1:
        peer = NULL;
        for (struct ike_sa *p = side[!from].ctx->sas; p != NULL; p = p->next)
            if (p->spi_i == sa->spi_i && p->spi_r == sa->spi_r && !p->doomed)
                peer = p;
        msg_id = peer != NULL ? peer->req.msg_id : 0;  /* the answer the peer waits for */
        break;
    case 2:
        msg_id = sa->peer_next_id - 1;
        break;
    default:
        msg_id = fz_u32(in);
        break;
    }
    msg = ike_sk_begin(sa, &w, exch, response, msg_id);
    for (int i = 0; i < n; i++)
        fz_forge_payload(in, &w, sa);
    msg = ike_sk_seal(sa, &w, msg, &len);
    if (msg == NULL)
        return;
    if (len <= FZ_MSG) {
        struct fz_msg m = { .src = sa->local_addr, .dst = sa->peer_addr, .len = (uint16_t)len };

        memcpy(m.data, msg, len);
        fz_deliver_msg(&m, 4500);

    }
    free(msg);
}

static void fz_mutate(struct fz_in *in, int i)
{
    struct fz_msg m = q[i];
    uint8_t n = fz_byte(in) % 8;

    for (int k = 0; k < n; k++) {
        uint16_t at = (uint16_t)(fz_byte(in) << 8 | fz_byte(in));

        if (m.len > 0)
            m.data[at % m.len] = fz_byte(in);
    }
    if (fz_byte(in) & 1 && m.len > 0)
        m.len = (uint16_t)(m.len - 1 - fz_byte(in) % m.len);    /* truncated */
    fz_deliver_msg(&m, 4500);
}

/* An IKE_SA_INIT request in flight or delivered earlier, sent to the
 * backend again under another initiator SPI, from its own source, another
 * host or a spoofed one, and perhaps with its KE data zeroed (a low-order
 * point, or a value no group accepts): the unauthenticated load the
 * responder's guard (ike_guard.c) bounds. */
static void fz_flood(struct fz_in *in, uint8_t how)
{
    const struct fz_msg *tpl = NULL;
    uint8_t pick = fz_byte(in), spi = fz_byte(in), n = (uint8_t)(1 + fz_byte(in) % 16);
    struct ike_payload_list pl;
    struct ike_header h;
    struct fz_msg m;

    for (int k = 0; k < nq + nhist && tpl == NULL; k++) {
        int j = (pick + k) % (nq + nhist);
        const struct fz_msg *c = j < nq ? &q[j] : &hist[j - nq];

        if (c->dst == FZ_BE && c->len > 19 && c->data[18] == IKE_SA_INIT && !(c->data[19] & IKE_FLAG_RESPONSE))
            tpl = c;
    }
    if (tpl == NULL)
        return;
    for (int k = 0; k < n; k++) {
        m = *tpl;
        m.src = (how >> 4) == 0 ? tpl->src : (how >> 4) == 1 ? FZ_OTHER : (0x0003630au | (uint32_t)(spi + k) << 24);
        if (how & 8) {
            ike_put64(m.data, 0xf1000000000000ULL | (uint64_t)spi << 8 | (uint64_t)k);
        }
        if ((how & 4) && ike_header_parse(m.data, m.len, &h) == 0 &&
            ike_payloads_parse(h.next_payload, m.data + IKE_HDR_LEN, m.len - IKE_HDR_LEN, &pl) == 0) {
            for (int p = 0; p < pl.n; p++)
                if (pl.pl[p].type == IKE_PL_KE && pl.pl[p].len > 4)
                    memset(m.data + (pl.pl[p].body - m.data) + 4, 0, pl.pl[p].len - 4);
        }
        fz_deliver_msg(&m, 4500);
    }
}

static void fz_raw(struct fz_in *in)
{
    static const uint32_t srcs[] = { FZ_FE, FZ_BE, FZ_OTHER };
    struct fz_msg m;
    uint8_t how = fz_byte(in);

    m.src = srcs[how % 3];
    m.dst = (how & 4) ? FZ_FE : FZ_BE;
    m.len = fz_byte(in);
    if (m.len == 0) {
        fz_flood(in, how);
        return;
    }
    for (unsigned k = 0; k < m.len; k++)
        m.data[k] = fz_byte(in);
    if (m.len >= 16 && (how & 8)) {
        /* with the SPIs of a live SA, so it reaches that SA */
        struct ike_sa *sa = fz_sa(&side[(how & 4) ? 0 : 1], how >> 4);

        if (sa != NULL) {
            ike_put64(m.data, sa->spi_i);
            ike_put64(m.data + 8, sa->spi_r);
        }
    }
    fz_deliver_msg(&m, 4500);
}

static void fz_record(struct fz_in *in)
{
    uint8_t op = fz_byte(in) % 12, a = fz_byte(in);
    struct fz_msg m;
    int i = nq > 0 ? a % nq : -1;

    switch (op) {
    case 0: fz_pump(); break;
    case 1:
        if (i >= 0) {
            fz_take(i, &m);
            fz_deliver_msg(&m, 4500);
        }
        break;
    case 2:
        if (i >= 0) {
            m = q[i];
            fz_deliver_msg(&m, 4500);
        }
        break;
    case 3:
        if (i >= 0)
            fz_take(i, &m);
        break;
    case 4:
        if (nhist > 0) {
            m = hist[a % nhist];
            fz_deliver_msg(&m, 4500);
        }
        break;
    case 5:
        if (i >= 0) {
            struct fz_msg t = q[i];
            int j = fz_byte(in) % nq;

            q[i] = q[j];
            q[j] = t;
        }
        break;
    case 6:
        if (i >= 0)
            fz_mutate(in, i);
        break;
    case 7:
        if (i >= 0) {
            fz_take(i, &m);
            fz_deliver_msg(&m, (uint16_t)(4500 + 1 + (fz_byte(in) & 3)));     /* a NAT rebinding */
        }
        break;
    case 8: fz_raw(in); break;
    case 9: {
        static const uint64_t unit[] = { 1, 10, 100, 1000 };

        fz_advance(unit[a & 3] * (uint64_t)((a >> 2) + 1));
        break;
    }
    case 10: fz_action(in); break;
    default: fz_forge(in); break;
    }
    fz_run_timers();
}

/* The half-open gauge is the number of live SAs in IKE_S_INIT_DONE, and
 * no source's entry in the guard's table counts more than that source
 * holds (an evicted entry may count fewer). */
static void fz_check_half_open(const struct fz_side *s)
{
    const struct ike_guard *g = &s->ctx->guard;
    uint64_t n = 0;

    for (const struct ike_sa *sa = s->ctx->sas; sa != NULL; sa = sa->next)
        n += !sa->doomed && sa->state == IKE_S_INIT_DONE;
    if (s->ctx->stats.half_open != n)
        __builtin_trap();
    for (int i = 0; i < IKE_GUARD_SETS; i++) {
        for (int w = 0; w < IKE_GUARD_WAYS; w++) {
            const struct ike_guard_src *e = &g->src[i][w];
            unsigned have = 0;

            if (!e->used || e->half_open == 0)
                continue;
            for (const struct ike_sa *sa = s->ctx->sas; sa != NULL; sa = sa->next)
                have += !sa->doomed && sa->state == IKE_S_INIT_DONE && sa->peer_addr == e->addr;
            if (e->half_open > have)
                __builtin_trap();
        }
    }
}

/* CHILD SA bookkeeping of every live SA is consistent. */
static void fz_check(const struct fz_side *s)
{
    fz_check_half_open(s);
    for (const struct ike_sa *sa = s->ctx->sas; sa != NULL; sa = sa->next) {
        if (sa->doomed)
            continue;
        if (sa->current_kid < -1 || sa->current_kid >= IKE_MAX_KIDS ||
            (sa->current_kid >= 0 && !sa->kids[sa->current_kid].installed))
            __builtin_trap();
        if (sa->state == IKE_S_DEAD)
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = { data, size };
    unsigned cfg = fz_byte(&in);

    ipsec_log_set_sink(fz_log);
    nq = nhist = hist_at = 0;
    fz_now_ms = 1000000;
    fz_open(&side[0], FZ_FE, cfg);
    fz_open(&side[1], FZ_BE, cfg);
    (void)ike_ctx_initiate(side[0].ctx, 0, true, NULL);
    if (cfg & FZ_CFG_HANDSHAKE)
        for (int i = 0; i < 4; i++)
            fz_pump();
    for (int n = 0; in.n > 0 && n < 256; n++) {
        fz_record(&in);
        fz_check(&side[0]);
        fz_check(&side[1]);
    }
    for (int s = 0; s < 2; s++) {
        ike_ctx_free(&side[s].ctx);
        for (int i = 0; i < FZ_KIDS; i++)
            if (side[s].kids[i] != 0)
                __builtin_trap();       /* a CHILD SA left in ESP after its IKE SA went */
    }
    return 0;
}
