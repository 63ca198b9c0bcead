"""Scale-out: a bulk job over RabbitMQ with 1 and with 2 `kanal worker` processes.

    python load_tests/bench_scaleout.py [--records 200] [--workers 1 2]

For each worker count: a KanalServer (embedded SeaweedFS, a PostgreSQL index in a schema
of its own, chunks published to a fresh RabbitMQ queue) takes the job; N `kanal worker`
subprocesses, configured only with the shared S3 endpoint and the PostgreSQL URL, run the
chunks. Reports the wall time, documents/s, how many chunks each worker ran, and checks
that every record has exactly one index row (nothing lost, nothing twice). On this 2-core
machine the workers share the cores, so the point is the spread, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from kanal.v1 import jobs_pb2, jobs_pb2_grpc  # noqa: E402
from load_tests.bench_bulk import records  # noqa: E402
from server.app import KanalServer  # noqa: E402
from server.auth import ApiKey, hash_key, new_key  # noqa: E402
from server.config import Settings  # noqa: E402
from server.credentials import embedded_credentials  # noqa: E402

RABBITMQ = os.environ.get("KANAL_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def run(workers: int, count: int) -> dict:
    schema = f"kanal_scale_{uuid.uuid4().hex[:8]}"
    queue = f"kanal.bench.{schema}"
    admin = create_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    index_url = f"{PG}?options=-csearch_path%3D{schema}"
    secret = new_key()
    key = ApiKey(id="bench", sha256=hash_key(secret), tenant="bench", role="producer")
    # chunks of 20 so that 200 records make 10 chunks to spread
    os.environ.update(KANAL_RABBITMQ_URL=RABBITMQ, KANAL_RABBITMQ_QUEUE=queue,
                      KANAL_JOB_CHUNK_SIZE="20")
    try:
        with tempfile.TemporaryDirectory(prefix="kanal-scale-") as state, KanalServer(
            Settings(listen="127.0.0.1:0", state_dir=Path(state), index_url=index_url,
                     api_keys=(key,), render_workers=0)
        ) as server:
            access, secret_key = embedded_credentials(Path(state))
            config = Path(state) / "worker.toml"
            config.write_text(
                f'[s3]\nendpoint = "{server.store.endpoint_url}"\n'
                f'bucket = "{server.store.bucket}"\n'
                f'access_key = "{access}"\nsecret_key = "{secret_key}"\n'
                f'[index]\nurl = "{index_url}"\n'
            )
            procs = [subprocess.Popen(
                [sys.executable, "-m", "server.cli", "worker", "--config", str(config)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "KANAL_LOG_FORMAT": "json"},
            ) for _ in range(workers)]
            metadata = (("authorization", f"Bearer {secret}"),)
            with grpc.insecure_channel(server.address) as channel:
                stub = jobs_pb2_grpc.JobsStub(channel)

                def messages():
                    yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
                        layout_id="card-invoice", job_name=f"scale-{workers}"))
                    for record_key, data, _ in records(count):
                        yield jobs_pb2.SubmitBatchRequest(
                            record=jobs_pb2.JobRecord(record_key=record_key, data_json=data))

                started = time.perf_counter()
                job_id = stub.SubmitBatch(messages(), metadata=metadata).job_id
                last = list(stub.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id),
                                          metadata=metadata, timeout=3600))[-1]
                elapsed = time.perf_counter() - started
            ran = []
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=120)
                found = re.search(r"ran (\d+) chunks", err)
                ran.append(int(found.group(1)) if found else None)
            with create_engine(index_url).connect() as conn:
                rows = conn.execute(text("select count(*), count(distinct document_id) "
                                         "from documents")).one()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return {
        "workers": workers, "records": count, "state": last.job.state,
        "done": last.job.counts.done, "failed": last.job.counts.failed,
        "seconds": round(elapsed, 1), "docs_per_s": round(last.job.counts.done / elapsed, 2),
        "chunks_per_worker": ran, "index_rows": rows[0], "distinct_documents": rows[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    results = [run(n, args.records) for n in args.workers]
    out = ROOT / "load_tests" / "results"
    out.mkdir(exist_ok=True)
    (out / "scaleout.json").write_text(json.dumps(results, indent=2))
    for r in results:
        print(f"{r['workers']} worker(s): {r['done']}/{r['records']} done ({r['state']}) in "
              f"{r['seconds']} s = {r['docs_per_s']} docs/s; chunks per worker "
              f"{r['chunks_per_worker']}; index rows {r['index_rows']} "
              f"({r['distinct_documents']} distinct)")


if __name__ == "__main__":
    main()
