/*
 * Control socket: a Unix stream socket (config key `control`) that answers
 * one command per connection. `esproxy status` is its client.
 * Commands: "status" (text), "status json" and "metrics" (Prometheus text
 * format). Each reply ends with EOF.
 */
#ifndef ESPROXY_CONTROL_H
#define ESPROXY_CONTROL_H

#include <stdbool.h>
#include <uv.h>

#include "config/config.h"
#include "proxy/status.h"

#define CONTROL_MAX_CONNS        16      /* served at once; more are closed at accept */
#define CONTROL_CONN_TIMEOUT_MS  5000    /* a connection's whole life, command to reply */

struct control;

/* Returns 0 or a negative libuv error; *ctl_r is set on success. */
int control_start(uv_loop_t *loop, const struct status_source *src, struct control **ctl_r);
/* Closes the server and removes the socket file; frees on close. */
void control_stop(struct control **ctl);

/* Client: connect to path, send cmd, copy the reply to out. 0 ok, -1 error
 * with a message on stderr. */
int control_request(const char *path, const char *cmd, FILE *out);

#endif
