"""`kanal deliveries`: operators' commands for the outbox, over gRPC to a running server.

    kanal deliveries list [--state failed ...] [--document ID] [--dead-letter] [--limit N]
    kanal deliveries show DELIVERY_ID      # states, events and attempts in the provider's words
    kanal deliveries retry DELIVERY_ID     # send a failed/bounced/expired/suppressed one again
    kanal deliveries cancel DELIVERY_ID    # stop a queued one (no fallback)

Like `kanal print`, it talks to `kanal serve` (server/client.py: ``--address``, ``--key``,
``--timeout``; errors in one line): list and show need a `producer`, `service` or `admin`
key of the tenant, retry and cancel an `admin` key.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from server.client import add_connection_options, connect, whole_number
from server.delivery.model import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, State


def add_parser(commands: Any) -> None:
    p = commands.add_parser("deliveries", help="deliveries: list, show, retry, cancel")
    add_connection_options(p)
    sub = p.add_subparsers(dest="deliveries_command", required=True)
    s = sub.add_parser("list", help="the tenant's deliveries, newest first")
    s.add_argument("--state", action="append", default=[], choices=[x.value for x in State],
                   help="only deliveries in this state (repeatable; default: all)")
    s.add_argument("--document", default="", help="only this document's deliveries")
    s.add_argument("--dead-letter", action="store_true", help="only dead letters")
    s.add_argument("--limit", type=whole_number(1, MAX_PAGE_SIZE), default=DEFAULT_PAGE_SIZE,
                   help=f"at most this many, 1..{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})")
    s.add_argument("--page-token", default="",
                   help="the next page: the token the previous page printed")
    add_connection_options(s, nested=True)
    for name, text in (("show", "one delivery with its events and attempts"),
                       ("retry", "send a delivery that failed for good again now (admin key)"),
                       ("cancel", "stop a queued delivery (admin key)")):
        s = sub.add_parser(name, help=text)
        s.add_argument("delivery_id", help="a delivery id from `kanal deliveries list`")
        add_connection_options(s, nested=True)
    p.set_defaults(run=run)


def _ts(value: Any) -> str:
    return value.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if value.seconds else "-"


def _name(pb: Any, state: int) -> str:
    return pb.DeliveryState.Name(state).removeprefix("DELIVERY_STATE_").lower()


def _channel(value: int) -> str:
    from kanal.v1 import common_pb2

    return common_pb2.Channel.Name(value).removeprefix("CHANNEL_").lower()


def _brief(reason: str, width: int = 80) -> str:
    """A delivery's reason on one listing line: its start, or when fallbacks were skipped
    (server.delivery.fallback: "<failure>; email fallback skipped: <why>; ...") the last
    step, what an operator needs to know first; `show` prints the whole of it."""
    _, sep, last = reason.rpartition("; ")
    if sep and " fallback skipped: " in last:
        reason = "…" + last
    return reason[:width]


def show(pb: Any, d: Any) -> None:
    print(f"delivery  {d.delivery_id}\ndocument  {d.document_id}  customer {d.customer_id}\n"
          f"channel   {_channel(d.channel)} via {d.provider or '-'}\n"
          f"state     {_name(pb, d.state)} since {_ts(d.state_at)}"
          f"{'  (dead letter)' if d.dead_letter else ''}\n"
          f"reason    {d.reason}\nmessage   {d.message_id}  provider id "
          f"{d.provider_message_id or '-'}")
    if d.fallback_of:
        print(f"replaces  {d.fallback_of}")
    if d.fallbacks:
        print(f"fallbacks {', '.join(_channel(c) for c in d.fallbacks)}")
    print("events:")
    for e in d.events:
        print(f"  {e.event_id:>8}  {_ts(e.at)}  {_name(pb, e.state):10} {e.reason}")
    print("attempts:")
    for a in d.attempt_log:
        print(f"  {a.number:>3}  {_ts(a.started_at)} -> {_ts(a.finished_at)}  "
              f"{a.outcome or 'running':12} {a.reason}")


def run(args: argparse.Namespace) -> int:
    from kanal.v1 import deliveries_pb2 as pb
    from kanal.v1 import deliveries_pb2_grpc

    command = args.deliveries_command
    role = "admin" if command in ("retry", "cancel") else "producer"
    with connect(args, role) as (channel, where):
        stub = deliveries_pb2_grpc.DeliveriesStub(channel)
        call = {"metadata": where.metadata, "timeout": where.timeout}
        if command == "list":
            response = stub.ListDeliveries(pb.ListDeliveriesRequest(
                states=[pb.DeliveryState.Value(f"DELIVERY_STATE_{s.upper()}")
                        for s in args.state],
                document_id=args.document, dead_letter=args.dead_letter,
                page_size=args.limit, page_token=args.page_token), **call)
            for d in response.deliveries:
                print(f"{d.delivery_id}  {d.document_id}  {_channel(d.channel):8} "
                      f"{_name(pb, d.state):10} attempts={d.attempts:<2} "
                      f"{'DLQ ' if d.dead_letter else ''}{_brief(d.reason)}")
            print(f"{len(response.deliveries)} deliveries", file=sys.stderr)
            if response.next_page_token:
                print(f"more: --page-token {response.next_page_token}", file=sys.stderr)
        else:
            rpc = {"show": stub.GetDelivery, "retry": stub.RetryDelivery,
                   "cancel": stub.CancelDelivery}[command]
            request = (pb.GetDeliveryRequest if command == "show"
                       else pb.DeliveryActionRequest)(delivery_id=args.delivery_id)
            show(pb, rpc(request, **call))
    return 0
