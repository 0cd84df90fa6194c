/* The running process: event loop, signals, control socket, the role. */
#ifndef ESPROXY_RUNTIME_H
#define ESPROXY_RUNTIME_H

#include "config/config.h"

/* Runs until SIGINT/SIGTERM. Returns the process exit code. */
int runtime_run(struct config *cfg);

#endif
