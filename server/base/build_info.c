/*
 * build_info: the commit comes from build_stamp.h, which a genrule writes
 * from Bazel's stable status (see BUILD); the compiler from its own
 * predefined macros.
 */
#include "server/base/build_info.h"

#include "server/base/build_stamp.h"

const char *hw_build_version(void)
{
    return HW_VERSION;
}

const char *hw_build_commit(void)
{
    return HW_BUILD_COMMIT;
}

const char *hw_build_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}

void hw_build_info_render(FILE *out)
{
    /* None of the three holds a quote or a backslash (see the header and
     * the genrule's filter), so they go into label values as they are. */
    fprintf(
        out,
        "# HELP helpwire_build_info The version, commit and compiler this server was built from; always 1.\n"
        "# TYPE helpwire_build_info gauge\n"
        "helpwire_build_info{version=\"%s\",commit=\"%s\",compiler=\"%s\"} 1\n",
        hw_build_version(), hw_build_commit(), hw_build_compiler());
}
