/*
 * testserver: a fake of helpwired inside a unit test's process: a C-core
 * server on a free loopback port with one completion queue (the test
 * serves its calls on a thread of its own), and a client to it with
 * wait-for-ready. Test-only. The test shuts it down itself
 * (grpc_server_shutdown_and_notify, grpc_server_cancel_all_calls, its
 * thread joined, hw_client_cq_destroy, grpc_server_destroy), as the calls
 * it keeps must be released between those steps.
 */
#ifndef BR_TESTSERVER_H
#define BR_TESTSERVER_H

#include <grpc/grpc.h>

#include "clients/lib/client.h"

/* Creates and starts *server on 127.0.0.1 port 0 with *cq registered;
 * *port is the port it got. Then creates *client to it (timeout_ms per
 * call, wait-for-ready). Returns 0, or -1 with the reason on stderr. */
int br_testserver_start(grpc_server **server, grpc_completion_queue **cq, int *port, int timeout_ms,
                        hw_client **client);

#endif
