"""A job's chunks: the unit of work and of retry. A chunk is pending, running, then settled
(done, or cancelled); starting one moves its job to running, and when every chunk is settled
the job takes its final state. The index row of each document is the commit point of a
record (see server.jobs.worker); chunk state here only steers scheduling.

A chunk that fails for a reason outside its records (S3 or the database down, a worker
process killed) is retried after an exponential back-off (`retry_delay`: RETRY_BASE_SECONDS
doubling up to RETRY_MAX_SECONDS), kept in its row so a restarted server keeps to it; from
the STALLED_AFTER-th failure in a row (server.jobs.results) the job reports itself stalled,
with the reason.

A cancelled job is `cancelling` until every chunk is settled, then `cancelled`
(server.jobs.cancelling); resumed, its cancelled chunks are pending again
(server.jobs.resuming). Part of server.jobs.store.JobStore.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from server.errors import Unavailable
from server.jobs import stalls, totals
from server.jobs.database import JobDatabase, job_row
from server.jobs.model import ChunkSummary, JobRow
from server.jobs.results import write_errors
from server.jobs.tables import (
    ACTIVE_STATES,
    CANCELLED,
    CANCELLING,
    CHUNK_RUNNING,
    COMPLETED,
    COMPLETED_WITH_ERRORS,
    DONE,
    PENDING,
    QUEUED,
    RUNNING,
    SETTLED_CHUNKS,
    job_chunks,
    job_records,
    jobs,
)

RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0


def retry_delay(failures: int) -> float:
    """Seconds before the next run of a chunk that failed `failures` times in a row."""
    return min(RETRY_BASE_SECONDS * 2 ** max(failures - 1, 0), RETRY_MAX_SECONDS)


class JobChunks(JobDatabase):
    """Scheduling, running, retrying, finishing and cancelling chunks."""

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

    def start_chunk(self, job_id: str, chunk: int) -> bool:
        """Mark a chunk running; False when the job was cancelled or the chunk is settled
        (the caller then settles it: `settle_chunk`). A chunk of a resumed job drops the
        summary it was cancelled with (its run counts the chunk afresh)."""
        with self._connect() as conn:
            state = conn.execute(select(jobs.c.state).where(jobs.c.job_id == job_id)).scalar()
            if state not in (QUEUED, RUNNING):
                return False
            worker, cpu = stalls.me()  # its first heartbeat (server.jobs.stalls)
            values = {"state": CHUNK_RUNNING, "attempts": job_chunks.c.attempts + 1,
                      "worker": worker, "progress_at": datetime.now(UTC),
                      "progress_cpu": cpu, "stalled": None}
            started = conn.execute(update(job_chunks).where(
                job_chunks.c.job_id == job_id, job_chunks.c.chunk == chunk,
                job_chunks.c.state.not_in(SETTLED_CHUNKS), job_chunks.c.summary.is_(None))
                .values(**values)).rowcount
            if not started:  # a chunk of a resumed job: its summary goes, with the totals
                started = totals.change_chunk(  # (server.jobs.resuming)
                    conn, job_row(self._job_record(conn, job_id)), chunk, (PENDING,),
                    summary=None, **values)
            if not started:
                return False
            if state == QUEUED:  # a resumed job keeps when it first started
                conn.execute(update(jobs).where(jobs.c.job_id == job_id, jobs.c.state == QUEUED)
                             .values(state=RUNNING, started_at=func.coalesce(
                                 jobs.c.started_at, datetime.now(UTC))))
        return True

    def chunk_progress(self, job_id: str, chunk: int) -> None:
        """The running chunk's heartbeat, from its worker process: a document finished
        (server.jobs.stalls). A lost database costs the beat only, never the chunk."""
        worker, cpu = stalls.me()
        try:
            with self._connect() as conn:
                conn.execute(update(job_chunks).where(
                    job_chunks.c.job_id == job_id, job_chunks.c.chunk == chunk,
                    job_chunks.c.state == CHUNK_RUNNING).values(
                    worker=worker, progress_at=datetime.now(UTC), progress_cpu=cpu))
        except Unavailable:
            pass

    def running_chunks(self) -> list[stalls.ChunkRun]:
        """The heartbeat of every running chunk of a queued, running or cancelling job."""
        active = select(jobs.c.job_id).where(jobs.c.state.in_(ACTIVE_STATES))
        with self._connect() as conn:
            return [stalls.ChunkRun(*row) for row in conn.execute(
                select(job_chunks.c.job_id, job_chunks.c.chunk, job_chunks.c.worker,
                       job_chunks.c.progress_at, job_chunks.c.progress_cpu,
                       job_chunks.c.stalled)
                .where(job_chunks.c.job_id.in_(active),
                       job_chunks.c.state == CHUNK_RUNNING))]

    def set_stalled(self, job_id: str, chunk: int, progress_at: datetime,
                    reason: str | None) -> bool:
        """Why a running chunk is stalled (None: it is not), unless it beat since
        `progress_at` was read; whether it was set."""
        with self._connect() as conn:
            return bool(conn.execute(update(job_chunks).where(
                job_chunks.c.job_id == job_id, job_chunks.c.chunk == chunk,
                job_chunks.c.state == CHUNK_RUNNING,
                job_chunks.c.progress_at == progress_at).values(stalled=reason)).rowcount)

    def finish_chunk(self, job_id: str, chunk: int, summary: ChunkSummary,
                     errors: dict[int, list[tuple[str, str]]]) -> None:
        """Record a chunk's outcome in one transaction: its summary and its records' errors
        (seq -> [(field path, message), ...]), and the job's totals (server.jobs.totals); a
        re-run replaces both and moves the totals by the difference."""
        with self._connect() as conn:
            job = job_row(self._job_record(conn, job_id))
            write_errors(conn, job_id, errors)
            totals.change_chunk(conn, job, chunk, None, state=DONE, summary=summary.to_json(),
                                failures=0, last_error=None, retry_at=None)

    def finish_job_if_done(self, job_id: str) -> str | None:
        """When every chunk is settled, set the final state (a cancelling job: cancelled)
        and `finished_at` (now: the job has finished); returns it (None: not yet).

        Chunks left unsettled end it at once, with a read only (every chunk's finish asks).
        Otherwise the job's row is locked, as ResumeJob locks it first too
        (server.jobs.resuming), and the chunks are counted again under that lock: a resume
        either committed before, and its pending chunks are counted, or waits until this
        has ended. Without the lock a resume committing between the count and the final
        update made the resumed job `completed` with its requeued records never run."""
        with self._connect() as conn:
            if _unsettled(conn, job_id):
                return None
        with self._connect() as conn:
            held = conn.execute(update(jobs).where(
                jobs.c.job_id == job_id, jobs.c.state.in_(ACTIVE_STATES))
                .values(state=jobs.c.state)).rowcount
            if not held or _unsettled(conn, job_id):  # ended already, or resumed
                return None
            cancelled = conn.execute(update(jobs).where(
                jobs.c.job_id == job_id, jobs.c.state == CANCELLING)
                .values(state=CANCELLED, finished_at=datetime.now(UTC)))
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

    def resume(self, job_id: str, tenant: str) -> JobRow:
        """A cancelled job runs its cancelled records (server.jobs.resuming.resume); returns
        it as it is now."""
        from server.jobs import resuming

        return resuming.resume(self, job_id, tenant)  # type: ignore[arg-type]

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


def _unsettled(conn: Connection, job_id: str) -> int:
    """How many of the job's chunks are pending or running."""
    return conn.execute(select(func.count()).select_from(job_chunks).where(
        job_chunks.c.job_id == job_id, job_chunks.c.state.not_in(SETTLED_CHUNKS))).scalar() or 0
