/* Shared protocol helpers: action lists, base64 (RFC 4648 §10 vectors), SASL PLAIN (RFC 4616). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "protocols/proto.h"

static void test_base64_rfc4648_vectors_round_trip(void **state)
{
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
    char out[32];
    uint8_t dec[32];

    (void)state;
    for (size_t i = 0; i < 7; i++) {
        proto_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), out, sizeof(out));
        assert_string_equal(out, enc[i]);
        assert_int_equal(proto_base64_decode(enc[i], strlen(enc[i]), dec, sizeof(dec)), (long)strlen(plain[i]));
        assert_memory_equal(dec, plain[i], strlen(plain[i]));
    }
}

static void test_base64_rejects_invalid_input(void **state)
{
    static const char *const bad[] = { "Zg=", "Z===", "Zm9v!A==", "Zg==Zg==", "=Zg=", "Zm 9" };
    uint8_t dec[32];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(proto_base64_decode(bad[i], strlen(bad[i]), dec, sizeof(dec)), -1);
    assert_int_equal(proto_base64_decode("Zm9vYmFy", 8, dec, 3), -1);     /* no room */
}

static void test_sasl_plain_is_parsed_and_checked(void **state)
{
    char user[64], pass[64];

    (void)state;
    assert_int_equal(proto_sasl_plain_parse((const uint8_t *)"\0alice\0secret", 13, user, 64, pass, 64), 0);
    assert_string_equal(user, "alice");
    assert_string_equal(pass, "secret");
    assert_int_equal(proto_sasl_plain_parse((const uint8_t *)"alice\0alice\0pw", 14, user, 64, pass, 64), 0);
    assert_int_equal(proto_sasl_plain_parse((const uint8_t *)"bob\0alice\0pw", 12, user, 64, pass, 64), -1);
    assert_int_equal(proto_sasl_plain_parse((const uint8_t *)"\0alice", 6, user, 64, pass, 64), -1);
    assert_int_equal(proto_sasl_plain_parse((const uint8_t *)"\0\0pw", 4, user, 64, pass, 64), -1);
    assert_int_equal(proto_sasl_plain_parse((const uint8_t *)"\0alice\0", 7, user, 64, pass, 64), -1);
}

static void test_action_list_copies_and_frees(void **state)
{
    struct proto_out o;
    char buf[8] = "+OK\r\n";

    (void)state;
    proto_out_init(&o);
    proto_out_add(&o, PA_REPLY, buf, 5);
    buf[0] = 'X';           /* the action kept its own copy */
    proto_out_printf(&o, PA_UPSTREAM, "USER %s\r\n", "alice");
    proto_out_connect(&o, "alice@example.test");
    assert_int_equal(o.n, 3);
    assert_memory_equal(o.a[0].data, "+OK\r\n", 5);
    assert_int_equal(o.a[1].len, 12);
    assert_string_equal(o.a[2].user, "alice@example.test");
    proto_out_reset(&o);
    assert_int_equal(o.n, 0);
    proto_out_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_rfc4648_vectors_round_trip),
        cmocka_unit_test(test_base64_rejects_invalid_input),
        cmocka_unit_test(test_sasl_plain_is_parsed_and_checked),
        cmocka_unit_test(test_action_list_copies_and_frees),
    };

    return cmocka_run_group_tests_name("proto_util", tests, NULL, NULL);
}
