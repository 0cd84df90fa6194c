/*
 * The responder's defences against unauthenticated load (RFC 7296 §2.6,
 * RFC 8019 §4): who gets an answer before anyone has authenticated, and
 * how much state anyone can make us hold. Internal to the IKE state
 * machine files; see ike_guard.c for the whole story.
 */
#ifndef ESPROXY_IKE_GUARD_H
#define ESPROXY_IKE_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipsec/ike_msg.h"
#include "ipsec/ike_sa.h"

/* Source table: IKE_GUARD_SETS x IKE_GUARD_WAYS entries, fixed at build
 * time, whatever the number of addresses a flood spoofs. */
#define IKE_GUARD_SETS      256
#define IKE_GUARD_WAYS      4
#define IKE_COOKIE_HASH_LEN 32          /* SHA-256 output */
#define IKE_COOKIE_LEN      (1 + IKE_COOKIE_HASH_LEN)  /* secret version | hash */
#define IKE_COOKIE_SECRET_MS 30000      /* the cookie secret changes this often */
#define IKE_GUARD_LOG_MS    10000       /* at most one flood log line this often */

/* A token bucket in thousandths of a reply: rate r a second, burst r. */
struct ike_bucket {
    uint32_t milli;
    uint64_t at_ms;
};

struct ike_guard_src {
    bool used;
    uint32_t addr;              /* network byte order */
    uint16_t half_open;         /* its SAs in IKE_S_INIT_DONE */
    struct ike_bucket replies;
    uint64_t seen_ms;           /* for eviction: least recently seen goes */
};

struct ike_guard {
    struct ike_limits lim;
    struct ike_guard_src src[IKE_GUARD_SETS][IKE_GUARD_WAYS];
    uint64_t hash_key;          /* random: which set an address falls in */
    struct ike_bucket replies;  /* all sources together */
    uint8_t secret[2][32];      /* cookie secrets: [version & 1] */
    uint8_t version;            /* of the current secret */
    bool secret_dated;
    uint64_t secret_at_ms;
    bool logged;
    uint64_t log_at_ms;
    struct ike_stats at_log;    /* counters at the last flood log line */
};

struct ike_ctx;

int ike_guard_init(struct ike_guard *g);
/* May an unauthenticated reply go to src now? Per source, then in total;
 * a refusal is counted. */
bool ike_guard_reply_allowed(struct ike_ctx *ctx, uint32_t src);

enum ike_admission {
    IKE_ADMIT,          /* go on: proposals, DH, a new half-open SA */
    IKE_ADMIT_COOKIE,   /* answer with the COOKIE in cookie_r, nothing else */
    IKE_ADMIT_DROP,     /* a half-open bound is reached: no answer (counted) */
};
/* Before any DH: may this IKE_SA_INIT request from src make a half-open
 * SA? ni is the request's nonce, pl its payloads (a COOKIE notify must
 * come first, §2.6). */
enum ike_admission ike_guard_admit_init(struct ike_ctx *ctx, uint32_t src, uint64_t spi_i, const uint8_t *ni,
                                        size_t ni_len, const struct ike_payload_list *pl,
                                        uint8_t cookie_r[IKE_COOKIE_LEN]);
/* Half-open accounting, from ike_sa_set_state: an SA of peer addr
 * entered (delta 1) or left (-1) IKE_S_INIT_DONE. */
void ike_guard_half_open(struct ike_ctx *ctx, uint32_t addr, int delta);

#endif
