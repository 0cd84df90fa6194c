/*
 * Proposal negotiation (RFC 7296 §2.7, §3.3). A responder picks the first of
 * the initiator's proposals (their order of preference) for which every
 * transform type offered has one transform we also configured; the chosen
 * proposal carries exactly one transform per type. An initiator checks
 * that the responder's single proposal is one it could have chosen.
 */
#ifndef ESPROXY_IKE_PROPOSAL_H
#define ESPROXY_IKE_PROPOSAL_H

#include "ipsec/ike_msg.h"

/* 0 with *chosen set, or -IKE_N_NO_PROPOSAL_CHOSEN. The chosen proposal
 * keeps the initiator's number and SPI. */
int ike_proposal_select(const struct ike_sa_payload *ours, const struct ike_sa_payload *theirs,
                        uint8_t proto, struct ike_proposal *chosen);
/* 0 when reply (a one-proposal SA payload from a responder) fits one of
 * ours with exactly one transform per type; -IKE_N_NO_PROPOSAL_CHOSEN otherwise. */
int ike_proposal_check_reply(const struct ike_sa_payload *ours, const struct ike_sa_payload *reply,
                             uint8_t proto, struct ike_proposal *chosen);
/* Returns the transform of a type in a chosen proposal, or NULL. */
const struct ike_transform *ike_proposal_get(const struct ike_proposal *p, uint8_t type);
/* First DH group of our proposals (for the KE payload), 0 when none. */
uint16_t ike_proposal_first_dh(const struct ike_sa_payload *ours);
/* True if any of our proposals accepts this DH group. */
bool ike_proposal_has_dh(const struct ike_sa_payload *ours, uint16_t group);

#endif
