"""Publishing events over gRPC on a real PostgreSQL, end to end (the server's clock is
injected; nothing sleeps): the idempotency hash is of what the caller sent, so a retry
without `occurred_at` is the first event (QA T1); a set `occurred_at` at or before
1970-01-01T00:00:00Z is INVALID_ARGUMENT naming it, unset is now (QA T5); a stream keeps the
events before one it cannot accept and names that one by its index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from kanal.v1 import events_pb2, events_pb2_grpc
from server.events.tables import events as event_rows
from tests.client import channel
from tests.integration.events_api_fixtures import (
    KEYS,
    PIN,
    T0,
    TENANT,
    bad_request,
    events_world,
    rows,
)

pytestmark = pytest.mark.integration

NOT_AFTER_EPOCH = "is not after 1970-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def world(tmp_path_factory, pg_url):
    yield from events_world(tmp_path_factory.mktemp("events"), pg_url)


@pytest.fixture
def stub(world):
    with channel(world["server"].address, KEYS[TENANT, "producer"]) as ch:
        yield events_pb2_grpc.EventsStub(ch)


def pin(customer: str, key: str = "", seconds: int | None = None
        ) -> events_pb2.PublishEventRequest:
    """A pin_sent event; `seconds`: occurred_at set to it (0 included), None: unset."""
    request = events_pb2.PublishEventRequest(customer_id=customer, event_type="pin_sent",
                                             data_json=PIN, idempotency_key=key)
    if seconds is not None:
        request.occurred_at.seconds = seconds
    return request


def occurred(world, customer: str) -> list[datetime]:
    return sorted(r["occurred_at"] for r in rows(world, event_rows, customer_id=customer))


def test_a_retry_without_occurred_at_is_the_first_event(world, stub):
    # QA T1: was ALREADY_EXISTS once the server's clock had moved between the two
    first = stub.PublishEvent(pin("r1", key="pin-r1"))
    world["clock"].now = T0 + timedelta(minutes=3)
    try:
        again = stub.PublishEvent(pin("r1", key="pin-r1"))
    finally:
        world["clock"].now = T0
    assert (first.replayed, again.replayed) == (False, True)
    assert again.event_id == first.event_id and occurred(world, "r1") == [T0]


def test_an_event_with_neither_key_nor_occurred_at_is_never_deduplicated(world, stub):
    one, two = stub.PublishEvent(pin("r2")), stub.PublishEvent(pin("r2"))
    assert not (one.replayed or two.replayed) and one.event_id != two.event_id
    response = stub.PublishEvents(events_pb2.PublishEventsRequest(events=[pin("r2")] * 2))
    assert (response.accepted, response.replayed) == (2, 0)
    assert len(occurred(world, "r2")) == 4
    timed = int(T0.timestamp())  # with a time and no key, the content is the key
    response = stub.PublishEvents(events_pb2.PublishEventsRequest(
        events=[pin("r3", seconds=timed)] * 2))
    assert (response.accepted, response.replayed) == (1, 1)


@pytest.mark.parametrize("seconds", [0, -1, -86400 * 365])
def test_an_occurred_at_at_or_before_the_epoch_is_refused_naming_it(world, stub, seconds):
    # QA T5: was stored as an event of 1970 (or earlier)
    customer = f"e{seconds}"
    with pytest.raises(grpc.RpcError) as raised:
        stub.PublishEvent(pin(customer, seconds=seconds))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, why)] = bad_request(raised.value)
    assert field == "occurred_at" and NOT_AFTER_EPOCH in why, why
    with pytest.raises(grpc.RpcError) as raised:
        stub.PublishEvents(events_pb2.PublishEventsRequest(
            events=[pin(customer), pin(customer, seconds=seconds)]))
    assert [f for f, _ in bad_request(raised.value)] == ["events[1].occurred_at"]
    assert occurred(world, customer) == []
    stub.PublishEvent(pin(customer, seconds=1))  # just after the epoch: a time
    stub.PublishEvent(pin(customer))  # unset: now
    assert occurred(world, customer) == [datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), T0]


@pytest.mark.parametrize("seconds, why", [(0, NOT_AFTER_EPOCH), (2**40, "not a time: ")])
def test_a_stream_keeps_the_events_before_a_bad_time_and_names_its_index(
        world, stub, seconds, why):
    # was: `occurred_at` with no index for a time a Timestamp cannot hold, and the events
    # before it lost with it
    customer = f"s{seconds}"
    with pytest.raises(grpc.RpcError) as raised:
        stub.PublishEventStream(iter([pin(customer, key=f"{customer}-0"),
                                      pin(customer, key=f"{customer}-1"),
                                      pin(customer, key=f"{customer}-2", seconds=seconds),
                                      pin(customer, key=f"{customer}-3")]))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = bad_request(raised.value)
    assert field == "events[2].occurred_at" and why in description, description
    assert "the 2 events before it are stored" in raised.value.details()
    assert sorted(r["idempotency_key"] for r in rows(world, event_rows, customer_id=customer)
                  ) == [f"{customer}-0", f"{customer}-1"]


def test_a_stream_keeps_the_events_before_a_key_stored_with_another_event(world, stub):
    # was: ALREADY_EXISTS and the events before it in the open transaction rolled back
    stub.PublishEvent(pin("k0", key="k-taken"))
    with pytest.raises(grpc.RpcError) as raised:
        stub.PublishEventStream(iter([pin("k1", key="k-1"), pin("k2", key="k-taken"),
                                      pin("k3", key="k-3")]))
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert raised.value.details().startswith("events[1].idempotency_key: idempotency key "
                                             "'k-taken' was already used for event ")
    assert "(the 1 events before it are stored)" in raised.value.details()
    assert [len(occurred(world, c)) for c in ("k1", "k2", "k3")] == [1, 0, 0]
