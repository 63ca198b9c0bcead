"""Bulk jobs end to end over gRPC: a real KanalServer (embedded SeaweedFS, SQLite index) with
its worker processes; small jobs in chunks of 5 records so every path runs in seconds."""

from __future__ import annotations

import itertools
import json
import time

import grpc
import pytest
from sqlalchemy import func, select, update

import server.api.jobs
from archive.tables import documents as index_documents
from archive.tables import outputs as index_outputs
from kanal.v1 import common_pb2, jobs_pb2, jobs_pb2_grpc
from server.api.errors import field_violations
from server.app import KanalServer
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import Settings
from server.jobs.records import INSERT_BATCH
from server.jobs.tables import job_chunks, jobs
from server.jobs.worker import Pipeline, document_id_for
from server.printing.queue import print_pieces
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import wait_for

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"), ("nordkort", "portal"), ("other", "producer"))
SAMPLE = json.loads((DEFAULT_LAYOUTS_DIR / "card-invoice/1.0.0/sample.json").read_text())


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-jobs")
    layouts = tmp_path_factory.mktemp("layouts")  # only what these tests use
    for name in ("card-invoice", "_shared"):
        (layouts / name).symlink_to(DEFAULT_LAYOUTS_DIR / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANAL_JOB_CHUNK_SIZE", "5")
        mp.setenv("KANAL_JOB_WORKERS", "2")
        with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state,
                                  layouts_dir=layouts, api_keys=KEYS.api_keys)) as server:
            yield server


@pytest.fixture(scope="module")
def stub(kanal: KanalServer):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield jobs_pb2_grpc.JobsStub(ch)


def record(n: int, bad: bool = False) -> jobs_pb2.SubmitBatchRequest:
    data = json.loads(json.dumps(SAMPLE))
    data["customer"]["customer_id"] = f"c{n:05d}"
    if bad:
        data["transactions"][1]["amount"] = "not money"
    return jobs_pb2.SubmitBatchRequest(
        record=jobs_pb2.JobRecord(record_key=f"r{n}", data_json=json.dumps(data)))


def submit(stub, count: int, bad: set[int] = frozenset(), name: str = "t",
           print_profile: str = "") -> str:
    def messages():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
            layout_id="card-invoice", job_name=name, channels=[common_pb2.CHANNEL_PRINT],
            print_profile=print_profile))
        for n in range(count):
            yield record(n, n in bad)
    response = stub.SubmitBatch(messages())
    assert response.records == count
    return response.job_id


def watch(stub, job_id: str) -> list[jobs_pb2.JobProgress]:
    return list(stub.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=120))


def index_rows(kanal: KanalServer, job_id: str, count: int) -> int:
    created = kanal.jobs.get(job_id).created_at
    ids = [document_id_for(job_id, created, f"r{n}") for n in range(count)]
    with kanal.index.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(index_documents).where(
            index_documents.c.document_id.in_(ids))).scalar()


def pieces(kanal: KanalServer, job_id: str, count: int) -> int:
    created = kanal.jobs.get(job_id).created_at
    ids = [document_id_for(job_id, created, f"r{n}") for n in range(count)]
    with kanal.index.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(print_pieces).where(
            print_pieces.c.document_id.in_(ids))).scalar()


def objects(kanal: KanalServer) -> int:
    return sum(1 for _ in kanal.store.iter_objects())


@pytest.fixture(scope="module")
def finished_job(kanal, stub):
    """20 records, 3 of them bad, spread over the stream."""
    job_id = submit(stub, 20, bad={2, 9, 17}, name="with errors")
    return job_id, watch(stub, job_id)


def test_bad_records_are_reported_and_the_rest_is_composed(kanal, stub, finished_job):
    job_id, progress = finished_job
    last = progress[-1]
    assert last.final and last.job.state == "completed_with_errors"
    assert (last.job.counts.total, last.job.counts.done, last.job.counts.failed) == (20, 17, 3)
    assert last.job.counts.pending == last.job.counts.running == 0
    assert last.job.pages >= 17
    assert [(c.channel, c.documents) for c in last.job.channels] == [
        (common_pb2.CHANNEL_PRINT, 17)]
    errors = stub.GetJobErrors(jobs_pb2.GetJobErrorsRequest(job_id=job_id)).errors
    assert [e.record_key for e in errors] == ["r2", "r9", "r17"]
    assert all(e.field == "$.transactions[1].amount" and e.message for e in errors)
    assert index_rows(kanal, job_id, 20) == 17
    # every printed document is queued for print, by its print delivery (after the job)
    wait_for(lambda: pieces(kanal, job_id, 20) == 17, "17 print pieces")


