"""What a job produced: its progress (counts per record: settled chunks from their summaries,
running chunks from the index rows their documents already have; why failing chunks keep
failing) and its failed records, each with every field violation (path and message, as
Compose reports them), written with the chunk's outcome and read back for the error report.
Part of server.jobs.store.JobStore."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from server.jobs import indexed
from server.jobs.database import JobDatabase
from server.jobs.model import ChunkSummary, JobRow, Progress, RecordError
from server.jobs.tables import (
    CHUNK_CANCELLED,
    CHUNK_RUNNING,
    FINAL_STATES,
    PENDING,
    RECEIVING,
    SETTLED_CHUNKS,
    job_chunks,
    job_records,
)

STALLED_AFTER = 3
MAX_RECORD_ERRORS = 20  # field violations kept per record


class JobResults(JobDatabase):
    """A job's progress and its record errors."""

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
