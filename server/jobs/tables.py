"""The bulk job tables, in the index database (SQLite embedded, PostgreSQL in production) but
kept apart from the archive's schema migrations: created (and given columns newer than the
table) on start by server.jobs.database.JobDatabase.create_schema. What each holds:

- `jobs`: one row per job (tenant, layout, options, state, timestamps) and the running
  totals of its chunks' summaries (server.jobs.totals), so progress reads no chunk summary.
- `job_records`: one row per record (job, seq, record key, data), written in batches of a
  few hundred as the stream arrives so a 500k-record job never sits in memory; a failed
  record keeps its errors here (every field path with its message, as Compose reports them).
- `job_chunks`: one row per chunk of `chunk_size` consecutive records: its state (pending,
  running, done, or cancelled) and, once done or cancelled, its summary (documents, failed,
  pages, per channel); while running, its worker's heartbeat and why it is stalled
  (server.jobs.stalls). A chunk's summary is replaced when it is re-run, so re-running never
  counts twice; job totals are sums over chunks, kept on the job's row as they change.
- `job_keys`: one row per job submitted with an idempotency key, (tenant, key) unique, with
  the digest of the job's content (server.jobs.idempotency), written when the job is sealed.

Also the values of the state columns: a job's states and a chunk's states.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from archive.tables import UTCDateTime

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
    # running totals of the chunks' summaries (server.jobs.totals); version NULL: not
    # counted yet (a job from before they existed)
    Column("totals_documents", Integer),
    Column("totals_failed", Integer),
    Column("totals_pages", Integer),
    Column("totals_settled", Integer),  # records of chunks with a summary
    Column("totals_cancelled", Integer),  # records of cancelled chunks never composed
    Column("totals_channels", Text),  # JSON {channel: [documents, pages]}
    Column("totals_version", Integer),  # compare-and-set: +1 at each change
    # The table keeps every job ever run: the runner's unfinished jobs (`unfinished_jobs`,
    # at every scheduling round) and the abandoned ones still receiving are found by state,
    # not by reading them all (13 ms per round at 100,000 finished jobs on SQLite and
    # PostgreSQL without it; load_tests/bench_history_queries.py).
    Index("ix_kanal_jobs_state", "state"),
)

job_records = Table(
    "kanal_job_records", metadata,
    Column("job_id", String(26), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("data_json", Text, nullable=False),
    Column("options_json", Text),  # server.jobs.model.RecordOptions; NULL: none
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
    # a running chunk's heartbeat (server.jobs.stalls): its worker ("host:pid"), when it
    # started or last finished a document, that process's CPU seconds then, and why the
    # chunk is stalled (no document for [jobs] stall_seconds; NULL: it is not)
    Column("worker", String(200)),
    Column("progress_at", UTCDateTime()),
    Column("progress_cpu", Float),
    Column("stalled", Text),
    PrimaryKeyConstraint("job_id", "chunk"),
    # a progress poll reads a job's running and failing chunks only, not all of them
    Index("ix_kanal_job_chunks_state", "job_id", "state"),
    Index("ix_kanal_job_chunks_failures", "job_id", "failures"),
)

job_keys = Table(
    "kanal_job_keys", metadata,
    Column("job_id", String(26), primary_key=True),
    Column("tenant", String(100), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("content_sha256", String(64), nullable=False),  # JobDigest, hex
    Column("records", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant", "idempotency_key", name="uq_kanal_job_keys_key"),
)
