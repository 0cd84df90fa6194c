/* What `esproxy status` shows: rendered as text or JSON by the running process. */
#ifndef ESPROXY_STATUS_H
#define ESPROXY_STATUS_H

#include <stdbool.h>

#include "config/config.h"

struct tunnel_mgr;
struct frontend;

/* What the running process exposes to `esproxy status`. */
struct status_source {
    const struct config *cfg;
    struct tunnel_mgr *tm;      /* NULL before the tunnels exist */
    struct frontend *fe;        /* frontend role */
};

void status_mark_start(void);
double status_uptime(void);     /* seconds since status_mark_start */
/* Returns a malloc'd reply, or NULL when out of memory. */
char *status_render(const struct status_source *src, bool json);

#endif
