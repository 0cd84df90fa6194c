/*
 * Prometheus metrics: the text exposition format (version 0.0.4) of what
 * `esproxy status` shows, served over HTTP at /metrics when the config
 * names an address (`[esproxy] metrics = ADDRESS:PORT`), and through the
 * control socket (`esproxy status --prometheus`).
 *
 * The HTTP side is deliberately small: one GET or HEAD per connection,
 * request head at most METRICS_HEAD_MAX bytes and METRICS_TIMEOUT_MS to
 * arrive, at most METRICS_MAX_CONNS connections at once (more are closed at
 * accept), answered with Connection: close. 404 for other paths, 405 for
 * other methods, 400 for anything that is not an HTTP/1.x request line,
 * 431 for an overlong head.
 */
#ifndef ESPROXY_METRICS_H
#define ESPROXY_METRICS_H

#include <netinet/in.h>
#include <uv.h>

#include "proxy/status.h"

#define METRICS_HEAD_MAX   4096
#define METRICS_TIMEOUT_MS 5000
#define METRICS_MAX_CONNS  32

struct metrics;

/* Returns a malloc'd exposition, or NULL when out of memory. */
char *metrics_render(const struct status_source *src);

/* Listen on addr; 0 or a negative libuv error (*m_r set on success). */
int metrics_start(uv_loop_t *loop, const struct sockaddr_in *addr, const struct status_source *src,
                  struct metrics **m_r);
/* Close the listener and every open connection; frees when closed. */
void metrics_stop(struct metrics **m);

#endif
