"""`kanal portal`: a customer portal's calls from a shell, and the customer token it needs.

    kanal portal token CUSTOMER [--tenant demo] [--ttl 900]   # what a portal backend signs
    export KANAL_CUSTOMER_TOKEN=$(kanal portal token 20184455)
    kanal portal list                                         # the customer's documents
    kanal portal fetch DOCUMENT_ID --out invoice.pdf          # verified bytes
    kanal portal url DOCUMENT_ID [--expires 300]              # a presigned download URL

`token` signs locally with the tenant's secret (`[portal.customer_token_secrets]` of
--config, else the development secret in .kanal/dev-customer-token-secrets.json); the other
commands call a running server with the `portal` key (default: the development one) and the
customer token (--customer-token or env KANAL_CUSTOMER_TOKEN). A `service` key reads any
customer of its tenant: pass --customer instead of a token (without --key or KANAL_API_KEY,
`list --customer` uses the development `service` key).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from server.client import (
    ClientError,
    add_connection_options,
    connect,
    print_message,
    state_dir,
    whole_number,
)

CHANNELS = ("print", "email", "sms", "einvoice", "mailbox")
MAX_PAGE_SIZE = 200  # server.portal.MAX_PAGE_SIZE (not imported: it brings the archive client)


def add_parser(commands: Any) -> None:
    p = commands.add_parser("portal", help="customer portal: token, list, fetch, url")
    add_connection_options(p)
    sub = p.add_subparsers(dest="portal_command", required=True)

    s = sub.add_parser("token", help="sign a customer token (as a portal backend does)")
    s.add_argument("customer", help="customer id, e.g. 20184455")
    s.add_argument("--tenant", default="demo", help="tenant (default: demo)")
    s.add_argument("--ttl", type=_positive, default=900, metavar="SECONDS",
                   help="lifetime in seconds (default 900; the server refuses more than "
                        "its customer_token_max_seconds, default 3600)")
    s.add_argument("--config", type=Path,
                   help="TOML settings with [portal.customer_token_secrets] (default: the "
                        "development secret of tenant demo)")

    calls = []
    s = sub.add_parser("list", help="list the customer's documents, newest first")
    calls.append(s)
    s.add_argument("--customer", default="", help="customer id (service keys; a portal "
                                                  "key's customer comes from its token)")
    s.add_argument("--page-size", type=whole_number(1, MAX_PAGE_SIZE), default=0,
                   help=f"documents per page, 1..{MAX_PAGE_SIZE} (default 50)")
    s.add_argument("--page-token", default="", help="next_page_token of the previous page")

    s = sub.add_parser("fetch", help="download a document's bytes, sha256-verified")
    calls.append(s)
    s.add_argument("document_id", help="a document id from `kanal portal list`")
    # a str, not a Path: Path("new/") drops the "/" that says "a folder"
    s.add_argument("--out", required=True,
                   help="file to write, or a folder: an existing one or a path ending in / "
                        "(made if missing); then DOCUMENT_ID.EXT in it, "
                        "DOCUMENT_ID-CHANNEL.EXT for a channel other than print")
    s.add_argument("--channel", choices=CHANNELS, help="which output (default: print)")

    s = sub.add_parser("url", help="a short-lived presigned download URL")
    calls.append(s)
    s.add_argument("document_id", help="a document id from `kanal portal list`")
    s.add_argument("--channel", choices=CHANNELS, help="which output (default: print)")
    s.add_argument("--expires", type=_positive, default=0, metavar="SECONDS",
                   help="URL lifetime (default 300, at most 900)")

    for s in calls:
        add_connection_options(s, nested=True)
        s.add_argument("--customer-token", default=None,
                       help="the customer token (default: env KANAL_CUSTOMER_TOKEN)")
    p.set_defaults(run=run)


def _positive(text: str) -> int:
    """A number of seconds, at least 1 (0 would silently mean the default)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 second, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    if args.portal_command == "token":
        print(mint(args))
        return 0
    from kanal.v1 import common_pb2, portal_pb2, portal_pb2_grpc

    # --customer is customer service's way to read (its help says so): a token left in the
    # environment by `export KANAL_CUSTOMER_TOKEN=...` (the README's portal walk-through)
    # does not turn it into a portal call, which the server answers NOT_FOUND "no customer"
    # for any customer but the token's; a token given as --customer-token still does
    token = args.customer_token or (None if getattr(args, "customer", "")
                                    else os.environ.get("KANAL_CUSTOMER_TOKEN"))
    channel_value = (common_pb2.Channel.Value(f"CHANNEL_{args.channel.upper()}")
                     if getattr(args, "channel", None) else 0)
    # --customer without a token is how customer service reads: with the `service` key
    role = "service" if getattr(args, "customer", "") and not token else "portal"
    with connect(args, role) as (channel, where):
        metadata = where.metadata + ((("x-kanal-customer-token", token),) if token else ())
        stub = portal_pb2_grpc.PortalStub(channel)
        if args.portal_command == "list":
            print_message(stub.ListDocuments(portal_pb2.ListDocumentsRequest(
                customer_id=args.customer, page_size=args.page_size,
                page_token=args.page_token), metadata=metadata, timeout=where.timeout))
        elif args.portal_command == "url":
            print_message(stub.GetDownloadUrl(portal_pb2.GetDownloadUrlRequest(
                document_id=args.document_id, channel=channel_value,
                expires_seconds=args.expires), metadata=metadata, timeout=where.timeout))
        else:
            return fetch(stub.FetchDocument(portal_pb2.FetchDocumentRequest(
                document_id=args.document_id, channel=channel_value),
                metadata=metadata, timeout=where.timeout), args.document_id, args.out,
                args.channel)
    return 0


