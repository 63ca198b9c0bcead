"""Admission lanes, the statuses of refused calls, and request bytes/fields at the edge."""

from __future__ import annotations

import contextvars

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from kanal.v1 import documents_pb2, events_pb2, jobs_pb2, portal_pb2
from server.api import admission
from server.api.admission import Lane, Lanes, Limits
from server.api.errors import MAX_DETAIL_BYTES, RETRY_PUSHBACK_HEADER, to_status
from server.api.wire import BadMessage, check_request, in_stream, safe_deserializer
from server.errors import FieldViolation, InvalidInput, Overloaded


def test_a_lane_bounds_calls_in_all_and_per_key():
    lane = Lane("read", threads=2, capacity=3, per_key=2)
    try:
        a1, a2 = lane.admit("a"), lane.admit("a")
        with pytest.raises(Overloaded, match="this API key already has 2"):
            lane.admit("a")
        b1 = lane.admit("b")
        with pytest.raises(Overloaded, match="queue is full") as info:
            lane.admit("c")
        assert info.value.retry_after and info.value.retry_after > 0
        a1.release()
        a1.release()  # idempotent: one place back, not two
        c1 = lane.admit("c")
        with pytest.raises(Overloaded):
            lane.admit("d")
        for ticket in (a2, b1, c1):
            ticket.release()
        assert lane.held == 0
    finally:
        lane.close()


def test_a_render_call_leaves_the_queue_when_its_render_is_done():
    lanes = Lanes(Limits(render_queue=1), render_workers=1)
    render = lanes.by_name["render"]
    try:
        first, second = render.admit("k"), render.admit("k")
        with pytest.raises(Overloaded):
            render.admit("k")

        def rendered() -> None:  # what RenderQueueExit does, in the call's thread
            admission.set_ticket(first)
            admission.release_render_slot(0.2)
        contextvars.copy_context().run(rendered)
        third = render.admit("k")  # the first still archives, but no longer blocks a render
        for ticket in (first, second, third):
            ticket.release()
    finally:
        lanes.close()


def test_limits_come_from_settings_and_refuse_nonsense():
    assert Limits.from_dict({"render_queue": 2, "stream_idle_seconds": 1.5}) == Limits(
        render_queue=2, stream_idle_seconds=1.5)
    for bad in ({"render_queue": -1}, {"unknown": 1}, {"streams": "many"}):
        with pytest.raises(ValueError):
            Limits.from_dict(bad)


def test_overloaded_carries_a_retry_delay_and_the_pushback_trailer():
    status = to_status(Overloaded("full", retry_after=1.25))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(status.trailing_metadata)
    assert trailers[RETRY_PUSHBACK_HEADER] == "1250"
    decoded = rpc_status.status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.RetryInfo()
    assert decoded.details[0].Unpack(info) and info.retry_delay.ToMilliseconds() == 1250


def test_a_status_stays_small_however_many_and_long_the_violations():
    error = InvalidInput("bad " + "x" * 100_000, [
        FieldViolation(f"$.f{n}." + "k" * 1000, "v" * 5000) for n in range(1000)])
    status = to_status(error)
    size = len(status.details) + sum(len(k) + len(v) for k, v in status.trailing_metadata)
    assert size < 6000  # clients refuse trailers over 8 KB
    decoded = rpc_status.status_pb2.Status.FromString(
        dict(status.trailing_metadata)["grpc-status-details-bin"])
    bad_request = error_details_pb2.BadRequest()
    decoded.details[0].Unpack(bad_request)
    assert bad_request.ByteSize() <= MAX_DETAIL_BYTES + 100
    assert bad_request.field_violations[0].field.startswith("$.f0.")
    assert bad_request.field_violations[-1].description.startswith("and ")


def test_bytes_that_are_not_utf8_name_their_field():
    compose = safe_deserializer("/kanal.v1.Documents/Compose",
                                documents_pb2.ComposeRequest.FromString)
    raw = documents_pb2.ComposeRequest(layout_id="abc", data_json="{}").SerializeToString()
    bad = compose(raw.replace(b"abc", b"a\xffc"))
    assert isinstance(bad, BadMessage)
    assert [(v.field, v.description) for v in bad.error.violations] == [
        ("layout_id", "is not valid UTF-8 text")]

    submit = safe_deserializer("/kanal.v1.Jobs/SubmitBatch",
                               jobs_pb2.SubmitBatchRequest.FromString)
    raw = jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
        record_key="r1", data_json='{"name": "abc"}')).SerializeToString()
    bad = submit(raw.replace(b"abc", b"\xed\xa0\x80"))  # an encoded lone surrogate
    assert [v.field for v in bad.error.violations] == ["record.data_json"]

    listing = safe_deserializer("/kanal.v1.Portal/ListDocuments",
                                portal_pb2.ListDocumentsRequest.FromString)
    raw = portal_pb2.ListDocumentsRequest(kinds=["invoice", "abc"]).SerializeToString()
    assert [v.field for v in listing(raw.replace(b"abc", b"\xc3((")).error.violations] == [
        "kinds[1]"]
    assert [v.field for v in compose(b"\x12\x05ab").error.violations] == ["request"]
    assert compose(documents_pb2.ComposeRequest(layout_id="x").SerializeToString()
                   ).layout_id == "x"


