/*
 * arena: per-request memory. Allocate freely while a call is handled, free
 * everything in one hw_arena_reset() or hw_arena_destroy() at its end.
 * protobuf-c unpacks into an arena through hw_arena_allocator(), so decoding
 * a request costs no malloc per field.
 *
 * An arena is owned by one thread at a time; it is not thread-safe.
 */
#ifndef HW_ARENA_H
#define HW_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

typedef struct hw_arena hw_arena;

/* Creates an arena whose first block holds first_block_bytes (0 = 8 KiB).
 * Returns NULL when out of memory. Free with hw_arena_destroy(). */
hw_arena *hw_arena_create(size_t first_block_bytes);

/* Frees the arena and everything allocated from it. NULL is a no-op. */
void hw_arena_destroy(hw_arena *a);

/* Returns size bytes aligned to 16, valid until the next reset/destroy, or
 * NULL when out of memory (or size would overflow). Never returns NULL for
 * size 0: a unique non-NULL pointer is returned instead. */
void *hw_arena_alloc(hw_arena *a, size_t size);

/* Like hw_arena_alloc, zero-filled. */
void *hw_arena_calloc(hw_arena *a, size_t n, size_t size);

/* Copies len bytes of s and appends a NUL; NULL when out of memory. */
char *hw_arena_strndup(hw_arena *a, const char *s, size_t len);

/* Copies a NUL-terminated string; NULL when out of memory. */
char *hw_arena_strdup(hw_arena *a, const char *s);

/* printf into the arena; NULL when out of memory or on a format error. */
char *hw_arena_printf(hw_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Frees every block but the first and rewinds; pointers handed out before
 * become invalid. Cheap: used between calls on a worker. */
void hw_arena_reset(hw_arena *a);

/* Bytes handed out since the last reset (for limits and metrics). */
size_t hw_arena_used_bytes(const hw_arena *a);

/* A protobuf-c allocator drawing from the arena (free is a no-op). The
 * returned pointer lives inside the arena: valid until hw_arena_destroy. */
ProtobufCAllocator *hw_arena_allocator(hw_arena *a);

#endif
