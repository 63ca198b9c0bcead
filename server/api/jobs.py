"""`kanal.v1.Jobs`: streamed batch submission, job status, progress stream, cancel, errors,
resuming a cancelled job and the records it did not compose (server.jobs.resuming).

The record stream is written to the job store in batches as it arrives (never collected in
memory); the call answers with the job id once every record is stored, and the runner starts
the chunks. Another tenant's job answers NOT_FOUND. A header with an `idempotency_key` makes
resubmitting safe (server.jobs.idempotency): the same key and content answer with the first
job (`replayed`, nothing stored again), the same key with other content ALREADY_EXISTS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterator
from datetime import UTC, datetime

import grpc
from ulid import ULID

from kanal.v1 import jobs_pb2, jobs_pb2_grpc
from server import logs
from server.api.convert import channel_to_proto, channels_from_proto, timestamp
from server.api.wire import field_problem
from server.auth import current_caller, tenant_for
from server.compose.layouts import LayoutRegistry
from server.errors import InvalidInput, TooLarge, Unavailable, quote
from server.jobs.idempotency import JobDigest, JobKeys, KeyedJob, check_key
from server.jobs.model import JobHeader, Progress
from server.jobs.runner import JobRunner
from server.jobs.store import JobStore
from server.jobs.tables import FINAL_STATES

log = logs.get_logger(__name__)

WATCH_INTERVAL_SECONDS = 0.5  # how often WatchJob looks at the job
# WatchJob resends an unchanged job this often: well inside the stream's idle limit
# (admission.Limits.stream_idle_seconds, 60 s) and the idle timeouts of common proxies
WATCH_HEARTBEAT_SECONDS = 15.0
# gRPC ends a cancelled stream's request iterator as if the client had closed it, and reports
# the cancel by a second event that the server's poller thread handles a moment later (a
# loaded machine: tens of ms); a job's records are kept only if no cancel came in this time.
CANCEL_GRACE_SECONDS = 0.25
RECORD_KEY = "kanal.v1.JobRecord.record_key"  # its limit: server.api.wire.FIELD_CHARS


def _abandoned(context: grpc.ServicerContext) -> bool:
    """Whether the client cancelled the call whose request stream just ended: the call is
    done now or within CANCEL_GRACE_SECONDS (a live call is not: it waits for our answer)."""
    deadline = time.monotonic() + CANCEL_GRACE_SECONDS
    while context.is_active():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


class JobsServicer(jobs_pb2_grpc.JobsServicer):
    def __init__(self, store: JobStore, runner: JobRunner, layouts: LayoutRegistry,
                 max_data_bytes: int, print_profiles: Collection[str] = ()):
        self.store = store
        self.keys = JobKeys(store)
        self.print_profiles = frozenset(print_profiles)  # ids a header may name
        self.runner = runner
        self.layouts = layouts
        self.max_data_bytes = max_data_bytes
        self._stopping = threading.Event()

    def SubmitBatch(self, request_iterator: Iterator[jobs_pb2.SubmitBatchRequest],
                    context: grpc.ServicerContext) -> jobs_pb2.SubmitBatchResponse:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("item") != "header":
            raise InvalidInput.field("header", "the first message must be the job header")
        h = first.header
        if not h.layout_id:
            raise InvalidInput.field("header.layout_id", "is required")
        layout = self.layouts.get(h.layout_id, h.layout_version or None)
        if h.print_profile and h.print_profile not in self.print_profiles:
            raise InvalidInput.field(
                "header.print_profile",
                f"unknown print profile {quote(h.print_profile)}; the profiles are: "
                f"{', '.join(sorted(self.print_profiles))} (empty: the tenant's)")
        check_key(h.idempotency_key)
        header = JobHeader(
            tenant=tenant_for(current_caller(), h.tenant), layout_id=layout.id,
            layout_version=layout.version, job_name=h.job_name[:200],
            channels=tuple(c.value for c in channels_from_proto(list(h.channels),
                                                                  "header.channels")),
            print_profile=h.print_profile, priority=h.priority,
        )
        key = h.idempotency_key
        digest = JobDigest(h.layout_id, h.layout_version, h.job_name, list(h.channels),
                           h.print_profile, h.priority)
        records = digest.records(self._records(request_iterator))
        first = self.keys.find(header.tenant, key) if key else None
        if first is not None:  # a resubmission: read it to compare, store nothing
            for _ in records:
                pass
            return self._replayed(self.keys.replay(first, key, digest.hexdigest()), key)
        job_id = str(ULID())
        now = datetime.now(UTC)
        created_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
        logs.bind(job_id=job_id)
        self.store.create_job(job_id, header, created_at)
        try:
            total = self.store.add_records(job_id, records)
        except BaseException:
            self.store.discard(job_id)
            raise
        if total == 0:
            self.store.discard(job_id)
            raise InvalidInput.field("records", "a job needs at least one record")
        if _abandoned(context):  # its client went away: the records may be a part
            self.store.discard(job_id)
            raise Unavailable("the call was cancelled before it ended; nothing was kept")
        if key:
            first = self.keys.seal(job_id, total, header.tenant, key, digest.hexdigest(),
                                   created_at)
            if first is not None:  # the same key sealed meanwhile by another submission
                self.store.discard(job_id)
                return self._replayed(self.keys.replay(first, key, digest.hexdigest()), key)
        else:
            self.store.seal(job_id, total)
        self.runner.notify()
        log.info("job submitted", records=total, layout=layout.ref)
        return jobs_pb2.SubmitBatchResponse(job_id=job_id, records=total)

    @staticmethod
    def _replayed(first: KeyedJob, key: str) -> jobs_pb2.SubmitBatchResponse:
        logs.bind(job_id=first.job_id)
        log.info("job resubmitted: the first job stands", records=first.records,
                 idempotency_key_chars=len(key))
        return jobs_pb2.SubmitBatchResponse(job_id=first.job_id, records=first.records,
                                            replayed=True)

    def _records(self, messages: Iterator[jobs_pb2.SubmitBatchRequest]
                 ) -> Iterator[tuple[str, str]]:
        # n: the record's 0-based position among the records (the header is not one), as
        # its `seq` and every error about it count it (`records[0]` is the first record)
        for n, message in enumerate(messages):
            item = message.WhichOneof("item")
            if item is None:
                raise InvalidInput.field(f"records[{n}]", "is empty: the message sets neither "
                                         "header nor record")
            if item != "record":
                raise InvalidInput.field(f"records[{n}]", "only the first message is a header")
            record = message.record
            if not record.record_key:
                raise InvalidInput.field(f"records[{n}].record_key", "is required")
            problem = field_problem(RECORD_KEY, record.record_key)  # also checked on the wire
            if problem:
                raise InvalidInput.field(f"records[{n}].record_key", problem)
            if len(record.data_json) > self.max_data_bytes:
                raise TooLarge(f"records[{n}] ({quote(record.record_key)}): data_json exceeds "
                               f"{self.max_data_bytes} bytes")
            yield record.record_key, record.data_json

    def GetJob(self, request: jobs_pb2.GetJobRequest, context: grpc.ServicerContext
               ) -> jobs_pb2.Job:
        return job_to_proto(self.store.progress(_job_id(request), current_caller().tenant))

    def WatchJob(self, request: jobs_pb2.GetJobRequest, context: grpc.ServicerContext
                 ) -> Iterator[jobs_pb2.JobProgress]:
        """The job's progress: a message whenever the job changes (state, counts, pages,
        channels, a stall), polled every WATCH_INTERVAL_SECONDS, and the same job again at
        least every WATCH_HEARTBEAT_SECONDS while nothing changes (a heartbeat with fresh
        documents_per_second and eta_seconds: the client sees the server is there, and
        proxies see the stream is in use); the last message is `final`."""
        job_id, tenant = _job_id(request), current_caller().tenant
        sent: jobs_pb2.Job | None = None
        sent_at = 0.0
        while True:
            progress = self.store.progress(job_id, tenant)
            final = progress.job.state in FINAL_STATES
            job = job_to_proto(progress)
            if job != sent or final or time.monotonic() - sent_at >= WATCH_HEARTBEAT_SECONDS:
                rate, eta = _rate(progress)
                yield jobs_pb2.JobProgress(job=job, documents_per_second=rate,
                                           eta_seconds=0.0 if final else eta, final=final)
                sent, sent_at = job, time.monotonic()
            if final or not context.is_active():
                return
            if self._stopping.is_set():  # not the job's end: say so, the client retries
                raise Unavailable(f"the server is shutting down; job {job_id} goes on when "
                                  "it is back")
            self._stopping.wait(WATCH_INTERVAL_SECONDS)

    def CancelJob(self, request: jobs_pb2.GetJobRequest, context: grpc.ServicerContext
                  ) -> jobs_pb2.Job:
        tenant = current_caller().tenant
        self.store.cancel(_job_id(request), tenant)
        self.runner.notify()
        return job_to_proto(self.store.progress(request.job_id, tenant))

    def GetJobErrors(self, request: jobs_pb2.GetJobErrorsRequest,
                     context: grpc.ServicerContext) -> jobs_pb2.GetJobErrorsResponse:
        size = request.page_size or 100
        if not 1 <= size <= 1000:
            raise InvalidInput.field("page_size", "must be within 1..1000")
        errors, next_seq = self.store.errors(_job_id(request), current_caller().tenant,
                                             _after(request.page_token), size)
        return jobs_pb2.GetJobErrorsResponse(
            errors=[jobs_pb2.RecordError(record_key=e.record_key, field=e.field,
                                         message=e.message) for e in errors],
            next_page_token="" if next_seq is None else str(next_seq))

    def ResumeJob(self, request: jobs_pb2.GetJobRequest, context: grpc.ServicerContext
                  ) -> jobs_pb2.Job:
        tenant = current_caller().tenant
        job_id = _job_id(request)
        self.store.resume(job_id, tenant)
        self.runner.resumed(job_id)
        log.info("job resumed", job_id=job_id)
        return job_to_proto(self.store.progress(job_id, tenant))

    def GetJobCancelledRecords(self, request: jobs_pb2.GetJobCancelledRecordsRequest,
                               context: grpc.ServicerContext
                               ) -> jobs_pb2.GetJobCancelledRecordsResponse:
        size = request.page_size or 1000
        if not 1 <= size <= 10000:
            raise InvalidInput.field("page_size", "must be within 1..10000")
        keys, next_seq = self.store.cancelled_records(
            _job_id(request), current_caller().tenant, _after(request.page_token), size)
        return jobs_pb2.GetJobCancelledRecordsResponse(
            record_keys=keys, next_page_token="" if next_seq is None else str(next_seq))

    def stop(self) -> None:
        self._stopping.set()


def _job_id(request: jobs_pb2.GetJobRequest | jobs_pb2.GetJobErrorsRequest
            | jobs_pb2.GetJobCancelledRecordsRequest) -> str:
    if not request.job_id:
        raise InvalidInput.field("job_id", "is required")
    return request.job_id


def _after(page_token: str) -> int:
    """The record seq a page token continues after (-1: from the first record); a token
    this API never gives (not a seq: a seq is a 32-bit integer in the database) is
    INVALID_ARGUMENT."""
    try:
        after = int(page_token) if page_token else -1
    except ValueError:
        after = None
    if after is None or not -1 <= after < 2**31:
        raise InvalidInput.field("page_token", "is not a token from this API")
    return after


def _rate(progress: Progress) -> tuple[float, float]:
    """Documents (done or failed) per second since the job started, and the seconds left."""
    started = progress.job.started_at
    settled = progress.done + progress.failed
    if started is None or not settled:
        return 0.0, 0.0
    end = progress.job.finished_at or datetime.now(UTC)
    elapsed = max((end - started).total_seconds(), 1e-3)
    rate = settled / elapsed
    return rate, (progress.total - settled) / rate


def job_to_proto(progress: Progress) -> jobs_pb2.Job:
    job, summary = progress.job, progress.summary
    return jobs_pb2.Job(
        job_id=job.job_id, tenant=job.header.tenant, job_name=job.header.job_name,
        layout_id=job.header.layout_id, layout_version=job.header.layout_version,
        state=job.state,
        counts=jobs_pb2.JobCounts(total=progress.total, pending=progress.pending,
                                  running=progress.running, done=progress.done,
                                  failed=progress.failed, cancelled=progress.cancelled),
        pages=summary.pages,
        channels=[jobs_pb2.ChannelCount(channel=channel_to_proto(c), documents=d, pages=p)
                  for c, (d, p) in sorted(summary.channels.items())],
        created_at=timestamp(job.created_at), finished_at=timestamp(job.finished_at),
        priority=job.header.priority, print_profile=job.header.print_profile,
        stalled_reason=progress.stalled, next_retry_at=timestamp(progress.retry_at),
        idempotency_key=progress.idempotency_key,
    )


