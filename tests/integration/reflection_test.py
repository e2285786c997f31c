"""reflection_test: gRPC server reflection on the real helpwired, with
Python's own protobuf descriptors checking what comes back."""
import unittest

import grpc
from google.protobuf import descriptor_pb2

import hwclient
import hwtest

API = hwclient.Api()
PATH = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


class Reflection(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = hwclient.Server()
        cls.channel = grpc.insecure_channel(cls.server.address)  # no token: reflection is public
        _, resp_cls, _ = API.method("grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        cls.req = staticmethod(lambda **f: API.message("grpc.reflection.v1alpha.ServerReflectionRequest", **f))
        cls.fn = cls.channel.stream_stream(PATH, request_serializer=lambda m: m.SerializeToString(),
                                           response_deserializer=resp_cls.FromString)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        assert cls.server.stop() == 0, cls.server.read_log()

    def ask(self, *requests):
        return list(self.fn(iter(requests), timeout=10))

    def files(self, resp):
        out = {}
        for raw in resp.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(raw)
            out[fd.name] = fd
        return out

    def test_list_services(self):
        (resp,) = self.ask(self.req(listServices=""))
        names = [s.name for s in resp.list_services_response.service]
        for n in ("helpwire.v1.Router", "helpwire.v1.Tickets", "helpwire.v1.Knowledge", "grpc.health.v1.Health",
                  "grpc.reflection.v1alpha.ServerReflection", "helpwire.v1.Admin"):
            self.assertIn(n, names)

    def test_several_requests_on_one_stream(self):
        resps = self.ask(self.req(fileContainingSymbol="helpwire.v1.Tickets.CreateTicket"),
                         self.req(fileContainingSymbol="helpwire.v1.RouteRequest"),
                         self.req(fileByFilename="helpwire/v1/common.proto"),
                         self.req(fileContainingSymbol="helpwire.v1.NoSuchThing"))
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

    def test_nested_types_and_enums_are_symbols(self):
        (resp,) = self.ask(self.req(fileContainingSymbol="grpc.health.v1.HealthCheckResponse.ServingStatus"))
        self.assertIn("grpc/health/v1/health.proto", self.files(resp))
        (resp,) = self.ask(self.req(fileContainingSymbol="helpwire.v1.TicketStatus"))
        self.assertIn("helpwire/v1/common.proto", self.files(resp))

    def test_garbage_request_ends_the_stream_with_invalid_argument(self):
        fn = self.channel.stream_stream(PATH)
        with self.assertRaises(grpc.RpcError) as cm:
            list(fn(iter([b"\x0a\x50garbage"]), timeout=10))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)


if __name__ == "__main__":
    hwtest.main()
