/*
 * HTTP/1.1 module (protocols/http.c): forwarding, keep-alive, pipelining,
 * bodies both ways, interim responses, smuggling shapes, limits, upgrade
 * refusal, and the failover retry rules of issue 8. Each test feeds bytes
 * and reads the action list back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/http.h"

#define IP "192.0.2.7"

struct fx {
    struct http_session *s;
    struct proto_out o;
};

static struct fx *fx_new_with(const struct http_limits *lim, const char *ip, bool tls)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->s = http_session_new(lim, ip, tls);
    assert_non_null(f->s);
    proto_out_init(&f->o);
    return f;
}

static struct fx *fx_new(void)
{
    return fx_new_with(NULL, IP, false);
}

static void fx_free(struct fx *f)
{
    http_session_free(&f->s);
    assert_null(f->s);
    proto_out_free(&f->o);
    free(f);
}

/* Feed client bytes into a fresh action list; all must be consumed. */
static void cin(struct fx *f, const char *str)
{
    proto_out_reset(&f->o);
    assert_int_equal(http_client_input(f->s, (const uint8_t *)str, strlen(str), &f->o), (long)strlen(str));
}

static void uin(struct fx *f, const char *str)
{
    proto_out_reset(&f->o);
    assert_int_equal(http_upstream_input(f->s, (const uint8_t *)str, strlen(str), &f->o), (long)strlen(str));
}

static void uerr(struct fx *f, enum proto_upstream_error e)
{
    proto_out_reset(&f->o);
    http_upstream_error(f->s, e, &f->o);
}

/* The bytes of every action of one kind, concatenated, as a string (static). */
static const char *text(const struct proto_out *o, enum proto_action_kind k)
{
    static char buf[65536];
    size_t n = 0;

    for (size_t i = 0; i < o->n; i++) {
        if (o->a[i].kind != k)
            continue;
        assert_true(n + o->a[i].len < sizeof(buf));
        memcpy(buf + n, o->a[i].data, o->a[i].len);
        n += o->a[i].len;
    }
    buf[n] = '\0';
    return buf;
}

static size_t count(const struct proto_out *o, enum proto_action_kind k)
{
    size_t c = 0;

    for (size_t i = 0; i < o->n; i++)
        c += o->a[i].kind == k;
    return c;
}

