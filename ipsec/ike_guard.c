/*
 * What an unauthenticated sender can make a responder do (RFC 7296 §2.6,
 * RFC 8019 §4). Anyone can send IKE_SA_INIT requests, from their own
 * address or a spoofed one; the aim is that a flood from one address never
 * delays a legitimate initiator at another, and that memory never grows
 * with the number of addresses a flood uses.
 *
 * - Replies outside any SA (COOKIE, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN,
 *   UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_IKE_SPI, our IKE_SA_INIT response
 *   sent again for a retransmitted request) draw on two token buckets: the
 *   source address's own (replies_per_src a second) and everyone's
 *   (replies_total a second, which caps what we reflect toward spoofed
 *   addresses). A flooding address spends its own budget only.
 * - Half-open SAs (IKE_SA_INIT answered, IKE_AUTH not yet) are counted per
 *   source address and in total. A source with cookie_per_src of them, or
 *   everyone once cookie_threshold are open in total, must return a
 *   stateless COOKIE before we run Diffie-Hellman or keep anything. A
 *   source at half_open_per_src, or anyone at half_open_max in total, is
 *   dropped without an answer (counted). Half-open SAs die after
 *   half_open_timeout_ms (ike_sa.c, 30 s): every IKE_AUTH retransmission
 *   of the default ladder (500 ms doubling, 5 tries: the last at 15.5 s)
 *   still finds its SA, and with the bounds above the length only says how
 *   long a flood's few SAs occupy their slots.
 * - COOKIE = version | SHA-256(Ni | IPi | SPIi | secret[version]), the
 *   §2.6 construction. The secret changes every IKE_COOKIE_SECRET_MS
 *   (lazily, at the next use; after two periods without one, both
 *   secrets are new); a cookie made with the previous secret is still
 *   accepted, so no initiator loses a round trip at the change.
 *   Checking one is a single hash, done before any DH.
 * - The per-source state lives in a fixed table of IKE_GUARD_SETS sets of
 *   IKE_GUARD_WAYS entries; an address falls in a set by a keyed hash (the
 *   key is random, and nobody sees the index). A new address takes a free
 *   way, else the least recently seen one with no half-open SA, else the
 *   least recently seen: then that source's half-open count is forgotten
 *   (the total still holds) and a returning one starts with a full budget.
 * - Every refusal is counted (ike_stats); one log line every
 *   IKE_GUARD_LOG_MS at most says what was refused since the last one.
 */
#include "ipsec/ike_sa_int.h"
#include "ipsec/ipsec_log.h"

#include <arpa/inet.h>
#include <string.h>

#include <mbedtls/sha256.h>

_Static_assert((IKE_GUARD_SETS & (IKE_GUARD_SETS - 1)) == 0, "IKE_GUARD_SETS is a power of two");
_Static_assert(IKE_COOKIE_LEN <= IKE_COOKIE_MAX, "our cookie fits the initiator's buffer");

void ike_limits_default(struct ike_limits *l)
{
    *l = (struct ike_limits){
        .replies_per_src = 10,
        .replies_total = 500,
        .cookie_per_src = 2,
        .cookie_threshold = 32,
        .half_open_per_src = 5,
        .half_open_max = 256,
        .half_open_timeout_ms = 30000,
    };
}

int ike_guard_init(struct ike_guard *g)
{
    memset(g, 0, sizeof(*g));
    ike_limits_default(&g->lim);
    if (ike_random(&g->hash_key, sizeof(g->hash_key)) != 0 || ike_random(g->secret, sizeof(g->secret)) != 0)
        return -1;
    return 0;
}

/* ---- budgets ---- */

static bool ike_bucket_take(struct ike_bucket *b, unsigned rate, uint64_t now)
{
    uint64_t cap = (uint64_t)rate * 1000u, gained;

    gained = now - b->at_ms >= 1000 ? cap : (now - b->at_ms) * rate;
    b->milli = (uint32_t)(b->milli + gained < cap ? b->milli + gained : cap);
    b->at_ms = now;
    if (b->milli < 1000)
        return false;
    b->milli -= 1000;
    return true;
}

/* ---- the source table ---- */

