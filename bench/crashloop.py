"""crashloop.py: kill -9 under mixed writes, restart, and every
acknowledged write must be there (issue 24). Run it through
bench/crashloop.sh, which builds the binaries.

One helpwired --demo (per-sender limits off: every Route here is a new
sender, on purpose) on one store for all rounds. Per round:
  1. start helpwired on the store (the time to listening is recorded);
  2. check every write acknowledged in the round before (see below);
  3. --threads writer threads, each with its own customers and tickets
     (so no two threads race on one ticket), write: Route from a new
     sender (a new customer and ticket), CreateTicket for one of its
     customers (idempotency key), AddMessage (an agent reply) and
     CloseTicket on one of its open tickets; a write is acknowledged when
     its OK reply arrived, and recorded with what it returned;
  4. after a random time in [--kill-min, --kill-max] s, SIGKILL.
Check of an acknowledged write, after the restart: its ticket is there
(GetTicket) with the number it was given; a Route's ticket belongs to the
customer returned; an AddMessage's message id is among the ticket's
messages; a closed ticket is CLOSED; and a retry is recognised: Route with
the same message id answers duplicate with the same ticket, CreateTicket
with the same key answers replayed with the same ticket.
At the end (after the last kill): one more restart, every acknowledged write
of every round checked again, a clean SIGTERM stop (status 0).

Prints Markdown on stdout (acknowledged / found / lost, per kind; restart
times), progress on stderr. Exit 0 when nothing is lost and the server
always started, 1 otherwise, 2 on a setup error.
--inject-lost N records N acknowledgements of writes never made (ticket ids
that do not exist): the check must count them lost (a test of the check).
"""

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

import cluster_bench as cb
import cluster_fault as cf
import grpc

log = cb.log
TEXT = "My invoice shows a double charge and I need a refund for order %s"


class Round:
    def __init__(self):
        self.lock = threading.Lock()
        self.acks = []  # dicts: kind, ticket_id, ...
        self.errors = []  # (kind, code, details) of calls that failed before the kill
        self.in_flight_at_kill = 0
        self.stop = threading.Event()
        self.t_kill = None


def writer(rd, node, token, tid, rnum, owned):
    """owned: this thread's customers and open tickets, kept across rounds
    (only acknowledged ones)."""
    conns = cf.Conns([node], token)
    rnd = random.Random("%d-%d" % (rnum, tid))
    seq = 0
    try:
        while not rd.stop.is_set():
            seq += 1
            key = "cl-%d-%d-%d" % (rnum, tid, seq)
            r = rnd.random()
            if not owned["customers"] or r < 0.35:
                kind, path = "Route", "helpwire.v1.Router/Route"
                fields = {"channel": "CHANNEL_TELEGRAM", "channelUserId": key, "displayName": "Crash " + key,
                          "text": TEXT % key, "messageId": key}
            elif r < 0.55:
                kind, path = "CreateTicket", "helpwire.v1.Tickets/CreateTicket"
                fields = {"customerId": rnd.choice(owned["customers"]), "text": TEXT % key, "subject": key,
                          "idempotencyKey": key, "channel": "CHANNEL_TELEGRAM"}
            elif owned["open"] and r < 0.85:
                kind, path = "AddMessage", "helpwire.v1.Tickets/AddMessage"
                fields = {"ticketId": rnd.choice(owned["open"]), "kind": "MESSAGE_KIND_AGENT_REPLY",
                          "text": "reply " + key}
            elif owned["open"]:
                kind, path = "CloseTicket", "helpwire.v1.Tickets/CloseTicket"
                fields = {"ticketId": owned["open"][0], "resolution": "solved " + key, "skipSurvey": True}
            else:
                continue
            try:
                resp, _ = conns.call(0, path, 5.0, **fields)
            except grpc.RpcError as e:
                with rd.lock:
                    if rd.t_kill is not None or rd.stop.is_set():
                        rd.in_flight_at_kill += 1
                        if kind == "CloseTicket":  # closed or not: no longer this thread's to write to
                            owned["open"].remove(fields["ticketId"])
                    else:
                        rd.errors.append((kind, e.code().name, (e.details() or "")[:200]))
                if rd.stop.is_set():
                    return
                time.sleep(0.05)
                continue
            a = {"kind": kind, "key": key, "round": rnum}
            if kind == "Route":
                a.update(ticket_id=resp.ticket_id, number=resp.ticket_number, customer_id=resp.customer_id)
                if resp.ticket_id:
                    owned["customers"].append(resp.customer_id)
                    owned["open"].append(resp.ticket_id)
            elif kind == "CreateTicket":
                a.update(ticket_id=resp.ticket.id, number=resp.ticket.number, customer_id=fields["customerId"])
                owned["open"].append(resp.ticket.id)
            elif kind == "AddMessage":
                a.update(ticket_id=fields["ticketId"], message_id=resp.message.id)
            else:
                a.update(ticket_id=fields["ticketId"], number=resp.ticket.number)
                owned["open"].remove(fields["ticketId"])
            with rd.lock:
                rd.acks.append(a)
    finally:
        conns.close()


