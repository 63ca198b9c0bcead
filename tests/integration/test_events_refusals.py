"""Refused events over gRPC name the request field at fault, also in their message: bad
`attributes_json` is `attributes` (`attributes.$.time_zone`), never `data`, which sent the
caller to `data_json`; a message of PublishEventStream outside the request limits is
`events[n].…` (its index in the stream), and the events before it are stored. Money is
refused at intake as Compose refuses it (QA: "100.0001" NOK, "100.5" JPY and "XYZ" were
accepted and failed when a journey composed): `data.$.amount`, `data.$.currency`, nothing
stored. PostgreSQL."""

from __future__ import annotations

import json

import grpc
import pytest

from kanal.v1 import events_pb2, events_pb2_grpc
from server.events.tables import events as event_rows
from tests.client import channel
from tests.integration.events_api_fixtures import (
    KEYS,
    PIN,
    TENANT,
    bad_request,
    events_world,
    rows,
)

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def world(tmp_path_factory, pg_url):
    yield from events_world(tmp_path_factory.mktemp("events"), pg_url)


@pytest.fixture
def stub(world):
    with channel(world["server"].address, KEYS[TENANT, "producer"]) as ch:
        yield events_pb2_grpc.EventsStub(ch)


def pin(customer: str, key: str = "", attributes: str = "") -> events_pb2.PublishEventRequest:
    return events_pb2.PublishEventRequest(customer_id=customer, event_type="pin_sent",
                                          data_json=PIN, idempotency_key=key,
                                          attributes_json=attributes)


@pytest.mark.parametrize("attributes, field, why", [
    ('{"segment":', "attributes", "malformed JSON at line 1 column 12: Expecting value"),
    ('{"segment": "retail", "segment": "sme"}', "attributes",
     'malformed JSON: duplicate key "segment"'),
], ids=["malformed", "duplicate key"])
def test_bad_attributes_json_is_named_attributes_not_data(stub, attributes, field, why):
    # was: "invalid attributes: data: malformed JSON ..." (the field right, the message not)
    with pytest.raises(grpc.RpcError) as raised:
        stub.PublishEvent(pin("a1", attributes=attributes))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(raised.value) == [(field, why)]
    assert f"{field}: {why}" in raised.value.details()
    assert "data" not in raised.value.details()
    with pytest.raises(grpc.RpcError) as raised:
        stub.PublishEvents(events_pb2.PublishEventsRequest(
            events=[pin("a1"), pin("a1", attributes=attributes)]))
    assert bad_request(raised.value) == [(f"events[1].{field}", why)]
    assert "data" not in raised.value.details()


def test_a_streamed_event_outside_the_request_limits_is_named_by_its_index(world, stub):
    # was `customer_id` with no index: which of the stream's events said nothing
    with pytest.raises(grpc.RpcError) as raised:
        stub.PublishEventStream(iter([pin("s1", key="s1-0"), pin("s1", key="s1-1"),
                                      pin("s" * 201, key="s1-2"), pin("s1", key="s1-3")]))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(raised.value) == [
        ("events[2].customer_id", "is 201 characters long; at most 200 are allowed")]
    assert "the 2 events before it are stored" in raised.value.details()
    assert sorted(r["idempotency_key"] for r in rows(world, event_rows, customer_id="s1")
                  ) == ["s1-0", "s1-1"]


def missed(customer: str, amount: str, currency: str, key: str = ""
           ) -> events_pb2.PublishEventRequest:
    return events_pb2.PublishEventRequest(
        customer_id=customer, event_type="payment_missed", idempotency_key=key,
        data_json=json.dumps({"invoice_id": "F-1", "amount": amount, "currency": currency,
                              "due_date": "2026-02-28"}))


@pytest.mark.parametrize("amount, currency, field, why", [
    ("100.0001", "NOK", "data.$.amount", "NOK has 2 decimals; 100.0001 has 4"),
    ("100.5", "JPY", "data.$.amount", "JPY has 0 decimals; 100.5 has 1"),
    ("100.00", "XYZ", "data.$.currency", 'unknown currency "XYZ"'),
    ("100.00", "XXX", "data.$.currency", "XXX is an ISO 4217 code but no currency"),
], ids=["NOK 4 decimals", "JPY decimals", "unknown currency", "no tender"])
def test_money_compose_would_refuse_is_refused_at_intake(world, stub, amount, currency,
                                                         field, why):
    # QA: accepted, and refused only when a journey composed its document
    with pytest.raises(grpc.RpcError) as raised:
        stub.PublishEvent(missed("m1", amount, currency))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(found, description)] = bad_request(raised.value)
    assert found == field and description.startswith(why), description
    with pytest.raises(grpc.RpcError) as raised:
        stub.PublishEvents(events_pb2.PublishEventsRequest(
            events=[missed("m1", "100.00", "NOK"), missed("m1", amount, currency)]))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(raised.value)] == [f"events[1].{field}"]
    assert rows(world, event_rows, customer_id="m1") == []


def test_money_in_the_currencys_minor_unit_is_accepted(world, stub):
    for n, (amount, currency) in enumerate([("100.00", "NOK"), ("100.0", "NOK"),
                                            ("100", "JPY"), ("-12.50", "EUR")]):
        stub.PublishEvent(missed("m2", amount, currency, key=f"m2-{n}"))
    assert len(rows(world, event_rows, customer_id="m2")) == 4