static unsigned ike_guard_set_of(const struct ike_guard *g, uint32_t addr)
{
    uint64_t x = addr ^ g->hash_key;

    /* murmur3's finaliser: every key bit moves every index bit */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (unsigned)(x ^ (g->hash_key >> 32)) & (IKE_GUARD_SETS - 1);
}

static struct ike_guard_src *ike_guard_find(struct ike_guard *g, uint32_t addr)
{
    struct ike_guard_src *set = g->src[ike_guard_set_of(g, addr)];

    for (int i = 0; i < IKE_GUARD_WAYS; i++)
        if (set[i].used && set[i].addr == addr)
            return &set[i];
    return NULL;
}

static bool ike_guard_better_victim(const struct ike_guard_src *a, const struct ike_guard_src *b)
{
    if (!a->used || !b->used)
        return !a->used && b->used;
    if ((a->half_open == 0) != (b->half_open == 0))
        return a->half_open == 0;
    return a->seen_ms < b->seen_ms;
}

/* The entry of addr, made (by eviction if need be) when there is none. */
static struct ike_guard_src *ike_guard_get(struct ike_guard *g, uint32_t addr, uint64_t now)
{
    struct ike_guard_src *e = ike_guard_find(g, addr), *set;

    if (e == NULL) {
        set = g->src[ike_guard_set_of(g, addr)];
        e = &set[0];
        for (int i = 1; i < IKE_GUARD_WAYS; i++)
            if (ike_guard_better_victim(&set[i], e))
                e = &set[i];
        *e = (struct ike_guard_src){ .used = true, .addr = addr,
                                     .replies = { .milli = g->lim.replies_per_src * 1000u, .at_ms = now } };
    }
    e->seen_ms = now;
    return e;
}

/* ---- counting and the rate-limited log line ---- */

static void ike_guard_log(struct ike_ctx *ctx, uint32_t src)
{
    struct ike_guard *g = &ctx->guard;
    const struct ike_stats *s = &ctx->stats, *o = &g->at_log;
    uint64_t now = ike_now(ctx);
    char a[INET_ADDRSTRLEN];

    if (g->logged && now - g->log_at_ms < IKE_GUARD_LOG_MS)
        return;
    inet_ntop(AF_INET, &src, a, sizeof(a));
    ipsec_log(IPSEC_LOG_WARN,
              "event=ike_unauth_limited src=%s half_open=%llu replies_limited_src=%llu replies_limited_total=%llu "
              "half_open_refused_src=%llu half_open_refused_total=%llu cookies_sent=%llu since_ms=%llu",
              a, (unsigned long long)s->half_open, (unsigned long long)(s->replies_limited_src - o->replies_limited_src),
              (unsigned long long)(s->replies_limited_total - o->replies_limited_total),
              (unsigned long long)(s->half_open_refused_src - o->half_open_refused_src),
              (unsigned long long)(s->half_open_refused_total - o->half_open_refused_total),
              (unsigned long long)(s->cookies_sent - o->cookies_sent),
              (unsigned long long)(g->logged ? now - g->log_at_ms : 0));
    g->logged = true;
    g->log_at_ms = now;
    g->at_log = *s;
}

bool ike_guard_reply_allowed(struct ike_ctx *ctx, uint32_t src)
{
    struct ike_guard *g = &ctx->guard;
    uint64_t now = ike_now(ctx);
    struct ike_guard_src *e = ike_guard_get(g, src, now);

    if (!ike_bucket_take(&e->replies, g->lim.replies_per_src, now)) {
        ctx->stats.replies_limited_src++;
    } else if (!ike_bucket_take(&g->replies, g->lim.replies_total, now)) {
        e->replies.milli += 1000;   /* not sent: the source keeps its token */
        ctx->stats.replies_limited_total++;
    } else {
        return true;
    }
    ctx->stats.dropped++;
    ike_guard_log(ctx, src);
    return false;
}

void ike_guard_half_open(struct ike_ctx *ctx, uint32_t addr, int delta)
{
    struct ike_guard *g = &ctx->guard;
    struct ike_guard_src *e;

    if (delta > 0) {
        ctx->stats.half_open++;
        ike_guard_get(g, addr, ike_now(ctx))->half_open++;
        return;
    }
    if (ctx->stats.half_open > 0)
        ctx->stats.half_open--;
    e = ike_guard_find(g, addr);
    if (e != NULL && e->half_open > 0)      /* none: evicted, its count forgotten */
        e->half_open--;
}

