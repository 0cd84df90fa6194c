/*
 * Configuration loader: collect (ini_collect.c), apply environment
 * overrides, interpret every entry against the schema (schema.c), then
 * check cross-key rules. All errors are gathered with their line.
 */
#include "config/config.h"
#include "config/ini_collect.h"
#include "config/schema.h"
#include "config/values.h"
#include "config/loader.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void cfg_error_add(struct load_ctx *ctx, int line, const char *text);

void cfg_error_file(struct load_ctx *ctx, const char *file, int line, const char *fmt, ...)
{
    char msg[1024], text[2200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(text, sizeof(text), "%s:%d: %s", file, line, msg);
    /* sorted after the main file's errors */
    cfg_error_add(ctx, 1 << 30, text);
}

void cfg_error_at(struct load_ctx *ctx, int line, const char *fmt, ...)
{
    struct config *cfg = ctx->cfg;
    char msg[1024], text[2200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(text, sizeof(text), "%s:%d: %s", cfg->path, line, msg);
    else if (line < 0)
        snprintf(text, sizeof(text), "%s: environment %s: %s", cfg->path,
                 ctx->env_names[-line - 1], msg);
    else
        snprintf(text, sizeof(text), "%s: %s", cfg->path, msg);
    cfg_error_add(ctx, line > 0 ? line : 0, text);
}

static void cfg_error_add(struct load_ctx *ctx, int line, const char *text)
{
    struct config *cfg = ctx->cfg;
    struct cfg_error *e;

    e = realloc(cfg->errors, sizeof(*e) * (size_t)(cfg->n_errors + 1));
    if (e == NULL || (e[cfg->n_errors].text = strdup(text)) == NULL) {
        if (e != NULL)
            cfg->errors = e;
        ctx->oom = 1;
        return;
    }
    e[cfg->n_errors].line = line;
    cfg->errors = e;
    cfg->n_errors++;
}

size_t schema_index(const struct schema_key *k)
{
    return (size_t)(k - schema_keys);
}

/* ---- values ---- */

static int cfg_value_set(struct load_ctx *ctx, struct section_slot *slot,
                         const struct schema_key *k, const char *value,
                         char *err, size_t errlen)
{
    char *field = (char *)slot->obj + k->offset;
    struct cfg_tunnel *t = slot->obj;
    char path[CFG_PATH_MAX];
    unsigned u;

    switch (k->type) {
    case TYPE_STRING:
    case TYPE_PATH:
        if (strlen(value) >= k->size) {
            snprintf(err, errlen, "value longer than %zu characters", k->size - 1);
            return -1;
        }
        if (k->type == TYPE_PATH && value[0] != '\0' &&
            value_resolve_path(ctx->cfg->path, value, field, k->size) != 0) {
            snprintf(err, errlen, "path too long");
            return -1;
        }
        if (k->type == TYPE_STRING || value[0] == '\0')
            strcpy(field, value);
        return 0;
    case TYPE_IDENTITY:
        return value_parse_identity(value, field, k->size, err, errlen);
    case TYPE_ENUM:
        for (int i = 0; k->names[i] != NULL; i++) {
            if (strcmp(k->names[i], value) == 0) {
                *(int *)(void *)field = i;
                return 0;
            }
        }
        {
            size_t used = (size_t)snprintf(err, errlen, "'%s' is not one of:", value);

            for (int i = 0; k->names[i] != NULL && used < errlen; i++)
                used += (size_t)snprintf(err + used, errlen - used, " %s", k->names[i]);
        }
        return -1;
    case TYPE_IPV4:
        if (value_parse_ipv4(value, (struct in_addr *)(void *)field) != 0) {
            snprintf(err, errlen, "bad IPv4 address '%s'", value);
            return -1;
        }
        return 0;
    case TYPE_PEER:
        t->peer_any = strcmp(value, "any") == 0;
        if (!t->peer_any && value_parse_ipv4(value, &t->peer) != 0) {
            snprintf(err, errlen, "bad IPv4 address '%s' (or: any)", value);
            return -1;
        }
        return 0;
    case TYPE_ADDR_PORT:
        return value_parse_addr_port(value, (struct sockaddr_in *)(void *)field, err, errlen);
    case TYPE_UINT:
        if (value_parse_uint(value, k->min, k->max, &u) != 0) {
            snprintf(err, errlen, "'%s' is not a number in %u..%u", value, k->min, k->max);
            return -1;
        }
        *(unsigned *)(void *)field = u;
        return 0;
    case TYPE_PORT:
        if (value_parse_uint(value, 1, 65535, &u) != 0) {
            snprintf(err, errlen, "bad port '%s' (1..65535)", value);
            return -1;
        }
        *(uint16_t *)(void *)field = (uint16_t)u;
        return 0;
    case TYPE_PORT_LIST:
        return value_parse_port_list(value, t, err, errlen);
    case TYPE_IKE_PROPOSALS:
        return config_proposals_parse(value, true, t->ike, CFG_MAX_PROPOSALS, &t->n_ike, err, errlen);
    case TYPE_ESP_PROPOSALS:
        return config_proposals_parse(value, false, t->esp, CFG_MAX_PROPOSALS, &t->n_esp, err, errlen);
    case TYPE_SECRET:
        return value_parse_secret(value, strlen(value), (struct cfg_secret *)(void *)field, err, errlen);
    case TYPE_SECRET_FILE:
        if (value_resolve_path(ctx->cfg->path, value, path, sizeof(path)) != 0) {
            snprintf(err, errlen, "path too long");
            return -1;
        }
        return value_read_secret_file(path, (struct cfg_secret *)(void *)field, err, errlen);
    case TYPE_FILE:
        if (value_resolve_path(ctx->cfg->path, value, field, k->size) != 0) {
            snprintf(err, errlen, "path too long");
            return -1;
        }
        return value_check_readable(field, err, errlen);
    }
    return -1;
}

static void cfg_defaults_apply(struct load_ctx *ctx, struct section_slot *slot)
{
    char err[256];

    for (size_t i = 0; i < schema_n_keys; i++) {
        const struct schema_key *k = &schema_keys[i];

        if (k->section == slot->kind && k->def != NULL)
            (void)cfg_value_set(ctx, slot, k, k->def, err, sizeof(err));
    }
}

/* ---- sections ---- */

static unsigned cfg_role_bit(const struct config *cfg)
{
    return cfg->role == CFG_ROLE_BACKEND ? ROLE_BACKEND_BIT : ROLE_FRONTEND_BIT;
}

static void *cfg_section_object(struct load_ctx *ctx, enum schema_section kind,
                                const char *name, int line)
{
    struct config *cfg = ctx->cfg;

    switch (kind) {
    case SECT_TUNNEL:
        if (cfg->n_tunnels >= CFG_MAX_TUNNELS) {
            cfg_error_at(ctx, line, "more than %d tunnels", CFG_MAX_TUNNELS);
            return NULL;
        }
        snprintf(cfg->tunnels[cfg->n_tunnels].name, CFG_NAME_MAX, "%s", name);
        cfg->tunnels[cfg->n_tunnels].line = line;
        return &cfg->tunnels[cfg->n_tunnels++];
    case SECT_LISTEN:
        if (cfg->n_listeners >= CFG_MAX_LISTENERS) {
            cfg_error_at(ctx, line, "more than %d listeners", CFG_MAX_LISTENERS);
            return NULL;
        }
        snprintf(cfg->listeners[cfg->n_listeners].name, CFG_NAME_MAX, "%s", name);
        cfg->listeners[cfg->n_listeners].line = line;
        return &cfg->listeners[cfg->n_listeners++];
    default:
        return cfg;
    }
}

static bool cfg_section_duplicate(struct load_ctx *ctx, int idx, enum schema_section kind,
                                  const char *name)
{
    for (int j = 0; j < idx; j++) {
        struct section_slot *other = &ctx->slots[j];
        const char *oname = strchr(ctx->doc.sections[j].name, ' ');

        if (other->kind != kind)
            continue;
        if (!schema_sections[kind].named ||
            (oname != NULL && strcmp(oname + 1, name) == 0)) {
            cfg_error_at(ctx, ctx->doc.sections[idx].line, "duplicate section [%s] (first at line %d)",
                         ctx->doc.sections[idx].name, other->line);
            return true;
        }
    }
    return false;
}

static void cfg_section_open(struct load_ctx *ctx, int idx)
{
    struct ini_section *s = &ctx->doc.sections[idx];
    struct section_slot *slot = &ctx->slots[idx];
    const char *space = strchr(s->name, ' ');
    size_t typelen = space ? (size_t)(space - s->name) : strlen(s->name);
    const char *name = space ? space + 1 : "";
    int kind;

    slot->kind = SECT_COUNT;
    slot->label = s->name;
    slot->line = s->line;
    for (kind = 0; kind < SECT_COUNT; kind++)
        if (strlen(schema_sections[kind].name) == typelen &&
            strncmp(schema_sections[kind].name, s->name, typelen) == 0)
            break;
    if (kind == SECT_COUNT) {
        cfg_error_at(ctx, s->line, "unknown section [%s]", s->name);
        return;
    }
    while (*name == ' ')
        name++;
    if (schema_sections[kind].named && (*name == '\0' || strlen(name) >= CFG_NAME_MAX)) {
        cfg_error_at(ctx, s->line, "[%s] needs a name: [%s NAME] (1..%d characters)",
                     s->name, schema_sections[kind].name, CFG_NAME_MAX - 1);
        return;
    }
    if (!schema_sections[kind].named && *name != '\0') {
        cfg_error_at(ctx, s->line, "[%s] takes no name", schema_sections[kind].name);
        return;
    }
    if (ctx->role_known && !(schema_sections[kind].roles & cfg_role_bit(ctx->cfg))) {
        cfg_error_at(ctx, s->line, "[%s] is only valid with role = %s (role is %s)", s->name,
                     schema_sections[kind].roles == ROLE_BACKEND_BIT ? "backend" : "frontend",
                     config_role_name(ctx->cfg->role));
        return;
    }
    if (cfg_section_duplicate(ctx, idx, (enum schema_section)kind, name))
        return;
    slot->obj = cfg_section_object(ctx, (enum schema_section)kind, name, s->line);
    if (slot->obj == NULL)
        return;
    slot->kind = (enum schema_section)kind;
    cfg_defaults_apply(ctx, slot);
}

/* ---- entries ---- */

static void cfg_forward_add(struct load_ctx *ctx, const struct ini_entry *e)
{
    struct config *cfg = ctx->cfg;
    struct cfg_forward *f;
    char err[256];
    unsigned port;

    if (value_parse_uint(e->key, 1, 65535, &port) != 0) {
        cfg_error_at(ctx, e->line, "unknown key '%s' in [forward] (a port number or proxy_protocol)", e->key);
        return;
    }
    for (int i = 0; i < cfg->n_forwards; i++) {
        if (cfg->forwards[i].port == port) {
            cfg_error_at(ctx, e->line, "port %u forwarded twice (first at line %d)", port,
                         cfg->forwards[i].line);
            return;
        }
    }
    if (cfg->n_forwards >= CFG_MAX_FORWARDS) {
        cfg_error_at(ctx, e->line, "more than %d forwards", CFG_MAX_FORWARDS);
        return;
    }
    f = &cfg->forwards[cfg->n_forwards];
    if (value_parse_addr_port(e->value, &f->target, err, sizeof(err)) != 0) {
        cfg_error_at(ctx, e->line, "%s: %s", e->key, err);
        return;
    }
    f->port = (uint16_t)port;
    f->line = e->line;
    cfg->n_forwards++;
}

static void cfg_entry_apply(struct load_ctx *ctx, int i)
{
    const struct ini_entry *e = &ctx->doc.entries[i];
    int line = i >= ctx->env_first_entry ? -(i - ctx->env_first_entry + 1) : e->line;
    struct section_slot *slot;
    const struct schema_key *k;
    char err[1024];

    if (e->section < 0) {
        cfg_error_at(ctx, line, "key '%s' outside any section", e->key);
        return;
    }
    slot = &ctx->slots[e->section];
    if (slot->kind == SECT_COUNT)
        return;     /* the section itself was reported */
    k = schema_key_find(slot->kind, e->key);
    if (k == NULL && slot->kind == SECT_FORWARD) {
        cfg_forward_add(ctx, e);
        return;
    }
    if (k == NULL) {
        cfg_error_at(ctx, line, "unknown key '%s' in [%s]", e->key, slot->label);
        return;
    }
    if (slot->key_line[schema_index(k)] > 0 && line > 0) {
        cfg_error_at(ctx, line, "duplicate key '%s' (first at line %d)", e->key,
                     slot->key_line[schema_index(k)]);
        return;
    }
    /* Mark the key as given even when its value is bad, so that it is not
     * also reported as missing. */
    slot->key_line[schema_index(k)] = line;
    if (cfg_value_set(ctx, slot, k, e->value, err, sizeof(err)) != 0)
        cfg_error_at(ctx, line, "%s: %s", e->key, err);
}

/* ---- environment overrides ---- */

static int cfg_env_target_section(struct load_ctx *ctx, enum schema_section kind)
{
    int found = -1;

    for (int i = 0; i < ctx->doc.n_sections; i++) {
        const char *n = ctx->doc.sections[i].name;
        size_t len = strlen(schema_sections[kind].name);

        if (strncmp(n, schema_sections[kind].name, len) == 0 && (n[len] == '\0' || n[len] == ' ')) {
            if (found >= 0)
                return -2;  /* ambiguous */
            found = i;
        }
    }
    return found;
}

static void cfg_env_collect(struct load_ctx *ctx)
{
    ctx->env_first_entry = ctx->doc.n_entries;
    ctx->env_names = calloc(schema_n_keys, sizeof(*ctx->env_names));
    if (ctx->env_names == NULL) {
        ctx->oom = 1;
        return;
    }
    for (size_t i = 0; i < schema_n_keys; i++) {
        const struct schema_key *k = &schema_keys[i];
        const char *v = k->env ? getenv(k->env) : NULL;
        int sect;

        if (v == NULL)
            continue;
        sect = cfg_env_target_section(ctx, k->section);
        if (sect == -1 && k->section == SECT_ESPROXY) {
            if (ini_collect_section(&ctx->doc, "esproxy", 0) != 0) {
                ctx->oom = 1;
                return;
            }
            sect = ctx->doc.n_sections - 1;
        }
        if (sect < 0) {
            cfg_error_at(ctx, 0, "environment %s: needs exactly one [%s] section in the file",
                         k->env, schema_sections[k->section].name);
            continue;
        }
        ctx->env_names[ctx->doc.n_entries - ctx->env_first_entry] = k->env;
        if (ini_collect_add(&ctx->doc, sect, k->name, v, 0) != 0) {
            ctx->oom = 1;
            return;
        }
    }
}

/* An override replaces the file's value: drop the file entry it shadows. */
static bool cfg_entry_shadowed(const struct load_ctx *ctx, int i)
{
    const struct ini_entry *e = &ctx->doc.entries[i];

    if (i >= ctx->env_first_entry)
        return false;
    for (int j = ctx->env_first_entry; j < ctx->doc.n_entries; j++) {
        const struct ini_entry *o = &ctx->doc.entries[j];

        if (o->section == e->section && strcmp(o->key, e->key) == 0)
            return true;
    }
    return false;
}

static void cfg_role_read(struct load_ctx *ctx)
{
    struct config *cfg = ctx->cfg;
    const struct schema_key *k = schema_key_find(SECT_ESPROXY, "role");
    int where = -1;

    for (int i = 0; i < ctx->doc.n_entries; i++) {
        const struct ini_entry *e = &ctx->doc.entries[i];

        if (e->section >= 0 && strcmp(ctx->doc.sections[e->section].name, "esproxy") == 0 &&
            strcmp(e->key, "role") == 0 && !cfg_entry_shadowed(ctx, i))
            where = i;
    }
    if (where < 0) {
        cfg_error_at(ctx, 0, "missing required key 'role' in [esproxy] (frontend or backend)");
        return;
    }
    for (int i = 0; k->names[i] != NULL; i++) {
        if (strcmp(ctx->doc.entries[where].value, k->names[i]) == 0) {
            cfg->role = (enum cfg_role)i;
            cfg->role_line = ctx->doc.entries[where].line;
            ctx->role_known = true;
        }
    }
}

static void cfg_interpret(struct load_ctx *ctx)
{
    ctx->slots = calloc((size_t)ctx->doc.n_sections + 1, sizeof(*ctx->slots));
    if (ctx->slots == NULL) {
        ctx->oom = 1;
        return;
    }
    cfg_role_read(ctx);
    for (int i = 0; i < ctx->doc.n_sections; i++)
        cfg_section_open(ctx, i);
    for (int i = 0; i < ctx->doc.n_entries; i++)
        if (!cfg_entry_shadowed(ctx, i))
            cfg_entry_apply(ctx, i);
    cfg_validate(ctx);
}

/* Stable insertion sort by line: errors read top to bottom like the file. */
static void cfg_errors_sort(struct config *cfg)
{
    for (int i = 1; i < cfg->n_errors; i++) {
        struct cfg_error e = cfg->errors[i];
        int j = i;

        for (; j > 0 && cfg->errors[j - 1].line > e.line; j--)
            cfg->errors[j] = cfg->errors[j - 1];
        cfg->errors[j] = e;
    }
}

struct config *config_load(const char *path, bool use_env)
{
    struct load_ctx ctx;
    struct config *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL)
        return NULL;
    memset(&ctx, 0, sizeof(ctx));
    ctx.cfg = cfg;
    snprintf(cfg->path, sizeof(cfg->path), "%s", path);
    if (ini_collect_file(path, &ctx.doc) != 0) {
        ini_collect_free(&ctx.doc);
        config_free(&cfg);
        return NULL;
    }
    if (ctx.doc.errno_open != 0) {
        cfg_error_at(&ctx, 0, "cannot open: %s", strerror(ctx.doc.errno_open));
    } else {
        if (ctx.doc.syntax_error_line > 0)
            cfg_error_at(&ctx, ctx.doc.syntax_error_line,
                         "syntax error: expected [section], key = value, or a comment");
        if (ctx.doc.long_line > 0)
            cfg_error_at(&ctx, ctx.doc.long_line, "line too long (at most 198 characters)");
        ctx.env_first_entry = ctx.doc.n_entries;
        if (use_env)
            cfg_env_collect(&ctx);
        if (!ctx.oom)
            cfg_interpret(&ctx);
    }
    cfg_errors_sort(cfg);
    ini_collect_free(&ctx.doc);
    free(ctx.slots);
    free(ctx.env_names);
    if (ctx.oom)
        config_free(&cfg);
    return cfg;
}

void config_free(struct config **cfgp)
{
    struct config *cfg = *cfgp;

    if (cfg == NULL)
        return;
    for (int i = 0; i < cfg->n_errors; i++)
        free(cfg->errors[i].text);
    free(cfg->errors);
    free(cfg->routes);
    explicit_bzero(cfg, sizeof(*cfg));     /* PSKs live inside */
    free(cfg);
    *cfgp = NULL;
}

const char *config_role_name(enum cfg_role role)
{
    return role == CFG_ROLE_BACKEND ? "backend" : "frontend";
}

const char *config_protocol_name(enum cfg_protocol proto)
{
    switch (proto) {
    case CFG_PROTO_POP3: return "pop3";
    case CFG_PROTO_IMAP: return "imap";
    case CFG_PROTO_HTTP: return "http";
    }
    return "?";
}

void config_summary(const struct config *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s: valid %s configuration: %d tunnel%s, %d listener%s, %d forward%s",
             cfg->path, config_role_name(cfg->role),
             cfg->n_tunnels, cfg->n_tunnels == 1 ? "" : "s",
             cfg->n_listeners, cfg->n_listeners == 1 ? "" : "s",
             cfg->n_forwards, cfg->n_forwards == 1 ? "" : "s");
}
