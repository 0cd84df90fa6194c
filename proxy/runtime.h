/* The running process: event loop, signals, control socket, the role. */
#ifndef ESPROXY_RUNTIME_H
#define ESPROXY_RUNTIME_H

#include "config/config.h"

/* Core dumps carry keys and passwords: allow false makes the process
 * non-dumpable with a core size limit of 0; true (debug_core_dumps) makes it
 * dumpable again with the soft limit raised to the hard one. 0 or -errno. */
int runtime_core_dumps(bool allow);

/* Runs until SIGINT/SIGTERM. Returns the process exit code. */
int runtime_run(struct config *cfg);

#endif
