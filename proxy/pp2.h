/*
 * PROXY protocol version 2 (haproxy's proxy-protocol.txt §2.2) for IPv4
 * TCP: the front-end puts one at the start of each inner stream so the
 * back-end's services (dovecot haproxy_trusted_networks, nginx
 * `listen ... proxy_protocol`) see the real client address.
 */
#ifndef ESPROXY_PROXY_PP2_H
#define ESPROXY_PROXY_PP2_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define PP2_SIG_LEN     12
#define PP2_HDR_LEN     16
#define PP2_V4_LEN      (PP2_HDR_LEN + 12)
#define PP2_MAX_LEN     (PP2_HDR_LEN + 1024)    /* larger TLV blocks are refused */

/* Writes a PROXY v2 header for a TCP/IPv4 connection from src to dst;
 * returns its length (PP2_V4_LEN). out must hold PP2_V4_LEN bytes. */
size_t pp2_build(uint8_t *out, const struct sockaddr_in *src, const struct sockaddr_in *dst);
/* Length of the complete header at buf: > 0 when complete, 0 when more
 * bytes are needed, -1 when buf does not start with a valid v2 header. */
long pp2_header_len(const uint8_t *buf, size_t len);
/* Source address of a complete header (family INET, command PROXY): 0 or -1. */
int pp2_source(const uint8_t *buf, size_t len, struct sockaddr_in *src);

#endif
