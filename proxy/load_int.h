/*
 * Internals of the load generator shared by its files: the session object
 * (load_conn.c), the protocol dialogues that drive it, and the runner.
 *
 * A protocol dialogue is a state machine fed plaintext: input() is called
 * whenever bytes arrived and returns 1 to continue, 0 when the dialogue
 * ended well, -1 after lsess_fail(). wake() is called when a timer armed
 * with lsess_sleep() fires (IMAP IDLE).
 */
#ifndef ESPROXY_LOAD_INT_H
#define ESPROXY_LOAD_INT_H

#include "proxy/load.h"

#include <llhttp.h>
#include <mbedtls/ssl.h>
#include <uv.h>

struct load_run;

struct lbuf {
    char *p;
    size_t len, cap;
};

int lbuf_append(struct lbuf *b, const void *data, size_t len);
void lbuf_consume(struct lbuf *b, size_t n);
void lbuf_free(struct lbuf *b);
/* The bytes a complete line starting at off takes (0 if none yet) and the
 * line without CR LF, NUL-terminated in place. */
size_t lbuf_line_at(struct lbuf *b, size_t off, char **line_r, size_t *len_r);

struct lsess {
    struct load_run *run;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t creq;
    int open_handles;
    enum load_proto proto;
    const struct load_cred *cred;
    const char *host;
    /* TLS */
    mbedtls_ssl_context *ssl;
    bool handshaking;
    struct lbuf raw;            /* ciphertext received, not yet read by mbedTLS */
    /* plaintext received, not yet consumed by the dialogue */
    struct lbuf in;
    bool connected, finished, sleeping;
    enum load_err err;
    /* timing */
    uint64_t t_start, t_op;
    enum load_op op;
    /* dialogue state */
    int state, step, tag, messages;
    size_t literal_left;
    struct lbuf line;           /* IMAP: a response line assembled across literals */
    llhttp_t http;
    bool http_done;
    int http_status;
};

struct lproto {
    void (*start)(struct lsess *s);     /* TCP is connected (and TLS, if implicit) */
    int (*input)(struct lsess *s);
    void (*wake)(struct lsess *s);
};

extern const struct lproto load_pop3;
extern const struct lproto load_imap;
extern const struct lproto load_http;

/* load_conn.c */
int lsess_start(struct lsess *s, const struct sockaddr *sa);
void lsess_send(struct lsess *s, const void *p, size_t len);
void lsess_sendf(struct lsess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lsess_op_begin(struct lsess *s, enum load_op op);
void lsess_op_end(struct lsess *s);
int lsess_fail(struct lsess *s, enum load_err kind);
int lsess_starttls(struct lsess *s);    /* after the server's go-ahead */
void lsess_sleep(struct lsess *s, int ms);
const struct load_opts *lsess_opts(const struct lsess *s);
int load_tls_init(const struct load_opts *o, char *err, size_t errlen);
void load_tls_free(void);

/* load.c: the runner */
struct load_run_hooks {
    void (*session_done)(void *arg, const struct load_rec *rec);
    void (*tick)(void *arg);            /* every 10 ms */
    void (*done)(void *arg);            /* stopped, nothing in flight, handles closed */
    void *arg;
};

struct load_run *load_run_new(uv_loop_t *loop, const struct load_opts *o, const struct load_run_hooks *hooks);
int load_run_start(struct load_run *r);
void load_run_stop(struct load_run *r);     /* start no more sessions; end when in flight is 0 */
struct load_stats *load_run_stats(struct load_run *r);
double load_run_elapsed_ms(const struct load_run *r);
int64_t load_run_wall_start_ms(const struct load_run *r);
void load_run_free(struct load_run **r);
/* called by load_conn.c */
void load_run_session_end(struct load_run *r, struct lsess *s);
const struct load_opts *load_run_opts(const struct load_run *r);
uv_loop_t *load_run_loop(struct load_run *r);
uint64_t load_now_us(void);
/* Resolves the targets and sets TLS up: 0, or -1 with err. */
int load_resolve_and_init(struct load_run *r, char *err, size_t errlen);

#endif
