"""The `kanal` command.

    kanal serve  [--listen HOST:PORT] [--state-dir DIR] [--config FILE] [--metrics-listen ...]
    kanal render LAYOUT --out DIR [--data FILE] ... (server.render_cli)
    kanal layouts | compose | document       (server.documents_cli)
    kanal submit | job | worker              (server.jobs.cli: one module each)
    kanal print list|fetch|ack|close         (server.printing.cli)
    kanal portal token|list|fetch|url        (server.portal_cli)
    kanal archive reconcile|reindex|verify   (server.archive_admin)
    kanal deliveries list|show|retry|cancel  (server.delivery.cli)

Every failure is one line on stderr, `kanal <command>: <why>`, and a non-zero exit code
(1: the request failed or the server could not be reached; 2: usage or configuration;
`kanal submit` and `kanal render` say when they exit 3 or 4);
never a traceback (KANAL_DEBUG=1 shows one for an unexpected error).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from server import logs
from server.config import DEFAULT_PORT, ConfigError, load_settings
from server.errors import KanalError

# gRPC's C core logs connection events (a GOAWAY when a server goes away) straight to
# stderr; a command says what went wrong in its own one line. Set before grpc loads
# (nothing above imports it).
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def serve(args: argparse.Namespace) -> int:
    from server.processes import MALLOC_SWITCH, run_on_jemalloc

    # first: what is imported before the re-execution is imported twice (server.app: ~1 s)
    if not run_on_jemalloc() and os.environ.get(MALLOC_SWITCH) != "system":
        print("kanal: jemalloc is not installed: rendering costs about 10% more CPU; install "
              "the Debian package libjemalloc2", file=sys.stderr, flush=True)

    from server import tempdirs

    settings = load_settings(args.config, listen=args.listen, state_dir=args.state_dir,
                             metrics_listen=args.metrics_listen)
    try:  # before anything makes a temporary file (server.tempdirs)
        tempdirs.claim(settings.state_dir)
    except OSError as exc:
        print(f"kanal: cannot start: {exc}", file=sys.stderr)
        return 1

    from archive.errors import ArchiveError
    from server.app import KanalServer

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
    metrics = f"; metrics at {server.metrics.url}" if server.metrics else ""
    if server.metrics and server.metrics.note:
        metrics += f" ({server.metrics.note})"
    print(f"kanal listening on {server.address}{metrics}", file=sys.stderr, flush=True)
    if not settings.api_keys:
        from server.client import first_command

        keys = settings.state_dir / "dev-api-keys.json"
        print(f"development API keys (tenant 'demo', one per role) are in {keys}; from this "
              f"folder try: {first_command(settings.state_dir, server.address)}",
              file=sys.stderr, flush=True)
    stopping.wait()
    server.stop()
    return 0


class ExactOptionParser(argparse.ArgumentParser):
    """Options by their full names only: argparse's prefix matching took `kanal portal fetch
    --customer 20184455` for `--customer-token` and answered UNAUTHENTICATED. Subcommand
    parsers are made of the same class (argparse's `add_subparsers` default)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = ExactOptionParser(prog="kanal", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the gRPC server (embedded S3 unless configured)")
    p.add_argument("--listen", help=f"HOST:PORT (default 127.0.0.1:{DEFAULT_PORT}, "
                                    "env KANAL_LISTEN)")
    p.add_argument("--state-dir", type=Path, help="data dir (default .kanal, env KANAL_STATE_DIR)")
    p.add_argument("--config", type=Path, help="TOML settings file")
    p.add_argument("--metrics-listen", metavar="HOST:PORT",
                   help="Prometheus /metrics endpoint (default 127.0.0.1:9464, or a free port "
                        "when that is taken; 'off' to disable; env KANAL_METRICS_LISTEN)")
    p.set_defaults(run=serve)

    from server.render_cli import add_parser as add_render_parser
    add_render_parser(commands)
    from server.documents_cli import add_parsers as add_documents_parsers
    add_documents_parsers(commands)
    from server.jobs.cli import add_parser as add_jobs_parser
    add_jobs_parser(commands)
    from server.printing.cli import add_parser as add_print_parser
    add_print_parser(commands)
    from server.portal_cli import add_parser as add_portal_parser
    add_portal_parser(commands)
    from server.archive_admin import add_parser as add_archive_parser
    add_archive_parser(commands)
    from server.delivery.cli import add_parser as add_deliveries_parser
    add_deliveries_parser(commands)
    from server.journeys.cli import add_parsers as add_journeys_parsers
    add_journeys_parsers(commands)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """'kanal portal url', 'kanal print fetch': the command and its sub-command, as errors
    name them (the group's parsers keep the sub-command in `<group>_command`)."""
    words = ["kanal", args.command]
    words += [str(value) for key, value in sorted(vars(args).items())
              if key.endswith("_command") and value]
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure becomes one line on stderr and an exit code."""
    import grpc

    from server.client import ClientError, describe, server_address

    args = build_parser().parse_args(argv)
    name = command_name(args)
    try:
        return args.run(args)
    except ClientError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return exc.exit_code
    except grpc.RpcError as exc:
        # the address called (target() read it, so it reads again without fault)
        print(f"{name}: {describe(exc, server_address(args))}", file=sys.stderr)
        return 1
    except (KanalError, ConfigError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `kanal layouts | head`: the reader is gone, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a file or folder that cannot be read or written
        # "kanal render: out.json: File exists", as the shell's tools word it (was "File
        # exists out.json", the path after the reason)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{name}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("KANAL_DEBUG"):
            raise
        print(f"{name}: unexpected error: {type(exc).__name__}: {exc} "
              "(KANAL_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
