"""Events and journeys over gRPC on a real PostgreSQL, with the sends composed by the bulk path
over a real RabbitMQ (`kanal worker`'s consume loop in a thread). Time is an injected clock:
the tests move it and fire the timers; nothing sleeps for time to pass."""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from archive.tables import documents as index_documents
from kanal.v1 import events_pb2, events_pb2_grpc
from server.compose.layouts import DEFAULT_LAYOUTS_DIR
from server.events.tables import events as event_rows
from server.jobs.queue import consume
from server.journeys.tables import instances, sends, suppressions
from tests.client import channel
from tests.integration.delivery_fixtures import fresh_database, wait_for
from tests.integration.events_api_fixtures import (
    KEYS,
    TENANT,
    Clock,
    bad_request,
    rows,
    start_server,
)

pytestmark = pytest.mark.integration

RABBITMQ = os.environ.get("KANAL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Oslo: outside quiet hours

SAMPLE = DEFAULT_LAYOUTS_DIR / "welcome-letter/2.0.0/sample.json"
SENDER = json.loads(SAMPLE.read_text())["sender"]
LETTER = """
[steps.data]
sender = "$customer.sender"
customer = "$customer.recipient"
[steps.data.letter]
date = "$trigger.occurred_date"
subject = "Hei"
paragraphs = ["Hei igjen."]
highlights = []
signatures = [{ name = "Marte Lindahl", title = "Kundeservice" }]
"""
JOURNEYS = {
    "broker-follow-up": f"""
name = "broker-follow-up"
version = 1
trigger = "account_opened"
priority = 5
category = "marketing"
[[conditions]]
attribute = "segment"
in = ["retail"]
[[steps]]
id = "no-deposit-yet"
type = "wait"
days = 14
unless = ["first_deposit"]
[[steps]]
id = "follow-up"
type = "send"
layout = "welcome-letter"
layout_version = "2.0.0"
channels = ["print"]
{LETTER}""",
    "nps-parcel": f"""
name = "nps-parcel"
version = 1
trigger = "parcel_delivered"
priority = 3
category = "survey"
reentry = "every"
[[steps]]
id = "ask"
type = "send"
layout = "welcome-letter"
channels = ["print"]
{LETTER}""",
    "nps-complaint": f"""
name = "nps-complaint"
version = 1
trigger = "complaint_registered"
priority = 1
category = "survey"
reentry = "every"
[[steps]]
id = "ask"
type = "send"
layout = "welcome-letter"
channels = ["print"]
{LETTER}""",
}


def write_journeys(root: Path) -> Path:
    for name, text in JOURNEYS.items():
        folder = root / TENANT / name
        folder.mkdir(parents=True)
        (folder / "1.toml").write_text(text)
    return root


@pytest.fixture(scope="module")
def database(pg_url):
    yield from fresh_database(pg_url)


@pytest.fixture(scope="module")
def rabbit_env():
    queue = f"kanal.test.{uuid.uuid4().hex[:8]}"
    saved = {k: os.environ.get(k) for k in ("KANAL_RABBITMQ_URL", "KANAL_RABBITMQ_QUEUE")}
    os.environ.update(KANAL_RABBITMQ_URL=RABBITMQ, KANAL_RABBITMQ_QUEUE=queue)
    yield queue
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def world(tmp_path_factory, database, rabbit_env):
    tmp = tmp_path_factory.mktemp("journeys")
    write_journeys(tmp / "journeys")
    clock = Clock(T0)
    server = start_server(tmp, database, clock)
    stop = threading.Event()
    worker = threading.Thread(target=consume, args=(RABBITMQ, server.worker_config, stop),
                              kwargs={"queue": rabbit_env}, daemon=True)
    worker.start()
    world = {"server": server, "clock": clock, "tmp": tmp, "database": database}
    yield world
    stop.set()
    worker.join(timeout=30)
    world["server"].stop()


def publish(world, customer: str, event_type: str, data: dict, at: datetime, key: str = "",
            attributes: dict | None = None) -> events_pb2.PublishEventResponse:
    occurred = Timestamp()
    occurred.FromDatetime(at)
    with channel(world["server"].address, KEYS[TENANT, "producer"]) as ch:
        return events_pb2_grpc.EventsStub(ch).PublishEvent(events_pb2.PublishEventRequest(
            customer_id=customer, event_type=event_type, data_json=json.dumps(data),
            occurred_at=occurred, idempotency_key=key,
            attributes_json=json.dumps(attributes) if attributes else ""))


def activity(world, customer: str) -> list:
    with channel(world["server"].address, KEYS[TENANT, "service"]) as ch:
        return list(events_pb2_grpc.CustomersStub(ch).ListCustomerActivity(
            events_pb2.ListCustomerActivityRequest(customer_id=customer)).activities)


def profile(customer: str, **extra) -> dict:
    return {"segment": "retail", "country": "NO", "consents": ["marketing", "email"],
            "sender": SENDER, "recipient": {
                "customer_id": customer, "name": "Kari Nordmann",
                "address": {"lines": ["Kjøpmannsgata 22"], "postal_code": "7013",
                            "city": "TRONDHEIM", "country": "NO"}}, **extra}


def indexed(world, document_id: str):
    return world["server"].index.get(TENANT, document_id)


def job_errors(world, job_id: str):
    return world["server"].jobs.errors(job_id, TENANT, -1, 5)


def documents_of(world, customer: str) -> int:
    with world["server"].index.engine.begin() as conn:
        return conn.execute(select(func.count()).select_from(index_documents).where(
            index_documents.c.tenant == TENANT,
            index_documents.c.customer_id == customer)).scalar()


def test_the_broker_follow_up_fires_14_days_after_account_opened_unless_first_deposit(world):
    clock, journeys = world["clock"], world["server"].journeys
    run = uuid.uuid4().hex[:6]
    waiting, deposited, staff = f"w-{run}", f"d-{run}", f"s-{run}"
    opened = clock.now
    for customer in (waiting, deposited):
        started = publish(world, customer, "account_opened",
                          {"account_id": f"A{customer}", "product": "ASK"}, opened,
                          attributes=profile(customer))
        assert started.journeys_started == 1
    assert publish(world, staff, "account_opened", {"account_id": "A1", "product": "ASK"},
                   opened, attributes=profile(staff, segment="staff")).journeys_started == 0

    clock.now = opened + timedelta(days=3)
    exited = publish(world, deposited, "first_deposit",
                     {"account_id": f"A{deposited}", "amount": "2500.00", "currency": "NOK"},
                     clock.now)
    assert exited.journeys_exited == 1

    clock.now = opened + timedelta(days=13, hours=23)
    journeys.tick()
    assert rows(world, sends, customer_id=waiting) == []

    clock.now = opened + timedelta(days=14, minutes=1)
    journeys.tick()
    [send] = rows(world, sends, customer_id=waiting)
    assert send["step"] == "follow-up" and send["state"] == "submitted"
    assert rows(world, sends, customer_id=deposited) == []
    [ended] = rows(world, instances, customer_id=deposited)
    assert ended["state"] == "exited" and "first_deposit came" in ended["reason"]

    # The bulk path (RabbitMQ -> worker -> compose_as) archives the promised document.
    record = wait_for(lambda: indexed(world, send["document_id"]), "the follow-up document",
                      explain=lambda: job_errors(world, send["job_id"]))
    assert record.customer_id == waiting
    assert record.layout_ref == "welcome-letter@2.0.0"

    [why] = [a for a in activity(world, deposited) if a.kind == "journey"]
    assert why.state == "exited" and "first_deposit came" in why.reason

    timeline = activity(world, waiting)
    kinds = [a.kind for a in timeline]
    assert {"communication", "delivery", "event"} <= set(kinds)
    [sent] = [a for a in timeline if a.kind == "communication"]
    assert sent.document_id == send["document_id"] and sent.journey == "broker-follow-up@1"
    assert kinds.index("communication") < kinds.index("event")  # newest first
    # (the delivery rows carry the delivery stage's own clock, real time: ahead of the test's)
    assert all(a.document_id == send["document_id"] for a in timeline if a.kind == "delivery")
    assert [a.at.ToDatetime(tzinfo=UTC) for a in timeline] == sorted(
        (a.at.ToDatetime(tzinfo=UTC) for a in timeline), reverse=True)


def test_only_customer_service_reads_the_timeline(world):
    with (channel(world["server"].address, KEYS[TENANT, "producer"]) as ch,
          pytest.raises(grpc.RpcError) as raised):
        events_pb2_grpc.CustomersStub(ch).ListCustomerActivity(
            events_pb2.ListCustomerActivityRequest(customer_id="x"))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_survey_is_not_sent_twice_within_90_days_even_when_two_journeys_ask(world):
    clock, journeys = world["clock"], world["server"].journeys
    customer = f"n-{uuid.uuid4().hex[:6]}"
    start = clock.now
    publish(world, customer, "parcel_delivered", {"parcel_id": "P1", "touchpoint": "locker"},
            start, attributes=profile(customer))
    publish(world, customer, "complaint_registered", {"case_id": "C1", "topic": "late"}, start)
    journeys.tick()
    [sent] = rows(world, sends, customer_id=customer)
    assert sent["journey"] == "nps-parcel"  # the higher priority wins the day
    [first] = rows(world, suppressions, customer_id=customer)
    assert first["category"] == "survey" and first["source"] == "journey:nps-complaint@1:ask"

    clock.now = start + timedelta(days=30)
    publish(world, customer, "parcel_delivered", {"parcel_id": "P2", "touchpoint": "locker"},
            clock.now)
    journeys.tick()
    assert len(rows(world, sends, customer_id=customer)) == 1
    reasons = [s["reason"] for s in rows(world, suppressions, customer_id=customer)]
    assert any("frequency cap survey: 1 of 1 in 90 days" in r for r in reasons)

    clock.now = start + timedelta(days=91)
    publish(world, customer, "parcel_delivered", {"parcel_id": "P3", "touchpoint": "locker"},
            clock.now)
    journeys.tick()
    assert len(rows(world, sends, customer_id=customer)) == 2
    shown = [a for a in activity(world, customer) if a.kind == "suppression"]
    assert len(shown) == 2 and all(a.reason for a in shown)


def test_a_replayed_event_or_a_restarted_server_never_sends_a_second_message(world):
    clock, server = world["clock"], world["server"]
    customer = f"r-{uuid.uuid4().hex[:6]}"
    data = {"parcel_id": "P9", "touchpoint": "counter"}
    first = publish(world, customer, "parcel_delivered", data, clock.now, key=f"k-{customer}",
                    attributes=profile(customer))
    again = publish(world, customer, "parcel_delivered", data, clock.now, key=f"k-{customer}",
                    attributes=profile(customer))
    with pytest.raises(grpc.RpcError) as raised:  # the same key for another event
        publish(world, customer, "parcel_delivered", {**data, "parcel_id": "P10"}, clock.now,
                key=f"k-{customer}")
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert again.replayed and again.event_id == first.event_id and again.journeys_started == 0
    server.journeys.tick()
    [send] = rows(world, sends, customer_id=customer)
    wait_for(lambda: indexed(world, send["document_id"]), "the survey document")

    # Replaying every stored event, then a restart on the same database: still one message.
    assert server.events.replay(customer_id=customer)[1] == 0
    server.stop()
    world["server"] = server = start_server(world["tmp"], world["database"], clock)
    server.events.replay()
    server.journeys.tick()
    clock.now += timedelta(days=1)
    server.journeys.tick()
    assert len(rows(world, sends, customer_id=customer)) == 1
    assert documents_of(world, customer) == 1


def test_bad_event_data_is_refused_with_its_json_path(world):
    with pytest.raises(grpc.RpcError) as raised:
        publish(world, "c1", "first_deposit",
                {"account_id": "A1", "amount": 12.5, "currency": "NOK"}, world["clock"].now)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request(raised.value)] == ["data.$.amount"]

    with pytest.raises(grpc.RpcError) as raised:
        publish(world, "c1", "account_openned", {}, world["clock"].now)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown event type" in raised.value.details() + str(bad_request(raised.value))

    good = events_pb2.PublishEventRequest(customer_id="c2", event_type="pin_sent",
                                          data_json='{"card_id": "K1", "via": "app"}')
    bad = events_pb2.PublishEventRequest(customer_id="c2", event_type="pin_sent",
                                         data_json='{"card_id": "K1", "via": "pigeon"}')
    with channel(world["server"].address, KEYS[TENANT, "producer"]) as ch:
        stub = events_pb2_grpc.EventsStub(ch)
        with pytest.raises(grpc.RpcError) as raised:
            stub.PublishEvents(events_pb2.PublishEventsRequest(events=[good, bad]))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in bad_request(raised.value)] == ["events[1].data.$.via"]
        assert rows(world, event_rows, customer_id="c2") == []  # all or nothing
        response = stub.PublishEventStream(iter([good, good]))
        # neither a key nor an occurred_at: never deduplicated, two events (QA T1)
        assert (response.accepted, response.replayed) == (2, 0)


