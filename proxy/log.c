#include "proxy/log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level log_level_max = LOG_INFO;
static FILE *log_out;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_init(enum log_level level, FILE *out)
{
    log_level_max = level;
    log_out = out;
}

enum log_level log_level_get(void)
{
    return log_level_max;
}

static unsigned log_errors;

unsigned log_error_count(void)
{
    return log_errors;
}

static void log_line(enum log_level level, const char *event, const char *rest)
{
    struct timeval tv;
    struct tm tm;
    char ts[32];
    FILE *out = log_out ? log_out : stderr;

    if (level == LOG_ERROR)
        log_errors++;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(out, "ts=%s.%03ldZ level=%s event=%s%s%s\n", ts, (long)(tv.tv_usec / 1000),
            level_names[level], event, rest[0] ? " " : "", rest);
    fflush(out);
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
    char rest[1024] = "";
    va_list ap;

    if (level > log_level_max)
        return;
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(rest, sizeof(rest), fmt, ap);
        va_end(ap);
    }
    log_line(level, event, rest);
}

const char *log_quote(const char *value, char *buf, size_t len)
{
    size_t o = 0;

    if (len < 3) {
        if (len > 0)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const char *p = value; *p != '\0' && o + 3 < len; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '"' || c == '\\')
            buf[o++] = '\\';
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void log_ipsec_sink(enum ipsec_log_level level, const char *msg)
{
    const char *event = "ipsec";

    if ((int)level < LOG_ERROR || (int)level > LOG_DEBUG || (enum log_level)level > log_level_max)
        return;
    /* ipsec messages start with "event=NAME ..." */
    if (strncmp(msg, "event=", 6) == 0) {
        char name[64];
        size_t n = strcspn(msg + 6, " ");

        if (n < sizeof(name)) {
            memcpy(name, msg + 6, n);
            name[n] = '\0';
            msg += 6 + n;
            while (*msg == ' ')
                msg++;
            log_line((enum log_level)level, name, msg);
            return;
        }
    }
    log_line((enum log_level)level, event, msg);
}
