"""Queries that run all day against tables that keep their history: the dispatcher's
fallback query (`due_fallbacks`, at every dispatch round after a document or a failure),
the print queue's waiting pieces (`pending`, before every batch listing and cut-off check),
one batch's pieces (its build and acknowledgement) and the batches left `closing` (every
close_due and close_now), a tenant's newest deliveries (ListDeliveries, a page of 100;
filtered by a state or by dead letter that few rows match), the job runner's unfinished
jobs (`unfinished_jobs`, every scheduling round), an SMS survey answer through a gateway the
tenants share (`latest_for_sms` naming no tenant), a receipt whose provider id was never
recorded, matched among its recipient's waiting deliveries (`waiting_for`), and the job
gauges (every metrics scrape), with 0, 10,000 and 100,000 rows of history (failed and
suppressed deliveries with no fallback left, and another tenant's SMS still `sent`, their
receipt never come; pieces already batched; acknowledged batches; completed jobs, each with
its done chunk; answered invitations), on SQLite and on PostgreSQL. `delivery_write`: one
delivery written and moved twice, in one transaction (load_tests/bench_delivery_write.py
measures the indexes' part of it more closely).

    python load_tests/bench_history_queries.py [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

PostgreSQL runs in a database of its own (`kanal_bench_history`, made and dropped here),
analysed after each fill as autovacuum would. Figures here (2 cores), ms per query at
100,000 rows of history, before -> after the indexes: due_fallbacks 24-46 -> 0.3 on SQLite,
22-27 -> 0.7-1.1 on PostgreSQL (`ix_deliveries_fallback_due`); the print queue's waiting
pieces 12.1 -> 0.09 on SQLite, 13.9 -> 0.71 on PostgreSQL, and a 500-piece batch's pieces
14.5 -> 1.9 and 18.6 -> 3.5 (`ix_print_pieces_batch`), the same at 0 rows of history after.
SQLite, then PostgreSQL: the runner's unfinished jobs 13.2 -> 0.19 and 13.8 -> 0.59
(`ix_kanal_jobs_state`); a tenant's newest deliveries 45 -> 2.1 on SQLite
(`ix_deliveries_tenant_newest`), 2.4 either way on PostgreSQL (the primary key read
backwards); an SMS answer naming no tenant 8.8 -> 0.18 and 12.6 -> 0.67
(`ix_survey_invitations_reply`); the batches left closing 8.5 -> 0.08 and 9.4 -> 0.41
(`ix_print_batches_state`). Ranges of four runs: a receipt
matched by its recipient 17-36 -> 0.2-0.6 and 21-77 -> 0.4-0.9 (`ix_deliveries_recipient`);
a listing by a state few rows have 28-81 -> 0.1-0.3 on SQLite, 0.4-0.7 either way on
PostgreSQL (`ix_deliveries_tenant_state`), by dead letter 26-96 -> 0.1-0.2 and 52-107 ->
0.3-0.7 (`ix_deliveries_dead_letter`). The job gauges count every job at each scrape:
3.5-7.8 ms on SQLite and 17-29 on PostgreSQL at 100,000 finished jobs, left so (a bank
runs tens of bulk jobs a day; a running total kept beside the jobs would have to stay
right through upgrades and cancellations). `delivery_write` stays within the noise
(0.2-0.6 ms on SQLite, 0.9-3.8 on PostgreSQL).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, insert, make_url, select, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.index import DocumentIndex  # noqa: E402
from server.delivery.store import DeliveryStore  # noqa: E402
from server.delivery.tables import deliveries  # noqa: E402
from server.jobs.gauges import job_gauges  # noqa: E402
from server.jobs.store import JobStore  # noqa: E402
from server.jobs.tables import job_chunks, jobs  # noqa: E402
from server.printing.queue import (  # noqa: E402
    PrintQueue,
    PrintSettings,
    print_batches,
    print_pieces,
)
from server.surveys.store import SurveyStore  # noqa: E402
from server.surveys.tables import survey_invitations  # noqa: E402

SIZES = (0, 10_000, 100_000)
NOW = datetime.now(UTC)


def failed_delivery(n: int) -> dict:
    return dict(delivery_id=f"{n:026d}", tenant="t", document_id=f"d{n}",
                customer_id=f"c{n % 1000}", kind="invoice", channel="sms", provider="",
                recipient="", archive_key="k", sha256="0" * 64, media_type="text/plain",
                message_id="m", provider_message_id="",
                state=("failed", "suppressed")[n % 2], state_at=NOW, reason="",
                attempts=0, next_attempt_at=NOW, created_at=NOW, expires_at=NOW,
                fallbacks="", dead_letter=False, details="{}")


def unanswered_sms(n: int) -> dict:
    """An SMS the operator took but whose receipt never came: it stays `sent`."""
    return dict(failed_delivery(n), delivery_id=f"S{n:025d}", tenant="u", provider="smpp",
                recipient=f"+47{n % 50_000:08d}", state="sent")


def batched_piece(n: int) -> dict:
    return dict(piece_id=f"p{n:010d}", document_id=f"d{n:010d}", tenant="t", printshop="s",
                profile="default", archive_key="k", pdf_sha256="0" * 64, pages=1,
                envelope="C5", sides="simplex", sheets=1, inserts="", country="NO",
                postal_code="0150", queued_at=NOW, batch_id=f"B{n // 500}", reprint_of=None)


def finished_job(n: int) -> dict:
    return dict(job_id=f"{n:026d}", tenant="t", job_name="", layout_id="l", layout_version="1",
                channels="", print_profile="", priority=0, state="completed", total=10,
                chunks=1, chunk_size=50, created_at=NOW, started_at=NOW, finished_at=NOW)


def done_chunk(n: int) -> dict:
    return dict(job_id=f"{n:026d}", chunk=0, state="done", attempts=1, summary="{}")


def answered_invitation(n: int) -> dict:
    return dict(invitation_id=f"{n:026d}", tenant=f"t{n % 3}", customer_id=f"c{n}",
                survey_id="nps", touchpoint="invoice", touchpoint_ref="", locale="nb",
                sender_name="", document_id=f"d{n}", mobile=f"+47{n % 50_000:08d}",
                reply_code="NPS", experiment_id="", variant="", idempotency_key=None,
                created_at=NOW, expires_at=NOW, responded_at=NOW)


def acknowledged_batch(n: int) -> dict:
    return dict(batch_id=f"A{n:010d}", tenant="t", printshop="s", profile="default",
                envelope="C5", inserts="", state="acknowledged", reason="cutoff",
                closed_at=NOW, pieces=1, sheets=1, pages=1, first_sequence=n,
                last_sequence=n, files="{}", acknowledged_at=NOW)


def ms_per_call(call: Callable[[], object], times: int = 50) -> float:
    call()
    started = time.perf_counter()
    for _ in range(times):
        call()
    return (time.perf_counter() - started) * 1000 / times


def measure(url: str) -> list[tuple[int, dict[str, float]]]:
    index = DocumentIndex(url)
    engine = index.engine
    store = DeliveryStore(engine)
    store.create_schema()
    queue = PrintQueue(index, PrintSettings.from_dict({}))
    queue.create_schema()
    job_store = JobStore(url)
    job_store.create_schema()
    surveys = SurveyStore(engine)
    surveys.create_schema()

    def closing_batches() -> list:  # BatchService._batch_ids, at every close_due
        with engine.connect() as conn:
            return conn.execute(select(print_batches.c.batch_id).where(
                print_batches.c.state == "closing")).all()

    def one_batch() -> list:
        with engine.connect() as conn:
            return conn.execute(select(print_pieces).where(
                print_pieces.c.batch_id == "B7")).all()

    gauges = job_gauges(job_store)
    written = iter(range(10**9))

    def delivery_write() -> None:
        """What every index on `deliveries` costs a delivery: its row written `queued`,
        then moved to `sending` and `sent` (one transaction, so the figure is the
        indexes' work and not the disk's flush)."""
        n = next(written)
        row = dict(failed_delivery(n), delivery_id=f"W{n:025d}", tenant="w", provider="smtp",
                   recipient=f"r{n}@example.com", state="queued")
        with engine.begin() as conn:
            conn.execute(insert(deliveries), row)
            for state in ("sending", "sent"):
                conn.execute(update(deliveries).where(
                    deliveries.c.delivery_id == row["delivery_id"]).values(state=state))

    out, have = [], 0
    for size in SIZES:
        with engine.begin() as conn:
            for start in range(have, size, 5000):
                end = min(start + 5000, size)
                conn.execute(insert(deliveries), [failed_delivery(n) for n in range(start, end)])
                conn.execute(insert(deliveries), [unanswered_sms(n) for n in range(start, end)])
                conn.execute(insert(print_pieces), [batched_piece(n) for n in range(start, end)])
                conn.execute(insert(jobs), [finished_job(n) for n in range(start, end)])
                conn.execute(insert(job_chunks), [done_chunk(n) for n in range(start, end)])
                conn.execute(insert(survey_invitations),
                             [answered_invitation(n) for n in range(start, end)])
                conn.execute(insert(print_batches),
                             [acknowledged_batch(n) for n in range(start, end)])
            if engine.dialect.name == "postgresql":
                for table in ("deliveries", "print_pieces", "print_batches", "kanal_jobs",
                              "kanal_job_chunks", "survey_invitations"):
                    conn.execute(text(f"analyze {table}"))
        job_store.create_schema()  # a start: the finished jobs' totals counted afresh
        have = size
        out.append((size, {"due_fallbacks": ms_per_call(store.due_fallbacks),
                           "print_pending": ms_per_call(queue.pending),
                           "print_batch_pieces": ms_per_call(one_batch),
                           "print_closing": ms_per_call(closing_batches),
                           "deliveries_list": ms_per_call(lambda: store.list("t", limit=101)),
                           "unfinished_jobs": ms_per_call(job_store.unfinished_jobs),
                           "sms_reply_any_tenant": ms_per_call(lambda: surveys.latest_for_sms(
                               None, "+4700000007", "NPS", NOW)),
                           "receipt_waiting_for": ms_per_call(lambda: store.waiting_for(
                               "smpp", "+4700000007")),
                           "deliveries_list_state": ms_per_call(lambda: store.list(
                               "t", states=["bounced"], limit=101)),
                           "deliveries_list_dead_letter": ms_per_call(lambda: store.list(
                               "t", dead_letter=True, limit=101)),
                           "job_gauges": ms_per_call(gauges),
                           "delivery_write": ms_per_call(delivery_write, 500)}))
    job_store.close()
    index.close()
    return out


@contextmanager
def own_database(server_url: str, name: str) -> Iterator[str]:
    """A database `name` of its own on the PostgreSQL server of `server_url`, made afresh
    and dropped at the end (never rows of a database others use) -> its URL."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"drop database if exists {name}"))
        conn.execute(text(f"create database {name}"))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"drop database if exists {name} with (force)"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="a server to make the benchmark's own database on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {"sqlite": measure(f"sqlite:///{folder}/index.db")}
    with own_database(args.postgres, "kanal_bench_history") as url:
        results["postgresql"] = measure(url)
    for database, figures in results.items():
        for size, queries in figures:
            print(f"{database:<11} {size:>7} rows of history: " + ", ".join(
                f"{query} {ms:.2f} ms" for query, ms in queries.items()))


if __name__ == "__main__":
    main()
