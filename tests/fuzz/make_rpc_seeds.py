"""Writes seed inputs for the rpc and cursor fuzz harnesses: for every row
of server/methods.c (in table order: the harness picks the row by the
first byte), an empty request and one with every field set to a plausible
value by its name and type, as admin and as agent. Uses the descriptor set
Bazel builds (//proto:helpwire.protoset) and Debian's python3-protobuf.

Usage: /usr/bin/python3 tests/fuzz/make_rpc_seeds.py bazel-bin/proto/helpwire.protoset tests/fuzz/corpus/rpc
"""
import hashlib
import os
import re
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

STRINGS = {
    "text": "How do I reset my password?",
    "question": "忘记密码怎么办",
    "query": "refund card",
    "title": "Refunds",
    "body": "Refunds reach your card within 5-10 business days.",
    "email": "ana@example.com",
    "locale": "en",
    "language": "en",
    "token": "s1-3q2v7mbzk5f0rj9d",
    "page_token": "0a0b0c",
    "after": "c1AAAAAAAAABAAAAAAAAAAA",
    "time_zone": "Europe/Berlin",
    "tz": "Asia/Shanghai",
    "reason": "customer asked",
    "subject": "Card declined",
    "name": "Ana",
    "display_name": "Ana",
    "channel_user_id": "12345",
    "message_id": "12345:1",
    "address": "127.0.0.1:7001",
    "path": "/tmp/x",
    "queue": "billing",
    "skill": "billing",
}


def value_for(field, depth, fill):
    t = field.type
    name = field.name
    if t == field.TYPE_STRING:
        if name in STRINGS:
            return STRINGS[name]
        if name.endswith("_id") or name == "id":
            return {"customer_id": "c-1", "ticket_id": "t-1", "agent_id": "a-1"}.get(name, "x-1")
        return "value"
    if t == field.TYPE_BYTES:
        return b"\x01\x02"
    if t == field.TYPE_BOOL:
        return True
    if t == field.TYPE_ENUM:
        vals = [v.number for v in field.enum_type.values if v.number != 0]
        return vals[0] if vals else 0
    if t in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
        return 0.5
    if t == field.TYPE_MESSAGE:
        return None
    if "page_size" in name:
        return 2
    if name.endswith("_ms"):
        return 60000
    return 3


def fill(msg, depth):
    for field in msg.DESCRIPTOR.fields:
        if field.type == field.TYPE_MESSAGE:
            if depth >= 3 or field.message_type.GetOptions().map_entry:
                continue
            if field.label == field.LABEL_REPEATED:
                fill(getattr(msg, field.name).add(), depth + 1)
            else:
                fill(getattr(msg, field.name), depth + 1)
            continue
        v = value_for(field, depth, fill)
        if field.label == field.LABEL_REPEATED:
            getattr(msg, field.name).append(v)
        else:
            setattr(msg, field.name, v)


def main():
    protoset, out = sys.argv[1], sys.argv[2]
    fds = descriptor_pb2.FileDescriptorSet()
    with open(protoset, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    with open(os.path.join(ROOT, "server", "methods.c")) as f:
        table = f.read()
    # Rows in table order: the request type is the second macro argument.
    rows = re.findall(r'\n\s*(RPC|WRITE|BIDI|HEALTH)\("(/[^"]+)"', table)
    os.makedirs(out, exist_ok=True)
    n = 0
    for i, (kind, path) in enumerate(rows):
        service, method = path[1:].split("/")
        sd = pool.FindServiceByName(service)
        md = sd.FindMethodByName(method)
        cls = message_factory.GetMessageClass(md.input_type) if hasattr(message_factory, "GetMessageClass") \
            else message_factory.MessageFactory(pool).GetPrototype(md.input_type)
        empty = cls()
        full = cls()
        fill(full, 0)
        for role in (0, 0x80):
            for m in (empty, full):
                data = bytes([i | role]) + m.SerializeToString()
                name = "seed-%s-%s" % (method, hashlib.sha1(data).hexdigest()[:10])
                with open(os.path.join(out, name), "wb") as f:
                    f.write(data)
                n += 1
    print("%d seeds for %d methods" % (n, len(rows)))


if __name__ == "__main__":
    main()
