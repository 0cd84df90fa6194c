/*
 * Load generator statistics (proxy/load_stats.c) and the drill timeline
 * (proxy/load_report.c): histogram percentiles against exact ranks, bins,
 * 100 ms bucketing, the outage window and the phase p99s.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/load.h"

#include <stdlib.h>
#include <string.h>

static struct lhist *hist_new(void)
{
    struct lhist *h = calloc(1, sizeof(*h));

    assert_non_null(h);
    return h;
}

static void test_small_values_have_exact_bins(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 64; v++) {
        assert_int_equal(lhist_bin(v), (int)v);
        assert_int_equal(lhist_bin_high((int)v), v);
    }
}

static void test_every_value_falls_inside_its_bin_within_3_percent(void **state)
{
    (void)state;
    for (uint64_t v = 64; v < UINT64_C(1) << 40; v = v * 9 / 8 + 1) {
        int b = lhist_bin(v);
        uint64_t hi = lhist_bin_high(b);

        assert_true(hi >= v);
        assert_true(b == 0 || lhist_bin_high(b - 1) < v);
        assert_true((double)(hi - v) <= 0.032 * (double)v);
    }
    assert_true(lhist_bin(UINT64_MAX) < LHIST_BINS);
}

static void test_percentiles_match_exact_ranks_within_3_percent(void **state)
{
    struct lhist *h = hist_new();

    (void)state;
    for (uint64_t v = 1; v <= 10000; v++)       /* 1..10000 us, uniform */
        lhist_add(h, v);
    assert_int_equal(h->count, 10000);
    assert_int_equal(h->min, 1);
    assert_int_equal(h->max, 10000);
    assert_in_range(lhist_percentile(h, 50), 5000, 5000 * 1.032);
    assert_in_range(lhist_percentile(h, 90), 9000, 9000 * 1.032);
    assert_in_range(lhist_percentile(h, 99), 9900, 10000);
    assert_int_equal(lhist_percentile(h, 100), 10000);
    free(h);
}

static void test_p99_sees_a_one_percent_tail(void **state)
{
    struct lhist *h = hist_new();

    (void)state;
    for (int i = 0; i < 980; i++)
        lhist_add(h, 1000);
    for (int i = 0; i < 20; i++)
        lhist_add(h, 500000);
    assert_in_range(lhist_percentile(h, 50), 1000, 1032);
    assert_in_range(lhist_percentile(h, 99), 500000, 500000);   /* capped at max */
    assert_in_range(lhist_percentile(h, 97), 1000, 1032);
    free(h);
}

static void test_empty_histogram_reports_zero(void **state)
{
    struct lhist *h = hist_new();

    (void)state;
    assert_int_equal(lhist_percentile(h, 50), 0);
    assert_int_equal(lhist_percentile(h, 99), 0);
    free(h);
}

static void test_merge_adds_counts_and_keeps_extremes(void **state)
{
    struct lhist *a = hist_new(), *b = hist_new();

    (void)state;
    lhist_add(a, 10);
    lhist_add(b, 5);
    lhist_add(b, 70000);
    lhist_merge(a, b);
    assert_int_equal(a->count, 3);
    assert_int_equal(a->min, 5);
    assert_int_equal(a->max, 70000);
    assert_int_equal(a->sum, 70015);
    free(a);
    free(b);
}

/* A steady drill: one session ending every 10 ms from 0 to 5 s, 2 ms
 * each; the action at 2000 ms; no success from 2003 to 2400 ms, where
 * three sessions fail (closed), then sessions take 300 ms once. */
static size_t make_drill(struct load_rec *r)
{
    size_t n = 0;

    for (int t = 10; t <= 5000; t += 10) {
        struct load_rec x = { .start_ms = t - 2, .end_ms = t, .proto = LOAD_POP3, .err = LERR_NONE };

        if (t > 2000 && t < 2400)
            continue;
        if (t == 2400)
            x.start_ms = 2100, x.end_ms = 2400;     /* held during the outage */
        r[n++] = x;
    }
    for (int i = 0; i < 3; i++)
        r[n++] = (struct load_rec){ .start_ms = 1999, .end_ms = 2330 + i, .proto = LOAD_IMAP, .err = LERR_CLOSED };
    return n;
}

