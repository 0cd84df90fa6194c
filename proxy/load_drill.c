/*
 * `esproxy drill`: load a frontend, run the failover action with /bin/sh
 * at --at seconds, keep loading until recovery plus --tail, then write the
 * report (DIR/LABEL.txt, DIR/LABEL.html) and print the summary.
 *
 * Recovery, for stopping: a session started after the action succeeded,
 * at least a second has passed since the action, and the last five
 * finished 100 ms buckets each had successes and no failure. Without
 * that within --max-wait of the action the drill ends as not recovered.
 * The report's figures are computed afterwards from every session.
 */
#include "proxy/load_int.h"

#include <stdlib.h>
#include <string.h>

#define BUCKET_MS 100.0
#define CLEAN_BUCKETS 5

struct drill {
    struct load_opts o;
    struct load_run *run;
    uv_loop_t loop;
    uv_process_t proc;
    bool action_started, action_running, recovered;
    double action_ms, action_done_ms, stop_at_ms;
    int action_status;
    bool first_success;
    struct load_rec *recs;
    size_t n_recs, cap_recs;
    uint32_t *ok_b, *fail_b;
    size_t n_b;
    double last_tick_ms;
    struct drill_stall stalls[256];     /* the load's own stalls (the first 256) */
    size_t n_stalls;
};

static int grow_buckets(struct drill *d, size_t b)
{
    size_t n = d->n_b ? d->n_b : 256;
    uint32_t *ok, *fail;

    while (n <= b)
        n *= 2;
    ok = realloc(d->ok_b, n * sizeof(*ok));
    if (ok != NULL)
        d->ok_b = ok;
    fail = realloc(d->fail_b, n * sizeof(*fail));
    if (fail != NULL)
        d->fail_b = fail;
    if (ok == NULL || fail == NULL)
        return -1;
    memset(ok + d->n_b, 0, (n - d->n_b) * sizeof(*ok));
    memset(fail + d->n_b, 0, (n - d->n_b) * sizeof(*fail));
    d->n_b = n;
    return 0;
}

static void drill_session_done(void *arg, const struct load_rec *rec)
{
    struct drill *d = arg;
    size_t b = (size_t)(rec->end_ms / BUCKET_MS);

    if (d->n_recs == d->cap_recs) {
        size_t cap = d->cap_recs ? d->cap_recs * 2 : 4096;
        struct load_rec *p = realloc(d->recs, cap * sizeof(*p));

        if (p == NULL)
            return;
        d->recs = p;
        d->cap_recs = cap;
    }
    d->recs[d->n_recs++] = *rec;
    if (b >= d->n_b && grow_buckets(d, b) != 0)
        return;
    if (rec->err == LERR_NONE)
        d->ok_b[b]++;
    else
        d->fail_b[b]++;
    if (d->action_started && rec->err == LERR_NONE && rec->start_ms >= d->action_ms)
        d->first_success = true;
}

static void drill_on_exit(uv_process_t *p, int64_t status, int sig)
{
    struct drill *d = p->data;

    d->action_running = false;
    d->action_done_ms = load_run_elapsed_ms(d->run);
    d->action_status = sig ? 128 + sig : (int)status;
    uv_close((uv_handle_t *)p, NULL);
}

static void drill_action(struct drill *d)
{
    char *args[] = { "/bin/sh", "-c", (char *)d->o.action, NULL };
    uv_stdio_container_t io[3] = {
        { .flags = UV_IGNORE }, { .flags = UV_INHERIT_FD, .data.fd = 2 }, { .flags = UV_INHERIT_FD, .data.fd = 2 },
    };
    uv_process_options_t po = {
        .exit_cb = drill_on_exit, .file = "/bin/sh", .args = args, .stdio_count = 3, .stdio = io,
    };
    int rc;

    d->action_started = true;
    d->action_ms = load_run_elapsed_ms(d->run);
    d->proc.data = d;
    rc = uv_spawn(&d->loop, &d->proc, &po);
    if (rc != 0) {
        fprintf(stderr, "esproxy drill: cannot run the action: %s\n", uv_strerror(rc));
        d->action_status = 127;
        d->action_done_ms = d->action_ms;
        return;
    }
    d->action_running = true;
}

static bool drill_clean(const struct drill *d, double now_ms)
{
    size_t cur = (size_t)(now_ms / BUCKET_MS);

    if (cur < CLEAN_BUCKETS || cur > d->n_b)
        return false;
    for (size_t b = cur - CLEAN_BUCKETS; b < cur; b++)
        if (d->ok_b[b] == 0 || d->fail_b[b] != 0)
            return false;
    return true;
}

