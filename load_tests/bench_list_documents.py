"""Portal ListDocuments latency over gRPC with 1M documents indexed in PostgreSQL.

    python load_tests/bench_list_documents.py [--pg-url URL] [--rows 1000000]
        [--customer-rows 20000] [--requests 500]

Bulk-loads `--rows` document rows (one print output each) into a fresh schema of the given
PostgreSQL database with COPY, ANALYZEs, starts an in-process KanalServer (embedded S3) whose
index is that schema, and calls Portal.ListDocuments as a customer-service caller:
  - first page (50 newest) of the big customer;
  - deep pages: following page tokens through the big customer's history;
  - first page of a small customer (about 1M / 10,000 rows);
  - first page filtered by kind.
Prints p50/p99 per case and drops the schema at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.index import DocumentIndex  # noqa: E402
from kanal.v1 import portal_pb2, portal_pb2_grpc  # noqa: E402
from server.app import KanalServer  # noqa: E402
from server.config import Settings  # noqa: E402
from tests.client import Keys, channel  # noqa: E402

BASE = datetime(2020, 1, 1, tzinfo=UTC)
BIG = "big-customer"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def load(index: DocumentIndex, schema: str, rows: int, customer_rows: int) -> float:
    every = rows // customer_rows
    started = time.perf_counter()

    def customer(n: int) -> str:
        return BIG if n % every == 0 else f"c{n % 10_000}"

    index.bulk_load(
        ("bench", f"D{n:025d}", customer(n), "invoice" if n % 4 else "statement",
         "card-invoice@1.0.0", "nb-NO", BASE + timedelta(seconds=n * 7), "0" * 64, None,
         "print", None, None, None)
        for n in range(rows)
    )
    raw = index._base_engine.raw_connection()
    try:
        with raw.cursor().copy(
            f'COPY "{schema}".outputs (tenant, document_id, channel, key, media_type, sha256, '
            "size, pages, facts) FROM STDIN"
        ) as copy:
            for n in range(rows):
                copy.write_row(("bench", f"D{n:025d}", "print",
                                f"bench/{customer(n)}/2020/D{n:025d}/print.pdf",
                                "application/pdf", "0" * 64, 45_000, 2, "{}"))
        raw.commit()
    finally:
        raw.close()
    with index.engine.begin() as conn:
        conn.execute(text(f'ANALYZE "{schema}".documents'))
        conn.execute(text(f'ANALYZE "{schema}".outputs'))
    return time.perf_counter() - started


def measure(call, requests: int) -> dict[str, float]:
    latencies = []
    for i in range(requests):
        started = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - started)
    return {"n": requests,
            "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customer-rows", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()

    schema = f"kanal_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(args.pg_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    keys = Keys(("bench", "service"))
    try:
        index = DocumentIndex(args.pg_url, schema=schema)
        index.migrate()
        seconds = load(index, schema, args.rows, args.customer_rows)
        print(f"loaded {args.rows:,} documents + outputs in {seconds:.1f} s", flush=True)
        with tempfile.TemporaryDirectory() as state, KanalServer(Settings(
            listen="127.0.0.1:0", state_dir=Path(state), api_keys=keys.api_keys,
            index_url=f"{args.pg_url}?options=-csearch_path%3D{schema}",
        )) as server, channel(server.address, keys["bench", "service"]) as ch:
            stub = portal_pb2_grpc.PortalStub(ch)
            request = portal_pb2.ListDocumentsRequest
            for _ in range(20):  # warm up connections and caches
                stub.ListDocuments(request(customer_id=BIG))
            tokens = [""]
            while len(tokens) < args.requests:
                page = stub.ListDocuments(request(customer_id=BIG, page_token=tokens[-1]))
                if not page.next_page_token:
                    break
                tokens.append(page.next_page_token)
            cases = {
                "first page, big customer": lambda i: stub.ListDocuments(
                    request(customer_id=BIG)),
                "deep pages (page tokens)": lambda i: stub.ListDocuments(
                    request(customer_id=BIG, page_token=tokens[i % len(tokens)])),
                "first page, small customer": lambda i: stub.ListDocuments(
                    request(customer_id=f"c{(2 * i + 1) % 10_000}")),
                "first page, kind=statement": lambda i: stub.ListDocuments(
                    request(customer_id=BIG, kinds=["statement"])),
            }
            print(f"ListDocuments over gRPC, page size 50, {args.rows:,} rows, big customer "
                  f"{args.customer_rows:,} rows, PostgreSQL {args.pg_url.rsplit('@', 1)[-1]}")
            for name, call in cases.items():
                print(f"  {name:30s} {measure(call, args.requests)}", flush=True)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