def test_a_key_twice_a_date_that_does_not_exist_and_bad_attributes_are_named(world):
    # QA L5: one key on two events of a request was ALREADY_EXISTS naming a rolled-back
    # event id; QA L6: 2026-02-30, an unknown time zone and consents as text were accepted
    def pin(customer: str, **fields: str) -> events_pb2.PublishEventRequest:
        return events_pb2.PublishEventRequest(customer_id=customer, event_type="pin_sent",
                                              data_json='{"card_id": "K1", "via": "app"}',
                                              **fields)
    missed = {"invoice_id": "I1", "amount": "100.00", "currency": "NOK",
              "due_date": "2026-02-30"}
    with channel(world["server"].address, KEYS[TENANT, "producer"]) as ch:
        stub = events_pb2_grpc.EventsStub(ch)
        with pytest.raises(grpc.RpcError) as raised:
            stub.PublishEvents(events_pb2.PublishEventsRequest(events=[
                pin("d1", idempotency_key="dupkey"), pin("d2", idempotency_key="dupkey")]))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request(raised.value) == [(
            "events[1].idempotency_key", '"dupkey" is also the key of events[0] in this '
            "request, whose content differs; an idempotency key names one event")]
        assert rows(world, event_rows, customer_id="d1") == []
        with pytest.raises(grpc.RpcError) as raised:
            stub.PublishEvent(events_pb2.PublishEventRequest(
                customer_id="d3", event_type="payment_missed", data_json=json.dumps(missed),
                attributes_json='{"time_zone": "Mars/Olympus", "consents": "email"}'))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in bad_request(raised.value)] == [
            "data.$.due_date", "attributes.$.consents", "attributes.$.time_zone"]


