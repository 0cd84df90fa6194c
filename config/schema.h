/*
 * The configuration schema: every section and key esproxy understands, with
 * its type, default, the roles it is valid in and its documentation. The
 * parser (config.c) and the generated reference in README.md both come from
 * this one table, so they cannot drift apart.
 */
#ifndef ESPROXY_CONFIG_SCHEMA_H
#define ESPROXY_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

enum schema_section {
    SECT_ESPROXY,
    SECT_TUNNEL,
    SECT_LISTEN,
    SECT_ROUTING,
    SECT_FORWARD,
    SECT_COUNT
};

enum schema_type {
    TYPE_STRING,        /* free text up to size bytes */
    TYPE_IDENTITY,      /* IKE identity: FQDN, IPv4 address or key id */
    TYPE_ENUM,          /* one of names[] */
    TYPE_IPV4,          /* dotted quad */
    TYPE_PEER,          /* dotted quad, or "any" (backend role) */
    TYPE_ADDR_PORT,     /* a.b.c.d:port */
    TYPE_UINT,          /* min..max */
    TYPE_PORT,          /* 1..65535 */
    TYPE_PORT_LIST,     /* "all" or comma-separated ports */
    TYPE_IKE_PROPOSALS,
    TYPE_ESP_PROPOSALS,
    TYPE_SECRET,        /* inline secret, never echoed */
    TYPE_SECRET_FILE,   /* file holding the secret */
    TYPE_FILE,          /* readable file */
    TYPE_PATH,          /* a path written at run time */
};

#define ROLE_FRONTEND_BIT 1u
#define ROLE_BACKEND_BIT  2u
#define ROLE_BOTH         (ROLE_FRONTEND_BIT | ROLE_BACKEND_BIT)

struct schema_key {
    enum schema_section section;
    const char *name;
    enum schema_type type;
    size_t offset;          /* into the section's struct */
    size_t size;            /* TYPE_STRING/IDENTITY/PATH/FILE: buffer size */
    unsigned min, max;      /* TYPE_UINT */
    const char *const *names;   /* TYPE_ENUM, terminated by NULL */
    const char *def;        /* default as written in a file, or NULL */
    bool required;
    unsigned roles;
    const char *env;        /* environment override, or NULL */
    const char *doc;
};

struct schema_section_info {
    const char *name;       /* "tunnel" */
    bool named;             /* [tunnel NAME] */
    bool multiple;
    unsigned roles;
    const char *doc;
};

extern const struct schema_key schema_keys[];
extern const size_t schema_n_keys;
extern const struct schema_section_info schema_sections[SECT_COUNT];

const struct schema_key *schema_key_find(enum schema_section sect, const char *name);

#endif
