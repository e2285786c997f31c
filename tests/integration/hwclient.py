"""hwclient: helpwire.v1 from Python (Debian's python3-grpcio), without
generated code: message classes come from the project's descriptor set.

Also the harness of the integration tests: start the real helpwired on a
free loopback port, wait for it, stop it with a signal.
"""
import os
import signal
import subprocess
import tempfile
import threading
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format

try:  # protobuf >= 4
    from google.protobuf.message_factory import GetMessageClass as _get_class
except ImportError:  # Debian 12's protobuf 3.21
    from google.protobuf import message_factory as _mf

    _factory = _mf.MessageFactory()

    def _get_class(desc):
        return _factory.GetPrototype(desc)


def repo_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.dirname(os.path.dirname(here))


def find_file(rel, bazel_bin_rel):
    """A data file from Bazel runfiles, else from bazel-bin in the tree."""
    for base in (os.environ.get("RUNFILES_DIR"), os.environ.get("TEST_SRCDIR")):
        if base:
            for ws in ("helpwire", "__main__"):
                p = os.path.join(base, ws, rel)
                if os.path.exists(p):
                    return p
    p = os.path.join(os.getcwd(), rel)
    if os.path.exists(p):
        return p
    p = os.path.join(repo_root(), "bazel-bin", bazel_bin_rel)
    if os.path.exists(p):
        return p
    raise FileNotFoundError(rel)


class Api:
    """Message classes and method lookup from the descriptor set."""

    def __init__(self, protoset=None):
        path = protoset or find_file("proto/helpwire.protoset", "proto/helpwire.protoset")
        fds = descriptor_pb2.FileDescriptorSet()
        with open(path, "rb") as f:
            fds.ParseFromString(f.read())
        self.pool = descriptor_pool.DescriptorPool()
        for fd in fds.file:
            self.pool.Add(fd)

    def message(self, full_name, **fields):
        cls = _get_class(self.pool.FindMessageTypeByName(full_name))
        msg = cls()
        if fields:
            json_format.ParseDict(fields, msg)
        return msg

    def method(self, path):
        """path: 'helpwire.v1.Router/Route' -> (input class, output class, streaming)."""
        service, name = path.lstrip("/").split("/")
        m = self.pool.FindServiceByName(service).FindMethodByName(name)
        return (_get_class(m.input_type), _get_class(m.output_type), m.server_streaming)


class Client:
    def __init__(self, target, api=None, token=None, tls=None):
        """tls: None for plaintext, or grpc.ssl_channel_credentials(...);
        TLS connections expect the server certificate for "localhost"."""
        self.api = api or Api()
        if tls is None:
            self.channel = grpc.insecure_channel(target)
        else:
            self.channel = grpc.secure_channel(
                target, tls, options=[("grpc.ssl_target_name_override", "localhost")])
        self.token = token

    def close(self):
        self.channel.close()

    def _md(self, metadata):
        md = list(metadata or [])
        if self.token:
            md.append(("authorization", "Bearer " + self.token))
        return md

    def call(self, path, request=None, timeout=10, metadata=None, **fields):
        """Unary call; request is a message or None (built from fields)."""
        req_cls, resp_cls, streaming = self.api.method(path)
        assert not streaming, path
        if request is None:
            request = req_cls()
            json_format.ParseDict(fields, request)
        fn = self.channel.unary_unary(
            "/" + path.lstrip("/"),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString,
        )
        return fn(request, timeout=timeout, metadata=self._md(metadata))

    def raw(self, path, payload, timeout=10, metadata=None):
        """Unary call with raw request bytes; returns raw reply bytes."""
        fn = self.channel.unary_unary("/" + path.lstrip("/"))
        return fn(payload, timeout=timeout, metadata=self._md(metadata))

    def stream(self, path, timeout=None, metadata=None, **fields):
        req_cls, resp_cls, streaming = self.api.method(path)
        assert streaming, path
        request = req_cls()
        json_format.ParseDict(fields, request)
        fn = self.channel.unary_stream(
            "/" + path.lstrip("/"),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString,
        )
        return fn(request, timeout=timeout, metadata=self._md(metadata))


def helpwired_binary():
    return find_file("server/helpwired", "server/helpwired")


