/* IMAP4 front-end state machine: pre-auth dialogue, login to the back-end, splice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/imap.h"

#define GREETING_CLEAR "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED] esproxy ready\r\n"
#define BACKEND_HELLO "* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE] Dovecot ready.\r\n"
#define BACKEND_HELLO_LITPLUS "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID] Dovecot ready.\r\n"
#define POSTLOGIN_CAPS "CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE SORT THREAD=REFS MOVE"

/* A tiny proxy: keeps unconsumed bytes of both directions, offers them
 * again, and writes every action into a transcript string. */
struct drv {
    struct imap_session *s;
    struct proto_out o;
    char cbuf[200000], ubuf[8192];
    size_t clen, ulen;
    char t[65536];      /* transcript */
    size_t tlen;
    char all[65536];    /* every byte of every action, for secret checks */
    size_t alen;
};

static void drv_put(char *dst, size_t *len, size_t cap, const void *p, size_t n)
{
    if (*len + n >= cap)
        n = cap - *len - 1;
    memcpy(dst + *len, p, n);
    *len += n;
    dst[*len] = '\0';
}

static void drv_collect(struct drv *d)
{
    static const char *const k[] = { "R", "U", "C", "X", "S", "T", "Q", "L" };

    assert_int_equal(d->o.oom, 0);
    for (size_t i = 0; i < d->o.n; i++) {
        const struct proto_action *a = &d->o.a[i];

        drv_put(d->t, &d->tlen, sizeof(d->t), k[a->kind], 1);
        if (a->kind == PA_REPLY || a->kind == PA_UPSTREAM) {
            drv_put(d->t, &d->tlen, sizeof(d->t), "[", 1);
            drv_put(d->t, &d->tlen, sizeof(d->t), a->data, a->len);
            drv_put(d->t, &d->tlen, sizeof(d->t), "]", 1);
        } else if (a->kind == PA_CONNECT) {
            drv_put(d->t, &d->tlen, sizeof(d->t), "[", 1);
            drv_put(d->t, &d->tlen, sizeof(d->t), a->user, strlen(a->user));
            drv_put(d->t, &d->tlen, sizeof(d->t), "]", 1);
        }
        if (a->kind != PA_UPSTREAM && a->kind != PA_CONNECT && a->data != NULL)
            drv_put(d->all, &d->alen, sizeof(d->all), a->data, a->len);
    }
    proto_out_reset(&d->o);
}

static struct drv *drv_new(bool plaintext_ok, bool tls)
{
    struct proto_limits lim = { .max_line = 1024, .max_literal = 4096, .max_auth_failures = 3,
                                .plaintext_without_tls = plaintext_ok, .starttls_offered = true };
    struct drv *d = calloc(1, sizeof(*d));

    assert_non_null(d);
    proto_out_init(&d->o);
    d->s = imap_session_new(&lim, tls);
    assert_non_null(d->s);
    return d;
}

static void drv_free(struct drv *d)
{
    imap_session_free(&d->s);
    assert_null(d->s);
    proto_out_free(&d->o);
    free(d);
}

static void drv_start(struct drv *d)
{
    imap_start(d->s, &d->o);
    drv_collect(d);
}

static void drv_offer_client(struct drv *d)
{
    long n = imap_client_input(d->s, (const uint8_t *)d->cbuf, d->clen, &d->o);

    assert_true(n >= 0 && (size_t)n <= d->clen);
    memmove(d->cbuf, d->cbuf + n, d->clen - (size_t)n);
    d->clen -= (size_t)n;
    drv_collect(d);
}

static void drv_client_n(struct drv *d, const char *p, size_t n)
{
    drv_put(d->cbuf, &d->clen, sizeof(d->cbuf), p, n);
    drv_offer_client(d);
}

static void drv_client(struct drv *d, const char *p)
{
    drv_client_n(d, p, strlen(p));
}

/* The proxy re-offers pending client bytes after every upstream event. */
static void drv_upstream(struct drv *d, const char *p)
{
    long n;

    drv_put(d->ubuf, &d->ulen, sizeof(d->ubuf), p, strlen(p));
    n = imap_upstream_input(d->s, (const uint8_t *)d->ubuf, d->ulen, &d->o);
    assert_true(n >= 0 && (size_t)n <= d->ulen);
    memmove(d->ubuf, d->ubuf + n, d->ulen - (size_t)n);
    d->ulen -= (size_t)n;
    drv_collect(d);
    if (d->clen > 0)
        drv_offer_client(d);
}

static void drv_upstream_error(struct drv *d, enum proto_upstream_error e)
{
    imap_upstream_error(d->s, e, &d->o);
    drv_collect(d);
}

