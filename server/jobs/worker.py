"""A chunk of job records -> documents, through the real-time path, safely re-runnable.

Each worker process builds its pipeline once (`Pipeline.build`): the layout registry, the
renderers with their engines (font configuration, parsed stylesheets and compiled Typst
templates stay warm across chunks), the archive store, the document index and the job store.
A chunk then runs the same path as a real-time `Compose` in two halves: every record is
composed and rendered (`DocumentService.render_as`), then the chunk's documents are
committed together (`DocumentService.commit`, server.archiving: all objects put
concurrently, then ONE index transaction with every document's index rows and outbox rows;
each print delivery then queues its document's print piece). Which records are indexed
already is one query per chunk. Each document gets a document id and a composition time
derived from the job and the record key:

- the id is a ULID whose time part is the job's creation time and whose random part is a
  hash of (job id, record key): the same record always gets the same id;
- the composition time is the job's creation time, so a re-render yields the same bytes
  (WeasyPrint output is byte-identical for the same input; checked by the tests), and
  `ArchiveStore.put` of identical bytes is a no-op;
- the index row is the commit point: a record whose row exists is skipped.

A record whose error a run before wrote (a cancelled chunk's, resumed: server.jobs.resuming)
is not run again either: its error stands and it counts as failed.

So a chunk re-run after a crash never duplicates an object or an index row. A record with
bad data becomes an error entry (record key, and every field path with its message); so
does a *poison* record, one whose data makes composing or rendering fail in a way no check
foresaw: it is logged with its traceback for the operators, and the rest of the chunk goes
on. Only a backend that is down (S3, the database: `INFRASTRUCTURE`) fails the whole chunk,
which is then retried after a back-off (server.jobs.chunks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc
from ulid import ULID

from archive.errors import ArchiveError, ObjectConflict
from archive.index import DocumentIndex
from archive.retention import RetentionPolicy
from archive.write_health import WriteReport
from server import logs, metrics, processes, tempdirs
from server.archiving import Rendered
from server.channels import Renderers
from server.compose.layouts import LayoutRegistry
from server.compose.model import Channel
from server.delivery.stage import DeliverySettings, DeliveryStage
from server.documents import ComposeInput, ComposeResult, DocumentService
from server.errors import InvalidInput, KanalError, Unavailable
from server.jobs.model import ChunkSummary, JobRow, Record
from server.jobs.stalls import BEAT_SECONDS
from server.jobs.store import JobStore
from server.measured_store import MeasuredArchiveStore
from server.printing.queue import PrintQueue, PrintSettings
from server.processes import yield_cpu

log = logs.get_logger(__name__)

CANCEL_CHECK_EVERY = 10
# Failures that say nothing about a record: the chunk is retried as a whole.
INFRASTRUCTURE = (Unavailable, ArchiveError, OSError, sa_exc.OperationalError,
                  sa_exc.InterfaceError, sa_exc.TimeoutError)


def document_id_for(job_id: str, created_at: datetime, record_key: str) -> str:
    """ULID: 48-bit ms time of the job's creation + 80 bits of sha256(job id, record key)."""
    millis = int(created_at.timestamp() * 1000)
    digest = hashlib.sha256(f"{job_id}\x00{record_key}".encode()).digest()
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10]))


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker process needs to build its pipeline (picklable)."""

    index_url: str
    s3_endpoint: str
    s3_bucket: str
    s3_access_key: str | None
    s3_secret_key: str | None
    s3_region: str
    layouts_dir: Path
    retention: dict[str, Any] = field(default_factory=dict)
    max_data_bytes: int = 4 * 1024 * 1024
    plan: dict[str, Any] = field(default_factory=dict)  # channel plan rules (settings.plan)
    printing: dict[str, Any] = field(default_factory=dict)  # settings.printing (print queue)
    delivery: dict[str, Any] = field(default_factory=dict)  # settings.delivery (the outbox)
    # the server's: the sealed-input key when none configured; the workers' temporary
    # folders (server.tempdirs; None: the system's)
    state_dir: Path | None = None
    nice: int = 10


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    job_id: str
    chunk: int
    ran: bool  # False: the job was cancelled, nothing done
    documents: int
    failed: int
    pid: int
    peak_rss_kb: int  # this process's own peak RSS (server.processes.peak_rss_kb)
    metrics: tuple[metrics.Observation, ...] = ()  # this process's, for the server's registry
    # this process's archive writes since its last chunk, for the server's write health
    archive_writes: WriteReport | None = None


class Pipeline:
    def __init__(self, documents: DocumentService, jobs: JobStore):
        self.documents = documents
        self.jobs = jobs

    @classmethod
    def build(cls, config: WorkerConfig) -> Pipeline:
        store = MeasuredArchiveStore(
            endpoint_url=config.s3_endpoint, bucket=config.s3_bucket,
            access_key=config.s3_access_key, secret_key=config.s3_secret_key,
            region=config.s3_region)
        index = DocumentIndex(config.index_url)
        print_settings = PrintSettings.from_dict(config.printing)
        delivery = None
        if config.state_dir is not None:  # the outbox is written here, dispatched by a server
            delivery = DeliveryStage(DeliverySettings.from_dict(config.delivery), index,
                                     config.state_dir)
        documents = DocumentService(
            LayoutRegistry(config.layouts_dir), Renderers(), store, index,
            RetentionPolicy.from_dict(config.retention) if config.retention
            else RetentionPolicy.default(),
            max_data_bytes=config.max_data_bytes,
            plan_rules=config.plan, rules=print_settings.rules,
            print_queue=PrintQueue(index, print_settings), delivery=delivery,
        )
        return cls(documents, JobStore(config.index_url))

    def archive_writes(self) -> WriteReport | None:
        """This process's archive writes since the last call (archive.write_health)."""
        return self.documents.store.write_failures.drain()

    def run_chunk(self, job_id: str, chunk: int) -> ChunkOutcome:
        """Every line logged while the chunk runs carries its job id, chunk and tenant (a
        document's lines its document id and layout too), and none logged after it does."""
        with logs.bound(job_id=job_id, chunk=chunk):
            if not self.jobs.start_chunk(job_id, chunk):  # cancelled: count what exists, stop
                self.jobs.settle_chunk(job_id, chunk)
                return self._outcome(job_id, chunk, False, ChunkSummary())
            job = self.jobs.get(job_id)
            with logs.bound(tenant=job.header.tenant):
                return self._run_started(job, chunk)

    def _run_started(self, job: JobRow, chunk: int) -> ChunkOutcome:
        jobs, job_id, header = self.jobs, job.job_id, job.header
        channels = tuple(Channel(c) for c in header.channels)
        summary = ChunkSummary()
        errors: dict[int, list[tuple[str, str]]] = {}
        records = jobs.chunk_records(job_id, chunk, job.chunk_size)
        ids = [document_id_for(job_id, job.created_at, r.record_key) for r in records]
        indexed = self.documents.indexed_ids(header.tenant, ids)
        rendered: list[tuple[Record, Rendered]] = []
        beat_at = time.monotonic()  # start_chunk beat (server.jobs.stalls)
        for n, (record, document_id) in enumerate(zip(records, ids, strict=True)):
            if n and time.monotonic() - beat_at >= BEAT_SECONDS:  # a document finished
                jobs.chunk_progress(job_id, chunk)
                beat_at = time.monotonic()
            if n and n % CANCEL_CHECK_EVERY == 0 and jobs.is_cancelled(job_id):
                jobs.settle_chunk(job_id, chunk, errors)
                return self._outcome(job_id, chunk, False, summary)
            if record.failed:  # settled by a run before (a resumed job): its error stands
                summary.failed += 1
                continue
            try:
                result = self.documents.render_as(ComposeInput(
                    tenant=header.tenant, layout_id=header.layout_id,
                    layout_version=header.layout_version, data=record.data_json,
                    channels=channels, print_profile=header.print_profile,
                    consents=record.options.consents, opt_outs=record.options.opt_outs,
                    fallbacks=record.options.fallbacks,
                ), document_id, job.created_at, indexed=document_id in indexed)
            except ObjectConflict as exc:
                errors[record.seq] = record_error(record, exc)
                summary.failed += 1
                continue
            except INFRASTRUCTURE:
                raise  # the chunk is retried as a whole
            except Exception as exc:  # noqa: BLE001 - the record fails alone (even poison)
                errors[record.seq] = record_error(record, exc)
                summary.failed += 1
                continue
            if isinstance(result, ComposeResult):  # indexed by an earlier run: replayed
                summary.count(result)
            else:
                rendered.append((record, result))
        # every document of the chunk: objects put concurrently, one index transaction
        outcomes = self.documents.commit([doc for _, doc in rendered]) if rendered else []
        for (record, _), outcome in zip(rendered, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if isinstance(outcome, INFRASTRUCTURE) and not isinstance(outcome,
                                                                          ObjectConflict):
                    raise outcome
                errors[record.seq] = record_error(record, outcome)
                summary.failed += 1
            else:
                summary.count(outcome)
        jobs.finish_chunk(job_id, chunk, summary, errors)
        final = jobs.finish_job_if_done(job_id)
        log.info("chunk done", documents=summary.documents, failed=summary.failed,
                 job_final=final)
        return self._outcome(job_id, chunk, True, summary)

    @staticmethod
    def _outcome(job_id: str, chunk: int, ran: bool, summary: ChunkSummary) -> ChunkOutcome:
        return ChunkOutcome(job_id, chunk, ran, summary.documents, summary.failed, os.getpid(),
                            processes.peak_rss_kb())


def record_error(record: Record, exc: BaseException) -> list[tuple[str, str]]:
    """Why a record failed, as its error entry: every field path with its message."""
    if isinstance(exc, ObjectConflict):
        return [("", f"archived object differs: {exc}")]
    if isinstance(exc, InvalidInput):
        return [(v.field, v.description) for v in exc.violations] or [("", str(exc))]
    if isinstance(exc, KanalError):
        return [("", str(exc))]
    # a poison record: composing or rendering failed in a way no check foresaw
    log.error("record failed", record_key=record.record_key[:200], exc_info=exc)
    return [("", f"could not be composed ({type(exc).__name__}); "
                 "the server log has the details")]


# --- process-pool entry points (module level so 'spawn' can import them) ----------------------

_pipeline: Pipeline | None = None


def init_process(config: WorkerConfig) -> None:
    """Pool initializer, once tied to the server (server.processes.process_pool): its own
    temporary folder (server.tempdirs), lower this process's priority (real-time Compose
    calls run in the server's own threads and render processes and win the CPU:
    `yield_cpu`), then build the pipeline."""
    global _pipeline
    if config.state_dir is not None:
        tempdirs.claim(config.state_dir)
    logs.configure_worker()
    metrics.buffer_observations()  # returned with each ChunkOutcome, see server.metrics
    if config.nice:
        yield_cpu(config.nice)
    _pipeline = Pipeline.build(config)


def run_chunk(job_id: str, chunk: int) -> ChunkOutcome:
    """Run one chunk in this worker process. The outcome carries this process's metrics and
    its archive writes (`archive_writes`); a chunk that fails (S3 or the database down) has
    its writes on the error it raises (`ARCHIVE_WRITES`), so that the server counts the S3
    refusals of its workers into its own archive health and embedded S3 restart
    (archive.write_health `replay`, server.jobs.runner `on_archive_writes`)."""
    if _pipeline is None:
        raise RuntimeError("worker process not initialised")
    global _chunks_run
    if _chunks_run:
        settle_heap()
    try:
        outcome = _pipeline.run_chunk(job_id, chunk)
    except Exception as exc:
        with contextlib.suppress(AttributeError):  # the error travels back pickled
            setattr(exc, ARCHIVE_WRITES, _pipeline.archive_writes())
        raise
    _chunks_run += 1
    return dataclasses.replace(outcome, metrics=metrics.drain(),
                               archive_writes=_pipeline.archive_writes())


ARCHIVE_WRITES = "archive_writes"  # a failed chunk's error: its process's WriteReport


def chunk_archive_writes(outcome: ChunkOutcome | None,
                         error: BaseException | None) -> WriteReport | None:
    """In the server: a finished chunk's archive writes, from its outcome or its error."""
    if outcome is not None:
        return outcome.archive_writes
    return getattr(error, ARCHIVE_WRITES, None)


_chunks_run = 0  # by this worker process
_heap_settled = False


def settle_heap() -> None:
    """Once per worker process, after its first chunk (called as the second begins, so the
    collection never delays a chunk's outcome and its metrics): what is alive then lives as
    long as the process (layouts, compiled templates, Babel's locale data, the engines' and
    the channels' caches, the libraries' modules), so the cyclic garbage collector stops
    walking it (`server.processes.settle_heap`). Its full
    collections otherwise walk all of it again every few chunks: 0.9 ms CPU per bulk
    document of collection before, 0.3 after (load_tests/profile_stages.py)."""
    global _heap_settled
    if not _heap_settled:
        _heap_settled = True
        processes.settle_heap()
