#include "udp_encap.h"

#include "esp_defs.h"
#include "ipsec_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/errqueue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define UDP_ENCAP_DGRAM_MAX (64u * 1024u)  /* libuv's recvmmsg chunk size */

enum udp_encap_kind udp_encap_classify(const uint8_t *buf, size_t len)
{
    static const uint8_t marker[ESP_NON_ESP_MARKER_LEN];

    if (len == 1 && buf[0] == ESP_NATT_KEEPALIVE)
        return UDP_ENCAP_KEEPALIVE;
    if (len < ESP_HDR_LEN)
        return UDP_ENCAP_INVALID;
    if (memcmp(buf, marker, sizeof(marker)) == 0)
        return UDP_ENCAP_IKE;
    return UDP_ENCAP_ESP;
}

static void udp_encap_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct udp_encap *ue = h->data;

    (void)suggested;
    buf->base = (char *)ue->rxbuf + UDP_ENCAP_RX_HEADROOM;
    buf->len = UDP_ENCAP_RX_CHUNKS * UDP_ENCAP_DGRAM_MAX;
}

static void udp_encap_dispatch(struct udp_encap *ue, uint8_t *data, size_t len,
                               const struct sockaddr_in *from)
{
    switch (udp_encap_classify(data, len)) {
    case UDP_ENCAP_KEEPALIVE:
        ue->ctr.keepalive_rx++;
        break;
    case UDP_ENCAP_IKE:
        ue->ctr.ike_rx++;
        if (ue->on_ike != NULL)
            ue->on_ike(ue->arg, data + ESP_NON_ESP_MARKER_LEN,
                       len - ESP_NON_ESP_MARKER_LEN, from);
        break;
    case UDP_ENCAP_ESP:
        ue->ctr.esp_rx++;
        if (ue->on_esp != NULL)
            ue->on_esp(ue->arg, data, len, (size_t)(data - ue->rxbuf), from);
        break;
    case UDP_ENCAP_INVALID:
        ue->ctr.invalid_rx++;
        break;
    }
}

/* With IP_RECVERR an ICMP error for one of our datagrams makes the next
 * receive fail once and queues the details; read the queue empty (else
 * the socket stays readable for errors) and report each destination. */
static void udp_encap_drain_errors(struct udp_encap *ue)
{
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&ue->udp, &fd) != 0)
        return;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in dst;
        char data[64], control[256];
        struct iovec iov = { data, sizeof(data) };
        struct msghdr msg;
        struct cmsghdr *cm;

        memset(&msg, 0, sizeof(msg));
        msg.msg_name = &dst;
        msg.msg_namelen = sizeof(dst);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
            return;
        for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
            const struct sock_extended_err *ee = (const void *)CMSG_DATA(cm);

            if (cm->cmsg_level != IPPROTO_IP || cm->cmsg_type != IP_RECVERR ||
                ee->ee_origin != SO_EE_ORIGIN_ICMP || msg.msg_namelen < sizeof(dst))
                continue;
            ue->ctr.icmp_errors++;
            if (ue->on_icmp != NULL)
                ue->on_icmp(ue->icmp_arg, &dst);
        }
    }
}

void udp_encap_set_icmp_cb(struct udp_encap *ue, udp_encap_icmp_fn *fn, void *arg)
{
    ue->on_icmp = fn;
    ue->icmp_arg = arg;
}

static void udp_encap_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                           const struct sockaddr *addr, unsigned flags)
{
    struct udp_encap *ue = h->data;

    if (nread < 0) {
        ue->ctr.rx_errors++;
        udp_encap_drain_errors(ue);
        return;
    }
    /* nread 0 with no address: nothing read, or the end of a batch. */
    if (addr == NULL || (flags & UV_UDP_MMSG_FREE))
        return;
    if ((flags & UV_UDP_PARTIAL) || addr->sa_family != AF_INET) {
        ue->ctr.invalid_rx++;
        return;
    }
    udp_encap_dispatch(ue, (uint8_t *)buf->base, (size_t)nread,
                       (const struct sockaddr_in *)(const void *)addr);
}

