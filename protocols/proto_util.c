/* Action lists and small helpers shared by the protocol modules. */
#include "protocols/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void (*secure_free_observer)(const void *p, size_t cap);

void proto_secure_set_free_observer(void (*fn)(const void *p, size_t cap))
{
    secure_free_observer = fn;
}

void proto_secure_free(void *p, size_t cap)
{
    if (p == NULL)
        return;
    explicit_bzero(p, cap);
    if (secure_free_observer != NULL)
        secure_free_observer(p, cap);
    free(p);
}

void *proto_secure_grow(void *old, size_t old_cap, size_t used, size_t new_cap)
{
    uint8_t *p = malloc(new_cap);

    if (p == NULL)
        return NULL;
    if (used > 0)
        memcpy(p, old, used);
    proto_secure_free(old, old_cap);
    return p;
}

void proto_out_init(struct proto_out *o)
{
    memset(o, 0, sizeof(*o));
}

void proto_out_reset(struct proto_out *o)
{
    for (size_t i = 0; i < o->n; i++) {
        if (o->a[i].data != NULL) {
            explicit_bzero(o->a[i].data, o->a[i].len);   /* may hold a password */
            free(o->a[i].data);
        }
        explicit_bzero(o->a[i].user, sizeof(o->a[i].user));
    }
    o->n = 0;
    o->oom = 0;
}

void proto_out_free(struct proto_out *o)
{
    proto_out_reset(o);
    free(o->a);
    memset(o, 0, sizeof(*o));
}

static struct proto_action *proto_out_next(struct proto_out *o)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        struct proto_action *a = realloc(o->a, cap * sizeof(*a));

        if (a == NULL) {
            o->oom = 1;
            return NULL;
        }
        o->a = a;
        o->cap = cap;
    }
    memset(&o->a[o->n], 0, sizeof(o->a[0]));
    return &o->a[o->n++];
}

void proto_out_add(struct proto_out *o, enum proto_action_kind kind, const void *data, size_t len)
{
    struct proto_action *a = proto_out_next(o);

    if (a == NULL)
        return;
    a->kind = kind;
    if (len > 0 || kind == PA_LOG) {
        a->data = malloc(len + 1);
        if (a->data == NULL) {
            o->n--;
            o->oom = 1;
            return;
        }
        if (len > 0)
            memcpy(a->data, data, len);
        a->data[len] = '\0';
        a->len = len;
    }
}

void proto_out_printf(struct proto_out *o, enum proto_action_kind kind, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->oom = 1;
        return;
    }
    proto_out_add(o, kind, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void proto_out_connect(struct proto_out *o, const char *user)
{
    struct proto_action *a = proto_out_next(o);

    if (a == NULL)
        return;
    a->kind = PA_CONNECT;
    snprintf(a->user, sizeof(a->user), "%s", user);
}

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long proto_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v;

        if (in[i] == '=') {
            /* padding only in the last two positions */
            if (i < len - 2 || (i == len - 2 && in[len - 1] != '='))
                return -1;
            pad++;
            continue;
        }
        if (pad > 0 || (v = b64_value((unsigned char)in[i])) < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)o;
}

size_t proto_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);

        if (o + 4 >= cap)
            break;
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < len ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    if (cap > 0)
        out[o < cap ? o : cap - 1] = '\0';
    return o;
}

int proto_sasl_plain_parse(const uint8_t *msg, size_t len, char *user, size_t user_cap, char *pass,
                           size_t pass_cap)
{
    const uint8_t *nul1 = memchr(msg, '\0', len), *nul2;
    size_t ulen, plen;

    if (nul1 == NULL)
        return -1;
    nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
    if (nul2 == NULL)
        return -1;
    ulen = (size_t)(nul2 - nul1 - 1);
    plen = len - (size_t)(nul2 + 1 - msg);
    if (ulen == 0 || ulen >= user_cap || plen == 0 || plen >= pass_cap ||
        memchr(nul2 + 1, '\0', plen) != NULL)
        return -1;
    /* authzid, when given, must be the authcid: no proxy authorization */
    if (nul1 != msg && ((size_t)(nul1 - msg) != ulen || memcmp(msg, nul1 + 1, ulen) != 0))
        return -1;
    memcpy(user, nul1 + 1, ulen);
    user[ulen] = '\0';
    memcpy(pass, nul2 + 1, plen);
    pass[plen] = '\0';
    return 0;
}
