/*
 * tsan_suppressions: ThreadSanitizer reads this function, when a binary
 * defines it, for its default suppressions. Debian's gRPC, gpr and abseil
 * (and gRPC's upb runtime, which packs a reply inside grpc_call_start_batch)
 * are not built with TSan, so TSan cannot see their synchronization and
 * reports their internal accesses as races; those reports are suppressed.
 * Our own code stays fully checked: hand-offs through the gRPC completion
 * queue are made visible to TSan with explicit release/acquire atomics
 * (see net.c). The strings the core hands out (a call's status details)
 * are built by its C++ on whichever thread polled the socket: reports whose
 * writer is libstdc++ (none of our code uses it) are the core's too.
 * Debian's libuv (under the raft module) is not built with TSan either: it
 * hands file descriptors between its thread pool and its loop thread with
 * its own synchronization, and TSan's file-descriptor tracking then sees
 * the pool's open() and the loop's epoll_ctl() on a reused descriptor
 * number as a race; the raft module's own hand-offs use mutexes TSan sees.
 * Only those reports are suppressed: libuv's calls stay intercepted
 * (no called_from_lib), since its wake-ups (uv_async_send) are what orders
 * the raft thread after the threads that wake it.
 * In builds without TSan this function is never called.
 */
const char *__tsan_default_suppressions(void);

const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:libgrpc.so\n"
           "called_from_lib:libgpr.so\n"
           "race:libgrpc.so\n"
           "race:libgpr.so\n"
           "race:libupb.so\n"
           "race:libabsl_\n"
           "race:libstdc++.so\n"
           "race:libcares.so\n"
           "race:libcrypto.so\n"
           "race:libssl.so\n"
           "race:libuv.so\n"
           "called_from_lib:libcrypto.so\n"
           "called_from_lib:libssl.so\n"
           "deadlock:libgrpc.so\n"
           "deadlock:libabsl_\n";
}
