/*
 * Cross-key rules, checked after every entry was interpreted: required keys,
 * authentication material, role-specific values, listener ports, references
 * between sections. Errors point at the key's line, or at the section header
 * when a key is missing.
 */
#include "config/loader.h"

#include <arpa/inet.h>
#include <string.h>

static int slot_key_line(const struct section_slot *slot, const char *name)
{
    const struct schema_key *k = schema_key_find(slot->kind, name);

    return k ? slot->key_line[schema_index(k)] : 0;
}

static bool slot_has(const struct section_slot *slot, const char *name)
{
    return slot_key_line(slot, name) != 0;
}

static void validate_required(struct load_ctx *ctx, const struct section_slot *slot)
{
    for (size_t i = 0; i < schema_n_keys; i++) {
        const struct schema_key *k = &schema_keys[i];

        if (k->section == slot->kind && k->required && slot->key_line[i] == 0 &&
            !(k->section == SECT_ESPROXY && strcmp(k->name, "role") == 0))
            cfg_error_at(ctx, slot->line, "[%s]: missing required key '%s'", slot->label, k->name);
    }
}

static void validate_tunnel(struct load_ctx *ctx, const struct section_slot *slot)
{
    const struct cfg_tunnel *t = slot->obj;
    bool psk = slot_has(slot, "psk"), psk_file = slot_has(slot, "psk_file");

    validate_required(ctx, slot);
    if (t->auth == CFG_AUTH_PSK) {
        if (!psk && !psk_file)
            cfg_error_at(ctx, slot->line, "[%s]: auth = psk needs 'psk_file' (or 'psk')", slot->label);
        if (psk && psk_file)
            cfg_error_at(ctx, slot_key_line(slot, "psk_file"),
                         "give either 'psk' or 'psk_file', not both (psk at line %d)",
                         slot_key_line(slot, "psk"));
    } else {
        static const char *const need[] = { "cert", "key", "ca" };

        for (size_t i = 0; i < 3; i++)
            if (!slot_has(slot, need[i]))
                cfg_error_at(ctx, slot->line, "[%s]: auth = cert needs '%s'", slot->label, need[i]);
        if (psk || psk_file)
            cfg_error_at(ctx, slot_key_line(slot, psk ? "psk" : "psk_file"),
                         "a pre-shared key is not used with auth = cert");
    }
    if (ctx->role_known && ctx->cfg->role == CFG_ROLE_FRONTEND && t->peer_any)
        cfg_error_at(ctx, slot_key_line(slot, "peer"),
                     "peer = any is only valid with role = backend: a frontend needs the VIP address");
    if (slot_has(slot, "local") && slot_has(slot, "peer") && !t->peer_any &&
        t->local.s_addr == t->peer.s_addr)
        cfg_error_at(ctx, slot_key_line(slot, "peer"), "peer is the same address as local");
    if (t->dead_after_ms > 0 && t->probe_interval_ms > 0 && t->dead_after_ms < 20)
        cfg_error_at(ctx, slot_key_line(slot, "dead_after_ms"), "dead_after_ms must be at least 20");
}

static int config_tunnel_find(const struct config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_tunnels; i++)
        if (strcmp(cfg->tunnels[i].name, name) == 0)
            return i;
    return -1;
}

static uint16_t default_backend_port(enum cfg_protocol p)
{
    return p == CFG_PROTO_POP3 ? 110 : p == CFG_PROTO_IMAP ? 143 : 80;
}

