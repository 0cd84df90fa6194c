/*
 * Request heads: the checks that keep request smuggling shapes away from
 * the back-end, and the forwarded form of a head (hop-by-hop headers
 * dropped, X-Forwarded-For / Forwarded / X-Real-IP / X-Forwarded-Proto set).
 *
 * Forwarding headers: esproxy is the edge, every client is untrusted, so
 * whatever X-Forwarded-For, Forwarded, X-Real-IP or X-Forwarded-Proto a
 * client sends is dropped and replaced by our own, naming the address the
 * connection came from; a client cannot make the back-end log, rate-limit
 * or allow-list another address.
 *
 * The raw line syntax (CRLF only, no obs-fold, no NUL, size) was already
 * enforced by the scanner in http.c and the grammar by llhttp; here the
 * header *set* is judged: framing must be unambiguous (RFC 9112 §6.3).
 */
#include "protocols/http_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *hname(const struct http_session *s, const struct http__header *h)
{
    return (const char *)s->head.p + h->name_off;
}

static const char *hval(const struct http_session *s, const struct http__header *h)
{
    return (const char *)s->head.p + h->val_off;
}

static bool name_eq(const char *a, size_t alen, const char *b)
{
    return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

static bool hname_is(const struct http_session *s, const struct http__header *h, const char *name)
{
    return name_eq(hname(s, h), h->name_len, name);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Walk the elements of a comma-separated list value: *pos advances; the
 * element (OWS trimmed, possibly empty) is returned through el/ellen.
 * Returns false at the end.
 */
static bool list_next(const char *v, size_t n, size_t *pos, const char **el, size_t *ellen)
{
    size_t i = *pos, start, end;

    if (i > n)
        return false;
    while (i < n && is_ows(v[i]))
        i++;
    start = i;
    while (i < n && v[i] != ',')
        i++;
    end = i;
    while (end > start && is_ows(v[end - 1]))
        end--;
    *el = v + start;
    *ellen = end - start;
    *pos = i + 1;
    return true;
}

/* Does any Connection header of the head list this token? */
static bool connection_has(const struct http_session *s, const char *tok, size_t toklen)
{
    for (size_t i = 0; i < s->nhdr; i++) {
        const struct http__header *h = &s->hdr[i];
        size_t pos = 0, ellen;
        const char *el;

        if (!hname_is(s, h, "connection"))
            continue;
        while (list_next(hval(s, h), h->val_len, &pos, &el, &ellen))
            if (ellen == toklen && strncasecmp(el, tok, toklen) == 0)
                return true;
    }
    return false;
}

bool http__method_idempotent(uint8_t method)
{
    /* RFC 7231 §4.2.2 */
    return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_OPTIONS || method == HTTP_PUT ||
           method == HTTP_DELETE || method == HTTP_TRACE;
}

/* Transfer-Encoding over all its fields: chunked exactly once, and last. */
static bool transfer_encoding_ok(const struct http_session *s)
{
    unsigned chunked = 0;
    bool last_chunked = false;

    for (size_t i = 0; i < s->nhdr; i++) {
        const struct http__header *h = &s->hdr[i];
        size_t pos = 0, ellen;
        const char *el;

        if (!hname_is(s, h, "transfer-encoding"))
            continue;
        while (list_next(hval(s, h), h->val_len, &pos, &el, &ellen)) {
            if (ellen == 0)
                continue;
            last_chunked = name_eq(el, ellen, "chunked");
            chunked += last_chunked;
        }
    }
    return chunked == 1 && last_chunked;
}

struct head_counts {
    unsigned content_length, transfer_encoding, host, upgrade, expect_continue;
    bool content_length_zero;
};

static void head_count(const struct http_session *s, struct head_counts *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < s->nhdr; i++) {
        const struct http__header *h = &s->hdr[i];

        if (hname_is(s, h, "content-length")) {
            c->content_length++;
            c->content_length_zero = h->val_len == 1 && hval(s, h)[0] == '0';
        } else if (hname_is(s, h, "transfer-encoding")) {
            c->transfer_encoding++;
        } else if (hname_is(s, h, "host")) {
            c->host++;
        } else if (hname_is(s, h, "upgrade")) {
            c->upgrade++;
        } else if (hname_is(s, h, "expect")) {
            c->expect_continue += name_eq(hval(s, h), h->val_len, "100-continue");
        }
    }
}

int http__head_check(struct http_session *s, struct http__req *r, const char **why_r)
{
    uint8_t major = llhttp_get_http_major(&s->req), minor = llhttp_get_http_minor(&s->req);
    struct head_counts c;
    bool wants_upgrade;

    head_count(s, &c);
    r->method = llhttp_get_method(&s->req);
    r->idempotent = http__method_idempotent(r->method);
    r->head = r->method == HTTP_HEAD;
    if (major != 1) {
        *why_r = "version";
        return 505;
    }
    if (c.content_length > 1) {
        *why_r = "duplicate_content_length";
        return 400;
    }
    if (c.transfer_encoding > 0 && c.content_length > 0) {
        *why_r = "content_length_and_transfer_encoding";
        return 400;
    }
    if (c.transfer_encoding > 0 && (minor == 0 || !transfer_encoding_ok(s))) {
        *why_r = "transfer_encoding";
        return 400;
    }
    if (c.host > 1 || (minor >= 1 && c.host == 0)) {
        *why_r = "host";
        return 400;
    }
    if (s->url_len == 0) {
        *why_r = "url";
        return 400;
    }
    wants_upgrade = r->method == HTTP_CONNECT || (c.upgrade > 0 && connection_has(s, "upgrade", 7));
    if (wants_upgrade) {
        if (!s->lim.allow_upgrade) {
            *why_r = "upgrade_refused";
            return 501;
        }
        if (c.transfer_encoding > 0 || (c.content_length > 0 && !c.content_length_zero)) {
            *why_r = "upgrade_with_body";
            return 400;
        }
        r->upgrade = true;
    }
    if (minor == 0)
        r->close = !connection_has(s, "keep-alive", 10);
    else
        r->close = connection_has(s, "close", 5);
    return 0;
}

/* Headers that never travel to the back-end as the client sent them. */
static bool header_dropped(const struct http_session *s, const struct http__req *r, const struct http__header *h)
{
    static const char *const hop[] = { "connection", "keep-alive", "proxy-connection", "te",
                                       "x-forwarded-proto", "x-forwarded-for", "forwarded", "x-real-ip" };
    static const char *const must_pass[] = { "content-length", "transfer-encoding", "host" };

    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (hname_is(s, h, hop[i]))
            return true;
    if (hname_is(s, h, "upgrade"))
        return !r->upgrade;
    for (size_t i = 0; i < sizeof(must_pass) / sizeof(must_pass[0]); i++)
        if (hname_is(s, h, must_pass[i]))
            return false;
    return connection_has(s, hname(s, h), h->name_len);
}

static int put(struct http__buf *b, const char *str)
{
    return http__buf_append(b, str, strlen(str));
}

int http__head_serialize(struct http_session *s, const struct http__req *r, struct http__buf *b)
{
    const char *proto = s->client_tls ? "https" : "http";
    bool v6 = strchr(s->client_ip, ':') != NULL;
    char line[64];
    int rc = 0;

    rc |= put(b, llhttp_method_name((llhttp_method_t)r->method));
    rc |= put(b, " ");
    rc |= http__buf_append(b, s->head.p + s->url_off, s->url_len);
    snprintf(line, sizeof(line), " HTTP/1.%u\r\n", (unsigned)llhttp_get_http_minor(&s->req));
    rc |= put(b, line);
    for (size_t i = 0; i < s->nhdr; i++) {
        const struct http__header *h = &s->hdr[i];

        if (header_dropped(s, r, h))
            continue;
        rc |= http__buf_append(b, hname(s, h), h->name_len);
        rc |= put(b, ": ");
        rc |= http__buf_append(b, hval(s, h), h->val_len);
        rc |= put(b, "\r\n");
    }
    if (r->upgrade && r->method != HTTP_CONNECT)
        rc |= put(b, "Connection: upgrade\r\n");
    else if (r->close)
        rc |= put(b, "Connection: close\r\n");
    else if (llhttp_get_http_minor(&s->req) == 0)
        rc |= put(b, "Connection: keep-alive\r\n");
    rc |= put(b, "X-Forwarded-For: ");
    rc |= put(b, s->client_ip);
    rc |= put(b, "\r\nX-Real-IP: ");
    rc |= put(b, s->client_ip);
    rc |= put(b, "\r\nForwarded: ");
    rc |= put(b, v6 ? "for=\"[" : "for=");
    rc |= put(b, s->client_ip);
    rc |= put(b, v6 ? "]\";proto=" : ";proto=");
    rc |= put(b, proto);
    rc |= put(b, "\r\nX-Forwarded-Proto: ");
    rc |= put(b, proto);
    rc |= put(b, "\r\n\r\n");
    return rc;
}
