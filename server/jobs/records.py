"""A job's records: the job's row and its records stored as the SubmitBatch stream arrives
(in batches, so a 500k-record job never sits in memory; a record key used twice is
INVALID_ARGUMENT naming the record, `records[i]`, 0-based after the header), the chunks
made when the stream is sealed, and a chunk's records read back by the worker that runs
it. Part of server.jobs.store.JobStore."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from server.errors import InvalidInput, quote
from server.jobs.database import JobDatabase
from server.jobs.model import JobHeader, Record, RecordOptions
from server.jobs.tables import COMPLETED, QUEUED, RECEIVING, job_chunks, job_records, jobs
from server.jobs.totals import Totals

INSERT_BATCH = 500


class JobRecords(JobDatabase):
    """Submitting a job and reading its records back."""

    # --- submitting ----------------------------------------------------------------------

    def create_job(self, job_id: str, header: JobHeader, created_at: datetime) -> None:
        with self._connect() as conn:
            conn.execute(insert(jobs), [{
                "job_id": job_id, "tenant": header.tenant, "job_name": header.job_name,
                "layout_id": header.layout_id, "layout_version": header.layout_version,
                "channels": ",".join(header.channels), "print_profile": header.print_profile,
                "priority": header.priority, "state": RECEIVING, "total": 0, "chunks": 0,
                "chunk_size": self.chunk_size, "created_at": created_at,
                "totals_version": 0, **Totals().values(),  # server.jobs.totals
            }])

    def add_records(self, job_id: str,
                    records: Iterable[tuple[str, str] | tuple[str, str, RecordOptions]]
                    ) -> int:
        """Store (record_key, data_json[, options]) in batches as they come; returns the count.
        A record key used twice in a job raises InvalidInput naming the second record,
        `records[i].record_key` (0-based), and the first (the job stays unfinished)."""
        seq = 0
        batch: list[dict[str, Any]] = []
        for key, data, *options in records:
            batch.append({"job_id": job_id, "seq": seq, "record_key": key, "data_json": data,
                          "options_json": options[0].to_json() if options else None})
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
            raise self._repeated_key(batch) from exc

    def _repeated_key(self, batch: list[dict[str, Any]]) -> InvalidInput:
        """The refusal of a batch holding a key already used, within the batch or before
        it: `records[i].record_key` (i: the record's 0-based position among the job's
        records, its `seq`) naming the key and the record that had it first."""
        first: dict[str, int] = {}
        for row in batch:
            key, seq = row["record_key"], row["seq"]
            if key in first:
                return _used_twice(key, seq, first[key])
            first[key] = seq
        with self._connect() as conn:
            stored = conn.execute(
                select(job_records.c.record_key, job_records.c.seq).where(
                    job_records.c.job_id == batch[0]["job_id"],
                    job_records.c.record_key.in_(list(first))).limit(1)).first()
        if stored is None:  # not a repeated key after all: say what the database said
            return InvalidInput.field("records", "could not be stored as sent")
        return _used_twice(stored.record_key, first[stored.record_key], stored.seq)

    def seal(self, job_id: str, total: int,
             claim: Callable[[Connection], None] | None = None) -> None:
        """All records are stored: make the chunks and queue the job. `claim` runs first in
        the same transaction (server.jobs.idempotency records the job's key there); what
        it raises rolls the seal back."""
        count = (total + self.chunk_size - 1) // self.chunk_size
        with self._connect() as conn:
            if claim is not None:
                claim(conn)
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

    def discard_abandoned(self, before: datetime) -> list[str]:
        """Discard the jobs still receiving that were created before `before`: a SubmitBatch
        stream is never open longer than its limit (Limits.submit_max_seconds), so such a
        job's call ended without sealing it (its server died mid-stream) and its client got
        no job id. A job sealed meanwhile is left alone. Returns the discarded ids."""
        with self._connect() as conn:
            stale = conn.execute(select(jobs.c.job_id).where(
                jobs.c.state == RECEIVING, jobs.c.created_at < before)).scalars().all()
        discarded = []
        for job_id in stale:
            with self._connect() as conn:  # one transaction each: the row decides
                if conn.execute(jobs.delete().where(
                        jobs.c.job_id == job_id, jobs.c.state == RECEIVING)).rowcount:
                    conn.execute(job_records.delete().where(job_records.c.job_id == job_id))
                    conn.execute(job_chunks.delete().where(job_chunks.c.job_id == job_id))
                    discarded.append(job_id)
        return discarded

    def chunk_records(self, job_id: str, chunk: int, chunk_size: int) -> list[Record]:
        lo = chunk * chunk_size
        with self._connect() as conn:
            rows = conn.execute(
                select(job_records.c.seq, job_records.c.record_key, job_records.c.data_json,
                       job_records.c.error_message.is_not(None).label("failed"),
                       job_records.c.options_json)
                .where(job_records.c.job_id == job_id,
                       and_(job_records.c.seq >= lo, job_records.c.seq < lo + chunk_size))
                .order_by(job_records.c.seq)).all()
        return [Record(r.seq, r.record_key, r.data_json, bool(r.failed),
                       RecordOptions.from_json(r.options_json)) for r in rows]


def _used_twice(key: str, seq: int, first_seq: int) -> InvalidInput:
    return InvalidInput.field(
        f"records[{seq}].record_key",
        f"{quote(key)} is already the key of records[{first_seq}]; a record key is unique "
        "within the job (the document id derives from it)")
