"""A job's end (server.jobs.chunks.finish_job_if_done) racing ResumeJob (server.jobs.resuming)
on PostgreSQL (READ COMMITTED) and SQLite (one writer at a time).

CI: `test_jobs_resume::test_a_resumed_job_can_be_cancelled_and_resumed_again` once ended
`completed` with done 40, cancelled 0, failed 0 of 60 records. The runner, settling the job
as it was cancelled, counted its chunks (all settled) just before the test's ResumeJob
committed, then set the final state on the job, which by then was queued again: `completed`,
with the 20 records just requeued never run. Here the resume is held open at that very
point, so the race is not left to timing: the finish now locks the job's row before it
counts, as the resume does."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from server.jobs import resuming
from server.jobs.model import JobHeader, JobRow
from server.jobs.store import JobStore
from server.jobs.tables import CANCELLED, QUEUED

TENANT = "t"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    url = (request.getfixturevalue("pg_url") if request.param == "postgresql"
           else f"sqlite:///{tmp_path / 'jobs.db'}")
    store = JobStore(url, chunk_size=5)
    store.create_schema()
    yield store
    store.close()


def cancelled_job(store: JobStore, records: int) -> str:
    """A sealed job cancelled before any chunk ran: every chunk settled, the job cancelled."""
    job_id = uuid.uuid4().hex[:26].upper()
    store.create_job(job_id, JobHeader(tenant=TENANT, layout_id="card-invoice",
                                       layout_version="1.0.0"), datetime.now(UTC))
    store.add_records(job_id, [(f"r{n}", "{}") for n in range(records)])
    store.seal(job_id, records)
    assert store.cancel(job_id, TENANT).state == CANCELLED
    return job_id


def test_a_job_resumed_as_its_end_is_decided_stays_queued(store):
    """The resume commits just before the finish's first write (the runner's finish had
    counted the chunks then: all settled)."""
    job_id = cancelled_job(store, 20)
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
        assert store.finish_job_if_done(job_id) is None  # its 4 chunks are pending again
    finally:
        event.remove(store.engine, "before_cursor_execute", resume_first)
    assert [job.state for job in resumed] == [QUEUED]
    job = store.get(job_id)
    assert job.state == QUEUED and job.finished_at is None
    assert len(store.pending_chunks(job_id)) == 4


def test_a_resume_holding_the_job_makes_its_end_wait(store, monkeypatch):
    """The finish comes while the resume holds the job's row, its chunks pending and not
    yet committed: it waits for the resume, then counts those chunks."""
    job_id = cancelled_job(store, 20)
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
    assert len(store.pending_chunks(job_id)) == 4
