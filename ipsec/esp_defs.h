/*
 * ESP protocol constants and the error codes shared by the ESP data path
 * (esp.c, sadb.c, replay.c, aead.c, udp_encap.c). Kept in one header so a
 * reader finds every wire size and every drop reason in one place.
 *
 * Return convention for the data path: 0 (or a documented positive value)
 * on success, a negative esp_err on failure. Never errno left behind.
 */
#ifndef ESPROXY_IPSEC_ESP_DEFS_H
#define ESPROXY_IPSEC_ESP_DEFS_H

/* RFC 4303 / RFC 4106 / RFC 7634 wire sizes. */
#define ESP_HDR_LEN        8u   /* SPI + sequence number (low 32 bits) */
#define ESP_IV_LEN         8u   /* explicit IV of the AEAD transforms */
#define ESP_ICV_LEN        16u  /* 16-octet ICV: AES-GCM-16, Poly1305 */
#define ESP_TRAILER_LEN    2u   /* pad length + next header */
#define ESP_PAD_ALIGN      4u   /* RFC 4303 §2.4: 4-byte alignment */
#define ESP_PAD_MAX        (ESP_PAD_ALIGN - 1u)
#define ESP_PREFIX_LEN     (ESP_HDR_LEN + ESP_IV_LEN)
/* Smallest packet that can be authentic: header, IV, trailer, ICV. */
#define ESP_MIN_LEN        (ESP_PREFIX_LEN + ESP_TRAILER_LEN + ESP_ICV_LEN)
/* Bytes esp_output may write past the end of the IPv4 packet. */
#define ESP_OUT_TAILROOM   (ESP_PAD_MAX + ESP_TRAILER_LEN + ESP_ICV_LEN)
/* Bytes before an ESP packet that let esp_input rebuild the IPv4 header
 * in place (20-byte header over the 16-byte ESP header + IV). */
#define ESP_IN_HEADROOM    4u

#define ESP_IPV4_HDR_LEN   20u
#define ESP_IPV4_MAX_LEN   65535u
#define ESP_NH_TCP         6u
#define ESP_NH_NONE        59u  /* RFC 4303 §2.6: dummy (TFC) packet */

/* RFC 3948 UDP encapsulation. */
#define ESP_UDP_PORT       4500u
#define ESP_NON_ESP_MARKER_LEN 4u
#define ESP_NATT_KEEPALIVE 0xFFu

enum esp_err {
    ESP_E_INVAL = -1,        /* bad argument or malformed inner packet */
    ESP_E_TRUNCATED = -2,    /* shorter than any authentic packet */
    ESP_E_UNKNOWN_SPI = -3,  /* no inbound SA for this SPI */
    ESP_E_REPLAY = -4,       /* sequence number already received */
    ESP_E_TOO_OLD = -5,      /* sequence number left of the window */
    ESP_E_ICV = -6,          /* integrity check failed */
    ESP_E_PADDING = -7,      /* authentic, but padding is malformed */
    ESP_E_SEQ_EXHAUSTED = -8,/* outbound sequence space used up */
    ESP_E_NOSPACE = -9,      /* caller's buffer lacks tailroom */
    ESP_E_EXPIRED = -10,     /* SA reached a hard lifetime */
    ESP_E_CRYPTO = -11,      /* mbedTLS failed (not an ICV mismatch) */
    ESP_E_NOMEM = -12,
    ESP_E_EXISTS = -13,      /* SPI already installed */
    ESP_E_IO = -14,          /* socket or file error */
};

/* esp_input success value for an authentic dummy packet (next header 59):
 * counted and accepted by the replay window, but nothing to deliver. */
#define ESP_DUMMY 1

const char *esp_err_str(int err);

#endif