def ticket_view(conns, ticket_id):
    """(ticket, {message ids}) or (None, None) when it is not there."""
    try:
        resp, _ = conns.call(0, "helpwire.v1.Tickets/GetTicket", 30.0, ticketId=ticket_id, includeMessages=True,
                             messagesPageSize=500)
    except grpc.RpcError as e:
        if e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return None, None
        raise
    ids = {m.id for m in resp.messages}
    page = resp.next_messages_page_token
    while page:
        more, _ = conns.call(0, "helpwire.v1.Tickets/GetTicket", 30.0, ticketId=ticket_id, includeMessages=True,
                             messagesPageSize=500, messagesPageToken=page)
        ids |= {m.id for m in more.messages}
        page = more.next_messages_page_token
    return resp.ticket, ids


def status_name(conns, number):
    return conns.api.pool.FindEnumTypeByName("helpwire.v1.TicketStatus").values_by_number[number].name


def check(node, token, acks, retries=True):
    """Checks acknowledged writes against the running server. Returns
    (found, lost examples list, lost count per kind)."""
    conns = cf.Conns([node], token)
    views = {}
    found = 0
    lost = {}
    examples = []
    try:
        for a in acks:
            tid = a["ticket_id"]
            if tid not in views:
                views[tid] = ticket_view(conns, tid)
            t, msgs = views[tid]
            why = None
            if t is None:
                why = "ticket not found"
            elif a.get("number") and t.number != a["number"]:
                why = "ticket number %d, acknowledged %d" % (t.number, a["number"])
            elif a["kind"] in ("Route", "CreateTicket") and t.customer_id != a["customer_id"]:
                why = "customer %s, acknowledged %s" % (t.customer_id, a["customer_id"])
            elif a["kind"] == "AddMessage" and a["message_id"] not in msgs:
                why = "message %s not on the ticket" % a["message_id"]
            elif a["kind"] == "CloseTicket" and status_name(conns, t.status) != "TICKET_STATUS_CLOSED":
                why = "status %s, acknowledged closed" % status_name(conns, t.status)
            elif retries and a["kind"] == "Route":
                r, _ = conns.call(0, "helpwire.v1.Router/Route", 10.0, channel="CHANNEL_TELEGRAM",
                                  channelUserId=a["key"], displayName="Crash " + a["key"], text=TEXT % a["key"],
                                  messageId=a["key"])
                if not r.duplicate or r.ticket_id != tid:
                    why = "a retry of the Route was not recognised (duplicate %s, ticket %s)" % (r.duplicate,
                                                                                                r.ticket_id)
            elif retries and a["kind"] == "CreateTicket":
                r, _ = conns.call(0, "helpwire.v1.Tickets/CreateTicket", 10.0, customerId=a["customer_id"],
                                  text=TEXT % a["key"], subject=a["key"], idempotencyKey=a["key"],
                                  channel="CHANNEL_TELEGRAM")
                if not r.replayed or r.ticket.id != tid:
                    why = "a retry of the CreateTicket was not recognised (replayed %s, ticket %s)" % (
                        r.replayed, r.ticket.id)
            if why is None:
                found += 1
            else:
                lost[a["kind"]] = lost.get(a["kind"], 0) + 1
                if len(examples) < 10:
                    examples.append("round %d %s %s (%s): %s" % (a["round"], a["kind"], a["key"], tid, why))
    finally:
        conns.close()
    return found, examples, lost


