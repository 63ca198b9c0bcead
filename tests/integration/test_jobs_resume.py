"""A cancelled job resumed, and its records never composed listed (ResumeJob,
GetJobCancelledRecords, `kanal job --resume | --cancelled`), end to end over gRPC: a real
KanalServer (embedded SeaweedFS, SQLite index) with its worker processes, chunks of 5.

QA: a 300-record job cancelled at 148 done, 2 failed, 150 cancelled could not be resumed,
its cancelled records could not be listed, and resubmitting the file as a new job composed
the 148 finished documents again (document ids derive from (job, record key))."""

from __future__ import annotations

import json
import re

import grpc
import pytest
from sqlalchemy import func, select

import server.jobs.worker
from archive.tables import documents as index_documents
from kanal.v1 import common_pb2, jobs_pb2, jobs_pb2_grpc
from server.app import KanalServer
from server.cli import main
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.config import Settings
from server.errors import Unavailable
from server.jobs.worker import Pipeline, document_id_for
from server.printing.queue import print_pieces
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import wait_for

pytestmark = pytest.mark.integration

TENANT = "nordkort"
KEYS = Keys((TENANT, "producer"), ("other", "producer"))
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")
SAMPLE = json.loads((DEFAULT_LAYOUTS_DIR / "card-invoice/1.0.0/sample.json").read_text())


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("kanal-resume")
    layouts = tmp_path_factory.mktemp("layouts")  # only what these tests use
    for name in ("card-invoice", "_shared"):
        (layouts / name).symlink_to(DEFAULT_LAYOUTS_DIR / name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANAL_JOB_CHUNK_SIZE", "5")
        mp.setenv("KANAL_JOB_WORKERS", "2")
        with KanalServer(Settings(listen="127.0.0.1:0", state_dir=state,
                                  layouts_dir=layouts, api_keys=KEYS.api_keys,
                                  metrics_listen="127.0.0.1:0")) as server:
            yield server


@pytest.fixture(scope="module")
def stub(kanal: KanalServer):
    with channel(kanal.address, KEYS[TENANT, "producer"]) as ch:
        yield jobs_pb2_grpc.JobsStub(ch)


def submit(stub, count: int, bad: frozenset[int] = frozenset(), name: str = "t") -> str:
    def messages():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
            layout_id="card-invoice", job_name=name, channels=[common_pb2.CHANNEL_PRINT]))
        for n in range(count):
            data = json.loads(json.dumps(SAMPLE))
            data["customer"]["customer_id"] = f"c{n:05d}"
            if n in bad:
                data["transactions"][1]["amount"] = "not money"
            yield jobs_pb2.SubmitBatchRequest(
                record=jobs_pb2.JobRecord(record_key=f"r{n}", data_json=json.dumps(data)))
    return stub.SubmitBatch(messages()).job_id


def request(job_id: str) -> jobs_pb2.GetJobRequest:
    return jobs_pb2.GetJobRequest(job_id=job_id)


def watch(stub, job_id: str) -> list[jobs_pb2.JobProgress]:
    return list(stub.WatchJob(request(job_id), timeout=180))


def documents_of(kanal: KanalServer, job_id: str, count: int) -> dict[str, int]:
    """Record key -> its index rows (documents), for records r0..r<count-1>."""
    created = kanal.jobs.get(job_id).created_at
    ids = {document_id_for(job_id, created, f"r{n}"): f"r{n}" for n in range(count)}
    with kanal.index.engine.connect() as conn:
        rows = conn.execute(select(index_documents.c.document_id, func.count())
                            .where(index_documents.c.document_id.in_(list(ids)))
                            .group_by(index_documents.c.document_id)).all()
    return {ids[document_id]: n for document_id, n in rows}


def pieces(kanal: KanalServer, job_id: str, count: int) -> int:
    created = kanal.jobs.get(job_id).created_at
    ids = [document_id_for(job_id, created, f"r{n}") for n in range(count)]
    with kanal.index.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(print_pieces).where(
            print_pieces.c.document_id.in_(ids))).scalar()


def cancelled_keys(stub, job_id: str, page_size: int = 0) -> list[str]:
    keys, token = [], ""
    while True:
        page = stub.GetJobCancelledRecords(jobs_pb2.GetJobCancelledRecordsRequest(
            job_id=job_id, page_size=page_size, page_token=token))
        keys += page.record_keys
        token = page.next_page_token
        if not token:
            return keys


