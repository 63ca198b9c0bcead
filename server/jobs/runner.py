"""Job scheduling in the server: unfinished jobs -> chunks on the queue, until every chunk is done.

One background thread scans the job store for queued or running jobs (highest priority,
then oldest, first) and submits each chunk that is not done and not already in flight.
It wakes when a job is sealed or a chunk finishes, and also every few seconds, which is what
resumes work after a restart: chunks left 'running' by a dead server are simply not done,
so they are submitted again, and the idempotent worker makes the re-run harmless. A chunk
that failed (a backend down, a worker killed) is counted in the store and waits out its
back-off (server.jobs.chunks.retry_delay) before it is submitted again. The chunks of a
cancelled job that no worker holds (left 'running' by a dead server, or waiting for a retry)
are settled here (server.jobs.cancelling), so the job reaches `cancelled` after a restart too.
Each round also marks the running chunks whose worker finished no document for
`stall_seconds` as stalled, and clears the mark when they move again (server.jobs.stalls).
At start, a job left 'receiving' by a server that died mid-stream is discarded when no
stream can still be feeding it (`abandoned_after`: the stream's time limit and a margin):
its client got no job id, and another server may still be receiving a younger one.

A finished chunk also brings what its worker process wrote to the archive (its outcome, or its
error: server.jobs.worker.run_chunk): `on_archive_writes` counts it into the server's own
archive write health, so S3 refusing a worker's writes is the server's `kanal.archive`
health and restarts an embedded SeaweedFS as the server's own refused writes do
(archive.write_health). RabbitMQ workers (`kanal worker`) send nothing back: their S3 is
never the server's embedded one, and their refused writes fail their chunks.

Real-time `Compose` calls never wait behind bulk work: they run in the server's gRPC
threads, while chunks run in separate worker processes at a lower CPU priority (nice 10 and
SCHED_IDLE: server.processes.yield_cpu).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from archive.write_health import WriteReport
from server import logs, metrics
from server.jobs.queue import ChunkQueue, LocalQueue, record_failure
from server.jobs.stalls import STALL_SECONDS, StallWatch
from server.jobs.store import JobStore
from server.jobs.tables import CANCELLING, CHUNK_RUNNING
from server.jobs.worker import ChunkOutcome, chunk_archive_writes

log = logs.get_logger(__name__)

RESCAN_SECONDS = 5.0


class JobRunner:
    def __init__(self, store: JobStore, queue: ChunkQueue, *, track_inflight: bool = True,
                 abandoned_after: timedelta = timedelta(hours=1, minutes=1),
                 stall_seconds: float = STALL_SECONDS,
                 on_archive_writes: Callable[[WriteReport], None] | None = None):
        """`on_archive_writes`: told what each finished chunk's worker process wrote to
        the archive since its last chunk (archive.write_health `WriteReport`, from its
        outcome or its error): the server counts it into its own store's write health."""
        self.store = store
        self.on_archive_writes = on_archive_writes
        self.stalls = StallWatch(store, stall_seconds)  # running chunks without progress
        self.abandoned_after = abandoned_after
        self._swept = False  # jobs left receiving are looked for once, at the first scan
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

    def resumed(self, job_id: str) -> None:
        """A cancelled job was resumed (server.jobs.resuming): its chunks go out again,
        those published once before too (RabbitMQ: `track_inflight` False); look now."""
        with self._lock:
            self._submitted = {key for key in self._submitted if key[0] != job_id}
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            # a stall is seen within half its time ([jobs] stall_seconds, server.jobs.stalls)
            wait = min(RESCAN_SECONDS, self.stalls.stall_seconds / 2)
            try:
                self._sweep()
                next_retry = self._schedule()
                self.stalls.check()
                if next_retry is not None:
                    seconds = (next_retry - datetime.now(UTC)).total_seconds()
                    wait = min(wait, max(seconds, 0.05))
            except Exception as exc:  # the database may be briefly away; try again
                log.warning("job scheduling failed", error=repr(exc))
            self._wake.wait(wait)
            self._wake.clear()

    def _sweep(self) -> None:
        if self._swept:
            return
        for job_id in self.store.discard_abandoned(datetime.now(UTC) - self.abandoned_after):
            log.warning("job discarded: its SubmitBatch stream ended unsealed", job_id=job_id)
        self._swept = True

    def _schedule(self) -> datetime | None:
        """Submit every due chunk; returns when the next failed chunk's back-off ends."""
        now, next_retry = datetime.now(UTC), None
        for job in self.store.unfinished_jobs():
            if self._stop.is_set():
                return None
            if job.state == CANCELLING:
                self._settle(job.job_id)
                continue
            chunks, later = self.store.due_chunks(job.job_id, now)
            if not chunks and later is None:  # all settled; a finish may have raced another
                self.store.finish_job_if_done(job.job_id)
                continue
            if later is not None and (next_retry is None or later < next_retry):
                next_retry = later
            for chunk in chunks:
                key = (job.job_id, chunk)
                with self._lock:
                    seen = self._inflight if self.track_inflight else self._submitted
                    if key in seen:
                        continue
                    seen.add(key)
                self.queue.submit(job.job_id, chunk, job.header.priority, self._done)
        return next_retry

    def _settle(self, job_id: str) -> None:
        """A cancelled job's chunks that no worker of ours holds: settled here (counted from
        the index). With workers elsewhere (RabbitMQ) only pending ones: a running chunk's
        worker settles it, or, if that worker died, the one its message is redelivered to."""
        for chunk, state in self.store.unsettled_chunks(job_id):
            with self._lock:
                if (job_id, chunk) in self._inflight:
                    continue
            if state == CHUNK_RUNNING and not self.track_inflight:
                continue
            self.store.settle_chunk(job_id, chunk, states=(state,))
        self.store.finish_job_if_done(job_id)

    def _done(self, job_id: str, chunk: int, outcome: ChunkOutcome | None,
              error: BaseException | None = None) -> None:
        if outcome is None:  # failed: wait out the back-off before it is submitted again
            delay = record_failure(self.store, job_id, chunk,
                                   error or RuntimeError("the chunk did not run"))
            log.warning("chunk will be retried", job_id=job_id, chunk=chunk, seconds=delay)
        with self._lock:
            self._inflight.discard((job_id, chunk))
            if outcome is not None:
                self.peak_rss_kb[outcome.pid] = max(self.peak_rss_kb.get(outcome.pid, 0),
                                                    outcome.peak_rss_kb)
        if outcome is not None:
            metrics.replay(outcome.metrics)
        writes = chunk_archive_writes(outcome, error)
        if writes is not None and self.on_archive_writes is not None:
            try:
                self.on_archive_writes(writes)
            except Exception as exc:  # noqa: BLE001 - the chunk's own result matters more
                log.warning("archive writes of a chunk not counted", error=repr(exc)[:300])
        self._wake.set()


def local_runner(store: JobStore, config: object, workers: int | None = None) -> JobRunner:
    return JobRunner(store, LocalQueue(config, workers))  # type: ignore[arg-type]
