"""Durable bulk jobs: a header and a stream of records -> rows, and rows -> progress.

Jobs live in the same database as the archive index, in their own tables
(server.jobs.tables). `JobStore` is the one object the API, the runner, the queue and the
workers hold; its methods live by concept:

    database.py  the engine, the schema, transactions (a lost database is Unavailable), job rows
    records.py   submitting: the job, its records as they stream in, its chunks; a chunk's records
    chunks.py    scheduling, running, retrying (back-off, stalled), finishing, cancelling chunks
    results.py   progress, and each failed record's field violations
    totals.py    the job's running totals of its chunks' summaries, kept as chunks change

A chunk is the unit of work and of retry (server.jobs.chunks); the index row of each
document is the commit point of a record (server.jobs.worker), so chunk state only steers
scheduling. A cancelled job is `cancelling` until every chunk is settled, then `cancelled`
(server.jobs.cancelling); a cancelled job resumes, or lists the records it never composed
(server.jobs.resuming).
"""

from __future__ import annotations

from server.jobs.chunks import JobChunks
from server.jobs.records import JobRecords
from server.jobs.results import JobResults


class JobStore(JobRecords, JobChunks, JobResults):
    """Job, record and chunk rows in the index database: JobStore(url, chunk_size=CHUNK_SIZE)."""