static void drill_tick(void *arg)
{
    struct drill *d = arg;
    double now = load_run_elapsed_ms(d->run);

    if (d->last_tick_ms > 0 && now - d->last_tick_ms >= DRILL_LOAD_STALL_MS &&
        d->n_stalls < sizeof(d->stalls) / sizeof(d->stalls[0]))
        d->stalls[d->n_stalls++] = (struct drill_stall){ d->last_tick_ms, now };
    d->last_tick_ms = now;
    if (!d->action_started) {
        if (now >= d->o.action_at_s * 1000.0)
            drill_action(d);
        return;
    }
    if (d->stop_at_ms < 0) {
        if (d->first_success && now - d->action_ms >= 1000.0 && drill_clean(d, now)) {
            d->recovered = true;
            d->stop_at_ms = now + d->o.tail_s * 1000.0;
        } else if (now - d->action_ms >= d->o.max_wait_s * 1000.0) {
            d->stop_at_ms = now;
        }
    }
    if (d->stop_at_ms >= 0 && now >= d->stop_at_ms)
        load_run_stop(d->run);
}

static int drill_write(const struct drill_result *r, const char *dir, const char *label, bool html)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.%s", dir, label, html ? "html" : "txt");
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    if (html)
        drill_report_html(r, f);
    else
        drill_report_text(r, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* DIR/LABEL.records.jsonl: every finished session, wall-clock ms, so the
 * outage window can be checked against other tools' own data. */
static int drill_write_records(const struct drill *d, int64_t wall0)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.records.jsonl", d->o.report_dir, d->o.label);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    for (size_t i = 0; i < d->n_recs; i++) {
        const struct load_rec *r = &d->recs[i];

        fprintf(f, "{\"proto\": \"%s\", \"start\": %.3f, \"end\": %.3f, \"ok\": %s, \"err\": \"%s\"}\n",
                load_proto_name((enum load_proto)r->proto), (double)wall0 + r->start_ms, (double)wall0 + r->end_ms,
                r->err == LERR_NONE ? "true" : "false", r->err == LERR_NONE ? "" : load_err_name((enum load_err)r->err));
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int drill_report(struct drill *d)
{
    struct drill_result r;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    r.wall_start_ms = load_run_wall_start_ms(d->run);
    r.label = d->o.label;
    r.action = d->o.action;
    r.action_status = d->action_running ? -1 : d->action_status;
    r.action_done_ms = d->action_running ? -1 : d->action_done_ms;
    r.load_stalls = d->stalls;
    r.n_load_stalls = d->n_stalls;
    if (drill_analyze(&r, d->recs, d->n_recs, d->action_ms, BUCKET_MS) != 0)
        return -1;
    drill_report_text(&r, stdout);
    if (drill_write(&r, d->o.report_dir, d->o.label, false) != 0 ||
        drill_write(&r, d->o.report_dir, d->o.label, true) != 0 ||
        drill_write_records(d, r.wall_start_ms) != 0)
        rc = -1;
    else
        printf("report: %s/%s.txt %s/%s.html\n", d->o.report_dir, d->o.label, d->o.report_dir, d->o.label);
    drill_result_free(&r);
    return rc;
}

int drill_main(int argc, char **argv)
{
    struct drill *d = calloc(1, sizeof(*d));
    struct load_run_hooks hooks = { .session_done = drill_session_done, .tick = drill_tick };
    char err[256];
    int rc;

    if (d == NULL)
        return 1;
    if (argc == 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        fputs(drill_usage_text, stdout);
        free(d);
        return 0;
    }
    rc = load_args_parse(&d->o, argc, argv, true, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "esproxy drill: %s\n\n%s", err, drill_usage_text);
        goto done;
    }
    d->stop_at_ms = -1;
    hooks.arg = d;
    uv_loop_init(&d->loop);
    d->run = load_run_new(&d->loop, &d->o, &hooks);
    if (d->run == NULL || load_resolve_and_init(d->run, err, sizeof(err)) != 0) {
        fprintf(stderr, "esproxy drill: %s\n", d->run ? err : "out of memory");
        rc = 1;
    } else {
        load_run_start(d->run);
        uv_run(&d->loop, UV_RUN_DEFAULT);
        if (!d->o.quiet && !d->o.json && d->o.progress)
            load_stats_print(load_run_stats(d->run), load_run_elapsed_ms(d->run) / 1000.0, stderr);
        rc = drill_report(d) != 0 ? 1 : d->recovered ? 0 : 1;
    }
    load_run_free(&d->run);
    uv_loop_close(&d->loop);
    load_tls_free();
done:
    load_opts_free(&d->o);
    free(d->recs);
    free(d->ok_b);
    free(d->fail_b);
    free(d);
    return rc;
}