def error_keys(stub, job_id: str) -> list[str]:
    return [e.record_key for e in stub.GetJobErrors(
        jobs_pb2.GetJobErrorsRequest(job_id=job_id)).errors]


def assert_exact(job: jobs_pb2.Job, total: int) -> None:
    c = job.counts
    assert c.total == total
    assert c.pending + c.running + c.done + c.failed + c.cancelled == total, c


def cli(kanal: KanalServer, *args: str) -> int:
    return main([*args, "--address", kanal.address, "--key", KEYS[TENANT, "producer"]])


def printed(captured: str) -> list[str]:
    """What the command printed: the lines between the server's log lines (the server in
    this process logs to stdout as well)."""
    return [line for line in captured.splitlines() if not LOG_LINE.match(line)]


def test_a_job_cancelled_mid_chunk_lists_its_cancelled_records_and_resumes_them_once(
        kanal, stub, monkeypatch, capsys):
    """30 records (r6 and r22 bad) in chunks of 5, cancelled the way QA's job was: chunk 0
    done; chunk 2's run committed r10-r12 and then S3 refused the rest (waiting for its
    retry); chunk 1 stopped by the cancel after r5-r7 (r6 failed); chunks 3-5 never ran.
    Its cancelled records are listed, it resumes, and each record ends with exactly one
    document (r6 and r22 with their errors), the totals exact at every step."""
    monkeypatch.setattr(kanal.job_runner, "_schedule", lambda: None)  # we run the chunks
    job_id = submit(stub, 30, bad=frozenset({6, 22}), name="cancelled for the night")
    created = kanal.jobs.get(job_id).created_at
    pipeline = Pipeline.build(kanal.worker_config)

    assert pipeline.run_chunk(job_id, 0).ran

    commit = pipeline.documents.commit

    def commit_three_then_s3_refuses(rendered):
        commit(rendered[:3])
        raise Unavailable("S3 refused the rest")

    monkeypatch.setattr(pipeline.documents, "commit", commit_three_then_s3_refuses)
    with pytest.raises(Unavailable):
        pipeline.run_chunk(job_id, 2)
    kanal.jobs.chunk_failed(job_id, 2, "S3 refused the rest")  # as the runner counts it
    monkeypatch.setattr(pipeline.documents, "commit", commit)

    render = pipeline.documents.render_as
    r7 = document_id_for(job_id, created, "r7")

    def render_then_cancel_after_r7(compose, document_id, now, **kw):
        result = render(compose, document_id, now, **kw)
        if document_id == r7:
            stub.CancelJob(request(job_id))
        return result

    monkeypatch.setattr(pipeline.documents, "render_as", render_then_cancel_after_r7)
    monkeypatch.setattr(server.jobs.worker, "CANCEL_CHECK_EVERY", 1)
    assert not pipeline.run_chunk(job_id, 1).ran  # stopped at r8
    monkeypatch.undo()  # the server's runner settles chunk 2 (no worker holds it)
    kanal.job_runner.notify()
    cancelled = watch(stub, job_id)[-1].job
    assert cancelled.state == "cancelled"
    c = cancelled.counts
    assert (c.done, c.failed, c.cancelled, c.pending, c.running) == (8, 1, 21, 0, 0)
    assert sorted(documents_of(kanal, job_id, 30)) == sorted(
        [f"r{n}" for n in range(5)] + ["r10", "r11", "r12"])

    # the records not done: neither a document (r0-r4, r10-r12) nor failed (r6)
    not_done = ["r5", "r7", "r8", "r9", "r13", "r14"] + [f"r{n}" for n in range(15, 30)]
    assert cancelled_keys(stub, job_id) == not_done
    assert cancelled_keys(stub, job_id, page_size=4) == not_done  # page after page
    assert error_keys(stub, job_id) == ["r6"]
    capsys.readouterr()
    assert cli(kanal, "job", job_id, "--cancelled") == 0
    assert printed(capsys.readouterr().out) == not_done

    assert cli(kanal, "job", job_id, "--resume") == 0
    resumed = json.loads("\n".join(printed(capsys.readouterr().out)))
    assert resumed["state"] in ("queued", "running")
    assert "cancelled" not in resumed["counts"]  # 0: left out of the JSON
    assert int(resumed["counts"]["done"]) >= 8

    progress = watch(stub, job_id)
    for update in progress:
        assert_exact(update.job, 30)
        assert update.job.counts.cancelled == 0
    done = [u.job.counts.done for u in progress]
    assert done == sorted(done) and done[0] >= 8  # no document counted twice, or lost
    last = progress[-1].job
    assert last.state == "completed_with_errors"
    assert (last.counts.done, last.counts.failed, last.counts.cancelled) == (28, 2, 0)
    assert (last.counts.pending, last.counts.running) == (0, 0)
    made = documents_of(kanal, job_id, 30)
    assert sorted(made) == sorted(f"r{n}" for n in range(30) if n not in (6, 22))
    assert set(made.values()) == {1}  # exactly one document per record
    assert last.pages >= 28 and [(ch.channel, ch.documents) for ch in last.channels] == [
        (common_pb2.CHANNEL_PRINT, 28)]
    assert error_keys(stub, job_id) == ["r6", "r22"]
    assert cancelled_keys(stub, job_id) == []
    wait_for(lambda: pieces(kanal, job_id, 30) == 28, "28 print pieces, one per document")


