"""A delivery's state machine in the outbox: rows written with their document, then moved
by compare-and-set only (queued -> sending under a lease -> sent/delivered/failed/...; a
receipt or an operator may move a row too), each move recorded as an event in the same
transaction. Every change checks the row's state (and lease owner and attempt number), so
two dispatchers, a receipt and an operator never both move one row. Part of
`server.delivery.store.DeliveryStore`; lapsed leases and expiry are in
server.delivery.housekeeping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from server.delivery import metrics
from server.delivery.events import OutboxEvents, webhook_row
from server.delivery.model import State
from server.delivery.outbox import OutboxWrite, first_event
from server.delivery.tables import (
    deliveries,
    delivery_attempts,
    delivery_events,
    delivery_inputs,
    delivery_provider_ids,
    delivery_webhooks,
)

ENDED_BADLY = frozenset({State.BOUNCED.value, State.FAILED.value, State.EXPIRED.value})

# The statements every delivery runs (claim, finish), built once with named parameters
# (`w_*` in WHERE; a parameter named after a column sets it): a statement built per call
# with its values in it costs SQLAlchemy more CPU to build and to find in its compiled
# cache than SQLite takes to run it. The SQL is the same.
_DUE = (select(deliveries).where(
    deliveries.c.state == State.QUEUED.value, deliveries.c.provider == bindparam("w_provider"),
    deliveries.c.next_attempt_at <= bindparam("w_now"),
).order_by(deliveries.c.next_attempt_at, deliveries.c.delivery_id)
    .limit(bindparam("w_limit", type_=Integer)))
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)
_TAKE = update(deliveries).where(  # queued -> sending, compare-and-set on the attempt count
    deliveries.c.delivery_id == bindparam("w_delivery_id"),
    deliveries.c.state == State.QUEUED.value,
    deliveries.c.attempts == bindparam("w_attempts"))
# The row is still in the attempt `w_owner` claimed (not reaped, not moved by a receipt).
_HELD = update(deliveries).where(
    deliveries.c.delivery_id == bindparam("w_delivery_id"),
    deliveries.c.state == State.SENDING.value,
    deliveries.c.lease_owner == bindparam("w_owner"),
    deliveries.c.attempts == bindparam("w_attempts"))
_OPEN_ATTEMPT = update(delivery_attempts).where(
    delivery_attempts.c.delivery_id == bindparam("w_delivery_id"),
    delivery_attempts.c.number == bindparam("w_number"),
    delivery_attempts.c.finished_at.is_(None))
_NEW_ATTEMPT = insert(delivery_attempts)
_COLUMNS = frozenset(deliveries.c.keys())


def _held(row: Mapping[str, Any], owner: str, **values: Any) -> dict[str, Any]:
    """`_HELD`'s parameters for `row` claimed by `owner`, setting `values`. Raises
    ValueError for a value that names no column (a statement's `.values` would)."""
    unknown = values.keys() - _COLUMNS
    if unknown:
        raise ValueError(f"deliveries has no column(s) {sorted(unknown)}")
    return {"w_delivery_id": row["delivery_id"], "w_owner": owner,
            "w_attempts": row["attempts"], **values}


class OutboxTransitions(OutboxEvents):
    """Writing deliveries with their document and every move of their state. `postgres`:
    the engine is PostgreSQL (row locks and ON CONFLICT as it spells them)."""

    postgres: bool

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
                webhook_row(ids[n], rows[n]["tenant"], events[n]["at"]) for n in hooked])
        elif events:
            conn.execute(insert(delivery_events), events)
        for row in rows:
            if row["state"] in ENDED_BADLY:  # no provider for its channel: failed at once
                metrics.failed(row["provider"], row["state"])
        inputs = [{"tenant": w.sealed[0], "document_id": w.sealed[1], "sealed": w.sealed[2],
                   "created_at": w.now, "purge_at": w.sealed[3]} for w in writes if w.sealed]
        if inputs:
            conn.execute(insert(delivery_inputs), inputs)

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

    def printed(self, conn: Connection, tenant: str, document_ids: Sequence[str],
                reason: str, now: datetime) -> int:
        """The print trade's receipt, on `conn` (the acknowledgement's own transaction): the
        print shop acknowledged these documents' pieces as printed and handed to the post,
        so their print deliveries still `sent` become `delivered`. A spoiled piece's
        delivery is not among them: it stays `sent` until its reprint is acknowledged.
        -> how many moved."""
        moved = 0
        for start in range(0, len(document_ids), 500):  # bound the IN list's parameters
            rows = conn.execute(select(deliveries.c.delivery_id, deliveries.c.provider).where(
                deliveries.c.tenant == tenant, deliveries.c.channel == "print",
                deliveries.c.state == State.SENT.value,
                deliveries.c.document_id.in_(document_ids[start:start + 500]))).all()
            for delivery_id, provider in rows:
                if self.move(delivery_id, State.DELIVERED, reason, now,
                             only_from=(State.SENT,), conn=conn):
                    metrics.DELIVERED.labels(provider).inc()
                    moved += 1
        return moved

    def supersede(self, conn: Connection, tenant: str, document_id: str, reason: str,
                  now: datetime, *, print_withdrawn: bool) -> list[str]:
        """A correction replaced the document, on `conn` (the correction's index
        transaction): its deliveries still waiting (`queued`: due, retrying, held for quiet
        hours) become `failed` with `reason` and no fallback; its print delivery `sent`
        too when `print_withdrawn` (its piece was taken out of the print queue before a
        batch claimed it). A delivery being sent or sent stays as it is (nothing is taken
        back), but none of them falls back to another channel any more: the correction is
        delivered on its own. -> the ids of the deliveries cancelled."""
        rows = conn.execute(select(
            deliveries.c.delivery_id, deliveries.c.channel, deliveries.c.state,
            deliveries.c.provider).where(
            deliveries.c.tenant == tenant, deliveries.c.document_id == document_id)).all()
        cancelled = []
        for delivery_id, channel, state, provider in rows:
            if state == State.QUEUED.value:
                why, only_from = reason, (State.QUEUED,)
            elif state == State.SENT.value and channel == "print" and print_withdrawn:
                why = f"{reason}: its print piece was withdrawn before a print batch took it"
                only_from = (State.SENT,)
            else:
                continue
            if self.move(delivery_id, State.FAILED, why, now, only_from=only_from, conn=conn,
                         fallbacks=""):
                metrics.failed(provider, State.FAILED.value)
                cancelled.append(delivery_id)
        conn.execute(update(deliveries).where(
            deliveries.c.tenant == tenant, deliveries.c.document_id == document_id,
            deliveries.c.fallbacks != "").values(fallbacks=""))
        return cancelled

    def claim(self, provider: str, limit: int, now: datetime, owner: str,
              lease: timedelta) -> list[dict[str, Any]]:
        """Take up to `limit` due rows of `provider` for sending: state `sending`, a lease,
        one more attempt, and the attempt's row with the message id, all committed before
        the provider is called. PostgreSQL skips rows other dispatchers hold
        (FOR UPDATE SKIP LOCKED); on SQLite the compare-and-set alone decides."""
        query = _DUE_LOCKED if self.postgres else _DUE
        claimed = []
        with self.engine.begin() as conn:
            for row in conn.execute(query, {"w_provider": provider, "w_now": now,
                                            "w_limit": limit}).mappings().all():
                attempt = row["attempts"] + 1
                moved = conn.execute(_TAKE, {
                    "w_delivery_id": row["delivery_id"], "w_attempts": row["attempts"],
                    "state": State.SENDING.value, "state_at": now, "attempts": attempt,
                    "lease_owner": owner, "lease_until": now + lease, "reason": ""})
                if moved.rowcount != 1:
                    continue
                conn.execute(_NEW_ATTEMPT, {
                    "delivery_id": row["delivery_id"], "number": attempt, "started_at": now,
                    "finished_at": None, "outcome": "", "reason": "",
                    "message_id": row["message_id"]})
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
            moved = conn.execute(_HELD, _held(
                row, owner, state=to.value, state_at=now, reason=reason[:2000],
                lease_owner=None, lease_until=None, **columns))
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
            moved = conn.execute(_HELD, _held(
                row, owner, state=State.QUEUED.value, state_at=now, reason=reason[:2000],
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
        conn.execute(_OPEN_ATTEMPT, {"w_delivery_id": delivery_id, "w_number": number,
                                     "finished_at": now, "outcome": outcome,
                                     "reason": reason[:2000]})

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
