"""Dispatchers: due outbox rows -> provider calls -> recorded outcomes.

One loop thread per server process takes due rows for each provider (never more than the
provider's free concurrency, its rate-limit tokens and what its circuit breaker allows),
and runs each attempt in the provider's own thread pool:

    claim (state `sending`, lease, attempt row with the message id: committed)
      -> contact rules at send time (hold / suppress, server.delivery.rules)
      -> the archived bytes (sha256-verified) -> provider.send -> Accepted | Retry | Failed
      -> finish (state, attempt closed, event; one transaction, only while the lease holds)

Safe with several processes on one database: PostgreSQL hands each row to one of them
(`FOR UPDATE SKIP LOCKED`) and every state change is a compare-and-set, so a row is never
sent by two at once; on SQLite run one dispatching server per database (the
compare-and-set still keeps a second one from double-sending; it only contends).

A kill -9 at any point leaves either a `queued` row (sent again later) or a `sending` row
with an open attempt: when its lease runs out the loop reaps it -- the attempt is closed as
`interrupted` and the row queued again, after the provider's `in_doubt_seconds` when the
provider may have accepted it (SMTP: a success DSN arrives meanwhile and marks it
`delivered`, and nothing is sent twice).

The loop also expires rows not sent in time, hands rows that failed for good to the
fallback step, refreshes the queue-depth metrics and purges sealed inputs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from ulid import ULID

from archive.errors import ArchiveError
from archive.store import ArchiveStore
from server import logs
from server.delivery import metrics
from server.delivery.model import (
    Accepted,
    Failed,
    Outgoing,
    Receipt,
    Result,
    Retry,
    State,
)
from server.delivery.policy import (
    BREAKER_GAUGE,
    CircuitBreaker,
    TokenBucket,
    attempts_spent,
    backoff,
)
from server.delivery.providers.base import Provider
from server.delivery.receipts import Receipts
from server.delivery.rules import ContactRules, CurrentContacts
from server.delivery.store import DeliveryStore

log = logs.get_logger(__name__)

HOUSEKEEPING_SECONDS = 5.0


class _Slot:
    """One provider in this process: its pool, rate, breaker and in-flight count."""

    def __init__(self, provider: Provider):
        limits = provider.limits
        self.provider = provider
        self.limits = limits
        self.bucket = TokenBucket(limits.rate_per_second)
        self.breaker = CircuitBreaker(limits.breaker_failures, limits.breaker_seconds)
        self.pool = ThreadPoolExecutor(limits.concurrency,
                                       thread_name_prefix=f"deliver-{provider.name}")
        self.inflight = 0
        self.lock = threading.Lock()
        # Whether due rows may be waiting that the last round did not take (no free
        # concurrency, tokens or breaker trials; or it took as many as it asked for). When
        # not, an attempt that ends sent wakes no round: new rows wake one themselves
        # (`Dispatcher.notify`), rows due later are found by the poll.
        self.backlog = True

    def free(self) -> int:
        with self.lock:
            return self.limits.concurrency - self.inflight


class Dispatcher:
    def __init__(self, store: DeliveryStore, providers: Mapping[str, Provider],
                 archive: ArchiveStore, rules: ContactRules, *,
                 clock: Callable[[], datetime], lease: timedelta, poll_seconds: float = 1.0,
                 sent_grace: timedelta = timedelta(days=7), purge_seconds: float = 60.0,
                 fallbacks: Callable[[dict[str, Any]], None] | None = None,
                 on_event: Callable[[], None] = lambda: None,
                 current_contacts: Callable[[str, str], CurrentContacts | None]
                 = lambda tenant, customer_id: None):
        self.store = store
        self.slots = {name: _Slot(p) for name, p in providers.items()}
        self.archive = archive
        self.rules = rules
        self.clock = clock
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.sent_grace = sent_grace
        self.purge_seconds = purge_seconds
        self.fallbacks = fallbacks
        self.on_event = on_event
        self.current_contacts = current_contacts
        self.owner = str(ULID())
        self.receipts = Receipts(store, providers, clock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._housekept = 0.0
        self._purged = 0.0
        self._fallback_due = threading.Event()  # something failed: look for fallbacks

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        for slot in self.slots.values():
            slot.provider.start(self.receipt)
        self._thread = threading.Thread(target=self._loop, name="delivery-dispatcher",
                                        daemon=True)
        self._thread.start()

    def recheck_held(self, now: datetime) -> int:
        """Rows held by quiet hours under the rules of an earlier start: each one these
        rules would let go before its release time is due at once, and its attempt decides
        again (sent, or held anew until these rules' opening). A bank that changes its
        quiet hours expects them to apply to what is waiting. -> how many."""
        earlier = []
        for row in self.store.held(now):
            country = json.loads(row["details"] or "{}").get("country", "")
            opens = self.rules.held_until(row["channel"], country, now)
            if opens is None or opens < row["next_attempt_at"]:
                earlier.append(row["delivery_id"])
        due = self.store.due_now(earlier, now)
        if due:
            log.info("held deliveries due again under the new quiet hours", deliveries=due)
        return due

    def notify(self, fallbacks: bool = True) -> None:
        """New rows were committed: dispatch now. `fallbacks`: some may be born failed with
        fallbacks to go on to (no provider for their channel), so look for due fallbacks in
        that round too (housekeeping looks every HOUSEKEEPING_SECONDS whatever is said)."""
        if fallbacks:
            self._fallback_due.set()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for slot in self.slots.values():
            slot.pool.shutdown(wait=True, cancel_futures=True)
            slot.provider.close()

    def _loop(self) -> None:
        try:  # before the first round, in this thread: a start is not held up by it
            self.recheck_held(self.clock())
        except Exception as exc:  # the database away: the rows keep their old time
            log.warning("held deliveries not checked against the quiet hours", error=repr(exc))
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # the database may be away for a moment: go on
                log.warning("delivery dispatch failed", error=repr(exc))
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def tick(self) -> int:
        """One round: housekeeping when due, then claim and start what may start now.
        -> how many attempts were started."""
        now = self.clock()
        if time.monotonic() - self._housekept >= HOUSEKEEPING_SECONDS:
            self._housekeeping(now)
        started = 0
        for name, slot in self.slots.items():
            metrics.BREAKER.labels(name).set(BREAKER_GAUGE[slot.breaker.state])
            wanted = slot.breaker.allowed(slot.free())
            tokens = slot.bucket.take(wanted) if wanted else 0
            if not tokens:
                slot.backlog = True
                continue
            rows = self.store.claim(name, tokens, now, self.owner, self.lease)
            slot.bucket.give_back(tokens - len(rows))
            # fewer rows than every free place asked for: the provider's due rows are all
            # taken (a row committed after the claim's query notifies)
            slot.backlog = len(rows) >= tokens or tokens < wanted
            if len(rows) < tokens and wanted == 1 and slot.breaker.state != "closed":
                slot.breaker.success()  # a half-open trial with nothing to try
            for row in rows:
                with slot.lock:
                    slot.inflight += 1
                slot.pool.submit(self._attempt, slot, row)
                started += 1
        if self.fallbacks is not None and self._fallback_due.is_set():
            self._fallback_due.clear()
            for row in self.store.due_fallbacks():
                self.fallbacks(row)
        return started

    def _housekeeping(self, now: datetime) -> None:
        self._housekept = time.monotonic()
        self._fallback_due.set()  # rows written by other processes (job workers)
        resend_at = {}
        for name, slot in self.slots.items():
            resend_at[name] = now + timedelta(seconds=slot.limits.in_doubt_seconds)
        reaped = self.store.reap(now, resend_at)
        if reaped:
            log.warning("interrupted attempts queued again", deliveries=len(reaped))
        expired = self.store.expire(now)
        if expired or reaped:
            self.on_event()
        depth = self.store.queue_depth()
        for name in self.slots:
            metrics.QUEUE_DEPTH.labels(name).set(depth.get(name, 0))
        if time.monotonic() - self._purged >= self.purge_seconds:
            self._purged = time.monotonic()
            self.store.purge_inputs(now, self.sent_grace)

    # --- one attempt ----------------------------------------------------------------------

    def _attempt(self, slot: _Slot, row: dict[str, Any]) -> None:
        name = slot.provider.name
        sent = False  # the row left the queue for good and nothing waits on it
        try:
            details = json.loads(row["details"])
            now = self.clock()
            if not self._rules_allow(slot, row, details, now):
                return
            try:
                content = (self.archive.get(row["archive_key"], expected_sha256=row["sha256"])
                           if slot.provider.needs_content else b"")
            except ArchiveError as exc:
                result: Result = Retry(f"archive unavailable: {exc}", provider_down=False)
            else:
                result = self._send(slot, row, details, content)
            self._finish(slot, row, result)
            sent = isinstance(result, Accepted)
        except Exception as exc:
            log.exception("delivery attempt failed", delivery_id=row["delivery_id"],
                          provider=name, error=repr(exc))
        finally:
            with slot.lock:
                slot.inflight -= 1
            # A round takes the next waiting row into the freed place, re-queued rows and
            # fallbacks; after a sent row with nothing waiting it would only find nothing.
            if not sent or slot.backlog or slot.breaker.state != "closed" or (
                    self.fallbacks is not None and self._fallback_due.is_set()):
                self._wake.set()

    def _rules_allow(self, slot: _Slot, row: dict[str, Any], details: dict[str, Any],
                     now: datetime) -> bool:
        store = self.store
        # recorded opt-outs (read now) and those the sender knew (a journey's profile)
        consents = details.get("consents", ())
        opted_out = store.opted_out(row["tenant"], row["customer_id"]) | set(
            details.get("opt_outs", ()))
        current = self.current_contacts(row["tenant"], row["customer_id"])
        if current is not None:  # and what the customer told the sender since
            consents, opted_out = current.judge(consents, opted_out)
        decision = self.rules.decide(
            channel=row["channel"], kind=row["kind"], marketing=bool(details.get("marketing")),
            legally_required=bool(details.get("legally_required")),
            consents=consents, opted_out=opted_out,
            country=details.get("country", ""), now=now,
            contacts_since=lambda since, marketing: store.contacts_since(
                row["tenant"], row["customer_id"], () if marketing else (row["kind"],), since,
                marketing=marketing, document_id=row["document_id"]))
        if decision.action == "send":
            return True
        metrics.ATTEMPTS.labels(slot.provider.name,
                                "held" if decision.action == "hold" else "suppressed").inc()
        if decision.action == "hold":
            store.release(row, self.owner, decision.until or now, decision.reason, now)
        else:
            self._fallback_due.set()
            extra = {} if decision.fallback else {"fallbacks": ""}
            store.finish(row, self.owner, State.SUPPRESSED, decision.reason, "suppressed", now,
                         **extra)
        self.on_event()
        return False

    def _send(self, slot: _Slot, row: dict[str, Any], details: dict[str, Any],
              content: bytes) -> Result:
        outgoing = Outgoing(
            delivery_id=row["delivery_id"], tenant=row["tenant"],
            document_id=row["document_id"], customer_id=row["customer_id"],
            channel=row["channel"], recipient=row["recipient"], content=content,
            media_type=row["media_type"], message_id=row["message_id"],
            attempt=row["attempts"], facts=details.get("facts", {}),
            details={**details, "kind": row["kind"], "archive_key": row["archive_key"],
                     "sha256": row["sha256"]})
        started = time.perf_counter()
        try:
            result = slot.provider.send(outgoing)
        except Exception as exc:  # an adapter bug or an unmapped error: retry, count it
            log.warning("provider raised", provider=slot.provider.name, error=repr(exc))
            result = Retry(f"provider error: {exc!r}")
        metrics.LATENCY.labels(slot.provider.name).observe(time.perf_counter() - started)
        if isinstance(result, Retry) and result.provider_down:
            slot.breaker.failure()
        else:
            slot.breaker.success()
        return result

    def _finish(self, slot: _Slot, row: dict[str, Any], result: Result) -> None:
        name, now, limits = slot.provider.name, self.clock(), slot.limits
        if isinstance(result, Accepted):
            state = State.DELIVERED if result.delivered else State.SENT
            self.store.finish(row, self.owner, state, result.reason, "accepted", now,
                              provider_message_id=result.provider_message_id[:200],
                              provider_ids=result.parts)
            metrics.ATTEMPTS.labels(name, "accepted").inc()
            metrics.SENT.labels(name).inc()
        elif isinstance(result, Failed):
            self._fallback_due.set()
            self.store.finish(row, self.owner, result.state, result.reason, "failed", now)
            metrics.ATTEMPTS.labels(name, "failed").inc()
            metrics.failed(name, result.state.value)
        elif (spent := attempts_spent(row)) >= limits.max_attempts:
            self._fallback_due.set()
            reason = f"dead letter after {spent} attempts: {result.reason}"
            self.store.finish(row, self.owner, State.FAILED, reason, "retry", now,
                              dead_letter=True)
            metrics.ATTEMPTS.labels(name, "retry").inc()
            metrics.failed(name, State.FAILED.value)
        else:
            wait = result.after or (timedelta(seconds=limits.in_doubt_seconds)
                                    if result.in_doubt else backoff(spent, limits))
            self.store.finish(row, self.owner, State.QUEUED, result.reason, "retry", now,
                              next_attempt_at=now + wait)
            metrics.ATTEMPTS.labels(name, "retry").inc()
        self.on_event()

    # --- receipts -------------------------------------------------------------------------

    def receipt(self, receipt: Receipt) -> bool:
        """Apply an asynchronous receipt (DSN, SMPP deliver_sm, a callback; see
        server.delivery.receipts). -> whether a row moved. Raises when the database is
        away (the sender should retry)."""
        moved = self.receipts.apply(receipt)
        if moved:
            self._fallback_due.set()
            self.on_event()
            self._wake.set()
        return moved
