/*
 * grpc_runtime: see grpc_runtime.h.
 *
 * abseil is a C++ library and the gRPC core offers no C call for this
 * setting, so the setter, absl::SetMutexDeadlockDetectionMode(
 * absl::OnDeadlockCycle), is looked up by its mangled name at run time.
 * Its one argument is an enum class whose first value, kIgnore, is 0, and
 * it is passed like an int. abseil mangles its names with an inline
 * namespace that depends on how it was built; the names below cover
 * Debian's build, the release we build against, and a build without one.
 * A process whose abseil exports none of them keeps its default.
 */
#include "server/base/grpc_runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <grpc/support/log.h>

#define ABSL_ON_DEADLOCK_CYCLE_IGNORE 0

bool hw_grpc_runtime_prepare(void)
{
    static const char *const setter[] = {
        "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
        "_ZN4absl12lts_2022062329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE",
        "_ZN4absl29SetMutexDeadlockDetectionModeENS_15OnDeadlockCycleE",
    };
    for (size_t i = 0; i < sizeof setter / sizeof setter[0]; i++) {
        void *sym = dlsym(RTLD_DEFAULT, setter[i]);
        if (!sym)
            continue;
        void (*set_mode)(int);
        /* POSIX guarantees that a dlsym() result converts to a function pointer. */
        *(void **)&set_mode = sym;
        set_mode(ABSL_ON_DEADLOCK_CYCLE_IGNORE);
        return true;
    }
    return false;
}

/* The core's log hook has no argument: the route is process-wide. */
static _Atomic(const hw_grpc_log_route *) log_route;

static void route_line(gpr_log_func_args *a)
{
    int level = a->severity == GPR_LOG_SEVERITY_ERROR ? 3 : a->severity == GPR_LOG_SEVERITY_INFO ? 1 : 0;
    const char *file = a->file ? a->file : "";
    const char *slash = strrchr(file, '/');
    file = slash ? slash + 1 : file;
    const char *msg = a->message ? a->message : "";
    const hw_grpc_log_route *r = atomic_load(&log_route);
    if (r) {
        r->fn(r->arg, level, file, a->line, msg);
        return;
    }
    /* No logger (yet, or any more): one plain key=value line. */
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[1024];
    int n = snprintf(line, sizeof line, "level=%s event=grpc file=%s line=%d msg=\"", names[level], file,
                     a->line);
    for (const char *p = msg; *p && n >= 0 && (size_t)n < sizeof line - 3; p++)
        line[n++] = (*p == '"' || (unsigned char)*p < 0x20) ? '\'' : *p;
    if (n < 0)
        return;
    line[n++] = '"';
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(STDERR_FILENO, line, (size_t)n);
    } while (w < 0 && errno == EINTR);
}

void hw_grpc_runtime_log_to(const hw_grpc_log_route *route)
{
    atomic_store(&log_route, route);
    gpr_set_log_function(route_line);
}