/* The kinds in order, logs left out, as letters: R U C X S Z (close). */
static const char *kinds(const struct proto_out *o)
{
    static char buf[256];
    static const char letter[] = { [PA_REPLY] = 'R', [PA_UPSTREAM] = 'U', [PA_CONNECT] = 'C',
                                   [PA_UPSTREAM_CLOSE] = 'X', [PA_SPLICE] = 'S', [PA_STARTTLS] = 'T',
                                   [PA_CLOSE] = 'Z', [PA_LOG] = 'L' };
    size_t n = 0;

    for (size_t i = 0; i < o->n && n + 1 < sizeof(buf); i++)
        if (o->a[i].kind != PA_LOG)
            buf[n++] = letter[o->a[i].kind];
    buf[n] = '\0';
    return buf;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char GET1[] = "GET /index.html HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n";
static const char RESP_OK[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

static void test_simple_get_is_forwarded_with_the_three_forwarding_headers(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    assert_true(http_idle(f->s));
    cin(f, GET1);
    assert_string_equal(kinds(&f->o), "CU");
    assert_string_equal(f->o.a[0].user, "");
    assert_string_equal(text(&f->o, PA_UPSTREAM),
                        "GET /index.html HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n"
                        "X-Forwarded-For: 192.0.2.7\r\nX-Real-IP: 192.0.2.7\r\n"
                        "Forwarded: for=192.0.2.7;proto=http\r\n"
                        "X-Forwarded-Proto: http\r\n\r\n");
    assert_false(http_idle(f->s));
    uin(f, RESP_OK);
    assert_string_equal(kinds(&f->o), "R");
    assert_string_equal(text(&f->o, PA_REPLY), RESP_OK);
    assert_true(http_idle(f->s));
    fx_free(f);
}

static void test_client_forwarding_headers_are_replaced_by_the_real_client_address(void **state)
{
    struct fx *f = fx_new_with(NULL, "2001:db8::1", true);
    const char *up;

    (void)state;
    cin(f, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\n"
           "x-real-ip: 10.0.0.2\r\nX-Forwarded-Proto: gopher\r\nX-Forwarded-For: 10.0.0.3\r\n\r\n");
    up = text(&f->o, PA_UPSTREAM);
    assert_string_equal(up, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 2001:db8::1\r\n"
                            "X-Real-IP: 2001:db8::1\r\nForwarded: for=\"[2001:db8::1]\";proto=https\r\n"
                            "X-Forwarded-Proto: https\r\n\r\n");
    assert_null(strstr(up, "10.0.0."));
    fx_free(f);
}

static void test_hop_by_hop_headers_named_in_connection_are_dropped_but_framing_passes(void **state)
{
    struct fx *f = fx_new();
    const char *up;

    (void)state;
    cin(f, "POST /f HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret, Content-Length\r\n"
           "Keep-Alive: timeout=5\r\nX-Secret: s\r\nTE: trailers\r\nContent-Length: 2\r\n\r\nok");
    up = text(&f->o, PA_UPSTREAM);
    assert_null(strstr(up, "X-Secret"));
    assert_null(strstr(up, "Keep-Alive"));
    assert_null(strstr(up, "Connection"));
    assert_null(strstr(up, "TE:"));
    assert_non_null(strstr(up, "\r\nContent-Length: 2\r\n"));
    assert_true(strlen(up) > 2 && strcmp(up + strlen(up) - 6, "\r\n\r\nok") == 0);
    fx_free(f);
}

static void test_keep_alive_two_requests_get_two_responses_in_order_on_one_connection(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    assert_int_equal(count(&f->o, PA_CONNECT), 1);
    uin(f, RESP_OK);
    assert_string_equal(text(&f->o, PA_REPLY), RESP_OK);
    cin(f, "GET /two HTTP/1.1\r\nHost: example.test\r\n\r\n");
    assert_string_equal(kinds(&f->o), "U");
    assert_true(starts(text(&f->o, PA_UPSTREAM), "GET /two HTTP/1.1\r\n"));
    uin(f, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
    assert_string_equal(text(&f->o, PA_REPLY), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
    assert_int_equal(count(&f->o, PA_CLOSE), 0);
    fx_free(f);
}

static void test_three_pipelined_requests_in_one_read_are_answered_in_order(void **state)
{
    struct fx *f = fx_new();
    const char *up;
    const char *resps = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
                        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nc\r\n0\r\n\r\n";

    (void)state;
    cin(f, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_string_equal(kinds(&f->o), "CU");
    up = text(&f->o, PA_UPSTREAM);
    assert_true(strstr(up, "GET /a ") < strstr(up, "GET /b ") && strstr(up, "GET /b ") < strstr(up, "GET /c "));
    assert_true(starts(up, "GET /a "));
    uin(f, resps);
    assert_string_equal(text(&f->o, PA_REPLY), resps);
    assert_true(http_idle(f->s));
    fx_free(f);
}

static void test_chunked_request_body_and_chunked_response_pass_through_as_chunked(void **state)
{
    struct fx *f = fx_new();
    const char *up;

    (void)state;
    cin(f, "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    up = text(&f->o, PA_UPSTREAM);
    assert_non_null(strstr(up, "\r\nTransfer-Encoding: chunked\r\n"));
    assert_true(strlen(up) > 8 && strcmp(up + strlen(up) - 10, "\r\n\r\n5\r\nhel") == 0);
    assert_false(http_idle(f->s));
    cin(f, "lo\r\n3;ext=1\r\n wo\r\n0\r\nX-Trailer: t\r\n\r\n");
    assert_string_equal(text(&f->o, PA_UPSTREAM), "lo\r\n3;ext=1\r\n wo\r\n0\r\nX-Trailer: t\r\n\r\n");
    uin(f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nd");
    uin(f, "own\r\n0\r\n\r\n");
    assert_string_equal(text(&f->o, PA_REPLY), "own\r\n0\r\n\r\n");
    assert_true(http_idle(f->s));
    fx_free(f);
}

static void test_content_length_bodies_are_forwarded_as_is_both_ways(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234");
    cin(f, "56789GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_true(starts(text(&f->o, PA_UPSTREAM), "56789GET /next HTTP/1.1\r\n"));
    uin(f, "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndo");
    uin(f, "neHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_string_equal(text(&f->o, PA_REPLY), "neHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_true(http_idle(f->s));
    fx_free(f);
}

static void test_expect_100_continue_forwards_the_head_and_relays_the_interim_response(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, "PUT /big HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    assert_string_equal(kinds(&f->o), "CU");
    assert_non_null(strstr(text(&f->o, PA_UPSTREAM), "\r\nExpect: 100-continue\r\n"));
    uin(f, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_string_equal(text(&f->o, PA_REPLY), "HTTP/1.1 100 Continue\r\n\r\n");
    cin(f, "data");
    assert_string_equal(text(&f->o, PA_UPSTREAM), "data");
    uin(f, "HTTP/1.1 204 No Content\r\n\r\n");
    assert_string_equal(text(&f->o, PA_REPLY), "HTTP/1.1 204 No Content\r\n\r\n");
    assert_true(http_idle(f->s));
    fx_free(f);
}

static void test_head_response_without_body_does_not_desynchronize_the_next_response(void **state)
{
    struct fx *f = fx_new();
    const char *resps = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    (void)state;
    cin(f, "HEAD /f HTTP/1.1\r\nHost: h\r\n\r\nGET /f HTTP/1.1\r\nHost: h\r\n\r\n");
    uin(f, resps);
    assert_string_equal(text(&f->o, PA_REPLY), resps);
    assert_true(http_idle(f->s));
    cin(f, GET1);       /* still in step: the next request goes out */
    assert_string_equal(kinds(&f->o), "U");
    fx_free(f);
}

static void test_204_and_304_responses_have_no_body(void **state)
{
    struct fx *f = fx_new();
    const char *resps = "HTTP/1.1 204 No Content\r\n\r\n"
                        "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz";

    (void)state;
    cin(f, "DELETE /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    uin(f, resps);
    assert_string_equal(text(&f->o, PA_REPLY), resps);
    assert_true(http_idle(f->s));
    fx_free(f);
}

static void test_connection_close_from_the_client_closes_after_its_response(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_non_null(strstr(text(&f->o, PA_UPSTREAM), "\r\nConnection: close\r\n"));
    assert_null(strstr(text(&f->o, PA_UPSTREAM), "ignored"));
    uin(f, RESP_OK);
    assert_string_equal(kinds(&f->o), "RXZ");
    assert_string_equal(text(&f->o, PA_REPLY), RESP_OK);
    fx_free(f);
}

static void test_http10_request_without_keep_alive_closes_after_its_response(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, "GET / HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(text(&f->o, PA_UPSTREAM), "GET / HTTP/1.0\r\nConnection: close\r\n"));
    uin(f, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx");
    assert_string_equal(kinds(&f->o), "RXZ");
    fx_free(f);
}

static void test_connection_close_from_the_server_closes_after_its_response(void **state)
{
    struct fx *f = fx_new();
    const char *resp = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";

    (void)state;
    cin(f, GET1);
    uin(f, resp);
    assert_string_equal(kinds(&f->o), "RXZ");
    assert_string_equal(text(&f->o, PA_REPLY), resp);  /* response headers untouched */
    cin(f, GET1);
    assert_int_equal(f->o.n, 0);
    fx_free(f);
}

static void test_close_delimited_response_ends_when_the_server_closes(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    uin(f, "HTTP/1.1 200 OK\r\n\r\nuntil eof");
    assert_string_equal(kinds(&f->o), "R");
    uerr(f, PUE_CLOSED);
    assert_string_equal(kinds(&f->o), "Z");
    fx_free(f);
}

/* A request shape that must be answered 400 with nothing of it forwarded. */
static void assert_rejected(const char *req, const char *status_line)
{
    struct fx *f = fx_new();
    const char *reply;

    cin(f, req);
    assert_int_equal(count(&f->o, PA_UPSTREAM), 0);
    /* the reply, then the close (and the upstream dropped if one was opened) */
    assert_true(strcmp(kinds(&f->o), "RZ") == 0 || strcmp(kinds(&f->o), "CRXZ") == 0);
    reply = text(&f->o, PA_REPLY);
    assert_true(starts(reply, status_line));
    assert_non_null(strstr(reply, "\r\nConnection: close\r\n"));
    fx_free(f);
}

static void test_content_length_with_transfer_encoding_is_rejected(void **state)
{
    (void)state;
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "0\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n");
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                    "HTTP/1.1 400 Bad Request\r\n");
}

static void test_duplicate_differing_content_length_is_rejected(void **state)
{
    (void)state;
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                    "HTTP/1.1 400 Bad Request\r\n");
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello", "HTTP/1.1 400 Bad Request\r\n");
}

static void test_transfer_encoding_other_than_a_final_chunked_is_rejected(void **state)
{
    (void)state;
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "HTTP/1.1 400 ");
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 400 ");
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "HTTP/1.1 400 ");
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", "HTTP/1.1 400 ");
    assert_rejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 ");
}

static void test_obs_fold_header_continuation_is_rejected(void **state)
{
    (void)state;
    assert_rejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n", "HTTP/1.1 400 ");
    assert_rejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n", "HTTP/1.1 400 ");
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n",
                    "HTTP/1.1 400 ");
}

static void test_invalid_chunk_sizes_are_rejected(void **state)
{
    static const char *const bad[] = { "zz\r\n", "-1\r\n", "0x5\r\n", "5 \r\nhello\r\n", "ffffffffffffffffff\r\n",
                                       "5\r\nhelloXX\r\n" };
    char req[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%s", bad[i]);
        assert_rejected(req, "HTTP/1.1 400 ");
    }
}

static void test_bare_lf_line_endings_are_rejected(void **state)
{
    (void)state;
    assert_rejected("GET / HTTP/1.1\nHost: h\n\n", "HTTP/1.1 400 ");
    assert_rejected("GET / HTTP/1.1\r\nHost: h\n\r\n", "HTTP/1.1 400 ");
    assert_rejected("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", "HTTP/1.1 400 ");
    assert_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", "HTTP/1.1 400 ");
}

static void test_nul_in_headers_is_rejected(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
    struct fx *f = fx_new();

    (void)state;
    proto_out_reset(&f->o);
    assert_int_equal(http_client_input(f->s, (const uint8_t *)req, sizeof(req) - 1, &f->o), (long)sizeof(req) - 1);
    assert_int_equal(count(&f->o, PA_UPSTREAM), 0);
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 400 Bad Request\r\n"));
    assert_int_equal(count(&f->o, PA_CLOSE), 1);
    fx_free(f);
}

static void test_missing_or_duplicate_host_is_rejected(void **state)
{
    (void)state;
    assert_rejected("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "HTTP/1.1 400 ");
    assert_rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 ");
}

static void test_oversized_header_block_is_answered_431(void **state)
{
    struct http_limits lim = { .max_header_bytes = 100, .max_retry_body = 1000 };
    struct fx *f = fx_new_with(&lim, IP, false);
    char req[256];

    (void)state;
    memset(req, 0, sizeof(req));
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %0100d\r\n\r\n", 7);
    cin(f, req);
    assert_int_equal(count(&f->o, PA_UPSTREAM), 0);
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_string_equal(kinds(&f->o), "RZ");
    fx_free(f);
}

static void test_smuggling_after_a_good_pipelined_request_is_answered_after_its_response(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, "GET /ok HTTP/1.1\r\nHost: h\r\n\r\n"
           "POST /evil HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_string_equal(kinds(&f->o), "CU");
    assert_null(strstr(text(&f->o, PA_UPSTREAM), "evil"));
    uin(f, RESP_OK);
    assert_string_equal(kinds(&f->o), "RRXZ");
    assert_true(starts(text(&f->o, PA_REPLY), RESP_OK));
    assert_non_null(strstr(text(&f->o, PA_REPLY), "HTTP/1.1 400 Bad Request\r\n"));
    fx_free(f);
}

static void test_bad_chunk_after_the_head_went_upstream_drops_the_upstream_and_answers_400(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    cin(f, "2\r\nab\r\nq\r\n");
    assert_int_equal(count(&f->o, PA_UPSTREAM), 0);
    assert_string_equal(kinds(&f->o), "RXZ");
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 400 "));
    fx_free(f);
}

static void test_upgrade_and_connect_are_refused_by_default(void **state)
{
    (void)state;
    assert_rejected("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                    "HTTP/1.1 501 Not Implemented\r\n");
    assert_rejected("CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n",
                    "HTTP/1.1 501 Not Implemented\r\n");
    assert_rejected("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/1.1 ");
}

static void test_allowed_upgrade_is_spliced_after_101(void **state)
{
    struct http_limits lim = HTTP_LIMITS_DEFAULT;
    static const char req[] = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    static const char more[] = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nmore";
    struct fx *f;

    (void)state;
    lim.allow_upgrade = true;
    f = fx_new_with(&lim, IP, false);
    proto_out_reset(&f->o);
    /* bytes after the upgrade request wait for the answer */
    assert_int_equal(http_client_input(f->s, (const uint8_t *)more, strlen(more), &f->o), (long)strlen(req));
    assert_non_null(strstr(text(&f->o, PA_UPSTREAM), "\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"));
    uin(f, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00");
    assert_string_equal(kinds(&f->o), "RS");
    assert_non_null(strstr(text(&f->o, PA_REPLY), "\r\n\r\n\x81"));
    fx_free(f);
}

/* Kinds and bytes per kind, merged across adjacent actions of one kind. */
static char *transcript(const struct proto_out *o, char *acc, size_t cap)
{
    size_t n = strlen(acc);

    for (size_t i = 0; i < o->n; i++) {
        const struct proto_action *a = &o->a[i];

        if (a->kind == PA_LOG)
            continue;
        if (a->kind != PA_REPLY && a->kind != PA_UPSTREAM) {
            n += (size_t)snprintf(acc + n, cap - n, "<%d>", (int)a->kind);
            continue;
        }
        if (n < 3 || acc[n - 1] != ']' || acc[n - 2] != (char)('0' + a->kind)) {
            n += (size_t)snprintf(acc + n, cap - n, "<%d:", (int)a->kind);
        } else {
            n -= 2;     /* reopen the previous run of the same kind */
        }
        assert_true(n + a->len + 3 < cap);
        memcpy(acc + n, a->data, a->len);
        n += a->len;
        n += (size_t)snprintf(acc + n, cap - n, "%c]", '0' + a->kind);
    }
    return acc;
}

static void run_conversation(size_t step, char *acc, size_t cap)
{
    static const char client[] =
        "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        "HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"
        "PUT /c HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
        "GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    static const char server[] =
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
        "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast";
    struct fx *f = fx_new();

    acc[0] = '\0';
    for (size_t off = 0; off < sizeof(client) - 1; off += step) {
        size_t n = sizeof(client) - 1 - off < step ? sizeof(client) - 1 - off : step;

        proto_out_reset(&f->o);
        assert_int_equal(http_client_input(f->s, (const uint8_t *)client + off, n, &f->o), (long)n);
        transcript(&f->o, acc, cap);
    }
    for (size_t off = 0; off < sizeof(server) - 1; off += step) {
        size_t n = sizeof(server) - 1 - off < step ? sizeof(server) - 1 - off : step;

        proto_out_reset(&f->o);
        assert_int_equal(http_upstream_input(f->s, (const uint8_t *)server + off, n, &f->o), (long)n);
        transcript(&f->o, acc, cap);
    }
    fx_free(f);
}

static void test_input_one_byte_at_a_time_gives_identical_actions(void **state)
{
    static char whole[8192], bytewise[8192];

    (void)state;
    run_conversation(100000, whole, sizeof(whole));
    run_conversation(1, bytewise, sizeof(bytewise));
    assert_string_equal(whole, bytewise);
    assert_non_null(strstr(whole, "last"));
    assert_non_null(strstr(whole, "<6>"));      /* closed after the Connection: close request */
}

static void test_get_is_retried_once_when_the_upstream_fails_before_any_response_byte(void **state)
{
    struct fx *f = fx_new();
    char first[1024];

    (void)state;
    cin(f, GET1);
    snprintf(first, sizeof(first), "%s", text(&f->o, PA_UPSTREAM));
    uerr(f, PUE_TUNNEL_LOST);
    assert_string_equal(kinds(&f->o), "CU");
    assert_string_equal(text(&f->o, PA_UPSTREAM), first);
    uin(f, RESP_OK);
    assert_string_equal(text(&f->o, PA_REPLY), RESP_OK);
    assert_true(http_idle(f->s));
    fx_free(f);
}

static void test_second_failure_of_a_retried_get_is_answered_503_or_502(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    uerr(f, PUE_TUNNEL_LOST);
    uerr(f, PUE_TUNNEL_LOST);
    assert_string_equal(kinds(&f->o), "RZ");
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(text(&f->o, PA_REPLY), "\r\nRetry-After: 1\r\n"));
    assert_non_null(strstr(text(&f->o, PA_REPLY), "\r\nConnection: close\r\n"));
    fx_free(f);

    f = fx_new();
    cin(f, GET1);
    uerr(f, PUE_CONNECT_FAILED);
    assert_string_equal(kinds(&f->o), "CU");
    uerr(f, PUE_CONNECT_FAILED);
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 502 Bad Gateway\r\n"));
    assert_string_equal(kinds(&f->o), "RZ");
    fx_free(f);
}

static void test_post_is_not_retried_and_gets_502(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx");
    uerr(f, PUE_CLOSED);
    assert_string_equal(kinds(&f->o), "RZ");
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 502 Bad Gateway\r\n"));
    fx_free(f);
}

static void test_timeout_is_answered_503_without_retry(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    uerr(f, PUE_TIMEOUT);
    assert_string_equal(kinds(&f->o), "RZ");
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 503 "));
    fx_free(f);
}

static void test_failure_after_response_bytes_only_closes(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    uin(f, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    uerr(f, PUE_TUNNEL_LOST);
    assert_string_equal(kinds(&f->o), "Z");
    fx_free(f);
}

static void test_pipelined_gets_are_retried_together_in_order(void **state)
{
    struct fx *f = fx_new();
    char first[2048];

    (void)state;
    cin(f, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    uin(f, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
    cin(f, "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
    snprintf(first, sizeof(first), "%s", text(&f->o, PA_UPSTREAM));
    uerr(f, PUE_CLOSED);
    assert_string_equal(kinds(&f->o), "CU");
    assert_true(starts(text(&f->o, PA_UPSTREAM), "GET /2 "));
    assert_non_null(strstr(text(&f->o, PA_UPSTREAM), first));
    fx_free(f);
}

static void test_body_larger_than_the_retry_limit_is_not_retried(void **state)
{
    struct http_limits lim = { .max_header_bytes = 4096, .max_retry_body = 4 };
    struct fx *f = fx_new_with(&lim, IP, false);

    (void)state;
    cin(f, "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n12345678");
    uerr(f, PUE_TUNNEL_LOST);
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 503 "));
    fx_free(f);
}

static void test_idle_upstream_close_is_silent_and_the_next_request_reconnects(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    uin(f, RESP_OK);
    uerr(f, PUE_CLOSED);
    assert_int_equal(f->o.n, 0);
    cin(f, GET1);
    assert_string_equal(kinds(&f->o), "CU");
    fx_free(f);
}

static void test_client_eof_delivers_pending_responses_then_closes(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    proto_out_reset(&f->o);
    http_client_eof(f->s, &f->o);
    assert_int_equal(f->o.n, 0);
    uin(f, RESP_OK);
    assert_string_equal(kinds(&f->o), "RXZ");
    fx_free(f);

    f = fx_new();
    proto_out_reset(&f->o);
    http_client_eof(f->s, &f->o);
    assert_string_equal(kinds(&f->o), "Z");
    fx_free(f);
}

static void test_unsolicited_upstream_bytes_are_dropped_with_the_upstream(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    uin(f, RESP_OK);
    uin(f, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n");
    assert_string_equal(kinds(&f->o), "X");
    cin(f, GET1);
    assert_string_equal(kinds(&f->o), "CU");
    fx_free(f);
}

static void test_malformed_response_is_answered_502(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    uin(f, "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n");
    assert_string_equal(kinds(&f->o), "RXZ");
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 502 Bad Gateway\r\n"));
    fx_free(f);
}

static void test_pipeline_limit_stops_consuming_until_a_response_completes(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    char all[sizeof(req) * (HTTP_MAX_PIPELINE + 1)];
    size_t one = sizeof(req) - 1, n = 0;
    struct fx *f = fx_new();

    (void)state;
    for (int i = 0; i <= HTTP_MAX_PIPELINE; i++, n += one)
        memcpy(all + n, req, one);
    proto_out_reset(&f->o);
    assert_int_equal(http_client_input(f->s, (const uint8_t *)all, n, &f->o), (long)(one * HTTP_MAX_PIPELINE));
    uin(f, RESP_OK);
    proto_out_reset(&f->o);
    assert_int_equal(http_client_input(f->s, (const uint8_t *)all, one, &f->o), (long)one);
    assert_string_equal(kinds(&f->o), "U");
    fx_free(f);
}

static void test_session_freed_mid_request_leaks_nothing(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc");
    uin(f, "HTTP/1.1 200 OK\r\nContent-Le");
    cin(f, "def");
    fx_free(f);
    http_session_free(NULL);
}

static unsigned freed_blocks, freed_dirty;

static void observe_free(const void *p, size_t cap)
{
    const uint8_t *b = p;

    freed_blocks++;
    for (size_t i = 0; i < cap; i++)
        freed_dirty += b[i] != 0;
}

/* The head buffer grows while an Authorization header arrives; every block
 * it leaves behind, and the retry copy, is scrubbed before it is freed. */
static void test_buffers_holding_authorization_are_scrubbed_when_grown_or_freed(void **state)
{
    struct fx *f = fx_new();
    char head[2048];

    (void)state;
    snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic %0900d\r\n\r\n", 7);
    freed_blocks = freed_dirty = 0;
    proto_secure_set_free_observer(observe_free);
    for (size_t off = 0; off < strlen(head); off += 100) {
        char part[101];

        snprintf(part, sizeof(part), "%.100s", head + off);
        cin(f, part);
    }
    assert_non_null(strstr(text(&f->o, PA_UPSTREAM), "Authorization: Basic 0000"));
    assert_true(freed_blocks >= 2);     /* 256 -> 512 -> 1024 bytes of head so far */
    uin(f, RESP_OK);
    fx_free(f);
    assert_true(freed_blocks >= 4);     /* + the head and the retry copy */
    assert_int_equal(freed_dirty, 0);
    proto_secure_set_free_observer(NULL);
}

static void test_partial_head_timeout_is_answered_408_and_closes(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    assert_false(http_head_partial(f->s));
    cin(f, "GET / HTTP/1.1\r\nHost: a\r\nX-Drip: ab");
    assert_true(http_head_partial(f->s));
    assert_string_equal(kinds(&f->o), "");
    proto_out_reset(&f->o);
    http_request_timeout(f->s, &f->o);
    assert_string_equal(kinds(&f->o), "RZ");
    assert_true(starts(text(&f->o, PA_REPLY), "HTTP/1.1 408 Request Timeout\r\n"));
    assert_false(http_head_partial(f->s));
    fx_free(f);
}

static void test_head_timeout_behind_a_pending_response_comes_after_it(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    cin(f, GET1);
    cin(f, "GET /2 HTTP/1.1\r\nHo");
    assert_true(http_head_partial(f->s));
    proto_out_reset(&f->o);
    http_request_timeout(f->s, &f->o);
    assert_int_equal(count(&f->o, PA_REPLY), 0);     /* GET1's response is still due */
    uin(f, RESP_OK);
    assert_string_equal(kinds(&f->o), "RRXZ");
    assert_true(starts(text(&f->o, PA_REPLY), RESP_OK));
    assert_non_null(strstr(text(&f->o, PA_REPLY), "HTTP/1.1 408 Request Timeout\r\n"));
    fx_free(f);
}

static void test_complete_head_or_idle_connection_ignores_the_timeout(void **state)
{
    struct fx *f = fx_new();

    (void)state;
    proto_out_reset(&f->o);
    http_request_timeout(f->s, &f->o);
    assert_int_equal(f->o.n, 0);
    cin(f, GET1);
    assert_false(http_head_partial(f->s));
    proto_out_reset(&f->o);
    http_request_timeout(f->s, &f->o);
    assert_int_equal(f->o.n, 0);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get_is_forwarded_with_the_three_forwarding_headers),
        cmocka_unit_test(test_client_forwarding_headers_are_replaced_by_the_real_client_address),
        cmocka_unit_test(test_hop_by_hop_headers_named_in_connection_are_dropped_but_framing_passes),
        cmocka_unit_test(test_keep_alive_two_requests_get_two_responses_in_order_on_one_connection),
        cmocka_unit_test(test_three_pipelined_requests_in_one_read_are_answered_in_order),
        cmocka_unit_test(test_chunked_request_body_and_chunked_response_pass_through_as_chunked),
        cmocka_unit_test(test_content_length_bodies_are_forwarded_as_is_both_ways),
        cmocka_unit_test(test_expect_100_continue_forwards_the_head_and_relays_the_interim_response),
        cmocka_unit_test(test_head_response_without_body_does_not_desynchronize_the_next_response),
        cmocka_unit_test(test_204_and_304_responses_have_no_body),
        cmocka_unit_test(test_connection_close_from_the_client_closes_after_its_response),
        cmocka_unit_test(test_http10_request_without_keep_alive_closes_after_its_response),
        cmocka_unit_test(test_connection_close_from_the_server_closes_after_its_response),
        cmocka_unit_test(test_close_delimited_response_ends_when_the_server_closes),
        cmocka_unit_test(test_content_length_with_transfer_encoding_is_rejected),
        cmocka_unit_test(test_duplicate_differing_content_length_is_rejected),
        cmocka_unit_test(test_transfer_encoding_other_than_a_final_chunked_is_rejected),
        cmocka_unit_test(test_obs_fold_header_continuation_is_rejected),
        cmocka_unit_test(test_invalid_chunk_sizes_are_rejected),
        cmocka_unit_test(test_bare_lf_line_endings_are_rejected),
        cmocka_unit_test(test_nul_in_headers_is_rejected),
        cmocka_unit_test(test_missing_or_duplicate_host_is_rejected),
        cmocka_unit_test(test_oversized_header_block_is_answered_431),
        cmocka_unit_test(test_smuggling_after_a_good_pipelined_request_is_answered_after_its_response),
        cmocka_unit_test(test_bad_chunk_after_the_head_went_upstream_drops_the_upstream_and_answers_400),
        cmocka_unit_test(test_upgrade_and_connect_are_refused_by_default),
        cmocka_unit_test(test_allowed_upgrade_is_spliced_after_101),
        cmocka_unit_test(test_input_one_byte_at_a_time_gives_identical_actions),
        cmocka_unit_test(test_get_is_retried_once_when_the_upstream_fails_before_any_response_byte),
        cmocka_unit_test(test_second_failure_of_a_retried_get_is_answered_503_or_502),
        cmocka_unit_test(test_post_is_not_retried_and_gets_502),
        cmocka_unit_test(test_timeout_is_answered_503_without_retry),
        cmocka_unit_test(test_failure_after_response_bytes_only_closes),
        cmocka_unit_test(test_pipelined_gets_are_retried_together_in_order),
        cmocka_unit_test(test_body_larger_than_the_retry_limit_is_not_retried),
        cmocka_unit_test(test_idle_upstream_close_is_silent_and_the_next_request_reconnects),
        cmocka_unit_test(test_client_eof_delivers_pending_responses_then_closes),
        cmocka_unit_test(test_unsolicited_upstream_bytes_are_dropped_with_the_upstream),
        cmocka_unit_test(test_malformed_response_is_answered_502),
        cmocka_unit_test(test_pipeline_limit_stops_consuming_until_a_response_completes),
        cmocka_unit_test(test_session_freed_mid_request_leaks_nothing),
        cmocka_unit_test(test_buffers_holding_authorization_are_scrubbed_when_grown_or_freed),
        cmocka_unit_test(test_partial_head_timeout_is_answered_408_and_closes),
        cmocka_unit_test(test_head_timeout_behind_a_pending_response_comes_after_it),
        cmocka_unit_test(test_complete_head_or_idle_connection_ignores_the_timeout),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
