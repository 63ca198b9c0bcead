"""A bulk worker reports its own peak RSS after each chunk, not its server's.

The pool is replaced when a worker's peak has grown by GROWTH_LIMIT_KB since its first chunk
(server.jobs.queue.MemoryGrowth). Linux starts a new process's `ru_maxrss` at its parent's
peak, so a worker spawned by a server that once held more than the worker ever will
reported the server's peak from its first chunk (bench_bulk.py --size 10000: 388 MB for a
worker that held at most 267), and its growth went unseen. `server.processes.peak_rss_kb`
reads the process's own high-water mark (VmHWM) instead.
"""

from __future__ import annotations

import resource

from server import processes
from server.jobs.model import ChunkSummary
from server.jobs.queue import GROWTH_LIMIT_KB
from server.jobs.worker import Pipeline

SERVER_PEAK_KB = 384 * 1024  # what the "server" (this test process) holds once


def stand_in_init() -> None:
    """The pool's initializer: no pipeline is needed to report a chunk's outcome."""


def reported_and_own_peak_kb() -> tuple[int, int]:
    """In the worker process: the peak its chunk outcome reports, then its own VmHWM."""
    reported = Pipeline._outcome("job", 0, True, ChunkSummary()).peak_rss_kb
    with open("/proc/self/status") as status:
        own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return reported, own


def test_a_worker_spawned_by_a_big_server_reports_its_own_peak() -> None:
    held = b"x" * (SERVER_PEAK_KB * 1024)  # written, so resident: this process's peak
    del held
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >= SERVER_PEAK_KB
    pool = processes.process_pool(1, stand_in_init)
    try:
        reported, own = pool.submit(reported_and_own_peak_kb).result(timeout=120)
    finally:
        pool.shutdown()
    assert own < SERVER_PEAK_KB - GROWTH_LIMIT_KB, "the worker itself is smaller"
    assert reported <= own, (reported, own)  # was SERVER_PEAK_KB or more


def test_the_peak_follows_what_this_process_held() -> None:
    """Holding more than the peak so far raises it by at least that much (MemoryGrowth
    sees a worker grow)."""
    before = processes.peak_rss_kb()
    held = b"x" * ((before + 32 * 1024) * 1024)  # written, so resident
    assert processes.peak_rss_kb() >= before + 32 * 1024
    del held
