/*
 * state: small durable values in files, written atomically (a temporary
 * file, fsync, rename over the old one, fsync of the directory), so a
 * crash at any point leaves either the old or the new value, never a torn
 * one. The Telegram bridge keeps its getUpdates offset here.
 */
#ifndef BR_STATE_H
#define BR_STATE_H

#include <stddef.h>
#include <stdint.h>

/* Reads a decimal uint64 from path. Returns 0 and sets *value, 1 when the
 * file does not exist (*value untouched), or -1 with err when it cannot be
 * read or does not hold a number. */
int br_state_read_u64(const char *path, uint64_t *value, char *err, size_t errlen);

/* Replaces path's content with value, durably. Returns 0, or -1 with err.
 * Not safe against two writers of the same path. */
int br_state_write_u64(const char *path, uint64_t value, char *err, size_t errlen);

#endif
