"""Job scheduling in the server: unfinished jobs -> chunks on the queue, until every chunk is done.

One background thread scans the job store for queued or running jobs (highest priority,
then oldest, first) and submits each chunk that is not done and not already in flight.
It wakes when a job is sealed or a chunk finishes, and also every few seconds, which is what
resumes work after a restart: chunks left 'running' by a dead server are simply not done,
so they are submitted again, and the idempotent worker makes the re-run harmless.

Real-time `Compose` calls never wait behind bulk work: they run in the server's gRPC
threads, while chunks run in separate worker processes at a lower CPU priority (nice 10).
"""

from __future__ import annotations

import threading

from server import logs, metrics
from server.jobs.queue import ChunkQueue, LocalQueue
from server.jobs.store import JobStore
from server.jobs.worker import ChunkOutcome

log = logs.get_logger(__name__)

RESCAN_SECONDS = 5.0


class JobRunner:
    def __init__(self, store: JobStore, queue: ChunkQueue, *, track_inflight: bool = True):
        self.store = store
        self.queue = queue
        self.track_inflight = track_inflight  # False for RabbitMQ: submit each chunk once
        self._inflight: set[tuple[str, int]] = set()
        self._submitted: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_rss_kb: dict[int, int] = {}  # worker pid -> peak RSS

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.queue.close()

    def notify(self) -> None:
        """A job was sealed or cancelled: look again now."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._schedule()
            except Exception as exc:  # the database may be briefly away; try again
                log.warning("job scheduling failed", error=repr(exc))
            self._wake.wait(RESCAN_SECONDS)
            self._wake.clear()

    def _schedule(self) -> None:
        for job in self.store.unfinished_jobs():
            if self._stop.is_set():
                return
            for chunk in self.store.pending_chunks(job.job_id):
                key = (job.job_id, chunk)
                with self._lock:
                    seen = self._inflight if self.track_inflight else self._submitted
                    if key in seen:
                        continue
                    seen.add(key)
                self.queue.submit(job.job_id, chunk, job.header.priority, self._done)

    def _done(self, job_id: str, chunk: int, outcome: ChunkOutcome | None) -> None:
        with self._lock:
            self._inflight.discard((job_id, chunk))
            if outcome is not None:
                self.peak_rss_kb[outcome.pid] = max(self.peak_rss_kb.get(outcome.pid, 0),
                                                    outcome.peak_rss_kb)
        if outcome is None:  # failed: finish_job_if_done may be due for the other chunks
            return
        metrics.replay(outcome.metrics)
        self._wake.set()


def local_runner(store: JobStore, config: object, workers: int | None = None) -> JobRunner:
    return JobRunner(store, LocalQueue(config, workers))  # type: ignore[arg-type]
