/*
 * migrate: what a store written by an older helpwire needs at open to
 * become one of HW_STORE_SCHEMA_VERSION, as a table of upgrade steps
 * (hw_store_upgrade, store_internal.h) that the engine runs at open.
 *
 * The engine knows the steps only as that table, handed to it by
 * hw_store_open (open.c): store.c never calls into this module by name, and
 * this module uses only the engine's internal API and the record layouts,
 * none of which call back here. Not part of the public contract.
 */
#ifndef HW_STORE_MIGRATE_H
#define HW_STORE_MIGRATE_H

#include <stddef.h>

#include "server/store/store_internal.h"

/* The upgrade steps, oldest first (a static table; never NULL).
 * @param[out] n how many. Thread-safe. */
const hw_store_upgrade *hw_migrate_upgrades(size_t *n);

/* Schema 1 -> 2: moves schema 1's per-ticket event and message databases
 * into the ticket log, whole tickets at a time (each ticket's entries in
 * time order, a message before an event of the same millisecond, each kind
 * keeping its sequences), until about max_entries have moved.
 * @param[in]  w           a write transaction (writer thread).
 * @param[in]  max_entries entries to move before returning (a ticket is
 *   never split, so a step may move more).
 * @param[out] done        set once both databases are empty, else 0.
 * @return HW_OK; HW_ECORRUPT (a key of the old layout is malformed);
 *   HW_ENOMEM; HW_EFULL; HW_EIO. Re-runnable as a write fn must be. */
int hw_migrate_ticket_logs(hw_store_txn *w, size_t max_entries, int *done);

/* The default skill: when skills exist and none is marked is_default (a
 * store from before the mark), marks "general" (the fallback queue's fixed
 * name before the mark existed) or, without it, the first skill by name.
 * Sets *done (one step does it all).
 * @return HW_OK; HW_ENOMEM; store codes. Re-runnable. */
int hw_migrate_default_skill(hw_store_txn *w, int *done);

/* The per-channel load: counts Agent.channel_load from the agent's open
 * tickets for every agent with open tickets and no channel load (a store
 * from before per-channel capacities). Sets *done.
 * @return HW_OK; HW_ENOMEM; store codes. Re-runnable. */
int hw_migrate_channel_load(hw_store_txn *w, int *done);

#endif