def test_watch_reports_progress_until_the_end(finished_job):
    _, progress = finished_job
    assert len(progress) >= 2  # at least one in-flight message and the final one
    assert not any(p.final for p in progress[:-1])
    settled = [p.job.counts.done + p.job.counts.failed for p in progress]
    assert settled == sorted(settled) and settled[-1] == 20
    assert progress[-1].documents_per_second > 0


def test_rerunning_a_chunk_changes_nothing(kanal, stub, finished_job):
    job_id, _ = finished_job
    before = (objects(kanal), index_rows(kanal, job_id, 20),
              stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id)))
    # As if the server died after the chunk's documents were stored but before the chunk
    # was marked done: the job is running again and chunk 0 is not done.
    with kanal.jobs.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(state="running"))
        conn.execute(update(job_chunks).where(job_chunks.c.job_id == job_id,
                                              job_chunks.c.chunk == 0).values(state="pending"))
    pipeline = Pipeline.build(kanal.worker_config)
    first = pipeline.run_chunk(job_id, 0)
    with kanal.jobs.engine.begin() as conn:  # and once more, as a redelivered chunk
        conn.execute(update(job_chunks).where(job_chunks.c.job_id == job_id,
                                              job_chunks.c.chunk == 0).values(state="pending"))
        conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(state="running"))
    second = pipeline.run_chunk(job_id, 0)
    assert first.ran and second.ran and (first.documents, first.failed) == (4, 1)
    after = stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id))
    assert objects(kanal) == before[0]
    assert index_rows(kanal, job_id, 20) == before[1] == 17
    assert pieces(kanal, job_id, 20) == 17
    assert after.state == "completed_with_errors"
    assert after.counts == before[2].counts and after.pages == before[2].pages


def test_cancel_stops_a_job(kanal, stub):
    job_id = submit(stub, 40, name="cancel me")
    cancelled = stub.CancelJob(jobs_pb2.GetJobRequest(job_id=job_id))
    assert cancelled.state in ("cancelling", "cancelled")
    last = watch(stub, job_id)[-1]
    assert last.final and last.job.state == "cancelled"
    assert last.job.counts.done < 40
    assert_counts_are_the_documents(kanal, last.job, 40)


def test_cancelling_an_ended_job_is_a_failed_precondition(stub, finished_job):
    # was OK with the job as it was: nothing said that nothing had been cancelled
    job_id, _ = finished_job
    with pytest.raises(grpc.RpcError) as info:
        stub.CancelJob(jobs_pb2.GetJobRequest(job_id=job_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == (f"job {job_id} is already completed_with_errors: "
                                    "nothing to cancel")
    assert stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id)).state == "completed_with_errors"


def test_watch_sends_a_job_only_when_it_changed(stub, monkeypatch):
    # was: the same progress every 0.5 s while a chunk rendered
    monkeypatch.setattr(server.api.jobs, "WATCH_HEARTBEAT_SECONDS", 3600.0, raising=False)
    progress = watch(stub, submit(stub, 10, name="watched"))
    assert progress[-1].final and progress[-1].job.state == "completed"
    assert len(progress) >= 2
    for before, after in itertools.pairwise(progress):
        assert before.job != after.job, after


def test_watch_resends_an_unchanged_job_as_a_heartbeat(kanal, stub, monkeypatch):
    monkeypatch.setattr(server.api.jobs, "WATCH_HEARTBEAT_SECONDS", 1.0, raising=False)
    monkeypatch.setattr(kanal.job_runner, "_schedule", lambda: None)  # the job stays queued
    job_id = submit(stub, 5, name="heartbeat")
    call = stub.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=60)
    arrived = []
    for update_ in call:
        arrived.append((time.monotonic(), update_))
        if len(arrived) == 3:
            call.cancel()
            break
    monkeypatch.undo()
    stub.CancelJob(jobs_pb2.GetJobRequest(job_id=job_id))  # not for the other tests' workers
    assert [u.job.state for _, u in arrived] == ["queued"] * 3
    assert arrived[0][1].job == arrived[1][1].job == arrived[2][1].job
    for (t0, _), (t1, _) in itertools.pairwise(arrived):
        assert t1 - t0 > 0.8  # a heartbeat, not each poll (every 0.5 s)


def index_pages(kanal: KanalServer, job_id: str, count: int) -> tuple[int, int]:
    """(print outputs, their pages) in the index for the job's records r0..r<count-1>."""
    created = kanal.jobs.get(job_id).created_at
    ids = [document_id_for(job_id, created, f"r{n}") for n in range(count)]
    with kanal.index.engine.connect() as conn:
        row = conn.execute(select(func.count(), func.coalesce(func.sum(index_outputs.c.pages), 0))
                           .where(index_outputs.c.document_id.in_(ids),
                                  index_outputs.c.channel == "print")).one()
    return int(row[0]), int(row[1])


