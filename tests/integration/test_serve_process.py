"""`kanal serve` as a newcomer runs it: a subprocess, health checked, called through the
generated stubs (no reflection), stopped with SIGTERM, nothing left running."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kanal.v1 import documents_pb2, documents_pb2_grpc
from server.compose.layouts import LayoutRegistry
from tests.client import channel

pytestmark = pytest.mark.integration


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768-60999): a port the kernel hands
    out (bind to 0) can be handed to another socket's outgoing connection before `kanal serve`
    binds it (CI: "cannot listen on 127.0.0.1:44091: Address already in use")."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 20000-32000")


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
        ready = grpc.channel_ready_future(channel)
        while True:  # not one long wait: a server that exited is reported at once
            assert process.poll() is None, f"kanal serve exited early ({process.returncode})"
            try:
                ready.result(timeout=1)
                break
            except grpc.FutureTimeoutError:
                assert time.monotonic() < deadline, "kanal serve never listened"
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


def spawned_children_of(pid: int) -> list[int]:
    """Its multiprocessing 'spawn' children: render and bulk worker processes."""
    return [child for child in children_of(pid)
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def own_folders(state: Path) -> list[str]:
    """The processes' temporary folders under the state dir (server.tempdirs)."""
    folder = state / "tmp"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def test_a_killed_render_process_leaves_nothing_in_the_temp_directory(tmp_path):
    """Each render process that renders with WeasyPrint has it copy the layouts' fonts
    into a temporary folder (about 3 MB); killed (SIGKILL: the OOM killer, an operator) it
    cannot remove it, and it stayed in /tmp for good. `kanal serve` gives each of its
    processes a folder of its own under the state dir and removes a dead one's when it
    stops or starts (server.tempdirs): a start, a WeasyPrint document, a killed render
    process and a stop leave nothing in the temporary directory. And the next Compose is
    served by a fresh render pool (the killed process had broken the old one for good)."""
    address = f"127.0.0.1:{free_port()}"
    state, system = tmp_path / "state", tmp_path / "system-tmp"
    system.mkdir()
    process = subprocess.Popen(
        [*kanal_command(), "serve", "--listen", address, "--state-dir", str(state)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(system), "KANAL_RENDER_WORKERS": "1"})
    try:
        wait_serving(address, process)
        dev_keys = json.loads((state / "dev-api-keys.json").read_text())
        with channel(address, dev_keys["producer"]) as ch:
            response = documents_pb2_grpc.DocumentsStub(ch).Compose(
                documents_pb2.ComposeRequest(  # rendered by WeasyPrint
                    layout_id="welcome-letter",
                    data_json=LayoutRegistry().get("welcome-letter").sample_data()),
                timeout=60)
        assert response.outputs[0].pages == 1
        [render] = spawned_children_of(process.pid)
        fonts = [*system.rglob("weasyprint-*"), *state.rglob("weasyprint-*")]
        assert len(fonts) == 1, fonts  # the render process's
        os.kill(render, signal.SIGKILL)
        while alive([render]):
            time.sleep(0.05)  # waiting for the kill to land, not for time to pass
        with channel(address, dev_keys["producer"]) as ch:  # a fresh render pool serves
            again = documents_pb2_grpc.DocumentsStub(ch).Compose(
                documents_pb2.ComposeRequest(
                    layout_id="welcome-letter",
                    data_json=LayoutRegistry().get("welcome-letter").sample_data()),
                timeout=60)
        assert again.outputs[0].pages == 1
        assert spawned_children_of(process.pid) not in ([], [render])
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not fonts[0].exists(), "the killed render process's font folder is left"
    assert list(system.iterdir()) == []
    assert own_folders(state) == []


