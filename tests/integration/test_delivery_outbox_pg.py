"""A bulk chunk's outboxes on PostgreSQL (DeliveryStore.insert_many): the webhook rows of a
webhook tenant's events name those events, whose ids come back from one batched
INSERT ... RETURNING in the order the rows were given (tests/unit/test_delivery_outbox_write.py
has the same on SQLite)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from server.delivery.store import DeliveryStore
from server.delivery.tables import deliveries, delivery_events, delivery_webhooks
from tests.unit.test_delivery_outbox_write import chunk

pytestmark = pytest.mark.integration


def test_a_chunk_with_a_webhook_tenant_on_postgresql(pg_index):
    store = DeliveryStore(pg_index.engine, webhook_tenants=["hooked"])
    store.create_schema()
    run = uuid.uuid4().hex[:11].upper()
    writes = chunk(("hooked", "plain", "hooked", "hooked"), run=run)
    with store.engine.begin() as conn:
        store.insert_many(conn, writes)
    ids = [r["delivery_id"] for w in writes for r in w.rows]
    with store.engine.connect() as conn:
        written = conn.execute(select(deliveries.c.delivery_id).where(
            deliveries.c.delivery_id.in_(ids))).scalars().all()
        events = conn.execute(select(delivery_events).where(
            delivery_events.c.delivery_id.in_(ids)).order_by(delivery_events.c.event_id)
        ).mappings().all()
        hooks = conn.execute(select(delivery_webhooks.c.event_id).where(
            delivery_webhooks.c.event_id.in_([e["event_id"] for e in events]))
        ).scalars().all()
    assert sorted(written) == sorted(ids)
    assert [e["delivery_id"] for e in events] == ids  # one first event each, in row order
    assert sorted(hooks) == [e["event_id"] for e in events if e["tenant"] == "hooked"]