def test_a_resumed_job_can_be_cancelled_and_resumed_again(kanal, stub):
    job_id = submit(stub, 60, name="stopped twice")
    for update in stub.WatchJob(request(job_id), timeout=180):
        if update.job.counts.done > 0:
            break
    stub.CancelJob(request(job_id))
    first = watch(stub, job_id)[-1].job
    assert first.state == "cancelled" and first.counts.cancelled > 0
    assert len(cancelled_keys(stub, job_id)) == first.counts.cancelled

    assert stub.ResumeJob(request(job_id)).counts.cancelled == 0
    again = stub.CancelJob(request(job_id))  # while its chunks run
    assert again.state in ("cancelling", "cancelled")
    second = watch(stub, job_id)[-1].job
    assert second.state == "cancelled"
    assert_exact(second, 60)
    assert second.counts.done == len(documents_of(kanal, job_id, 60))
    keys = cancelled_keys(stub, job_id)
    assert len(keys) == second.counts.cancelled
    assert not set(keys) & set(documents_of(kanal, job_id, 60))

    stub.ResumeJob(request(job_id))
    last = watch(stub, job_id)[-1].job
    assert last.state == "completed"
    assert (last.counts.done, last.counts.cancelled, last.counts.failed) == (60, 0, 0)
    made = documents_of(kanal, job_id, 60)
    assert len(made) == 60 and set(made.values()) == {1}


def resume_refused(stub, job_id: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.ResumeJob(request(job_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    return info.value


def test_only_a_cancelled_job_is_resumed_and_the_refusal_names_its_state(
        kanal, stub, monkeypatch):
    done = submit(stub, 5, name="completed")
    assert watch(stub, done)[-1].job.state == "completed"
    assert resume_refused(stub, done).details() == (
        f"job {done} is already completed: nothing to resume")
    assert stub.GetJob(request(done)).state == "completed"

    monkeypatch.setattr(kanal.job_runner, "_schedule", lambda: None)  # it stays queued
    waiting = submit(stub, 10, name="waiting")
    assert resume_refused(stub, waiting).details() == (
        f"job {waiting} is queued, not cancelled: nothing to resume")
    assert kanal.jobs.start_chunk(waiting, 0)  # a worker holds chunk 0 (and then dies)
    assert stub.CancelJob(request(waiting)).state == "cancelling"
    assert resume_refused(stub, waiting).details() == (
        f"job {waiting} is cancelling: its running chunks are still being settled; resume "
        "it once it is cancelled")
    monkeypatch.undo()
    kanal.job_runner.notify()  # the runner settles chunk 0
    assert watch(stub, waiting)[-1].job.state == "cancelled"
    assert cancelled_keys(stub, waiting) == [f"r{n}" for n in range(10)]
    stub.ResumeJob(request(waiting))
    assert resume_refused(stub, waiting).details().startswith(f"job {waiting} is ")
    last = watch(stub, waiting)[-1].job
    assert last.state == "completed" and last.counts.done == 10
    assert resume_refused(stub, waiting).details() == (
        f"job {waiting} is already completed: nothing to resume")


def test_another_tenants_job_is_not_found(kanal, stub):
    job_id = submit(stub, 5, name="mine")
    stub.CancelJob(request(job_id))
    assert watch(stub, job_id)[-1].job.state == "cancelled"
    with channel(kanal.address, KEYS["other", "producer"]) as ch:
        other = jobs_pb2_grpc.JobsStub(ch)
        with pytest.raises(grpc.RpcError) as info:
            other.ResumeJob(request(job_id))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as info:
            other.GetJobCancelledRecords(jobs_pb2.GetJobCancelledRecordsRequest(job_id=job_id))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert stub.GetJob(request(job_id)).state == "cancelled"
