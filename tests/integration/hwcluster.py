"""hwcluster: three replicated helpwired (raft) on loopback for the
cluster tests: start, stop, kill -9, pause (SIGSTOP), resume (SIGCONT) and
restart replicas on their data; find the leader; wait until every running
replica applied the same index; dump a stopped replica's store with
mdb_dump -a for comparison.

Replica states come from one function, Cluster.status(): Cluster/
GetClusterStatus when the server has it, else the replica's log lines
(event=replication msg="state leader, term T, leader N") and the trailing
helpwire-applied-index of a cheap read.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import grpc

import hwclient

TMP = os.environ.get("TEST_TMPDIR")
APPLIED = "helpwire-applied-index"
MIN_APPLIED = "helpwire-min-applied-index"
# Short reconnect backoff: a restarted replica is called again soon.
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]
STATE_RE = re.compile(r'event=replication msg="state (\w+), term (\d+), leader (\d+)"')
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def free_ports(n):
    """n distinct free loopback ports (all bound at once, then closed)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Client(hwclient.Client):
    """hwclient.Client with a short reconnect backoff, and calls that also
    return the trailing applied index."""

    def __init__(self, target, api, token):
        self.api = api
        self.channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.token = token
        self.target = target

    def call_applied(self, path, timeout=10, min_applied=None, **fields):
        """(reply, applied index from the trailers or None)."""
        req_cls, resp_cls, _ = self.api.method(path)
        request = req_cls()
        from google.protobuf import json_format
        json_format.ParseDict(fields, request)
        fn = self.channel.unary_unary("/" + path.lstrip("/"), request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=resp_cls.FromString)
        md = [(MIN_APPLIED, str(min_applied))] if min_applied else []
        reply, call = fn.with_call(request, timeout=timeout, metadata=self._md(md))
        return reply, trailing_applied(call)


def trailing_applied(call_or_error):
    try:
        for k, v in call_or_error.trailing_metadata() or ():
            if k == APPLIED:
                return int(v)
    except Exception:  # an error without trailers
        pass
    return None


