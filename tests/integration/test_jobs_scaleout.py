"""Jobs that survive dying processes: chunks over RabbitMQ with a worker that dies mid-chunk,
`kanal serve` killed with SIGKILL in the middle of a job and started again, and the
multi-machine deployment (`kanal serve` + `kanal worker` processes on a shared S3 and
PostgreSQL) with a worker and the server killed with SIGKILL mid-chunk."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pika
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, func, make_url, select, text

from archive.store import ArchiveStore
from archive.tables import documents as index_documents
from archive.tables import outputs as index_outputs
from kanal.v1 import jobs_pb2, jobs_pb2_grpc
from server.app import KanalServer
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import Settings
from server.jobs.queue import consume, declare
from server.jobs.store import JobStore
from server.jobs.worker import Pipeline, document_id_for
from server.printing.queue import print_pieces
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import queued_pieces

pytestmark = pytest.mark.integration

RABBITMQ = os.environ.get("KANAL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
KEYS = Keys(("nordkort", "producer"))
SAMPLE = json.loads((DEFAULT_LAYOUTS_DIR / "card-invoice/1.0.0/sample.json").read_text())


class Died(BaseException):
    """Stands in for a worker process dying between storing objects and the index row.
    Not an Exception: an Exception raised by a record is that record's error, and the
    chunk goes on without it."""


def messages(count: int, tenant: str = ""):
    yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
        tenant=tenant, layout_id="card-invoice", job_name="survivor"))
    for n in range(count):
        data = json.loads(json.dumps(SAMPLE))
        data["customer"]["customer_id"] = f"s{n:05d}"
        yield jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
            record_key=f"r{n}", data_json=json.dumps(data)))


def layouts_dir(tmp_path: Path) -> Path:
    layouts = tmp_path / "layouts"
    layouts.mkdir()
    for name in ("card-invoice", "_shared"):
        (layouts / name).symlink_to(DEFAULT_LAYOUTS_DIR / name)
    return layouts


def assert_exactly_once(index_url: str, job_id: str, created_at, count: int,
                        objects: list[str]) -> None:
    """One index row per record, one object per record and channel, one print piece per
    printed record (queued by its print delivery: the server must still be running), and
    nothing else in the archive."""
    ids = [document_id_for(job_id, created_at, f"r{n}") for n in range(count)]
    engine = create_engine(index_url)
    with engine.connect() as conn:
        printed = conn.execute(select(func.count()).select_from(index_outputs).where(
            index_outputs.c.document_id.in_(ids), index_outputs.c.channel == "print")).scalar()
    queued_pieces(engine, ids, printed)
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(index_documents).where(
            index_documents.c.document_id.in_(ids))).scalar()
        keys = [k for (k,) in conn.execute(select(index_outputs.c.key).where(
            index_outputs.c.document_id.in_(ids)))]
        printed = sum(1 for k in keys if k.endswith(".pdf"))
        queued = conn.execute(select(func.count()).select_from(print_pieces).where(
            print_pieces.c.document_id.in_(ids))).scalar()
    engine.dispose()
    assert rows == count
    assert len(keys) == len(set(keys)) >= count
    assert sorted(objects) == sorted(keys)
    assert queued == printed


def test_a_chunk_whose_worker_dies_is_redelivered_over_rabbitmq(tmp_path, monkeypatch):
    queue = f"kanal.test.{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KANAL_RABBITMQ_URL", RABBITMQ)
    monkeypatch.setenv("KANAL_RABBITMQ_QUEUE", queue)
    monkeypatch.setenv("KANAL_JOB_CHUNK_SIZE", "4")
    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=tmp_path / "state",
                              layouts_dir=layouts_dir(tmp_path),
                              api_keys=KEYS.api_keys)) as kanal:
        config = kanal.worker_config
        with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
            stub = jobs_pb2_grpc.JobsStub(ch)
            job_id = stub.SubmitBatch(messages(12)).job_id  # 3 chunks on the queue

            # A worker takes a chunk, stores two documents' objects, and dies before their
            # index rows: its connection closes without an ack.
            dying = pika.BlockingConnection(pika.URLParameters(RABBITMQ))
            ch_dying = dying.channel()
            declare(ch_dying, queue)  # the server declares it on its first publish; don't race
            method = None
            for _ in range(100):
                method, _props, body = ch_dying.basic_get(queue, auto_ack=False)
                if method is not None:
                    break
                time.sleep(0.1)  # waiting for the server's publish, not for time to pass
            assert method is not None
            pipeline = Pipeline.build(config)
            stored = []

            def die_on_third(document_id: str) -> None:
                stored.append(document_id)
                if len(stored) == 3:
                    raise Died()
            pipeline.documents.before_index = die_on_third
            chunk = json.loads(body)
            with pytest.raises(Died):
                pipeline.run_chunk(chunk["job_id"], chunk["chunk"])
            dying.close()

            # Two healthy workers share the rest, including the redelivered chunk.
            stop = threading.Event()
            counts: list[int] = []
            workers = [threading.Thread(target=lambda: counts.append(
                consume(RABBITMQ, config, stop, queue=queue))) for _ in range(2)]
            for w in workers:
                w.start()
            try:
                last = list(stub.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id),
                                          timeout=180))[-1]
            finally:
                stop.set()
                for w in workers:
                    w.join(timeout=30)
            assert last.job.state == "completed" and last.job.counts.done == 12
            assert sum(counts) >= 3  # all three chunks ran on the healthy workers
        created = kanal.jobs.get(job_id).created_at
        assert_exactly_once(kanal.settings.resolved_index_url, job_id, created, 12,
                            [o.key for o in kanal.store.iter_objects()])
    probe = pika.BlockingConnection(pika.URLParameters(RABBITMQ))
    probe.channel().queue_delete(queue)
    probe.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded_env(layouts: Path) -> dict[str, str]:
    """`kanal serve` on its embedded defaults, with small chunks."""
    env = {**os.environ, "KANAL_JOB_CHUNK_SIZE": "3", "KANAL_LAYOUTS_DIR": str(layouts)}
    env.pop("KANAL_RABBITMQ_URL", None)
    return env


def start_serve(state: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--listen", f"127.0.0.1:{port}",
         "--state-dir", str(state)], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                             wait_for_ready=True, timeout=120)
    assert on_jemalloc(process.pid), "kanal serve runs on jemalloc (server.processes)"
    return process


def on_jemalloc(pid: int, timeout: float = 30) -> bool:
    """Whether the process maps jemalloc (once it has re-executed itself onto it)."""
    deadline = time.monotonic() + timeout
    while "libjemalloc" not in Path(f"/proc/{pid}/maps").read_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def kill_embedded_s3(state: Path) -> None:
    """The embedded SeaweedFS runs in its own session and outlives a SIGKILLed server (it
    then holds its store's lock, so a restart fails): kill it too, as a machine crash would."""
    data_dir = f"-dir={state / 's3'}"
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if proc.name.isdigit() and data_dir.encode() in args:
            os.kill(int(proc.name), signal.SIGKILL)
            while True:  # wait for the kill to land (gone or a zombie)
                try:
                    if b" Z " in (proc / "stat").read_bytes().split(b")")[-1][:4]:
                        break
                except OSError:
                    break
                time.sleep(0.05)


# enough that the server is still composing when the test sees 3 done and kills it: with 18,
# a loaded CI machine's first WatchJob update once already read all 18 done (CI)
RECORDS = 36


def test_a_job_survives_kill_9_of_the_server(tmp_path):
    state, layouts, port = tmp_path / "state", layouts_dir(tmp_path), free_port()
    server = start_serve(state, port, embedded_env(layouts))
    try:
        key = json.loads((state / "dev-api-keys.json").read_text())["producer"]
        with channel(f"127.0.0.1:{port}", key) as ch:
            stub = jobs_pb2_grpc.JobsStub(ch)
            job_id = stub.SubmitBatch(messages(RECORDS, tenant="demo")).job_id
            for progress in stub.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=180):
                if progress.job.counts.done >= 3:
                    break
        assert progress.job.counts.done < RECORDS, "the job must still be running when killed"
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the server and its worker processes
        server.wait()
        kill_embedded_s3(state)


    server = start_serve(state, port, embedded_env(layouts))
    try:
        with channel(f"127.0.0.1:{port}", key) as ch:
            stub = jobs_pb2_grpc.JobsStub(ch)
            last = list(stub.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=240))[-1]
        assert last.job.state == "completed" and last.job.counts.done == RECORDS
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state, layouts_dir=layouts,
                              api_keys=KEYS.api_keys)) as kanal:
        created = kanal.jobs.get(job_id).created_at
        assert_exactly_once(kanal.settings.resolved_index_url, job_id, created, RECORDS,
                            [o.key for o in kanal.store.iter_objects()])


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database, as a deployment's server and workers would share: the
    server migrates it on start, the workers only connect."""
    name = f"kanal_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_scale_out_survives_kill_9_of_a_worker_and_the_server(tmp_path, embedded_s3,
                                                               pg_database):
    """The multi-machine deployment, each part a real process: `kanal serve` and `kanal worker`
    on a shared S3 (its own SeaweedFS) and a shared PostgreSQL, chunks over RabbitMQ. The
    worker is killed with SIGKILL in the middle of a chunk and the server with it; after a
    restart and a new worker the job finishes, each record archived, indexed and queued
    for print exactly once, and the new worker ran the chunk the dead one held."""
    queue = f"kanal.test.{uuid.uuid4().hex[:8]}"
    env = {**os.environ,
           "KANAL_RABBITMQ_URL": RABBITMQ, "KANAL_RABBITMQ_QUEUE": queue,
           "KANAL_JOB_CHUNK_SIZE": "3", "KANAL_LAYOUTS_DIR": str(layouts_dir(tmp_path)),
           "KANAL_INDEX_URL": pg_database, "KANAL_S3_ENDPOINT": embedded_s3.endpoint_url,
           "KANAL_S3_BUCKET": f"kanal-scaleout-{uuid.uuid4().hex[:8]}",
           "KANAL_S3_ACCESS_KEY": embedded_s3.access_key,
           "KANAL_S3_SECRET_KEY": embedded_s3.secret_key,
           "KANAL_RENDER_WORKERS": "1", "KANAL_LOG_FORMAT": "json"}
    state, port = tmp_path / "state", free_port()

    def start_worker(log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            return subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=env,
                                    start_new_session=True, stdout=out,
                                    stderr=subprocess.STDOUT)

    def kill_9(process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)  # the process and its children, no goodbyes
        process.wait()

    jobs_store = JobStore(pg_database)
    index = create_engine(pg_database)
    server = start_serve(state, port, env)
    first = start_worker(tmp_path / "worker-1.log")
    assert on_jemalloc(first.pid), "kanal worker runs on jemalloc (server.processes)"
    try:
        key = json.loads((state / "dev-api-keys.json").read_text())["producer"]
        with channel(f"127.0.0.1:{port}", key) as ch:
            job_id = jobs_pb2_grpc.JobsStub(ch).SubmitBatch(messages(18, "demo")).job_id
        # Kill once the first document of the second chunk (r3..r5) is indexed. A chunk's
        # documents are indexed together (one transaction, server.archiving), so the worker
        # is then finishing a chunk (not yet acknowledged) or inside the next, which RabbitMQ
        # delivered to it on the ack (prefetch 1): either way it holds a chunk.
        created_at = jobs_store.get(job_id).created_at
        ids = [document_id_for(job_id, created_at, f"r{i}") for i in range(18)]

        def indexed() -> set[str]:
            with index.connect() as conn:
                return set(conn.execute(select(index_documents.c.document_id).where(
                    index_documents.c.document_id.in_(ids))).scalars())

        for _ in range(6000):
            if ids[3] in indexed():
                break
            time.sleep(0.02)  # polling the index while the worker renders
        else:
            pytest.fail("the worker never reached the second chunk")
    finally:
        kill_9(first)
        kill_9(server)
    killed_at = jobs_store.get(job_id)
    assert killed_at.state != "completed", "the job must still be running when killed"
    # Which chunk the dead worker held: on a fast machine it may be past the second chunk by
    # the time the poll sees r3 and kills (CI on 2026-12-01 redelivered chunk 3). Chunks run
    # in order, so it held the last chunk wholly indexed or the one after it.
    done = indexed()
    last_indexed = max(c for c in range(6) if set(ids[3 * c:3 * c + 3]) <= done)

    server = start_serve(state, port, env)
    second = start_worker(tmp_path / "worker-2.log")
    try:
        with channel(f"127.0.0.1:{port}", key) as ch:
            last = list(jobs_pb2_grpc.JobsStub(ch).WatchJob(
                jobs_pb2.GetJobRequest(job_id=job_id), timeout=300))[-1]
        assert last.job.state == "completed" and last.job.counts.done == 18
        store = ArchiveStore(endpoint_url=embedded_s3.endpoint_url,
                             bucket=env["KANAL_S3_BUCKET"], access_key=embedded_s3.access_key,
                             secret_key=embedded_s3.secret_key)
        assert_exactly_once(pg_database, job_id, jobs_store.get(job_id).created_at, 18,
                            [o.key for o in store.iter_objects()])
    finally:
        for process in (second, server):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        index.dispose()

    worker_log = [json.loads(line) for line in
                  (tmp_path / "worker-2.log").read_text().splitlines() if line.startswith("{")]
    redelivered = [e for e in worker_log if e.get("event") == "chunk redelivered"]
    assert {(e["job_id"], e["chunk"]) for e in redelivered} & {
        (job_id, last_indexed), (job_id, last_indexed + 1)}
    jobs_store.close()
    probe = pika.BlockingConnection(pika.URLParameters(RABBITMQ))
    probe.channel().queue_delete(queue)
    probe.close()
