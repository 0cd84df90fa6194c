#include "sadb.h"

#include "esp_defs.h"
#include "ipsec_log.h"
#include "keylog.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/platform_util.h>

#define SADB_MIN_BUCKETS 16u

static uint64_t sadb_clock_monotonic(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t sadb_hash(uint32_t key, size_t nbuckets)
{
    /* Fibonacci hashing: inbound SPIs are random, peer addresses often
     * differ only in low bits; the multiply spreads both. */
    return (size_t)((key * 2654435761u) >> 7) & (nbuckets - 1u);
}

static size_t sadb_round_pow2(size_t n)
{
    size_t p = SADB_MIN_BUCKETS;

    while (p < n && p < ((size_t)1 << 20))
        p <<= 1;
    return p;
}

int esp_sadb_init(struct esp_sadb *db, size_t nbuckets)
{
    memset(db, 0, sizeof(*db));
    db->nbuckets = sadb_round_pow2(nbuckets);
    db->in_tab = calloc(db->nbuckets, sizeof(*db->in_tab));
    db->out_tab = calloc(db->nbuckets, sizeof(*db->out_tab));
    db->clock = sadb_clock_monotonic;
    if (db->in_tab == NULL || db->out_tab == NULL) {
        free(db->in_tab);
        free(db->out_tab);
        memset(db, 0, sizeof(*db));
        return ESP_E_NOMEM;
    }
    return 0;
}

static void sadb_sa_destroy(struct esp_sa *sa)
{
    ipsec_aead_free(&sa->aead);
    mbedtls_platform_zeroize(sa, sizeof(*sa));
    free(sa);
}

static void sadb_table_free(struct esp_sa **tab, size_t nbuckets)
{
    struct esp_sa *sa, *next;
    size_t i;

    for (i = 0; i < nbuckets; i++) {
        for (sa = tab[i]; sa != NULL; sa = next) {
            next = sa->next;
            sadb_sa_destroy(sa);
        }
    }
    free(tab);
}

void esp_sadb_free(struct esp_sadb *db)
{
    if (db->in_tab != NULL)
        sadb_table_free(db->in_tab, db->nbuckets);
    if (db->out_tab != NULL)
        sadb_table_free(db->out_tab, db->nbuckets);
    memset(db, 0, sizeof(*db));
}

void esp_sadb_set_event_cb(struct esp_sadb *db, esp_sa_event_fn *fn, void *arg)
{
    db->on_event = fn;
    db->event_arg = arg;
}

void esp_sadb_set_clock(struct esp_sadb *db, esp_clock_fn *clock)
{
    db->clock = clock != NULL ? clock : sadb_clock_monotonic;
}

void esp_sadb_set_keylog(struct esp_sadb *db, struct keylog *kl)
{
    db->keylog = kl;
}

static uint32_t sadb_key(const struct esp_sa *sa)
{
    return sa->dir == ESP_SA_IN ? sa->spi : sa->dst;
}

static struct esp_sa **sadb_table(struct esp_sadb *db, enum esp_sa_dir dir)
{
    return dir == ESP_SA_IN ? db->in_tab : db->out_tab;
}

/* Double both tables when either gets dense; failure just keeps chains
 * longer, which is slower but still correct. */
static void sadb_grow(struct esp_sadb *db)
{
    size_t nb = db->nbuckets * 2u, i, d;
    struct esp_sa **tabs[2], *sa, *next;

    if (db->n_in + db->n_out <= db->nbuckets || nb > ((size_t)1 << 20))
        return;
    tabs[0] = calloc(nb, sizeof(*tabs[0]));
    tabs[1] = calloc(nb, sizeof(*tabs[1]));
    if (tabs[0] == NULL || tabs[1] == NULL) {
        free(tabs[0]);
        free(tabs[1]);
        return;
    }
    for (d = 0; d < 2; d++) {
        struct esp_sa **old = d == 0 ? db->in_tab : db->out_tab;

        for (i = 0; i < db->nbuckets; i++) {
            for (sa = old[i]; sa != NULL; sa = next) {
                size_t h = sadb_hash(sadb_key(sa), nb);
                struct esp_sa **pp = &tabs[d][h];

                next = sa->next;
                while (*pp != NULL)     /* keep the order: a peer's newest outbound SA stays first */
                    pp = &(*pp)->next;
                sa->next = NULL;
                *pp = sa;
            }
        }
        free(old);
    }
    db->in_tab = tabs[0];
    db->out_tab = tabs[1];
    db->nbuckets = nb;
}

static int sadb_params_check(const struct esp_sa_params *p)
{
    if (p->dir != ESP_SA_IN && p->dir != ESP_SA_OUT)
        return ESP_E_INVAL;
    /* SPIs 1..255 are reserved by IANA and 0 is never a valid SPI. */
    if (p->spi < 256u)
        return ESP_E_INVAL;
    if (ipsec_aead_keymat_len(p->alg) == 0 ||
        p->keymat_len != ipsec_aead_keymat_len(p->alg))
        return ESP_E_INVAL;
    return 0;
}

static void sadb_link(struct esp_sadb *db, struct esp_sa *sa)
{
    struct esp_sa **tab = sadb_table(db, sa->dir);
    size_t h = sadb_hash(sadb_key(sa), db->nbuckets);

    sa->next = tab[h];
    tab[h] = sa;
    if (sa->dir == ESP_SA_IN)
        db->n_in++;
    else
        db->n_out++;
}

static void sadb_keylog_write(struct esp_sadb *db, const struct esp_sa_params *p)
{
    if (db->keylog == NULL)
        return;
    if (keylog_write_esp_sa(db->keylog, p->src, p->dst, p->spi, p->alg,
                            p->keymat, p->keymat_len, p->esn) < 0)
        ipsec_log(IPSEC_LOG_WARN, "event=keylog_write_failed spi=0x%08x", p->spi);
}

int esp_sadb_add(struct esp_sadb *db, const struct esp_sa_params *p,
                 struct esp_sa **sa_r)
{
    struct esp_sa *sa;
    int rc = sadb_params_check(p);

    if (rc < 0)
        return rc;
    if (p->dir == ESP_SA_IN && esp_sadb_lookup_in(db, p->spi) != NULL)
        return ESP_E_EXISTS;
    sa = calloc(1, sizeof(*sa));
    if (sa == NULL)
        return ESP_E_NOMEM;
    rc = ipsec_aead_init(&sa->aead, p->alg, p->keymat, p->keymat_len);
    if (rc < 0) {
        sadb_sa_destroy(sa);
        return rc;
    }
    sa->spi = p->spi;
    sa->dir = p->dir;
    sa->esn = p->esn;
    sa->src = p->src;
    sa->dst = p->dst;
    sa->soft = p->soft;
    sa->hard = p->hard;
    sa->created_ms = db->clock();
    ipsec_replay_init(&sa->replay, p->esn);
    sadb_link(db, sa);      /* at the head of its chain: the newest outbound SA wins */
    sadb_grow(db);
    sadb_keylog_write(db, p);
    ipsec_log(IPSEC_LOG_DEBUG, "event=sa_add dir=%s spi=0x%08x alg=%s esn=%d",
              p->dir == ESP_SA_IN ? "in" : "out", p->spi,
              ipsec_aead_name(p->alg), p->esn ? 1 : 0);
    if (sa_r != NULL)
        *sa_r = sa;
    return 0;
}

void esp_sadb_remove(struct esp_sadb *db, struct esp_sa **sap)
{
    struct esp_sa *sa = *sap, **pp;

    if (sa == NULL)
        return;
    pp = &sadb_table(db, sa->dir)[sadb_hash(sadb_key(sa), db->nbuckets)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sa) {
            *pp = sa->next;
            if (sa->dir == ESP_SA_IN)
                db->n_in--;
            else
                db->n_out--;
            break;
        }
    }
    sadb_sa_destroy(sa);
    *sap = NULL;
}

