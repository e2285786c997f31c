"""reflection_test: gRPC server reflection on the real helpwired, under both
names (grpc.reflection.v1 and v1alpha), with Python's own protobuf
descriptors checking what comes back: the services, the files with their
dependencies, the .proto comments in SourceCodeInfo, the errors."""
import re
import unittest

import grpc
from google.protobuf import descriptor_pb2

import hwclient
import hwtest

API = hwclient.Api()
VERSIONS = ("v1", "v1alpha")
SERVICE = "grpc.reflection.%s.ServerReflection"
PATH = "/" + SERVICE + "/ServerReflectionInfo"

# SourceCodeInfo paths: FileDescriptorProto.service = 6,
# ServiceDescriptorProto.method = 2, FileDescriptorProto.message_type = 4,
# DescriptorProto.field = 2.
FILE_SERVICE, SERVICE_METHOD, FILE_MESSAGE, MESSAGE_FIELD = 6, 2, 4, 2


def proto_comment(text, declaration):
    """The // comment block right above the line starting with declaration
    in a .proto source, as protoc records it (leading_comments)."""
    lines = text.splitlines()
    at = next(i for i, l in enumerate(lines) if l.strip().startswith(declaration))
    block = []
    for l in reversed(lines[:at]):
        s = l.strip()
        if not s.startswith("//"):
            break
        block.insert(0, s[2:] + "\n")
    return "".join(block)


def leading_comment(fd, path):
    for loc in fd.source_code_info.location:
        if list(loc.path) == path:
            return loc.leading_comments
    return None


