/*
 * `esproxy load` / `esproxy drill` options (proxy/load_args.c): defaults,
 * every option, the credentials file, and bad values as usage errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse(struct load_opts *o, bool drill, const char *line)
{
    char buf[1024], *argv[64], *save = NULL, err[256];
    int argc = 0, rc;

    strcpy(buf, line);
    for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    rc = load_args_parse(o, argc, argv, drill, err, sizeof(err));
    return rc;
}

static void test_defaults_with_one_target(void **state)
{
    struct load_opts o;

    (void)state;
    assert_int_equal(parse(&o, false, "10.0.0.1"), 0);
    assert_int_equal(o.n_targets, 1);
    assert_string_equal(o.targets[0], "10.0.0.1");
    assert_int_equal(o.concurrency, 8);
    assert_true(o.duration_s == 10);
    assert_int_equal(o.port[LOAD_POP3], 110);
    assert_int_equal(o.port[LOAD_IMAP], 143);
    assert_int_equal(o.port[LOAD_HTTP], 80);
    assert_int_equal(o.n_creds, 1);
    assert_string_equal(o.creds[0].user, "alice");
    assert_int_equal(o.weight[LOAD_POP3] + o.weight[LOAD_IMAP] + o.weight[LOAD_HTTP], 3);
    load_opts_free(&o);
}

static void test_every_option_is_parsed(void **state)
{
    struct load_opts o;

    (void)state;
    assert_int_equal(parse(&o, false, "-c 32 --ramp-up=1.5 -n 500 -r 250 --timeout 900 --tls implicit "
                                      "--mix pop3=3,http --port http=8443 -u bob -p pw --retr 2 --fetch-headers 5 "
                                      "--fetch-bodies 0 --idle 250 --http GET:/a,POST:/b --post-bytes 10 --json -q "
                                      "-t h1 h2"), 0);
    assert_int_equal(o.concurrency, 32);
    assert_true(o.ramp_s == 1.5);
    assert_int_equal(o.sessions, 500);
    assert_true(o.duration_s == 0);
    assert_true(o.rate == 250);
    assert_int_equal(o.timeout_ms, 900);
    assert_int_equal(o.tls, LOAD_TLS_IMPLICIT);
    assert_int_equal(o.weight[LOAD_POP3], 3);
    assert_int_equal(o.weight[LOAD_IMAP], 0);
    assert_int_equal(o.weight[LOAD_HTTP], 1);
    assert_int_equal(o.port[LOAD_HTTP], 8443);
    assert_int_equal(o.port[LOAD_POP3], 995);
    assert_int_equal(o.port[LOAD_IMAP], 993);
    assert_string_equal(o.creds[0].user, "bob");
    assert_string_equal(o.creds[0].pass, "pw");
    assert_int_equal(o.retr, 2);
    assert_int_equal(o.fetch_headers, 5);
    assert_int_equal(o.fetch_bodies, 0);
    assert_int_equal(o.idle_ms, 250);
    assert_int_equal(o.n_reqs, 2);
    assert_false(o.reqs[0].post);
    assert_string_equal(o.reqs[0].path, "/a");
    assert_true(o.reqs[1].post);
    assert_int_equal(o.post_bytes, 10);
    assert_true(o.json);
    assert_true(o.quiet);
    assert_int_equal(o.n_targets, 2);
    assert_string_equal(o.targets[1], "h2");
    load_opts_free(&o);
}

static void test_bad_values_are_usage_errors(void **state)
{
    static const char *const bad[] = {
        "", "-c 0 h", "-c x h", "--concurrency", "--rate -1 h", "--tls maybe h", "--mix smtp h",
        "--mix pop3=0 h", "--port pop3=70000 h", "--port ftp=21 h", "--http PUT:/x h", "--http GET:noslash h",
        "--duration 0 h", "--wat h", "-n 1.5 h", "--timeout 0 h", "--credentials /nonexistent/creds h",
    };
    struct load_opts o;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(&o, false, bad[i]);

        if (rc != LOAD_EXIT_USAGE)
            fail_msg("'%s' gave %d", bad[i], rc);
        load_opts_free(&o);
    }
}

static void test_drill_options_need_drill_and_an_action(void **state)
{
    struct load_opts o;

    (void)state;
    assert_int_equal(parse(&o, false, "--action true h"), LOAD_EXIT_USAGE);
    load_opts_free(&o);
    assert_int_equal(parse(&o, true, "h"), LOAD_EXIT_USAGE);
    load_opts_free(&o);
    assert_int_equal(parse(&o, true, "--action=true --at 1.5 --tail 3 --max-wait 8 --report /tmp --label crash h"), 0);
    assert_string_equal(o.action, "true");
    assert_true(o.action_at_s == 1.5 && o.tail_s == 3 && o.max_wait_s == 8);
    assert_string_equal(o.label, "crash");
    assert_true(o.duration_s == 0 && o.sessions == 0);      /* a drill runs until recovery */
    load_opts_free(&o);
    assert_int_equal(parse(&o, true, "--action true --label a/b h"), LOAD_EXIT_USAGE);
    load_opts_free(&o);
}

static void test_credentials_file_skips_comments_and_rejects_bad_lines(void **state)
{
    char path[] = "/tmp/test_load_args_XXXXXX", err[256];
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    struct load_opts o;

    (void)state;
    fputs("# users\nu1:p1\n\nu2:p:with:colons\r\n", f);
    fclose(f);
    memset(&o, 0, sizeof(o));
    assert_int_equal(load_creds_read(&o, path, err, sizeof(err)), 0);
    assert_int_equal(o.n_creds, 2);
    assert_string_equal(o.creds[1].user, "u2");
    assert_string_equal(o.creds[1].pass, "p:with:colons");
    load_opts_free(&o);
    f = fopen(path, "w");
    fputs("u1:p1\nno-colon\n", f);
    fclose(f);
    assert_int_equal(load_creds_read(&o, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":2:"));
    load_opts_free(&o);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_with_one_target),
        cmocka_unit_test(test_every_option_is_parsed),
        cmocka_unit_test(test_bad_values_are_usage_errors),
        cmocka_unit_test(test_drill_options_need_drill_and_an_action),
        cmocka_unit_test(test_credentials_file_skips_comments_and_rejects_bad_lines),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
