"""The document index on both databases it supports: SQLite (embedded default) and the
machine's PostgreSQL, each test run in its own schema."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from archive.errors import AlreadyCorrected, ArchiveUnavailable, DuplicateDocument
from archive.index import DocumentIndex
from archive.records import DocumentRecord, OutputRecord
from archive.tables import outputs

pytestmark = pytest.mark.integration

OSLO_WINTER = timezone(timedelta(hours=1))


def _record(
    tenant: str,
    document_id: str | None = None,
    *,
    customer_id: str = "10020030",
    created_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> DocumentRecord:
    document_id = document_id or uuid.uuid4().hex.upper()
    return DocumentRecord(
        tenant=tenant,
        document_id=document_id,
        customer_id=customer_id,
        kind="invoice",
        layout_ref="invoice-standard@3",
        locale="nb-NO",
        created_at=created_at or datetime(2025, 3, 14, 10, 30, 15, 123456, tzinfo=OSLO_WINTER),
        input_sha256="ab" * 32,
        idempotency_key=idempotency_key,
        channel_plan="email>print",
        retain_until=datetime(2031, 1, 1, tzinfo=UTC),
        outputs=(
            OutputRecord(
                channel="email",
                key=f"{tenant}/{customer_id}/2025/{document_id}/email.html",
                media_type="text/html",
                sha256="cd" * 32,
                size=18_000,
                pages=None,
                facts={"html_bytes": 18_000, "subject": "Faktura fra Åsane Sparebank"},
            ),
            OutputRecord(
                channel="print",
                key=f"{tenant}/{customer_id}/2025/{document_id}/print.pdf",
                media_type="application/pdf",
                sha256="ef" * 32,
                size=54_321,
                pages=2,
                facts={"sheets": 1, "duplex": True},
            ),
        ),
    )


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:10]}"


def _output_rows(index: DocumentIndex, tenant: str, document_id: str) -> int:
    """Rows in the raw outputs table, to prove that nothing partial was written."""
    with index.engine.connect() as conn:
        rows = conn.execute(
            outputs.select().where(outputs.c.tenant == tenant, outputs.c.document_id == document_id)
        ).all()
    return len(rows)


def test_add_and_get_round_trip(document_index: DocumentIndex, tenant: str) -> None:
    record = _record(tenant, idempotency_key="req-1")
    document_index.add(record)

    got = document_index.get(tenant, record.document_id)
    assert got is not None
    assert got.created_at == record.created_at
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
    assert got == replace(record, created_at=record.created_at.astimezone(UTC))
    assert document_index.get(tenant, "NO-SUCH-DOCUMENT") is None
    assert document_index.get("other-tenant", record.document_id) is None


def test_find_by_idempotency_key(document_index: DocumentIndex, tenant: str) -> None:
    record = _record(tenant, idempotency_key="invoice-2025-0042")
    document_index.add(record)
    found = document_index.find_by_idempotency_key(tenant, "invoice-2025-0042")
    assert found is not None and found.document_id == record.document_id
    assert document_index.find_by_idempotency_key(tenant, "unknown") is None
    assert document_index.find_by_idempotency_key("other-tenant", "invoice-2025-0042") is None


def test_idempotency_keys_are_per_tenant_and_optional(
    document_index: DocumentIndex, tenant: str
) -> None:
    document_index.add(_record(tenant, idempotency_key="shared"))
    document_index.add(_record(f"{tenant}-b", idempotency_key="shared"))
    document_index.add(_record(tenant))  # no idempotency key: any number of them
    document_index.add(_record(tenant))


def test_duplicate_document_id_is_refused_without_partial_writes(
    document_index: DocumentIndex, tenant: str
) -> None:
    original = _record(tenant, idempotency_key="first")
    document_index.add(original)
    clash = replace(
        _record(tenant, original.document_id, idempotency_key="second"),
        outputs=(replace(original.outputs[0], channel="sms", key="x", facts={}),),
    )
    with pytest.raises(DuplicateDocument) as refused:
        document_index.add(clash)
    assert refused.value.field == "document_id"
    assert document_index.get(tenant, original.document_id) == replace(
        original, created_at=original.created_at.astimezone(UTC)
    )
    assert document_index.find_by_idempotency_key(tenant, "second") is None


def test_duplicate_idempotency_key_is_refused_atomically(
    document_index: DocumentIndex, tenant: str
) -> None:
    first = _record(tenant, idempotency_key="retry-me")
    document_index.add(first)
    second = _record(tenant, idempotency_key="retry-me")
    with pytest.raises(DuplicateDocument) as refused:
        document_index.add(second)
    assert refused.value.field == "idempotency_key"
    assert refused.value.existing_document_id == first.document_id
    assert document_index.get(tenant, second.document_id) is None
    assert _output_rows(document_index, tenant, second.document_id) == 0


def test_list_for_customer_newest_first(document_index: DocumentIndex, tenant: str) -> None:
    base = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    records = [
        _record(tenant, f"DOC-{n:02d}", created_at=base + timedelta(days=n)) for n in range(5)
    ]
    same_instant = _record(tenant, "DOC-99", created_at=base + timedelta(days=4))
    for record in [*records, same_instant]:
        document_index.add(record)
    document_index.add(_record(tenant, customer_id="someone-else"))
    document_index.add(_record(f"{tenant}-other"))

    listed = document_index.list_for_customer(tenant, "10020030")
    assert [r.document_id for r in listed] == [
        "DOC-99",
        "DOC-04",
        "DOC-03",
        "DOC-02",
        "DOC-01",
        "DOC-00",
    ]
    assert all(len(r.outputs) == 2 for r in listed)
    assert [
        r.document_id for r in document_index.list_for_customer(tenant, "10020030", limit=2)
    ] == [
        "DOC-99",
        "DOC-04",
    ]
    assert document_index.list_for_customer(tenant, "nobody") == []


def test_naive_timestamps_are_refused(document_index: DocumentIndex, tenant: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        document_index.add(_record(tenant, created_at=datetime(2025, 1, 1)))


def test_corrections_are_recorded(document_index: DocumentIndex, tenant: str) -> None:
    original = _record(tenant)
    credit = replace(_record(tenant), kind="credit_note", corrects_document_id=original.document_id)
    document_index.add(original)
    document_index.add(credit)
    got = document_index.get(tenant, credit.document_id)
    assert got is not None and got.corrects_document_id == original.document_id


def test_two_corrections_racing_on_postgresql_only_the_first_commits(
    pg_index: DocumentIndex, pg_url: str, tenant: str
) -> None:
    """Two servers commit a correction of one document at once: the first claims the
    corrected row and keeps its transaction open until the second waits for that row
    lock (seen in pg_stat_activity); the second then finds the first and is refused
    naming it, so the original is corrected once (QA: two corrections both "current")."""
    original = _record(tenant)
    first, second = (replace(_record(tenant), corrects_document_id=original.document_id)
                     for _ in range(2))
    pg_index.add(original)
    observer = create_engine(pg_url)
    claimed = threading.Event()

    def second_waits_for_the_lock() -> bool:
        with observer.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'")).scalar())

    def claim_and_hold(conn) -> None:
        pg_index.claim_correction(conn, tenant, original.document_id, first.document_id)
        claimed.set()
        deadline = time.monotonic() + 5  # without the row lock it never waits: go on
        while not second_waits_for_the_lock() and time.monotonic() < deadline:
            time.sleep(0.05)

    outcomes: dict[str, BaseException | None] = {}

    def commit(record: DocumentRecord, also) -> None:
        try:
            pg_index.add(record, also=also)
            outcomes[record.document_id] = None
        except BaseException as exc:  # noqa: BLE001 - the outcome is asserted
            outcomes[record.document_id] = exc

    holder = threading.Thread(target=commit, args=(first, claim_and_hold))
    holder.start()
    assert claimed.wait(10)
    commit(second, lambda conn: pg_index.claim_correction(
        conn, tenant, original.document_id, second.document_id))
    holder.join(20)
    observer.dispose()
    assert outcomes[first.document_id] is None
    refused = outcomes[second.document_id]
    assert isinstance(refused, AlreadyCorrected) and refused.corrected_by == first.document_id
    assert pg_index.get(tenant, second.document_id) is None
    assert pg_index.corrected_by(tenant, [original.document_id]) == {
        original.document_id: [first.document_id]}


def test_postgresql_tables_live_in_the_run_schema(
    pg_index: DocumentIndex, pg_url: str, pg_schema: str
) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            tables = set(
                conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                    ),
                    {"s": pg_schema},
                ).scalars()
            )
    finally:
        engine.dispose()
    assert {"documents", "outputs"} <= tables
    pg_index.create_schema()  # idempotent


def test_unreachable_postgresql_is_unavailable_fast() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    index = DocumentIndex(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test", schema="kanal_x")
    started = time.monotonic()
    with pytest.raises(ArchiveUnavailable):
        index.get("t", "d")
    with pytest.raises(ArchiveUnavailable):
        index.add(_record("t"))
    with pytest.raises(ArchiveUnavailable):
        index.create_schema()
    assert time.monotonic() - started < 10
    index.close()


def test_unopenable_sqlite_is_unavailable() -> None:
    index = DocumentIndex("sqlite:////nonexistent-dir/kanal/index.db")
    with pytest.raises(ArchiveUnavailable):
        index.create_schema()
    index.close()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    index = DocumentIndex(f"sqlite:///{path}")
    index.create_schema()
    with index.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    index.close()


def test_schema_is_postgresql_only() -> None:
    with pytest.raises(ValueError):
        DocumentIndex("sqlite:///x.db", schema="kanal_x")
    with pytest.raises(ValueError):
        DocumentIndex("postgresql+psycopg://postgres@127.0.0.1/test", schema="Robert'); DROP")
