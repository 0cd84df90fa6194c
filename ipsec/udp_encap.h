/*
 * RFC 3948 UDP encapsulation: one libuv UDP socket (port 4500) carries
 * ESP and IKE. Receive demultiplexing by the first bytes of the payload:
 *
 *   1 byte 0xFF          NAT-keepalive: counted and dropped (§2.3)
 *   4 zero bytes + IKE   non-ESP marker: IKE message handed up without
 *                        the marker (§2.2)
 *   non-zero SPI, >= 8   ESP, handed up with headroom for esp_input
 *   anything else        counted as invalid and dropped
 *
 * IPv4 UDP checksums of what we send are zero when UDP_ENCAP_ZERO_CSUM is
 * set (§2.1: SHOULD be transmitted as zero; ESP has its own ICV, and the
 * IKE messages sharing the socket are authenticated by IKE itself).
 * Receivers accept either; the kernel checks non-zero checksums.
 *
 * Receives are batched with recvmmsg (UV_UDP_RECVMMSG) into one buffer of
 * UDP_ENCAP_RX_CHUNKS 64 KiB chunks owned by the socket. Callbacks run in
 * order, so the bytes in front of chunk k belong to a datagram already
 * consumed, which is what makes them usable as esp_input headroom. Sends
 * try to go out at once (uv_udp_try_send, no copy); only when the socket
 * would block is the datagram copied and queued. udp_encap_send_batch
 * sends many ESP packets with one sendmmsg.
 */
#ifndef ESPROXY_IPSEC_UDP_ENCAP_H
#define ESPROXY_IPSEC_UDP_ENCAP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define UDP_ENCAP_RX_CHUNKS   16u
#define UDP_ENCAP_RX_HEADROOM 64u
#define UDP_ENCAP_BATCH_MAX   64u

enum udp_encap_kind {
    UDP_ENCAP_INVALID = 0,
    UDP_ENCAP_ESP = 1,
    UDP_ENCAP_IKE = 2,
    UDP_ENCAP_KEEPALIVE = 3,
};

enum udp_encap_flags {
    UDP_ENCAP_ZERO_CSUM = 1,
    UDP_ENCAP_FREEBIND = 2,     /* bind an address not (yet) ours: a VIP before it moves here */
};

struct udp_encap_counters {
    uint64_t esp_rx, ike_rx, keepalive_rx, invalid_rx, rx_errors, icmp_errors;
    uint64_t esp_tx, ike_tx, keepalive_tx, tx_queued, tx_errors;
};

struct udp_encap;

/* pkt is writable; headroom bytes before it are writable too. */
typedef void udp_encap_esp_fn(void *arg, uint8_t *pkt, size_t len, size_t headroom,
                              const struct sockaddr_in *from);
/* msg is the IKE message after the non-ESP marker. */
typedef void udp_encap_ike_fn(void *arg, const uint8_t *msg, size_t len,
                              const struct sockaddr_in *from);
typedef void udp_encap_close_fn(struct udp_encap *ue);
/* An ICMP error (port or host unreachable) came back for a datagram we
 * sent to dst: unauthenticated, a hint only. */
typedef void udp_encap_icmp_fn(void *arg, const struct sockaddr_in *dst);

struct udp_encap {
    uv_udp_t udp;
    uv_timer_t keepalive;
    struct sockaddr_in keepalive_peer;
    uint8_t *rxbuf;
    udp_encap_esp_fn *on_esp;
    udp_encap_ike_fn *on_ike;
    void *arg;
    udp_encap_close_fn *on_close;
    udp_encap_icmp_fn *on_icmp;
    void *icmp_arg;
    int open_handles;
    struct udp_encap_counters ctr;
};

/* Classify a received UDP payload (pure; exposed for tests). */
enum udp_encap_kind udp_encap_classify(const uint8_t *buf, size_t len);

/* Bind and start receiving. 0 or a negative libuv error / ESP_E_NOMEM. */
int udp_encap_open(struct udp_encap *ue, uv_loop_t *loop, const struct sockaddr_in *bind_addr,
                   unsigned flags, udp_encap_esp_fn *on_esp, udp_encap_ike_fn *on_ike,
                   void *arg);
/* Report ICMP errors for our datagrams (IP_RECVERR is always on). */
void udp_encap_set_icmp_cb(struct udp_encap *ue, udp_encap_icmp_fn *fn, void *arg);
/* Close asynchronously; on_close (may be NULL) runs when all handles are
 * closed, after which ue may be freed. */
void udp_encap_close(struct udp_encap *ue, udp_encap_close_fn *on_close);
int udp_encap_local_addr(const struct udp_encap *ue, struct sockaddr_in *addr_r);

/* 0 or a negative libuv error. */
int udp_encap_send_esp(struct udp_encap *ue, const uint8_t *pkt, size_t len,
                       const struct sockaddr_in *to);
int udp_encap_send_ike(struct udp_encap *ue, const uint8_t *msg, size_t len,
                       const struct sockaddr_in *to);
int udp_encap_send_keepalive(struct udp_encap *ue, const struct sockaddr_in *to);

struct udp_encap_pkt {
    const uint8_t *data;
    size_t len;
};
/* Send up to n ESP packets to one peer with sendmmsg. Returns how many
 * were handed to the kernel (the rest are for the caller to retry or
 * drop), or a negative libuv error if none were. */
int udp_encap_send_batch(struct udp_encap *ue, const struct udp_encap_pkt *pkts,
                         size_t n, const struct sockaddr_in *to);

/* NAT-keepalive every interval_ms to peer (RFC 3948 §4, default 20 s). */
int udp_encap_keepalive_start(struct udp_encap *ue, const struct sockaddr_in *peer,
                              uint64_t interval_ms);
void udp_encap_keepalive_stop(struct udp_encap *ue);

#endif
