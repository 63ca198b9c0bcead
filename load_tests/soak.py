"""Soak: mixed load on a real `kanal serve` with faults injected, then exactly-once counts.

    python load_tests/soak.py [--minutes 60] [--fault-every 240] [--bulk 3000]

`kanal serve` runs as a process on its embedded defaults (SeaweedFS, SQLite, a render
process and a bulk worker per core). For `--minutes`:

- real-time Compose (card invoice, print + SMS) from `--clients` threads, each call with
  its own idempotency key and a 10 s deadline; a call answered UNAVAILABLE or
  RESOURCE_EXHAUSTED is retried with the same key after a pause, as a bank's core system
  would, until it succeeds;
- one bulk job of `--bulk` card invoices, submitted at the start and watched to its end;
- portal reads (customer service): ListDocuments, FetchDocument, GetDownloadUrl of
  documents composed so far;
- a health check twice a second;
- every `--fault-every` seconds the next fault, in turn: SeaweedFS paused (SIGSTOP) for 20 s,
  SeaweedFS killed (SIGKILL; the server restarts it), a burst of 150 concurrent Compose
  calls, eight SubmitBatch streams held idle past the idle limit.

At the end the load stops, the bulk job is awaited, the server stopped, and the archive
and index are counted: every real-time idempotency key has exactly one document, every bulk
record exactly one document, every indexed output exactly one object, one print piece per
printed document. Reports errors by status, p50/p99 per kind, the health timeline, RSS
(server and all its processes) over time, and writes load_tests/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from archive.embedded import EmbeddedS3  # noqa: E402
from archive.store import ArchiveStore  # noqa: E402
from archive.tables import documents as index_documents  # noqa: E402
from archive.tables import outputs as index_outputs  # noqa: E402
from kanal.v1 import (  # noqa: E402
    common_pb2,
    documents_pb2,
    documents_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    portal_pb2,
    portal_pb2_grpc,
)
from load_tests.bench_bulk import records  # noqa: E402
from server.jobs.store import JobStore  # noqa: E402
from server.jobs.worker import document_id_for  # noqa: E402
from server.printing.queue import print_pieces  # noqa: E402

RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
             grpc.StatusCode.DEADLINE_EXCEEDED}


class Recorder:
    """Every call's (kind, status, seconds), and timelines."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[float, str, str, float]] = []  # (at, kind, status, seconds)
        self.events: list[tuple[float, str]] = []
        self.rss: list[tuple[float, int, int]] = []  # (at, server kB, all processes kB)
        self.started = time.monotonic()

    def call(self, kind: str, fn, *args, **kwargs):
        started = time.perf_counter()
        try:
            result, status = fn(*args, **kwargs), "OK"
        except grpc.RpcError as exc:
            result, status = exc, exc.code().name
        with self.lock:
            self.calls.append((time.monotonic() - self.started, kind, status,
                               time.perf_counter() - started))
        return result, status

    def event(self, what: str) -> None:
        with self.lock:
            self.events.append((round(time.monotonic() - self.started, 1), what))
        print(f"[{time.monotonic() - self.started:7.1f} s] {what}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(state: Path, address: str) -> subprocess.Popen:
    config = state / "kanal.toml"
    config.write_text('[portal.customer_token_secrets]\nsoak = "soak-secret"\n'
                      "[limits]\nstream_idle_seconds = 10\n")
    kanal = Path(sys.executable).parent / "kanal"
    command = [str(kanal)] if kanal.exists() else [sys.executable, "-m", "server.cli"]
    log = (state / "serve.log").open("w")
    process = subprocess.Popen(
        [*command, "serve", "--listen", address, "--state-dir", str(state), "--config",
         str(config)], stdout=log, stderr=log, start_new_session=True, cwd=ROOT,
        env={**os.environ, "KANAL_LOG_FORMAT": "json", "KANAL_JOB_CHUNK_SIZE": "25"})
    with grpc.insecure_channel(address) as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                  wait_for_ready=True, timeout=180)
    return process


