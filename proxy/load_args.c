/*
 * Command-line options of `esproxy load` and `esproxy drill`, parsed into
 * struct load_opts, and the credentials file. Every value is checked; a
 * bad one is a usage error (exit 2) naming the option.
 */
#include "proxy/load.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char load_usage_text[] =
    "usage: esproxy load [options] TARGET...\n"
    "\n"
    "Open POP3, IMAP and HTTP sessions against TARGET (IPv4/IPv6 address or\n"
    "host name; several are used in turn) and report per-operation latency.\n"
    "\n"
    "  --mix P[=W],...        protocols and weights (default pop3,imap,http)\n"
    "  --port P=N             port for a protocol (defaults 110/143/80, 995/993/443 with --tls implicit)\n"
    "  -c, --concurrency N    sessions in flight at most (default 8)\n"
    "  --ramp-up S            grow concurrency linearly over S seconds (default 0)\n"
    "  -d, --duration S       start sessions for S seconds (default 10)\n"
    "  -n, --sessions N       start N sessions, then stop (instead of a duration)\n"
    "  -r, --rate R           start R sessions per second at most (default: as slots free)\n"
    "  --timeout MS           deadline of each operation (default 5000)\n"
    "  --tls MODE             none | starttls | implicit (default none)\n"
    "  --ca FILE              verify the server's certificate (default: no verification)\n"
    "  -u, --user U, -p, --password P   one account (default alice / secret123)\n"
    "  --credentials FILE     user:password lines, used in turn\n"
    "  --retr N               POP3: RETR per session (default 1)\n"
    "  --fetch-headers N      IMAP: FETCH headers of the first N messages (default 1)\n"
    "  --fetch-bodies N       IMAP: FETCH bodies of the first N messages (default 1)\n"
    "  --idle MS              IMAP: IDLE for MS before LOGOUT (default 0: no IDLE)\n"
    "  --http REQ,...         HTTP requests per keep-alive connection, GET:/path or\n"
    "                         POST:/path (default GET:/)\n"
    "  --post-bytes N         POST body size (default 1024)\n"
    "  --json                 final summary as JSON on stdout\n"
    "  --progress             live progress line even when stderr is not a terminal\n"
    "  -q, --quiet            no progress line\n";

const char drill_usage_text[] =
    "usage: esproxy drill --action CMD [options] [load options] TARGET...\n"
    "\n"
    "Load TARGET (a frontend), run CMD with /bin/sh at --at, keep loading until\n"
    "recovery plus --tail, and report the timeline in 100 ms buckets.\n"
    "\n"
    "  --action CMD           the failover action (a shell command)\n"
    "  --at S                 when to run it (default 2)\n"
    "  --tail S               keep loading S seconds after recovery (default 2)\n"
    "  --max-wait S           give up waiting for recovery after S seconds (default 10)\n"
    "  --report DIR           write DIR/LABEL.txt, DIR/LABEL.html and every session\n"
    "                         as DIR/LABEL.records.jsonl (default .)\n"
    "  --label NAME           report name (default drill)\n"
    "\n"
    "Load options as for `esproxy load` (default concurrency 8, no duration).\n";

static int set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b ? b : "");
    return LOAD_EXIT_USAGE;
}

static int parse_long(const char *s, long lo, long hi, long *v_r)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *v_r = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *v_r)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return -1;
    *v_r = v;
    return 0;
}

static int parse_proto(const char *s, size_t n)
{
    static const char *const names[LOAD_NPROTO] = { "pop3", "imap", "http" };

    for (int p = 0; p < LOAD_NPROTO; p++)
        if (strlen(names[p]) == n && strncmp(s, names[p], n) == 0)
            return p;
    return -1;
}

static int parse_mix(struct load_opts *o, const char *v)
{
    char buf[256], *save = NULL;

    if (strlen(v) >= sizeof(buf))
        return -1;
    strcpy(buf, v);
    memset(o->weight, 0, sizeof(o->weight));
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        long w = 1;
        int p = parse_proto(t, eq ? (size_t)(eq - t) : strlen(t));

        if (p < 0 || (eq && parse_long(eq + 1, 0, 1000, &w) != 0))
            return -1;
        o->weight[p] = (int)w;
    }
    return o->weight[0] + o->weight[1] + o->weight[2] > 0 ? 0 : -1;
}

static int parse_port(struct load_opts *o, const char *v)
{
    const char *eq = strchr(v, '=');
    long port;
    int p = eq ? parse_proto(v, (size_t)(eq - v)) : -1;

    if (p < 0 || parse_long(eq + 1, 1, 65535, &port) != 0)
        return -1;
    o->port[p] = (int)port;
    return 0;
}

