/*
 * fake_call: the per-call half of server/net/net.h without a gRPC server,
 * for fuzz harnesses that run the method table's handlers directly. A
 * call made here has an arena, a method row, worker 0 and a principal; it
 * records how the handler answered (status, message, the reply's packed
 * size) and lets the harness wait for an answer given on another thread
 * (the store's writer). Streams are ended by the harness as a client
 * cancel would (close hooks run, references are awaited).
 *
 * Linked instead of net.c (the fuzz build leaves net.c out; the replay
 * test's executable defines these functions, which take precedence over
 * the shared library's).
 */
#ifndef HW_FUZZ_FAKE_CALL_H
#define HW_FUZZ_FAKE_CALL_H

#include <stdbool.h>
#include <stddef.h>

#include "server/net/net.h"

typedef struct fz_answer {
    bool answered;          /* reply, fail or a stream's end */
    grpc_status_code code;  /* GRPC_STATUS_OK for a reply */
    char msg[512];          /* the status message */
    size_t reply_bytes;     /* the packed reply (unary OK) */
    size_t stream_messages; /* messages a stream sent */
} fz_answer;

/* A new call to method with principal (may be NULL: a public method).
 * Owned by the caller: fz_call_finish frees it. NULL when out of memory. */
hw_call *fz_call_new(const hw_method *method, const void *principal);

/* Runs method's handler on request with app, then waits up to timeout_ms
 * for the answer (for a stream: ends it as a client cancel would once the
 * handler returned, and waits for its holders to let go). Fills *out and
 * frees the call. Returns 0, or -1 when no answer came in time (the call
 * is then leaked on purpose: a thread may still hold it). */
int fz_call_run(hw_call *call, const ProtobufCMessage *request, void *app, int timeout_ms, fz_answer *out);

#endif
