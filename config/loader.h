/* Internal to config/: the loader's state, shared by config.c and validate.c. */
#ifndef ESPROXY_CONFIG_LOADER_H
#define ESPROXY_CONFIG_LOADER_H

#include "config/config.h"
#include "config/ini_collect.h"
#include "config/schema.h"

#define MAX_SCHEMA_KEYS 96

/* One interpreted section instance. */
struct section_slot {
    enum schema_section kind;   /* SECT_COUNT when unusable */
    void *obj;
    const char *label;          /* "[tunnel main]" text for messages */
    int line;
    int key_line[MAX_SCHEMA_KEYS];  /* line of each schema key set here */
};

struct load_ctx {
    struct config *cfg;
    struct ini_doc doc;
    struct section_slot *slots;     /* parallel to doc.sections */
    int env_first_entry;            /* entries from here on came from env */
    const char **env_names;         /* env variable of each env entry */
    bool role_known;                /* role parsed: role-specific checks apply */
    int oom;
};


/* line > 0: FILE:LINE; line < 0: the -line'th environment override; 0: FILE only */
void cfg_error_at(struct load_ctx *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error in another file the configuration names (the routing map). */
void cfg_error_file(struct load_ctx *ctx, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
size_t schema_index(const struct schema_key *k);
/* routes.c: read [routing] map into cfg->routes. */
void cfg_routes_load(struct load_ctx *ctx);
void cfg_validate(struct load_ctx *ctx);

#endif
