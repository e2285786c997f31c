"""fuzz_replay_test: a fuzz harness NAME.c linked with replay.c, replaying corpus/NAME."""

load("@rules_cc//cc:defs.bzl", "cc_test")

def fuzz_replay_test(name, deps, srcs = [], data = [], size = "small", **kwargs):
    """NAME_fuzz_test: the harness NAME.c replaying every file of corpus/NAME.

    tests/fuzz.sh builds the same harness with libFuzzer from the sources
    `bazel query` finds under NAME_fuzz_test.

    The fakes among srcs (fake_call.c, fake_bridge.c) replace functions of
    the libraries in deps: the executable's definitions win over shared
    objects' (the default test link) and, with --allow-multiple-definition,
    over archives' (the sanitizer configs link tests statically).
    """
    cc_test(
        name = name + "_fuzz_test",
        size = size,
        srcs = [name + ".c", "replay.c"] + srcs,
        args = ["tests/fuzz/corpus/" + name],
        data = native.glob(["corpus/" + name + "/**"]) + data,
        deps = deps,
        linkopts = ["-Wl,--allow-multiple-definition"],
        **kwargs
    )
