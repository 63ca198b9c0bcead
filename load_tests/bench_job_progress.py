"""CPU per job progress poll (GetJob / WatchJob's JobStore.progress) by the job's size.

    python load_tests/bench_job_progress.py [--chunks 2000 10000] [--polls 40] [--url URL]
    KANAL_TREE=/path/to/other/checkout python load_tests/bench_job_progress.py   # e.g. main

For each chunk count: a job of chunks x 50 records (the default chunk size; 10,000 chunks
is a 500k-document job) in a fresh SQLite job store (or `--url`, e.g. PostgreSQL: the job is
discarded at the end), every chunk done with a two-channel summary but the last two, which
are running. The chunks are set done with one UPDATE (as an older server's job: a store
that keeps running totals counts them once, at the first poll, reported apart). Then
`--polls` polls, each timed in CPU seconds of this process (time.process_time: the server's
cost, the database's too for SQLite, which runs in-process) and wall time. Prints JSON with
`uptime`'s load: the machine is shared, so figures are only comparable within one run.

KANAL_TREE puts another checkout first on sys.path, so the same script measures the code
before a change (its store must have create_job, add_records, seal and progress).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = Path(os.environ.get("KANAL_TREE", ROOT)).resolve()
sys.path.insert(0, str(TREE))

from sqlalchemy import insert, update  # noqa: E402

from archive.index import DocumentIndex  # noqa: E402
from server.jobs.model import JobHeader  # noqa: E402
from server.jobs.store import JobStore  # noqa: E402
from server.jobs.tables import job_chunks, job_records, jobs  # noqa: E402

CHUNK_SIZE = 50
SUMMARY = json.dumps({"documents": CHUNK_SIZE, "failed": 0, "pages": 2 * CHUNK_SIZE,
                      "channels": {"print": [CHUNK_SIZE, 2 * CHUNK_SIZE],
                                   "email": [CHUNK_SIZE, 0]}})
RUNNING = 2


def build(store: JobStore, job_id: str, chunks: int) -> None:
    total = chunks * CHUNK_SIZE
    store.create_job(job_id, JobHeader(tenant="bench", layout_id="card-invoice",
                                       layout_version="1.0.0"), datetime.now(UTC))
    with store.engine.begin() as conn:  # records in big batches: the poll reads few of them
        for start in range(0, total, 20_000):
            conn.execute(insert(job_records), [
                {"job_id": job_id, "seq": n, "record_key": f"r{n}", "data_json": "{}"}
                for n in range(start, min(total, start + 20_000))])
    store.seal(job_id, total)
    with store.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(state="running"))
        conn.execute(update(job_chunks).where(
            job_chunks.c.job_id == job_id, job_chunks.c.chunk < chunks - RUNNING)
            .values(state="done", attempts=1, summary=SUMMARY, failures=0))
        conn.execute(update(job_chunks).where(
            job_chunks.c.job_id == job_id, job_chunks.c.chunk >= chunks - RUNNING)
            .values(state="running", attempts=1))
        if "totals_version" in jobs.c:  # a tree that keeps running totals
            conn.execute(update(jobs).where(jobs.c.job_id == job_id)
                         .values(totals_version=None))  # set done behind the totals' back


def measure(store: JobStore, job_id: str, chunks: int, polls: int) -> dict[str, object]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    first = store.progress(job_id)
    first_cpu, first_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    expected = (chunks - RUNNING) * CHUNK_SIZE
    cpu, wall = [], []
    for _ in range(polls):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        progress = store.progress(job_id)
        cpu.append(time.process_time() - cpu0)
        wall.append(time.perf_counter() - wall0)
    for p in (first, progress):  # the answers, not only the time
        assert (p.done, p.running, p.pending) == (expected, RUNNING * CHUNK_SIZE, 0), p
        assert p.summary.channels == {"print": [expected, 2 * expected],
                                      "email": [expected, 0]}, p.summary
    return {"chunks": chunks, "documents": chunks * CHUNK_SIZE,
            "first_poll_cpu_ms": round(first_cpu * 1000, 2),
            "first_poll_wall_ms": round(first_wall * 1000, 2),
            "poll_cpu_ms_mean": round(statistics.mean(cpu) * 1000, 3),
            "poll_cpu_ms_p50": round(statistics.median(cpu) * 1000, 3),
            "poll_wall_ms_p50": round(statistics.median(wall) * 1000, 3),
            # WatchJob polls every 0.5 s: the share of one core a watcher costs
            "core_share_per_watcher": round(statistics.mean(cpu) / 0.5, 4)}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--polls", type=int, default=40)
    parser.add_argument("--url", help="job store database (default: a fresh SQLite file)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'index.db'}"
        DocumentIndex(url).create_schema()
        store = JobStore(url, chunk_size=CHUNK_SIZE)
        store.create_schema()
        try:
            for n, chunks in enumerate(args.chunks):
                job_id = f"BENCH{os.getpid()}X{n}"
                build(store, job_id, chunks)
                try:
                    results.append(measure(store, job_id, chunks, args.polls))
                finally:
                    store.discard(job_id)
        finally:
            store.close()
    print(json.dumps({"tree": str(TREE), "database": url.split(":")[0],
                      "uptime_before": load_before, "uptime_after": uptime(),
                      "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    load_before = uptime()
    sys.exit(main())
