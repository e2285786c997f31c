"""protoc_c_library: C code from .proto files with Debian's protoc-c.

Generates <name>.pb-c.{c,h} beside each source (relative to the package) and
wraps them in a cc_library whose include root is the package, matching the
`#include "helpwire/v1/x.pb-c.h"` lines protoc-c writes.
"""

def protoc_c_library(name, srcs, visibility = None):
    pkg = native.package_name()
    outs_c = [s[:-len(".proto")] + ".pb-c.c" for s in srcs]
    outs_h = [s[:-len(".proto")] + ".pb-c.h" for s in srcs]
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = outs_c + outs_h,
        cmd = "protoc-c -I{pkg} --c_out=$(RULEDIR) $(SRCS)".format(pkg = pkg),
        message = "protoc-c " + name,
    )
    native.cc_library(
        name = name,
        srcs = outs_c,
        hdrs = outs_h,
        includes = ["."],
        deps = ["//bazel:protobuf_c"],
        visibility = visibility,
    )

def proto_descriptor_set(name, srcs, out, visibility = None):
    """A FileDescriptorSet (with imports) for reflection and other languages.

    Keeps SourceCodeInfo (--include_source_info): the .proto comments, by
    location, so that reflection clients (grpcurl describe, grpcui, Postman)
    show each service, method, message and field with its documentation.
    About three times the size without it (a hundred kilobytes or so).
    Imports of google/protobuf/*.proto resolve to Debian's /usr/include."""
    pkg = native.package_name()
    native.genrule(
        name = name,
        srcs = srcs,
        outs = [out],
        cmd = "protoc-c -I{pkg} -I/usr/include --include_imports --include_source_info --descriptor_set_out=$@ $(SRCS)".format(pkg = pkg),
        message = "descriptor set " + name,
        visibility = visibility,
    )

def proto_message_list(name, lib, out, visibility = None):
    """An X-macro file listing every message descriptor of a protoc_c_library
    (`HW_MESSAGE(helpwire__v1__route_request)` per line), so tests cover each
    message, including ones added later, without a hand-kept list."""
    native.genrule(
        name = name,
        srcs = [":" + lib + "_gen"],
        outs = [out],
        cmd = "for f in $(SRCS); do case $$f in *.h) sed -n " +
              "'s/^extern const ProtobufCMessageDescriptor \\(.*\\)__descriptor;/HW_MESSAGE(\\1)/p' $$f;; esac; done > $@",
        visibility = visibility,
    )
