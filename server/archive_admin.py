"""`kanal archive reconcile|reindex|verify`: the configured S3 + index -> archive maintenance.

Uses the same settings as `kanal serve` (config file, KANAL_* env). With the embedded S3 and
no server running, the command starts SeaweedFS on the state dir itself. While `kanal serve`
holds that store (state_dir/server.json, and the store's own lock, see archive.embedded),
`verify` and `reconcile` use the running server's store, and `reindex` refuses in one line
(rebuilding an index under a live server races its writes): never a second SeaweedFS on one
folder. Against an external S3 it runs beside live servers (reconcile leaves documents
younger than --min-age alone: a server may be between its object write and its index write).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from archive.embedded import DataDirInUse, EmbeddedS3
from archive.index import DocumentIndex
from archive.rebuild import reconcile, reindex, verify
from archive.store import ArchiveStore
from server import state as server_state
from server.config import Settings, load_settings
from server.errors import FailedPrecondition


def _running_store(settings: Settings, action: str) -> str | None:
    """The S3 endpoint of a server running on this state dir's embedded store, if any;
    FailedPrecondition when the action must not run beside it."""
    running = server_state.read(settings.state_dir)
    if running is None or not running.get("s3_endpoint"):
        return None
    if action == "reindex":
        raise FailedPrecondition(
            f"kanal serve (pid {running['pid']}) is using {settings.state_dir}; stop it "
            "before a reindex (or run `kanal archive reconcile`, which works beside it)")
    return str(running["s3_endpoint"])


@contextmanager
def open_archive(settings: Settings, action: str = "verify"
                 ) -> Iterator[tuple[ArchiveStore, DocumentIndex]]:
    from server.credentials import embedded_credentials

    s3, embedded = settings.s3, None
    endpoint, access_key, secret_key = s3.endpoint, s3.access_key, s3.secret_key
    if s3.embedded:
        access_key, secret_key = embedded_credentials(settings.state_dir)
        endpoint = _running_store(settings, action)
        if endpoint is not None:
            print(f"kanal archive: using the embedded store of the running server at "
                  f"{endpoint}", file=sys.stderr)
        else:
            embedded = EmbeddedS3(settings.state_dir / "s3", access_key=access_key,
                                  secret_key=secret_key)
            try:
                embedded.start()
            except DataDirInUse as exc:
                raise FailedPrecondition(f"{exc}; stop it or wait for it to finish") from None
            endpoint = embedded.endpoint_url
    index = DocumentIndex(settings.resolved_index_url)
    try:
        store = ArchiveStore(endpoint_url=endpoint, bucket=s3.bucket, access_key=access_key,
                             secret_key=secret_key, region=s3.region)
        store.ensure_bucket()
        index.migrate()
        yield store, index
    finally:
        index.close()
        if embedded is not None:
            embedded.stop()


def run(args: argparse.Namespace) -> int:
    settings = load_settings(Path(args.config) if args.config else None,
                             state_dir=Path(args.state_dir) if args.state_dir else None)
    with open_archive(settings, args.action) as (store, index):
        if args.action == "verify":
            report = verify(store, index, sample=args.sample, prefix=args.prefix)
            for key in report.mismatched:
                print(f"sha256 mismatch: {key}")
            for key in report.missing:
                print(f"missing: {key}")
            for key in report.overwritten:
                print(f"written over (the retained original is intact and served): {key}")
            print(report.summary(), file=sys.stderr)
            return 0 if report.ok else 1
        if args.action == "reindex":
            result = reindex(store, index, prefix=args.prefix)
        else:
            result = reconcile(store, index, prefix=args.prefix,
                               min_age=timedelta(minutes=args.min_age_minutes))
        for name in result.indexed:
            print(f"indexed: {name}")
        for name in result.race_losers:
            print(f"skipped (idempotency race loser): {name}")
        for name in result.incomplete:
            print(f"skipped (incomplete): {name}")
        for name in result.abandoned:
            print(f"skipped (abandoned: its call was answered with an error): {name}")
        for key in result.overwritten:
            print(f"written over (indexed from the retained original): {key}")
        print(result.summary(), file=sys.stderr)
        return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction in (0, 1], e.g. 0.1")
    return value


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("archive", help="archive maintenance: reconcile, reindex, verify")
    p.add_argument("action", choices=("reconcile", "reindex", "verify"),
                   help="reconcile: index stored objects that have no index row; reindex: "
                        "rebuild the index from the bucket; verify: re-read and check sha256. "
                        "Beside a running `kanal serve` verify and reconcile use its store; "
                        "reindex refuses")
    p.add_argument("--config", type=str, default=None, help="TOML settings file")
    p.add_argument("--state-dir", default=None, help="data dir (as for kanal serve)")
    p.add_argument("--prefix", default="", help="only objects under this key prefix")
    p.add_argument("--sample", type=_fraction, default=1.0, metavar="FRACTION",
                   help="verify: fraction of objects to re-read, e.g. 0.1 (default 1 = all)")
    p.add_argument("--min-age-minutes", type=float, default=10.0,
                   help="reconcile: leave documents younger than this (default 10)")
    p.set_defaults(run=run)


def rerender_copy(layouts, renderers, record, data: str) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Re-render an archived document from the caller's copy of its input: the same layout
    version, document id and created-at, so the result can be compared byte for byte.
    Returns {channel: (stored sha256, re-rendered sha256)}. Refuses data whose input hash is
    not the one archived (the input itself is not archived, only its hash)."""
    from server.compose.composer import ComposeRequest, compose
    from server.errors import InvalidInput

    layout_id, _, version = record.layout_ref.partition("@")
    layout = layouts.get(layout_id, version)
    composition = compose(ComposeRequest(
        tenant=record.tenant, layout=layout, data=data, document_id=record.document_id,
        now=record.created_at, locale=record.locale,
        idempotency_key=record.idempotency_key))
    if composition.input_sha256 != record.input_sha256:
        raise InvalidInput.field("data", "is not the input this document was composed from")
    stored = {o.channel: o.sha256 for o in record.outputs}
    return {o.channel.value: (stored.get(o.channel.value, ""), o.sha256)
            for o in renderers.render(composition, layout)}
