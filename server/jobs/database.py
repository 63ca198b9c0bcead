"""The job store's footing: an engine on the index database, the job tables' schema, a
transaction whose lost database is `Unavailable` (retryable) rather than an internal error,
and the job rows themselves (one job, the jobs still to look after). The records, chunks
and results of a job build on it (server.jobs.records, .chunks, .results); together they
are server.jobs.store.JobStore."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from server.errors import NotFound, Unavailable
from server.jobs.model import JobHeader, JobRow
from server.jobs.tables import (
    ACTIVE_STATES,
    CANCELLED,
    CANCELLING,
    SETTLED_CHUNKS,
    job_chunks,
    jobs,
    metadata,
)
from server.schema import add_missing_columns, create_missing_indexes

CHUNK_SIZE = 50


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class JobDatabase:
    """The engine, the schema and the job rows."""

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
            add_missing_columns(conn, metadata)  # columns newer than their table
            create_missing_indexes(conn, metadata)  # and indexes newer than a table
            # A job cancelled before chunks were settled (older servers) finishes settling;
            # its totals are counted again from its chunks (server.jobs.totals), as what it
            # left may not be what they were counted from.
            unsettled = select(job_chunks.c.job_id).where(
                job_chunks.c.state.not_in(SETTLED_CHUNKS))
            conn.execute(update(jobs).where(jobs.c.state == CANCELLED,
                                            jobs.c.job_id.in_(unsettled))
                         .values(state=CANCELLING, totals_version=None))

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

    # --- job rows --------------------------------------------------------------------------

    def get(self, job_id: str, tenant: str | None = None) -> JobRow:
        with self._connect() as conn:
            return job_row(self._job_record(conn, job_id, tenant))

    @staticmethod
    def _job_record(conn: Connection, job_id: str, tenant: str | None = None) -> Any:
        """The job's whole row (a mapping); NotFound when there is none (for this tenant)."""
        row = conn.execute(select(jobs).where(jobs.c.job_id == job_id)).mappings().first()
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise NotFound(f"no job {job_id!r}")
        return row

    def unfinished_jobs(self) -> list[JobRow]:
        """Jobs to (re)schedule or settle: queued, running or cancelling, highest priority,
        then oldest, first."""
        with self._connect() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.state.in_(ACTIVE_STATES))
                                .order_by(jobs.c.priority.desc(), jobs.c.created_at)).mappings()
            return [job_row(r) for r in rows]


def job_row(row: Any) -> JobRow:
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
