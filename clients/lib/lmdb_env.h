/*
 * lmdb_env: how the bridges open an LMDB environment in their state
 * directory (the intake spool, the sent record, the web chat's history),
 * and the few encodings those stores share, so that each of them keeps
 * only its own tables and records.
 *
 * An environment is <dir>/<name>: either a directory of its own (created
 * 0700; data.mdb and lock.mdb inside) or one file with <name>-lock beside
 * it (MDB_NOSUBDIR); the files are 0600 and the state directory is created
 * 0700 when missing. Every environment is opened the same way, for the
 * same reasons:
 *   - MDB_NOTLS: any thread may run a read transaction (the web chat's
 *     handlers are a thread per connection, the outbox has workers);
 *   - never MDB_NOSYNC: a commit is on disk once it returns, so what a
 *     bridge acknowledged survives a crash, a kill -9 or a power loss;
 *   - the reader slots of a process that died mid-read (kill -9) are
 *     cleared on open, so they pin no old pages;
 *   - the named tables are created, when missing, in one transaction.
 * LMDB's lock file lets two processes (a bridge and its replacement in a
 * rolling restart) open the same environment: their writers are
 * serialized, readers never block.
 *
 * Numbers in keys and values are 8 bytes big-endian, so that a cursor
 * walks numeric keys in order.
 *
 * Not a store of its own: no schema, no locking beyond LMDB's, nothing
 * kept beyond the handles the caller holds.
 */
#ifndef BR_LMDB_ENV_H
#define BR_LMDB_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

/* What to open. All borrowed for the call only. */
typedef struct br_lmdb_spec {
    const char *dir;           /* the state directory, created 0700 when missing */
    const char *name;          /* the environment inside it, e.g. "telegram.spool" */
    bool own_dir;              /* a directory of its own (else one file, MDB_NOSUBDIR) */
    size_t map_bytes;          /* the map size: the most the data may grow to */
    const char *const *tables; /* the named tables, created when missing */
    unsigned n_tables;         /* >= 1 */
} br_lmdb_spec;

/**
 * Opens (creating when missing) the environment spec describes and its
 * tables, as the top comment says.
 * @param[out] env    the environment; the caller closes it (mdb_env_close)
 * @param[out] dbis   n_tables handles, in the order of spec->tables
 * @param[out] path   the environment's path, for the caller's messages
 * @return 0, or -1 with *env NULL and err: "<dir>: <why>" (the state
 *         directory cannot be made, or the path is too long for path_size),
 *         "<path>: <why>" (its directory cannot be made), or
 *         "<path>: create|open|open tables: <LMDB's reason>"
 */
int br_lmdb_open(MDB_env **env, MDB_dbi *dbis, const br_lmdb_spec *spec, char *path, size_t path_size,
                 char *err, size_t errlen);

/* mdb_txn_begin, adopting a larger map another process set meanwhile
 * (MDB_MAP_RESIZED), once. Returns LMDB's status. */
int br_lmdb_begin(MDB_env *env, unsigned flags, MDB_txn **txn);

/* Writes "<path>: <what>: <LMDB's reason for rc>" into err. */
void br_lmdb_error(char *err, size_t errlen, const char *path, const char *what, int rc);

/* v as 8 bytes big-endian at p. */
void br_lmdb_put_be64(unsigned char *p, uint64_t v);

/* The 8 bytes big-endian at p. */
uint64_t br_lmdb_get_be64(const unsigned char *p);

/* The number stored under the key name in dbi (8 bytes big-endian), or 0
 * when there is none or it is not 8 bytes. */
uint64_t br_lmdb_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name);

/* Stores value under the key name in dbi. Returns LMDB's status. */
int br_lmdb_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t value);

#endif
