"""`kanal serve` as a newcomer runs it: a subprocess, health checked, called through the
generated stubs (no reflection), stopped with SIGTERM, nothing left running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kanal.v1 import documents_pb2, documents_pb2_grpc
from server.compose.layouts import LayoutRegistry
from tests.client import channel

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_using(path: Path) -> list[int]:
    """PIDs whose command line mentions `path` (the embedded SeaweedFS's data dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(path) in cmdline:
                found.append(int(proc.name))
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()
            and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]]


def kanal_command() -> list[str]:
    script = shutil.which("kanal", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "server.cli"]


def wait_serving(address: str, process: subprocess.Popen, timeout: float = 90) -> None:
    """Block on the health service until SERVING (a real readiness signal, not a sleep)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, "kanal serve exited early"
            try:
                response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise AssertionError("kanal serve never reported SERVING")


def test_kanal_serve_subprocess(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    state = tmp_path / "state"
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [*kanal_command(), "serve", "--listen", address, "--state-dir", str(state)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "KANAL_LOG_FORMAT": "json"},
    )
    try:
        wait_serving(address, process)
        assert processes_using(state), "the embedded SeaweedFS should be running"
        dev_keys = json.loads((state / "dev-api-keys.json").read_text())
        with channel(address, dev_keys["producer"]) as ch:
            stub = documents_pb2_grpc.DocumentsStub(ch)
            data = LayoutRegistry().get("welcome-letter").sample_data()
            response = stub.Compose(documents_pb2.ComposeRequest(
                layout_id="welcome-letter", data_json=data), timeout=60)
            assert response.outputs[0].pages == 1 and response.outputs[0].archive_key
            document = stub.GetDocument(documents_pb2.GetDocumentRequest(
                document_id=response.document_id))
            assert document.tenant == "demo"
            assert document.outputs[0].sha256 == response.outputs[0].sha256
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
    log.seek(0)
    output = log.read()
    assert exit_code == 0, output
    assert processes_using(state) == [], "SeaweedFS outlived the server"
    # No personal data in the logs: the recipient's name and address never appear,
    # while the document id (what support needs) does.
    customer = json.loads(data)["customer"]
    for personal in (customer["name"], *customer["address"]["lines"]):
        assert personal not in output
    assert response.document_id in output


def test_kanal_serve_refuses_a_taken_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = subprocess.run(
            [*kanal_command(), "serve", "--listen", address, "--state-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=120,
        )
    assert result.returncode != 0
    assert address in result.stderr
    assert processes_using(tmp_path) == [], "SeaweedFS left behind after a failed start"


def test_seaweedfs_dies_with_a_killed_server(tmp_path):
    """kill -9 gives the server no chance to stop SeaweedFS; the kernel must (PDEATHSIG),
    or the orphan keeps the store locked and the restart fails."""
    address = f"127.0.0.1:{free_port()}"
    state = tmp_path / "state"
    process = subprocess.Popen(
        [*kanal_command(), "serve", "--listen", address, "--state-dir", str(state)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_serving(address, process)
        assert processes_using(state)
        workers = children_of(process.pid)  # render pool and bulk workers
        assert len(workers) >= 2
    finally:
        process.kill()
        process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while (processes_using(state) or alive(workers)) and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting for the orphans to notice, not for time to pass
    assert processes_using(state) == [], "SeaweedFS outlived a killed server"
    assert alive(workers) == [], "worker processes outlived a killed server"
    # And the same state dir serves again.
    restart = subprocess.Popen(
        [*kanal_command(), "serve", "--listen", address, "--state-dir", str(state)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_serving(address, restart)
    finally:
        restart.send_signal(signal.SIGTERM)
        assert restart.wait(timeout=60) == 0
