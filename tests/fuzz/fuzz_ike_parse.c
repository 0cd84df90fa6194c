/* libFuzzer harness: an IKEv2 message as it arrives from the network goes
 * through the header, payload chain and every payload body parser. */
#include <stddef.h>
#include <stdint.h>

#include "ipsec/ike_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_ike_body(const struct ike_payload *p)
{
    struct ike_sa_payload sa;
    struct ike_notify n;
    struct ike_ts_list ts;
    struct ike_delete d;
    const uint8_t *x;
    size_t xl;
    uint16_t g;
    uint8_t t;

    switch (p->type) {
    case IKE_PL_SA: (void)ike_sa_parse(p->body, p->len, &sa); break;
    case IKE_PL_KE: (void)ike_ke_parse(p->body, p->len, &g, &x, &xl); break;
    case IKE_PL_NONCE: (void)ike_nonce_parse(p->body, p->len); break;
    case IKE_PL_NOTIFY: (void)ike_notify_parse(p->body, p->len, &n); break;
    case IKE_PL_IDI:
    case IKE_PL_IDR: (void)ike_id_parse(p->body, p->len, &t, &x, &xl); break;
    case IKE_PL_AUTH: (void)ike_auth_parse(p->body, p->len, &t, &x, &xl); break;
    case IKE_PL_TSI:
    case IKE_PL_TSR: (void)ike_ts_parse(p->body, p->len, &ts); break;
    case IKE_PL_DELETE: (void)ike_delete_parse(p->body, p->len, &d); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ike_header h;
    struct ike_payload_list l;

    if (ike_header_parse(data, size, &h) != 0)
        return 0;
    if (ike_payloads_parse(h.next_payload, data + IKE_HDR_LEN, size - IKE_HDR_LEN, &l) != 0)
        return 0;
    for (int i = 0; i < l.n; i++)
        fuzz_ike_body(&l.pl[i]);
    /* the plaintext inside SK is parsed the same way once decrypted */
    if (l.n > 0 && l.pl[l.n - 1].type == IKE_PL_SK) {
        const struct ike_payload *sk = &l.pl[l.n - 1];
        struct ike_payload_list inner;

        if (ike_payloads_parse(sk->next, sk->body, sk->len, &inner) == 0)
            for (int i = 0; i < inner.n; i++)
                fuzz_ike_body(&inner.pl[i]);
    }
    return 0;
}
