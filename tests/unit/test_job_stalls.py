"""Stalled chunks (server.jobs.stalls) over a real SQLite job store: a running chunk whose
last heartbeat is `stall_seconds` old is reported with its worker's state read from /proc,
a new heartbeat clears it, and a chunk on another host is named without a state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from archive.index import DocumentIndex
from server.config import load_settings
from server.jobs import stalls
from server.jobs.model import JobHeader
from server.jobs.stalls import StallWatch, process_state
from server.jobs.store import JobStore
from server.jobs.tables import job_chunks


def new_store(tmp_path) -> JobStore:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    DocumentIndex(url).create_schema()  # progress counts a running chunk's documents there
    store = JobStore(url, chunk_size=5)
    store.create_schema()
    store.create_job("J1", JobHeader(tenant="t", layout_id="card-invoice",
                                     layout_version="1.0.0"), datetime.now(UTC))
    store.add_records("J1", [(f"r{n}", "{}") for n in range(12)])
    store.seal("J1", 12)
    return store


def set_worker(store: JobStore, chunk: int, worker: str, seconds_ago: float) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(job_chunks).where(job_chunks.c.job_id == "J1",
                                              job_chunks.c.chunk == chunk).values(
            worker=worker, progress_at=datetime.now(UTC) - timedelta(seconds=seconds_ago),
            progress_cpu=0.0))


def test_a_chunk_without_progress_is_stalled_until_it_beats_again(tmp_path):
    store = new_store(tmp_path)
    assert store.start_chunk("J1", 1)
    watch = StallWatch(store, stall_seconds=60)
    watch.check()
    assert store.progress("J1").stalled == ""  # it just started
    frozen = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        frozen.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while process_state(frozen.pid)[0] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.01)
        set_worker(store, 1, f"{watch.host}:{frozen.pid}", seconds_ago=612)
        watch.check()
        assert store.progress("J1").stalled == (
            f"no document finished for 612 s in chunk 1 (worker pid {frozen.pid}, state: "
            "stopped, 0.0 s CPU since its last document)")
    finally:
        frozen.kill()
        frozen.wait()
    store.chunk_progress("J1", 1)  # a document finished
    watch.check()
    assert store.progress("J1").stalled == ""


def test_a_stall_is_named_beside_failing_chunks_and_on_another_host(tmp_path):
    store = new_store(tmp_path)
    assert store.start_chunk("J1", 0)
    set_worker(store, 0, "worker-b:4242", seconds_ago=700)
    for _ in range(3):
        store.chunk_failed("J1", 2, "OSError: disk full")
    StallWatch(store, stall_seconds=600).check()
    assert store.progress("J1").stalled == (
        "no document finished for 700 s in chunk 0 (worker pid 4242 on worker-b); "
        "1 chunk(s) keep failing; chunk 2 failed 3 times in a row: OSError: disk full")


def test_a_running_process_shows_its_cpu():
    state, cpu = process_state(os.getpid())
    assert state == "running" and cpu > 0
    assert process_state(2 ** 22 + 1) is None  # above pid_max's default: no such process


def test_stall_seconds_is_read_from_the_jobs_table(tmp_path):
    config = tmp_path / "kanal.toml"
    config.write_text("[jobs]\nstall_seconds = 120\n")
    assert load_settings(config, environ={}).jobs == {"stall_seconds": 120}
    assert stalls.STALL_SECONDS == 600


def test_stall_seconds_takes_the_environment_first_and_refuses_what_is_no_duration():
    from server.jobs.stalls import STALL_SECONDS, stall_seconds

    assert stall_seconds({}, {}) == STALL_SECONDS
    assert stall_seconds({"stall_seconds": 120}, {}) == 120.0
    assert stall_seconds({"stall_seconds": 120}, {"KANAL_JOB_STALL_SECONDS": "2.5"}) == 2.5
    for wrong in (0, -5, "ten", None, float("nan")):
        with pytest.raises(ValueError, match="jobs.stall_seconds must be a number of seconds"):
            stall_seconds({"stall_seconds": wrong}, {})
