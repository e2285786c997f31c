/*
 * demo: the demo help center that `helpwired --demo` seeds into an empty
 * store: the FAQ of the product specification (如何重置密码, 工作时间,
 * 退款政策) in Chinese with English phrasings, help articles in Chinese
 * and English, the technical, billing and general skill queues (general
 * marked the default skill, the fallback queue) with
 * keywords in both languages, and three online agents. The starter
 * synonym sets (hw_demo_synonym_sets) are data only here: the domain's
 * synonyms module stores them (helpwired does it in the seeding write,
 * through the note callback); docs/synonyms-starter.jsonl holds the same
 * list for operators to import.
 */
#ifndef HW_DEMO_H
#define HW_DEMO_H

#include <stdbool.h>
#include <stddef.h>

#include "server/store/store.h"

/* Seeds the demo data unless the store already holds skills, or this
 * replica does not lead (hw_store_is_leader; with replication the leader
 * seeds and the others receive the data): then it does nothing and
 * *seeded is false. Call before the search index is built.
 * Returns HW_OK or a store code with err filled. */
int hw_demo_seed(hw_store *store, bool *seeded, char *err, size_t errlen);

/* Called at the end of the seeding write (only when it seeds), with the
 * data written in w: the caller adds what the other replicas must be told
 * (its effects as a note: the knowledge to index, the skills). A code
 * other than HW_OK fails the seed. Writer thread. */
typedef int (*hw_demo_note_fn)(void *ctx, hw_store_txn *w);

/* hw_demo_seed with note (NULL: none) called in the seeding write. */
int hw_demo_seed_noted(hw_store *store, hw_demo_note_fn note, void *ctx, bool *seeded, char *err,
                       size_t errlen);

/* A starter synonym set: terms NULL-terminated (at most
 * HW_DEMO_SYNONYM_TERMS_MAX). */
#define HW_DEMO_SYNONYM_TERMS_MAX 8
typedef struct hw_demo_synonym_set {
    const char *id;
    const char *locale;
    const char *terms[HW_DEMO_SYNONYM_TERMS_MAX + 1];
} hw_demo_synonym_set;

/* The customer-service synonym sets --demo starts with (Chinese and
 * English), static data: *n receives their number. Thread-safe. */
const hw_demo_synonym_set *hw_demo_synonym_sets(size_t *n);

#endif
