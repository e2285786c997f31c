/*
 * grpc_runtime: process-wide settings of the libraries under the gRPC core,
 * made once before grpc_init() by every program of the project that uses
 * gRPC (helpwired, the bridges, the CLI, the benchmark tools).
 */
#ifndef HW_GRPC_RUNTIME_H
#define HW_GRPC_RUNTIME_H

#include <stdbool.h>

/* Turns off abseil's mutex lock-order (deadlock) graph, which abseil keeps
 * when it was built without NDEBUG, as Debian's is: every lock and unlock
 * of a gRPC mutex then updates one process-wide graph under a global lock,
 * and every mutex destroyed is removed from it. The graph only reports
 * lock-order cycles inside gRPC itself; our own locks are pthread mutexes,
 * checked by ThreadSanitizer in the tests.
 *
 * Call it before grpc_init() and before any thread is started. Returns true
 * when the setting was found and applied, false when the abseil in this
 * process does not export it (then nothing changes). Safe to call more
 * than once. */
bool hw_grpc_runtime_prepare(void);

/* Where the gRPC core's own log lines (gpr_log: handshake failures, bind
 * errors, ...) go, so they reach the program's key=value log instead of
 * stderr in the core's "E1206 12:00:00 file.cc:12]" format. level is 0
 * debug, 1 info or 3 error (the scale of the project's loggers); file is
 * the core's source file name without its directories; msg is the core's
 * text, not quoted. Called from any gRPC thread. */
typedef struct hw_grpc_log_route {
    void (*fn)(void *arg, int level, const char *file, int line, const char *msg);
    void *arg;
} hw_grpc_log_route;

/* Sends the core's lines to route (it must stay valid until the route is
 * changed again), or with route NULL to stderr as a minimal key=value line
 * (level, event=grpc, file, line, msg). The core keeps its own verbosity
 * (GRPC_VERBOSITY, default ERROR). The core's log hook takes no argument,
 * so the route is the one process-wide pointer of this module; set it from
 * main, before grpc_init() and after the logger exists, and set it back to
 * NULL before that logger is destroyed. */
void hw_grpc_runtime_log_to(const hw_grpc_log_route *route);

#endif