def start(node):
    t = time.monotonic()
    node.start()
    node.wait_listening(120)
    end = time.monotonic() + 10
    while "admin" not in node.tokens and time.monotonic() < end:
        time.sleep(0.02)
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--threads", type=int, default=3)
    ap.add_argument("--kill-min", type=float, default=0.3)
    ap.add_argument("--kill-max", type=float, default=2.5)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--inject-lost", type=int, default=0)
    ap.add_argument("--server-flags", default="")
    args = ap.parse_args()
    if not cb.SERVER or not cb.PROTOSET:
        log("crashloop.py: set SERVER and PROTOSET (or run bench/crashloop.sh)")
        return 2
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    work = tempfile.mkdtemp(prefix="helpwire-crashloop.", dir=os.environ.get("WORK_DIR"))
    node = cb.Node(work, "crash", extra=args.server_flags.split(), demo=True)
    owned = [{"customers": [], "open": []} for _ in range(args.threads)]
    all_acks = []
    totals = {"acked": 0, "found": 0, "lost": 0}
    lost_by_kind = {}
    examples = []
    start_s = []
    errors = []
    in_flight = 0
    kill_at = []
    failed_start = None
    try:
        prev = []
        for rnum in range(1, args.rounds + 2):  # the last start only checks
            try:
                start_s.append(start(node))
            except RuntimeError as e:
                failed_start = "round %d: %s" % (rnum, e)
                log("   " + failed_start)
                break
            token = node.tokens["admin"]
            if prev:
                found, ex, lost = check(node, token, prev)
                totals["found"] += found
                totals["lost"] += len(prev) - found
                for k, v in lost.items():
                    lost_by_kind[k] = lost_by_kind.get(k, 0) + v
                examples += ex
            if rnum > args.rounds:
                break
            rd = Round()
            ths = [threading.Thread(target=writer, args=(rd, node, token, t, rnum, owned[t]))
                   for t in range(args.threads)]
            for t in ths:
                t.start()
            delay = rng.uniform(args.kill_min, args.kill_max)
            time.sleep(delay)
            with rd.lock:
                rd.t_kill = time.monotonic()
            node.kill(signal.SIGKILL)
            node.proc.wait()
            rd.stop.set()
            for t in ths:
                t.join(30)
            kill_at.append(delay)
            if rnum == 1 and args.inject_lost:
                rd.acks += [{"kind": "Route", "key": "cl-phantom-%d" % i, "round": rnum,
                             "ticket_id": "tk-phantom-%d" % i, "number": 10 ** 9 + i, "customer_id": "cu-phantom"}
                            for i in range(args.inject_lost)]
            prev = rd.acks
            all_acks += rd.acks
            totals["acked"] += len(rd.acks)
            errors += rd.errors
            in_flight += rd.in_flight_at_kill
            log("   round %d: killed after %.2f s, %d writes acknowledged (%d in flight at the kill); "
                "restart took %.2f s; lost so far %d" % (rnum, delay, len(rd.acks), rd.in_flight_at_kill,
                                                        start_s[-1], totals["lost"]))
        # every round's writes once more, on the last start, then a clean stop
        final_found, final_ex, final_lost = (0, [], {})
        exit_code = None
        if failed_start is None and node.alive():
            final_found, final_ex, final_lost = check(node, node.tokens["admin"], all_acks, retries=False)
            exit_code = node.stop()
    finally:
        if node.alive():
            node.proc.kill()
            node.proc.wait()
    final_lost_n = len(all_acks) - final_found if failed_start is None else None
    by_kind = {}
    for a in all_acks:
        by_kind[a["kind"]] = by_kind.get(a["kind"], 0) + 1
    passed = (failed_start is None and totals["lost"] == 0 and final_lost_n == 0 and exit_code == 0
              and not errors)
    out = []
    out.append("%d rounds of kill -9 at a random moment (%.1f-%.1f s into the round's writes, seed %d), %d writer "
               "threads (Route from a new sender, CreateTicket, AddMessage, CloseTicket), helpwired restarted on the "
               "same store each time." % (args.rounds, args.kill_min, args.kill_max, seed, args.threads))
    out.append("")
    out.append("| | acknowledged | found | lost |")
    out.append("|---|---:|---:|---:|")
    out.append("| after the next restart | %d | %d | %d |" % (totals["acked"], totals["found"], totals["lost"]))
    out.append("| all again after the last restart | %d | %d | %s |" % (
        len(all_acks), final_found, final_lost_n if final_lost_n is not None else "-"))
    out.append("")
    out.append("Acknowledged by kind: %s; lost by kind: %s. Calls in flight at a kill (not acknowledged, not "
               "counted): %d. Calls failed before a kill: %d%s." % (
                   ", ".join("%s %d" % kv for kv in sorted(by_kind.items())),
                   ", ".join("%s %d" % kv for kv in sorted(lost_by_kind.items())) or "none", in_flight, len(errors),
                   (" (e.g. %s)" % errors[:3]) if errors else ""))
    if start_s:
        out.append("Start to listening after a kill -9 (recovery): min %.2f s, median %.2f s, max %.2f s (%d starts)."
                   % (min(start_s), cb.median(start_s), max(start_s), len(start_s)))
    out.append("Clean stop at the end (SIGTERM): exit status %s." % exit_code)
    if failed_start:
        out.append("**helpwired did not start**: %s" % failed_start)
    for ex in (examples + final_ex)[:10]:
        out.append("- lost: %s" % ex)
    out.append("")
    out.append("**%s**" % ("PASS" if passed else "FAIL"))
    print("\n".join(out))
    if passed and not os.environ.get("KEEP_WORK"):
        shutil.rmtree(work, ignore_errors=True)
    else:
        log("work dir kept: %s" % work)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
