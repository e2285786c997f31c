/*
 * tokenizer_fixture: a cmocka setup and teardown giving each test a fresh
 * tokenizer in *state. Header-only; tests only.
 */
#ifndef HW_TOKENIZER_FIXTURE_H
#define HW_TOKENIZER_FIXTURE_H

#include "server/search/tokenize.h"

static int setup(void **state)
{
    hw_tokenizer *t;
    if (hw_tokenizer_create(&t, NULL) != 0)
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    hw_tokenizer_destroy(*state);
    return 0;
}

#endif
