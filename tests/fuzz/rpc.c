/*
 * fuzz rpc: every RPC's request decoding and validation. The first input
 * byte picks the method from the method table (its low 7 bits, modulo the
 * table's length, so a new RPC is fuzzed without a change here; its high
 * bit calls as an agent instead of an admin); the rest is the request as
 * it comes off the wire, decoded with the method's request descriptor as
 * net.c decodes it (protobuf-c, then hw_net_request_decodable; an
 * undecodable one is where net.c answers INVALID_ARGUMENT), then handed to the method's handler against a real
 * store (fuzz_app.h). The handler must answer, and never INTERNAL or
 * UNKNOWN; its reply must pack and decode.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tests/fuzz/fuzz_app.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_app();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n;
    const hw_method *methods = fz_methods(&n);
    const hw_method *m = &methods[(data[0] & 0x7f) % n];
    ProtobufCMessage *req = protobuf_c_message_unpack(m->request, NULL, size - 1, data + 1);
    if (req && !hw_net_request_decodable(req)) {
        protobuf_c_message_free_unpacked(req, NULL);
        req = NULL;
    }
    if (!req)
        return 0;
    fz_run(m, req, fz_principal(data[0] & 0x80));
    protobuf_c_message_free_unpacked(req, NULL);
    return 0;
}
