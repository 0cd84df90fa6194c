/* Configuration loader: values, errors with FILE:LINE, env overrides, secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char tmpdir[] = "/tmp/esproxy-test-config-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

static struct config *load_text(const char *text)
{
    struct config *cfg = config_load(write_file("t.ini", text), false);

    assert_non_null(cfg);
    return cfg;
}

/* Asserts that some error reads exactly "<tmpdir>/t.ini:<suffix>". */
static void assert_error(const struct config *cfg, const char *suffix)
{
    char want[512];

    snprintf(want, sizeof(want), "%s/t.ini:%s", tmpdir, suffix);
    for (int i = 0; i < cfg->n_errors; i++)
        if (strcmp(cfg->errors[i].text, want) == 0)
            return;
    for (int i = 0; i < cfg->n_errors; i++)
        print_message("  got: %s\n", cfg->errors[i].text);
    fail_msg("missing error: %s", want);
}

#define FE_HEAD "[esproxy]\nrole = frontend\n"
#define TUNNEL  "[tunnel main]\nlocal = 10.99.2.10\npeer = 10.99.2.100\nlocal_id = fe.test\n" \
                "peer_id = mail.test\npsk = 0123456789abcdef\n"
#define LISTEN  "[listen imap]\naddress = 127.0.0.1:1143\nprotocol = imap\n"

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_sample_configs_are_valid(void **state)
{
    const char *files[] = { "config/frontend.ini", "config/backend.ini" };

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        struct config *cfg = config_load(files[i], false);

        assert_non_null(cfg);
        for (int e = 0; e < cfg->n_errors; e++)
            print_message("%s\n", cfg->errors[e].text);
        assert_int_equal(cfg->n_errors, 0);
        config_free(&cfg);
        assert_null(cfg);
    }
}

static void test_valid_frontend_values_are_parsed(void **state)
{
    struct config *cfg = load_text(FE_HEAD "log_level = debug\n" TUNNEL
                                   "protected_ports = 110, 143\nesp_proposals = aes256gcm16-esn,chacha20poly1305\n"
                                   LISTEN "[listen pop]\naddress = 0.0.0.0:1110\nprotocol = pop3\nbackend_port = 2110\n"
                                   "output_buffer = 65536\n");
    const struct cfg_tunnel *t;

    (void)state;
    assert_int_equal(cfg->n_errors, 0);
    assert_int_equal(cfg->role, CFG_ROLE_FRONTEND);
    assert_int_equal(cfg->log_level, CFG_LOG_DEBUG);
    t = &cfg->tunnels[0];
    assert_string_equal(t->name, "main");
    assert_int_equal(t->peer.s_addr, inet_addr("10.99.2.100"));
    assert_int_equal(t->psk.len, 16);
    assert_memory_equal(t->psk.bytes, "0123456789abcdef", 16);
    assert_int_equal(t->n_ports, 2);
    assert_int_equal(t->ports[1], 143);
    assert_int_equal(t->n_esp, 2);
    assert_int_equal(t->esp[0].key_bits, 256);
    assert_int_equal(t->esp[0].esn, CFG_ESN_YES);
    assert_int_equal(t->esp[1].encr, CFG_ENCR_CHACHA20_POLY1305);
    assert_int_equal(t->n_ike, 1);          /* the default proposal */
    assert_int_equal(t->ike[0].dh[0], CFG_DH_X25519);
    assert_int_equal(t->udp_port, 4500);
    assert_int_equal(t->dead_after_ms, 300);
    assert_int_equal(cfg->n_listeners, 2);
    assert_string_equal(cfg->listeners[0].tunnel, "main");   /* the only tunnel */
    assert_int_equal(cfg->listeners[0].backend_port, 143);   /* protocol default */
    assert_int_equal(cfg->listeners[1].backend_port, 2110);
    assert_int_equal(cfg->listeners[0].output_buffer, 256 * 1024);  /* default: chan's watermark */
    assert_int_equal(cfg->listeners[1].output_buffer, 65536);
    config_free(&cfg);
}

