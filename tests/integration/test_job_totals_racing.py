"""A job's running totals (server.jobs.totals) stay the sum of its chunks' summaries while
several workers finish, and finish again (redelivered), its chunks at the same time, on
PostgreSQL (concurrent transactions, READ COMMITTED) and SQLite (one writer at a time); also
when the job is from before the totals and the workers race to count them first."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from server.jobs.model import ChunkSummary, JobHeader
from server.jobs.store import JobStore
from server.jobs.tables import job_chunks, jobs

WORKERS = 4
CHUNKS = 40


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    url = (request.getfixturevalue("pg_url") if request.param == "postgresql"
           else f"sqlite:///{tmp_path / 'jobs.db'}")
    store = JobStore(url, chunk_size=3)
    store.create_schema()
    yield store
    store.close()


def worker_summary(worker: int, chunk: int) -> ChunkSummary:
    """What worker `worker` counts for a chunk: each worker differently, so the totals show
    whose summary replaced whose."""
    failed = (worker + chunk) % 2
    documents = 3 - failed
    channels = {"print": [documents, documents * (worker + 1)]}
    if worker == 3:
        channels["email"] = [1, 0]
    return ChunkSummary(documents, failed, documents * (worker + 1), channels)


@pytest.mark.parametrize("older_job", [False, True])
def test_totals_stay_the_sum_of_the_summaries_with_workers_racing(store, older_job):
    job_id = uuid.uuid4().hex[:26].upper()
    store.create_job(job_id, JobHeader(tenant="t", layout_id="card-invoice",
                                       layout_version="1.0.0"), datetime.now(UTC))
    store.add_records(job_id, [(f"r{n}", "{}") for n in range(CHUNKS * 3)])
    store.seal(job_id, CHUNKS * 3)
    for chunk in range(CHUNKS):
        assert store.start_chunk(job_id, chunk)
    if older_job:  # no totals yet: the first chunk change of each worker races to count
        with store.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.job_id == job_id)
                         .values(totals_version=None))
    start = threading.Barrier(WORKERS)
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        order = list(range(CHUNKS))
        random.Random(worker).shuffle(order)
        start.wait()
        try:
            for chunk in order:  # every chunk finished by every worker, as if redelivered
                store.finish_chunk(job_id, chunk, worker_summary(worker, chunk), {})
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    try:
        expected = ChunkSummary()
        with store.engine.connect() as conn:
            for (text,) in conn.execute(select(job_chunks.c.summary).where(
                    job_chunks.c.job_id == job_id)):
                expected.add(ChunkSummary.from_json(text))
        progress = store.progress(job_id)
        assert progress.summary == expected
        assert (progress.pending, progress.running, progress.done, progress.failed,
                progress.cancelled) == (0, 0, expected.documents, expected.failed, 0)
        assert progress.done + progress.failed == progress.total
    finally:
        store.discard(job_id)
