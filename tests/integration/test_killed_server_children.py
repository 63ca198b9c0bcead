"""`kill -9` of `kanal serve` leaves no process of its behind (server.processes).

QA: a server killed during a bulk job left a bulk worker (196 MB, re-parented to PID 1) and
multiprocessing's resource tracker running for minutes, past a restart, and the worker's
locked temporary folder with them. The worker had been started moments before the kill:
it was still importing Kanal when its server died, so the parent it then took to watch
was already PID 1. Here the server is killed exactly then, with its render process warm
and its embedded SeaweedFS up, and every process it had started must end within seconds;
the restarted server removes what they left and runs the job, each record once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kanal.v1 import jobs_pb2, jobs_pb2_grpc
from server.compose.layouts import LayoutRegistry
from tests.client import channel
from tests.integration.test_serve_process import (
    alive,
    children_of,
    free_port,
    kanal_command,
    own_folders,
    spawned_children_of,
    wait_serving,
)

pytestmark = pytest.mark.integration

RECORDS, CHUNK_SIZE = 4, 2  # two chunks: two bulk worker processes start at once


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (children, theirs, ...) -> its command line."""
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children_of(todo.pop()):
            try:
                found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(
                    b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # ended meanwhile
            todo.append(child)
    return found


def submit(address: str, key: str) -> str:
    data = LayoutRegistry().get("card-invoice").sample_data()
    messages = [jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
        layout_id="card-invoice", job_name="killed server"))]
    messages += [jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
        record_key=f"r{n}", data_json=data)) for n in range(RECORDS)]
    with channel(address, key) as ch:
        return jobs_pb2_grpc.JobsStub(ch).SubmitBatch(iter(messages), timeout=30).job_id


def finished(address: str, key: str, job_id: str) -> jobs_pb2.Job:
    """The job once it has ended (WatchJob's last message)."""
    with channel(address, key) as ch:
        return list(jobs_pb2_grpc.JobsStub(ch).WatchJob(
            jobs_pb2.GetJobRequest(job_id=job_id), timeout=60))[-1].job


def serve(address: str, state: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*kanal_command(), "serve", "--listen", address, "--state-dir", str(state),
         "--metrics-listen", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def test_no_process_outlives_a_killed_server_and_the_restart_removes_what_they_left(
        tmp_path):
    address = f"127.0.0.1:{free_port()}"
    state, system = tmp_path / "state", tmp_path / "system-tmp"
    system.mkdir()
    env = {**os.environ, "TMPDIR": str(system), "KANAL_RENDER_WORKERS": "1",
           "KANAL_JOB_WORKERS": "2", "KANAL_JOB_CHUNK_SIZE": str(CHUNK_SIZE)}
    process = serve(address, state, env)
    try:
        wait_serving(address, process)
        renders = spawned_children_of(process.pid)  # warm since the start
        assert len(renders) == 1
        key = json.loads((state / "dev-api-keys.json").read_text())["producer"]
        job_id = submit(address, key)
        deadline = time.monotonic() + 20
        while True:  # the job's two bulk workers start: kill the server at once
            bulk = [p for p in spawned_children_of(process.pid) if p not in renders]
            if len(bulk) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.01)  # waiting for the workers to be started, not for time to pass
        assert len(bulk) == 2, "the job's worker processes never started"
        # still importing Kanal: not yet in their initializer (which claims a folder first)
        started = [name for name in own_folders(state)
                   if int(name.split("-")[0]) in bulk]
        left = descendants(process.pid)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert started == [], "the kill came too late to catch the workers starting"
    kinds = " ".join(left.values())
    assert "resource_tracker" in kinds and "weed" in kinds and set(renders + bulk) <= set(left)

    deadline = time.monotonic() + 10
    while alive(list(left)) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the kernel to end them, not for time to pass
    survivors = {pid: left[pid][:120] for pid in alive(list(left))}
    for pid in survivors:  # not to leave them to the next tests
        os.kill(pid, signal.SIGKILL)
    assert survivors == {}, "processes outlived their killed server"

    ended = {process.pid, *left}
    leftovers = [name for name in own_folders(state) if int(name.split("-")[0]) in ended]
    assert leftovers  # the killed server's, and its render process's
    restart = serve(address, state, {**env, "KANAL_JOB_WORKERS": "1"})  # one start less
    try:
        wait_serving(address, restart)
        assert not set(leftovers) & set(own_folders(state)), "the restart left them"
        job = finished(address, key, job_id)  # the job runs on the restarted server, once
        assert job.state == "completed"
        assert (job.counts.total, job.counts.done, job.counts.failed) == (RECORDS, RECORDS, 0)
    finally:
        restart.send_signal(signal.SIGTERM)
        assert restart.wait(timeout=60) == 0
    assert own_folders(state) == []
    assert list(system.iterdir()) == []
