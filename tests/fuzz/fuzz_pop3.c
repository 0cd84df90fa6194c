/* libFuzzer harness: the POP3 front-end state machine driven from both
 * sides, the way the proxy drives it (unconsumed bytes kept and offered
 * again, upstream bytes dropped after PA_UPSTREAM_CLOSE, client bytes
 * re-offered after upstream events).
 *
 * Input: byte 0 picks the limits and TLS state; the rest is a script of
 * data bytes and controls, so that seeds stay readable text:
 *   0x01 switch to upstream bytes    0x02 switch to client bytes
 *   0x03 deliver what is gathered (a split point)
 *   0x04 client TLS handshake done   0x05 X  upstream error X % 4
 *   0x06 upstream connected          0x1b X  the byte X itself
 * Every control first delivers the bytes gathered so far. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/pop3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
    struct pop3_session *s;
    struct proto_out out;
    uint8_t cbuf[16384], ubuf[4096];    /* held unconsumed, as the proxy would */
    size_t clen, ulen;
    bool closed, spliced;
};

static void fz_check(struct fz *f)
{
    for (size_t i = 0; i < f->out.n; i++) {
        const struct proto_action *a = &f->out.a[i];

        if (f->closed)
            __builtin_trap();           /* nothing may follow PA_CLOSE */
        switch (a->kind) {
        case PA_CLOSE: f->closed = true; break;
        case PA_SPLICE:
            if (f->spliced)
                __builtin_trap();
            f->spliced = true;
            break;
        case PA_UPSTREAM_CLOSE: f->ulen = 0; break;
        case PA_LOG:
            if (a->data == NULL || a->data[a->len] != '\0')
                __builtin_trap();
            break;
        default: break;
        }
    }
    if (f->spliced != pop3_spliced(f->s) && !f->closed)
        __builtin_trap();
    proto_out_reset(&f->out);
}

static void fz_offer_client(struct fz *f)
{
    long n = pop3_client_input(f->s, f->cbuf, f->clen, &f->out);

    if (n < 0 || (size_t)n > f->clen)
        __builtin_trap();
    memmove(f->cbuf, f->cbuf + n, f->clen - (size_t)n);
    f->clen -= (size_t)n;
    fz_check(f);
}

static void fz_offer_upstream(struct fz *f)
{
    long n = pop3_upstream_input(f->s, f->ubuf, f->ulen, &f->out);

    if (n < 0 || (size_t)n > f->ulen)
        __builtin_trap();
    memmove(f->ubuf, f->ubuf + n, f->ulen - (size_t)n);
    f->ulen -= (size_t)n;
    fz_check(f);
    if (f->clen > 0)
        fz_offer_client(f);
}

static void fz_deliver(struct fz *f, bool upstream, const uint8_t *p, size_t n)
{
    uint8_t *buf = upstream ? f->ubuf : f->cbuf;
    size_t cap = upstream ? sizeof(f->ubuf) : sizeof(f->cbuf);
    size_t *len = upstream ? &f->ulen : &f->clen;

    if (n > cap - *len)
        n = cap - *len;         /* the proxy stops reading when its buffer is full */
    memcpy(buf + *len, p, n);
    *len += n;
    if (upstream)
        fz_offer_upstream(f);
    else
        fz_offer_client(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t lines[] = { 16, 64, 512, 8192 };
    struct proto_limits lim;
    struct fz *f;
    uint8_t chunk[4096];
    size_t n = 0;
    bool upstream = false;

    if (size == 0)
        return 0;
    memset(&lim, 0, sizeof(lim));
    lim.plaintext_without_tls = data[0] & 1;
    lim.starttls_offered = data[0] & 2;
    lim.max_line = lines[data[0] >> 3 & 3];
    lim.max_auth_failures = data[0] >> 5 & 3;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return 0;
    f->s = pop3_session_new(&lim, data[0] & 4);
    if (f->s == NULL) {
        free(f);
        return 0;
    }
    proto_out_init(&f->out);
    pop3_start(f->s, &f->out);
    fz_check(f);
    for (size_t i = 1; i <= size; i++) {
        uint8_t c = i < size ? data[i] : 0x03;

        if (c == 0x1b && i + 1 < size) {
            c = data[++i];
        } else if (c >= 0x01 && c <= 0x06) {
            if (n > 0)
                fz_deliver(f, upstream, chunk, n);
            n = 0;
            if (c == 0x01 || c == 0x02)
                upstream = c == 0x01;
            else if (c == 0x04)
                pop3_tls_started(f->s);
            else if (c == 0x05 && i + 1 < size)
                pop3_upstream_error(f->s, (enum proto_upstream_error)(data[++i] % 4), &f->out);
            else if (c == 0x06)
                pop3_upstream_connected(f->s, &f->out);
            fz_check(f);
            continue;
        }
        chunk[n++] = c;
        if (n == sizeof(chunk)) {
            fz_deliver(f, upstream, chunk, n);
            n = 0;
        }
    }
    proto_out_free(&f->out);
    pop3_session_free(&f->s);
    free(f);
    return 0;
}
