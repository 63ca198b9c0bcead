"""Finding the rows a fallback may start from (`due_fallbacks`, every dispatch round) reads
only rows that have a fallback left, however many failed or suppressed rows without one the
outbox keeps: by the partial index `ix_deliveries_fallback_due`, which a database made
before it gets on start too."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import create_engine, insert, text

from server.delivery.store import DeliveryStore
from server.delivery.tables import deliveries
from tests.unit.query_plans import assert_added_on_start

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DUE_QUERY = ("select * from deliveries where state in ('bounced', 'failed', 'expired', "
             "'suppressed') and fallbacks != '' limit 50")


def row(n: int, state: str, fallbacks: str = "") -> dict:
    return dict(delivery_id=f"{n:026d}", tenant="t", document_id=f"d{n}", customer_id="c",
                kind="invoice", channel="sms", provider="", recipient="", archive_key="k",
                sha256="0" * 64, media_type="text/plain", message_id="m",
                provider_message_id="", state=state, state_at=NOW, reason="", attempts=0,
                next_attempt_at=NOW, created_at=NOW, expires_at=NOW, fallbacks=fallbacks,
                dead_letter=False, details="{}")


def test_due_fallbacks_reads_only_rows_with_a_fallback_left(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(engine)
    store.create_schema()
    with engine.begin() as conn:
        conn.execute(insert(deliveries), [row(n, ("failed", "suppressed")[n % 2])
                                          for n in range(2000)])
        conn.execute(insert(deliveries), [row(3000, "bounced", "print"),
                                          row(3001, "delivered", "print")])
    assert [r["delivery_id"] for r in store.due_fallbacks()] == [f"{3000:026d}"]
    with engine.connect() as conn:
        plan = " ".join(str(step) for step in conn.execute(text(f"explain query plan {DUE_QUERY}")))
    assert "ix_deliveries_fallback_due" in plan, plan


def test_a_database_made_before_the_index_gets_it_on_start(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(engine)
    store.create_schema()
    assert_added_on_start(engine, store.create_schema, "deliveries",
                          "ix_deliveries_fallback_due")