class Replica:
    """One helpwired replica: its ports, data directory, process and log."""

    def __init__(self, cluster, rid, grpc_port, raft_port, data_dir):
        self.cluster = cluster
        self.id = rid
        self.grpc_port = grpc_port
        self.raft_port = raft_port
        self.address = "127.0.0.1:%d" % grpc_port
        self.raft_address = "127.0.0.1:%d" % raft_port
        self.data_dir = data_dir
        self.log_path = data_dir.rstrip("/") + ".log"
        self.proc = None
        self.paused = False
        self.starts = 0
        # Kills, stops and pauses so far: a call that saw this change was
        # not made to a surviving replica.
        self.interruptions = 0
        self.started_at = 0.0
        self.listening = False  # since wait_listening saw it listen
        self.stdout_lines = []
        self._cond = threading.Condition()
        self._reader = None

    # ---- process ----------------------------------------------------------

    def launch(self, *extra):
        """Starts the process (does not wait: see wait_listening)."""
        assert self.proc is None or self.proc.poll() is not None, "replica %d runs" % self.id
        self.starts += 1
        args = [hwclient.helpwired_binary(), "--data", self.data_dir, "--listen", self.address,
                "--cluster-id", str(self.id), "--cluster-raft", self.raft_address,
                "--cluster-peers", self.cluster.peers,
                "--cluster-election-ms", str(self.cluster.election_ms),
                "--cluster-heartbeat-ms", str(self.cluster.heartbeat_ms),
                # The load of these tests sends many messages per sender and
                # many new senders at once; per-sender limits are per node and
                # tested on their own (limits_test).
                "--sender-rate", "0", "--new-customers-rate", "0"]
        args += list(self.cluster.extra) + list(extra)
        if self.cluster.token_file and os.path.exists(self.cluster.token_file):
            args += ["--cluster-token-file", self.cluster.token_file]
        log = open(self.log_path, "ab")
        log.write(b"==== start %d: %s\n" % (self.starts, " ".join(args).encode()))
        log.flush()
        with self._cond:
            self.stdout_lines = []
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log)
        log.close()
        self.paused = False
        self.listening = False
        self.started_at = time.time()
        self._reader = threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True)
        self._reader.start()

    def _read_stdout(self, proc):
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            with self._cond:
                self.stdout_lines.append(line)
                self._cond.notify_all()
            if line.startswith("helpwired token "):
                _, _, role, secret = line.split()[:4]
                self.cluster.note_token(role, secret)
        proc.stdout.close()
        with self._cond:
            self._cond.notify_all()

    def wait_listening(self, timeout=60):
        """Waits for "helpwired listening on"; raises with the log if the
        process ends or the time runs out first."""
        deadline = time.time() + timeout
        with self._cond:
            while True:
                if any(l.startswith("helpwired listening on ") for l in self.stdout_lines):
                    self.listening = True
                    return
                if self.proc.poll() is not None or time.time() >= deadline:
                    break
                self._cond.wait(0.2)
        raise RuntimeError("replica %d did not start (rc %s):\n%s" % (self.id, self.proc.poll(),
                                                                       self.read_log()[-6000:]))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def up(self):
        """Listening, running and not paused: expected to answer."""
        return self.listening and self.running() and not self.paused

    def kill(self, sig=signal.SIGKILL):
        """kill -9 (or another signal) and wait for the process to end."""
        self.interruptions += 1
        self.listening = False
        if self.paused and sig != signal.SIGKILL:
            self.resume()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        self.paused = False
        return rc

    def stop(self):
        """SIGTERM; returns the exit status (0 for a clean stop)."""
        if not self.running():
            return self.proc.returncode if self.proc else 0
        return self.kill(signal.SIGTERM)

    def pause(self):
        self.interruptions += 1
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self, *extra, timeout=60):
        self.launch(*extra)
        self.wait_listening(timeout)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_state(self):
        """(state, term, leader id) of the last state line of the current
        start's log, or None."""
        text = self.read_log()
        text = text[text.rfind("==== start "):]
        found = STATE_RE.findall(text)
        if not found:
            return None
        state, term, leader = found[-1]
        return state, int(term), int(leader)

    # ---- calls -------------------------------------------------------------

    def client(self, role="admin", token=None):
        return Client(self.address, self.cluster.api, token if token is not None else self.cluster.tokens.get(role))

    def dump(self, timeout=120):
        """mdb_dump -a of the store (the replica must be stopped or paused:
        LMDB readers need no lock the writer holds)."""
        assert not self.running() or self.paused, "dump a stopped or paused replica"
        out = subprocess.run(["mdb_dump", "-a", self.data_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError("mdb_dump -a %s: %s" % (self.data_dir, out.stderr.decode()))
        return out.stdout


class Cluster:
    """n replicas with fresh data directories (or data_dirs), started
    together; tokens are the --demo tokens the first leader printed."""

    def __init__(self, n=3, extra=("--demo",), data_dirs=None, election_ms=1000, heartbeat_ms=100, api=None):
        self.api = api or hwclient.Api()
        self.extra = list(extra)
        self.election_ms = election_ms
        self.heartbeat_ms = heartbeat_ms
        self.tokens = {}
        self._tokens_cond = threading.Condition()
        self.status_rpc = None  # None: unknown yet; True/False: GetClusterStatus answers
        ports = free_ports(2 * n)
        self.root = tempfile.mkdtemp(prefix="hw-cluster-", dir=TMP)
        self.token_file = os.path.join(self.root, "admin-token")
        self.replicas = []
        for i in range(n):
            d = data_dirs[i] if data_dirs and data_dirs[i] else os.path.join(self.root, "r%d" % (i + 1))
            self.replicas.append(Replica(self, i + 1, ports[2 * i], ports[2 * i + 1], d))
        self.peers = ",".join("%d=%s@%s" % (r.id, r.raft_address, r.address) for r in self.replicas)

    def __getitem__(self, rid):
        """Replica by id (1-based)."""
        return self.replicas[rid - 1]

    def note_token(self, role, secret):
        with self._tokens_cond:
            self.tokens.setdefault(role, secret)
            if role == "admin" and not os.path.exists(self.token_file):
                with open(self.token_file, "w") as f:
                    f.write(secret + "\n")
            self._tokens_cond.notify_all()

    def start(self, timeout=60):
        """Starts every replica at once (each waits for a leader before it
        listens), waits for them and for the demo tokens."""
        for r in self.replicas:
            r.launch()
        for r in self.replicas:
            r.wait_listening(timeout)
        deadline = time.time() + timeout
        with self._tokens_cond:
            while not all(k in self.tokens for k in ("admin", "bridge")) and time.time() < deadline:
                self._tokens_cond.wait(0.2)
        if "admin" not in self.tokens:
            raise RuntimeError("no replica printed the demo tokens:\n" +
                               "\n".join(r.read_log()[-3000:] for r in self.replicas))
        return self

    def stop(self):
        """SIGTERM to every running replica (a paused one is resumed first);
        returns {id: exit status}."""
        for r in self.replicas:
            if r.running():
                if r.paused:
                    r.resume()
                r.interruptions += 1
                r.listening = False
                r.proc.send_signal(signal.SIGTERM)
        rcs = {}
        for r in self.replicas:
            if r.proc is not None:
                rcs[r.id] = r.stop()
        return rcs

    def close(self):
        """For cleanups: nothing left running."""
        for r in self.replicas:
            if r.running():
                r.kill()

    # ---- state -------------------------------------------------------------

    def status(self, replica, timeout=3):
        """The replica's view as a dict: state ("leader", "follower",
        "candidate", "unavailable"), term, leader_id, applied_index (None
        when unknown); None when the replica does not answer. The one place
        that knows where states come from."""
        c = replica.client()
        try:
            if self.status_rpc is not False:
                try:
                    st = c.call("helpwire.v1.Cluster/GetClusterStatus", timeout=timeout)
                    self.status_rpc = True
                    name = self.api.pool.FindEnumTypeByName("helpwire.v1.RaftState").values_by_number[st.state].name
                    return {"state": name.replace("RAFT_STATE_", "").lower(), "term": st.term,
                            "leader_id": st.leader_id, "applied_index": st.applied_index}
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                        return None
                    self.status_rpc = False
            try:
                applied = self.applied_index(replica, client=c, timeout=timeout)
            except grpc.RpcError:
                return None
            ls = replica.log_state()
            if ls is None:
                return {"state": "unavailable", "term": 0, "leader_id": 0, "applied_index": applied}
            return {"state": ls[0], "term": ls[1], "leader_id": ls[2], "applied_index": applied}
        finally:
            c.close()

    def applied_index(self, replica, client=None, timeout=3):
        """The replica's applied index, from the trailers of a cheap read."""
        c = client or replica.client()
        try:
            _, applied = c.call_applied("helpwire.v1.Tickets/ListTickets", pageSize=1, timeout=timeout)
            return applied
        finally:
            if client is None:
                c.close()

    def leader(self, timeout=30, exclude=()):
        """The replica that leads, as the up replicas see it: one that says
        it leads with the highest term, confirmed by a majority of the up
        replicas naming it. Waits up to timeout; raises if none."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            views = {r.id: self.status(r) for r in self.replicas if r.up() and r.id not in exclude}
            last = views
            leaders = [(v["term"], rid) for rid, v in views.items() if v and v["state"] == "leader"]
            if leaders:
                term, rid = max(leaders)
                agree = sum(1 for v in views.values() if v and v["leader_id"] == rid and v["term"] == term)
                if agree * 2 > len(self.replicas):
                    return self[rid]
            time.sleep(0.1)
        raise AssertionError("no leader within %ss; views: %s" % (timeout, last))

    def writable(self, replica, timeout=3):
        """The health service helpwire.v1.Writes is SERVING on the replica
        (it leads, or knows the leader)."""
        name = b"helpwire.v1.Writes"
        c = replica.client()
        try:
            reply = c.raw("grpc.health.v1.Health/Check", b"\x0a" + bytes([len(name)]) + name, timeout=timeout)
            return reply == b"\x08\x01"
        except grpc.RpcError:
            return False
        finally:
            c.close()

    def wait_converged(self, timeout=60, settle=0.5):
        """Waits until every up replica reports the same applied index, at
        least the highest any of them reported at the start, twice in a row
        settle seconds apart. Returns that index."""
        deadline = time.time() + timeout
        target = 0
        last = None
        previous = None
        while time.time() < deadline:
            seen = {}
            for r in self.replicas:
                if r.up():
                    try:
                        seen[r.id] = self.applied_index(r)
                    except grpc.RpcError:
                        seen[r.id] = None
            last = seen
            values = set(seen.values())
            if len(values) == 1 and None not in values:
                (index,) = values
                if index >= target and previous == index:
                    return index
                previous = index
                target = max(target, index)
                time.sleep(settle)
                continue
            previous = None
            target = max([target] + [v for v in values if v is not None])
            time.sleep(0.1)
        raise AssertionError("replicas did not converge within %ss: %s" % (timeout, last))

    def frozen_dumps(self, attempts=20):
        """Dumps of every replica taken at one applied index: waits until
        they converge, pauses all three at once (SIGSTOP) and dumps them;
        when one applied an entry the others had not yet (a timer firing on
        the leader), resumes them and tries again. A replica stopped one by
        one could miss the leader's last entries, so a dump after a clean
        stop is not comparable. Returns {id: comparable_dump}."""
        last = None
        for _ in range(attempts):
            self.wait_converged()
            for r in self.replicas:
                if r.running():
                    r.pause()
            try:
                dumps = {r.id: comparable_dump(r.dump(timeout=20)) for r in self.replicas}
            finally:
                for r in self.replicas:
                    if r.paused:
                        r.resume()
            indexes = {rid: applied_in_dump(d) for rid, d in dumps.items()}
            if len(set(indexes.values())) == 1:
                return dumps
            last = indexes
            time.sleep(0.3)
        raise AssertionError("replicas never stood at one applied index when paused: %s" % last)

    def dumps(self):
        """{id: comparable_dump(mdb_dump -a output)} of every (stopped)
        replica."""
        return {r.id: comparable_dump(r.dump()) for r in self.replicas}

    def logs(self, tail=4000):
        return "\n".join("--- replica %d (%s)\n%s" % (r.id, r.log_path, r.read_log()[-tail:]) for r in self.replicas)


SCHEMA_KEY = " " + b"schema".hex()


def comparable_dump(dump):
    """An mdb_dump -a output with the one record that is each replica's
    own blanked: the "meta" database's schema record, which holds when
    that replica's data.mdb was created (written at the first open, not
    replicated). Everything else must be the same on every replica."""
    out, db, blank_next = [], None, False
    for line in dump.split(b"\n"):
        if line.startswith(b"database="):
            db = line[len(b"database="):]
        if line.startswith(b"mapsize="):
            continue  # each replica's map grows on its own
        if blank_next:
            line, blank_next = b" <this replica's schema record>", False
        elif db == b"meta" and line == SCHEMA_KEY.encode():
            blank_next = True
        out.append(line)
    return b"\n".join(out)


APPLIED_KEY = " " + b"repl_applied_index".hex()


def applied_in_dump(dump):
    """The applied index a (comparable) dump's meta database records."""
    lines = dump.split(b"\n")
    for i, line in enumerate(lines):
        if line == APPLIED_KEY.encode() and i + 1 < len(lines):
            return int(lines[i + 1].strip(), 16)
    return 0


def first_difference(a, b, context=3):
    """The first differing line of two dumps, with a little context."""
    la, lb = a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines()
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else "<end>"
        y = lb[i] if i < len(lb) else "<end>"
        if x != y:
            lo = max(0, i - context)
            return "line %d:\n  %s\n  <<< %s\n  >>> %s" % (i + 1, "\n  ".join(la[lo:i]), x, y)
    return None
