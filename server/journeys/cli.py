"""`kanal events replay` and `kanal journeys check`: operators' commands on the configured index.

    kanal events replay [--tenant T] [--customer C] [--since 2026-03-01T00:00:00+00:00]
        Hand stored events to the journeys again, oldest first (e.g. after adding a journey
        that should take customers whose trigger already happened). Safe any number of
        times and beside a running `kanal serve`: an instance is unique per trigger
        occurrence and a step communicates at most once; the server's timers then run what
        the replay started.
    kanal journeys check [--dir DIR]
        Load every journey file as `kanal serve` would and print each, or every problem
        (exit 1); a DIR (or configured `[journeys] dir`) that is not a directory: exit 2.

Both use the settings of `kanal serve` (``--config``, ``--state-dir``, KANAL_* env).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def _settings(args: argparse.Namespace) -> Any:
    from server.config import load_settings

    return load_settings(Path(args.config) if args.config else None,
                         state_dir=Path(args.state_dir) if args.state_dir else None)


def _stage(settings: Any, journeys_dir: str | None = None) -> tuple[Any, Any]:
    from archive.index import DocumentIndex
    from server.compose.layouts import LayoutRegistry
    from server.delivery.tables import metadata as delivery_tables
    from server.events.publish import EventService
    from server.events.types import EventTypes
    from server.jobs.store import JobStore
    from server.journeys.stage import JourneyStage

    settings.state_dir.mkdir(parents=True, exist_ok=True)  # the SQLite index lives there
    index = DocumentIndex(settings.resolved_index_url)
    schemas = settings.events.get("schemas_dir")
    events = EventService(index.engine, EventTypes(Path(schemas) if schemas else None))
    config = dict(settings.journeys)
    if journeys_dir:
        config["dir"] = journeys_dir
    stage = JourneyStage(config, index.engine, events, LayoutRegistry(settings.layouts_dir),
                         JobStore(settings.resolved_index_url))
    with index.engine.begin() as conn:
        delivery_tables.create_all(conn)
    events.create_schema()
    stage.create_schema()
    return events, stage


def replay(args: argparse.Namespace) -> int:
    events, _ = _stage(_settings(args))
    since = datetime.fromisoformat(args.since) if args.since else None
    if since is not None and since.tzinfo is None:
        print("--since needs a time zone, e.g. 2026-03-01T00:00:00+00:00", file=sys.stderr)
        return 2
    count, started = events.replay(tenant=args.tenant or None,
                                   customer_id=args.customer or None, since=since)
    print(f"replayed {count} events; {started} journey instances started", file=sys.stderr)
    return 0


def check(args: argparse.Namespace) -> int:
    from server.journeys.definition import JourneyError

    settings = _settings(args)
    folder = args.dir or settings.journeys.get("dir")
    if folder and not Path(folder).is_dir():  # the server would start with no journeys
        what = "--dir" if args.dir else "[journeys] dir"
        print(f"kanal journeys check: {what} {folder}: no such directory (journeys live "
              "in <dir>/<tenant>/<name>/<version>.toml)", file=sys.stderr)
        return 2
    try:
        _, stage = _stage(settings, args.dir)
    except JourneyError as exc:
        print(f"journey file refused: {exc.path}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    journeys = sorted(stage.catalog.all(), key=lambda j: (j.tenant, j.name, j.version))
    for journey in journeys:
        print(f"{journey.tenant}/{journey.ref}: on {journey.trigger}, "
              f"{len(journey.steps)} steps, {journey.category}, priority {journey.priority}")
    if not journeys:  # was: nothing printed, exit 0, as for a folder whose journeys are fine
        where = f"in {folder}" if folder else "configured ([journeys] dir, or --dir DIR)"
        print(f"kanal journeys check: no journeys {where} (journeys live in "
              "<dir>/<tenant>/<name>/<version>.toml)", file=sys.stderr)
    return 0


def add_parsers(commands: Any) -> None:
    p = commands.add_parser("events", help="events: replay stored events through the journeys")
    sub = p.add_subparsers(dest="events_command", required=True)
    s = sub.add_parser("replay", help="hand stored events to the journeys again (idempotent)")
    s.add_argument("--tenant", default="", help="only this tenant's events")
    s.add_argument("--customer", default="", help="only this customer's events")
    s.add_argument("--since", default="", help="only events that occurred since (ISO 8601)")
    for parser in (s,):
        parser.add_argument("--config", default=None, help="TOML settings file")
        parser.add_argument("--state-dir", default=None, help="data dir (as for kanal serve)")
    s.set_defaults(run=replay)
    p = commands.add_parser("journeys", help="journeys: check the journey files")
    sub = p.add_subparsers(dest="journeys_command", required=True)
    s = sub.add_parser("check", help="load every journey file; print them or every problem")
    s.add_argument("--dir", default=None, help="journeys dir (default: the configured one)")
    s.add_argument("--config", default=None, help="TOML settings file")
    s.add_argument("--state-dir", default=None, help="data dir (as for kanal serve)")
    s.set_defaults(run=check)
