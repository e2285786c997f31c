/* testserver: a fake helpwired in a unit test's process (see testserver.h). */
#include "clients/lib/testserver.h"

#include <stdio.h>

#include <grpc/grpc_security.h>

int br_testserver_start(grpc_server **server, grpc_completion_queue **cq, int *port, int timeout_ms,
                        hw_client **client)
{
    *cq = grpc_completion_queue_create_for_next(NULL);
    *server = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(*server, *cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    *port = grpc_server_add_http2_port(*server, "127.0.0.1:0", creds);
    grpc_server_credentials_release(creds);
    if (*port <= 0) {
        fprintf(stderr, "cannot bind a loopback port for the fake server\n");
        return -1;
    }
    grpc_server_start(*server);
    char target[64], err[256];
    snprintf(target, sizeof target, "127.0.0.1:%d", *port);
    hw_client_options o = {.target = target, .timeout_ms = timeout_ms, .wait_for_ready = true};
    if (hw_client_create(client, &o, err, sizeof err) != 0) {
        fprintf(stderr, "client: %s\n", err);
        return -1;
    }
    return 0;
}
