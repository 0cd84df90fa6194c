#include "ipsec/ike_ts.h"

#include <string.h>

void ike_ts_for_host(struct ike_ts_list *out, uint32_t addr, const uint16_t *ports, int n_ports)
{
    memset(out, 0, sizeof(*out));
    if (n_ports == 0) {
        out->ts[0] = (struct ike_ts){ 0, 0, 65535, addr, addr };
        out->n = 1;
        return;
    }
    for (int i = 0; i < n_ports && out->n < IKE_MAX_TS; i++)
        out->ts[out->n++] = (struct ike_ts){ 6, ports[i], ports[i], addr, addr };
}

static uint32_t max32(uint32_t a, uint32_t b) { return a > b ? a : b; }
static uint32_t min32(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* The intersection of two selectors, false when empty. */
static bool ike_ts_intersect(const struct ike_ts *a, const struct ike_ts *b, struct ike_ts *out)
{
    if (a->ip_proto != 0 && b->ip_proto != 0 && a->ip_proto != b->ip_proto)
        return false;
    out->ip_proto = a->ip_proto ? a->ip_proto : b->ip_proto;
    out->start_port = (uint16_t)max32(a->start_port, b->start_port);
    out->end_port = (uint16_t)min32(a->end_port, b->end_port);
    out->start_addr = max32(a->start_addr, b->start_addr);
    out->end_addr = min32(a->end_addr, b->end_addr);
    return out->start_port <= out->end_port && out->start_addr <= out->end_addr;
}

int ike_ts_narrow(const struct ike_ts_list *proposed, const struct ike_ts_list *allowed,
                  struct ike_ts_list *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < proposed->n; i++) {
        for (int j = 0; j < allowed->n && out->n < IKE_MAX_TS; j++) {
            struct ike_ts t;
            bool dup = false;

            if (!ike_ts_intersect(&proposed->ts[i], &allowed->ts[j], &t))
                continue;
            for (int k = 0; k < out->n; k++)
                dup |= memcmp(&out->ts[k], &t, sizeof(t)) == 0;
            if (!dup)
                out->ts[out->n++] = t;
        }
    }
    return out->n > 0 ? 0 : -IKE_N_TS_UNACCEPTABLE;
}

static bool ike_ts_inside(const struct ike_ts *in, const struct ike_ts *outer)
{
    return (outer->ip_proto == 0 || outer->ip_proto == in->ip_proto) &&
           in->start_port >= outer->start_port && in->end_port <= outer->end_port &&
           in->start_addr >= outer->start_addr && in->end_addr <= outer->end_addr;
}

bool ike_ts_within(const struct ike_ts_list *sub, const struct ike_ts_list *outer)
{
    if (sub->n == 0)
        return false;
    for (int i = 0; i < sub->n; i++) {
        bool ok = false;

        for (int j = 0; j < outer->n && !ok; j++)
            ok = ike_ts_inside(&sub->ts[i], &outer->ts[j]);
        if (!ok)
            return false;
    }
    return true;
}
