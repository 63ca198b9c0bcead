"""The closer's rounds (server.printing.batches.close_due, as server.printing.closer calls
it) on SQLite with an archive in memory: a batch a crash left ``closing`` that cannot be
built (its piece's PDF is gone) is logged and holds up no other group; a round with nothing
due closes nothing; `[printing] close_poll_seconds` must be a number of seconds above 0."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pikepdf
import pytest
from sqlalchemy import insert, select, update

from archive.errors import ObjectNotFound
from archive.index import DocumentIndex
from server.printing.batches import BatchService
from server.printing.closer import BatchCloser
from server.printing.queue import (
    PrintQueue,
    PrintSettings,
    QueuedPiece,
    print_batches,
    print_pieces,
)

NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


def blank_pdf() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595.276, 841.89))
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


class MemoryStore:
    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def get(self, key: str, expected_sha256: str | None = None) -> bytes:
        if key not in self.objects:
            raise ObjectNotFound(key)
        return self.objects[key]

    def put(self, key, content, **_):
        self.objects.setdefault(key, content)
        return SimpleNamespace(sha256=hashlib.sha256(content).hexdigest(), size=len(content))


@pytest.fixture
def service(tmp_path):
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    queue = PrintQueue(index, PrintSettings.from_dict({"batch_size": 3}))
    queue.create_schema()
    store = MemoryStore()
    store.objects["doc.pdf"] = blank_pdf()
    yield BatchService(queue, store)  # type: ignore[arg-type]
    index.close()


def enqueue(service: BatchService, tenant: str, count: int, key: str = "doc.pdf") -> list[str]:
    pdf = service.store.objects.get(key, b"")
    return [service.queue.enqueue(QueuedPiece(
        document_id=f"{tenant}-{n}", tenant=tenant, archive_key=key,
        pdf_sha256=hashlib.sha256(pdf).hexdigest(), pages=1, envelope="C5", inserts=(),
        country="NO", postal_code="0150"), NOW + timedelta(seconds=n)) for n in range(count)]


def test_a_batch_that_cannot_be_built_holds_up_no_other_group(service):
    lost = enqueue(service, "lost", 1, key="gone.pdf")
    with service.engine.begin() as conn:  # what a crash between claim and build leaves
        conn.execute(update(print_pieces).where(print_pieces.c.piece_id.in_(lost))
                     .values(batch_id="CRASHED1"))
        conn.execute(insert(print_batches).values(
            batch_id="CRASHED1", tenant="lost", printshop="demo-print", profile="default",
            envelope="C5", inserts="", state="closing", reason="size", closed_at=NOW,
            pieces=1, sheets=1, pages=0, first_sequence=0, last_sequence=0, files="{}"))
    ids = enqueue(service, "full", 7)

    closed = BatchCloser(service, lambda: NOW, poll_seconds=60).tick()

    with service.engine.begin() as conn:
        states = dict(conn.execute(select(print_batches.c.batch_id,
                                          print_batches.c.state)).all())
        placed = dict(conn.execute(select(print_pieces.c.piece_id, print_pieces.c.batch_id)
                                   .where(print_pieces.c.tenant == "full")).all())
    assert states.pop("CRASHED1") == "closing"  # tried again next round
    assert sorted(states) == sorted(closed) and set(states.values()) == {"ready"}
    assert len(closed) == 2 and [placed[i] is None for i in ids] == [False] * 6 + [True]


def test_a_round_with_nothing_due_closes_nothing(service):
    enqueue(service, "few", 2)
    assert service.close_due(NOW + timedelta(minutes=239)) == []
    assert len(service.close_due(NOW + timedelta(minutes=241))) == 1  # the cut-off


@pytest.mark.parametrize("value", [0, -1, float("nan"), 3601])
def test_close_poll_seconds_must_be_above_zero(value):
    with pytest.raises(ValueError, match="printing.close_poll_seconds"):
        PrintSettings.from_dict({"close_poll_seconds": value})
