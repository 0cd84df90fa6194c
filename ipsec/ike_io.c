/* IKE on the event loop; see ike_io.h. */
#include "ipsec/ike_io.h"
#include "ipsec/esp_defs.h"
#include "ipsec/ipsec_log.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mbedtls/platform_util.h>

static uint64_t ike_io_now(void *arg)
{
    struct timespec ts;

    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void ike_io_send(void *arg, uint32_t src, uint32_t dst, uint16_t dport, const uint8_t *msg, size_t len)
{
    struct ike_io *io = arg;
    struct sockaddr_in to;
    int rc;

    (void)src;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = dst;
    to.sin_port = htons(dport);
    if (dport == 500 && io->have_500) {
        uv_buf_t buf = uv_buf_init((char *)msg, (unsigned)len);

        rc = uv_udp_try_send(&io->udp500, &buf, 1, (const struct sockaddr *)&to);
        rc = rc < 0 ? rc : 0;
    } else {
        rc = udp_encap_send_ike(io->ue, msg, len, &to);
    }
    if (rc != 0)
        ipsec_log(IPSEC_LOG_WARN, "event=ike_send_failed error=%s", uv_strerror(rc));
}

static enum ipsec_aead_alg ike_io_alg(uint16_t encr, uint16_t key_bits)
{
    if (encr == IKE_ENCR_AES_GCM_16)
        return key_bits == 256 ? IPSEC_AEAD_AES_GCM_256 : IPSEC_AEAD_AES_GCM_128;
    if (encr == IKE_ENCR_CHACHA20_POLY1305)
        return IPSEC_AEAD_CHACHA20_POLY1305;
    return IPSEC_AEAD_NONE;
}

static int ike_io_child_install(void *arg, struct ike_sa *sa, const struct ike_child_install *c)
{
    struct ike_io *io = arg;
    struct esp_sa_params in, out;
    struct esp_sa *sa_in = NULL;
    int rc;

    (void)sa;
    memset(&in, 0, sizeof(in));
    in.spi = c->spi_in;
    in.dir = ESP_SA_IN;
    in.alg = ike_io_alg(c->encr, c->key_bits);
    in.keymat = c->key_in;
    in.keymat_len = c->key_len;
    in.esn = c->esn;
    in.src = c->peer_addr;
    in.dst = c->local_addr;
    /* IKE rekeys well before this; the hard limit only guards a peer
     * that stopped rekeying */
    if (c->lifetime_s)
        in.hard.seconds = (uint64_t)c->lifetime_s * 2;
    out = in;
    out.spi = c->spi_out;
    out.dir = ESP_SA_OUT;
    out.keymat = c->key_out;
    out.src = c->local_addr;
    out.dst = c->peer_addr;
    rc = esp_sadb_add(io->db, &in, &sa_in);
    if (rc == 0 && c->defer_out) {
        struct ike_io_pending_out *p = NULL;

        for (int i = 0; i < IKE_IO_PENDING_OUT && p == NULL; i++)
            if (!io->pending_out[i].used)
                p = &io->pending_out[i];
        if (p == NULL || c->key_len > sizeof(p->keymat)) {
            rc = esp_sadb_add(io->db, &out, NULL);     /* no room to wait: switch now */
        } else {
            p->used = true;
            p->spi_in = c->spi_in;
            p->params = out;
            memcpy(p->keymat, c->key_out, c->key_len);
            p->params.keymat = p->keymat;
        }
    } else if (rc == 0) {
        rc = esp_sadb_add(io->db, &out, NULL);
        if (rc != 0)
            esp_sadb_remove(io->db, &sa_in);
    }
    if (rc != 0)
        ipsec_log(IPSEC_LOG_ERROR, "event=child_install_failed spi_in=%08x error=%d", c->spi_in, rc);
    return rc;
}

static struct ike_io_pending_out *ike_io_pending_find(struct ike_io *io, uint32_t spi_in)
{
    for (int i = 0; i < IKE_IO_PENDING_OUT; i++)
        if (io->pending_out[i].used && io->pending_out[i].spi_in == spi_in)
            return &io->pending_out[i];
    return NULL;
}

static void ike_io_pending_drop(struct ike_io_pending_out *p)
{
    mbedtls_platform_zeroize(p, sizeof(*p));
}

static void ike_io_child_activate_out(void *arg, struct ike_sa *sa, uint32_t spi_in)
{
    struct ike_io *io = arg;
    struct ike_io_pending_out *p = ike_io_pending_find(io, spi_in);

    (void)sa;
    if (p == NULL)
        return;
    if (esp_sadb_add(io->db, &p->params, NULL) != 0)
        ipsec_log(IPSEC_LOG_ERROR, "event=child_activate_failed spi_in=%08x", spi_in);
    else
        ipsec_log(IPSEC_LOG_DEBUG, "event=child_out_activated spi_in=%08x spi_out=%08x", spi_in, p->params.spi);
    ike_io_pending_drop(p);
}

static void ike_io_child_remove(void *arg, struct ike_sa *sa, uint32_t spi_in, uint32_t spi_out)
{
    struct ike_io *io = arg;
    struct ike_io_pending_out *p = ike_io_pending_find(io, spi_in);

    if (p != NULL)
        ike_io_pending_drop(p);
    struct esp_sa *in = esp_sadb_lookup_in(io->db, spi_in);
    struct esp_sa *out = esp_sadb_lookup_out_spi(io->db, ike_sa_peer_addr(sa), spi_out);

    if (in != NULL)
        esp_sadb_remove(io->db, &in);
    if (out != NULL)
        esp_sadb_remove(io->db, &out);     /* an older outbound SA, if any, takes over */
}

static uint32_t ike_io_spi_alloc(void *arg)
{
    struct ike_io *io = arg;
    uint32_t spi;

    do {
        if (ike_random(&spi, sizeof(spi)) != 0)
            spi = (uint32_t)ike_io_now(NULL) | 0x100u;
    } while (spi < 256 || esp_sadb_lookup_in(io->db, spi) != NULL);  /* 1-255 are reserved (RFC 4303) */
    return spi;
}

static void ike_io_event(void *arg, struct ike_sa *sa, enum ike_event ev)
{
    struct ike_io *io = arg;

    if (io->on_event != NULL && !io->closing)
        io->on_event(io->arg, sa, ev);
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = '\0';
}

int ike_io_format_keylog(const struct ike_sa *sa, const struct ike_sa_keys *k, char *out, size_t cap)
{
    char ei[2 * IKE_ENCR_KEYMAT_MAX + 1], er[sizeof(ei)], ai[2 * IKE_INTEG_KEY_MAX + 1], ar[sizeof(ai)];
    const char *enc, *integ;
    int n;

    switch (k->suite.encr) {
    case IKE_ENCR_AES_GCM_16:
        enc = k->suite.encr_key_bits == 256 ? "AES-GCM-256 with 16 octet ICV [RFC5282]"
                                            : "AES-GCM-128 with 16 octet ICV [RFC5282]";
        break;
    case IKE_ENCR_AES_CBC:
        enc = k->suite.encr_key_bits == 256 ? "AES-CBC-256 [RFC3602]" : "AES-CBC-128 [RFC3602]";
        break;
    default:
        return -1;      /* Wireshark 4.0 cannot decrypt it: nothing to log */
    }
    integ = k->suite.integ == IKE_INTEG_HMAC_SHA2_256_128 ? "HMAC_SHA2_256_128 [RFC4868]" : "NONE [RFC4306]";
    hex(ei, k->sk_ei, k->e_len);
    hex(er, k->sk_er, k->e_len);
    hex(ai, k->sk_ai, k->a_len);
    hex(ar, k->sk_ar, k->a_len);
    n = snprintf(out, cap, "%016llx,%016llx,%s,%s,\"%s\",%s,%s,\"%s\"", (unsigned long long)ike_sa_spi_i(sa),
                 (unsigned long long)ike_sa_spi_r(sa), ei, er, enc, ai, ar, integ);
    return n > 0 && (size_t)n < cap ? n : -1;
}

static void ike_io_keylog(void *arg, const struct ike_sa *sa, const struct ike_sa_keys *k)
{
    struct ike_io *io = arg;
    char rec[512];

    if (io->keylog != NULL && ike_io_format_keylog(sa, k, rec, sizeof(rec)) > 0)
        (void)keylog_write_record(io->keylog, "ikev2_decryption_table", rec);
}

static void ike_io_on_timer(uv_timer_t *t)
{
    struct ike_io *io = t->data;

    ike_ctx_tick(io->ctx);
    ike_io_kick(io);
}

void ike_io_kick(struct ike_io *io)
{
    uint64_t d, now;

    if (io->closing || io->ctx == NULL)
        return;
    d = ike_ctx_next_deadline(io->ctx);
    if (d == UINT64_MAX) {
        uv_timer_stop(&io->timer);
        return;
    }
    now = ike_io_now(NULL);
    uv_timer_start(&io->timer, ike_io_on_timer, d > now ? d - now : 0, 0);
}

int ike_io_init(struct ike_io *io, uv_loop_t *loop, struct udp_encap *ue, struct esp_sadb *db,
                struct keylog *keylog, ike_io_event_fn *on_event, void *arg)
{
    struct ike_callbacks cb = { .arg = io, .send = ike_io_send, .child_install = ike_io_child_install,
                                .child_remove = ike_io_child_remove, .event = ike_io_event,
                                .child_activate_out = ike_io_child_activate_out,
                                .spi_alloc = ike_io_spi_alloc, .now_ms = ike_io_now, .keylog = ike_io_keylog };

    memset(io, 0, sizeof(*io));
    io->loop = loop;
    io->ue = ue;
    io->db = db;
    io->keylog = keylog;
    io->on_event = on_event;
    io->arg = arg;
    io->ctx = ike_ctx_new(&cb);
    if (io->ctx == NULL)
        return -1;
    uv_timer_init(loop, &io->timer);
    io->timer.data = io;
    return 0;
}

void ike_io_input(struct ike_io *io, const uint8_t *msg, size_t len, const struct sockaddr_in *from,
                  uint32_t local)
{
    if (io->closing)
        return;
    ike_ctx_input(io->ctx, from->sin_addr.s_addr, ntohs(from->sin_port), local, msg, len);
    ike_io_kick(io);
}

static void ike_io_alloc500(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct ike_io *io = h->data;

    (void)suggested;
    *buf = uv_buf_init((char *)io->rx500, sizeof(io->rx500));
}

static void ike_io_recv500(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
    struct ike_io *io = u->data;

    (void)buf;
    if (n <= 0 || from == NULL || from->sa_family != AF_INET || (flags & UV_UDP_PARTIAL))
        return;
    ike_io_input(io, io->rx500, (size_t)n, (const struct sockaddr_in *)(const void *)from, io->local500);
}

int ike_io_listen_500(struct ike_io *io, const struct sockaddr_in *bind_addr)
{
    int rc;

    uv_udp_init_ex(io->loop, &io->udp500, AF_INET);
    io->udp500.data = io;
    {
        uv_os_fd_t fd;
        int one = 1;

        /* like the ESP socket: ready on the VIP before the VIP is ours */
        if (uv_fileno((uv_handle_t *)&io->udp500, &fd) == 0)
            (void)setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
    }
    rc = uv_udp_bind(&io->udp500, (const struct sockaddr *)bind_addr, UV_UDP_REUSEADDR);
    if (rc == 0)
        rc = uv_udp_recv_start(&io->udp500, ike_io_alloc500, ike_io_recv500);
    if (rc != 0) {
        uv_close((uv_handle_t *)&io->udp500, NULL);
        return rc;
    }
    io->local500 = bind_addr->sin_addr.s_addr;
    io->have_500 = true;
    return 0;
}

void ike_io_close(struct ike_io *io)
{
    if (io->closing)
        return;
    io->closing = 1;
    ike_ctx_free(&io->ctx);
    uv_timer_stop(&io->timer);
    uv_close((uv_handle_t *)&io->timer, NULL);
    if (io->have_500)
        uv_close((uv_handle_t *)&io->udp500, NULL);
}