static void test_unknown_section_and_key_are_reported_at_their_line(void **state)
{
    struct config *cfg = load_text(FE_HEAD "colour = blue\n" TUNNEL LISTEN "[mystery]\n");

    (void)state;
    assert_error(cfg, "3: unknown key 'colour' in [esproxy]");
    assert_error(cfg, "13: unknown section [mystery]");
    config_free(&cfg);
}

static void test_missing_required_key_is_reported_at_section_header(void **state)
{
    struct config *cfg = load_text(FE_HEAD "[tunnel main]\nlocal = 10.99.2.10\npsk = xyzxyzxyz\n" LISTEN);

    (void)state;
    assert_error(cfg, "3: [tunnel main]: missing required key 'peer'");
    assert_error(cfg, "3: [tunnel main]: missing required key 'local_id'");
    assert_error(cfg, "3: [tunnel main]: missing required key 'peer_id'");
    config_free(&cfg);
}

static void test_missing_role_is_reported(void **state)
{
    struct config *cfg = load_text("[esproxy]\nlog_level = info\n");
    char want[300];

    (void)state;
    snprintf(want, sizeof(want), "%s/t.ini: missing required key 'role' in [esproxy] (frontend or backend)", tmpdir);
    assert_true(cfg->n_errors >= 1);
    assert_string_equal(cfg->errors[0].text, want);
    config_free(&cfg);
}

static void test_bad_addresses_and_ports_are_reported(void **state)
{
    struct config *cfg = load_text(FE_HEAD "[tunnel main]\nlocal = 10.99.2.256\npeer = vip\nlocal_id = a\n"
                                   "peer_id = b\npsk = abcdefgh\nprotected_ports = 110,70000\n"
                                   "[listen a]\naddress = 127.0.0.1\nprotocol = imap\n"
                                   "[listen b]\naddress = 127.0.0.1:0\nprotocol = imap\n");

    (void)state;
    assert_error(cfg, "4: local: bad IPv4 address '10.99.2.256'");
    assert_error(cfg, "5: peer: bad IPv4 address 'vip' (or: any)");
    assert_error(cfg, "9: protected_ports: bad port '70000' in port list (1..65535)");
    assert_error(cfg, "11: address: '127.0.0.1' is not ADDRESS:PORT");
    assert_error(cfg, "14: address: bad port '0' (1..65535)");
    config_free(&cfg);
}

static void test_numbers_out_of_range_are_reported(void **state)
{
    struct config *cfg = load_text(FE_HEAD TUNNEL "dead_after_ms = 5\nprobe_interval_ms = 1e3\nmtu = 100000\n" LISTEN);

    (void)state;
    assert_error(cfg, "9: dead_after_ms: '5' is not a number in 10..600000");
    assert_error(cfg, "10: probe_interval_ms: '1e3' is not a number in 10..600000");
    assert_error(cfg, "11: mtu: '100000' is not a number in 576..9000");
    config_free(&cfg);
    cfg = load_text(FE_HEAD TUNNEL LISTEN "output_buffer = 1024\n");
    assert_error(cfg, "12: output_buffer: '1024' is not a number in 16384..16777216");
    config_free(&cfg);
}

static void test_duplicate_listener_port_is_reported(void **state)
{
    struct config *cfg = load_text(FE_HEAD TUNNEL LISTEN "[listen again]\naddress = 0.0.0.0:1143\nprotocol = pop3\n");

    (void)state;
    assert_error(cfg, "12: listener port 1143 already used by [listen imap] at line 9");
    config_free(&cfg);
}

