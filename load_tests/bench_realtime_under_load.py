"""Real-time Compose latency: idle at concurrency 1 and 8, and while a bulk run is going.

    python load_tests/bench_realtime_under_load.py [--size 60 | --quick] [--bulk 400]
                                                   [--layout card-invoice] [--engine typst]

One KanalServer on the embedded defaults (real-time render pool + bulk worker processes,
one each per core; `--engine` switches the layouts' PDF engine as in load_tests/engines.py).
The document is the layout's sample: for the card invoice a 2-page invoice, its default
channel plan (print + SMS). First `--size` Compose calls at concurrency 1, then `--size` at
concurrency 8, on the idle server; then a bulk job of `--bulk` generated card invoices is
submitted and, while it runs, the same calls at concurrency 1 and 8 again. Reports p50/p99
for each and how far the job got meanwhile (to show it really was running); the job is
cancelled at the end. Targets (issue 14): p99 <= 150 ms at concurrency 8 idle, <= 400 ms
under bulk load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from kanal.v1 import (  # noqa: E402
    documents_pb2,
    documents_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
)
from load_tests.bench_bulk import records  # noqa: E402
from load_tests.bench_compose import summary  # noqa: E402
from load_tests.engines import layouts_with_engine  # noqa: E402
from server.app import KanalServer  # noqa: E402
from server.auth import ApiKey, hash_key, new_key  # noqa: E402
from server.compose.layouts import LayoutRegistry  # noqa: E402
from server.config import Settings  # noqa: E402
from server.processes import run_on_jemalloc  # noqa: E402


def composes(stub, metadata, layout_id: str, data: str, count: int, tag: str,
             concurrency: int = 1) -> dict:
    def one(i: int) -> float:
        t = time.perf_counter()
        response = stub.Compose(documents_pb2.ComposeRequest(
            layout_id=layout_id, data_json=data, idempotency_key=f"{tag}-{i}"),
            metadata=metadata, timeout=120)
        elapsed = time.perf_counter() - t
        assert any(o.pages for o in response.outputs), "no PDF was made"
        return elapsed

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(count)))
    result = summary(latencies, time.perf_counter() - started)
    result["concurrency"] = concurrency
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", "--requests", type=int, default=60,
                        help="Compose calls per measurement (default 60)")
    parser.add_argument("--quick", action="store_true", help="--size 16 --bulk 150")
    parser.add_argument("--bulk", type=int, default=400)
    parser.add_argument("--layout", default="card-invoice")
    parser.add_argument("--engine", choices=("typst", "weasyprint"),
                        help="default: each layout's own (Typst for the card invoice)")
    args = parser.parse_args()
    run_on_jemalloc()  # as `kanal serve` runs (KANAL_MALLOC=system: the C library's)
    size, bulk = (16, 150) if args.quick else (args.size, args.bulk)
    secret = new_key()
    key = ApiKey(id="bench", sha256=hash_key(secret), tenant="bench", role="producer")
    metadata = (("authorization", f"Bearer {secret}"),)
    layout = LayoutRegistry().get(args.layout)
    data = layout.sample_data()
    with tempfile.TemporaryDirectory(prefix="kanal-rt-") as state:
        settings = Settings(listen="127.0.0.1:0", state_dir=Path(state) / "server",
                            api_keys=(key,))
        if args.engine:
            settings = replace(settings, layouts_dir=layouts_with_engine(args.engine,
                                                                         Path(state)))
        with KanalServer(settings) as server, grpc.insecure_channel(server.address) as channel:
            documents = documents_pb2_grpc.DocumentsStub(channel)
            jobs = jobs_pb2_grpc.JobsStub(channel)
            composes(documents, metadata, args.layout, data, 4, "warm", 2)
            idle_c1 = composes(documents, metadata, args.layout, data, size, "idle1")
            idle_c8 = composes(documents, metadata, args.layout, data, size, "idle8", 8)

            def messages():
                yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
                    layout_id="card-invoice", job_name="background"))
                for record_key, record, _ in records(bulk):
                    yield jobs_pb2.SubmitBatchRequest(
                        record=jobs_pb2.JobRecord(record_key=record_key, data_json=record))

            job_id = jobs.SubmitBatch(messages(), metadata=metadata).job_id
            request = jobs_pb2.GetJobRequest(job_id=job_id)
            while jobs.GetJob(request, metadata=metadata).counts.done == 0:
                time.sleep(0.5)  # wait until the bulk workers are really busy
            before = jobs.GetJob(request, metadata=metadata).counts.done
            loaded_c1 = composes(documents, metadata, args.layout, data, size, "loaded1")
            loaded_c8 = composes(documents, metadata, args.layout, data, size, "loaded8", 8)
            progress = jobs.GetJob(request, metadata=metadata)
            jobs.CancelJob(request, metadata=metadata)
    result = {"layout": layout.ref, "engine": args.engine or "layout's own",
              "idle_c1": idle_c1, "idle_c8": idle_c8,
              "under_bulk_load_c1": loaded_c1, "under_bulk_load_c8": loaded_c8,
              "bulk_documents_done_during_measurement": progress.counts.done - before,
              "bulk_still_running_at_end": progress.counts.done < progress.counts.total,
              "load_average": os.getloadavg()}
    out = ROOT / "load_tests" / "results"
    out.mkdir(exist_ok=True)
    (out / "realtime_under_load.json").write_text(json.dumps(result, indent=2))
    for name in ("idle_c1", "idle_c8", "under_bulk_load_c1", "under_bulk_load_c8"):
        r = result[name]
        print(f"{name:20} n={r['n']} p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
              f"{r['docs_per_s']} docs/s")
    print(f"bulk documents finished meanwhile: {result['bulk_documents_done_during_measurement']}"
          f" (still running at the end: {result['bulk_still_running_at_end']})")


if __name__ == "__main__":
    main()
