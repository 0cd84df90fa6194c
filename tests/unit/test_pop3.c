/* POP3 front-end state machine: pre-auth dialogue, back-end login, splice,
 * STLS, limits and bad input. A small harness plays the proxy: it keeps
 * unconsumed bytes and offers them again (after upstream events too, as
 * pop3.h asks) and renders the actions as a transcript:
 *   R:<reply bytes>|  U:<upstream bytes>|  C:<user>|  X| (upstream close)
 *   S| (splice)  T| (starttls)  Q| (close)
 * Adjacent R (or U) actions are merged so that chunking does not matter;
 * PA_LOG text is collected apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "protocols/pop3.h"

#define PW "s3cret-Pw"

struct harness {
    struct pop3_session *s;
    struct proto_out out;
    uint8_t cbuf[32768], ubuf[4096];    /* bytes the "proxy" holds unconsumed */
    size_t clen, ulen;
    char tr[32768];                     /* transcript */
    size_t trlen;
    char last;                          /* kind letter of the last transcript entry */
    char logs[16384];
    size_t loglen;
    size_t nactions;
};

static struct proto_limits lim_default(void)
{
    struct proto_limits l = { .max_line = 512, .max_literal = 0, .max_auth_failures = 3,
                              .plaintext_without_tls = true, .starttls_offered = true };
    return l;
}

static struct harness *h_new_lim(const struct proto_limits *l, bool tls)
{
    struct harness *h = calloc(1, sizeof(*h));

    assert_non_null(h);
    h->s = pop3_session_new(l, tls);
    assert_non_null(h->s);
    proto_out_init(&h->out);
    return h;
}

static struct harness *h_new(void)
{
    struct proto_limits l = lim_default();

    return h_new_lim(&l, false);
}

static void h_free(struct harness *h)
{
    pop3_session_free(&h->s);
    assert_null(h->s);
    proto_out_free(&h->out);
    free(h);
}

static void tr_put(struct harness *h, const void *p, size_t n)
{
    assert_true(h->trlen + n < sizeof(h->tr));
    memcpy(h->tr + h->trlen, p, n);
    h->trlen += n;
    h->tr[h->trlen] = '\0';
}

static void tr_data(struct harness *h, char kind, const uint8_t *p, size_t n)
{
    if (h->last == kind) {
        h->trlen--;     /* drop the '|' and continue the same entry */
    } else {
        char hdr[2] = { kind, ':' };
        tr_put(h, hdr, 2);
    }
    tr_put(h, p, n);
    tr_put(h, "|", 1);
    h->last = kind;
}

static void h_collect(struct harness *h)
{
    for (size_t i = 0; i < h->out.n; i++) {
        const struct proto_action *a = &h->out.a[i];

        h->nactions++;
        switch (a->kind) {
        case PA_REPLY: tr_data(h, 'R', a->data, a->len); break;
        case PA_UPSTREAM: tr_data(h, 'U', a->data, a->len); break;
        case PA_CONNECT:
            tr_put(h, "C:", 2);
            tr_put(h, a->user, strlen(a->user));
            tr_put(h, "|", 1);
            h->last = 'C';
            break;
        case PA_UPSTREAM_CLOSE: tr_put(h, "X|", 2); h->last = 'X'; h->ulen = 0; break;
        case PA_SPLICE: tr_put(h, "S|", 2); h->last = 'S'; break;
        case PA_STARTTLS: tr_put(h, "T|", 2); h->last = 'T'; break;
        case PA_CLOSE: tr_put(h, "Q|", 2); h->last = 'Q'; break;
        case PA_LOG:
            assert_true(h->loglen + a->len + 1 < sizeof(h->logs));
            memcpy(h->logs + h->loglen, a->data, a->len);
            h->loglen += a->len;
            h->logs[h->loglen++] = '\n';
            break;
        }
    }
    proto_out_reset(&h->out);
}

static void h_offer_client(struct harness *h)
{
    long n = pop3_client_input(h->s, h->cbuf, h->clen, &h->out);

    assert_true(n >= 0 && (size_t)n <= h->clen);
    memmove(h->cbuf, h->cbuf + n, h->clen - (size_t)n);
    h->clen -= (size_t)n;
    h_collect(h);
}

static void h_client_n(struct harness *h, const void *p, size_t n)
{
    assert_true(h->clen + n <= sizeof(h->cbuf));
    memcpy(h->cbuf + h->clen, p, n);
    h->clen += n;
    h_offer_client(h);
}

static void h_client(struct harness *h, const char *text)
{
    h_client_n(h, text, strlen(text));
}

