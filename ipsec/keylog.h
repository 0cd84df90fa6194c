/*
 * Key log: a debugging aid that writes the keys of every SA in the form
 * Wireshark/tshark read, so a capture of esproxy traffic can be decrypted
 * independently. Enabled by the `keylog = FILE` configuration key; never
 * enable it in production, the file holds live traffic keys.
 *
 * The file is created with mode 0600 (and forced to 0600 if it existed),
 * opened O_APPEND|O_NOFOLLOW, and each record is one write(2) so
 * concurrent writers do not interleave lines.
 *
 * Format: one record per line, `uat:<table>:<record>`, exactly the
 * argument tshark takes after -o, e.g.
 *   uat:esp_sa:"IPv4","10.99.0.1","10.99.0.2","0x1234abcd","AES-GCM with 16 octet ICV [RFC4106]","0x<key‖salt hex>","NULL",""
 * so a shell can run `tshark -o "$line" ...` for every line, and
 * `sed -n 's/^uat:esp_sa://p'` yields a Wireshark profile's esp_sa file.
 * Lines starting with '#' are comments: SAs Wireshark cannot decrypt
 * (ChaCha20-Poly1305, or ESN: the esp_sa table of Wireshark 4.0 has no
 * sequence-number-length field) are logged there with their keys, for
 * other tools. The IKEv2 module adds `uat:ikev2_decryption_table:` lines
 * through keylog_write_record.
 */
#ifndef ESPROXY_IPSEC_KEYLOG_H
#define ESPROXY_IPSEC_KEYLOG_H

#include "aead.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keylog {
    int fd;
};

/* 0 or ESP_E_IO. */
int keylog_open(struct keylog *kl, const char *path);
void keylog_close(struct keylog *kl);

/* Append "uat:<table>:<record>\n". table must be a bare identifier and
 * record a single line. 0, ESP_E_INVAL or ESP_E_IO. */
int keylog_write_record(struct keylog *kl, const char *table, const char *record);
/* Append "# <text>\n". */
int keylog_write_comment(struct keylog *kl, const char *text);

/* One esp_sa record for packets from src to dst (IPv4, network order). */
int keylog_write_esp_sa(struct keylog *kl, uint32_t src, uint32_t dst, uint32_t spi,
                        enum ipsec_aead_alg alg, const uint8_t *keymat,
                        size_t keymat_len, bool esn);

/* Format the esp_sa record (without the "uat:esp_sa:" prefix) into out.
 * Returns the length or ESP_E_INVAL / ESP_E_NOSPACE. Exposed for tests. */
int keylog_format_esp_sa(char *out, size_t cap, uint32_t src, uint32_t dst,
                         uint32_t spi, enum ipsec_aead_alg alg,
                         const uint8_t *keymat, size_t keymat_len);

#endif