static void udp_encap_sockopts(struct udp_encap *ue, unsigned flags)
{
    uv_os_fd_t fd;
    int one = 1, rcv = 4 * 1024 * 1024;

    uv_recv_buffer_size((uv_handle_t *)&ue->udp, &rcv);
    if (uv_fileno((uv_handle_t *)&ue->udp, &fd) == 0)
        (void)setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
    if ((flags & UDP_ENCAP_ZERO_CSUM) && uv_fileno((uv_handle_t *)&ue->udp, &fd) == 0 &&
        setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)) != 0)
        ipsec_log(IPSEC_LOG_WARN, "event=udp_encap_no_check_failed errno=%d", errno);
}

int udp_encap_open(struct udp_encap *ue, uv_loop_t *loop, const struct sockaddr_in *bind_addr,
                   unsigned flags, udp_encap_esp_fn *on_esp, udp_encap_ike_fn *on_ike,
                   void *arg)
{
    int rc;

    memset(ue, 0, sizeof(*ue));
    ue->rxbuf = malloc(UDP_ENCAP_RX_HEADROOM + UDP_ENCAP_RX_CHUNKS * UDP_ENCAP_DGRAM_MAX);
    if (ue->rxbuf == NULL)
        return ESP_E_NOMEM;
    ue->on_esp = on_esp;
    ue->on_ike = on_ike;
    ue->arg = arg;
    rc = uv_udp_init_ex(loop, &ue->udp, AF_INET | UV_UDP_RECVMMSG);
    if (rc < 0) {
        free(ue->rxbuf);
        ue->rxbuf = NULL;
        return rc;
    }
    uv_timer_init(loop, &ue->keepalive);
    ue->udp.data = ue;
    ue->keepalive.data = ue;
    ue->open_handles = 2;
    if (flags & UDP_ENCAP_FREEBIND) {
        uv_os_fd_t fd;
        int one = 1;

        if (uv_fileno((uv_handle_t *)&ue->udp, &fd) == 0)
            (void)setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
    }
    rc = uv_udp_bind(&ue->udp, (const struct sockaddr *)bind_addr, 0);
    if (rc == 0) {
        udp_encap_sockopts(ue, flags);
        rc = uv_udp_recv_start(&ue->udp, udp_encap_alloc, udp_encap_recv);
    }
    if (rc < 0)
        udp_encap_close(ue, NULL);
    return rc;
}

static void udp_encap_handle_closed(uv_handle_t *h)
{
    struct udp_encap *ue = h->data;

    if (--ue->open_handles > 0)
        return;
    free(ue->rxbuf);
    ue->rxbuf = NULL;
    if (ue->on_close != NULL)
        ue->on_close(ue);
}

void udp_encap_close(struct udp_encap *ue, udp_encap_close_fn *on_close)
{
    ue->on_close = on_close;
    uv_close((uv_handle_t *)&ue->keepalive, udp_encap_handle_closed);
    uv_close((uv_handle_t *)&ue->udp, udp_encap_handle_closed);
}

int udp_encap_local_addr(const struct udp_encap *ue, struct sockaddr_in *addr_r)
{
    int len = sizeof(*addr_r);

    return uv_udp_getsockname(&ue->udp, (struct sockaddr *)addr_r, &len);
}

struct udp_encap_req {
    uv_udp_send_t req;
    struct udp_encap *ue;
    uint8_t data[];
};

static void udp_encap_queued_done(uv_udp_send_t *req, int status)
{
    struct udp_encap_req *r = (struct udp_encap_req *)(void *)req;

    if (status < 0)
        r->ue->ctr.tx_errors++;
    free(r);
}

