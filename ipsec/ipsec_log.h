/*
 * Logging from ipsec/ without depending on proxy/: the proxy installs a sink
 * at start-up; until then messages go nowhere. Messages are key=value text.
 * Never pass key material here: keys live in SA structures that have no
 * formatting helpers, and the key log (keylog.c) is the only writer of keys.
 */
#ifndef ESPROXY_IPSEC_LOG_H
#define ESPROXY_IPSEC_LOG_H

enum ipsec_log_level {
    IPSEC_LOG_ERROR = 0,
    IPSEC_LOG_WARN = 1,
    IPSEC_LOG_INFO = 2,
    IPSEC_LOG_DEBUG = 3,
};

typedef void ipsec_log_sink_fn(enum ipsec_log_level level, const char *msg);

void ipsec_log_set_sink(ipsec_log_sink_fn *sink);
void ipsec_log(enum ipsec_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
