"""The outbox tables and every change of a delivery's state, in the index database.

Tables (server.delivery.tables):

- `deliveries`: one row per planned delivery of a document's channel: recipient, the
  archived output to send, the idempotency key (`message_id`, decided when the row is
  written, before any attempt), state, attempts, the next attempt's time, a lease while a
  dispatcher sends, the fallback chain (`fallback_of`, the channels still to try).
- `delivery_attempts`: one row per attempt, written *before* the provider is called and
  finished after: a kill -9 in between leaves an open attempt, which the reaper closes
  as `interrupted`.
- `delivery_events`: every state change with its time and the provider's words; the
  source of `WatchDeliveries` and of webhooks (`delivery_webhooks`: one row per event
  still to post to the tenant's URL).
- `delivery_inputs`: the document's compose input, encrypted (server.delivery.sealed),
  kept until every delivery of the document has ended, to render a fallback channel.
- `delivery_optouts`: a customer's opt-outs (a channel, or `marketing`), read at send time.
- `delivery_provider_ids`: the provider ids of a message sent in parts, with each part's
  receipt outcome.

Every change is a compare-and-set on the row's state (and lease owner), so two
dispatchers, a receipt and an operator never both move one row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, RowMapping

from server.delivery import metrics
from server.delivery.model import (
    FINAL,
    HANDS_OVER,
    Attempt,
    Delivery,
    DeliveryEvent,
    State,
)
from server.delivery.outbox import OutboxWrite, first_event
from server.delivery.tables import (
    deliveries,
    delivery_attempts,
    delivery_events,
    delivery_inputs,
    delivery_optouts,
    delivery_provider_ids,
    delivery_webhooks,
    metadata,
)

ENDED_BADLY = frozenset({State.BOUNCED.value, State.FAILED.value, State.EXPIRED.value})


def _held(row: Mapping[str, Any], owner: str) -> tuple[Any, ...]:
    """The row is still in the attempt `owner` claimed (not reaped, not moved by a receipt)."""
    return (deliveries.c.delivery_id == row["delivery_id"],
            deliveries.c.state == State.SENDING.value, deliveries.c.lease_owner == owner,
            deliveries.c.attempts == row["attempts"])


def delivery_from_row(row: Mapping[str, Any]) -> Delivery:
    return Delivery(
        delivery_id=row["delivery_id"], tenant=row["tenant"], document_id=row["document_id"],
        customer_id=row["customer_id"], channel=row["channel"], provider=row["provider"],
        recipient=row["recipient"], state=State(row["state"]), state_at=row["state_at"],
        reason=row["reason"], attempts=row["attempts"], next_attempt_at=row["next_attempt_at"],
        message_id=row["message_id"], provider_message_id=row["provider_message_id"],
        created_at=row["created_at"], fallback_of=row["fallback_of"],
        fallbacks=tuple(c for c in row["fallbacks"].split(",") if c),
        dead_letter=bool(row["dead_letter"]), kind=row["kind"], archive_key=row["archive_key"],
    )


def _event(row: Mapping[str, Any]) -> DeliveryEvent:
    return DeliveryEvent(row["event_id"], row["delivery_id"], row["tenant"], row["document_id"],
                         row["channel"], State(row["state"]), row["at"], row["reason"])


def _webhook(event_id: int, tenant: str, now: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "tenant": tenant, "attempts": 0, "next_attempt_at": now,
            "done": False, "last_error": ""}


class DeliveryStore:
    """Rows of the outbox on the index's engine. `webhook_tenants`: tenants with a webhook
    URL; each of their events also gets a `delivery_webhooks` row, in the same transaction."""

    def __init__(self, engine: Engine, webhook_tenants: Iterable[str] = ()):
        self.engine = engine
        self.webhook_tenants = frozenset(webhook_tenants)
        self.postgres = engine.dialect.name == "postgresql"

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            metadata.create_all(conn)

    # --- writing with a document (inside DocumentIndex.add's transaction) -----------------

    def insert(self, conn: Connection, rows: Sequence[dict[str, Any]], now: datetime,
               sealed: tuple[str, str, bytes, datetime] | None = None) -> None:
        """New deliveries (each with its first event) and the sealed input, on `conn`."""
        self.insert_many(conn, [OutboxWrite(tuple(rows), now, sealed)])

    def insert_many(self, conn: Connection, writes: Sequence[OutboxWrite]) -> None:
        """Documents' `OutboxWrite`s on `conn` (a bulk chunk's, in its index transaction):
        one executemany per table, not statements per row. A webhook tenant's events come
        back with their ids (RETURNING, in row order) for their `delivery_webhooks` rows."""
        rows = [row for write in writes for row in write.rows]
        events = [first_event(row, write.now) for write in writes for row in write.rows]
        hooked = [n for n, row in enumerate(rows) if row["tenant"] in self.webhook_tenants]
        if rows:
            conn.execute(insert(deliveries), rows)
        if hooked:
            ids = conn.execute(insert(delivery_events).returning(
                delivery_events.c.event_id, sort_by_parameter_order=True), events).scalars().all()
            conn.execute(insert(delivery_webhooks), [
                _webhook(ids[n], rows[n]["tenant"], events[n]["at"]) for n in hooked])
        elif events:
            conn.execute(insert(delivery_events), events)
        for row in rows:
            if row["state"] in ENDED_BADLY:  # no provider for its channel: failed at once
                metrics.failed(row["provider"], row["state"])
        inputs = [{"tenant": w.sealed[0], "document_id": w.sealed[1], "sealed": w.sealed[2],
                   "created_at": w.now, "purge_at": w.sealed[3]} for w in writes if w.sealed]
        if inputs:
            conn.execute(insert(delivery_inputs), inputs)

    def _record(self, conn: Connection, row: Mapping[str, Any], state: State, reason: str,
                now: datetime) -> None:
        result = conn.execute(insert(delivery_events).values(
            delivery_id=row["delivery_id"], tenant=row["tenant"],
            document_id=row["document_id"], channel=row["channel"], state=state.value,
            at=now, reason=reason[:2000]))
        if row["tenant"] in self.webhook_tenants:
            conn.execute(insert(delivery_webhooks).values(
                **_webhook(result.inserted_primary_key[0], row["tenant"], now)))

    # --- state changes ----------------------------------------------------------------------

    def move(self, delivery_id: str, to: State, reason: str, now: datetime, *,
             only_from: Iterable[State], conn: Connection | None = None,
             **columns: Any) -> bool:
        """Compare-and-set: move the row to `to` if it is in one of `only_from`; record the
        event. -> whether it moved. A row that changed under us (a receipt racing the
        attempt's own finish) is read again and tried again while it is still movable."""
        allowed = set(only_from)

        def run(c: Connection) -> bool:
            for _ in range(5):
                row = c.execute(select(deliveries).where(
                    deliveries.c.delivery_id == delivery_id)).mappings().first()
                if row is None or State(row["state"]) not in allowed:
                    return False
                moved = c.execute(update(deliveries).where(
                    deliveries.c.delivery_id == delivery_id,
                    deliveries.c.state == row["state"],
                    deliveries.c.attempts == row["attempts"],
                ).values(state=to.value, state_at=now, reason=reason[:2000], **columns))
                if moved.rowcount == 1:
                    self._record(c, row, to, reason, now)
                    return True
            return False
        if conn is not None:
            return run(conn)
        with self.engine.begin() as c:
            return run(c)

    def claim(self, provider: str, limit: int, now: datetime, owner: str,
              lease: timedelta) -> list[dict[str, Any]]:
        """Take up to `limit` due rows of `provider` for sending: state `sending`, a lease,
        one more attempt, and the attempt's row with the message id, all committed before
        the provider is called. PostgreSQL skips rows other dispatchers hold
        (FOR UPDATE SKIP LOCKED); on SQLite the compare-and-set alone decides."""
        query = (select(deliveries).where(
            deliveries.c.state == State.QUEUED.value, deliveries.c.provider == provider,
            deliveries.c.next_attempt_at <= now,
        ).order_by(deliveries.c.next_attempt_at, deliveries.c.delivery_id).limit(limit))
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        claimed = []
        with self.engine.begin() as conn:
            for row in conn.execute(query).mappings().all():
                attempt = row["attempts"] + 1
                moved = conn.execute(update(deliveries).where(
                    deliveries.c.delivery_id == row["delivery_id"],
                    deliveries.c.state == State.QUEUED.value,
                    deliveries.c.attempts == row["attempts"],
                ).values(state=State.SENDING.value, state_at=now, attempts=attempt,
                         lease_owner=owner, lease_until=now + lease, reason=""))
                if moved.rowcount != 1:
                    continue
                conn.execute(insert(delivery_attempts).values(
                    delivery_id=row["delivery_id"], number=attempt, started_at=now,
                    finished_at=None, outcome="", reason="", message_id=row["message_id"]))
                self._record(conn, row, State.SENDING, f"attempt {attempt}", now)
                claimed.append({**row, "attempts": attempt, "state": State.SENDING.value})
        return claimed

    def finish(self, row: Mapping[str, Any], owner: str, to: State, reason: str,
               outcome: str, now: datetime, *, provider_ids: Sequence[str] = (),
               **columns: Any) -> bool:
        """Close the attempt and move the row out of `sending`, if this owner still holds
        it (a reaped lease means someone else may be sending it now). `provider_ids`: the
        ids of an accepted message's parts, recorded either way."""
        with self.engine.begin() as conn:
            moved = conn.execute(update(deliveries).where(*_held(row, owner)).values(
                state=to.value, state_at=now, reason=reason[:2000], lease_owner=None,
                lease_until=None, **columns))
            # Closed either way: a receipt may have moved the row first (a DSN can arrive
            # before the relay's 250 is recorded); the attempt's outcome still stands, and
            # so do the provider's ids, which later receipts are matched against.
            self._close_attempt(conn, row["delivery_id"], row["attempts"], outcome, reason, now)
            self._record_provider_ids(conn, row, provider_ids)
            if moved.rowcount != 1:
                if columns.get("provider_message_id"):
                    conn.execute(update(deliveries).where(
                        deliveries.c.delivery_id == row["delivery_id"],
                        deliveries.c.provider_message_id == "").values(
                        provider_message_id=columns["provider_message_id"]))
                return False
            self._record(conn, row, to, reason, now)
            return True

    def release(self, row: Mapping[str, Any], owner: str, until: datetime, reason: str,
                now: datetime) -> bool:
        """Give a claimed row back unsent (held by quiet hours): no attempt is counted."""
        with self.engine.begin() as conn:
            moved = conn.execute(update(deliveries).where(*_held(row, owner)).values(
                state=State.QUEUED.value, state_at=now, reason=reason[:2000],
                attempts=row["attempts"] - 1, next_attempt_at=until, lease_owner=None,
                lease_until=None))
            if moved.rowcount != 1:
                return False
            conn.execute(delete(delivery_attempts).where(
                delivery_attempts.c.delivery_id == row["delivery_id"],
                delivery_attempts.c.number == row["attempts"]))
            self._record(conn, row, State.QUEUED, reason, now)
            return True

    @staticmethod
    def _close_attempt(conn: Connection, delivery_id: str, number: int, outcome: str,
                       reason: str, now: datetime) -> None:
        conn.execute(update(delivery_attempts).where(
            delivery_attempts.c.delivery_id == delivery_id,
            delivery_attempts.c.number == number,
            delivery_attempts.c.finished_at.is_(None),
        ).values(finished_at=now, outcome=outcome, reason=reason[:2000]))

    def reap(self, now: datetime, resend_at: Mapping[str, datetime]) -> list[str]:
        """Rows left `sending` past their lease (a dispatcher died mid-attempt): close the
        attempt as `interrupted` and queue the row again at `resend_at[provider]` (a
        provider that may have accepted it waits for a receipt first)."""
        with self.engine.begin() as conn:
            rows = conn.execute(select(deliveries).where(
                deliveries.c.state == State.SENDING.value,
                deliveries.c.lease_until < now)).mappings().all()
            reaped = []
            for row in rows:
                at = resend_at.get(row["provider"], now)
                reason = "attempt interrupted (the dispatcher stopped mid-attempt)"
                moved = conn.execute(update(deliveries).where(
                    deliveries.c.delivery_id == row["delivery_id"],
                    deliveries.c.state == State.SENDING.value,
                    deliveries.c.attempts == row["attempts"],
                ).values(state=State.QUEUED.value, state_at=now, reason=reason,
                         next_attempt_at=at, lease_owner=None, lease_until=None))
                if moved.rowcount == 1:
                    self._close_attempt(conn, row["delivery_id"], row["attempts"],
                                        "interrupted", reason, now)
                    self._record(conn, row, State.QUEUED, reason, now)
                    reaped.append(row["delivery_id"])
            return reaped

    def expire(self, now: datetime) -> list[str]:
        """Queued rows past their `expires_at` -> `expired` (which falls back)."""
        with self.engine.begin() as conn:
            due = conn.execute(select(deliveries.c.delivery_id, deliveries.c.provider).where(
                deliveries.c.state == State.QUEUED.value,
                deliveries.c.expires_at < now)).all()
            expired = [(d, provider) for d, provider in due if self.move(
                d, State.EXPIRED, "not sent before it expired", now,
                only_from=[State.QUEUED], conn=conn)]
        for _, provider in expired:
            metrics.failed(provider, State.EXPIRED.value)
        return [d for d, _ in expired]

    # --- reading ----------------------------------------------------------------------------

    def row(self, delivery_id: str) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(deliveries).where(
                deliveries.c.delivery_id == delivery_id)).mappings().first()
            return dict(row) if row else None

    def by_provider_id(self, provider: str, provider_message_id: str) -> dict[str, Any] | None:
        """The delivery the provider knows by this id (its own, or one of its parts'): the
        newest one, since a provider may give an id out again later (delivery ids sort by
        time)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(deliveries).where(
                deliveries.c.provider == provider,
                deliveries.c.provider_message_id == provider_message_id,
            ).order_by(deliveries.c.delivery_id.desc())).mappings().first()
            if row is None:
                row = conn.execute(select(deliveries).join(
                    delivery_provider_ids,
                    delivery_provider_ids.c.delivery_id == deliveries.c.delivery_id).where(
                    delivery_provider_ids.c.provider == provider,
                    delivery_provider_ids.c.provider_message_id == provider_message_id,
                ).order_by(deliveries.c.delivery_id.desc())).mappings().first()
            return dict(row) if row else None

    def waiting_for(self, provider: str, recipient: str) -> list[dict[str, Any]]:
        """The recipient's deliveries by `provider` that a receipt may still concern."""
        with self.engine.begin() as conn:
            return [dict(r) for r in conn.execute(select(deliveries).where(
                deliveries.c.provider == provider, deliveries.c.recipient == recipient,
                deliveries.c.state.in_([State.QUEUED.value, State.SENDING.value,
                                        State.SENT.value]))).mappings()]

    def _record_provider_ids(self, conn: Connection, row: Mapping[str, Any],
                             ids: Sequence[str]) -> None:
        """Insert-if-absent: a part's receipt can arrive (receipts thread) while the send
        that recorded its id (dispatcher) is still committing, so a check-then-insert
        would race; ON CONFLICT DO NOTHING lets both writers record the same id."""
        dialect_insert = postgresql_insert if self.postgres else sqlite_insert
        for provider_message_id in dict.fromkeys(ids):
            conn.execute(dialect_insert(delivery_provider_ids).values(
                provider=row["provider"], provider_message_id=provider_message_id[:200],
                delivery_id=row["delivery_id"], outcome="").on_conflict_do_nothing())

    def part_receipt(self, row: Mapping[str, Any], provider_message_id: str,
                     outcome: str) -> int:
        """Record one part's receipt; -> how many parts of the delivery are delivered."""
        with self.engine.begin() as conn:
            self._record_provider_ids(conn, row, [provider_message_id])
            conn.execute(update(delivery_provider_ids).where(
                delivery_provider_ids.c.provider == row["provider"],
                delivery_provider_ids.c.provider_message_id == provider_message_id,
                delivery_provider_ids.c.delivery_id == row["delivery_id"],
            ).values(outcome=outcome))
            return conn.execute(select(func.count()).select_from(delivery_provider_ids).where(
                delivery_provider_ids.c.delivery_id == row["delivery_id"],
                delivery_provider_ids.c.outcome == "delivered")).scalar() or 0

    def get(self, tenant: str, delivery_id: str, *, history: bool = True) -> Delivery | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(deliveries).where(
                deliveries.c.tenant == tenant,
                deliveries.c.delivery_id == delivery_id)).mappings().first()
            if row is None:
                return None
            return self._with_history(conn, [row])[0] if history else delivery_from_row(row)

    def for_document(self, tenant: str, document_id: str) -> list[Delivery]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(deliveries).where(
                deliveries.c.tenant == tenant, deliveries.c.document_id == document_id,
            ).order_by(deliveries.c.created_at, deliveries.c.delivery_id)).mappings().all()
            return self._with_history(conn, rows)

    def list(self, tenant: str, *, states: Sequence[str] = (), dead_letter: bool = False,
             document_id: str = "", limit: int = 100) -> list[Delivery]:
        query = select(deliveries).where(deliveries.c.tenant == tenant)
        if states:
            query = query.where(deliveries.c.state.in_(list(states)))
        if dead_letter:
            query = query.where(deliveries.c.dead_letter.is_(True))
        if document_id:
            query = query.where(deliveries.c.document_id == document_id)
        query = query.order_by(deliveries.c.delivery_id.desc()).limit(limit)
        with self.engine.begin() as conn:
            return [delivery_from_row(r) for r in conn.execute(query).mappings()]

    def _with_history(self, conn: Connection, rows: Sequence[RowMapping]) -> list[Delivery]:
        ids = [r["delivery_id"] for r in rows]
        events: dict[str, list[DeliveryEvent]] = {i: [] for i in ids}
        for e in conn.execute(select(delivery_events).where(
                delivery_events.c.delivery_id.in_(ids)).order_by(
                delivery_events.c.event_id)).mappings():
            events[e["delivery_id"]].append(_event(e))
        attempts: dict[str, list[Attempt]] = {i: [] for i in ids}
        for a in conn.execute(select(delivery_attempts).where(
                delivery_attempts.c.delivery_id.in_(ids)).order_by(
                delivery_attempts.c.number)).mappings():
            attempts[a["delivery_id"]].append(Attempt(
                a["number"], a["started_at"], a["finished_at"], a["outcome"], a["reason"],
                a["message_id"]))
        out = []
        for r in rows:
            d = delivery_from_row(r)
            out.append(Delivery(**{**{f: getattr(d, f) for f in d.__dataclass_fields__},
                                   "events": tuple(events[d.delivery_id]),
                                   "attempt_log": tuple(attempts[d.delivery_id])}))
        return out

    def events_after(self, tenant: str, after: int, *, document_id: str = "",
                     limit: int = 500) -> list[DeliveryEvent]:
        query = select(delivery_events).where(delivery_events.c.tenant == tenant,
                                              delivery_events.c.event_id > after)
        if document_id:
            query = query.where(delivery_events.c.document_id == document_id)
        with self.engine.begin() as conn:
            return [_event(r) for r in conn.execute(
                query.order_by(delivery_events.c.event_id).limit(limit)).mappings()]

    def last_event_id(self) -> int:
        with self.engine.begin() as conn:
            return conn.execute(select(func.max(delivery_events.c.event_id))).scalar() or 0

    def queue_depth(self) -> dict[str, int]:
        """Due or waiting rows per provider (`queued` and `sending`)."""
        with self.engine.begin() as conn:
            return dict(conn.execute(select(deliveries.c.provider, func.count()).where(
                deliveries.c.state.in_([State.QUEUED.value, State.SENDING.value])
            ).group_by(deliveries.c.provider)).all())

    def due_fallbacks(self, limit: int = 50) -> list[dict[str, Any]]:
        """Rows failed for good (or suppressed for one channel) that still have a channel
        to fall back to."""
        with self.engine.begin() as conn:
            return [dict(r) for r in conn.execute(select(deliveries).where(
                deliveries.c.state.in_([s.value for s in HANDS_OVER]),
                deliveries.c.fallbacks != "").limit(limit)).mappings()]

    # --- contact rules ----------------------------------------------------------------------

    def contacts_since(self, tenant: str, customer_id: str, kinds: Sequence[str],
                       since: datetime, *, marketing: bool = False,
                       exclude: str = "") -> int:
        """Deliveries that reached this customer (sent or delivered) since `since`."""
        query = select(deliveries.c.details).where(
            deliveries.c.tenant == tenant, deliveries.c.customer_id == customer_id,
            deliveries.c.state.in_([State.SENT.value, State.DELIVERED.value]),
            deliveries.c.state_at >= since, deliveries.c.delivery_id != exclude)
        if kinds:
            query = query.where(deliveries.c.kind.in_(list(kinds)))
        with self.engine.begin() as conn:
            details = list(conn.execute(query).scalars())
        if marketing:
            return sum(1 for d in details if json.loads(d).get("marketing"))
        return len(details)

    def opt_out(self, tenant: str, customer_id: str, scope: str, now: datetime,
                source: str = "") -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(delivery_optouts).where(
                delivery_optouts.c.tenant == tenant, delivery_optouts.c.customer_id == customer_id,
                delivery_optouts.c.scope == scope))
            conn.execute(insert(delivery_optouts).values(
                tenant=tenant, customer_id=customer_id, scope=scope, at=now, source=source))

    def opted_out(self, tenant: str, customer_id: str) -> set[str]:
        with self.engine.begin() as conn:
            return set(conn.execute(select(delivery_optouts.c.scope).where(
                delivery_optouts.c.tenant == tenant,
                delivery_optouts.c.customer_id == customer_id)).scalars())

    # --- sealed inputs ----------------------------------------------------------------------

    def sealed_input(self, tenant: str, document_id: str) -> bytes | None:
        with self.engine.begin() as conn:
            return conn.execute(select(delivery_inputs.c.sealed).where(
                delivery_inputs.c.tenant == tenant,
                delivery_inputs.c.document_id == document_id)).scalar()

    def purge_inputs(self, now: datetime, sent_grace: timedelta) -> int:
        """Drop sealed inputs whose deliveries have all ended (a `sent` row counts as ended
        `sent_grace` after it was sent: bounces come within the relay's queue lifetime), or
        whose `purge_at` has passed. -> how many were dropped."""
        ended = [s.value for s in FINAL]
        with self.engine.begin() as conn:
            open_rows = select(deliveries.c.document_id).where(
                deliveries.c.tenant == delivery_inputs.c.tenant,
                deliveries.c.document_id == delivery_inputs.c.document_id,
                deliveries.c.state.notin_(ended),
                ~and_(deliveries.c.state == State.SENT.value,
                      deliveries.c.state_at < now - sent_grace),
            ).exists()
            pending_fallback = select(deliveries.c.document_id).where(
                deliveries.c.tenant == delivery_inputs.c.tenant,
                deliveries.c.document_id == delivery_inputs.c.document_id,
                deliveries.c.state.in_([s.value for s in HANDS_OVER]),
                deliveries.c.fallbacks != "").exists()
            result = conn.execute(delete(delivery_inputs).where(
                (delivery_inputs.c.purge_at < now) | (~open_rows & ~pending_fallback)))
            return result.rowcount or 0

    # --- webhooks ---------------------------------------------------------------------------

    def webhooks_due(self, now: datetime, limit: int = 100) -> list[tuple[int, DeliveryEvent, int]]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(delivery_webhooks, delivery_events).join(
                delivery_events, delivery_events.c.event_id == delivery_webhooks.c.event_id,
            ).where(delivery_webhooks.c.done.is_(False),
                    delivery_webhooks.c.next_attempt_at <= now).order_by(
                delivery_webhooks.c.event_id).limit(limit)).mappings().all()
            return [(r["event_id"], _event(r), r["attempts"]) for r in rows]

    def webhook_done(self, event_id: int, *, ok: bool, error: str, retry_at: datetime | None
                     ) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(delivery_webhooks).where(
                delivery_webhooks.c.event_id == event_id).values(
                attempts=delivery_webhooks.c.attempts + 1, done=ok or retry_at is None,
                last_error=error[:1000],
                **({"next_attempt_at": retry_at} if retry_at is not None else {})))
