"""A bulk worker's refused archive writes count as the server's (archive.write_health).

The job workers are processes of their own with their own archive store
(server.jobs.worker), so S3 refusing their writes reached neither the server's
`kanal.archive` health nor the embedded SeaweedFS's restart. Each chunk's outcome, or the
error of a chunk that failed, now carries what its process's writes came to
(`WriteReport`), and the job runner counts it into the server's store. Here over a real
worker process (LocalQueue, the real `server.jobs.worker.run_chunk`) whose pipeline only
puts objects to a fake S3 (tests/unit/test_archive_write_health.py), and the server's
archive part as server/app.py wires it.
"""

from __future__ import annotations

import os
import queue
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from archive.errors import ArchiveError
from archive.store import ArchiveStore
from archive.write_health import WriteReport
from server.jobs import worker
from server.jobs.queue import LocalQueue
from server.jobs.runner import JobRunner
from server.jobs.worker import ChunkOutcome
from tests.unit.test_archive_write_health import (  # noqa: F401 - fake_s3 is a fixture
    OK,
    FakeS3,
    StubEmbeddedS3,
    fake_s3,
)

PUTS = 3  # a chunk's documents: the threshold of server-side failures


def s3_store(endpoint: str, **kwargs: object) -> ArchiveStore:
    # one attempt per put: botocore's retry back-off would only slow the test
    return ArchiveStore(endpoint_url=endpoint, bucket="b", access_key="k", secret_key="s",
                        max_attempts=1, **kwargs)


class PutsPipeline(worker.Pipeline):
    """A worker's pipeline whose chunk is PUTS archive writes; a chunk whose writes fail
    raises the last error, as a chunk with S3 down does (server.jobs.worker.INFRASTRUCTURE)."""

    def __init__(self, endpoint: str) -> None:
        self.documents = SimpleNamespace(store=s3_store(endpoint))  # type: ignore[assignment]

    def run_chunk(self, job_id: str, chunk: int) -> ChunkOutcome:
        failed: ArchiveError | None = None
        for n in range(PUTS):
            try:
                self.documents.store.put(
                    f"{job_id}/{chunk}/{n}.pdf", b"%PDF-1.7 ...", media_type="application/pdf",
                    metadata={}, retain_until=datetime.now(UTC) + timedelta(days=1))
            except ArchiveError as exc:
                failed = exc
        if failed is not None:
            raise failed
        return ChunkOutcome(job_id, chunk, True, PUTS, 0, os.getpid(), 0)


def puts_init(config: SimpleNamespace) -> None:
    """Runs in the worker process instead of `worker.init_process`."""
    worker._pipeline = PutsPipeline(config.endpoint)


def test_a_workers_refused_writes_make_the_servers_archive_unhealthy_and_restart_s3(
        fake_s3: FakeS3) -> None:  # noqa: F811 - the fixture
    """The fake S3 refuses every write (500 InternalError) until the test says OK."""
    from server.app import KanalServer
    from server.health import ARCHIVE, INDEX, QUEUE, DependencyMonitor

    endpoint = f"http://127.0.0.1:{fake_s3.server_address[1]}"
    server = KanalServer.__new__(KanalServer)  # only the archive's part of a started server
    server.embedded_s3 = StubEmbeddedS3()  # type: ignore[assignment]
    server.store = s3_store(endpoint,  # type: ignore[assignment]
                            on_write_failures=server._archive_writes_failing)
    published: dict[str, bool] = {}
    server.monitor = DependencyMonitor(
        {ARCHIVE: server._archive_probe, INDEX: lambda: None, QUEUE: lambda: None},
        published.__setitem__, interval=3600)  # not started: the test calls check()
    counted: queue.Queue[WriteReport] = queue.Queue()

    def on_archive_writes(report: WriteReport) -> None:  # as server/app.py wires it
        server.store.write_failures.replay(report)
        counted.put(report)

    chunks = LocalQueue(SimpleNamespace(state_dir=None, endpoint=endpoint),  # type: ignore[arg-type]
                        1, run=worker.run_chunk, init=puts_init)
    jobs = SimpleNamespace(chunk_failed=lambda *args: 0.0)  # the job store: a failure counted
    runner = JobRunner(jobs, chunks, on_archive_writes=on_archive_writes)  # type: ignore[arg-type]
    try:
        chunks.submit("job", 0, 0, runner._done)  # S3 refuses the worker's 3 writes
        report = counted.get(timeout=120)
        assert (report.succeeded, report.failures) == (False, PUTS)
        assert server.store.write_failures.failing
        assert len(server.embedded_s3.reasons) == 1  # type: ignore[union-attr]
        assert "InternalError" in server.embedded_s3.reasons[0]  # type: ignore[union-attr]
        assert server.monitor._poked.is_set()  # probed now, not at the next interval
        server.monitor.check()
        assert published[ARCHIVE] is False and published["kanal.v1.Jobs"] is False

        fake_s3.put_answer = OK  # the worker's next chunk is written: the count is reset
        chunks.submit("job", 1, 0, runner._done)
        assert counted.get(timeout=120) == WriteReport(succeeded=True, failures=0)
        assert server.store.write_failures.consecutive == 0
        server.monitor.check()
        assert published[ARCHIVE] is True
    finally:
        chunks.close()
        server.monitor.stop()
