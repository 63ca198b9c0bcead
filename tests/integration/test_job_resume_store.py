"""Resuming a cancelled job in the job store (server.jobs.resuming), on SQLite and PostgreSQL:
the totals stay exactly the sum of the chunks' contributions through cancel, resume, start,
finish and cancel again; a chunk's cancelled records are listed a page at a time; a failed
record keeps its error; a worker that saw the job cancelled before it was resumed settles
nothing of it; a job's end decided while it is resumed leaves it queued.

CI: `test_jobs_resume::test_a_resumed_job_can_be_cancelled_and_resumed_again` once ended
`completed` with done 40, cancelled 0, failed 0 of 60 records. The runner, settling the job
as it was cancelled, counted its chunks (all settled) just before the test's ResumeJob
committed, then set the final state on the job, which by then was queued again: `completed`,
with the 20 records just requeued never run. The last two tests hold the resume at that very
point, so the race is not left to timing: the finish now locks the job's row before it
counts, as the resume does."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, update

from archive.index import DocumentIndex
from server.errors import FailedPrecondition, NotFound
from server.jobs import resuming
from server.jobs.model import ChunkSummary, JobHeader, JobRow
from server.jobs.store import JobStore
from server.jobs.tables import CANCELLED, QUEUED, jobs

TENANT = "t"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    url = (request.getfixturevalue("pg_url") if request.param == "postgresql"
           else f"sqlite:///{tmp_path / 'jobs.db'}")
    DocumentIndex(url).create_schema()  # settling counts a chunk's documents there
    store = JobStore(url, chunk_size=2)
    store.create_schema()
    yield store
    store.close()


def sealed_job(store: JobStore, records: int) -> str:
    job_id = uuid.uuid4().hex[:26].upper()
    store.create_job(job_id, JobHeader(tenant=TENANT, layout_id="card-invoice",
                                       layout_version="1.0.0"), datetime.now(UTC))
    store.add_records(job_id, [(f"r{n}", "{}") for n in range(records)])
    store.seal(job_id, records)
    return job_id


def counts(store: JobStore, job_id: str) -> tuple[str, int, int, int, int, int]:
    """(state, pending, running, done, failed, cancelled); their sum is the total."""
    p = store.progress(job_id)
    assert p.pending + p.running + p.done + p.failed + p.cancelled == p.total
    return p.job.state, p.pending, p.running, p.done, p.failed, p.cancelled


def counted_afresh(store: JobStore, job_id: str) -> tuple:
    """The counts with the totals counted again from the chunks (server.jobs.totals)."""
    with store.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(totals_version=None))
    return counts(store, job_id)


def cancelled_for_the_night(store: JobStore) -> str:
    """9 records in chunks of 2 (2, 2, 2, 2, 1): chunk 0 done; chunks 1 and 2 running when
    the job is cancelled, chunk 1's r2 failed before its worker stopped; 3 and 4 never ran."""
    job_id = sealed_job(store, 9)
    assert store.start_chunk(job_id, 0)
    store.finish_chunk(job_id, 0, ChunkSummary(documents=2), {})
    assert store.start_chunk(job_id, 1) and store.start_chunk(job_id, 2)
    store.cancel(job_id, TENANT)
    assert store.settle_chunk(job_id, 1, {2: [("$.amount", "is not money")]})
    assert store.settle_chunk(job_id, 2)
    assert counts(store, job_id) == ("cancelled", 0, 0, 2, 1, 6)
    return job_id


def test_cancelled_records_are_listed_a_page_at_a_time(store):
    job_id = cancelled_for_the_night(store)
    assert store.cancelled_records(job_id, TENANT, -1, 100) == (
        ["r3", "r4", "r5", "r6", "r7", "r8"], None)
    assert store.cancelled_records(job_id, TENANT, -1, 4) == (["r3", "r4", "r5", "r6"], 6)
    assert store.cancelled_records(job_id, TENANT, 6, 4) == (["r7", "r8"], None)


def test_a_resumed_job_counts_exactly_and_runs_only_its_cancelled_records(store):
    job_id = cancelled_for_the_night(store)
    store.resume(job_id, TENANT)
    # r0, r1 documents and r2 failed stand; the six cancelled records are pending again
    assert counts(store, job_id) == ("queued", 6, 0, 2, 1, 0)
    assert counted_afresh(store, job_id) == ("queued", 6, 0, 2, 1, 0)
    assert store.cancelled_records(job_id, TENANT, -1, 100) == ([], None)
    with pytest.raises(FailedPrecondition, match=f"job {job_id} is queued, not cancelled"):
        store.resume(job_id, TENANT)

    assert store.start_chunk(job_id, 1)  # its summary goes: r2 and r3 count as running
    assert counts(store, job_id) == ("running", 5, 2, 2, 0, 0)
    assert [(r.record_key, r.failed) for r in store.chunk_records(job_id, 1, 2)] == [
        ("r2", True), ("r3", False)]  # the worker skips r2: its error stands
    store.finish_chunk(job_id, 1, ChunkSummary(documents=1, failed=1), {})
    assert counts(store, job_id) == ("running", 5, 0, 3, 1, 0)
    for chunk, documents in ((2, 2), (3, 2), (4, 1)):
        assert store.start_chunk(job_id, chunk)
        store.finish_chunk(job_id, chunk, ChunkSummary(documents=documents), {})
    assert store.finish_job_if_done(job_id) == "completed_with_errors"
    assert counts(store, job_id) == ("completed_with_errors", 0, 0, 8, 1, 0)
    assert counted_afresh(store, job_id) == ("completed_with_errors", 0, 0, 8, 1, 0)
    assert [e.record_key for e in store.errors(job_id, TENANT, -1, 100)[0]] == ["r2"]
    with pytest.raises(FailedPrecondition, match="is already completed_with_errors"):
        store.resume(job_id, TENANT)


