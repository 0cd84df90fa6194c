/*
 * The routing map ([routing] map = FILE): which tunnel serves which user.
 * One entry per line, `USER TUNNEL` or `@DOMAIN TUNNEL`; `#` starts a
 * comment. A user entry wins over its domain's; users the map does not
 * name go to [routing] default, else to the listener's tunnel. Errors name
 * the map file and line.
 */
#include "config/loader.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cfg_tunnel_index(const struct config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_tunnels; i++)
        if (strcmp(cfg->tunnels[i].name, name) == 0)
            return i;
    return -1;
}

static void cfg_route_add(struct load_ctx *ctx, const char *file, int line, const char *key, const char *tunnel)
{
    struct config *cfg = ctx->cfg;
    struct cfg_route *r;
    int t = cfg_tunnel_index(cfg, tunnel);

    if (t < 0) {
        cfg_error_file(ctx, file, line, "no [tunnel %s] section", tunnel);
        return;
    }
    if (strlen(key) >= sizeof(r->key) || (key[0] == '@' && key[1] == '\0')) {
        cfg_error_file(ctx, file, line, "bad user or @domain '%.64s'", key);
        return;
    }
    for (int i = 0; i < cfg->n_routes; i++) {
        if (strcasecmp(cfg->routes[i].key, key) == 0) {
            cfg_error_file(ctx, file, line, "'%s' is mapped twice", key);
            return;
        }
    }
    r = realloc(cfg->routes, sizeof(*r) * (size_t)(cfg->n_routes + 1));
    if (r == NULL) {
        ctx->oom = 1;
        return;
    }
    cfg->routes = r;
    snprintf(r[cfg->n_routes].key, sizeof(r->key), "%s", key);
    r[cfg->n_routes].tunnel = t;
    cfg->n_routes++;
}

void cfg_routes_load(struct load_ctx *ctx)
{
    struct config *cfg = ctx->cfg;
    const char *file = cfg->routing_map;
    FILE *fp;
    char buf[1024];
    int line = 0;

    if (file[0] == '\0')
        return;
    fp = fopen(file, "r");
    if (fp == NULL)
        return;     /* the map key's file check named the cause already */
    while (fgets(buf, sizeof(buf), fp) != NULL) {
        char key[300], tunnel[CFG_NAME_MAX + 8], extra[8];
        char *hash = strchr(buf, '#');
        int n;

        line++;
        if (strchr(buf, '\n') == NULL && !feof(fp)) {
            cfg_error_file(ctx, file, line, "line too long");
            while (fgets(buf, sizeof(buf), fp) != NULL && strchr(buf, '\n') == NULL)
                ;
            continue;
        }
        if (hash != NULL)
            *hash = '\0';
        n = sscanf(buf, "%299s %71s %7s", key, tunnel, extra);
        if (n <= 0)
            continue;
        if (n != 2) {
            cfg_error_file(ctx, file, line, "expected `USER TUNNEL` or `@DOMAIN TUNNEL`");
            continue;
        }
        cfg_route_add(ctx, file, line, key, tunnel);
    }
    fclose(fp);
}