static void drv_clear(struct drv *d)
{
    d->tlen = 0;
    d->t[0] = '\0';
}

/* ---- greeting and capabilities ---- */

static void test_greeting_on_clear_connection_offers_starttls_and_logindisabled(void **state)
{
    struct drv *d = drv_new(false, false);

    (void)state;
    drv_start(d);
    assert_string_equal(d->t, "R[" GREETING_CLEAR "]");
    drv_free(d);
}

static void test_greeting_on_tls_connection_offers_auth_plain_and_no_starttls(void **state)
{
    struct drv *d = drv_new(false, true);

    (void)state;
    drv_start(d);
    assert_string_equal(d->t, "R[* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN] esproxy ready\r\n]");
    drv_free(d);
}

static void test_capability_command_lists_plaintext_login_when_allowed_without_tls(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 capability\r\n");
    assert_string_equal(d->t, "R[* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN\r\n]"
                              "R[a1 OK CAPABILITY completed\r\n]");
    drv_free(d);
}

static void test_login_is_refused_with_privacyrequired_when_logindisabled(void **state)
{
    struct drv *d = drv_new(false, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a LOGIN alice secret\r\nb AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    assert_string_equal(d->t, "R[a NO [PRIVACYREQUIRED] Plaintext login needs TLS\r\n]"
                              "R[b NO [PRIVACYREQUIRED] Plaintext authentication needs TLS\r\n]");
    drv_clear(d);
    drv_client(d, "c LOGIN {5}\r\n");   /* no continuation: the client must not send it */
    assert_string_equal(d->t, "R[c BAD [PRIVACYREQUIRED] Plaintext login needs TLS\r\n]");
    drv_free(d);
}

/* ---- LOGIN argument forms ---- */

static void test_login_with_atoms_connects_for_the_user(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 LOGIN alice secret\r\n");
    assert_string_equal(d->t, "C[alice]");
    assert_false(imap_spliced(d->s));
    drv_free(d);
}

static void test_login_with_quoted_strings_honours_escapes(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 LOGIN \"al ice\" \"p\\\"w\\\\x\"\r\n");
    assert_string_equal(d->t, "C[al ice]");
    drv_clear(d);
    drv_upstream(d, BACKEND_HELLO);
    assert_string_equal(d->t, "U[esp1 LOGIN \"al ice\" \"p\\\"w\\\\x\"\r\n]");
    drv_free(d);
}

static void test_login_with_bad_escape_in_quoted_string_gets_bad(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 LOGIN \"al\\ice\" pw\r\na2 NOOP\r\n");
    assert_string_equal(d->t, "R[a1 BAD Invalid quoted string\r\n]R[a2 OK NOOP completed\r\n]");
    drv_free(d);
}

static void test_login_with_sync_literal_sends_continuation_request(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 LOGIN {5}\r\n");
    assert_string_equal(d->t, "R[+ Ready for literal\r\n]");
    drv_clear(d);
    drv_client(d, "alice {6}\r\n");
    assert_string_equal(d->t, "R[+ Ready for literal\r\n]");
    drv_clear(d);
    drv_client(d, "secret\r\n");
    assert_string_equal(d->t, "C[alice]");
    drv_free(d);
}

static void test_login_with_nonsync_literals_needs_no_continuation(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n");
    assert_string_equal(d->t, "C[alice]");
    drv_free(d);
}

static void test_oversized_sync_literal_gets_bad_without_continuation(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 LOGIN {4097}\r\na2 NOOP\r\n");
    assert_string_equal(d->t, "R[a1 BAD Literal too large\r\n]R[a2 OK NOOP completed\r\n]");
    drv_clear(d);
    drv_client(d, "a3 LOGIN {99999999999}\r\n");
    assert_string_equal(d->t, "R[a3 BAD Literal too large\r\n]");
    drv_free(d);
}

static void test_oversized_nonsync_literal_gets_bad_and_closes(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 LOGIN {5000+}\r\nxxxx");
    assert_string_equal(d->t, "R[a1 BAD Literal too large\r\n]R[* BYE Literal too large\r\n]Q");
    drv_free(d);
}

static void test_sync_literal_in_a_command_not_allowed_before_login_gets_bad(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 APPEND INBOX {10}\r\na2 APPEND INBOX {3+}\r\nabc\r\n");
    assert_string_equal(d->t, "R[a1 BAD Log in first\r\n]R[a2 NO Log in first\r\n]");
    drv_free(d);
}

/* ---- AUTHENTICATE PLAIN ---- */

static void test_authenticate_plain_with_initial_response_connects(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 AUTHENTICATE plain AGFsaWNlAHNlY3JldA==\r\n");     /* \0alice\0secret */
    assert_string_equal(d->t, "C[alice]");
    drv_free(d);
}

