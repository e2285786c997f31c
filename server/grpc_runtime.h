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

#endif
