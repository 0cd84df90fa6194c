/* What `esproxy status` shows: rendered as text or JSON by the running process. */
#ifndef ESPROXY_STATUS_H
#define ESPROXY_STATUS_H

#include <stdbool.h>

#include "config/config.h"

void status_mark_start(void);
/* Returns a malloc'd reply, or NULL when out of memory. */
char *status_render(const struct config *cfg, bool json);

#endif
