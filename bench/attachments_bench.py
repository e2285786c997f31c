"""attachments_bench.py: what storing attachments in helpwired costs (run it
through bench/attachments_bench.sh, which builds helpwired --config=opt).
grpcio (Debian's python3-grpcio) and the standard library.

For each size (SIZES, bytes) COUNT_<size> files of random bytes are
uploaded through the real server (PutChunk pieces of PIECE bytes, then
CommitAttachment: the store's design, content-addressed pieces in LMDB,
one group commit with fsync per write) and, in the same run and on the
same file system, written as plain files with one fsync per file (the
"outside LMDB" design's floor: no metadata, no replication, no hashing).
Both are timed end to end on the client; MB/s and their ratio are
printed. Then Route p99 with no upload running (idle) and while one client
uploads 10 MiB files back to back (busy), from a second client sending
Route calls one after another, and their ratio.

Prints Markdown on stdout, progress on stderr."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import hwclient  # noqa: E402

E = os.environ
SERVER = E["SERVER"]
PROTOSET = E["PROTOSET"]
SIZES = [int(s) for s in E.get("SIZES", "65536 1048576 10485760").split()]
PIECE = int(E.get("PIECE", str(256 << 10)))  # the bridges' piece (HW_ATT_CHUNK_BYTES)
ROUTE_N = int(E.get("ROUTE_N", "400"))
TMP = E.get("BENCH_TMP") or tempfile.gettempdir()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def count_for(size):
    return int(E.get("COUNT_%d" % size, str(max(4, (48 << 20) // size))))


API = hwclient.Api(PROTOSET)


def upload(client, data):
    return hwclient.upload_attachment(client, data, piece=PIECE, kind="ATTACHMENT_KIND_DOCUMENT")


def files_baseline(blobs, d):
    t0 = time.perf_counter()
    for i, b in enumerate(blobs):
        fd = os.open(os.path.join(d, "%d.bin" % i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(b)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
    dfd = os.open(d, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    return time.perf_counter() - t0


def pctl(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def route_latencies(client, n, tag):
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        client.call("helpwire.v1.Router/Route", channel="CHANNEL_TELEGRAM", channelUserId="%s-%d" % (tag, i % 50),
                    displayName="Bench", text="where is my order %d" % i, messageId="%s-%d" % (tag, i))
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def main():
    data_dir = tempfile.mkdtemp(prefix="hw-att-bench-", dir=TMP)
    files_dir = tempfile.mkdtemp(prefix="hw-att-files-", dir=TMP)
    server = None
    try:
        hwclient.helpwired_binary = lambda: SERVER  # the --config=opt build
        server = hwclient.Server("--demo", "--sender-rate", "0", "--new-customers-rate", "0",
                                 "--attachment-max-bytes", str(max(SIZES) + 1), data_dir=data_dir)
        bridge = server.client(api=API, role="bridge")
        rows = []
        for size in SIZES:
            n = count_for(size)
            blobs = [os.urandom(size) for _ in range(n)]
            upload(bridge, os.urandom(size))  # warm-up (connections, map growth)
            t0 = time.perf_counter()
            for b in blobs:
                upload(bridge, b)
            t_srv = time.perf_counter() - t0
            t_files = files_baseline(blobs, files_dir)
            for f in os.listdir(files_dir):
                os.unlink(os.path.join(files_dir, f))
            mb = n * size / 1e6
            rows.append((size, n, mb / t_srv, mb / t_files, n / t_srv, n / t_files))
            log("size %d: %d files, helpwired %.1f MB/s, files+fsync %.1f MB/s" % (size, n, mb / t_srv, mb / t_files))

        # Route p99: idle, then while uploads of 10 MiB files run back to back.
        router = server.client(api=API, role="bridge")
        route_latencies(router, 50, "warm")
        idle = route_latencies(router, ROUTE_N, "idle")
        stop = threading.Event()
        uploaded = [0]

        def uploader():
            c = server.client(api=API, role="bridge")
            try:
                while not stop.is_set():
                    upload(c, os.urandom(10 << 20))
                    uploaded[0] += 1
            finally:
                c.close()

        th = threading.Thread(target=uploader)
        th.start()
        time.sleep(0.5)
        busy = route_latencies(router, ROUTE_N, "busy")
        stop.set()
        th.join()
        du = subprocess.run(["du", "-sb", data_dir], capture_output=True, text=True).stdout.split()[0]

        print("| file size | files | helpwired MB/s | files + fsync MB/s | ratio | helpwired files/s | files + fsync files/s |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for size, n, a, b, fa, fb in rows:
            label = "%d KiB" % (size // 1024) if size < (1 << 20) else "%d MiB" % (size >> 20)
            print("| %s | %d | %.1f | %.1f | %.2f | %.1f | %.1f |" % (label, n, a, b, a / b, fa, fb))
        print()
        print("| Route (sequential, one client) | p50 ms | p99 ms | calls |")
        print("|---|---:|---:|---:|")
        print("| idle | %.2f | %.2f | %d |" % (pctl(idle, 0.5), pctl(idle, 0.99), len(idle)))
        print("| while 10 MiB uploads run (%d uploaded) | %.2f | %.2f | %d |" % (
            uploaded[0], pctl(busy, 0.5), pctl(busy, 0.99), len(busy)))
        print()
        print("Route p99 busy / idle: %.2f. Store size after the run: %.1f MiB (data.mdb)." % (
            pctl(busy, 0.99) / pctl(idle, 0.99), int(du) / (1 << 20)))
        bridge.close()
        router.close()
    finally:
        if server:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(files_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