static void test_unreadable_files_are_reported(void **state)
{
    struct config *cfg = load_text(FE_HEAD "[tunnel main]\nlocal = 10.99.2.10\npeer = 10.99.2.100\n"
                                   "local_id = a\npeer_id = b\npsk_file = /nonexistent/psk\n" LISTEN
                                   "tls = implicit\ncert = /nonexistent/c.pem\nkey = k.pem\n");
    char want[512];

    (void)state;
    assert_error(cfg, "8: psk_file: '/nonexistent/psk': cannot read: No such file or directory");
    assert_error(cfg, "13: cert: '/nonexistent/c.pem': cannot read: No such file or directory");
    snprintf(want, sizeof(want), "14: key: '%s/k.pem': cannot read: No such file or directory", tmpdir);
    assert_error(cfg, want);    /* relative to the config file's folder */
    config_free(&cfg);
}

static void test_role_specific_sections_and_keys_are_rejected(void **state)
{
    struct config *fe = load_text(FE_HEAD TUNNEL LISTEN "[forward]\n143 = 127.0.0.1:143\n");
    struct config *be;

    (void)state;
    assert_error(fe, "12: [forward] is only valid with role = backend (role is frontend)");
    config_free(&fe);
    be = load_text("[esproxy]\nrole = backend\n" TUNNEL "[forward]\n143 = 127.0.0.1:143\n" LISTEN "[routing]\n");
    assert_error(be, "11: [listen imap] is only valid with role = frontend (role is backend)");
    assert_error(be, "14: [routing] is only valid with role = frontend (role is backend)");
    config_free(&be);
    fe = load_text(FE_HEAD "[tunnel main]\nlocal = 10.99.2.10\npeer = any\nlocal_id = a\npeer_id = b\npsk = abcdefgh\n" LISTEN);
    assert_error(fe, "5: peer = any is only valid with role = backend: a frontend needs the VIP address");
    config_free(&fe);
}

static void test_backend_forwards_are_parsed(void **state)
{
    struct config *cfg = load_text("[esproxy]\nrole = backend\n[tunnel t]\nlocal = 10.99.2.100\npeer = any\n"
                                   "local_id = mail\npeer_id = fe\npsk = abcdefgh\n"
                                   "[forward]\n143 = 127.0.0.1:1143\nproxy_protocol = v2\n110 = 127.0.0.1:1110\n"
                                   "143 = 127.0.0.1:9\nsmtp = 127.0.0.1:25\n");

    (void)state;
    assert_int_equal(cfg->n_forwards, 2);
    assert_int_equal(cfg->forwards[0].port, 143);
    assert_int_equal(ntohs(cfg->forwards[0].target.sin_port), 1143);
    assert_int_equal(cfg->proxy_protocol, CFG_PROXY_PROTOCOL_V2);
    assert_true(cfg->tunnels[0].peer_any);
    assert_error(cfg, "13: port 143 forwarded twice (first at line 10)");
    assert_error(cfg, "14: unknown key 'smtp' in [forward] (a port number or proxy_protocol)");
    config_free(&cfg);
}

static void test_duplicate_keys_and_sections_are_reported(void **state)
{
    struct config *cfg = load_text(FE_HEAD "role = backend\n" TUNNEL LISTEN "[tunnel main]\n");

    (void)state;
    assert_error(cfg, "3: duplicate key 'role' (first at line 2)");
    assert_error(cfg, "13: duplicate section [tunnel main] (first at line 4)");
    config_free(&cfg);
}

static void test_syntax_errors_and_long_lines_are_reported(void **state)
{
    char text[1024];
    struct config *cfg;

    (void)state;
    snprintf(text, sizeof(text), FE_HEAD TUNNEL LISTEN "this line has no equals sign\nkeylog = /tmp/%0250d\n", 0);
    cfg = load_text(text);
    assert_error(cfg, "12: syntax error: expected [section], key = value, or a comment");
    assert_error(cfg, "13: line too long (at most 198 characters)");
    config_free(&cfg);
}