def descendants(pid: int) -> list[int]:
    children: defaultdict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def seaweedfs_pid(state: Path) -> int | None:
    wanted = f"-dir={(state / 's3').resolve()}".encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and wanted in (entry / "cmdline").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    return None


def main() -> None:  # noqa: C901 - one scenario, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--fault-every", type=float, default=240)
    parser.add_argument("--bulk", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="kanal-soak-"))
    address = f"127.0.0.1:{free_port()}"
    rec = Recorder()
    server = start_server(state, address)
    keys = json.loads((state / "dev-api-keys.json").read_text())
    producer = (("authorization", f"Bearer {keys['producer']}"),)
    service = (("authorization", f"Bearer {keys['service']}"),)
    rec.event(f"kanal serve up at {address}, state {state}")
    channel = grpc.insecure_channel(address)
    documents = documents_pb2_grpc.DocumentsStub(channel)
    jobs = jobs_pb2_grpc.JobsStub(channel)
    portal = portal_pb2_grpc.PortalStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    stop = threading.Event()
    composed: dict[str, str] = {}  # idempotency key -> document id
    customers: list[str] = []
    sample = {n: data for n, (_, data, _) in enumerate(records(200, seed=11))}

    def realtime(client: int) -> None:
        n = 0
        while not stop.is_set():
            key = f"rt-{client}-{n}"
            data = sample[n % len(sample)]
            while not stop.is_set():
                response, status = rec.call(
                    "compose", documents.Compose, documents_pb2.ComposeRequest(
                        layout_id="card-invoice", data_json=data, idempotency_key=key,
                        channels=[common_pb2.CHANNEL_PRINT, common_pb2.CHANNEL_SMS]),
                    metadata=producer, timeout=10)
                if status == "OK":
                    composed[key] = response.document_id
                    customers.append(json.loads(data)["customer"]["customer_id"])
                    break
                stop.wait(1.0 if response.code() in RETRYABLE else 5.0)
            n += 1

    def fetch(document_id: str) -> bytes:
        return b"".join(c.data for c in portal.FetchDocument(
            portal_pb2.FetchDocumentRequest(document_id=document_id), metadata=service,
            timeout=10))

    def reads() -> None:
        rng = random.Random(3)
        while not stop.wait(0.3):
            if not customers:
                continue
            listing, status = rec.call("portal list", portal.ListDocuments,
                                       portal_pb2.ListDocumentsRequest(
                                           customer_id=rng.choice(customers), page_size=5),
                                       metadata=service, timeout=10)
            if status != "OK" or not listing.documents:
                continue
            document_id = rng.choice(listing.documents).document_id
            rec.call("portal fetch", fetch, document_id)
            rec.call("portal url", portal.GetDownloadUrl, portal_pb2.GetDownloadUrlRequest(
                document_id=document_id), metadata=service, timeout=10)

    def probe() -> None:
        seen = None
        while not stop.wait(0.5):
            answer, status = rec.call("health", health.Check, health_pb2.HealthCheckRequest(
                service="kanal.archive"), timeout=2)
            now = answer.status if status == "OK" else status
            if now != seen:
                name = health_pb2.HealthCheckResponse.ServingStatus.Name(now) \
                    if status == "OK" else status
                rec.event(f"health kanal.archive: {name}")
                seen = now

    def sample_rss() -> None:
        while True:
            pids = descendants(server.pid)
            with rec.lock:
                rec.rss.append((round(time.monotonic() - rec.started), rss_kb(server.pid),
                                sum(rss_kb(p) for p in pids)))
            if stop.wait(10):
                return

    def burst() -> None:
        request = documents_pb2.ComposeRequest(layout_id="welcome-letter", preview=True,
                                               data_json=(ROOT / "layouts/welcome-letter/2.0.0"
                                                          "/sample.json").read_text())
        with ThreadPoolExecutor(150) as pool:
            results = list(pool.map(lambda _: rec.call(
                "burst compose", documents.Compose, request, metadata=producer, timeout=30),
                range(150)))
        rec.event(f"burst: {Counter(s for _, s in results)}")

    def idle_streams() -> None:
        release = threading.Event()

        def idle():
            yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(layout_id="card-invoice"))
            release.wait(60)
        futures = [jobs.SubmitBatch.future(idle(), metadata=producer, timeout=60)
                   for _ in range(8)]
        outcomes = Counter()
        for future in futures:
            try:
                future.result()
                outcomes["OK"] += 1
            except grpc.RpcError as exc:
                outcomes[exc.code().name] += 1
        release.set()
        rec.event(f"idle streams: {dict(outcomes)}")

    def pause_s3() -> None:
        pid = seaweedfs_pid(state)
        os.killpg(pid, signal.SIGSTOP)
        stop.wait(20)
        os.killpg(pid, signal.SIGCONT)

    def kill_s3() -> None:
        os.killpg(seaweedfs_pid(state), signal.SIGKILL)

    faults = [("pause S3 20 s", pause_s3), ("kill S3", kill_s3),
              ("burst of 150 Compose", burst), ("8 idle SubmitBatch streams", idle_streams)]

    def inject() -> None:
        n = 0
        while not stop.wait(args.fault_every):
            name, fault = faults[n % len(faults)]
            rec.event(f"fault: {name}")
            fault()
            rec.event(f"fault over: {name}")
            n += 1

    def bulk_messages():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
            layout_id="card-invoice", job_name="soak", channels=[common_pb2.CHANNEL_PRINT]))
        for record_key, data, _ in records(args.bulk, seed=5):
            yield jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
                record_key=record_key, data_json=data))

    job_id = jobs.SubmitBatch(bulk_messages(), metadata=producer, timeout=600).job_id
    rec.event(f"bulk job {job_id} of {args.bulk} records submitted")
    threads = [threading.Thread(target=t, daemon=True) for t in (
        *(lambda c=c: realtime(c) for c in range(args.clients)), reads, probe, sample_rss,
        inject)]
    for thread in threads:
        thread.start()
    stop.wait(args.minutes * 60)
    stop.set()
    rec.event("load stopped; waiting for the bulk job")
    for thread in threads:
        thread.join(120)
    last = None
    while last is None or not last.final:
        for progress in jobs.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), metadata=producer,
                                      timeout=3600):
            last = progress
    rec.event(f"bulk job {last.job.state}: done {last.job.counts.done}, "
              f"failed {last.job.counts.failed}")
    channel.close()
    rec.event(f"print pieces queued by their deliveries: {wait_for_print_pieces(state)}")
    children = [p for p in descendants(server.pid) if p != server.pid]
    server.send_signal(signal.SIGTERM)
    server.wait(120)
    for _ in range(50):  # workers notice their parent is gone within a second
        leftovers = [p for p in children if Path(f"/proc/{p}").exists()]
        if not leftovers:
            break
        time.sleep(0.1)
    leftovers = [(p, Path(f"/proc/{p}/cmdline").read_bytes()[:120].decode(errors="replace"))
                 for p in leftovers if Path(f"/proc/{p}").exists()]
    report = summarize(rec, args, state, job_id, last, composed, leftovers)
    out = ROOT / "load_tests" / "results"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values or [0])[0]


