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
#include "server/grpc_runtime.h"

#include <dlfcn.h>
#include <stddef.h>

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
