/*
 * check: verifies that the store's secondary indexes agree with its records
 * (an "fsck" for the tests, the crash test and operators). It reads through
 * the record layouts of records.c and writes nothing.
 */
#ifndef HW_STORE_CHECK_H
#define HW_STORE_CHECK_H

#include <stddef.h>

#include "server/store/store.h"

/* Verifies that every secondary index agrees with the records: each record
 * decodes and has all its index entries (pointing back at it), and no index
 * holds an entry no record needs. O(records). For tests, the crash test and
 * an admin "fsck". On a mismatch writes a description into err.
 * @param[in]  t      any transaction (a reader's sees one snapshot).
 * @param[out] err    a NUL-terminated description of the first mismatch
 *   ("" when none; may be NULL).
 * @param[in]  errlen size of err.
 * @return HW_OK; HW_ECORRUPT; HW_ENOMEM; HW_EIO. Used by one thread (the
 *   transaction's). */
int hw_store_check(hw_store_txn *t, char *err, size_t errlen);

#endif
