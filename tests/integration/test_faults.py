"""Faults with real processes: slow clients holding streams, a burst of 200 Compose calls, a
poison record, the embedded SeaweedFS paused (SIGSTOP) and killed (SIGKILL) under a running
server. The server must keep answering what does not need the broken part, refuse what it
cannot take with the right status, and lose or duplicate nothing.

One server for the module, with small limits so each fault shows in seconds; the tests that
pause and kill S3 run last.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import func, select

from archive import deadline
from archive.keys import customer_prefix
from archive.rebuild import reconcile
from archive.tables import documents as index_documents
from archive.tables import outputs as index_outputs
from kanal.v1 import (
    common_pb2,
    documents_pb2,
    documents_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    layouts_pb2,
    layouts_pb2_grpc,
    portal_pb2,
    portal_pb2_grpc,
)
from server.api.errors import RETRY_PUSHBACK_HEADER, retry_delay
from server.app import KanalServer
from server.compose.layouts import DEFAULT_LAYOUTS_DIR, LayoutRegistry
from server.config import Settings
from server.jobs.worker import document_id_for
from server.printing.queue import print_pieces
from tests.client import Keys, channel
from tests.integration.delivery_fixtures import queued_pieces, wait_for

pytestmark = pytest.mark.integration

KEYS = Keys(("nordkort", "producer"), ("nordkort", "admin"), ("other", "producer"))
# admin may read the portal too (FetchDocument) and submit jobs
SERVING, NOT_SERVING = (health_pb2.HealthCheckResponse.SERVING,
                        health_pb2.HealthCheckResponse.NOT_SERVING)
RENDER_QUEUE, RENDER_WORKERS = 4, 2
LIMITS = {"render_queue": RENDER_QUEUE, "streams": 4, "streams_per_key": 2,
          "stream_idle_seconds": 2.0}


def sample(layout_id: str) -> str:
    return (DEFAULT_LAYOUTS_DIR / layout_id / "2.0.0" / "sample.json").read_text()


CARD = json.loads(sample("card-invoice"))
LETTER = sample("welcome-letter")


@pytest.fixture(scope="module")
def kanal(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KANAL_JOB_CHUNK_SIZE", "4")
        mp.setenv("KANAL_JOB_WORKERS", "1")
        with KanalServer(Settings(listen="127.0.0.1:0",
                                  state_dir=tmp_path_factory.mktemp("kanal-faults"),
                                  api_keys=KEYS.api_keys, render_workers=RENDER_WORKERS,
                                  limits=LIMITS)) as server:
            yield server


@pytest.fixture(scope="module")
def ch(kanal: KanalServer):
    with channel(kanal.address, KEYS["nordkort", "producer"]) as ch:
        yield ch


def timed(call, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    try:
        result = call(*args, **kwargs)
    except grpc.RpcError as exc:
        result = exc
    return time.perf_counter() - started, result


def health(ch: grpc.Channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(ch).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=2).status


def wait_for_health(ch: grpc.Channel, service: str, status: int, timeout: float = 60) -> None:
    """Follow the health Watch stream until `service` reports `status`."""
    for answer in health_pb2_grpc.HealthStub(ch).Watch(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout):
        if answer.status == status:
            return


def preview(ch: grpc.Channel, timeout: float = 30):
    return documents_pb2_grpc.DocumentsStub(ch).Compose(documents_pb2.ComposeRequest(
        layout_id="welcome-letter", data_json=LETTER, preview=True), timeout=timeout)


def cheap_calls_are_fast(ch: grpc.Channel, limit: float = 1.0) -> None:
    seconds, status = timed(health, ch)
    assert status == SERVING and seconds < limit, (status, seconds)
    seconds, layouts = timed(layouts_pb2_grpc.LayoutsStub(ch).ListLayouts,
                             layouts_pb2.ListLayoutsRequest(), timeout=5)
    assert len(layouts.layouts) == len(LayoutRegistry().latest()) and seconds < limit, (
        layouts, seconds)


def record(n: int, change=None) -> jobs_pb2.SubmitBatchRequest:
    data = json.loads(json.dumps(CARD))
    data["customer"]["customer_id"] = f"f{n:05d}"
    text = json.dumps(data)
    if change is not None:
        text = change(data)
    return jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(record_key=f"r{n}",
                                                                  data_json=text))


def header(name: str) -> jobs_pb2.SubmitBatchRequest:
    return jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
        layout_id="card-invoice", job_name=name, channels=[common_pb2.CHANNEL_PRINT]))


# --- slow clients ---------------------------------------------------------------------------


def test_idle_streams_are_bounded_and_cut_while_health_and_compose_answer(kanal, ch):
    release = threading.Event()

    def idle_stream():  # a header, then nothing: a client that holds its stream
        yield header("idle")
        release.wait(60)

    stream_lane = kanal.lanes.by_name["stream"]
    with ExitStack() as opened:
        channels = {role: opened.enter_context(channel(kanal.address, KEYS["nordkort", role]))
                    for role in ("producer", "admin")}
        other = opened.enter_context(channel(kanal.address, KEYS["other", "producer"]))
        opened.callback(release.set)  # first thing on the way out: let the clients go
        held = [jobs_pb2_grpc.JobsStub(channels[role]).SubmitBatch.future(idle_stream())
                for role in ("producer", "producer", "admin", "admin")]
        for _ in range(200):  # until the server has admitted all four
            if stream_lane.held == 4:
                break
            time.sleep(0.02)
        assert stream_lane.held == 4
        started = time.monotonic()

        # A third stream of one key, and any stream once the lane is full: refused at once
        for stub_channel, why in ((channels["producer"], "this API key already has 2"),
                                  (other, "queue is full")):
            seconds, error = timed(jobs_pb2_grpc.JobsStub(stub_channel).SubmitBatch,
                                   iter([header("one too many")]), timeout=10)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
            assert why in error.details() and seconds < 1.0
            assert retry_delay(error) is not None
            assert RETRY_PUSHBACK_HEADER in dict(error.trailing_metadata())

        # Health, cheap calls and Compose answer while the streams are held
        cheap_calls_are_fast(ch)
        seconds, result = timed(preview, ch)
        assert result.outputs and seconds < 10

        # Each idle stream is cut after the idle limit (2 s) with RESOURCE_EXHAUSTED
        for future in held:
            error = future.exception(timeout=30)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "idle limit" in error.details()
        assert time.monotonic() - started < 10
        assert stream_lane.held == 0


def test_a_client_that_stops_reading_is_cut_after_the_idle_limit(kanal, ch):
    data = json.loads(json.dumps(CARD))
    data["transactions"] = data["transactions"] * 40  # a PDF larger than the HTTP/2 window
    composed = documents_pb2_grpc.DocumentsStub(ch).Compose(documents_pb2.ComposeRequest(
        layout_id="card-invoice", data_json=json.dumps(data),
        channels=[common_pb2.CHANNEL_PRINT]), timeout=120)
    assert composed.outputs[0].size > 200_000
    stream_lane = kanal.lanes.by_name["stream"]
    # no bandwidth probing: the window stays at its 64 KB, as for a slow network
    with grpc.insecure_channel(kanal.address, options=[("grpc.http2.bdp_probe", 0)]) as raw:
        stream = portal_pb2_grpc.PortalStub(raw).FetchDocument(
            portal_pb2.FetchDocumentRequest(document_id=composed.document_id),
            metadata=(("authorization", f"Bearer {KEYS['nordkort', 'admin']}"),), timeout=60)
        assert next(stream).data
        assert stream_lane.held == 1
        started = time.monotonic()
        cheap_calls_are_fast(ch)  # meanwhile (the client reads nothing)
        stream_lane_freed = False
        for _ in range(500):  # until the server gives up on the reader
            if stream_lane.held == 0:
                stream_lane_freed = True
                break
            time.sleep(0.02)
        assert stream_lane_freed and time.monotonic() - started < 10
        with pytest.raises(grpc.RpcError) as info:
            list(stream)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "read nothing" in info.value.details()


# --- a burst of real-time calls -----------------------------------------------------------------


def test_200_concurrent_compose_calls_admitted_or_refused_and_health_answers(kanal, ch):
    stub = documents_pb2_grpc.DocumentsStub(ch)
    request = documents_pb2.ComposeRequest(layout_id="welcome-letter", data_json=LETTER,
                                           preview=True, channels=[common_pb2.CHANNEL_PRINT])
    preview(ch)  # warm
    finished: dict[int, float] = {}
    outcomes: dict[int, object] = {}
    all_done = threading.Event()
    lock = threading.Lock()

    def callback(n: int, started: float):
        def done(future):
            with lock:
                finished[n] = time.perf_counter() - started
                outcomes[n] = future.exception() or future.result()
                if len(outcomes) == 200:
                    all_done.set()
        return done

    for n in range(200):
        future = stub.Compose.future(request, timeout=60)
        future.add_done_callback(callback(n, time.perf_counter()))
    cheap_calls_are_fast(ch)  # health and reads never wait behind the renders
    assert all_done.wait(120)

    admitted = [finished[n] for n, o in outcomes.items() if not isinstance(o, grpc.RpcError)]
    refused = [o for o in outcomes.values() if isinstance(o, grpc.RpcError)]
    assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert all(retry_delay(e) for e in refused)
    # At most render workers + queue at once, so the admitted wait behind at most that many
    assert RENDER_WORKERS + RENDER_QUEUE <= len(admitted) < 100 and len(refused) > 100
    p99 = statistics.quantiles(admitted, n=100)[98] if len(admitted) > 1 else admitted[0]
    assert p99 < 8.0, f"admitted p99 {p99:.2f} s"


# --- a poison record ------------------------------------------------------------------------------


def test_a_poison_record_is_reported_and_the_job_completes(kanal, ch):
    jobs = jobs_pb2_grpc.JobsStub(ch)

    def poison(data):  # the record: a number Decimal arithmetic cannot round
        data["invoice"]["previous_balance"] = "@"
        return json.dumps(data).replace('"@"', "1e309")

    def two_bad_fields(data):
        data["currency"] = "N0K"
        data["transactions"][2]["amount"] = "12,50"
        return json.dumps(data)

    def messages():
        yield header("poison")
        for n in range(8):
            yield record(n, poison if n == 1 else two_bad_fields if n == 6 else None)
    job_id = jobs.SubmitBatch(messages(), timeout=30).job_id
    last = list(jobs.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=120))[-1]
    assert last.job.state == "completed_with_errors"
    assert (last.job.counts.done, last.job.counts.failed) == (6, 2)
    assert not last.job.stalled_reason
    errors = jobs.GetJobErrors(jobs_pb2.GetJobErrorsRequest(job_id=job_id)).errors
    assert [(e.record_key, e.field) for e in errors] == [
        ("r1", "$.invoice.previous_balance"),
        ("r6", "$.currency"), ("r6", "$.transactions[2].amount")]
    assert all(e.message for e in errors)


# --- S3 paused -----------------------------------------------------------------------------------


def test_a_deadline_too_short_for_the_archive_is_deadline_exceeded_and_never_indexed(kanal, ch):
    """QA: a Compose whose deadline left the archive no time was answered UNAVAILABLE ("S3 did
    not answer within 0.0 s", S3 healthy), and `kanal archive reconcile` later indexed the
    objects its abandoned puts had stored: a second, never delivered copy in the portal.
    Here S3 answers after 0.6 s (paused) while the call has 0.1 s left for the archive."""
    stub = documents_pb2_grpc.DocumentsStub(ch)
    customer = f"deadline-{os.urandom(3).hex()}"
    data = json.loads(LETTER)
    data["customer"]["customer_id"] = customer
    pid, real_commit = kanal.embedded_s3.pid, kanal.documents.archiving.commit

    def commit_with_little_time(documents):  # type: ignore[no-untyped-def]
        deadline.set_timeout(deadline.MARGIN_SECONDS + 0.1)  # in the call's context
        os.killpg(pid, signal.SIGSTOP)
        threading.Timer(0.6, os.killpg, (pid, signal.SIGCONT)).start()
        return real_commit(documents)

    kanal.documents.archiving.commit = commit_with_little_time
    try:
        with pytest.raises(grpc.RpcError) as refused:
            stub.Compose(documents_pb2.ComposeRequest(
                layout_id="welcome-letter", data_json=json.dumps(data),
                channels=[common_pb2.CHANNEL_PRINT]), timeout=30)
    finally:
        del kanal.documents.archiving.commit
    assert refused.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, refused.value
    assert "nothing was indexed" in refused.value.details()

    kanal.documents.abandonments.wait()  # the marker is put after the answer
    prefix = customer_prefix("nordkort", customer)
    objects = wait_for(lambda: (lambda keys: keys if len(keys) == 2 else None)(
        sorted(o.key for o in kanal.store.iter_objects(prefix))),
        "the abandoned put and its marker stored", 30,
        explain=lambda: sorted(o.key for o in kanal.store.iter_objects(prefix)))
    assert [key.rsplit("/", 1)[1] for key in objects] == ["abandoned.json", "print.pdf"]
    document_id = objects[0].split("/")[-2]
    report = reconcile(kanal.store, kanal.index, prefix=prefix, min_age=timedelta(0))
    assert (report.indexed, report.abandoned) == ([], [f"nordkort/{document_id}"])
    with pytest.raises(grpc.RpcError) as lookup:
        stub.GetDocument(documents_pb2.GetDocumentRequest(document_id=document_id))
    assert lookup.value.code() == grpc.StatusCode.NOT_FOUND
    assert health(ch, "kanal.archive") == SERVING  # a short deadline says nothing of S3


def test_a_paused_s3_answers_unavailable_within_the_deadline_and_starves_nothing(kanal, ch):
    stub = documents_pb2_grpc.DocumentsStub(ch)
    request = documents_pb2.ComposeRequest(layout_id="welcome-letter", data_json=LETTER,
                                           channels=[common_pb2.CHANNEL_PRINT])
    pid = kanal.embedded_s3.pid
    os.killpg(pid, signal.SIGSTOP)
    try:
        # Compose calls that must archive: each answers UNAVAILABLE before its deadline
        with ThreadPoolExecutor(RENDER_WORKERS + RENDER_QUEUE) as pool:
            calls = [pool.submit(timed, stub.Compose, request, timeout=4)
                     for _ in range(RENDER_WORKERS + RENDER_QUEUE)]
            for _ in range(300):  # until they have rendered and wait on the paused archive
                if kanal.store.requests_in_flight >= RENDER_WORKERS:
                    break
                time.sleep(0.01)
            # meanwhile what needs no archive stays fast
            cheap_calls_are_fast(ch)
            seconds, result = timed(preview, ch)
            assert result.outputs and seconds < 3, (result, seconds)
            codes = []
            for call in calls:
                seconds, error = call.result()
                assert isinstance(error, grpc.RpcError), error
                codes.append(error.code())
                assert seconds < 4
            # S3 given time and silent: UNAVAILABLE; a call that waited for a render process
            # until its deadline left S3 no time (< 0.25 s: archive.bounded_calls) is
            # DEADLINE_EXCEEDED, as it would be with S3 up
            assert set(codes) <= {grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.DEADLINE_EXCEEDED}, codes
            assert grpc.StatusCode.UNAVAILABLE in codes, codes
        wait_for_health(ch, "kanal.archive", NOT_SERVING, timeout=10)
        assert health(ch, "kanal.v1.Documents") == NOT_SERVING
        assert health(ch, "kanal.v1.Layouts") == SERVING
    finally:
        os.killpg(pid, signal.SIGCONT)
    wait_for_health(ch, "kanal.archive", SERVING, timeout=30)
    assert health(ch) == SERVING
    assert stub.Compose(request, timeout=30).outputs[0].archive_key


# --- S3 killed ------------------------------------------------------------------------------------


def test_a_killed_s3_is_restarted_reaped_and_the_job_finishes_exactly_once(kanal, ch):
    jobs = jobs_pb2_grpc.JobsStub(ch)
    job_id = jobs.SubmitBatch(iter([header("killed s3"), *(record(100 + n) for n in range(12))]),
                              timeout=30).job_id
    old = kanal.embedded_s3.pid
    for progress in jobs.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=120):
        if progress.job.counts.done >= 2:
            break
    os.killpg(old, signal.SIGKILL)
    wait_for_health(ch, "kanal.archive", NOT_SERVING, timeout=10)
    assert health(ch) == NOT_SERVING
    wait_for_health(ch, "kanal.archive", SERVING, timeout=60)
    # the supervisor counts the restart once its launch returns, which is a moment after the
    # new SeaweedFS answers the health probe (it failed once in CI reading 0)
    deadline = time.monotonic() + 5
    while kanal.embedded_s3.restarts < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kanal.embedded_s3.pid != old and kanal.embedded_s3.restarts >= 1
    assert not Path(f"/proc/{old}").exists(), "the dead SeaweedFS was not reaped (a zombie)"

    last = list(jobs.WatchJob(jobs_pb2.GetJobRequest(job_id=job_id), timeout=180))[-1]
    assert last.job.state == "completed" and last.job.counts.done == 12
    assert not last.job.stalled_reason
    created = kanal.jobs.get(job_id).created_at
    ids = [document_id_for(job_id, created, f"r{100 + n}") for n in range(12)]
    queued_pieces(kanal.index.engine, ids, 12)  # by the print deliveries, after the job
    with kanal.index.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(index_documents).where(
            index_documents.c.document_id.in_(ids))).scalar()
        keys = [k for (k,) in conn.execute(select(index_outputs.c.key).where(
            index_outputs.c.document_id.in_(ids)))]
        pieces = conn.execute(select(func.count()).select_from(print_pieces).where(
            print_pieces.c.document_id.in_(ids))).scalar()
    stored = [o.key for o in kanal.store.iter_objects() if any(i in o.key for i in ids)]
    assert rows == 12 and pieces == 12
    assert sorted(stored) == sorted(keys) and len(keys) == len(set(keys)) == 12