def test_a_resumed_job_cancelled_again_settles_exactly(store):
    job_id = cancelled_for_the_night(store)
    store.resume(job_id, TENANT)
    store.cancel(job_id, TENANT)  # 3 and 4 never ran: settled at once; 1 and 2 ran before
    assert counts(store, job_id) == ("cancelling", 3, 0, 2, 1, 3)
    assert store.settle_chunk(job_id, 1, states=("pending",))  # as the runner does
    assert store.settle_chunk(job_id, 2, states=("pending",))
    assert counts(store, job_id) == ("cancelled", 0, 0, 2, 1, 6)
    assert counted_afresh(store, job_id) == ("cancelled", 0, 0, 2, 1, 6)
    assert store.cancelled_records(job_id, TENANT, -1, 100) == (
        ["r3", "r4", "r5", "r6", "r7", "r8"], None)


def test_a_worker_that_saw_the_job_cancelled_settles_nothing_once_it_is_resumed(store):
    """A chunk that waited in a queue through the cancel: its worker found the job
    cancelled (start_chunk False) and settles the chunk, but the job was resumed meanwhile;
    the chunk stays pending and runs (was: settled cancelled again, and the job ended
    `completed` with records never composed)."""
    job_id = cancelled_for_the_night(store)
    store.resume(job_id, TENANT)
    assert not store.settle_chunk(job_id, 3)
    assert counts(store, job_id) == ("queued", 6, 0, 2, 1, 0)
    assert store.pending_chunks(job_id) == [1, 2, 3, 4]


def test_a_job_not_cancelled_is_not_resumed_and_another_tenants_is_not_found(store):
    job_id = sealed_job(store, 3)
    with pytest.raises(FailedPrecondition, match=f"job {job_id} is queued, not cancelled"):
        store.resume(job_id, TENANT)
    assert store.start_chunk(job_id, 0)
    store.cancel(job_id, TENANT)  # chunk 0 is held by a worker
    with pytest.raises(FailedPrecondition, match="is cancelling: its running chunks"):
        store.resume(job_id, TENANT)
    assert store.settle_chunk(job_id, 0)
    with pytest.raises(NotFound):
        store.resume(job_id, "another")
    with pytest.raises(NotFound):
        store.cancelled_records(job_id, "another", -1, 10)
    assert counts(store, job_id)[0] == "cancelled"


def cancelled_job(store: JobStore) -> str:
    """10 records (5 chunks) cancelled before any chunk ran: all settled, the job cancelled."""
    job_id = sealed_job(store, 10)
    assert store.cancel(job_id, TENANT).state == CANCELLED
    return job_id


def test_a_job_resumed_as_its_end_is_decided_stays_queued(store):
    """The resume commits just before the finish's first write (the runner's finish had
    counted the chunks then: all settled)."""
    job_id = cancelled_job(store)
    finisher = threading.get_ident()
    resumed: list[JobRow] = []

    def resume_first(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if (threading.get_ident() == finisher and not resumed
                and statement.lstrip().upper().startswith("UPDATE")):
            resume = threading.Thread(target=lambda: resumed.append(store.resume(job_id, TENANT)))
            resume.start()
            resume.join(60)

    event.listen(store.engine, "before_cursor_execute", resume_first)
    try:
        assert store.finish_job_if_done(job_id) is None  # its chunks are pending again
    finally:
        event.remove(store.engine, "before_cursor_execute", resume_first)
    assert [job.state for job in resumed] == [QUEUED]
    job = store.get(job_id)
    assert job.state == QUEUED and job.finished_at is None
    assert len(store.pending_chunks(job_id)) == 5


def test_a_resume_holding_the_job_makes_its_end_wait(store, monkeypatch):
    """The finish comes while the resume holds the job's row, its chunks pending and not
    yet committed: it waits for the resume, then counts those chunks."""
    job_id = cancelled_job(store)
    requeued = threading.Event()
    finished: list[str | None] = []
    real_requeue = resuming._requeue

    def requeue_then_wait(conn, job):  # type: ignore[no-untyped-def]
        count = real_requeue(conn, job)
        requeued.set()
        finisher.join(1.0)  # the finish meanwhile: it must wait for the commit
        return count

    def finish() -> None:
        requeued.wait(30)
        finished.append(store.finish_job_if_done(job_id))

    monkeypatch.setattr(resuming, "_requeue", requeue_then_wait)
    finisher = threading.Thread(target=finish)
    finisher.start()
    store.resume(job_id, TENANT)
    finisher.join(60)

    assert finished == [None]
    job = store.get(job_id)
    assert job.state == QUEUED and job.finished_at is None
    assert len(store.pending_chunks(job_id)) == 5
