/*
 * strtok_tls: a strtok whose saved position is per thread, for test
 * binaries that run several raft replicas in one process. Debian's libraft
 * parses "host:port" with strtok(), whose position glibc keeps in one
 * static for the whole process; one helpwired runs one replica, but
 * repl_test runs three, each on its own thread, and their parses then race
 * (ThreadSanitizer reports it). Linked into such a test binary and exported
 * from it (see BUILD), this definition is the one libraft's calls resolve
 * to. glibc's strtok_r does the work; only the saved pointer moves.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <string.h>

char *strtok(char *restrict s, const char *restrict delim)
{
    static __thread char *saved;

    return strtok_r(s, delim, &saved);
}
