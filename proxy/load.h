/*
 * `esproxy load` and `esproxy drill`: a libuv load generator for POP3,
 * IMAP and HTTP sessions, and a failover drill built on it.
 *
 * Files, one concern each:
 *   load_args.c    command-line options into struct load_opts, credentials
 *   load_stats.c   latency histograms, per-operation counters, percentiles
 *   load_conn.c    one session's socket: libuv TCP, mbedTLS client, timers
 *   load_pop3.c    POP3 client dialogue   (login, STAT, RETR n, QUIT)
 *   load_imap.c    IMAP client dialogue   (login, SELECT, FETCH, IDLE, LOGOUT)
 *   load_http.c    HTTP/1.1 client        (GET/POST with keep-alive, llhttp)
 *   load.c         scheduler: concurrency, ramp-up, rate, progress, summary
 *   load_drill.c   drill: load + action command + recovery detection
 *   load_report.c  drill timeline: 100 ms buckets, outage, text and HTML/SVG
 *
 * Error kinds: every failed session is counted once, under the kind of its
 * first failure. connect: TCP connect refused, unreachable or not done in
 * time; tls: handshake failed; auth: the server refused the credentials
 * (POP3 -ERR to USER/PASS, IMAP NO to LOGIN, HTTP 401/403); protocol: any
 * other unexpected or negative reply; timeout: no reply within --timeout;
 * closed: the server closed or reset the connection, or said BYE, before
 * the dialogue ended, or refused the login for a temporary reason of its
 * own (POP3 [SYS/TEMP] or [IN-USE], IMAP [UNAVAILABLE] or [INUSE]).
 */
#ifndef ESPROXY_LOAD_H
#define ESPROXY_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LOAD_EXIT_USAGE 2
#define LOAD_MAX_TARGETS 16
#define LOAD_MAX_REQS 16

enum load_proto { LOAD_POP3, LOAD_IMAP, LOAD_HTTP, LOAD_NPROTO };

enum load_err {
    LERR_NONE,
    LERR_CONNECT,
    LERR_TLS,
    LERR_AUTH,
    LERR_PROTOCOL,
    LERR_TIMEOUT,
    LERR_CLOSED,
    LERR_COUNT
};

enum load_op {
    LOP_POP3_SESSION, LOP_IMAP_SESSION, LOP_HTTP_SESSION,
    LOP_CONNECT, LOP_TLS,
    LOP_POP3_LOGIN, LOP_POP3_STAT, LOP_POP3_RETR, LOP_POP3_QUIT,
    LOP_IMAP_LOGIN, LOP_IMAP_SELECT, LOP_IMAP_FETCH_HEADERS, LOP_IMAP_FETCH_BODIES,
    LOP_IMAP_IDLE, LOP_IMAP_LOGOUT,
    LOP_HTTP_GET, LOP_HTTP_POST,
    LOP_COUNT
};

enum load_tls { LOAD_TLS_NONE, LOAD_TLS_STARTTLS, LOAD_TLS_IMPLICIT };

struct load_cred {
    char *user;
    char *pass;
};

struct load_http_req {
    bool post;
    char path[128];
};

struct load_opts {
    char targets[LOAD_MAX_TARGETS][64];     /* host names or IPv4 literals */
    int n_targets;
    int port[LOAD_NPROTO];                  /* 0: the protocol's default */
    int weight[LOAD_NPROTO];                /* protocol mix */
    int concurrency;
    double ramp_s;
    double duration_s;                      /* 0: until --sessions */
    long sessions;                          /* 0: until --duration */
    double rate;                            /* sessions/s; 0: as fast as slots free */
    int timeout_ms;
    enum load_tls tls;
    const char *ca_file;                    /* verify the server; NULL: no verification */
    struct load_cred *creds;                /* owned */
    int n_creds;
    int retr;                               /* POP3 RETR per session */
    int fetch_headers;                      /* IMAP: messages whose headers are fetched */
    int fetch_bodies;                       /* IMAP: messages whose bodies are fetched */
    int idle_ms;                            /* IMAP IDLE time; 0: no IDLE */
    struct load_http_req reqs[LOAD_MAX_REQS];   /* per HTTP connection, in order */
    int n_reqs;
    int post_bytes;
    bool json;
    bool quiet;
    bool progress;                          /* forced on (--progress) */
    /* drill */
    const char *action;
    double action_at_s;
    double tail_s;
    double max_wait_s;
    const char *report_dir;
    const char *label;
};

