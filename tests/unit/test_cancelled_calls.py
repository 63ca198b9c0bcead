"""A call its client cancels, or whose deadline passes, is seen as gone by its synchronous
servicer (`SyncContext.is_active()`), through a real grpc.aio server and the interceptor.

QA: grpc.aio's `ServicerContext.done()` is only whether a status was sent; a cancelled call
never sends one (grpcio cancels the call's task instead), so `is_active()` stayed True for
good. A WatchDeliveries whose client went away then polled in its stream-lane thread for
ever: 16 such streams (any service key closing its watch) and the stream lane refused every
SubmitBatch, WatchJob and FetchDocument RESOURCE_EXHAUSTED until a restart. And a SubmitBatch
whose client was cancelled after its last record sent was sealed as a job of the records that
had arrived (`JobsServicer._abandoned` never saw the cancel).
"""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest

from kanal.v1 import deliveries_pb2, jobs_pb2
from server.api.admission import Lanes, Limits
from server.api.interceptor import KanalInterceptor
from server.auth import ApiKey, Authenticator, hash_key
from server.errors import Unavailable

KEY = "qa-secret"
WATCH = "/kanal.v1.Deliveries/WatchDeliveries"
SUBMIT = "/kanal.v1.Jobs/SubmitBatch"
GRACE = 3.0  # seconds a servicer waits to learn that its call is gone


class Server:
    """A grpc.aio server on its own loop thread, with the Kanal interceptor and two
    synchronous servicers that record what they saw of their call."""

    def __init__(self):
        self.watch_ended = threading.Event()   # WatchDeliveries left its loop
        self.watch_saw_gone = False            # ... because is_active() turned False
        self.submit_saw_gone: bool | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.lanes = Lanes(Limits(), render_workers=1)
        self.handled: list[tuple[str, grpc.StatusCode]] = []  # what the RPC metrics count
        interceptor = KanalInterceptor(
            Authenticator([ApiKey("k", hash_key(KEY), "t", "admin")]), self.lanes, Limits(),
            observers=[lambda method, code, _: self.handled.append((method, code))])
        self.port = asyncio.run_coroutine_threadsafe(self._start(interceptor), self.loop
                                                     ).result(10)

    async def _start(self, interceptor: KanalInterceptor) -> int:
        self.server = grpc.aio.server(interceptors=[interceptor])
        handlers = {
            "WatchDeliveries": grpc.unary_stream_rpc_method_handler(
                self.watch, deliveries_pb2.WatchDeliveriesRequest.FromString,
                deliveries_pb2.DeliveryEvent.SerializeToString),
        }
        jobs = {
            "SubmitBatch": grpc.stream_unary_rpc_method_handler(
                self.submit, jobs_pb2.SubmitBatchRequest.FromString,
                jobs_pb2.SubmitBatchResponse.SerializeToString),
        }
        self.server.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler("kanal.v1.Deliveries", handlers),
            grpc.method_handlers_generic_handler("kanal.v1.Jobs", jobs)))
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return port

    def watch(self, request, context):  # as WatchDeliveries: poll while the caller is there
        ends = time.monotonic() + 10
        while context.is_active() and time.monotonic() < ends:
            time.sleep(0.05)
        self.watch_saw_gone = not context.is_active()
        self.watch_ended.set()
        yield from ()

    def submit(self, requests, context):  # as SubmitBatch: read all, then is the client there?
        time.sleep(1.0)  # busy storing (a batch of records): the cancel comes meanwhile
        try:
            for _ in requests:
                pass
        except Unavailable:  # the cancel reached the reader first: that is seeing it too
            self.submit_saw_gone = True
            raise
        ends = time.monotonic() + GRACE
        while context.is_active() and time.monotonic() < ends:
            time.sleep(0.01)
        self.submit_saw_gone = not context.is_active()
        return jobs_pb2.SubmitBatchResponse(job_id="j")

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.lanes.close()


@pytest.fixture
def server():
    s = Server()
    try:
        yield s
    finally:
        s.close()


def metadata():
    return [("authorization", f"Bearer {KEY}")]


@pytest.mark.parametrize("how", ["cancel", "deadline"])
def test_a_server_stream_whose_client_went_away_ends_its_thread(server, how):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_stream(WATCH, deliveries_pb2.WatchDeliveriesRequest.SerializeToString,
                                    deliveries_pb2.DeliveryEvent.FromString)
        if how == "cancel":
            events = call(deliveries_pb2.WatchDeliveriesRequest(document_id="d"),
                          metadata=metadata())
            time.sleep(0.5)
            events.cancel()
        else:
            with pytest.raises(grpc.RpcError) as info:
                list(call(deliveries_pb2.WatchDeliveriesRequest(document_id="d"),
                          metadata=metadata(), timeout=0.5))
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert server.watch_ended.wait(GRACE), "the servicer still polls for a gone client"
    assert server.watch_saw_gone
    # and the RPC metrics count it (grpc_server_handled_total), as the client saw it
    expected = (grpc.StatusCode.CANCELLED if how == "cancel"
                else grpc.StatusCode.DEADLINE_EXCEEDED)
    assert server.handled == [(WATCH, expected)]


@pytest.mark.parametrize("how", ["cancel", "deadline"])
def test_a_client_stream_read_to_its_end_knows_its_client_went_away(server, how):
    release = threading.Event()

    def messages():
        yield jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(layout_id="l"))
        yield jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(record_key="r", data_json="{}"))
        release.wait(10)  # the client pauses; it is cancelled (or times out) meanwhile

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.stream_unary(SUBMIT, jobs_pb2.SubmitBatchRequest.SerializeToString,
                                    jobs_pb2.SubmitBatchResponse.FromString)
        try:
            if how == "cancel":
                future = call.future(messages(), metadata=metadata())
                time.sleep(0.5)
                future.cancel()
            else:
                with pytest.raises(grpc.RpcError):
                    call(messages(), metadata=metadata(), timeout=0.5)
        finally:
            release.set()
        deadline = time.monotonic() + GRACE + 2
        while server.submit_saw_gone is None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert server.submit_saw_gone is True, "a gone client looked like a half-close"
