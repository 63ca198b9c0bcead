"""What the outbox's newer indexes cost a delivery's writes: deliveries written in chunks of
50 (one transaction each, as a bulk chunk writes them), then each moved to `sending` and
`sent` (one statement per row, as the dispatcher moves it), on a `deliveries` table holding
100,000 rows of history, with and without the indexes named below (dropped and created
again between rounds, rounds alternating, the best of each kept), on SQLite and PostgreSQL.

    python load_tests/bench_delivery_write.py [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

PostgreSQL runs in a database of its own (`kanal_bench_delivery_write`, made and dropped
here). Figures: see the commit that added the indexes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, insert, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "load_tests"))

from bench_history_queries import (  # noqa: E402
    failed_delivery,
    own_database,
    unanswered_sms,
)

from server.delivery.store import DeliveryStore  # noqa: E402
from server.delivery.tables import deliveries  # noqa: E402

INDEXES = ("ix_deliveries_recipient", "ix_deliveries_tenant_state", "ix_deliveries_dead_letter")
HISTORY, DELIVERIES, CHUNK, ROUNDS = 100_000, 2_000, 50, 4


def round_ms(engine, first: int) -> float:  # noqa: ANN001
    """ms per delivery: written queued, then moved to sending and sent."""
    rows = [dict(failed_delivery(n), delivery_id=f"W{n:025d}", tenant="w", provider="smtp",
                 recipient=f"r{n}@example.com", state="queued")
            for n in range(first, first + DELIVERIES)]
    started = time.perf_counter()
    for start in range(0, DELIVERIES, CHUNK):
        chunk = rows[start:start + CHUNK]
        with engine.begin() as conn:
            conn.execute(insert(deliveries), chunk)
        with engine.begin() as conn:
            for state in ("sending", "sent"):
                for row in chunk:
                    conn.execute(update(deliveries).where(
                        deliveries.c.delivery_id == row["delivery_id"]).values(state=state))
    return (time.perf_counter() - started) * 1000 / DELIVERIES


def measure(url: str, indexes: tuple[str, ...]) -> dict[str, float]:
    engine = create_engine(url)
    DeliveryStore(engine).create_schema()
    with engine.begin() as conn:
        for start in range(0, HISTORY, 5000):
            ns = range(start, start + 5000)
            conn.execute(insert(deliveries), [failed_delivery(n) for n in ns])
            conn.execute(insert(deliveries), [unanswered_sms(n) for n in ns])
    best = {"with": float("inf"), "without": float("inf")}
    for n in range(ROUNDS * 2):
        kind = ("with", "without")[n % 2]
        with engine.begin() as conn:
            for name in indexes:
                conn.execute(text(f"drop index if exists {name}"))
        if kind == "with":
            DeliveryStore(engine).create_schema()
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("analyze deliveries"))
        best[kind] = min(best[kind], round_ms(engine, n * DELIVERIES))
    engine.dispose()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="a server to make the benchmark's own database on")
    parser.add_argument("--indexes", default=",".join(INDEXES),
                        help="the indexes measured, comma-separated")
    args = parser.parse_args()
    indexes = tuple(args.indexes.split(","))
    with tempfile.TemporaryDirectory() as folder:
        results = {"sqlite": measure(f"sqlite:///{folder}/index.db", indexes)}
    with own_database(args.postgres, "kanal_bench_delivery_write") as url:
        results["postgresql"] = measure(url, indexes)
    for database, best in results.items():
        print(f"{database:<11} ms per delivery (written, moved twice), best of {ROUNDS}: "
              f"without {best['without']:.3f}, with {best['with']:.3f} ({', '.join(indexes)})")


if __name__ == "__main__":
    main()
