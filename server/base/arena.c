/*
 * arena: bump allocation over a list of blocks (the nginx pool idea). The
 * first block is kept across resets so a worker's steady state allocates
 * nothing; larger requests get blocks of their own size. Hand-written
 * because no Debian library offers a region allocator with a protobuf-c
 * hook, and it is a few dozen lines.
 */
#include "server/base/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HW_ARENA_ALIGN 16u
#define HW_ARENA_DEFAULT_BLOCK 8192u

typedef struct hw_arena_block {
    struct hw_arena_block *next;
    size_t size; /* usable bytes in data */
    size_t used;
    _Alignas(16) unsigned char data[];
} hw_arena_block;

struct hw_arena {
    hw_arena_block *head; /* current block; the first block is last */
    hw_arena_block *first;
    size_t used_bytes;
    ProtobufCAllocator pb;
};

static hw_arena_block *block_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(hw_arena_block))
        return NULL;
    hw_arena_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

static void *pb_alloc(void *data, size_t size)
{
    return hw_arena_alloc(data, size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

hw_arena *hw_arena_create(size_t first_block_bytes)
{
    hw_arena *a = malloc(sizeof(*a));
    if (!a)
        return NULL;
    a->first = block_new(first_block_bytes ? first_block_bytes : HW_ARENA_DEFAULT_BLOCK);
    if (!a->first) {
        free(a);
        return NULL;
    }
    a->head = a->first;
    a->used_bytes = 0;
    a->pb.alloc = pb_alloc;
    a->pb.free = pb_free;
    a->pb.allocator_data = a;
    return a;
}

static void free_blocks_until(hw_arena_block *b, const hw_arena_block *stop)
{
    while (b && b != stop) {
        hw_arena_block *next = b->next;
        free(b);
        b = next;
    }
}

void hw_arena_destroy(hw_arena *a)
{
    if (!a)
        return;
    free_blocks_until(a->head, NULL);
    free(a);
}

void *hw_arena_alloc(hw_arena *a, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - HW_ARENA_ALIGN)
        return NULL;
    size_t rounded = (size + HW_ARENA_ALIGN - 1) & ~(size_t)(HW_ARENA_ALIGN - 1);
    hw_arena_block *b = a->head;
    if (b->size - b->used < rounded) {
        size_t want = a->first->size;
        while (want < rounded) {
            if (want > SIZE_MAX / 2) {
                want = rounded;
                break;
            }
            want *= 2;
        }
        b = block_new(want);
        if (!b)
            return NULL;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += rounded;
    a->used_bytes += rounded;
    return p;
}

void *hw_arena_calloc(hw_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = hw_arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

char *hw_arena_strndup(hw_arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *p = hw_arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *hw_arena_strdup(hw_arena *a, const char *s)
{
    return hw_arena_strndup(a, s, strlen(s));
}

/* Formats straight into the free end of the current block, so the common
 * case costs one vsnprintf; only a string longer than that space is
 * formatted a second time, into an allocation of its exact size. */
char *hw_arena_printf(hw_arena *a, const char *fmt, ...)
{
    hw_arena_block *b = a->head;
    size_t room = b->size - b->used;
    char *p = (char *)b->data + b->used;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    if ((size_t)n < room) {
        size_t rounded = ((size_t)n + HW_ARENA_ALIGN) & ~(size_t)(HW_ARENA_ALIGN - 1);
        if (rounded > room)
            rounded = room;
        b->used += rounded;
        a->used_bytes += rounded;
        return p;
    }
    p = hw_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void hw_arena_reset(hw_arena *a)
{
    free_blocks_until(a->head, a->first);
    a->head = a->first;
    a->first->used = 0;
    a->used_bytes = 0;
}

size_t hw_arena_used_bytes(const hw_arena *a)
{
    return a->used_bytes;
}

ProtobufCAllocator *hw_arena_allocator(hw_arena *a)
{
    return &a->pb;
}
