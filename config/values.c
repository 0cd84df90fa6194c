/*
 * Value parsers for the configuration schema: one function per value type,
 * each writing into the section's struct or explaining what is wrong.
 * Error texts echo the offending value, except for secrets.
 */
#include "config/values.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int value_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int value_parse_ipv4(const char *s, struct in_addr *out)
{
    return inet_pton(AF_INET, s, out) == 1 ? 0 : -1;
}

int value_parse_addr_port(const char *s, struct sockaddr_in *out, char *err, size_t errlen)
{
    char host[INET_ADDRSTRLEN];
    const char *colon = strrchr(s, ':');
    unsigned port;
    size_t n;

    if (colon == NULL) {
        snprintf(err, errlen, "'%s' is not ADDRESS:PORT", s);
        return -1;
    }
    n = (size_t)(colon - s);
    if (n == 0 || n >= sizeof(host)) {
        snprintf(err, errlen, "bad IPv4 address in '%s'", s);
        return -1;
    }
    memcpy(host, s, n);
    host[n] = '\0';
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    if (value_parse_ipv4(host, &out->sin_addr) != 0) {
        snprintf(err, errlen, "bad IPv4 address '%s'", host);
        return -1;
    }
    if (value_parse_uint(colon + 1, 1, 65535, &port) != 0) {
        snprintf(err, errlen, "bad port '%s' (1..65535)", colon + 1);
        return -1;
    }
    out->sin_port = htons((uint16_t)port);
    return 0;
}

int value_parse_port_list(const char *s, struct cfg_tunnel *t, char *err, size_t errlen)
{
    const char *p = s;

    t->n_ports = 0;
    t->ports_all = false;
    if (strcmp(s, "all") == 0) {
        t->ports_all = true;
        return 0;
    }
    while (*p != '\0') {
        char tok[16];
        size_t n = strcspn(p, ",");
        unsigned port;

        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        if (n == 0 || n >= sizeof(tok)) {
            snprintf(err, errlen, "bad port list '%s' (ports separated by commas, or all)", s);
            return -1;
        }
        memcpy(tok, p, n);
        tok[n] = '\0';
        while (n > 0 && tok[n - 1] == ' ')
            tok[--n] = '\0';
        if (value_parse_uint(tok, 1, 65535, &port) != 0) {
            snprintf(err, errlen, "bad port '%s' in port list (1..65535)", tok);
            return -1;
        }
        if (t->n_ports >= CFG_MAX_PORTS) {
            snprintf(err, errlen, "more than %d ports", CFG_MAX_PORTS);
            return -1;
        }
        for (int i = 0; i < t->n_ports; i++) {
            if (t->ports[i] == port) {
                snprintf(err, errlen, "port %u listed twice", port);
                return -1;
            }
        }
        t->ports[t->n_ports++] = (uint16_t)port;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    if (t->n_ports == 0) {
        snprintf(err, errlen, "empty port list");
        return -1;
    }
    return 0;
}

int value_parse_identity(const char *s, char *out, size_t size, char *err, size_t errlen)
{
    size_t n = strlen(s);

    if (n == 0 || n >= size) {
        snprintf(err, errlen, "identity must be 1..%zu characters", size - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isgraph((unsigned char)s[i])) {
            snprintf(err, errlen, "identity '%s' contains a space or control character", s);
            return -1;
        }
    }
    if (strncmp(s, "keyid:", 6) == 0 && n == 6) {
        snprintf(err, errlen, "empty keyid identity");
        return -1;
    }
    memcpy(out, s, n + 1);
    return 0;
}

static int hex_nibble(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int value_parse_secret(const char *s, size_t n, struct cfg_secret *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
        if (n == 0 || n % 2 != 0 || n / 2 > sizeof(out->bytes)) {
            snprintf(err, errlen, "hex secret must have an even number of digits, at most %zu bytes",
                     sizeof(out->bytes));
            return -1;
        }
        for (size_t i = 0; i < n; i += 2) {
            int hi = hex_nibble((unsigned char)s[i]), lo = hex_nibble((unsigned char)s[i + 1]);

            if (hi < 0 || lo < 0) {
                explicit_bzero(out, sizeof(*out));
                snprintf(err, errlen, "hex secret contains a non-hex digit");
                return -1;
            }
            out->bytes[out->len++] = (unsigned char)(hi << 4 | lo);
        }
        return 0;
    }
    if (n == 0 || n > sizeof(out->bytes)) {
        snprintf(err, errlen, "secret must be 1..%zu bytes", sizeof(out->bytes));
        return -1;
    }
    memcpy(out->bytes, s, n);
    out->len = n;
    return 0;
}

int value_read_secret_file(const char *path, struct cfg_secret *out, char *err, size_t errlen)
{
    unsigned char buf[CFG_PSK_MAX * 2 + 8];
    size_t n;
    FILE *fp = fopen(path, "r");
    int rc;

    if (fp == NULL) {
        snprintf(err, errlen, "'%s': cannot read: %s", path, strerror(errno));
        return -1;
    }
    n = fread(buf, 1, sizeof(buf), fp);
    if (ferror(fp)) {
        snprintf(err, errlen, "'%s': cannot read: %s", path, strerror(errno));
        fclose(fp);
        return -1;
    }
    fclose(fp);
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    rc = value_parse_secret((const char *)buf, n, out, err, errlen);
    if (rc != 0) {
        size_t used = strlen(err);

        snprintf(err + used, errlen - used, " (in '%s')", path);
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

int value_resolve_path(const char *base_file, const char *value, char *out, size_t size)
{
    const char *slash = strrchr(base_file, '/');
    int n;

    if (value[0] == '/' || slash == NULL)
        n = snprintf(out, size, "%s", value);
    else
        n = snprintf(out, size, "%.*s/%s", (int)(slash - base_file), base_file, value);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

int value_check_readable(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");

    if (fp == NULL) {
        snprintf(err, errlen, "'%s': cannot read: %s", path, strerror(errno));
        return -1;
    }
    fclose(fp);
    return 0;
}
