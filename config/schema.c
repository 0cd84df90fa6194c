#include "config/schema.h"
#include "config/config.h"

#include <stdio.h>
#include <string.h>

static const char *const role_names[] = { "frontend", "backend", NULL };
static const char *const level_names[] = { "error", "warn", "info", "debug", NULL };
static const char *const proto_names[] = { "pop3", "imap", "http", NULL };
static const char *const tls_names[] = { "none", "starttls", "implicit", NULL };
static const char *const auth_names[] = { "psk", "cert", NULL };
static const char *const pp_names[] = { "none", "v2", NULL };
static const char *const plaintext_names[] = { "auto", "yes", "no", NULL };
static const char *const no_yes[] = { "no", "yes", NULL };

const struct schema_section_info schema_sections[SECT_COUNT] = {
    [SECT_ESPROXY] = { "esproxy", false, false, ROLE_BOTH,
                       "The process: role, logging, control socket." },
    [SECT_TUNNEL] = { "tunnel", true, true, ROLE_BOTH,
                      "One IPsec tunnel to a back-end cluster VIP (frontend) or from front-ends (backend)." },
    [SECT_LISTEN] = { "listen", true, true, ROLE_FRONTEND_BIT,
                      "A client-facing listener (frontend role)." },
    [SECT_ROUTING] = { "routing", false, false, ROLE_FRONTEND_BIT,
                       "Which tunnel serves which user (frontend role)." },
    [SECT_FORWARD] = { "forward", false, false, ROLE_BACKEND_BIT,
                       "Inner TCP port to local service (backend role). Keys are port numbers: `143 = 127.0.0.1:143`." },
};

#define T(field) offsetof(struct cfg_tunnel, field)
#define L(field) offsetof(struct cfg_listener, field)
#define C(field) offsetof(struct config, field)
#define SZ(type, field) sizeof(((type *)0)->field)

