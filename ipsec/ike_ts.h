/*
 * Traffic selectors for transport-mode SAs between two addresses (RFC 7296
 * §2.9): TCP to the protected ports of the back-end, or all traffic.
 * Narrowing intersects what was proposed with what policy allows.
 */
#ifndef ESPROXY_IKE_TS_H
#define ESPROXY_IKE_TS_H

#include "ipsec/ike_msg.h"

/* Selectors for host `addr` (host byte order): one per TCP port, or one
 * "any protocol, any port" selector when n_ports is 0. */
void ike_ts_for_host(struct ike_ts_list *out, uint32_t addr, const uint16_t *ports, int n_ports);
/* Intersect each proposed selector with each allowed one. 0 with a
 * non-empty *out, or -IKE_N_TS_UNACCEPTABLE. */
int ike_ts_narrow(const struct ike_ts_list *proposed, const struct ike_ts_list *allowed,
                  struct ike_ts_list *out);
/* True if every selector in sub lies inside some selector of outer. */
bool ike_ts_within(const struct ike_ts_list *sub, const struct ike_ts_list *outer);

#endif
