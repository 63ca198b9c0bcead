"""A bulk chunk's outboxes go into the index transaction as one executemany per table
(DeliveryStore.insert_many; a webhook tenant's events need their ids back, which SQLite's
RETURNING gives row by row), with the same rows one document at a time would write: each
delivery, its first event, a webhook tenant's webhook rows naming *their own* events, and
the sealed compose inputs. A real SQLite outbox."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from archive.index import DocumentIndex
from server.delivery.outbox import OutboxWrite, hands_over
from server.delivery.store import DeliveryStore
from server.delivery.tables import (
    deliveries,
    delivery_events,
    delivery_inputs,
    delivery_webhooks,
)

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(index.engine, webhook_tenants=["hooked"])
    store.create_schema()
    yield store
    index.close()


def row(tenant: str, document: int, channel: str, now: datetime, state: str = "queued",
        run: str = "01JDELIVERY") -> dict:
    return {
        "delivery_id": f"{run}{document:04d}{channel[:4].upper():>4}00000000"[:26],
        "tenant": tenant, "document_id": f"{run}doc{document}", "customer_id": "c",
        "kind": "invoice", "channel": channel, "provider": "relay" if state == "queued" else "",
        "recipient": "a@example.no", "archive_key": f"k/{document}/{channel}", "sha256": "s",
        "media_type": "message/rfc822", "message_id": f"<{document}.{channel}@bank>",
        "provider_message_id": "", "state": state, "state_at": now,
        "reason": "queued" if state == "queued" else "no provider for sms",
        "attempts": 0, "next_attempt_at": now, "lease_owner": None, "lease_until": None,
        "created_at": now, "expires_at": now + timedelta(days=3), "fallback_of": None,
        "fallbacks": "", "dead_letter": False, "details": json.dumps({"country": "NO"}),
    }


def chunk(tenants: tuple[str, ...] = ("plain", "hooked", "plain"), run: str = "01JDELIVERY",
          ) -> list[OutboxWrite]:
    """A document per tenant ("hooked" has a webhook), the second with a sealed input;
    `run`: the delivery ids' prefix (11 characters)."""
    writes = []
    for n, tenant in enumerate(tenants):
        now = T0 + timedelta(seconds=n)
        rows = (row(tenant, n, "email", now, run=run),
                row(tenant, n, "sms", now, state="failed", run=run))
        sealed = (tenant, f"{run}doc{n}", b"sealed-%d" % n, now + timedelta(days=30)) \
            if n == 1 else None
        writes.append(OutboxWrite(rows, now, sealed))
    return writes


def statements(store: DeliveryStore) -> Counter:
    """Counts the statements sent to the database from now on, by their first words."""
    seen: Counter = Counter()

    @event.listens_for(store.engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        seen[" ".join(statement.split()[:3])] += 1
    return seen


def test_a_chunk_is_one_statement_per_table(store):
    seen = statements(store)
    with store.engine.begin() as conn:
        store.insert_many(conn, chunk(("plain",) * 3))
    assert seen == {"INSERT INTO deliveries": 1, "INSERT INTO delivery_events": 1,
                    "INSERT INTO delivery_inputs": 1}


def test_a_chunk_writes_what_documents_one_by_one_would(store, tmp_path):
    one_by_one = DeliveryStore(
        DocumentIndex(f"sqlite:///{tmp_path / 'single.db'}").engine, webhook_tenants=["hooked"])
    one_by_one.create_schema()
    with store.engine.begin() as conn:
        store.insert_many(conn, chunk())
    with one_by_one.engine.begin() as conn:
        for write in chunk():
            one_by_one.insert(conn, write.rows, write.now, write.sealed)

    def contents(s: DeliveryStore) -> dict:
        with s.engine.connect() as conn:
            return {table.name: [dict(r) for r in conn.execute(
                        select(table).order_by(*table.primary_key.columns)).mappings()]
                    for table in (deliveries, delivery_events, delivery_webhooks,
                                  delivery_inputs)}
    written = contents(store)
    assert written == contents(one_by_one)
    events = {e["event_id"]: e for e in written["delivery_events"]}
    assert [(e["delivery_id"], e["state"], e["at"]) for e in events.values()] == [
        (r["delivery_id"], r["state"], w.now) for w in chunk() for r in w.rows]
    # each webhook row names an event of the webhook tenant, every such event has one
    hooked = [events[h["event_id"]] for h in written["delivery_webhooks"]]
    assert [e["tenant"] for e in hooked] == ["hooked", "hooked"]
    assert {e["document_id"] for e in hooked} == {"01JDELIVERYdoc1"}
    assert [(i["document_id"], i["sealed"]) for i in written["delivery_inputs"]] == [
        ("01JDELIVERYdoc1", b"sealed-1")]


def test_a_row_born_failed_with_fallbacks_left_hands_over_at_once():
    """`hands_over`: whether the dispatcher must look for fallbacks after these outboxes
    commit (a mailbox recipient no configured service serves: failed, the plan goes on)."""
    assert not hands_over(chunk())  # queued e-mails; failed SMS with no fallbacks
    failed = {**row("plain", 9, "mailbox", T0, state="failed"), "fallbacks": "print"}
    assert hands_over(chunk() + [OutboxWrite((failed,), T0)])
    assert not hands_over([OutboxWrite(({**failed, "state": "queued"},), T0)])
