"""The server of the SMTP delivery tests (test_delivery_smtp.py): Kanal in-process on its own
PostgreSQL database, sending e-mail through a private Postfix (STARTTLS) with the tenant's
DKIM key, posting signed webhooks, with contact rules (caps: 1 marketing message in 14 days,
0 invoices, which are never capped; e-mail quiet hours in QUIET_COUNTRY around now), and API
keys for a producer, an admin and the service.

The helpers are generators for the test module's own fixtures (`yield from
start_kanal(...)`), as in cli_fixtures.py: one server per test module, started once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kanal.v1 import documents_pb2_grpc
from server.app import KanalServer
from server.config import Settings
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import DkimKey, WebhookReceiver, delivery_settings
from tests.postfix import Postfix

KEYS = Keys(("nordkort", "producer"), ("nordkort", "admin"), ("nordkort", "service"))
QUIET_COUNTRY = "SE"  # customers here are inside an e-mail quiet window during the tests


def start_kanal(state_dir: Path, postfix: Postfix, database: str, dkim_key: DkimKey,
                webhook: WebhookReceiver) -> Iterator[KanalServer]:
    """A running server (state in `state_dir`, index in `database`) sending through
    `postfix`; the quiet window runs from an hour before to two hours after its start,
    Stockholm time. Stopped after."""
    stockholm = datetime.now(UTC).astimezone(ZoneInfo("Europe/Stockholm"))
    rules: dict[str, Any] = {
        "caps": {"marketing": {"max": 1, "days": 14}, "invoice": {"max": 0, "days": 14}},
        "quiet_hours": {"email": {"countries": {QUIET_COUNTRY: {
            "start": (stockholm - timedelta(hours=1)).strftime("%H:%M"),
            "end": (stockholm + timedelta(hours=2)).strftime("%H:%M")}}}},
    }
    settings = Settings(
        listen="127.0.0.1:0", state_dir=state_dir,
        api_keys=KEYS.api_keys, index_url=database, render_workers=0,
        delivery=delivery_settings(postfix, dkim_key, webhook_url=webhook.url, rules=rules),
    )
    with KanalServer(settings) as server:
        yield server


def documents_stub(kanal: KanalServer) -> Iterator[Any]:
    """The Documents stub of the producer's key, for the module's lifetime."""
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield documents_pb2_grpc.DocumentsStub(ch)