JSONISH = st.one_of(st.text(max_size=40), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8).map(json.dumps))


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(event_type=st.sampled_from(["pin_sent", "first_deposit", "closing_signals", "x", ""]),
       data=JSONISH, attributes=st.one_of(st.just(""), JSONISH),
       customer=st.text(max_size=210), key=st.text(max_size=210),
       seconds=st.integers(min_value=-2**40, max_value=2**40), page=st.text(max_size=12),
       size=st.integers(min_value=-5, max_value=2000))
def test_no_event_or_timeline_request_answers_internal(world, event_type, data, attributes,
                                                       customer, key, seconds, page, size):
    request = events_pb2.PublishEventRequest(
        customer_id=customer, event_type=event_type, data_json=data,
        attributes_json=attributes, idempotency_key=key)
    request.occurred_at.seconds = seconds
    bad = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
    with channel(world["server"].address, KEYS[TENANT, "producer"]) as ch:
        for call in (lambda: events_pb2_grpc.EventsStub(ch).PublishEvent(request, timeout=30),
                     lambda: events_pb2_grpc.EventsStub(ch).PublishEvents(
                         events_pb2.PublishEventsRequest(events=[request]), timeout=30)):
            try:
                call()
            except grpc.RpcError as exc:
                assert exc.code() not in bad, exc.details()
    with channel(world["server"].address, KEYS[TENANT, "service"]) as ch:
        try:
            events_pb2_grpc.CustomersStub(ch).ListCustomerActivity(
                events_pb2.ListCustomerActivityRequest(customer_id=customer, page_token=page,
                                                       page_size=size), timeout=30)
        except grpc.RpcError as exc:
            assert exc.code() not in bad, exc.details()