static void test_authenticate_plain_without_initial_response_asks_for_it(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 AUTHENTICATE PLAIN\r\n");
    assert_string_equal(d->t, "R[+ \r\n]");
    drv_clear(d);
    drv_client(d, "AGFsaWNlAHNlY3JldA==\r\n");
    assert_string_equal(d->t, "C[alice]");
    drv_free(d);
}

static void test_authenticate_cancelled_with_star_gets_bad(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 AUTHENTICATE PLAIN\r\n*\r\na2 NOOP\r\n");
    assert_string_equal(d->t, "R[+ \r\n]R[a1 BAD AUTHENTICATE cancelled\r\n]R[a2 OK NOOP completed\r\n]");
    drv_free(d);
}

static void test_authenticate_with_invalid_base64_gets_bad(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA=\r\na2 AUTHENTICATE PLAIN\r\n!!!!\r\n");
    assert_string_equal(d->t, "R[a1 BAD Invalid base64 data\r\n]R[+ \r\n]R[a2 BAD Invalid base64 data\r\n]");
    drv_free(d);
}

static void test_authenticate_with_empty_initial_response_or_bad_mechanism_gets_no(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 AUTHENTICATE PLAIN =\r\na2 AUTHENTICATE CRAM-MD5\r\n");
    assert_string_equal(d->t, "R[a1 NO [AUTHENTICATIONFAILED] Invalid PLAIN message\r\n]"
                              "R[a2 NO Unsupported authentication mechanism\r\n]");
    drv_free(d);
}

/* ---- login to the back-end and splice ---- */

static const char happy_path[] =
    "R[* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN] esproxy ready\r\n]"
    "C[alice]"
    "U[esp1 LOGIN \"alice\" \"secret\"\r\n]"
    "R[a1 OK [" POSTLOGIN_CAPS "] Logged in\r\n]"
    "LS";

static void run_happy_path(struct drv *d, size_t step)
{
    static const char client[] = "a1 LOGIN alice secret\r\n";
    static const char backend[] = BACKEND_HELLO "esp1 OK [" POSTLOGIN_CAPS "] Logged in\r\n";

    drv_start(d);
    if (step == 0) {
        drv_client(d, client);
        drv_upstream(d, backend);
        return;
    }
    for (size_t i = 0; i < sizeof(client) - 1; i++)
        drv_client_n(d, client + i, 1);
    for (size_t i = 0; i < sizeof(backend) - 1; i++) {
        char one[2] = { backend[i], 0 };

        drv_upstream(d, one);
    }
}

static void test_happy_path_logs_in_upstream_relays_capabilities_then_splices(void **state)
{
    struct drv *d = drv_new(false, true);

    (void)state;
    run_happy_path(d, 0);
    assert_string_equal(d->t, happy_path);
    drv_free(d);
}

static void test_happy_path_byte_at_a_time_yields_identical_actions(void **state)
{
    struct drv *d1 = drv_new(false, true), *d2 = drv_new(false, true);

    (void)state;
    run_happy_path(d1, 0);
    run_happy_path(d2, 1);
    assert_string_equal(d1->t, d2->t);
    assert_true(imap_spliced(d2->s));
    drv_free(d1);
    drv_free(d2);
}

static void test_back_end_with_literal_plus_gets_nonsync_literals(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice secret\r\n");
    drv_clear(d);
    drv_upstream(d, BACKEND_HELLO_LITPLUS);
    assert_string_equal(d->t, "U[esp1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n]");
    drv_free(d);
}

static void test_back_end_without_literal_plus_gets_sync_literal_after_continuation(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice {9}\r\n");
    drv_client(d, "s\xc3\xa9\r\ncret\r\n");      /* 8-bit and CRLF: only a literal carries it */
    drv_clear(d);
    drv_upstream(d, BACKEND_HELLO);
    assert_string_equal(d->t, "U[esp1 LOGIN \"alice\" {9}\r\n]");
    drv_clear(d);
    drv_upstream(d, "+ OK\r\n");
    assert_string_equal(d->t, "U[s\xc3\xa9\r\ncret\r\n]");
    drv_clear(d);
    drv_upstream(d, "esp1 OK Logged in\r\n");
    assert_string_equal(d->t, "R[a1 OK Logged in\r\n]LS");
    drv_free(d);
}

static void test_untagged_capability_from_back_end_is_relayed(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice secret\r\n");
    drv_upstream(d, BACKEND_HELLO);
    drv_clear(d);
    drv_upstream(d, "* CAPABILITY IMAP4rev1 IDLE\r\nesp1 OK Logged in\r\n");
    assert_string_equal(d->t, "R[* CAPABILITY IMAP4rev1 IDLE\r\n]R[a1 OK Logged in\r\n]LS");
    drv_free(d);
}

