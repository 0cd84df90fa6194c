/* Typed value parsers used by the configuration loader. 0 ok, -1 error. */
#ifndef ESPROXY_CONFIG_VALUES_H
#define ESPROXY_CONFIG_VALUES_H

#include "config/config.h"

int value_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
int value_parse_ipv4(const char *s, struct in_addr *out);
int value_parse_addr_port(const char *s, struct sockaddr_in *out, char *err, size_t errlen);
int value_parse_port_list(const char *s, struct cfg_tunnel *t, char *err, size_t errlen);
int value_parse_identity(const char *s, char *out, size_t size, char *err, size_t errlen);
int value_parse_secret(const char *s, size_t n, struct cfg_secret *out, char *err, size_t errlen);
int value_read_secret_file(const char *path, struct cfg_secret *out, char *err, size_t errlen);
/* Relative paths are taken relative to the configuration file's folder. */
int value_resolve_path(const char *base_file, const char *value, char *out, size_t size);
int value_check_readable(const char *path, char *err, size_t errlen);

#endif
