/*
 * mix: RPC table and weighted choice (see mix.h). Picking maps a 32-bit
 * random number onto [0, total) by multiply-shift (no modulo bias worth
 * measuring, no division) and walks the few table rows.
 */
#include "bench/mix.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const hw_rpc_info rpc_table[HW_RPC_COUNT] = {
    [HW_RPC_ROUTE] = {"Route", "/helpwire.v1.Router/Route"},
    [HW_RPC_SEARCH] = {"Search", "/helpwire.v1.Knowledge/Search"},
    [HW_RPC_CREATE_TICKET] = {"CreateTicket", "/helpwire.v1.Tickets/CreateTicket"},
    [HW_RPC_GET_TICKET] = {"GetTicket", "/helpwire.v1.Tickets/GetTicket"},
};

#define MAX_WEIGHT 1000000u

const hw_rpc_info *hw_rpc_info_of(hw_rpc_kind kind)
{
    return &rpc_table[kind];
}

int hw_rpc_from_name(const char *name, size_t len)
{
    for (int k = 0; k < HW_RPC_COUNT; k++) {
        if (strlen(rpc_table[k].name) == len && memcmp(rpc_table[k].name, name, len) == 0)
            return k;
    }
    return -1;
}

int hw_mix_parse(const char *spec, hw_mix *out, char *err, size_t errlen)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    const char *p = spec ? spec : "";
    while (*p) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (!*p)
            break;
        const char *name = p;
        while (*p && *p != '=' && *p != ',' && !isspace((unsigned char)*p))
            p++;
        size_t name_len = (size_t)(p - name);
        int kind = hw_rpc_from_name(name, name_len);
        if (kind < 0) {
            snprintf(err, errlen, "mix: unknown RPC \"%.*s\" (known: Route, Search, CreateTicket, GetTicket)",
                     (int)name_len, name);
            rc = -EINVAL;
            goto out;
        }
        while (isspace((unsigned char)*p))
            p++;
        unsigned long weight = 1;
        if (*p == '=') {
            p++;
            char *end = NULL;
            errno = 0;
            weight = strtoul(p, &end, 10);
            if (end == p || errno != 0 || weight == 0 || weight > MAX_WEIGHT || *p == '-') {
                snprintf(err, errlen, "mix: bad weight for %.*s (want an integer 1..%u)", (int)name_len, name,
                         MAX_WEIGHT);
                rc = -EINVAL;
                goto out;
            }
            p = end;
        }
        while (isspace((unsigned char)*p))
            p++;
        if (*p && *p != ',') {
            snprintf(err, errlen, "mix: expected ',' after %.*s", (int)name_len, name);
            rc = -EINVAL;
            goto out;
        }
        out->weight[kind] += (uint32_t)weight;
        out->total += (uint32_t)weight;
        if (out->total > HW_RPC_COUNT * MAX_WEIGHT) {
            snprintf(err, errlen, "mix: weights too large");
            rc = -EINVAL;
            goto out;
        }
    }
    if (out->total == 0) {
        snprintf(err, errlen, "mix: empty (e.g. \"Route=70,GetTicket=20,CreateTicket=10\")");
        rc = -EINVAL;
    }
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

hw_rpc_kind hw_mix_pick(const hw_mix *mix, uint32_t r)
{
    uint32_t x = (uint32_t)(((uint64_t)r * mix->total) >> 32);
    for (int k = 0; k < HW_RPC_COUNT; k++) {
        if (x < mix->weight[k])
            return (hw_rpc_kind)k;
        x -= mix->weight[k];
    }
    return hw_mix_first(mix); /* only when total is 0 */
}

hw_rpc_kind hw_mix_first(const hw_mix *mix)
{
    int best = 0;
    for (int k = 1; k < HW_RPC_COUNT; k++) {
        if (mix->weight[k] > mix->weight[best])
            best = k;
    }
    return (hw_rpc_kind)best;
}

char *hw_mix_format(const hw_mix *mix, char *buf, size_t len)
{
    size_t used = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (int k = 0; k < HW_RPC_COUNT; k++) {
        if (mix->weight[k] == 0)
            continue;
        int n =
            snprintf(buf + used, len - used, "%s%s=%u", used ? "," : "", rpc_table[k].name, mix->weight[k]);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
    return buf;
}
