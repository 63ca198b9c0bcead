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

A fallback channel that cannot be used is skipped, and the chain goes on to the plan's next
one; the failed row keeps its state, its reason names the channel and why, and its
`fallbacks` lose that channel (one recorded event each, so webhooks and WatchDeliveries
see it, as for any failure):

* a channel no provider sends for the tenant (`delivery.channels`): nothing is rendered
  (a configuration gap skips that channel; paper still comes only when the plan has it);
* a render that can never succeed (`InvalidInput`: the print page cannot hold the text,
  an unknown layout, any error that is not an outage).

Only an outage (`TRANSIENT`: S3 or the index unavailable, a deadline, the render processes
replaced) is tried again, after a back-off per row (`RETRY_SECONDS` doubling up to
`RETRY_MAX_SECONDS`), never a refusal: a refused fallback retried every round would loop
for ever while the customer gets nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import BrokenExecutor, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Protocol

from archive.errors import ArchiveUnavailable
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
from server.errors import DeadlineExceeded, Unavailable

log = logs.get_logger(__name__)

# What a fallback's render may raise that can pass: tried again later, with a back-off.
TRANSIENT = (Unavailable, ArchiveUnavailable, DeadlineExceeded, BrokenExecutor,
             ConnectionError, TimeoutError)
RETRY_SECONDS = 5.0  # the first wait after an outage; doubled per failure
RETRY_MAX_SECONDS = 300.0


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
        # delivery id -> (failures so far, monotonic time before which it is not tried)
        self._waiting: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def submit(self, row: dict[str, Any]) -> None:
        """Run the fallback of `row` in the background (once at a time per row; after an
        outage not before its back-off has passed)."""
        with self._lock:
            waiting = self._waiting.get(row["delivery_id"])
            if row["delivery_id"] in self._running or (
                    waiting is not None and time.monotonic() < waiting[1]):
                return
            self._running.add(row["delivery_id"])
        self._pool.submit(self._run, row)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, row: dict[str, Any]) -> None:
        delivery_id = row["delivery_id"]
        try:
            self.fall_back(row)
        except Exception as exc:  # archive or index away: tried again after a back-off
            with self._lock:
                failures = self._waiting.get(delivery_id, (0, 0.0))[0] + 1
                wait = min(RETRY_MAX_SECONDS, RETRY_SECONDS * 2 ** (failures - 1))
                self._waiting[delivery_id] = (failures, time.monotonic() + wait)
            log.warning("fallback failed; will retry", delivery_id=delivery_id,
                        error=repr(exc), failures=failures, retry_in_seconds=wait)
        else:
            with self._lock:
                self._waiting.pop(delivery_id, None)
        finally:
            with self._lock:
                self._running.discard(delivery_id)

    def fall_back(self, row: dict[str, Any]) -> str | None:
        """-> the new delivery's id, or None when there was nothing (more) to do. Raises
        (`TRANSIENT`, or the index's own errors) when it must be tried again later."""
        state, now = State(row["state"]), self.clock()
        blob = self.store.sealed_input(row["tenant"], row["document_id"])
        if blob is None:
            self.store.move(row["delivery_id"], state,
                            f"{row['reason']}; no fallback: the compose input was purged",
                            now, only_from=[state], fallbacks="")
            return None
        # ValueError when no configured key opens it: a server configured without the key
        # the others seal with; tried again (with the back-off) until an operator adds it
        compose_input = self.sealed.open(blob)
        reason = row["reason"]
        fallbacks = [c for c in row["fallbacks"].split(",") if c]
        while fallbacks:
            channel, *rest = fallbacks
            why = self._unusable(row["tenant"], channel)
            if why is None:
                try:
                    rendered = self.render(compose_input, channel)
                except TRANSIENT:
                    raise
                except Exception as exc:  # a refusal: rendering again cannot change it
                    why = f"cannot be rendered: {exc}"
                else:
                    return self._chain(row, state, reason, channel, rest, rendered, now)
            reason = f"{reason}; {channel} fallback skipped: {why}"
            if not self.store.move(row["delivery_id"], state, reason, now, only_from=[state],
                                   fallbacks=",".join(rest)):
                return None  # another process moved the row first
            log.warning("fallback skipped", delivery_id=row["delivery_id"], channel=channel,
                        why=why, next=",".join(rest))
            self.on_event()
            fallbacks = rest
        return None

    def _unusable(self, tenant: str, channel: str) -> str | None:
        """Why `channel` cannot be a fallback for `tenant` whatever the document, or None:
        no provider sends it (a mailbox provider per recipient is found after rendering)."""
        if not self.router.spec(tenant, channel):
            return f"no {channel} provider configured (delivery.channels)"
        return None

    def _chain(self, row: dict[str, Any], state: State, reason: str, channel: str,
               rest: list[str], rendered: tuple[Composition, Layout, Output, OutputRecord],
               now: datetime) -> str | None:
        """Index the fallback's output, insert its delivery and move `row` to `fell_back`,
        in one transaction. -> the new delivery's id, or None when another process won."""
        composition, layout, output, record = rendered
        # an e-invoice nobody can send (routing: archived only) is born failed and the
        # chain goes on from it with `rest`
        route = self.router.route(composition, channel, record.facts)
        new = delivery_row(composition, layout, record, output.content, route, now,
                           self.expires_for(route.provider), fallbacks=rest,
                           fallback_of=row["delivery_id"])

        def chain(conn: Any) -> None:
            if not self.store.move(
                    row["delivery_id"], State.FELL_BACK,
                    f"{reason} -> {channel} delivery {new['delivery_id']}", now,
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
