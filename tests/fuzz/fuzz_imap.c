/* libFuzzer harness: the IMAP front-end fed client bytes, back-end bytes and
 * events interleaved at fuzzer-chosen points, driven the way the proxy does
 * (unconsumed bytes kept and offered again with more appended).
 *
 * Input: byte 0 picks the limits and TLS state; then records of one header
 * byte h and a body:
 *   h < 0x80            client bytes, length h + 1
 *   0x80 <= h < 0xf0    back-end bytes, length h - 0x7f
 *   0xf0                imap_tls_started
 *   0xf1..0xf4          imap_upstream_error(h - 0xf1)
 *   0xf5                imap_upstream_connected
 *   0xf6                imap_start (a no-op once started)
 *   other               ignored
 * A record longer than what is left takes what is left. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PENDING_MAX 65536

struct pending {
    uint8_t b[PENDING_MAX];
    size_t len;
};

static struct pending client_buf, upstream_buf;

static bool check_actions(struct proto_out *o, bool *closed)
{
    for (size_t i = 0; i < o->n; i++) {
        const struct proto_action *a = &o->a[i];

        if (*closed)
            abort();            /* nothing may follow PA_CLOSE */
        if (a->kind == PA_CLOSE)
            *closed = true;
        if (a->kind == PA_LOG && (a->data == NULL || strlen((char *)a->data) != a->len))
            abort();
        if (a->kind == PA_CONNECT && a->user[0] == '\0')
            abort();
    }
    proto_out_reset(o);
    return !*closed;
}

static void offer(struct imap_session *s, struct pending *p, bool client, struct proto_out *o)
{
    long n;

    if (p->len == 0)
        return;
    n = client ? imap_client_input(s, p->b, p->len, o) : imap_upstream_input(s, p->b, p->len, o);
    if (n < 0 || (size_t)n > p->len)
        abort();
    memmove(p->b, p->b + n, p->len - (size_t)n);
    p->len -= (size_t)n;
}

static void append(struct pending *p, const uint8_t *d, size_t n)
{
    if (n > PENDING_MAX - p->len)
        n = PENDING_MAX - p->len;   /* a proxy stops reading when full */
    memcpy(p->b + p->len, d, n);
    p->len += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_limits lim = { PROTO_DEFAULT_MAX_LINE, PROTO_DEFAULT_MAX_LITERAL, PROTO_DEFAULT_AUTH_FAILURES,
                                false, true };
    struct imap_session *s;
    struct proto_out o;
    bool closed = false;
    size_t i = 1;

    if (size < 1)
        return 0;
    lim.plaintext_without_tls = data[0] & 1;
    lim.starttls_offered = data[0] & 2;
    if (data[0] & 8) {
        lim.max_line = 64;
        lim.max_literal = 16;
        lim.max_auth_failures = 1;
    }
    client_buf.len = upstream_buf.len = 0;
    proto_out_init(&o);
    s = imap_session_new(&lim, data[0] & 4);
    if (s == NULL)
        return 0;
    if (!(data[0] & 16))
        imap_start(s, &o);
    while (i < size && check_actions(&o, &closed)) {
        uint8_t h = data[i++];
        size_t n = h < 0x80 ? (size_t)h + 1 : h < 0xf0 ? (size_t)h - 0x7f : 0;

        if (n > size - i)
            n = size - i;
        if (h < 0x80) {
            append(&client_buf, data + i, n);
            offer(s, &client_buf, true, &o);
        } else if (h < 0xf0) {
            append(&upstream_buf, data + i, n);
            offer(s, &upstream_buf, false, &o);
            offer(s, &client_buf, true, &o);       /* the proxy re-offers held input */
        } else if (h == 0xf0) {
            imap_tls_started(s);
        } else if (h <= 0xf4) {
            imap_upstream_error(s, (enum proto_upstream_error)(h - 0xf1), &o);
            upstream_buf.len = 0;
        } else if (h == 0xf5) {
            imap_upstream_connected(s, &o);
        } else if (h == 0xf6) {
            imap_start(s, &o);
            offer(s, &client_buf, true, &o);
        }
        i += n;
    }
    (void)check_actions(&o, &closed);
    (void)imap_spliced(s);
    imap_session_free(&s);
    proto_out_free(&o);
    return 0;
}
