#include "ipsec_log.h"

#include <stdarg.h>
#include <stdio.h>

static ipsec_log_sink_fn *log_sink;

void ipsec_log_set_sink(ipsec_log_sink_fn *sink)
{
    log_sink = sink;
}

void ipsec_log(enum ipsec_log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (log_sink == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_sink(level, msg);
}