def summarize(rec: Recorder, args, state: Path, job_id: str, last, composed: dict[str, str],
              leftovers: list) -> dict:
    by_kind: defaultdict[str, Counter] = defaultdict(Counter)
    ok_latencies: defaultdict[str, list[float]] = defaultdict(list)
    for _, kind, status, seconds in rec.calls:
        by_kind[kind][status] += 1
        if status == "OK":
            ok_latencies[kind].append(seconds)
    counts = exactly_once(state, job_id, args.bulk, composed)
    return {
        "minutes": args.minutes, "fault_every_s": args.fault_every, "clients": args.clients,
        "load_average_at_end": os.getloadavg(), "cpus": os.cpu_count(),
        "bulk": {"state": last.job.state, "done": last.job.counts.done,
                 "failed": last.job.counts.failed},
        "calls_by_status": {k: dict(v) for k, v in sorted(by_kind.items())},
        "latency_ok_ms": {k: {"n": len(v), "p50": round(percentile(v, 50) * 1000, 1),
                              "p99": round(percentile(v, 99) * 1000, 1),
                              "max": round(max(v) * 1000, 1)}
                          for k, v in sorted(ok_latencies.items())},
        "rss_mb_over_time": [(at, round(server / 1024), round(total / 1024))
                             for at, server, total in rec.rss[::6]],
        "rss_mb_first_last": [(rec.rss[0][1] // 1024, rec.rss[0][2] // 1024),
                              (rec.rss[-1][1] // 1024, rec.rss[-1][2] // 1024)],
        "events": rec.events,
        "exactly_once": counts,
        "processes_left_after_stop": leftovers,
    }


def wait_for_print_pieces(state: Path, timeout: float = 300) -> str:
    """Wait (up to `timeout` s) until every printed document's print delivery has queued
    its piece, as the server's dispatcher does a moment after the document. -> 'n of m'"""
    engine = create_engine(f"sqlite:///{state / 'index.db'}")
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            pieces = conn.execute(select(func.count()).select_from(print_pieces)).scalar()
            printed = conn.execute(select(func.count()).select_from(index_outputs).where(
                index_outputs.c.channel == "print")).scalar()
        if pieces >= printed or time.monotonic() > deadline:
            engine.dispose()
            return f"{pieces} of {printed}"
        time.sleep(1)


def exactly_once(state: Path, job_id: str, bulk: int, composed: dict[str, str]) -> dict:
    """Count documents, outputs, objects and print pieces in the stopped server's stores."""
    credentials = json.loads((state / "s3-credentials.json").read_text())
    index_url = f"sqlite:///{state / 'index.db'}"
    engine = create_engine(index_url)
    created = JobStore(index_url).get(job_id).created_at
    bulk_ids = [document_id_for(job_id, created, key) for key, _, _ in records(bulk, seed=5)]
    with engine.connect() as conn:
        per_key = dict(conn.execute(text(
            "select idempotency_key, count(*) from documents where idempotency_key like 'rt-%'"
            " group by idempotency_key")).all())
        bulk_rows = conn.execute(select(func.count()).select_from(index_documents).where(
            index_documents.c.document_id.in_(bulk_ids))).scalar()
        keys = [k for (k,) in conn.execute(select(index_outputs.c.key))]
        pieces = conn.execute(select(func.count()).select_from(print_pieces)).scalar()
        printed = conn.execute(select(func.count()).select_from(index_outputs).where(
            index_outputs.c.channel == "print")).scalar()
    engine.dispose()
    with EmbeddedS3(state / "s3", access_key=credentials["access_key"],
                    secret_key=credentials["secret_key"], supervise=False) as s3:
        store = ArchiveStore(endpoint_url=s3.endpoint_url, bucket="kanal-archive",
                             access_key=credentials["access_key"],
                             secret_key=credentials["secret_key"])
        objects = [o.key for o in store.iter_objects()]
    indexed = set(keys)
    return {
        "realtime_keys_answered_ok": len(composed),
        "realtime_keys_with_exactly_one_document": sum(1 for k in composed
                                                       if per_key.get(k) == 1),
        "realtime_keys_with_more_than_one": sum(1 for n in per_key.values() if n > 1),
        "bulk_records": bulk, "bulk_documents_indexed": bulk_rows,
        "outputs_indexed": len(keys), "outputs_indexed_twice": len(keys) - len(indexed),
        "indexed_outputs_missing_in_s3": len(indexed - set(objects)),
        "objects_without_index_row": len(set(objects) - indexed),
        "print_outputs": printed, "print_pieces": pieces,
    }


if __name__ == "__main__":
    main()
