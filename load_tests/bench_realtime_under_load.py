"""Real-time Compose while a bulk run is going, against the same server idle.

    python load_tests/bench_realtime_under_load.py [--requests 30] [--bulk 400]

One KanalServer on the embedded defaults (real-time render pool + bulk worker processes,
one each per core). First `--requests` sequential Compose calls of a one-page invoice
(b2b-invoice, print) on the idle server; then a bulk job of `--bulk` generated card
invoices is submitted and, while it runs, the same Compose calls again. Reports p50/p99 for both and
how far the job got meanwhile (to show it really was running); the job is cancelled at
the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from kanal.v1 import (  # noqa: E402
    common_pb2,
    documents_pb2,
    documents_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
)
from load_tests.bench_bulk import records  # noqa: E402
from load_tests.bench_compose import summary  # noqa: E402
from server.app import KanalServer  # noqa: E402
from server.auth import ApiKey, hash_key, new_key  # noqa: E402
from server.compose.layouts import LayoutRegistry  # noqa: E402
from server.config import Settings  # noqa: E402


def one_page_invoice() -> str:
    """The b2b-invoice sample: a one-page invoice (the card invoice always has two)."""
    return LayoutRegistry().get("b2b-invoice").sample_data()


def composes(stub, metadata, data: str, count: int, tag: str) -> dict:
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        t = time.perf_counter()
        response = stub.Compose(documents_pb2.ComposeRequest(
            layout_id="b2b-invoice", data_json=data, idempotency_key=f"{tag}-{i}",
            channels=[common_pb2.CHANNEL_PRINT]),
            metadata=metadata, timeout=120)
        latencies.append(time.perf_counter() - t)
        pages = [o.pages for o in response.outputs if o.pages]
        assert pages == [1], f"expected a one-page invoice, got {pages}"
    return summary(latencies, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--bulk", type=int, default=400)
    args = parser.parse_args()
    secret = new_key()
    key = ApiKey(id="bench", sha256=hash_key(secret), tenant="bench", role="producer")
    metadata = (("authorization", f"Bearer {secret}"),)
    data = one_page_invoice()
    with tempfile.TemporaryDirectory(prefix="kanal-rt-") as state, KanalServer(
        Settings(listen="127.0.0.1:0", state_dir=Path(state), api_keys=(key,))
    ) as server, grpc.insecure_channel(server.address) as channel:
        documents = documents_pb2_grpc.DocumentsStub(channel)
        jobs = jobs_pb2_grpc.JobsStub(channel)
        composes(documents, metadata, data, 3, "warm")
        idle = composes(documents, metadata, data, args.requests, "idle")

        def messages():
            yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
                layout_id="card-invoice", job_name="background"))
            for record_key, record, _ in records(args.bulk):
                yield jobs_pb2.SubmitBatchRequest(
                    record=jobs_pb2.JobRecord(record_key=record_key, data_json=record))

        job_id = jobs.SubmitBatch(messages(), metadata=metadata).job_id
        request = jobs_pb2.GetJobRequest(job_id=job_id)
        while jobs.GetJob(request, metadata=metadata).counts.done == 0:
            time.sleep(0.5)  # wait until the bulk workers are really busy
        before = jobs.GetJob(request, metadata=metadata).counts.done
        loaded = composes(documents, metadata, data, args.requests, "loaded")
        after = jobs.GetJob(request, metadata=metadata).counts.done
        jobs.CancelJob(request, metadata=metadata)
    result = {"idle": idle, "under_bulk_load": loaded,
              "bulk_documents_done_during_measurement": after - before}
    out = ROOT / "load_tests" / "results"
    out.mkdir(exist_ok=True)
    (out / "realtime_under_load.json").write_text(json.dumps(result, indent=2))
    for name in ("idle", "under_bulk_load"):
        r = result[name]
        print(f"{name:16} n={r['n']} p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms")
    print(f"bulk documents finished meanwhile: {after - before}")


if __name__ == "__main__":
    main()