static void test_proposal_strings_are_validated(void **state)
{
    struct cfg_proposal p[CFG_MAX_PROPOSALS];
    char err[256];
    int n;

    (void)state;
    assert_int_equal(config_proposals_parse("aes128-sha256-modp2048,aes256gcm16-prfsha384-ecp256-x25519",
                                            true, p, CFG_MAX_PROPOSALS, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_int_equal(p[0].encr, CFG_ENCR_AES_CBC);
    assert_int_equal(p[0].prf, CFG_PRF_SHA256);     /* implied by sha256 */
    assert_int_equal(p[1].n_dh, 2);
    assert_int_equal(config_proposals_parse("aes128gcm16-x25519", true, p, CFG_MAX_PROPOSALS, &n, err,
                                            sizeof(err)), -1);
    assert_string_equal(err, "an AEAD IKE proposal needs a PRF (prfsha256 or prfsha384)");
    assert_int_equal(config_proposals_parse("aes128gcm16-prfsha256", true, p, 8, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "IKE proposal needs a DH group (x25519, ecp256 or modp2048)");
    assert_int_equal(config_proposals_parse("aes128-sha256", false, p, 8, &n, err, sizeof(err)), -1);
    assert_int_equal(config_proposals_parse("3des", false, p, 8, &n, err, sizeof(err)), -1);
    assert_string_equal(err, "unknown algorithm '3des'");
    assert_int_equal(config_proposals_parse("", false, p, 8, &n, err, sizeof(err)), -1);
}

static void test_secrets_never_appear_in_errors(void **state)
{
    struct config *cfg;
    const char *pskfile = write_file("psk", "0xZZtopsecret\n");
    char text[1024];

    (void)state;
    snprintf(text, sizeof(text), FE_HEAD "[tunnel a]\nlocal = 10.99.2.10\npeer = 10.99.2.100\nlocal_id = x\n"
             "peer_id = y\npsk = 0xhunter2hunter2\n[tunnel b]\nlocal = 10.99.2.10\npeer = 10.99.2.100\n"
             "local_id = x\npeer_id = y\npsk_file = %s\n" LISTEN "tunnel = a\n", pskfile);
    cfg = load_text(text);
    assert_true(cfg->n_errors >= 2);
    assert_error(cfg, "8: psk: hex secret contains a non-hex digit");
    for (int i = 0; i < cfg->n_errors; i++) {
        assert_null(strstr(cfg->errors[i].text, "hunter2"));
        assert_null(strstr(cfg->errors[i].text, "topsecret"));
    }
    config_free(&cfg);
}

static void test_psk_file_trailing_newline_is_ignored(void **state)
{
    const char *pskfile = write_file("psk2", "s3cret-value\n");
    char text[1024];
    struct config *cfg;

    (void)state;
    snprintf(text, sizeof(text), FE_HEAD "[tunnel main]\nlocal = 10.99.2.10\npeer = 10.99.2.100\n"
             "local_id = x\npeer_id = y\npsk_file = %s\n" LISTEN, pskfile);
    cfg = load_text(text);
    assert_int_equal(cfg->n_errors, 0);
    assert_int_equal(cfg->tunnels[0].psk.len, 12);
    assert_memory_equal(cfg->tunnels[0].psk.bytes, "s3cret-value", 12);
    config_free(&cfg);
}

static void test_environment_overrides_replace_file_values(void **state)
{
    struct config *cfg;
    char want[512];
    const char *path = write_file("t.ini", FE_HEAD TUNNEL LISTEN);

    (void)state;
    setenv("ESPROXY_TUNNEL_PEER", "10.99.2.200", 1);
    setenv("ESPROXY_LOG_LEVEL", "debug", 1);
    cfg = config_load(path, true);
    assert_int_equal(cfg->n_errors, 0);
    assert_int_equal(cfg->tunnels[0].peer.s_addr, inet_addr("10.99.2.200"));
    assert_int_equal(cfg->log_level, CFG_LOG_DEBUG);
    config_free(&cfg);

    cfg = config_load(path, false);     /* not applied when not asked */
    assert_int_equal(cfg->tunnels[0].peer.s_addr, inet_addr("10.99.2.100"));
    config_free(&cfg);

    setenv("ESPROXY_TUNNEL_PEER", "nowhere", 1);
    cfg = config_load(path, true);
    snprintf(want, sizeof(want), "%s: environment ESPROXY_TUNNEL_PEER: peer: bad IPv4 address 'nowhere' (or: any)", path);
    assert_int_equal(cfg->n_errors, 1);
    assert_string_equal(cfg->errors[0].text, want);
    config_free(&cfg);
    unsetenv("ESPROXY_TUNNEL_PEER");
    unsetenv("ESPROXY_LOG_LEVEL");
}

static void test_routing_map_is_read_and_errors_name_the_map_file(void **state)
{
    char map[256], text[1024], want[512];
    struct config *cfg;

    (void)state;
    snprintf(map, sizeof(map), "%s", write_file("users.map", "# users\nalice main\n@example.test main # domain\n"
                                                             "bob nowhere\njust-one-word\nalice main\n\n"));
    snprintf(text, sizeof(text), FE_HEAD TUNNEL LISTEN "[routing]\nmap = %s\n", map);
    cfg = load_text(text);
    assert_int_equal(cfg->n_routes, 2);
    assert_string_equal(cfg->routes[0].key, "alice");
    assert_string_equal(cfg->routes[1].key, "@example.test");
    assert_int_equal(cfg->routes[1].tunnel, 0);
    assert_int_equal(cfg->n_errors, 3);
    snprintf(want, sizeof(want), "%s:4: no [tunnel nowhere] section", map);
    assert_string_equal(cfg->errors[0].text, want);
    snprintf(want, sizeof(want), "%s:5: expected `USER TUNNEL` or `@DOMAIN TUNNEL`", map);
    assert_string_equal(cfg->errors[1].text, want);
    snprintf(want, sizeof(want), "%s:6: 'alice' is mapped twice", map);
    assert_string_equal(cfg->errors[2].text, want);
    config_free(&cfg);
}

static void test_missing_file_is_reported(void **state)
{
    struct config *cfg = config_load("/nonexistent/esproxy.ini", false);

    (void)state;
    assert_int_equal(cfg->n_errors, 1);
    assert_string_equal(cfg->errors[0].text, "/nonexistent/esproxy.ini: cannot open: No such file or directory");
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_configs_are_valid),
        cmocka_unit_test(test_valid_frontend_values_are_parsed),
        cmocka_unit_test(test_unknown_section_and_key_are_reported_at_their_line),
        cmocka_unit_test(test_missing_required_key_is_reported_at_section_header),
        cmocka_unit_test(test_missing_role_is_reported),
        cmocka_unit_test(test_bad_addresses_and_ports_are_reported),
        cmocka_unit_test(test_numbers_out_of_range_are_reported),
        cmocka_unit_test(test_duplicate_listener_port_is_reported),
        cmocka_unit_test(test_unreadable_files_are_reported),
        cmocka_unit_test(test_role_specific_sections_and_keys_are_rejected),
        cmocka_unit_test(test_backend_forwards_are_parsed),
        cmocka_unit_test(test_duplicate_keys_and_sections_are_reported),
        cmocka_unit_test(test_syntax_errors_and_long_lines_are_reported),
        cmocka_unit_test(test_proposal_strings_are_validated),
        cmocka_unit_test(test_secrets_never_appear_in_errors),
        cmocka_unit_test(test_psk_file_trailing_newline_is_ignored),
        cmocka_unit_test(test_environment_overrides_replace_file_values),
        cmocka_unit_test(test_routing_map_is_read_and_errors_name_the_map_file),
        cmocka_unit_test(test_missing_file_is_reported),
    };

    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
