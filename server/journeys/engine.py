"""Journeys as durable workflows: events start and end instances; timers move them on.

Like a Temporal workflow, an instance is plain data moved by two things only:

- an event (`on_event`, inside the event's own transaction): the customer's profile takes
  the event's attributes; every journey of the tenant that the event type triggers and
  whose conditions hold starts an instance (unique per trigger occurrence, so replaying
  the event starts nothing new) with a timer for its first step; instances waiting on a
  step whose `unless` names the event, or whose journey `exit_on` names it, exit.
- a timer (`run_due`): due timers are claimed with a lease (FOR UPDATE SKIP LOCKED on
  PostgreSQL, so several servers can tick one database) and each fires in its own
  transaction: a wait checks its `unless` events again (an event may have been replayed
  late) and moves on; a send asks the contact policy (send, hold until, or suppress and
  record why), refuses (recorded as a suppression, like the policy's) a document whose
  `customer.customer_id` names another customer than the instance's (`other_customer`: a
  profile's recipient naming B would file A's communication in B's archive and mailbox),
  and writes a `journey_sends` row, unique per (journey, customer, step,
  occurrence), which server.journeys.sends turns into a bulk-job record, with the
  profile's consents and opt-outs the policy read (so the delivery stage's contact rules
  judge the document by them too) and, when a branch reacts to the send's bounce, no
  fallbacks in its plan (the branch owns the reaction: one letter, not two); a branch
  looks at what happened to an earlier send (responded, clicked, bounced, delivered); an
  exit ends.
  Every step of an instance runs at most once (one timer per instance and step).

The clock is injected: tests move time forward and call `run_due` (no sleeping).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping
from ulid import ULID

from server import logs
from server.compose.data import read_stored_json
from server.delivery.rules import Decision
from server.delivery.tables import deliveries
from server.events.publish import Event, json_text
from server.events.tables import events
from server.journeys import conditions
from server.journeys.definition import EXIT, Journey, JourneyCatalog, Step
from server.journeys.policy import ContactPolicy, ContactRequest
from server.journeys.profiles import (
    load_profile,
    merge_profile,
    other_customer,
    send_options,
)
from server.journeys.sql import insert_new
from server.journeys.tables import instances, sends, timers

log = logs.get_logger(__name__)

ACTIVE, COMPLETED, EXITED = "active", "completed", "exited"
PENDING, DONE, CANCELLED = "pending", "done", "cancelled"
CLICKED_EVENT, RESPONDED_EVENT = "link_clicked", "survey_response"
FIRE_BATCH = 100  # timers fired per transaction


@dataclass(slots=True)
class TickResult:
    fired: int = 0
    sends: int = 0
    suppressed: int = 0
    held: int = 0
    exited: int = 0

    def add(self, other: TickResult) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class JourneyEngine:
    def __init__(self, engine: Engine, catalog: JourneyCatalog, policy: ContactPolicy, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 lease: timedelta = timedelta(seconds=60)):
        self.engine = engine
        self.catalog = catalog
        self.policy = policy
        self.clock = clock
        self.lease = lease
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{ULID()!s}"[:64]
        self.postgres = engine.dialect.name == "postgresql"

    # --- events ------------------------------------------------------------------------------

    def on_event(self, conn: Connection, event: Event, replay: bool) -> tuple[int, int]:
        """server.events.publish.Listener: start and end instances for a stored event."""
        now = self.clock()
        attributes: dict[str, Any] | None = None
        if event.attributes and not replay:
            attributes = merge_profile(conn, event.tenant, event.customer_id,
                                       event.attributes, now)
        exited = 0
        if not replay and event.event_type in self.catalog.ending(event.tenant):
            exited = self._exit_on(conn, event, now)
        started = 0
        for journey in self.catalog.triggered_by(event.tenant, event.event_type):
            if journey.conditions:
                if attributes is None:
                    attributes = load_profile(conn, event.tenant, event.customer_id)
                ok, _why = conditions.holds(conn, journey.conditions, tenant=event.tenant,
                                            customer_id=event.customer_id,
                                            attributes=attributes, at=event.occurred_at)
                if not ok:
                    continue
            if self._start(conn, journey, event, now):
                started += 1
        return started, exited

    def _start(self, conn: Connection, journey: Journey, event: Event, now: datetime) -> bool:
        instance_id = str(ULID())
        first = journey.steps[0]
        if not insert_new(conn, instances, {
                "instance_id": instance_id, "tenant": event.tenant, "journey": journey.name,
                "version": journey.version, "customer_id": event.customer_id,
                "occurrence": event.event_id if journey.reentry == "every" else "",
                "trigger_event_id": event.event_id, "trigger_at": event.occurred_at,
                "priority": journey.priority, "state": ACTIVE, "step": first.id,
                "reason": "", "started_at": now}):
            return False  # this occurrence already has its instance
        self._enter(conn, journey, instance_id, event.tenant, event.customer_id, first,
                    event.occurred_at, moved=False)
        return True

    def _exit_on(self, conn: Connection, event: Event, now: datetime) -> int:
        """End the customer's active instances that this event ends: a journey's `exit_on`,
        or the `unless` of the wait step they are in."""
        rows = conn.execute(select(instances).where(
            instances.c.tenant == event.tenant, instances.c.customer_id == event.customer_id,
            instances.c.state == ACTIVE)).mappings().all()
        ended = 0
        for row in rows:
            journey = self.catalog.get(row["tenant"], row["journey"], row["version"])
            if journey is None:
                continue
            step = journey.step(row["step"])
            if event.event_type in journey.exit_on or (
                    step.type == "wait" and event.event_type in step.unless
                    and event.occurred_at >= row["trigger_at"]):
                self._end(conn, row["instance_id"], EXITED, f"{event.event_type} came "
                          f"(event {event.event_id})", now)
                ended += 1
        return ended

    # --- timers ------------------------------------------------------------------------------

    def _enter(self, conn: Connection, journey: Journey, instance_id: str, tenant: str,
               customer_id: str, step: Step, at: datetime, moved: bool = True) -> None:
        """The instance reaches `step` at `at`: its timer (a wait or a branch: after its
        duration; anything else: now)."""
        due = at + step.wait if step.type in ("wait", "branch") else at
        insert_new(conn, timers, {
            "instance_id": instance_id, "step": step.id, "tenant": tenant,
            "customer_id": customer_id, "priority": journey.priority,
            "category": journey.category_of(step) if step.type == "send" else "",
            "due_at": due, "state": PENDING})
        if moved:
            conn.execute(update(instances).where(instances.c.instance_id == instance_id)
                         .values(step=step.id))

    def _claim(self, now: datetime, limit: int) -> list[RowMapping]:
        due = and_(timers.c.state == PENDING, timers.c.due_at <= now,
                   or_(timers.c.lease_until.is_(None), timers.c.lease_until < now))
        with self.engine.begin() as conn:
            query = select(timers.c.timer_id).where(due).order_by(
                timers.c.priority.desc(), timers.c.due_at).limit(limit)
            if self.postgres:
                query = query.with_for_update(skip_locked=True)
            ids = list(conn.execute(query).scalars())
            if not ids:
                return []
            conn.execute(update(timers).where(timers.c.timer_id.in_(ids), due).values(
                lease_owner=self.owner, lease_until=now + self.lease))
            return list(conn.execute(select(timers).where(
                timers.c.timer_id.in_(ids), timers.c.lease_owner == self.owner)
                .order_by(timers.c.priority.desc(), timers.c.due_at)).mappings())

    def run_due(self, limit: int = 500, rounds: int = 20) -> TickResult:
        """Fire every due timer (steps that follow at once fire in the next round, up to
        `rounds`) -> what happened."""
        total = TickResult()
        for _ in range(rounds):
            now = self.clock()
            claimed = self._claim(now, limit)
            if not claimed:
                break
            for start in range(0, len(claimed), FIRE_BATCH):
                total.add(self._fire_batch(claimed[start:start + FIRE_BATCH], now))
        return total

    def _fire_batch(self, batch: list[RowMapping], now: datetime) -> TickResult:
        """Fire timers in one transaction (one commit, not one per timer); if any fails,
        each again in its own, so one bad timer holds up no other (it keeps its lease
        until it expires, then is tried again)."""
        result = TickResult()
        try:
            with self.engine.begin() as conn:
                for timer in batch:
                    result.add(self._fire(conn, timer, now))
            return result
        except Exception as exc:  # noqa: BLE001 - narrowed down below, per timer
            log.warning("a batch of timers failed; firing one by one", error=repr(exc)[:300])
        result = TickResult()
        for timer in batch:
            try:
                with self.engine.begin() as conn:
                    result.add(self._fire(conn, timer, now))
            except Exception as exc:  # noqa: BLE001
                log.error("journey timer failed", timer_id=timer["timer_id"],
                          instance_id=timer["instance_id"], step=timer["step"],
                          error=repr(exc)[:500])
        return result

    def _fire(self, conn: Connection, timer: RowMapping, now: datetime) -> TickResult:
        result = TickResult(fired=1)
        held = (timers.c.timer_id == timer["timer_id"], timers.c.lease_owner == self.owner,
                timers.c.state == PENDING)
        instance = conn.execute(select(instances).where(
            instances.c.instance_id == timer["instance_id"])).mappings().first()
        journey = instance and self.catalog.get(instance["tenant"], instance["journey"],
                                                instance["version"])
        if instance is None or instance["state"] != ACTIVE or journey is None:
            if instance is not None and instance["state"] == ACTIVE:
                self._end(conn, instance["instance_id"], EXITED,
                          f"journey {instance['journey']}@{instance['version']} is no longer "
                          "loaded", now)
            conn.execute(update(timers).where(*held).values(state=CANCELLED, fired_at=now))
            return result
        step = journey.step(timer["step"])
        following: str | None = journey.after(step)
        if step.type == "wait":
            came = self._came(conn, instance, step.unless)
            if came is not None:
                self._end(conn, instance["instance_id"], EXITED, came, now)
                result.exited += 1
                following = None
        elif step.type == "send":
            outcome = self._send(conn, journey, instance, step, now)
            if outcome.action == "hold":
                conn.execute(update(timers).where(*held).values(
                    due_at=outcome.until, lease_owner=None, lease_until=None))
                result.held += 1
                return result
            if outcome.action == "suppress":
                result.suppressed += 1
            else:
                result.sends += 1
        elif step.type == "branch":
            happened = self._outcome(conn, instance, step)
            following = step.outcomes.get(happened, step.otherwise) if happened else step.otherwise
        else:
            following = EXIT
        conn.execute(update(timers).where(*held).values(state=DONE, fired_at=now))
        if following is None:
            return result
        if following == EXIT:
            self._end(conn, instance["instance_id"], COMPLETED, f"finished at step {step.id}",
                      now)
            return result
        self._enter(conn, journey, instance["instance_id"], instance["tenant"],
                    instance["customer_id"], journey.step(following), now)
        return result

    def _end(self, conn: Connection, instance_id: str, state: str, reason: str,
             now: datetime) -> None:
        conn.execute(update(instances).where(
            instances.c.instance_id == instance_id, instances.c.state == ACTIVE).values(
            state=state, reason=reason[:2000], ended_at=now))
        conn.execute(update(timers).where(timers.c.instance_id == instance_id,
                                          timers.c.state == PENDING).values(state=CANCELLED))

    def _came(self, conn: Connection, instance: RowMapping, types: tuple[str, ...]
              ) -> str | None:
        """Why the instance stops waiting: one of `types` happened since its trigger."""
        if not types:
            return None
        row = conn.execute(select(events.c.event_type, events.c.event_id).where(
            events.c.tenant == instance["tenant"],
            events.c.customer_id == instance["customer_id"],
            events.c.event_type.in_(list(types)),
            events.c.occurred_at >= instance["trigger_at"]).limit(1)).first()
        return f"{row.event_type} came (event {row.event_id})" if row else None

    # --- sending -----------------------------------------------------------------------------

    def _send(self, conn: Connection, journey: Journey, instance: RowMapping, step: Step,
              now: datetime) -> Any:
        tenant, customer = instance["tenant"], instance["customer_id"]
        attributes = load_profile(conn, tenant, customer)
        request = ContactRequest(tenant, customer, journey.category_of(step),
                                 f"journey:{journey.ref}:{step.id}", journey.priority,
                                 instance["instance_id"])
        decision = self.policy.check(conn, request, now, attributes)
        if decision.action == "suppress":
            self.policy.suppress(conn, request, decision.reason, now)
        if decision.action != "send":
            return decision
        trigger = conn.execute(select(events).where(
            events.c.event_id == instance["trigger_event_id"])).mappings().first()
        data = resolve(step.data, {
            "trigger": {"data": read_stored_json(trigger["data"]) if trigger else {},
                        "customer_id": customer, "event_id": instance["trigger_event_id"],
                        "occurred_at": instance["trigger_at"].isoformat(),
                        "occurred_date": instance["trigger_at"].date().isoformat()},
            "customer": attributes,
        })
        wrong = other_customer(data, customer, step.data.get("customer"))
        if wrong is not None:  # never a document of this customer filed under another
            self.policy.suppress(conn, request, wrong, now)
            log.warning("journey send refused: its document names another customer",
                        tenant=tenant, journey=journey.ref, step=step.id,
                        instance_id=instance["instance_id"], field="$.customer.customer_id")
            return Decision("suppress", wrong)
        send_id = str(ULID())
        if insert_new(conn, sends, {
                "send_id": send_id, "tenant": tenant, "journey": journey.name,
                "version": journey.version, "customer_id": customer, "step": step.id,
                "occurrence": instance["occurrence"], "instance_id": instance["instance_id"],
                "category": request.category, "layout_id": step.layout,
                "layout_version": step.layout_version or "",
                "channels": ",".join(step.channels), "data": json_text(data),
                "options": send_options(attributes,
                                        fallbacks=not journey.reacts_to_bounce(step)).to_json(),
                "priority": journey.priority, "state": "planned", "planned_at": now}):
            self.policy.record(conn, request, now, send_id)
        return decision

    def _outcome(self, conn: Connection, instance: RowMapping, step: Step) -> str | None:
        """What happened to the document of send step `step.on`, in OUTCOMES order."""
        sent = conn.execute(select(sends).where(
            sends.c.instance_id == instance["instance_id"], sends.c.step == step.on)
        ).mappings().first()
        if sent is None or not sent["document_id"]:
            return None
        tenant, customer, document = sent["tenant"], sent["customer_id"], sent["document_id"]
        for outcome, event_type in (("responded", RESPONDED_EVENT), ("clicked", CLICKED_EVENT)):
            if outcome not in step.outcomes:
                continue
            for text in conn.execute(select(events.c.data).where(
                    events.c.tenant == tenant, events.c.customer_id == customer,
                    events.c.event_type == event_type,
                    events.c.occurred_at >= sent["planned_at"])).scalars():
                if json.loads(text).get("document_id") in (None, document):
                    return outcome
        states = set(conn.execute(select(deliveries.c.state).where(
            deliveries.c.tenant == tenant, deliveries.c.document_id == document)).scalars())
        if states & DID_NOT_REACH:
            return "bounced"
        if "delivered" in states:
            return "delivered"
        return None


# A branch's `bounced`: the document did not reach the customer by the send's channel. A
# send the branch reacts to has no fallback (Journey.reacts_to_bounce), so besides a bounce
# this is any end the delivery stage would have fallen back from: a permanent failure,
# expiry, or the contact rules (an e-mail opt-out); the journey's own next step is checked
# by the contact policy and the delivery rules again, so no opt-out is passed by.
DID_NOT_REACH = frozenset({"bounced", "failed", "expired", "suppressed", "fell_back"})


def resolve(template: Any, sources: Mapping[str, Any]) -> Any:
    """A step's data with every "$source.path" string replaced by that value ("$$" for a
    literal "$"); a path that leads nowhere becomes null (the layout's schema then says
    what is missing)."""
    if isinstance(template, Mapping):
        return {k: resolve(v, sources) for k, v in template.items()}
    if isinstance(template, list):
        return [resolve(v, sources) for v in template]
    if isinstance(template, str) and template.startswith("$"):
        if template.startswith("$$"):
            return template[1:]
        value: Any = sources
        for part in template[1:].split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value
    return template
