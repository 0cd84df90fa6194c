/*
 * Drill report: from the finished sessions of a drill, the 100 ms buckets
 * (successes, failures by kind, p99 of the sessions ending in each), the
 * outage window and the phase percentiles; then the text summary and a
 * self-contained HTML page with an inline SVG timeline (no scripts, no
 * external fonts or files).
 *
 * The outage window is measured from the data: among the gaps between
 * two consecutive successful session ends that close after the action,
 * open no later than 1 s after the action command ended, and are not a
 * stall of the load itself, the first one at least half as long as the
 * longest (both edges are real session ends; an action takes effect some
 * time after it starts, so the window may open after it). A gap is a
 * stall of the load when the load started no session during it and its
 * own event loop did not run for at least half of it (load_stalls: its
 * old sessions then all end at once after it). Starts alone do not tell:
 * when every client is caught in a session the failover holds, none is
 * free to start one, and a resumed session may close the window before
 * the failed ones free their clients.
 * Time to first success: from the action to the end of that window.
 */
#include "proxy/load.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OUTAGE_OPENS_MS 1000.0  /* an outage opens within this of the action's end */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank p99 of v[0..n) (sorted in place); 0 when n is 0. */
static double p99(double *v, size_t n)
{
    size_t rank;

    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    rank = (size_t)(0.99 * (double)n + 0.999999);
    return v[(rank ? rank : 1) - 1];
}

static int fill_buckets(struct drill_result *r, const struct load_rec *recs, size_t n)
{
    double *lat;
    size_t *cnt;
    size_t *off;
    double max_end = 0;

    for (size_t i = 0; i < n; i++)
        if (recs[i].end_ms > max_end)
            max_end = recs[i].end_ms;
    r->n_buckets = (int)(max_end / r->bucket_ms) + 1;
    r->buckets = calloc((size_t)r->n_buckets, sizeof(*r->buckets));
    cnt = calloc((size_t)r->n_buckets + 1, sizeof(*cnt));
    off = calloc((size_t)r->n_buckets + 1, sizeof(*off));
    lat = malloc((n ? n : 1) * sizeof(*lat));
    if (r->buckets == NULL || cnt == NULL || off == NULL || lat == NULL) {
        free(cnt), free(off), free(lat);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int b = (int)(recs[i].end_ms / r->bucket_ms);
        struct load_bucket *k = &r->buckets[b];

        if (recs[i].err == LERR_NONE) {
            k->ok++;
            cnt[b + 1]++;
        } else {
            k->failed++;
            k->err[recs[i].err < LERR_COUNT ? recs[i].err : LERR_PROTOCOL]++;
        }
    }
    for (int b = 0; b < r->n_buckets; b++)
        off[b + 1] = off[b] + cnt[b + 1];
    memset(cnt, 0, sizeof(*cnt) * ((size_t)r->n_buckets + 1));
    for (size_t i = 0; i < n; i++) {
        int b = (int)(recs[i].end_ms / r->bucket_ms);

        if (recs[i].err == LERR_NONE)
            lat[off[b] + cnt[b]++] = recs[i].end_ms - recs[i].start_ms;
    }
    for (int b = 0; b < r->n_buckets; b++)
        r->buckets[b].p99_ms = p99(lat + off[b], off[b + 1] - off[b]);
    free(cnt), free(off), free(lat);
    return 0;
}