static int parse_reqs(struct load_opts *o, const char *v)
{
    char buf[1024], *save = NULL;

    if (strlen(v) >= sizeof(buf))
        return -1;
    strcpy(buf, v);
    o->n_reqs = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        struct load_http_req *r = &o->reqs[o->n_reqs];
        const char *path;

        if (o->n_reqs >= LOAD_MAX_REQS)
            return -1;
        if (strncmp(t, "GET:", 4) == 0)
            r->post = false, path = t + 4;
        else if (strncmp(t, "POST:", 5) == 0)
            r->post = true, path = t + 5;
        else
            return -1;
        if (path[0] != '/' || strlen(path) >= sizeof(r->path) || strpbrk(path, " \t\r\n") != NULL)
            return -1;
        strcpy(r->path, path);
        o->n_reqs++;
    }
    return o->n_reqs > 0 ? 0 : -1;
}

static int add_cred(struct load_opts *o, const char *user, size_t ulen, const char *pass)
{
    struct load_cred *c = realloc(o->creds, sizeof(*c) * (size_t)(o->n_creds + 1));

    if (c == NULL)
        return -1;
    o->creds = c;
    c[o->n_creds].user = strndup(user, ulen);
    c[o->n_creds].pass = strdup(pass);
    if (c[o->n_creds].user == NULL || c[o->n_creds].pass == NULL)
        return -1;
    o->n_creds++;
    return 0;
}

