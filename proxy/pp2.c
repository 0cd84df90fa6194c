#include "proxy/pp2.h"

#include <string.h>

static const uint8_t pp2_sig[PP2_SIG_LEN] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51,
                                              0x55, 0x49, 0x54, 0x0a };

size_t pp2_build(uint8_t *out, const struct sockaddr_in *src, const struct sockaddr_in *dst)
{
    memcpy(out, pp2_sig, PP2_SIG_LEN);
    out[12] = 0x21;         /* version 2, command PROXY */
    out[13] = 0x11;         /* AF_INET, STREAM */
    out[14] = 0;
    out[15] = 12;           /* address block length */
    memcpy(out + 16, &src->sin_addr, 4);
    memcpy(out + 20, &dst->sin_addr, 4);
    memcpy(out + 24, &src->sin_port, 2);
    memcpy(out + 26, &dst->sin_port, 2);
    return PP2_V4_LEN;
}

long pp2_header_len(const uint8_t *buf, size_t len)
{
    size_t n = len < PP2_SIG_LEN ? len : PP2_SIG_LEN;
    size_t total;

    if (memcmp(buf, pp2_sig, n) != 0)
        return -1;
    if (len < PP2_HDR_LEN)
        return 0;
    if ((buf[12] & 0xf0) != 0x20 || (buf[12] & 0x0f) > 1)
        return -1;      /* version 2; LOCAL or PROXY */
    total = PP2_HDR_LEN + ((size_t)buf[14] << 8 | buf[15]);
    if (total > PP2_MAX_LEN || ((buf[12] & 0x0f) == 1 && buf[13] == 0x11 && total < PP2_V4_LEN))
        return -1;
    return len >= total ? (long)total : 0;
}

int pp2_source(const uint8_t *buf, size_t len, struct sockaddr_in *src)
{
    long total = pp2_header_len(buf, len);

    if (total < PP2_V4_LEN || buf[12] != 0x21 || buf[13] != 0x11)
        return -1;
    memset(src, 0, sizeof(*src));
    src->sin_family = AF_INET;
    memcpy(&src->sin_addr, buf + 16, 4);
    memcpy(&src->sin_port, buf + 24, 2);
    return 0;
}
