/*
 * esproxy configuration: INI files parsed (inih) into plain structs and
 * validated. Every problem is reported as "FILE:LINE: message" and all of
 * them are collected, not just the first. Nothing here logs: callers print
 * the error list. Secret values (psk) are never copied into messages.
 *
 * Return conventions: config_load() returns a config (possibly with errors
 * in cfg->errors); config_free() takes &cfg and NULLs it.
 */
#ifndef ESPROXY_CONFIG_H
#define ESPROXY_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_MAX_TUNNELS    16
#define CFG_MAX_LISTENERS  32
#define CFG_MAX_FORWARDS   32
#define CFG_MAX_PORTS      32
#define CFG_MAX_PROPOSALS  8
#define CFG_MAX_DH         4
#define CFG_NAME_MAX       64
#define CFG_ID_MAX         256
#define CFG_PATH_MAX       1024
#define CFG_PSK_MAX        256

enum cfg_role { CFG_ROLE_FRONTEND, CFG_ROLE_BACKEND };
enum cfg_log_level { CFG_LOG_ERROR, CFG_LOG_WARN, CFG_LOG_INFO, CFG_LOG_DEBUG };
enum cfg_protocol { CFG_PROTO_POP3, CFG_PROTO_IMAP, CFG_PROTO_HTTP };
enum cfg_tls { CFG_TLS_NONE, CFG_TLS_STARTTLS, CFG_TLS_IMPLICIT };
enum cfg_auth { CFG_AUTH_PSK, CFG_AUTH_CERT };
enum cfg_proxy_protocol { CFG_PROXY_PROTOCOL_NONE, CFG_PROXY_PROTOCOL_V2 };
enum cfg_plaintext { CFG_PLAINTEXT_AUTO, CFG_PLAINTEXT_YES, CFG_PLAINTEXT_NO };

/* Algorithm identifiers as written in proposal strings (strongSwan style). */
enum cfg_encr { CFG_ENCR_NONE, CFG_ENCR_AES_GCM16, CFG_ENCR_AES_CBC, CFG_ENCR_CHACHA20_POLY1305 };
enum cfg_integ { CFG_INTEG_NONE, CFG_INTEG_SHA256_128 };
enum cfg_prf { CFG_PRF_NONE, CFG_PRF_SHA256, CFG_PRF_SHA384 };
enum cfg_dh { CFG_DH_NONE, CFG_DH_MODP2048, CFG_DH_ECP256, CFG_DH_X25519 };
enum cfg_esn { CFG_ESN_NO, CFG_ESN_YES };

struct cfg_proposal {
    enum cfg_encr encr;
    unsigned key_bits;              /* 128 or 256 */
    enum cfg_integ integ;           /* NONE with AEADs */
    enum cfg_prf prf;               /* IKE only */
    enum cfg_dh dh[CFG_MAX_DH];     /* IKE: required; ESP: optional PFS */
    int n_dh;
    enum cfg_esn esn;               /* ESP only */
};

/* Secret bytes. No formatting helper exists for this type on purpose. */
struct cfg_secret {
    unsigned char bytes[CFG_PSK_MAX];
    size_t len;
};

struct cfg_tunnel {
    char name[CFG_NAME_MAX];
    int line;
    struct in_addr local;
    bool peer_any;                  /* backend role: accept any peer */
    struct in_addr peer;
    char local_id[CFG_ID_MAX];
    char peer_id[CFG_ID_MAX];
    enum cfg_auth auth;
    struct cfg_secret psk;
    char cert[CFG_PATH_MAX], key[CFG_PATH_MAX], ca[CFG_PATH_MAX];
    struct cfg_proposal ike[CFG_MAX_PROPOSALS];
    int n_ike;
    struct cfg_proposal esp[CFG_MAX_PROPOSALS];
    int n_esp;
    bool ports_all;
    uint16_t ports[CFG_MAX_PORTS];
    int n_ports;
    uint16_t udp_port;              /* IKE/ESP-in-UDP, 4500 */
    unsigned probe_interval_ms;
    unsigned dead_after_ms;
    unsigned retransmit_ms;         /* first IKE retransmission timeout */
    unsigned retransmit_tries;
    unsigned ike_lifetime_s;
    unsigned child_lifetime_s;
    unsigned mtu;
    enum cfg_proxy_protocol proxy_protocol;  /* frontend: PROXY v2 header on each inner stream */
    int speculative_rekey;          /* 1: make-before-break re-key on state-loss hints */
};

