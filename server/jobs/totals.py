"""A job's running totals: what its chunks' summaries add up to, kept on the job's row so a
progress poll reads one row instead of every chunk's summary (WatchJob polls twice a second
per watcher; a 500k-record job has 10,000 chunks).

What the totals hold (the `totals_*` columns of `kanal_jobs`, server.jobs.tables):

- documents, failed, pages and per channel [documents, pages]: the sum of the summaries of
  the job's chunks that have one (a chunk gets its summary when it is settled: done or
  cancelled; a re-run replaces it, so the totals move by the difference, never twice; a
  cancelled chunk made pending again by resuming its job keeps its summary until a worker
  starts it, server.jobs.resuming);
- settled: the records of those chunks (a chunk holds `chunk_size` records, the last one
  fewer; a resumed chunk waiting to start: its documents and failures), so pending =
  total - settled - the records of running chunks;
- cancelled: records of cancelled chunks that made no document and did not fail.

Every change of a chunk's state or summary that can move them goes through `change_chunk`
(finishing, settling, cancelling, starting a resumed chunk), in the transaction that makes
the change; resuming a job moves them by the sum of its chunks' changes (one update per
state, server.jobs.resuming):

1. the chunk's row is replaced compare-and-set: read (state, summary), then update where
   they are still what was read (re-read and try again otherwise), so the difference
   applied is the one between the summary replaced and the new one, whichever worker
   finished the chunk before;
2. the job's totals are replaced compare-and-set on `totals_version`: read, add the
   difference, update where the version is still the one read (re-read and try again
   otherwise). PostgreSQL re-checks the condition after a concurrent transaction commits;
   SQLite has one writer at a time. Both work without SELECT ... FOR UPDATE.

A job created before the totals existed has `totals_version` NULL: its totals are counted
once from its chunks (`count_once`), by the first poll or chunk change that finds them
absent, and stored compare-and-set on `totals_version IS NULL` (a transaction that lost the
race reads the winner's totals and adds its own difference).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from server.errors import Unavailable
from server.jobs.model import ChunkSummary, JobRow
from server.jobs.tables import CHUNK_CANCELLED, SETTLED_CHUNKS, job_chunks, jobs

CAS_TRIES = 100  # a lost compare-and-set means another writer committed: try again


@dataclass(slots=True)
class Totals:
    summary: ChunkSummary = field(default_factory=ChunkSummary)
    settled: int = 0  # records of chunks with a summary
    cancelled: int = 0  # records of cancelled chunks never composed

    def add(self, other: Totals, sign: int = 1) -> None:
        """Add (sign 1) or take away (sign -1) another's counts; a channel that comes to
        nothing is dropped, as a sum over the chunks would not have it."""
        mine, theirs = self.summary, other.summary
        mine.documents += sign * theirs.documents
        mine.failed += sign * theirs.failed
        mine.pages += sign * theirs.pages
        for channel, (docs, pages) in theirs.channels.items():
            kept = mine.channels.setdefault(channel, [0, 0])
            kept[0] += sign * docs
            kept[1] += sign * pages
            if kept == [0, 0]:
                del mine.channels[channel]
        self.settled += sign * other.settled
        self.cancelled += sign * other.cancelled

    def values(self) -> dict[str, Any]:
        """The `totals_*` column values (version not included)."""
        s = self.summary
        return {"totals_documents": s.documents, "totals_failed": s.failed,
                "totals_pages": s.pages, "totals_settled": self.settled,
                "totals_cancelled": self.cancelled,
                "totals_channels": json.dumps(s.channels, sort_keys=True)}


def records_in(job: JobRow, chunk: int) -> int:
    """How many records chunk `chunk` of a sealed job holds (the last one may hold fewer)."""
    return max(0, min(job.chunk_size, job.total - chunk * job.chunk_size))


def contribution(job: JobRow, chunk: int, state: str | None, summary_json: str | None
                 ) -> Totals:
    """What one chunk row adds to its job's totals: nothing until it has a summary. A
    settled chunk's records are all settled; a pending one with a summary (a cancelled
    chunk resumed, server.jobs.resuming) has only its documents and failures settled, the
    rest are pending again."""
    if not summary_json:
        return Totals()
    summary = ChunkSummary.from_json(summary_json)
    size = records_in(job, chunk)
    if state not in SETTLED_CHUNKS:
        return Totals(summary, summary.documents + summary.failed, 0)
    cancelled = (max(0, size - summary.documents - summary.failed)
                 if state == CHUNK_CANCELLED else 0)
    return Totals(summary, size, cancelled)


def from_row(row: Mapping[str, Any]) -> Totals | None:
    """The totals on a `kanal_jobs` row; None when they were never counted (an older job)."""
    if row["totals_version"] is None:
        return None
    channels = {k: list(v) for k, v in json.loads(row["totals_channels"] or "{}").items()}
    return Totals(ChunkSummary(row["totals_documents"], row["totals_failed"],
                               row["totals_pages"], channels),
                  row["totals_settled"], row["totals_cancelled"])


def count_once(conn: Connection, job: JobRow) -> Totals:
    """An older job's totals, counted from its chunks and stored (unless another
    transaction stored them first: then those)."""
    for _ in range(CAS_TRIES):
        counted = _store_counted(conn, job)
        if counted is not None:
            return counted
        found = _read(conn, job.job_id)
        if found is not None:
            return found[0]
    raise Unavailable(f"job {job.job_id}: its totals could not be stored (contended)")


def _store_counted(conn: Connection, job: JobRow) -> Totals | None:
    """Count the totals from the chunks this transaction sees and store them where none are
    stored yet; None when another transaction stored them first."""
    totals = Totals()
    for chunk, state, summary_json in conn.execute(
            select(job_chunks.c.chunk, job_chunks.c.state, job_chunks.c.summary)
            .where(job_chunks.c.job_id == job.job_id, job_chunks.c.summary.is_not(None))):
        totals.add(contribution(job, chunk, state, summary_json))
    stored = conn.execute(update(jobs).where(
        jobs.c.job_id == job.job_id, jobs.c.totals_version.is_(None))
        .values(totals_version=0, **totals.values()))
    return totals if stored.rowcount else None


def _read(conn: Connection, job_id: str) -> tuple[Totals, int] | None:
    row = conn.execute(select(jobs).where(jobs.c.job_id == job_id)).mappings().first()
    if row is None or row["totals_version"] is None:
        return None
    totals = from_row(row)
    assert totals is not None
    return totals, row["totals_version"]


def change_chunk(conn: Connection, job: JobRow, chunk: int, states: Iterable[str] | None,
                 **values: Any) -> bool:
    """Set `values` (state, summary, ...) on a chunk whose state is one of `states` (None:
    any), and move the job's totals by what that changes; False (nothing changed) when the
    chunk is in another state."""
    allowed = None if states is None else tuple(states)
    for _ in range(CAS_TRIES):
        row = conn.execute(select(job_chunks.c.state, job_chunks.c.summary).where(
            job_chunks.c.job_id == job.job_id, job_chunks.c.chunk == chunk)).first()
        if row is None or (allowed is not None and row.state not in allowed):
            return False
        changed = conn.execute(update(job_chunks).where(
            job_chunks.c.job_id == job.job_id, job_chunks.c.chunk == chunk,
            job_chunks.c.state == row.state,
            job_chunks.c.summary.is_not_distinct_from(row.summary)).values(**values))
        if changed.rowcount:
            delta = contribution(job, chunk, values.get("state", row.state),
                                 values.get("summary", row.summary))
            delta.add(contribution(job, chunk, row.state, row.summary), -1)
            add(conn, job, delta)
            return True
    raise Unavailable(f"job {job.job_id} chunk {chunk}: contended")


def add(conn: Connection, job: JobRow, delta: Totals) -> None:
    """Move the job's totals by `delta`, compare-and-set on their version; an older job's
    totals are counted first (they then include this transaction's chunk changes)."""
    for _ in range(CAS_TRIES):
        found = _read(conn, job.job_id)
        if found is None:  # an older job: counted with this transaction's changes in
            if _store_counted(conn, job) is not None:
                return
            continue  # another stored them first, without them: add the difference
        totals, version = found
        totals.add(delta)
        stored = conn.execute(update(jobs).where(
            jobs.c.job_id == job.job_id, jobs.c.totals_version == version)
            .values(totals_version=version + 1, **totals.values()))
        if stored.rowcount:
            return
    raise Unavailable(f"job {job.job_id}: its totals could not be stored (contended)")
