/*
 * libFuzzer harness for the HTTP/1.1 module: client bytes and upstream
 * bytes interleaved at fuzzer-chosen split points, with injected upstream
 * errors and client EOF, driven the way the proxy drives it (unconsumed
 * client bytes are offered again after every upstream event).
 *
 * Input: one config byte, then operations: an op byte (low 2 bits: 0 client
 * data, 1 upstream data, 2 upstream error, 3 client EOF), and for data a
 * length byte followed by that many bytes.
 *
 * Checked beyond memory safety:
 * - input functions consume 0..len bytes;
 * - nothing is emitted after PA_CLOSE; PA_UPSTREAM only on an open upstream;
 * - everything sent upstream parses as a valid request stream (llhttp,
 *   restarted at each PA_CONNECT) up to PA_SPLICE;
 * - never a hang: two upstream failures and a client EOF always end in
 *   PA_CLOSE.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llhttp.h"
#include "protocols/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct harness {
    struct http_session *s;
    struct proto_out o;
    llhttp_t check;             /* what the back-end would parse */
    llhttp_settings_t check_settings;
    bool upstream_open, closed, spliced;
    uint8_t pending[65536];     /* client bytes not consumed yet */
    size_t npending;
};

static void check_actions(struct harness *h)
{
    for (size_t i = 0; i < h->o.n; i++) {
        const struct proto_action *a = &h->o.a[i];

#ifdef FUZZ_HTTP_TRACE
        fprintf(stderr, "action %d len %zu: %.*s\n", (int)a->kind, a->len, (int)a->len, a->data ? (char *)a->data : "");
#endif
        if (a->kind == PA_LOG)
            continue;
        if (h->closed)
            abort();    /* an action after PA_CLOSE */
        switch (a->kind) {
        case PA_CONNECT:
            if (a->user[0] != '\0')
                abort();
            llhttp_init(&h->check, HTTP_REQUEST, &h->check_settings);
            h->upstream_open = true;
            break;
        case PA_UPSTREAM:
            if (!h->upstream_open)
                abort();
            if (!h->spliced) {
                llhttp_errno_t e = llhttp_execute(&h->check, (const char *)a->data, a->len);

                /* an upgrade request stops the checker: what follows is another protocol */
                if (e != HPE_OK && e != HPE_PAUSED_UPGRADE)
                    abort();
            }
            break;
        case PA_UPSTREAM_CLOSE:
            h->upstream_open = false;
            break;
        case PA_SPLICE:
            h->spliced = true;
            break;
        case PA_CLOSE:
            h->closed = true;
            break;
        default:
            break;
        }
    }
    proto_out_reset(&h->o);
}

static void offer_client(struct harness *h)
{
    long n;

    if (h->npending == 0)
        return;
    n = http_client_input(h->s, h->pending, h->npending, &h->o);
    if (n < 0 || (size_t)n > h->npending)
        abort();
    memmove(h->pending, h->pending + n, h->npending - (size_t)n);
    h->npending -= (size_t)n;
    check_actions(h);
}

static void client_data(struct harness *h, const uint8_t *p, size_t n)
{
    if (n > sizeof(h->pending) - h->npending)
        n = sizeof(h->pending) - h->npending;
    memcpy(h->pending + h->npending, p, n);
    h->npending += n;
    offer_client(h);
}

static void upstream_data(struct harness *h, const uint8_t *p, size_t n)
{
    long used = http_upstream_input(h->s, p, n, &h->o);

    if (used < 0 || (size_t)used > n)
        abort();
    check_actions(h);
    offer_client(h);
}

static void upstream_error(struct harness *h, enum proto_upstream_error e)
{
    http_upstream_error(h->s, e, &h->o);
    h->upstream_open = false;
    check_actions(h);
    offer_client(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct harness h;
    struct http_limits lim = HTTP_LIMITS_DEFAULT;
    size_t i = 1;

    if (size < 1)
        return 0;
    memset(&h, 0, sizeof(h));
    lim.allow_upgrade = data[0] & 1;
    if (data[0] & 2)
        lim.max_header_bytes = 96;
    if (data[0] & 4)
        lim.max_retry_body = 8;
    llhttp_settings_init(&h.check_settings);
    h.s = http_session_new(&lim, data[0] & 8 ? "2001:db8::7" : "192.0.2.7", data[0] & 16);
    if (h.s == NULL)
        return 0;
    proto_out_init(&h.o);
    while (i < size) {
        uint8_t op = data[i++];
        size_t n;

        switch (op & 3) {
        case 0:
        case 1:
            if (i >= size)
                break;
            n = data[i++];
            if (n > size - i)
                n = size - i;
            if ((op & 3) == 0)
                client_data(&h, data + i, n);
            else
                upstream_data(&h, data + i, n);
            i += n;
            break;
        case 2:
            upstream_error(&h, (enum proto_upstream_error)((op >> 2) % 4));
            break;
        case 3:
            http_client_eof(h.s, &h.o);
            check_actions(&h);
            break;
        }
        (void)http_idle(h.s);
    }
    /* never a hang: the back-end dies twice and the client leaves */
    upstream_error(&h, PUE_TUNNEL_LOST);
    upstream_error(&h, PUE_TUNNEL_LOST);
    http_client_eof(h.s, &h.o);
    check_actions(&h);
    if (!h.closed)
        abort();
    http_session_free(&h.s);
    proto_out_free(&h.o);
    return 0;
}
