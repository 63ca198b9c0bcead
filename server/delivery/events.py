"""The outbox's events: every state change of a delivery is a `delivery_events` row, written in
the transaction that changes the row, and (for a tenant with a webhook URL) a
`delivery_webhooks` row beside it, still to post. Read back by `WatchDeliveries`
(`events_after`) and by the webhook poster (server.delivery.webhooks: `webhooks_due`,
`webhook_done`). Part of `server.delivery.store.DeliveryStore`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from server.delivery.model import DeliveryEvent, State
from server.delivery.tables import delivery_events, delivery_webhooks


def event_from_row(row: Mapping[str, Any]) -> DeliveryEvent:
    return DeliveryEvent(row["event_id"], row["delivery_id"], row["tenant"], row["document_id"],
                         row["channel"], State(row["state"]), row["at"], row["reason"])


def webhook_row(event_id: int, tenant: str, now: datetime) -> dict[str, Any]:
    return {"event_id": event_id, "tenant": tenant, "attempts": 0, "next_attempt_at": now,
            "done": False, "last_error": ""}


# built once: a statement built per event with its values in it costs SQLAlchemy more CPU
# than SQLite takes to run it (the same SQL)
_NEW_EVENT = insert(delivery_events)


class OutboxEvents:
    """Event and webhook rows on `engine`; `webhook_tenants`: tenants whose events also get a
    `delivery_webhooks` row (set by DeliveryStore)."""

    engine: Engine
    webhook_tenants: frozenset[str]

    def _record(self, conn: Connection, row: Mapping[str, Any], state: State, reason: str,
                now: datetime) -> None:
        result = conn.execute(_NEW_EVENT, {
            "delivery_id": row["delivery_id"], "tenant": row["tenant"],
            "document_id": row["document_id"], "channel": row["channel"],
            "state": state.value, "at": now, "reason": reason[:2000]})
        if row["tenant"] in self.webhook_tenants:
            conn.execute(insert(delivery_webhooks).values(
                **webhook_row(result.inserted_primary_key[0], row["tenant"], now)))

    def events_after(self, tenant: str, after: int, *, document_id: str = "",
                     limit: int = 500) -> list[DeliveryEvent]:
        query = select(delivery_events).where(delivery_events.c.tenant == tenant,
                                              delivery_events.c.event_id > after)
        if document_id:
            query = query.where(delivery_events.c.document_id == document_id)
        with self.engine.begin() as conn:
            return [event_from_row(r) for r in conn.execute(
                query.order_by(delivery_events.c.event_id).limit(limit)).mappings()]

    def last_event_id(self) -> int:
        with self.engine.begin() as conn:
            return conn.execute(select(func.max(delivery_events.c.event_id))).scalar() or 0

    def webhooks_due(self, now: datetime, limit: int = 100) -> list[tuple[int, DeliveryEvent, int]]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(delivery_webhooks, delivery_events).join(
                delivery_events, delivery_events.c.event_id == delivery_webhooks.c.event_id,
            ).where(delivery_webhooks.c.done.is_(False),
                    delivery_webhooks.c.next_attempt_at <= now).order_by(
                delivery_webhooks.c.event_id).limit(limit)).mappings().all()
            return [(r["event_id"], event_from_row(r), r["attempts"]) for r in rows]

    def webhook_done(self, event_id: int, *, ok: bool, error: str, retry_at: datetime | None
                     ) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(delivery_webhooks).where(
                delivery_webhooks.c.event_id == event_id).values(
                attempts=delivery_webhooks.c.attempts + 1, done=ok or retry_at is None,
                last_error=error[:1000],
                **({"next_attempt_at": retry_at} if retry_at is not None else {})))
