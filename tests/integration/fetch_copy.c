/*
 * fetch_copy: the replica's side of Cluster.FetchSnapshot for the tests:
 *   fetch_copy DATA_DIR TOKEN TARGET...   hw_repl_fetch_copy, then
 *                                         hw_repl_install_copy
 * Prints "applied_index=N" and exits 0, or prints the error and exits 1.
 * TOKEN "-" sends none.
 */
#include <grpc/grpc.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/base/errors.h"
#include "server/base/grpc_runtime.h"
#include "server/repl/fetch.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: fetch_copy DATA_DIR TOKEN TARGET...\n");
        return 2;
    }
    hw_grpc_runtime_prepare();
    grpc_init();
    char err[1024];
    uint64_t applied = 0;
    const char *token = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
    int rc = hw_repl_fetch_copy((const char *const *)argv + 3, (size_t)argc - 3, token, argv[1], &applied, err,
                                sizeof err);
    if (rc == HW_OK)
        rc = hw_repl_install_copy(argv[1], err, sizeof err);
    grpc_shutdown();
    if (rc != HW_OK) {
        printf("error=%s %s\n", hw_errname(rc), err);
        return 1;
    }
    printf("applied_index=%" PRIu64 "\n", applied);
    return 0;
}
