/*
 * The load runner: starts sessions on one libuv loop within the limits
 * (concurrency, ramp-up, rate, duration or session count), picks protocol
 * (smooth weighted round robin), target and credentials in turn, keeps the
 * statistics and prints the live progress line; and `esproxy load` itself.
 *
 * Scheduling: a 10 ms tick and every session end top the sessions up. With
 * a rate, session k may start once k / rate seconds have passed, so a
 * stall is followed by a catch-up burst (the offered load is kept, no
 * coordinated omission). Ramp-up grows the allowed concurrency linearly.
 */
#include "proxy/load_int.h"

#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

struct load_run {
    uv_loop_t *loop;
    const struct load_opts *o;
    struct load_run_hooks hooks;
    struct sockaddr_storage addr[LOAD_NPROTO][LOAD_MAX_TARGETS];
    uv_timer_t tick;
    uint64_t t0_us, last_progress_us;
    int64_t wall0_ms;
    long started;
    int inflight;
    bool stopping, closed, progress, tty;
    int next_target, next_cred[LOAD_NPROTO];
    int wrr[LOAD_NPROTO];
    struct load_stats stats;
};

uint64_t load_now_us(void)
{
    return uv_hrtime() / 1000;
}

static int64_t wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

const struct load_opts *load_run_opts(const struct load_run *r) { return r->o; }
uv_loop_t *load_run_loop(struct load_run *r) { return r->loop; }
struct load_stats *load_run_stats(struct load_run *r) { return &r->stats; }
int64_t load_run_wall_start_ms(const struct load_run *r) { return r->wall0_ms; }

double load_run_elapsed_ms(const struct load_run *r)
{
    return (double)(load_now_us() - r->t0_us) / 1000.0;
}

static int resolve(struct load_run *r, char *err, size_t errlen)
{
    for (int t = 0; t < r->o->n_targets; t++) {
        for (int p = 0; p < LOAD_NPROTO; p++) {
            struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
            char port[8];
            int rc;

            snprintf(port, sizeof(port), "%d", r->o->port[p]);
            rc = getaddrinfo(r->o->targets[t], port, &hints, &ai);
            if (rc != 0) {
                snprintf(err, errlen, "%s: %s", r->o->targets[t], gai_strerror(rc));
                return -1;
            }
            memcpy(&r->addr[p][t], ai->ai_addr, ai->ai_addrlen);
            freeaddrinfo(ai);
        }
    }
    return 0;
}

/* Smooth weighted round robin (nginx's): an even interleaving of the mix. */
static enum load_proto pick_proto(struct load_run *r)
{
    int total = 0, best = -1;

    for (int p = 0; p < LOAD_NPROTO; p++) {
        r->wrr[p] += r->o->weight[p];
        total += r->o->weight[p];
        if (r->o->weight[p] > 0 && (best < 0 || r->wrr[p] > r->wrr[best]))
            best = p;
    }
    r->wrr[best] -= total;
    return (enum load_proto)best;
}

static void start_one(struct load_run *r)
{
    struct lsess *s = calloc(1, sizeof(*s));
    int t;

    if (s == NULL) {
        load_run_stop(r);
        return;
    }
    s->run = r;
    s->proto = pick_proto(r);
    t = r->next_target++ % r->o->n_targets;
    s->host = r->o->targets[t];
    s->cred = &r->o->creds[r->next_cred[s->proto]++ % r->o->n_creds];   /* every protocol sees every user */
    r->started++;
    r->stats.started++;
    r->inflight++;
    lsess_start(s, (const struct sockaddr *)&r->addr[s->proto][t]);
}

static void fill(struct load_run *r)
{
    const struct load_opts *o = r->o;
    double el = load_run_elapsed_ms(r) / 1000.0;
    int allowed = o->concurrency;

    if (r->stopping)
        return;
    if ((o->duration_s > 0 && el >= o->duration_s) || (o->sessions > 0 && r->started >= o->sessions)) {
        load_run_stop(r);
        return;
    }
    if (o->ramp_s > 0 && el < o->ramp_s)
        allowed = (int)ceil(o->concurrency * el / o->ramp_s);
    if (allowed < 1)
        allowed = 1;
    while (r->inflight < allowed && (o->sessions == 0 || r->started < o->sessions) &&
           (o->rate == 0 || (double)r->started < el * o->rate + 1))
        start_one(r);
}

static void progress_line(struct load_run *r, bool final)
{
    uint64_t now = load_now_us();
    double el = (double)(now - r->t0_us) / 1e6, dt = (double)(now - r->last_progress_us) / 1e6;
    struct lhist *w = &r->stats.window;

    if (!r->progress)
        return;
    if (final) {
        if (r->tty)
            fputs("\r\033[K", stderr);
        return;
    }
    fprintf(stderr, "%s%6.1f s  %8.1f sess/s  in flight %4d  errors %6llu  p50 %7.2f ms  p99 %7.2f ms%s",
            r->tty ? "\r\033[K" : "", el, dt > 0 ? (double)w->count / dt : 0.0, r->inflight,
            (unsigned long long)r->stats.failed, (double)lhist_percentile(w, 50) / 1000.0,
            (double)lhist_percentile(w, 99) / 1000.0, r->tty ? "" : "\n");
    fflush(stderr);
    memset(w, 0, sizeof(*w));
    r->last_progress_us = now;
}

