/*
 * reflection: gRPC server reflection (grpc.reflection.v1 and v1alpha, the
 * same messages on the wire) from the descriptor set compiled into
 * helpwired (//proto:protoset), so that grpcurl and clients in other
 * languages can list the services and fetch the .proto definitions, with
 * their comments (SourceCodeInfo), at run time. Public: no token needed.
 *
 * The set is parsed once at start into an index of files (by name, with
 * their serialized FileDescriptorProto) and of symbols (services, their
 * methods, messages, nested messages and enums, by full name). Immutable
 * after creation, so every worker reads it without locking.
 */
#ifndef HW_REFLECTION_H
#define HW_REFLECTION_H

#include <stddef.h>

#include "server/net/net.h"

typedef struct hw_reflection hw_reflection;

/* Parses the embedded descriptor set. Returns 0, or -1 with err. */
int hw_reflection_create(hw_reflection **out, char *err, size_t errlen);

void hw_reflection_destroy(hw_reflection *r);

/* One message of the bidirectional ServerReflectionInfo stream, for the
 * method table's handler (which finds r in its context). request is a
 * v1alpha ServerReflectionRequest; the method table decodes v1 requests
 * with the same descriptor. */
void hw_reflection_info(hw_call *call, const ProtobufCMessage *request, const hw_reflection *r);

#endif
