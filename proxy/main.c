/* esproxy command line: run, check, status, version, help. */
#include "config/config.h"
#include "ipsec/ipsec_log.h"
#include "proxy/control.h"
#include "proxy/load.h"
#include "proxy/log.h"
#include "proxy/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: esproxy <command> [options]\n"
    "\n"
    "Front-end mail proxy that forwards POP3, IMAP and HTTP sessions to a\n"
    "back-end cluster VIP over userspace IPsec (IKEv2, ESP-in-UDP, AES-GCM).\n"
    "\n"
    "commands:\n"
    "  run -c FILE             run the role the configuration names\n"
    "  check -c FILE           validate a configuration; errors as FILE:LINE: message (exit 2)\n"
    "  status [--json | --prometheus] [-c FILE | -s SOCKET]\n"
    "                          show the running process (control socket);\n"
    "                          --prometheus: the metrics that [esproxy] metrics\n"
    "                          serves over HTTP at /metrics\n"
    "  load [options] TARGET...\n"
    "                          POP3/IMAP/HTTP load generator (load --help)\n"
    "  drill --action CMD [options] TARGET...\n"
    "                          failover drill: load, action, timeline report\n"
    "                          (drill --help)\n"
    "  version                 print the version\n"
    "  help                    this text\n"
    "\n"
    "Environment overrides for the common keys (ESPROXY_ROLE, ESPROXY_LOG_LEVEL,\n"
    "ESPROXY_CONTROL, ESPROXY_METRICS, ESPROXY_KEYLOG, ESPROXY_TUNNEL_LOCAL,\n"
    "ESPROXY_TUNNEL_PEER, ESPROXY_TUNNEL_LOCAL_ID, ESPROXY_TUNNEL_PEER_ID,\n"
    "ESPROXY_TUNNEL_PSK_FILE) apply to run and check. See README.md for the\n"
    "configuration reference.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "esproxy: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage_text);
    return EXIT_USAGE;
}

/* Parses "-c FILE" (and --config FILE, -cFILE); other options are errors. */
static int parse_config_opt(int argc, char **argv, const char **path_r)
{
    *path_r = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (i + 1 >= argc)
                return usage_error("option %s needs a file", a);
            *path_r = argv[++i];
        } else if (strncmp(a, "-c", 2) == 0 && a[2] != '\0') {
            *path_r = a + 2;
        } else {
            return usage_error("unexpected argument '%s'", a);
        }
    }
    if (*path_r == NULL)
        return usage_error("%s", "missing -c FILE");
    return 0;
}

static struct config *load_or_report(const char *path)
{
    struct config *cfg = config_load(path, true);

    if (cfg == NULL) {
        fprintf(stderr, "esproxy: out of memory reading %s\n", path);
        return NULL;
    }
    for (int i = 0; i < cfg->n_errors; i++)
        fprintf(stderr, "%s\n", cfg->errors[i].text);
    if (cfg->n_errors > 0) {
        if (cfg->n_errors > 1)  /* one error is one line */
            fprintf(stderr, "esproxy: %d errors in %s\n", cfg->n_errors, path);
        config_free(&cfg);
    }
    return cfg;
}

static int cmd_check(int argc, char **argv)
{
    const char *path;
    struct config *cfg;
    char summary[512];
    int rc = parse_config_opt(argc, argv, &path);

    if (rc != 0)
        return rc;
    cfg = load_or_report(path);
    if (cfg == NULL)
        return EXIT_USAGE;
    config_summary(cfg, summary, sizeof(summary));
    printf("%s\n", summary);
    config_free(&cfg);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *path;
    struct config *cfg;
    int rc = parse_config_opt(argc, argv, &path);

    if (rc != 0)
        return rc;
    /* before the configuration (keys) is read; debug_core_dumps undoes it */
    if ((rc = runtime_core_dumps(false)) != 0) {
        fprintf(stderr, "esproxy: cannot disable core dumps: %s\n", strerror(-rc));
        return 1;
    }
    cfg = load_or_report(path);
    if (cfg == NULL)
        return EXIT_USAGE;
    if (cfg->debug_core_dumps && (rc = runtime_core_dumps(true)) != 0) {
        fprintf(stderr, "esproxy: debug_core_dumps: %s\n", strerror(-rc));
        config_free(&cfg);
        return 1;
    }
    log_init((enum log_level)cfg->log_level, stderr);
    ipsec_log_set_sink(log_ipsec_sink);
    rc = runtime_run(cfg);
    config_free(&cfg);
    return rc;
}

static int cmd_status(int argc, char **argv)
{
    const char *sock = NULL, *path = NULL, *cmd = "status";
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            cmd = "status json";
        } else if (strcmp(argv[i], "--prometheus") == 0) {
            cmd = "metrics";
        } else if ((strcmp(argv[i], "-s") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            if (argv[i][1] == 's')
                sock = argv[++i];
            else
                path = argv[++i];
        } else {
            return usage_error("unexpected argument '%s'", argv[i]);
        }
    }
    if (sock == NULL && path != NULL) {
        struct config *cfg = load_or_report(path);

        if (cfg == NULL)
            return EXIT_USAGE;
        rc = control_request(cfg->control, cmd, stdout);
        config_free(&cfg);
        return rc == 0 ? 0 : 1;
    }
    rc = control_request(sock ? sock : "/run/esproxy/control.sock", cmd, stdout);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (cmd == NULL)
        return usage_error("%s", "no command given");
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2)
            return usage_error("unexpected argument '%s'", argv[2]);
        printf("esproxy %s\n", ESPROXY_VERSION);
        return 0;
    }
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 2, argv + 2);
    if (strcmp(cmd, "load") == 0)
        return load_main(argc - 2, argv + 2);
    if (strcmp(cmd, "drill") == 0)
        return drill_main(argc - 2, argv + 2);
    return usage_error("unknown command '%s'", cmd);
}