int load_creds_read(struct load_opts *o, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int lineno = 0, before = o->n_creds;

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *colon;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        colon = strchr(line, ':');
        if (colon == NULL || colon == line || strpbrk(line, " \t") != NULL) {
            snprintf(err, errlen, "%s:%d: expected user:password", path, lineno);
            fclose(f);
            return -1;
        }
        if (add_cred(o, line, (size_t)(colon - line), colon + 1) != 0) {
            snprintf(err, errlen, "out of memory");
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    if (o->n_creds == before) {
        snprintf(err, errlen, "%s: no user:password lines", path);
        return -1;
    }
    return 0;
}

int load_default_port(enum load_proto p, enum load_tls tls)
{
    static const int plain[LOAD_NPROTO] = { 110, 143, 80 }, implicit[LOAD_NPROTO] = { 995, 993, 443 };

    return tls == LOAD_TLS_IMPLICIT ? implicit[p] : plain[p];
}

static void set_defaults(struct load_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->weight[LOAD_POP3] = o->weight[LOAD_IMAP] = o->weight[LOAD_HTTP] = 1;
    o->concurrency = 8;
    o->timeout_ms = 5000;
    o->retr = 1;
    o->fetch_headers = 1;
    o->fetch_bodies = 1;
    o->reqs[0].post = false;
    strcpy(o->reqs[0].path, "/");
    o->n_reqs = 1;
    o->post_bytes = 1024;
    o->action_at_s = 2;
    o->tail_s = 2;
    o->max_wait_s = 10;
    o->report_dir = ".";
    o->label = "drill";
}

/* One option with its value: 0, 1 when not an option of this table, or usage. */
static int parse_valued(struct load_opts *o, const char *name, const char *v, bool drill,
                        const char **user, const char **pass, char *err, size_t errlen)
{
    long n;

#define BAD() set_err(err, errlen, "bad value for %s: '%s'", name, v)
    if (!strcmp(name, "--mix")) { if (parse_mix(o, v)) return BAD(); }
    else if (!strcmp(name, "--port")) { if (parse_port(o, v)) return BAD(); }
    else if (!strcmp(name, "-c") || !strcmp(name, "--concurrency")) {
        if (parse_long(v, 1, 100000, &n)) return BAD();
        o->concurrency = (int)n;
    } else if (!strcmp(name, "--ramp-up")) { if (parse_double(v, 0, 3600, &o->ramp_s)) return BAD(); }
    else if (!strcmp(name, "-d") || !strcmp(name, "--duration")) {
        if (parse_double(v, 0.001, 864000, &o->duration_s)) return BAD();
    } else if (!strcmp(name, "-n") || !strcmp(name, "--sessions")) {
        if (parse_long(v, 1, 1000000000L, &o->sessions)) return BAD();
    } else if (!strcmp(name, "-r") || !strcmp(name, "--rate")) { if (parse_double(v, 0.001, 1e7, &o->rate)) return BAD(); }
    else if (!strcmp(name, "--timeout")) {
        if (parse_long(v, 1, 3600000, &n)) return BAD();
        o->timeout_ms = (int)n;
    } else if (!strcmp(name, "--tls")) {
        if (!strcmp(v, "none")) o->tls = LOAD_TLS_NONE;
        else if (!strcmp(v, "starttls")) o->tls = LOAD_TLS_STARTTLS;
        else if (!strcmp(v, "implicit")) o->tls = LOAD_TLS_IMPLICIT;
        else return BAD();
    } else if (!strcmp(name, "--ca")) o->ca_file = v;
    else if (!strcmp(name, "-u") || !strcmp(name, "--user")) *user = v;
    else if (!strcmp(name, "-p") || !strcmp(name, "--password")) *pass = v;
    else if (!strcmp(name, "--credentials")) {
        if (load_creds_read(o, v, err, errlen)) return LOAD_EXIT_USAGE;
    } else if (!strcmp(name, "--retr")) {
        if (parse_long(v, 0, 100000, &n)) return BAD();
        o->retr = (int)n;
    } else if (!strcmp(name, "--fetch-headers")) {
        if (parse_long(v, 0, 100000, &n)) return BAD();
        o->fetch_headers = (int)n;
    } else if (!strcmp(name, "--fetch-bodies")) {
        if (parse_long(v, 0, 100000, &n)) return BAD();
        o->fetch_bodies = (int)n;
    } else if (!strcmp(name, "--idle")) {
        if (parse_long(v, 0, 3600000, &n)) return BAD();
        o->idle_ms = (int)n;
    } else if (!strcmp(name, "--http")) { if (parse_reqs(o, v)) return BAD(); }
    else if (!strcmp(name, "--post-bytes")) {
        if (parse_long(v, 0, 1L << 30, &n)) return BAD();
        o->post_bytes = (int)n;
    } else if (drill && !strcmp(name, "--action")) o->action = v;
    else if (drill && !strcmp(name, "--at")) { if (parse_double(v, 0, 3600, &o->action_at_s)) return BAD(); }
    else if (drill && !strcmp(name, "--tail")) { if (parse_double(v, 0, 3600, &o->tail_s)) return BAD(); }
    else if (drill && !strcmp(name, "--max-wait")) { if (parse_double(v, 0.1, 3600, &o->max_wait_s)) return BAD(); }
    else if (drill && !strcmp(name, "--report")) o->report_dir = v;
    else if (drill && !strcmp(name, "--label")) {
        if (v[0] == '\0' || strpbrk(v, "/ ") != NULL) return BAD();
        o->label = v;
    } else return 1;
#undef BAD
    return 0;
}

static int add_target(struct load_opts *o, const char *t, char *err, size_t errlen)
{
    if (o->n_targets >= LOAD_MAX_TARGETS)
        return set_err(err, errlen, "at most 16 targets%s%s", "", NULL);
    if (t[0] == '\0' || t[0] == '-' || strlen(t) >= sizeof(o->targets[0]))
        return set_err(err, errlen, "bad target '%s'%s", t, NULL);
    strcpy(o->targets[o->n_targets++], t);
    return 0;
}

static int parse_flag(struct load_opts *o, const char *a)
{
    if (!strcmp(a, "--json")) o->json = true;
    else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = true;
    else if (!strcmp(a, "--progress")) o->progress = true;
    else return 1;
    return 0;
}

int load_args_parse(struct load_opts *o, int argc, char **argv, bool drill, char *err, size_t errlen)
{
    const char *user = "alice", *pass = "secret123";
    int rc;

    set_defaults(o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[64];
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;

        if (a[0] != '-' || a[1] == '\0') {
            if ((rc = add_target(o, a, err, errlen)) != 0)
                return rc;
            continue;
        }
        if (parse_flag(o, a) == 0)
            continue;
        if (eq != NULL && (size_t)(eq - a) < sizeof(name)) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            v = eq + 1;
        } else if (strlen(a) < sizeof(name)) {
            strcpy(name, a);
        } else {
            return set_err(err, errlen, "unknown option '%s'%s", a, NULL);
        }
        if (!strcmp(name, "-t") || !strcmp(name, "--target")) {
            if (v == NULL && (v = i + 1 < argc ? argv[++i] : NULL) == NULL)
                return set_err(err, errlen, "option %s needs a value%s", name, NULL);
            if ((rc = add_target(o, v, err, errlen)) != 0)
                return rc;
            continue;
        }
        if (v == NULL)
            v = i + 1 < argc ? argv[i + 1] : NULL;
        else
            i--;    /* the value was inline: nothing to skip */
        if (v == NULL) {
            if (parse_valued(o, name, "", drill, &user, &pass, err, errlen) == 1)
                return set_err(err, errlen, "unknown option '%s'%s", name, NULL);
            return set_err(err, errlen, "option %s needs a value%s", name, NULL);
        }
        rc = parse_valued(o, name, v, drill, &user, &pass, err, errlen);
        if (rc == 1)
            return set_err(err, errlen, "unknown option '%s'%s", name, NULL);
        if (rc != 0)
            return rc;
        i++;
    }
    if (o->n_targets == 0)
        return set_err(err, errlen, "no target given%s%s", "", NULL);
    if (drill && o->action == NULL)
        return set_err(err, errlen, "drill needs --action CMD%s%s", "", NULL);
    if (!drill && o->sessions == 0 && o->duration_s == 0)
        o->duration_s = 10;
    if (o->n_creds == 0 && add_cred(o, user, strlen(user), pass) != 0)
        return set_err(err, errlen, "out of memory%s%s", "", NULL);
    for (int p = 0; p < LOAD_NPROTO; p++)
        if (o->port[p] == 0)
            o->port[p] = load_default_port((enum load_proto)p, o->tls);
    return 0;
}

void load_opts_free(struct load_opts *o)
{
    for (int i = 0; i < o->n_creds; i++) {
        free(o->creds[i].user);
        free(o->creds[i].pass);
    }
    free(o->creds);
    o->creds = NULL;
    o->n_creds = 0;
}
