"""The `kanal` command.

    kanal serve  [--listen HOST:PORT] [--state-dir DIR] [--config FILE]
    kanal render LAYOUT --data FILE --out DIR [--locale nb-NO] [--version 1.0.0]
    kanal archive reconcile|reindex|verify [--config FILE] [--sample 0.1]
    kanal deliveries list|show|retry|cancel    (server/delivery/cli.py)
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from server import logs
from server.config import ConfigError, load_settings
from server.errors import KanalError


def serve(args: argparse.Namespace) -> int:
    from archive.errors import ArchiveError
    from server.app import KanalServer

    settings = load_settings(args.config, listen=args.listen, state_dir=args.state_dir)
    logs.configure(settings.log_format)
    server = KanalServer(settings)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        server.start()
    except (ArchiveError, ConfigError, OSError) as exc:
        print(f"kanal: cannot start: {exc}", file=sys.stderr)
        return 1
    print(f"kanal listening on {server.address}; try: grpcurl -plaintext {server.address} list",
          file=sys.stderr, flush=True)
    if not settings.api_keys:
        keys = settings.state_dir / "dev-api-keys.json"
        print(f"development API keys (tenant 'demo', one per role) are in {keys}; call with\n"
              f"  grpcurl -plaintext -H \"authorization: Bearer $(jq -r .producer {keys})\" "
              f"-d '{{}}' {server.address} kanal.v1.Layouts/ListLayouts",
              file=sys.stderr, flush=True)
    stopping.wait()
    server.stop()
    return 0


def render(args: argparse.Namespace) -> int:
    """Render a layout locally for layout designers: PDF plus one PNG per page."""
    import pypdfium2

    from server.channels.pdf import WeasyPrintEngine
    from server.compose.composer import ComposeRequest, compose
    from server.compose.layouts import DEFAULT_LAYOUTS_DIR, LayoutRegistry

    registry = LayoutRegistry(args.layouts_dir or DEFAULT_LAYOUTS_DIR)
    layout = registry.get(args.layout, args.version)
    data = args.data.read_text(encoding="utf-8") if args.data else layout.sample_data()
    composition = compose(ComposeRequest(
        tenant="local", layout=layout, data=data, document_id="preview",
        now=datetime.now(UTC), locale=args.locale,
    ))
    rendered = WeasyPrintEngine().render(layout, composition)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{layout.id}-{composition.locale}"
    (args.out / f"{stem}.pdf").write_bytes(rendered.content)
    pdf = pypdfium2.PdfDocument(rendered.content)
    for number, page in enumerate(pdf, start=1):
        page.render(scale=args.dpi / 72).to_pil().save(args.out / f"{stem}-page{number}.png")
    print(f"{args.out / stem}.pdf: {rendered.pages} page(s), PNGs beside it")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kanal", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the gRPC server (embedded S3 unless configured)")
    p.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:50051, env KANAL_LISTEN)")
    p.add_argument("--state-dir", type=Path, help="data dir (default .kanal, env KANAL_STATE_DIR)")
    p.add_argument("--config", type=Path, help="TOML settings file")
    p.set_defaults(run=serve)

    p = commands.add_parser("render", help="render a layout to PDF and PNGs, without a server")
    p.add_argument("layout", help="layout id, e.g. card-invoice")
    p.add_argument("--data", type=Path, help="JSON data file (default: the layout's sample)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--locale", help="BCP 47 locale (default: the layout's)")
    p.add_argument("--version", help="layout version (default: newest)")
    p.add_argument("--layouts-dir", type=Path, help="layouts folder (default: the project's)")
    p.add_argument("--dpi", type=int, default=100, help="PNG resolution (default 100)")
    p.set_defaults(run=render)

    from server.archive_admin import add_parser as add_archive_parser
    add_archive_parser(commands)
    from server.jobs.cli import add_parser as add_jobs_parser
    add_jobs_parser(commands)
    from server.printing.cli import add_parser as add_print_parser
    add_print_parser(commands)
    from server.delivery.cli import add_parser as add_deliveries_parser
    add_deliveries_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (KanalError, ConfigError) as exc:
        print(f"kanal: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
