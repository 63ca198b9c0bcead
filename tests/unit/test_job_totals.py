"""A job's progress is read from running totals kept on its row (server.jobs.totals), so a
poll costs the same for 10 chunks as for 10,000 (WatchJob polls twice a second per
watcher), and answers exactly what summing the chunks' summaries answered: counts, pages per
channel, cancelled records; a job from before the totals is counted once from its chunks.
Real SQLite job stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, MetaData, Table, create_engine, event, inspect, select, update

from archive.index import DocumentIndex
from server.jobs import totals
from server.jobs.model import ChunkSummary, JobHeader
from server.jobs.store import JobStore
from server.jobs.tables import job_chunks, job_records, jobs

HEADER = JobHeader(tenant="t", layout_id="card-invoice", layout_version="1.0.0")
CREATED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def new_store(tmp_path, name: str = "index.db", chunk_size: int = 2) -> JobStore:
    url = f"sqlite:///{tmp_path / name}"
    DocumentIndex(url).create_schema()
    store = JobStore(url, chunk_size=chunk_size)
    store.create_schema()
    return store


def sealed_job(store: JobStore, job_id: str, records: int) -> None:
    store.create_job(job_id, HEADER, CREATED)
    store.add_records(job_id, [(f"r{n}", "{}") for n in range(records)])
    store.seal(job_id, records)


def summary(documents: int, failed: int, print_pages: int = 0, email: int = 0
            ) -> ChunkSummary:
    channels = {}
    if print_pages:
        channels["print"] = [documents, print_pages]
    if email:
        channels["email"] = [email, 0]
    return ChunkSummary(documents, failed, print_pages, channels)


def finish(store: JobStore, job_id: str, chunk: int, done: ChunkSummary) -> None:
    assert store.start_chunk(job_id, chunk)
    store.finish_chunk(job_id, chunk, done, {})


def reads_summaries(statement: str) -> bool:
    """The statement reads chunk summaries (not: filters on their presence)."""
    return "kanal_job_chunks.summary" in statement.split("FROM")[0]


def answers(store: JobStore, job_id: str) -> tuple:
    p = store.progress(job_id)
    return (p.total, p.pending, p.running, p.done, p.failed, p.cancelled, p.summary.pages,
            sorted(p.summary.channels.items()))


def test_totals_follow_finishing_rerunning_and_cancelling(tmp_path):
    store = new_store(tmp_path)
    sealed_job(store, "J1", 9)  # chunks of 2, 2, 2, 2, 1
    finish(store, "J1", 0, summary(2, 0, print_pages=3))
    finish(store, "J1", 1, summary(1, 1, print_pages=2, email=1))
    assert store.start_chunk("J1", 2)  # running, nothing indexed yet
    assert answers(store, "J1") == (9, 3, 2, 3, 1, 0, 5,
                                    [("email", [1, 0]), ("print", [3, 5])])
    # a redelivered chunk 1 finishes again, differently: replaced, not added
    store.finish_chunk("J1", 1, summary(2, 0, print_pages=4), {})
    assert answers(store, "J1") == (9, 3, 2, 4, 0, 0, 7, [("print", [4, 7])])
    store.cancel("J1", "t")  # chunks 3 and 4 never ran: settled, cancelled, at once
    assert answers(store, "J1") == (9, 0, 2, 4, 0, 3, 7, [("print", [4, 7])])
    assert store.settle_chunk("J1", 2)  # nothing of it indexed: its 2 records cancelled
    assert not store.settle_chunk("J1", 2)  # settled once only
    assert answers(store, "J1") == (9, 0, 0, 4, 0, 5, 7, [("print", [4, 7])])
    assert store.get("J1").state == "cancelled"
    store.close()


def test_a_poll_reads_the_same_whatever_the_jobs_size(tmp_path):
    """Statements and SQLite VM steps (rows read, in the engine or handed to Python) per
    poll: a job of 10 chunks and one of 400, both with one chunk running, the rest done.
    Summing the chunks' summaries read 40 times as much for the big one."""
    store = new_store(tmp_path, chunk_size=1)
    for job_id, chunks in (("SMALL", 10), ("BIG", 400)):
        sealed_job(store, job_id, chunks)
        for chunk in range(chunks - 1):
            finish(store, job_id, chunk, summary(1, 0, print_pages=2))
        assert store.start_chunk(job_id, chunks - 1)
    statements: list[str] = []
    steps = [0]

    def count_steps(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        def step() -> int:
            steps[0] += 1
            return 0
        dbapi_connection.set_progress_handler(step, 10)

    store.engine.dispose()  # new connections, each counting
    event.listen(store.engine, "connect", count_steps)
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    cost = {}
    for job_id in ("SMALL", "BIG"):
        store.progress(job_id)  # the running chunk's ids are read once and kept
        statements.clear()
        steps[0] = 0
        progress = store.progress(job_id)
        cost[job_id] = (len(statements), steps[0])
        assert (progress.done, progress.running) == (progress.total - 1, 1)
        assert progress.summary.channels == {"print": [progress.total - 1,
                                                       2 * (progress.total - 1)]}
        assert not any(reads_summaries(s) for s in statements), statements
    assert cost["BIG"][0] == cost["SMALL"][0], cost
    assert cost["BIG"][1] <= cost["SMALL"][1] * 1.5 + 20, cost
    store.close()


def test_a_job_from_before_the_totals_is_counted_once_from_its_chunks(tmp_path):
    store = new_store(tmp_path)
    sealed_job(store, "OLD", 7)
    finish(store, "OLD", 0, summary(2, 0, print_pages=4, email=2))
    finish(store, "OLD", 1, summary(1, 1, print_pages=1))
    assert store.start_chunk("OLD", 2)
    store.cancel("OLD", "t")  # chunk 3 settled as cancelled
    expected = answers(store, "OLD")
    with store.engine.begin() as conn:  # as an older server left it: no totals
        conn.execute(update(jobs).where(jobs.c.job_id == "OLD").values(
            **{c: None for c in totals.Totals().values()}, totals_version=None))
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    assert answers(store, "OLD") == expected
    assert any(reads_summaries(s) for s in statements)  # counted once...
    statements.clear()
    assert answers(store, "OLD") == expected
    assert not any(reads_summaries(s) for s in statements)  # ...then kept
    with store.engine.begin() as conn:  # and the next change moves them from there
        conn.execute(update(jobs).where(jobs.c.job_id == "OLD").values(
            totals_version=None))
    assert store.settle_chunk("OLD", 2)
    assert answers(store, "OLD")[5] == expected[5] + 2
    store.close()


def test_an_older_database_gets_the_totals_columns_and_indexes(tmp_path):
    """A database made before the totals: the job tables without the new columns and
    indexes. Starting the store adds them, and its jobs report as they did."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = MetaData()
    for table in (jobs, job_records, job_chunks):
        Table(table.name, old, *[Column(c.name, c.type, primary_key=c.primary_key,
                                        nullable=c.nullable) for c in table.columns
                                 if not c.name.startswith("totals_")])
    engine = create_engine(url)
    old.create_all(engine)
    done = json.dumps({"documents": 2, "failed": 0, "pages": 6, "channels": {
        "print": [2, 6]}})
    with engine.begin() as conn:
        conn.execute(jobs.insert().values(
            job_id="J0", tenant="t", job_name="", layout_id="card-invoice",
            layout_version="1.0.0", channels="", print_profile="", priority=0,
            state="running", total=5, chunks=3, chunk_size=2, created_at=CREATED))
        conn.execute(job_chunks.insert(), [
            {"job_id": "J0", "chunk": 0, "state": "done", "attempts": 1, "summary": done},
            {"job_id": "J0", "chunk": 1, "state": "pending", "attempts": 0, "summary": None},
            {"job_id": "J0", "chunk": 2, "state": "pending", "attempts": 0, "summary": None}])
    engine.dispose()
    DocumentIndex(url).create_schema()
    store = JobStore(url)
    store.create_schema()
    p = store.progress("J0")
    assert (p.total, p.pending, p.running, p.done, p.summary.pages) == (5, 3, 0, 2, 6)
    assert p.summary.channels == {"print": [2, 6]}
    with store.engine.connect() as conn:
        names = {i["name"] for i in inspect(conn).get_indexes(job_chunks.name)}
        version = conn.execute(select(jobs.c.totals_version)).scalar()
    assert {"ix_kanal_job_chunks_state", "ix_kanal_job_chunks_failures"} <= names
    assert version == 0
    store.close()


class _Deadlock(Exception):
    """What psycopg raises for PostgreSQL's deadlock_detected: its SQLSTATE on the error."""

    sqlstate = "40P01"


def _unavailable(orig: Exception):
    from sqlalchemy.exc import OperationalError

    from server.errors import Unavailable

    try:
        raise OperationalError("UPDATE kanal_job_chunks ...", {}, orig)
    except OperationalError as exc:
        try:
            raise Unavailable(f"job store unavailable: {orig}") from exc
        except Unavailable as wrapped:
            return wrapped


def test_a_cancel_chosen_as_a_deadlocks_victim_is_made_again(tmp_path, monkeypatch):
    # CI on PostgreSQL: a worker starting a chunk (chunk row, then job row) and CancelJob
    # (job row, then chunk rows) deadlocked; the cancel answered UNAVAILABLE. PostgreSQL
    # rolled the whole cancel back, so it is made again.
    from server.errors import Unavailable
    from server.jobs import cancelling

    store = new_store(tmp_path)
    sealed_job(store, "J1", 6)
    real, calls = cancelling._cancel_once, []

    def first_deadlocks(*args):
        calls.append(args)
        if len(calls) == 1:
            raise _unavailable(_Deadlock("deadlock detected"))
        return real(*args)

    monkeypatch.setattr(cancelling, "_cancel_once", first_deadlocks)
    assert store.cancel("J1", "t").state in ("cancelling", "cancelled")
    assert len(calls) == 2
    # any other loss of the database is the caller's to retry, at once
    monkeypatch.setattr(cancelling, "_cancel_once",
                        lambda *a: (_ for _ in ()).throw(_unavailable(OSError("gone"))))
    with pytest.raises(Unavailable):
        store.cancel("J1", "t")