static void on_tick_closed(uv_handle_t *h)
{
    struct load_run *r = h->data;

    if (r->hooks.done)
        r->hooks.done(r->hooks.arg);
}

static void maybe_done(struct load_run *r)
{
    if (!r->stopping || r->inflight > 0 || r->closed)
        return;
    r->closed = true;
    progress_line(r, true);
    uv_close((uv_handle_t *)&r->tick, on_tick_closed);
}

static void on_tick(uv_timer_t *t)
{
    struct load_run *r = t->data;

    fill(r);
    if (load_now_us() - r->last_progress_us >= 1000000)
        progress_line(r, false);
    if (r->hooks.tick)
        r->hooks.tick(r->hooks.arg);
    maybe_done(r);
}

void load_run_session_end(struct load_run *r, struct lsess *s)
{
    struct load_rec rec = {
        .start_ms = (double)(s->t_start - r->t0_us) / 1000.0,
        .end_ms = load_run_elapsed_ms(r),
        .proto = (uint8_t)s->proto,
        .err = (uint8_t)s->err,
    };

    r->inflight--;
    if (s->err == LERR_NONE) {
        r->stats.ok++;
        lhist_add(&r->stats.window, load_now_us() - s->t_start);
    } else {
        r->stats.failed++;
        r->stats.err[s->proto][s->err]++;
    }
    free(s);
    if (r->hooks.session_done)
        r->hooks.session_done(r->hooks.arg, &rec);
    fill(r);
    maybe_done(r);
}

struct load_run *load_run_new(uv_loop_t *loop, const struct load_opts *o, const struct load_run_hooks *hooks)
{
    struct load_run *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->loop = loop;
    r->o = o;
    if (hooks)
        r->hooks = *hooks;
    r->tty = isatty(2);
    r->progress = !o->quiet && (o->progress || r->tty);
    return r;
}

int load_run_start(struct load_run *r)
{
    r->t0_us = r->last_progress_us = load_now_us();
    r->wall0_ms = wall_ms();
    uv_timer_init(r->loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, on_tick, 10, 10);
    fill(r);
    return 0;
}

void load_run_stop(struct load_run *r)
{
    r->stopping = true;
}

void load_run_free(struct load_run **r)
{
    free(*r);
    *r = NULL;
}

/* ---- esproxy load ---- */

struct load_main_ctx {
    struct load_run *run;
    uv_signal_t sigint;
};

static void load_on_sigint(uv_signal_t *h, int sig)
{
    struct load_main_ctx *c = h->data;

    (void)sig;
    load_run_stop(c->run);
}

static void load_on_done(void *arg)
{
    struct load_main_ctx *c = arg;

    uv_close((uv_handle_t *)&c->sigint, NULL);
}

int load_resolve_and_init(struct load_run *r, char *err, size_t errlen)
{
    if (resolve(r, err, errlen) != 0)
        return -1;
    return load_tls_init(r->o, err, errlen);
}

int load_main(int argc, char **argv)
{
    struct load_opts o;
    struct load_main_ctx c;
    struct load_run_hooks hooks = { .done = load_on_done, .arg = &c };
    char err[256];
    uv_loop_t loop;
    double el;
    int rc;

    if (argc == 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        fputs(load_usage_text, stdout);
        return 0;
    }
    rc = load_args_parse(&o, argc, argv, false, err, sizeof(err));

    if (rc != 0) {
        fprintf(stderr, "esproxy load: %s\n\n%s", err, load_usage_text);
        load_opts_free(&o);
        return LOAD_EXIT_USAGE;
    }
    uv_loop_init(&loop);
    c.run = load_run_new(&loop, &o, &hooks);
    if (c.run == NULL || load_resolve_and_init(c.run, err, sizeof(err)) != 0) {
        fprintf(stderr, "esproxy load: %s\n", c.run ? err : "out of memory");
        rc = 1;
        goto done;
    }
    uv_signal_init(&loop, &c.sigint);
    c.sigint.data = &c;
    uv_signal_start(&c.sigint, load_on_sigint, SIGINT);
    load_run_start(c.run);
    uv_run(&loop, UV_RUN_DEFAULT);
    el = load_run_elapsed_ms(c.run) / 1000.0;
    if (o.json)
        load_stats_json(&c.run->stats, el, stdout);
    else
        load_stats_print(&c.run->stats, el, stdout);
    rc = c.run->stats.ok > 0 ? 0 : 1;
done:
    load_run_free(&c.run);
    uv_loop_close(&loop);
    load_tls_free();
    load_opts_free(&o);
    return rc;
}
