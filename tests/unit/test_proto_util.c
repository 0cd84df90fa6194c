/* Shared protocol helpers: action lists, base64 (RFC 4648 §10 vectors), SASL PLAIN (RFC 4616). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "protocols/proto.h"
#include "proxy/chan_internal.h"

static unsigned freed_blocks, freed_dirty;
static size_t freed_last_cap;

static void observe_free(const void *p, size_t cap)
{
    const uint8_t *b = p;

    freed_blocks++;
    freed_last_cap = cap;
    for (size_t i = 0; i < cap; i++)
        freed_dirty += b[i] != 0;
}

static void test_secure_grow_scrubs_the_old_block_and_keeps_the_bytes(void **state)
{
    static const char secret[] = "PASS hunter2\r\n";
    uint8_t *p = malloc(16), *q;

    (void)state;
    assert_non_null(p);
    memcpy(p, secret, sizeof(secret) - 1);
    freed_blocks = freed_dirty = 0;
    proto_secure_set_free_observer(observe_free);
    q = proto_secure_grow(p, 16, sizeof(secret) - 1, 64);
    assert_non_null(q);
    assert_int_equal(freed_blocks, 1);      /* the old block, whole, zero before free */
    assert_int_equal(freed_last_cap, 16);
    assert_memory_equal(q, secret, sizeof(secret) - 1);
    proto_secure_free(q, 64);
    proto_secure_free(NULL, 64);
    assert_int_equal(freed_blocks, 2);
    assert_int_equal(freed_last_cap, 64);
    assert_int_equal(freed_dirty, 0);
    proto_secure_set_free_observer(NULL);
}

/* The client channel's buffers (input held while a client is paused, TLS
 * records, output) hold credentials too: growing, consuming and freeing
 * leave no copy behind. */
static void test_channel_buffers_leave_no_copy_behind(void **state)
{
    static const char secret[] = "a LOGIN alice hunter2\r\n";     /* 23 bytes */
    struct chan_buf b = { 0 };

    (void)state;
    freed_blocks = freed_dirty = 0;
    proto_secure_set_free_observer(observe_free);
    for (int i = 0; i < 20; i++)            /* 460 bytes: grows 256 -> 512 */
        assert_int_equal(chan_buf_append(&b, secret, sizeof(secret) - 1), 0);
    assert_int_equal(freed_blocks, 1);      /* the 256-byte block, scrubbed */
    chan_buf_consume(&b, 400);
    assert_int_equal(b.off, 400);
    for (size_t i = 0; i < 400; i++)        /* the consumed bytes' place */
        freed_dirty += b.p[i] != 0;
    assert_int_equal(chan_buf_append(&b, secret, sizeof(secret) - 1), 0);
    assert_int_equal(chan_buf_append(&b, secret, sizeof(secret) - 1), 0);
    for (int i = 0; i < 20; i++)            /* moved to the front, then grown */
        assert_int_equal(chan_buf_append(&b, secret, sizeof(secret) - 1), 0);
    /* no stale copy past the bytes (fresh memory there is not zeroed) */
    assert_null(memmem(b.p + b.off + b.len, b.cap - b.off - b.len, "hunter2", 7));
    assert_null(memmem(b.p, b.off, "hunter2", 7));
    chan_buf_consume(&b, b.len);            /* empty: freed */
    assert_null(b.p);
    assert_int_equal(freed_dirty, 0);
    proto_secure_set_free_observer(NULL);
}

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
        cmocka_unit_test(test_channel_buffers_leave_no_copy_behind),
        cmocka_unit_test(test_base64_rfc4648_vectors_round_trip),
        cmocka_unit_test(test_base64_rejects_invalid_input),
        cmocka_unit_test(test_sasl_plain_is_parsed_and_checked),
        cmocka_unit_test(test_action_list_copies_and_frees),
        cmocka_unit_test(test_secure_grow_scrubs_the_old_block_and_keeps_the_bytes),
    };

    return cmocka_run_group_tests_name("proto_util", tests, NULL, NULL);
}