def mint(args: argparse.Namespace) -> str:
    """A customer token for `args.customer`, or ClientError (exit 2) when the server would
    refuse it: no secret, or a `--ttl` past the server's `customer_token_max_seconds`
    (the config's, else server.portal.CUSTOMER_TOKEN_MAX_SECONDS)."""
    from server.config import load_settings
    from server.portal import CUSTOMER_TOKEN_MAX_SECONDS, issue_customer_token

    portal = load_settings(args.config).portal if args.config is not None else {}
    max_seconds = int(portal.get("customer_token_max_seconds", 0)) or CUSTOMER_TOKEN_MAX_SECONDS
    if args.ttl > max_seconds:
        raise ClientError(f"--ttl {args.ttl} exceeds the server's customer_token_max_seconds "
                          f"({max_seconds}): it would refuse the token", exit_code=2)
    if args.config is not None:
        configured = portal.get("customer_token_secrets", {})
        secret = configured.get(args.tenant)
    else:
        try:
            secret = json.loads((state_dir() / "dev-customer-token-secrets.json").read_text()
                                ).get(args.tenant)
        except (OSError, ValueError):  # the server makes that file on its first start
            secret = None
    if not secret:
        raise ClientError(f"no customer token secret for tenant {args.tenant!r} (start "
                          "`kanal serve` once for the development one, or pass --config)")
    try:
        return issue_customer_token(secret, args.tenant, args.customer, ttl_seconds=args.ttl)
    except ValueError as exc:
        raise ClientError(str(exc), exit_code=2) from None


def fetch(chunks: Any, document_id: str, out: str | Path, channel: str | None = None) -> int:
    """Collect the stream, check it against the sha256 of its first chunk, then write: to
    the file `out`, or into the folder `out` as DOCUMENT_ID.EXT for the print output and as
    DOCUMENT_ID-CHANNEL.EXT for another channel's (a Factur-X e-invoice and a mailbox copy
    are PDFs too: one name for all overwrote the print PDF). `out` is a folder when it is
    one already or when it ends in a path separator ("batches/new/"): then it is made,
    parents too, as `kanal print fetch --out` makes its folder (was: written as the file
    "batches/new"). OSError when it cannot be made or written."""
    content, first = bytearray(), None
    for chunk in chunks:
        first = first or chunk
        content.extend(chunk.data)
    if first is None:
        raise ClientError(f"document {document_id} came back empty")
    if hashlib.sha256(content).hexdigest() != first.sha256:
        raise ClientError(f"document {document_id} does not match its sha256; not written")
    path = Path(out)
    if is_folder(out):
        path.mkdir(parents=True, exist_ok=True)
        extension = {"application/pdf": "pdf", "application/xml": "xml",
                     "message/rfc822": "eml"}.get(first.media_type.split(";")[0], "txt")
        suffix = f"-{channel}" if channel and channel != "print" else ""
        path = path / f"{document_id}{suffix}.{extension}"
    path.write_bytes(bytes(content))
    print(f"{path}  {len(content)} bytes  sha256 {first.sha256}", file=sys.stderr)
    return 0


def is_folder(out: str | Path) -> bool:
    """An existing folder, or a path written with a trailing separator ("new/", and "new\\"
    on Windows): the shell's way to say "a folder", which `Path` forgets."""
    text = os.fspath(out)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()
