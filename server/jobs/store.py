"""Durable bulk jobs: a header and a stream of records -> rows, and rows -> progress.

Jobs live in the same database as the archive index (SQLite embedded, PostgreSQL in
production) but in their own tables, created here on start and kept apart from the archive's
schema migrations:

- `jobs`: one row per job (tenant, layout, options, state, timestamps).
- `job_records`: one row per record (job, seq, record key, data), written in batches of a
  few hundred as the stream arrives so a 500k-record job never sits in memory; a failed
  record keeps its errors here (every field path with its message, as Compose reports them).
- `job_chunks`: one row per chunk of `chunk_size` consecutive records: its state (pending,
  running, done, or cancelled) and, once done or cancelled, its summary (documents, failed,
  pages, per channel). A chunk's summary is replaced when it is re-run, so re-running never
  counts twice; job totals are sums over chunks.

A cancelled job is `cancelling` until every chunk is settled, then `cancelled`
(server.jobs.cancelling).

A chunk is the unit of work and of retry. The index row of each document is the commit
point of a record (see server.jobs.worker); chunk state here only steers scheduling.
A chunk that fails for a reason outside its records (S3 or the database down, a worker
process killed) is retried after an exponential back-off (`retry_delay`: RETRY_BASE_SECONDS
doubling up to RETRY_MAX_SECONDS), kept in its row so a restarted server keeps to it; from
the STALLED_AFTER-th failure in a row the job reports itself stalled, with the reason.
Columns added after a table was first created are added on start (`create_schema`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from archive.tables import UTCDateTime
from server.errors import Conflict, NotFound, Unavailable
from server.jobs import indexed
from server.jobs.model import (  # noqa: F401 (re-exported: the store hands these out)
    ChunkSummary,
    JobHeader,
    JobRow,
    Progress,
    Record,
    RecordError,
)

CHUNK_SIZE = 50
INSERT_BATCH = 500
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0
STALLED_AFTER = 3
MAX_RECORD_ERRORS = 20  # field violations kept per record

RECEIVING, QUEUED, RUNNING = "receiving", "queued", "running"
CANCELLING = "cancelling"  # cancelled; chunks that workers hold are not settled yet
COMPLETED, COMPLETED_WITH_ERRORS, CANCELLED = "completed", "completed_with_errors", "cancelled"
FINAL_STATES = frozenset({COMPLETED, COMPLETED_WITH_ERRORS, CANCELLED})
ACTIVE_STATES = (QUEUED, RUNNING, CANCELLING)  # the runner looks after these jobs
# chunk states
PENDING, CHUNK_RUNNING, DONE, CHUNK_CANCELLED = "pending", "running", "done", "cancelled"
SETTLED_CHUNKS = (DONE, CHUNK_CANCELLED)  # chunks with a summary; nothing more will run

metadata = MetaData()

jobs = Table(
    "kanal_jobs", metadata,
    Column("job_id", String(26), primary_key=True),
    Column("tenant", String(100), nullable=False),
    Column("job_name", String(200), nullable=False, default=""),
    Column("layout_id", String(100), nullable=False),
    Column("layout_version", String(50), nullable=False),
    Column("channels", String(100), nullable=False, default=""),  # "print,email" or ""
    Column("print_profile", String(100), nullable=False, default=""),
    Column("priority", Integer, nullable=False, default=0),
    Column("state", String(30), nullable=False),
    Column("total", Integer, nullable=False, default=0),
    Column("chunks", Integer, nullable=False, default=0),
    Column("chunk_size", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
)

job_records = Table(
    "kanal_job_records", metadata,
    Column("job_id", String(26), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("data_json", Text, nullable=False),
    Column("error_field", Text),
    Column("error_message", Text),
    Column("error_detail", Text),  # JSON [[field, message], ...]: every violation
    PrimaryKeyConstraint("job_id", "seq"),
    # A record key names one record of a job; the database enforces it, so submitting
    # 500k records keeps no set of keys in memory.
    UniqueConstraint("job_id", "record_key", name="uq_kanal_job_records_key"),
)

job_chunks = Table(
    "kanal_job_chunks", metadata,
    Column("job_id", String(26), nullable=False),
    Column("chunk", Integer, nullable=False),
    Column("state", String(20), nullable=False),  # pending, running, done, cancelled
    Column("attempts", Integer, nullable=False, default=0),
    Column("summary", Text),  # JSON ChunkSummary once done
    Column("failures", Integer),  # failed runs in a row (infrastructure, not records)
    Column("last_error", Text),  # why the last run failed
    Column("retry_at", UTCDateTime()),  # not before then
    PrimaryKeyConstraint("job_id", "chunk"),
)


def retry_delay(failures: int) -> float:
    """Seconds before the next run of a chunk that failed `failures` times in a row."""
    return min(RETRY_BASE_SECONDS * 2 ** max(failures - 1, 0), RETRY_MAX_SECONDS)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class JobStore:
    """Job, record and chunk rows in the index database."""

    def __init__(self, url: str, *, chunk_size: int = CHUNK_SIZE):
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_timeout": 5}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        self.url = url
        self.chunk_size = chunk_size
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_schema(self) -> None:
        with self._connect() as conn:
            metadata.create_all(conn)
            for table in (job_records, job_chunks):  # columns newer than the table
                have = {c["name"] for c in inspect(conn).get_columns(table.name)}
                for column in table.columns:
                    if column.name not in have:
                        kind = column.type.compile(dialect=conn.dialect)
                        conn.execute(text(
                            f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
            # A job cancelled before chunks were settled (older servers) finishes settling.
            unsettled = select(job_chunks.c.job_id).where(
                job_chunks.c.state.not_in(SETTLED_CHUNKS))
            conn.execute(update(jobs).where(jobs.c.state == CANCELLED,
                                            jobs.c.job_id.in_(unsettled))
                         .values(state=CANCELLING))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            raise Unavailable(f"job store unavailable: {exc.orig or exc}") from exc
        except sa_exc.TimeoutError as exc:  # no pooled connection came free
            raise Unavailable(f"job store busy: {exc}") from exc

    # --- submitting ----------------------------------------------------------------------

    def create_job(self, job_id: str, header: JobHeader, created_at: datetime) -> None:
        with self._connect() as conn:
            conn.execute(insert(jobs), [{
                "job_id": job_id, "tenant": header.tenant, "job_name": header.job_name,
                "layout_id": header.layout_id, "layout_version": header.layout_version,
                "channels": ",".join(header.channels), "print_profile": header.print_profile,
                "priority": header.priority, "state": RECEIVING, "total": 0, "chunks": 0,
                "chunk_size": self.chunk_size, "created_at": created_at,
            }])

    def add_records(self, job_id: str, records: Iterable[tuple[str, str]]) -> int:
        """Store (record_key, data_json) pairs in batches as they come; returns the count.
        A record key used twice in a job raises Conflict (and the job stays unfinished)."""
        seq = 0
        batch: list[dict[str, Any]] = []
        for key, data in records:
            batch.append({"job_id": job_id, "seq": seq, "record_key": key, "data_json": data})
            seq += 1
            if len(batch) >= INSERT_BATCH:
                self._insert_records(batch)
                batch = []
        if batch:
            self._insert_records(batch)
        return seq

    def _insert_records(self, batch: list[dict[str, Any]]) -> None:
        try:
            with self._connect() as conn:
                conn.execute(insert(job_records), batch)
        except sa_exc.IntegrityError as exc:
            raise Conflict(f"record_key {self._repeated_key(batch)!r} appears twice in the "
                           "job") from exc

    def _repeated_key(self, batch: list[dict[str, Any]]) -> str:
        """Which key of a refused batch was already used: within the batch or before it."""
        keys = [row["record_key"] for row in batch]
        twice = [key for key, n in Counter(keys).items() if n > 1]
        if twice:
            return twice[0]
        with self._connect() as conn:
            stored = conn.execute(select(job_records.c.record_key).where(
                job_records.c.job_id == batch[0]["job_id"],
                job_records.c.record_key.in_(keys)).limit(1)).scalar()
        return str(stored)

    def seal(self, job_id: str, total: int) -> None:
        """All records are stored: make the chunks and queue the job."""
        count = (total + self.chunk_size - 1) // self.chunk_size
        with self._connect() as conn:
            for start in range(0, count, INSERT_BATCH):
                conn.execute(insert(job_chunks), [
                    {"job_id": job_id, "chunk": n, "state": "pending", "attempts": 0}
                    for n in range(start, min(count, start + INSERT_BATCH))
                ])
            state = QUEUED if total else COMPLETED
            conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(
                total=total, chunks=count))
            conn.execute(update(jobs).where(  # a job cancelled meanwhile stays cancelled
                jobs.c.job_id == job_id, jobs.c.state == RECEIVING).values(
                state=state, finished_at=None if total else datetime.now(UTC)))

    def discard(self, job_id: str) -> None:
        """A submission that failed half-way: drop what was stored."""
        with self._connect() as conn:
            conn.execute(job_records.delete().where(job_records.c.job_id == job_id))
            conn.execute(job_chunks.delete().where(job_chunks.c.job_id == job_id))
            conn.execute(jobs.delete().where(jobs.c.job_id == job_id))

    # --- reading ---------------------------------------------------------------------------

    def get(self, job_id: str, tenant: str | None = None) -> JobRow:
        with self._connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.job_id == job_id)).mappings().first()
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise NotFound(f"no job {job_id!r}")
        return _job_row(row)

    def progress(self, job_id: str, tenant: str | None = None) -> Progress:
        """Counts per record: settled chunks (done or cancelled) from their summaries, running
        chunks from the index rows their documents already have (a row is a record's commit
        point); the records of a cancelled chunk that made no document are `cancelled`."""
        job = self.get(job_id, tenant)
        summary = ChunkSummary()
        running_chunks: list[int] = []
        records = {PENDING: 0, CHUNK_RUNNING: 0, CHUNK_CANCELLED: 0}
        failing: list[tuple[int, int, str, datetime | None]] = []
        with self._connect() as conn:
            rows = conn.execute(select(job_chunks.c.chunk, job_chunks.c.state,
                                       job_chunks.c.summary, job_chunks.c.failures,
                                       job_chunks.c.last_error, job_chunks.c.retry_at)
                                .where(job_chunks.c.job_id == job_id))
            for chunk, state, summary_json, failures, last_error, retry_at in rows:
                size = max(0, min(job.chunk_size, job.total - chunk * job.chunk_size))
                if state in SETTLED_CHUNKS and summary_json:
                    mine = ChunkSummary.from_json(summary_json)
                    summary.add(mine)
                    if state == CHUNK_CANCELLED:
                        records[CHUNK_CANCELLED] += max(0, size - mine.documents - mine.failed)
                    continue
                records[CHUNK_RUNNING if state == CHUNK_RUNNING else PENDING] += size
                if state == CHUNK_RUNNING:
                    running_chunks.append(chunk)
                if (failures or 0) >= STALLED_AFTER and job.state not in FINAL_STATES:
                    failing.append((chunk, failures, last_error or "", retry_at))
            committed = self._committed(conn, job, running_chunks)
        running = records[CHUNK_RUNNING] - committed
        pending = records[PENDING]
        if job.state == RECEIVING:  # no chunks yet
            pending = job.total - summary.documents - summary.failed
        stalled, retry_at = "", None
        if failing:
            chunk, failures, reason, retry_at = min(failing, key=lambda f: (-f[1], f[0]))
            stalled = (f"{len(failing)} chunk(s) keep failing; chunk {chunk} failed "
                       f"{failures} times in a row: {reason}")
            retry_at = min((f[3] for f in failing if f[3] is not None), default=None)
        return Progress(job, job.total, pending, running, summary.documents + committed,
                        summary.failed, summary, stalled, retry_at, records[CHUNK_CANCELLED])

    @staticmethod
    def _committed(conn: Connection, job: JobRow, chunks: list[int]) -> int:
        """Documents of these running chunks whose index row exists already."""
        if not chunks:
            return 0
        ids = indexed.document_ids(conn, job_records, job.job_id, job.created_at,
                                   job.chunk_size, chunks)
        return indexed.committed_count(conn, job.header.tenant, ids)

    def errors(self, job_id: str, tenant: str, after_seq: int, limit: int
               ) -> tuple[list[RecordError], int | None]:
        """Failed records after `after_seq`, at most `limit` records, each as one error per
        field violation; and the seq to continue after (None: no more)."""
        self.get(job_id, tenant)
        with self._connect() as conn:
            rows = conn.execute(
                select(job_records.c.seq, job_records.c.record_key, job_records.c.error_field,
                       job_records.c.error_message, job_records.c.error_detail)
                .where(job_records.c.job_id == job_id, job_records.c.seq > after_seq,
                       job_records.c.error_message.is_not(None))
                .order_by(job_records.c.seq).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        found = []
        for r in rows:
            detail = json.loads(r.error_detail) if r.error_detail else [
                [r.error_field or "", r.error_message]]
            found += [RecordError(r.record_key, field, message) for field, message in detail]
        return found, rows[-1].seq if more else None

    def unfinished_jobs(self) -> list[JobRow]:
        """Jobs to (re)schedule or settle: queued, running or cancelling, highest priority,
        then oldest, first."""
        with self._connect() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.state.in_(ACTIVE_STATES))
                                .order_by(jobs.c.priority.desc(), jobs.c.created_at)).mappings()
            return [_job_row(r) for r in rows]

    def pending_chunks(self, job_id: str) -> list[int]:
        """Chunks not settled (including those 'running' when a previous server died)."""
        return self.due_chunks(job_id, None)[0]

    def unsettled_chunks(self, job_id: str) -> list[tuple[int, str]]:
        """(chunk, state) of every chunk still pending or running."""
        with self._connect() as conn:
            return [(n, state) for n, state in conn.execute(
                select(job_chunks.c.chunk, job_chunks.c.state)
                .where(job_chunks.c.job_id == job_id,
                       job_chunks.c.state.not_in(SETTLED_CHUNKS))
                .order_by(job_chunks.c.chunk))]

    def due_chunks(self, job_id: str, now: datetime | None
                   ) -> tuple[list[int], datetime | None]:
        """Chunks not settled whose retry time (if they failed) has come by `now` (None:
        all), and the earliest retry time still to come."""
        due, later = [], None
        with self._connect() as conn:
            for n, retry_at in conn.execute(
                    select(job_chunks.c.chunk, job_chunks.c.retry_at)
                    .where(job_chunks.c.job_id == job_id,
                           job_chunks.c.state.not_in(SETTLED_CHUNKS))
                    .order_by(job_chunks.c.chunk)):
                if now is None or retry_at is None or retry_at <= now:
                    due.append(n)
                elif later is None or retry_at < later:
                    later = retry_at
        return due, later

    def chunk_failed(self, job_id: str, chunk: int, reason: str,
                     now: datetime | None = None) -> float:
        """A run of the chunk failed for a reason outside its records: count it, keep the
        reason and set the retry time. Returns the back-off in seconds."""
        now = now or datetime.now(UTC)
        with self._connect() as conn:
            failures = (conn.execute(select(job_chunks.c.failures).where(
                job_chunks.c.job_id == job_id, job_chunks.c.chunk == chunk)).scalar() or 0) + 1
            delay = retry_delay(failures)
            conn.execute(update(job_chunks).where(
                job_chunks.c.job_id == job_id, job_chunks.c.chunk == chunk,
                job_chunks.c.state.not_in(SETTLED_CHUNKS)).values(
                state=PENDING, failures=failures, last_error=reason[:500],
                retry_at=now + timedelta(seconds=delay)))
        return delay

    # --- working ---------------------------------------------------------------------------

    def chunk_records(self, job_id: str, chunk: int, chunk_size: int) -> list[Record]:
        lo = chunk * chunk_size
        with self._connect() as conn:
            rows = conn.execute(
                select(job_records.c.seq, job_records.c.record_key, job_records.c.data_json)
                .where(job_records.c.job_id == job_id,
                       and_(job_records.c.seq >= lo, job_records.c.seq < lo + chunk_size))
                .order_by(job_records.c.seq)).all()
        return [Record(r.seq, r.record_key, r.data_json) for r in rows]

    def start_chunk(self, job_id: str, chunk: int) -> bool:
        """Mark a chunk running; False when the job was cancelled or the chunk is settled
        (the caller then settles it: `settle_chunk`)."""
        with self._connect() as conn:
            state = conn.execute(select(jobs.c.state).where(jobs.c.job_id == job_id)).scalar()
            if state not in (QUEUED, RUNNING):
                return False
            started = conn.execute(update(job_chunks).where(
                job_chunks.c.job_id == job_id, job_chunks.c.chunk == chunk,
                job_chunks.c.state.not_in(SETTLED_CHUNKS))
                .values(state=CHUNK_RUNNING, attempts=job_chunks.c.attempts + 1))
            if not started.rowcount:
                return False
            if state == QUEUED:
                conn.execute(update(jobs).where(jobs.c.job_id == job_id, jobs.c.state == QUEUED)
                             .values(state=RUNNING, started_at=datetime.now(UTC)))
        return True

    def finish_chunk(self, job_id: str, chunk: int, summary: ChunkSummary,
                     errors: dict[int, list[tuple[str, str]]]) -> None:
        """Record a chunk's outcome in one transaction: its summary and its records' errors
        (seq -> [(field path, message), ...]); a re-run replaces both."""
        with self._connect() as conn:
            write_errors(conn, job_id, errors)
            conn.execute(update(job_chunks).where(
                job_chunks.c.job_id == job_id, job_chunks.c.chunk == chunk)
                .values(state=DONE, summary=summary.to_json(), failures=0, last_error=None,
                        retry_at=None))

    def finish_job_if_done(self, job_id: str) -> str | None:
        """When every chunk is settled, set the final state (a cancelling job: cancelled);
        returns it (None: not yet)."""
        with self._connect() as conn:
            left = conn.execute(select(func.count()).select_from(job_chunks).where(
                job_chunks.c.job_id == job_id,
                job_chunks.c.state.not_in(SETTLED_CHUNKS))).scalar()
            if left:
                return None
            cancelled = conn.execute(update(jobs).where(
                jobs.c.job_id == job_id, jobs.c.state == CANCELLING)
                .values(state=CANCELLED))
            if cancelled.rowcount:
                return CANCELLED
            failed = conn.execute(select(func.count()).select_from(job_records).where(
                job_records.c.job_id == job_id,
                job_records.c.error_message.is_not(None))).scalar()
            final = COMPLETED_WITH_ERRORS if failed else COMPLETED
            result = conn.execute(update(jobs).where(
                jobs.c.job_id == job_id, jobs.c.state.in_((QUEUED, RUNNING)))
                .values(state=final, finished_at=datetime.now(UTC)))
            return final if result.rowcount else None

    def cancel(self, job_id: str, tenant: str) -> JobRow:
        """Stop a job (server.jobs.cancelling.cancel); returns it as it is now."""
        from server.jobs import cancelling

        return cancelling.cancel(self, job_id, tenant)

    def is_cancelled(self, job_id: str) -> bool:
        """The job was cancelled (a running chunk stops and settles itself)."""
        return self.get(job_id).state in (CANCELLING, CANCELLED)

    def settle_chunk(self, job_id: str, chunk: int,
                     errors: dict[int, list[tuple[str, str]]] | None = None,
                     states: tuple[str, ...] = (PENDING, CHUNK_RUNNING)) -> bool:
        """A chunk of a cancelled job that will not run (on) becomes `cancelled`
        (server.jobs.cancelling.settle_chunk); whether it was settled by this call."""
        from server.jobs import cancelling

        return cancelling.settle_chunk(self, job_id, chunk, errors or {}, states)


def write_errors(conn: Connection, job_id: str,
                  errors: dict[int, list[tuple[str, str]]]) -> None:
    """Each failed record's violations (seq -> [(field path, message)]) on its row."""
    rows = []
    for seq, violations in errors.items():
        kept = [(f[:200], m[:500]) for f, m in violations[:MAX_RECORD_ERRORS]] or [("", "")]
        message = "; ".join(f"{f}: {m}" if f else m for f, m in kept)
        rows.append({"b_seq": seq, "b_f": kept[0][0], "b_m": message[:2000],
                     "b_d": json.dumps(kept, ensure_ascii=False)})
    if rows:
        conn.execute(update(job_records).where(
            job_records.c.job_id == job_id,
            job_records.c.seq == bindparam("b_seq")).values(
            error_field=bindparam("b_f"), error_message=bindparam("b_m"),
            error_detail=bindparam("b_d")), rows)


def _job_row(row: Any) -> JobRow:
    return JobRow(
        job_id=row["job_id"],
        header=JobHeader(
            tenant=row["tenant"], layout_id=row["layout_id"],
            layout_version=row["layout_version"], job_name=row["job_name"],
            channels=tuple(c for c in row["channels"].split(",") if c),
            print_profile=row["print_profile"], priority=row["priority"]),
        state=row["state"], total=row["total"], chunks=row["chunks"],
        chunk_size=row["chunk_size"], created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"],
    )