static void validate_listener(struct load_ctx *ctx, const struct section_slot *slot)
{
    struct config *cfg = ctx->cfg;
    struct cfg_listener *l = slot->obj;

    validate_required(ctx, slot);
    if (l->tls != CFG_TLS_NONE) {
        if (!slot_has(slot, "cert"))
            cfg_error_at(ctx, slot->line, "[%s]: tls = %s needs 'cert'", slot->label,
                         l->tls == CFG_TLS_STARTTLS ? "starttls" : "implicit");
        if (!slot_has(slot, "key"))
            cfg_error_at(ctx, slot->line, "[%s]: tls = %s needs 'key'", slot->label,
                         l->tls == CFG_TLS_STARTTLS ? "starttls" : "implicit");
    }
    if (l->tls == CFG_TLS_STARTTLS && l->protocol == CFG_PROTO_HTTP)
        cfg_error_at(ctx, slot_key_line(slot, "tls"), "HTTP has no STARTTLS: use tls = implicit");
    if (l->tunnel[0] != '\0') {
        if (config_tunnel_find(cfg, l->tunnel) < 0)
            cfg_error_at(ctx, slot_key_line(slot, "tunnel"), "no [tunnel %s] section", l->tunnel);
    } else if (cfg->n_tunnels == 1) {
        snprintf(l->tunnel, sizeof(l->tunnel), "%s", cfg->tunnels[0].name);
    } else if (cfg->n_tunnels > 1) {
        cfg_error_at(ctx, slot->line, "[%s]: several tunnels exist: name one with 'tunnel'", slot->label);
    }
    if (l->backend_port == 0)
        l->backend_port = default_backend_port(l->protocol);
    if (l->plaintext_auth == CFG_PLAINTEXT_YES && l->tls == CFG_TLS_IMPLICIT)
        cfg_error_at(ctx, slot_key_line(slot, "plaintext_auth"), "plaintext_auth does not apply to tls = implicit");
}

static bool addr_overlap(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_port == b->sin_port &&
           (a->sin_addr.s_addr == b->sin_addr.s_addr || a->sin_addr.s_addr == INADDR_ANY ||
            b->sin_addr.s_addr == INADDR_ANY);
}

static void validate_listener_ports(struct load_ctx *ctx)
{
    const struct config *cfg = ctx->cfg;

    for (int i = 0; i < cfg->n_listeners; i++) {
        for (int j = 0; j < i; j++) {
            const struct cfg_listener *a = &cfg->listeners[i], *b = &cfg->listeners[j];

            if (a->addr.sin_port != 0 && addr_overlap(&a->addr, &b->addr)) {
                cfg_error_at(ctx, a->line, "listener port %u already used by [listen %s] at line %d",
                             ntohs(a->addr.sin_port), b->name, b->line);
                break;
            }
        }
    }
}

static void validate_role(struct load_ctx *ctx)
{
    struct config *cfg = ctx->cfg;
    int line = cfg->role_line;

    if (cfg->n_tunnels == 0)
        cfg_error_at(ctx, line, "no [tunnel NAME] section: at least one tunnel is needed");
    if (cfg->role == CFG_ROLE_FRONTEND) {
        if (cfg->n_listeners == 0)
            cfg_error_at(ctx, line, "no [listen NAME] section: a frontend needs at least one listener");
        validate_listener_ports(ctx);
        if (cfg->routing_default[0] != '\0' && config_tunnel_find(cfg, cfg->routing_default) < 0)
            cfg_error_at(ctx, line, "[routing] default: no [tunnel %s] section", cfg->routing_default);
        cfg_routes_load(ctx);
    } else if (cfg->n_forwards == 0) {
        cfg_error_at(ctx, line, "[forward] has no port: a backend needs at least one (e.g. 143 = 127.0.0.1:143)");
    }
}

void cfg_validate(struct load_ctx *ctx)
{
    for (int i = 0; i < ctx->doc.n_sections; i++) {
        const struct section_slot *slot = &ctx->slots[i];

        switch (slot->kind) {
        case SECT_ESPROXY:
            validate_required(ctx, slot);
            break;
        case SECT_TUNNEL:
            validate_tunnel(ctx, slot);
            break;
        case SECT_LISTEN:
            validate_listener(ctx, slot);
            break;
        default:
            break;
        }
    }
    if (ctx->role_known)
        validate_role(ctx);
}