struct cfg_listener {
    char name[CFG_NAME_MAX];
    int line;
    struct sockaddr_in addr;
    enum cfg_protocol protocol;
    enum cfg_tls tls;
    char cert[CFG_PATH_MAX], key[CFG_PATH_MAX];
    char tunnel[CFG_NAME_MAX];
    uint16_t backend_port;
    enum cfg_plaintext plaintext_auth;
    unsigned max_line;
    unsigned max_literal;
    unsigned max_header_bytes;
    unsigned max_auth_failures;
    unsigned preauth_idle_s;
    unsigned preauth_timeout_s;     /* absolute pre-login deadline (HTTP: per request head) */
    unsigned idle_s;
    unsigned output_buffer;         /* client output high watermark, bytes */
};

/* One line of the routing map: a user or @domain served by a tunnel. */
struct cfg_route {
    char key[256];                  /* "alice@example.test" or "@example.test" */
    int tunnel;                     /* index into tunnels */
};

struct cfg_forward {
    int line;
    uint16_t port;                  /* inner (protected) port */
    struct sockaddr_in target;      /* local service */
};

struct cfg_error {
    char *text;                     /* "FILE:LINE: message" */
    int line;                       /* 0 when the error has no line */
};

struct config {
    char path[CFG_PATH_MAX];
    enum cfg_role role;
    int role_line;
    enum cfg_log_level log_level;
    char control[CFG_PATH_MAX];
    char keylog[CFG_PATH_MAX];
    int debug_core_dumps;           /* 1: leave core dumps possible (default: none) */
    struct sockaddr_in metrics;     /* sin_family 0: no metrics endpoint */

    struct cfg_tunnel tunnels[CFG_MAX_TUNNELS];
    int n_tunnels;
    struct cfg_listener listeners[CFG_MAX_LISTENERS];
    int n_listeners;
    char routing_map[CFG_PATH_MAX];
    char routing_default[CFG_NAME_MAX];
    struct cfg_route *routes;       /* from routing_map */
    int n_routes;
    unsigned max_connections;
    unsigned max_per_client;
    unsigned connect_timeout_ms;
    unsigned login_timeout_s;
    unsigned hold_ms;
    unsigned hold_max;
    struct cfg_forward forwards[CFG_MAX_FORWARDS];
    int n_forwards;
    enum cfg_proxy_protocol proxy_protocol;

    struct cfg_error *errors;
    int n_errors;
};

/* Parse and validate FILE. Environment overrides (see config_env_doc) are
 * applied when use_env is true. Returns NULL only when out of memory. */
struct config *config_load(const char *path, bool use_env);
void config_free(struct config **cfg);

/* One-line human summary of a valid configuration. */
void config_summary(const struct config *cfg, char *buf, size_t len);

const char *config_role_name(enum cfg_role role);
const char *config_protocol_name(enum cfg_protocol proto);

/* Parse a proposal list ("aes128gcm16-prfsha256-x25519,aes256-sha256-modp2048").
 * ike selects IKE rules (PRF and DH required) or ESP rules. Returns 0 or -1
 * with a message in err. */
int config_proposals_parse(const char *text, bool ike, struct cfg_proposal *out,
                           int max, int *n_out, char *err, size_t errlen);

/* Writes the configuration reference (Markdown) generated from the schema. */
void config_reference_write(FILE *out);

#endif
