"""A tenant's deliveries newest first (ListDeliveries, a page at a time) are read in the
order of `ix_deliveries_tenant_newest` and stop at the page's end, not sorted from every
delivery the tenant ever had; filtered by state, each state's rows in the order of
`ix_deliveries_tenant_state` (merged), and the dead letters alone by
`ix_deliveries_dead_letter`, not the tenant's newest walked until a few matching rows
come; a document's deliveries still come by the document index; a database made before
the indexes gets them on start. Figures: load_tests/bench_history_queries.py."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import create_engine, insert

from server.delivery.store import DeliveryStore
from server.delivery.tables import deliveries
from tests.unit.query_plans import assert_added_on_start, plans_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def delivery(n: int, document_id: str = "") -> dict:
    return dict(delivery_id=f"{n:026d}", tenant="t", document_id=document_id or f"d{n}",
                customer_id=f"c{n % 100}", kind="invoice", channel="sms", provider="",
                recipient="", archive_key="k", sha256="0" * 64, media_type="text/plain",
                message_id="m", provider_message_id="", state="delivered", state_at=NOW,
                reason="", attempts=0, next_attempt_at=NOW, created_at=NOW, expires_at=NOW,
                fallbacks="", dead_letter=False, details="{}")


def test_a_tenants_newest_deliveries_are_read_in_index_order(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(engine)
    store.create_schema()
    with engine.begin() as conn:
        conn.execute(insert(deliveries), [delivery(n) for n in range(3000)])
        conn.execute(insert(deliveries), [delivery(5000 + n, "d7") for n in range(3)])
    assert [d.delivery_id for d in store.list("t", limit=5)] == [
        f"{n:026d}" for n in (5002, 5001, 5000, 2999, 2998)]
    assert [d.delivery_id for d in store.list("t", limit=2, before=f"{2999:026d}")] == [
        f"{n:026d}" for n in (2998, 2997)]
    listing = plans_of(engine, lambda: store.list("t", limit=10), "FROM deliveries")
    assert "ix_deliveries_tenant_newest" in listing and "TEMP B-TREE" not in listing
    # a document's deliveries: its few rows by the document index, not the tenant's newest
    assert [d.delivery_id for d in store.list("t", document_id="d7")] == [
        f"{n:026d}" for n in (5002, 5001, 5000, 7)]
    assert "ix_deliveries_document" in plans_of(
        engine, lambda: store.list("t", document_id="d7"), "FROM deliveries")
    engine.dispose()


def test_a_database_made_before_the_index_gets_it_on_start(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(engine)
    store.create_schema()
    assert_added_on_start(engine, store.create_schema, "deliveries",
                          "ix_deliveries_tenant_newest")
    engine.dispose()


def filtered(tmp_path):
    """3,000 delivered rows of the tenant and, oldest, a few bounced, failed and dead."""
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(engine)
    store.create_schema()
    few = {1: ("bounced", False), 2: ("failed", True), 3: ("bounced", True), 4: ("failed", False),
           5: ("queued", False), 6: ("bounced", False)}
    with engine.begin() as conn:
        conn.execute(insert(deliveries), [
            dict(delivery(n), state=few.get(n, ("delivered", False))[0],
                 dead_letter=few.get(n, ("delivered", False))[1]) for n in range(1, 3000)])
    return engine, store


def ids(found) -> list[int]:
    return [int(d.delivery_id) for d in found]


def test_a_listing_by_state_reads_each_states_rows_in_index_order(tmp_path):
    engine, store = filtered(tmp_path)
    assert ids(store.list("t", states=["bounced"])) == [6, 3, 1]
    assert ids(store.list("t", states=["bounced", "failed"])) == [6, 4, 3, 2, 1]
    assert ids(store.list("t", states=["failed", "bounced"], limit=3)) == [6, 4, 3]
    assert ids(store.list("t", states=["bounced", "failed"], limit=2,
                          before=f"{4:026d}")) == [3, 2]
    assert ids(store.list("t", states=["delivered", "queued"], limit=3)) == [2999, 2998, 2997]
    assert ids(store.list("t", states=["bounced"], dead_letter=True)) == [3]
    for states in (["bounced"], ["bounced", "failed"]):
        plan = plans_of(engine, lambda states=states: store.list("t", states=states),
                        "FROM deliveries")
        assert "ix_deliveries_tenant_state" in plan and "TEMP B-TREE" not in plan, plan
    engine.dispose()


def test_a_listing_of_dead_letters_reads_them_alone(tmp_path):
    engine, store = filtered(tmp_path)
    assert ids(store.list("t", dead_letter=True)) == [3, 2]
    assert ids(store.list("t", dead_letter=True, before=f"{3:026d}")) == [2]
    plan = plans_of(engine, lambda: store.list("t", dead_letter=True), "FROM deliveries")
    assert "ix_deliveries_dead_letter" in plan and "TEMP B-TREE" not in plan, plan
    engine.dispose()


def test_a_database_made_before_the_filtered_listings_indexes_gets_them_on_start(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    store = DeliveryStore(engine)
    store.create_schema()
    assert_added_on_start(engine, store.create_schema, "deliveries",
                          "ix_deliveries_tenant_state", "ix_deliveries_dead_letter")
    engine.dispose()
