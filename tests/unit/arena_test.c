/*
 * arena_test: the per-request arena hands out aligned, independent memory,
 * grows past its first block, and rewinds on reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/base/arena.h"

static void test_allocations_are_aligned_and_distinct(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(64);
    assert_non_null(a);
    char *prev = NULL;
    for (size_t n = 0; n < 200; n++) {
        char *p = hw_arena_alloc(a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, (int)n, n);
        assert_true(p != prev);
        prev = p;
    }
    hw_arena_destroy(a);
}

static void test_large_allocation_gets_its_own_block(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(128);
    char *big = hw_arena_alloc(a, 1 << 20);
    assert_non_null(big);
    memset(big, 0xab, 1 << 20);
    char *small = hw_arena_strdup(a, "still works");
    assert_string_equal(small, "still works");
    assert_true(hw_arena_used_bytes(a) >= (1u << 20));
    hw_arena_reset(a);
    assert_int_equal(hw_arena_used_bytes(a), 0);
    assert_non_null(hw_arena_alloc(a, 32));
    hw_arena_destroy(a);
}

static void test_overflowing_sizes_fail_cleanly(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    assert_null(hw_arena_alloc(a, SIZE_MAX));
    assert_null(hw_arena_calloc(a, SIZE_MAX / 2, 4));
    hw_arena_destroy(a);
}

static void test_printf_and_protobuf_allocator(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(0);
    assert_string_equal(hw_arena_printf(a, "ticket #%d %s", 1042, "重置"), "ticket #1042 重置");
    ProtobufCAllocator *pb = hw_arena_allocator(a);
    void *p = pb->alloc(pb->allocator_data, 100);
    assert_non_null(p);
    pb->free(pb->allocator_data, p); /* no-op; memory goes with the arena */
    hw_arena_destroy(a);
}

/* hw_arena_printf formats in the free end of the current block when the
 * text fits and falls back to an allocation of its own size when it does
 * not; either way the text is whole and what is allocated next does not
 * overwrite it. */
static void test_printf_at_block_edges(void **state)
{
    (void)state;
    hw_arena *a = hw_arena_create(64); /* small first block: edges come fast */
    char *parts[40];
    char want[40][200];
    for (int i = 0; i < 40; i++) {
        /* Lengths 0..117 walk the formatted end across every offset of
         * the 64-byte block, including exact fits and one byte over. */
        int len = (i * 3) % 118;
        snprintf(want[i], sizeof want[i], "%d:%.*s", i, len,
                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        parts[i] =
            hw_arena_printf(a, "%d:%.*s", i, len,
                            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        assert_non_null(parts[i]);
        unsigned char *next = hw_arena_alloc(a, 16);
        assert_non_null(next);
        memset(next, 0xAB, 16);
    }
    for (int i = 0; i < 40; i++)
        assert_string_equal(parts[i], want[i]);
    size_t before = hw_arena_used_bytes(a);
    char *empty = hw_arena_printf(a, "%s", "");
    assert_string_equal(empty, "");
    assert_true(hw_arena_used_bytes(a) > before); /* even "" takes its byte */
    hw_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocations_are_aligned_and_distinct),
        cmocka_unit_test(test_large_allocation_gets_its_own_block),
        cmocka_unit_test(test_overflowing_sizes_fail_cleanly),
        cmocka_unit_test(test_printf_and_protobuf_allocator),
        cmocka_unit_test(test_printf_at_block_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
