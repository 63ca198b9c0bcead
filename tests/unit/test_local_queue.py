"""LocalQueue: the embedded chunk queue over real worker processes, with a stand-in chunk.

A job hands all its chunks to the queue at once; the queue must still keep exactly as many
chunks running as it has workers, run the highest priority first, keep its processes while
their memory stays flat and replace them once it grows, and survive a worker that dies.
"""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace
from typing import NamedTuple

from server import tempdirs
from server.jobs.queue import GROWTH_LIMIT_KB, LocalQueue
from server.jobs.worker import ChunkOutcome

WORKERS = 2
KEPT: list[bytearray] = []  # what a `grow` chunk leaves behind in its worker process


class Ran(NamedTuple):
    """What the queue reads of a ChunkOutcome (pid, peak RSS), and when the chunk ran."""

    pid: int
    started: float
    ended: float
    peak_rss_kb: int


def stand_in_init(config: object) -> None:
    """Runs in each worker process instead of building the real pipeline."""


def stand_in_chunk(job_id: str, chunk: int) -> Ran:
    """A chunk that takes a little while; `die` kills its worker, `grow` keeps a third of
    GROWTH_LIMIT_KB of memory in it (touched, so it is resident)."""
    if job_id == "die":
        os._exit(1)
    started = time.time()
    time.sleep(0.3 if job_id == "slow" else 0.02)
    if job_id == "grow":
        KEPT.append(bytearray(b"x" * (GROWTH_LIMIT_KB * 1024 // 3)))
    return Ran(os.getpid(), started, time.time(), resident_kb())


def resident_kb() -> int:
    """This process's RSS now. A real worker reports its own peak (VmHWM:
    server.processes.peak_rss_kb); here the peak of importing the test modules (which
    depends on what else this pytest run loaded) could hide the first chunks' growth, so
    the stand-in reports what it holds."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


class Collector:
    def __init__(self, expected: int):
        self.results: dict[tuple[str, int], Ran | None] = {}
        self._lock = threading.Lock()
        self._expected = expected
        self.all_done = threading.Event()

    def __call__(self, job_id: str, chunk: int, outcome: ChunkOutcome | None,
                 error: BaseException | None = None) -> None:
        with self._lock:
            self.results[(job_id, chunk)] = outcome  # type: ignore[assignment]
            if len(self.results) == self._expected:
                self.all_done.set()


def new_queue() -> LocalQueue:
    # of a WorkerConfig the queue reads only state_dir (None: no temporary folders to sweep)
    config = SimpleNamespace(state_dir=None)
    return LocalQueue(config, WORKERS, run=stand_in_chunk,  # type: ignore[arg-type]
                      init=stand_in_init)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def run_job(job_id: str, chunks: int) -> list[Ran]:
    collect = Collector(chunks)
    queue = new_queue()
    try:
        for chunk in range(chunks):  # all at once, as the runner does for a new job
            queue.submit(job_id, chunk, 0, collect)
        assert collect.all_done.wait(120)
    finally:
        queue.close()
    results = list(collect.results.values())
    assert None not in results
    assert most_at_once([(r.started, r.ended) for r in results]) <= WORKERS
    return results  # type: ignore[return-value]


def test_a_big_job_never_runs_more_chunks_than_workers_and_keeps_them_while_flat():
    """A new worker process costs seconds of CPU (imports, layouts, font tables, Typst's
    caches): workers whose memory stays flat run the whole job (they were replaced every
    10 chunks each)."""
    results = run_job("job", WORKERS * 30)
    assert len({r.pid for r in results}) == WORKERS


def test_workers_whose_memory_grows_are_replaced():
    """Each `grow` chunk keeps a third of the limit: a worker's third chunk past its first
    takes it over, and the pool is replaced before the next chunk; every chunk still runs,
    never more at once than there are workers."""
    results = run_job("grow", WORKERS * 8)
    pids = {r.pid for r in results}
    assert len(pids) >= WORKERS * 2, "a fresh pool once a worker grew"
    per_pid = [sum(r.pid == pid for r in results) for pid in pids]
    assert max(per_pid) <= 6, per_pid  # replaced after 4-5 chunks, not kept to the end


def test_the_highest_priority_chunk_goes_first():
    collect = Collector(WORKERS + 4)
    queue = new_queue()
    try:
        for chunk in range(WORKERS):  # every worker busy
            queue.submit("slow", chunk, 0, collect)
        for chunk in range(3):
            queue.submit("low", chunk, 0, collect)
        queue.submit("urgent", 0, 5, collect)
        assert collect.all_done.wait(60)
    finally:
        queue.close()
    started = {key: result.started for key, result in collect.results.items() if result}
    assert all(started[("urgent", 0)] < started[("low", n)] for n in range(3))


def test_a_dead_worker_fails_its_chunk_and_the_queue_goes_on():
    collect = Collector(2)
    queue = new_queue()
    try:
        queue.submit("die", 0, 0, collect)
        deadline = time.monotonic() + 60
        while ("die", 0) not in collect.results and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the pool to notice its dead worker
        queue.submit("job", 1, 0, collect)
        assert collect.all_done.wait(60)
    finally:
        queue.close()
    assert collect.results[("die", 0)] is None  # the runner re-queues it
    assert collect.results[("job", 1)] is not None


def claiming_init(config: SimpleNamespace) -> None:
    """As the real initializer does first (server.jobs.worker.init_process)."""
    tempdirs.claim(config.state_dir)


def test_a_dead_workers_temporary_folder_is_removed_with_its_pool(tmp_path):
    """A worker that dies (here `os._exit`, as a SIGKILL would: no atexit) leaves its
    temporary folder (server.tempdirs); the pool that replaces the broken one removes it."""
    collect = Collector(2)
    queue = LocalQueue(SimpleNamespace(state_dir=tmp_path), 1,  # type: ignore[arg-type]
                       run=stand_in_chunk, init=claiming_init)
    root = tempdirs.root(tmp_path)
    try:
        queue.submit("die", 0, 0, collect)
        deadline = time.monotonic() + 60
        while ("die", 0) not in collect.results and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the pool to notice its dead worker
        dead = [p for p in root.iterdir() if p.is_dir()]
        assert len(dead) == 1
        queue.submit("job", 1, 0, collect)
        assert collect.all_done.wait(60)
        assert not dead[0].exists()
    finally:
        queue.close()
    assert [p.name for p in root.iterdir()] == [".sweep.lock"]


def test_a_chunk_that_cannot_start_fails_and_the_dispatcher_goes_on(monkeypatch):
    collect = Collector(2)
    queue = new_queue()
    start = queue._start
    attempts = []

    def first_start_fails(job_id: str, chunk: int):
        attempts.append(chunk)
        if len(attempts) == 1:
            raise OSError("cannot start worker processes")  # e.g. out of memory, no fork
        return start(job_id, chunk)

    monkeypatch.setattr(queue, "_start", first_start_fails)
    try:
        queue.submit("job", 0, 0, collect)
        queue.submit("job", 1, 0, collect)
        assert collect.all_done.wait(60)
    finally:
        queue.close()
    assert collect.results[("job", 0)] is None  # the runner re-queues it
    assert collect.results[("job", 1)] is not None
