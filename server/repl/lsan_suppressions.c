/*
 * lsan_suppressions: LeakSanitizer reads this function, when a binary
 * defines it, for its default suppressions. libraft 0.15 leaks the
 * 16-byte buffer array of a snapshot it was sent when the state machine
 * refuses to restore it (its installSnapshot frees the data but not the
 * array): that happens once per refused snapshot, when a replica is too far
 * behind and fetches a copy of a peer's store instead (repl.c). The leak is
 * the library's; our own allocations stay checked. In builds without
 * LeakSanitizer this function is never called.
 */
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
    return "leak:libraft.so\n";
}