/* Did a session start strictly inside (a, b)? starts[0..n) is sorted. */
static bool started_within(const double *starts, size_t n, double a, double b)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {       /* first start > a */
        size_t mid = lo + (hi - lo) / 2;

        if (starts[mid] <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && starts[lo] < b;
}

/* The gap (a, b) is a stall of the load itself: no session started in it
 * and the load's loop stood still for at least half of it. */
static bool load_stall_gap(const struct drill_result *r, const double *starts, size_t n, double a, double b)
{
    double still = 0;

    if (started_within(starts, n, a, b))
        return false;
    for (size_t i = 0; i < r->n_load_stalls; i++) {
        double from = r->load_stalls[i].from_ms > a ? r->load_stalls[i].from_ms : a;
        double to = r->load_stalls[i].to_ms < b ? r->load_stalls[i].to_ms : b;

        if (to > from)
            still += to - from;
    }
    return still >= (b - a) / 2;
}

static void find_outage(struct drill_result *r, const struct load_rec *recs, size_t n)
{
    double *ends = malloc((n ? n : 1) * sizeof(*ends)), *starts = malloc((n ? n : 1) * sizeof(*starts));
    double best = -1, last_before = -1;
    double open_by = (r->action_done_ms > r->action_ms ? r->action_done_ms : r->action_ms) + OUTAGE_OPENS_MS;
    size_t m = 0;

    r->outage_start_ms = r->outage_end_ms = r->first_success_ms = -1;
    if (ends == NULL || starts == NULL) {
        free(ends), free(starts);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        starts[i] = recs[i].start_ms;
        if (recs[i].err == LERR_NONE)
            ends[m++] = recs[i].end_ms;
    }
    qsort(ends, m, sizeof(*ends), cmp_double);
    qsort(starts, n, sizeof(*starts), cmp_double);
#define OUTAGE_GAP_OK(i) (ends[(i) - 1] <= open_by && !load_stall_gap(r, starts, n, ends[(i) - 1], ends[i]))
    for (size_t i = 0; i < m; i++) {
        if (ends[i] <= r->action_ms)
            last_before = ends[i];
        else if (i > 0 && ends[i] - ends[i - 1] > best && OUTAGE_GAP_OK(i))
            best = ends[i] - ends[i - 1];
    }
    /* the first gap after the action at least half the longest: a short
     * outage is not displaced by a later stall of similar size */
    for (size_t i = 1; i < m && best > 0; i++) {
        if (ends[i] > r->action_ms && ends[i] - ends[i - 1] >= best / 2 && OUTAGE_GAP_OK(i)) {
            r->outage_start_ms = ends[i - 1];
            r->outage_end_ms = ends[i];
            break;
        }
    }
#undef OUTAGE_GAP_OK
    if (r->outage_end_ms < 0)           /* no success after the action: open window */
        r->outage_start_ms = last_before >= 0 ? last_before : r->action_ms;
    else
        r->first_success_ms = r->outage_end_ms - r->action_ms;
    free(ends), free(starts);
}

static void phase_p99(struct drill_result *r, const struct load_rec *recs, size_t n)
{
    double *v[3];
    size_t m[3] = { 0, 0, 0 };
    double from = r->outage_start_ms >= 0 ? r->outage_start_ms : r->action_ms;
    double to = r->outage_end_ms >= 0 ? r->outage_end_ms : 1e300;

    for (int k = 0; k < 3; k++)
        v[k] = malloc((n ? n : 1) * sizeof(double));
    if (v[0] && v[1] && v[2]) {
        for (size_t i = 0; i < n; i++) {
            int k = recs[i].end_ms < from ? 0 : recs[i].end_ms <= to ? 1 : 2;

            if (recs[i].err == LERR_NONE)
                v[k][m[k]++] = recs[i].end_ms - recs[i].start_ms;
        }
        r->p99_before_ms = p99(v[0], m[0]);
        r->p99_during_ms = p99(v[1], m[1]);
        r->p99_after_ms = p99(v[2], m[2]);
    }
    for (int k = 0; k < 3; k++)
        free(v[k]);
}

int drill_analyze(struct drill_result *r, const struct load_rec *recs, size_t n,
                  double action_ms, double bucket_ms)
{
    r->bucket_ms = bucket_ms > 0 ? bucket_ms : 100;
    r->action_ms = action_ms;
    r->sessions = n;
    r->ok = r->failed = 0;
    memset(r->failed_after, 0, sizeof(r->failed_after));
    for (size_t i = 0; i < n; i++) {
        if (recs[i].err == LERR_NONE) {
            r->ok++;
        } else {
            r->failed++;
            if (recs[i].end_ms >= action_ms)
                r->failed_after[recs[i].err < LERR_COUNT ? recs[i].err : LERR_PROTOCOL]++;
        }
    }
    if (fill_buckets(r, recs, n) != 0)
        return -1;
    find_outage(r, recs, n);
    phase_p99(r, recs, n);
    return 0;
}

void drill_result_free(struct drill_result *r)
{
    free(r->buckets);
    r->buckets = NULL;
    r->n_buckets = 0;
}

static void fmt_epoch(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;

    gmtime_r(&t, &tm);
    n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03d UTC", (int)(ms % 1000));
}

void drill_report_text(const struct drill_result *r, FILE *f)
{
    char when[64];
    int64_t act = r->wall_start_ms + (int64_t)r->action_ms;
    uint64_t failed_after = 0;

    for (int e = 1; e < LERR_COUNT; e++)
        failed_after += r->failed_after[e];

    fmt_epoch(act, when, sizeof(when));
    fprintf(f, "drill %s: action at %s (%.0f ms into the run)\n", r->label ? r->label : "drill", when, r->action_ms);
    fprintf(f, "  action: %s (exit %d after %.0f ms)\n", r->action ? r->action : "-", r->action_status,
            r->action_done_ms >= 0 ? r->action_done_ms - r->action_ms : -1.0);
    if (r->outage_end_ms >= 0)
        fprintf(f, "  outage window: %.0f ms, from %+.0f to %+.0f ms around the action (gap between successes)\n",
                r->outage_end_ms - r->outage_start_ms, r->outage_start_ms - r->action_ms, r->outage_end_ms - r->action_ms);
    else
        fprintf(f, "  outage window: no recovery (last success %+.0f ms around the action)\n",
                r->outage_start_ms - r->action_ms);
    if (r->first_success_ms >= 0)
        fprintf(f, "  time to first success: %.0f ms after the action (end of the outage)\n", r->first_success_ms);
    else
        fprintf(f, "  time to first success: none\n");
    fprintf(f, "  sessions: %" PRIu64 " (ok %" PRIu64 ", failed %" PRIu64 "); failed after the action:",
            r->sessions, r->ok, r->failed);
    for (int e = 1; e < LERR_COUNT; e++)
        fprintf(f, " %s %" PRIu64 "%s", load_err_name((enum load_err)e), r->failed_after[e], e + 1 < LERR_COUNT ? "," : "\n");
    fprintf(f, "  p99 session latency: before %.1f ms, during %.1f ms, after %.1f ms\n",
            r->p99_before_ms, r->p99_during_ms, r->p99_after_ms);
    if (r->n_load_stalls > 0) {
        double longest = 0;

        for (size_t i = 0; i < r->n_load_stalls; i++)
            if (r->load_stalls[i].to_ms - r->load_stalls[i].from_ms > longest)
                longest = r->load_stalls[i].to_ms - r->load_stalls[i].from_ms;
        fprintf(f, "  the load itself stalled %zu times (longest %.0f ms): a busy host; such gaps are not outages\n",
                r->n_load_stalls, longest);
    }
    fprintf(f, "figures: action_epoch_ms=%" PRId64 " outage_ms=%.0f outage_start_epoch_ms=%" PRId64
            " outage_end_epoch_ms=%" PRId64 " first_success_ms=%.0f failed_after=%" PRIu64 " p99_before_ms=%.1f"
            " p99_during_ms=%.1f p99_after_ms=%.1f\n",
            act, r->outage_end_ms >= 0 ? r->outage_end_ms - r->outage_start_ms : -1.0,
            r->wall_start_ms + (int64_t)r->outage_start_ms,
            r->outage_end_ms >= 0 ? r->wall_start_ms + (int64_t)r->outage_end_ms : -1,
            r->first_success_ms, failed_after,
            r->p99_before_ms, r->p99_during_ms, r->p99_after_ms);
}
