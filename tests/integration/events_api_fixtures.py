"""Shared pieces of the events and journeys API tests (test_journeys_api, test_events_api,
test_events_refusals): the tenant and its API keys, the injected clock, a Kanal server on a
PostgreSQL database (and one without journeys for the events tests, `events_world`), and
small readers of rows and of a refusal's `google.rpc.BadRequest`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy import select

from server.app import KanalServer
from server.config import Settings
from tests.client import Keys
from tests.integration.delivery_fixtures import fresh_database

TENANT = "megler"
KEYS = Keys((TENANT, "producer"), (TENANT, "service"))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the events tests' clock at start
PIN = json.dumps({"card_id": "K1", "via": "app"})  # a pin_sent event's data


class Clock:
    """The server's clock: the tests move `now`; nothing sleeps for time to pass."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def start_server(tmp: Path, database: str, clock: Clock) -> KanalServer:
    """A started server on `database`, its journeys in `tmp/journeys`, timers fired by hand."""
    settings = Settings(
        listen="127.0.0.1:0", state_dir=tmp / "state", api_keys=KEYS.api_keys,
        index_url=database, render_workers=0,
        journeys={"dir": str(tmp / "journeys"), "poll_seconds": 3600},
        delivery={"dispatch": False})
    server = KanalServer(settings, clock=clock)
    server.start()
    return server


def events_world(tmp: Path, pg_url: str) -> Iterator[dict[str, Any]]:
    """A module's `world` of the events tests (`yield from events_world(...)`): a server on
    a fresh database with no journeys (the events alone), its clock at T0; stopped after."""
    (tmp / "journeys").mkdir()
    for database in fresh_database(pg_url):
        clock = Clock(T0)
        server = start_server(tmp, database, clock)
        try:
            yield {"server": server, "clock": clock}
        finally:
            server.stop()


def rows(world, table, **where) -> list[dict]:
    engine = world["server"].index.engine
    with engine.begin() as conn:
        query = select(table)
        for key, value in where.items():
            query = query.where(table.c[key] == value)
        return [dict(r) for r in conn.execute(query).mappings()]


def bad_request(error: grpc.RpcError) -> list[tuple[str, str]]:
    """An INVALID_ARGUMENT's field violations: [(field, description)]."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                found = error_details_pb2.BadRequest()
                if detail.Unpack(found):
                    return [(v.field, v.description) for v in found.field_violations]
    return []
