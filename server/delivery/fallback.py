"""Fallbacks: a primary delivery failed for good -> the next channel of the plan, rendered
from the same composition, archived, and queued for delivery; the chain is recorded.

The compose input is opened from its sealed copy (server.delivery.sealed), the document is
composed again with its own id and creation time (so it is the same Composition) and only
the fallback channel is rendered (`FallbackRenderer`, which the orchestrator provides:
compose -> render -> archive object). Then, in one transaction of the index: the output's
index row, the new delivery (carrying the rest of the fallback list) and the old one's move
to `fell_back` (its reason names the new delivery; `fallback_of` links back). A print
fallback is a print delivery like any other: its provider puts the piece in the print queue.

A crash anywhere repeats the step: the render is deterministic, the archive put of the same
bytes is a no-op, and the old row's compare-and-set lets only one transaction win.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Protocol

from archive.index import DocumentIndex
from archive.records import OutputRecord
from server import logs
from server.compose.layouts import Layout
from server.compose.model import Composition, Output
from server.delivery.model import State
from server.delivery.outbox import delivery_row
from server.delivery.routing import Router
from server.delivery.sealed import SealedInputs
from server.delivery.store import DeliveryStore

log = logs.get_logger(__name__)


class FallbackRenderer(Protocol):
    def __call__(self, compose_input: Mapping[str, Any], channel: str
                 ) -> tuple[Composition, Layout, Output, OutputRecord]: ...


class _Lost(Exception):
    """Another process moved the failed row first."""


class Fallbacks:
    def __init__(self, store: DeliveryStore, sealed: SealedInputs, index: DocumentIndex,
                 render: FallbackRenderer, router: Router,
                 expires_for: Callable[[str | None], timedelta],
                 clock: Callable[[], datetime], on_event: Callable[[], None]):
        self.store = store
        self.sealed = sealed
        self.index = index
        self.render = render
        self.router = router
        self.expires_for = expires_for
        self.clock = clock
        self.on_event = on_event
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="delivery-fallback")
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def submit(self, row: dict[str, Any]) -> None:
        """Run the fallback of `row` in the background (once at a time per row)."""
        with self._lock:
            if row["delivery_id"] in self._running:
                return
            self._running.add(row["delivery_id"])
        self._pool.submit(self._run, row)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, row: dict[str, Any]) -> None:
        try:
            self.fall_back(row)
        except Exception as exc:  # archive or index away: the next round tries again
            log.warning("fallback failed; will retry", delivery_id=row["delivery_id"],
                        error=repr(exc))
        finally:
            with self._lock:
                self._running.discard(row["delivery_id"])

    def fall_back(self, row: dict[str, Any]) -> str | None:
        """-> the new delivery's id, or None when there was nothing (more) to do."""
        state, now = State(row["state"]), self.clock()
        channel, *rest = row["fallbacks"].split(",")
        blob = self.store.sealed_input(row["tenant"], row["document_id"])
        if blob is None:
            self.store.move(row["delivery_id"], state,
                            f"{row['reason']}; no fallback: the compose input was purged",
                            now, only_from=[state], fallbacks="")
            return None
        composition, layout, output, record = self.render(self.sealed.open(blob), channel)
        route = self.router.route(composition, channel)
        new = delivery_row(composition, layout, record, output.content, route, now,
                           self.expires_for(route.provider), fallbacks=rest,
                           fallback_of=row["delivery_id"])

        def chain(conn: Any) -> None:
            if not self.store.move(
                    row["delivery_id"], State.FELL_BACK,
                    f"{row['reason']} -> {channel} delivery {new['delivery_id']}", now,
                    only_from=[state], conn=conn, fallbacks=""):
                raise _Lost()
            self.store.insert(conn, [new], now)

        try:
            if not self.index.add_output(row["tenant"], row["document_id"], record, also=chain):
                with self.store.engine.begin() as conn:  # the output row exists already
                    chain(conn)
        except _Lost:
            return None
        log.info("fell back", delivery_id=row["delivery_id"], channel=channel,
                 new_delivery_id=new["delivery_id"])
        self.on_event()
        return str(new["delivery_id"])
