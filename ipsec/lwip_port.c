/*
 * lwIP platform port: clock, randomness, assertion handler and the keyed
 * initial sequence number hook (RFC 6528: ISN = M + F(4-tuple, secret), M a
 * 4 microsecond clock, F HMAC-SHA-256 under a per-process random key).
 * This translation unit includes lwIP headers only (no uv.h: glibc's
 * <netinet/tcp.h> would redefine TCP_MSS).
 */
#include "lwip/opt.h"
#include "lwip/ip_addr.h"
#include "lwip/sys.h"
#include "lwip_hooks.h"
#include "ipsec_log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/md.h>

static uint8_t isn_key[32];
static int isn_key_ready;

u32_t sys_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (u32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

uint32_t esproxy_lwip_rand(void)
{
    return arc4random();
}

void esproxy_lwip_assert(const char *msg, const char *file, int line)
{
    ipsec_log(IPSEC_LOG_ERROR, "event=lwip_assert msg=\"%s\" file=%s line=%d",
              msg, file, line);
    abort();
}

u32_t esproxy_lwip_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
                           const ip_addr_t *remote_ip, u16_t remote_port)
{
    uint8_t tuple[12], mac[32];
    uint32_t f, m;
    struct timespec ts;
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

    if (!isn_key_ready) {
        arc4random_buf(isn_key, sizeof(isn_key));
        isn_key_ready = 1;
    }
    memcpy(tuple, &ip_2_ip4(local_ip)->addr, 4);
    memcpy(tuple + 4, &ip_2_ip4(remote_ip)->addr, 4);
    tuple[8] = (uint8_t)(local_port >> 8);
    tuple[9] = (uint8_t)local_port;
    tuple[10] = (uint8_t)(remote_port >> 8);
    tuple[11] = (uint8_t)remote_port;
    if (md == NULL ||
        mbedtls_md_hmac(md, isn_key, sizeof(isn_key), tuple, sizeof(tuple), mac) != 0)
        return arc4random();
    memcpy(&f, mac, sizeof(f));
    clock_gettime(CLOCK_MONOTONIC, &ts);
    m = (uint32_t)(((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u) / 4u);
    return m + f;
}