static void h_upstream_n(struct harness *h, const void *p, size_t n)
{
    long used;

    assert_true(h->ulen + n <= sizeof(h->ubuf));
    memcpy(h->ubuf + h->ulen, p, n);
    h->ulen += n;
    used = pop3_upstream_input(h->s, h->ubuf, h->ulen, &h->out);
    assert_true(used >= 0 && (size_t)used <= h->ulen);
    memmove(h->ubuf, h->ubuf + used, h->ulen - (size_t)used);
    h->ulen -= (size_t)used;
    h_collect(h);
    if (h->clen > 0)
        h_offer_client(h);
}

static void h_upstream(struct harness *h, const char *text)
{
    h_upstream_n(h, text, strlen(text));
}

static void h_error(struct harness *h, enum proto_upstream_error e)
{
    pop3_upstream_error(h->s, e, &h->out);
    h_collect(h);
}

static void h_start(struct harness *h)
{
    pop3_start(h->s, &h->out);
    h_collect(h);
}

/* Forget the transcript so far (keeps the session). */
static void h_clear(struct harness *h)
{
    h->trlen = 0;
    h->tr[0] = '\0';
    h->last = 0;
}

static bool h_secret_leaked(const struct harness *h, const char *secret)
{
    size_t n = strlen(secret);
    const char *p = h->tr;

    if (memmem(h->logs, h->loglen, secret, n) != NULL)
        return true;
    /* in the transcript only R: entries count (U: carries it to the back-end on purpose) */
    while ((p = strstr(p, "R:")) != NULL) {
        const char *end = strchr(p, '|');

        if (memmem(p, end ? (size_t)(end - p) : strlen(p), secret, n) != NULL)
            return true;
        p += 2;
    }
    return false;
}

#define LOGIN_OK "R:+OK esproxy POP3 ready\r\n+OK\r\n|C:alice|U:USER alice\r\nPASS " PW "\r\n|R:+OK Logged in.\r\n|S|"

/* Drive a USER/PASS login to the splice. */
static void h_login(struct harness *h)
{
    h_start(h);
    h_client(h, "USER alice\r\n");
    h_client(h, "PASS " PW "\r\n");
    h_upstream(h, "+OK Dovecot ready.\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "+OK Logged in.\r\n");
    assert_true(pop3_spliced(h->s));
}

/* ---- greeting and CAPA ---- */

static void test_greeting_is_sent_once_on_start(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_start(h);
    assert_string_equal(h->tr, "R:+OK esproxy POP3 ready\r\n|");
    assert_int_equal(h->nactions, 1);
    h_free(h);
}

static void test_capa_lists_user_sasl_plain_stls_pipelining_and_codes(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "CAPA\r\n");
    assert_string_equal(h->tr, "R:+OK capability list follows\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\nPIPELINING\r\n"
                               "RESP-CODES\r\nAUTH-RESP-CODE\r\nIMPLEMENTATION esproxy\r\n.\r\n|");
    h_free(h);
}

static void test_capa_omits_stls_under_tls_and_plaintext_mechanisms_when_refused(void **state)
{
    struct proto_limits l = lim_default();
    struct harness *tls, *clear;

    (void)state;
    l.plaintext_without_tls = false;
    tls = h_new_lim(&l, true);
    clear = h_new_lim(&l, false);
    h_client(tls, "CAPA\r\n");
    h_client(clear, "CAPA\r\n");
    assert_non_null(strstr(tls->tr, "USER\r\nSASL PLAIN\r\n"));
    assert_null(strstr(tls->tr, "STLS"));
    assert_null(strstr(clear->tr, "USER"));
    assert_null(strstr(clear->tr, "SASL"));
    assert_non_null(strstr(clear->tr, "STLS\r\n"));
    h_free(tls);
    h_free(clear);
}

/* ---- logins ---- */

