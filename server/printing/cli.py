"""`kanal print`: operators' commands for print batches, over gRPC to a running server.

    kanal print list  [--state ready|fetched|acknowledged]
    kanal print fetch BATCH_ID --out DIR    # DIR/BATCH_ID/print.pdf + manifests, sha256-verified
    kanal print ack BATCH_ID [--spoiled PIECE_ID ...]   # printed; spoiled pieces are reprinted
    kanal print close                       # close every open group now (admin key)

The command talks to a running `kanal serve` (``--address``, env KANAL_ADDRESS) with an API
key (``--key``, env KANAL_API_KEY; default: the development `printshop:demo-print` key, or
the `admin` one for `close`) rather than opening the database itself: the server owns the
batch state, and the key's role decides what the operator may see -- an `admin` key lists
every print shop of its tenant and may close; a `printshop:<id>` key is what a print shop's
own tooling would use, and the only one that may acknowledge.

`fetch` writes each batch into its own folder named by the batch id, so fetching several
batches into one --out never mixes or overwrites their files; every part is checked against
its sha256 before anything is written, and each file appears whole (written aside, renamed).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from server.client import ClientError, add_connection_options, connect

NAMES = {"pdf": "print.pdf", "manifest_json": "manifest.json", "manifest_csv": "manifest.csv"}
DEV_PRINTSHOP_ROLE = "printshop:demo-print"


def add_parser(commands: Any) -> None:
    p = commands.add_parser("print", help="print batches: list, fetch, ack, close now")
    add_connection_options(p)
    sub = p.add_subparsers(dest="print_command", required=True)
    s = sub.add_parser("list", help="list print batches and their states")
    s.add_argument("--state", action="append", default=[],
                   choices=["ready", "fetched", "acknowledged"],
                   help="only batches in this state (repeatable; default: all)")
    add_connection_options(s, nested=True)
    s = sub.add_parser("fetch", help="fetch a batch's PDF and manifests into OUT/BATCH_ID/")
    s.add_argument("batch_id", help="a batch id from `kanal print list`")
    s.add_argument("--out", type=Path, required=True,
                   help="folder; the batch's files go into OUT/BATCH_ID/")
    add_connection_options(s, nested=True)
    s = sub.add_parser("ack", help="acknowledge a fetched batch as printed")
    s.add_argument("batch_id", help="the batch that was printed")
    s.add_argument("--spoiled", nargs="+", default=[], metavar="PIECE_ID",
                   help="pieces spoiled in production: they come back in a reprint batch")
    add_connection_options(s, nested=True)
    s = sub.add_parser("close", help="close every open batch group now (admin key)")
    add_connection_options(s, nested=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kanal.v1 import printshop_pb2 as pb
    from kanal.v1 import printshop_pb2_grpc

    role = "admin" if args.print_command == "close" else DEV_PRINTSHOP_ROLE
    with connect(args, role) as (channel, where):
        stub = printshop_pb2_grpc.PrintShopStub(channel)
        call = {"metadata": where.metadata, "timeout": where.timeout}
        if args.print_command == "list":
            states = [pb.PrintBatchState.Value(f"PRINT_BATCH_STATE_{s.upper()}")
                      for s in args.state]
            batches = stub.ListPrintBatches(pb.ListPrintBatchesRequest(states=states),
                                            **call).batches
            for b in batches:
                state = pb.PrintBatchState.Name(b.state).removeprefix("PRINT_BATCH_STATE_")
                print(f"{b.batch_id}  {state.lower():12} {b.printshop:14} {b.profile:16} "
                      f"{b.envelope:4} pieces={b.pieces} sheets={b.sheets} "
                      f"inserts={','.join(b.inserts) or '-'}")
            if not batches:
                which = f" {' or '.join(args.state)}" if args.state else ""
                print(f"no{which} print batches for this key", file=sys.stderr)
        elif args.print_command == "close":
            response = stub.ClosePrintBatches(pb.ClosePrintBatchesRequest(), **call)
            for batch_id in response.batch_ids:
                print(batch_id)
            print(f"{len(response.batch_ids)} batch(es) closed", file=sys.stderr)
        elif args.print_command == "ack":
            batch = stub.AcknowledgePrintBatch(pb.AcknowledgePrintBatchRequest(
                batch_id=args.batch_id, spoiled_piece_ids=args.spoiled), **call)
            state = pb.PrintBatchState.Name(batch.state).removeprefix("PRINT_BATCH_STATE_")
            line = f"{batch.batch_id}  {state.lower()}"
            if batch.spoiled_piece_ids:
                line += (f"; {len(batch.spoiled_piece_ids)} spoiled piece(s) in reprint batch "
                         f"{batch.reprint_batch_id}")
            print(line)
        else:
            return fetch(stub, args.batch_id, args.out, call)
    return 0


def fetch(stub: Any, batch_id: str, out: Path, call: dict[str, Any]) -> int:
    from kanal.v1 import printshop_pb2 as pb

    parts: dict[int, tuple[bytearray, str]] = {}
    for chunk in stub.FetchPrintBatch(pb.FetchPrintBatchRequest(batch_id=batch_id), **call):
        buffer, _ = parts.setdefault(chunk.part, (bytearray(), chunk.sha256))
        buffer.extend(chunk.data)
    files = {}
    for part, (content, sha256) in parts.items():
        name = pb.PrintBatchPart.Name(part).removeprefix("PRINT_BATCH_PART_").lower()
        if hashlib.sha256(content).hexdigest() != sha256:
            raise ClientError(f"{name} of batch {batch_id} does not match its sha256; "
                              "nothing written")
        files[NAMES[name]] = (bytes(content), sha256)
    folder = out / batch_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, (content, sha256) in files.items():
        aside = folder / f".{name}.part"
        aside.write_bytes(content)
        aside.replace(folder / name)
        print(f"{folder / name}  {len(content)} bytes  sha256 {sha256}")
    return 0
