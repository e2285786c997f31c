/*
 * seed: learns the ids a run needs before it starts. CreateTicket needs an
 * existing customer and GetTicket an existing ticket; on a fresh --demo
 * server the bench makes its own: a few Route calls (whose replies name the
 * customer they created) and a few CreateTicket calls (whose replies name
 * the ticket). Ids given on the command line are used as they are.
 *
 * Seeding is best effort and synchronous (one call at a time, on its own
 * channel): when the target cannot answer (an echo server, an RPC not
 * implemented yet) the run goes on with placeholder ids and the note says
 * so. Not thread-safe; call it before the load starts.
 */
#ifndef HW_SEED_H
#define HW_SEED_H

#include <stddef.h>
#include <stdint.h>

#include "bench/corpus.h"
#include "bench/requests.h"

typedef struct hw_seed_config {
    const char *target;          /* "host:port" */
    const char *token;           /* NULL: no authorization metadata */
    const char *tls_ca_file;     /* NULL: plaintext */
    const char *tls_server_name; /* NULL: the target's host */
    const hw_corpus *corpus;
    const char *run_id;
    uint32_t users;          /* Route channel_user_id pool, as in the run */
    unsigned want_customers; /* 0: none needed */
    unsigned want_tickets;   /* 0: none needed */
    unsigned timeout_ms;     /* per call */
} hw_seed_config;

/* Adds up to want_customers customer ids (if ids has none) and then up to
 * want_tickets ticket ids (if ids has none and a customer is known) to ids.
 * Returns 0 (also when the target could not help: note, notelen > 0, then
 * tells what happened) or -ENOMEM. gRPC must be initialized. */
int hw_seed_ids(const hw_seed_config *cfg, hw_ids *ids, char *note, size_t notelen);

#endif
