/*
 * IKEv2 message codec (RFC 7296 §3): header, payload chain, and each payload
 * body. Parsing is split from acting: every parser checks each length
 * against what is left before reading a field, and returns 0 or
 * -IKE_N_INVALID_SYNTAX (the notify a responder would send). Parsed payloads
 * point into the caller's buffer; nothing is copied or allocated.
 *
 * Writing goes through struct ike_writer, which appends payloads and patches
 * the previous payload's Next Payload byte, each payload's length and the
 * header's total length. Overflowing the buffer is sticky and reported by
 * ike_writer_finish().
 */
#ifndef ESPROXY_IKE_MSG_H
#define ESPROXY_IKE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipsec/ike_defs.h"

#define IKE_MAX_PAYLOADS    32
#define IKE_MAX_PROPOSALS   8
#define IKE_MAX_TRANSFORMS  16
#define IKE_MAX_TS          8
#define IKE_MAX_SPI         8

struct ike_header {
    uint64_t spi_i, spi_r;
    uint8_t next_payload;
    uint8_t version;
    uint8_t exchange;
    uint8_t flags;
    uint32_t msg_id;
    uint32_t length;
};

struct ike_payload {
    uint8_t type;
    bool critical;
    const uint8_t *body;    /* after the 4-byte generic header */
    size_t len;             /* body length */
    size_t offset;          /* of the generic header within the parsed buffer */
    uint8_t next;           /* its Next Payload field (SK: first inner payload) */
};

struct ike_payload_list {
    struct ike_payload pl[IKE_MAX_PAYLOADS];
    int n;
    uint8_t unsupported_critical;   /* first unknown payload with C bit, or 0 */
};

struct ike_transform {
    uint8_t type;
    uint16_t id;
    uint16_t key_bits;      /* 0 when absent */
    bool unusable;          /* carries an attribute we do not understand */
};

struct ike_proposal {
    uint8_t num;
    uint8_t proto;
    uint8_t spi_size;
    uint8_t spi[IKE_MAX_SPI];
    struct ike_transform t[IKE_MAX_TRANSFORMS];
    int n;
};

struct ike_sa_payload {
    struct ike_proposal p[IKE_MAX_PROPOSALS];
    int n;
};

struct ike_notify {
    uint8_t proto;
    uint8_t spi_size;
    uint16_t type;
    const uint8_t *spi;
    const uint8_t *data;
    size_t data_len;
};

struct ike_ts {
    uint8_t ip_proto;       /* 0 = any */
    uint16_t start_port, end_port;
    uint32_t start_addr, end_addr;  /* host byte order */
};

struct ike_ts_list {
    struct ike_ts ts[IKE_MAX_TS];
    int n;
};

struct ike_delete {
    uint8_t proto;
    uint8_t spi_size;
    uint16_t n_spi;
    const uint8_t *spis;
};

/* ---- parsing ---- */
int ike_header_parse(const uint8_t *msg, size_t len, struct ike_header *h);
int ike_payloads_parse(uint8_t first, const uint8_t *buf, size_t len, struct ike_payload_list *out);
const struct ike_payload *ike_payload_find(const struct ike_payload_list *l, uint8_t type);

int ike_sa_parse(const uint8_t *body, size_t len, struct ike_sa_payload *out);
int ike_ke_parse(const uint8_t *body, size_t len, uint16_t *group, const uint8_t **data, size_t *data_len);
int ike_nonce_parse(const uint8_t *body, size_t len);
int ike_notify_parse(const uint8_t *body, size_t len, struct ike_notify *n);
int ike_id_parse(const uint8_t *body, size_t len, uint8_t *type, const uint8_t **data, size_t *data_len);
int ike_auth_parse(const uint8_t *body, size_t len, uint8_t *method, const uint8_t **data, size_t *data_len);
int ike_ts_parse(const uint8_t *body, size_t len, struct ike_ts_list *out);
int ike_delete_parse(const uint8_t *body, size_t len, struct ike_delete *out);
int ike_cert_parse(const uint8_t *body, size_t len, uint8_t *encoding, const uint8_t **data, size_t *data_len);

/* ---- writing ---- */
struct ike_writer {
    uint8_t *buf;
    size_t cap, len;
    long np_at;             /* offset of the Next Payload byte to patch; -1: first_np */
    uint8_t first_np;       /* chain-only writers: type of the first payload */
    bool has_header;        /* whole message: finish patches the length */
    bool overflow;
};

/* A whole message: writes the header (length patched by finish). */
void ike_writer_init(struct ike_writer *w, uint8_t *buf, size_t cap, const struct ike_header *h);
/* A bare payload chain (the plaintext inside SK); first_np gets the first type. */
void ike_writer_init_chain(struct ike_writer *w, uint8_t *buf, size_t cap);
size_t ike_writer_begin(struct ike_writer *w, uint8_t type, bool critical);
void ike_writer_end(struct ike_writer *w, size_t start);
void ike_writer_put(struct ike_writer *w, const void *data, size_t len);
void ike_writer_put8(struct ike_writer *w, uint8_t v);
void ike_writer_put16(struct ike_writer *w, uint16_t v);
void ike_writer_put32(struct ike_writer *w, uint32_t v);
/* Patches the header length (whole messages). Returns the length or -1. */
long ike_writer_finish(struct ike_writer *w);

void ike_write_sa(struct ike_writer *w, const struct ike_sa_payload *sa);
void ike_write_ke(struct ike_writer *w, uint16_t group, const uint8_t *data, size_t len);
void ike_write_nonce(struct ike_writer *w, const uint8_t *nonce, size_t len);
void ike_write_notify(struct ike_writer *w, uint8_t proto, const uint8_t *spi, uint8_t spi_size,
                      uint16_t type, const uint8_t *data, size_t len);
void ike_write_id(struct ike_writer *w, uint8_t payload, uint8_t id_type, const uint8_t *data, size_t len);
void ike_write_auth(struct ike_writer *w, uint8_t method, const uint8_t *data, size_t len);
void ike_write_ts(struct ike_writer *w, uint8_t payload, const struct ike_ts_list *ts);
void ike_write_delete(struct ike_writer *w, uint8_t proto, uint8_t spi_size, const uint8_t *spis, uint16_t n);
/* CERT or CERTREQ: encoding byte then data. */
void ike_write_cert(struct ike_writer *w, uint8_t payload, uint8_t encoding, const uint8_t *data, size_t len);

/* Big-endian helpers shared by the IKE files. */
uint16_t ike_get16(const uint8_t *p);
uint32_t ike_get32(const uint8_t *p);
uint64_t ike_get64(const uint8_t *p);
void ike_put16(uint8_t *p, uint16_t v);
void ike_put32(uint8_t *p, uint32_t v);
void ike_put64(uint8_t *p, uint64_t v);

#endif