static void test_user_pass_login_emits_exactly_connect_upstream_login_reply_splice(void **state)
{
    struct harness *h = h_new();
    const struct proto_action *a;

    (void)state;
    h_start(h);
    h_client(h, "USER alice\r\n");
    assert_int_equal(pop3_client_input(h->s, (const uint8_t *)"PASS " PW "\r\n", 16, &h->out), 16);
    assert_int_equal(h->out.n, 2);
    assert_int_equal(h->out.a[0].kind, PA_LOG);
    assert_int_equal(h->out.a[1].kind, PA_CONNECT);
    assert_string_equal(h->out.a[1].user, "alice");
    proto_out_reset(&h->out);

    pop3_upstream_connected(h->s, &h->out);
    assert_int_equal(h->out.n, 0);
    assert_int_equal(pop3_upstream_input(h->s, (const uint8_t *)"+OK Dovecot ready.\r\n", 20, &h->out), 20);
    assert_int_equal(h->out.n, 1);
    assert_int_equal(h->out.a[0].kind, PA_UPSTREAM);
    assert_memory_equal(h->out.a[0].data, "USER alice\r\n", h->out.a[0].len);
    proto_out_reset(&h->out);

    assert_int_equal(pop3_upstream_input(h->s, (const uint8_t *)"+OK\r\n", 5, &h->out), 5);
    assert_int_equal(h->out.n, 1);
    assert_int_equal(h->out.a[0].len, strlen("PASS " PW "\r\n"));
    assert_memory_equal(h->out.a[0].data, "PASS " PW "\r\n", h->out.a[0].len);
    proto_out_reset(&h->out);

    assert_int_equal(pop3_upstream_input(h->s, (const uint8_t *)"+OK Logged in.\r\n", 16, &h->out), 16);
    assert_int_equal(h->out.n, 3);
    assert_int_equal(h->out.a[0].kind, PA_LOG);
    a = &h->out.a[1];
    assert_int_equal(a->kind, PA_REPLY);
    assert_memory_equal(a->data, "+OK Logged in.\r\n", a->len);
    assert_int_equal(h->out.a[2].kind, PA_SPLICE);
    assert_true(pop3_spliced(h->s));
    h_free(h);
}

static void test_spliced_session_relays_bytes_both_ways_untouched(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_login(h);
    h_clear(h);
    h_client(h, "STAT\r\n");
    h_upstream(h, "+OK 2 320\r\n");
    assert_string_equal(h->tr, "U:STAT\r\n|R:+OK 2 320\r\n|");
    h_free(h);
}

static void test_auth_plain_with_initial_response_logs_in(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    /* base64("\0alice\0s3cret-Pw") */
    h_client(h, "AUTH PLAIN AGFsaWNlAHMzY3JldC1Qdw==\r\n");
    h_upstream(h, "+OK ready\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "+OK Logged in.\r\n");
    assert_string_equal(h->tr, "C:alice|U:USER alice\r\nPASS " PW "\r\n|R:+OK Logged in.\r\n|S|");
    h_free(h);
}

static void test_auth_plain_without_initial_response_asks_for_continuation(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "auth plain\r\n");
    assert_string_equal(h->tr, "R:+ \r\n|");
    h_client(h, "AGFsaWNlAHMzY3JldC1Qdw==\r\n");
    assert_string_equal(h->tr, "R:+ \r\n|C:alice|");
    h_free(h);
}

static void test_auth_plain_cancelled_with_star_leaves_session_usable(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "AUTH PLAIN\r\n*\r\nNOOP\r\n");
    assert_string_equal(h->tr, "R:+ \r\n-ERR [AUTH] authentication cancelled\r\n-ERR command not valid before login\r\n|");
    h_free(h);
}

static void test_auth_plain_with_invalid_base64_is_refused_and_session_continues(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "AUTH PLAIN AGFsa!!!\r\nAUTH PLAIN\r\nnot base64\r\nCAPA\r\n");
    assert_true(strncmp(h->tr, "R:-ERR [AUTH] invalid base64\r\n+ \r\n-ERR [AUTH] invalid base64\r\n+OK capability", 75) == 0);
    h_free(h);
}

static void test_auth_plain_message_without_password_is_refused(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "AUTH PLAIN AGFsaWNl\r\n");     /* "\0alice" */
    assert_string_equal(h->tr, "R:-ERR [AUTH] invalid PLAIN credentials\r\n|");
    h_free(h);
}

static void test_credentials_carrying_line_breaks_are_refused(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    /* base64("\0alice\r\nDELE 1\0pw") and base64("\0alice\0pw\r\nDELE 1") */
    h_client(h, "AUTH PLAIN AGFsaWNlDQpERUxFIDEAcHc=\r\nAUTH PLAIN AGFsaWNlAHB3DQpERUxFIDE=\r\n");
    assert_string_equal(h->tr, "R:-ERR [AUTH] invalid PLAIN credentials\r\n-ERR [AUTH] invalid PLAIN credentials\r\n|");
    h_free(h);
}

static void test_unsupported_sasl_mechanism_is_refused(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "AUTH CRAM-MD5\r\nAUTH\r\n");
    assert_string_equal(h->tr, "R:-ERR unsupported SASL mechanism\r\n+OK\r\nPLAIN\r\n.\r\n|");
    h_free(h);
}