class Server:
    """The real helpwired on 127.0.0.1 with a free port and a fresh store."""

    def __init__(self, *extra, data_dir=None, bootstrap=True):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="hw-data-", dir=os.environ.get("TEST_TMPDIR"))
        self.log_path = os.path.join(self.data_dir + ".log")
        self.log = open(self.log_path, "wb")
        # An admin token for the tests, kept beside the data directory so a
        # restart on the same data finds it again.
        self.token_file = self.data_dir.rstrip("/") + ".admin-token"
        args = [helpwired_binary(), "--listen", "127.0.0.1:0", "--data", self.data_dir]
        if bootstrap:
            args += ["--bootstrap-token-file", self.token_file]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        self.address = None  # the first plaintext address
        self.addresses = []  # every address, in order
        self.tls_addresses = []
        self.metrics_url = None
        self.tokens = {}  # role -> secret, printed by --demo
        self.stdout_lines = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            self.stdout_lines.append(line)
            if line.startswith("helpwired listening on "):
                addr = line.split()[3]
                self.addresses.append(addr)
                if line.rstrip().endswith("(tls)"):
                    self.tls_addresses.append(addr)
                elif self.address is None:
                    self.address = addr
            elif line.startswith("helpwired metrics on "):
                self.metrics_url = line.split()[-1]
            elif line.startswith("helpwired token "):
                _, _, role, secret = line.split()[:4]
                self.tokens[role] = secret
            elif line.startswith("try:"):
                break
        if "admin" not in self.tokens and os.path.exists(self.token_file):
            with open(self.token_file) as f:
                self.tokens["admin"] = f.read().strip()
        if not self.addresses:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("helpwired did not start:\n" + self.read_log())

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def client(self, token=None, api=None, role=None):
        """A plaintext client. role picks one of the --demo tokens; with
        neither token nor role the admin token is used; token="" sends
        none."""
        if role is not None:
            token = self.tokens.get(role)
        elif token is None:
            token = self.tokens.get("admin")
        return Client(self.address, api=api, token=token)

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            self.log.close()
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            return self.wait()
        return self.proc.returncode


def same_token_servers(n, *extra):
    """n independent helpwired processes (each its own store and free
    port) that accept the same tokens: one --demo store is made, stopped and
    copied. They share no state afterwards: a stand-in for replicas when
    what is tested is the client side (fail-over, a proxy in front).
    Returns the list of Servers; each has .tokens of the demo."""
    first = Server("--demo", *extra)
    tokens = dict(first.tokens)
    rc = first.stop()
    if rc != 0:
        raise RuntimeError("helpwired --demo did not stop cleanly:\n" + first.read_log())
    servers = []
    try:
        for i in range(n):
            data_dir = first.data_dir if i == 0 else tempfile.mkdtemp(prefix="hw-data-",
                                                                        dir=os.environ.get("TEST_TMPDIR"))
            if i:
                for name in os.listdir(first.data_dir):
                    src = os.path.join(first.data_dir, name)
                    if os.path.isfile(src):
                        with open(src, "rb") as r, open(os.path.join(data_dir, name), "wb") as w:
                            w.write(r.read())
            s = Server(*extra, data_dir=data_dir, bootstrap=False)
            s.tokens = dict(tokens)
            servers.append(s)
    except BaseException:
        for s in servers:
            s.stop()
        raise
    return servers


def watch_ticket(stream, ticket_id):
    """Read a WatchTickets stream on a thread, keeping the events of
    ticket_id in the returned list (appended as they arrive) until the stream
    ends or is cancelled. Returns (events, thread); cancel the stream, then
    join the thread."""
    events = []

    def read():
        try:
            for ev in stream:
                if ev.ticket_id == ticket_id:
                    events.append(ev)
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read)
    reader.start()
    return events, reader


PIECE_BYTES = 1 << 20  # the largest PutChunk piece helpwired takes


def upload_attachment(client, data, piece=PIECE_BYTES, timeout=60, **commit):
    """Puts data through client in PutChunk pieces of piece bytes, then
    CommitAttachment with the pieces' digests and the commit fields given
    (kind, mimeType, name, sha256...). Returns the CommitAttachment reply;
    a failed call raises its grpc.RpcError."""
    digests = []
    for i in range(0, len(data), piece):
        req = client.api.message("helpwire.v1.PutChunkRequest")
        req.data = data[i:i + piece]  # raw bytes (as a keyword field they would be read as base64)
        digests.append(client.call("helpwire.v1.Attachments/PutChunk", request=req, timeout=timeout).chunk_sha256)
    return client.call("helpwire.v1.Attachments/CommitAttachment", timeout=timeout, chunks=digests, **commit)


def download_attachment(client, attachment_id, offset=0, timeout=60):
    """Streams attachment_id from offset through client. Returns (info: the
    first message's metadata or None, the bytes, each message's offset)."""
    info, out, offsets = None, bytearray(), []
    for m in client.stream("helpwire.v1.Attachments/GetAttachment", timeout=timeout, id=attachment_id,
                           offset=str(offset)):
        if m.HasField("info"):
            info = m.info
        offsets.append(m.offset)
        out += m.data
    return info, bytes(out), offsets
