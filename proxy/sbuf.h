/* A growing string buffer for rendered replies (status, metrics). */
#ifndef ESPROXY_SBUF_H
#define ESPROXY_SBUF_H

#include <stddef.h>

struct sbuf {
    char *s;
    size_t len, cap;
    int oom;        /* an allocation failed: the text is incomplete */
};

void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (caller frees), or NULL (and the buffer freed) after an allocation failure. */
char *sbuf_take(struct sbuf *b);

#endif
