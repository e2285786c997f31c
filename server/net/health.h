/*
 * health: grpc.health.v1.Health for load balancers and meshes. Keeps a
 * status per service name (and "" for the whole server) and a list of Watch
 * streams, each told of every change of the service it watches.
 *
 * Thread-safe: a mutex guards the statuses and the watch list; it is taken
 * by Check, Watch and status changes only, never by other RPCs.
 */
#ifndef HW_HEALTH_H
#define HW_HEALTH_H

#include <stddef.h>

#include "server/net/net.h"

typedef struct hw_health hw_health;

/* Status values, as in grpc.health.v1.HealthCheckResponse.ServingStatus. */
enum {
    HW_HEALTH_UNKNOWN = 0,
    HW_HEALTH_SERVING = 1,
    HW_HEALTH_NOT_SERVING = 2,
    HW_HEALTH_SERVICE_UNKNOWN = 3
};

/* Creates the registry with the services named in the method table (the
 * part of each path between the slashes) plus "" for the whole server, all
 * NOT_SERVING. Returns NULL when out of memory. */
hw_health *hw_health_create(const hw_method *methods, size_t n_methods);

/* The same plus the service names extra[0..n_extra) (statuses that are not
 * one gRPC service's, such as a replica's "helpwire.v1.Writes"). */
hw_health *hw_health_create_with(const hw_method *methods, size_t n_methods, const char *const *extra,
                                 size_t n_extra);

/* Frees the registry; every Watch stream must have ended (hw_net_shutdown). */
void hw_health_destroy(hw_health *h);

/* Sets service's status (NULL: every service and the server) and tells
 * watchers. Returns 0, or -1 for an unknown service. */
int hw_health_set(hw_health *h, const char *service, int status);

/* The RPCs, for the method table's handlers (which find h in their
 * context). */
void hw_health_check(hw_call *call, const ProtobufCMessage *request, hw_health *h);
void hw_health_watch(hw_call *call, const ProtobufCMessage *request, hw_health *h);

#endif
