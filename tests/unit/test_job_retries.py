"""Jobs that meet trouble: a poison record fails alone, a chunk that fails for a reason
outside its records waits out an exponential back-off (kept in the store, so a restarted
server keeps to it), and a job whose chunks keep failing says why. A real JobStore on
SQLite; stand-ins for the document service and the chunk queue (the integration tests in
tests/integration/test_faults.py run the same paths with real processes)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.documents import ComposeInput
from server.errors import FieldViolation, InvalidInput, Unavailable
from server.jobs import chunks
from server.jobs.chunks import RETRY_MAX_SECONDS, retry_delay
from server.jobs.model import ChunkSummary, JobHeader
from server.jobs.results import STALLED_AFTER
from server.jobs.runner import JobRunner
from server.jobs.store import JobStore
from server.jobs.tables import job_records
from server.jobs.worker import ChunkOutcome, Pipeline


@pytest.fixture
def jobs(tmp_path: Path) -> JobStore:
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}", chunk_size=3)
    store.create_schema()
    return store


def new_job(jobs: JobStore, records: int, job_id: str = "01JOB0000000000000000000AA") -> str:
    jobs.create_job(job_id, JobHeader(tenant="t", layout_id="l", layout_version="1.0.0"),
                    datetime.now(UTC))
    jobs.add_records(job_id, ((f"r{n}", "{}") for n in range(records)))
    jobs.seal(job_id, records)
    return job_id


class Documents:
    """render_as: one record raises what its data says, the others are rendered; commit:
    the chunk's rendered documents are composed (DocumentService's two halves)."""

    def __init__(self, raises: dict[str, BaseException]):
        self.raises = raises
        self.composed: list[str] = []

    def indexed_ids(self, tenant: str, document_ids: list[str]) -> set[str]:
        return set()

    def render_as(self, request: ComposeInput, document_id: str, now: datetime,
                  indexed: bool | None = None) -> str:
        error = self.raises.get(request.data)
        if error is not None:
            raise error
        return request.data

    def commit(self, rendered: list[str]) -> list[object]:
        self.composed.extend(rendered)

        class Result:
            outputs = ()
        return [Result() for _ in rendered]


def test_a_poison_record_fails_alone_and_every_violation_is_kept(jobs: JobStore):
    job_id = new_job(jobs, 3)
    with jobs.engine.begin() as conn:  # give each record its own data
        for n in range(3):
            conn.execute(job_records.update().where(
                job_records.c.seq == n).values(data_json=f"d{n}"))
    documents = Documents({
        "d0": RecursionError("maximum recursion depth exceeded"),  # no check foresaw it
        "d2": InvalidInput("bad", [FieldViolation("$.currency", "not ISO 4217"),
                                   FieldViolation("$.transactions[2].amount", "not money")]),
    })
    outcome = Pipeline(documents, jobs).run_chunk(job_id, 0)  # type: ignore[arg-type]
    assert (outcome.documents, outcome.failed) == (1, 2) and documents.composed == ["d1"]
    assert jobs.get(job_id).state == "completed_with_errors"
    errors, _ = jobs.errors(job_id, "t", -1, 10)
    assert [(e.record_key, e.field) for e in errors] == [
        ("r0", ""), ("r2", "$.currency"), ("r2", "$.transactions[2].amount")]
    assert "RecursionError" in errors[0].message
    assert "maximum recursion" not in errors[0].message  # details go to the log only


def test_a_backend_failure_fails_the_whole_chunk(jobs: JobStore):
    job_id = new_job(jobs, 3)
    with jobs.engine.begin() as conn:
        conn.execute(job_records.update().values(data_json="down"))
    documents = Documents({"down": Unavailable("e-archive unavailable")})
    with pytest.raises(Unavailable):
        Pipeline(documents, jobs).run_chunk(job_id, 0)  # type: ignore[arg-type]
    assert jobs.errors(job_id, "t", -1, 10)[0] == []


def test_failed_chunks_back_off_exponentially_and_the_job_says_it_is_stalled(jobs: JobStore):
    job_id = new_job(jobs, 6)  # chunks 0 and 1
    now = datetime.now(UTC)
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert retry_delay(100) == RETRY_MAX_SECONDS
    for failures in range(1, STALLED_AFTER + 1):
        delay = jobs.chunk_failed(job_id, 1, "e-archive unavailable: connection refused", now)
        assert delay == retry_delay(failures)
        due, later = jobs.due_chunks(job_id, now)
        assert due == [0] and later == now + timedelta(seconds=delay)
        stalled = jobs.progress(job_id).stalled
        assert bool(stalled) == (failures >= STALLED_AFTER)
    progress = jobs.progress(job_id)
    assert "chunk 1 failed 3 times in a row: e-archive unavailable" in progress.stalled
    assert progress.retry_at == now + timedelta(seconds=retry_delay(STALLED_AFTER))
    assert jobs.due_chunks(job_id, now + timedelta(seconds=60))[0] == [0, 1]

    jobs.finish_chunk(job_id, 1, ChunkSummary(documents=3), {})
    assert jobs.progress(job_id).stalled == "" and jobs.due_chunks(job_id, now)[0] == [0]


class FlakyQueue:
    """Runs chunks in a thread; the first `failures` runs of chunk 0 fail as if S3 were down."""

    def __init__(self, jobs: JobStore, failures: int):
        self.jobs, self.failures = jobs, failures
        self.runs: list[tuple[int, float]] = []

    def submit(self, job_id, chunk, priority, done):
        def run():
            self.runs.append((chunk, datetime.now(UTC).timestamp()))
            if chunk == 0 and self.failures:
                self.failures -= 1
                done(job_id, chunk, None, Unavailable("e-archive unavailable"))
                return
            self.jobs.start_chunk(job_id, chunk)
            self.jobs.finish_chunk(job_id, chunk, ChunkSummary(documents=3), {})
            self.jobs.finish_job_if_done(job_id)
            done(job_id, chunk, ChunkOutcome(job_id, chunk, True, 3, 0, 0, 0))
        threading.Thread(target=run).start()

    def close(self):
        pass

    def ping(self):
        pass


def test_the_runner_waits_out_the_back_off_then_the_job_completes(jobs, monkeypatch):
    monkeypatch.setattr(chunks, "RETRY_BASE_SECONDS", 0.2)
    job_id = new_job(jobs, 6)
    queue = FlakyQueue(jobs, failures=2)
    runner = JobRunner(jobs, queue)
    runner.start()
    try:
        for _ in range(300):
            if jobs.get(job_id).state == "completed":
                break
            time.sleep(0.02)  # polling the store for the job's end
    finally:
        runner.stop()
    assert jobs.get(job_id).state == "completed"
    tries = [at for chunk, at in queue.runs if chunk == 0]
    assert len(tries) == 3
    assert tries[1] - tries[0] >= 0.2 * 0.9 and tries[2] - tries[1] >= 0.4 * 0.9
