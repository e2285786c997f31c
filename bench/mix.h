/*
 * mix: the RPCs the load generator can send (a method table) and a weighted
 * mix of them ("Route=70,GetTicket=20,CreateTicket=10").
 *
 * The table is the one place that names an RPC: adding one means a row here
 * and a builder in requests.c. A mix is parsed once and then only read, so
 * any number of threads may call hw_mix_pick() on the same mix.
 */
#ifndef HW_MIX_H
#define HW_MIX_H

#include <stddef.h>
#include <stdint.h>

typedef enum hw_rpc_kind {
    HW_RPC_ROUTE = 0,
    HW_RPC_SEARCH,
    HW_RPC_CREATE_TICKET,
    HW_RPC_GET_TICKET,
    HW_RPC_COUNT
} hw_rpc_kind;

typedef struct hw_rpc_info {
    const char *name; /* as written in a mix: "Route" */
    const char *path; /* gRPC method path: "/helpwire.v1.Router/Route" */
} hw_rpc_info;

/* The table row of kind (kind < HW_RPC_COUNT). Static storage. */
const hw_rpc_info *hw_rpc_info_of(hw_rpc_kind kind);

/* The kind named name[0..len) (case-sensitive), or -1 when unknown. */
int hw_rpc_from_name(const char *name, size_t len);

/* A parsed mix. weight[k] is 0 for RPCs not in the mix. */
typedef struct hw_mix {
    uint32_t weight[HW_RPC_COUNT];
    uint32_t total; /* sum of weights, > 0 after a successful parse */
} hw_mix;

/* Parses "Name=W,Name=W,..." (weights are integers 1..1000000; a bare
 * "Name" means weight 1; whitespace around items is allowed; a name given
 * twice adds up). Returns 0, or -EINVAL with a message in err (errlen > 0)
 * for an unknown name, a bad weight, or an empty mix; out is then zeroed. */
int hw_mix_parse(const char *spec, hw_mix *out, char *err, size_t errlen);

/* The RPC for a uniformly random r (any 32-bit value): RPC k is returned
 * with probability weight[k] / total. Thread-safe (reads only). */
hw_rpc_kind hw_mix_pick(const hw_mix *mix, uint32_t r);

/* The RPC with the largest weight (first in table order on ties). */
hw_rpc_kind hw_mix_first(const hw_mix *mix);

/* Writes the mix back as "Name=W,..." in table order into buf (always
 * NUL-terminated when len > 0). Returns buf. */
char *hw_mix_format(const hw_mix *mix, char *buf, size_t len);

#endif
