/* libFuzzer harness: datagrams from the network into a responder's IKEv2
 * state machine (ike_ctx_input): IKE_SA_INIT handling, cookies, proposal
 * and KE checks, unknown-SPI answers, and whatever else a message can reach
 * without keys. A fresh context per input keeps runs independent. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipsec/ike_sa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fz_now(void *a) { (void)a; return 5000; }
static void fz_send(void *a, uint32_t s, uint32_t d, uint16_t p, const uint8_t *m, size_t n)
{
    (void)a; (void)s; (void)d; (void)p; (void)m; (void)n;
}
static int fz_install(void *a, struct ike_sa *sa, const struct ike_child_install *c)
{
    (void)a; (void)sa; (void)c;
    return 0;
}
static uint32_t fz_spi(void *a) { (void)a; return 0x12345678; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ike_callbacks cb = { .send = fz_send, .child_install = fz_install, .spi_alloc = fz_spi, .now_ms = fz_now };
    struct ike_peer_config c;
    struct ike_ctx *ctx = ike_ctx_new(&cb);
    struct ike_proposal *p;

    if (ctx == NULL)
        return 0;
    memset(&c, 0, sizeof(c));
    c.local_addr = 0x6402630a;  /* 10.99.2.100 */
    c.port = 4500;
    c.local_id = (struct ike_identity){ IKE_ID_FQDN, "mail.example.test", 17 };
    c.peer_id = (struct ike_identity){ IKE_ID_FQDN, "fe.example.test", 15 };
    memcpy(c.psk, "fuzz-psk-0123456789", 19);
    c.psk_len = 19;
    c.ike_proposals.n = 1;
    p = &c.ike_proposals.p[0];
    *p = (struct ike_proposal){ .num = 1, .proto = IKE_PROTO_IKE, .n = 3 };
    p->t[0] = (struct ike_transform){ IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128, false };
    p->t[1] = (struct ike_transform){ IKE_TRANS_PRF, IKE_PRF_HMAC_SHA2_256, 0, false };
    p->t[2] = (struct ike_transform){ IKE_TRANS_DH, IKE_DH_CURVE25519, 0, false };
    c.esp_proposals.n = 1;
    c.esp_proposals.p[0] = (struct ike_proposal){ .num = 1, .proto = IKE_PROTO_ESP, .n = 1 };
    c.esp_proposals.p[0].t[0] = (struct ike_transform){ IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128, false };
    ike_ctx_add_peer(ctx, &c);
    ike_ctx_set_cookie_threshold(ctx, size % 2);    /* both with and without cookies */
    ike_ctx_input(ctx, 0x0a02630a, 4500, 0x6402630a, data, size);
    ike_ctx_input(ctx, 0x0a02630a, 4500, 0x6402630a, data, size);     /* as a retransmission */
    ike_ctx_tick(ctx);
    ike_ctx_free(&ctx);
    return 0;
}
