/*
 * Key log (ipsec/keylog.c): Wireshark esp_sa UAT records, file mode 0600,
 * generic records for other tables (IKEv2), and the SA database writing
 * one record per installed SA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipsec/esp_defs.h"
#include "ipsec/keylog.h"
#include "ipsec/sadb.h"

static char dir[64], path[128];

static int tmp_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/esproxy-keylog-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/keys", dir);
    return 0;
}

static int tmp_teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static size_t slurp(char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    return n;
}

static void test_keylog_writes_wireshark_esp_sa_record_mode_0600(void **state)
{
    struct keylog kl;
    struct stat st;
    uint8_t km[20];
    char text[1024];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(km); i++)
        km[i] = (uint8_t)(0xA0 + i);
    assert_int_equal(keylog_open(&kl, path), 0);
    assert_int_equal(keylog_write_esp_sa(&kl, htonl(0x0A630B0Bu), htonl(0x0A630C0Cu),
                                         0xc549ae77u, IPSEC_AEAD_AES_GCM_128, km, 20, false),
                     0);
    keylog_close(&kl);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    slurp(text, sizeof(text));
    assert_string_equal(text,
        "uat:esp_sa:\"IPv4\",\"10.99.11.11\",\"10.99.12.12\",\"0xc549ae77\","
        "\"AES-GCM with 16 octet ICV [RFC4106]\","
        "\"0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3\",\"NULL\",\"\"\n");
}

static void test_keylog_forces_0600_on_existing_file_and_appends(void **state)
{
    struct keylog kl;
    struct stat st;
    char text[256];
    int fd;

    (void)state;
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, 0644), 0);
    assert_int_equal(write(fd, "old\n", 4), 4);
    close(fd);
    assert_int_equal(keylog_open(&kl, path), 0);
    assert_int_equal(keylog_write_record(&kl, "ikev2_decryption_table",
                                         "0123456789abcdef,fedcba9876543210,aa,bb,"
                                         "\"AES-CBC-128 [RFC3602]\",cc,dd,"
                                         "\"HMAC_SHA2_256_128 [RFC4868]\""), 0);
    keylog_close(&kl);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    slurp(text, sizeof(text));
    assert_string_equal(text, "old\nuat:ikev2_decryption_table:0123456789abcdef,"
                              "fedcba9876543210,aa,bb,\"AES-CBC-128 [RFC3602]\",cc,dd,"
                              "\"HMAC_SHA2_256_128 [RFC4868]\"\n");
}

static void test_keylog_refuses_bad_table_names_and_newlines(void **state)
{
    struct keylog kl;

    (void)state;
    assert_int_equal(keylog_open(&kl, path), 0);
    assert_int_equal(keylog_write_record(&kl, "esp sa", "x"), ESP_E_INVAL);
    assert_int_equal(keylog_write_record(&kl, "", "x"), ESP_E_INVAL);
    assert_int_equal(keylog_write_record(&kl, "esp_sa", "x\nuat:evil:y"), ESP_E_INVAL);
    keylog_close(&kl);
    /* O_NOFOLLOW: a symlink planted at the path is not followed. */
    unlink(path);
    assert_int_equal(symlink("/nonexistent-esproxy-target", path), 0);
    assert_int_equal(keylog_open(&kl, path), ESP_E_IO);
}

static void test_keylog_logs_undecodable_sas_as_comments(void **state)
{
    struct keylog kl;
    uint8_t km[36] = { 0 };
    char text[1024];

    (void)state;
    assert_int_equal(keylog_open(&kl, path), 0);
    assert_int_equal(keylog_write_esp_sa(&kl, 1, 2, 0x1000, IPSEC_AEAD_CHACHA20_POLY1305,
                                         km, 36, false), 0);
    assert_int_equal(keylog_write_esp_sa(&kl, 1, 2, 0x1001, IPSEC_AEAD_AES_GCM_256,
                                         km, 36, true), 0);
    assert_int_equal(keylog_write_esp_sa(&kl, 1, 2, 0x1002, IPSEC_AEAD_AES_GCM_256,
                                         km, 20, false), ESP_E_INVAL);
    keylog_close(&kl);
    slurp(text, sizeof(text));
    assert_non_null(strstr(text, "# esp_sa (not decodable"));
    assert_non_null(strstr(text, "# esp_sa esn (not decodable"));
    assert_null(strstr(text, "\nuat:"));
    assert_int_equal(strncmp(text, "# ", 2), 0);
}

static void test_keylog_sadb_logs_each_installed_sa(void **state)
{
    struct esp_sadb db;
    struct keylog kl;
    struct esp_sa_params p;
    uint8_t km[36] = { 7 };
    char text[2048], *line;
    int n = 0;

    (void)state;
    assert_int_equal(keylog_open(&kl, path), 0);
    assert_int_equal(esp_sadb_init(&db, 16), 0);
    esp_sadb_set_keylog(&db, &kl);
    memset(&p, 0, sizeof(p));
    p.alg = IPSEC_AEAD_AES_GCM_256;
    p.keymat = km;
    p.keymat_len = 36;
    p.src = htonl(0x0A000001u);
    p.dst = htonl(0x0A000002u);
    p.spi = 0x11111111u;
    p.dir = ESP_SA_OUT;
    assert_int_equal(esp_sadb_add(&db, &p, NULL), 0);
    p.src = htonl(0x0A000002u);
    p.dst = htonl(0x0A000001u);
    p.spi = 0x22222222u;
    p.dir = ESP_SA_IN;
    assert_int_equal(esp_sadb_add(&db, &p, NULL), 0);
    esp_sadb_free(&db);
    keylog_close(&kl);
    slurp(text, sizeof(text));
    for (line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"), n++)
        assert_int_equal(strncmp(line, "uat:esp_sa:\"IPv4\",", 18), 0);
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keylog_writes_wireshark_esp_sa_record_mode_0600,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_keylog_forces_0600_on_existing_file_and_appends,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_keylog_refuses_bad_table_names_and_newlines,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_keylog_logs_undecodable_sas_as_comments,
                                        tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_keylog_sadb_logs_each_installed_sa,
                                        tmp_setup, tmp_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
