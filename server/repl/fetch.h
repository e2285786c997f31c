/*
 * fetch: a copy of a peer's store for a replica too far behind for the
 * log (or a new one), fetched over Cluster.FetchSnapshot and installed in
 * the data directory before the store is opened.
 *
 * Layout under the data directory:
 *   incoming/data.mdb.part   being written (removed by a failed fetch, and
 *                            by hw_repl_install_copy when left by a crash)
 *   incoming/data.mdb        complete and fsynced, waiting to be installed
 *
 * Plaintext gRPC (the replicas' own addresses). grpc_init() must have been
 * called before hw_repl_fetch_copy. Both functions block the caller and
 * keep no state; they may run on any thread, one at a time per data
 * directory.
 */
#ifndef HW_REPL_FETCH_H
#define HW_REPL_FETCH_H

#include <stddef.h>
#include <stdint.h>

/* No chunk for this long: the peer is given up and the next one tried. */
#define HW_REPL_FETCH_IDLE_MS 60000

/* Calls FetchSnapshot on targets[0], then the next one when a target does
 * not answer or its stream fails before the copy is complete, and writes
 * the copy to <data_dir>/incoming/data.mdb (data_dir and incoming/ are
 * created, mode 0700, when missing). Every chunk's offset is checked
 * against what was written and the size against the first chunk's
 * total_bytes; the file and its directory are fsynced before it takes its
 * final name.
 * @param bearer_token  an admin token (NULL: none is sent)
 * @param[out] applied_index  the copy's applied index (may be NULL)
 * @return HW_OK; HW_EINVALID (no target, bad arguments); HW_ENOSPACE (the
 *   disk is full: no other target is tried); HW_EIO (no target gave a
 *   complete copy: err names each target and why, e.g.
 *   "127.0.0.1:7001: PERMISSION_DENIED: ..."). No .part is left behind on
 *   failure. */
int hw_repl_fetch_copy(const char *const *targets, size_t n, const char *bearer_token, const char *data_dir,
                       uint64_t *applied_index, char *err, size_t errlen);

/* Before the store is opened: when <data_dir>/incoming/data.mdb exists,
 * moves it over <data_dir>/data.mdb, removes <data_dir>/lock.mdb and
 * fsyncs the directory; a leftover incoming/data.mdb.part is removed.
 * Nothing to install is not an error.
 * @return HW_OK; HW_EIO (with err). */
int hw_repl_install_copy(const char *data_dir, char *err, size_t errlen);

#endif
