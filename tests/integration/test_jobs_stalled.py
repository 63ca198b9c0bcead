"""A bulk worker that makes no progress is reported, not killed (server.jobs.stalls).

Chaos test finding: a LocalQueue worker process frozen with SIGSTOP (or looping) left its
job `running` with no `stalled_reason`, nothing logged and nothing counted, until it was
resumed. Here a real KanalServer (one worker process, chunks of 10, `[jobs] stall_seconds`
2) has its worker frozen mid-chunk: GetJob names the chunk, the pid and the state, the
`kanal_job_chunks{state="stalled"}` gauge counts it; after SIGCONT the reason clears and
the job completes with every record composed, archived and queued for print exactly once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest
from sqlalchemy import select

from kanal.v1 import jobs_pb2, jobs_pb2_grpc
from server.app import KanalServer
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import Settings
from server.jobs.gauges import job_gauges
from server.jobs.tables import job_chunks
from tests.client import channel
from tests.integration.test_jobs_api import KEYS, index_rows, pieces, submit, watch

pytestmark = pytest.mark.integration

RECORDS = 40


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-stalled")
    layouts = tmp_path_factory.mktemp("layouts")
    for name in ("card-invoice", "_shared"):
        (layouts / name).symlink_to(DEFAULT_LAYOUTS_DIR / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANAL_JOB_CHUNK_SIZE", "10")
        mp.setenv("KANAL_JOB_WORKERS", "1")
        mp.setenv("KANAL_JOB_STALL_SECONDS", "2")  # [jobs] stall_seconds
        with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, layouts_dir=layouts,
                                  api_keys=KEYS.api_keys)) as server:
            yield server


@pytest.fixture(scope="module")
def stub(kanal: KanalServer):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield jobs_pb2_grpc.JobsStub(ch)


def writable(kanal: KanalServer) -> bool:
    """No other connection holds the SQLite write lock (a worker frozen inside a write
    transaction would hold it: that case is not this test's)."""
    conn = sqlite3.connect(kanal.settings.state_dir / "index.db", timeout=0.2,
                           isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def running_chunks(kanal: KanalServer, job_id: str) -> list[int]:
    with kanal.jobs.engine.connect() as conn:
        return list(conn.execute(select(job_chunks.c.chunk).where(
            job_chunks.c.job_id == job_id, job_chunks.c.state == "running")).scalars())


def freeze_mid_chunk(kanal: KanalServer, job_id: str) -> tuple[int, int]:
    """SIGSTOP the one worker while it runs one of the job's chunks, outside a write
    transaction; (pid, chunk)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pids = kanal.job_runner.queue.worker_pids()
        if pids and running_chunks(kanal, job_id):
            os.kill(pids[0], signal.SIGSTOP)
            time.sleep(0.2)
            held = running_chunks(kanal, job_id)
            if held and writable(kanal):
                return pids[0], held[0]
            os.kill(pids[0], signal.SIGCONT)  # between chunks, or mid-write: try again
        time.sleep(0.05)
    raise AssertionError("the job's chunk never ran")


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_a_frozen_worker_is_reported_stalled_and_its_job_completes_once_it_resumes(
        kanal, stub):
    job_id = submit(stub, RECORDS, name="frozen worker")
    pid, chunk = freeze_mid_chunk(kanal, job_id)
    try:
        def stalled() -> str:
            return stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id)).stalled_reason
        reason = wait_for(stalled, 30, "a stalled reason")
        assert reason.startswith("no document finished for "), reason
        assert f"in chunk {chunk} (worker pid {pid}, state: stopped, " in reason, reason
        assert stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id)).state == "running"
        assert job_gauges(kanal.jobs)()["kanal_job_chunks"]["stalled"] == 1
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: not stalled(), 10, "the stalled reason cleared")
    last = watch(stub, job_id)[-1].job
    assert last.state == "completed" and not last.stalled_reason
    assert (last.counts.done, last.counts.failed) == (RECORDS, 0)
    assert index_rows(kanal, job_id, RECORDS) == RECORDS
    # print pieces are queued by the outbox after the chunk's commit
    wait_for(lambda: pieces(kanal, job_id, RECORDS) >= RECORDS, 30, "every print piece")
    assert pieces(kanal, job_id, RECORDS) == RECORDS
    assert job_gauges(kanal.jobs)()["kanal_job_chunks"]["stalled"] == 0
