/*
 * TEMPORARY STUB, DELETE AT MERGE: hw_index_set_synonyms (index.h) is
 * implemented in index.c on another branch. Until both meet, this stand-in
 * lets the synonym-set RPCs link and run: it checks its arguments as the
 * contract says and applies nothing (queries are not expanded).
 * At merge: delete this file and its line in server/search/BUILD, and set
 * EXPANSION_LANDED = True in tests/integration/synonyms_test.py.
 */
#include <string.h>

#include "server/base/errors.h"
#include "server/search/index.h"
#include "server/search/tokenize.h"

int hw_index_set_synonyms(hw_index *idx, const hw_synonym_set *sets, size_t n, hw_status *st)
{
    if (!idx || (n && !sets))
        return HW_EINVALID;
    if (n > HW_INDEX_MAX_SYN_SETS)
        return HW_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        if (sets[i].n_terms < 2 || sets[i].n_terms > HW_INDEX_MAX_SYN_TERMS) {
            if (st)
                st->code = HW_EINVALID;
            return HW_EINVALID;
        }
        for (size_t k = 0; k < sets[i].n_terms; k++) {
            const char *t = sets[i].terms[k];
            size_t len = t ? strlen(t) : 0;
            if (len == 0 || len > 64 || hw_utf8_validate(t, len, st) != 0)
                return HW_EINVALID;
        }
    }
    return 0;
}
