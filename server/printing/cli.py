"""`kanal print`: operators' commands for print batches, over gRPC to a running server.

    kanal print list  [--state ready|fetched|acknowledged]
    kanal print close                       # close every open group now (admin key)
    kanal print fetch BATCH_ID --out DIR    # PDF + manifests, sha256-verified

The command talks to a running `kanal serve` (``--address``, env KANAL_ADDRESS) with an API
key (``--key``, env KANAL_API_KEY) rather than opening the database itself: the server
owns the batch state, and the key's role decides what the operator may see -- an `admin`
key lists every print shop of its tenant and may close; a `printshop:<id>` key is what a
print shop's own tooling would use.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import grpc

NAMES = {"pdf": "print.pdf", "manifest_json": "manifest.json", "manifest_csv": "manifest.csv"}


def add_parser(commands: Any) -> None:
    p = commands.add_parser("print", help="print batches: list, close now, fetch")
    p.add_argument("--address", default=os.environ.get("KANAL_ADDRESS", "127.0.0.1:50051"))
    p.add_argument("--key", default=os.environ.get("KANAL_API_KEY"),
                   help="API key (default: env KANAL_API_KEY)")
    sub = p.add_subparsers(dest="print_command", required=True)
    s = sub.add_parser("list", help="list print batches")
    s.add_argument("--state", action="append", default=[],
                   choices=["ready", "fetched", "acknowledged"])
    s = sub.add_parser("close", help="close every open batch group now")
    s = sub.add_parser("fetch", help="fetch a batch's PDF and manifests to a folder")
    s.add_argument("batch_id")
    s.add_argument("--out", type=Path, required=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kanal.v1 import printshop_pb2 as pb
    from kanal.v1 import printshop_pb2_grpc

    if not args.key:
        print("kanal print: an API key is needed (--key or KANAL_API_KEY)", file=sys.stderr)
        return 2
    metadata = (("authorization", f"Bearer {args.key}"),)
    with grpc.insecure_channel(args.address) as channel:
        stub = printshop_pb2_grpc.PrintShopStub(channel)
        try:
            if args.print_command == "list":
                states = [pb.PrintBatchState.Value(f"PRINT_BATCH_STATE_{s.upper()}")
                          for s in args.state]
                response = stub.ListPrintBatches(
                    pb.ListPrintBatchesRequest(states=states), metadata=metadata)
                for b in response.batches:
                    state = pb.PrintBatchState.Name(b.state).removeprefix("PRINT_BATCH_STATE_")
                    print(f"{b.batch_id}  {state.lower():12} {b.printshop:14} {b.profile:16} "
                          f"{b.envelope:4} pieces={b.pieces} sheets={b.sheets} "
                          f"inserts={','.join(b.inserts) or '-'}")
            elif args.print_command == "close":
                response = stub.ClosePrintBatches(pb.ClosePrintBatchesRequest(), metadata=metadata)
                for batch_id in response.batch_ids:
                    print(batch_id)
                print(f"{len(response.batch_ids)} batch(es) closed", file=sys.stderr)
            else:
                return fetch(stub, args.batch_id, args.out, metadata)
        except grpc.RpcError as exc:
            print(f"kanal print: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    return 0


def fetch(stub: Any, batch_id: str, out: Path, metadata: Any) -> int:
    from kanal.v1 import printshop_pb2 as pb

    out.mkdir(parents=True, exist_ok=True)
    parts: dict[int, tuple[bytearray, str]] = {}
    for chunk in stub.FetchPrintBatch(pb.FetchPrintBatchRequest(batch_id=batch_id),
                                      metadata=metadata):
        buffer, _ = parts.setdefault(chunk.part, (bytearray(), chunk.sha256))
        buffer.extend(chunk.data)
    for part, (content, sha256) in parts.items():
        name = pb.PrintBatchPart.Name(part).removeprefix("PRINT_BATCH_PART_").lower()
        if hashlib.sha256(content).hexdigest() != sha256:
            print(f"kanal print: {name} does not match its sha256; not written", file=sys.stderr)
            return 1
        (out / NAMES[name]).write_bytes(bytes(content))
        print(f"{out / NAMES[name]}  {len(content)} bytes  sha256 {sha256}")
    return 0