static void test_drill_buckets_count_by_session_end(void **state)
{
    struct load_rec recs[600];
    size_t n = make_drill(recs);
    struct drill_result r;

    (void)state;
    memset(&r, 0, sizeof(r));
    assert_int_equal(drill_analyze(&r, recs, n, 2000, 100), 0);
    assert_int_equal(r.n_buckets, 51);
    assert_int_equal(r.buckets[5].ok, 10);          /* 500..599 ms */
    assert_int_equal(r.buckets[20].ok, 1);          /* 2000..2099 ms: only the session ending at 2000 */
    assert_int_equal(r.buckets[23].ok, 0);
    assert_int_equal(r.buckets[23].failed, 3);
    assert_int_equal(r.buckets[23].err[LERR_CLOSED], 3);
    assert_int_equal(r.buckets[24].ok, 10);
    assert_true(r.buckets[24].p99_ms >= 299.0);     /* the held session */
    assert_true(r.buckets[5].p99_ms > 1.9 && r.buckets[5].p99_ms < 2.1);
    drill_result_free(&r);
}

static void test_drill_outage_is_the_gap_between_successes(void **state)
{
    struct load_rec recs[600];
    size_t n = make_drill(recs);
    struct drill_result r;

    (void)state;
    memset(&r, 0, sizeof(r));
    assert_int_equal(drill_analyze(&r, recs, n, 2000, 100), 0);
    assert_true(r.outage_start_ms == 2000);
    assert_true(r.outage_end_ms == 2400);
    assert_true(r.first_success_ms == 400);
    assert_int_equal(r.failed_after[LERR_CLOSED], 3);
    assert_int_equal(r.failed, 3);
    assert_true(r.p99_before_ms > 1.9 && r.p99_before_ms < 2.1);
    assert_true(r.p99_during_ms >= 299.0);
    assert_true(r.p99_after_ms > 1.9 && r.p99_after_ms < 2.1);
    drill_result_free(&r);
}

/* The load itself stalled just before the action (a busy host; its tick
 * saw it): sessions begun before the action finish late, after it. That
 * gap is not the outage; the outage ends with the first session begun
 * after the action. */
static void test_drill_outage_ends_with_a_session_begun_after_the_action(void **state)
{
    static const struct drill_stall stall = { 1885, 2345 };
    struct load_rec recs[600];
    size_t n = 0;
    struct drill_result r;

    (void)state;
    for (int t = 10; t <= 5000; t += 10) {
        struct load_rec x = { .start_ms = t - 2, .end_ms = t, .proto = LOAD_HTTP, .err = LERR_NONE };

        if (t > 1890 && t < 2350)       /* the stall: nothing ends from 1890 to 2350 */
            continue;
        if (t >= 2350 && t <= 2500)     /* old sessions (begun before the action) finish */
            x.start_ms = 1880;
        if (t > 2500 && t < 2900)       /* the real outage: new sessions held until 2900 */
            continue;
        if (t == 2900)
            x.start_ms = 2600;
        recs[n++] = x;
    }
    memset(&r, 0, sizeof(r));
    r.load_stalls = &stall;
    r.n_load_stalls = 1;
    assert_int_equal(drill_analyze(&r, recs, n, 2000, 100), 0);
    assert_true(r.outage_start_ms == 2500);
    assert_true(r.outage_end_ms == 2900);
    assert_true(r.first_success_ms == 900);
    drill_result_free(&r);
}

/* Sessions caught by the failover are resumed: they began before the
 * action and are the first to succeed after it, just before the held new
 * sessions. The outage still ends with the first success after the gap,
 * because the load kept starting sessions during it (unlike a stall). */
static void test_drill_outage_closed_by_resumed_sessions(void **state)
{
    struct load_rec recs[700];
    size_t n = 0;
    struct drill_result r;

    (void)state;
    for (int t = 10; t <= 5000; t += 10) {
        struct load_rec x = { .start_ms = t - 2, .end_ms = t, .proto = LOAD_IMAP, .err = LERR_NONE };

        if (t > 2000 && t <= 2330) {    /* held, released after the resumed ones */
            x.start_ms = t;
            x.end_ms = 2340 + t / 100;
        }
        recs[n++] = x;
    }
    for (int i = 0; i < 5; i++)         /* in flight at the action, resumed */
        recs[n++] = (struct load_rec){ .start_ms = 1990, .end_ms = 2300 + i, .proto = LOAD_POP3, .err = LERR_NONE };
    memset(&r, 0, sizeof(r));
    assert_int_equal(drill_analyze(&r, recs, n, 2000, 100), 0);
    assert_true(r.outage_start_ms == 2000);
    assert_true(r.outage_end_ms == 2300);
    assert_true(r.first_success_ms == 300);
    drill_result_free(&r);
}

