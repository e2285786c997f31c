"""hwcall: one helpwire.v1 call from the command line, JSON in and out.

  /usr/bin/python3 tests/integration/hwcall.py ADDR Service/Method 'JSON' [--token T]

e.g. hwcall.py 127.0.0.1:50051 grpc.health.v1.Health/Check '{}'
Streaming methods print one JSON object per message.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402

import hwclient  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("address")
    p.add_argument("method", help="e.g. helpwire.v1.Router/Route")
    p.add_argument("json", nargs="?", default="{}")
    p.add_argument("--token", default=os.environ.get("HELPWIRE_TOKEN"))
    p.add_argument("--timeout", type=float, default=10)
    a = p.parse_args()
    import json

    client = hwclient.Client(a.address, token=a.token)
    fields = json.loads(a.json)
    try:
        _, _, streaming = client.api.method(a.method)
        if streaming:
            for msg in client.stream(a.method, timeout=a.timeout, **fields):
                print(json_format.MessageToJson(msg, ensure_ascii=False, indent=None), flush=True)
        else:
            reply = client.call(a.method, timeout=a.timeout, **fields)
            print(json_format.MessageToJson(reply, ensure_ascii=False))
    except grpc.RpcError as e:
        print("error: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
