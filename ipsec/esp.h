/*
 * ESP (RFC 4303) in transport mode for IPv4, with the AEAD transforms of
 * aead.h. Both directions work in place on the caller's buffer, so a
 * packet is touched once by the cipher and never copied:
 *
 *   outbound  [IPv4 hdr | TCP segment]            (+ ESP_OUT_TAILROOM)
 *          -> [...|SPI|seq|IV|ciphertext(TCP segment|pad|padlen|nh)|ICV]
 *      The ESP header and IV overwrite the last 16 bytes of the IPv4
 *      header; the result (a UDP payload for udp_encap) starts at
 *      *esp_r, ihl*4 - 16 bytes into the buffer.
 *
 *   inbound   (ESP_IN_HEADROOM bytes) [SPI|seq|IV|ciphertext|ICV]
 *          -> [IPv4 hdr | TCP segment]
 *      The rebuilt 20-byte IPv4 header ends where the IV ended. With less
 *      headroom the payload is moved instead (one memmove).
 *
 * The explicit IV is the 64-bit sequence number, unique per packet under
 * one key because the sequence number never wraps (RFC 4106 §3.1). The
 * AAD is SPI ‖ seq (32-bit mode) or SPI ‖ seq_hi ‖ seq_lo (ESN), RFC 4106
 * §5 / RFC 7634 §2.1.
 *
 * Inbound order (RFC 4303 §3.4): SPI lookup, length, SA usable, ESN high
 * bits and replay pre-check, ICV, padding, replay update, accounting.
 * Nothing decrypted is looked at before the ICV has verified.
 */
#ifndef ESPROXY_IPSEC_ESP_H
#define ESPROXY_IPSEC_ESP_H

#include "esp_defs.h"
#include "sadb.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Encrypt the IPv4 packet at buf (ip_len bytes, buffer capacity cap,
 * which must leave ESP_OUT_TAILROOM) for sa. On success *esp_r and *esp_len_r
 * describe the UDP payload inside buf. Returns 0 or ESP_E_INVAL,
 * ESP_E_NOSPACE, ESP_E_EXPIRED, ESP_E_SEQ_EXHAUSTED, ESP_E_CRYPTO.
 */
int esp_output(struct esp_sadb *db, struct esp_sa *sa, uint8_t *buf, size_t ip_len,
               size_t cap, uint8_t **esp_r, size_t *esp_len_r);

/*
 * Authenticate and decrypt the ESP packet at pkt (len bytes; headroom
 * writable bytes precede it). outer_src/outer_dst (network order) become
 * the rebuilt header's addresses. On success returns 0 with the IPv4
 * packet at *ip_r (*ip_len_r bytes, inside the caller's buffer) and the
 * SA in *sa_r, or ESP_DUMMY for an authentic dummy packet (nothing to
 * deliver). Failures: ESP_E_TRUNCATED, ESP_E_UNKNOWN_SPI, ESP_E_EXPIRED,
 * ESP_E_REPLAY, ESP_E_TOO_OLD, ESP_E_ICV, ESP_E_PADDING, ESP_E_INVAL; each
 * is counted. sa_r may be NULL; it is set (when known) even on failure so
 * liveness can tell "unknown SPI" from "bad packet on a known SA".
 */
int esp_input(struct esp_sadb *db, uint8_t *pkt, size_t len, size_t headroom,
              uint32_t outer_src, uint32_t outer_dst,
              uint8_t **ip_r, size_t *ip_len_r, struct esp_sa **sa_r);

/* RFC 1071 checksum of an IPv4 header (hlen bytes, checksum field as is). */
uint16_t esp_ipv4_checksum(const uint8_t *hdr, size_t hlen);

#endif
