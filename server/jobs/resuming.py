"""A cancelled job's records never composed: listing them, and resuming the job to compose them.

A record of a cancelled job is one of three things, and the job's counts say how many of
each (server.jobs.cancelling settled them from the index): a document (its index row
exists), failed (its error is on its row), or cancelled (neither: the job was cancelled
before it). Only the cancelled ones are "not done":

- `cancelled_records` lists their keys, in submission order, a page at a time: what a bank
  resubmits as a new job instead of resuming;
- `resume` runs them in the same job. The job goes back to `queued`; each cancelled chunk
  that holds cancelled records becomes `pending` again, keeping the summary it was settled
  with (its documents and failures stand, server.jobs.totals counts only the rest as
  pending), in one transaction with the job's state and totals. When a worker starts such
  a chunk (server.jobs.chunks.start_chunk) the summary is dropped, again with the totals,
  and the run counts the chunk afresh: a record whose document is indexed is replayed from
  the index, never composed again (server.jobs.worker, the path of every re-run chunk), a
  record that failed keeps its error and is not run again, the rest are composed. So the
  counts are exact at every step: `cancelled` goes down as `pending` goes up, and `done`
  never counts a document twice. A chunk whose records were all settled stays `cancelled`.

A resumed job is an ordinary queued job: it can be cancelled again, and resumed again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from server.errors import FailedPrecondition, Unavailable
from server.jobs import indexed, totals
from server.jobs.database import job_row
from server.jobs.model import ChunkSummary, JobRow
from server.jobs.tables import (
    CANCELLED,
    CANCELLING,
    CHUNK_CANCELLED,
    FINAL_STATES,
    PENDING,
    QUEUED,
    job_chunks,
    job_records,
    jobs,
)

if TYPE_CHECKING:
    from server.jobs.store import JobStore

IN_BATCH = 500  # chunks per IN (...) list


def resume(store: JobStore, job_id: str, tenant: str) -> JobRow:
    """A cancelled job runs its cancelled records (see the module); returns the job, now
    `queued` (or ended at once, when it had none left: completed or completed_with_errors).
    FailedPrecondition for a job that is not `cancelled`, naming its state; NotFound for
    another tenant's."""
    job = store.get(job_id, tenant)
    if job.state != CANCELLED:
        raise not_cancelled(job)
    with store._connect() as conn:
        resumed = conn.execute(update(jobs).where(
            jobs.c.job_id == job_id, jobs.c.state == CANCELLED, jobs.c.chunks > 0)
            .values(state=QUEUED, finished_at=None)).rowcount
        if not resumed:  # resumed by another call since it was read (or still receiving)
            raise not_cancelled(job_row(store._job_record(conn, job_id)))
        requeued = _requeue(conn, job)
    if not requeued:  # cancelled after its last record: it ends as it would have
        store.finish_job_if_done(job_id)
    return store.get(job_id, tenant)


def _requeue(conn: Connection, job: JobRow) -> int:
    """Make the job's cancelled chunks that hold cancelled records pending again, and move
    the totals by what that changes; returns how many. Nothing else writes a cancelled
    job's chunks (a worker that gets one sees the job is not running and settles only
    chunks pending or running), so the rows read here are the rows updated: checked by
    the row counts, a difference rolls everything back (Unavailable: try again)."""
    delta = totals.Totals()
    kept: list[int] = []  # documents or failures stand: pending with their summary
    emptied: list[int] = []  # nothing ran: pending as if never run
    for chunk, summary_json in conn.execute(
            select(job_chunks.c.chunk, job_chunks.c.summary).where(
                job_chunks.c.job_id == job.job_id, job_chunks.c.state == CHUNK_CANCELLED)):
        summary = ChunkSummary.from_json(summary_json)
        if summary.documents + summary.failed >= totals.records_in(job, chunk):
            continue
        ran = bool(summary.documents or summary.failed)
        (kept if ran else emptied).append(chunk)
        delta.add(totals.contribution(job, chunk, PENDING, summary_json if ran else None))
        delta.add(totals.contribution(job, chunk, CHUNK_CANCELLED, summary_json), -1)
    for chunks, summary in ((kept, job_chunks.c.summary), (emptied, None)):
        for start in range(0, len(chunks), IN_BATCH):
            batch = chunks[start:start + IN_BATCH]
            changed = conn.execute(update(job_chunks).where(
                job_chunks.c.job_id == job.job_id, job_chunks.c.chunk.in_(batch),
                job_chunks.c.state == CHUNK_CANCELLED).values(
                state=PENDING, summary=summary, failures=0, last_error=None, retry_at=None,
                stalled=None)).rowcount
            if changed != len(batch):
                raise Unavailable(f"job {job.job_id}: its chunks changed while it was "
                                  "resumed; nothing was resumed, try again")
    if kept or emptied:
        totals.add(conn, job, delta)
    return len(kept) + len(emptied)


def not_cancelled(job: JobRow) -> FailedPrecondition:
    """Why a job that is not `cancelled` cannot be resumed, naming its state."""
    if job.state in FINAL_STATES:
        why = f"is already {job.state}: nothing to resume"
    elif job.state == CANCELLING:
        why = ("is cancelling: its running chunks are still being settled; resume it once "
               "it is cancelled")
    else:
        why = f"is {job.state}, not cancelled: nothing to resume"
    return FailedPrecondition(f"job {job.job_id} {why}")


def cancelled_records(store: JobStore, job_id: str, tenant: str, after_seq: int,
                      limit: int) -> tuple[list[str], int | None]:
    """The keys of the job's cancelled records (in a cancelled chunk, no error, no index
    row) after `after_seq`, at most `limit`, in submission order; and the seq to continue
    after (None: no more). Reads only the cancelled chunks whose summary says they hold
    cancelled records, one chunk's records and index rows at a time; NotFound for another
    tenant's job."""
    from server.jobs.worker import document_id_for

    job = store.get(job_id, tenant)
    first_chunk = max(after_seq + 1, 0) // job.chunk_size
    found: list[tuple[int, str]] = []
    with store._connect() as conn:
        chunks = conn.execute(
            select(job_chunks.c.chunk, job_chunks.c.summary).where(
                job_chunks.c.job_id == job_id, job_chunks.c.state == CHUNK_CANCELLED,
                job_chunks.c.chunk >= first_chunk).order_by(job_chunks.c.chunk)).all()
        for chunk, summary_json in chunks:
            if not totals.contribution(job, chunk, CHUNK_CANCELLED, summary_json).cancelled:
                continue
            lo = chunk * job.chunk_size
            rows = conn.execute(
                select(job_records.c.seq, job_records.c.record_key).where(
                    job_records.c.job_id == job_id, job_records.c.seq >= max(lo, after_seq + 1),
                    job_records.c.seq < lo + job.chunk_size,
                    job_records.c.error_message.is_(None)).order_by(job_records.c.seq)).all()
            ids = {document_id_for(job_id, job.created_at, key): (seq, key)
                   for seq, key in rows}
            committed = indexed.committed_ids(conn, job.header.tenant, list(ids))
            found += [record for document_id, record in ids.items()
                      if document_id not in committed]
            if len(found) > limit:
                break
    more = len(found) > limit
    found = found[:limit]
    return [key for _, key in found], found[-1][0] if more else None
