/*
 * Logging: one line per event on stderr, key=value, e.g.
 *   ts=2026-11-27T01:02:03.456Z level=info event=started role=frontend pid=42
 * Secrets never reach this API by construction: they are held in
 * struct cfg_secret and SA key structures, which have no string form.
 */
#ifndef ESPROXY_LOG_H
#define ESPROXY_LOG_H

#include <stdio.h>

#include "ipsec/ipsec_log.h"

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_init(enum log_level level, FILE *out);
enum log_level log_level_get(void);
/* Error-level events logged so far: a caller can tell whether a failure
 * below it already named its cause (startup logs one line per failure). */
unsigned log_error_count(void);
/* event: a short word; fmt: further key=value pairs (may be NULL). */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Quote a value for a key=value line: returns buf. */
const char *log_quote(const char *value, char *buf, size_t len);
/* Sink for ipsec/ messages (they carry their own key=value text). */
void log_ipsec_sink(enum ipsec_log_level level, const char *msg);

#endif