def assert_counts_are_the_documents(kanal: KanalServer, job: jobs_pb2.Job, count: int) -> None:
    c = job.counts
    assert (c.pending, c.running) == (0, 0)
    assert c.done == index_rows(kanal, job.job_id, count)
    assert c.done + c.failed + c.cancelled == c.total == count
    printed, pages = index_pages(kanal, job.job_id, count)
    assert job.pages == pages
    assert [(ch.channel, ch.documents, ch.pages) for ch in job.channels] == (
        [(common_pb2.CHANNEL_PRINT, printed, pages)] if printed else [])


def test_a_job_cancelled_mid_run_settles_with_the_counts_of_its_documents(kanal, stub):
    """Cancelled while chunks run: the running chunks finish or stop, the job ends
    `cancelled` with running 0, and its counts, pages and channels are the documents that
    exist in the index (not the summaries of the chunks that happened to finish)."""
    job_id = submit(stub, 60, name="cancel mid-run")
    for update_ in stub.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=120):
        if update_.job.counts.done > 0:
            break
    stub.CancelJob(jobs_pb2.GetJobRequest(job_id=job_id))
    last = watch(stub, job_id)[-1]
    assert last.final and last.job.state == "cancelled"
    assert 0 < last.job.counts.done < 60 and last.job.counts.cancelled > 0
    assert_counts_are_the_documents(kanal, last.job, 60)
    again = stub.CancelJob(jobs_pb2.GetJobRequest(job_id=job_id))  # nothing changes
    assert again.state == "cancelled" and again.counts == last.job.counts


def test_a_cancelled_job_left_unsettled_by_a_dead_server_settles_on_restart(
        kanal, stub, finished_job):
    """What an older server (or one killed mid-cancel) left behind: the job 'cancelled' but
    chunks still 'running' or 'pending' after a run. On start the job store sees it, and the
    runner settles those chunks from the index: the job reaches `cancelled`, running 0."""
    job_id, _ = finished_job
    with kanal.jobs.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(state="cancelled"))
        conn.execute(update(job_chunks).where(job_chunks.c.job_id == job_id,
                                              job_chunks.c.chunk == 1)
                     .values(state="running", summary=None))
        conn.execute(update(job_chunks).where(job_chunks.c.job_id == job_id,
                                              job_chunks.c.chunk == 3)
                     .values(state="pending", summary=None))
    stuck = stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id))
    assert stuck.counts.running > 0  # as the tester saw it
    kanal.jobs.create_schema()  # what a restart runs
    kanal.job_runner.notify()
    last = watch(stub, job_id)[-1]
    assert last.final and last.job.state == "cancelled"
    assert_counts_are_the_documents(kanal, last.job, 20)
    assert (last.job.counts.done, last.job.counts.failed) == (17, 3)


def submit_data(stub, channels: list[int], data: list[str], name: str) -> str:
    """A job of these records' data (JSON text as sent), keys r0, r1, ..."""
    def messages():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
            layout_id="card-invoice", job_name=name, channels=channels))
        for n, data_json in enumerate(data):
            yield jobs_pb2.SubmitBatchRequest(
                record=jobs_pb2.JobRecord(record_key=f"r{n}", data_json=data_json))
    return stub.SubmitBatch(messages()).job_id


def test_a_record_whose_data_is_not_an_object_fails_at_the_root_path(stub):
    job_id = submit_data(stub, [common_pb2.CHANNEL_PRINT],
                         [json.dumps(SAMPLE), "[1, 2]", '"x"'], "not objects")
    last = watch(stub, job_id)[-1]
    assert (last.job.state, last.job.counts.done, last.job.counts.failed) == (
        "completed_with_errors", 1, 2)
    errors = stub.GetJobErrors(jobs_pb2.GetJobErrorsRequest(job_id=job_id)).errors
    assert [(e.record_key, e.field, e.message) for e in errors] == [
        ("r1", "$", "must be a JSON object, not an array"),
        ("r2", "$", "must be a JSON object, not a string")]


def test_a_facturx_jobs_summary_counts_its_pages(stub):
    """The e-invoice of the card invoice is Factur-X: the print PDF with its CII, so as
    many pages as the print PDF, counted per channel and in the job's total."""
    job_id = submit_data(stub, [common_pb2.CHANNEL_PRINT, common_pb2.CHANNEL_EINVOICE],
                         [json.dumps(SAMPLE)] * 2, "factur-x")
    last = watch(stub, job_id)[-1]
    assert last.job.state == "completed"
    counts = {c.channel: (c.documents, c.pages) for c in last.job.channels}
    documents, pages = counts[common_pb2.CHANNEL_PRINT]
    assert documents == 2 and pages >= 2
    assert counts[common_pb2.CHANNEL_EINVOICE] == (2, pages)
    assert last.job.pages == 2 * pages