/* ---- cookies ---- */

static void ike_guard_secret_fresh(struct ike_guard *g, uint64_t now)
{
    if (!g->secret_dated) {
        g->secret_dated = true;
        g->secret_at_ms = now;
    }
    if (now - g->secret_at_ms < IKE_COOKIE_SECRET_MS)
        return;
    /* after two periods or more (nobody needed a cookie meanwhile) both
     * secrets go: "the previous secret" would otherwise be any age */
    for (int i = now - g->secret_at_ms >= 2u * IKE_COOKIE_SECRET_MS ? 2 : 1; i > 0; i--) {
        g->version++;
        if (ike_random(g->secret[g->version & 1], sizeof(g->secret[0])) != 0) {
            g->version--;   /* keep the current secret rather than a guessable one */
            break;
        }
    }
    g->secret_at_ms = now;
}

static void ike_cookie_make(const struct ike_guard *g, uint8_t version, const uint8_t *ni, size_t ni_len,
                            uint32_t src, uint64_t spi_i, uint8_t out[IKE_COOKIE_LEN])
{
    mbedtls_sha256_context c;
    uint8_t spi[8];

    ike_put64(spi, spi_i);
    out[0] = version;
    mbedtls_sha256_init(&c);
    mbedtls_sha256_starts_ret(&c, 0);
    mbedtls_sha256_update_ret(&c, ni, ni_len);
    mbedtls_sha256_update_ret(&c, (const uint8_t *)&src, 4);
    mbedtls_sha256_update_ret(&c, spi, 8);
    mbedtls_sha256_update_ret(&c, g->secret[version & 1], sizeof(g->secret[0]));
    mbedtls_sha256_finish_ret(&c, out + 1);
    mbedtls_sha256_free(&c);
}

/* The request's COOKIE (first payload, §2.6) is one we made, with the
 * current secret or the one before. */
static bool ike_cookie_valid(const struct ike_guard *g, uint32_t src, uint64_t spi_i, const uint8_t *ni,
                             size_t ni_len, const struct ike_payload_list *pl)
{
    uint8_t want[IKE_COOKIE_LEN];
    struct ike_notify n;

    if (pl->n == 0 || pl->pl[0].type != IKE_PL_NOTIFY || ike_notify_parse(pl->pl[0].body, pl->pl[0].len, &n) != 0 ||
        n.type != IKE_N_COOKIE || n.data_len != IKE_COOKIE_LEN)
        return false;
    if (n.data[0] != g->version && n.data[0] != (uint8_t)(g->version - 1))
        return false;
    ike_cookie_make(g, n.data[0], ni, ni_len, src, spi_i, want);
    return ike_ct_equal(n.data, want, IKE_COOKIE_LEN);
}

enum ike_admission ike_guard_admit_init(struct ike_ctx *ctx, uint32_t src, uint64_t spi_i, const uint8_t *ni,
                                        size_t ni_len, const struct ike_payload_list *pl,
                                        uint8_t cookie_r[IKE_COOKIE_LEN])
{
    struct ike_guard *g = &ctx->guard;
    uint64_t now = ike_now(ctx);
    struct ike_guard_src *e = ike_guard_get(g, src, now);

    if (e->half_open >= g->lim.half_open_per_src || ctx->stats.half_open >= g->lim.half_open_max) {
        if (e->half_open >= g->lim.half_open_per_src)
            ctx->stats.half_open_refused_src++;
        else
            ctx->stats.half_open_refused_total++;
        ctx->stats.dropped++;
        ike_guard_log(ctx, src);
        return IKE_ADMIT_DROP;
    }
    if (e->half_open < g->lim.cookie_per_src && ctx->stats.half_open < g->lim.cookie_threshold)
        return IKE_ADMIT;
    ike_guard_secret_fresh(g, now);
    if (ike_cookie_valid(g, src, spi_i, ni, ni_len, pl))
        return IKE_ADMIT;
    ike_cookie_make(g, g->version, ni, ni_len, src, spi_i, cookie_r);
    return IKE_ADMIT_COOKIE;
}
