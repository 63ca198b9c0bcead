"""Every print batch ever made stays; the ones left `closing` (an interrupted build, looked
for at every close_due and close_now) are found by state (`ix_print_batches_state`), not by
reading them all; the closer's round finds the waiting pieces by `ix_print_pieces_batch`; a
database made before the index gets it on start. Figures:
load_tests/bench_history_queries.py."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from archive.index import DocumentIndex
from server.printing.batches import BatchService
from server.printing.queue import PrintQueue, PrintSettings, print_batches, print_pieces
from tests.unit.query_plans import assert_added_on_start, plans_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def batch(n: int, state: str) -> dict:
    return dict(batch_id=f"A{n:010d}", tenant="t", printshop="s", profile="default",
                envelope="C5", inserts="", state=state, reason="cutoff", closed_at=NOW,
                pieces=1, sheets=1, pages=1, first_sequence=n, last_sequence=n, files="{}")


def queue_on(tmp_path) -> tuple[DocumentIndex, PrintQueue]:
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    queue = PrintQueue(index, PrintSettings.from_dict({}))
    queue.create_schema()
    return index, queue


def test_batches_left_closing_are_found_by_state(tmp_path):
    index, queue = queue_on(tmp_path)
    with index.engine.begin() as conn:
        conn.execute(insert(print_batches), [batch(n, "acknowledged") for n in range(3000)])
    service = BatchService(queue, store=None)  # type: ignore[arg-type]  # nothing to build
    assert service.close_due(NOW) == []
    assert "ix_print_batches_state" in plans_of(
        index.engine, lambda: service.close_due(NOW), "FROM print_batches")
    index.close()


def test_the_closers_round_reads_only_the_waiting_pieces(tmp_path):
    """The background closer's every round (server.printing.closer) groups the waiting
    pieces by index, not by reading every piece ever batched."""
    index, queue = queue_on(tmp_path)
    with index.engine.begin() as conn:
        conn.execute(insert(print_pieces), [dict(
            piece_id=f"P{n:08d}", document_id=f"P{n:08d}", tenant="t", printshop="s",
            profile="default", archive_key="k", pdf_sha256="0" * 64, pages=1, envelope="C5",
            sides="", sheets=1, inserts="", country="NO", postal_code="0150", queued_at=NOW,
            batch_id=f"A{n % 30:010d}", reprint_of=None) for n in range(3000)])
    service = BatchService(queue, store=None)  # type: ignore[arg-type]  # nothing to build
    assert "ix_print_pieces_batch" in plans_of(
        index.engine, lambda: service.close_due(NOW), "FROM print_pieces")
    index.close()


def test_a_database_made_before_the_index_gets_it_on_start(tmp_path):
    index, queue = queue_on(tmp_path)
    assert_added_on_start(index.engine, queue.create_schema, "print_batches",
                          "ix_print_batches_state")
    index.close()
