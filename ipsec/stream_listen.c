/*
 * Listeners for the backend role: inner TCP accepted on a port becomes a
 * stream (see stream__on_accept in stream.c), reported to on_accept from
 * the deferred pass. A listener is freed once closed and no accepted
 * stream still waits to be reported to it.
 */
#include "netstack_priv.h"

#include <stdlib.h>

void stream__listener_unref(struct stream_listener *l)
{
    if (--l->refs == 0 && l->closed)
        free(l);
}

int stream_listen(struct netstack *ns, uint16_t port, stream_accept_fn *on_accept,
                  void *data, struct stream_listener **l_r)
{
    struct stream_listener *l = calloc(1, sizeof(*l));
    int rc;

    if (l == NULL)
        return UV_ENOMEM;
    l->ns = ns;
    l->on_accept = on_accept;
    l->data = data;
    l->refs = 1;     /* the listener's own reference, dropped at close */
    rc = nsl_tcp_listen(port, l, &l->lpcb);
    if (rc < 0) {
        free(l);
        return rc == NSL_E_NOPORT ? UV_EADDRINUSE : UV_ENOMEM;
    }
    l->next = ns->listeners;
    ns->listeners = l;
    *l_r = l;
    return 0;
}

void *stream_listener_data(const struct stream_listener *l)
{
    return l->data;
}

void stream_listener_close(struct stream_listener *l)
{
    struct stream_listener **pp;

    for (pp = &l->ns->listeners; *pp != NULL; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    nsl_tcp_listen_close(l->lpcb);
    l->closed = true;
    stream__listener_unref(l);
}

void stream__close_listeners(struct netstack *ns)
{
    while (ns->listeners != NULL)
        stream_listener_close(ns->listeners);
}
