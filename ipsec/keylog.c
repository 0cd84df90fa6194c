#include "keylog.h"

#include "esp_defs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/platform_util.h>

#define KEYLOG_LINE_MAX 512

int keylog_open(struct keylog *kl, const char *path)
{
    kl->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (kl->fd < 0)
        return ESP_E_IO;
    /* O_CREAT's mode does not apply to a file that already existed. */
    if (fchmod(kl->fd, 0600) != 0) {
        close(kl->fd);
        kl->fd = -1;
        return ESP_E_IO;
    }
    return 0;
}

void keylog_close(struct keylog *kl)
{
    if (kl->fd >= 0)
        close(kl->fd);
    kl->fd = -1;
}

static int keylog_write_line(struct keylog *kl, char *line, size_t len)
{
    ssize_t n;

    do {
        n = write(kl->fd, line, len);
    } while (n < 0 && errno == EINTR);
    mbedtls_platform_zeroize(line, len);
    return n == (ssize_t)len ? 0 : ESP_E_IO;
}

static bool keylog_is_ident(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    }
    return true;
}

static int keylog_emit(struct keylog *kl, const char *prefix, const char *a,
                       const char *sep, const char *b)
{
    char line[KEYLOG_LINE_MAX];
    int n;

    if (kl == NULL || kl->fd < 0 || strpbrk(b, "\r\n") != NULL)
        return ESP_E_INVAL;
    n = snprintf(line, sizeof(line), "%s%s%s%s\n", prefix, a, sep, b);
    if (n < 0 || (size_t)n >= sizeof(line))
        return ESP_E_NOSPACE;
    return keylog_write_line(kl, line, (size_t)n);
}

int keylog_write_record(struct keylog *kl, const char *table, const char *record)
{
    if (!keylog_is_ident(table))
        return ESP_E_INVAL;
    return keylog_emit(kl, "uat:", table, ":", record);
}

int keylog_write_comment(struct keylog *kl, const char *text)
{
    return keylog_emit(kl, "# ", "", "", text);
}

/* Wireshark's names; AES-GCM-128 and -256 share one, told apart by the
 * key length. ChaCha20-Poly1305 has no name in Wireshark 4.0. */
static const char *keylog_ws_alg_name(enum ipsec_aead_alg alg)
{
    switch (alg) {
    case IPSEC_AEAD_AES_GCM_128:
    case IPSEC_AEAD_AES_GCM_256:
        return "AES-GCM with 16 octet ICV [RFC4106]";
    case IPSEC_AEAD_CHACHA20_POLY1305:
        return "ChaCha20-Poly1305 [RFC7634]";
    case IPSEC_AEAD_NONE:
        break;
    }
    return NULL;
}

int keylog_format_esp_sa(char *out, size_t cap, uint32_t src, uint32_t dst,
                         uint32_t spi, enum ipsec_aead_alg alg,
                         const uint8_t *keymat, size_t keymat_len)
{
    char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN], hex[2 * IPSEC_AEAD_KEYMAT_MAX + 1];
    const char *name = keylog_ws_alg_name(alg);
    size_t i;
    int n;

    if (name == NULL || keymat_len != ipsec_aead_keymat_len(alg))
        return ESP_E_INVAL;
    if (inet_ntop(AF_INET, &src, s, sizeof(s)) == NULL ||
        inet_ntop(AF_INET, &dst, d, sizeof(d)) == NULL)
        return ESP_E_INVAL;
    for (i = 0; i < keymat_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", keymat[i]);
    n = snprintf(out, cap, "\"IPv4\",\"%s\",\"%s\",\"0x%08x\",\"%s\",\"0x%s\",\"NULL\",\"\"",
                 s, d, spi, name, hex);
    mbedtls_platform_zeroize(hex, sizeof(hex));
    if (n < 0 || (size_t)n >= cap)
        return ESP_E_NOSPACE;
    return n;
}

int keylog_write_esp_sa(struct keylog *kl, uint32_t src, uint32_t dst, uint32_t spi,
                        enum ipsec_aead_alg alg, const uint8_t *keymat,
                        size_t keymat_len, bool esn)
{
    char rec[KEYLOG_LINE_MAX - 64];
    int n, rc;

    n = keylog_format_esp_sa(rec, sizeof(rec), src, dst, spi, alg, keymat, keymat_len);
    if (n < 0)
        return n;
    if (alg == IPSEC_AEAD_CHACHA20_POLY1305 || esn) {
        char note[KEYLOG_LINE_MAX - 16];

        n = snprintf(note, sizeof(note), "esp_sa%s (not decodable by Wireshark 4.0): %s",
                     esn ? " esn" : "", rec);
        rc = n > 0 && (size_t)n < sizeof(note) ? keylog_write_comment(kl, note)
                                               : ESP_E_NOSPACE;
        mbedtls_platform_zeroize(note, sizeof(note));
    } else {
        rc = keylog_write_record(kl, "esp_sa", rec);
    }
    mbedtls_platform_zeroize(rec, sizeof(rec));
    return rc;
}
