/* Effective lwIP options, exported from the built library (lwip_build_info.c
 * is compiled with the library's own flags and include path). */
#ifndef ESPROXY_LWIP_BUILD_INFO_H
#define ESPROXY_LWIP_BUILD_INFO_H

struct lwip_build_info {
    unsigned version_major, version_minor, version_revision;
    unsigned no_sys, lwip_socket, lwip_netconn, lwip_ipv6, lwip_udp, lwip_arp;
    unsigned lwip_single_netif, lwip_netif_loopback, ip_forward;
    unsigned tcp_mss, tcp_wnd, tcp_snd_buf, wnd_scale, tcp_rcv_scale;
    unsigned sack_out, max_sack_num, queue_ooseq, tx_single_pbuf;
    unsigned mem_libc_malloc, memp_mem_malloc, isn_hook, local_port_start, local_port_end;
};

extern const struct lwip_build_info esproxy_lwip_build_info;

#endif
