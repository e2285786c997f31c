/*
 * errors: the status codes every helpwire module returns, and their names.
 *
 * A function returns HW_OK (0) on success or one negative HW_E* code. The
 * codes are few on purpose: each maps to exactly one gRPC status
 * (hw_err_grpc_status: NOT_FOUND, ALREADY_EXISTS, ABORTED,
 * FAILED_PRECONDITION, ...), so a new code is added only when a caller must
 * react to it differently.
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
    HW_ENOTLEADER = -16,   /* replicated: this replica cannot write now (not the leader, or the
                            * leadership was lost before the write committed: it may still
                            * commit under the new leader) */
    HW_EAGAIN = -17,       /* not now, soon: a new leader still applying earlier entries */
    /* Not an error: a visitor (the fn of a foreach, a scan's callback) asks
     * the iteration to stop. The function that iterates returns HW_OK for
     * it, so it never reaches a caller, a log or a client. */
    HW_STOP = -15,
};

/* Number of codes, for tables indexed by -code. */
#define HW_ERR_COUNT 18

/* A short constant description of code ("not found"); "unknown error" for a
 * value that is not an HW_E* code. Never NULL; thread-safe. */
const char *hw_strerror(int code);

/* The code's symbolic name ("HW_ENOTFOUND"), for logs and tests. Never NULL. */
const char *hw_errname(int code);

/* gRPC status codes, by the numbers the gRPC protocol fixes: the values of
 * grpc_status_code in <grpc/status.h>, which base does not include (it
 * links no gRPC; the clients use it too). server/domain/rpc.c checks each
 * against grpc_status_code when it compiles. */
enum hw_grpc_code {
    HW_GRPC_OK = 0,
    HW_GRPC_CANCELLED = 1,
    HW_GRPC_UNKNOWN = 2,
    HW_GRPC_INVALID_ARGUMENT = 3,
    HW_GRPC_DEADLINE_EXCEEDED = 4,
    HW_GRPC_NOT_FOUND = 5,
    HW_GRPC_ALREADY_EXISTS = 6,
    HW_GRPC_PERMISSION_DENIED = 7,
    HW_GRPC_RESOURCE_EXHAUSTED = 8,
    HW_GRPC_FAILED_PRECONDITION = 9,
    HW_GRPC_ABORTED = 10,
    HW_GRPC_OUT_OF_RANGE = 11,
    HW_GRPC_UNIMPLEMENTED = 12,
    HW_GRPC_INTERNAL = 13,
    HW_GRPC_UNAVAILABLE = 14,
    HW_GRPC_DATA_LOSS = 15,
    HW_GRPC_UNAUTHENTICATED = 16,
};

/* The gRPC status a call fails with for code: the one place HW_E* codes
 * become gRPC codes (a table in errors.c, one row per code, beside its name
 * and text). HW_OK gives HW_GRPC_OK; every error a client can cause or
 * retry has a status of its own; HW_GRPC_INTERNAL only for the server's own
 * failures (HW_EIO, HW_ESCHEMA), for HW_STOP (which never leaves the
 * iteration that it stops) and for a value that is not a code.
 * Thread-safe. */
enum hw_grpc_code hw_err_grpc_status(int code);

#endif
