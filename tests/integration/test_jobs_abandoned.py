"""A SubmitBatch stream its client abandons (cancelled, past its deadline, an interrupted
`kanal submit`) leaves no job behind (server/api/interceptor._RequestStream).

QA H1: the server took the end of a cancelled stream for the client's half-close and sealed
a job of the records that had arrived; that job was printed and delivered, the client (which
saw CANCELLED and got no job id) sent the file again: the first customers got two letters,
and with an idempotency key the full file was refused ALREADY_EXISTS for ever.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from unittest import mock

import grpc
import pytest
from sqlalchemy import func, select

from kanal.v1 import jobs_pb2
from server import auth
from server.api.interceptor import _RequestStream
from server.errors import NotFound, Unavailable
from server.jobs.model import JobHeader
from server.jobs.queue import LocalQueue
from server.jobs.runner import JobRunner
from server.jobs.tables import jobs
from tests.integration.test_jobs_api import KEYS, kanal, record, stub  # noqa: F401 (fixtures)


def job_count(kanal) -> int:  # noqa: F811
    with kanal.jobs.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(jobs)).scalar()


def header(key: str) -> jobs_pb2.SubmitBatchRequest:
    return jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(
        layout_id="card-invoice", job_name="abandoned", idempotency_key=key))


def stalled(key: str, count: int, sent: threading.Event, release: threading.Event):
    """The header and `count` records, then a wait until `release` (the client's pause)."""
    yield header(key)
    yield from (record(n) for n in range(count))
    sent.set()
    release.wait(30)


@pytest.mark.parametrize("how", ["cancel", "deadline"])
def test_an_abandoned_stream_leaves_no_job_and_its_key_free(kanal, stub, how):  # noqa: F811
    key = f"abandoned-{how}-{time.time_ns()}"
    before = job_count(kanal)
    sent, release = threading.Event(), threading.Event()
    try:
        if how == "cancel":
            call = stub.SubmitBatch.future(stalled(key, 7, sent, release))
            assert sent.wait(10)
            time.sleep(0.5)  # the records reach the server
            call.cancel()
            with pytest.raises(grpc.FutureCancelledError):
                call.result()
        else:
            with pytest.raises(grpc.RpcError) as info:
                stub.SubmitBatch(stalled(key, 7, sent, release), timeout=2)
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        release.set()
    time.sleep(1)  # the server has seen the end of the stream
    assert job_count(kanal) == before

    # the whole file under the same key is a new job, not ALREADY_EXISTS
    response = stub.SubmitBatch(iter([header(key), *(record(n) for n in range(12))]))
    assert (response.records, response.replayed) == (12, False)
    assert job_count(kanal) == before + 1


# The race these guard against (the end of reading delivered before the cancellation) is
# not reproducible on demand through a real client, so each check is also driven directly.


class GoneContext:
    """A call whose client has gone away."""

    def is_active(self) -> bool:
        return False

    def done(self) -> bool:
        return True


def test_records_read_to_the_end_of_a_cancelled_call_are_not_kept(kanal):  # noqa: F811
    """JobsServicer.SubmitBatch: all records read, but the call is no longer active when
    the job would be sealed: the job is discarded."""
    auth.set_caller(auth.Caller("test", "nordkort", "producer"))
    try:
        before = job_count(kanal)
        messages = iter([header(f"gone-{time.time_ns()}"), record(1), record(2)])
        with pytest.raises(Unavailable, match="cancelled before it ended; nothing was kept"):
            kanal.jobs_servicer.SubmitBatch(messages, GoneContext())
        assert job_count(kanal) == before
    finally:
        auth.set_caller(None)


def test_the_end_of_a_stream_whose_call_is_done_is_not_a_half_close():
    """_RequestStream: when the messages end and the call is done (cancelled), the reader
    learns of the cancellation, not of the end of the client's messages."""
    async def two():
        yield record(1)
        yield record(2)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        gone = _RequestStream(two(), loop, idle=5, total=60, context=GoneContext())
        with pytest.raises(Unavailable, match="cancelled before its last message"):
            list(gone)  # both records are read, then the end is refused
        here = _RequestStream(two(), loop, idle=5, total=60, context=mock.Mock(done=lambda: False))
        assert list(here) == [record(1), record(2)]  # a half-close: the end of the messages
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_a_job_left_receiving_by_a_dead_server_is_discarded_once_no_stream_can_feed_it(
        kanal, tmp_path):  # noqa: F811
    """QA L4: a server killed mid-SubmitBatch left its job 'receiving' for ever. The runner
    discards such a job once it is older than the stream's time limit (and a margin), not
    before: another server may still be receiving it."""
    store = kanal.jobs
    header = JobHeader(tenant="nordkort", layout_id="card-invoice", layout_version="2.0.0",
                       job_name="left receiving", channels=(), print_profile="", priority=0)
    now = datetime.now(UTC)
    store.create_job("01DEADSERVERJOB0000000000A", header, now - timedelta(hours=2))
    store.add_records("01DEADSERVERJOB0000000000A", iter([("r1", "{}")]))
    store.create_job("01LIVESTREAMJOB0000000000A", header, now - timedelta(minutes=5))
    runner = JobRunner(store, LocalQueue(kanal.worker_config, 1),
                       abandoned_after=timedelta(hours=1, minutes=1))
    try:
        runner._sweep()
    finally:
        runner.queue.close()
    with pytest.raises(NotFound):
        store.get("01DEADSERVERJOB0000000000A")
    assert store.get("01LIVESTREAMJOB0000000000A").state == "receiving"
    store.discard("01LIVESTREAMJOB0000000000A")
