/* lwIP hook declarations; the definitions live in ipsec/lwip_port.c. */
#ifndef ESPROXY_LWIP_HOOKS_H
#define ESPROXY_LWIP_HOOKS_H

#include "lwip/ip_addr.h"

u32_t esproxy_lwip_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
                           const ip_addr_t *remote_ip, u16_t remote_port);

#endif