def test_seaweedfs_dies_with_a_killed_server(tmp_path):
    """kill -9 gives the server no chance to stop SeaweedFS; the kernel must (PDEATHSIG),
    or the orphan keeps the store locked and the restart fails. The kernel kills the
    workers too (server.processes), so they leave their temporary folders as the server
    leaves its own; the restarted server removes them all (server.tempdirs); none is in
    the system's temporary directory."""
    address = f"127.0.0.1:{free_port()}"
    state, system = tmp_path / "state", tmp_path / "system-tmp"
    system.mkdir()
    env = {**os.environ, "TMPDIR": str(system)}
    process = subprocess.Popen(
        [*kanal_command(), "serve", "--listen", address, "--state-dir", str(state)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
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
    ended = {process.pid, *workers}
    killed = own_folders(state)
    assert {int(name.split("-")[0]) for name in killed} <= ended
    assert any(name.startswith(f"{process.pid}-") for name in killed)
    # And the same state dir serves again.
    restart = subprocess.Popen(
        [*kanal_command(), "serve", "--listen", address, "--state-dir", str(state)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_serving(address, restart)
        assert not set(killed) & set(own_folders(state))
    finally:
        restart.send_signal(signal.SIGTERM)
        assert restart.wait(timeout=60) == 0
    assert own_folders(state) == []
    assert list(system.iterdir()) == []


def test_a_new_users_first_hour_against_kanal_serve(tmp_path):
    """The README's way: `kanal serve` with nothing configured, then the client commands with
    their defaults (the development keys and customer-token secret of the state dir), archive
    admin beside the running server, its metrics, reflection on, one log format throughout."""
    address = f"127.0.0.1:{free_port()}"
    state = tmp_path / "state"
    env = {**os.environ, "KANAL_STATE_DIR": str(state), "KANAL_ADDRESS": address,
           "KANAL_LOG_FORMAT": "json", "KANAL_JOB_WORKERS": "1"}
    env.pop("KANAL_API_KEY", None)
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen([*kanal_command(), "serve", "--listen", address],
                               stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)

    def kanal(*args: str, **extra: str) -> subprocess.CompletedProcess:
        result = subprocess.run([*kanal_command(), *args], capture_output=True, text=True,
                                env={**env, **extra}, cwd=tmp_path, timeout=120)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    try:
        wait_serving(address, process)
        sample = kanal("layouts", "card-invoice", "--sample")
        assert sample.returncode == 0, sample.stderr
        (tmp_path / "invoice.json").write_text(sample.stdout, encoding="utf-8")
        composed = kanal("compose", "card-invoice", "--data", "invoice.json")
        assert composed.returncode == 0, composed.stderr
        document_id = json.loads(composed.stdout)["document_id"]

        token = kanal("portal", "token", "20184455")
        assert token.returncode == 0, token.stderr
        listed = kanal("portal", "list", KANAL_CUSTOMER_TOKEN=token.stdout.strip())
        assert listed.returncode == 0, listed.stderr
        assert document_id in [d["document_id"] for d in json.loads(listed.stdout)["documents"]]

        printed = kanal("print", "list")  # nothing closed yet: says so
        assert printed.returncode == 0 and "no print batches" in printed.stderr

        (tmp_path / "invoices.jsonl").write_text(
            '{"record_key": "r1", "data": ' + sample.stdout.replace("\n", "") + "}\n")
        submitted = kanal("submit", "invoices.jsonl", "--layout", "card-invoice")
        assert submitted.returncode == 0, submitted.stderr
        assert "completed" in submitted.stdout and "\r" not in submitted.stderr

        weeds = processes_using(state / "s3")
        verified = kanal("archive", "verify")
        assert verified.returncode == 0, verified.stderr
        assert "using the embedded store of the running server" in verified.stderr
        refused = kanal("archive", "reindex")
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
        assert processes_using(state / "s3") == weeds and len(weeds) == 1

        facts = json.loads((state / "server.json").read_text())
        with urllib.request.urlopen(facts["metrics"], timeout=10) as response:
            assert "grpc_server_handled_total{" in response.read().decode()
        with grpc.insecure_channel(address) as ch:  # the development setup: reflection on
            answer = next(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
        assert "kanal.v1.Documents" in {s.name for s in answer.list_services_response.service}
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
    log.seek(0)
    lines = log.read().splitlines()
    assert exit_code == 0
    # the server and its worker processes log in one format (json here)
    logged = [line for line in lines if not line.startswith(("kanal listening", "development"))]
    assert any('"chunk done"' in line for line in logged)  # a bulk worker process's line
    for line in logged:
        assert json.loads(line)["event"], line


FORK_BESIDE_GRPC = """
import server  # what every Kanal process imports first
import subprocess, threading
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
rpc = grpc.server(futures.ThreadPoolExecutor(4))
health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), rpc)
port = rpc.add_insecure_port("127.0.0.1:0")
rpc.start()
stop = threading.Event()
def busy():
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set():
            stub.Check(health_pb2.HealthCheckRequest())
threads = [threading.Thread(target=busy) for _ in range(3)]
for t in threads:
    t.start()
failed = sum(subprocess.run(["true"], preexec_fn=lambda: None).returncode != 0
             for _ in range(150))
stop.set()
for t in threads:
    t.join()
print(failed)
"""


def test_processes_start_while_rpcs_are_in_flight():
    """A Popen (SeaweedFS, a restart of it) beside busy gRPC threads: with gRPC's fork
    support on, about 1 child in 20 aborted before exec (grpc/grpc#43055); never now."""
    result = subprocess.run([sys.executable, "-c", FORK_BESIDE_GRPC], capture_output=True,
                            text=True, timeout=120,
                            env={k: v for k, v in os.environ.items()
                                 if k != "GRPC_ENABLE_FORK_SUPPORT"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0", result.stderr
