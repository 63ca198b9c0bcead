"""Reading the outbox: a delivery's row (by id, by the provider's message id, by recipient),
deliveries with their event history and attempt log (GetDelivery, ListDeliveries, a
document's deliveries), a portal page's deliveries in one read, the queue's depth per
provider, the rows due to fall back, and a document's sealed input. Nothing here writes.
Part of `server.delivery.store.DeliveryStore`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine, RowMapping

from server.delivery.events import event_from_row
from server.delivery.model import HANDS_OVER, Attempt, Delivery, DeliveryEvent, State
from server.delivery.tables import (
    deliveries,
    delivery_attempts,
    delivery_events,
    delivery_inputs,
    delivery_provider_ids,
)


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


class OutboxQueries:
    """Reads on `engine`."""

    engine: Engine

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
        """The recipient's deliveries by `provider` that a receipt may still concern, by
        state (queued, sending, sent), then next attempt, then oldest first. The recipient's
        rows come by `ix_deliveries_recipient`, not the provider's every row still `sent`;
        the order is the one the state index gave before, now said (a short client reference,
        SMPP's 16 bits, may match more than one)."""
        # `|| ''`: SQLite would take the state index for the order and read every waiting row
        # of the provider; the recipient's rows are few, sorted.
        waiting = (deliveries.c.state + "").in_(
            [State.QUEUED.value, State.SENDING.value, State.SENT.value])
        with self.engine.begin() as conn:
            return [dict(r) for r in conn.execute(select(deliveries).where(
                deliveries.c.provider == provider, deliveries.c.recipient == recipient,
                waiting).order_by(
                deliveries.c.state, deliveries.c.next_attempt_at,
                deliveries.c.delivery_id)).mappings()]

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

    def for_documents(self, tenant: str, document_ids: Sequence[str]
                      ) -> dict[str, list[Delivery]]:
        """The deliveries of each of `document_ids` (a portal page's, at most a few hundred),
        each document's oldest first as `for_document` gives them, without events or attempts:
        one statement for them all, by `ix_deliveries_document`. A document without any
        maps to an empty list."""
        found: dict[str, list[Delivery]] = {i: [] for i in document_ids}
        if not found:
            return found
        with self.engine.begin() as conn:
            rows = conn.execute(select(deliveries).where(
                deliveries.c.tenant == tenant, deliveries.c.document_id.in_(list(found)),
            ).order_by(deliveries.c.created_at, deliveries.c.delivery_id)).mappings().all()
        for row in rows:
            found[row["document_id"]].append(delivery_from_row(row))
        return found

    def list(self, tenant: str, *, states: Sequence[str] = (), dead_letter: bool = False,
             document_id: str = "", limit: int = 100, before: str = "") -> list[Delivery]:
        """A tenant's deliveries, newest first (ids are ULIDs: they sort by time), at most
        `limit`, only those older than the delivery id `before` when given (keyset paging).

        Each read stops at the page's end in an index's order: the tenant's newest
        (`ix_deliveries_tenant_newest`), its dead letters (`ix_deliveries_dead_letter`), or
        with `states` one read per state (`ix_deliveries_tenant_state`), merged: a few
        matching rows among many are not looked for through all of them. A document's rows
        come by the document index and are sorted."""
        query = select(deliveries).where(deliveries.c.tenant == tenant)
        if before:
            query = query.where(deliveries.c.delivery_id < before)
        if dead_letter:
            query = query.where(deliveries.c.dead_letter.is_(True))
        newest = deliveries.c.delivery_id
        if document_id:
            query = query.where(deliveries.c.document_id == document_id)
            # a document's few rows by the document index, then sorted: not the tenant's
            # newest read until they come (`|| ''` keeps SQLite from ordering by index)
            newest = newest + ""
        if not states:
            pages = [query]
        elif document_id:
            pages = [query.where(deliveries.c.state.in_(list(states)))]
        else:  # each state's newest in index order, merged below
            pages = [query.where(deliveries.c.state == state) for state in dict.fromkeys(states)]
        with self.engine.begin() as conn:
            rows = [r for page in pages for r in conn.execute(
                page.order_by(newest.desc()).limit(limit)).mappings()]
        if len(pages) > 1:
            rows = sorted(rows, key=lambda r: r["delivery_id"], reverse=True)[:limit]
        return [delivery_from_row(r) for r in rows]

    def _with_history(self, conn: Connection, rows: Sequence[RowMapping]) -> list[Delivery]:
        ids = [r["delivery_id"] for r in rows]
        events: dict[str, list[DeliveryEvent]] = {i: [] for i in ids}
        for e in conn.execute(select(delivery_events).where(
                delivery_events.c.delivery_id.in_(ids)).order_by(
                delivery_events.c.event_id)).mappings():
            events[e["delivery_id"]].append(event_from_row(e))
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

    def sealed_input(self, tenant: str, document_id: str) -> bytes | None:
        with self.engine.begin() as conn:
            return conn.execute(select(delivery_inputs.c.sealed).where(
                delivery_inputs.c.tenant == tenant,
                delivery_inputs.c.document_id == document_id)).scalar()
