/*
 * errors: the name, description and gRPC status of each HW_E* code (see
 * errors.h). A table, not a switch, so adding a code is one line here.
 */
#include "server/base/errors.h"

#include <stddef.h>

/* Name, text and gRPC status of each code, indexed by -code. Why each
 * status (what a client should do on seeing it):
 * - NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT: the
 *   request is wrong for the data or by itself; retrying it as is won't do.
 * - ABORTED: a version conflict; read again and retry.
 * - RESOURCE_EXHAUSTED: the server is out of memory, map or disk; retry
 *   later (the README: "oversize or overload").
 * - UNAVAILABLE: closing or the store is busy; retry, perhaps elsewhere.
 * - DATA_LOSS: a stored record does not decode.
 * - INTERNAL: the server's own failure, nothing the client did (I/O, a
 *   store of a foreign schema), or HW_STOP, which is never an outcome: one
 *   that reached a client would be a bug.
 * HW_ETOOBIG is INVALID_ARGUMENT, not RESOURCE_EXHAUSTED: it arises where a
 * field of the request is over its documented limit (a query or text over
 * its bytes, an article's field, too many alternate questions), with a
 * message naming the field, exactly as hw_rpc_check_text's own length check
 * answers; the request fails the same way however often it is sent, and
 * RESOURCE_EXHAUSTED would tell a client to back off and retry. (gRPC's own
 * RESOURCE_EXHAUSTED for a message over the size limit comes before any
 * handler runs.) */
static const struct {
    const char *name;
    const char *text;
    enum hw_grpc_code grpc;
} HW_ERRORS[HW_ERR_COUNT] = {
    [0] = {"HW_OK", "success", HW_GRPC_OK},
    [-HW_ENOTFOUND] = {"HW_ENOTFOUND", "not found", HW_GRPC_NOT_FOUND},
    [-HW_EEXISTS] = {"HW_EEXISTS", "already exists", HW_GRPC_ALREADY_EXISTS},
    [-HW_ECONFLICT] = {"HW_ECONFLICT", "version conflict", HW_GRPC_ABORTED},
    [-HW_EPRECONDITION] = {"HW_EPRECONDITION", "precondition failed", HW_GRPC_FAILED_PRECONDITION},
    [-HW_EINVALID] = {"HW_EINVALID", "invalid argument", HW_GRPC_INVALID_ARGUMENT},
    [-HW_ENOMEM] = {"HW_ENOMEM", "out of memory", HW_GRPC_RESOURCE_EXHAUSTED},
    [-HW_EIO] = {"HW_EIO", "input/output error", HW_GRPC_INTERNAL},
    [-HW_EFULL] = {"HW_EFULL", "storage full", HW_GRPC_RESOURCE_EXHAUSTED},
    [-HW_ECLOSED] = {"HW_ECLOSED", "store closed", HW_GRPC_UNAVAILABLE},
    [-HW_EBUSY] = {"HW_EBUSY", "resource busy", HW_GRPC_UNAVAILABLE},
    [-HW_ESCHEMA] = {"HW_ESCHEMA", "unsupported data file or schema version", HW_GRPC_INTERNAL},
    [-HW_ECORRUPT] = {"HW_ECORRUPT", "stored record is corrupt", HW_GRPC_DATA_LOSS},
    [-HW_ETOOBIG] = {"HW_ETOOBIG", "too big", HW_GRPC_INVALID_ARGUMENT},
    [-HW_ENOSPACE] = {"HW_ENOSPACE", "no space left on the disk", HW_GRPC_RESOURCE_EXHAUSTED},
    [-HW_ENOTLEADER] = {"HW_ENOTLEADER", "not the leader of the replicas (retry)", HW_GRPC_UNAVAILABLE},
    [-HW_EAGAIN] = {"HW_EAGAIN", "not ready yet (retry shortly)", HW_GRPC_UNAVAILABLE},
    [-HW_STOP] = {"HW_STOP", "stopped by a visitor (not an error)", HW_GRPC_INTERNAL},
};

const char *hw_strerror(int code)
{
    if (code > 0 || code <= -HW_ERR_COUNT || !HW_ERRORS[-code].text)
        return "unknown error";
    return HW_ERRORS[-code].text;
}

const char *hw_errname(int code)
{
    if (code > 0 || code <= -HW_ERR_COUNT || !HW_ERRORS[-code].name)
        return "HW_E?";
    return HW_ERRORS[-code].name;
}

enum hw_grpc_code hw_err_grpc_status(int code)
{
    if (code > 0 || code <= -HW_ERR_COUNT || !HW_ERRORS[-code].name)
        return HW_GRPC_INTERNAL;
    return HW_ERRORS[-code].grpc;
}