struct esp_sa *esp_sadb_lookup_in(const struct esp_sadb *db, uint32_t spi)
{
    struct esp_sa *sa = db->in_tab[sadb_hash(spi, db->nbuckets)];

    while (sa != NULL && sa->spi != spi)
        sa = sa->next;
    return sa;
}

struct esp_sa *esp_sadb_lookup_out(const struct esp_sadb *db, uint32_t peer)
{
    struct esp_sa *sa = db->out_tab[sadb_hash(peer, db->nbuckets)];

    while (sa != NULL && sa->dst != peer)
        sa = sa->next;
    return sa;
}

struct esp_sa *esp_sadb_lookup_out_spi(const struct esp_sadb *db, uint32_t peer, uint32_t spi)
{
    struct esp_sa *sa = db->out_tab[sadb_hash(peer, db->nbuckets)];

    while (sa != NULL && (sa->dst != peer || sa->spi != spi))
        sa = sa->next;
    return sa;
}

static bool sadb_reached(uint64_t limit, uint64_t value)
{
    return limit != 0 && value >= limit;
}

static unsigned sadb_limits_hit(const struct esp_sa *sa, const struct esp_lifetime *lt,
                                uint64_t age_s)
{
    uint64_t pkts = sa->ctr.pkts_in + sa->ctr.pkts_out;
    uint64_t bytes = sa->ctr.bytes_in + sa->ctr.bytes_out;
    unsigned hit = 0;

    if (sadb_reached(lt->packets, pkts))
        hit |= ESP_LIMIT_PACKETS;
    if (sadb_reached(lt->bytes, bytes))
        hit |= ESP_LIMIT_BYTES;
    if (sadb_reached(lt->seconds, age_s))
        hit |= ESP_LIMIT_SECONDS;
    return hit;
}

