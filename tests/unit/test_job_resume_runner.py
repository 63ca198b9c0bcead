"""A resumed job's chunks go out again, also where the runner publishes each chunk once
(RabbitMQ: `track_inflight` False, the chunk's message is the work): the chunks published
before the cancel were consumed, and their workers found the job cancelled. A real JobStore
on SQLite; a queue that records what is published."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from server.jobs.model import ChunkSummary, JobHeader
from server.jobs.runner import JobRunner
from server.jobs.store import JobStore


class Published:
    def __init__(self) -> None:
        self.chunks: list[tuple[str, int]] = []

    def submit(self, job_id, chunk, priority, done):  # type: ignore[no-untyped-def]
        self.chunks.append((job_id, chunk))

    def close(self) -> None:
        pass

    def ping(self) -> None:
        pass


def test_a_resumed_jobs_chunks_are_published_again(tmp_path: Path):
    jobs = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}", chunk_size=3)
    jobs.create_schema()
    job_id = "01JOB0000000000000000000AA"
    jobs.create_job(job_id, JobHeader(tenant="t", layout_id="l", layout_version="1.0.0"),
                    datetime.now(UTC))
    jobs.add_records(job_id, ((f"r{n}", "{}") for n in range(6)))
    jobs.seal(job_id, 6)
    queue = Published()
    runner = JobRunner(jobs, queue, track_inflight=False)  # type: ignore[arg-type]
    runner._schedule()
    assert queue.chunks == [(job_id, 0), (job_id, 1)]

    assert jobs.start_chunk(job_id, 0)  # a worker runs chunk 0; then the job is cancelled
    jobs.finish_chunk(job_id, 0, ChunkSummary(documents=3), {})
    jobs.cancel(job_id, "t")  # chunk 1 never ran: settled at once
    assert not jobs.start_chunk(job_id, 1)  # its message's worker: the job is cancelled
    assert jobs.get(job_id).state == "cancelled"
    runner._schedule()
    assert queue.chunks == [(job_id, 0), (job_id, 1)]

    jobs.resume(job_id, "t")
    runner.resumed(job_id)  # as ResumeJob tells it
    runner._schedule()
    assert queue.chunks == [(job_id, 0), (job_id, 1), (job_id, 1)]  # only chunk 1 again
    runner._schedule()
    assert queue.chunks == [(job_id, 0), (job_id, 1), (job_id, 1)]  # and once
