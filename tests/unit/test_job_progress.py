"""Job progress counts documents as they are committed, not whole chunks at a time: a running
chunk's records whose index row exists are done (a real SQLite job store and index)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event

from archive.index import DocumentIndex
from archive.records import DocumentRecord
from server.jobs.model import JobHeader
from server.jobs.store import JobStore
from server.jobs.worker import document_id_for


def test_documents_of_a_running_chunk_count_as_they_are_committed(tmp_path):
    url = f"sqlite:///{tmp_path / 'index.db'}"
    index = DocumentIndex(url)
    index.create_schema()
    store = JobStore(url, chunk_size=5)
    store.create_schema()
    created = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    store.create_job("J1", JobHeader(tenant="t", layout_id="card-invoice",
                                     layout_version="1.0.0"), created)
    store.add_records("J1", [(f"r{n}", "{}") for n in range(12)])
    store.seal("J1", 12)
    job = store.get("J1")
    assert store.start_chunk("J1", 0) and store.start_chunk("J1", 1)

    def commit(key: str) -> None:
        index.add(DocumentRecord(
            tenant="t", document_id=document_id_for("J1", job.created_at, key),
            customer_id="c", kind="invoice", layout_ref="card-invoice@1.0.0", locale="nb-NO",
            created_at=created, input_sha256="0" * 64, idempotency_key=None,
            channel_plan="print", retain_until=None, outputs=()))

    progress = store.progress("J1")
    assert (progress.done, progress.running, progress.pending) == (0, 10, 2)
    for key in ("r0", "r1", "r5"):  # two of chunk 0, one of chunk 1
        commit(key)
    progress = store.progress("J1")
    assert (progress.done, progress.running, progress.pending, progress.failed) == (3, 7, 2, 0)
    commit("r10")  # chunk 2 is not running yet: not counted before its chunk runs
    assert store.progress("J1").done == 3
    index.close()
    store.close()


def test_a_running_chunks_record_keys_are_read_once_not_at_every_poll(tmp_path):
    """WatchJob asks for progress twice a second: a running chunk's document ids (its
    record keys read back, each hashed into its id) are the same at every poll."""
    url = f"sqlite:///{tmp_path / 'index.db'}"
    DocumentIndex(url).create_schema()
    store = JobStore(url, chunk_size=5)
    store.create_schema()
    store.create_job("J1", JobHeader(tenant="t", layout_id="card-invoice",
                                     layout_version="1.0.0"), datetime(2026, 11, 30, tzinfo=UTC))
    store.add_records("J1", [(f"r{n}", "{}") for n in range(12)])
    store.seal("J1", 12)
    assert store.start_chunk("J1", 0)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    store.progress("J1")
    assert any("FROM kanal_job_records" in s for s in statements)
    statements.clear()
    for _ in range(3):
        assert store.progress("J1").running == 5
    assert not any("FROM kanal_job_records" in s for s in statements), statements
    assert store.start_chunk("J1", 1)  # a chunk that starts is read once, then kept too
    assert store.progress("J1").running == 10
    assert sum("FROM kanal_job_records" in s for s in statements) == 1
    store.close()
