"""Real-time Compose -> accepted by the digital mailbox (the Kivra stand-in), idle and while
a bulk run is going (target: p99 under 2 s under load).

    python load_tests/bench_mailbox_realtime.py [--requests 20] [--bulk 300]

One KanalServer on the embedded defaults (real-time render pool and bulk worker
processes) whose mailbox channel goes to the Kivra stand-in (tests/standins/kivra.py, a
local HTTP server). Each request composes the sv-SE card invoice of a registered Kivra
recipient over gRPC; its latency runs from the Compose call to the stand-in's 201 for that
document (compose, render, archive, outbox, dispatch, OAuth, usermatch, content). First
`--requests` on the idle server, then the same while a bulk job of `--bulk` card invoices
runs. Reports p50/p99 of both.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from kanal.v1 import documents_pb2, documents_pb2_grpc, jobs_pb2, jobs_pb2_grpc  # noqa: E402
from load_tests.bench_bulk import records  # noqa: E402
from load_tests.bench_compose import summary  # noqa: E402
from server.app import KanalServer  # noqa: E402
from server.auth import ApiKey, hash_key, new_key  # noqa: E402
from server.config import Settings  # noqa: E402
from tests.integration.delivery_fixtures import sample  # noqa: E402
from tests.standins import kivra as kv  # noqa: E402

SSN = "198503042387"


class TimedKivra(kv.Kivra):
    """The stand-in, noting when each content was accepted."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.accepted_at: dict[str, float] = {}
        self.arrived = threading.Condition()

    def _content(self, payload, body):
        answer = super()._content(payload, body)
        with self.arrived:
            self.accepted_at[payload["parts"][0]["name"].removesuffix(".pdf")] = \
                time.perf_counter()
            self.arrived.notify_all()
        return answer


def run(stub, metadata, kivra: TimedKivra, data: str, count: int) -> dict:
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        t = time.perf_counter()
        document_id = stub.Compose(documents_pb2.ComposeRequest(
            layout_id="card-invoice", data_json=data), metadata=metadata,
            timeout=120).document_id
        with kivra.arrived:
            kivra.arrived.wait_for(lambda d=document_id: d in kivra.accepted_at, timeout=120)
        latencies.append(kivra.accepted_at[document_id] - t)
    return summary(latencies, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--bulk", type=int, default=300)
    args = parser.parse_args()
    secret = new_key()
    key = ApiKey(id="bench", sha256=hash_key(secret), tenant="bench", role="producer")
    metadata = (("authorization", f"Bearer {secret}"),)
    kivra = TimedKivra(registered={SSN})
    kivra.up()
    delivery = {"poll_seconds": 0.2,
                "channels": {"mailbox": {"kivra": "kivra"}},
                "providers": {"kivra": {"type": "kivra", "base_url": kivra.url,
                                        "client_id": kv.CLIENT_ID,
                                        "client_secret": kv.CLIENT_SECRET}},
                "tenants": {"bench": {"kivra": {"tenant_key": kv.TENANT_KEY}}}}
    data = sample("card-invoice", "anna@example.se", country="SE",
                  sample_file="sample-sv-SE.json", mailbox_ids={"kivra": SSN},
                  preferences=["mailbox"], consents=["email"])
    try:
        with tempfile.TemporaryDirectory(prefix="kanal-mbox-") as state, KanalServer(
            Settings(listen="127.0.0.1:0", state_dir=Path(state), api_keys=(key,),
                     delivery=delivery)
        ) as server, grpc.insecure_channel(server.address) as channel:
            documents = documents_pb2_grpc.DocumentsStub(channel)
            jobs = jobs_pb2_grpc.JobsStub(channel)
            run(documents, metadata, kivra, data, 3)  # warm
            idle = run(documents, metadata, kivra, data, args.requests)

            def messages():
                yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
                    layout_id="card-invoice", job_name="background"))
                for record_key, record, _ in records(args.bulk):
                    yield jobs_pb2.SubmitBatchRequest(
                        record=jobs_pb2.JobRecord(record_key=record_key, data_json=record))

            job_id = jobs.SubmitBatch(messages(), metadata=metadata).job_id
            request = jobs_pb2.GetJobRequest(job_id=job_id)
            while jobs.GetJob(request, metadata=metadata).counts.done == 0:
                time.sleep(0.5)  # the bulk workers are busy
            before = jobs.GetJob(request, metadata=metadata).counts.done
            loaded = run(documents, metadata, kivra, data, args.requests)
            after = jobs.GetJob(request, metadata=metadata).counts.done
            jobs.CancelJob(request, metadata=metadata)
    finally:
        kivra.down()
    result = {"idle": idle, "under_bulk_load": loaded,
              "bulk_documents_done_during_measurement": after - before}
    out = ROOT / "load_tests" / "results"
    out.mkdir(exist_ok=True)
    (out / "mailbox_realtime.json").write_text(json.dumps(result, indent=2))
    for name in ("idle", "under_bulk_load"):
        r = result[name]
        print(f"{name:16} n={r['n']} p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms")
    print(f"bulk documents finished meanwhile: {after - before}")


if __name__ == "__main__":
    main()
