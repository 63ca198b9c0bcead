"""The print queue keeps every piece it ever batched; the pieces still waiting and a batch's
pieces are found by index (`ix_print_pieces_batch`), and a database made before the index
gets it on start (server.schema.create_tables)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, text

from archive.index import DocumentIndex
from server.printing.queue import PrintQueue, PrintSettings, print_pieces
from tests.unit.query_plans import assert_added_on_start

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def piece(n: int, batch_id: str | None) -> dict:
    return dict(piece_id=f"p{n:08d}", document_id=f"d{n:08d}", tenant="t", printshop="s",
                profile="default", archive_key="k", pdf_sha256="0" * 64, pages=1,
                envelope="C5", sides="simplex", sheets=1, inserts="", country="NO",
                postal_code="0150", queued_at=NOW, batch_id=batch_id, reprint_of=None)


def queue_on(tmp_path) -> tuple[DocumentIndex, PrintQueue]:
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    queue = PrintQueue(index, PrintSettings.from_dict({}))
    queue.create_schema()
    return index, queue


def plan(index: DocumentIndex, sql: str) -> str:
    with index.engine.connect() as conn:
        return " ".join(str(step) for step in conn.execute(text(f"explain query plan {sql}")))


def test_waiting_pieces_and_a_batchs_pieces_are_found_by_index(tmp_path):
    index, queue = queue_on(tmp_path)
    with index.engine.begin() as conn:
        conn.execute(insert(print_pieces), [piece(n, f"B{n // 500}") for n in range(5000)])
        conn.execute(insert(print_pieces), [piece(9000, None)])
    assert [p["piece_id"] for p in queue.pending()] == ["p00009000"]
    assert "ix_print_pieces_batch" in plan(
        index, "select * from print_pieces where batch_id is null")
    assert "ix_print_pieces_batch" in plan(
        index, "select * from print_pieces where batch_id = 'B3'")
    assert "ix_print_pieces_reprint_of" in plan(
        index, "select count(*) from print_pieces where reprint_of = 'd00000001'")
    index.close()


def test_a_database_made_before_the_indexes_gets_them_on_start(tmp_path):
    index, queue = queue_on(tmp_path)
    assert_added_on_start(index.engine, queue.create_schema, "print_pieces",
                          "ix_print_pieces_batch", "ix_print_pieces_reprint_of")
    index.close()
