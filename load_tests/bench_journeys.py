"""Events through journeys: events/s accepted, timers due/s fired, memory; the sends composed
by the normal bulk path.

    python load_tests/bench_journeys.py [--events 100000] [--customers 2000] [--sqlite]

Starts a Kanal server in this process (embedded S3, a fresh PostgreSQL database on
127.0.0.1:5432 unless --sqlite, local job workers) with one journey: `parcel_delivered` ->
wait 2 hours -> an NPS-style e-mail (category survey, a new instance per parcel). Then:

1. `--events` parcel_delivered events over `--customers` customers are published through
   `PublishEventStream` (gRPC, one stream per 10,000) -> events/s accepted (each event is
   stored, and its journey instance and first timer written, in the same transaction);
2. the injected clock moves 3 hours; the timers are fired (`JourneyStage.tick`) -> timers
   due/s: every wait, then every send step, which the contact policy lets through once per
   customer (1 survey per 90 days) and suppresses, with its reason, for the rest;
3. the surviving sends go to bulk jobs and the job workers compose them (e-mail channel) ->
   documents/s through the normal bulk path.

Prints one JSON object (also load_tests/results/journeys.json, with the load average: the
machine is shared); RSS is this process's peak (server, gRPC and timers; the job
workers are separate processes, their peak is reported apart).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, make_url, select, text  # noqa: E402

import server  # noqa: E402,F401 - fork support before grpc loads
from kanal.v1 import events_pb2, events_pb2_grpc  # noqa: E402
from server.app import KanalServer  # noqa: E402
from server.compose.layouts import DEFAULT_LAYOUTS_DIR  # noqa: E402
from server.config import Settings  # noqa: E402
from server.journeys.tables import sends, suppressions, timers  # noqa: E402
from tests.client import Keys, channel  # noqa: E402

PG = os.environ.get("KANAL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TENANT = "posten"
JOURNEY = """
name = "nps-parcel"
version = 1
trigger = "parcel_delivered"
category = "survey"
reentry = "every"
[[steps]]
id = "settle"
type = "wait"
hours = 2
[[steps]]
id = "ask"
type = "send"
layout = "welcome-letter"
layout_version = "2.0.0"
channels = ["email"]
[steps.data]
sender = "$customer.sender"
customer = "$customer.recipient"
[steps.data.letter]
date = "$trigger.occurred_date"
subject = "Hvordan var leveringen?"
paragraphs = ["Svar på én kort undersøkelse."]
highlights = []
signatures = [{ name = "Kundeservice", title = "Posten" }]
"""


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--compose-timeout", type=float, default=1800)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still drop the database
    sample = json.loads((DEFAULT_LAYOUTS_DIR / "welcome-letter/2.0.0/sample.json").read_text())
    keys = Keys((TENANT, "producer"))
    database = None
    results: dict[str, object] = {"events": args.events, "customers": args.customers,
                                  "database": "sqlite" if args.sqlite else "postgresql"}
    with tempfile.TemporaryDirectory(prefix="kanal-journeys-") as tmp:
        journeys = Path(tmp) / "journeys" / TENANT / "nps-parcel"
        journeys.mkdir(parents=True)
        (journeys / "1.toml").write_text(JOURNEY)
        index_url = None
        if not args.sqlite:
            database = f"kanal_journeys_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
            index_url = make_url(PG).set(database=database).render_as_string(
                hide_password=False)
        clock = Clock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        settings = Settings(listen="127.0.0.1:0", state_dir=Path(tmp) / "state",
                            api_keys=keys.api_keys, index_url=index_url, render_workers=0,
                            metrics_listen="off", delivery={"dispatch": False},
                            journeys={"dir": str(Path(tmp) / "journeys"),
                                      "poll_seconds": 3600})
        try:
            with KanalServer(settings, clock=clock) as kanal:
                run(kanal, keys, sample, args, clock, results)
        finally:
            if database:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    results["context"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average": os.getloadavg(),
                          "at": datetime.now(UTC).isoformat()}
    out = ROOT / "load_tests" / "results"
    out.mkdir(exist_ok=True)
    (out / "journeys.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


def run(kanal: KanalServer, keys: Keys, sample: dict, args: argparse.Namespace,
        clock: Clock, results: dict[str, object]) -> None:
    def customer(n: int) -> str:
        return f"c{n % args.customers:06d}"

    def requests(start: int, stop: int):
        for n in range(start, stop):
            who = customer(n)
            attributes = ""
            if n < args.customers:  # the first event of each customer brings the profile
                recipient = {**sample["customer"], "customer_id": who,
                             "email": f"{who}@example.no"}
                attributes = json.dumps({"country": "NO", "sender": sample["sender"],
                                         "recipient": recipient})
            yield events_pb2.PublishEventRequest(
                customer_id=who, event_type="parcel_delivered", idempotency_key=f"p{n}",
                data_json=json.dumps({"parcel_id": f"P{n:08d}", "touchpoint": "locker"}),
                attributes_json=attributes)

    started = time.perf_counter()
    accepted = 0
    with channel(kanal.address, keys[TENANT, "producer"]) as ch:
        stub = events_pb2_grpc.EventsStub(ch)
        for start in range(0, args.events, 10_000):
            response = stub.PublishEventStream(
                requests(start, min(args.events, start + 10_000)), timeout=3600)
            accepted += response.accepted
    seconds = time.perf_counter() - started
    results["publish"] = {"accepted": accepted, "seconds": round(seconds, 1),
                          "events_per_second": round(accepted / seconds)}
    results["rss_mb_after_publish"] = round(rss_mb())

    clock.now += timedelta(hours=3)
    started = time.perf_counter()
    fired = sent = suppressed = 0
    while True:
        result = kanal.journeys.journeys.run_due(limit=1000, rounds=1)
        if not result.fired:
            break
        fired, sent, suppressed = (fired + result.fired, sent + result.sends,
                                   suppressed + result.suppressed)
    seconds = time.perf_counter() - started
    submitted = kanal.journeys.submitter.flush()
    results["timers"] = {"fired": fired, "seconds": round(seconds, 1),
                         "timers_per_second": round(fired / seconds),
                         "sends": sent, "suppressed": suppressed, "submitted": submitted}
    results["rss_mb_after_timers"] = round(rss_mb())

    engine = kanal.index.engine
    with engine.begin() as conn:
        document_ids = list(conn.execute(select(sends.c.document_id)).scalars())
        results["rows"] = {
            "pending_timers": conn.execute(select(func.count()).select_from(timers).where(
                timers.c.state == "pending")).scalar(),
            "suppressions": conn.execute(select(func.count()).select_from(suppressions)
                                         ).scalar()}
    started = time.perf_counter()
    deadline = time.monotonic() + args.compose_timeout
    done = 0
    while time.monotonic() < deadline:
        done = sum(1 for d in document_ids if kanal.index.get(TENANT, d) is not None) \
            if len(document_ids) <= 5000 else _count_indexed(engine, document_ids)
        if done >= len(document_ids):
            break
        time.sleep(2)
    seconds = time.perf_counter() - started
    results["bulk_path"] = {"documents": done, "expected": len(document_ids),
                            "seconds": round(seconds, 1),
                            "documents_per_second": round(done / seconds, 1) if seconds else 0,
                            "worker_peak_rss_mb": round(max(
                                kanal.job_runner.peak_rss_kb.values(), default=0) / 1024)}
    results["rss_mb_peak"] = round(rss_mb())


def _count_indexed(engine, ids: list[str]) -> int:
    from archive.tables import documents

    with engine.begin() as conn:
        return sum(conn.execute(select(func.count()).select_from(documents).where(
            documents.c.document_id.in_(ids[n:n + 1000]))).scalar() for n in range(0, len(ids),
                                                                                    1000))


if __name__ == "__main__":
    sys.exit(main())
