/*
 * fuzz_app: a helpwired application context for fuzz harnesses, built the
 * way server/main.c builds it (store, hubs, timers, index, synonyms,
 * indexer; one worker with its reader, searcher and tokenizer) but with no
 * network: handlers of the method table run on fake calls (fake_call.h).
 * The store lives in a fresh directory (fuzz_tmp.h). One per process, made on first use; never freed
 * (the process ends with the fuzzer).
 */
#ifndef HW_FUZZ_APP_H
#define HW_FUZZ_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "server/domain/app.h"
#include "server/domain/rpc.h"
#include "tests/fuzz/fake_call.h"

/* The context; aborts when it cannot be made (a setup error). */
hw_app *fz_app(void);

/* The method table. */
const hw_method *fz_methods(size_t *n);

/* The row for path, or NULL. */
const hw_method *fz_method(const char *path);

/* A principal: agent (agent id "a-fuzz") when agent is true, else admin. */
const hw_principal *fz_principal(bool agent);

/* Runs method on request as principal and checks the answer: aborts when
 * the handler does not answer within 10 s, answers INTERNAL or UNKNOWN (a
 * request, however wrong, is the caller's error, not the server's), or
 * answers a stream it was asked for with a reply. Returns the answer. */
fz_answer fz_run(const hw_method *method, const ProtobufCMessage *request, const hw_principal *principal);

#endif