/* Every client is caught by the failover (12 clients, all in flight at
 * the crash), so none starts a session during the outage; a session
 * resumed through the new SA closes it just before the failed ones free
 * their clients. The load never stalled: the gap is the outage (a CI run
 * on a busy host reported a 19 ms window just before it). */
static void test_drill_outage_with_every_client_caught(void **state)
{
    struct load_rec recs[700];
    size_t n = 0;
    struct drill_result r;

    (void)state;
    for (int t = 10; t <= 2020; t += 10)
        recs[n++] = (struct load_rec){ .start_ms = t - 5, .end_ms = t, .proto = LOAD_HTTP, .err = LERR_NONE };
    recs[n++] = (struct load_rec){ .start_ms = 2015, .end_ms = 2449, .proto = LOAD_POP3, .err = LERR_NONE };
    for (int i = 0; i < 11; i++)
        recs[n++] = (struct load_rec){ .start_ms = 2006 + i, .end_ms = 2450, .proto = LOAD_IMAP, .err = LERR_CLOSED };
    for (int t = 2460; t <= 4000; t += 10)
        recs[n++] = (struct load_rec){ .start_ms = t - 5, .end_ms = t, .proto = LOAD_HTTP, .err = LERR_NONE };
    memset(&r, 0, sizeof(r));
    assert_int_equal(drill_analyze(&r, recs, n, 2001, 100), 0);
    assert_true(r.outage_start_ms == 2020);
    assert_true(r.outage_end_ms == 2449);
    drill_result_free(&r);
}

static void test_drill_without_recovery_has_open_outage(void **state)
{
    struct load_rec recs[300];
    size_t n = 0;
    struct drill_result r;

    (void)state;
    for (int t = 10; t <= 1000; t += 10)
        recs[n++] = (struct load_rec){ .start_ms = t - 1, .end_ms = t, .err = LERR_NONE };
    for (int t = 1100; t <= 3000; t += 100)
        recs[n++] = (struct load_rec){ .start_ms = t - 100, .end_ms = t, .err = LERR_TIMEOUT };
    memset(&r, 0, sizeof(r));
    assert_int_equal(drill_analyze(&r, recs, n, 1000, 100), 0);
    assert_true(r.first_success_ms < 0);
    assert_true(r.outage_end_ms < 0);
    assert_true(r.outage_start_ms == 1000);
    assert_int_equal(r.failed_after[LERR_TIMEOUT], 20);
    drill_result_free(&r);
}

static void test_html_report_is_self_contained_with_every_series(void **state)
{
    struct load_rec recs[600];
    size_t n = make_drill(recs);
    struct drill_result r;
    char *html = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&html, &len);

    (void)state;
    memset(&r, 0, sizeof(r));
    r.label = "unit<test>";
    r.action = "kill -STOP 123";
    assert_int_equal(drill_analyze(&r, recs, n, 2000, 100), 0);
    drill_report_html(&r, f);
    fclose(f);
    assert_non_null(strstr(html, "<svg id=\"timeline\""));
    assert_non_null(strstr(html, "id=\"series-success\""));
    assert_non_null(strstr(html, "id=\"series-errors\""));
    assert_non_null(strstr(html, "id=\"series-p99\""));
    assert_non_null(strstr(html, "id=\"action-marker\""));
    assert_non_null(strstr(html, "id=\"outage-window\""));
    assert_non_null(strstr(html, "unit&lt;test&gt;"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "@font-face"));
    free(html);
    drill_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_values_have_exact_bins),
        cmocka_unit_test(test_every_value_falls_inside_its_bin_within_3_percent),
        cmocka_unit_test(test_percentiles_match_exact_ranks_within_3_percent),
        cmocka_unit_test(test_p99_sees_a_one_percent_tail),
        cmocka_unit_test(test_empty_histogram_reports_zero),
        cmocka_unit_test(test_merge_adds_counts_and_keeps_extremes),
        cmocka_unit_test(test_drill_buckets_count_by_session_end),
        cmocka_unit_test(test_drill_outage_is_the_gap_between_successes),
        cmocka_unit_test(test_drill_outage_ends_with_a_session_begun_after_the_action),
        cmocka_unit_test(test_drill_outage_closed_by_resumed_sessions),
        cmocka_unit_test(test_drill_outage_with_every_client_caught),
        cmocka_unit_test(test_drill_without_recovery_has_open_outage),
        cmocka_unit_test(test_html_report_is_self_contained_with_every_series),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
