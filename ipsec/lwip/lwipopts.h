/*
 * lwIP build options for esproxy's in-process TCP/IP stack.
 *
 * lwIP runs on the libuv thread (NO_SYS, no locking), carries only IPv4 TCP
 * inside ESP transport mode, and sees a single point-to-point netif whose
 * output is ESP encryption. Large windows (1 MiB, window scaling) keep a
 * single stream fast over a path with real RTT; SACK generation helps loss
 * recovery. Pools are malloc-backed so idle connections cost only their PCB.
 *
 * tests/unit/test_lwipopts.c asserts the effective values in the built
 * library, so a wrong build fails loudly.
 */
#ifndef ESPROXY_LWIPOPTS_H
#define ESPROXY_LWIPOPTS_H

/* system */
#define NO_SYS                       1
#define SYS_LIGHTWEIGHT_PROT         0
#define LWIP_SOCKET                  0
#define LWIP_NETCONN                 0
#define LWIP_TIMERS                  1

/* memory: libc malloc behind every pool */
#define MEM_LIBC_MALLOC              1
#define MEMP_MEM_MALLOC              1
#define MEM_ALIGNMENT                8

/* protocols: IPv4 TCP over one netif, nothing else */
#define LWIP_IPV4                    1
#define LWIP_IPV6                    0
#define LWIP_ARP                     0
#define LWIP_ETHERNET                0
#define LWIP_ICMP                    1
#define LWIP_RAW                     0
#define LWIP_UDP                     0
#define LWIP_DNS                     0
#define LWIP_DHCP                    0
#define LWIP_AUTOIP                  0
#define LWIP_IGMP                    0
#define LWIP_TCP                     1
#define LWIP_SINGLE_NETIF            1
#define LWIP_NETIF_LOOPBACK          0
#define IP_FORWARD                   0
#define IP_REASSEMBLY                1
#define IP_FRAG                      0

/* TCP */
#define TCP_MSS                      1460
#define LWIP_WND_SCALE               1
#define TCP_RCV_SCALE                5
#define TCP_WND                      (1024 * 1024)
#define TCP_SND_BUF                  (1024 * 1024)
#define TCP_SND_QUEUELEN             ((4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS)
#define TCP_SNDQUEUELOWAT            (TCP_SND_QUEUELEN / 2)
#define TCP_SNDLOWAT                 (16 * TCP_MSS)
#define TCP_WND_UPDATE_THRESHOLD     (4 * TCP_MSS)
#define TCP_QUEUE_OOSEQ              1
#define LWIP_TCP_SACK_OUT            1
#define LWIP_TCP_MAX_SACK_NUM        4
#define LWIP_TCP_KEEPALIVE           1
/* No listen backlog limit: inner SYNs reach a listener only through an
 * authenticated SA, so the limit guards against nothing, while its 255
 * cap dropped bursts of opens (2,000 simultaneous opens: 215 streams still
 * unconnected after 30 s of SYN retransmissions; 10,000 never finished). */
#define TCP_LISTEN_BACKLOG           0
/* netstack_lwip.c retransmits an unanswered SYN every 1-1.5 s (lwIP does
 * not back off in SYN_SENT); 12 tries keep a connect alive 13-19.5 s,
 * about what lwIP's default (6 tries at 3 s) gave. The proxy's own
 * connect_timeout_ms (default 5 s) normally ends it first. */
#define TCP_SYNMAXRTX                12
#define TCP_OVERSIZE                 TCP_MSS
#define LWIP_TCP_TIMESTAMPS          0

/* packets: one contiguous buffer per outgoing IP packet, easy to encrypt */
#define LWIP_NETIF_TX_SINGLE_PBUF    1
#define LWIP_CHECKSUM_ON_COPY        1
/* Inbound checks off: every packet lwIP sees was authenticated by ESP's
 * ICV and has an IPv4 header we rebuilt from the SA. Behind a NAT the
 * peer's TCP checksum covers addresses we never see (RFC 3948 3.1.2), and
 * Linux's esp4 likewise marks UDP-encapsulated transport-mode packets
 * CHECKSUM_UNNECESSARY. Outbound checksums are still generated. */
#define CHECKSUM_CHECK_IP            0
#define CHECKSUM_CHECK_TCP           0

/* ephemeral ports: the whole 0x4000-0xffff range, random first port */
#define TCP_LOCAL_PORT_RANGE_START   0x4000
#define TCP_LOCAL_PORT_RANGE_END     0xffff
#define TCP_ENSURE_LOCAL_PORT_RANGE(p) \
    ((u16_t)(((p) % (TCP_LOCAL_PORT_RANGE_END - TCP_LOCAL_PORT_RANGE_START + 1)) + TCP_LOCAL_PORT_RANGE_START))
#define LWIP_RANDOMIZE_INITIAL_LOCAL_PORTS 1

/* misc */
#define LWIP_STATS                   0
#define LWIP_HOOK_FILENAME           "lwip_hooks.h"
#define LWIP_HOOK_TCP_ISN(lip, lport, rip, rport) \
    esproxy_lwip_tcp_isn((lip), (lport), (rip), (rport))

#endif