const struct schema_key schema_keys[] = {
    { SECT_ESPROXY, "role", TYPE_ENUM, C(role), 0, 0, 0, role_names, NULL, true, ROLE_BOTH,
      "ESPROXY_ROLE", "`frontend` (clients to back-end VIP) or `backend` (cluster node)." },
    { SECT_ESPROXY, "log_level", TYPE_ENUM, C(log_level), 0, 0, 0, level_names, "info", false, ROLE_BOTH,
      "ESPROXY_LOG_LEVEL", "`error`, `warn`, `info` or `debug`. Logs go to stderr as key=value lines." },
    { SECT_ESPROXY, "control", TYPE_PATH, C(control), SZ(struct config, control), 0, 0, NULL,
      "/run/esproxy/control.sock", false, ROLE_BOTH, "ESPROXY_CONTROL",
      "Unix socket that `esproxy status` connects to." },
    { SECT_ESPROXY, "metrics", TYPE_ADDR_PORT, C(metrics), 0, 0, 0, NULL, NULL, false, ROLE_BOTH,
      "ESPROXY_METRICS", "Serve Prometheus metrics over HTTP at `http://ADDRESS:PORT/metrics` (e.g. `127.0.0.1:9464`). Unset = off." },
    { SECT_ESPROXY, "max_connections", TYPE_UINT, C(max_connections), 0, 1, 1000000, NULL, "10000", false,
      ROLE_FRONTEND_BIT, NULL, "Client connections accepted at once; more are refused at accept." },
    { SECT_ESPROXY, "max_per_client", TYPE_UINT, C(max_per_client), 0, 1, 1000000, NULL, "200", false,
      ROLE_FRONTEND_BIT, NULL, "Client connections from one IPv4 address at once." },
    { SECT_ESPROXY, "connect_timeout_ms", TYPE_UINT, C(connect_timeout_ms), 0, 100, 600000, NULL, "5000", false,
      ROLE_FRONTEND_BIT, NULL, "Opening a connection to the back-end through the tunnel. An unanswered connect also ends after 12 SYN retransmissions (13-19.5 s), whichever comes first." },
    { SECT_ESPROXY, "login_timeout_s", TYPE_UINT, C(login_timeout_s), 0, 1, 3600, NULL, "30", false,
      ROLE_FRONTEND_BIT, NULL, "From the client's credentials to the back-end's answer." },
    { SECT_ESPROXY, "hold_ms", TYPE_UINT, C(hold_ms), 0, 0, 600000, NULL, "5000", false, ROLE_FRONTEND_BIT, NULL,
      "How long a new session, or a login whose tunnel was lost, waits for a re-keying tunnel before it fails." },
    { SECT_ESPROXY, "hold_max", TYPE_UINT, C(hold_max), 0, 0, 1000000, NULL, "2000", false, ROLE_FRONTEND_BIT,
      NULL, "Sessions held at most while tunnels re-key; more fail at once." },
    { SECT_ESPROXY, "keylog", TYPE_PATH, C(keylog), SZ(struct config, keylog), 0, 0, NULL, "", false, ROLE_BOTH,
      "ESPROXY_KEYLOG", "Debugging aid: write ESP and IKEv2 keys in Wireshark's table formats to this file (mode 0600). Empty = off." },
    { SECT_ESPROXY, "debug_core_dumps", TYPE_ENUM, C(debug_core_dumps), 0, 0, 0, no_yes, "no", false, ROLE_BOTH,
      NULL, "Debugging aid: `yes` lets a crash write a core file (keys and passwords in it). By default `run` makes the process non-dumpable (`PR_SET_DUMPABLE` 0: no core, no ptrace by other processes of its user) and sets its core size limit to 0 before it reads the configuration." },

    { SECT_TUNNEL, "local", TYPE_IPV4, T(local), 0, 0, 0, NULL, NULL, true, ROLE_BOTH,
      "ESPROXY_TUNNEL_LOCAL", "Our address: outer UDP source and inner TCP source." },
    { SECT_TUNNEL, "peer", TYPE_PEER, 0, 0, 0, 0, NULL, NULL, true, ROLE_BOTH,
      "ESPROXY_TUNNEL_PEER", "The back-end VIP (frontend); `any` or a front-end address (backend)." },
    { SECT_TUNNEL, "local_id", TYPE_IDENTITY, T(local_id), SZ(struct cfg_tunnel, local_id), 0, 0, NULL, NULL, true,
      ROLE_BOTH, "ESPROXY_TUNNEL_LOCAL_ID", "Our IKE identity: FQDN, IPv4 address, or `keyid:TEXT`." },
    { SECT_TUNNEL, "peer_id", TYPE_IDENTITY, T(peer_id), SZ(struct cfg_tunnel, peer_id), 0, 0, NULL, NULL, true,
      ROLE_BOTH, "ESPROXY_TUNNEL_PEER_ID", "The identity the peer must prove." },
    { SECT_TUNNEL, "auth", TYPE_ENUM, T(auth), 0, 0, 0, auth_names, "psk", false, ROLE_BOTH, NULL,
      "`psk` (pre-shared key) or `cert` (X.509)." },
    { SECT_TUNNEL, "psk", TYPE_SECRET, T(psk), 0, 0, 0, NULL, NULL, false, ROLE_BOTH, NULL,
      "Pre-shared key inline (`0x` prefix for hex). Prefer `psk_file`. Never logged." },
    { SECT_TUNNEL, "psk_file", TYPE_SECRET_FILE, T(psk), 0, 0, 0, NULL, NULL, false, ROLE_BOTH,
      "ESPROXY_TUNNEL_PSK_FILE", "File holding the pre-shared key (one trailing newline is ignored)." },
    { SECT_TUNNEL, "cert", TYPE_FILE, T(cert), SZ(struct cfg_tunnel, cert), 0, 0, NULL, NULL, false, ROLE_BOTH, NULL,
      "Our certificate (PEM), `auth = cert`." },
    { SECT_TUNNEL, "key", TYPE_FILE, T(key), SZ(struct cfg_tunnel, key), 0, 0, NULL, NULL, false, ROLE_BOTH, NULL,
      "Our private key (PEM), `auth = cert`." },
    { SECT_TUNNEL, "ca", TYPE_FILE, T(ca), SZ(struct cfg_tunnel, ca), 0, 0, NULL, NULL, false, ROLE_BOTH, NULL,
      "CA certificate(s) (PEM) that sign the peer's certificate, `auth = cert`." },
    { SECT_TUNNEL, "ike_proposals", TYPE_IKE_PROPOSALS, 0, 0, 0, 0, NULL, "aes128gcm16-prfsha256-x25519", false,
      ROLE_BOTH, NULL, "IKE SA proposals, strongSwan style, comma-separated." },
    { SECT_TUNNEL, "esp_proposals", TYPE_ESP_PROPOSALS, 0, 0, 0, 0, NULL, "aes128gcm16", false, ROLE_BOTH, NULL,
      "CHILD SA proposals: `aes128gcm16`, `aes256gcm16`, `chacha20poly1305`, optional `-esn`/`-noesn` and DH group for PFS." },
    { SECT_TUNNEL, "protected_ports", TYPE_PORT_LIST, 0, 0, 0, 0, NULL, "all", false, ROLE_BOTH, NULL,
      "TCP ports of the peer covered by the transport-mode SA (traffic selectors), or `all`." },
    { SECT_TUNNEL, "udp_port", TYPE_PORT, T(udp_port), 0, 0, 0, NULL, "4500", false, ROLE_BOTH, NULL,
      "UDP port for IKE and ESP-in-UDP on both ends." },
    { SECT_TUNNEL, "probe_interval_ms", TYPE_UINT, T(probe_interval_ms), 0, 10, 600000, NULL, "1000", false,
      ROLE_BOTH, NULL, "Idle liveness probe interval." },
    { SECT_TUNNEL, "dead_after_ms", TYPE_UINT, T(dead_after_ms), 0, 10, 600000, NULL, "300", false, ROLE_BOTH,
      NULL, "A probe unanswered this long declares the peer dead." },
    { SECT_TUNNEL, "retransmit_ms", TYPE_UINT, T(retransmit_ms), 0, 10, 60000, NULL, "500", false, ROLE_BOTH,
      NULL, "First IKE retransmission timeout (doubles on each try)." },
    { SECT_TUNNEL, "retransmit_tries", TYPE_UINT, T(retransmit_tries), 0, 1, 20, NULL, "5", false, ROLE_BOTH,
      NULL, "IKE retransmissions before an exchange fails." },
    { SECT_TUNNEL, "ike_lifetime_s", TYPE_UINT, T(ike_lifetime_s), 0, 60, 604800, NULL, "14400", false, ROLE_BOTH,
      NULL, "IKE SA rekey interval." },
    { SECT_TUNNEL, "child_lifetime_s", TYPE_UINT, T(child_lifetime_s), 0, 20, 604800, NULL, "3600", false,
      ROLE_BOTH, NULL, "CHILD SA rekey interval." },
    { SECT_TUNNEL, "speculative_rekey", TYPE_ENUM, T(speculative_rekey), 0, 0, 0, no_yes, "yes", false,
      ROLE_FRONTEND_BIT, NULL, "When the VIP says it lost our state (INVALID_IKE_SPI, unknown SPI), start a new IKE SA in parallel with the probe." },
    { SECT_TUNNEL, "proxy_protocol", TYPE_ENUM, T(proxy_protocol), 0, 0, 0, pp_names, "none", false,
      ROLE_FRONTEND_BIT, NULL, "`v2`: start each inner stream with a PROXY v2 header naming the real client (the back-end must expect it)." },
    { SECT_TUNNEL, "mtu", TYPE_UINT, T(mtu), 0, 576, 9000, NULL, "1500", false, ROLE_BOTH, NULL,
      "Path MTU toward the peer; the inner TCP MSS is derived from it." },

    { SECT_LISTEN, "address", TYPE_ADDR_PORT, L(addr), 0, 0, 0, NULL, NULL, true, ROLE_FRONTEND_BIT, NULL,
      "`ADDRESS:PORT` to accept clients on." },
    { SECT_LISTEN, "protocol", TYPE_ENUM, L(protocol), 0, 0, 0, proto_names, NULL, true, ROLE_FRONTEND_BIT, NULL,
      "`pop3`, `imap` or `http`." },
    { SECT_LISTEN, "tls", TYPE_ENUM, L(tls), 0, 0, 0, tls_names, "none", false, ROLE_FRONTEND_BIT, NULL,
      "`none`, `starttls` (STLS/STARTTLS offered) or `implicit` (TLS from the first byte)." },
    { SECT_LISTEN, "cert", TYPE_FILE, L(cert), SZ(struct cfg_listener, cert), 0, 0, NULL, NULL, false,
      ROLE_FRONTEND_BIT, NULL, "TLS certificate chain (PEM); required when `tls` is not `none`." },
    { SECT_LISTEN, "key", TYPE_FILE, L(key), SZ(struct cfg_listener, key), 0, 0, NULL, NULL, false,
      ROLE_FRONTEND_BIT, NULL, "TLS private key (PEM)." },
    { SECT_LISTEN, "tunnel", TYPE_STRING, L(tunnel), SZ(struct cfg_listener, tunnel), 0, 0, NULL, NULL, false,
      ROLE_FRONTEND_BIT, NULL, "Tunnel name; may be left out when there is exactly one tunnel." },
    { SECT_LISTEN, "backend_port", TYPE_PORT, L(backend_port), 0, 0, 0, NULL, NULL, false, ROLE_FRONTEND_BIT,
      NULL, "Port on the VIP; defaults to 110, 143 or 80 by protocol." },

    { SECT_LISTEN, "plaintext_auth", TYPE_ENUM, L(plaintext_auth), 0, 0, 0, plaintext_names, "auto", false,
      ROLE_FRONTEND_BIT, NULL, "Allow USER/PASS, LOGIN and AUTH PLAIN without TLS: `auto` = only when `tls = none`." },
    { SECT_LISTEN, "max_line", TYPE_UINT, L(max_line), 0, 256, 1048576, NULL, "8192", false, ROLE_FRONTEND_BIT,
      NULL, "Longest command line before login, bytes. An IMAP `ID` may always be as long as RFC 2971 allows (30 pairs of 30-octet fields and 1024-octet values: 63,491 bytes quoted), and gets `BAD` beyond those bounds." },
    { SECT_LISTEN, "max_literal", TYPE_UINT, L(max_literal), 0, 256, 16777216, NULL, "65536", false,
      ROLE_FRONTEND_BIT, NULL, "IMAP: largest literal before login, bytes." },
    { SECT_LISTEN, "max_header_bytes", TYPE_UINT, L(max_header_bytes), 0, 1024, 1048576, NULL, "16384", false,
      ROLE_FRONTEND_BIT, NULL, "HTTP: largest request header block (431 above it)." },
    { SECT_LISTEN, "max_auth_failures", TYPE_UINT, L(max_auth_failures), 0, 1, 100, NULL, "3", false,
      ROLE_FRONTEND_BIT, NULL, "Failed logins before the session is closed." },
    { SECT_LISTEN, "preauth_idle_s", TYPE_UINT, L(preauth_idle_s), 0, 1, 3600, NULL, "60", false,
      ROLE_FRONTEND_BIT, NULL, "Idle time allowed before login (HTTP: between requests)." },
    { SECT_LISTEN, "preauth_timeout_s", TYPE_UINT, L(preauth_timeout_s), 0, 1, 3600, NULL, "60", false,
      ROLE_FRONTEND_BIT, NULL, "Absolute time from connect to login, however the client drips bytes (not counted while a login awaits the back-end: `login_timeout_s`); then `-ERR` or `* BYE` and close. HTTP: a request head must be complete this long after its first byte, else 408." },
    { SECT_LISTEN, "idle_s", TYPE_UINT, L(idle_s), 0, 1, 86400, NULL, "1860", false, ROLE_FRONTEND_BIT, NULL,
      "Idle time allowed after login; above 30 minutes so IMAP IDLE survives." },
    { SECT_LISTEN, "output_buffer", TYPE_UINT, L(output_buffer), 0, 16384, 16777216, NULL, "262144", false,
      ROLE_FRONTEND_BIT, NULL, "Bytes queued for a client that does not read (its replies, HTTP responses): above it the client is not read from, nor its back-end stream; both resume when a quarter is left. Bounds a connection's memory (see \"Memory per connection\")." },
    { SECT_ROUTING, "map", TYPE_FILE, C(routing_map), SZ(struct config, routing_map), 0, 0, NULL, NULL, false,
      ROLE_FRONTEND_BIT, NULL, "File of `user tunnel` or `@domain tunnel` lines." },
    { SECT_ROUTING, "default", TYPE_STRING, C(routing_default), SZ(struct config, routing_default), 0, 0, NULL,
      NULL, false, ROLE_FRONTEND_BIT, NULL, "Tunnel for users the map does not name (default: the first tunnel)." },

    { SECT_FORWARD, "proxy_protocol", TYPE_ENUM, C(proxy_protocol), 0, 0, 0, pp_names, "none", false,
      ROLE_BACKEND_BIT, NULL, "`v2` prepends a PROXY protocol v2 header with the client's address." },
};