def test_bulk_workers_run_only_on_cpu_real_time_work_leaves(kanal, finished_job):
    """The job's worker processes run niced and under SCHED_IDLE (server.processes.yield_cpu),
    the server's real-time render processes at normal priority."""
    import os

    workers = kanal.job_runner.queue.worker_pids()
    own = os.getpriority(os.PRIO_PROCESS, 0)  # the tests' own nice value, which they inherit
    assert workers
    for pid in workers:
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(own + 10, 19)
    renderers = kanal.renderers.worker_pids()
    assert renderers
    for pid in renderers:
        assert os.sched_getscheduler(pid) == os.SCHED_OTHER


def test_the_jobs_print_profile_reaches_the_print_queue(kanal, stub):
    job_id = submit(stub, 6, name="negative OMR", print_profile="pb-di-negative")
    last = watch(stub, job_id)[-1]
    assert last.job.state == "completed" and last.job.print_profile == "pb-di-negative"
    created = kanal.jobs.get(job_id).created_at
    ids = [document_id_for(job_id, created, f"r{n}") for n in range(6)]

    def profiles() -> list[str]:
        with kanal.index.engine.connect() as conn:
            return conn.execute(select(print_pieces.c.profile).where(
                print_pieces.c.document_id.in_(ids))).scalars().all()
    wait_for(lambda: len(profiles()) == 6, "the job's 6 print pieces")
    assert profiles() == ["pb-di-negative"] * 6


def test_an_unknown_print_profile_is_refused_naming_the_profiles(stub):
    with pytest.raises(grpc.RpcError) as info:
        submit(stub, 1, print_profile="nope")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(info.value)] == ["header.print_profile"]
    assert '"nope"' in info.value.details()
    assert "default" in info.value.details() and "pb-di-negative" in info.value.details()


def test_jobs_are_private_to_their_tenant_and_role(kanal, finished_job):
    job_id, _ = finished_job
    with channel(kanal.address, KEYS["other", "producer"]) as ch:
        with pytest.raises(grpc.RpcError) as info:
            jobs_pb2_grpc.JobsStub(ch).GetJob(jobs_pb2.GetJobRequest(job_id=job_id))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with channel(kanal.address, KEYS["nordkort", "portal"]) as ch:
        with pytest.raises(grpc.RpcError) as info:
            jobs_pb2_grpc.JobsStub(ch).SubmitBatch(iter([]))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_stream_without_header_or_with_duplicate_keys_is_refused(stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitBatch(iter([record(1)]))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    def duplicate():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(layout_id="card-invoice"))
        yield record(1)
        yield record(1)
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitBatch(duplicate())
    # was ALREADY_EXISTS "record_key 'r1' appears twice in the job", naming no record
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, why)] = field_violations(info.value)
    assert field == "records[1].record_key"
    assert why.startswith('"r1" is already the key of records[0];')

    def repeated_much_later():  # the key was stored in an earlier batch of inserts
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(layout_id="card-invoice"))
        yield from (record(n) for n in range(INSERT_BATCH + 3))
        yield record(2)
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitBatch(repeated_much_later())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, why)] = field_violations(info.value)
    assert field == f"records[{INSERT_BATCH + 3}].record_key"
    assert why.startswith('"r2" is already the key of records[2];')


def test_records_are_numbered_from_0_after_the_header(stub):
    # the header was counted: the first record was reported as records[1]
    def keyless_first():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(layout_id="card-invoice"))
        yield jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(data_json="{}"))
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitBatch(keyless_first())
    assert [field for field, _ in field_violations(info.value)] == ["records[0].record_key"]

    def second_header():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(layout_id="card-invoice"))
        yield record(0)
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(layout_id="card-invoice"))
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitBatch(second_header())
    assert field_violations(info.value) == [("records[1]", "only the first message is a header")]


def test_an_empty_message_among_the_records_is_named_as_empty(stub):
    # was "only the first message is a header" for a message that sets no item at all
    def empty_second():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(layout_id="card-invoice"))
        yield record(0)
        yield jobs_pb2.SubmitBatchRequest()
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitBatch(empty_second())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(info.value) == [
        ("records[1]", "is empty: the message sets neither header nor record")]


def test_worker_pools_are_replaced_mid_job_without_losing_a_chunk(kanal, stub, monkeypatch):
    """Fresh worker processes after every chunk (production: once a worker's memory has
    grown by GROWTH_LIMIT_KB) bound WeasyPrint's native memory; the job must still finish
    every record exactly once."""
    import server.jobs.queue

    monkeypatch.setattr(server.jobs.queue, "GROWTH_LIMIT_KB", -1)  # every chunk "grows"
    job_id = submit(stub, 30, name="recycled")  # 6 chunks of 5: three pool swaps
    last = watch(stub, job_id)[-1]
    assert last.job.state == "completed" and last.job.counts.done == 30
    assert index_rows(kanal, job_id, 30) == 30
