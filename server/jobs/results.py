"""What a job produced: its progress (counts per record: settled chunks from the job's
running totals of their summaries, running chunks from the index rows their documents
already have; why running chunks are stalled, server.jobs.stalls, and why failing chunks
keep failing) and its failed records, each with every field violation (path and message,
as Compose reports them), written with the chunk's outcome and read back for the error
report; and a cancelled job's records never composed (server.jobs.resuming). Part of
server.jobs.store.JobStore."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from server.jobs import indexed, totals
from server.jobs.database import JobDatabase, job_row
from server.jobs.model import JobRow, Progress, RecordError
from server.jobs.tables import CHUNK_RUNNING, FINAL_STATES, job_chunks, job_keys, job_records

STALLED_AFTER = 3
MAX_RECORD_ERRORS = 20  # field violations kept per record


class JobResults(JobDatabase):
    """A job's progress and its record errors."""

    def progress(self, job_id: str, tenant: str | None = None) -> Progress:
        """Counts per record: settled chunks (done or cancelled) from the job's running
        totals of their summaries (server.jobs.totals: one row, whatever the job's size),
        running chunks from the index rows their documents already have (a row is a record's
        commit point); the records of a cancelled chunk that made no document are
        `cancelled`. Reads the job's row, its running chunks and its failing chunks (two
        indexed queries), never every chunk; and the job's idempotency key (its
        `kanal_job_keys` row, by primary key; "" when submitted without one)."""
        with self._connect() as conn:
            row = self._job_record(conn, job_id, tenant)
            job = job_row(row)
            counted = totals.from_row(row) or totals.count_once(conn, job)
            # sorted here: ORDER BY chunk would have SQLite walk the primary key instead
            running = sorted(conn.execute(
                select(job_chunks.c.chunk, job_chunks.c.stalled).where(
                    job_chunks.c.job_id == job_id, job_chunks.c.state == CHUNK_RUNNING,
                    job_chunks.c.summary.is_(None))).all())
            running_chunks = [chunk for chunk, _ in running]
            failing: list[tuple[int, int, str, datetime | None]] = []
            if job.state not in FINAL_STATES:
                failing = [(r.chunk, r.failures, r.last_error or "", r.retry_at)
                           for r in conn.execute(
                               select(job_chunks.c.chunk, job_chunks.c.failures,
                                      job_chunks.c.last_error, job_chunks.c.retry_at)
                               .where(job_chunks.c.job_id == job_id,
                                      job_chunks.c.failures >= STALLED_AFTER,
                                      job_chunks.c.summary.is_(None)))]
            committed = self._committed(conn, job, running_chunks)
            key = conn.execute(select(job_keys.c.idempotency_key)
                               .where(job_keys.c.job_id == job_id)).scalar() or ""
        summary = counted.summary
        in_running = sum(totals.records_in(job, chunk) for chunk in running_chunks)
        pending = job.total - counted.settled - in_running
        reasons = [reason for _, reason in running if reason]  # server.jobs.stalls
        retry_at = None
        if failing:
            chunk, failures, reason, retry_at = min(failing, key=lambda f: (-f[1], f[0]))
            reasons.append(f"{len(failing)} chunk(s) keep failing; chunk {chunk} failed "
                           f"{failures} times in a row: {reason}")
            retry_at = min((f[3] for f in failing if f[3] is not None), default=None)
        stalled = "; ".join(reasons)
        return Progress(job, job.total, pending, in_running - committed,
                        summary.documents + committed,
                        summary.failed, summary, stalled, retry_at, counted.cancelled, key)

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


    def cancelled_records(self, job_id: str, tenant: str, after_seq: int, limit: int
                          ) -> tuple[list[str], int | None]:
        """Keys of the records never composed because the job was cancelled, after
        `after_seq`, at most `limit`; and the seq to continue after (None: no more)
        (server.jobs.resuming.cancelled_records)."""
        from server.jobs import resuming

        return resuming.cancelled_records(self, job_id, tenant, after_seq,  # type: ignore[arg-type]
                                          limit)


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
