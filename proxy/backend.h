/* The backend role: forward inner TCP from the tunnel to local services. */
#ifndef ESPROXY_PROXY_BACKEND_H
#define ESPROXY_PROXY_BACKEND_H

#include <uv.h>

#include "config/config.h"
#include "ipsec/tunnel.h"

struct backend;

/* Adds the configured tunnels (as responders) to tm and listens on the
 * forwarded ports. 0 or a negative libuv error (already logged). */
int backend_start(struct backend **b_r, uv_loop_t *loop, const struct config *cfg, struct tunnel_mgr *tm);
void backend_close_listeners(struct backend *b);
/* Shutdown: abort every inner stream and service connection. */
void backend_abort_all(struct backend *b);
void backend_free(struct backend **b);
void backend_counts(const struct backend *b, uint64_t *accepted, uint64_t *refused);

#endif
