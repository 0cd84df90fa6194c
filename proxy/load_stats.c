/*
 * Load statistics: log-linear latency histograms (32 bins per power of
 * two, so a percentile is reported within ~3% of the exact value, values
 * in microseconds up to ~12 days), per-operation success and failure
 * counts, errors by protocol and kind, and the text and JSON summaries.
 */
#include "proxy/load.h"

#include <inttypes.h>
#include <string.h>

static const char *const op_names[LOP_COUNT] = {
    [LOP_POP3_SESSION] = "pop3.session", [LOP_IMAP_SESSION] = "imap.session",
    [LOP_HTTP_SESSION] = "http.session", [LOP_CONNECT] = "connect", [LOP_TLS] = "tls",
    [LOP_POP3_LOGIN] = "pop3.login", [LOP_POP3_STAT] = "pop3.stat", [LOP_POP3_RETR] = "pop3.retr",
    [LOP_POP3_QUIT] = "pop3.quit", [LOP_IMAP_LOGIN] = "imap.login", [LOP_IMAP_SELECT] = "imap.select",
    [LOP_IMAP_FETCH_HEADERS] = "imap.fetch_headers", [LOP_IMAP_FETCH_BODIES] = "imap.fetch_bodies",
    [LOP_IMAP_IDLE] = "imap.idle", [LOP_IMAP_LOGOUT] = "imap.logout",
    [LOP_HTTP_GET] = "http.get", [LOP_HTTP_POST] = "http.post",
};

static const char *const err_names[LERR_COUNT] = {
    "none", "connect", "tls", "auth", "protocol", "timeout", "closed",
};

static const char *const proto_names[LOAD_NPROTO] = { "pop3", "imap", "http" };

const char *load_op_name(enum load_op op) { return op_names[op]; }
const char *load_err_name(enum load_err e) { return err_names[e]; }
const char *load_proto_name(enum load_proto p) { return proto_names[p]; }

int lhist_bin(uint64_t v)
{
    int msb;

    if (v < 64)
        return (int)v;
    msb = 63 - __builtin_clzll(v);
    if (msb > 40) {
        msb = 40;
        v = (UINT64_C(1) << 41) - 1;
    }
    return 64 + (msb - 6) * LHIST_SUB + (int)((v >> (msb - 5)) & (LHIST_SUB - 1));
}

uint64_t lhist_bin_high(int bin)
{
    int msb, sub;

    if (bin < 64)
        return (uint64_t)bin;
    msb = 6 + (bin - 64) / LHIST_SUB;
    sub = (bin - 64) % LHIST_SUB;
    return ((uint64_t)(LHIST_SUB + sub + 1) << (msb - 5)) - 1;
}

void lhist_add(struct lhist *h, uint64_t v)
{
    h->bins[lhist_bin(v)]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
}

void lhist_merge(struct lhist *dst, const struct lhist *src)
{
    if (src->count == 0)
        return;
    for (int i = 0; i < LHIST_BINS; i++)
        dst->bins[i] += src->bins[i];
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
}

uint64_t lhist_percentile(const struct lhist *h, double p)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0;
    if (p >= 100.0)
        return h->max;
    rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
    if (rank == 0)
        rank = 1;
    for (int i = 0; i < LHIST_BINS; i++) {
        seen += h->bins[i];
        if (seen >= rank) {
            uint64_t v = lhist_bin_high(i);

            if (v > h->max)
                v = h->max;
            return v < h->min ? h->min : v;
        }
    }
    return h->max;
}

uint64_t load_stats_errors(const struct load_stats *s, enum load_err e)
{
    uint64_t n = 0;

    for (int p = 0; p < LOAD_NPROTO; p++)
        n += s->err[p][e];
    return n;
}

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

void load_stats_print(const struct load_stats *s, double elapsed_s, FILE *f)
{
    fprintf(f, "esproxy load: %.1f s, %" PRIu64 " sessions (%.1f/s), %" PRIu64 " ok, %" PRIu64 " failed\n",
            elapsed_s, s->ok + s->failed, elapsed_s > 0 ? (double)(s->ok + s->failed) / elapsed_s : 0.0,
            s->ok, s->failed);
    fprintf(f, "%-20s %9s %7s %9s %9s %9s %9s  (ms)\n", "operation", "ok", "failed", "p50", "p90", "p99", "max");
    for (int i = 0; i < LOP_COUNT; i++) {
        const struct lhist *h = &s->op[i];

        if (h->count == 0 && s->op_failed[i] == 0)
            continue;
        fprintf(f, "%-20s %9" PRIu64 " %7" PRIu64 " %9.2f %9.2f %9.2f %9.2f\n", op_names[i], h->count,
                s->op_failed[i], ms(lhist_percentile(h, 50)), ms(lhist_percentile(h, 90)),
                ms(lhist_percentile(h, 99)), ms(h->max));
    }
    fprintf(f, "errors:");
    for (int e = 1; e < LERR_COUNT; e++)
        fprintf(f, " %s %" PRIu64 "%s", err_names[e], load_stats_errors(s, (enum load_err)e),
                e + 1 < LERR_COUNT ? "," : "\n");
}

void load_stats_json(const struct load_stats *s, double elapsed_s, FILE *f)
{
    fprintf(f, "{\"elapsed_s\": %.3f, \"sessions\": %" PRIu64 ", \"ok\": %" PRIu64 ", \"failed\": %" PRIu64
            ", \"rate\": %.2f, \"ops\": {", elapsed_s, s->ok + s->failed, s->ok, s->failed,
            elapsed_s > 0 ? (double)(s->ok + s->failed) / elapsed_s : 0.0);
    for (int i = 0, first = 1; i < LOP_COUNT; i++) {
        const struct lhist *h = &s->op[i];

        if (h->count == 0 && s->op_failed[i] == 0)
            continue;
        fprintf(f, "%s\"%s\": {\"ok\": %" PRIu64 ", \"failed\": %" PRIu64 ", \"p50_ms\": %.3f, \"p90_ms\": %.3f"
                ", \"p99_ms\": %.3f, \"max_ms\": %.3f}", first ? "" : ", ", op_names[i], h->count,
                s->op_failed[i], ms(lhist_percentile(h, 50)), ms(lhist_percentile(h, 90)),
                ms(lhist_percentile(h, 99)), ms(h->max));
        first = 0;
    }
    fprintf(f, "}, \"errors\": {");
    for (int e = 1; e < LERR_COUNT; e++)
        fprintf(f, "%s\"%s\": %" PRIu64, e > 1 ? ", " : "", err_names[e], load_stats_errors(s, (enum load_err)e));
    fprintf(f, "}, \"errors_by_protocol\": {");
    for (int p = 0; p < LOAD_NPROTO; p++) {
        fprintf(f, "%s\"%s\": {", p ? ", " : "", proto_names[p]);
        for (int e = 1; e < LERR_COUNT; e++)
            fprintf(f, "%s\"%s\": %" PRIu64, e > 1 ? ", " : "", err_names[e], s->err[p][e]);
        fprintf(f, "}");
    }
    fprintf(f, "}}\n");
}