static void test_commands_pipelined_after_login_go_upstream_after_splice(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a1 LOGIN alice secret\r\na2 SELECT INBOX\r\na3 NOOP\r\n");
    assert_string_equal(d->t, "C[alice]");
    assert_int_equal(d->clen, strlen("a2 SELECT INBOX\r\na3 NOOP\r\n"));     /* kept, not answered */
    drv_upstream(d, BACKEND_HELLO);
    drv_clear(d);
    drv_upstream(d, "esp1 OK Logged in\r\n");
    assert_string_equal(d->t, "R[a1 OK Logged in\r\n]LSU[a2 SELECT INBOX\r\na3 NOOP\r\n]");
    drv_free(d);
}

static void test_back_end_bytes_after_the_login_reply_are_left_for_the_relay(void **state)
{
    struct drv *d = drv_new(true, false);
    static const char tail[] = "* 3 EXISTS\r\n";
    char buf[128];
    long n;

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice secret\r\n");
    drv_upstream(d, BACKEND_HELLO);
    snprintf(buf, sizeof(buf), "esp1 OK Logged in\r\n%s", tail);
    n = imap_upstream_input(d->s, (const uint8_t *)buf, strlen(buf), &d->o);
    assert_int_equal(n, (long)(strlen(buf) - strlen(tail)));
    assert_true(imap_spliced(d->s));
    drv_collect(d);
    drv_free(d);
}

