"""A receipt whose provider id was never recorded is matched among the recipient's waiting
deliveries by that provider (`waiting_for`), read by `ix_deliveries_recipient`, not among
every row of the provider still `sent` (an SMS whose receipt never came stays so for good);
the rows and their order are the ones the state index gave before; a database made before
the index gets it on start. Figures: load_tests/bench_history_queries.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, insert

from server.delivery.store import DeliveryStore
from server.delivery.tables import deliveries
from tests.unit.query_plans import assert_added_on_start, plans_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def sms(n: int, recipient: str, state: str = "sent", provider: str = "smpp",
        attempt_in: int = 0) -> dict:
    return dict(delivery_id=f"{n:026d}", tenant="t", document_id=f"d{n}",
                customer_id=f"c{n % 100}", kind="invoice", channel="sms", provider=provider,
                recipient=recipient, archive_key="k", sha256="0" * 64, media_type="text/plain",
                message_id=f"m{n}", provider_message_id="", state=state, state_at=NOW,
                reason="", attempts=1, next_attempt_at=NOW + timedelta(seconds=attempt_in),
                created_at=NOW, expires_at=NOW, fallbacks="", dead_letter=False,
                details="{}")


def test_a_receipts_recipient_is_read_by_its_own_rows(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(engine)
    store.create_schema()
    with engine.begin() as conn:
        conn.execute(insert(deliveries), [sms(n, f"+47{n:08d}") for n in range(3000)])
        conn.execute(insert(deliveries), [
            sms(5000, "+4799999999"), sms(5001, "+4799999999", "queued", attempt_in=60),
            sms(5002, "+4799999999", "delivered"), sms(5003, "+4799999999", "sending"),
            sms(5004, "+4799999999", "queued", attempt_in=30),
            sms(5005, "+4799999999", provider="other"), sms(5006, "+4799999999")])
    # queued (by next attempt), sending, sent (oldest first): as the state index gave them
    assert [r["delivery_id"] for r in store.waiting_for("smpp", "+4799999999")] == [
        f"{n:026d}" for n in (5004, 5001, 5003, 5000, 5006)]
    plan = plans_of(engine, lambda: store.waiting_for("smpp", "+4799999999"), "FROM deliveries")
    assert "ix_deliveries_recipient" in plan, plan
    engine.dispose()


def test_a_database_made_before_the_index_gets_it_on_start(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(engine)
    store.create_schema()
    assert_added_on_start(engine, store.create_schema, "deliveries", "ix_deliveries_recipient")
    engine.dispose()