/* The sequence space is a lifetime of its own: rekey at half, stop at the
 * end. Only outbound SAs consume it. */
static unsigned sadb_seq_hit(const struct esp_sa *sa, bool hard)
{
    uint64_t max = sa->esn ? UINT64_MAX : UINT32_MAX;

    if (sa->dir != ESP_SA_OUT)
        return 0;
    if (hard)
        return sa->seq_out >= max ? ESP_LIMIT_SEQ : 0;
    return sa->seq_out >= max / 2u ? ESP_LIMIT_SEQ : 0;
}

static void sadb_limits_eval(struct esp_sadb *db, struct esp_sa *sa)
{
    uint64_t age_s = 0;
    unsigned hit;

    /* Reading the clock only for SAs with a time limit keeps it off the
     * packet path of SAs that IKE expires by other means. */
    if (sa->soft.seconds != 0 || sa->hard.seconds != 0)
        age_s = (db->clock() - sa->created_ms) / 1000u;

    if (!sa->soft_fired) {
        hit = sadb_limits_hit(sa, &sa->soft, age_s) | sadb_seq_hit(sa, false);
        if (hit != 0) {
            sa->soft_fired = true;
            ipsec_log(IPSEC_LOG_INFO, "event=sa_soft_expire spi=0x%08x limits=%u",
                      sa->spi, hit);
            if (db->on_event != NULL)
                db->on_event(db->event_arg, sa, ESP_SA_EV_SOFT, hit);
        }
    }
    if (!sa->hard_fired) {
        hit = sadb_limits_hit(sa, &sa->hard, age_s) | sadb_seq_hit(sa, true);
        if (hit != 0) {
            sa->hard_fired = true;
            ipsec_log(IPSEC_LOG_INFO, "event=sa_hard_expire spi=0x%08x limits=%u",
                      sa->spi, hit);
            if (db->on_event != NULL)
                db->on_event(db->event_arg, sa, ESP_SA_EV_HARD, hit);
        }
    }
}

void esp_sa_account(struct esp_sadb *db, struct esp_sa *sa, size_t ip_len)
{
    if (sa->dir == ESP_SA_IN) {
        sa->ctr.pkts_in++;
        sa->ctr.bytes_in += ip_len;
        db->ctr.pkts_in++;
        db->ctr.bytes_in += ip_len;
    } else {
        sa->ctr.pkts_out++;
        sa->ctr.bytes_out += ip_len;
        db->ctr.pkts_out++;
        db->ctr.bytes_out += ip_len;
    }
    sadb_limits_eval(db, sa);
}

bool esp_sa_usable(struct esp_sadb *db, struct esp_sa *sa)
{
    if (!sa->hard_fired && sa->hard.seconds != 0)
        sadb_limits_eval(db, sa);
    return !sa->hard_fired;
}

static size_t sadb_sweep_table(struct esp_sadb *db, enum esp_sa_dir dir)
{
    struct esp_sa *sa, *next;
    size_t i, removed = 0;

    for (i = 0; i < db->nbuckets; i++) {
        for (sa = sadb_table(db, dir)[i]; sa != NULL; sa = next) {
            next = sa->next;
            sadb_limits_eval(db, sa);
            if (sa->hard_fired) {
                esp_sadb_remove(db, &sa);
                removed++;
            }
        }
    }
    return removed;
}

size_t esp_sadb_sweep(struct esp_sadb *db)
{
    return sadb_sweep_table(db, ESP_SA_IN) + sadb_sweep_table(db, ESP_SA_OUT);
}

void esp_sa_set_seq_out(struct esp_sa *sa, uint64_t seq)
{
    sa->seq_out = seq;
}