static void test_wrong_password_relays_err_and_allows_a_retry(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "USER alice\r\nPASS wrong\r\n");
    h_upstream(h, "+OK ready\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "-ERR Authentication failed.\r\n");
    assert_string_equal(h->tr, "R:+OK\r\n|C:alice|U:USER alice\r\nPASS wrong\r\n|"
                               "R:-ERR [AUTH] Authentication failed.\r\n|X|");
    h_clear(h);
    h_client(h, "PASS again\r\n");      /* USER is needed again after a failure */
    assert_string_equal(h->tr, "R:-ERR USER first\r\n|");
    h_clear(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_upstream(h, "+OK ready\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "+OK Logged in.\r\n");
    assert_string_equal(h->tr, "R:+OK\r\n|C:alice|U:USER alice\r\nPASS " PW "\r\n|R:+OK Logged in.\r\n|S|");
    h_free(h);
}

static void test_failures_up_to_the_limit_close_the_session(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    for (int i = 0; i < 3; i++) {
        h_clear(h);
        h_client(h, "USER alice\r\nPASS wrong\r\n");
        h_upstream(h, "+OK ready\r\n");
        h_upstream(h, "-ERR [AUTH] no such user\r\n");     /* refused at USER */
    }
    assert_string_equal(h->tr, "R:+OK\r\n|C:alice|U:USER alice\r\n|R:-ERR [AUTH] too many failures\r\n|X|Q|");
    h_clear(h);
    h_client(h, "USER alice\r\n");
    assert_string_equal(h->tr, "");
    h_free(h);
}

static void test_backend_response_code_is_relayed_as_is(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "USER alice\r\nPASS hunter2\r\n");
    h_upstream(h, "+OK ready\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "-ERR [SYS/TEMP] mailbox locked\r\n");
    assert_non_null(strstr(h->tr, "R:-ERR [SYS/TEMP] mailbox locked\r\n|X|"));
    h_free(h);
}

static void test_plaintext_login_is_refused_without_tls_when_configured(void **state)
{
    struct proto_limits l = lim_default();
    struct harness *h;

    (void)state;
    l.plaintext_without_tls = false;
    h = h_new_lim(&l, false);
    h_start(h);
    h_clear(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\nAUTH PLAIN AGFsaWNlAHMzY3JldC1Qdw==\r\n");
    assert_string_equal(h->tr, "R:-ERR [AUTH] plaintext authentication disallowed without TLS, use STLS first\r\n"
                               "-ERR [AUTH] plaintext authentication disallowed without TLS, use STLS first\r\n"
                               "-ERR [AUTH] plaintext authentication disallowed without TLS, use STLS first\r\n|");
    h_free(h);
}

/* ---- STLS ---- */

static void test_stls_upgrades_and_then_plaintext_login_is_allowed(void **state)
{
    struct proto_limits l = lim_default();
    struct harness *h;

    (void)state;
    l.plaintext_without_tls = false;
    h = h_new_lim(&l, false);
    h_start(h);
    h_clear(h);
    h_client(h, "STLS\r\n");
    assert_string_equal(h->tr, "R:+OK Begin TLS negotiation\r\n|T|");
    pop3_tls_started(h->s);
    h_clear(h);
    h_client(h, "CAPA\r\nUSER alice\r\nPASS " PW "\r\n");
    assert_null(strstr(h->tr, "STLS"));
    assert_non_null(strstr(h->tr, "|C:alice|"));
    h_free(h);
}

static void test_commands_pipelined_after_stls_are_discarded(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_client(h, "USER mallory\r\n");
    h_clear(h);
    h_client(h, "STLS\r\nUSER alice\r\nPASS injected\r\n");
    h_client(h, "PASS injected\r\n");      /* still plaintext: ignored */
    assert_string_equal(h->tr, "R:+OK Begin TLS negotiation\r\n|T|");
    assert_int_equal(h->clen, 0);
    pop3_tls_started(h->s);
    h_clear(h);
    h_client(h, "PASS " PW "\r\n");         /* the pre-TLS USER is forgotten */
    assert_string_equal(h->tr, "R:-ERR USER first\r\n|");
    h_free(h);
}

static void test_stls_is_refused_under_tls_or_when_not_offered(void **state)
{
    struct proto_limits l = lim_default();
    struct harness *tls, *none;

    (void)state;
    tls = h_new_lim(&l, true);
    l.starttls_offered = false;
    none = h_new_lim(&l, false);
    h_client(tls, "STLS\r\n");
    h_client(none, "STLS\r\n");
    assert_string_equal(tls->tr, "R:+OK esproxy POP3 ready\r\n-ERR TLS already active\r\n|");
    assert_string_equal(none->tr, "R:+OK esproxy POP3 ready\r\n-ERR STLS not available\r\n|");
    h_free(tls);
    h_free(none);
}

/* ---- other pre-auth commands ---- */

static void test_quit_before_login_says_bye_and_closes(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "QUIT\r\nCAPA\r\n");
    assert_string_equal(h->tr, "R:+OK esproxy POP3 signing off\r\n|Q|");
    h_free(h);
}

static void test_transaction_commands_are_refused_before_login(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "NOOP\r\nSTAT\r\nRETR 1\r\n");
    assert_string_equal(h->tr, "R:-ERR command not valid before login\r\n-ERR command not valid before login\r\n"
                               "-ERR command not valid before login\r\n|");
    h_free(h);
}

static void test_unknown_command_gets_err_and_session_continues(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "HELO x\r\n\r\nQUIT\r\n");
    assert_string_equal(h->tr, "R:-ERR unknown command\r\n-ERR unknown command\r\n+OK esproxy POP3 signing off\r\n|Q|");
    h_free(h);
}