/* The socket would block: copy the datagram and let libuv queue it. */
static int udp_encap_queue(struct udp_encap *ue, const uv_buf_t *bufs, unsigned n,
                           const struct sockaddr_in *to)
{
    size_t total = 0, off = 0;
    struct udp_encap_req *r;
    unsigned i;
    uv_buf_t one;
    int rc;

    for (i = 0; i < n; i++)
        total += bufs[i].len;
    r = malloc(sizeof(*r) + total);
    if (r == NULL)
        return UV_ENOMEM;
    for (i = 0; i < n; i++) {
        memcpy(r->data + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    r->ue = ue;
    one = uv_buf_init((char *)r->data, (unsigned)total);
    rc = uv_udp_send(&r->req, &ue->udp, &one, 1, (const struct sockaddr *)to,
                     udp_encap_queued_done);
    if (rc < 0) {
        free(r);
        return rc;
    }
    ue->ctr.tx_queued++;
    return 0;
}

static int udp_encap_send(struct udp_encap *ue, const uv_buf_t *bufs, unsigned n,
                          const struct sockaddr_in *to, uint64_t *counter)
{
    int rc = uv_udp_try_send(&ue->udp, bufs, n, (const struct sockaddr *)to);

    if (rc == UV_EAGAIN)
        rc = udp_encap_queue(ue, bufs, n, to);
    if (rc < 0) {
        ue->ctr.tx_errors++;
        return rc;
    }
    (*counter)++;
    return 0;
}

int udp_encap_send_esp(struct udp_encap *ue, const uint8_t *pkt, size_t len,
                       const struct sockaddr_in *to)
{
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)pkt, (unsigned)len);

    /* A payload that classifies as anything but ESP would be misread by
     * the peer (e.g. an SPI of zero looks like the non-ESP marker). */
    if (udp_encap_classify(pkt, len) != UDP_ENCAP_ESP)
        return UV_EINVAL;
    return udp_encap_send(ue, &b, 1, to, &ue->ctr.esp_tx);
}

int udp_encap_send_ike(struct udp_encap *ue, const uint8_t *msg, size_t len,
                       const struct sockaddr_in *to)
{
    static const uint8_t marker[ESP_NON_ESP_MARKER_LEN];
    uv_buf_t b[2];

    b[0] = uv_buf_init((char *)(uintptr_t)marker, sizeof(marker));
    b[1] = uv_buf_init((char *)(uintptr_t)msg, (unsigned)len);
    return udp_encap_send(ue, b, 2, to, &ue->ctr.ike_tx);
}

int udp_encap_send_keepalive(struct udp_encap *ue, const struct sockaddr_in *to)
{
    static const uint8_t ka = ESP_NATT_KEEPALIVE;
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)&ka, 1);

    return udp_encap_send(ue, &b, 1, to, &ue->ctr.keepalive_tx);
}

int udp_encap_send_batch(struct udp_encap *ue, const struct udp_encap_pkt *pkts,
                         size_t n, const struct sockaddr_in *to)
{
    struct mmsghdr msgs[UDP_ENCAP_BATCH_MAX];
    struct iovec iov[UDP_ENCAP_BATCH_MAX];
    uv_os_fd_t fd;
    size_t i;
    int sent;

    if (n > UDP_ENCAP_BATCH_MAX)
        n = UDP_ENCAP_BATCH_MAX;
    if (uv_fileno((const uv_handle_t *)&ue->udp, &fd) != 0)
        return UV_EBADF;
    memset(msgs, 0, sizeof(msgs[0]) * n);
    for (i = 0; i < n; i++) {
        iov[i].iov_base = (void *)(uintptr_t)pkts[i].data;
        iov[i].iov_len = pkts[i].len;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = (void *)(uintptr_t)to;
        msgs[i].msg_hdr.msg_namelen = sizeof(*to);
    }
    do {
        sent = sendmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        ue->ctr.tx_errors++;
        return -errno;
    }
    ue->ctr.esp_tx += (uint64_t)sent;
    return sent;
}

static void udp_encap_keepalive_tick(uv_timer_t *t)
{
    struct udp_encap *ue = t->data;

    udp_encap_send_keepalive(ue, &ue->keepalive_peer);
}

int udp_encap_keepalive_start(struct udp_encap *ue, const struct sockaddr_in *peer,
                              uint64_t interval_ms)
{
    ue->keepalive_peer = *peer;
    return uv_timer_start(&ue->keepalive, udp_encap_keepalive_tick, interval_ms,
                          interval_ms);
}

void udp_encap_keepalive_stop(struct udp_encap *ue)
{
    uv_timer_stop(&ue->keepalive);
}
