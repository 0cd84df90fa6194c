/*
 * IKE on the event loop: connects the I/O-free IKE state machine
 * (ike_sa.h) to the shared ESP-in-UDP socket (udp_encap.h), the ESP SA
 * database (sadb.h), a libuv timer and the key log.
 *
 * The owner of the UDP socket hands every IKE datagram to ike_io_input();
 * CHILD SAs negotiated by IKE are installed into the SA database (inbound
 * and outbound), removed when IKE removes them, and written to the key log
 * together with the IKE SA keys when one is configured. The owner hears
 * IKE events through its event callback and must call ike_io_kick() after
 * calling any ike_* API function directly, so the timer follows.
 */
#ifndef ESPROXY_IKE_IO_H
#define ESPROXY_IKE_IO_H

#include <netinet/in.h>
#include <uv.h>

#include "ipsec/ike_sa.h"
#include "ipsec/keylog.h"
#include "ipsec/sadb.h"
#include "ipsec/udp_encap.h"

typedef void ike_io_event_fn(void *arg, struct ike_sa *sa, enum ike_event ev);

#define IKE_IO_PENDING_OUT 8

/* An outbound SA waiting for child_activate_out (CHILD rekey responder). */
struct ike_io_pending_out {
    bool used;
    uint32_t spi_in;
    struct esp_sa_params params;
    uint8_t keymat[64];
};

struct ike_io {
    uv_loop_t *loop;
    uv_timer_t timer;
    struct udp_encap *ue;
    struct esp_sadb *db;
    struct keylog *keylog;          /* may be NULL */
    struct ike_ctx *ctx;
    ike_io_event_fn *on_event;
    void *arg;
    int closing;
    bool have_500;                  /* plain IKE socket on port 500 */
    uv_udp_t udp500;
    uint32_t local500;
    uint8_t rx500[8192];
    struct ike_io_pending_out pending_out[IKE_IO_PENDING_OUT];
};

/* 0 or a negative libuv error / -1. */
int ike_io_init(struct ike_io *io, uv_loop_t *loop, struct udp_encap *ue, struct esp_sadb *db,
                struct keylog *keylog, ike_io_event_fn *on_event, void *arg);
/* local: our address the datagram was sent to (network order). */
void ike_io_input(struct ike_io *io, const uint8_t *msg, size_t len, const struct sockaddr_in *from,
                  uint32_t local);
void ike_io_kick(struct ike_io *io);
/* Also accept IKE on UDP 500 (no non-ESP marker, RFC 7296 §2.23), as
 * peers that start there expect; replies to port 500 leave from it. */
int ike_io_listen_500(struct ike_io *io, const struct sockaddr_in *bind_addr);
/* Frees the IKE context (removing its CHILD SAs) and closes the timer. */
void ike_io_close(struct ike_io *io);

/* Wireshark ikev2_decryption_table record for an IKE SA (exposed for tests). */
int ike_io_format_keylog(const struct ike_sa *sa, const struct ike_sa_keys *k, char *out, size_t cap);

#endif