static void test_too_many_invalid_commands_close_the_session(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    for (int i = 0; i < 25; i++)
        h_client(h, "XYZZY\r\n");
    assert_non_null(strstr(h->tr, "-ERR too many invalid commands\r\n|Q|"));
    h_free(h);
}

/* ---- bad input ---- */

static void test_overlong_line_closes_the_session(void **state)
{
    struct harness *h = h_new();
    char line[600];

    (void)state;
    memset(line, 'A', sizeof(line));
    h_start(h);
    h_clear(h);
    h_client_n(h, line, 300);
    assert_string_equal(h->tr, "");
    h_client_n(h, line, 300);           /* no line end within max_line + 2 */
    assert_string_equal(h->tr, "R:-ERR line too long\r\n|Q|");
    h_free(h);
}

static void test_line_one_byte_over_max_line_with_bare_lf_is_too_long(void **state)
{
    struct harness *h = h_new();
    char line[514];

    (void)state;
    memset(line, 'A', 513);
    line[513] = '\n';
    h_start(h);
    h_clear(h);
    h_client_n(h, line, sizeof(line));
    assert_string_equal(h->tr, "R:-ERR line too long\r\n|Q|");
    h_free(h);
}

static void test_line_of_exactly_max_line_is_accepted(void **state)
{
    struct harness *h = h_new();
    char line[514];

    (void)state;
    memset(line, 'A', 512);
    memcpy(line + 512, "\r\n", 2);
    h_start(h);
    h_clear(h);
    h_client_n(h, line, sizeof(line));
    assert_string_equal(h->tr, "R:-ERR unknown command\r\n|");
    h_free(h);
}

static void test_nul_byte_in_command_is_rejected(void **state)
{
    struct harness *h = h_new();
    static const char cmd[] = "USER al\0ice\r\nCAPA\r\n";

    (void)state;
    h_start(h);
    h_clear(h);
    h_client_n(h, cmd, sizeof(cmd) - 1);
    assert_true(strncmp(h->tr, "R:-ERR NUL byte in command\r\n+OK capability", 42) == 0);
    h_free(h);
}

static void test_bare_lf_ends_a_line(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "USER alice\nPASS " PW "\n");
    assert_string_equal(h->tr, "R:+OK\r\n|C:alice|");
    h_free(h);
}

static void test_commands_sent_before_the_greeting_are_answered_after_it(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_client(h, "CAPA\r\n");        /* bytes arrived before pop3_start */
    h_start(h);
    assert_true(strncmp(h->tr, "R:+OK esproxy POP3 ready\r\n+OK capability list follows\r\n", 55) == 0);
    h_free(h);
}

static void test_pipelined_commands_in_one_read_are_answered_and_forwarded_in_order(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "CAPA\r\nUSER alice\r\nPASS " PW "\r\nSTAT\r\nLIST\r\nQUIT\r\n");
    assert_int_equal(h->clen, 0);       /* held by the module, not lost */
    h_upstream(h, "+OK ready\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "+OK Logged in.\r\n");
    assert_non_null(strstr(h->tr, "|C:alice|U:USER alice\r\nPASS " PW "\r\n|R:+OK Logged in.\r\n|S|"
                                  "U:STAT\r\nLIST\r\nQUIT\r\n|"));
    h_free(h);
}