const size_t schema_n_keys = sizeof(schema_keys) / sizeof(schema_keys[0]);

const struct schema_key *schema_key_find(enum schema_section sect, const char *name)
{
    for (size_t i = 0; i < schema_n_keys; i++)
        if (schema_keys[i].section == sect && strcmp(schema_keys[i].name, name) == 0)
            return &schema_keys[i];
    return NULL;
}

static const char *schema_type_doc(const struct schema_key *k, char *buf, size_t len)
{
    switch (k->type) {
    case TYPE_STRING: return "text";
    case TYPE_IDENTITY: return "identity";
    case TYPE_ENUM: {
        size_t used = 0;

        buf[0] = '\0';
        for (int i = 0; k->names[i] != NULL && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? " \\| " : "", k->names[i]);
        return buf;
    }
    case TYPE_IPV4: return "IPv4 address";
    case TYPE_PEER: return "IPv4 address \\| any";
    case TYPE_ADDR_PORT: return "address:port";
    case TYPE_UINT:
        snprintf(buf, len, "%u..%u", k->min, k->max);
        return buf;
    case TYPE_PORT: return "port";
    case TYPE_PORT_LIST: return "ports \\| all";
    case TYPE_IKE_PROPOSALS:
    case TYPE_ESP_PROPOSALS: return "proposals";
    case TYPE_SECRET: return "secret";
    case TYPE_SECRET_FILE:
    case TYPE_FILE: return "file";
    case TYPE_PATH: return "path";
    }
    return "?";
}

void config_reference_write(FILE *out)
{
    char tbuf[128];

    for (int s = 0; s < SECT_COUNT; s++) {
        const struct schema_section_info *si = &schema_sections[s];

        fprintf(out, "#### `[%s%s]`\n\n%s\n\n", si->name, si->named ? " NAME" : "", si->doc);
        fprintf(out, "| key | type | default | env | meaning |\n|---|---|---|---|---|\n");
        for (size_t i = 0; i < schema_n_keys; i++) {
            const struct schema_key *k = &schema_keys[i];

            if ((int)k->section != s)
                continue;
            fprintf(out, "| `%s` | %s | %s | %s | %s |\n", k->name, schema_type_doc(k, tbuf, sizeof(tbuf)),
                    k->required ? "required" : (k->def && k->def[0]) ? k->def : "—",
                    k->env ? k->env : "", k->doc);
        }
        if (s == SECT_FORWARD)
            fprintf(out, "| `PORT` | address:port | — |  | Inner TCP port `PORT` is forwarded to this local service. |\n");
        fprintf(out, "\n");
    }
}
