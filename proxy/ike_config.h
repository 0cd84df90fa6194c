/*
 * From a validated [tunnel NAME] section to the IKE state machine's peer
 * configuration: identities, PSK or certificates, proposals as IKE SA
 * payloads, protected ports and timers.
 */
#ifndef ESPROXY_PROXY_IKE_CONFIG_H
#define ESPROXY_PROXY_IKE_CONFIG_H

#include <stddef.h>

#include "config/config.h"
#include "ipsec/ike_sa.h"

/* 0, or -1 with a message in err (certificate files that fail to load).
 * With auth = cert, out->cert is allocated: free it with ike_cert_free. */
int ike_config_from_tunnel(const struct cfg_tunnel *t, struct ike_peer_config *out, char *err, size_t errlen);
/* "fe.example.test" → FQDN, "10.0.0.1" → IPv4, "keyid:xyz" → KEY_ID. */
void ike_config_identity(const char *text, struct ike_identity *id);
void ike_config_proposals(const struct cfg_proposal *p, int n, bool ike, struct ike_sa_payload *out);

#endif
