"""Every print batch ever made stays; the ones left `closing` (an interrupted build, looked
for at every close_due and close_now) are found by state (`ix_print_batches_state`), not by
reading them all; a database made before the index gets it on start. Figures:
load_tests/bench_history_queries.py."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from archive.index import DocumentIndex
from server.printing.batches import BatchService
from server.printing.queue import PrintQueue, PrintSettings, print_batches
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


def test_a_database_made_before_the_index_gets_it_on_start(tmp_path):
    index, queue = queue_on(tmp_path)
    assert_added_on_start(index.engine, queue.create_schema, "print_batches",
                          "ix_print_batches_state")
    index.close()
