/*
 * ESP security association database.
 *
 * Inbound SAs are found by SPI in a hash table (O(1) on the packet path;
 * we pick inbound SPIs ourselves, so keys are well spread). Outbound SAs
 * are found by peer IPv4 address, one current SA per peer; installing a
 * new one for the same peer (a rekey) retires the old. Every removal
 * zeroizes key material (mbedtls_platform_zeroize) before freeing.
 *
 * Lifetimes (RFC 4301 §4.4.2.1): soft and hard limits in bytes, packets
 * and seconds, 0 meaning unlimited. Crossing a soft limit raises
 * ESP_SA_EV_SOFT once (time to rekey); crossing a hard limit raises
 * ESP_SA_EV_HARD once and the SA refuses further packets. The sequence
 * number space is a lifetime too: ESP_SA_EV_SOFT fires when half of it is
 * used, the SA stops at its end and never wraps (RFC 4303 §3.3.3).
 * esp_sadb_sweep, called from a timer, checks the seconds limits and
 * removes SAs past a hard limit.
 *
 * Byte counters and byte lifetimes count inner IPv4 packet bytes (what
 * the netstack sends and receives), not ESP overhead.
 */
#ifndef ESPROXY_IPSEC_SADB_H
#define ESPROXY_IPSEC_SADB_H

#include "aead.h"
#include "replay.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keylog;

struct esp_counters {
    uint64_t pkts_in, bytes_in;
    uint64_t pkts_out, bytes_out;
    uint64_t icv_fail;
    uint64_t replay;        /* duplicates and too old */
    uint64_t unknown_spi;   /* global only: no SA to charge */
    uint64_t pad_err;
    uint64_t invalid;       /* truncated or malformed */
    uint64_t dummy;         /* authentic next-header-59 packets */
};

struct esp_lifetime {
    uint64_t bytes, packets, seconds; /* 0 = no limit */
};

enum esp_sa_dir { ESP_SA_IN = 0, ESP_SA_OUT = 1 };

enum esp_sa_event {
    ESP_SA_EV_SOFT = 1,  /* rekey now; the SA still works */
    ESP_SA_EV_HARD = 2,  /* SA is dead; it is removed by the next sweep */
};

/* Why an event fired (bit set). */
enum esp_sa_limit {
    ESP_LIMIT_BYTES = 1,
    ESP_LIMIT_PACKETS = 2,
    ESP_LIMIT_SECONDS = 4,
    ESP_LIMIT_SEQ = 8,
};

struct esp_sa_params {
    uint32_t spi;                 /* host byte order */
    enum esp_sa_dir dir;
    enum ipsec_aead_alg alg;
    const uint8_t *keymat;        /* key ‖ salt, copied into the context */
    size_t keymat_len;
    bool esn;
    uint32_t src, dst;            /* outer IPv4 addresses of this direction,
                                     network byte order (key log, peer map) */
    struct esp_lifetime soft, hard;
};

struct esp_sa {
    uint32_t spi;
    enum esp_sa_dir dir;
    bool esn;
    bool soft_fired, hard_fired;
    uint32_t src, dst;
    struct ipsec_aead aead;
    uint64_t seq_out;             /* last sequence number sent */
    struct ipsec_replay replay;   /* inbound only */
    struct esp_lifetime soft, hard;
    uint64_t created_ms;
    uint16_t ip_id;               /* IPv4 ID for rebuilt inbound headers */
    struct esp_counters ctr;
    struct esp_sa *next;          /* hash chain */
};

/* Called from the packet path and from esp_sadb_sweep: it may start a
 * rekey but must not remove sa (the sweep does that after ESP_SA_EV_HARD).
 * limits is a mask of enum esp_sa_limit. */
typedef void esp_sa_event_fn(void *arg, struct esp_sa *sa, enum esp_sa_event ev,
                             unsigned limits);
typedef uint64_t esp_clock_fn(void);  /* monotonic milliseconds */

struct esp_sadb {
    struct esp_sa **in_tab;       /* by SPI */
    struct esp_sa **out_tab;      /* by peer address */
    size_t nbuckets;              /* power of two, same for both tables */
    size_t n_in, n_out;
    struct esp_counters ctr;      /* global */
    esp_sa_event_fn *on_event;
    void *event_arg;
    esp_clock_fn *clock;
    struct keylog *keylog;
};

/* 0 or ESP_E_NOMEM. nbuckets is rounded up to a power of two. */
int esp_sadb_init(struct esp_sadb *db, size_t nbuckets);
void esp_sadb_free(struct esp_sadb *db);
void esp_sadb_set_event_cb(struct esp_sadb *db, esp_sa_event_fn *fn, void *arg);
/* Tests inject a clock; default is CLOCK_MONOTONIC. */
void esp_sadb_set_clock(struct esp_sadb *db, esp_clock_fn *clock);
/* When set, every installed SA is written to the key log. */
void esp_sadb_set_keylog(struct esp_sadb *db, struct keylog *kl);

/* Install an SA. 0, ESP_E_INVAL, ESP_E_EXISTS (inbound SPI taken),
 * ESP_E_NOMEM or ESP_E_CRYPTO. The newest outbound SA to a peer
 * (params->dst) carries its traffic; older ones stay installed (sequence
 * numbers and all) and the next newest takes over when it is removed, as
 * the Linux kernel does with several SAs for one policy: a CHILD SA that
 * goes (a dropped speculative IKE SA, a deleted rekeyed SA) never leaves
 * the peer without an outbound SA while another one is still there. */
int esp_sadb_add(struct esp_sadb *db, const struct esp_sa_params *p,
                 struct esp_sa **sa_r);
/* Unlink, zeroize and free; NULLs *sa. */
void esp_sadb_remove(struct esp_sadb *db, struct esp_sa **sa);

struct esp_sa *esp_sadb_lookup_in(const struct esp_sadb *db, uint32_t spi);
struct esp_sa *esp_sadb_lookup_out(const struct esp_sadb *db, uint32_t peer);
/* One particular outbound SA to peer (newest or not). */
struct esp_sa *esp_sadb_lookup_out_spi(const struct esp_sadb *db, uint32_t peer, uint32_t spi);

/* Account one packet of ip_len bytes on sa, check packet/byte limits and
 * the sequence space, and raise events. Used by esp.c. */
void esp_sa_account(struct esp_sadb *db, struct esp_sa *sa, size_t ip_len);
/* True if sa may carry another packet (no hard limit reached). Checks the
 * seconds limits too, so an idle-then-busy SA cannot outlive its time. */
bool esp_sa_usable(struct esp_sadb *db, struct esp_sa *sa);

/* Check seconds limits of every SA and remove SAs past a hard limit.
 * Returns how many SAs were removed. */
size_t esp_sadb_sweep(struct esp_sadb *db);

/* For tests and benchmarks only: jump the outbound counter. */
void esp_sa_set_seq_out(struct esp_sa *sa, uint64_t seq);

#endif
