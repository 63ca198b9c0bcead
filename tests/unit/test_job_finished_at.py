"""A job's `finished_at` is when it reached its final state: a cancel that must wait for a
running chunk leaves it unset while the job is `cancelling`, and the last settled chunk sets
it with `cancelled` (server.jobs.cancelling, JobChunks.finish_job_if_done). It was set when
the cancel started, while chunks still ran, so a dashboard's duration ended too early.
QA L7. Real SQLite job stores."""

from __future__ import annotations

from datetime import UTC, datetime

from archive.index import DocumentIndex
from server.jobs.model import JobHeader
from server.jobs.store import JobStore

HEADER = JobHeader(tenant="t", layout_id="card-invoice", layout_version="1.0.0")
CREATED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def new_store(tmp_path) -> JobStore:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    DocumentIndex(url).create_schema()
    store = JobStore(url, chunk_size=2)
    store.create_schema()
    return store


def test_a_cancelled_job_finishes_when_its_running_chunk_settles(tmp_path):
    store = new_store(tmp_path)
    store.create_job("J1", HEADER, CREATED)
    store.add_records("J1", [(f"r{n}", "{}") for n in range(4)])
    store.seal("J1", 4)
    assert store.start_chunk("J1", 0)  # running: its worker settles it when it stops
    cancelling = store.cancel("J1", "t")
    assert (cancelling.state, cancelling.finished_at) == ("cancelling", None)
    before = datetime.now(UTC)
    assert store.settle_chunk("J1", 0)
    cancelled = store.get("J1")
    assert cancelled.state == "cancelled"
    assert cancelled.finished_at is not None and cancelled.finished_at >= before
    store.close()


def test_a_job_with_nothing_running_finishes_with_its_cancel(tmp_path):
    store = new_store(tmp_path)
    store.create_job("J2", HEADER, CREATED)
    store.add_records("J2", [("r0", "{}")])
    store.seal("J2", 1)
    before = datetime.now(UTC)
    job = store.cancel("J2", "t")  # the one chunk never ran: settled at once
    assert job.state == "cancelled" and job.finished_at is not None
    assert job.finished_at >= before
    store.close()