static void test_wrong_password_relays_no_and_allows_retry(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice wrong\r\n");
    drv_upstream(d, BACKEND_HELLO);
    drv_clear(d);
    drv_upstream(d, "esp1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    assert_string_equal(d->t, "R[a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n]XL");
    drv_clear(d);
    d->ulen = 0;
    drv_client(d, "a2 LOGIN alice secret\r\n");
    drv_upstream(d, BACKEND_HELLO);
    drv_upstream(d, "esp2 OK Logged in\r\n");
    assert_string_equal(d->t, "C[alice]U[esp2 LOGIN \"alice\" \"secret\"\r\n]R[a2 OK Logged in\r\n]LS");
    drv_free(d);
}

static void test_session_closes_after_the_failure_limit(void **state)
{
    struct drv *d = drv_new(true, false);
    char line[64];

    (void)state;
    drv_start(d);
    for (int i = 1; i <= 3; i++) {
        snprintf(line, sizeof(line), "a%d LOGIN alice wrong\r\n", i);
        drv_client(d, line);
        drv_upstream(d, BACKEND_HELLO);
        drv_clear(d);
        snprintf(line, sizeof(line), "esp%d NO Authentication failed.\r\n", i);
        drv_upstream(d, line);
    }
    assert_string_equal(d->t, "R[a3 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n]XL"
                              "R[* BYE Too many authentication failures\r\n]Q");
    drv_clear(d);
    drv_client(d, "a4 NOOP\r\n");
    assert_string_equal(d->t, "");
    drv_free(d);
}

static void test_bad_back_end_greeting_fails_the_login_as_unavailable(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice secret\r\n");
    drv_clear(d);
    drv_upstream(d, "* BYE shutting down\r\n");
    assert_string_equal(d->t, "XR[a1 NO [UNAVAILABLE] Back-end unavailable\r\n]"
                              "R[* BYE [UNAVAILABLE] back-end unavailable\r\n]LQ");
    drv_free(d);
}

static void test_upstream_error_before_splice_gives_bye_unavailable(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice secret\r\n");
    drv_clear(d);
    drv_upstream_error(d, PUE_CONNECT_FAILED);
    assert_string_equal(d->t, "R[a1 NO [UNAVAILABLE] Back-end unavailable\r\n]"
                              "R[* BYE [UNAVAILABLE] back-end unavailable\r\n]LQ");
    drv_free(d);
}

static void test_tunnel_lost_during_login_logs_in_again_once(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice secret\r\n");
    drv_upstream(d, BACKEND_HELLO);             /* LOGIN is out when the node dies */
    drv_clear(d);
    drv_upstream_error(d, PUE_TUNNEL_LOST);
    assert_string_equal(d->t, "LC[alice]");     /* nothing to the client */
    assert_false(imap_spliced(d->s));
    drv_clear(d);
    drv_upstream(d, BACKEND_HELLO_LITPLUS);     /* the new node's greeting decides the literals */
    assert_string_equal(d->t, "U[esp2 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n]");
    drv_clear(d);
    drv_upstream(d, "esp2 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n");
    assert_string_equal(d->t, "R[a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n]LS");
    assert_true(imap_spliced(d->s));
    drv_free(d);

    /* a second loss under the same login fails it */
    d = drv_new(true, false);
    drv_start(d);
    drv_client(d, "a1 LOGIN alice secret\r\n");
    drv_upstream_error(d, PUE_TUNNEL_LOST);
    drv_clear(d);
    drv_upstream_error(d, PUE_TUNNEL_LOST);
    assert_string_equal(d->t, "R[a1 NO [UNAVAILABLE] Back-end unavailable\r\n]"
                              "R[* BYE [UNAVAILABLE] back-end unavailable\r\n]LQ");
    drv_free(d);
}

static void test_upstream_error_after_splice_gives_bye_unavailable(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice secret\r\n");
    drv_upstream(d, BACKEND_HELLO "esp1 OK Logged in\r\n");
    drv_clear(d);
    drv_upstream_error(d, PUE_TUNNEL_LOST);
    assert_string_equal(d->t, "R[* BYE [UNAVAILABLE] back-end connection lost\r\n]LQ");
    drv_free(d);
}

static void test_upstream_error_without_upstream_is_ignored(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_upstream_error(d, PUE_CLOSED);
    assert_string_equal(d->t, "");
    drv_free(d);
}

/* ---- other pre-auth commands ---- */

static void test_noop_id_and_logout_are_answered_by_the_proxy(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a NOOP\r\nb ID NIL\r\nc ID (\"name\" \"mutt\" \"version\" {3+}\r\n1.0)\r\nd ID foo\r\n"
                  "e LOGOUT\r\nf NOOP\r\n");
    assert_string_equal(d->t, "R[a OK NOOP completed\r\n]"
                              "R[* ID (\"name\" \"esproxy\")\r\n]R[b OK ID completed\r\n]"
                              "R[* ID (\"name\" \"esproxy\")\r\n]R[c OK ID completed\r\n]"
                              "R[d BAD Invalid ID arguments\r\n]"
                              "R[* BYE esproxy logging out\r\n]R[e OK LOGOUT completed\r\n]Q");
    drv_free(d);
}

static void test_unknown_and_post_auth_commands_are_refused_and_session_continues(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a select INBOX\r\nb FROB\r\nc NOOP extra\r\nd NOOP\r\n");
    assert_string_equal(d->t, "R[a NO Log in first\r\n]R[b BAD Unknown command\r\n]"
                              "R[c BAD Unexpected arguments\r\n]R[d OK NOOP completed\r\n]");
    drv_free(d);
}

static void test_starttls_switches_and_drops_pipelined_plaintext(void **state)
{
    struct drv *d = drv_new(false, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "a STARTTLS\r\nb LOGIN alice secret\r\n");
    assert_string_equal(d->t, "R[a OK Begin TLS negotiation now\r\n]T");
    assert_int_equal(d->clen, 0);
    drv_clear(d);
    drv_client(d, "c LOGIN injected before handshake\r\n");
    assert_string_equal(d->t, "");
    imap_tls_started(d->s);
    drv_client(d, "d CAPABILITY\r\n");
    assert_string_equal(d->t, "R[* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN\r\n]"
                              "R[d OK CAPABILITY completed\r\n]");
    drv_clear(d);
    drv_client(d, "e STARTTLS\r\n");
    assert_string_equal(d->t, "R[e BAD STARTTLS not available\r\n]");
    drv_free(d);
}

static void test_tls_started_without_starttls_is_ignored(void **state)
{
    struct drv *d = drv_new(false, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a ID (\"k\" {3+}\r\nab");
    imap_tls_started(d->s);     /* not after our PA_STARTTLS: no effect */
    drv_clear(d);
    drv_client(d, "c)\r\nb LOGIN alice secret\r\n");
    assert_string_equal(d->t, "R[* ID (\"name\" \"esproxy\")\r\n]R[a OK ID completed\r\n]"
                              "R[b NO [PRIVACYREQUIRED] Plaintext login needs TLS\r\n]");
    drv_free(d);
}

/* imaptest's pre-login ID: n pairs of field_len-byte names and value_len-byte
 * values, quoted (30 x 30 x 1024 with tag "a": 31,808 bytes with CRLF). */
static size_t id_line(char *buf, size_t cap, const char *tag, unsigned n, size_t field_len, size_t value_len)
{
    size_t len = (size_t)snprintf(buf, cap, "%s ID (", tag);

    for (unsigned i = 0; i < n; i++) {
        assert_true(len + field_len + value_len + 8 < cap);
        len += (size_t)snprintf(buf + len, cap - len, "%s\"", i ? " " : "");
        for (size_t k = 0; k < field_len; k++)
            buf[len++] = (char)('a' + (i + k) % 26);
        len += (size_t)snprintf(buf + len, cap - len, "\" \"");
        memset(buf + len, 'v', value_len);
        len += value_len;
        buf[len++] = '"';
    }
    len += (size_t)snprintf(buf + len, cap - len, ")\r\n");
    return len;
}

static void test_rfc2971_maximal_id_before_login_is_answered_despite_max_line(void **state)
{
    struct drv *d = drv_new(true, false);
    static char line[80000];
    size_t len = id_line(line, sizeof(line), "a", 30, 30, 1024);

    (void)state;
    assert_int_equal(len, 31808);   /* imaptest's 31,807 give or take its tag; max_line here is 1024 */
    drv_start(d);
    drv_clear(d);
    for (size_t off = 0; off < len; off += 1000)
        drv_client_n(d, line + off, len - off < 1000 ? len - off : 1000);
    drv_client(d, "b NOOP\r\n");
    assert_string_equal(d->t, "R[* ID (\"name\" \"esproxy\")\r\n]R[a OK ID completed\r\n]"
                              "R[b OK NOOP completed\r\n]");
    drv_free(d);
}

static void test_id_beyond_rfc2971_limits_gets_bad_and_session_continues(void **state)
{
    struct drv *d = drv_new(true, false);
    static char line[80000];

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client_n(d, line, id_line(line, sizeof(line), "a", 31, 3, 3));
    drv_client_n(d, line, id_line(line, sizeof(line), "b", 1, 31, 3));
    drv_client_n(d, line, id_line(line, sizeof(line), "c", 2, 3, 1025));
    drv_client(d, "d ID (\"name\" \"x\" \"odd\")\r\ne ID (NIL \"x\")\r\nf ID (\"name\" NIL)\r\n");
    assert_string_equal(d->t,
        "R[a BAD ID beyond RFC 2971 limits (30 pairs, fields 30 and values 1024 octets)\r\n]"
        "R[b BAD ID beyond RFC 2971 limits (30 pairs, fields 30 and values 1024 octets)\r\n]"
        "R[c BAD ID beyond RFC 2971 limits (30 pairs, fields 30 and values 1024 octets)\r\n]"
        "R[d BAD Invalid ID arguments\r\n]R[e BAD Invalid ID arguments\r\n]"
        "R[* ID (\"name\" \"esproxy\")\r\n]R[f OK ID completed\r\n]");
    drv_free(d);
}

static void test_id_allowance_is_not_lent_to_other_commands_or_beyond_the_rfc(void **state)
{
    struct drv *d = drv_new(true, false);
    static char line[80000];
    size_t len;

    (void)state;
    drv_start(d);
    drv_clear(d);
    len = id_line(line, sizeof(line), "a", 1, 3, 2000);
    memcpy(line + 2, "IDX", 3);     /* "a IDX (...": not an ID, max_line holds */
    drv_client_n(d, line, len);
    assert_string_equal(d->t, "R[* BAD Line too long\r\n]Q");
    drv_free(d);

    d = drv_new(true, false);
    drv_start(d);
    drv_clear(d);
    len = id_line(line, sizeof(line), "a", 30, 30, 2200);  /* past the longest legal ID line */
    drv_client_n(d, line, len);
    assert_string_equal(d->t, "R[* BAD Line too long\r\n]Q");
    drv_free(d);
}

/* ---- bad input ---- */

static void test_overlong_line_is_refused_and_closes(void **state)
{
    struct drv *d = drv_new(true, false);
    char line[1100];

    (void)state;
    drv_start(d);
    drv_clear(d);
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    drv_client(d, line);    /* no line end yet: refused as soon as it is too long */
    assert_string_equal(d->t, "R[* BAD Line too long\r\n]Q");
    drv_free(d);
}

static void test_line_at_the_limit_is_accepted(void **state)
{
    struct drv *d = drv_new(true, false);
    char line[1030];

    (void)state;
    drv_start(d);
    drv_clear(d);
    memset(line, 'x', 1024);
    memcpy(line, "a FROB ", 7);
    memcpy(line + 1024, "\r\n", 3);
    drv_client(d, line);
    assert_string_equal(d->t, "R[a BAD Unknown command\r\n]");
    drv_free(d);
}

static void test_unterminated_literal_waits_without_replying(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN {10+}\r\nalice");
    drv_clear(d);
    drv_client(d, "\r\n");
    assert_string_equal(d->t, "");
    assert_int_equal(d->clen, 0);
    drv_free(d);
}

static void test_client_closing_mid_literal_frees_everything(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice {4000+}\r\nsecr");
    drv_free(d);    /* ASan: nothing leaks */
}

static void test_commands_sent_before_the_greeting_are_answered_after_it(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_client(d, "a NOOP\r\nb CAPABILITY\r\n");
    assert_string_equal(d->t, "");
    assert_int_equal(d->clen, strlen("a NOOP\r\nb CAPABILITY\r\n"));
    drv_start(d);
    drv_offer_client(d);
    assert_string_equal(d->t, "R[* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN] "
                              "esproxy ready\r\n]R[a OK NOOP completed\r\n]"
                              "R[* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN\r\n]"
                              "R[b OK CAPABILITY completed\r\n]");
    drv_free(d);
}

static void test_pipelined_commands_in_one_read_are_answered_in_order(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, "1 NOOP\r\n2 NOOP\n3 ID NIL\r\n4 NOOP\r\n");
    assert_string_equal(d->t, "R[1 OK NOOP completed\r\n]R[2 OK NOOP completed\r\n]"
                              "R[* ID (\"name\" \"esproxy\")\r\n]R[3 OK ID completed\r\n]R[4 OK NOOP completed\r\n]");
    drv_free(d);
}

static const char dialogue[] =
    "\r\n1 NOOP\r\n+x NOOP\r\n2 ID (\"a\" {2+}\r\nbc)\r\n3 AUTHENTICATE PLAIN\r\n*\r\n"
    "4 LOGIN {5}\r\nalice \"p\\\\w\"\r\n5 NOOP\r\n";

static void test_whole_dialogue_one_byte_at_a_time_yields_identical_actions(void **state)
{
    struct drv *d1 = drv_new(true, false), *d2 = drv_new(true, false);
    static const char backend[] = BACKEND_HELLO "esp1 OK [" POSTLOGIN_CAPS "] ok\r\n";

    (void)state;
    drv_start(d1);
    drv_start(d2);
    drv_client(d1, dialogue);
    for (size_t i = 0; i < sizeof(dialogue) - 1; i++)
        drv_client_n(d2, dialogue + i, 1);
    drv_upstream(d1, backend);
    for (size_t i = 0; i < sizeof(backend) - 1; i++) {
        char one[2] = { backend[i], 0 };

        drv_upstream(d2, one);
    }
    assert_string_equal(d1->t, d2->t);
    assert_non_null(strstr(d1->t, "U[5 NOOP\r\n]"));
    assert_non_null(strstr(d1->t, "U[esp1 LOGIN \"alice\" \"p\\\\w\"\r\n]"));
    drv_free(d1);
    drv_free(d2);
}

static void test_missing_or_invalid_tags_get_untagged_bad(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client(d, " NOOP\r\n+ NOOP\r\na(b NOOP\r\nsolo\r\n* NOOP\r\nok NOOP\r\n");
    assert_string_equal(d->t, "R[* BAD Invalid tag\r\n]R[* BAD Invalid tag\r\n]R[* BAD Invalid tag\r\n]"
                              "R[solo BAD Missing command\r\n]R[* BAD Invalid tag\r\n]R[ok OK NOOP completed\r\n]");
    drv_free(d);
}

static void test_nul_bytes_get_bad_and_session_continues(void **state)
{
    struct drv *d = drv_new(true, false);
    static const char in[] = "a NO\0OP\r\nb LOGIN al\0ice pw\r\nc LOGIN alice {3+}\r\np\0w\r\n\0\r\nd NOOP\r\n";

    (void)state;
    drv_start(d);
    drv_clear(d);
    drv_client_n(d, in, sizeof(in) - 1);
    assert_string_equal(d->t, "R[a BAD Invalid characters in command\r\n]"
                              "R[b BAD Invalid characters in command\r\n]"
                              "R[c BAD NUL byte in password\r\n]R[* BAD Invalid tag\r\n]R[d OK NOOP completed\r\n]");
    drv_free(d);
}

static void test_password_never_appears_in_replies_or_logs(void **state)
{
    struct drv *d = drv_new(true, false);

    (void)state;
    drv_start(d);
    drv_client(d, "a1 LOGIN alice Sup3rS3cret\r\n");
    drv_upstream(d, BACKEND_HELLO "esp1 NO [AUTHENTICATIONFAILED] nope\r\n");
    drv_client(d, "a2 AUTHENTICATE PLAIN AGFsaWNlAFN1cDNyUzNjcmV0\r\n");    /* \0alice\0Sup3rS3cret */
    drv_upstream(d, BACKEND_HELLO "esp2 OK Logged in\r\n");
    drv_upstream_error(d, PUE_TUNNEL_LOST);
    assert_non_null(strstr(d->t, "U[esp1 LOGIN \"alice\" \"Sup3rS3cret\"\r\n]"));
    assert_non_null(strstr(d->t, "U[esp2 LOGIN"));
    assert_null(strstr(d->all, "Sup3rS3cret"));
    assert_null(strstr(d->all, "AGFsaWNlAFN1cDNyUzNjcmV0"));
    assert_non_null(strstr(d->all, "user=\"alice\""));
    drv_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_on_clear_connection_offers_starttls_and_logindisabled),
        cmocka_unit_test(test_greeting_on_tls_connection_offers_auth_plain_and_no_starttls),
        cmocka_unit_test(test_capability_command_lists_plaintext_login_when_allowed_without_tls),
        cmocka_unit_test(test_login_is_refused_with_privacyrequired_when_logindisabled),
        cmocka_unit_test(test_login_with_atoms_connects_for_the_user),
        cmocka_unit_test(test_login_with_quoted_strings_honours_escapes),
        cmocka_unit_test(test_login_with_bad_escape_in_quoted_string_gets_bad),
        cmocka_unit_test(test_login_with_sync_literal_sends_continuation_request),
        cmocka_unit_test(test_login_with_nonsync_literals_needs_no_continuation),
        cmocka_unit_test(test_oversized_sync_literal_gets_bad_without_continuation),
        cmocka_unit_test(test_oversized_nonsync_literal_gets_bad_and_closes),
        cmocka_unit_test(test_sync_literal_in_a_command_not_allowed_before_login_gets_bad),
        cmocka_unit_test(test_authenticate_plain_with_initial_response_connects),
        cmocka_unit_test(test_authenticate_plain_without_initial_response_asks_for_it),
        cmocka_unit_test(test_authenticate_cancelled_with_star_gets_bad),
        cmocka_unit_test(test_authenticate_with_invalid_base64_gets_bad),
        cmocka_unit_test(test_authenticate_with_empty_initial_response_or_bad_mechanism_gets_no),
        cmocka_unit_test(test_happy_path_logs_in_upstream_relays_capabilities_then_splices),
        cmocka_unit_test(test_happy_path_byte_at_a_time_yields_identical_actions),
        cmocka_unit_test(test_back_end_with_literal_plus_gets_nonsync_literals),
        cmocka_unit_test(test_back_end_without_literal_plus_gets_sync_literal_after_continuation),
        cmocka_unit_test(test_untagged_capability_from_back_end_is_relayed),
        cmocka_unit_test(test_commands_pipelined_after_login_go_upstream_after_splice),
        cmocka_unit_test(test_back_end_bytes_after_the_login_reply_are_left_for_the_relay),
        cmocka_unit_test(test_wrong_password_relays_no_and_allows_retry),
        cmocka_unit_test(test_session_closes_after_the_failure_limit),
        cmocka_unit_test(test_bad_back_end_greeting_fails_the_login_as_unavailable),
        cmocka_unit_test(test_upstream_error_before_splice_gives_bye_unavailable),
        cmocka_unit_test(test_tunnel_lost_during_login_logs_in_again_once),
        cmocka_unit_test(test_upstream_error_after_splice_gives_bye_unavailable),
        cmocka_unit_test(test_upstream_error_without_upstream_is_ignored),
        cmocka_unit_test(test_noop_id_and_logout_are_answered_by_the_proxy),
        cmocka_unit_test(test_unknown_and_post_auth_commands_are_refused_and_session_continues),
        cmocka_unit_test(test_starttls_switches_and_drops_pipelined_plaintext),
        cmocka_unit_test(test_tls_started_without_starttls_is_ignored),
        cmocka_unit_test(test_overlong_line_is_refused_and_closes),
        cmocka_unit_test(test_line_at_the_limit_is_accepted),
        cmocka_unit_test(test_unterminated_literal_waits_without_replying),
        cmocka_unit_test(test_client_closing_mid_literal_frees_everything),
        cmocka_unit_test(test_commands_sent_before_the_greeting_are_answered_after_it),
        cmocka_unit_test(test_pipelined_commands_in_one_read_are_answered_in_order),
        cmocka_unit_test(test_whole_dialogue_one_byte_at_a_time_yields_identical_actions),
        cmocka_unit_test(test_missing_or_invalid_tags_get_untagged_bad),
        cmocka_unit_test(test_nul_bytes_get_bad_and_session_continues),
        cmocka_unit_test(test_password_never_appears_in_replies_or_logs),
        cmocka_unit_test(test_rfc2971_maximal_id_before_login_is_answered_despite_max_line),
        cmocka_unit_test(test_id_beyond_rfc2971_limits_gets_bad_and_session_continues),
        cmocka_unit_test(test_id_allowance_is_not_lent_to_other_commands_or_beyond_the_rfc),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