static void test_commands_pipelined_behind_a_failed_login_are_processed_after_it(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_client(h, "USER alice\r\nPASS wrong\r\nUSER alice\r\nPASS " PW "\r\n");
    h_upstream(h, "+OK ready\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "-ERR [AUTH] Authentication failed.\r\n");
    assert_string_equal(h->tr, "R:+OK\r\n|C:alice|U:USER alice\r\nPASS wrong\r\n|"
                               "R:-ERR [AUTH] Authentication failed.\r\n|X|R:+OK\r\n|C:alice|");
    h_free(h);
}

static void test_pipelined_input_beyond_the_buffer_waits_with_the_proxy(void **state)
{
    struct proto_limits l = lim_default();
    struct harness *h;
    char big[200];

    (void)state;
    l.max_line = 40;
    h = h_new_lim(&l, false);
    memset(big, 'x', sizeof(big));
    h_start(h);
    h_clear(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_client_n(h, big, sizeof(big));
    assert_int_equal(h->clen, 200 - 42);    /* the module holds max_line + 2 */
    h_upstream(h, "+OK ready\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "+OK Logged in.\r\n");
    assert_int_equal(h->clen, 0);           /* re-offered after splice: forwarded */
    assert_non_null(strstr(h->tr, "|S|U:xxxx"));
    assert_int_equal(strlen(strstr(h->tr, "|S|U:")) - 6, 200);
    h_free(h);
}

static void run_dialogue(struct harness *h, size_t chunk)
{
    static const char client[] = "CAPA\r\nAUTH PLAIN\r\n!!\r\nUSER alice\r\nPASS wrong\r\n"
                                 "USER alice\r\nPASS " PW "\r\nSTAT\r\n";
    /* replies come one per command sent, so feed each upstream line separately */
    static const char *const up_lines1[] = { "+OK ready\r\n", "+OK\r\n", "-ERR nope\r\n" };
    static const char *const up_lines2[] = { "+OK ready\r\n", "+OK\r\n", "+OK Logged in.\r\n+OK 1 10\r\n" };

    h_start(h);
    for (size_t i = 0; i < sizeof(client) - 1; i += chunk)
        h_client_n(h, client + i, sizeof(client) - 1 - i < chunk ? sizeof(client) - 1 - i : chunk);
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < strlen(up_lines1[k]); i += chunk)
            h_upstream_n(h, up_lines1[k] + i, strlen(up_lines1[k]) - i < chunk ? strlen(up_lines1[k]) - i : chunk);
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < strlen(up_lines2[k]); i += chunk)
            h_upstream_n(h, up_lines2[k] + i, strlen(up_lines2[k]) - i < chunk ? strlen(up_lines2[k]) - i : chunk);
}

static void test_dialogue_one_byte_at_a_time_matches_the_dialogue_in_one_piece(void **state)
{
    struct harness *whole = h_new(), *bytes = h_new();

    (void)state;
    run_dialogue(whole, 4096);
    run_dialogue(bytes, 1);
    assert_string_equal(bytes->tr, whole->tr);
    assert_true(pop3_spliced(bytes->s));
    assert_non_null(strstr(whole->tr, "-ERR [AUTH] invalid base64"));
    assert_non_null(strstr(whole->tr, "|S|U:STAT\r\n|R:+OK 1 10\r\n|"));
    h_free(whole);
    h_free(bytes);
}

static void test_client_closing_mid_command_or_mid_login_frees_everything(void **state)
{
    struct harness *a = h_new(), *b = h_new(), *c = h_new();

    (void)state;
    h_client(a, "USER ali");                    /* partial line */
    h_client(b, "USER alice\r\nPASS " PW "\r\nST");  /* login in progress */
    h_upstream(b, "+OK re");
    h_client(c, "AUTH PLAIN\r\nAGFsa");         /* mid continuation */
    h_free(a);                                  /* the sanitizer build checks for leaks */
    h_free(b);
    h_free(c);
    pop3_session_free(NULL);
}

static void test_input_after_close_is_consumed_and_ignored(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_client(h, "QUIT\r\n");
    h_clear(h);
    h_client(h, "USER alice\r\n");
    h_upstream(h, "+OK\r\n");
    h_error(h, PUE_TUNNEL_LOST);
    assert_string_equal(h->tr, "");
    assert_int_equal(h->clen, 0);
    h_free(h);
}

/* ---- upstream trouble ---- */

static void test_upstream_error_during_login_sends_sys_temp_and_closes(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_clear(h);
    h_error(h, PUE_CONNECT_FAILED);
    assert_string_equal(h->tr, "R:-ERR [SYS/TEMP] back-end unavailable, try again\r\n|Q|");
    h_free(h);
}

static void test_tunnel_lost_during_login_logs_in_again_once(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_upstream(h, "+OK Dovecot ready.\r\n");
    h_upstream(h, "+OK\r\n");     /* PASS is out when the node dies */
    h_clear(h);
    h_error(h, PUE_TUNNEL_LOST);
    assert_string_equal(h->tr, "C:alice|");     /* nothing to the client */
    assert_non_null(strstr(h->logs, "event=login_retry"));
    h_clear(h);
    h_upstream(h, "+OK Dovecot on the new node.\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "+OK Logged in.\r\n");
    assert_string_equal(h->tr, "U:USER alice\r\nPASS " PW "\r\n|R:+OK Logged in.\r\n|S|");
    assert_true(pop3_spliced(h->s));
    h_free(h);

    /* a second loss under the same login fails it */
    h = h_new();
    h_start(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_error(h, PUE_TUNNEL_LOST);
    h_clear(h);
    h_error(h, PUE_TUNNEL_LOST);
    assert_string_equal(h->tr, "R:-ERR [SYS/TEMP] back-end unavailable, try again\r\n|Q|");
    h_free(h);
}

static void test_tunnel_lost_after_splice_sends_sys_temp_and_closes(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_login(h);
    h_clear(h);
    h_error(h, PUE_TUNNEL_LOST);
    assert_string_equal(h->tr, "R:-ERR [SYS/TEMP] back-end connection lost, try again\r\n|Q|");
    assert_false(pop3_spliced(h->s));
    h_free(h);
}

static void test_backend_closing_after_splice_just_closes_the_client(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_login(h);
    h_clear(h);
    h_error(h, PUE_CLOSED);
    assert_string_equal(h->tr, "Q|");
    h_free(h);
}

static void test_upstream_error_with_no_upstream_in_use_is_ignored(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_error(h, PUE_CLOSED);
    assert_string_equal(h->tr, "");
    h_free(h);
}

static void test_backend_garbage_during_login_fails_safe(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_clear(h);
    h_upstream(h, "* OK IMAP4rev1 ready\r\n");
    assert_string_equal(h->tr, "R:-ERR [SYS/TEMP] back-end unavailable, try again\r\n|X|Q|");
    h_free(h);
}

static void test_backend_bytes_with_no_login_in_progress_fail_safe(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_clear(h);
    h_upstream(h, "+OK\r\n");
    assert_string_equal(h->tr, "R:-ERR [SYS/TEMP] back-end unavailable, try again\r\n|Q|");
    h_free(h);
}

static void test_backend_replies_sent_ahead_of_our_command_fail_safe(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_clear(h);
    h_upstream(h, "+OK ready\r\n+OK\r\n+OK Logged in.\r\n");    /* answers before USER was sent */
    assert_string_equal(h->tr, "R:-ERR [SYS/TEMP] back-end unavailable, try again\r\n|X|Q|");
    h_free(h);
}

static void test_backend_greeting_err_fails_safe(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_clear(h);
    h_upstream(h, "-ERR too busy\r\n");
    assert_string_equal(h->tr, "R:-ERR [SYS/TEMP] back-end unavailable, try again\r\n|X|Q|");
    h_free(h);
}

static void test_overlong_backend_reply_during_login_fails_safe(void **state)
{
    struct harness *h = h_new();
    char big[2048];

    (void)state;
    memset(big, 'A', sizeof(big));
    memcpy(big, "+OK ", 4);
    h_start(h);
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_clear(h);
    h_upstream_n(h, big, sizeof(big));
    assert_string_equal(h->tr, "R:-ERR [SYS/TEMP] back-end unavailable, try again\r\n|X|Q|");
    h_free(h);
}

/* ---- secrets ---- */

static void test_password_never_appears_in_replies_or_logs(void **state)
{
    struct harness *h = h_new();

    (void)state;
    h_start(h);
    /* a back-end that echoes the password in its error text */
    h_client(h, "USER alice\r\nPASS " PW "\r\n");
    h_upstream(h, "+OK ready\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "-ERR bad password " PW "\r\n");
    assert_non_null(strstr(h->tr, "R:-ERR [AUTH] authentication failed\r\n|X|"));
    /* AUTH PLAIN, refused plaintext, bad base64, then a successful login */
    h_client(h, "AUTH PLAIN AGFsaWNlAHMzY3JldC1Qdw==\r\n");
    h_upstream(h, "+OK ready\r\n");
    h_upstream(h, "+OK\r\n");
    h_upstream(h, "+OK Logged in as alice " PW "\r\n");
    assert_true(pop3_spliced(h->s));
    assert_non_null(strstr(h->tr, "R:+OK logged in\r\n|S|"));
    assert_true(h->loglen > 0);
    assert_non_null(strstr(h->logs, "event=login_ok user=alice"));
    assert_false(h_secret_leaked(h, PW));
    h_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_is_sent_once_on_start),
        cmocka_unit_test(test_capa_lists_user_sasl_plain_stls_pipelining_and_codes),
        cmocka_unit_test(test_capa_omits_stls_under_tls_and_plaintext_mechanisms_when_refused),
        cmocka_unit_test(test_user_pass_login_emits_exactly_connect_upstream_login_reply_splice),
        cmocka_unit_test(test_spliced_session_relays_bytes_both_ways_untouched),
        cmocka_unit_test(test_auth_plain_with_initial_response_logs_in),
        cmocka_unit_test(test_auth_plain_without_initial_response_asks_for_continuation),
        cmocka_unit_test(test_auth_plain_cancelled_with_star_leaves_session_usable),
        cmocka_unit_test(test_auth_plain_with_invalid_base64_is_refused_and_session_continues),
        cmocka_unit_test(test_auth_plain_message_without_password_is_refused),
        cmocka_unit_test(test_credentials_carrying_line_breaks_are_refused),
        cmocka_unit_test(test_unsupported_sasl_mechanism_is_refused),
        cmocka_unit_test(test_wrong_password_relays_err_and_allows_a_retry),
        cmocka_unit_test(test_failures_up_to_the_limit_close_the_session),
        cmocka_unit_test(test_backend_response_code_is_relayed_as_is),
        cmocka_unit_test(test_plaintext_login_is_refused_without_tls_when_configured),
        cmocka_unit_test(test_stls_upgrades_and_then_plaintext_login_is_allowed),
        cmocka_unit_test(test_commands_pipelined_after_stls_are_discarded),
        cmocka_unit_test(test_stls_is_refused_under_tls_or_when_not_offered),
        cmocka_unit_test(test_quit_before_login_says_bye_and_closes),
        cmocka_unit_test(test_transaction_commands_are_refused_before_login),
        cmocka_unit_test(test_unknown_command_gets_err_and_session_continues),
        cmocka_unit_test(test_too_many_invalid_commands_close_the_session),
        cmocka_unit_test(test_overlong_line_closes_the_session),
        cmocka_unit_test(test_line_one_byte_over_max_line_with_bare_lf_is_too_long),
        cmocka_unit_test(test_line_of_exactly_max_line_is_accepted),
        cmocka_unit_test(test_nul_byte_in_command_is_rejected),
        cmocka_unit_test(test_bare_lf_ends_a_line),
        cmocka_unit_test(test_commands_sent_before_the_greeting_are_answered_after_it),
        cmocka_unit_test(test_pipelined_commands_in_one_read_are_answered_and_forwarded_in_order),
        cmocka_unit_test(test_commands_pipelined_behind_a_failed_login_are_processed_after_it),
        cmocka_unit_test(test_pipelined_input_beyond_the_buffer_waits_with_the_proxy),
        cmocka_unit_test(test_dialogue_one_byte_at_a_time_matches_the_dialogue_in_one_piece),
        cmocka_unit_test(test_client_closing_mid_command_or_mid_login_frees_everything),
        cmocka_unit_test(test_input_after_close_is_consumed_and_ignored),
        cmocka_unit_test(test_upstream_error_during_login_sends_sys_temp_and_closes),
        cmocka_unit_test(test_tunnel_lost_during_login_logs_in_again_once),
        cmocka_unit_test(test_tunnel_lost_after_splice_sends_sys_temp_and_closes),
        cmocka_unit_test(test_backend_closing_after_splice_just_closes_the_client),
        cmocka_unit_test(test_upstream_error_with_no_upstream_in_use_is_ignored),
        cmocka_unit_test(test_backend_garbage_during_login_fails_safe),
        cmocka_unit_test(test_backend_bytes_with_no_login_in_progress_fail_safe),
        cmocka_unit_test(test_backend_replies_sent_ahead_of_our_command_fail_safe),
        cmocka_unit_test(test_backend_greeting_err_fails_safe),
        cmocka_unit_test(test_overlong_backend_reply_during_login_fails_safe),
        cmocka_unit_test(test_password_never_appears_in_replies_or_logs),
    };

    return cmocka_run_group_tests_name("pop3", tests, NULL, NULL);
}
