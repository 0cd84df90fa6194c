#include "proxy/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->s != NULL && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = (b->cap + (size_t)n + 1) * 2;
            char *s = realloc(b->s, cap);

            if (s == NULL) {
                b->oom = 1;
                return;
            }
            b->s = s;
            b->cap = cap;
        }
    }
}

char *sbuf_take(struct sbuf *b)
{
    char *s = b->s;

    if (b->oom) {
        free(s);
        s = NULL;
    }
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}
