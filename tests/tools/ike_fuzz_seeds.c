/* Writes seed IKEv2 messages for tests/fuzz/fuzz_ike_parse into DIR:
 * an IKE_SA_INIT request and a message with every payload type we parse.
 * Usage: ike_fuzz_seeds DIR */
#include <stdio.h>
#include <string.h>

#include "ipsec/ike_msg.h"

static int seed_write(const char *dir, const char *name, const uint8_t *buf, long len)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    if (fp == NULL || len < 0 || fwrite(buf, 1, (size_t)len, fp) != (size_t)len) {
        perror(path);
        return 1;
    }
    return fclose(fp) != 0;
}

int main(int argc, char **argv)
{
    uint8_t buf[2048], blob[64];
    struct ike_header h = { .spi_i = 0x1122334455667788ull, .exchange = IKE_SA_INIT,
                            .flags = IKE_FLAG_INITIATOR };
    struct ike_sa_payload sa = { .n = 1 };
    struct ike_ts_list ts = { .n = 1 };
    struct ike_writer w;
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: ike_fuzz_seeds DIR\n");
        return 2;
    }
    memset(blob, 0x5a, sizeof(blob));
    sa.p[0] = (struct ike_proposal){ .num = 1, .proto = IKE_PROTO_IKE, .n = 3 };
    sa.p[0].t[0] = (struct ike_transform){ IKE_TRANS_ENCR, IKE_ENCR_AES_GCM_16, 128, false };
    sa.p[0].t[1] = (struct ike_transform){ IKE_TRANS_PRF, IKE_PRF_HMAC_SHA2_256, 0, false };
    sa.p[0].t[2] = (struct ike_transform){ IKE_TRANS_DH, IKE_DH_CURVE25519, 0, false };
    ts.ts[0] = (struct ike_ts){ 6, 143, 143, 0x0a630264, 0x0a630264 };

    ike_writer_init(&w, buf, sizeof(buf), &h);
    ike_write_sa(&w, &sa);
    ike_write_ke(&w, IKE_DH_CURVE25519, blob, 32);
    ike_write_nonce(&w, blob, 32);
    ike_write_notify(&w, 0, NULL, 0, IKE_N_NAT_DETECTION_SOURCE_IP, blob, 20);
    rc |= seed_write(argv[1], "sa_init", buf, ike_writer_finish(&w));

    h.exchange = IKE_AUTH;
    h.msg_id = 1;
    ike_writer_init(&w, buf, sizeof(buf), &h);
    ike_write_id(&w, IKE_PL_IDI, IKE_ID_FQDN, (const uint8_t *)"fe.example.test", 15);
    ike_write_auth(&w, IKE_AUTH_PSK, blob, 32);
    ike_write_notify(&w, 0, NULL, 0, IKE_N_USE_TRANSPORT_MODE, NULL, 0);
    sa.p[0].proto = IKE_PROTO_ESP;
    sa.p[0].spi_size = 4;
    ike_write_sa(&w, &sa);
    ike_write_ts(&w, IKE_PL_TSI, &ts);
    ike_write_ts(&w, IKE_PL_TSR, &ts);
    ike_write_delete(&w, IKE_PROTO_ESP, 4, blob, 2);
    rc |= seed_write(argv[1], "auth_plain", buf, ike_writer_finish(&w));
    return rc;
}
