/*
 * methods: the one table that wires RPCs to handlers (see methods.h).
 */
#include "server/methods.h"

#include "grpc/health/v1/health.pb-c.h"
#include "server/health.h"

#define PUBLIC HW_ALLOW_PUBLIC

static const hw_method table[] = {
    /* path, request, reply, handler, who may call, server streaming */
    {"/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, hw_health_check, PUBLIC, false},
    {"/grpc.health.v1.Health/Watch", &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, hw_health_watch, PUBLIC, true},
};

const hw_method *hw_methods(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}
