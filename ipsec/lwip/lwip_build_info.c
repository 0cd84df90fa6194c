/* Compiled as part of liblwip objects: records the options lwIP really saw. */
#include "lwip/opt.h"
#include "lwip/init.h"
#include "lwip_build_info.h"

const struct lwip_build_info esproxy_lwip_build_info = {
    LWIP_VERSION_MAJOR, LWIP_VERSION_MINOR, LWIP_VERSION_REVISION,
    NO_SYS, LWIP_SOCKET, LWIP_NETCONN, LWIP_IPV6, LWIP_UDP, LWIP_ARP,
    LWIP_SINGLE_NETIF, LWIP_NETIF_LOOPBACK, IP_FORWARD,
    TCP_MSS, TCP_WND, TCP_SND_BUF, LWIP_WND_SCALE, TCP_RCV_SCALE,
    LWIP_TCP_SACK_OUT, LWIP_TCP_MAX_SACK_NUM, TCP_QUEUE_OOSEQ, LWIP_NETIF_TX_SINGLE_PBUF,
    MEM_LIBC_MALLOC, MEMP_MEM_MALLOC,
#ifdef LWIP_HOOK_TCP_ISN
    1,
#else
    0,
#endif
    TCP_LOCAL_PORT_RANGE_START, TCP_LOCAL_PORT_RANGE_END,
};