/* load_args.c: 0 ok, or LOAD_EXIT_USAGE with a message in err. drill
 * enables the drill options. Defaults are set first. */
int load_args_parse(struct load_opts *o, int argc, char **argv, bool drill, char *err, size_t errlen);
void load_opts_free(struct load_opts *o);
/* Reads user:password lines ('#' comments); 0, or -1 with err. */
int load_creds_read(struct load_opts *o, const char *path, char *err, size_t errlen);
int load_default_port(enum load_proto p, enum load_tls tls);
extern const char load_usage_text[];
extern const char drill_usage_text[];

/* ---- load_stats.c ---- */
#define LHIST_SUB 32
#define LHIST_BINS (64 + 35 * LHIST_SUB)

struct lhist {
    uint64_t count, sum, max, min;
    uint32_t bins[LHIST_BINS];
};

void lhist_add(struct lhist *h, uint64_t v_us);
/* The value at percentile p (0..100): the upper edge of its bin, at most max. */
uint64_t lhist_percentile(const struct lhist *h, double p);
void lhist_merge(struct lhist *dst, const struct lhist *src);
int lhist_bin(uint64_t v);
uint64_t lhist_bin_high(int bin);

struct load_stats {
    struct lhist op[LOP_COUNT];             /* latencies of successful operations */
    uint64_t op_failed[LOP_COUNT];
    uint64_t err[LOAD_NPROTO][LERR_COUNT];
    uint64_t started, ok, failed;
    struct lhist window;                    /* sessions finished since the last progress line */
};

const char *load_op_name(enum load_op op);
const char *load_err_name(enum load_err e);
const char *load_proto_name(enum load_proto p);
uint64_t load_stats_errors(const struct load_stats *s, enum load_err e);
void load_stats_print(const struct load_stats *s, double elapsed_s, FILE *f);
void load_stats_json(const struct load_stats *s, double elapsed_s, FILE *f);

/* ---- load_report.c: drill timeline ---- */
struct load_rec {               /* one finished session; times in ms since the run started */
    double start_ms, end_ms;
    uint8_t proto;
    uint8_t err;                /* enum load_err; LERR_NONE: success */
};

struct load_bucket {
    uint32_t ok, failed;
    uint32_t err[LERR_COUNT];
    double p99_ms;              /* sessions that ended in the bucket; 0 when none */
};

struct drill_result {
    double bucket_ms;
    int n_buckets;
    struct load_bucket *buckets;    /* owned */
    double action_ms, action_done_ms;   /* since the run started */
    int action_status;
    double outage_start_ms, outage_end_ms;  /* longest gap between successes around the action; -1: none */
    double first_success_ms;        /* after the action: first success of a session started after it; -1 */
    uint64_t failed_after[LERR_COUNT];  /* sessions that ended failed after the action */
    uint64_t sessions, ok, failed;
    double p99_before_ms, p99_during_ms, p99_after_ms;
    int64_t wall_start_ms;          /* epoch ms of the run start */
    const char *label, *action;
    /* input: when the load's own event loop did not run (its 10 ms tick
     * came late), [from, to] ms since the run started */
    const struct drill_stall *load_stalls;
    size_t n_load_stalls;
};

struct drill_stall {
    double from_ms, to_ms;
};
#define DRILL_LOAD_STALL_MS 50.0    /* a tick this late is a stall of the load itself */

int drill_analyze(struct drill_result *r, const struct load_rec *recs, size_t n,
                  double action_ms, double bucket_ms);
void drill_result_free(struct drill_result *r);
void drill_report_text(const struct drill_result *r, FILE *f);
void drill_report_html(const struct drill_result *r, FILE *f);

/* ---- entry points (main.c) ---- */
int load_main(int argc, char **argv);
int drill_main(int argc, char **argv);

#endif
