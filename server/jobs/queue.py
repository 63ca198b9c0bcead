"""Chunk queues: (job id, chunk number) -> a worker that runs it.

- `LocalQueue` (embedded default): a pool of worker processes on this machine, one per core,
  started with the 'spawn' context (no forked gRPC or database state) and killed by Linux
  when the server dies (server.processes.process_pool), each with its warm pipeline
  (server.jobs.worker). A worker that dies breaks the pool; the pool is rebuilt and
  the runner re-queues every chunk that is not done.
- `RabbitQueue`: chunks as persistent messages on a durable RabbitMQ queue, consumed by
  `kanal worker` processes on any machine (shared S3 + PostgreSQL). A worker acknowledges a
  chunk only after it is done, with prefetch 1, so a worker that dies mid-chunk has its chunk
  redelivered to another. Duplicates are harmless: chunks are idempotent.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from server import logs, processes, tempdirs
from server.jobs import worker
from server.jobs.chunks import RETRY_BASE_SECONDS
from server.jobs.store import JobStore
from server.jobs.worker import ChunkOutcome, WorkerConfig

log = logs.get_logger(__name__)

QUEUE_NAME = "kanal.chunks"
# (job id, chunk, outcome) and, when the chunk failed (outcome None), the exception
Done = Callable[..., None]


class ChunkQueue(Protocol):
    def submit(self, job_id: str, chunk: int, priority: int, done: Done) -> None: ...
    def close(self) -> None: ...
    def ping(self) -> None: ...  # raises when chunks cannot be queued (health checks)


# The worker pool is replaced once a worker's peak RSS has grown this much since its first
# chunk (when its caches are warm): WeasyPrint's native libraries keep ~60 KB per document
# that only a new process gives back (see server/channels/pool.py, also for why not
# max_tasks_per_child), so a WeasyPrint worker is replaced after ~500 documents, as it was
# after a fixed 10 chunks. A Typst worker's memory levels off (measured here: 273 -> 290 MB
# over its first 20 chunks, then flat), and replacing it on a count threw away a warm
# process for nothing: a new one cost ~5 s of CPU on this busy 2-core machine (imports,
# layouts, font tables, Typst's caches), ~10 ms per document at 500 documents per worker.
# The same rule replaces a `kanal worker` consumer process (RabbitMQ, server/jobs/cli.py):
# `MemoryGrowth` is shared by both. Measured on each worker's own peak (VmHWM:
# server.processes.peak_rss_kb; bench_bulk.py --size 10000, card-invoice@2.2.0, 2026-12-02),
# a Typst worker goes from 232-234 MB after its first chunk to 262-267 MB after ~27 chunks
# and stays there, just past this limit: each Typst pool is replaced after ~2,700 documents
# (three pools for 10,000). Before, the server's peak that a worker's ru_maxrss inherited
# hid the growth of every pool but the first.
GROWTH_LIMIT_KB = 32 * 1024


class MemoryGrowth:
    """Which worker processes' peak RSS has grown by more than GROWTH_LIMIT_KB since their
    first chunk: `grown(pid, peak_rss_kb)` after each chunk (the ChunkOutcome's), the first
    call per pid setting its mark. Logs the first time a process is found grown."""

    def __init__(self) -> None:
        self._first_peak_kb: dict[int, int] = {}  # pid -> peak RSS after its first chunk
        self._reported: set[int] = set()

    def grown(self, pid: int, peak_rss_kb: int) -> bool:
        first = self._first_peak_kb.setdefault(pid, peak_rss_kb)
        if peak_rss_kb - first <= GROWTH_LIMIT_KB:
            return False
        if pid not in self._reported:
            self._reported.add(pid)
            log.info("worker memory grew; replacing the worker process", pid=pid,
                     first_peak_mb=first // 1024, peak_mb=peak_rss_kb // 1024)
        return True

    def forget(self) -> None:
        """The processes are replaced: new ones set new marks."""
        self._first_peak_kb.clear()
        self._reported.clear()


class LocalQueue:
    """Chunks run in this machine's worker processes.

    The runner hands over every pending chunk of a job at once; they wait here, highest
    priority first, and a dispatcher thread gives the pool only as many as it has workers.
    So a job submitted later with a higher priority goes next. The pool is replaced when a
    chunk's outcome shows its worker's peak RSS grown by more than GROWTH_LIMIT_KB since the
    worker's first chunk; the chunks already running finish in the old processes."""

    def __init__(self, config: WorkerConfig, workers: int | None = None, *,
                 run: Callable[[str, int], ChunkOutcome] = worker.run_chunk,
                 init: Callable[[WorkerConfig], None] = worker.init_process):
        self.config = config
        self.workers = workers or os.cpu_count() or 1
        self._run, self._init = run, init  # tests give stand-ins; they must be picklable
        self._waiting: list[tuple[int, int, str, int, Done]] = []  # heap, see submit
        self._order = itertools.count()
        self._running = 0  # chunks in the pool's hands, at most `workers`
        self._generation = 0  # which pool is current; outcomes of older ones are not counted
        self._growth = MemoryGrowth()  # of the current pool's workers
        self._grown = False  # a worker of the current pool has grown: replace it
        self._closed = False
        self._changed = threading.Condition()
        self._pool = self._new_pool()
        self._dispatcher = threading.Thread(target=self._dispatch, name="chunk-dispatcher",
                                            daemon=True)
        self._dispatcher.start()

    def _new_pool(self) -> ProcessPoolExecutor:
        if self.config.state_dir is not None:  # the folders of workers that were killed
            tempdirs.sweep(self.config.state_dir)  # (a broken pool) or with their server
        # 'spawn' processes that die with the server, however it dies (server.processes)
        return processes.process_pool(self.workers, self._init, (self.config,))

    def submit(self, job_id: str, chunk: int, priority: int, done: Done) -> None:
        with self._changed:
            heapq.heappush(self._waiting, (-priority, next(self._order), job_id, chunk, done))
            self._changed.notify()

    def _dispatch(self) -> None:
        """The only thread that starts chunks (and replaces the pool)."""
        while True:
            with self._changed:
                while not self._closed and (not self._waiting
                                            or self._running >= self.workers):
                    self._changed.wait()
                if self._closed:
                    return
                _, _, job_id, chunk, done = heapq.heappop(self._waiting)
                self._running += 1
            try:
                future = self._start(job_id, chunk)
            except Exception as exc:  # no pool to be had right now: the runner retries
                log.error("chunk not started", job_id=job_id, chunk=chunk, error=repr(exc))
                future = Future()
                future.set_exception(exc)
            future.add_done_callback(functools.partial(self._finished, job_id, chunk, done,
                                                       self._generation))

    def _start(self, job_id: str, chunk: int) -> Future[ChunkOutcome]:
        with self._changed:
            replace, self._grown = self._grown, False
        if replace:  # fresh processes for what comes next; the old ones finish theirs, exit
            self._replace_pool(cancel=False)
        try:
            return self._pool.submit(self._run, job_id, chunk)
        except (BrokenProcessPool, RuntimeError):  # a worker died: the pool is unusable
            self._replace_pool(cancel=True)
            return self._pool.submit(self._run, job_id, chunk)

    def _replace_pool(self, cancel: bool) -> None:
        old, self._pool = self._pool, self._new_pool()
        with self._changed:
            self._generation += 1
            self._growth.forget()
        old.shutdown(wait=False, cancel_futures=cancel)

    def _finished(self, job_id: str, chunk: int, done: Done, generation: int,
                  future: Future[ChunkOutcome]) -> None:
        error: BaseException | None = None
        try:
            outcome = future.result()
        except BaseException as exc:  # a dead worker or a failed chunk: retried
            log.warning("chunk failed", job_id=job_id, chunk=chunk, error=repr(exc)[:500])
            outcome, error = None, exc
        with self._changed:
            self._running -= 1
            if outcome is not None and generation == self._generation:
                self._note_memory(outcome.pid, outcome.peak_rss_kb)
            self._changed.notify()
        if error is None:
            done(job_id, chunk, outcome)
        else:
            done(job_id, chunk, None, error)

    def _note_memory(self, pid: int, peak_rss_kb: int) -> None:
        """A current worker's peak RSS after a chunk: its first sets the mark; growth past
        GROWTH_LIMIT_KB replaces the pool before the next chunk starts."""
        if self._growth.grown(pid, peak_rss_kb):
            self._grown = True

    def close(self) -> None:
        """Drop waiting chunks, let running ones finish (they are re-queued on restart)."""
        with self._changed:
            self._closed = True
            self._waiting.clear()
            self._changed.notify()
        self._dispatcher.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def ping(self) -> None:
        if self._closed or not self._dispatcher.is_alive():
            raise RuntimeError("the local chunk queue is closed")

    def worker_pids(self) -> list[int]:
        return list(getattr(self._pool, "_processes", {}) or {})


class RabbitQueue:
    """Chunks as messages on RabbitMQ; `kanal worker` processes consume them."""

    def __init__(self, url: str, queue: str = QUEUE_NAME):
        self.url = url
        self.queue = queue
        self._lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None

    def _open(self) -> Any:
        import pika

        if self._connection is None or self._connection.is_closed:
            self._connection = pika.BlockingConnection(pika.URLParameters(self.url))
            self._channel = self._connection.channel()
            declare(self._channel, self.queue)
            self._channel.confirm_delivery()
        return self._channel

    def submit(self, job_id: str, chunk: int, priority: int, done: Done) -> None:
        import pika

        body = json.dumps({"job_id": job_id, "chunk": chunk}).encode()
        with self._lock:
            self._open().basic_publish(
                exchange="", routing_key=self.queue, body=body,
                properties=pika.BasicProperties(delivery_mode=2,
                                                priority=max(0, min(9, priority))))
        # Completion is seen in the job store (workers finish the job), not here.

    def ping(self) -> None:
        """Raises when RabbitMQ cannot be reached (reconnecting if the link dropped)."""
        with self._lock:
            self._open()
            self._connection.process_data_events(time_limit=0)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()


def failure_reason(error: BaseException) -> str:
    """Why a chunk run failed, in words for the job's status."""
    if isinstance(error, BrokenProcessPool):
        return "its worker process stopped while running it"
    return f"{type(error).__name__}: {error}"[:500]


def record_failure(jobs: JobStore, job_id: str, chunk: int, error: BaseException) -> float:
    """Count a failed chunk run in the job store; the seconds to wait before the next
    (retry_delay's back-off; a guess when the store itself is down)."""
    try:
        return jobs.chunk_failed(job_id, chunk, failure_reason(error))
    except Exception as exc:  # noqa: BLE001 - the job store is what is down
        log.warning("chunk failure not recorded", job_id=job_id, chunk=chunk,
                    error=repr(exc)[:300])
        return RETRY_BASE_SECONDS


def declare(channel: Any, queue: str = QUEUE_NAME) -> None:
    channel.queue_declare(queue=queue, durable=True, arguments={"x-max-priority": 9})


def consume(url: str, config: WorkerConfig, stop: threading.Event | None = None,
            queue: str = QUEUE_NAME, *, until_grown: bool = False) -> int:
    """`kanal worker`: run chunks from RabbitMQ until stopped; ack each after it is done.
    With `until_grown` also until this process's peak RSS has grown by more than
    GROWTH_LIMIT_KB since its first chunk (MemoryGrowth, as LocalQueue's workers): its
    process then ends and `kanal worker` starts a fresh one. Returns the number of chunks
    run."""
    import pika

    pipeline = worker.Pipeline.build(config)
    growth = MemoryGrowth()
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    declare(channel, queue)
    channel.basic_qos(prefetch_count=1)
    ran = 0
    try:
        for method, _props, body in channel.consume(queue, inactivity_timeout=1.0):
            if stop is not None and stop.is_set():
                break
            if method is None:
                continue
            message = json.loads(body)
            if method.redelivered:  # its last worker died or gave up before the ack
                log.info("chunk redelivered", **message)
            try:
                if ran:
                    worker.settle_heap()  # after the first chunk, before its next one
                outcome = pipeline.run_chunk(message["job_id"], int(message["chunk"]))
            except Exception as exc:  # backend down: back off, then let any worker retry
                delay = record_failure(pipeline.jobs, message["job_id"], int(message["chunk"]),
                                       exc)
                log.warning("chunk failed; requeued after back-off", error=repr(exc)[:500],
                            seconds=delay, **message)
                (stop or threading.Event()).wait(delay)
                channel.basic_nack(method.delivery_tag, requeue=True)
                continue
            channel.basic_ack(method.delivery_tag)
            ran += 1
            if until_grown and growth.grown(outcome.pid, outcome.peak_rss_kb):
                break
    finally:
        try:
            channel.cancel()
            connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass
    return ran
