#!/usr/bin/python3
"""helpwire from Python with grpcio and generated code: watches the ticket
events (Tickets.WatchTickets), routes a question the FAQ answers and a
message that opens a ticket (Router.Route), and prints the ticket's
CREATED event from the watch.

Generate the code first (README.md beside this file), then:
  PYTHONPATH=gen/py python3 clients/examples/python/helpwire_example.py [ADDRESS [TOKEN]]
ADDRESS defaults to $HELPWIRE_ADDRESS, else 127.0.0.1:50051; TOKEN to
$HELPWIRE_TOKEN (the admin token may do both calls; otherwise a bridge
token, with an agent token in $HELPWIRE_AGENT_TOKEN for the watch).
Prints "route: ...", "route: ...", "event: ..."; exit status 0 when the
event came, 1 with "error: CODE message" otherwise."""
import os
import queue
import sys
import threading
import time

import grpc

from helpwire.v1 import common_pb2, router_pb2, router_pb2_grpc, tickets_pb2, tickets_pb2_grpc

DEADLINE_S = 10


def main(argv):
    address = argv[1] if len(argv) > 1 else os.environ.get("HELPWIRE_ADDRESS", "127.0.0.1:50051")
    token = argv[2] if len(argv) > 2 else os.environ.get("HELPWIRE_TOKEN", "")
    agent_token = os.environ.get("HELPWIRE_AGENT_TOKEN") or token
    if not token:
        print("usage: helpwire_example.py [ADDRESS [TOKEN]] (or HELPWIRE_TOKEN)", file=sys.stderr)
        return 2

    with grpc.insecure_channel(address) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        tickets = tickets_pb2_grpc.TicketsStub(channel)
        auth = [("authorization", "Bearer " + token)]
        agent_auth = [("authorization", "Bearer " + agent_token)]

        # The watch first; its headers mean the server has it.
        watch = tickets.WatchTickets(tickets_pb2.WatchTicketsRequest(), metadata=agent_auth,
                                     timeout=DEADLINE_S)
        watch.initial_metadata()
        events = queue.Queue()

        def read():
            try:
                for ev in watch:
                    events.put(ev)
            except grpc.RpcError as e:
                events.put(e)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            return route_and_wait(router, auth, events)
        finally:
            # Cancel the watch and let the reader see it end before the
            # channel closes: no thread is inside grpc when the process exits.
            watch.cancel()
            reader.join(DEADLINE_S)


def route_and_wait(router, auth, events):
    """Routes the two messages and waits for the ticket's CREATED event."""
    # A customer of this run only, so the second message opens a ticket.
    user = "example-python-%d-%d" % (os.getpid(), time.time_ns())
    for n, text in enumerate(["How do I reset my password?", "The app shows error 4411 when I log in"]):
        reply = router.Route(router_pb2.RouteRequest(
            channel=common_pb2.CHANNEL_WEBCHAT, channel_user_id=user, display_name="Example",
            text=text, message_id="%s-%d" % (user, n), locale="en"), metadata=auth, timeout=DEADLINE_S)
        action = router_pb2.RouteAction.Name(reply.action)
        if reply.ticket_id:
            print("route: %s ticket=%s queue=%s" % (action, reply.ticket_id, reply.queue))
        else:
            print("route: %s %s" % (action, reply.reply_text))
    ticket_id = reply.ticket_id

    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        try:
            ev = events.get(timeout=end - time.monotonic())
        except queue.Empty:
            break
        if isinstance(ev, grpc.RpcError):
            raise ev
        if ev.ticket_id == ticket_id and ev.kind == tickets_pb2.TICKET_EVENT_KIND_CREATED:
            print("event: %s ticket=%s queue=%s%s" % (
                tickets_pb2.TicketEventKind.Name(ev.kind), ev.ticket_id, ev.ticket.queue,
                " cursor=" + ev.cursor if ev.cursor else ""))
            return 0
    print("error: no CREATED event for %s within %d s" % (ticket_id or "the ticket", DEADLINE_S))
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except grpc.RpcError as e:
        print("error: %s %s" % (e.code().name, e.details()))
        sys.exit(1)
