"""Cancelling a job: stop starting chunks, settle every chunk, end in `cancelled`.

A job being cancelled is `cancelling` until each of its chunks is settled, then `cancelled`
(final, and only then `finished_at`), so the job's counts at its final state are exactly
the documents that exist:

- chunks never started are settled by `cancel` itself, in the same transaction as the state;
- a running chunk's worker stops at its next check (server.jobs.worker) and settles its own
  chunk, with the errors of the records that failed before it stopped;
- chunks that ran before without finishing (a failed run waiting for its retry, or one left
  'running' by a dead server or worker) are settled by the runner (server.jobs.runner).

Settling a chunk marks it `cancelled` with a summary counted from the document index
(server.jobs.indexed): whichever run made a document, its index row is the commit point, so
nothing is counted twice or missed. Settling is idempotent, and settles nothing of a job
resumed meanwhile (server.jobs.resuming). Each settled chunk moves the job's totals
(server.jobs.totals) in the same transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from server.errors import FailedPrecondition, Unavailable
from server.jobs import indexed, totals
from server.jobs.database import job_row
from server.jobs.model import ChunkSummary, JobRow
from server.jobs.results import write_errors
from server.jobs.tables import (
    CANCELLED,
    CANCELLING,
    CHUNK_CANCELLED,
    FINAL_STATES,
    PENDING,
    QUEUED,
    RECEIVING,
    RUNNING,
    job_chunks,
    job_records,
    jobs,
)

if TYPE_CHECKING:
    from server.jobs.chunks import JobChunks

DEADLOCK_TRIES = 3  # a cancel PostgreSQL chose as a deadlock's victim is made again


def cancel(store: JobChunks, job_id: str, tenant: str) -> JobRow:
    """Stop a job: no chunk starts any more; chunks never started are settled at once. The
    job is `cancelling` until the chunks that ran are settled, then `cancelled`. A job
    cancelled already is returned as it is (a retried cancel succeeds); one that ended
    otherwise (`completed`, `completed_with_errors`) raises FailedPrecondition: there is
    nothing left to cancel, and an OK would read as if something had been."""
    for attempt in range(1, DEADLOCK_TRIES + 1):
        try:
            return _cancel_once(store, job_id, tenant)
        except Unavailable as exc:
            # a worker starting or finishing a chunk locks the chunk, then the job; this
            # locks the job, then the chunks: PostgreSQL breaks such a deadlock by aborting
            # one transaction, all of it, so the cancel is simply made again
            if attempt == DEADLOCK_TRIES or not deadlocked(exc):
                raise
    raise AssertionError("unreachable")


def deadlocked(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) is PostgreSQL's deadlock_detected
    (SQLSTATE 40P01, PostgreSQL manual Appendix A): the transaction was rolled back."""
    while exc is not None:
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == "40P01":
            return True
        exc = exc.__cause__
    return False


def _cancel_once(store: JobChunks, job_id: str, tenant: str) -> JobRow:
    job = store.get(job_id, tenant)
    if job.state in (CANCELLING, CANCELLED):
        return job
    if job.state in FINAL_STATES:
        raise _ended(job)
    with store._connect() as conn:
        stopped = conn.execute(update(jobs).where(
            jobs.c.job_id == job_id, jobs.c.state.in_((RECEIVING, QUEUED, RUNNING)))
            .values(state=CANCELLING)).rowcount  # finished_at: when it is cancelled
        if not stopped:  # it ended (or was cancelled) since it was read
            job = job_row(store._job_record(conn, job_id))
            if job.state in (CANCELLING, CANCELLED):
                return job
            raise _ended(job)
        job = job_row(store._job_record(conn, job_id))  # sealed meanwhile: its total
        never_run = conn.execute(update(job_chunks).where(
            job_chunks.c.job_id == job_id, job_chunks.c.state == PENDING,
            job_chunks.c.attempts == 0, job_chunks.c.summary.is_(None))
            .values(state=CHUNK_CANCELLED, summary=ChunkSummary().to_json(), retry_at=None)
            .returning(job_chunks.c.chunk)).scalars().all()
        if never_run:  # each: all its records settled, and cancelled
            records = sum(totals.records_in(job, chunk) for chunk in never_run)
            totals.add(conn, job, totals.Totals(settled=records, cancelled=records))
    store.finish_job_if_done(job_id)
    return store.get(job_id, tenant)


def _ended(job: JobRow) -> FailedPrecondition:
    return FailedPrecondition(f"job {job.job_id} is already {job.state}: nothing to cancel")


def settle_chunk(store: JobChunks, job_id: str, chunk: int,
                 errors: dict[int, list[tuple[str, str]]], states: tuple[str, ...]) -> bool:
    """Mark a chunk of a cancelled job `cancelled` if it is in one of `states`, with the
    summary of the documents the index holds for its records and the errors of the records
    that failed in the run that stopped (seq -> [(field path, message)]); then, if it was the
    last unsettled chunk, the job becomes `cancelled`. Returns whether it settled it: not
    when the job is no longer cancelling or cancelled (resumed since its worker saw it
    cancelled, server.jobs.resuming: the chunk stays pending and runs)."""
    job = store.get(job_id)
    with store._connect() as conn:
        # the job's row first, held to the end: ResumeJob changes it first too, so a resume
        # either committed before (seen here) or waits until this chunk is settled
        still = conn.execute(update(jobs).where(
            jobs.c.job_id == job_id, jobs.c.state.in_((CANCELLING, CANCELLED)))
            .values(state=jobs.c.state)).rowcount
        if not still:
            return False
        write_errors(conn, job_id, errors)
        ids = indexed.document_ids(conn, job_records, job_id, job.created_at,
                                   job.chunk_size, [chunk])
        found, outputs = indexed.committed_outputs(conn, job.header.tenant, ids)
        summary = ChunkSummary(documents=found)
        for channel, pages in outputs:
            summary.pages += pages
            mine = summary.channels.setdefault(channel, [0, 0])
            mine[0] += 1
            mine[1] += pages
        lo = chunk * job.chunk_size
        summary.failed = int(conn.execute(
            select(func.count()).select_from(job_records).where(
                job_records.c.job_id == job_id, job_records.c.seq >= lo,
                job_records.c.seq < lo + job.chunk_size,
                job_records.c.error_message.is_not(None))).scalar() or 0)
        settled = totals.change_chunk(conn, job, chunk, states, state=CHUNK_CANCELLED,
                                      summary=summary.to_json(), retry_at=None)
    if settled:
        store.finish_job_if_done(job_id)
    return settled
