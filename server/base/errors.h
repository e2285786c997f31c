/*
 * errors: the status codes every helpwire module returns, and their names.
 *
 * A function returns HW_OK (0) on success or one negative HW_E* code. The
 * codes are few on purpose: each maps to exactly one gRPC status in the net
 * layer (NOT_FOUND, ALREADY_EXISTS, ABORTED, FAILED_PRECONDITION, ...), so a
 * new code is added only when a caller must react to it differently.
 *
 * Header only plus errors.c; no state, thread-safe.
 */
#ifndef HW_ERRORS_H
#define HW_ERRORS_H

enum {
    HW_OK = 0,
    HW_ENOTFOUND = -1,     /* the record does not exist */
    HW_EEXISTS = -2,       /* a record with that key (or unique index value) exists */
    HW_ECONFLICT = -3,     /* the stored version differs from the expected one */
    HW_EPRECONDITION = -4, /* the record's state forbids the change */
    HW_EINVALID = -5,      /* bad argument (empty or oversize key, bad cursor, ...) */
    HW_ENOMEM = -6,        /* out of memory */
    HW_EIO = -7,           /* I/O or storage engine failure */
    HW_EFULL = -8,         /* no room: the map cannot grow or a transaction is too large */
    HW_ECLOSED = -9,       /* the store is closing or closed */
    HW_EBUSY = -10,        /* the resource is in use (e.g. data dir locked by another process) */
    HW_ESCHEMA = -11,      /* the data file is foreign or of an unsupported schema version */
    HW_ECORRUPT = -12,     /* a stored record does not decode */
    HW_ETOOBIG = -13,      /* input over its documented limit */
    HW_ENOSPACE = -14,     /* the disk is full (ENOSPC, EDQUOT): nothing was written */
    /* Not an error: a visitor (the fn of a foreach, a scan's callback) asks
     * the iteration to stop. The function that iterates returns HW_OK for
     * it, so it never reaches a caller, a log or a client. */
    HW_STOP = -15,
};

/* Number of codes, for tables indexed by -code. */
#define HW_ERR_COUNT 16

/* A short constant description of code ("not found"); "unknown error" for a
 * value that is not an HW_E* code. Never NULL; thread-safe. */
const char *hw_strerror(int code);

/* The code's symbolic name ("HW_ENOTFOUND"), for logs and tests. Never NULL. */
const char *hw_errname(int code);

#endif