class Reflection(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server()
        cls.channel = grpc.insecure_channel(cls.server.address)  # no token: reflection is public

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def req(self, version, **fields):
        return API.message("grpc.reflection.%s.ServerReflectionRequest" % version, **fields)

    def stream(self, version, raw=False):
        _, resp_cls, _ = API.method((PATH % version).lstrip("/"))
        return self.channel.stream_stream(
            PATH % version, request_serializer=None if raw else (lambda m: m.SerializeToString()),
            response_deserializer=resp_cls.FromString)

    def ask(self, version, *requests):
        return list(self.stream(version)(iter(requests), timeout=10))

    def files(self, resp):
        out = {}
        for raw in resp.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(raw)
            out[fd.name] = fd
        return out

    def test_list_services(self):
        expected = sorted(f.package + "." + s.name for f in protoset().file for s in f.service)
        for v in VERSIONS:
            with self.subTest(version=v):
                (resp,) = self.ask(v, self.req(v, listServices=""))
                names = [s.name for s in resp.list_services_response.service]
                for n in ("helpwire.v1.Router", "helpwire.v1.Tickets", "helpwire.v1.Knowledge",
                          "grpc.health.v1.Health", SERVICE % "v1", SERVICE % "v1alpha", "helpwire.v1.Admin"):
                    self.assertIn(n, names)
                self.assertEqual(sorted(names), expected)  # every service, each once
                self.assertEqual(resp.original_request.list_services, "")
                self.assertEqual(resp.original_request.WhichOneof("message_request"), "list_services")

    def test_a_v1_request_written_by_hand(self):
        """Bytes as any v1 client writes them, no descriptors of ours:
        host = 1 "h", list_services = 7 "*"."""
        _, resp_cls, _ = API.method("grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        raw = b"\x0a\x01h" + b"\x3a\x01*"
        (resp,) = list(self.stream("v1", raw=True)(iter([raw]), timeout=10))
        self.assertEqual(resp.valid_host, "h")
        self.assertEqual(resp.original_request.SerializeToString(), raw)
        self.assertIn("helpwire.v1.Router", [s.name for s in resp.list_services_response.service])
        # And the answer decodes the same with v1alpha's classes.
        alpha = API.message("grpc.reflection.v1alpha.ServerReflectionResponse")
        alpha.ParseFromString(resp.SerializeToString())
        self.assertEqual([s.name for s in alpha.list_services_response.service],
                         [s.name for s in resp.list_services_response.service])

    def test_a_field_numbered_0_is_refused_as_undecodable(self):
        """Field number 0 written with an over-long tag (0x82 0x00, empty):
        protobuf-c lets it through and wrote it back into original_request
        in a form no decoder accepts, so the answer did not decode (found by
        tests/fuzz/rpc.c). Now the request is refused as other decoders
        refuse it; another unknown field is still echoed as it came."""
        for v in VERSIONS:
            with self.subTest(version=v):
                with self.assertRaises(grpc.RpcError) as cm:
                    list(self.stream(v, raw=True)(iter([b"\x82\x00\x00" + b"\x3a\x01*"]), timeout=10))
                self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                (resp,) = list(self.stream(v, raw=True)(iter([b"\xfa\x01\x01x" + b"\x3a\x01*"]), timeout=10))
                self.assertEqual(resp.original_request.SerializeToString(), b"\x3a\x01*\xfa\x01\x01x")  # unknown ones last

    def test_several_requests_on_one_stream(self):
        for v in VERSIONS:
            with self.subTest(version=v):
                resps = self.ask(v, self.req(v, fileContainingSymbol="helpwire.v1.Tickets.CreateTicket"),
                                 self.req(v, fileContainingSymbol="helpwire.v1.RouteRequest"),
                                 self.req(v, fileByFilename="helpwire/v1/common.proto"),
                                 self.req(v, fileContainingSymbol="helpwire.v1.NoSuchThing"))
                self.assertEqual(len(resps), 4)
                tickets = self.files(resps[0])
                self.assertIn("helpwire/v1/tickets.proto", tickets)
                self.assertIn("helpwire/v1/common.proto", tickets)  # its dependency comes along
                svc = [s for s in tickets["helpwire/v1/tickets.proto"].service if s.name == "Tickets"][0]
                watch = [m for m in svc.method if m.name == "WatchTickets"][0]
                self.assertTrue(watch.server_streaming)
                self.assertIn("helpwire/v1/router.proto", self.files(resps[1]))
                self.assertEqual(list(self.files(resps[2])), ["helpwire/v1/common.proto"])
                self.assertEqual(resps[3].error_response.error_code, 5)  # NOT_FOUND
                self.assertEqual(resps[3].original_request.file_containing_symbol, "helpwire.v1.NoSuchThing")

    def test_descriptors_carry_the_proto_comments(self):
        """What `grpcurl describe helpwire.v1.Router.Route` prints: the
        comments of router.proto, from SourceCodeInfo."""
        with open(hwclient.find_file("proto/helpwire/v1/router.proto", "proto/helpwire/v1/router.proto")) as f:
            source = f.read()
        route_doc = proto_comment(source, "rpc Route(")
        text_doc = proto_comment(source, "string text = ")
        self.assertIn("Routes one inbound customer message.", route_doc)
        for v in VERSIONS:
            with self.subTest(version=v):
                (resp,) = self.ask(v, self.req(v, fileContainingSymbol="helpwire.v1.Router.Route"))
                fd = self.files(resp)["helpwire/v1/router.proto"]
                s = [i for i, s in enumerate(fd.service) if s.name == "Router"][0]
                m = [i for i, m in enumerate(fd.service[s].method) if m.name == "Route"][0]
                self.assertEqual(leading_comment(fd, [FILE_SERVICE, s, SERVICE_METHOD, m]), route_doc)
                msg = [i for i, t in enumerate(fd.message_type) if t.name == "RouteRequest"][0]
                fld = [i for i, x in enumerate(fd.message_type[msg].field) if x.name == "text"][0]
                self.assertEqual(leading_comment(fd, [FILE_MESSAGE, msg, MESSAGE_FIELD, fld]), text_doc)
                # Dependencies come with their documentation too.
                common = self.files(resp)["helpwire/v1/common.proto"]
                self.assertTrue(any(l.leading_comments for l in common.source_code_info.location))

    def test_the_reflection_protos_document_themselves(self):
        (resp,) = self.ask("v1", self.req("v1", fileContainingSymbol=SERVICE % "v1"))
        fd = self.files(resp)["grpc/reflection/v1/reflection.proto"]
        self.assertEqual(fd.package, "grpc.reflection.v1")
        doc = leading_comment(fd, [FILE_SERVICE, 0, SERVICE_METHOD, 0])
        self.assertIn("Needs no token", doc)

    def test_v1_and_v1alpha_are_the_same_on_the_wire(self):
        """One implementation answers both (server/methods.c decodes v1 with
        v1alpha's C code): their messages must keep the same fields."""
        def shape(fd):
            pkg = "." + fd.package + "."
            msgs = {}
            for m in fd.message_type:
                msgs[m.name] = sorted((f.number, f.name, f.type, f.label, f.type_name.replace(pkg, "."),
                                       f.HasField("oneof_index") and m.oneof_decl[f.oneof_index].name)
                                      for f in m.field)
            svcs = {s.name: [(x.name, x.input_type.replace(pkg, "."), x.output_type.replace(pkg, "."),
                              x.client_streaming, x.server_streaming) for x in s.method] for s in fd.service}
            return msgs, svcs
        files = {f.package: f for f in protoset().file}
        v1, alpha = shape(files["grpc.reflection.v1"]), shape(files["grpc.reflection.v1alpha"])
        self.assertEqual(v1, alpha)
        self.assertEqual(sorted(v1[0]["ServerReflectionRequest"])[-1][:2], (7, "list_services"))

    def test_nested_types_and_enums_are_symbols(self):
        for v in VERSIONS:
            with self.subTest(version=v):
                status = "grpc.health.v1.HealthCheckResponse.ServingStatus"
                (resp,) = self.ask(v, self.req(v, fileContainingSymbol=status))
                self.assertIn("grpc/health/v1/health.proto", self.files(resp))
                (resp,) = self.ask(v, self.req(v, fileContainingSymbol="helpwire.v1.TicketStatus"))
                self.assertIn("helpwire/v1/common.proto", self.files(resp))

    def test_errors_keep_the_stream_open(self):
        for v in VERSIONS:
            with self.subTest(version=v):
                resps = self.ask(v, self.req(v, fileByFilename="helpwire/v1/nope.proto"),
                                 self.req(v, host="x"),  # no message_request
                                 self.req(v, fileContainingExtension={"containingType": "helpwire.v1.Ticket",
                                                                      "extensionNumber": 100}),
                                 self.req(v, allExtensionNumbersOfType="helpwire.v1.NoSuchType"),
                                 self.req(v, allExtensionNumbersOfType="helpwire.v1.Ticket"),
                                 self.req(v, fileContainingSymbol=""),
                                 self.req(v, listServices=""))
                codes = [r.error_response.error_code if r.HasField("error_response") else 0 for r in resps]
                self.assertEqual(codes, [5, 3, 5, 5, 0, 5, 0])
                self.assertEqual(resps[1].valid_host, "x")
                self.assertEqual(resps[4].all_extension_numbers_response.base_type_name, "helpwire.v1.Ticket")
                self.assertEqual(list(resps[4].all_extension_numbers_response.extension_number), [])
                self.assertTrue(resps[6].list_services_response.service)

    def test_garbage_request_ends_the_stream_with_invalid_argument(self):
        for v in VERSIONS:
            with self.subTest(version=v):
                fn = self.channel.stream_stream(PATH % v)
                with self.assertRaises(grpc.RpcError) as cm:
                    list(fn(iter([b"\x0a\x50garbage"]), timeout=10))
                self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_sizes_stay_small(self):
        """The comments make the descriptors about three times larger; the
        largest answer stays far below gRPC's default 4 MiB message limit."""
        raw = open(hwclient.find_file("proto/helpwire.protoset", "proto/helpwire.protoset"), "rb").read()
        self.assertLess(len(raw), 512 * 1024)
        biggest = 0
        for f in protoset().file:
            for s in f.service:
                (resp,) = self.ask("v1", self.req("v1", fileContainingSymbol=f.package + "." + s.name))
                self.assertIn(f.name, self.files(resp))
                biggest = max(biggest, resp.ByteSize())
        self.assertLess(biggest, 128 * 1024)


def protoset():
    fds = descriptor_pb2.FileDescriptorSet()
    with open(hwclient.find_file("proto/helpwire.protoset", "proto/helpwire.protoset"), "rb") as f:
        fds.ParseFromString(f.read())
    return fds


if __name__ == "__main__":
    hwtest.main()