def test_request_fields_have_limits():
    with pytest.raises(InvalidInput) as info:
        check_request(documents_pb2.ComposeRequest(
            layout_id="l" * 129, locale="nb\x00NO", idempotency_key="k" * 201,
            data_json="x" * 1_000_000))
    assert [v.field for v in info.value.violations] == ["layout_id", "locale",
                                                        "idempotency_key"]
    with pytest.raises(InvalidInput) as info:
        check_request(jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
            record_key="r\n1", data_json="{}")))
    assert [v.field for v in info.value.violations] == ["record.record_key"]
    with pytest.raises(InvalidInput):
        check_request(portal_pb2.ListDocumentsRequest(kinds=["invoice"] * 1001))
    check_request(documents_pb2.ComposeRequest(layout_id="card-invoice", data_json="{}"))


def refused_in_stream(message, index: int) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as info:
        try:
            check_request(message)
        except InvalidInput as exc:
            raise in_stream(exc, message.DESCRIPTOR.full_name, index) from None
    return [(v.field, v.description) for v in info.value.violations]


def test_a_streamed_message_is_named_as_its_servicer_names_it():
    # was `record.record_key` for every record of a job: which of 10,000 said nothing
    record = jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
        record_key="k" * 201, data_json="{}"))
    assert refused_in_stream(record, 3) == [
        ("records[2].record_key", "is 201 characters long; at most 200 are allowed")]
    header = jobs_pb2.SubmitBatchRequest(header=jobs_pb2.JobHeader(job_name="j" * 201))
    assert [f for f, _ in refused_in_stream(header, 0)] == ["header.job_name"]
    event = events_pb2.PublishEventRequest(customer_id="c" * 201, event_type="pin\nsent")
    assert [f for f, _ in refused_in_stream(event, 4)] == ["events[4].customer_id",
                                                           "events[4].event_type"]
    # bytes that are no message: the deserializer cannot know their place in the stream
    submit = safe_deserializer("/kanal.v1.Jobs/SubmitBatch",
                               jobs_pb2.SubmitBatchRequest.FromString)
    raw = jobs_pb2.SubmitBatchRequest(record=jobs_pb2.JobRecord(
        record_key="r1", data_json='{"name": "abc"}')).SerializeToString()
    bad = submit(raw.replace(b"abc", b"\xc3(("))
    renamed = in_stream(bad.error, bad.message_type, 2)
    assert [v.field for v in renamed.violations] == ["records[1].data_json"]
    assert str(renamed) == "invalid records[1].data_json: is not valid UTF-8 text"


class FakeContext:
    """The parts of a grpc.aio.ServicerContext the interceptor uses."""

    def __init__(self, key: str):
        self.metadata = (("authorization", f"Bearer {key}"),)
        self.aborted: tuple | None = None

    def invocation_metadata(self):
        return self.metadata

    async def send_initial_metadata(self, metadata):
        self.initial = metadata

    def time_remaining(self):
        return 5.0

    def done(self):
        return False

    async def abort(self, code, details, trailing_metadata=()):
        self.aborted = (code, details)
        raise RuntimeError("aborted")


def test_the_interceptor_runs_sync_servicers_in_lanes_and_tells_observers():
    import asyncio

    from server.api.interceptor import KanalInterceptor
    from server.auth import ApiKey, Authenticator, hash_key

    seen: list[tuple[str, grpc.StatusCode]] = []
    lanes = Lanes(Limits(), render_workers=1)
    interceptor = KanalInterceptor(
        Authenticator([ApiKey("k", hash_key("secret"), "t", "service")]), lanes, Limits(),
        observers=[lambda method, code, seconds: seen.append((method, code))])
    method = "/kanal.v1.Documents/GetDocument"

    def servicer(request, context):  # a synchronous servicer, run in the read lane's thread
        import threading
        assert threading.current_thread().name.startswith("rpc-read")
        if request.document_id == "missing":
            from server.errors import NotFound
            raise NotFound("no document")
        return request.document_id

    call = interceptor._unary(method, servicer)
    try:
        ok = asyncio.run(call(documents_pb2.GetDocumentRequest(document_id="d1"),
                              FakeContext("secret")))
        context = FakeContext("secret")
        with pytest.raises(RuntimeError, match="aborted"):
            asyncio.run(call(documents_pb2.GetDocumentRequest(document_id="missing"), context))
    finally:
        lanes.close()
    assert ok == "d1" and context.aborted[0] == grpc.StatusCode.NOT_FOUND
    assert seen == [(method, grpc.StatusCode.OK), (method, grpc.StatusCode.NOT_FOUND)]
    assert lanes.by_name["read"].held == 0
