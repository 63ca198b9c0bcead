"""The journeys stage's one entry point: `JourneyStage`.

Wires what server/journeys is made of: the journey files (server.journeys.definition,
all checked at start), the engine (events -> instances, timers -> steps), the contact
policy, and the hand-over of sends to bulk jobs (server.journeys.sends). `start()` runs
one thread that fires due timers and submits planned sends every `poll_seconds`; any
number of servers may run it against one database (timers are leased).

Settings (``[journeys]``)::

    [journeys]
    dir = "journeys"             # <tenant>/<name>/<version>.toml; unset: no journeys (the
                                 # shipped examples are in DEFAULT_JOURNEYS_DIR)
    poll_seconds = 5.0
    lease_seconds = 60
    [journeys.policy]            # server.journeys.policy
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from server import logs
from server.compose.layouts import LayoutRegistry
from server.delivery.rules import CurrentContacts
from server.errors import NotFound
from server.events.publish import EventService
from server.jobs.store import JobStore
from server.journeys.activity import Activity, customer_activity
from server.journeys.definition import JourneyCatalog
from server.journeys.engine import JourneyEngine, TickResult
from server.journeys.policy import ContactPolicy, PolicySettings
from server.journeys.profiles import current_contacts
from server.journeys.sends import SendSubmitter
from server.journeys.tables import metadata
from server.polling import Poller
from server.schema import add_missing_columns

log = logs.get_logger(__name__)

DEFAULT_JOURNEYS_DIR = Path(__file__).resolve().parents[2] / "journeys"


def layout_check(layouts: LayoutRegistry) -> Callable[[str, str | None], str | None]:
    def known(layout_id: str, version: str | None) -> str | None:
        try:
            layouts.get(layout_id, version)
        except NotFound as exc:
            return str(exc)
        return None
    return known


class JourneyStage:
    def __init__(self, settings: Mapping[str, Any], engine: Engine, events: EventService,
                 layouts: LayoutRegistry, jobs: JobStore, *,
                 notify_jobs: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        """Raises JourneyError for a bad journey file, ValueError for bad settings."""
        self.engine = engine
        self.clock = clock
        self.poll_seconds = float(settings.get("poll_seconds", 5.0))
        root = Path(settings["dir"]) if settings.get("dir") else None
        self.catalog = JourneyCatalog(root, event_known=lambda t: t in events.types,
                                      layout_known=layout_check(layouts))
        self.policy = ContactPolicy(PolicySettings.from_dict(settings.get("policy", {})),
                                    engine)
        self.journeys = JourneyEngine(
            engine, self.catalog, self.policy, clock=lambda: self.clock(),
            lease=timedelta(seconds=float(settings.get("lease_seconds", 60))))
        self.submitter = SendSubmitter(
            engine, jobs, latest_version=lambda layout_id: layouts.get(layout_id).version,
            notify=notify_jobs, clock=lambda: self.clock())
        events.listeners.append(self.journeys)
        self._poller = Poller("journey-timers", self.tick, self.poll_seconds,
                              "journey timers failed; trying again")

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            add_missing_columns(conn, metadata)  # journey_sends.options (newer than it)

    def set_clock(self, clock: Callable[[], datetime]) -> None:
        """Tests move time: every part reads the clock through this stage."""
        self.clock = clock

    # --- running -----------------------------------------------------------------------------

    def tick(self) -> TickResult:
        """Fire due timers, then submit the sends they planned."""
        result = self.journeys.run_due()
        self.submitter.flush()
        return result

    def start(self) -> None:
        self._poller.start()

    def notify(self) -> None:
        self._poller.notify()

    def stop(self) -> None:
        self._poller.stop()

    # --- reading -----------------------------------------------------------------------------

    def activity(self, tenant: str, customer_id: str, page_size: int = 100,
                 page_token: str = "") -> tuple[list[Activity], str]:
        return customer_activity(self.engine, tenant, customer_id, page_size, page_token)

    def current_contacts(self, tenant: str, customer_id: str) -> CurrentContacts | None:
        """The customer's profile's consents and opt-outs now (the delivery stage's contact
        rules read them at send time); None: no profile."""
        return current_contacts(self.engine, tenant, customer_id)
