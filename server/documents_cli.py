"""`kanal compose`, `kanal layouts`, `kanal document`: the Documents and Layouts APIs from a shell.

    kanal layouts                                   # every layout (JSON)
    kanal layouts card-invoice [--sample|--schema]  # one layout; its sample data or schema
    kanal layouts card-invoice --layout-version 1.0.0 --sample   # an older version's sample
    kanal layouts card-invoice --sample --locale de-DE   # the sample for a locale
    kanal compose card-invoice --data invoice.json [--locale sv-SE] [--channel print ...]
    kanal compose card-invoice --data invoice.json --preview --out out/   # bytes, not archived
    kanal document DOCUMENT_ID                      # the archived document's index record

The data file is sent exactly as written (never re-encoded: amounts keep every digit).
Connection and key: see server.client (default: the development producer key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from server.client import ClientError, add_connection_options, connect, print_message, read_text

CHANNELS = ("print", "email", "sms", "einvoice", "mailbox")
EXTENSIONS = {"application/pdf": "pdf", "message/rfc822": "eml", "application/xml": "xml"}


def add_parsers(commands: Any) -> None:
    p = commands.add_parser("compose", help="compose one document on a running server",
                            description="Compose one document (kanal.v1.Documents/Compose) "
                                        "and print the response as JSON.")
    p.add_argument("layout", help="layout id, e.g. card-invoice (see `kanal layouts`)")
    p.add_argument("--data", type=Path, required=True,
                   help="JSON data file, sent exactly as written "
                        "(`kanal layouts LAYOUT --sample` prints an example)")
    p.add_argument("--locale", default="", help="BCP 47 locale, e.g. sv-SE (default: "
                                                "decided by the layout and the data)")
    p.add_argument("--channel", action="append", default=[], choices=CHANNELS,
                   help="render this channel (repeatable; default: the layout's plan)")
    p.add_argument("--layout-version", default="", help="layout version (default: newest)")
    p.add_argument("--idempotency-key", default="",
                   help="a retry with the same key and data returns the first result")
    p.add_argument("--corrects", default="", metavar="DOCUMENT_ID",
                   help="a correction: the archived document (same customer and layout) "
                        "this one replaces; a document is corrected once")
    p.add_argument("--preview", action="store_true",
                   help="render only: nothing is archived, indexed or queued for print")
    p.add_argument("--out", type=Path,
                   help="with --preview: folder for the rendered files (LAYOUT-CHANNEL.EXT)")
    add_connection_options(p)
    p.set_defaults(run=compose)

    p = commands.add_parser("layouts", help="list layouts, or show one",
                            description="kanal.v1.Layouts: every layout, or one with its "
                                        "schema and sample, as JSON.")
    p.add_argument("layout", nargs="?", help="a layout id: show this one")
    p.add_argument("--layout-version", "--version", dest="layout_version", default="",
                   metavar="VERSION",
                   help="layout version (default: newest); --version is its old spelling")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--sample", action="store_true",
                       help="print only the layout's sample data (a --data file to start from)")
    shown.add_argument("--schema", action="store_true",
                       help="print only the layout's JSON Schema")
    p.add_argument("--locale", default="",
                   help="the sample for this locale, e.g. de-DE (the layout's sample_locales; "
                        "default: its default sample)")
    add_connection_options(p)
    p.set_defaults(run=layouts)

    p = commands.add_parser("document", help="show an archived document's index record",
                            description="kanal.v1.Documents/GetDocument as JSON.")
    p.add_argument("document_id", help="the id Compose returned")
    add_connection_options(p)
    p.set_defaults(run=document)


def compose(args: argparse.Namespace) -> int:
    from kanal.v1 import common_pb2, documents_pb2, documents_pb2_grpc

    if args.out is not None and not args.preview:
        raise ClientError("--out needs --preview (archived documents are read with "
                          "`kanal portal fetch`)", exit_code=2)
    if args.preview and args.out is None:
        raise ClientError("--preview needs --out DIR for the rendered files", exit_code=2)
    data = read_text(args.data)
    request = documents_pb2.ComposeRequest(
        layout_id=args.layout, layout_version=args.layout_version, data_json=data,
        locale=args.locale, idempotency_key=args.idempotency_key, preview=args.preview,
        corrects_document_id=args.corrects,
        channels=[common_pb2.Channel.Value(f"CHANNEL_{c.upper()}") for c in args.channel])
    with connect(args, "producer") as (channel, where):
        response = documents_pb2_grpc.DocumentsStub(channel).Compose(
            request, metadata=where.metadata, timeout=where.timeout)
    if args.preview:
        args.out.mkdir(parents=True, exist_ok=True)
        for output in response.outputs:
            channel_name = common_pb2.Channel.Name(output.channel).removeprefix("CHANNEL_")
            extension = EXTENSIONS.get(output.media_type.split(";")[0], "txt")
            path = args.out / f"{args.layout}-{channel_name.lower()}.{extension}"
            path.write_bytes(output.content)
            print(f"wrote {path} ({len(output.content)} bytes)", file=sys.stderr)
            output.ClearField("content")  # written to a file, not printed as base64
    print_message(response)
    return 0


def layouts(args: argparse.Namespace) -> int:
    from kanal.v1 import layouts_pb2, layouts_pb2_grpc

    if (args.sample or args.schema or args.locale) and not args.layout:
        raise ClientError("--sample, --schema and --locale need a layout id", exit_code=2)
    with connect(args, "producer") as (channel, where):
        stub = layouts_pb2_grpc.LayoutsStub(channel)
        if not args.layout:
            print_message(stub.ListLayouts(layouts_pb2.ListLayoutsRequest(),
                                           metadata=where.metadata, timeout=where.timeout))
            return 0
        layout = stub.GetLayout(layouts_pb2.GetLayoutRequest(
            layout_id=args.layout, version=args.layout_version, sample_locale=args.locale),
            metadata=where.metadata, timeout=where.timeout)
    if args.sample or args.schema:
        text = layout.sample_json if args.sample else layout.schema_json
        print(text, end="" if text.endswith("\n") else "\n")
    else:
        print_message(layout)
    return 0


def document(args: argparse.Namespace) -> int:
    from kanal.v1 import documents_pb2, documents_pb2_grpc

    with connect(args, "producer") as (channel, where):
        print_message(documents_pb2_grpc.DocumentsStub(channel).GetDocument(
            documents_pb2.GetDocumentRequest(document_id=args.document_id),
            metadata=where.metadata, timeout=where.timeout))
    return 0
